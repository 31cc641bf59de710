"""Priorities: SLA levels, their due times, and how a request's priority is decided.

Callbacks are served earliest due time first, so an old P4 overtakes a fresh P1 once its
deadline is earlier: aging comes from the due times, not from bumping priorities later.
Callers waiting on the line have their own, shorter targets (`live:`), and `routing:` says how
much an agent's own topic counts when live calls and callbacks are matched to agents.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from routing.errors import FlowError, FlowInvalid
from routing.field_problems import did_you_mean
from routing.hours import BusinessHours
from routing.loader import compose_tree, read_settings_file
from routing.settings_reader import LocatedReader

MAX_POLICY_BYTES = 64 * 1024
MAX_REPEAT_LEVELS = 2
"""Repeat calls raise a priority by at most this many levels in total."""
DEFAULT_BUSINESS_DAY = timedelta(hours=8)
"""What '1d' means in a business-hours target when the file sets no 'business_day'."""

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_TOP_KEYS = ("levels", "default", "business_day", "repeat_calls", "departments", "live",
             "routing")
_LEVEL_KEYS = ("target", "business_hours")
_REPEAT_KEYS = ("boost", "window", "from_call")
_LIVE_KEYS = ("levels", "default")
_LIVE_LEVEL_KEYS = ("target", "max_wait")
_ROUTING_KEYS = ("topic_preference", "level_bonus", "ring_seconds")
_SECONDS_EXAMPLE = "such as 45s, 2m or 1m30s"

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class PriorityLevel:
    """One priority: its SLA target and whether that target counts only open business time."""

    name: str
    target: timedelta
    business_hours: bool


@dataclass(frozen=True)
class LiveLevel:
    """A priority for callers waiting on the line: answer within `target`, and after
    `max_wait` the queue node sends the caller on (its overflow: voicemail, a callback)."""

    name: str
    target: timedelta
    max_wait: timedelta


DEFAULT_LIVE_LEVELS = (
    LiveLevel("P1", timedelta(seconds=60), timedelta(minutes=5)),
    LiveLevel("P2", timedelta(minutes=2), timedelta(minutes=10)),
    LiveLevel("P3", timedelta(minutes=3), timedelta(minutes=15)),
    LiveLevel("P4", timedelta(minutes=5), timedelta(minutes=20)),
)


@dataclass(frozen=True)
class LivePolicy:
    """Answer targets of live callers, most urgent first, and the level of an unranked one."""

    levels: tuple[LiveLevel, ...] = DEFAULT_LIVE_LEVELS
    default: str = "P3"

    def level(self, name: str | None) -> LiveLevel:
        """The level called `name`; the default level for None or a name it does not have."""
        for level in self.levels:
            if level.name == name:
                return level
        return next(level for level in self.levels if level.name == self.default)

    def due_at(self, priority: str | None, entered_at: datetime) -> datetime:
        """When a caller who joined the line at `entered_at` should be answered (wall-clock)."""
        return entered_at + self.level(priority).target


@dataclass(frozen=True)
class RoutingRules:
    """How items are matched to agents: an item of the agent's own topic counts as due
    `topic_preference` sooner, and `level_bonus` sooner again per level on that topic."""

    topic_preference: timedelta = timedelta(minutes=2)
    level_bonus: timedelta = timedelta(seconds=10)
    ring_seconds: int = 20
    """How long an agent's phone rings for a live caller before it counts as not answered."""


