"""What a ticket event looks like to the outside: one document, the same for every connector.

The webhook sends it as its JSON body, the email carries it as `ticket.json` next to the text,
and the Zammad connector writes its fields into the ticket and its articles. It is built once,
at a delivery's first try, and kept with the delivery: every later try sends the same bytes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callbacks import runtime
from callbacks.tickets.ticket import Ticket, TicketEvent
from callbacks.voicemail import VoicemailAudio
from callbacks.workqueue.callback_requests import OPEN_STATUSES, CallbackRequest

SCHEMA = "helpdesk-ivr.ticket-event/1"
RECORDING_KINDS = ("transcribed", "transcription_no_speech", "transcription_bad_audio",
                   "transcription_no_model", "transcription_failed", "caller_message")
"""Events whose message carries the recording (by then the worker has stored it)."""


class EventPart(BaseModel):
    """The ticket event being delivered."""

    id: int = Field(description="Increases with every event of a ticket: apply in this order")
    kind: str = Field(description="created, transcribed, status, assigned, note, reply, ...")
    detail: str = Field(description="What happened, as the ticket's history says it")
    by: str = Field(description="Who did it: an agent's user name, 'system', or a connector")
    at: datetime


class TicketPart(BaseModel):
    """The ticket as it stood when the delivery was first tried."""

    number: str = Field(description="The number callers hear, e.g. 10042")
    status: str
    caller: str = Field(description="The caller's number in E.164")
    caller_name: str = Field(description="From the caller directory; empty when unknown")
    department: str
    category: str
    priority: str = Field(description="P1 (most urgent) to P4")
    language: str
    transcription: str = Field(description="pending, done, no_speech, bad_audio, no_model, "
                                           "failed, or none (no recording)")
    transcript: str
    menu_path: str = Field(description="The menu nodes the call passed through")
    due_at: datetime | None = Field(description="The SLA due time, when there is one")
    created_at: datetime
    console_url: str = Field(description="The ticket in the agents' console")


class RecordingPart(BaseModel):
    """The voicemail recording: whether it is kept, its size, and whether it travels along."""

    available: bool
    bytes: int | None
    included: bool = Field(description="Attached to this message (email, Zammad)")
    note: str = Field(description="Why it is not included, when it is not")


class TicketEventPayload(BaseModel):
    """The body of a delivery: the event, the ticket, and the recording's status."""

    schema_: str = Field(alias="schema", description=f"Always '{SCHEMA}'")
    idempotency_key: str = Field(description="The same on every try of this event to this "
                                             "receiver; also the Idempotency-Key header")
    connector: str
    event: EventPart
    ticket: TicketPart
    recording: RecordingPart

    model_config = {"populate_by_name": True}

    def to_json(self) -> str:
        """The canonical JSON text (the bytes that are signed and sent)."""
        return json.dumps(self.model_dump(mode="json", by_alias=True), ensure_ascii=False,
                          sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TicketEventPayload:
        """A payload kept with a delivery."""
        return cls.model_validate_json(text)


def build_payload(session: Session, *, key: str, connector: str, event_id: int,
                  max_recording_bytes: int | None, public_base_url: str) -> TicketEventPayload:
    """The document for one event to one connector, from SQL as it stands now."""
    return build_payloads(session, {event_id: key}, connector=connector,
                          max_recording_bytes=max_recording_bytes,
                          public_base_url=public_base_url)[event_id]


def build_payloads(session: Session, keys: dict[int, str], *, connector: str,
                   max_recording_bytes: int | None,
                   public_base_url: str) -> dict[int, TicketEventPayload]:
    """The documents of several events (event id -> idempotency key) in one round trip: the
    events, their tickets, the open callbacks' due times and the recordings' sizes."""
    due = select(func.min(CallbackRequest.due_at)).where(
        CallbackRequest.ticket_id == Ticket.id,
        CallbackRequest.status.in_(OPEN_STATUSES)).scalar_subquery()
    size = select(func.length(VoicemailAudio.data)).where(
        VoicemailAudio.voicemail_id == _recording_of()).scalar_subquery()
    rows = session.execute(
        select(TicketEvent, Ticket, due, size).join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .where(TicketEvent.id.in_(list(keys)))).all()
    base = public_base_url.rstrip("/")
    found = {}
    for ticket_event, ticket, callback_due, audio_size in rows:
        employee = _directory_entry(ticket.caller)
        found[ticket_event.id] = TicketEventPayload(
            schema=SCHEMA, idempotency_key=keys[ticket_event.id], connector=connector,
            event=EventPart(id=ticket_event.id, kind=ticket_event.kind,
                            detail=ticket_event.detail, by=ticket_event.by, at=ticket_event.at),
            ticket=TicketPart(
                number=ticket.number, status=ticket.status, caller=ticket.caller,
                caller_name=employee[0], department=employee[1], category=ticket.category,
                priority=ticket.priority, language=ticket.language,
                transcription=ticket.transcription, transcript=ticket.transcript,
                menu_path=ticket.menu_path, due_at=_due_at(ticket, callback_due),
                created_at=ticket.created_at,
                console_url=f"{base}/console/tickets/{ticket.number}"),
            recording=_recording(audio_size, ticket_event.kind, max_recording_bytes))
    return found


def recording_bytes(session: Session, event_id: int) -> bytes | None:
    """The recording an event's message carries (what `recording.included` promises)."""
    return session.scalar(
        select(VoicemailAudio.data).where(VoicemailAudio.voicemail_id == _recording_of())
        .select_from(TicketEvent).join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .where(TicketEvent.id == event_id))


def _recording_of() -> Any:
    """The voicemail whose recording belongs to an event: its own (a message a repeat caller
    added, where events keep one), else the ticket's first."""
    own = getattr(TicketEvent, "voicemail_id", None)
    return func.coalesce(own, Ticket.voicemail_id) if own is not None else Ticket.voicemail_id


def _directory_entry(caller: str) -> tuple[str, str]:
    try:
        employee = runtime.directory().lookup(caller)
    except runtime.NotConfigured:
        return "", ""
    return (employee.name, employee.department) if employee else ("", "")


def _due_at(ticket: Ticket, callback_due: datetime | None) -> datetime | None:
    """The ticket's own SLA due time where it has one, else its open callback's."""
    own = getattr(ticket, "due_at", None)
    if isinstance(own, datetime):
        return own
    if callback_due is not None and callback_due.tzinfo is None:
        return callback_due.replace(tzinfo=UTC)
    return callback_due


def _recording(size: int | None, kind: str, max_bytes: int | None) -> RecordingPart:
    if size is None:
        return RecordingPart(available=False, bytes=None, included=False,
                             note="no recording is kept for this ticket")
    if max_bytes is None or kind not in RECORDING_KINDS:
        return RecordingPart(available=True, bytes=size, included=False,
                             note="listen in the console")
    if size > max_bytes:
        return RecordingPart(available=True, bytes=size, included=False,
                             note=f"the recording ({_kib(size)}) is larger than the "
                                  f"{_kib(max_bytes)} limit; listen in the console")
    return RecordingPart(available=True, bytes=size, included=True, note="")


def _kib(size: int) -> str:
    return f"{size / 1024:.0f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MiB"
