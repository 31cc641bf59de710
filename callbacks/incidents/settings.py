"""The incidents file (`flows/incidents.yaml`, IVR_INCIDENTS_FILE): when the desk suggests an
incident, how categories are named to callers, and what the menu says about open incidents.

Read once per process and checked like the other settings files: an unknown key, a missing
translation, a number out of range or a placeholder the line cannot fill in is reported as
file:line:column, and the line refuses to start with it.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from routing.errors import FlowError, FlowInvalid
from routing.field_problems import did_you_mean
from routing.loader import compose_tree, read_settings_file
from routing.settings_reader import LANGUAGE_CODE, LocatedReader

MAX_FILE_BYTES = 64 * 1024
MAX_PROMPT_LENGTH = 1000
FALLBACK = "en"
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
CATEGORIES = ("password", "network", "hardware", "software", "vdi", "outage", "other")
"""The demo flow's ticket categories; each needs a topic name in every language."""
PROMPTS: dict[str, frozenset[str]] = {
    "announcement": frozenset({"topic", "title"}),
    "subscribe": frozenset({"key"}),
    "subscribed": frozenset(),
    "cannot_text": frozenset(),
}
"""What the menu says about open incidents, with the placeholders each may use."""
TICKETS_RANGE, MINUTES_RANGE = (2, 1000), (1, 1440)


@dataclass(frozen=True)
class SuggestRule:
    """Suggest an incident when this many tickets of a category arrive within these minutes."""

    tickets: int = 5
    minutes: int = 30


@dataclass(frozen=True)
class IncidentSettings:
    """The suggestion rules, the topic names and the menu's words, per language."""

    languages: tuple[str, ...] = (FALLBACK,)
    suggest: SuggestRule = SuggestRule()
    categories: Mapping[str, SuggestRule] = field(default_factory=dict)
    topics: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    prompts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def rule(self, category: str) -> SuggestRule:
        """The suggestion rule of a category (its own, else the default)."""
        return self.categories.get(category, self.suggest)

    def topic(self, category: str, language: str) -> str:
        """How callers speaking `language` hear a category named ('the VPN')."""
        names = self.topics.get(category) or self.topics.get("other") or {}
        return names.get(language) or names.get(FALLBACK) or category.replace("_", " ")

    def prompt(self, name: str, language: str, **values: str) -> str:
        """Prompt `name` in `language` (English when not translated), filled in."""
        texts = self.prompts[name]
        return (texts.get(language) or texts[FALLBACK]).format(**values)


def load_incident_settings(path: str | os.PathLike[str]) -> IncidentSettings:
    """Read an incidents file; FlowInvalid with every problem at file:line:column."""
    return parse_incident_settings(read_settings_file(path, MAX_FILE_BYTES), os.fspath(path))


def parse_incident_settings(text: str, filename: str) -> IncidentSettings:
    """The settings in YAML `text`; FlowInvalid naming `filename`:line:column."""
    if not text.strip():
        raise FlowInvalid([FlowError(filename, 1, 1, "the incidents file is empty")])
    return _Reader(compose_tree(text, filename), filename).settings()


def placeholder_problem(allowed: frozenset[str], text: str) -> str | None:
    """Why `text` cannot be filled in with `allowed` placeholders, or None."""
    try:
        used = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as error:
        return f"has a stray brace ({error}); write {{{{ or }}}} for a literal one"
    known = ", ".join(f"{{{p}}}" for p in sorted(allowed)) or "none"
    for name in used:
        if name not in allowed:
            return f"uses {{{name}}}, which the line cannot fill in; it knows: {known}"
    return None