@dataclass(frozen=True)
class PriorityPolicy:
    """The priority levels, most urgent first, and the rules that raise a request's level."""

    levels: tuple[PriorityLevel, ...]
    default: str
    repeat_call_boost: int = 1
    repeat_window: timedelta = timedelta(hours=24)
    department_priorities: Mapping[str, str] = field(default_factory=dict)
    repeat_from_call: int = 2
    live: LivePolicy = field(default_factory=LivePolicy)
    routing: RoutingRules = field(default_factory=RoutingRules)

    def __post_init__(self) -> None:
        names = [level.name for level in self.levels]
        if not names:
            raise ValueError("a priority policy needs at least one level")
        if len(set(names)) != len(names):
            raise ValueError(f"priority levels are listed twice: {', '.join(names)}")
        self.level(self.default)
        for department, name in self.department_priorities.items():
            if name not in names:
                raise ValueError(f"department '{department}' has unknown priority '{name}'")

    @property
    def names(self) -> tuple[str, ...]:
        """The level names, most urgent first."""
        return tuple(level.name for level in self.levels)

    def level(self, name: str) -> PriorityLevel:
        """The level called `name`; KeyError naming the known levels otherwise."""
        for level in self.levels:
            if level.name == name:
                return level
        raise KeyError(
            f"unknown priority '{name}'{did_you_mean(str(name), self.names)}; "
            f"expected one of: {', '.join(self.names)}"
        )

    def rank(self, name: str) -> int:
        """Position of `name` among the levels, 0 being the most urgent."""
        return self.levels.index(self.level(name))

    def raise_by(self, name: str, steps: int) -> str:
        """The level `steps` more urgent than `name`, stopping at the most urgent."""
        return self.levels[max(0, self.rank(name) - max(0, steps))].name

    def most_urgent(self, *names: str | None) -> str:
        """The most urgent of `names`, ignoring None; ValueError if none is given."""
        given = [name for name in names if name is not None]
        if not given:
            raise ValueError("most_urgent needs at least one priority")
        return min(given, key=self.rank)

    def department_priority(self, department: str | None) -> str | None:
        """The priority configured for a department (case-insensitive), if any."""
        if not department:
            return None
        wanted = department.strip().casefold()
        for name, level in self.department_priorities.items():
            if name.casefold() == wanted:
                return level
        return None

    def due_at(
        self,
        priority: str,
        requested_at: datetime,
        hours: BusinessHours | None,
        not_before: datetime | None = None,
    ) -> datetime:
        """When a callback of `priority` requested at `requested_at` must be made (its SLA)."""
        level = self.level(priority)
        if level.business_hours and hours is not None:
            due = hours.add_business_time(requested_at, level.target)
        else:
            due = requested_at + level.target
        if not_before is not None and not_before > due:
            return not_before
        return due


def priority_for(
    policy: PriorityPolicy,
    *,
    menu_priority: str | None,
    keyword_priority: str | None,
    vip: bool,
    department_priority: str | None,
    repeat_calls: int,
    outage: bool,
) -> tuple[str, tuple[str, ...]]:
    """A request's priority and the reasons for it, in the order the rules applied.

    `repeat_calls` counts this caller's calls within the policy's repeat window, this one
    included (1 = first call). From the policy's `from_call` on (the second call by default)
    each call raises by the policy's boost, two levels at most.
    """
    reasons: list[str] = []
    sources = (
        ("menu", menu_priority),
        ("keywords", keyword_priority),
        ("department", department_priority),
    )
    found: list[str] = []
    for source, name in sources:
        if name is None:
            continue
        if name not in policy.names:
            reasons.append(f"{source} priority '{name}' is not a level: ignored")
            continue
        reasons.append(f"{source}: {name}")
        found.append(name)
    if found:
        priority = policy.most_urgent(*found)
    else:
        priority = policy.default
        reasons.append(f"default: {priority}")
    if vip:
        raised = policy.raise_by(priority, 1)
        verb = "raised to" if raised != priority else "already"
        reasons.append(f"VIP caller: {verb} {raised}")
        priority = raised
    repeats = max(0, repeat_calls - policy.repeat_from_call + 1)
    steps = min(MAX_REPEAT_LEVELS, repeats * policy.repeat_call_boost)
    if steps:
        raised = policy.raise_by(priority, steps)
        heading = f"{_ordinal(repeat_calls)} call in {_span(policy.repeat_window)}"
        reasons.append(
            f"{heading}: raised {_levels(policy.rank(priority) - policy.rank(raised))}"
            if raised != priority
            else f"{heading}: already {raised}"
        )
        priority = raised
    if outage:
        priority = policy.levels[0].name
        reasons.append(f"outage reported: {priority}")
    return priority, tuple(reasons)


# --- reading flows/priorities.yaml ------------------------------------------------------


def load_policy(path: str | os.PathLike[str]) -> PriorityPolicy:
    """Read a priorities YAML file; FlowInvalid with every problem at file:line:column."""
    return parse_policy(read_settings_file(path, MAX_POLICY_BYTES), os.fspath(path))


def parse_policy(text: str, filename: str) -> PriorityPolicy:
    """A priority policy from YAML `text`; FlowInvalid naming `filename`:line:column."""
    if not text.strip():
        raise FlowInvalid([FlowError(filename, 1, 1, "the priorities file is empty")])
    return _PolicyReader(compose_tree(text, filename), filename).policy()


