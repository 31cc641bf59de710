"""A repeat caller at a ticket node: the web layer's half of the lookup the engine asks for.

The engine (routing/ticket_dialog.py) emits LookupTicket for a plausible number; here the
ticket is looked up in SQL and the engine is answered with its status (or that there is none)
in the same webhook, so the caller hears the status at once. Only the status is looked up:
nothing personal is ever spoken. The number then rides in the action URLs (`t=`, signed by
Twilio with the rest of the URL), so the message a caller records joins that ticket.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks.tickets.ticket import Ticket, ticket_id_from_number
from routing import engine
from routing.engine import CompiledFlow
from routing.incident_menu import OpenIncidents
from routing.steps import LookupTicket, Position, TicketLooked, Turn

log = logging.getLogger(__name__)

MAX_TICKET_ID = 2**31 - 1
"""Ticket ids are PostgreSQL integers: a longer keyed-in number names no ticket."""


def ticket_in_url(args: Mapping[str, str]) -> str:
    """The ticket number a repeat caller keyed in, as it travels in the URL (digits only)."""
    ticket = args.get("t", "")
    return ticket if ticket.isdigit() and len(ticket) <= 10 else ""


def keyed_ticket(session: Session, position: Position) -> Ticket | None:
    """The ticket whose number the caller keyed in at a ticket node, if there is one."""
    ticket_id = ticket_id_from_number(position.ticket) if position.ticket else None
    if ticket_id is None or ticket_id > MAX_TICKET_ID:
        return None
    return session.get(Ticket, ticket_id)


def answer_lookup(turn: Turn, compiled: CompiledFlow, session: Session, now: datetime,
                  caller: str, incidents: OpenIncidents | None = None,
                  heard: bool = False) -> Turn:
    """The turn with its ticket lookup answered: the engine hears the ticket's status (or
    that there is none) and goes on in the same turn (a menu it reaches knows the open
    `incidents`, which the call `heard` or not); any other turn as it is."""
    if not turn.steps or not isinstance(turn.steps[-1], LookupTicket):
        return turn
    lookup = turn.steps[-1]
    ticket_id = ticket_id_from_number(lookup.number)
    status = session.scalar(select(Ticket.status).where(Ticket.id == ticket_id)) \
        if ticket_id is not None and ticket_id <= MAX_TICKET_ID else None
    log.info("a caller keyed in a ticket number at node %s: %s", lookup.position.node,
             "found" if status else "unknown")
    answer = engine.advance(compiled, lookup.position, TicketLooked(status), now, caller,
                            incidents=incidents, heard=heard or turn.announced)
    return Turn((*turn.steps[:-1], *answer.steps), (*turn.path, *answer.path),
                answer.outcome or turn.outcome, answer.language or turn.language,
                turn.choice or answer.choice, turn.announced or answer.announced)
