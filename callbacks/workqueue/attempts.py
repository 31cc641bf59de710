"""Callback attempts: each time the dialer rings an agent and then the caller, and how it ended."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from callbacks.db import Base, UTCDateTime, utcnow

LIVE_STAGES = ("dialing_agent", "whisper", "dialing_caller", "connected")
"""Stages of an attempt still on the phone; anything else is an outcome."""

OUTCOMES = (
    "completed",          # agent and caller talked
    "caller_busy", "caller_no_answer", "caller_failed",
    "agent_no_answer", "agent_busy", "agent_failed", "agent_hung_up",
    "dial_error",         # Twilio refused to place the call
    "abandoned",          # the reconciler found it stuck
)
CALLER_MISSED = ("caller_busy", "caller_no_answer", "caller_failed")
"""Outcomes that count against the caller's attempts; the others put the request back."""


class CallbackAttempt(Base):
    """One try at calling a caller back: ring the agent, whisper, bridge the caller."""

    __tablename__ = "callback_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("callback_requests.id",
                                                       ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    number: Mapped[int] = mapped_column(Integer, default=1)
    stage: Mapped[str] = mapped_column(String(24), default="dialing_agent")
    mode: Mapped[str] = mapped_column(String(16), default="progressive")
    agent_call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    caller_call_sid: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    talk_seconds: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="")

    @property
    def live(self) -> bool:
        """Whether the attempt is still on the phone."""
        return self.stage in LIVE_STAGES


def attempts_for(session: Session, request_id: int) -> list[CallbackAttempt]:
    """A request's attempts, oldest first."""
    return list(session.scalars(select(CallbackAttempt)
                                .where(CallbackAttempt.request_id == request_id)
                                .order_by(CallbackAttempt.id)))


def live_attempt_of_agent(session: Session, agent_id: int) -> CallbackAttempt | None:
    """The attempt an agent is on right now, if any."""
    return session.scalar(select(CallbackAttempt)
                          .where(CallbackAttempt.agent_id == agent_id,
                                 CallbackAttempt.stage.in_(LIVE_STAGES))
                          .order_by(CallbackAttempt.id.desc()).limit(1))
