"""Checks of a queue node a schema cannot make: what its keys lead to, its music and its texts."""

from __future__ import annotations

import re
from typing import Protocol
from urllib.parse import urlsplit

from routing.flow import Flow, QueueNode
from routing.queue_texts import BUILT_IN, needed_texts, placeholder_problem

Path = tuple[str | int, ...]
QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:-]*$")
"""Twilio queue names: up to 64 characters; we keep to ones safe in URLs and logs."""
TARGET_KINDS = (("callback", "callback"), ("voicemail", "voicemail"))
"""(field, node type it must lead to)."""


class Reporter(Protocol):
    """What the validator offers a check: the flow, and a way to note a located error."""

    flow: Flow

    def error(self, path: Path, message: str, *, at_key: bool = False) -> None:
        """Note a problem at `path`."""


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
    _check_texts(checks, node_id, node)


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


def _check_texts(checks: Reporter, node_id: str, node: QueueNode) -> None:
    declared = checks.flow.languages
    texts_path: Path = ("nodes", node_id, "texts")
    for name in needed_texts(node):
        override = getattr(node.texts, name) or {}
        for language in declared:
            if language in override or language in BUILT_IN[name]:
                continue
            if override:
                path, at_key = (*texts_path, name), False
            elif "texts" in node.model_fields_set:
                path, at_key = texts_path, True
            else:
                path, at_key = ("nodes", node_id), True
            built_in = ", ".join(BUILT_IN[name])
            checks.error(path, f"queue '{node_id}' has no '{language}' text for '{name}' "
                         f"(built in: {built_in}); write it under 'texts: {name}: {language}:'",
                         at_key=at_key)
    for name in type(node.texts).model_fields:
        for language, text in (getattr(node.texts, name) or {}).items():
            path = (*texts_path, name, language)
            if language not in declared:
                checks.error(path, f"queue '{node_id}' text '{name}' has '{language}', which "
                             "'languages' does not declare", at_key=True)
            problem = placeholder_problem(name, text)
            if problem:
                checks.error(path, f"queue '{node_id}' text '{name}' ({language}) {problem}")
