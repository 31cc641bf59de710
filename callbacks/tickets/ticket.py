"""Tickets: who called, when, in which language, about what, how urgent, and their history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Computed, Float, ForeignKey, Index, String, Text, select
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, Session, deferred, mapped_column

from callbacks.calllog import CallStep, normalize_number
from callbacks.db import (
    Base,
    UTCDateTime,
    insert_ignoring_duplicates,
    small_number,
    utcnow,
)
from callbacks.delivery.outbox import record_event
from callbacks.voicemail import Voicemail

if TYPE_CHECKING:
    from callbacks.workqueue.callback_requests import CallbackRequest

NUMBER_BASE = 10000
"""Ticket numbers are the id plus this, so callers hear five digits from the first ticket."""

TRANSCRIPTION_STATES = ("pending", "done", "no_speech", "bad_audio", "no_model", "failed", "none")
"""'none': a ticket without a recording (a callback asked for in the menu)."""

SEARCH_CONFIGURATIONS = {"en": "english", "de": "german", "ru": "russian"}
"""PostgreSQL's text search configuration per ticket language; any other language (Polish
has none in PostgreSQL) is searched with 'simple': whole words, no stemming."""


def _search_expression() -> str:
    """The generated column's SQL: the transcripts as a tsvector in the ticket's language."""
    cases = " ".join(f"WHEN '{code}' THEN '{name}'::regconfig"
                     for code, name in SEARCH_CONFIGURATIONS.items())
    return (f"to_tsvector(CASE language {cases} ELSE 'simple'::regconfig END, "
            "coalesce(transcript, '') || ' ' || coalesce(added_transcripts, ''))")


SEARCH_EXPRESSION = _search_expression()


class Ticket(Base):
    """A caller's problem as agents work it: one per voicemail recording or callback request."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_search_vector", "search_vector", postgresql_using="gin"),
    )
    # The search column exists on PostgreSQL only and is never read: no RETURNING for it.
    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[int] = mapped_column(primary_key=True)
    voicemail_id: Mapped[int | None] = mapped_column(ForeignKey("voicemails.id"), unique=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    caller: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="")
    category: Mapped[str] = mapped_column(String(32), default="other")
    priority: Mapped[str] = mapped_column(String(8), default="P3")
    menu_path: Mapped[str] = mapped_column(Text, default="")
    transcript: Mapped[str] = mapped_column(Text, default="")
    words_json: Mapped[str] = mapped_column(Text, default="[]")
    confidence: Mapped[float | None] = mapped_column(Float)
    transcription: Mapped[str] = mapped_column(String(16), default="pending")
    audio_notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(24), default="new", index=True)
    """new, assigned, in_progress, waiting_for_caller, resolved or closed (tickets/workflow)."""
    assigned_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    """The SLA deadline of the ticket's priority, counted from its creation."""
    added_transcripts: Mapped[str] = mapped_column(Text, default="")
    """Transcripts of the messages a repeat caller added by phone (searched with the first)."""
    sms_sid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    search_vector: Mapped[str | None] = deferred(mapped_column(
        TSVECTOR().with_variant(Text(), "sqlite"), Computed(SEARCH_EXPRESSION, persisted=True)))
    """PostgreSQL only (the migration adds it there): the words of the transcripts, stemmed in
    the ticket's language, behind a GIN index. SQLite searches the text with LIKE instead."""

    @property
    def number(self) -> str:
        """The number callers and agents use."""
        return ticket_number(self.id)


