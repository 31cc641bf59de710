"""The incidents' bodies in the JSON API: the list with the desk's suggestions, an incident
with everyone it affects, and the requests to open, link, announce and resolve."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from callbacks.incidents.incident import Incident, IncidentNotice, IncidentSubscriber
from callbacks.incidents.overview import (
    AffectedCallback,
    AffectedTicket,
    IncidentRow,
    IncidentStory,
)
from callbacks.incidents.suggestion import Suggestion
from ivr.api.models import Id, RequestBody

Text = Annotated[str, StringConstraints(max_length=1000, pattern=r"^[^\x00]*$")]
TicketNumber = Annotated[str, StringConstraints(pattern=r"^#?[0-9]{5,10}$")]
Category = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class IncidentOut(BaseModel):
    """An incident."""

    id: int
    number: str = Field(examples=["INC-10001"])
    title: str
    category: str
    status: str = Field(description="open or resolved")
    opened_by: str
    opened_at: datetime
    resolved_by: str
    resolved_at: datetime | None
    resolution: str
    announce: bool = Field(description="Menus that opt in announce it while it is open")
    announcement: dict[str, str] = Field(description="Its own words per language, if any")

    @classmethod
    def of(cls, incident: Incident) -> IncidentOut:
        """The API's view of an incident."""
        return cls(id=incident.id, number=incident.number, title=incident.title,
                   category=incident.category, status=incident.status,
                   opened_by=incident.opened_by, opened_at=incident.opened_at,
                   resolved_by=incident.resolved_by, resolved_at=incident.resolved_at,
                   resolution=incident.resolution, announce=incident.announce,
                   announcement=incident.announcement)


class IncidentListItem(IncidentOut):
    """An incident in the list, with how much it groups."""

    tickets: int
    callbacks: int
    subscribers: int

    @classmethod
    def of_row(cls, row: IncidentRow) -> IncidentListItem:
        """A list row."""
        return cls(**IncidentOut.of(row.incident).model_dump(), tickets=row.tickets,
                   callbacks=row.callbacks, subscribers=row.subscribers)


class SuggestionOut(BaseModel):
    """The desk suggests an incident: enough recent tickets of a category, none in one."""

    category: str
    tickets: list[str] = Field(description="The tickets' numbers")
    minutes: int
    sentence: str

    @classmethod
    def of(cls, suggestion: Suggestion) -> SuggestionOut:
        """The API's view of a suggestion."""
        from callbacks.tickets.ticket import ticket_number

        return cls(category=suggestion.category,
                   tickets=[ticket_number(i) for i in suggestion.ticket_ids],
                   minutes=suggestion.minutes, sentence=suggestion.sentence)


class IncidentList(BaseModel):
    """Incidents (open first) and the desk's suggestions."""

    incidents: list[IncidentListItem]
    suggestions: list[SuggestionOut]


class AffectedTicketOut(BaseModel):
    """A linked ticket."""

    number: str
    caller: str
    caller_name: str
    category: str
    status: str
    linked_by: str

    @classmethod
    def of(cls, row: AffectedTicket) -> AffectedTicketOut:
        """The API's view."""
        return cls(number=row.number, caller=row.caller, caller_name=row.caller_name,
                   category=row.category, status=row.status, linked_by=row.linked_by)


class AffectedCallbackOut(BaseModel):
    """A linked callback request and its ticket."""

    id: int
    number: str
    caller_name: str
    status: str
    ticket: str | None
    linked_by: str

    @classmethod
    def of(cls, row: AffectedCallback) -> AffectedCallbackOut:
        """The API's view."""
        return cls(id=row.request_id, number=row.number, caller_name=row.caller_name,
                   status=row.status, ticket=row.ticket_number, linked_by=row.linked_by)


class SubscriberOut(BaseModel):
    """A caller who asked in the menu to be texted."""

    phone: str
    language: str
    subscribed_at: datetime

    @classmethod
    def of(cls, subscriber: IncidentSubscriber) -> SubscriberOut:
        """The API's view."""
        return cls(phone=subscriber.phone, language=subscriber.language,
                   subscribed_at=subscriber.subscribed_at)


class NoticeOut(BaseModel):
    """The text to one number on resolving, and how it ended."""

    phone: str
    language: str
    status: str = Field(description="pending, sending, sent, skipped or failed")
    detail: str

    @classmethod
    def of(cls, notice: IncidentNotice) -> NoticeOut:
        """The API's view."""
        return cls(phone=notice.phone, language=notice.language, status=notice.status,
                   detail=notice.detail)


class IncidentDetail(BaseModel):
    """An incident and everyone it affects."""

    incident: IncidentOut
    tickets: list[AffectedTicketOut]
    callbacks: list[AffectedCallbackOut]
    subscribers: list[SubscriberOut]
    notices: list[NoticeOut]
    message: str = ""

    @classmethod
    def of(cls, story: IncidentStory, message: str = "") -> IncidentDetail:
        """The API's view of an incident's page."""
        return cls(incident=IncidentOut.of(story.incident),
                   tickets=[AffectedTicketOut.of(row) for row in story.tickets],
                   callbacks=[AffectedCallbackOut.of(row) for row in story.callbacks],
                   subscribers=[SubscriberOut.of(s) for s in story.subscribers],
                   notices=[NoticeOut.of(n) for n in story.notices], message=message)


class OpenIncidentRequest(RequestBody):
    """Open an incident, linking tickets (by number) and callbacks (by id)."""

    title: Annotated[str, StringConstraints(min_length=1, max_length=200,
                                            pattern=r"^[^\x00]*$")]
    category: Category = "other"
    tickets: list[TicketNumber] = Field(default_factory=list, max_length=500)
    callbacks: list[Id] = Field(default_factory=list, max_length=500)
    announce: bool = True


class LinkRequest(RequestBody):
    """Tickets (by number) and callbacks (by id) to link or unlink."""

    tickets: list[TicketNumber] = Field(default_factory=list, max_length=500)
    callbacks: list[Id] = Field(default_factory=list, max_length=500)


class AnnouncementRequest(RequestBody):
    """Announce the incident in menus or not, with its own words per language."""

    announce: bool
    texts: dict[str, Text] | None = Field(
        default=None, description="Language code (en, de, ...) -> the incident's own words; "
        "an empty text goes back to the incidents file's")


class ResolveRequest(RequestBody):
    """Resolve the incident; the note goes into every caller's text."""

    note: Annotated[str, StringConstraints(max_length=300, pattern=r"^[^\x00]*$")] = ""
