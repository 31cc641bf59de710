"""The ticket workflow: statuses and the moves between them, assignment, internal notes and
replies to the caller, and each ticket's SLA deadline.

Statuses go new -> assigned -> in_progress -> waiting_for_caller -> resolved -> closed. Agents
may skip ahead (a quick fix is resolved straight from new) and step back among the open ones;
a resolved or closed ticket only comes back by a reopen, to assigned (or new when nobody is
assigned). Every change is a TicketEvent added in the caller's transaction (`add_event`, where
delivery to other systems hooks in). A change the caller cares about (assigned, in progress,
waiting for them, resolved, closed, reopened) and a reply are marked `notify`: once the
transaction commits, one text per event is queued (callbacks/tickets/caller_texts.py), so a caller
never gets the same change twice, and never a text after STOP.

Functions here change the session and never commit: the caller commits (and the texts go).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks.db import utcnow
from callbacks.flowstore import compiled_version, published_version_for_number
from callbacks.priority import PriorityPolicy
from callbacks.tickets import caller_texts
from callbacks.tickets.ticket import Ticket, TicketEvent, add_event
from callbacks.workqueue.agents import Agent
from callbacks.workqueue.callback_requests import CallbackRequest
from routing.hours import BusinessHours

STATUSES = ("new", "assigned", "in_progress", "waiting_for_caller", "resolved", "closed")
OPEN_STATUSES = ("new", "assigned", "in_progress", "waiting_for_caller")
DONE_STATUSES = ("resolved", "closed")
REOPENED = "reopened"
"""Not a status: what change_status accepts for a reopen, and the caller's text for one."""
LABELS = {"new": "new", "assigned": "assigned", "in_progress": "in progress",
          "waiting_for_caller": "waiting for the caller", "resolved": "resolved",
          "closed": "closed", REOPENED: "reopened"}
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"assigned", "in_progress", "waiting_for_caller", "resolved", "closed"}),
    "assigned": frozenset({"new", "in_progress", "waiting_for_caller", "resolved", "closed"}),
    "in_progress": frozenset({"assigned", "waiting_for_caller", "resolved", "closed"}),
    "waiting_for_caller": frozenset({"assigned", "in_progress", "resolved", "closed"}),
    "resolved": frozenset({"closed"}),
    "closed": frozenset(),
}
"""Where each status may go by change_status; resolved and closed also reopen."""
CALLER_STATUSES = frozenset({"assigned", "in_progress", "waiting_for_caller", "resolved",
                             "closed"})
"""Statuses the caller is texted about (and every reopen); 'new' (unassigned) is not."""
MAX_NOTE = 2000
MAX_REPLY = 600
"""A reply is one text of about four SMS segments at most."""


class TicketError(ValueError):
    """A change the workflow does not allow, or cannot make as asked; the message says why."""


def label(status: str) -> str:
    """A status as people read it ('in progress', 'waiting for the caller')."""
    return LABELS.get(status, status.replace("_", " "))


def is_open(ticket: Ticket) -> bool:
    """Whether a ticket still needs work (not resolved or closed)."""
    return ticket.status not in DONE_STATUSES


def is_overdue(ticket: Ticket, now: datetime) -> bool:
    """An open ticket past its SLA deadline."""
    return is_open(ticket) and ticket.due_at is not None and ticket.due_at < now


def next_statuses(ticket: Ticket) -> tuple[str, ...]:
    """What an agent may move the ticket to, in workflow order ('reopened' for a done one)."""
    allowed = TRANSITIONS.get(ticket.status, frozenset())
    choices = tuple(status for status in STATUSES if status in allowed)
    return (*choices, REOPENED) if ticket.status in DONE_STATUSES else choices


