"""Live calls: callers waiting on the line for an agent, and each ring of an agent's phone.

A live call joins the line `waiting`, ordered with callbacks by its SLA due time. A router
claims it for a free agent (`offered`) and rings the agent (a live offer); when the agent
answers, the caller is dequeued into a conference with them (`bridged`), and `done` once they
have talked. An agent who does not answer puts the caller back to `waiting` with the same due
time: first in line. Ways out while waiting: `abandoned` (hung up), `overflowed` (max wait, or
no qualified agent signed in), `to_callback` (key 1), `to_voicemail` (key 2) and `lost` (the
provider stopped asking for the hold loop: the reconciler closes it).

Every change is a conditional UPDATE or happens under the row's lock, so a repeated webhook
or two processes at once change nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from callbacks.db import Base, UTCDateTime, insert_ignoring_duplicates, utcnow

IN_LINE = ("waiting", "offered")
"""Statuses of a caller still in the provider's queue."""
OPEN = ("waiting", "offered", "bridged")
LEFT_LINE = ("overflowed", "to_callback", "to_voicemail")
"""Ways out the hold loop chose; the provider reports the caller leaving afterwards."""
ENDED = ("done", "abandoned", "lost")
EXIT_REASONS = {"overflowed": "overflow", "to_callback": "callback", "to_voicemail": "voicemail"}
"""What the flow hears (QueueLeft) when a caller left the line this way."""

HEARTBEAT = timedelta(seconds=20)
"""How often a waiting caller's hold loop notes that they are still there (last_seen_at)."""

LIVE_OFFER_STAGES = ("ringing_agent", "bridging", "talking")
"""Stages of an offer still on the phone; anything else is an outcome."""
OFFER_OUTCOMES = ("completed", "agent_no_answer", "agent_busy", "agent_failed", "agent_hung_up",
                  "caller_gone", "dial_error", "abandoned")

_LIVE_OFFER_SQL = "stage IN ('ringing_agent', 'bridging', 'talking')"


