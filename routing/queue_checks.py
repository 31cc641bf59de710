"""Checks of a queue node a schema cannot make: what its keys lead to, its music and its texts."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from routing.errors import Path, Reporter
from routing.flow import QueueNode
from routing.node_texts import check_node_texts
from routing.queue_texts import BUILT_IN, needed_texts, placeholder_problem

QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:-]*$")
"""Twilio queue names: up to 64 characters; we keep to ones safe in URLs and logs."""
TARGET_KINDS = (("callback", "callback"), ("voicemail", "voicemail"))
"""(field, node type it must lead to)."""


def check_queue(checks: Reporter, node_id: str, node: QueueNode) -> None:
    """Note every problem of one queue node."""
    base: Path = ("nodes", node_id)
    nodes = checks.flow.nodes
    for field, kind in TARGET_KINDS:
        target = getattr(node, field)
        if target is not None and target in nodes and nodes[target].type != kind:
            checks.error((*base, field), f"queue '{node_id}' {field} goes to "
                         f"{nodes[target].type} '{target}', which is not a {kind} node")
    name = node.queue if node.queue is not None else checks.flow.name
    if not QUEUE_NAME.match(name):
        checks.error((*base, "queue") if node.queue is not None else base,
                     f"queue '{node_id}' queue name '{name}' may only hold letters, digits, "
                     "spaces and . _ : - (64 characters at most)", at_key=node.queue is None)
    if node.hold_music is not None:
        problem = _music_problem(node.hold_music)
        if problem:
            checks.error((*base, "hold_music"), f"queue '{node_id}' hold_music {problem}")
    check_node_texts(checks, "queue", node_id, node, needed_texts(node), BUILT_IN,
                     placeholder_problem)


def _music_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        return f"'{url}' is not an https URL (Twilio fetches the audio from it)"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    return None
