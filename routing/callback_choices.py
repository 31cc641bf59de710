"""A callback's choices: when the caller may be called (a window) and which number to dial."""

from __future__ import annotations

import functools
from datetime import datetime, time, timedelta

import phonenumbers
from phonenumbers import PhoneNumberType

from routing.flow import CallbackNode, Flow
from routing.hours import BusinessHours

WINDOW_KEYS: dict[str, str] = {"1": "asap", "2": "afternoon", "3": "tomorrow_morning"}
"""The key a caller presses for each window, and the window's label as stored."""
ASAP = "asap"
AFTERNOON_FROM = time(14, 0)
MORNING_WITHOUT_CALENDAR = time(8, 0)
REFUSED_TYPES = frozenset({
    PhoneNumberType.PREMIUM_RATE,  # a keyed-in number must not make the desk pay a stranger
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.UAN,
    PhoneNumberType.PAGER,
    PhoneNumberType.VOICEMAIL,
})


def callback_calendar(flow: Flow, node: CallbackNode) -> str | None:
    """The calendar a callback node counts in: its own, else the flow's only one, else None."""
    if node.calendar is not None:
        return node.calendar
    if len(flow.calendars) == 1:
        return next(iter(flow.calendars))
    return None


def offers_windows(flow: Flow, node: CallbackNode) -> bool:
    """Whether the node asks for a window: enabled, and a calendar's time zone to count in."""
    return node.windows and callback_calendar(flow, node) in flow.calendars


def window_start(window: str, now: datetime, hours: BusinessHours | None) -> datetime:
    """The first moment a callback in `window` may be dialled ('asap' or unknown: `now`).

    'afternoon' is 14:00 today in the calendar's zone (now, if later); 'tomorrow_morning' is
    the opening of the next working day after today.
    """
    zone = hours.zone if hours is not None else now.tzinfo
    today = now.astimezone(zone).date()
    if window == "afternoon":
        return max(now, datetime.combine(today, AFTERNOON_FROM, tzinfo=zone))
    if window == "tomorrow_morning":
        tomorrow = today + timedelta(days=1)
        opening = None
        if hours is not None:
            opening = hours.next_opening(datetime.combine(tomorrow, time(), tzinfo=zone))
        return opening or datetime.combine(tomorrow, MORNING_WITHOUT_CALENDAR, tzinfo=zone)
    return now


@functools.lru_cache(maxsize=8192)
def callable_number(raw: str, region: str | None = None) -> str | None:
    """`raw` in E.164 if it is a valid number we may call back (not premium rate), else None.

    Remembered per number: every turn of a callback dialog asks again for the caller's."""
    try:
        parsed = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    if phonenumbers.number_type(parsed) in REFUSED_TYPES:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def keyed_number(digits: str, flow: Flow, caller: str) -> str | None:
    """A number keyed in on the phone, in E.164; read as dialled from the caller's country
    (a withheld caller id: the line's), since callers key in numbers as their phone dials."""
    keyed = "".join(ch for ch in digits if ch.isdigit())
    if not keyed:
        return None
    return callable_number(keyed, _home_region(flow, caller))


def last_digits(number: str, count: int = 4) -> str:
    """The last `count` digits of a number, for the caller to recognise it."""
    return "".join(ch for ch in number if ch.isdigit())[-count:]


def _home_region(flow: Flow, caller: str) -> str | None:
    """The region of the caller's number, else of the line's first number."""
    for number in (caller, *flow.numbers[:1]):
        try:
            region = phonenumbers.region_code_for_number(phonenumbers.parse(number, None))
        except phonenumbers.NumberParseException:
            continue
        if region and region.isalpha():
            return str(region)
    return None
