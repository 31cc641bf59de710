"""Checks a schema cannot make: targets, reachability, loops, languages, numbers and hours."""

from __future__ import annotations

import difflib
import functools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays
import phonenumbers

from routing.callback_choices import callback_calendar, offers_windows
from routing.callback_texts import BUILT_IN, needed_texts, placeholder_problem
from routing.errors import FlowError
from routing.flow import (
    WAITING_TYPES,
    WEEKDAYS,
    Calendar,
    CallbackNode,
    Flow,
    QueueNode,
    Rota,
    TicketNode,
)
from routing.hours import parse_day_spec, parse_time_range
from routing.incident_checks import check_menu_incidents
from routing.oncall import ShiftSpan, override_period, parse_clock, shift_spans
from routing.queue_checks import check_queue
from routing.ticket_texts import BUILT_IN as TICKET_BUILT_IN
from routing.ticket_texts import placeholder_problem as ticket_placeholder_problem

Path = tuple[str | int, ...]
Locate = Callable[[Path], tuple[int, int]]

TARGET_FIELDS = ("next", "on_failure", "open", "closed", "holiday", "on_no_answer")
QUEUE_TARGET_FIELDS = ("callback", "voicemail", "overflow")
"""A queue node's ways out ('callback' is a flag, not a target, on voicemail nodes)."""
PROMPT_FIELDS = ("text", "prompt", "invalid", "no_input")
MAX_LOOPS_REPORTED = 20
MAX_LOOP_STEPS = 20_000  # bounds the cycle search on pathological graphs


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
        self.reference_errors = 0

    def error(self, path: Path, message: str, *, at_key: bool = False) -> None:
        line, column = (self.locate_key if at_key else self.locate)(path)
        self.errors.append(FlowError(self.filename, line, column, message))

    def run(self) -> None:
        self.check_targets()
        self.reference_errors = len(self.errors)
        self.check_reachable()
        self.check_waiting_loops()
        self.check_languages()
        self.check_phone_numbers()
        self.check_transfers()
        self.check_calendars()
        self.check_rotas()
        self.check_menu_keywords()
        check_menu_incidents(self)
        for node_id, node in self.flow.nodes.items():
            if isinstance(node, CallbackNode):
                self.check_callback(node_id, node)
            elif isinstance(node, QueueNode):
                check_queue(self, node_id, node)
            elif isinstance(node, TicketNode):
                self.check_ticket(node_id, node)

    # --- graph ---------------------------------------------------------------

    def edges(self, node_id: str) -> Iterator[tuple[Path, str, str]]:
        """(path of the target value, field label, target) for each way out of a node."""
        node = self.flow.nodes[node_id]
        if node.type == "menu":
            for key, option in node.options.items():
                yield ("nodes", node_id, "options", key, "next"), f"option '{key}'", option.next
        fields = QUEUE_TARGET_FIELDS if node.type == "queue" else TARGET_FIELDS
        for field in fields:
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
        """Nodes no path from 'start' reaches, reported only once every reference resolves:
        one misspelt node name would otherwise bury its own error under every node it cuts
        off."""
        if self.reference_errors:
            return
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
        # A queue node waits, except that with nobody signed in it overflows at once.
        nodes = self.flow.nodes
        busy = [n for n, node in nodes.items()
                if node.type not in WAITING_TYPES or node.type == "queue"]
        busy_set = set(busy)

        def onward(n: str) -> list[str]:
            node = nodes[n]
            targets = [node.overflow] if node.type == "queue" else self.successors(n)
            return [t for t in targets if t in busy_set]

        graph = {n: onward(n) for n in busy}
        for cycle in _loops(busy, graph):
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

    # --- on-call rotas ---------------------------------------------------------

    def check_rotas(self) -> None:
        for name, rota in self.flow.rotas.items():
            self.check_rota(name, rota)
        for node_id, node in self.flow.nodes.items():
            if node.type == "oncall" and node.rota not in self.flow.rotas:
                self.error(
                    ("nodes", node_id, "rota"),
                    f"oncall '{node_id}' rota '{node.rota}' is not under 'rotas'"
                    f"{did_you_mean(node.rota, self.flow.rotas)}",
                )

    def check_rota(self, name: str, rota: Rota) -> None:
        base: Path = ("rotas", name)
        problem = timezone_problem(rota.timezone)
        if problem:
            self.error((*base, "timezone"), f"rota '{name}' {problem}")
        if rota.calendar is not None and rota.calendar not in self.flow.calendars:
            self.error((*base, "calendar"), f"rota '{name}' calendar '{rota.calendar}' is not "
                       f"under 'calendars'{did_you_mean(rota.calendar, self.flow.calendars)}")
        for person, number in rota.people.items():
            self.check_number((*base, "people", person), f"rota '{name}' {person}", number)
        self.check_shifts(name, rota)
        if rota.holidays is not None:
            self.check_person(name, rota, (*base, "holidays"), rota.holidays)
            if rota.calendar is None:
                self.error((*base, "holidays"), f"rota '{name}' has a holiday person but no "
                           "'calendar' to take public holidays and closed dates from")
        zone = None if problem else ZoneInfo(rota.timezone)
        periods: list[tuple[int, tuple[datetime, datetime]]] = []
        for index, override in enumerate(rota.overrides):
            path: Path = (*base, "overrides", index)
            self.check_person(name, rota, (*path, "person"), override.person)
            if zone is None:
                continue
            try:
                start, end = override_period(override, zone)
            except ValueError as exc:
                self.error(path, f"rota '{name}' override {index + 1} {exc}")
                continue
            for other, (other_start, other_end) in periods:
                if start < other_end and other_start < end:
                    self.error(path, f"rota '{name}' override {index + 1} overlaps override "
                               f"{other + 1}; say who is on duty once")
                    break
            periods.append((index, (start, end)))

    def check_shifts(self, name: str, rota: Rota) -> None:
        earlier: list[tuple[int, ShiftSpan]] = []
        for index, shift in enumerate(rota.weekly):
            path: Path = ("rotas", name, "weekly", index)
            self.check_person(name, rota, (*path, "person"), shift.person)
            times_ok = True
            for field, text, midnight in (("from", shift.from_, False), ("to", shift.to, True)):
                try:
                    parse_clock(text, allow_midnight_end=midnight)
                except ValueError as exc:
                    self.error((*path, field), f"rota '{name}' weekly shift {index + 1} "
                               f"'{field}': {exc}")
                    times_ok = False
            for day_index, day in enumerate(shift.days):
                if day in shift.days[:day_index]:
                    self.error((*path, "days", day_index),
                               f"rota '{name}' weekly shift {index + 1} lists {day} twice")
            if not times_ok:
                continue
            spans = shift_spans(shift)
            clash = next(((other, span.day) for span in spans for other, taken in earlier
                          if span.overlaps(taken)), None)
            if clash is not None:
                self.error(path, f"rota '{name}' weekly shift {index + 1} ({shift.person}, "
                           f"{shift.from_}-{shift.to}) overlaps shift {clash[0] + 1} "
                           f"({rota.weekly[clash[0]].person}) on {clash[1]}")
            earlier.extend((index, span) for span in spans)

    def check_person(self, name: str, rota: Rota, path: Path, person: str) -> None:
        if person not in rota.people:
            self.error(path, f"rota '{name}' names '{person}', who is not under its 'people'"
                       f"{did_you_mean(person, rota.people)}")

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


    # --- callbacks -------------------------------------------------------------

    def check_callback(self, node_id: str, node: CallbackNode) -> None:
        flow = self.flow
        base: Path = ("nodes", node_id)
        if node.calendar is not None and node.calendar not in flow.calendars:
            self.error(
                (*base, "calendar"),
                f"callback '{node_id}' calendar '{node.calendar}' is not under 'calendars'"
                f"{did_you_mean(node.calendar, flow.calendars)}",
            )
        elif node.windows and callback_calendar(flow, node) is None and (
            flow.calendars or "windows" in node.model_fields_set
        ):
            known = ", ".join(flow.calendars) or "none"
            self.error(
                (*base, "windows") if "windows" in node.model_fields_set else base,
                f"callback '{node_id}' offers windows but does not say which calendar they "
                f"count in; add 'calendar:' (calendars: {known}) or set 'windows: false'",
                at_key="windows" not in node.model_fields_set,
            )
        self.check_callback_texts(node_id, node)

    def check_callback_texts(self, node_id: str, node: CallbackNode) -> None:
        declared = self.flow.languages
        texts_path: Path = ("nodes", node_id, "texts")
        for name in needed_texts(node, offers_windows(self.flow, node)):
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
                self.error(
                    path,
                    f"callback '{node_id}' has no '{language}' text for '{name}' (built in: "
                    f"{built_in}); write it under 'texts: {name}: {language}:'",
                    at_key=at_key,
                )
        for name in type(node.texts).model_fields:
            override = getattr(node.texts, name)
            for language, text in (override or {}).items():
                path = (*texts_path, name, language)
                if language not in declared:
                    self.error(path, f"callback '{node_id}' text '{name}' has '{language}', "
                               "which 'languages' does not declare", at_key=True)
                problem = placeholder_problem(name, text)
                if problem:
                    self.error(path, f"callback '{node_id}' text '{name}' ({language}) {problem}")


    # --- ticket nodes (repeat callers) ---------------------------------------------

    def check_ticket(self, node_id: str, node: TicketNode) -> None:
        declared = self.flow.languages
        texts_path: Path = ("nodes", node_id, "texts")
        for name in TICKET_BUILT_IN:
            override = getattr(node.texts, name) or {}
            missing = [language for language in declared
                       if language not in override and language not in TICKET_BUILT_IN[name]]
            for language in missing:
                if override:
                    path, at_key = (*texts_path, name), False
                elif "texts" in node.model_fields_set:
                    path, at_key = texts_path, True
                else:
                    path, at_key = ("nodes", node_id), True
                self.error(path, f"ticket '{node_id}' has no '{language}' text for '{name}' "
                           f"(built in: {', '.join(TICKET_BUILT_IN[name])}); write it under "
                           f"'texts: {name}: {language}:'", at_key=at_key)
            for language, text in override.items():
                path = (*texts_path, name, language)
                if language not in declared:
                    self.error(path, f"ticket '{node_id}' text '{name}' has '{language}', "
                               "which 'languages' does not declare", at_key=True)
                problem = ticket_placeholder_problem(name, text)
                if problem:
                    self.error(path, f"ticket '{node_id}' text '{name}' ({language}) {problem}")
        if node.on_failure == node_id or node.next == node_id:
            field = "on_failure" if node.on_failure == node_id else "next"
            self.error(("nodes", node_id, field), f"ticket '{node_id}' {field} goes back to "
                       "itself; send the caller on, for example to the main menu")


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