class LiveCall(Base):
    """A caller on the line waiting for (or talking to) an agent."""

    __tablename__ = "live_calls"
    __table_args__ = (
        Index("ix_live_calls_waiting_language_due", "language", "due_at", "id",
              postgresql_where=text("status = 'waiting'"),
              sqlite_where=text("status = 'waiting'")),
        Index("ix_live_calls_waiting_topic_due", "language", "category", "due_at", "id",
              postgresql_where=text("status = 'waiting'"),
              sqlite_where=text("status = 'waiting'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    caller: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="")
    category: Mapped[str] = mapped_column(String(32), default="")
    priority: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[str] = mapped_column(Text, default="")
    flow_version_id: Mapped[int | None] = mapped_column(ForeignKey("flow_versions.id"))
    node: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer, default=1)
    """The step number of the call's queue URLs (the call log counts steps per call)."""
    queue_name: Mapped[str] = mapped_column(String(64))
    queue_sid: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="waiting", index=True)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    """When the caller first joined the line; reports and the wallboard count them on its day."""
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    overflow_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """Entered plus the priority's max wait: from then on the caller goes to the overflow."""
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wait_seconds: Mapped[int | None] = mapped_column(Integer)
    offers: Mapped[int] = mapped_column(Integer, default=0)
    outcome_detail: Mapped[str] = mapped_column(Text, default="")
    callback_request_id: Mapped[int | None] = mapped_column(ForeignKey("callback_requests.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LiveOffer(Base):
    """One ring of one agent's phone for one live call, and how it ended."""

    __tablename__ = "live_offers"
    __table_args__ = (
        # the database itself refuses a second ring for a caller, or for an agent, at once
        Index("uq_live_offers_live_call", "live_call_id", unique=True,
              postgresql_where=text(_LIVE_OFFER_SQL), sqlite_where=text(_LIVE_OFFER_SQL)),
        Index("uq_live_offers_agent", "agent_id", unique=True,
              postgresql_where=text(_LIVE_OFFER_SQL), sqlite_where=text(_LIVE_OFFER_SQL)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    live_call_id: Mapped[int] = mapped_column(ForeignKey("live_calls.id", ondelete="CASCADE"),
                                              index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    agent_call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    stage: Mapped[str] = mapped_column(String(24), default="ringing_agent")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detail: Mapped[str] = mapped_column(Text, default="")

    @property
    def live(self) -> bool:
        """Whether the offer is still on the phone."""
        return self.stage in LIVE_OFFER_STAGES


@dataclass(frozen=True)
class LineAsk:
    """A caller joining the line of a queue node, with the urgency already decided."""

    call_sid: str
    caller: str
    language: str
    category: str
    priority: str
    reasons: str
    flow_version_id: int
    node: str
    seq: int
    queue_name: str
    due_at: datetime
    overflow_at: datetime


def join_line(session: Session, ask: LineAsk, now: datetime) -> LiveCall:
    """The caller's live call, waiting (written once per CallSid; a repeated webhook finds it).

    A caller who comes back to a queue node after leaving its line (a callback dialog that
    gave up, a menu after the overflow) waits again with their first due time: their place.
    """
    session.execute(insert_ignoring_duplicates(session, LiveCall.__table__, ["call_sid"]).values(
        call_sid=ask.call_sid, caller=ask.caller, language=ask.language,
        category=ask.category, priority=ask.priority, reasons=ask.reasons,
        flow_version_id=ask.flow_version_id, node=ask.node, seq=ask.seq,
        queue_name=ask.queue_name, status="waiting", entered_at=now, due_at=ask.due_at,
        overflow_at=ask.overflow_at, last_seen_at=now, offers=0, outcome_detail="",
        updated_at=now))
    call = session.scalar(select(LiveCall).where(LiveCall.call_sid == ask.call_sid)
                          .with_for_update())
    assert call is not None
    if call.status in LEFT_LINE or call.status == "lost":
        call.status, call.ended_at, call.wait_seconds = "waiting", None, None
        call.node, call.seq, call.queue_name = ask.node, ask.seq, ask.queue_name
        call.category = ask.category
        call.overflow_at = ask.overflow_at
        call.last_seen_at, call.announced_at = now, None
        call.claimed_by = call.claimed_at = None
    return call


def live_call_by_sid(session: Session, call_sid: str, *, lock: bool = False) -> LiveCall | None:
    """The live call of a CallSid (locked for update with `lock`)."""
    query = select(LiveCall).where(LiveCall.call_sid == call_sid)
    return session.scalar(query.with_for_update() if lock else query)


def record_wait_pass(session: Session, call_sid: str, queue_sid: str, now: datetime
                     ) -> LiveCall | None:
    """The provider asked for the hold loop: the caller is here (a call the reconciler had
    closed as lost is waiting again); the queue's SID is kept for dequeuing. Committed.

    The row is written at most every HEARTBEAT and only by short statements: a router's claim
    passes over rows other transactions hold (FOR UPDATE SKIP LOCKED), so a caller whose hold
    loop held their row would lose their turn.
    """
    session.execute(update(LiveCall).where(
        LiveCall.call_sid == call_sid,
        LiveCall.last_seen_at < now - HEARTBEAT).values(last_seen_at=now))
    if queue_sid:
        session.execute(update(LiveCall).where(LiveCall.call_sid == call_sid,
                                               LiveCall.queue_sid.is_(None))
                        .values(queue_sid=queue_sid[:64]))
    session.execute(update(LiveCall).where(LiveCall.call_sid == call_sid,
                                           LiveCall.status == "lost")
                    .values(status="waiting", ended_at=None, wait_seconds=None,
                            last_seen_at=now,
                            outcome_detail="back after the reconciler counted it lost"))
    session.commit()
    return session.scalar(select(LiveCall).where(LiveCall.call_sid == call_sid)
                          .execution_options(populate_existing=True))


def note_announced(session: Session, call: LiveCall, now: datetime) -> None:
    """The caller has just heard their place and wait (committed with the pass)."""
    session.execute(update(LiveCall).where(LiveCall.id == call.id)
                    .values(announced_at=now))


def leave_line(session: Session, call: LiveCall, status: str, now: datetime,
               detail: str = "", queue_seconds: int | None = None,
               from_statuses: tuple[str, ...] = IN_LINE) -> LiveOffer | None:
    """Take a caller out of the line (`status`: abandoned, overflowed, to_callback,
    to_voicemail); the offer still ringing an agent for them, now ended, if any.

    `call` must be locked (`live_call_by_sid(..., lock=True)`). Nothing changes unless the
    caller is in one of `from_statuses` (in line).
    """
    if call.status not in from_statuses:
        return None
    call.status = status
    call.claimed_by = call.claimed_at = None
    call.outcome_detail = detail or call.outcome_detail
    if status == "abandoned":
        call.ended_at = now
        call.wait_seconds = _waited(call, now, queue_seconds)
    ringing = session.scalar(select(LiveOffer).where(
        LiveOffer.live_call_id == call.id, LiveOffer.stage == "ringing_agent")
        .with_for_update())
    if ringing is not None:
        end_offer(ringing, "caller_gone", f"the caller left the line ({status})", now)
    return ringing


def note_left(call: LiveCall, now: datetime, queue_seconds: int | None) -> str:
    """The provider reports the caller out of the line after a way out was chosen; the reason
    the flow hears (overflow, callback, voicemail)."""
    if call.status in IN_LINE:  # left without our say (the provider's own limits)
        call.status = "overflowed"
        call.outcome_detail = "left the line without a choice; sent to the overflow"
    if call.ended_at is None and call.status in LEFT_LINE:
        call.ended_at = now
        call.wait_seconds = _waited(call, now, queue_seconds)
    return EXIT_REASONS.get(call.status, "overflow")


def end_offer(offer: LiveOffer, outcome: str, detail: str, now: datetime) -> None:
    """Record how an offer ended."""
    offer.stage, offer.detail, offer.ended_at = outcome, detail, now


def put_back_in_line(session: Session, live_call_id: int, detail: str) -> bool:
    """An offered caller waits again, first in line (the same due time); False if the caller
    was not offered any more (gone, or someone else's offer)."""
    changed = session.execute(
        update(LiveCall).where(LiveCall.id == live_call_id, LiveCall.status == "offered")
        .values(status="waiting", claimed_by=None, claimed_at=None, outcome_detail=detail,
                updated_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    return bool(changed)


def live_offer_of_call(session: Session, live_call_id: int) -> LiveOffer | None:
    """The offer on the phone for a live call right now, if any."""
    return session.scalar(select(LiveOffer).where(LiveOffer.live_call_id == live_call_id,
                                                  LiveOffer.stage.in_(LIVE_OFFER_STAGES)))


def live_offer_of_agent(session: Session, agent_id: int) -> LiveOffer | None:
    """The offer an agent is on right now, if any."""
    return session.scalar(select(LiveOffer).where(LiveOffer.agent_id == agent_id,
                                                  LiveOffer.stage.in_(LIVE_OFFER_STAGES)))


def _waited(call: LiveCall, now: datetime, queue_seconds: int | None) -> int:
    """Seconds in line: the provider's QueueTime when it gave one, else our own clock."""
    if queue_seconds is not None and 0 <= queue_seconds < 24 * 3600:
        return queue_seconds
    return max(0, int((now - call.entered_at) / timedelta(seconds=1)))
