"""The desk's suggestion to open an incident: N tickets of one category within M minutes
(flows/incidents.yaml), none of them in an open incident yet, computed from SQL when the inbox
or the incident list is shown (and in the API)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from callbacks.incidents.incident import Incident, IncidentTicket
from callbacks.incidents.settings import IncidentSettings
from callbacks.tickets.ticket import Ticket

DONE = ("resolved", "closed")
MAX_SUGGESTED_TICKETS = 500


@dataclass(frozen=True)
class Suggestion:
    """Enough tickets of one category arrived lately, none in an open incident."""

    category: str
    ticket_ids: tuple[int, ...]
    minutes: int

    @property
    def count(self) -> int:
        """How many tickets."""
        return len(self.ticket_ids)

    @property
    def sentence(self) -> str:
        """What the console says: '7 password tickets in the last 30 minutes, ...'."""
        return (f"{self.count} {self.category.replace('_', ' ')} tickets in the last "
                f"{self.minutes} minutes, none in an open incident: open an incident?")


def suggestions(session: Session, settings: IncidentSettings, now: datetime) -> list[Suggestion]:
    """Every category whose recent tickets outside open incidents reach its rule, the
    biggest first."""
    longest = max([settings.suggest.minutes,
                   *(rule.minutes for rule in settings.categories.values())])
    in_open_incident = exists().where(IncidentTicket.ticket_id == Ticket.id,
                                      IncidentTicket.incident_id == Incident.id,
                                      Incident.status == "open")
    rows = session.execute(select(Ticket.id, Ticket.category, Ticket.created_at).where(
        Ticket.created_at >= now - timedelta(minutes=longest), Ticket.status.not_in(DONE),
        ~in_open_incident).order_by(Ticket.created_at.desc())
        .limit(MAX_SUGGESTED_TICKETS)).all()
    recent: dict[str, list[int]] = defaultdict(list)
    for ticket_id, category, created_at in rows:
        rule = settings.rule(category)
        if created_at >= now - timedelta(minutes=rule.minutes):
            recent[category].append(ticket_id)
    found = [Suggestion(category, tuple(sorted(ids)), settings.rule(category).minutes)
             for category, ids in recent.items() if len(ids) >= settings.rule(category).tickets]
    return sorted(found, key=lambda s: (-s.count, s.category))


def suggestion_for(session: Session, settings: IncidentSettings, category: str,
                   now: datetime) -> Suggestion | None:
    """The current suggestion for one category, or None (it no longer holds)."""
    return next((s for s in suggestions(session, settings, now) if s.category == category), None)