def _loops(nodes: list[str], graph: dict[str, list[str]]) -> list[list[str]]:
    """Simple cycles, each once, starting at its node that comes first in `nodes`.

    Enumeration is capped; every tangle of nodes still gets at least one cycle reported.
    """
    order = {node_id: index for index, node_id in enumerate(nodes)}
    cycles: list[list[str]] = []
    budget = [MAX_LOOP_STEPS]
    for component in _strongly_connected(nodes, graph):
        members = set(component)
        first = min(component, key=order.__getitem__)
        if len(component) == 1 and first not in graph[first]:
            continue
        found = [
            cycle
            for start in sorted(component, key=order.__getitem__)
            for cycle in _cycles_from(start, graph, members, order, budget)
        ]
        cycles.extend(found or [_shortest_cycle(first, graph, members)])
    return cycles[:MAX_LOOPS_REPORTED]


def _cycles_from(
    start: str,
    graph: dict[str, list[str]],
    members: set[str],
    order: dict[str, int],
    budget: list[int],
) -> list[list[str]]:
    """Simple cycles through `start` whose other nodes come later in `order`."""
    cycles: list[list[str]] = []
    path = [start]
    pending = [iter(graph[start])]
    while pending and budget[0] > 0:
        budget[0] -= 1
        target = next(pending[-1], None)
        if target is None:
            pending.pop()
            path.pop()
        elif target == start:
            cycles.append(list(path))
        elif target in members and order[target] > order[start] and target not in path:
            path.append(target)
            pending.append(iter(graph[target]))
    return cycles


