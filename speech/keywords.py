"""Keyword rules: words in a transcript that point to a ticket category and a priority.

Matching is on whole words after normalisation: case-folded, accents removed from Latin letters
(so "haslo" matches "hasło" and "Stoerung" does not, but "storung" matches "Störung"), "ł" read
as "l", "ё" as "е", punctuation and hyphens read as spaces ("wi-fi" = "wi fi"). A keyword may
be a phrase ("is down"); a word ending in "*" matches any word it starts ("hasł*" matches
"hasła", "hasłem"), which covers Polish, Russian and German inflection and Korean particles.

Classification: the category is the menu choice's if there is one, else that of the most urgent
keyword found (more keywords win a tie, then file order), else the default ("other"). The
priority is the most urgent of the menu's priority and those of the categories found; the
default ("P3") applies only when there is neither, so a menu's P4 stays P4. A menu priority
that is not one of the levels is ignored, and the reasons say so.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from routing.errors import FlowError, FlowInvalid
from routing.field_problems import did_you_mean
from routing.loader import compose_tree, read_settings_file
from routing.settings_reader import LocatedReader

MAX_RULES_BYTES = 256 * 1024
OTHER = "other"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_TOKEN = re.compile(r"\w+(\*?)")
_FOLD = str.maketrans({"ł": "l", "ё": "е", "đ": "d", "ø": "o", "æ": "ae", "œ": "oe"})
_TOP_KEYS = ("priorities", "default_priority", "default_category", "languages", "categories")
_CATEGORY_KEYS = ("priority", "keywords")

Path = tuple[str | int, ...]


def normalize(text: str) -> str:
    """`text` case-folded, with Latin accents removed and 'ё' read as 'е' (for matching)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    kept: list[str] = []
    for char in decomposed:
        # Marks on Latin letters go (ą -> a, ü -> u); others stay (й, Hangul jamo recompose).
        if unicodedata.combining(char) and kept and kept[-1] < "\u0250":
            continue
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def words(text: str) -> list[str]:
    """The normalised words of `text`, in order."""
    return [match.group(0) for match in re.finditer(r"\w+", normalize(text))]


@dataclass(frozen=True)
class Keyword:
    """One keyword or phrase as written, and the normalised words it matches."""

    text: str
    category: str
    language: str
    parts: tuple[str, ...]
    prefix: tuple[bool, ...]

    def found_in(self, text_words: Sequence[str]) -> bool:
        """Whether the phrase occurs in `text_words` as consecutive whole words (or prefixes)."""
        size = len(self.parts)
        for start in range(len(text_words) - size + 1):
            if all(
                text_words[start + i].startswith(part)
                if self.prefix[i]
                else text_words[start + i] == part
                for i, part in enumerate(self.parts)
            ):
                return True
        return False


@dataclass(frozen=True)
class Classification:
    """The category and priority a voicemail gets, the keywords found and why."""

    category: str
    priority: str
    matched: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class KeywordRules:
    """Keywords per language and category, each category with a priority level."""

    priorities: tuple[str, ...]
    default_priority: str
    languages: tuple[str, ...]
    categories: Mapping[str, str]
    keywords: Mapping[str, tuple[Keyword, ...]] = field(default_factory=dict)
    default_category: str = OTHER

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeywordRules:
        """Read a keywords YAML file; FlowInvalid with every problem at file:line:column."""
        return cls.parse(read_settings_file(path, MAX_RULES_BYTES), os.fspath(path))

    @classmethod
    def parse(cls, text: str, filename: str) -> KeywordRules:
        """Keyword rules from YAML `text`; FlowInvalid naming `filename`:line:column."""
        if not text.strip():
            raise FlowInvalid([FlowError(filename, 1, 1, "the keywords file is empty")])
        return _Reader(compose_tree(text, filename), filename).rules()

    def rank(self, priority: str) -> int:
        """Position of `priority` in the levels, 0 being the most urgent."""
        return self.priorities.index(priority)

    def classify(
        self,
        text: str,
        language: str,
        *,
        menu_category: str | None = None,
        menu_priority: str | None = None,
    ) -> Classification:
        """Category and priority for a transcript in `language`, given the caller's menu path."""
        reasons: list[str] = []
        if menu_priority is not None and menu_priority not in self.priorities:
            # A flow may name a level these rules lack; the voicemail must still get a ticket.
            reasons.append(f"menu priority '{menu_priority}' is not one of "
                           f"{', '.join(self.priorities)}: ignored")
            menu_priority = None
        text_words = words(text)
        found = [kw for kw in self.keywords.get(language, ()) if kw.found_in(text_words)]
        counts: dict[str, int] = {}
        for keyword in found:
            counts[keyword.category] = counts.get(keyword.category, 0) + 1
        order = list(self.categories)
        ranked = sorted(
            counts,
            key=lambda name: (self.rank(self.categories[name]), -counts[name], order.index(name)),
        )
        if menu_category:
            category = menu_category
            reasons.append(f"category '{menu_category}' from the menu choice")
        elif ranked:
            category = ranked[0]
            reasons.append(f"category '{category}' from the keywords")
        else:
            category = self.default_category
            reasons.append(f"no keyword found: category '{category}'")
        for keyword in sorted(found, key=lambda kw: ranked.index(kw.category)):
            level = self.categories[keyword.category]
            reasons.append(f"keyword '{keyword.text}': {keyword.category} ({level})")
        levels = [self.categories[name] for name in ranked]
        if menu_priority is not None:
            levels.append(menu_priority)
            reasons.append(f"menu priority {menu_priority}")
        if levels:
            priority = min(levels, key=self.rank)
        else:
            priority = self.default_priority
            reasons.append(f"default priority {priority}")
        matched = tuple(dict.fromkeys(kw.text for kw in found))
        return Classification(category, priority, matched, tuple(reasons))


