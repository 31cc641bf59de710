"""Callback priorities: SLA due times under a fixed Berlin clock, priority rules, policy files."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callbacks.priority import (
    PriorityLevel,
    PriorityPolicy,
    load_policy,
    parse_duration,
    priority_for,
)
from routing.errors import FlowInvalid
from routing.flow import Calendar
from routing.hours import BusinessHours

BERLIN = ZoneInfo("Europe/Berlin")
POLICY_FILE = Path(__file__).resolve().parent.parent / "flows" / "priorities.yaml"


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Berlin wall-clock time."""
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


@pytest.fixture(scope="module")
def office() -> BusinessHours:
    """Weekdays 08:00-18:00 in Berlin, Berlin public holidays, 24 and 31 December closed."""
    calendar = Calendar.model_validate({
        "timezone": "Europe/Berlin",
        "hours": {"mon-fri": "08:00-18:00"},
        "holidays": {"country": "DE", "subdivision": "BE"},
        "closed": ["2026-12-24", "2026-12-31"],
    })
    return BusinessHours.from_calendar(calendar)


@pytest.fixture(scope="module")
def policy() -> PriorityPolicy:
    """The shipped flows/priorities.yaml."""
    return load_policy(POLICY_FILE)


def write(tmp_path: Path, text: str) -> Path:
    """A priorities file holding `text`."""
    path = tmp_path / "priorities.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(tmp_path: Path, text: str) -> list[str]:
    """The located problems load_policy reports for `text`."""
    with pytest.raises(FlowInvalid) as caught:
        load_policy(write(tmp_path, text))
    return [str(error).split(":", 1)[1] for error in caught.value.errors]


# --- the shipped policy -----------------------------------------------------------------


def test_shipped_policy(policy: PriorityPolicy) -> None:
    assert policy.names == ("P1", "P2", "P3", "P4")
    assert policy.level("P1") == PriorityLevel("P1", timedelta(minutes=15), False)
    assert policy.level("P4") == PriorityLevel("P4", timedelta(hours=10), True)
    assert policy.default == "P3"
    assert (policy.repeat_call_boost, policy.repeat_window) == (1, timedelta(hours=24))
    assert policy.department_priority("finance") == "P2"
    assert policy.department_priority("Sales") is None
    assert policy.department_priority(None) is None


def test_levels_rank_raise_and_most_urgent(policy: PriorityPolicy) -> None:
    assert [policy.rank(name) for name in policy.names] == [0, 1, 2, 3]
    assert policy.raise_by("P4", 1) == "P3"
    assert policy.raise_by("P3", 5) == "P1"
    assert policy.raise_by("P2", 0) == "P2"
    assert policy.most_urgent(None, "P3", "P2", None) == "P2"
    with pytest.raises(ValueError):
        policy.most_urgent(None)
    with pytest.raises(KeyError, match=r"unknown priority 'P5'.*expected one of: P1, P2, P3, P4"):
        policy.level("P5")


# --- due times --------------------------------------------------------------------------


def test_p1_is_wall_clock_even_at_closing_time(policy: PriorityPolicy, office: BusinessHours
                                                ) -> None:
    friday = berlin(2026, 3, 6, 17, 55)
    assert policy.due_at("P1", friday, office) == berlin(2026, 3, 6, 18, 10)


def test_p3_counts_business_hours_over_the_weekend(policy: PriorityPolicy,
                                                   office: BusinessHours) -> None:
    friday = berlin(2026, 3, 6, 17, 0)
    assert policy.due_at("P3", friday, office) == berlin(2026, 3, 9, 11, 0)


def test_p4_is_due_the_same_time_next_business_day(policy: PriorityPolicy,
                                                   office: BusinessHours) -> None:
    assert policy.due_at("P4", berlin(2026, 3, 3, 10, 0), office) == berlin(2026, 3, 4, 10, 0)
    # left after hours on Friday: a full business day from Monday's opening
    assert policy.due_at("P4", berlin(2026, 3, 6, 20, 0), office) == berlin(2026, 3, 9, 18, 0)


