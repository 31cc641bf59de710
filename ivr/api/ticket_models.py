"""The ticket desk's bodies in the JSON API: the inbox's query and page, the actions' requests,
and what an action answers (the ticket, its event and the caller's text, if one goes out)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from callbacks.tickets.caller_texts import CallerText
from callbacks.tickets.inbox import InboxPage, InboxRow
from ivr.api.models import EventOut, Id, Note, RequestBody, TicketOut

Word = Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00]*$")]


def _iso_day(value: Any) -> Any:
    """Only 'YYYY-MM-DD' is a day here (pydantic would also read numbers as timestamps)."""
    if isinstance(value, date) or (isinstance(value, str)
                                   and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        return value
    raise ValueError("give a day as YYYY-MM-DD")


IsoDay = Annotated[date, BeforeValidator(_iso_day)]
Status = Literal["new", "assigned", "in_progress", "waiting_for_caller", "resolved", "closed"]


class TicketListQuery(BaseModel):
    """Query parameters of the ticket inbox."""

    status: Literal["open", "all", "new", "assigned", "in_progress", "waiting_for_caller",
                    "resolved", "closed"] = Field(
        "open", description="open: every status still needing work; all: every status")
    category: Word = Field("", description="Only this category, e.g. network")
    priority: Word = Field("", description="Only this priority, e.g. P1")
    language: Word = Field("", description="Only callers of this language, e.g. de")
    assigned: Literal["anyone", "me", "unassigned"] = Field(
        "anyone", description="me: assigned to you; unassigned: to nobody")
    transcription: Literal["", "pending", "done", "no_speech", "bad_audio", "no_model",
                           "failed", "none"] = Field("", description="Only this transcription "
                                                                     "state")
    created_from: IsoDay | None = Field(None, description="Created on or after this day "
                                                        "(display time zone)")
    created_to: IsoDay | None = Field(None, description="Created on or before this day")
    overdue: bool = Field(False, description="Only open tickets past their SLA deadline")
    q: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00]*$")] = Field(
        "", description="Ticket number, caller number or directory name, or transcript words "
                        "(full-text, stemmed in each ticket's language)")
    sort: Literal["priority", "due", "newest", "oldest", "updated"] = Field(
        "priority", description="priority: most urgent, then earliest deadline first")
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(25, ge=1, le=200)


class TicketRow(BaseModel):
    """A ticket as the inbox lists it."""

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
    due_at: datetime | None = Field(description="The SLA deadline of its priority")
    overdue: bool = Field(description="Open and past its deadline")
    snippet: str

    @classmethod
    def of(cls, row: InboxRow) -> TicketRow:
        """The API form of an inbox row."""
        return cls(**{name: getattr(row, name) for name in cls.model_fields})


class TicketList(BaseModel):
    """One page of the inbox."""

    tickets: list[TicketRow]
    total: int = Field(description="Tickets matching, on all pages")
    page: int
    pages: int
    per_page: int

    @classmethod
    def of(cls, found: InboxPage) -> TicketList:
        """The API form of an inbox page."""
        return cls(tickets=[TicketRow.of(row) for row in found.rows], total=found.total,
                   page=found.page, pages=found.pages, per_page=found.per_page)


class AssignRequest(RequestBody):
    """Assign a ticket to an agent, or null for nobody."""

    agent_id: Id | None


class StatusRequest(RequestBody):
    """Move a ticket to a status ('reopened' reopens a resolved or closed one)."""

    status: Status | Literal["reopened"]
    note: Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00]*$")] = Field(
        "", description="Quoted in the caller's text; needed to resolve")


class TicketNoteRequest(RequestBody):
    """An internal note, or a reply texted to the caller in their language."""

    text: Note
    kind: Literal["note", "reply"] = Field("note", description="note: for agents only; "
                                                               "reply: texted to the caller")


class PriorityRequest(RequestBody):
    """A ticket's new priority; its SLA deadline is counted again."""

    priority: Annotated[str, StringConstraints(pattern=r"^P[1-9]$")]


class CallerTextOut(BaseModel):
    """A text the caller will get: about what, in which language, and its words."""

    what: str
    language: str
    body: str

    @classmethod
    def of(cls, text: CallerText | None) -> CallerTextOut | None:
        """The API form of a caller's text (None: no text goes out)."""
        return None if text is None else cls(what=text.what, language=text.language,
                                             body=text.body)


class ActionOut(BaseModel):
    """What a ticket action did: the ticket now, the event it recorded, the caller's text."""

    ticket: TicketOut
    event: EventOut
    caller_text: CallerTextOut | None = Field(
        description="The text the caller will get about it; null when none goes out")
    message: str = Field(description="What happened, in a sentence for the agent")