class _Reader(LocatedReader):
    """Checks the located plain data of a keywords file and builds the rules."""

    def rules(self) -> KeywordRules:
        data = self.tree.data
        if not isinstance(data, dict):
            self.error((), "the keywords file must be a mapping with 'priorities' and 'categories'")
            raise FlowInvalid(self.errors)
        self.unknown_keys(data, (), _TOP_KEYS, "at the top level")
        priorities = self.priorities(data)
        default_priority = data.get("default_priority", "P3" if "P3" in priorities else None)
        if default_priority is None and priorities:
            default_priority = priorities[-1]
        if priorities and default_priority not in priorities:
            self.unknown_priority(("default_priority",), default_priority, priorities)
        default_category = data.get("default_category", OTHER)
        if not isinstance(default_category, str) or not _NAME.match(default_category):
            self.error(("default_category",), "default_category must be a name such as 'other'")
        languages = self.languages(data)
        categories, keywords = self.categories(data, priorities, languages)
        if self.errors:
            raise FlowInvalid(self.errors)
        return KeywordRules(
            priorities=tuple(priorities),
            default_priority=str(default_priority),
            languages=tuple(languages),
            categories=categories,
            keywords={lang: tuple(kws) for lang, kws in keywords.items()},
            default_category=str(default_category),
        )

    def priorities(self, data: dict[str, Any]) -> list[str]:
        value = data.get("priorities")
        if value is None:
            self.error((), "missing 'priorities': the levels from most to least urgent, e.g. "
                       "[P1, P2, P3, P4]")
            return []
        if not isinstance(value, list) or not value:
            self.error(("priorities",), "priorities must be a non-empty list such as [P1, P2, P3]")
            return []
        levels: list[str] = []
        for index, level in enumerate(value):
            if not isinstance(level, str) or not level.strip():
                self.error(("priorities", index), "a priority level must be a name such as P1")
            elif level in levels:
                self.error(("priorities", index), f"priority '{level}' is listed twice")
            else:
                levels.append(level)
        return levels

    def languages(self, data: dict[str, Any]) -> list[str]:
        value = data.get("languages")
        if not isinstance(value, list) or not value:
            self.error(("languages",) if "languages" in data else (),
                       "languages must list the language codes keywords are given in, "
                       "e.g. [en, de]")
            return []
        found: list[str] = []
        for index, code in enumerate(value):
            if not isinstance(code, str) or not _LANGUAGE.match(code):
                self.error(("languages", index),
                           f"'{code}' is not a language code of 2 or 3 lowercase letters")
            elif code in found:
                self.error(("languages", index), f"language '{code}' is listed twice")
            else:
                found.append(code)
        return found

    def unknown_priority(self, path: Path, level: Any, priorities: Sequence[str]) -> None:
        hint = did_you_mean(str(level), priorities)
        self.error(path, f"unknown priority '{level}'{hint}; expected one of: "
                   f"{', '.join(priorities)}")

    def categories(
        self, data: dict[str, Any], priorities: list[str], languages: list[str]
    ) -> tuple[dict[str, str], dict[str, list[Keyword]]]:
        value = data.get("categories")
        categories: dict[str, str] = {}
        keywords: dict[str, list[Keyword]] = {lang: [] for lang in languages}
        if not isinstance(value, dict) or not value:
            self.error(("categories",) if "categories" in data else (),
                       "categories must map each category name to its priority and keywords")
            return categories, keywords
        seen: dict[tuple[str, tuple[str, ...], tuple[bool, ...]], tuple[str, Path]] = {}
        for name, spec in value.items():
            path: Path = ("categories", name)
            if not _NAME.match(name):
                self.error(path, f"category '{name}' must be lowercase letters, digits and '_'",
                           at_key=True)
            if not isinstance(spec, dict):
                self.error(path, f"category '{name}' must be a mapping with 'priority' and "
                           "'keywords'")
                continue
            self.unknown_keys(spec, path, _CATEGORY_KEYS, f"in category '{name}'")
            level = spec.get("priority")
            if level is None:
                self.error(path, f"category '{name}' is missing 'priority'", at_key=True)
            elif level not in priorities:
                if priorities:
                    self.unknown_priority((*path, "priority"), level, priorities)
            else:
                categories[name] = level
            for keyword, where in self.category_keywords(name, spec, path, languages):
                key = (keyword.language, keyword.parts, keyword.prefix)
                if key in seen:
                    other, _ = seen[key]
                    line = self.tree.locate(seen[key][1])[0]
                    self.error(where, f"keyword '{keyword.text}' ({keyword.language}) is also "
                               f"in category '{other}' (line {line})")
                    continue
                seen[key] = (name, where)
                keywords[keyword.language].append(keyword)
        return categories, keywords

    def category_keywords(self, name: str, spec: dict[str, Any], path: Path,
                          languages: list[str]) -> list[tuple[Keyword, Path]]:
        by_language = spec.get("keywords")
        if not isinstance(by_language, dict) or not by_language:
            where = (*path, "keywords") if "keywords" in spec else path
            self.error(where, f"category '{name}' needs 'keywords': a list per language",
                       at_key="keywords" not in spec)
            return []
        found: list[tuple[Keyword, Path]] = []
        for language, items in by_language.items():
            list_path: Path = (*path, "keywords", language)
            if language not in languages:
                hint = did_you_mean(language, languages)
                self.error(list_path, f"language '{language}' is not declared in 'languages'"
                           f"{hint}; declared: {', '.join(languages)}", at_key=True)
                continue
            if not isinstance(items, list) or not items:
                self.error(list_path, f"category '{name}' has an empty keyword list for "
                           f"'{language}'; remove the language or add keywords")
                continue
            for index, item in enumerate(items):
                keyword = self.keyword(item, name, language, (*list_path, index))
                if keyword is None:
                    continue
                if any(k.parts == keyword.parts and k.prefix == keyword.prefix
                       for k, _ in found if k.language == language):
                    self.error((*list_path, index), f"keyword '{item}' is listed twice")
                    continue
                found.append((keyword, (*list_path, index)))
        return found

    def keyword(self, item: Any, category: str, language: str, path: Path) -> Keyword | None:
        if not isinstance(item, str) or not item.strip():
            self.error(path, "a keyword must be non-empty text")
            return None
        folded = normalize(item)
        matches = list(_TOKEN.finditer(folded))
        leftover = _TOKEN.sub(" ", folded)
        if "*" in leftover:
            self.error(path, f"keyword '{item}': '*' may only end a word (as in 'passw*')")
            return None
        if not matches:
            self.error(path, f"keyword '{item}' has no letters or digits to match")
            return None
        parts = tuple(m.group(0).rstrip("*") for m in matches)
        prefix = tuple(bool(m.group(1)) for m in matches)
        short = [p for p, is_prefix in zip(parts, prefix, strict=True) if is_prefix and len(p) < 2]
        if short:
            self.error(path, f"keyword '{item}': '{short[0]}*' is too short to match on")
            return None
        return Keyword(item, category, language, parts, prefix)
