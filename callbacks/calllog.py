"""The call log: each call, the path of nodes and inputs it took, its outcome and timings.

Every write is idempotent, because Twilio delivers the same webhook again when it retries.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from callbacks.db import Base, UTCDateTime, insert_ignoring_duplicates, utcnow

FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


class Call(Base):
    """One phone call to the support line."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    caller: Mapped[str] = mapped_column(String(64), default="")
    called: Mapped[str] = mapped_column(String(64), default="")
    flow_version_id: Mapped[int | None] = mapped_column(ForeignKey("flow_versions.id"))
    language: Mapped[str] = mapped_column(String(8), default="")
    status: Mapped[str] = mapped_column(String(16), default="in-progress")
    outcome: Mapped[str | None] = mapped_column(String(32))
    last_node: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)


class CallStep(Base):
    """One webhook of a call: the event, the caller's input and the nodes it passed."""

    __tablename__ = "call_steps"
    __table_args__ = (UniqueConstraint("call_sid", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign key: a step must be logged even if its call's entry row is missing.
    call_sid: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int]
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    event: Mapped[str] = mapped_column(String(16))
    node: Mapped[str] = mapped_column(String(64), default="")
    input: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str | None] = mapped_column(String(32))


@dataclass(frozen=True)
class StepRecord:
    """What one webhook did, to be written to the log."""

    call_sid: str
    seq: int
    event: str
    node: str
    input: str | None
    path: tuple[str, ...]
    outcome: str | None
    language: str | None = None


@functools.lru_cache(maxsize=4096)
def normalize_number(raw: str) -> str:
    """A caller id in E.164 when it is a phone number; anything else (anonymous, client:x) as is."""
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return raw.strip()[:64]
    if not phonenumbers.is_possible_number(number):
        return raw.strip()[:64]
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def open_call(
    session: Session,
    call_sid: str,
    caller: str,
    called: str,
    flow_version_id: int | None,
    language: str,
    at: datetime | None = None,
) -> None:
    """Log a new call; a repeated entry webhook for the same CallSid changes nothing."""
    session.execute(
        insert_ignoring_duplicates(session, Call.__table__, ["call_sid"]).values(
            call_sid=call_sid,
            caller=normalize_number(caller),
            called=normalize_number(called),
            flow_version_id=flow_version_id,
            language=language,
            status="in-progress",
            started_at=at or utcnow(),
        )
    )


def record_status(
    session: Session,
    call_sid: str,
    status: str,
    duration_seconds: int | None,
    caller: str = "",
    called: str = "",
    at: datetime | None = None,
) -> None:
    """Apply a call-status callback; repeats and late, out-of-order deliveries change nothing."""
    now = at or utcnow()
    open_call(session, call_sid, caller, called, None, "", at=now)
    call = session.scalar(select(Call).where(Call.call_sid == call_sid).with_for_update())
    assert call is not None
    if call.status in FINAL_STATUSES:
        return
    call.status = status
    if status in FINAL_STATUSES:
        call.ended_at = now
        call.duration_seconds = duration_seconds
        if call.outcome is None:
            call.outcome = "abandoned" if status == "completed" else status


def call_path(session: Session, call_sid: str) -> list[CallStep]:
    """The logged steps of a call in order."""
    query = select(CallStep).where(CallStep.call_sid == call_sid).order_by(CallStep.seq)
    return list(session.scalars(query))
