"""Business hours: open, closed and holiday under fixed clocks, and the SLA clock across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from routing.flow import Calendar
from routing.hours import BusinessHours, parse_day_spec, parse_time_range

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def hours_of(**calendar: Any) -> BusinessHours:
    """Business hours of a calendar given as keyword fields (Berlin office hours by default)."""
    calendar.setdefault("timezone", "Europe/Berlin")
    calendar.setdefault("hours", {"mon-fri": "08:00-18:00"})
    return BusinessHours.from_calendar(Calendar.model_validate(calendar))


def berlin(*args: int) -> datetime:
    """A Berlin wall-clock time."""
    return datetime(*args, tzinfo=BERLIN)


@pytest.fixture(scope="module")
def office() -> BusinessHours:
    """Weekdays 08:00-18:00 in Berlin, German public holidays, New Year's Eve closed."""
    return hours_of(holidays={"country": "DE"}, closed=["2026-12-31"])


# --- status --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (berlin(2026, 6, 10, 10, 0), "open"),  # Wednesday morning
        (berlin(2026, 6, 10, 20, 0), "closed"),  # Wednesday evening
        (berlin(2026, 6, 10, 7, 59, 59), "closed"),
        (berlin(2026, 6, 10, 8, 0), "open"),  # opening time is included
        (berlin(2026, 6, 10, 17, 59, 59), "open"),
        (berlin(2026, 6, 10, 18, 0), "closed"),  # closing time is not
        (berlin(2026, 6, 13, 10, 0), "closed"),  # Saturday
        (berlin(2026, 6, 14, 10, 0), "closed"),  # Sunday
        (berlin(2026, 12, 25, 10, 0), "holiday"),  # Christmas Day, a Friday
        (berlin(2026, 12, 25, 22, 0), "holiday"),  # all day, not only in opening hours
        (berlin(2026, 12, 31, 10, 0), "holiday"),  # an extra closed date
        (berlin(2026, 12, 30, 10, 0), "open"),
        (berlin(2026, 10, 3, 10, 0), "holiday"),  # German Unity Day on a Saturday
    ],
)
def test_status_under_fixed_clocks(office: BusinessHours, moment: datetime, expected: str) -> None:
    assert office.status(moment) == expected
    assert office.is_open(moment) is (expected == "open")


def test_status_converts_to_the_calendars_time_zone(office: BusinessHours) -> None:
    # 07:30 UTC is 09:30 in Berlin in summer; 17:00 UTC is 19:00 there
    assert office.status(datetime(2026, 6, 10, 7, 30, tzinfo=UTC)) == "open"
    assert office.status(datetime(2026, 6, 10, 17, 0, tzinfo=UTC)) == "closed"
    # Christmas Eve 23:30 UTC is already Christmas Day in Berlin
    assert office.status(datetime(2026, 12, 24, 23, 30, tzinfo=UTC)) == "holiday"


def test_same_instant_is_open_in_one_calendar_and_closed_in_another(office: BusinessHours) -> None:
    new_york = hours_of(timezone="America/New_York", hours={"mon-fri": "08:00-18:00"})
    instant = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)  # 12:00 Berlin, 06:00 New York
    assert office.status(instant) == "open"
    assert new_york.status(instant) == "closed"
    evening = datetime(2026, 6, 10, 20, 0, tzinfo=UTC)  # 22:00 Berlin, 16:00 New York
    assert office.status(evening) == "closed"
    assert new_york.status(evening) == "open"


def test_naive_datetimes_are_refused(office: BusinessHours) -> None:
    naive = datetime(2026, 6, 10, 10, 0)
    with pytest.raises(ValueError, match="no time zone"):
        office.status(naive)
    with pytest.raises(ValueError, match="no time zone"):
        office.next_opening(naive)
    with pytest.raises(ValueError, match="no time zone"):
        office.add_business_time(naive, timedelta(hours=1))
    with pytest.raises(ValueError, match="no time zone"):
        office.business_time_between(naive, berlin(2026, 6, 11, 10))