class TicketEvent(Base):
    """One entry of a ticket's history: created, transcribed, SMS sent, resolved, ..."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    by: Mapped[str] = mapped_column(String(128), default="system")
    notify: Mapped[bool] = mapped_column(Boolean, default=False)
    """The caller gets a text about this event (a status change, a reply), sent once."""
    about_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_events.id", ondelete="SET NULL"), index=True)
    """The event a follow-up is about: the text sent, failed or skipped for a status change."""
    voicemail_id: Mapped[int | None] = mapped_column(
        ForeignKey("voicemails.id", ondelete="SET NULL"))
    """A message the caller added by phone (caller_message): its recording."""


@dataclass(frozen=True)
class TranscriptionResult:
    """What the voicemail job learned, to be written onto the ticket."""

    transcription: str
    transcript: str
    words_json: str
    confidence: float | None
    category: str
    priority: str
    audio_notes: str
    detail: str


def ticket_number(ticket_id: int) -> str:
    """The public number of a ticket id."""
    return str(NUMBER_BASE + ticket_id)


def ticket_id_from_number(number: str) -> int | None:
    """The id behind a public ticket number, or None if it cannot be one."""
    digits = number.strip().lstrip("#")
    value = small_number(digits)
    if value is None or value <= NUMBER_BASE:
        return None
    return value - NUMBER_BASE


def spoken_number(number: str) -> str:
    """Digits separated so text-to-speech reads them one by one."""
    return " ".join(number)


def open_ticket_for_voicemail(session: Session, voicemail: Voicemail, caller: str) -> Ticket:
    """The voicemail's ticket, created once (a repeated webhook finds the same one).

    `caller` comes with the webhook: the call's own log row may still be on its way.
    """
    values: dict[str, Any] = {
        "voicemail_id": voicemail.id,
        "call_sid": voicemail.call_sid,
        "caller": normalize_number(caller) if caller else "",
        "language": voicemail.language,
        "category": voicemail.category_hint or "other",
        "priority": voicemail.priority_hint or "P3",
        "menu_path": menu_path(session, voicemail.call_sid),
        "transcription": "pending",
        "status": "new",
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    # RETURNING says whether this report made the row (an ORM session's rowcount is -1).
    inserted = session.scalar(
        insert_ignoring_duplicates(session, Ticket.__table__, ["voicemail_id"]).values(**values)
        .returning(Ticket.__table__.c.id))
    ticket = session.scalar(select(Ticket).where(Ticket.voicemail_id == voicemail.id))
    assert ticket is not None
    if inserted is not None:
        add_event(session, ticket, "created",
                  f"voicemail of {voicemail.duration_seconds} s at node {voicemail.node}")
    return ticket


def open_ticket_for_callback(session: Session, request: CallbackRequest,
                            call_sid: str) -> tuple[Ticket, bool]:
    """The callback request's ticket, and whether it is new: a joined request keeps its own.

    Runs in the transaction that holds the request's row, so a repeated webhook finds the
    ticket of the first delivery. The ticket's number is the one we will call (and text).
    """
    if request.ticket_id is not None:
        ticket = session.get(Ticket, request.ticket_id)
        if ticket is not None:
            return ticket, False
    moment = utcnow()
    ticket = Ticket(
        voicemail_id=None, call_sid=call_sid, caller=request.dial_number or request.caller,
        language=request.language, category=request.category, priority=request.priority,
        menu_path=menu_path(session, call_sid), transcription="none", status="new",
        created_at=moment, updated_at=moment,
    )
    session.add(ticket)
    session.flush()
    request.ticket_id = ticket.id
    window = f", window {request.window}" if request.window else ""
    add_event(session, ticket, "created", f"callback request {request.id} from the menu{window}")
    return ticket, True


def menu_path(session: Session, call_sid: str) -> str:
    """The nodes a call passed through, in order, as logged."""
    paths = session.scalars(
        select(CallStep.path).where(CallStep.call_sid == call_sid).order_by(CallStep.seq)
    )
    return " ".join(path for path in paths if path)


def add_event(session: Session, ticket: Ticket, kind: str, detail: str = "",
              by: str = "system", *, notify: bool = False, about_event_id: int | None = None,
              voicemail_id: int | None = None) -> TicketEvent:
    """Append to a ticket's history (`notify`: the caller gets a text about it; `about_event_id`:
    the event a follow-up such as sms_sent is about; `voicemail_id`: a message the caller added
    by phone). In the same transaction, the event goes to the outbox of every connector that
    delivers this kind of event to the company's ticket system."""
    event = TicketEvent(ticket_id=ticket.id, kind=kind, detail=detail, by=by, at=utcnow(),
                        notify=notify, about_event_id=about_event_id, voicemail_id=voicemail_id)
    session.add(event)
    record_event(session, ticket, event)
    return event


def apply_transcription(session: Session, ticket: Ticket, result: TranscriptionResult) -> None:
    """Write what the voicemail job found onto the ticket and into its history (and the
    menu path, complete by now: the call log is written behind the webhooks)."""
    ticket.menu_path = menu_path(session, ticket.call_sid) or ticket.menu_path
    ticket.transcription = result.transcription
    ticket.transcript = result.transcript
    ticket.words_json = result.words_json
    ticket.confidence = result.confidence
    ticket.category = result.category
    ticket.priority = result.priority
    ticket.audio_notes = result.audio_notes
    add_event(session, ticket, "transcribed" if result.transcription == "done"
              else f"transcription_{result.transcription}", result.detail)


def history(session: Session, ticket_id: int) -> list[TicketEvent]:
    """A ticket's events, oldest first."""
    query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
    return list(session.scalars(query))
