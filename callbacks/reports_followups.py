"""Trend reports on the follow-up work: callbacks and their SLA, voicemails, satisfaction.

Ranges are those of `callbacks.reports`: a callback request belongs to the day of its first
contact, a voicemail to the day it was recorded, a survey answer to the day it was given.

Rules, as the reports page states them:
- **SLA met**: a request closed `done` at or before its `due_at`. Missed: done late, closed
  unreachable, or still open past its `due_at` now. Cancelled requests and open ones not yet
  due are left out of the percentage (shown as cancelled and waiting).
- **Time to first attempt**: from the first contact to the start of the first dial (every
  dial counts, also one the agent missed). Median of the requests dialled at least once;
  p90 is the nearest-rank 90th percentile.
- **Attempts per successful callback**: the dials of requests that reached the caller (an
  attempt that ended `completed`), divided by those requests.
- **Satisfaction** averages the answers (1-5) to the survey's 'overall' question, keypad and
  SMS alike, per agent (answers without one as "(no agent)") and per category.
- **Oldest waiting** is a snapshot of now, not filtered by date: per priority, the open
  request with the earliest first contact.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from callbacks.db import utcnow
from callbacks.reports import Count, ReportRange, ranked_counts
from callbacks.survey import SurveyAnswer
from callbacks.tickets.ticket import Ticket
from callbacks.voicemail import Voicemail
from callbacks.workqueue.agents import Agent
from callbacks.workqueue.attempts import CallbackAttempt
from callbacks.workqueue.callback_requests import OPEN_STATUSES, CallbackRequest

MAX_REQUESTS = 100_000
SATISFACTION_QUESTION = "overall"
"""The survey question satisfaction is read from ('resolved' asks something else)."""
ALL = "all"


@dataclass(frozen=True)
class PrioritySla:
    """How many requests of a priority met their SLA target."""

    priority: str
    requests: int
    met: int
    missed: int
    waiting: int
    cancelled: int

    @property
    def met_percent(self) -> float | None:
        """Met as a share of met + missed, in percent; None when nothing is decided yet."""
        decided = self.met + self.missed
        return round(100 * self.met / decided, 1) if decided else None


@dataclass(frozen=True)
class AttemptTimes:
    """How soon requests of a priority were first dialled and how many dials a success took."""

    priority: str
    dialled: int
    median_minutes: float | None
    p90_minutes: float | None
    successes: int
    attempts_of_successes: int

    @property
    def attempts_per_success(self) -> float | None:
        """Dials per request that reached the caller."""
        if not self.successes:
            return None
        return round(self.attempts_of_successes / self.successes, 2)


@dataclass(frozen=True)
class OldestWaiting:
    """The open request of a priority that has waited longest."""

    priority: str
    request_id: int
    first_contact_at: datetime
    waiting_minutes: int


@dataclass(frozen=True)
class CallbackReport:
    """SLA, timing and waiting figures of callback requests."""

    sla: tuple[PrioritySla, ...]
    times: tuple[AttemptTimes, ...]
    """Per priority, then one row for all priorities."""
    oldest: tuple[OldestWaiting, ...]


@dataclass(frozen=True)
class VoicemailReport:
    """Voicemails recorded in a range, per ticket category and per transcription state."""

    total: int
    by_category: tuple[Count, ...]
    by_transcription: tuple[Count, ...]


@dataclass(frozen=True)
class ScoreGroup:
    """Survey answers of an agent or a category: how many and their average score (1-5)."""

    label: str
    answers: int
    average: float


@dataclass(frozen=True)
class SatisfactionReport:
    """Survey answers given in a range, per agent and per category."""

    answers: int
    by_agent: tuple[ScoreGroup, ...]
    by_category: tuple[ScoreGroup, ...]


def nearest_rank(values: list[float], percent: float) -> float:
    """The nearest-rank percentile of non-empty `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def _minutes(seconds: float) -> float:
    return round(seconds / 60, 1)


def callback_report(session: Session, rng: ReportRange,
                    now: datetime | None = None) -> CallbackReport:
    """SLA met per priority, time to first attempt, attempts per success, oldest waiting."""
    moment = now or utcnow()
    dials = (select(CallbackAttempt.request_id, func.min(CallbackAttempt.started_at).label("first"),
                    func.count().label("dials"),
                    func.sum(case((CallbackAttempt.stage == "completed", 1), else_=0))
                    .label("completed"))
             .group_by(CallbackAttempt.request_id).subquery())
    rows = session.execute(
        select(CallbackRequest.priority, CallbackRequest.status, CallbackRequest.first_contact_at,
               CallbackRequest.due_at, CallbackRequest.closed_at, dials.c.first, dials.c.dials,
               dials.c.completed)
        .outerjoin(dials, dials.c.request_id == CallbackRequest.id)
        .where(CallbackRequest.first_contact_at >= rng.since,
               CallbackRequest.first_contact_at < rng.until)
        .limit(MAX_REQUESTS)
    ).all()
    outcomes: dict[str, Counter[str]] = {}
    waits: dict[str, list[float]] = {}
    successes: Counter[str] = Counter()
    success_dials: Counter[str] = Counter()
    for row in rows:
        outcomes.setdefault(row.priority, Counter())[_sla_outcome(row, moment)] += 1
        if row.first is not None:
            seconds = (row.first - row.first_contact_at).total_seconds()
            for key in (row.priority, ALL):
                waits.setdefault(key, []).append(seconds)
        if row.completed:
            for key in (row.priority, ALL):
                successes[key] += 1
                success_dials[key] += row.dials
    priorities = sorted(outcomes)
    sla = tuple(PrioritySla(p, sum(outcomes[p].values()), outcomes[p]["met"],
                            outcomes[p]["missed"], outcomes[p]["waiting"],
                            outcomes[p]["cancelled"]) for p in priorities)
    times = tuple(_attempt_times(key, waits.get(key, []), successes[key], success_dials[key])
                  for key in (*priorities, ALL))
    return CallbackReport(sla=sla, times=times, oldest=oldest_waiting(session, moment))


def _sla_outcome(row: object, now: datetime) -> str:
    status, due_at, closed_at = row.status, row.due_at, row.closed_at  # type: ignore[attr-defined]
    if status == "done":
        return "met" if closed_at is not None and closed_at <= due_at else "missed"
    if status == "cancelled":
        return "cancelled"
    if status in OPEN_STATUSES:
        return "missed" if due_at < now else "waiting"
    return "missed"  # unreachable: the caller never heard from us


def _attempt_times(priority: str, waits: list[float], successes: int,
                   dials: int) -> AttemptTimes:
    if not waits:
        return AttemptTimes(priority, 0, None, None, successes, dials)
    return AttemptTimes(priority, len(waits), _minutes(statistics.median(waits)),
                        _minutes(nearest_rank(waits, 90)), successes, dials)


def oldest_waiting(session: Session, now: datetime | None = None) -> tuple[OldestWaiting, ...]:
    """Per priority, the open request with the earliest first contact (a snapshot of now)."""
    moment = now or utcnow()
    firsts = session.execute(
        select(CallbackRequest.priority, func.min(CallbackRequest.first_contact_at))
        .where(CallbackRequest.status.in_(OPEN_STATUSES)).group_by(CallbackRequest.priority)
    ).all()
    oldest = []
    for priority, first_contact_at in sorted(firsts):
        request_id = session.scalar(
            select(func.min(CallbackRequest.id))
            .where(CallbackRequest.status.in_(OPEN_STATUSES), CallbackRequest.priority == priority,
                   CallbackRequest.first_contact_at == first_contact_at))
        minutes = int((moment - first_contact_at).total_seconds() // 60)
        oldest.append(OldestWaiting(priority, int(request_id or 0), first_contact_at, minutes))
    return tuple(oldest)


def voicemail_report(session: Session, rng: ReportRange) -> VoicemailReport:
    """Voicemails recorded in the range, per their ticket's category and transcription state."""
    rows = session.execute(
        select(func.coalesce(Ticket.category, "(no ticket)"),
               func.coalesce(Ticket.transcription, "pending"), func.count())
        .select_from(Voicemail).outerjoin(Ticket, Ticket.voicemail_id == Voicemail.id)
        .where(Voicemail.created_at >= rng.since, Voicemail.created_at < rng.until)
        .group_by(Ticket.category, Ticket.transcription)
    ).all()
    categories: Counter[str] = Counter()
    states: Counter[str] = Counter()
    for category, state, n in rows:
        categories[category] += n
        states[state] += n
    return VoicemailReport(total=sum(categories.values()), by_category=ranked_counts(categories),
                           by_transcription=ranked_counts(states))


def satisfaction_report(session: Session, rng: ReportRange) -> SatisfactionReport:
    """Answers to the overall question given in the range: count and average score per agent
    and per category."""
    in_range = (SurveyAnswer.answered_at >= rng.since, SurveyAnswer.answered_at < rng.until,
                SurveyAnswer.question == SATISFACTION_QUESTION)
    agent_name = func.coalesce(func.nullif(Agent.display_name, ""), Agent.username, "(no agent)")
    by_agent = session.execute(
        select(agent_name, func.count(), func.avg(SurveyAnswer.score))
        .select_from(SurveyAnswer).outerjoin(Agent, Agent.id == SurveyAnswer.agent_id)
        .where(*in_range).group_by(Agent.id, Agent.display_name, Agent.username)
    ).all()
    category = func.coalesce(func.nullif(SurveyAnswer.category, ""), "other")
    by_category = session.execute(
        select(category, func.count(), func.avg(SurveyAnswer.score))
        .where(*in_range).group_by(category)
    ).all()
    return SatisfactionReport(answers=sum(n for _label, n, _avg in by_agent),
                              by_agent=_score_groups(by_agent),
                              by_category=_score_groups(by_category))


def _score_groups(rows: Sequence[Any]) -> tuple[ScoreGroup, ...]:
    """(label, answers, average) rows as score groups, most answers first."""
    groups = [ScoreGroup(str(row[0]), int(row[1]), round(float(row[2]), 2)) for row in rows]
    return tuple(sorted(groups, key=lambda group: (-group.answers, group.label)))
