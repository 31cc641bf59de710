"""On-call duty: who of a rota's people is on duty at a moment, in the rota's time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from routing.flow import WEEKDAYS, Rota, RotaOverride, RotaShift
from routing.hours import BusinessHours

DAY_SECONDS = 24 * 3600
WEEK_SECONDS = 7 * DAY_SECONDS
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")

Why = Literal["shift", "holiday", "override"]


@dataclass(frozen=True)
class OnCall:
    """The person on duty, the number to ring, and why it is them."""

    person: str
    number: str
    why: Why


@dataclass(frozen=True)
class ShiftSpan:
    """One day's occurrence of a weekly shift, in seconds since Monday 00:00 local time.

    `end` may pass the end of the week: a Sunday night shift runs on into Monday.
    """

    start: int
    end: int
    day: str
    person: str

    def pieces(self) -> tuple[tuple[int, int], ...]:
        """The span as one or two pieces inside the week (a Sunday night wraps to Monday)."""
        if self.end <= WEEK_SECONDS:
            return ((self.start, self.end),)
        return ((self.start, WEEK_SECONDS), (0, self.end - WEEK_SECONDS))

    def covers(self, second_of_week: float) -> bool:
        """Whether a local time of the week falls in this span."""
        return any(start <= second_of_week < end for start, end in self.pieces())

    def overlaps(self, other: ShiftSpan) -> bool:
        """Whether two spans share any time of the week."""
        return any(a < d and c < b for a, b in self.pieces() for c, d in other.pieces())


def parse_clock(text: str, *, allow_midnight_end: bool = False) -> int:
    """Seconds since midnight of a local time 'HH:MM' ('24:00' only as an end); ValueError."""
    match = _CLOCK.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a time such as '18:00'")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if allow_midnight_end and (hours, minutes) == (24, 0):
        return DAY_SECONDS
    if hours > 23 or minutes > 59:
        raise ValueError(f"'{text}' is not a time of day")
    return hours * 3600 + minutes * 60


def shift_spans(shift: RotaShift) -> tuple[ShiftSpan, ...]:
    """Each day's span of a weekly shift; ValueError if a time is invalid."""
    begins = parse_clock(shift.from_)
    ends = parse_clock(shift.to, allow_midnight_end=True)
    # an end at or before the start is on the next day: night shifts cross midnight
    length = (ends - begins) % DAY_SECONDS or DAY_SECONDS
    return tuple(
        ShiftSpan(WEEKDAYS.index(day) * DAY_SECONDS + begins,
                  WEEKDAYS.index(day) * DAY_SECONDS + begins + length, day, shift.person)
        for day in shift.days
    )


def override_period(override: RotaOverride, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants an override starts and ends; ValueError if it is not one period."""
    if override.day is not None:
        if override.from_ is not None or override.to is not None:
            raise ValueError("has 'date' and 'from'/'to'; keep one")
        start = _instant(datetime.combine(override.day, time()), zone)
        return start, _instant(datetime.combine(override.day + timedelta(days=1), time()), zone)
    if override.from_ is None or override.to is None:
        raise ValueError("needs a 'date', or both 'from' and 'to'")
    start, end = _instant(override.from_, zone), _instant(override.to, zone)
    if end <= start:
        raise ValueError("ends at or before its start")
    return start, end


@dataclass(frozen=True)
class OverridePeriod:
    """A dated swap as UTC instants: `person` is on duty from `start` until `end`."""

    start: datetime
    end: datetime
    person: str


class OnCallRota:
    """A rota ready for the hot path: shifts as spans of the week, overrides as instants."""

    __slots__ = ("calendar", "holiday_person", "name", "overrides", "people", "shifts", "zone")

    def __init__(self, name: str, zone: ZoneInfo, people: dict[str, str],
                 shifts: tuple[ShiftSpan, ...], holiday_person: str | None = None,
                 calendar: BusinessHours | None = None,
                 overrides: tuple[OverridePeriod, ...] = ()) -> None:
        self.name = name
        self.zone = zone
        self.people = people
        self.shifts = shifts
        self.holiday_person = holiday_person
        self.calendar = calendar
        self.overrides = overrides

    @classmethod
    def from_rota(cls, name: str, rota: Rota, calendar: BusinessHours | None) -> OnCallRota:
        """A flow's rota with its calendar's business hours; ValueError naming the problem."""
        try:
            zone = ZoneInfo(rota.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone '{rota.timezone}'") from error
        if rota.calendar is not None and calendar is None:
            raise ValueError(f"unknown calendar '{rota.calendar}'")
        shifts = tuple(span for shift in rota.weekly for span in shift_spans(shift))
        overrides = []
        for index, override in enumerate(rota.overrides):
            try:
                start, end = override_period(override, zone)
            except ValueError as error:
                raise ValueError(f"override {index + 1} {error}") from error
            overrides.append(OverridePeriod(start, end, override.person))
        named = [s.person for s in shifts] + [o.person for o in overrides]
        named += [rota.holidays] if rota.holidays else []
        unknown = sorted(set(named) - set(rota.people))
        if unknown:
            raise ValueError(f"unknown people: {', '.join(unknown)}")
        return cls(name, zone, dict(rota.people), shifts, rota.holidays, calendar,
                   tuple(overrides))

    def on_duty(self, person: str, why: Why) -> OnCall:
        """`person` as the one on call for reason `why`."""
        return OnCall(person, self.people[person], why)

    def __repr__(self) -> str:
        return f"OnCallRota({self.name!r}, zone={self.zone.key!r})"


def who_is_on_call(rota: OnCallRota, moment: datetime) -> OnCall | None:
    """Who is on duty at `moment` (an aware datetime): an override, else the holiday person on
    a day off of the rota's calendar, else the weekly shift; None when nobody is."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; pass an aware datetime")
    instant = moment.astimezone(UTC)
    for override in rota.overrides:
        if override.start <= instant < override.end:
            return rota.on_duty(override.person, "override")
    # shifts are wall-clock times: a night shift on a DST night is an hour shorter or longer
    local = instant.astimezone(rota.zone)
    holiday_person, calendar = rota.holiday_person, rota.calendar
    if holiday_person is not None and calendar is not None and calendar.is_day_off(local.date()):
        return rota.on_duty(holiday_person, "holiday")
    second_of_week = (local.weekday() * DAY_SECONDS + local.hour * 3600 + local.minute * 60
                      + local.second + local.microsecond / 1e6)
    for span in rota.shifts:
        if span.covers(second_of_week):
            return rota.on_duty(span.person, "shift")
    return None


def _instant(local: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time of the rota (or a time with its own offset) as a UTC instant."""
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone)
    return local.astimezone(UTC)