def change_status(session: Session, ticket: Ticket, status: str, *, by: str, note: str = "",
                  notify: bool = True) -> TicketEvent:
    """Move a ticket to `status` (TicketError if the workflow does not allow it); records a
    `status` event (detail "old -> new[: note]") and, when `notify`, marks it for the caller's
    SMS in their language (sent by a job after commit, exactly once per event).

    'reopened' reopens a resolved or closed ticket; so does 'new' or 'assigned' given for one.
    """
    note = _clean(note, MAX_NOTE, "note")
    old = ticket.status
    if status == REOPENED or (old in DONE_STATUSES and status in ("new", "assigned")):
        return reopen(session, ticket, by=by, note=note, notify=notify)
    if status not in STATUSES:
        raise TicketError(f"'{status}' is not a status; one of: {', '.join(STATUSES)}")
    if status == old:
        raise TicketError(f"ticket {ticket.number} is {label(old)} already")
    if status not in TRANSITIONS.get(old, frozenset()):
        if old in DONE_STATUSES:
            raise TicketError(f"ticket {ticket.number} is {label(old)}: reopen it first")
        raise TicketError(f"ticket {ticket.number} cannot go from {label(old)} to "
                          f"{label(status)}")
    return _move(session, ticket, status, by=by, note=note, notify=notify)


def reopen(session: Session, ticket: Ticket, *, by: str, note: str = "",
           notify: bool = True) -> TicketEvent:
    """Open a resolved or closed ticket again: assigned to whoever had it, else new."""
    if ticket.status not in DONE_STATUSES:
        raise TicketError(f"ticket {ticket.number} is {label(ticket.status)}, not resolved or "
                          "closed: there is nothing to reopen")
    target = "assigned" if ticket.assigned_agent_id is not None else "new"
    return _move(session, ticket, target, by=by, note=_clean(note, MAX_NOTE, "note"),
                 notify=notify)


def assign(session: Session, ticket: Ticket, agent_id: int | None, *, by: str) -> TicketEvent:
    """Give a ticket to an agent (a new ticket becomes assigned), or to nobody (None: an
    assigned ticket goes back to new); the `assigned` event."""
    if agent_id is None:
        if ticket.assigned_agent_id is None:
            raise TicketError(f"ticket {ticket.number} is not assigned to anyone")
        ticket.assigned_agent_id = None
        event = add_event(session, ticket, "assigned", "to nobody", by=by)
        if ticket.status == "assigned":
            _move(session, ticket, "new", by=by)
        return event
    agent = session.get(Agent, agent_id)
    if agent is None or not agent.active:
        raise TicketError("no such agent")
    if ticket.status in DONE_STATUSES:
        raise TicketError(f"ticket {ticket.number} is {label(ticket.status)}: reopen it first")
    if ticket.assigned_agent_id == agent.id:
        raise TicketError(f"ticket {ticket.number} is assigned to {agent.name} already")
    ticket.assigned_agent_id = agent.id
    event = add_event(session, ticket, "assigned", f"to {agent.name} ({agent.username})", by=by)
    if ticket.status == "new":
        _move(session, ticket, "assigned", by=by)
    return event


def take(session: Session, ticket: Ticket, agent: Agent, *, by: str | None = None
         ) -> TicketEvent:
    """The agent takes the ticket: assigned to them (a new ticket becomes assigned)."""
    return assign(session, ticket, agent.id, by=by or agent.username)


def add_note(session: Session, ticket: Ticket, text: str, *, by: str,
             internal: bool) -> TicketEvent:
    """An internal note (kind `note`, for agents only), or a reply to the caller (kind `reply`,
    texted to them once in their language; TicketError if they cannot get texts)."""
    if internal:
        return add_event(session, ticket, "note", _clean(text, MAX_NOTE, "note", required=True),
                         by=by)
    text = _clean(text, MAX_REPLY, "reply", required=True)
    reason = caller_texts.why_no_text(session, ticket)
    if reason:
        raise TicketError(f"the caller cannot get a reply: {reason}; add an internal note "
                          "instead")
    event = add_event(session, ticket, "reply", text, by=by, notify=True)
    caller_texts.after_commit(session, event)
    return event


def add_caller_message(session: Session, ticket: Ticket, voicemail_id: int, transcript: str,
                       audio_note: str = "") -> TicketEvent:
    """A repeat caller's voicemail joins their ticket (kind `caller_message`, transcript and
    recording kept); a resolved or closed ticket is reopened by it."""
    transcript = transcript.strip()
    detail = transcript or f"(no transcript: {audio_note or 'no words were recognised'})"
    event = add_event(session, ticket, "caller_message", detail, by="caller",
                      voicemail_id=voicemail_id)
    if transcript:
        ticket.added_transcripts = f"{ticket.added_transcripts}\n{transcript}".strip()
    ticket.updated_at = utcnow()
    if ticket.status in DONE_STATUSES:
        reopen(session, ticket, by="caller", note="the caller added a message by phone")
    return event


