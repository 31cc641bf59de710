"""Business hours: weekly opening times in a time zone, public holidays and closed dates."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from routing.flow import DAY_SPEC, TIME_RANGE, WEEKDAYS, Calendar, HolidaySource


def parse_day_spec(spec: str) -> tuple[int, ...]:
    """Weekday numbers (Monday=0) named by 'mon' or a range 'mon-fri'; ValueError if invalid."""
    match = DAY_SPEC.match(spec.strip().lower())
    if not match:
        raise ValueError(f"'{spec}' is not a day or day range such as 'mon' or 'mon-fri'")
    first = WEEKDAYS.index(match.group(1))
    last = WEEKDAYS.index(match.group(3)) if match.group(3) else first
    if last < first:
        raise ValueError(
            f"day range '{spec}' runs backwards; write it as '{WEEKDAYS[last]}-"
            f"{WEEKDAYS[first]}' or split it"
        )
    return tuple(range(first, last + 1))


def parse_time_range(text: str) -> tuple[time, time | None]:
    """Opening and closing time of 'HH:MM-HH:MM' (closing None means midnight, '24:00')."""
    match = TIME_RANGE.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a time range such as '08:00-17:30'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59:
        raise ValueError(f"'{text}': {h1:02d}:{m1:02d} is not a time of day")
    if (h2, m2) == (24, 0):
        return time(h1, m1), None
    if h2 > 23 or m2 > 59:
        raise ValueError(f"'{text}': {h2:02d}:{m2:02d} is not a time of day")
    opens, closes = time(h1, m1), time(h2, m2)
    if closes <= opens:
        raise ValueError(f"'{text}' closes before it opens; split ranges that pass midnight")
    return opens, closes


Status = Literal["open", "closed", "holiday"]
OpeningRange = tuple[timedelta, timedelta]
"""Opening and closing time as offsets from local midnight; closing may be 24 hours."""

_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)
SEARCH_DAYS = 400
"""How far ahead to look for an opening before deciding a calendar never opens."""


class BusinessHours:
    """One calendar's opening hours: answers 'open now?' and counts open time for SLA clocks.

    Open time is the set of instants whose local wall-clock date is a working day (not a
    public holiday or closed date) and whose wall-clock time lies in one of that weekday's
    ranges; durations are measured in real elapsed time, so DST days are 23 or 25 hours long.
    """

    __slots__ = ("_closed", "_holiday_source", "_holiday_years", "_weekly", "zone")

    def __init__(
        self,
        zone: ZoneInfo,
        weekly: tuple[tuple[OpeningRange, ...], ...],
        closed: frozenset[date] = frozenset(),
        holiday_source: HolidaySource | None = None,
    ) -> None:
        if len(weekly) != 7:
            raise ValueError("weekly opening hours need exactly seven days, Monday first")
        self.zone = zone
        self._weekly = weekly
        self._closed = closed
        self._holiday_source = holiday_source
        self._holiday_years: dict[int, frozenset[date]] = {}

    @classmethod
    def from_calendar(cls, calendar: Calendar) -> BusinessHours:
        """Business hours of a flow calendar; ValueError naming the part that is invalid."""
        try:
            zone = ZoneInfo(calendar.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone '{calendar.timezone}'") from error
        by_day: list[list[OpeningRange]] = [[] for _ in WEEKDAYS]
        for day_spec, value in calendar.hours.items():
            texts = [value] if isinstance(value, str) else value
            for weekday in parse_day_spec(day_spec):
                for text in texts:
                    opens, closes = parse_time_range(text)
                    by_day[weekday].append((_since_midnight(opens), _since_midnight(closes)))
        if calendar.holidays is not None:
            source = calendar.holidays
            try:  # fail at compile time, not on the first call of a new year
                holidays.country_holidays(source.country, subdiv=source.subdivision, years=[])
            except NotImplementedError as error:
                raise ValueError(f"no public holidays known for {error}") from error
        weekly = tuple(_merge(ranges) for ranges in by_day)
        return cls(zone, weekly, frozenset(calendar.closed), calendar.holidays)

    # --- the hot path --------------------------------------------------------

    def status(self, now: datetime) -> Status:
        """'holiday' on a public holiday or closed date, else 'open' or 'closed' at `now`."""
        local = self._local(now)
        day = local.date()
        if self.is_day_off(day):
            return "holiday"
        offset = timedelta(
            hours=local.hour,
            minutes=local.minute,
            seconds=local.second,
            microseconds=local.microsecond,
        )
        for opens, closes in self._weekly[day.weekday()]:
            if opens <= offset < closes:
                return "open"
        return "closed"

    def is_open(self, now: datetime) -> bool:
        """Whether the desk is open at `now`."""
        return self.status(now) == "open"

    def is_day_off(self, day: date) -> bool:
        """Whether a local date is a public holiday or one of the calendar's closed dates."""
        return day in self._closed or day in self._holidays_in(day.year)

    # --- the SLA clock ---------------------------------------------------------

    def next_opening(self, now: datetime) -> datetime | None:
        """The first instant at or after `now` when the desk is open (`now` itself if open)."""
        since = self._utc(now)
        last_day = since.astimezone(self.zone).date() + timedelta(days=SEARCH_DAYS)
        for opens, _closes in self._open_intervals(since, last_day):
            return opens.astimezone(self.zone)
        return None

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when `duration` of open time has passed since `start` (an SLA due time)."""
        if duration < timedelta(0):
            raise ValueError(f"business time to add must not be negative, got {duration}")
        since = self._utc(start)
        if not duration:
            return since.astimezone(self.zone)
        remaining = duration
        for opens, closes in self._open_intervals(since, None):
            if remaining <= closes - opens:
                return (opens + remaining).astimezone(self.zone)
            remaining -= closes - opens
        raise ValueError(f"the calendar is never open within {SEARCH_DAYS} days of {start}")

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Open time from `start` to `end` (negative if `end` comes first)."""
        start_utc, end_utc = self._utc(start), self._utc(end)
        if end_utc < start_utc:
            return -self.business_time_between(end, start)
        total = timedelta(0)
        last_day = end_utc.astimezone(self.zone).date()
        for opens, closes in self._open_intervals(start_utc, last_day):
            if opens >= end_utc:
                break
            total += min(closes, end_utc) - opens
        return total

    # --- internals ---------------------------------------------------------------

    def _local(self, moment: datetime) -> datetime:
        return self._utc(moment).astimezone(self.zone)

    @staticmethod
    def _utc(moment: datetime) -> datetime:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{moment.isoformat()} has no time zone; pass an aware datetime")
        return moment.astimezone(UTC)

    def _holidays_in(self, year: int) -> frozenset[date]:
        known = self._holiday_years.get(year)
        if known is None:
            source = self._holiday_source
            if source is None:
                known = frozenset()
            else:
                known = frozenset(
                    holidays.country_holidays(source.country, subdiv=source.subdivision, years=year)
                )
            self._holiday_years[year] = known  # a race only computes the same set twice
        return known

    def _open_intervals(
        self, since: datetime, last_day: date | None
    ) -> Iterator[tuple[datetime, datetime]]:
        """Open UTC intervals from `since` on, through `last_day` (else until none for long)."""
        day = since.astimezone(self.zone).date()
        days_without_opening = 0
        while last_day is None or day <= last_day:
            intervals = self._day_intervals(day)
            for opens, closes in intervals:
                if closes > since:
                    yield max(opens, since), closes
            days_without_opening = 0 if intervals else days_without_opening + 1
            if last_day is None and days_without_opening > SEARCH_DAYS:
                return
            day += _DAY

    def _day_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open UTC intervals of one local date: wall-clock ranges mapped back to instants."""
        ranges = self._weekly[day.weekday()]
        if not ranges or self.is_day_off(day):
            return []
        midnight = datetime.combine(day, time())
        first = self._first_instant_reading(midnight)
        after = self._first_instant_reading(midnight + _DAY)
        intervals = []
        for piece_start, piece_end, offset in self._constant_offset_pieces(first, after):
            base = (midnight - offset).replace(tzinfo=UTC)
            for opens, closes in ranges:
                begin, end = max(base + opens, piece_start), min(base + closes, piece_end)
                if begin < end:
                    intervals.append((begin, end))
        return intervals

    def _first_instant_reading(self, wall: datetime) -> datetime:
        """The earliest UTC instant at which the local clock reads `wall` (naive) or later."""
        earlier = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        if earlier.astimezone(self.zone).replace(tzinfo=None) == wall:
            return earlier  # fold=0 is the first of two readings when clocks go back
        # `wall` was skipped when the clocks went forward: the answer is the jump itself
        before_gap = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        return _first_true(
            before_gap, earlier, lambda t: t.astimezone(self.zone).replace(tzinfo=None) >= wall
        )

    def _constant_offset_pieces(
        self, first: datetime, after: datetime
    ) -> list[tuple[datetime, datetime, timedelta]]:
        """[first, after) split where the UTC offset changes (at most once a day)."""
        offset_first = _offset(first, self.zone)
        offset_last = _offset(after - _SECOND, self.zone)
        if offset_first == offset_last:
            return [(first, after, offset_first)]
        jump = _first_true(first, after - _SECOND, lambda t: _offset(t, self.zone) != offset_first)
        return [(first, jump, offset_first), (jump, after, offset_last)]

    def __repr__(self) -> str:
        return f"BusinessHours(zone={self.zone.key!r}, weekly={self._weekly!r})"


def _since_midnight(moment: time | None) -> timedelta:
    """A time of day as an offset from midnight; None (24:00) is a whole day."""
    if moment is None:
        return _DAY
    return timedelta(hours=moment.hour, minutes=moment.minute)


def _merge(ranges: list[OpeningRange]) -> tuple[OpeningRange, ...]:
    """Ranges sorted, with overlapping or touching ones joined."""
    merged: list[OpeningRange] = []
    for opens, closes in sorted(ranges):
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return tuple(merged)


def _offset(moment: datetime, zone: ZoneInfo) -> timedelta:
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset
    return offset


def _first_true(low: datetime, high: datetime, test: Callable[[datetime], bool]) -> datetime:
    """The first whole-second UTC instant in (low, high] passing a monotone test (high does)."""
    low_s, high_s = math.floor(low.timestamp()), math.ceil(high.timestamp())
    while high_s - low_s > 1:
        middle = (low_s + high_s) // 2
        if test(datetime.fromtimestamp(middle, UTC)):
            high_s = middle
        else:
            low_s = middle
    return datetime.fromtimestamp(high_s, UTC)
