"""Whether one value in a flow is usable: names close to a typo, phone numbers, time zones and
holiday countries."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays
import phonenumbers

from routing.errors import Path, Reporter


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    choices = list(choices)
    folded = {choice.casefold(): choice for choice in choices}
    if word.casefold() in folded and folded[word.casefold()] != word:
        return f" (did you mean '{folded[word.casefold()]}'?)"
    matches = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


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


def check_number(checks: Reporter, path: Path, where: str, number: str) -> None:
    """Note at `path` when `number` is not a valid E.164 phone number."""
    problem = phone_number_problem(number)
    if problem:
        checks.error(path, f"{where}: {problem}")
