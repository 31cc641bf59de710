"""How quickly live callers were answered: service level, average speed of answer and
abandonment while waiting, overall, per language, per topic and per agent.

Every figure is computed in SQL over the live calls that joined a line in a period (a caller
counts on the day they joined, whatever happened later), with the same rules for the wallboard
(today) and the reports (a range of days):

- **answered**: an agent picked up and the caller was brought to them (`answered_at`);
- **speed of answer**: seconds from joining the line to being answered (`wait_seconds` of an
  answered call); the average is over answered callers;
- **met the target**: answered by their due time (joining time + their priority's `target`
  in `priorities.yaml` `live:`); **missed**: answered later, still waiting past the due time,
  or gone unanswered (hung up, chose a callback or voicemail, overflowed, lost) after it.
  Callers who left within their target without being answered, and callers still waiting
  who are not yet due, are left out: service level = met / (met + missed);
- **abandoned**: hung up while waiting; the rate is of the callers who joined.

Per agent: the calls they answered (speed, target), the rings of their phone for a caller
(`rung`), rings they did not answer (no answer, busy, failed), and callers who hung up while
their phone was ringing for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from callbacks.workqueue.agents import Agent
from callbacks.workqueue.live_calls import IN_LINE, LiveCall, LiveOffer

LEFT_UNANSWERED = ("abandoned", "overflowed", "to_callback", "to_voicemail", "lost")
"""How a caller can leave the line without an agent."""
UNANSWERED_RINGS = ("agent_no_answer", "agent_busy", "agent_failed")
NO_TOPIC = "(no topic)"
NO_LANGUAGE = "(unknown)"
NO_AGENT = "(deleted agent)"


@dataclass(frozen=True)
class ServiceFigures:
    """How the callers of one group (a language, a topic, everyone) were answered."""

    label: str
    callers: int
    answered: int
    average_answer_seconds: float | None
    met: int
    missed: int
    abandoned: int

    @property
    def service_level_percent(self) -> float | None:
        """Met as a share of met + missed, in percent; None while nothing is decided."""
        decided = self.met + self.missed
        return round(100 * self.met / decided, 1) if decided else None

    @property
    def abandoned_percent(self) -> float | None:
        """Callers who hung up while waiting, as a share of those who joined, in percent."""
        return round(100 * self.abandoned / self.callers, 1) if self.callers else None


@dataclass(frozen=True)
class AgentServiceFigures:
    """How one agent answered live callers: their phone's rings and the callers they took."""

    label: str
    rung: int
    answered: int
    average_answer_seconds: float | None
    met: int
    missed: int
    rings_unanswered: int
    abandoned_while_ringing: int

    @property
    def service_level_percent(self) -> float | None:
        """Of the callers this agent answered, the share answered within target, in percent."""
        decided = self.met + self.missed
        return round(100 * self.met / decided, 1) if decided else None


def answered() -> ColumnElement[bool]:
    """The caller was answered by an agent."""
    return LiveCall.answered_at.is_not(None)


def met_target() -> ColumnElement[bool]:
    """Answered by the due time."""
    return and_(LiveCall.answered_at.is_not(None), LiveCall.answered_at <= LiveCall.due_at)


def missed_target(now: datetime) -> ColumnElement[bool]:
    """Answered late, waiting past the due time, or gone unanswered after it."""
    left_at = func.coalesce(LiveCall.ended_at, LiveCall.updated_at)
    return or_(
        and_(LiveCall.answered_at.is_not(None), LiveCall.answered_at > LiveCall.due_at),
        and_(LiveCall.answered_at.is_(None), LiveCall.status.in_(IN_LINE),
             LiveCall.due_at < now),
        and_(LiveCall.answered_at.is_(None), LiveCall.status.in_(LEFT_UNANSWERED),
             left_at > LiveCall.due_at))


