"""The ticket inbox: the tickets agents work, filtered, searched, sorted and cut into pages.

Filters: status (the open ones by default), category, priority, language, assignment (me,
unassigned, anyone), transcription state, the day range of creation (in the console's time
zone) and overdue only. Search finds a ticket by its number, the caller's number or directory
name, and the words of its transcripts. On PostgreSQL words are matched by full-text search:
each ticket's transcripts are a generated tsvector in its language's configuration (english,
german, russian; simple for Polish and anything else, which PostgreSQL cannot stem), and the
query is parsed with every one of these configurations, so 'Druckers' finds 'Drucker' in a
German ticket and 'принтера' finds 'принтер' in a Russian one. SQLite matches the text with
LIKE. Sorted by priority then SLA deadline by default, so the most urgent and the longest
overdue come first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, false, func, or_, select
from sqlalchemy.orm import Session

from callbacks.directory import Directory
from callbacks.tickets.ticket import (
    SEARCH_CONFIGURATIONS,
    TRANSCRIPTION_STATES,
    Ticket,
    ticket_id_from_number,
)
from callbacks.tickets.workflow import OPEN_STATUSES, STATUSES, TicketError, is_overdue
from callbacks.workqueue.agents import Agent

SORTS = ("priority", "due", "newest", "oldest", "updated")
"""priority: most urgent first, then earliest deadline (the default); due: earliest deadline
first; newest/oldest: by creation; updated: most recently changed first."""
ASSIGNMENTS = ("anyone", "me", "unassigned")
STATUS_CHOICES = ("open", "all", *STATUSES)
"""'open': every status still needing work (the default); 'all': every status."""
MAX_PER_PAGE = 200
SNIPPET = 140
MAX_SEARCH = 200
_PHONE = re.compile(r"^\+?[\d\s()./-]{4,}$")


@dataclass(frozen=True)
class InboxFilter:
    """What the agent asked the inbox for; ValueError (TicketError) naming a bad value."""

    status: str = "open"
    category: str = ""
    priority: str = ""
    language: str = ""
    assigned: str = "anyone"
    transcription: str = ""
    created_from: date | None = None
    created_to: date | None = None
    overdue: bool = False
    search: str = ""
    sort: str = "priority"
    page: int = 1
    per_page: int = 25

    def __post_init__(self) -> None:
        if self.status not in STATUS_CHOICES:
            raise TicketError(f"status is one of: {', '.join(STATUS_CHOICES)}")
        if self.assigned not in ASSIGNMENTS:
            raise TicketError(f"assigned is one of: {', '.join(ASSIGNMENTS)}")
        if self.transcription and self.transcription not in TRANSCRIPTION_STATES:
            raise TicketError(f"transcription is one of: {', '.join(TRANSCRIPTION_STATES)}")
        if self.sort not in SORTS:
            raise TicketError(f"sort is one of: {', '.join(SORTS)}")
        if self.page < 1 or not 1 <= self.per_page <= MAX_PER_PAGE:
            raise TicketError(f"pages start at 1 and hold 1 to {MAX_PER_PAGE} tickets")
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise TicketError("the date range ends before it starts")
        if len(self.search) > MAX_SEARCH or "\x00" in self.search:
            raise TicketError(f"search for at most {MAX_SEARCH} characters")


@dataclass(frozen=True)
class InboxRow:
    """One ticket as the inbox lists it."""

    id: int
    number: str
    caller: str
    caller_name: str
    language: str
    category: str
    priority: str
    status: str
    transcription: str
    assigned_agent_id: int | None
    assigned_agent: str | None
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None
    overdue: bool
    snippet: str


@dataclass(frozen=True)
class InboxPage:
    """One page of the inbox, and how many tickets and pages there are in all."""

    rows: list[InboxRow]
    total: int
    page: int
    per_page: int
    wanted: InboxFilter = field(default_factory=InboxFilter)

    @property
    def pages(self) -> int:
        """How many pages the matching tickets fill (at least one)."""
        return max(1, math.ceil(self.total / self.per_page))


def inbox(session: Session, wanted: InboxFilter, *, me: int | None, directory: Directory,
          zone: ZoneInfo, now: datetime) -> InboxPage:
    """The page of tickets `wanted` describes, for the agent `me` ('assigned to me')."""
    query = _filtered(select(Ticket), session, wanted, me, directory, zone, now)
    total = session.scalar(select(func.count()).select_from(
        _filtered(select(Ticket.id), session, wanted, me, directory, zone, now).subquery())) or 0
    tickets = session.scalars(query.order_by(*_order(wanted.sort))
                              .offset((wanted.page - 1) * wanted.per_page)
                              .limit(wanted.per_page)).all()
    names = {agent.id: agent.name for agent in session.scalars(select(Agent))}
    rows = [_row(ticket, names, directory, now) for ticket in tickets]
    return InboxPage(rows, total, wanted.page, wanted.per_page, wanted)


def _filtered(query: Select[Any], session: Session, wanted: InboxFilter, me: int | None,
              directory: Directory, zone: ZoneInfo, now: datetime) -> Select[Any]:
    if wanted.status == "open":
        query = query.where(Ticket.status.in_(OPEN_STATUSES))
    elif wanted.status != "all":
        query = query.where(Ticket.status == wanted.status)
    for column, value in ((Ticket.category, wanted.category), (Ticket.priority, wanted.priority),
                          (Ticket.language, wanted.language),
                          (Ticket.transcription, wanted.transcription)):
        if value:
            query = query.where(column == value)
    if wanted.assigned == "me":
        query = query.where(Ticket.assigned_agent_id == me) if me is not None \
            else query.where(false())
    elif wanted.assigned == "unassigned":
        query = query.where(Ticket.assigned_agent_id.is_(None))
    if wanted.created_from is not None:
        query = query.where(Ticket.created_at >= _day_start(wanted.created_from, zone))
    if wanted.created_to is not None:
        query = query.where(Ticket.created_at < _day_start(
            wanted.created_to + timedelta(days=1), zone))
    if wanted.overdue:
        query = query.where(Ticket.status.in_(OPEN_STATUSES), Ticket.due_at < now)
    if wanted.search.strip():
        query = query.where(search_clause(session, wanted.search, directory))
    return query


def search_clause(session: Session, text: str, directory: Directory) -> ColumnElement[bool]:
    """Tickets whose number, caller's number or directory name, or transcript words match."""
    text = text.strip()
    found: list[ColumnElement[bool]] = []
    ticket_id = ticket_id_from_number(text)
    if ticket_id is not None:
        found.append(Ticket.id == ticket_id)
    # national numbers start with 0 where E.164 has the country code: match without it
    digits = re.sub(r"\D", "", text).lstrip("0")
    if _PHONE.match(text) and len(digits) >= 4:
        found.append(Ticket.caller.like(f"%{digits}%"))
    folded = text.casefold()
    numbers = [employee.number for employee in directory if folded in employee.name.casefold()]
    if numbers:
        found.append(Ticket.caller.in_(numbers))
    found.append(transcript_match(session, text))
    return or_(*found)


