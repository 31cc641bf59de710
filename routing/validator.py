"""Checks a schema cannot make: targets, reachability, loops, languages, numbers and hours."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable, Iterator
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays
import phonenumbers

from routing.errors import FlowError
from routing.flow import WAITING_TYPES, WEEKDAYS, Calendar, Flow
from routing.hours import parse_day_spec, parse_time_range

Path = tuple[str | int, ...]
Locate = Callable[[Path], tuple[int, int]]

TARGET_FIELDS = ("next", "on_failure", "open", "closed", "holiday", "on_no_answer")
PROMPT_FIELDS = ("text", "prompt", "invalid", "no_input")
MAX_LOOPS_REPORTED = 20


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    choices = list(choices)
    folded = {choice.casefold(): choice for choice in choices}
    if word.casefold() in folded and folded[word.casefold()] != word:
        return f" (did you mean '{folded[word.casefold()]}'?)"
    matches = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def semantic_errors(
    flow: Flow,
    filename: str,
    locate: Locate,
    locate_key: Locate | None = None,
) -> list[FlowError]:
    """Every problem a schema cannot see, located via `locate(path)`, sorted in file order."""
    checks = _Checks(flow, filename, locate, locate_key or locate)
    checks.run()
    return sorted(set(checks.errors))


class _Checks:
    """One pass over a flow that collects located errors."""

    def __init__(self, flow: Flow, filename: str, locate: Locate, locate_key: Locate) -> None:
        self.flow = flow
        self.filename = filename
        self.locate = locate
        self.locate_key = locate_key
        self.errors: list[FlowError] = []

    def error(self, path: Path, message: str, *, at_key: bool = False) -> None:
        line, column = (self.locate_key if at_key else self.locate)(path)
        self.errors.append(FlowError(self.filename, line, column, message))

    def run(self) -> None:
        self.check_targets()
        self.check_reachable()
        self.check_waiting_loops()
        self.check_languages()
        self.check_phone_numbers()
        self.check_transfers()
        self.check_calendars()
        self.check_menu_keywords()

    # --- graph ---------------------------------------------------------------

    def edges(self, node_id: str) -> Iterator[tuple[Path, str, str]]:
        """(path of the target value, field label, target) for each way out of a node."""
        node = self.flow.nodes[node_id]
        if node.type == "menu":
            for key, option in node.options.items():
                yield ("nodes", node_id, "options", key, "next"), f"option '{key}'", option.next
        for field in TARGET_FIELDS:
            target = getattr(node, field, None)
            if target is not None:
                yield ("nodes", node_id, field), field, target

    def successors(self, node_id: str) -> list[str]:
        return [t for _, _, t in self.edges(node_id) if t in self.flow.nodes]

    def check_targets(self) -> None:
        nodes = self.flow.nodes
        if self.flow.start not in nodes:
            hint = did_you_mean(self.flow.start, nodes)
            self.error(("start",), f"'start' goes to unknown node '{self.flow.start}'{hint}")
        for node_id, node in nodes.items():
            for path, label, target in self.edges(node_id):
                if target not in nodes:
                    self.error(
                        path,
                        f"{node.type} '{node_id}' {label} goes to unknown node '{target}'"
                        f"{did_you_mean(target, nodes)}",
                    )

    def check_reachable(self) -> None:
        if self.flow.start not in self.flow.nodes:
            return  # already reported; every node would look unreachable
        seen = {self.flow.start}
        pending = [self.flow.start]
        while pending:
            for target in self.successors(pending.pop()):
                if target not in seen:
                    seen.add(target)
                    pending.append(target)
        for node_id in self.flow.nodes:
            if node_id not in seen:
                self.error(
                    ("nodes", node_id),
                    f"node '{node_id}' is never reached from 'start'",
                    at_key=True,
                )

    def check_waiting_loops(self) -> None:
        busy = [n for n, node in self.flow.nodes.items() if node.type not in WAITING_TYPES]
        order = {node_id: index for index, node_id in enumerate(busy)}
        graph = {n: [t for t in self.successors(n) if t in order] for n in busy}
        for cycle in _elementary_cycles(busy, graph, order, MAX_LOOPS_REPORTED):
            chain = " -> ".join(f"'{n}'" for n in [*cycle, cycle[0]])
            self.error(
                ("nodes", cycle[0]),
                f"nodes {chain} loop without waiting for the caller",
                at_key=True,
            )

    # --- languages -----------------------------------------------------------

    def check_languages(self) -> None:
        flow = self.flow
        declared = flow.languages
        if flow.default_language not in declared:
            self.error(
                ("default_language",),
                f"default_language '{flow.default_language}' is not one of the declared "
                f"languages: {', '.join(declared)}",
            )
        for index, language in enumerate(declared):
            if language in declared[:index]:
                self.error(("languages", index), f"language '{language}' is listed twice")
        for language in flow.voices:
            if language not in declared:
                self.error(
                    ("voices", language),
                    f"voice '{language}' is for a language 'languages' does not declare",
                    at_key=True,
                )
        for node_id, node in flow.nodes.items():
            required: Iterable[str] = declared
            if node.type == "language":
                required = dict.fromkeys(node.options.values())
                for key, language in node.options.items():
                    if language not in declared:
                        self.error(
                            ("nodes", node_id, "options", key),
                            f"language '{node_id}' option '{key}' offers '{language}', "
                            "which 'languages' does not declare",
                        )
            for field in PROMPT_FIELDS:
                prompt = getattr(node, field, None)
                if isinstance(prompt, dict):
                    self.check_prompt(node_id, field, prompt, required)
            if node.type == "menu":
                for key, option in node.options.items():
                    for language in option.keywords:
                        if language not in declared:
                            self.error(
                                ("nodes", node_id, "options", key, "keywords", language),
                                f"menu '{node_id}' option '{key}' has keywords for "
                                f"'{language}', which 'languages' does not declare",
                                at_key=True,
                            )

    def check_prompt(
        self, node_id: str, field: str, prompt: dict[str, str], required: Iterable[str]
    ) -> None:
        path: Path = ("nodes", node_id, field)
        for language in required:
            if language not in prompt:
                self.error(path, f"node '{node_id}' {field} has no '{language}' text")
        for language in prompt:
            if language not in self.flow.languages:
                self.error(
                    (*path, language),
                    f"node '{node_id}' {field} has text for '{language}', "
                    "which 'languages' does not declare",
                    at_key=True,
                )

    # --- phone numbers -------------------------------------------------------

    def check_phone_numbers(self) -> None:
        for index, number in enumerate(self.flow.numbers):
            self.check_number(("numbers", index), "numbers", number)
        for group, numbers in self.flow.groups.items():
            if not numbers:
                self.error(("groups", group), f"group '{group}' has no numbers")
            for index, number in enumerate(numbers):
                self.check_number(("groups", group, index), f"group '{group}'", number)
        for node_id, node in self.flow.nodes.items():
            if node.type == "transfer" and node.to is not None:
                self.check_number(("nodes", node_id, "to"), f"transfer '{node_id}' to", node.to)

    def check_number(self, path: Path, where: str, number: str) -> None:
        problem = phone_number_problem(number)
        if problem:
            self.error(path, f"{where}: {problem}")

    def check_transfers(self) -> None:
        for node_id, node in self.flow.nodes.items():
            if node.type != "transfer":
                continue
            if node.to is not None and node.group is not None:
                self.error(
                    ("nodes", node_id),
                    f"transfer '{node_id}' has both 'to' and 'group'; keep one",
                    at_key=True,
                )
            elif node.to is None and node.group is None:
                self.error(
                    ("nodes", node_id),
                    f"transfer '{node_id}' needs 'to' (an E.164 number) or 'group' "
                    "(a name under 'groups')",
                    at_key=True,
                )
            if node.group is not None and node.group not in self.flow.groups:
                self.error(
                    ("nodes", node_id, "group"),
                    f"transfer '{node_id}' group '{node.group}' is not under 'groups'"
                    f"{did_you_mean(node.group, self.flow.groups)}",
                )

    # --- calendars -----------------------------------------------------------

    def check_calendars(self) -> None:
        for name, calendar in self.flow.calendars.items():
            self.check_calendar(name, calendar)
        for node_id, node in self.flow.nodes.items():
            if node.type == "hours" and node.calendar not in self.flow.calendars:
                self.error(
                    ("nodes", node_id, "calendar"),
                    f"hours '{node_id}' calendar '{node.calendar}' is not under 'calendars'"
                    f"{did_you_mean(node.calendar, self.flow.calendars)}",
                )

    def check_calendar(self, name: str, calendar: Calendar) -> None:
        base: Path = ("calendars", name)
        problem = timezone_problem(calendar.timezone)
        if problem:
            self.error((*base, "timezone"), f"calendar '{name}' {problem}")
        first_key_of_day: dict[int, str] = {}
        for spec, value in calendar.hours.items():
            key_path: Path = (*base, "hours", spec)
            try:
                days = parse_day_spec(spec)
            except ValueError as exc:
                self.error(key_path, f"calendar '{name}' hours: {exc}", at_key=True)
                days = ()
            for day in days:
                if day in first_key_of_day:
                    self.error(
                        key_path,
                        f"calendar '{name}' hours '{spec}' lists {WEEKDAYS[day]} again "
                        f"(already in '{first_key_of_day[day]}'); each day may appear once",
                        at_key=True,
                    )
                else:
                    first_key_of_day[day] = spec
            self.check_ranges(name, spec, key_path, value)
        if calendar.holidays is not None:
            self.check_holidays(name, calendar)

    def check_ranges(self, name: str, spec: str, key_path: Path, value: list[str] | str) -> None:
        entries = (
            [(key_path, value)]
            if isinstance(value, str)
            else [((*key_path, index), text) for index, text in enumerate(value)]
        )
        parsed: list[tuple[str, time, time | None]] = []
        for path, text in entries:
            try:
                opens, closes = parse_time_range(text)
            except ValueError as exc:
                self.error(path, f"calendar '{name}' hours '{spec}': {exc}")
                continue
            for earlier, e_opens, e_closes in parsed:
                if _overlaps(opens, closes, e_opens, e_closes):
                    self.error(
                        path, f"calendar '{name}' hours '{spec}': '{text}' overlaps '{earlier}'"
                    )
                    break
            parsed.append((text, opens, closes))

    def check_holidays(self, name: str, calendar: Calendar) -> None:
        assert calendar.holidays is not None
        source = calendar.holidays
        path: Path = ("calendars", name, "holidays")
        supported = supported_holiday_countries()
        if source.country not in supported:
            self.error(
                (*path, "country"),
                f"calendar '{name}' holidays: country '{source.country}' is not supported by "
                f"the holidays package{did_you_mean(source.country, supported)}",
            )
        elif source.subdivision is not None:
            subdivisions = supported[source.country]
            if source.subdivision not in subdivisions:
                listed = ", ".join(subdivisions) if subdivisions else "none"
                self.error(
                    (*path, "subdivision"),
                    f"calendar '{name}' holidays: '{source.subdivision}' is not a subdivision "
                    f"of {source.country}{did_you_mean(source.subdivision, subdivisions)}; "
                    f"known: {listed}",
                )

    # --- menus ---------------------------------------------------------------

    def check_menu_keywords(self) -> None:
        for node_id, node in self.flow.nodes.items():
            if node.type != "menu":
                continue
            owner: dict[tuple[str, str], str] = {}
            for key, option in node.options.items():
                for language, words in option.keywords.items():
                    for index, word in enumerate(words):
                        normal = " ".join(word.casefold().split())
                        first = owner.setdefault((language, normal), key)
                        if first != key:
                            self.error(
                                ("nodes", node_id, "options", key, "keywords", language, index),
                                f"menu '{node_id}' keyword '{word}' ({language}) is used by "
                                f"options '{first}' and '{key}'; a keyword may pick one option",
                            )


def phone_number_problem(number: str) -> str | None:
    """Why `number` is not a valid E.164 phone number, or None when it is one."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        return f"'{number}' is not a valid phone number in E.164 form (+4930...)"
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if number != e164:
        return f"'{number}' is not written in E.164 form; write '{e164}'"
    return None