def test_a_range_ending_at_24_00_runs_to_midnight() -> None:
    late = hours_of(hours={"fri": "18:00-24:00", "sat": "00:00-02:00"})
    assert late.status(berlin(2026, 6, 12, 23, 59, 59)) == "open"
    assert late.status(berlin(2026, 6, 13, 0, 0)) == "open"  # Saturday's own range
    assert late.status(berlin(2026, 6, 13, 2, 0)) == "closed"
    assert late.status(berlin(2026, 6, 11, 23, 0)) == "closed"  # Thursday
    # the night shift counts as one stretch across midnight
    assert late.add_business_time(berlin(2026, 6, 12, 23, 0), timedelta(hours=2)) == berlin(
        2026, 6, 13, 1, 0
    )
    only_friday = hours_of(hours={"fri": "18:00-24:00"})
    assert only_friday.status(berlin(2026, 6, 13, 0, 0)) == "closed"
    assert only_friday.business_time_between(
        berlin(2026, 6, 12, 0, 0), berlin(2026, 6, 13, 12, 0)
    ) == timedelta(hours=6)


def test_lists_of_ranges_and_overlapping_day_specs() -> None:
    lunch_break = hours_of(
        hours={
            "mon-fri": ["08:00-12:00", "13:00-17:00"],
            "fri": "16:00-19:00",
            "sat": "10:00-14:00",
        }
    )
    assert lunch_break.status(berlin(2026, 6, 10, 12, 30)) == "closed"
    assert lunch_break.status(berlin(2026, 6, 10, 13, 0)) == "open"
    assert lunch_break.status(berlin(2026, 6, 10, 18, 0)) == "closed"
    assert lunch_break.status(berlin(2026, 6, 12, 18, 0)) == "open"  # Friday's ranges join
    assert lunch_break.status(berlin(2026, 6, 13, 11, 0)) == "open"
    wednesday = lunch_break.business_time_between(berlin(2026, 6, 10, 0), berlin(2026, 6, 11, 0))
    assert wednesday == timedelta(hours=8)
    friday = lunch_break.business_time_between(berlin(2026, 6, 12, 0), berlin(2026, 6, 13, 0))
    assert friday == timedelta(hours=10)  # 08-12 and 13-19, the overlap counted once


def test_subdivision_holidays() -> None:
    bavaria = hours_of(holidays={"country": "DE", "subdivision": "BY"})
    berlin_state = hours_of(holidays={"country": "DE", "subdivision": "BE"})
    epiphany = berlin(2026, 1, 6, 10, 0)  # a Tuesday, a holiday in Bavaria only
    assert bavaria.status(epiphany) == "holiday"
    assert berlin_state.status(epiphany) == "open"


def test_holiday_years_are_computed_on_demand(office: BusinessHours) -> None:
    assert office.status(berlin(2031, 12, 25, 10, 0)) == "holiday"
    assert office.status(berlin(2019, 5, 1, 10, 0)) == "holiday"  # Labour Day
    assert office.is_day_off(date(2031, 12, 31)) is False  # the closed date was 2026 only
    assert office.is_day_off(date(2026, 12, 31)) is True


def test_a_calendar_without_holidays_has_none() -> None:
    plain = hours_of()
    assert plain.status(berlin(2026, 12, 25, 10, 0)) == "open"


def test_invalid_calendars_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Atlantis'"):
        hours_of(timezone="Europe/Atlantis")
    with pytest.raises(ValueError, match="no public holidays"):
        hours_of(holidays={"country": "XX"})
    with pytest.raises(ValueError, match="runs backwards"):
        hours_of(hours={"fri-mon": "08:00-17:00"})
    with pytest.raises(ValueError, match="closes before it opens"):
        hours_of(hours={"mon": "18:00-08:00"})


def test_parsers_keep_their_behaviour() -> None:
    assert parse_day_spec("mon-fri") == (0, 1, 2, 3, 4)
    assert parse_day_spec("Sun") == (6,)
    assert parse_time_range("08:00-17:30") == (time(8, 0), time(17, 30))
    assert parse_time_range("18:00-24:00") == (time(18, 0), None)


