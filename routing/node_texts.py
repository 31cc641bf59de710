"""Checks of the texts a node speaks in each language: the callback, queue and ticket nodes each
have built-in texts that a flow may override per language, with their own placeholders."""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from routing.errors import Path, Reporter


def check_node_texts(
    checks: Reporter,
    kind: str,
    node_id: str,
    node: Any,
    needed: Iterable[str],
    built_in: Mapping[str, Mapping[str, str]],
    placeholder_problem: Callable[[str, str], str | None],
) -> None:
    """Note every needed text without a declared language's version (neither built in nor
    written under the node's `texts:`), and every override in an undeclared language or with
    a placeholder its text does not know."""
    declared = checks.flow.languages
    texts_path: Path = ("nodes", node_id, "texts")
    for name in needed:
        override = getattr(node.texts, name) or {}
        for language in declared:
            if language in override or language in built_in[name]:
                continue
            if override:
                path, at_key = (*texts_path, name), False
            elif "texts" in node.model_fields_set:
                path, at_key = texts_path, True
            else:
                path, at_key = ("nodes", node_id), True
            checks.error(path, f"{kind} '{node_id}' has no '{language}' text for '{name}' "
                         f"(built in: {', '.join(built_in[name])}); write it under "
                         f"'texts: {name}: {language}:'", at_key=at_key)
    for name in type(node.texts).model_fields:
        for language, text in (getattr(node.texts, name) or {}).items():
            path = (*texts_path, name, language)
            if language not in declared:
                checks.error(path, f"{kind} '{node_id}' text '{name}' has '{language}', which "
                             "'languages' does not declare", at_key=True)
            problem = placeholder_problem(name, text)
            if problem:
                checks.error(path, f"{kind} '{node_id}' text '{name}' ({language}) {problem}")


def node_text(override: Mapping[str, str] | None, built_in: Mapping[str, str], language: str,
              fallback: str) -> tuple[str, str]:
    """(text, language) of one text: the node's override in `language`, else the built-in one,
    else the same in `fallback`, else the built-in English."""
    for wanted in (language, fallback):
        for texts in (override or {}, built_in):
            if wanted in texts:
                return texts[wanted], wanted
    return built_in["en"], "en"


def unknown_placeholder(text: str, allowed: frozenset[str]) -> str | None:
    """Why `text` cannot be filled in with the {names} in `allowed` (an unknown name, a stray
    brace), or None."""
    try:
        used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError as error:
        return f"has a stray brace ({error}); write {{{{ or }}}} for a literal one"
    unknown = sorted(used - allowed)
    if unknown:
        known = ", ".join(f"{{{p}}}" for p in sorted(allowed)) or "none"
        return f"uses {{{unknown[0]}}}, which it cannot fill in; it knows: {known}"
    return None