def timezone_problem(timezone: str) -> str | None:
    """Why `timezone` is not an IANA time zone name, or None when it is one."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return (
            f"timezone '{timezone}' is unknown"
            f"{did_you_mean(timezone, _timezones())}; use an IANA name such as "
            "'Europe/Berlin'"
        )
    return None


@functools.cache
def supported_holiday_countries() -> dict[str, list[str]]:
    """Country codes the holidays package knows, each with its subdivision codes."""
    return {country: list(subs) for country, subs in holidays.list_supported_countries().items()}


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _overlaps(
    opens: time, closes: time | None, other_opens: time, other_closes: time | None
) -> bool:
    end = closes or time.max
    other_end = other_closes or time.max
    return opens < other_end and other_opens < end


def _elementary_cycles(
    nodes: list[str], graph: dict[str, list[str]], order: dict[str, int], limit: int
) -> list[list[str]]:
    """Each simple cycle once, starting at its node that comes first in `nodes`."""
    cycles: list[list[str]] = []
    for start in nodes:
        stack: list[tuple[str, Any]] = [(start, iter(graph[start]))]
        on_path = [start]
        while stack and len(cycles) < limit:
            _, successors = stack[-1]
            target = next(successors, None)
            if target is None:
                stack.pop()
                on_path.pop()
            elif target == start:
                cycles.append(list(on_path))
            elif order[target] > order[start] and target not in on_path:
                stack.append((target, iter(graph[target])))
                on_path.append(target)
    return cycles