# --- next opening -----------------------------------------------------------------------


def test_next_opening(office: BusinessHours) -> None:
    # open now: the answer is now, in the calendar's zone
    now = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
    opening = office.next_opening(now)
    assert opening == now
    assert opening is not None and opening.tzinfo == BERLIN
    assert office.next_opening(berlin(2026, 6, 10, 6, 0)) == berlin(2026, 6, 10, 8, 0)
    assert office.next_opening(berlin(2026, 6, 10, 20, 0)) == berlin(2026, 6, 11, 8, 0)
    # Friday evening -> Monday morning
    assert office.next_opening(berlin(2026, 6, 12, 18, 0)) == berlin(2026, 6, 15, 8, 0)
    # Christmas 24 (Thu) open, 25 and 26 holidays, 28-30 open, 31 closed, Jan 1 holiday
    assert office.next_opening(berlin(2026, 12, 24, 19, 0)) == berlin(2026, 12, 28, 8, 0)
    assert office.next_opening(berlin(2026, 12, 30, 19, 0)) == berlin(2027, 1, 4, 8, 0)


def test_next_opening_is_none_for_a_calendar_that_never_opens() -> None:
    never = hours_of(hours={})
    assert never.status(berlin(2026, 6, 10, 10, 0)) == "closed"
    assert never.next_opening(berlin(2026, 6, 10, 10, 0)) is None
    with pytest.raises(ValueError, match="never open"):
        never.add_business_time(berlin(2026, 6, 10, 10, 0), timedelta(hours=1))
    assert never.business_time_between(berlin(2026, 1, 1), berlin(2027, 1, 1)) == timedelta(0)


# --- the SLA clock ------------------------------------------------------------------------


def test_add_business_time_counts_only_open_time(office: BusinessHours) -> None:
    wednesday = berlin(2026, 6, 10, 10, 0)
    assert office.add_business_time(wednesday, timedelta(hours=4)) == berlin(2026, 6, 10, 14, 0)
    # exactly up to closing time ends at closing time
    assert office.add_business_time(wednesday, timedelta(hours=8)) == berlin(2026, 6, 10, 18, 0)
    assert office.add_business_time(wednesday, timedelta(hours=9)) == berlin(2026, 6, 11, 9, 0)
    # started while closed: the clock starts at the next opening
    assert office.add_business_time(berlin(2026, 6, 12, 20), timedelta(hours=1)) == berlin(
        2026, 6, 15, 9, 0
    )
    # across Christmas and New Year's Eve
    due = office.add_business_time(berlin(2026, 12, 24, 17, 0), timedelta(hours=12))
    assert due == berlin(2026, 12, 29, 9, 0)  # 1 h on the 24th, 10 h on the 28th, 1 h on the 29th
    due = office.add_business_time(berlin(2026, 12, 30, 17, 0), timedelta(hours=3))
    assert due == berlin(2027, 1, 4, 10, 0)  # 31st closed, 1st a holiday, then a weekend


def test_add_business_time_of_nothing_and_of_less_than_nothing(office: BusinessHours) -> None:
    start = datetime(2026, 6, 13, 10, 0, tzinfo=UTC)
    result = office.add_business_time(start, timedelta(0))
    assert result == start and result.tzinfo == BERLIN
    with pytest.raises(ValueError, match="negative"):
        office.add_business_time(start, timedelta(minutes=-1))


def test_add_business_time_keeps_wall_clock_hours_across_dst(office: BusinessHours) -> None:
    # clocks go forward on Sunday 2026-03-29: Monday still opens at 08:00 local
    due = office.add_business_time(berlin(2026, 3, 27, 16, 0), timedelta(hours=3))
    assert due == berlin(2026, 3, 30, 9, 0)
    assert due.utcoffset() == timedelta(hours=2)
    # clocks go back on Sunday 2026-10-25
    due = office.add_business_time(berlin(2026, 10, 23, 16, 0), timedelta(hours=3))
    assert due == berlin(2026, 10, 26, 9, 0)
    assert due.utcoffset() == timedelta(hours=1)


