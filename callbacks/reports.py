"""Trend reports on calls: volume per hour, day, menu branch and language, and abandonment.

Every report covers whole local days `start`..`end` (inclusive) in a time zone, chosen by when
the call started. Hour and day buckets are computed in Python, so PostgreSQL and SQLite agree.

Rules, as the reports page states them:
- A call's **menu branch** is the label (else the key) of the option it chose at the first menu
  it answered successfully: the first logged input step at a menu node of the call's flow
  version whose path begins with one of that menu's options (an after-hours menu counts too;
  a menu given up on does not). Calls that never chose one (hung up at the language choice)
  count as "(no choice)". The language choice is not a menu.
- A call is **abandoned in the IVR** when it ended (its status callback arrived) and none of
  its steps reached a transfer to an agent, a voicemail or a callback request, and the flow did
  not hang up itself (a goodbye node). It is grouped by the last node it was at.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session

from callbacks.calllog import Call, CallStep
from callbacks.flowstore import UnknownVersion, compiled_version
from routing.flow import MenuNode

log = logging.getLogger(__name__)
MAX_DAYS = 366
"""The longest range one report covers."""
MAX_CALLS = 200_000
"""Calls read per report; a busier range is cut at this many (and says so)."""
REACHED = ("transfer", "agent", "voicemail", "callback")
"""Step outcomes that mean the caller got somewhere: a person, a voicemail or a callback."""
FLOW_ENDED = ("hangup",)
"""The flow itself ended the call: not the caller giving up."""
NO_CHOICE = "(no choice)"
UNKNOWN_NODE = "(unknown)"


class ReportRangeError(ValueError):
    """A date range a report cannot cover; the message says why."""


@dataclass(frozen=True)
class ReportRange:
    """Whole local days `start`..`end` (inclusive) in `zone`."""

    start: date
    end: date
    zone: ZoneInfo

    @property
    def since(self) -> datetime:
        """The first moment covered, in UTC."""
        return datetime.combine(self.start, time(0), self.zone).astimezone(UTC)

    @property
    def until(self) -> datetime:
        """The first moment after the range, in UTC."""
        return datetime.combine(self.end + timedelta(days=1), time(0), self.zone).astimezone(UTC)

    def days(self) -> list[date]:
        """Every day of the range, in order."""
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def local(self, moment: datetime) -> datetime:
        """A UTC timestamp as the range's local time."""
        return moment.astimezone(self.zone)


def report_range(start: date, end: date, zone: ZoneInfo) -> ReportRange:
    """A checked range: `start` not after `end`, at most MAX_DAYS days."""
    if start > end:
        raise ReportRangeError(f"the range starts ({start}) after it ends ({end})")
    if (end - start).days + 1 > MAX_DAYS:
        raise ReportRangeError(f"a report covers at most {MAX_DAYS} days")
    return ReportRange(start, end, zone)


@dataclass(frozen=True)
class Count:
    """How many of something, named for a chart label."""

    label: str
    count: int


@dataclass(frozen=True)
class CallVolume:
    """Calls started in a range: in total, per hour of day, per day, per branch and language."""

    total: int
    by_hour: tuple[int, ...]
    """24 counts, local hours 0..23."""
    by_day: tuple[tuple[date, int], ...]
    by_branch: tuple[Count, ...]
    by_language: tuple[Count, ...]
    truncated: bool = False


@dataclass(frozen=True)
class Abandonment:
    """Calls that ended in the IVR without reaching anyone, by the node they were last at."""

    ended: int
    abandoned: int
    by_node: tuple[Count, ...]

    @property
    def percent(self) -> float | None:
        """Abandoned calls as a share of the calls that ended, in percent."""
        return round(100 * self.abandoned / self.ended, 1) if self.ended else None


def _in_range(rng: ReportRange) -> tuple[ColumnElement[bool], ...]:
    return (Call.started_at >= rng.since, Call.started_at < rng.until)


def ranked_counts(counter: Counter[str]) -> tuple[Count, ...]:
    """Counts, most first, then by label, so charts and CSV rows have one stable order."""
    return tuple(Count(label, n) for label, n in sorted(counter.items(),
                                                        key=lambda item: (-item[1], item[0])))