def test_holidays_and_closed_dates_stop_the_clock(policy: PriorityPolicy,
                                                  office: BusinessHours) -> None:
    # 24 Dec closed, 25/26 Dec public holidays, then the weekend
    assert policy.due_at("P3", berlin(2026, 12, 23, 16, 0), office) == berlin(2026, 12, 28, 10, 0)
    assert policy.due_at("P2", berlin(2026, 12, 24, 9, 0), office) == berlin(2026, 12, 28, 9, 0)


def test_without_a_calendar_targets_are_wall_clock(policy: PriorityPolicy) -> None:
    friday = berlin(2026, 3, 6, 17, 0)
    assert policy.due_at("P3", friday, None) == berlin(2026, 3, 6, 21, 0)


def test_not_before_moves_the_due_time_later_only(policy: PriorityPolicy,
                                                  office: BusinessHours) -> None:
    morning = berlin(2026, 3, 3, 9, 0)
    after_two = berlin(2026, 3, 3, 14, 0)
    assert policy.due_at("P1", morning, office, not_before=after_two) == after_two
    assert policy.due_at("P4", morning, office, not_before=after_two) == berlin(2026, 3, 4, 9, 0)


def test_earliest_deadline_first_ages_old_requests(policy: PriorityPolicy,
                                                   office: BusinessHours) -> None:
    now = berlin(2026, 3, 4, 10, 0)  # Wednesday
    old_p4 = policy.due_at("P4", now - timedelta(days=2), office)  # Monday 10:00
    fresh_p1 = policy.due_at("P1", now, office)
    fresh_p4 = policy.due_at("P4", now, office)
    assert old_p4 == berlin(2026, 3, 3, 10, 0)
    assert old_p4 < fresh_p1 < fresh_p4
    queue = sorted([("fresh P1", fresh_p1), ("old P4", old_p4), ("fresh P4", fresh_p4)],
                   key=lambda item: item[1])
    assert [name for name, _ in queue] == ["old P4", "fresh P1", "fresh P4"]
    # a P4 from this morning is still behind the P1: its deadline is tomorrow
    assert policy.due_at("P4", berlin(2026, 3, 4, 8, 0), office) > fresh_p1


# --- priority_for -----------------------------------------------------------------------


def decide(policy: PriorityPolicy, **given: object) -> tuple[str, tuple[str, ...]]:
    """priority_for with nothing known unless given."""
    facts: dict[str, object] = {
        "menu_priority": None, "keyword_priority": None, "vip": False,
        "department_priority": None, "repeat_calls": 1, "outage": False,
    }
    facts.update(given)
    return priority_for(policy, **facts)  # type: ignore[arg-type]


def test_default_when_nothing_ranks(policy: PriorityPolicy) -> None:
    assert decide(policy) == ("P3", ("default: P3",))


def test_most_urgent_source_wins(policy: PriorityPolicy) -> None:
    priority, reasons = decide(policy, menu_priority="P3", keyword_priority="P2",
                               department_priority="P4")
    assert priority == "P2"
    assert reasons == ("menu: P3", "keywords: P2", "department: P4")


def test_menu_p4_stays_p4(policy: PriorityPolicy) -> None:
    assert decide(policy, menu_priority="P4")[0] == "P4"


def test_unknown_source_priority_is_ignored_with_a_reason(policy: PriorityPolicy) -> None:
    priority, reasons = decide(policy, menu_priority="P9")
    assert priority == "P3"
    assert reasons == ("menu priority 'P9' is not a level: ignored", "default: P3")


def test_vip_raises_one_level(policy: PriorityPolicy) -> None:
    assert decide(policy, menu_priority="P3", vip=True) == (
        "P2", ("menu: P3", "VIP caller: raised to P2"))
    assert decide(policy, menu_priority="P1", vip=True)[1][-1] == "VIP caller: already P1"


@pytest.mark.parametrize(("calls", "expected", "reason"), [
    (1, "P4", None),
    (2, "P3", "2nd call in 24 h: raised one level"),
    (3, "P2", "3rd call in 24 h: raised two levels"),
    (4, "P2", "4th call in 24 h: raised two levels"),
    (9, "P2", "9th call in 24 h: raised two levels"),
])
def test_repeat_calls_raise_at_most_two_levels(policy: PriorityPolicy, calls: int,
                                               expected: str, reason: str | None) -> None:
    priority, reasons = decide(policy, menu_priority="P4", repeat_calls=calls)
    assert priority == expected
    assert reasons[-1] == (reason or "menu: P4")


