"""Checks of a flow's calendars (opening hours, holidays) and on-call rotas (shifts, people,
overrides) that a schema cannot make."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from routing.errors import Path, Reporter
from routing.field_problems import (
    check_number,
    did_you_mean,
    supported_holiday_countries,
    timezone_problem,
)
from routing.flow import WEEKDAYS, Calendar, Rota
from routing.hours import parse_day_spec, parse_time_range
from routing.oncall import ShiftSpan, override_period, parse_clock, shift_spans


def check_calendars(checks: Reporter) -> None:
    for name, calendar in checks.flow.calendars.items():
        _check_calendar(checks, name, calendar)
    for node_id, node in checks.flow.nodes.items():
        if node.type == "hours" and node.calendar not in checks.flow.calendars:
            checks.error(
                ("nodes", node_id, "calendar"),
                f"hours '{node_id}' calendar '{node.calendar}' is not under 'calendars'"
                f"{did_you_mean(node.calendar, checks.flow.calendars)}",
            )

def _check_calendar(checks: Reporter, name: str, calendar: Calendar) -> None:
    base: Path = ("calendars", name)
    problem = timezone_problem(calendar.timezone)
    if problem:
        checks.error((*base, "timezone"), f"calendar '{name}' {problem}")
    first_key_of_day: dict[int, str] = {}
    for spec, value in calendar.hours.items():
        key_path: Path = (*base, "hours", spec)
        try:
            days = parse_day_spec(spec)
        except ValueError as exc:
            checks.error(key_path, f"calendar '{name}' hours: {exc}", at_key=True)
            days = ()
        for day in days:
            if day in first_key_of_day:
                checks.error(
                    key_path,
                    f"calendar '{name}' hours '{spec}' lists {WEEKDAYS[day]} again "
                    f"(already in '{first_key_of_day[day]}'); each day may appear once",
                    at_key=True,
                )
            else:
                first_key_of_day[day] = spec
        _check_ranges(checks, name, spec, key_path, value)
    if calendar.holidays is not None:
        _check_holidays(checks, name, calendar)

def _check_ranges(checks: Reporter, name: str, spec: str, key_path: Path,
                  value: list[str] | str) -> None:
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
            checks.error(path, f"calendar '{name}' hours '{spec}': {exc}")
            continue
        for earlier, e_opens, e_closes in parsed:
            if _overlaps(opens, closes, e_opens, e_closes):
                checks.error(
                    path, f"calendar '{name}' hours '{spec}': '{text}' overlaps '{earlier}'"
                )
                break
        parsed.append((text, opens, closes))

def _check_holidays(checks: Reporter, name: str, calendar: Calendar) -> None:
    assert calendar.holidays is not None
    source = calendar.holidays
    path: Path = ("calendars", name, "holidays")
    supported = supported_holiday_countries()
    if source.country not in supported:
        checks.error(
            (*path, "country"),
            f"calendar '{name}' holidays: country '{source.country}' is not supported by "
            f"the holidays package{did_you_mean(source.country, supported)}",
        )
    elif source.subdivision is not None:
        subdivisions = supported[source.country]
        if source.subdivision not in subdivisions:
            listed = ", ".join(subdivisions) if subdivisions else "none"
            checks.error(
                (*path, "subdivision"),
                f"calendar '{name}' holidays: '{source.subdivision}' is not a subdivision "
                f"of {source.country}{did_you_mean(source.subdivision, subdivisions)}; "
                f"known: {listed}",
            )

def check_rotas(checks: Reporter) -> None:
    for name, rota in checks.flow.rotas.items():
        _check_rota(checks, name, rota)
    for node_id, node in checks.flow.nodes.items():
        if node.type == "oncall" and node.rota not in checks.flow.rotas:
            checks.error(
                ("nodes", node_id, "rota"),
                f"oncall '{node_id}' rota '{node.rota}' is not under 'rotas'"
                f"{did_you_mean(node.rota, checks.flow.rotas)}",
            )

def _check_rota(checks: Reporter, name: str, rota: Rota) -> None:
    base: Path = ("rotas", name)
    problem = timezone_problem(rota.timezone)
    if problem:
        checks.error((*base, "timezone"), f"rota '{name}' {problem}")
    if rota.calendar is not None and rota.calendar not in checks.flow.calendars:
        checks.error((*base, "calendar"), f"rota '{name}' calendar '{rota.calendar}' is not "
                   f"under 'calendars'{did_you_mean(rota.calendar, checks.flow.calendars)}")
    for person, number in rota.people.items():
        check_number(checks, (*base, "people", person), f"rota '{name}' {person}", number)
    _check_shifts(checks, name, rota)
    if rota.holidays is not None:
        _check_person(checks, name, rota, (*base, "holidays"), rota.holidays)
        if rota.calendar is None:
            checks.error((*base, "holidays"), f"rota '{name}' has a holiday person but no "
                       "'calendar' to take public holidays and closed dates from")
    zone = None if problem else ZoneInfo(rota.timezone)
    periods: list[tuple[int, tuple[datetime, datetime]]] = []
    for index, override in enumerate(rota.overrides):
        path: Path = (*base, "overrides", index)
        _check_person(checks, name, rota, (*path, "person"), override.person)
        if zone is None:
            continue
        try:
            start, end = override_period(override, zone)
        except ValueError as exc:
            checks.error(path, f"rota '{name}' override {index + 1} {exc}")
            continue
        for other, (other_start, other_end) in periods:
            if start < other_end and other_start < end:
                checks.error(path, f"rota '{name}' override {index + 1} overlaps override "
                           f"{other + 1}; say who is on duty once")
                break
        periods.append((index, (start, end)))

def _check_shifts(checks: Reporter, name: str, rota: Rota) -> None:
    earlier: list[tuple[int, ShiftSpan]] = []
    for index, shift in enumerate(rota.weekly):
        path: Path = ("rotas", name, "weekly", index)
        _check_person(checks, name, rota, (*path, "person"), shift.person)
        times_ok = True
        for field, text, midnight in (("from", shift.from_, False), ("to", shift.to, True)):
            try:
                parse_clock(text, allow_midnight_end=midnight)
            except ValueError as exc:
                checks.error((*path, field), f"rota '{name}' weekly shift {index + 1} "
                           f"'{field}': {exc}")
                times_ok = False
        for day_index, day in enumerate(shift.days):
            if day in shift.days[:day_index]:
                checks.error((*path, "days", day_index),
                           f"rota '{name}' weekly shift {index + 1} lists {day} twice")
        if not times_ok:
            continue
        spans = shift_spans(shift)
        clash = next(((other, span.day) for span in spans for other, taken in earlier
                      if span.overlaps(taken)), None)
        if clash is not None:
            checks.error(path, f"rota '{name}' weekly shift {index + 1} ({shift.person}, "
                       f"{shift.from_}-{shift.to}) overlaps shift {clash[0] + 1} "
                       f"({rota.weekly[clash[0]].person}) on {clash[1]}")
        earlier.extend((index, span) for span in spans)

def _check_person(checks: Reporter, name: str, rota: Rota, path: Path, person: str) -> None:
    if person not in rota.people:
        checks.error(path, f"rota '{name}' names '{person}', who is not under its 'people'"
                   f"{did_you_mean(person, rota.people)}")


def _overlaps(
    opens: time, closes: time | None, other_opens: time, other_closes: time | None
) -> bool:
    end = closes or time.max
    other_end = other_closes or time.max
    return opens < other_end and other_opens < end
