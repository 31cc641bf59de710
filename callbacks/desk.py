"""The agents' desk: the call list in queue order (callers waiting on the line beside the
callbacks), a callback's and a ticket's story, and the one-click actions (call now, snooze,
resolve with a note, reassign, availability).

The console pages and the JSON API both call these functions; they hold no HTTP.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from callbacks import runtime
from callbacks.db import utcnow
from callbacks.display_time import local_text, readers_zone
from callbacks.tickets.caller_texts import CallerText, compose, why_no_text
from callbacks.tickets.ticket import (
    Ticket,
    TicketEvent,
    add_event,
    history,
    open_ticket_for_callback,
)
from callbacks.tickets.workflow import (
    CALLER_STATUSES,
    REOPENED,
    TicketError,
    change_status,
    is_overdue,
    next_statuses,
)
from callbacks.voicemail import Voicemail, VoicemailAudio
from callbacks.workqueue.agents import CHOSEN_STATES, Agent, set_availability
from callbacks.workqueue.attempts import CallbackAttempt, attempts_for
from callbacks.workqueue.callback_requests import OPEN_STATUSES, CallbackRequest
from callbacks.workqueue.dialer import enqueue_dial
from callbacks.workqueue.line import LiveEntry, callers_in_line

SNIPPET = 140
"""Characters of a transcript shown in the call list."""
NOTE_PLACEHOLDER = "[your note]"
REPLY_PLACEHOLDER = "[your reply]"


class DeskError(ValueError):
    """An action that cannot be done as asked; the message says why, for the agent."""


class ReservedError(DeskError):
    """The callback is reserved for another agent; only they or an admin may change that."""


@dataclass(frozen=True)
class CallListEntry:
    """One line of the call list: who, why, how urgent, since when, how many tries."""

    id: int
    caller: str
    caller_name: str
    dial_number: str
    category: str
    priority: str
    reasons: str
    status: str
    language: str
    window: str
    first_contact_at: datetime
    due_at: datetime
    available_at: datetime
    wait_minutes: int
    overdue: bool
    waiting_for_window: bool
    attempts: int
    contacts: int
    ticket_id: int | None
    ticket_number: str | None
    snippet: str
    assigned_agent: str | None
    claimed_by: str | None
    assigned_agent_id: int | None = None
    text_failed: bool = False
    """A text to the caller about this callback's ticket could not be sent (none went since)."""
    ticket_status: str | None = None

    kind = "callback"


@dataclass(frozen=True)
class CallbackStory:
    """A callback with its ticket, its attempts and the ticket's history."""

    entry: CallListEntry
    ticket: Ticket | None
    attempts: list[CallbackAttempt]
    events: list[TicketEvent]


@dataclass(frozen=True)
class TicketStory:
    """A ticket with its transcript, whether audio is kept, its history and its callbacks, who
    has it, where it may go next and what each move would text the caller."""

    ticket: Ticket
    has_audio: bool
    events: list[TicketEvent]
    callbacks: list[CallListEntry]
    assigned_agent: str | None = None
    overdue: bool = False
    next_statuses: tuple[str, ...] = ()
    no_text_reason: str | None = None
    """Why the caller cannot be texted (no mobile number, opted out); None: they can."""
    status_texts: dict[str, CallerText] = field(default_factory=dict)
    """What each next status would text the caller, the note shown as a placeholder."""
    reply_text: CallerText | None = None
    message_audio: frozenset[int] = frozenset()
    """Voicemails the caller added by phone whose recording is kept."""


def call_list(session: Session, now: datetime | None = None, *, include_closed: bool = False,
              limit: int = 200) -> list[CallListEntry]:
    """Open callbacks in the order the dialer takes them (earliest deadline first)."""
    moment = now or utcnow()
    query = select(CallbackRequest, Ticket).outerjoin(
        Ticket, Ticket.id == CallbackRequest.ticket_id)
    if not include_closed:
        query = query.where(CallbackRequest.status.in_(OPEN_STATUSES))
    rows = session.execute(query.order_by(CallbackRequest.due_at, CallbackRequest.id)
                           .limit(limit)).all()
    names = _agent_names(session)
    unsent = _failed_text_tickets(session, [ticket.id for _, ticket in rows if ticket])
    return [dataclasses.replace(_entry(request, ticket, names, moment),
                                text_failed=ticket is not None and ticket.id in unsent)
            for request, ticket in rows]


def work_list(session: Session, now: datetime | None = None,
              limit: int = 200) -> list[LiveEntry | CallListEntry]:
    """Callers waiting on the line and open callbacks in the order agents get them: by due
    time, a caller on the line before a callback due at the same moment."""
    moment = now or utcnow()
    entries: list[LiveEntry | CallListEntry] = [
        *callers_in_line(session, runtime.directory(), moment, limit),
        *call_list(session, moment, limit=limit)]
    return sorted(entries, key=lambda entry: (entry.due_at, entry.kind != "live", entry.id))