class _Reader(LocatedReader):
    """Checks the located plain data of an incidents file and builds the settings."""

    def settings(self) -> IncidentSettings:
        data = self.tree.data
        if not isinstance(data, dict):
            self.error((), "the incidents file must be a mapping with 'languages', 'suggest', "
                       "'topics' and 'menu'")
            raise FlowInvalid(self.errors)
        self.unknown_keys(data, (), ("languages", "suggest", "topics", "menu"),
                          "at the top level")
        languages = self.text_languages(data, FALLBACK)
        suggest, categories = self.suggestions(data.get("suggest"), "suggest" in data)
        topics = self.topics(data.get("topics"), "topics" in data, languages)
        prompts = self.prompts(data.get("menu"), "menu" in data, languages)
        if self.errors:
            raise FlowInvalid(self.errors)
        return IncidentSettings(tuple(languages), suggest, categories, topics, prompts)

    def suggestions(self, value: Any, present: bool) -> tuple[SuggestRule, dict[str, SuggestRule]]:
        if not isinstance(value, dict):
            self.error(("suggest",) if present else (), "suggest must say when to suggest an "
                       "incident, e.g. {tickets: 5, minutes: 30, categories: {outage: "
                       "{tickets: 3, minutes: 15}}}", at_key=not present)
            return SuggestRule(), {}
        self.unknown_keys(value, ("suggest",), ("tickets", "minutes", "categories"),
                          "under 'suggest'")
        default = self.rule(("suggest",), value, SuggestRule())
        categories: dict[str, SuggestRule] = {}
        overrides = value.get("categories", {})
        if not isinstance(overrides, dict):
            self.error(("suggest", "categories"), "categories must map a category to its "
                       "{tickets: N, minutes: M}")
            return default, {}
        for category, rule in overrides.items():
            path = ("suggest", "categories", category)
            if not isinstance(category, str) or not _CATEGORY.match(category):
                self.error(path, f"'{category}' is not a category name such as network",
                           at_key=True)
                continue
            if not isinstance(rule, dict):
                self.error(path, f"category '{category}' must be {{tickets: N, minutes: M}}")
                continue
            self.unknown_keys(rule, path, ("tickets", "minutes"), f"under '{category}'")
            categories[category] = self.rule(path, rule, default)
        return default, categories

    def rule(self, path: tuple[str, ...], value: dict[str, Any],
             default: SuggestRule) -> SuggestRule:
        found: dict[str, int] = {}
        for name, (low, high) in (("tickets", TICKETS_RANGE), ("minutes", MINUTES_RANGE)):
            number = value.get(name, getattr(default, name))
            if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
                self.error((*path, name), f"{name} must be a whole number from {low} to {high}, "
                           f"not {number!r}")
                number = getattr(default, name)
            found[name] = number
        return SuggestRule(**found)

    def topics(self, value: Any, present: bool,
               languages: list[str]) -> dict[str, dict[str, str]]:
        if not isinstance(value, dict):
            self.error(("topics",) if present else (), "topics must name each category to "
                       "callers per language, e.g. {network: {en: 'the VPN and the network'}}",
                       at_key=not present)
            return {}
        found: dict[str, dict[str, str]] = {}
        for category, names in value.items():
            path = ("topics", category)
            if not isinstance(category, str) or not _CATEGORY.match(category):
                self.error(path, f"'{category}' is not a category name such as network",
                           at_key=True)
                continue
            found[category] = self.translations(path, f"topic '{category}'", names, languages,
                                                frozenset())
        for category in CATEGORIES:
            if category not in value:
                self.error(("topics",), f"topic '{category}' is missing; callers hear it for "
                           f"{category} incidents"
                           f"{did_you_mean(category, [str(k) for k in value])}", at_key=True)
        return found

    def prompts(self, value: Any, present: bool,
                languages: list[str]) -> dict[str, dict[str, str]]:
        if not isinstance(value, dict):
            self.error(("menu",) if present else (), "menu must hold the words said about "
                       "open incidents: " + ", ".join(PROMPTS), at_key=not present)
            return {}
        self.unknown_keys(value, ("menu",), tuple(PROMPTS), "under 'menu'")
        found: dict[str, dict[str, str]] = {}
        for name, allowed in PROMPTS.items():
            if name not in value:
                self.error(("menu",), f"menu text '{name}' is missing", at_key=True)
                continue
            found[name] = self.translations(("menu", name), f"menu text '{name}'", value[name],
                                            languages, allowed)
        return found

    def translations(self, path: tuple[str, ...], what: str, value: Any, languages: list[str],
                     allowed: frozenset[str]) -> dict[str, str]:
        if not isinstance(value, dict):
            self.error(path, f"{what} must map languages to words, e.g. {{en: '...'}}")
            return {}
        found: dict[str, str] = {}
        for language, text in value.items():
            where = (*path, language)
            if not isinstance(language, str) or not LANGUAGE_CODE.match(language):
                self.error(where, f"{what}: '{language}' is not a language code such as en or "
                           "de", at_key=True)
                continue
            if not isinstance(text, str) or not text.strip():
                self.error(where, f"{what} ({language}) must be some text")
                continue
            if len(text) > MAX_PROMPT_LENGTH:
                self.error(where, f"{what} ({language}) is longer than {MAX_PROMPT_LENGTH} "
                           "characters")
            problem = placeholder_problem(allowed, text)
            if problem:
                self.error(where, f"{what} ({language}) {problem}")
            found[language] = text.strip()
        for language in languages:
            if language not in value:
                self.error(path, f"{what} has no '{language}' translation", at_key=True)
        return found
