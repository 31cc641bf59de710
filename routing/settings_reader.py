"""The base of every settings file's checker (priorities, keywords, texts, incidents,
delivery): problems collected as located errors, unknown keys with a did-you-mean, and the
languages a file's texts come in."""

from __future__ import annotations

import re
import typing
from typing import Any

from routing.errors import FlowError, Path
from routing.field_problems import did_you_mean
from routing.loader import LocatedTree

LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")
"""A language code in a settings file: en, de, pl, ru, ..."""


class LocatedReader:
    """Base for checking a settings file read with `compose_tree`: every problem is collected
    as a FlowError at the line and column of the value (or key) it is about."""

    def __init__(self, tree: LocatedTree, filename: str) -> None:
        self.tree = tree
        self.filename = filename
        self.errors: list[FlowError] = []

    def error(self, path: Path, message: str, *, at_key: bool = False) -> None:
        """Note a problem at `path` (at its key with `at_key`)."""
        line, column = self.tree.locate_key(path) if at_key else self.tree.locate(path)
        self.errors.append(FlowError(self.filename, line, column, message))

    def text_languages(self, data: dict[str, Any], fallback: str = "en") -> list[str]:
        """The file's `languages:` list (every text needs each; `fallback` is required, as
        callers in other languages get it); [fallback] when there is no usable list."""
        value = data.get("languages")
        if not isinstance(value, list) or not value:
            self.error(("languages",) if "languages" in data else (),
                       "languages must list the languages every text needs, e.g. [en, de]")
            return [fallback]
        languages: list[str] = []
        for index, language in enumerate(value):
            if not isinstance(language, str) or not LANGUAGE_CODE.match(language):
                self.error(("languages", index), f"'{language}' is not a language code such "
                           "as en or de")
            elif language in languages:
                self.error(("languages", index), f"language '{language}' is listed twice")
            else:
                languages.append(language)
        if fallback not in languages:
            self.error(("languages",), f"languages must include '{fallback}': callers in "
                       "other languages get it")
        return languages

    def unknown_keys(self, data: dict[str, Any], path: Path, allowed: typing.Sequence[str],
                     where: str) -> None:
        """Note every key of `data` that is not `allowed`, with a did-you-mean."""
        for key in data:
            if key not in allowed:
                hint = did_you_mean(str(key), allowed) or f"; expected one of: {', '.join(allowed)}"
                self.error((*path, key), f"unknown key '{key}' {where}{hint}", at_key=True)