def transcript_match(session: Session, text: str) -> ColumnElement[bool]:
    """Tickets whose transcripts hold the words of `text` (full-text on PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        configurations = sorted({*SEARCH_CONFIGURATIONS.values(), "simple"})
        parsed = [func.websearch_to_tsquery(name, text) for name in configurations]
        query: Any = parsed[0]
        for more in parsed[1:]:
            query = query.op("||")(more)
        matched: ColumnElement[bool] = Ticket.search_vector.op("@@")(query)
        return matched
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(Ticket.transcript.ilike(pattern, escape="\\"),
               Ticket.added_transcripts.ilike(pattern, escape="\\"))


def _order(sort: str) -> tuple[Any, ...]:
    no_deadline_last = Ticket.due_at.is_(None)
    if sort == "due":
        return (no_deadline_last, Ticket.due_at, Ticket.id)
    if sort == "newest":
        return (Ticket.created_at.desc(), Ticket.id.desc())
    if sort == "oldest":
        return (Ticket.created_at, Ticket.id)
    if sort == "updated":
        return (Ticket.updated_at.desc(), Ticket.id.desc())
    return (Ticket.priority, no_deadline_last, Ticket.due_at, Ticket.id)


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


def _row(ticket: Ticket, names: dict[int, str], directory: Directory, now: datetime) -> InboxRow:
    employee = directory.lookup(ticket.caller)
    transcript = ticket.transcript
    return InboxRow(
        id=ticket.id, number=ticket.number, caller=ticket.caller,
        caller_name=employee.name if employee else "", language=ticket.language,
        category=ticket.category, priority=ticket.priority, status=ticket.status,
        transcription=ticket.transcription, assigned_agent_id=ticket.assigned_agent_id,
        assigned_agent=names.get(ticket.assigned_agent_id) if ticket.assigned_agent_id
        else None,
        created_at=ticket.created_at, updated_at=ticket.updated_at, due_at=ticket.due_at,
        overdue=is_overdue(ticket, now),
        snippet=transcript[:SNIPPET] + ("…" if len(transcript) > SNIPPET else ""))