def test_repeat_boost_from_the_policy() -> None:
    levels = tuple(PriorityLevel(f"P{n}", timedelta(hours=n), True) for n in range(1, 5))
    policy = PriorityPolicy(levels, "P3", repeat_call_boost=2, repeat_window=timedelta(hours=8))
    assert decide(policy, menu_priority="P4", repeat_calls=3) == (
        "P2", ("menu: P4", "3rd call in 8 h: raised two levels"))


def test_vip_and_repeats_stack(policy: PriorityPolicy) -> None:
    priority, reasons = decide(policy, menu_priority="P4", vip=True, repeat_calls=2)
    assert priority == "P2"
    assert reasons == ("menu: P4", "VIP caller: raised to P3", "2nd call in 24 h: raised one level")


def test_repeat_raising_may_start_later() -> None:
    levels = tuple(PriorityLevel(f"P{n}", timedelta(hours=n), True) for n in range(1, 5))
    policy = PriorityPolicy(levels, "P3", repeat_from_call=3)
    assert decide(policy, menu_priority="P4", repeat_calls=2) == ("P4", ("menu: P4",))
    assert decide(policy, menu_priority="P4", repeat_calls=3)[0] == "P3"


def test_outage_goes_to_the_top(policy: PriorityPolicy) -> None:
    priority, reasons = decide(policy, menu_priority="P4", outage=True)
    assert priority == "P1"
    assert reasons[-1] == "outage reported: P1"


# --- durations and policy files ---------------------------------------------------------


def test_durations() -> None:
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration("1d", day=timedelta(hours=10)) == timedelta(hours=10)
    for bad in ("", "15", "1.5h", "m", "1w", 15):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_wall_clock_day_is_24_hours(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, """\
levels:
  P1: {target: 1d, business_hours: false}
  P2: {target: 1d}
default: P2
"""))
    assert policy.level("P1").target == timedelta(hours=24)
    assert policy.level("P2").target == timedelta(hours=8)  # the default business day
    assert policy.department_priorities == {}


def test_unknown_keys_are_located_with_a_suggestion(tmp_path: Path) -> None:
    assert errors_of(tmp_path, """\
levels:
  P1: {target: 15m, buisness_hours: false}
  P2: {target: 1h}
default: P2
repeat_call:
  boost: 1
""") == [
        "2:21: unknown key 'buisness_hours' in level 'P1' (did you mean 'business_hours'?)",
        "5:1: unknown key 'repeat_call' at the top level (did you mean 'repeat_calls'?)",
    ]


def test_bad_durations_and_levels_are_located(tmp_path: Path) -> None:
    assert errors_of(tmp_path, """\
levels:
  P1: {target: 15 minutes, business_hours: false}
  P2: {target: 0m}
  P3: {business_hours: maybe}
default: P4
repeat_calls: {boost: -1, window: 1y}
departments: {Finance: P7}
""") == [
        "2:16: '15 minutes' is not a duration such as 15m, 4h, 1h30m or 1d",
        "3:16: '0m' is zero; a duration must be longer than that",
        "4:3: level 'P3' is missing 'target', e.g. 4h",
        "4:24: business_hours must be true or false (got 'maybe')",
        "5:10: unknown priority 'P4'; expected one of: P1, P2, P3",
        "6:23: boost must be a whole number of levels (0 turns it off), got -1",
        "6:35: '1y' is not a duration such as 15m, 4h, 1h30m or 1d",
        "7:24: unknown priority 'P7'; expected one of: P1, P2, P3",
    ]


def test_duplicate_level_is_located(tmp_path: Path) -> None:
    assert errors_of(tmp_path, """\
levels:
  P1: {target: 15m}
  P1: {target: 1h}
default: P1
""") == ["3:3: duplicate key 'P1' (first at line 2)"]


def test_missing_parts(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "default: P3\n") == [
        "1:1: levels must map each priority, most urgent first, to its target, e.g. "
        "{P1: {target: 15m, business_hours: false}, P2: {target: 1h}}",
    ]
    assert errors_of(tmp_path, "levels: {P1: {target: 1h}}\n") == [
        "1:1: missing 'default': the level of a request nothing else ranks",
    ]
    assert errors_of(tmp_path, "- P1\n") == [
        "1:1: the priorities file must be a mapping with 'levels' and 'default'",
    ]
    assert errors_of(tmp_path, "") == ["1:1: the priorities file is empty"]