def _shortest_cycle(start: str, graph: dict[str, list[str]], members: set[str]) -> list[str]:
    """A shortest cycle from `start` back to itself inside one strongly connected set."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for target in graph[current]:
            if target == start:
                cycle = [current]
                while cycle[-1] != start:
                    cycle.append(came_from[cycle[-1]])
                return cycle[::-1]
            if target in members and target not in came_from:
                came_from[target] = current
                queue.append(target)
    return [start]


def _strongly_connected(nodes: list[str], graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components (Kosaraju, without recursion)."""
    finished: list[str] = []
    seen: set[str] = set()
    for root in nodes:
        if root in seen:
            continue
        seen.add(root)
        pending = [(root, iter(graph[root]))]
        while pending:
            node_id, successors = pending[-1]
            target = next(successors, None)
            if target is None:
                finished.append(node_id)
                pending.pop()
            elif target not in seen:
                seen.add(target)
                pending.append((target, iter(graph[target])))
    reverse: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for node_id in nodes:
        for target in graph[node_id]:
            reverse[target].append(node_id)
    components: list[list[str]] = []
    assigned: set[str] = set()
    for root in reversed(finished):
        if root in assigned:
            continue
        component, stack = [], [root]
        assigned.add(root)
        while stack:
            node_id = stack.pop()
            component.append(node_id)
            for source in reverse[node_id]:
                if source not in assigned:
                    assigned.add(source)
                    stack.append(source)
        components.append(component)
    return components