def joined_between(since: datetime, until: datetime) -> ColumnElement[bool]:
    """Callers who joined a line in [since, until)."""
    return and_(LiveCall.entered_at >= since, LiveCall.entered_at < until)


def _tally(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _figure_columns(now: datetime) -> tuple[ColumnElement[Any], ...]:
    return (func.count(LiveCall.id), _tally(answered()),
            func.avg(case((answered(), LiveCall.wait_seconds))),
            _tally(met_target()), _tally(missed_target(now)),
            _tally(LiveCall.status == "abandoned"))


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


def _figures(label: str, row: Any) -> ServiceFigures:
    callers, answered_, average, met, missed, abandoned = row
    return ServiceFigures(label, int(callers or 0), int(answered_ or 0), _seconds(average),
                          int(met or 0), int(missed or 0), int(abandoned or 0))


def overall(session: Session, since: datetime, until: datetime,
            now: datetime) -> ServiceFigures:
    """Every caller who joined a line in [since, until)."""
    row = session.execute(select(*_figure_columns(now))
                          .where(joined_between(since, until))).one()
    return _figures("all", row)


def by_language(session: Session, since: datetime, until: datetime,
                now: datetime) -> tuple[ServiceFigures, ...]:
    """The callers of [since, until) per language, most callers first."""
    return _grouped(session, LiveCall.language, NO_LANGUAGE, since, until, now)


def by_topic(session: Session, since: datetime, until: datetime,
             now: datetime) -> tuple[ServiceFigures, ...]:
    """The callers of [since, until) per topic (the queue node's category), most first."""
    return _grouped(session, LiveCall.category, NO_TOPIC, since, until, now)


def _grouped(session: Session, column: Any, empty: str, since: datetime, until: datetime,
             now: datetime) -> tuple[ServiceFigures, ...]:
    rows = session.execute(select(column, *_figure_columns(now))
                           .where(joined_between(since, until)).group_by(column)).all()
    found = [_figures(str(row[0]) or empty, row[1:]) for row in rows]
    return tuple(sorted(found, key=lambda figures: (-figures.callers, figures.label)))


def by_agent(session: Session, since: datetime, until: datetime,
             now: datetime) -> tuple[AgentServiceFigures, ...]:
    """Per agent, for the callers who joined in [since, until): rings, answers, speed,
    target, unanswered rings and callers who hung up while the agent's phone rang."""
    took = {row[0]: row[1:] for row in session.execute(
        select(LiveCall.agent_id, _tally(answered()),
               func.avg(case((answered(), LiveCall.wait_seconds))),
               _tally(met_target()), _tally(missed_target(now)))
        .where(joined_between(since, until), LiveCall.agent_id.is_not(None))
        .group_by(LiveCall.agent_id))}
    rings = {row[0]: row[1:] for row in session.execute(
        select(LiveOffer.agent_id, func.count(LiveOffer.id),
               _tally(LiveOffer.stage.in_(UNANSWERED_RINGS)),
               _tally(and_(LiveOffer.stage == "caller_gone", LiveCall.status == "abandoned")))
        .join(LiveCall, LiveCall.id == LiveOffer.live_call_id)
        .where(joined_between(since, until)).group_by(LiveOffer.agent_id))}
    names = {agent_id: name or username for agent_id, name, username in session.execute(
        select(Agent.id, Agent.display_name, Agent.username)
        .where(Agent.id.in_(sorted(set(took) | set(rings)))))}
    found = []
    for agent_id in set(took) | set(rings):
        answered_, average, met, missed = took.get(agent_id, (0, None, 0, 0))
        rung, unanswered, gone = rings.get(agent_id, (0, 0, 0))
        found.append(AgentServiceFigures(
            names.get(agent_id, NO_AGENT), int(rung or 0), int(answered_ or 0),
            _seconds(average), int(met or 0), int(missed or 0), int(unanswered or 0),
            int(gone or 0)))
    return tuple(sorted(found, key=lambda figures: (-figures.answered, -figures.rung,
                                                    figures.label)))
