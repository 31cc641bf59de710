"""Checks of a menu's `incidents:` a schema cannot make: its key must be free in the menu."""

from __future__ import annotations

from routing.errors import Path, Reporter
from routing.flow import MenuNode


def check_menu_incidents(checks: Reporter) -> None:
    """Note every menu whose incident key is also one of its options."""
    for node_id, node in checks.flow.nodes.items():
        if not isinstance(node, MenuNode) or node.incidents is None:
            continue
        key = node.incidents.subscribe
        if key in node.options:
            path: Path = ("nodes", node_id, "incidents", "subscribe")
            free = [k for k in "0123456789*#" if k not in node.options]
            hint = f"; free keys: {', '.join(free)}" if free else ""
            checks.error(path, f"menu '{node_id}' incidents subscribe key '{key}' is already "
                         f"option '{key}' (which goes to '{node.options[key].next}'){hint}")