def failed_texts(events: list[TicketEvent]) -> list[TicketEvent]:
    """The texts to the caller that could not be sent, with no text sent since (oldest first)."""
    failed: list[TicketEvent] = []
    for event in events:
        if event.kind == "sms_failed":
            failed.append(event)
        elif event.kind == "sms_sent":
            failed = []
    return failed


def callback_story(session: Session, request_id: int,
                   now: datetime | None = None) -> CallbackStory | None:
    """Everything about one callback, or None if there is no such request."""
    request = session.get(CallbackRequest, request_id)
    if request is None:
        return None
    ticket = session.get(Ticket, request.ticket_id) if request.ticket_id else None
    entry = _entry(request, ticket, _agent_names(session), now or utcnow())
    events = history(session, ticket.id) if ticket else []
    return CallbackStory(entry, ticket, attempts_for(session, request.id), events)


def ticket_story(session: Session, ticket_id: int,
                 now: datetime | None = None) -> TicketStory | None:
    """Everything about one ticket, or None if there is no such ticket."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return None
    has_audio = ticket.voicemail_id is not None and session.scalar(
        select(VoicemailAudio.voicemail_id).where(
            VoicemailAudio.voicemail_id == ticket.voicemail_id)) is not None
    names = _agent_names(session)
    requests = session.scalars(select(CallbackRequest).where(
        CallbackRequest.ticket_id == ticket.id).order_by(CallbackRequest.id))
    moment = now or utcnow()
    events = history(session, ticket.id)
    added = [event.voicemail_id for event in events if event.voicemail_id is not None]
    kept = frozenset(session.scalars(select(VoicemailAudio.voicemail_id).where(
        VoicemailAudio.voicemail_id.in_(added)))) if added else frozenset()
    reason = why_no_text(session, ticket)
    choices = next_statuses(ticket)
    texts = {} if reason else {
        status: compose(ticket, status, NOTE_PLACEHOLDER) for status in choices
        if status in CALLER_STATUSES or status == REOPENED}
    return TicketStory(
        ticket, bool(has_audio), events,
        [_entry(request, ticket, names, moment) for request in requests],
        assigned_agent=names.get(ticket.assigned_agent_id) if ticket.assigned_agent_id
        else None, overdue=is_overdue(ticket, moment), next_statuses=choices,
        no_text_reason=reason, status_texts=texts,
        reply_text=None if reason else compose(ticket, "reply", REPLY_PLACEHOLDER),
        message_audio=kept)


def message_audio(session: Session, ticket_id: int, voicemail_id: int) -> bytes | None:
    """The recording of a message a repeat caller added to this ticket (signed-in agents)."""
    voicemail = session.get(Voicemail, voicemail_id)
    if voicemail is None or voicemail.ticket_id != ticket_id:
        return None
    audio = session.get(VoicemailAudio, voicemail_id)
    return audio.data if audio is not None else None


def ticket_audio(session: Session, ticket_id: int) -> bytes | None:
    """The kept recording of a ticket's voicemail (for signed-in agents only)."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or ticket.voicemail_id is None:
        return None
    audio = session.get(VoicemailAudio, ticket.voicemail_id)
    return audio.data if audio is not None else None


def snooze_callback(session: Session, request_id: int, until: datetime, by: Agent,
                    now: datetime | None = None) -> CallbackRequest:
    """Hide a waiting callback from the dialer until `until` (the deadline stays as it was)."""
    request = _pending(session, request_id)
    if until.tzinfo is None:
        raise DeskError("give the time with its time zone")
    if until <= (now or utcnow()):
        raise DeskError("snooze until a time in the future")
    until = until.astimezone(UTC)
    request.available_at = until
    _log(session, request, "snoozed", f"until {local_text(until, readers_zone(session))}", by)
    session.commit()
    return request


def reassign_callback(session: Session, request_id: int, agent_id: int | None,
                      by: Agent) -> CallbackRequest:
    """Reserve a callback for one agent (only they will get it), or free it for everyone.

    A reservation is changed only by the agent holding it or by an admin (whose override of
    someone else's reservation the history names).
    """
    request = session.get(CallbackRequest, request_id, with_for_update=True)
    if request is None or request.status not in OPEN_STATUSES:
        raise DeskError("this callback is closed")
    target = session.get(Agent, agent_id) if agent_id is not None else None
    if agent_id is not None and (target is None or not target.active):
        raise DeskError("no such agent")
    holder = session.get(Agent, request.assigned_agent_id) if request.assigned_agent_id else None
    override = ""
    if holder is not None and holder.id != by.id and holder.id != agent_id:
        if not by.is_admin:
            raise ReservedError(f"this callback is reserved for {holder.name}; only they or "
                                "an admin can reassign it")
        override = f" (reserved for {holder.name} before; admin override)"
    request.assigned_agent_id = agent_id
    _log(session, request, "reassigned",
         (f"to {target.name}" if target else "to anyone") + override, by)
    session.commit()
    if target is not None:
        enqueue_dial(runtime.redis(), target.id)
    return request


