"""What the console and the API show of incidents: the list (open first) and one incident's
page, with everyone affected: linked tickets (caller, directory name, status), linked callbacks
(and their tickets), subscribers, and after resolving each caller's notice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from callbacks.directory import Directory
from callbacks.incidents.incident import (
    Incident,
    IncidentCallback,
    IncidentNotice,
    IncidentSubscriber,
    IncidentTicket,
)
from callbacks.tickets.ticket import Ticket, ticket_number
from callbacks.workqueue.callback_requests import CallbackRequest


@dataclass(frozen=True)
class IncidentRow:
    """An incident in the list, with how many tickets, callbacks and subscribers it has."""

    incident: Incident
    tickets: int
    callbacks: int
    subscribers: int


@dataclass(frozen=True)
class AffectedTicket:
    """A linked ticket as the incident page shows it."""

    ticket_id: int
    number: str
    caller: str
    caller_name: str
    category: str
    status: str
    created_at: datetime
    linked_by: str


@dataclass(frozen=True)
class AffectedCallback:
    """A linked callback request, and its ticket if it has one."""

    request_id: int
    number: str
    caller_name: str
    status: str
    ticket_number: str | None
    linked_by: str


@dataclass(frozen=True)
class IncidentStory:
    """One incident and everyone it affects."""

    incident: Incident
    tickets: list[AffectedTicket]
    callbacks: list[AffectedCallback]
    subscribers: list[IncidentSubscriber]
    notices: list[IncidentNotice]

    @property
    def notice_counts(self) -> dict[str, int]:
        """How many notices ended each way (sent, skipped, failed, still pending)."""
        counts: dict[str, int] = {}
        for notice in self.notices:
            counts[notice.status] = counts.get(notice.status, 0) + 1
        return counts


def incident_list(session: Session, status: str = "") -> list[IncidentRow]:
    """Incidents, open ones first, then the latest; `status` 'open' or 'resolved' filters."""
    def count(table: type[IncidentTicket | IncidentCallback | IncidentSubscriber]) -> Any:
        return select(func.count()).where(table.incident_id == Incident.id).scalar_subquery()

    query = select(Incident, count(IncidentTicket), count(IncidentCallback),
                   count(IncidentSubscriber)).order_by(
        case((Incident.status == "open", 0), else_=1), Incident.opened_at.desc()).limit(200)
    if status:
        query = query.where(Incident.status == status)
    return [IncidentRow(incident, tickets, callbacks, subscribers)
            for incident, tickets, callbacks, subscribers in session.execute(query)]


def open_incidents(session: Session) -> list[Incident]:
    """The open incidents, newest first (to link a ticket to)."""
    return list(session.scalars(select(Incident).where(Incident.status == "open")
                                .order_by(Incident.opened_at.desc())))


def incidents_of_ticket(session: Session, ticket_id: int) -> list[Incident]:
    """The incidents a ticket is linked to."""
    return list(session.scalars(select(Incident).join(
        IncidentTicket, IncidentTicket.incident_id == Incident.id)
        .where(IncidentTicket.ticket_id == ticket_id).order_by(Incident.id)))


def incident_story(session: Session, incident_id: int,
                   directory: Directory) -> IncidentStory | None:
    """The incident and everyone it affects, or None if there is no such incident."""
    incident = session.get(Incident, incident_id) if 0 < incident_id < 2**31 else None
    if incident is None:
        return None

    def name(number: str) -> str:
        employee = directory.lookup(number)
        return employee.name if employee is not None else ""

    tickets = [AffectedTicket(ticket.id, ticket.number, ticket.caller, name(ticket.caller),
                              ticket.category, ticket.status, ticket.created_at, linked_by)
               for ticket, linked_by in session.execute(
                   select(Ticket, IncidentTicket.linked_by).join(
                       IncidentTicket, IncidentTicket.ticket_id == Ticket.id)
                   .where(IncidentTicket.incident_id == incident_id).order_by(Ticket.id))]
    callbacks = []
    for request, linked_by in session.execute(
            select(CallbackRequest, IncidentCallback.linked_by).join(
                IncidentCallback, IncidentCallback.callback_request_id == CallbackRequest.id)
            .where(IncidentCallback.incident_id == incident_id).order_by(CallbackRequest.id)):
        number = request.dial_number or request.caller
        callbacks.append(AffectedCallback(
            request.id, number, name(number), request.status,
            ticket_number(request.ticket_id) if request.ticket_id else None, linked_by))
    subscribers = list(session.scalars(select(IncidentSubscriber).where(
        IncidentSubscriber.incident_id == incident_id).order_by(IncidentSubscriber.id)))
    notices = list(session.scalars(select(IncidentNotice).where(
        IncidentNotice.incident_id == incident_id).order_by(IncidentNotice.id)))
    return IncidentStory(incident, tickets, callbacks, subscribers, notices)