def test_dst_days_last_23_and_25_hours_of_real_time() -> None:
    always = hours_of(hours={"mon-sun": "00:00-24:00"})
    spring = always.business_time_between(berlin(2026, 3, 29), berlin(2026, 3, 30))
    autumn = always.business_time_between(berlin(2026, 10, 25), berlin(2026, 10, 26))
    assert (spring, autumn) == (timedelta(hours=23), timedelta(hours=25))
    # 24 hours of real time from Saturday noon end at 13:00 on the short Sunday
    assert always.add_business_time(berlin(2026, 3, 28, 12), timedelta(hours=24)) == berlin(
        2026, 3, 29, 13
    )
    assert always.add_business_time(berlin(2026, 10, 24, 12), timedelta(hours=24)) == berlin(
        2026, 10, 25, 11
    )


def test_a_night_range_over_the_clock_change_counts_real_time() -> None:
    night = hours_of(hours={"sun": "00:00-06:00"})
    spring = night.business_time_between(berlin(2026, 3, 29), berlin(2026, 3, 30))
    autumn = night.business_time_between(berlin(2026, 10, 25), berlin(2026, 10, 26))
    assert (spring, autumn) == (timedelta(hours=5), timedelta(hours=7))
    # 3 hours from midnight on the spring Sunday end at 04:00 local (02:00-03:00 never happened)
    assert night.add_business_time(berlin(2026, 3, 29, 0), timedelta(hours=3)) == berlin(
        2026, 3, 29, 4
    )


def test_opening_inside_the_skipped_hour_opens_when_the_clocks_jump() -> None:
    odd = hours_of(hours={"sun": "02:30-03:30"})
    before_jump = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)  # 01:59 CET
    assert odd.status(before_jump) == "closed"
    opening = odd.next_opening(before_jump)
    assert opening == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST, past 02:30 already
    assert odd.status(opening) == "open"
    assert odd.business_time_between(berlin(2026, 3, 29), berlin(2026, 3, 30)) == timedelta(
        minutes=30
    )
    # in autumn 02:30-03:00 happens twice: both times count, as the status says
    autumn = odd.business_time_between(berlin(2026, 10, 25), berlin(2026, 10, 26))
    assert autumn == timedelta(minutes=90)
    assert odd.status(datetime(2026, 10, 25, 0, 45, tzinfo=UTC)) == "open"  # 02:45 CEST
    assert odd.status(datetime(2026, 10, 25, 1, 15, tzinfo=UTC)) == "closed"  # 02:15 CET
    assert odd.status(datetime(2026, 10, 25, 1, 45, tzinfo=UTC)) == "open"  # 02:45 CET


def test_business_time_between(office: BusinessHours) -> None:
    assert office.business_time_between(
        berlin(2026, 6, 10, 10, 0), berlin(2026, 6, 10, 12, 30)
    ) == timedelta(hours=2, minutes=30)
    # Friday 16:00 -> Monday 09:00: two hours on Friday, one on Monday
    friday, monday = berlin(2026, 6, 12, 16, 0), berlin(2026, 6, 15, 9, 0)
    assert office.business_time_between(friday, monday) == timedelta(hours=3)
    assert office.business_time_between(monday, friday) == -timedelta(hours=3)
    # a weekend only: nothing
    assert office.business_time_between(
        berlin(2026, 6, 13, 0), berlin(2026, 6, 15, 0)
    ) == timedelta(0)
    # different zones for start and end are fine
    assert office.business_time_between(
        datetime(2026, 6, 10, 8, 0, tzinfo=UTC), datetime(2026, 6, 10, 6, 0, tzinfo=NEW_YORK)
    ) == timedelta(hours=2)


def test_add_and_between_agree(office: BusinessHours) -> None:
    start = berlin(2026, 3, 20, 13, 17)
    for hours in (0.5, 3, 10, 27, 80, 200):
        due = office.add_business_time(start, timedelta(hours=hours))
        assert office.business_time_between(start, due) == timedelta(hours=hours)
        assert office.is_open(due - timedelta(seconds=1))
