"""Grouping work into incidents: open one, link and unlink tickets and callbacks, switch its
announcement, take callers' requests to be texted, and resolve it.

Every function locks the incident, changes it, and commits; what it refuses (linking to a
resolved incident, an unknown ticket) raises IncidentError with a sentence for the agent.
Linking a ticket and resolving its incident each add an event to the ticket's history
(`incident_linked`, `incident_resolved`), which reaches the company's ticket system through the
outbox like every event. Resolving makes one notice per caller's number, in the same
transaction (callbacks/incidents/notices.py sends them after the commit).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from callbacks.calllog import normalize_number
from callbacks.db import insert_ignoring_duplicates, utcnow
from callbacks.incidents.incident import (
    Incident,
    IncidentCallback,
    IncidentNotice,
    IncidentSubscriber,
    IncidentTicket,
)
from callbacks.tickets.ticket import Ticket, add_event
from callbacks.workqueue.callback_requests import CallbackRequest

log = logging.getLogger(__name__)

MAX_TITLE = 200
MAX_NOTE = 300
"""Characters of the resolution note that go into the callers' text."""
MAX_ID = 2**31 - 1
"""Ids are PostgreSQL integers: a larger one names nothing (and must not reach a query)."""
MAX_LINKS = 500
"""Most tickets or callbacks one action links (a page of the inbox is far fewer)."""


class IncidentError(ValueError):
    """An incident action that cannot be done; the message says why, for the agent."""


@dataclass(frozen=True)
class Resolved:
    """What resolving did: the incident, and how many callers will be texted."""

    incident: Incident
    notices: int
    already: bool = False


def incident_for_update(session: Session, incident_id: int) -> Incident:
    """The incident, locked for this transaction; IncidentError if there is none."""
    incident = (session.get(Incident, incident_id, with_for_update=True)
                if 0 < incident_id <= MAX_ID else None)
    if incident is None:
        raise IncidentError("no such incident")
    return incident


def open_incident(session: Session, *, title: str, category: str, by: str,
                  ticket_ids: Iterable[int] = (), callback_ids: Iterable[int] = (),
                  announce: bool = True) -> Incident:
    """Open an incident (linking the given tickets and callbacks) and commit it."""
    title = " ".join(title.split())
    if not title:
        raise IncidentError("an incident needs a title, e.g. 'VPN down in Berlin'")
    if len(title) > MAX_TITLE:
        raise IncidentError(f"the title is longer than {MAX_TITLE} characters")
    category = category.strip().lower() or "other"
    if len(category) > 32 or not category.replace("_", "").isalnum():
        raise IncidentError(f"'{category[:40]}' is not a category such as network")
    incident = Incident(title=title, category=category, status="open", opened_by=by,
                        opened_at=utcnow(), announce=announce, announcement_json="{}",
                        resolved_by="", resolution="")
    session.add(incident)
    session.flush()
    _link(session, incident, list(ticket_ids), list(callback_ids), by)
    session.commit()
    log.info("incident %s opened by %s", incident.number, by)
    return incident


def link(session: Session, incident_id: int, *, ticket_ids: Iterable[int] = (),
         callback_ids: Iterable[int] = (), by: str) -> tuple[int, int]:
    """Link tickets and callbacks to an open incident; how many of each were new links."""
    incident = incident_for_update(session, incident_id)
    if incident.status != "open":
        raise IncidentError(f"incident {incident.number} is resolved; open a new one")
    added = _link(session, incident, list(ticket_ids), list(callback_ids), by)
    session.commit()
    return added


def unlink(session: Session, incident_id: int, *, ticket_ids: Iterable[int] = (),
           callback_ids: Iterable[int] = (), by: str) -> tuple[int, int]:
    """Take tickets and callbacks off an open incident; how many of each were linked."""
    incident = incident_for_update(session, incident_id)
    if incident.status != "open":
        raise IncidentError(f"incident {incident.number} is resolved; its callers were told")
    tickets, callbacks = _ids(ticket_ids), _ids(callback_ids)
    gone = session.scalars(delete(IncidentTicket).where(
        IncidentTicket.incident_id == incident.id, IncidentTicket.ticket_id.in_(tickets))
        .returning(IncidentTicket.ticket_id)).all() if tickets else []
    for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(gone))):
        add_event(session, ticket, "incident_unlinked", f"{incident.number}: {incident.title}",
                  by)
    dropped = session.scalars(delete(IncidentCallback).where(
        IncidentCallback.incident_id == incident.id,
        IncidentCallback.callback_request_id.in_(callbacks))
        .returning(IncidentCallback.id)).all() if callbacks else []
    session.commit()
    return len(gone), len(dropped)


def set_announcement(session: Session, incident_id: int, announce: bool,
                     texts: dict[str, str] | None = None) -> Incident:
    """Switch the menu's announcement of an incident on or off (and set its own words per
    language; an empty text goes back to the settings file's)."""
    incident = incident_for_update(session, incident_id)
    incident.announce = announce
    if texts is not None:
        words = {language: " ".join(text.split()) for language, text in texts.items()
                 if text.strip()}
        if any(len(text) > 1000 for text in words.values()):
            raise IncidentError("an announcement is longer than 1000 characters")
        incident.announcement_json = json.dumps(words, ensure_ascii=False, sort_keys=True)
    session.commit()
    return incident