def call_volume(session: Session, rng: ReportRange) -> CallVolume:
    """Calls started in the range, bucketed by local hour and day, menu branch and language."""
    rows = session.execute(
        select(Call.call_sid, Call.started_at, Call.language, Call.flow_version_id)
        .where(*_in_range(rng)).order_by(Call.started_at, Call.id).limit(MAX_CALLS + 1)
    ).all()
    truncated = len(rows) > MAX_CALLS
    rows = rows[:MAX_CALLS]
    hours = [0] * 24
    days: Counter[date] = Counter()
    languages: Counter[str] = Counter()
    for row in rows:
        local = rng.local(row.started_at)
        hours[local.hour] += 1
        days[local.date()] += 1
        languages[row.language or "(unknown)"] += 1
    branches = _branches(session, rng, {row.call_sid: row.flow_version_id for row in rows},
                         rows[-1].started_at if truncated else None)
    return CallVolume(
        total=len(rows), by_hour=tuple(hours),
        by_day=tuple((day, days[day]) for day in rng.days()),
        by_branch=ranked_counts(branches), by_language=ranked_counts(languages),
        truncated=truncated,
    )


def _branches(session: Session, rng: ReportRange, versions: dict[str, int | None],
              cut_at: datetime | None) -> Counter[str]:
    """Each call's menu branch (see the module's rules), counted."""
    query = (select(CallStep.call_sid, CallStep.node, CallStep.path, CallStep.outcome)
             .join(Call, Call.call_sid == CallStep.call_sid)
             .where(*_in_range(rng), CallStep.event == "input")
             .order_by(CallStep.call_sid, CallStep.seq))
    if cut_at is not None:
        query = query.where(Call.started_at <= cut_at)
    menus: dict[int, dict[str, dict[str, str]]] = {}
    chosen: dict[str, str] = {}
    for step in session.execute(query):
        version = versions.get(step.call_sid)
        # A menu given up on goes to its on_failure node, which may also be an option's.
        if step.call_sid in chosen or version is None or step.outcome == "menu_failed":
            continue
        if version not in menus:
            menus[version] = _menu_choices(session, version)
        first_node = step.path.split(" ", 1)[0] if step.path else ""
        label = menus[version].get(step.node, {}).get(first_node)
        if label is not None:
            chosen[step.call_sid] = label
    return Counter(chosen.get(call_sid, NO_CHOICE) for call_sid in versions)


def _menu_choices(session: Session, version_id: int) -> dict[str, dict[str, str]]:
    """menu node -> (the node an option leads to -> the option's label, else its key)."""
    try:
        nodes = compiled_version(session, version_id).flow.nodes
    except (UnknownVersion, ValueError):
        # A version this code can no longer read must not take the whole report down.
        log.warning("reports: flow version %s could not be read; its calls show no branch",
                    version_id)
        return {}
    return {node_id: {option.next: option.label or key for key, option in node.options.items()}
            for node_id, node in nodes.items() if isinstance(node, MenuNode)}


def abandonment(session: Session, rng: ReportRange) -> Abandonment:
    """Calls started in the range that ended in the IVR without reaching anyone, by last node."""
    ended = (*_in_range(rng), Call.ended_at.is_not(None))
    got_somewhere = exists().where(CallStep.call_sid == Call.call_sid,
                                   CallStep.outcome.in_(REACHED + FLOW_ENDED))
    left = (~got_somewhere,
            or_(Call.outcome.is_(None), Call.outcome.not_in(REACHED + FLOW_ENDED)))
    total = session.scalar(select(func.count()).select_from(Call).where(*ended)) or 0
    by_node = session.execute(
        select(Call.last_node, func.count()).where(*ended, *left).group_by(Call.last_node)
    ).all()
    counter: Counter[str] = Counter()
    for node, n in by_node:
        counter[node or UNKNOWN_NODE] += n
    return Abandonment(ended=total, abandoned=sum(counter.values()), by_node=ranked_counts(counter))
