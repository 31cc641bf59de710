"""The wallboard: the desk at a glance for supervisors, read from SQL on every refresh.

Callers waiting now (per language, with the agents signed in and free who speak it, and per
topic), the longest wait, the agents in each state, today's service level, average speed of
answer and abandonment while waiting (see service_level.py; today is the display time zone's
day), and the callbacks that may be dialled now or are past their deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from callbacks.priority import LivePolicy
from callbacks.workqueue.agents import AVAILABILITY, Agent
from callbacks.workqueue.callback_requests import OPEN_STATUSES, CallbackRequest
from callbacks.workqueue.live_calls import IN_LINE, LiveCall
from callbacks.workqueue.service_level import ServiceFigures, overall
from callbacks.workqueue.skills import AgentSkill


@dataclass(frozen=True)
class WaitingGroup:
    """Callers waiting now who share a language or a topic ('' when it is unknown)."""

    code: str
    waiting: int
    longest_since: datetime | None
    """When the caller waiting longest joined the line (None: nobody waits)."""


@dataclass(frozen=True)
class LanguageLine(WaitingGroup):
    """A language's callers waiting now, and the agents who could take them."""

    agents_signed_in: int = 0
    agents_free: int = 0


@dataclass(frozen=True)
class AgentsInState:
    """The agents in one availability state, by name."""

    state: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Wallboard:
    """Everything the wallboard shows, as of `at`."""

    at: datetime
    day: date
    """Today in the display time zone: the day `today` counts."""
    waiting: int
    longest_since: datetime | None
    by_language: tuple[LanguageLine, ...]
    by_topic: tuple[WaitingGroup, ...]
    agents: tuple[AgentsInState, ...]
    today: ServiceFigures
    targets: tuple[tuple[str, int], ...]
    """Each live priority and its answer target in seconds."""
    callbacks_due_now: int
    """Waiting callbacks that may be dialled now."""
    callbacks_overdue: int
    """Open callbacks past their deadline."""


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The first moment of `day` in `zone` and of the day after, in UTC."""
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    return start, datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)


def wallboard(session: Session, now: datetime, zone: ZoneInfo, live: LivePolicy) -> Wallboard:
    """The wallboard as of `now`; `zone` says which day is today."""
    day = now.astimezone(zone).date()
    since, until = day_bounds(day, zone)
    by_language = waiting_by_language(session)
    by_topic = _waiting_by(session, LiveCall.category)
    due_now, overdue = session.execute(select(
        func.coalesce(func.sum(case(((CallbackRequest.status == "pending")
                                     & (CallbackRequest.available_at <= now), 1), else_=0)), 0),
        func.coalesce(func.sum(case((CallbackRequest.due_at < now, 1), else_=0)), 0))
        .where(CallbackRequest.status.in_(OPEN_STATUSES))).one()
    firsts = [group.longest_since for group in by_topic if group.longest_since is not None]
    return Wallboard(
        at=now, day=day, waiting=sum(group.waiting for group in by_topic),
        longest_since=min(firsts, default=None), by_language=by_language, by_topic=by_topic,
        agents=agents_by_state(session), today=overall(session, since, until, now),
        targets=tuple((level.name, int(level.target.total_seconds())) for level in live.levels),
        callbacks_due_now=int(due_now), callbacks_overdue=int(overdue))


def _waiting_by(session: Session, column: Any) -> tuple[WaitingGroup, ...]:
    rows = session.execute(
        select(column, func.count(LiveCall.id), func.min(LiveCall.entered_at))
        .where(LiveCall.status.in_(IN_LINE)).group_by(column)).all()
    groups = [WaitingGroup(str(code or ""), int(n), first) for code, n, first in rows]
    return tuple(sorted(groups, key=lambda group: (-group.waiting, group.code)))


def waiting_by_language(session: Session) -> tuple[LanguageLine, ...]:
    """Per language that callers wait in or signed-in agents speak: callers waiting, the
    longest wait, and the agents signed in and free who speak it (for callers of unknown
    language: every agent)."""
    waiting = {group.code: group for group in _waiting_by(session, LiveCall.language)}
    takes_calls = Agent.active.is_(True) & (Agent.phone != "")
    signed_in = func.coalesce(func.sum(case((Agent.availability != "offline", 1), else_=0)), 0)
    free = func.coalesce(func.sum(case((Agent.availability == "available", 1), else_=0)), 0)
    agents = {str(code): (int(n_in), int(n_free)) for code, n_in, n_free in session.execute(
        select(AgentSkill.code, signed_in, free).join(Agent, Agent.id == AgentSkill.agent_id)
        .where(AgentSkill.kind == "language", takes_calls).group_by(AgentSkill.code))
        if n_in}
    if "" in waiting:
        n_in, n_free = session.execute(select(signed_in, free).where(takes_calls)).one()
        agents[""] = (int(n_in), int(n_free))
    lines = []
    for code in set(waiting) | set(agents):
        group = waiting.get(code, WaitingGroup(code, 0, None))
        n_in, n_free = agents.get(code, (0, 0))
        lines.append(LanguageLine(code, group.waiting, group.longest_since, n_in, n_free))
    return tuple(sorted(lines, key=lambda line: (-line.waiting, -line.agents_signed_in,
                                                 line.code)))


def agents_by_state(session: Session) -> tuple[AgentsInState, ...]:
    """Active agents' names in each availability state (available first, offline last)."""
    names: dict[str, list[str]] = {state: [] for state in AVAILABILITY}
    for state, display_name, username in session.execute(
            select(Agent.availability, Agent.display_name, Agent.username)
            .where(Agent.active.is_(True))
            .order_by(Agent.availability_since, Agent.username)):
        names.setdefault(state, []).append(display_name or username)
    return tuple(AgentsInState(state, tuple(found)) for state, found in names.items())