def parse_duration(text: Any, *, day: timedelta = timedelta(days=1),
                   example: str = "such as 15m, 4h, 1h30m or 1d") -> timedelta:
    """A duration such as '15m', '4h', '1h30m', '1d' ('d' is `day` long) or '45s'; ValueError
    (naming `example`) if not."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"'{text}' is not a duration {example}")
    days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return days * day + timedelta(hours=hours, minutes=minutes, seconds=seconds)


class _PolicyReader(LocatedReader):
    """Checks the located plain data of a priorities file and builds the policy."""

    def policy(self) -> PriorityPolicy:
        data = self.tree.data
        if not isinstance(data, dict):
            self.error((), "the priorities file must be a mapping with 'levels' and 'default'")
            raise FlowInvalid(self.errors)
        self.unknown_keys(data, (), _TOP_KEYS, "at the top level")
        business_day = self.business_day(data)
        levels = self.levels(data, business_day)
        # names with a bad target still count, so one typo does not cascade into more errors
        declared = data.get("levels")
        names = [str(name) for name in declared] if isinstance(declared, dict) else []
        default = data.get("default")
        if default is None:
            self.error((), "missing 'default': the level of a request nothing else ranks")
        elif names and default not in names:
            self.unknown_level(("default",), default, names)
        boost, window, from_call = self.repeat_calls(data)
        departments = self.departments(data, names)
        live = self.live(data)
        routing = self.routing(data)
        if self.errors:
            raise FlowInvalid(self.errors)
        return PriorityPolicy(tuple(levels), str(default), boost, window, departments,
                              repeat_from_call=from_call, live=live, routing=routing)

    def unknown_level(self, path: Path, name: Any, names: list[str]) -> None:
        self.error(path, f"unknown priority '{name}'{did_you_mean(str(name), names)}; "
                   f"expected one of: {', '.join(names)}")

    def duration(self, path: Path, value: Any, *, day: timedelta = timedelta(days=1),
                 example: str = "such as 15m, 4h, 1h30m or 1d") -> timedelta | None:
        try:
            result = parse_duration(value, day=day, example=example)
        except ValueError as exc:
            self.error(path, str(exc))
            return None
        if not result:
            self.error(path, f"'{value}' is zero; a duration must be longer than that")
            return None
        return result

    def business_day(self, data: dict[str, Any]) -> timedelta:
        if "business_day" not in data:
            return DEFAULT_BUSINESS_DAY
        value = data["business_day"]
        if isinstance(value, str) and "d" in value:
            self.error(("business_day",), "business_day is counted in hours, e.g. 10h")
            return DEFAULT_BUSINESS_DAY
        found = self.duration(("business_day",), value)
        if found is not None and found > timedelta(days=1):
            self.error(("business_day",), f"business_day '{value}' is longer than a day")
            return DEFAULT_BUSINESS_DAY
        return found or DEFAULT_BUSINESS_DAY

    def levels(self, data: dict[str, Any], business_day: timedelta) -> list[PriorityLevel]:
        value = data.get("levels")
        if not isinstance(value, dict) or not value:
            self.error(("levels",) if "levels" in data else (),
                       "levels must map each priority, most urgent first, to its target, "
                       "e.g. {P1: {target: 15m, business_hours: false}, P2: {target: 1h}}")
            return []
        levels: list[PriorityLevel] = []
        for name, spec in value.items():
            path: Path = ("levels", name)
            if not isinstance(spec, dict):
                self.error(path, f"level '{name}' must be a mapping with 'target' and "
                           "optionally 'business_hours'")
                continue
            self.unknown_keys(spec, path, _LEVEL_KEYS, f"in level '{name}'")
            in_business = spec.get("business_hours", True)
            if not isinstance(in_business, bool):
                self.error((*path, "business_hours"), "business_hours must be true or false "
                           f"(got {in_business!r})")
                in_business = True
            if "target" not in spec:
                self.error(path, f"level '{name}' is missing 'target', e.g. 4h", at_key=True)
                continue
            day = business_day if in_business else timedelta(days=1)
            target = self.duration((*path, "target"), spec["target"], day=day)
            if target is not None:
                levels.append(PriorityLevel(str(name), target, in_business))
        return levels

    def repeat_calls(self, data: dict[str, Any]) -> tuple[int, timedelta, int]:
        boost, window, from_call = 1, timedelta(hours=24), 2
        value = data.get("repeat_calls")
        if value is None:
            return boost, window, from_call
        if not isinstance(value, dict):
            self.error(("repeat_calls",), "repeat_calls must be a mapping with 'boost', "
                       "'window' and 'from_call', e.g. {boost: 1, window: 24h, from_call: 2}")
            return boost, window, from_call
        self.unknown_keys(value, ("repeat_calls",), _REPEAT_KEYS, "in repeat_calls")
        given = value.get("boost", boost)
        if isinstance(given, bool) or not isinstance(given, int) or given < 0:
            self.error(("repeat_calls", "boost"), "boost must be a whole number of levels "
                       f"(0 turns it off), got {given!r}")
        else:
            boost = given
        if "window" in value:
            window = self.duration(("repeat_calls", "window"), value["window"]) or window
        first = value.get("from_call", from_call)
        if isinstance(first, bool) or not isinstance(first, int) or first < 2:
            self.error(("repeat_calls", "from_call"), "from_call must be the first repeat call "
                       f"that raises the priority (2 or more), got {first!r}")
        else:
            from_call = first
        return boost, window, from_call

    def departments(self, data: dict[str, Any], names: list[str]) -> dict[str, str]:
        value = data.get("departments")
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(("departments",), "departments must map a department to a priority, "
                       "e.g. {Finance: P2}")
            return {}
        found: dict[str, str] = {}
        for department, level in value.items():
            if names and level not in names:
                self.unknown_level(("departments", department), level, names)
            else:
                found[str(department)] = str(level)
        return found


    def live(self, data: dict[str, Any]) -> LivePolicy:
        value = data.get("live")
        if value is None:
            return LivePolicy()
        shape = ("live must be a mapping with 'levels' and 'default', e.g. {levels: {P1: "
                 "{target: 60s, max_wait: 5m}}, default: P1}")
        if not isinstance(value, dict):
            self.error(("live",), shape)
            return LivePolicy()
        self.unknown_keys(value, ("live",), _LIVE_KEYS, "in live")
        given = value.get("levels")
        if not isinstance(given, dict) or not given:
            self.error(("live", "levels") if "levels" in value else ("live",), shape)
            return LivePolicy()
        levels: list[LiveLevel] = []
        for name, spec in given.items():
            path: Path = ("live", "levels", name)
            if not isinstance(spec, dict):
                self.error(path, f"live level '{name}' must be a mapping with 'target' and "
                           "'max_wait', e.g. {target: 2m, max_wait: 10m}")
                continue
            self.unknown_keys(spec, path, _LIVE_LEVEL_KEYS, f"in live level '{name}'")
            found = {}
            for key in _LIVE_LEVEL_KEYS:
                if key not in spec:
                    self.error(path, f"live level '{name}' is missing '{key}', e.g. 2m",
                               at_key=True)
                else:
                    found[key] = self.duration((*path, key), spec[key],
                                               example=_SECONDS_EXAMPLE)
            target, max_wait = found.get("target"), found.get("max_wait")
            if target is not None and max_wait is not None and max_wait < target:
                self.error((*path, "max_wait"), f"live level '{name}' max_wait "
                           f"'{spec['max_wait']}' is shorter than its target "
                           f"'{spec['target']}'; callers would leave before they are due")
            elif target is not None and max_wait is not None:
                levels.append(LiveLevel(str(name), target, max_wait))
        names = [str(name) for name in given]
        default = value.get("default")
        if default is None:
            self.error(("live",), "missing 'default' in live: the level of a caller nothing "
                       "else ranks", at_key=True)
            return LivePolicy()
        if str(default) not in names:
            self.unknown_level(("live", "default"), default, names)
            return LivePolicy()
        if len(levels) != len(names):
            return LivePolicy()  # errors noted; the policy is not built anyway
        return LivePolicy(tuple(levels), str(default))

    def routing(self, data: dict[str, Any]) -> RoutingRules:
        value = data.get("routing")
        if value is None:
            return RoutingRules()
        if not isinstance(value, dict):
            self.error(("routing",), "routing must be a mapping, e.g. {topic_preference: 2m, "
                       "level_bonus: 10s, ring_seconds: 20}")
            return RoutingRules()
        self.unknown_keys(value, ("routing",), _ROUTING_KEYS, "in routing")
        rules = RoutingRules()
        preference, bonus = rules.topic_preference, rules.level_bonus
        for key in ("topic_preference", "level_bonus"):
            if key in value:
                found = self.duration(("routing", key), value[key], example=_SECONDS_EXAMPLE)
                if found is not None and found > timedelta(hours=1):
                    self.error(("routing", key), f"{key} '{value[key]}' is more than an hour; "
                               "items of other topics would wait for hours")
                elif found is not None and key == "topic_preference":
                    preference = found
                elif found is not None:
                    bonus = found
        ring = value.get("ring_seconds", rules.ring_seconds)
        if isinstance(ring, bool) or not isinstance(ring, int) or not 5 <= ring <= 120:
            self.error(("routing", "ring_seconds"), "ring_seconds must be a whole number of "
                       f"seconds from 5 to 120, got {ring!r}")
            ring = rules.ring_seconds
        return RoutingRules(preference, bonus, ring)


def _ordinal(number: int) -> str:
    """'1st', '2nd', '3rd', '11th', '22nd'."""
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _span(duration: timedelta) -> str:
    """A window for people: '24 h', '30 min', '2 d'."""
    minutes = int(duration.total_seconds() // 60)
    if minutes % (24 * 60) == 0 and minutes >= 48 * 60:
        return f"{minutes // (24 * 60)} d"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def _levels(count: int) -> str:
    return {1: "one level", 2: "two levels"}.get(count, f"{count} levels")
