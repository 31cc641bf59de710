"""routing.oncall: who is on duty, in the rota's time zone, across holidays, DST and swaps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from routing.flow import Calendar, Rota
from routing.hours import BusinessHours
from routing.oncall import OnCall, OnCallRota, who_is_on_call

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
PEOPLE = {"anna": "+4930555040", "ben": "+4930555041", "carla": "+4930555042"}


def rota(document: dict[str, Any], calendar: dict[str, Any] | None = None) -> OnCallRota:
    """A compiled rota, with the business hours of `calendar` if one is given."""
    hours = BusinessHours.from_calendar(Calendar.model_validate(calendar)) if calendar else None
    return OnCallRota.from_rota("duty", Rota.model_validate(document), hours)


def berlin_rota(**changes: Any) -> OnCallRota:
    """Anna on weekday nights, Ben from Friday evening to Monday morning, Carla on holidays."""
    document: dict[str, Any] = {
        "timezone": "Europe/Berlin",
        "calendar": "office",
        "people": PEOPLE,
        "weekly": [
            {"days": ["mon", "tue", "wed", "thu"], "from": "18:00", "to": "08:00",
             "person": "anna"},
            {"days": ["fri"], "from": "18:00", "to": "08:00", "person": "ben"},
            {"days": ["sat", "sun"], "from": "08:00", "to": "08:00", "person": "ben"},
        ],
        "holidays": "carla",
    }
    document.update(changes)
    office = {"timezone": "Europe/Berlin", "hours": {"mon-fri": "08:00-18:00"},
              "holidays": {"country": "DE", "subdivision": "BE"}}
    return rota(document, office if document.get("calendar") else None)


def new_york_rota() -> OnCallRota:
    """Dana on Monday nights, Eli on the other weeknights, Gil at weekends; Fay on US holidays."""
    return rota(
        {
            "timezone": "America/New_York",
            "calendar": "us",
            "people": {"dana": "+12125550101", "eli": "+12125550102", "fay": "+12125550103",
                       "gil": "+12125550104"},
            "weekly": [
                {"days": ["mon"], "from": "18:00", "to": "08:00", "person": "dana"},
                {"days": ["tue", "wed", "thu", "fri"], "from": "18:00", "to": "08:00",
                 "person": "eli"},
                {"days": ["sat", "sun"], "from": "18:00", "to": "08:00", "person": "gil"},
            ],
            "holidays": "fay",
        },
        {"timezone": "America/New_York", "hours": {"mon-fri": "09:00-17:00"},
         "holidays": {"country": "US"}},
    )


def on_duty(compiled: OnCallRota, moment: datetime) -> tuple[str, str] | None:
    """(person, why) on duty at `moment`, or None."""
    found = who_is_on_call(compiled, moment)
    return None if found is None else (found.person, found.why)


def berlin(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- weekly shifts -------------------------------------------------------------------------


def test_the_person_on_duty_comes_with_their_number() -> None:
    assert who_is_on_call(berlin_rota(), berlin(2026, 11, 25, 20, 0)) == OnCall(
        "anna", "+4930555040", "shift")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (berlin(2026, 11, 24, 17, 59), None),  # Tuesday: the desk itself is open
        (berlin(2026, 11, 24, 18, 0), ("anna", "shift")),
        (berlin(2026, 11, 25, 2, 0), ("anna", "shift")),  # Tuesday's shift after midnight
        (berlin(2026, 11, 25, 7, 59, 59), ("anna", "shift")),
        (berlin(2026, 11, 25, 8, 0), None),
        (berlin(2026, 11, 27, 23, 0), ("ben", "shift")),  # Friday night
        (berlin(2026, 11, 28, 12, 0), ("ben", "shift")),  # Saturday: a 24-hour shift
        (berlin(2026, 11, 30, 7, 30), ("ben", "shift")),  # Sunday's shift runs into Monday
        (berlin(2026, 11, 30, 8, 0), None),
    ],
)
def test_shifts_cross_midnight_and_the_end_of_the_week(
    moment: datetime, expected: tuple[str, str] | None
) -> None:
    assert on_duty(berlin_rota(), moment) == expected


def test_a_moment_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        who_is_on_call(berlin_rota(), datetime(2026, 11, 25, 20, 0))


# --- public holidays -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (berlin(2026, 12, 24, 23, 0), ("anna", "shift")),  # Christmas Eve is a working day
        (berlin(2026, 12, 25, 0, 30), ("carla", "holiday")),  # mid-shift, the holiday begins
        (berlin(2026, 12, 25, 14, 0), ("carla", "holiday")),  # when the desk would be open
        (berlin(2026, 12, 26, 20, 0), ("carla", "holiday")),  # Second Day of Christmas
        (berlin(2026, 12, 27, 10, 0), ("ben", "shift")),  # an ordinary Sunday again
        (utc(2026, 12, 24, 23, 30), ("carla", "holiday")),  # already the 25th in Berlin
    ],
)
def test_the_holiday_person_is_on_duty_all_day_on_a_public_holiday(
    moment: datetime, expected: tuple[str, str]
) -> None:
    assert on_duty(berlin_rota(), moment) == expected


def test_without_a_holiday_person_the_shifts_run_on_over_a_holiday() -> None:
    compiled = berlin_rota(holidays=None)
    assert on_duty(compiled, berlin(2026, 12, 25, 3, 0)) == ("anna", "shift")
    assert on_duty(compiled, berlin(2026, 12, 25, 14, 0)) is None


def test_closed_dates_of_the_calendar_count_as_holidays() -> None:
    office = {"timezone": "Europe/Berlin", "hours": {"mon-fri": "08:00-18:00"},
              "closed": ["2026-12-24"]}
    document = {"timezone": "Europe/Berlin", "calendar": "office", "people": PEOPLE,
                "weekly": [{"days": ["thu"], "from": "18:00", "to": "08:00", "person": "anna"}],
                "holidays": "carla"}
    assert on_duty(rota(document, office), berlin(2026, 12, 24, 20, 0)) == ("carla", "holiday")


# --- time zones and daylight saving time ---------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # Tuesday 12:30 in UTC is still Tuesday 07:30 in New York: Monday night's shift
        (utc(2026, 11, 3, 12, 30), ("dana", "shift")),
        (utc(2026, 11, 3, 13, 30), None),  # 08:30 in New York
        (utc(2026, 11, 3, 0, 30), ("dana", "shift")),  # Monday 19:30 in New York
        (utc(2026, 11, 3, 23, 30), ("eli", "shift")),  # Tuesday 18:30
        # Thanksgiving is 26 November: a holiday by New York's date, not by UTC's
        (utc(2026, 11, 26, 3, 0), ("eli", "shift")),  # Wednesday 22:00 in New York
        (utc(2026, 11, 27, 3, 0), ("fay", "holiday")),  # Thursday 22:00 in New York
        (datetime(2026, 11, 27, 4, 0, tzinfo=BERLIN), ("fay", "holiday")),  # any zone will do
    ],
)
def test_a_new_york_rota_reads_utc_moments_in_new_york_time(
    moment: datetime, expected: tuple[str, str] | None
) -> None:
    assert on_duty(new_york_rota(), moment) == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # 8 March 2026: clocks go from 02:00 EST to 03:00 EDT, so Saturday's night is shorter
        (utc(2026, 3, 8, 6, 59), ("gil", "shift")),  # 01:59 EST
        (utc(2026, 3, 8, 7, 30), ("gil", "shift")),  # 03:30 EDT
        (utc(2026, 3, 8, 11, 59), ("gil", "shift")),  # 07:59 EDT
        (utc(2026, 3, 8, 12, 30), None),  # 08:30 EDT, though only 13.5 hours after 18:00
        # 1 November 2026: 02:00 EDT becomes 01:00 EST, so Saturday's night is an hour longer
        (utc(2026, 11, 1, 5, 30), ("gil", "shift")),  # 01:30 EDT
        (utc(2026, 11, 1, 6, 30), ("gil", "shift")),  # 01:30 EST, the same wall time again
        (utc(2026, 11, 1, 12, 59), ("gil", "shift")),  # 07:59 EST, 15 hours after 18:00
        (utc(2026, 11, 1, 13, 0), None),  # 08:00 EST
    ],
)
def test_a_night_shift_on_a_dst_night_covers_the_same_wall_clock_hours(
    moment: datetime, expected: tuple[str, str] | None
) -> None:
    assert on_duty(new_york_rota(), moment) == expected


# --- overrides ------------------------------------------------------------------------------


def test_overrides_win_over_shifts_and_holidays() -> None:
    compiled = berlin_rota(overrides=[
        {"date": "2026-11-25", "person": "ben"},
        {"from": "2026-12-25 18:00", "to": "2026-12-26 08:00", "person": "anna"},
    ])
    assert who_is_on_call(compiled, berlin(2026, 11, 25, 20, 0)) == OnCall(
        "ben", "+4930555041", "override")
    assert on_duty(compiled, berlin(2026, 11, 25, 12, 0)) == ("ben", "override")  # all day
    assert on_duty(compiled, berlin(2026, 11, 26, 0, 0)) == ("anna", "shift")  # the day is over
    assert on_duty(compiled, berlin(2026, 12, 25, 17, 59)) == ("carla", "holiday")
    assert on_duty(compiled, berlin(2026, 12, 25, 18, 0)) == ("anna", "override")
    assert on_duty(compiled, berlin(2026, 12, 26, 8, 0)) == ("carla", "holiday")


def test_an_override_is_local_to_the_rota_unless_it_has_an_offset() -> None:
    compiled = berlin_rota(overrides=[
        {"date": "2026-11-25", "person": "ben"},
        {"from": "2026-11-27T10:00:00+00:00", "to": "2026-11-27T11:00:00+00:00",
         "person": "carla"},
    ])
    assert on_duty(compiled, utc(2026, 11, 24, 23, 0)) == ("ben", "override")  # 00:00 Berlin
    assert on_duty(compiled, utc(2026, 11, 25, 23, 0)) == ("anna", "shift")
    assert on_duty(compiled, berlin(2026, 11, 27, 11, 30)) == ("carla", "override")


# --- compiling ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"holidays": "dave"}, "unknown people: dave"),
        ({"overrides": [{"from": "2026-11-25 10:00", "person": "ben"}]},
         "override 1 needs a 'date', or both 'from' and 'to'"),
    ],
)
def test_a_rota_that_cannot_work_is_refused_when_compiled(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        berlin_rota(**changes)
