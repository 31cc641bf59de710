"""An agent's one-click actions on a ticket, for the console and the API: take, assign, change
status, reopen, internal note, reply to the caller, priority.

Each action locks the ticket, asks the workflow (callbacks/tickets/workflow.py), commits, and
says what happened in a sentence for the agent, including whether the caller will get a text:
only when one will really go out (a number that can receive texts and has not opted out).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from callbacks.priority import PriorityPolicy
from callbacks.tickets.caller_texts import PENDING, CallerText, compose, subject_of, why_no_text
from callbacks.tickets.ticket import Ticket, TicketEvent
from callbacks.tickets.workflow import (
    TicketError,
    add_note,
    assign,
    change_status,
    label,
    reopen,
    set_priority,
    take,
)
from callbacks.workqueue.agents import Agent
from routing.hours import BusinessHours

LANGUAGE_NAMES = {"en": "English", "de": "German", "pl": "Polish", "ru": "Russian",
                  "ko": "Korean"}


@dataclass(frozen=True)
class ActionResult:
    """What an action did: the ticket, its event, the caller's text (None: no text) and a
    sentence for the agent."""

    ticket: Ticket
    event: TicketEvent
    text: CallerText | None
    message: str


def language_name(code: str) -> str:
    """'German' for 'de'; the code itself for a language without a name here."""
    return LANGUAGE_NAMES.get(code, code or "English")


def ticket_for_update(session: Session, ticket_id: int) -> Ticket:
    """The ticket, locked for this transaction; TicketError if there is none."""
    ticket = session.get(Ticket, ticket_id, with_for_update=True)
    if ticket is None:
        raise TicketError("no such ticket")
    return ticket


def take_ticket(session: Session, ticket_id: int, agent: Agent) -> ActionResult:
    """The agent takes the ticket."""
    ticket = ticket_for_update(session, ticket_id)
    event = take(session, ticket, agent)
    return _done(session, ticket, event, f"You took ticket {ticket.number}.")


def assign_ticket(session: Session, ticket_id: int, agent_id: int | None,
                  by: Agent) -> ActionResult:
    """Assign the ticket to an agent, or to nobody."""
    ticket = ticket_for_update(session, ticket_id)
    event = assign(session, ticket, agent_id, by=by.username)
    target = session.get(Agent, agent_id) if agent_id is not None else None
    message = (f"Ticket {ticket.number} is assigned to {target.name}." if target is not None
               else f"Ticket {ticket.number} is assigned to nobody now.")
    return _done(session, ticket, event, message)


def move_ticket(session: Session, ticket_id: int, status: str, note: str,
                by: Agent) -> ActionResult:
    """Change the ticket's status (or reopen it, with 'reopened'), with an optional note."""
    ticket = ticket_for_update(session, ticket_id)
    if status == "resolved" and not note.strip():
        raise TicketError("write a short note for the caller")
    event = change_status(session, ticket, status, by=by.username, note=note)
    return _done(session, ticket, event,
                 f"Ticket {ticket.number} is now {label(ticket.status)}.")


def reopen_ticket(session: Session, ticket_id: int, note: str, by: Agent) -> ActionResult:
    """Open a resolved or closed ticket again."""
    ticket = ticket_for_update(session, ticket_id)
    event = reopen(session, ticket, by=by.username, note=note)
    return _done(session, ticket, event,
                 f"Ticket {ticket.number} is open again ({label(ticket.status)}).")


def note_ticket(session: Session, ticket_id: int, text: str, by: Agent,
                internal: bool) -> ActionResult:
    """An internal note, or a reply texted to the caller."""
    ticket = ticket_for_update(session, ticket_id)
    event = add_note(session, ticket, text, by=by.username, internal=internal)
    message = (f"Internal note added to ticket {ticket.number}." if internal
               else f"Reply added to ticket {ticket.number}.")
    return _done(session, ticket, event, message)


def prioritise_ticket(session: Session, ticket_id: int, priority: str, by: Agent,
                      policy: PriorityPolicy, hours: BusinessHours | None) -> ActionResult:
    """Change the ticket's priority; its deadline is counted again."""
    ticket = ticket_for_update(session, ticket_id)
    event = set_priority(session, ticket, priority, by=by.username, policy=policy, hours=hours)
    if event is None:
        raise TicketError(f"ticket {ticket.number} has priority {priority} already")
    return _done(session, ticket, event, f"Ticket {ticket.number} is now {priority}.")


def _done(session: Session, ticket: Ticket, event: TicketEvent, message: str) -> ActionResult:
    """Commit, and tell the agent whether the caller will get a text about it."""
    texted = [pending for pending in session.info.get(PENDING, ()) if pending.notify]
    text = None
    if texted:
        reason = why_no_text(session, ticket)
        if reason is None:
            text = compose(ticket, *subject_of(texted[-1]))
            message += f" The caller will get a text in {language_name(text.language)}."
        else:
            message += f" The caller gets no text: {reason}."
    session.commit()  # the texts are queued once this commits
    return ActionResult(ticket, event, text, message)