def resolve_callback(session: Session, request_id: int, note: str,
                     by: Agent) -> CallbackRequest:
    """Close a callback (and its ticket) with a note; the caller gets a status SMS.

    A callback queued without a ticket gets one here, so the note is kept and the caller's
    text can quote a ticket number.
    """
    if not note.strip():
        raise DeskError("write a short note for the caller")
    request = session.get(CallbackRequest, request_id, with_for_update=True)
    if request is None:
        raise DeskError("no such callback")
    if request.status == "claimed":
        raise DeskError("this callback is being dialled; resolve it after the call")
    if request.status == "pending":
        request.status, request.closed_at = "done", utcnow()
    if request.ticket_id is None:
        open_ticket_for_callback(session, request, request.first_call_sid)
    assert request.ticket_id is not None
    resolve_ticket(session, request.ticket_id, note, by)
    return request


def resolve_ticket(session: Session, ticket_id: int, note: str, by: Agent) -> Ticket:
    """Resolve a ticket with a note, close its waiting callbacks, and text the caller."""
    note = note.strip()
    if not note:
        raise DeskError("write a short note for the caller")
    ticket = session.get(Ticket, ticket_id, with_for_update=True)
    if ticket is None:
        raise DeskError("no such ticket")
    try:
        change_status(session, ticket, "resolved", by=by.username, note=note)
    except TicketError as refused:
        raise DeskError(str(refused)) from None
    session.commit()  # the caller's text is queued once this commits
    return ticket


def change_availability(session: Session, agent: Agent, availability: str) -> Agent:
    """An agent sets their state; becoming available lets the router give them the next call
    (a caller waiting in line, or for progressive agents a callback)."""
    if availability == "on_call":
        raise DeskError("'on call' is set by the dialer")
    if availability == "offline":
        raise DeskError("you are offline once you sign out; choose away to pause")
    if agent.availability == "on_call":
        raise DeskError("you are on a call; your state changes when it ends")
    if availability not in CHOSEN_STATES or not set_availability(session, agent, availability):
        raise DeskError(f"availability is one of {', '.join(CHOSEN_STATES)}")
    session.commit()
    if availability == "available":
        enqueue_dial(runtime.redis(), agent.id)
    return agent


def _pending(session: Session, request_id: int) -> CallbackRequest:
    request = session.get(CallbackRequest, request_id, with_for_update=True)
    if request is None:
        raise DeskError("no such callback")
    if request.status != "pending":
        raise DeskError(f"this callback is {request.status}, not waiting")
    return request


def _log(session: Session, request: CallbackRequest, kind: str, detail: str,
         by: Agent) -> None:
    ticket = session.get(Ticket, request.ticket_id) if request.ticket_id else None
    if ticket is not None:
        add_event(session, ticket, kind, f"callback {request.id} {detail}", by=by.username)


def _failed_text_tickets(session: Session, ticket_ids: list[int]) -> set[int]:
    """Which of these tickets have a failed text with no text sent after it."""
    if not ticket_ids:
        return set()
    sent_later = aliased(TicketEvent)
    return set(session.scalars(
        select(TicketEvent.ticket_id).where(
            TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.kind == "sms_failed",
            ~select(sent_later.id).where(sent_later.ticket_id == TicketEvent.ticket_id,
                                         sent_later.kind == "sms_sent",
                                         sent_later.id > TicketEvent.id).exists())))


def _agent_names(session: Session) -> dict[int, str]:
    return {agent.id: agent.name for agent in session.scalars(select(Agent))}


def _entry(request: CallbackRequest, ticket: Ticket | None, names: dict[int, str],
           now: datetime) -> CallListEntry:
    employee = runtime.directory().lookup(request.caller)
    transcript = ticket.transcript if ticket is not None else ""
    return CallListEntry(
        id=request.id, caller=request.caller, caller_name=employee.name if employee else "",
        dial_number=request.dial_number or request.caller, category=request.category,
        priority=request.priority, reasons=request.reasons, status=request.status,
        language=request.language, window=request.window,
        first_contact_at=request.first_contact_at, due_at=request.due_at,
        available_at=request.available_at,
        wait_minutes=max(0, int((now - request.first_contact_at).total_seconds() // 60)),
        overdue=request.status in OPEN_STATUSES and request.due_at < now,
        waiting_for_window=request.available_at > now,
        attempts=request.attempts, contacts=request.contacts, ticket_id=request.ticket_id,
        ticket_number=ticket.number if ticket is not None else None,
        snippet=transcript[:SNIPPET] + ("…" if len(transcript) > SNIPPET else ""),
        assigned_agent=names.get(request.assigned_agent_id) if request.assigned_agent_id
        else None,
        claimed_by=request.claimed_by,
        assigned_agent_id=request.assigned_agent_id,
        ticket_status=ticket.status if ticket is not None else None,
    )
