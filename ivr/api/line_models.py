"""The JSON API's bodies for the live line: an agent's current call, Take next, the wallboard."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from callbacks.workqueue.current_work import CurrentWork, NextItem
from callbacks.workqueue.wallboard import LanguageLine, WaitingGroup, Wallboard


class CurrentWorkOut(BaseModel):
    """The call an agent is on now (a caller from the line or a callback), or none."""

    availability: str = Field(description="available, on_call, wrap_up, away or offline")
    free: bool = Field(description="Available and on no call: the next caller they qualify "
                                   "for rings them")
    kind: Literal["live", "callback"] | None = Field(
        description="live: a caller from the line; callback; null: not on a call")
    stage: str = Field(description="ringing (the agent's phone), connecting (bringing the "
                                   "caller in) or talking; empty when not on a call")
    item_id: int | None = Field(description="The live call's or the callback's id")
    caller: str
    caller_name: str = Field(description="The caller's name in the directory, if known")
    language: str
    category: str
    priority: str
    reasons: str
    since: datetime | None = Field(description="When this call started for the agent")
    waiting_since: datetime | None = Field(
        description="When the caller joined the line, or first asked for the callback")
    ticket_number: str | None

    @classmethod
    def of(cls, current: CurrentWork) -> CurrentWorkOut:
        """The API form of an agent's current work."""
        return cls(availability=current.availability, free=current.free,
                   kind=current.kind,  # type: ignore[arg-type]
                   stage=current.stage, item_id=current.item_id, caller=current.caller,
                   caller_name=current.caller_name, language=current.language,
                   category=current.category, priority=current.priority,
                   reasons=current.reasons, since=current.since,
                   waiting_since=current.waiting_since, ticket_number=current.ticket_number)


class NextOut(BaseModel):
    """What Take next gave the agent."""

    outcome: Literal["live", "callback", "nothing"] = Field(
        description="live: the agent's phone rings for a caller on the line; callback: it "
                    "rings for a callback; nothing: nothing the agent qualifies for waits "
                    "(they are available now)")
    message: str = Field(description="The same, in a sentence for the agent")
    current: CurrentWorkOut

    @classmethod
    def of(cls, taken: NextItem) -> NextOut:
        """The API form of Take next's result."""
        return cls(outcome=taken.outcome,  # type: ignore[arg-type]
                   message=taken.message, current=CurrentWorkOut.of(taken.current))


class WaitingOut(BaseModel):
    """Callers waiting now who share a language or a topic."""

    code: str = Field(description="The language or topic; empty when unknown")
    waiting: int
    longest_since: datetime | None = Field(
        description="When the caller waiting longest joined the line")
    agents_signed_in: int | None = Field(
        None, description="Languages only: agents signed in who speak it")
    agents_free: int | None = Field(None, description="Languages only: agents available now "
                                                      "who speak it")

    @classmethod
    def of(cls, group: WaitingGroup) -> WaitingOut:
        """The API form of a language's or a topic's waiting callers."""
        if isinstance(group, LanguageLine):
            return cls(code=group.code, waiting=group.waiting,
                       longest_since=group.longest_since,
                       agents_signed_in=group.agents_signed_in, agents_free=group.agents_free)
        return cls(code=group.code, waiting=group.waiting, longest_since=group.longest_since,
                   agents_signed_in=None, agents_free=None)


class TodayOut(BaseModel):
    """Today's live callers (counted on the day they joined a line, in the display zone)."""

    callers: int
    answered: int
    average_answer_seconds: float | None = Field(
        description="Average seconds from joining the line to being answered")
    met: int = Field(description="Answered within their priority's target")
    missed: int = Field(description="Answered late, or gone or still waiting past the target")
    service_level_percent: float | None = Field(description="met / (met + missed)")
    abandoned: int = Field(description="Hung up while waiting")
    abandoned_percent: float | None = Field(description="abandoned / callers")


class WallboardOut(BaseModel):
    """The desk at a glance: callers waiting, agents by state, today's figures, callbacks."""

    at: datetime
    day: date = Field(description="Today in the display time zone")
    waiting: int
    longest_since: datetime | None = Field(description="When the caller waiting longest "
                                                       "joined the line")
    by_language: list[WaitingOut]
    by_topic: list[WaitingOut]
    agents: dict[str, list[str]] = Field(
        description="Agents' names per state: available, on_call, wrap_up, away, offline")
    today: TodayOut
    targets: dict[str, int] = Field(description="Each live priority's answer target, seconds")
    callbacks_due_now: int = Field(description="Waiting callbacks that may be dialled now")
    callbacks_overdue: int = Field(description="Open callbacks past their deadline")

    @classmethod
    def of(cls, board: Wallboard) -> WallboardOut:
        """The API form of the wallboard."""
        today = board.today
        return cls(
            at=board.at, day=board.day, waiting=board.waiting,
            longest_since=board.longest_since,
            by_language=[WaitingOut.of(line) for line in board.by_language],
            by_topic=[WaitingOut.of(group) for group in board.by_topic],
            agents={group.state: list(group.names) for group in board.agents},
            today=TodayOut(callers=today.callers, answered=today.answered,
                           average_answer_seconds=today.average_answer_seconds,
                           met=today.met, missed=today.missed,
                           service_level_percent=today.service_level_percent,
                           abandoned=today.abandoned,
                           abandoned_percent=today.abandoned_percent),
            targets=dict(board.targets), callbacks_due_now=board.callbacks_due_now,
            callbacks_overdue=board.callbacks_overdue)