def subscribe(session: Session, incident_ids: Iterable[int], phone: str, language: str,
              call_sid: str) -> list[int]:
    """Note that the caller at `phone` wants a text when these incidents are fixed (once per
    incident and number); the ids of the open ones they are now subscribed to. Commits."""
    number = normalize_number(phone)
    wanted = list(incident_ids)
    if not number or not wanted:
        return []
    open_ids = list(session.scalars(select(Incident.id).where(
        Incident.id.in_(wanted), Incident.status == "open")))
    moment = utcnow()
    for incident_id in open_ids:
        session.execute(insert_ignoring_duplicates(
            session, IncidentSubscriber.__table__, ["incident_id", "phone"]).values(
            incident_id=incident_id, phone=number, language=language[:8] or "en",
            call_sid=call_sid[:64], subscribed_at=moment))
    session.commit()
    return open_ids


def resolve_incident(session: Session, incident_id: int, note: str, by: str) -> Resolved:
    """Resolve the incident and make one notice per caller's number, in one transaction; a
    second resolve changes nothing. The notices' texts are queued once this commits."""
    from callbacks.incidents.notices import after_commit

    incident = incident_for_update(session, incident_id)
    if incident.status == "resolved":
        count = len(session.scalars(select(IncidentNotice.id).where(
            IncidentNotice.incident_id == incident.id)).all())
        session.rollback()
        return Resolved(incident, count, already=True)
    note = " ".join(note.split())
    if len(note) > MAX_NOTE:
        raise IncidentError(f"the note is longer than {MAX_NOTE} characters (it is texted)")
    moment = utcnow()
    incident.status, incident.resolved_at, incident.resolved_by = "resolved", moment, by
    incident.resolution = note
    recipients = _recipients(session, incident.id)
    if recipients:
        session.execute(insert_ignoring_duplicates(
            session, IncidentNotice.__table__, ["incident_id", "phone"]).values([
                {"incident_id": incident.id, "phone": phone, "language": language,
                 "status": "pending", "detail": "", "body": "", "sender": "", "attempts": 0,
                 "created_at": moment} for phone, language in recipients.items()]))
    for ticket in _linked_tickets(session, incident.id):
        add_event(session, ticket, "incident_resolved",
                  f"{incident.number}: {incident.title}" + (f": {note}" if note else ""), by)
    after_commit(session, incident.id)
    session.commit()
    log.info("incident %s resolved by %s: %s callers to text", incident.number, by,
             len(recipients))
    return Resolved(incident, len(recipients))


def _recipients(session: Session, incident_id: int) -> dict[str, str]:
    """Every number to text about the incident, with its language: linked tickets' callers,
    linked callbacks' numbers, then subscribers (whose own choice of language wins)."""
    found: dict[str, str] = {}
    for ticket in _linked_tickets(session, incident_id):
        if ticket.caller.strip():
            found.setdefault(normalize_number(ticket.caller), ticket.language or "en")
    callbacks = session.scalars(select(CallbackRequest).join(
        IncidentCallback, IncidentCallback.callback_request_id == CallbackRequest.id)
        .where(IncidentCallback.incident_id == incident_id))
    for request in callbacks:
        number = request.dial_number or request.caller
        if number.strip():
            found.setdefault(normalize_number(number), request.language or "en")
    for subscriber in session.scalars(select(IncidentSubscriber).where(
            IncidentSubscriber.incident_id == incident_id)):
        found[subscriber.phone] = subscriber.language or "en"
    return found


def _linked_tickets(session: Session, incident_id: int) -> list[Ticket]:
    return list(session.scalars(select(Ticket).join(
        IncidentTicket, IncidentTicket.ticket_id == Ticket.id)
        .where(IncidentTicket.incident_id == incident_id).order_by(Ticket.id)))


def _link(session: Session, incident: Incident, ticket_ids: list[int], callback_ids: list[int],
          by: str) -> tuple[int, int]:
    """Link what is not linked yet (a repeated click links nothing twice)."""
    if len(ticket_ids) > MAX_LINKS or len(callback_ids) > MAX_LINKS:
        raise IncidentError(f"link at most {MAX_LINKS} tickets or callbacks at once")
    moment = utcnow()
    if _ids(ticket_ids) != ticket_ids:
        raise IncidentError("a selected ticket does not exist (any more)")
    if _ids(callback_ids) != callback_ids:
        raise IncidentError("a selected callback does not exist (any more)")
    tickets = list(session.scalars(select(Ticket).where(Ticket.id.in_(ticket_ids))))
    if len(tickets) != len(set(ticket_ids)):
        raise IncidentError("a selected ticket does not exist (any more)")
    requests = list(session.scalars(select(CallbackRequest.id).where(
        CallbackRequest.id.in_(callback_ids))))
    if len(requests) != len(set(callback_ids)):
        raise IncidentError("a selected callback does not exist (any more)")
    linked_tickets = 0
    for ticket in tickets:
        made = session.scalar(insert_ignoring_duplicates(
            session, IncidentTicket.__table__, ["incident_id", "ticket_id"]).values(
            incident_id=incident.id, ticket_id=ticket.id, linked_by=by, linked_at=moment)
            .returning(IncidentTicket.__table__.c.id))
        if made is not None:
            linked_tickets += 1
            add_event(session, ticket, "incident_linked", f"{incident.number}: {incident.title}",
                      by)
    linked_callbacks = 0
    for request_id in requests:
        made = session.scalar(insert_ignoring_duplicates(
            session, IncidentCallback.__table__, ["incident_id", "callback_request_id"]).values(
            incident_id=incident.id, callback_request_id=request_id, linked_by=by,
            linked_at=moment).returning(IncidentCallback.__table__.c.id))
        linked_callbacks += made is not None
    return linked_tickets, linked_callbacks


def _ids(values: Iterable[int]) -> list[int]:
    """The values that can be ids (a bad number in a form names nothing)."""
    return [value for value in values if 0 < value <= MAX_ID]
