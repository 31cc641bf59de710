"""Texts to callers (SMS), from a YAML file admins edit: one per name and language.

The file (`flows/texts.yaml`, IVR_TEXTS_FILE) declares the languages every text must have and
then each text by name. It is read once per process and checked like the other settings
files: an unknown name, a missing text or translation, or a placeholder the line cannot fill
in is reported as file:line:column, and the line refuses to start with it. Code asks for a
text with `callbacks.sms.sms_text(name, language, **values)`; a language the file does not
have gets English.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routing.errors import FlowError, FlowInvalid
from routing.field_problems import did_you_mean
from routing.loader import compose_tree, read_settings_file
from routing.node_texts import unknown_placeholder
from routing.settings_reader import LANGUAGE_CODE, LocatedReader

MAX_TEXTS_BYTES = 128 * 1024
MAX_TEXT_LENGTH = 1600
"""Twilio's longest message body."""
FALLBACK = "en"

STATUS_TEXTS = ("assigned", "in_progress", "waiting_for_caller", "resolved", "closed",
                "reopened")
"""The status changes a caller is texted about, each with its text `status_<name>`."""

PLACEHOLDERS: dict[str, frozenset[str]] = {
    "ticket_created": frozenset({"number"}),
    "callback_queued": frozenset({"number"}),
    "callback_unreachable": frozenset({"attempts", "about"}),
    "ticket_about": frozenset({"number"}),
    "survey_question": frozenset(),
    "survey_after_call": frozenset({"about"}),
    "survey_thanks": frozenset(),
    "survey_help": frozenset(),
    **{f"status_{status}": frozenset({"number", "note"}) for status in STATUS_TEXTS},
    "reply": frozenset({"number", "text"}),
    "incident_resolved": frozenset({"number", "title", "topic", "note"}),
}
"""Every text the line sends, with the placeholders it fills in."""


@dataclass(frozen=True)
class SmsTexts:
    """The texts by name, each by language."""

    texts: Mapping[str, Mapping[str, str]]
    languages: tuple[str, ...] = (FALLBACK,)

    def text(self, name: str, language: str, **values: str) -> str:
        """Text `name` in `language` (English when the file has no translation), filled in."""
        texts = self.texts[name]
        return (texts.get(language) or texts[FALLBACK]).format(**values)

    def language_of(self, name: str, language: str) -> str:
        """The language a caller speaking `language` gets text `name` in."""
        return language if language in self.texts[name] else FALLBACK


def load_texts(path: str | os.PathLike[str]) -> SmsTexts:
    """Read a texts file; FlowInvalid with every problem at file:line:column."""
    return parse_texts(read_settings_file(path, MAX_TEXTS_BYTES), os.fspath(path))


def parse_texts(text: str, filename: str) -> SmsTexts:
    """The texts in YAML `text`; FlowInvalid naming `filename`:line:column."""
    if not text.strip():
        raise FlowInvalid([FlowError(filename, 1, 1, "the texts file is empty")])
    return _TextsReader(compose_tree(text, filename), filename).texts()


def placeholder_problem(name: str, text: str) -> str | None:
    """Why text `name` cannot be filled in (an unknown {placeholder}, a stray brace), or None."""
    return unknown_placeholder(text, PLACEHOLDERS.get(name, frozenset()))


class _TextsReader(LocatedReader):
    """Checks the located plain data of a texts file and builds the texts."""

    def texts(self) -> SmsTexts:
        data = self.tree.data
        if not isinstance(data, dict):
            self.error((), "the texts file must be a mapping with 'languages' and 'texts'")
            raise FlowInvalid(self.errors)
        self.unknown_keys(data, (), ("languages", "texts"), "at the top level")
        languages = self.text_languages(data, FALLBACK)
        found: dict[str, dict[str, str]] = {}
        value = data.get("texts")
        if not isinstance(value, dict):
            self.error(("texts",) if "texts" in data else (),
                       "texts must map each text's name to its translations, e.g. "
                       "{ticket_created: {en: 'Your ticket number is {number}.'}}")
            raise FlowInvalid(self.errors)
        for name, translations in value.items():
            path = ("texts", name)
            if name not in PLACEHOLDERS:
                self.error(path, f"unknown text '{name}'{did_you_mean(str(name), PLACEHOLDERS)}"
                           "; the line sends: " + ", ".join(PLACEHOLDERS), at_key=True)
                continue
            found[name] = self.translations(str(name), translations, languages)
        for name in PLACEHOLDERS:
            if name not in value:
                self.error(("texts",), f"text '{name}' is missing; the line sends it",
                           at_key=True)
        if self.errors:
            raise FlowInvalid(self.errors)
        return SmsTexts(found, tuple(languages))

    def translations(self, name: str, value: Any, languages: list[str]) -> dict[str, str]:
        path = ("texts", name)
        if not isinstance(value, dict):
            self.error(path, f"text '{name}' must map languages to texts, e.g. {{en: '...'}}")
            return {}
        found: dict[str, str] = {}
        for language, text in value.items():
            where = (*path, language)
            if not isinstance(language, str) or not LANGUAGE_CODE.match(language):
                self.error(where, f"text '{name}': '{language}' is not a language code such "
                           "as en or de", at_key=True)
                continue
            if not isinstance(text, str) or not text.strip():
                self.error(where, f"text '{name}' ({language}) must be some text")
                continue
            if len(text) > MAX_TEXT_LENGTH:
                self.error(where, f"text '{name}' ({language}) is longer than "
                           f"{MAX_TEXT_LENGTH} characters, the most one SMS can carry")
            problem = placeholder_problem(name, text)
            if problem:
                self.error(where, f"text '{name}' ({language}) {problem}")
            found[language] = text
        for language in languages:
            if language not in value:
                self.error(path, f"text '{name}' has no '{language}' translation", at_key=True)
        return found