def sla_due_at(ticket: Ticket, policy: PriorityPolicy, hours: BusinessHours | None,
               now: datetime) -> datetime:
    """The ticket's SLA deadline: its priority's target counted from its creation (`now` for
    one not yet stored), in the calendar's business hours where the level says so; a priority
    the policy does not know counts as the policy's default."""
    priority = ticket.priority if ticket.priority in policy.names else policy.default
    return policy.due_at(priority, ticket.created_at or now, hours)


def start_sla(ticket: Ticket, policy: PriorityPolicy, hours: BusinessHours | None,
              now: datetime | None = None) -> None:
    """Set the deadline of a ticket that has none yet (a new ticket)."""
    if ticket.due_at is None:
        ticket.due_at = sla_due_at(ticket, policy, hours, now or utcnow())


def set_priority(session: Session, ticket: Ticket, priority: str, *, by: str,
                 policy: PriorityPolicy, hours: BusinessHours | None,
                 now: datetime | None = None) -> TicketEvent | None:
    """Change a ticket's priority and recompute its deadline; None if it had that priority."""
    if priority not in policy.names:
        raise TicketError(f"'{priority}' is not a priority; one of: {', '.join(policy.names)}")
    if priority == ticket.priority and ticket.due_at is not None:
        return None
    old, ticket.priority = ticket.priority, priority
    ticket.due_at = sla_due_at(ticket, policy, hours, now or utcnow())
    return add_event(session, ticket, "priority",
                     f"{old} -> {priority}, due {ticket.due_at:%Y-%m-%d %H:%M} UTC", by=by)


def fill_missing_due_times(session: Session, policy: PriorityPolicy,
                           hours: BusinessHours | None, limit: int = 500) -> int:
    """Give a deadline to tickets stored without one (written before deadlines existed)."""
    tickets = session.scalars(select(Ticket).where(Ticket.due_at.is_(None))
                              .order_by(Ticket.id).limit(limit)).all()
    moment = utcnow()
    for ticket in tickets:
        ticket.due_at = sla_due_at(ticket, policy, hours, moment)
    return len(tickets)


def desk_hours(session: Session, flow_name: str | None) -> BusinessHours | None:
    """The business hours deadlines count in: the first calendar of the published flow
    `flow_name` (else of the only published flow); None counts wall-clock time."""
    version_id = published_version_for_number(session, "", flow_name)
    if version_id is None:
        return None
    return next(iter(compiled_version(session, version_id).calendars.values()), None)


def _move(session: Session, ticket: Ticket, status: str, *, by: str, note: str = "",
          notify: bool = True) -> TicketEvent:
    """Set the status, close waiting callbacks of a finished ticket, record the event."""
    old = ticket.status
    ticket.status = status
    ticket.updated_at = utcnow()
    if status in DONE_STATUSES:
        for request in session.scalars(select(CallbackRequest).where(
                CallbackRequest.ticket_id == ticket.id, CallbackRequest.status == "pending")):
            request.status, request.closed_at = "done", utcnow()
    reopened = old in DONE_STATUSES and status not in DONE_STATUSES
    texted = notify and (reopened or status in CALLER_STATUSES)
    detail = f"{old} -> {status}" + (f": {note}" if note else "")
    event = add_event(session, ticket, "status", detail, by=by, notify=texted)
    if texted:
        caller_texts.after_commit(session, event)
    return event


def _clean(text: str, limit: int, what: str, *, required: bool = False) -> str:
    text = text.strip()
    if required and not text:
        raise TicketError(f"write the {what} first")
    if "\x00" in text:
        raise TicketError(f"the {what} contains a character that cannot be stored")
    if len(text) > limit:
        raise TicketError(f"the {what} is longer than {limit} characters")
    return text
