"""Callback requests: one open request per caller and problem, ordered by its SLA deadline.

Ordering by `due_at` (earliest deadline first) ages old requests for free: a low-priority
request asked for long ago overtakes a fresh urgent one once its deadline comes first.
`available_at` hides a request until it may be dialled (a caller's window, a retry backoff).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    and_,
    func,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from callbacks.db import Base, UTCDateTime, first_row_autocommit, utcnow

OPEN_STATUSES = ("pending", "claimed")
CLOSED_STATUSES = ("done", "unreachable", "cancelled")


class CallbackRequest(Base):
    """A caller waiting to be called back."""

    __tablename__ = "callback_requests"
    __table_args__ = (
        Index("ix_callback_requests_pending_due", "due_at", "id",
              postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
        # the matching takes the head of each agent language's (and topic's) range
        Index("ix_callback_requests_pending_language_due", "language", "due_at", "id",
              postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
        Index("ix_callback_requests_pending_topic_due", "language", "category", "due_at", "id",
              postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
        Index("uq_callback_requests_open_problem", "caller", "category", unique=True,
              postgresql_where=text("status IN ('pending', 'claimed')"),
              sqlite_where=text("status IN ('pending', 'claimed')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    caller: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32), default="other")
    language: Mapped[str] = mapped_column(String(8), default="")
    priority: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[str] = mapped_column(Text, default="")
    first_call_sid: Mapped[str] = mapped_column(String(64))
    last_call_sid: Mapped[str] = mapped_column(String(64), default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    contacts: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    first_contact_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assigned_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    window: Mapped[str] = mapped_column(String(32), default="")
    dial_number: Mapped[str] = mapped_column(String(64), default="")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


@dataclass(frozen=True)
class CallbackAsk:
    """A caller asking to be called back (from the menu, or from a voicemail's ticket)."""

    caller: str
    category: str
    language: str
    priority: str
    reasons: str
    call_sid: str
    due_at: datetime
    available_at: datetime
    ticket_id: int | None = None
    dial_number: str | None = None
    """The number to dial ('' = the caller id); None when the caller was not asked."""
    window: str | None = None
    """The caller's window label ('asap', 'afternoon', ...); None when not asked."""
    first_contact_at: datetime | None = None
    """When the caller first asked for help (joined the line); None: now."""


def request_callback(session: Session, ask: CallbackAsk, rank: dict[str, int]) -> CallbackRequest:
    """Open a request, or join the caller's open one about the same problem.

    Joining counts the contact and keeps the earlier (more urgent) priority and deadline; the
    place in the queue counts from the first contact and is never reset. A number or window
    the caller gave this time replaces the earlier one (the deadline never before the window).
    """
    try:
        with session.begin_nested():
            return _open_or_join(session, ask, rank)
    except IntegrityError:
        # Another process opened the same caller's request a moment ago: join that one.
        return _open_or_join(session, ask, rank)


def _open_or_join(session: Session, ask: CallbackAsk, rank: dict[str, int]) -> CallbackRequest:
    existing = session.scalar(
        select(CallbackRequest)
        .where(CallbackRequest.caller == ask.caller, CallbackRequest.category == ask.category,
               CallbackRequest.status.in_(OPEN_STATUSES))
        .with_for_update()
    )
    if existing is None:
        request = CallbackRequest(
            caller=ask.caller, category=ask.category, language=ask.language,
            priority=ask.priority, reasons=ask.reasons, first_call_sid=ask.call_sid,
            last_call_sid=ask.call_sid,
            ticket_id=ask.ticket_id, contacts=1, status="pending",
            first_contact_at=ask.first_contact_at or utcnow(), due_at=ask.due_at,
            available_at=ask.available_at,
            dial_number=ask.dial_number or "", window=ask.window or "",
        )
        session.add(request)
        session.flush()
        return request
    if existing.last_call_sid == ask.call_sid:
        return existing  # Twilio delivered the same call's webhook again
    existing.last_call_sid = ask.call_sid
    existing.contacts += 1
    if rank.get(ask.priority, 99) < rank.get(existing.priority, 99):
        existing.priority = ask.priority
    existing.due_at = min(existing.due_at, ask.due_at)
    if ask.first_contact_at is not None:
        existing.first_contact_at = min(existing.first_contact_at, ask.first_contact_at)
    if ask.dial_number is not None:
        existing.dial_number = ask.dial_number
    if ask.window is not None:
        existing.window = ask.window
        existing.available_at = ask.available_at
        existing.due_at = max(existing.due_at, ask.available_at)
    existing.reasons = "; ".join(r for r in (existing.reasons, ask.reasons) if r)
    existing.ticket_id = existing.ticket_id or ask.ticket_id
    return existing


@dataclass(frozen=True)
class ClaimedCallback:
    """A request someone has just taken: everything needed to dial and whisper it."""

    id: int
    caller: str
    category: str
    language: str
    priority: str
    reasons: str
    ticket_id: int | None
    contacts: int
    attempts: int
    first_contact_at: datetime
    due_at: datetime


_CLAIMED_COLUMNS = tuple(f.name for f in dataclasses.fields(ClaimedCallback))

# The claim runs on every dial, so on PostgreSQL it is one statement on an autocommit
# connection: the row lock of FOR UPDATE SKIP LOCKED lasts exactly as long as the UPDATE.
_PG_CLAIM = f"""
UPDATE callback_requests
   SET status = 'claimed', claimed_by = %(claimer)s, claimed_at = %(moment)s,
       attempts = attempts + 1, updated_at = %(moment)s
 WHERE id = (SELECT id FROM callback_requests
              WHERE status = 'pending' AND available_at <= %(moment)s
                AND (assigned_agent_id IS NULL OR assigned_agent_id = %(agent)s)
              ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING {", ".join(_CLAIMED_COLUMNS)}
"""


def claim_next_callback(session: Session | Engine, claimer: str, now: datetime | None = None,
                        agent_id: int | None = None) -> ClaimedCallback | None:
    """Atomically take the pending request with the earliest deadline that may be dialled now.

    PostgreSQL skips rows other claimers hold (FOR UPDATE SKIP LOCKED), so two agents or
    workers never get the same caller; SQLite has a single writer. Pass the claim engine
    (`callbacks.db.make_claim_engine`, as the dialer does: the statement runs on a pooled
    autocommit connection, nothing else is sent) or a fresh session.
    Requests reassigned to an agent are only claimed for that agent (`agent_id`).
    """
    moment = now or utcnow()
    bind = session if isinstance(session, Engine) else session.get_bind()
    if bind.dialect.name == "postgresql":
        params = {"claimer": claimer, "moment": moment, "agent": agent_id}
        if isinstance(session, Engine):
            found = first_row_autocommit(session, _PG_CLAIM, params)
        else:
            connection = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            found = connection.exec_driver_sql(_PG_CLAIM, params).first()
        return ClaimedCallback(*found) if found is not None else None
    if isinstance(session, Engine):
        with Session(session) as own:
            return claim_next_callback(own, claimer, moment, agent_id)
    candidate = (
        select(CallbackRequest.id)
        .where(CallbackRequest.status == "pending", CallbackRequest.available_at <= moment,
               (CallbackRequest.assigned_agent_id.is_(None))
               | (CallbackRequest.assigned_agent_id == agent_id))
        .order_by(CallbackRequest.due_at, CallbackRequest.id)
        .limit(1)
        .scalar_subquery()
    )
    found = session.execute(
        update(CallbackRequest)
        .where(CallbackRequest.id == candidate)
        .values(status="claimed", claimed_by=claimer, claimed_at=moment,
                attempts=CallbackRequest.attempts + 1, updated_at=moment)
        .returning(*(getattr(CallbackRequest, name) for name in _CLAIMED_COLUMNS))
    ).first()
    session.commit()
    return ClaimedCallback(*found) if found is not None else None


def claim_callback(session: Session | Engine, request_id: int, claimer: str,
                   now: datetime | None = None,
                   agent_id: int | None = None) -> ClaimedCallback | None:
    """Atomically take one pending request (an agent chose it); None if it is not pending, or
    when `agent_id` is given and the request is reserved for someone else.

    Pass a fresh session or the claim engine (`callbacks.db.make_claim_engine`).
    """
    if isinstance(session, Engine):
        with Session(session) as own:
            return claim_callback(own, request_id, claimer, now, agent_id)
    moment = now or utcnow()
    reservation = (CallbackRequest.assigned_agent_id.is_(None)
                   | (CallbackRequest.assigned_agent_id == agent_id)) if agent_id else true()
    found = session.execute(
        update(CallbackRequest)
        .where(CallbackRequest.id == request_id, CallbackRequest.status == "pending",
               reservation)
        .values(status="claimed", claimed_by=claimer, claimed_at=moment,
                attempts=CallbackRequest.attempts + 1, updated_at=moment)
        .returning(*(getattr(CallbackRequest, name) for name in _CLAIMED_COLUMNS))
    ).first()
    session.commit()
    return ClaimedCallback(*found) if found is not None else None


def put_back(session: Session, request_id: int, available_at: datetime, *,
             refund_attempt: bool = False) -> None:
    """Return a claimed request to the queue (nobody answered, the agent hung up, ...).

    `refund_attempt` when the caller was never rung: it does not count as an attempt on them.
    """
    values: dict[str, object] = {"status": "pending", "claimed_by": None, "claimed_at": None,
                                 "available_at": available_at, "updated_at": utcnow()}
    if refund_attempt:
        values["attempts"] = CallbackRequest.attempts - 1
    session.execute(
        update(CallbackRequest)
        .where(CallbackRequest.id == request_id, CallbackRequest.status == "claimed")
        .values(**values)
    )


def queue_place(session: Session, request: CallbackRequest) -> int:
    """The request's place in line: 1 + the open requests served before it (due_at, id)."""
    ahead = session.scalar(
        select(func.count()).select_from(CallbackRequest).where(
            CallbackRequest.status.in_(OPEN_STATUSES),
            CallbackRequest.id != request.id,
            or_(CallbackRequest.due_at < request.due_at,
                and_(CallbackRequest.due_at == request.due_at,
                     CallbackRequest.id < request.id)),
        )
    )
    return 1 + (ahead or 0)