def test_policy_checks_itself() -> None:
    level = PriorityLevel("P1", timedelta(minutes=15), False)
    with pytest.raises(KeyError):
        PriorityPolicy((level,), "P2")
    with pytest.raises(ValueError, match="listed twice"):
        PriorityPolicy((level, level), "P1")


# --- callers waiting on the line, and how work is matched to agents ----------------------------


def test_the_shipped_file_sets_live_targets_and_routing(policy: PriorityPolicy) -> None:
    assert [(level.name, level.target, level.max_wait) for level in policy.live.levels] == [
        ("P1", timedelta(seconds=60), timedelta(minutes=5)),
        ("P2", timedelta(minutes=2), timedelta(minutes=10)),
        ("P3", timedelta(minutes=3), timedelta(minutes=15)),
        ("P4", timedelta(minutes=5), timedelta(minutes=20)),
    ]
    assert policy.live.default == "P3"
    assert (policy.routing.topic_preference, policy.routing.level_bonus,
            policy.routing.ring_seconds) == (timedelta(minutes=2), timedelta(seconds=10), 20)


def test_live_due_times_are_wall_clock_and_unknown_levels_use_the_default(
        policy: PriorityPolicy) -> None:
    joined = berlin(2026, 12, 24, 17, 59)  # a closed date: live targets ignore the calendar
    assert policy.live.due_at("P1", joined) == joined + timedelta(seconds=60)
    assert policy.live.due_at(None, joined) == joined + timedelta(minutes=3)
    assert policy.live.level("P9").name == "P3"


def test_a_file_without_live_or_routing_keys_gets_the_defaults(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "levels: {P1: {target: 1h}}\ndefault: P1\n"))
    assert policy.live.default == "P3" and len(policy.live.levels) == 4
    assert policy.routing.ring_seconds == 20


def test_seconds_are_durations_too() -> None:
    assert parse_duration("45s") == timedelta(seconds=45)
    assert parse_duration("1m30s") == timedelta(seconds=90)


def test_bad_live_and_routing_keys_are_located(tmp_path: Path) -> None:
    assert errors_of(tmp_path, """\
levels: {P1: {target: 1h}}
default: P1
live:
  levels:
    P1: {target: 2m, max_wait: 1m}
    P2: {target: soon, max_wait: 10m, maxwait: 5m}
    P3: {target: 3m}
  default: P5
routing:
  topic_preference: 3h
  level_bonus: ten
  ring_seconds: 500
  ring: 5
""") == [
        "5:32: live level 'P1' max_wait '1m' is shorter than its target '2m'; callers would "
        "leave before they are due",
        "6:18: 'soon' is not a duration such as 45s, 2m or 1m30s",
        "6:39: unknown key 'maxwait' in live level 'P2' (did you mean 'max_wait'?)",
        "7:5: live level 'P3' is missing 'max_wait', e.g. 2m",
        "8:12: unknown priority 'P5'; expected one of: P1, P2, P3",
        "10:21: topic_preference '3h' is more than an hour; items of other topics would wait "
        "for hours",
        "11:16: 'ten' is not a duration such as 45s, 2m or 1m30s",
        "12:17: ring_seconds must be a whole number of seconds from 5 to 120, got 500",
        "13:3: unknown key 'ring' in routing; expected one of: topic_preference, "
        "level_bonus, ring_seconds",
    ]


def test_live_needs_levels_and_a_default(tmp_path: Path) -> None:
    base = "levels: {P1: {target: 1h}}\ndefault: P1\n"
    assert errors_of(tmp_path, base + "live: fast\n") == [
        "3:7: live must be a mapping with 'levels' and 'default', e.g. {levels: {P1: "
        "{target: 60s, max_wait: 5m}}, default: P1}"]
    assert errors_of(tmp_path, base + "live: {levels: {P1: {target: 1m, max_wait: 5m}}}\n") == [
        "3:1: missing 'default' in live: the level of a caller nothing else ranks"]
