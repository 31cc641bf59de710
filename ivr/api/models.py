"""The JSON API's bodies: what clients send and what they get back, as pydantic models.

The same models validate requests, serialise responses and describe both in the OpenAPI
document, so the document cannot drift from what the routes do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from sqlalchemy.orm import object_session

from callbacks.db import utcnow
from callbacks.desk import CallListEntry
from callbacks.tickets.ticket import Ticket, TicketEvent
from callbacks.tickets.workflow import is_overdue
from callbacks.workqueue.agents import Agent
from callbacks.workqueue.attempts import CallbackAttempt
from callbacks.workqueue.skills import AgentSkills, skills_of
from ivr.db import get_session

MAX_ID = 2**31 - 1
"""Ids are PostgreSQL integers: anything larger names nothing."""



def _whole_number(value: Any) -> Any:
    """JSON Schema counts 2.0 as an integer; strict pydantic would not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_whole_number)]
# PostgreSQL text cannot hold NUL characters, so every string field refuses them at the door.
Note = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]


Level = Annotated[int, Field(ge=1, le=3, description="1 can help, 2 experienced, 3 expert"),
                  BeforeValidator(_whole_number)]
_ONLY_PATTERN_KEYS: dict[str, Any] = {"additionalProperties": False}
"""patternProperties alone would let any other key through, in the document."""
Languages = Annotated[
    dict[Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")], Level],
    Field(max_length=40, json_schema_extra=_ONLY_PATTERN_KEYS,
          description='Languages with a level, e.g. {"de": 3, "en": 2}')]
Topics = Annotated[
    dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")], Level],
    Field(max_length=40, json_schema_extra=_ONLY_PATTERN_KEYS,
          description='Topics with a level, e.g. {"password": 2, "vdi": 1}')]


class RequestBody(BaseModel):
    """A request body: unknown fields are refused rather than ignored."""

    model_config = ConfigDict(extra="forbid")


# Requests


class SnoozeRequest(RequestBody):
    """Hide a waiting callback from the dialer until a moment in the future."""

    until: AwareDatetime = Field(description="ISO 8601 with a UTC offset, in the future")

    @field_validator("until")
    @classmethod
    def _representable_in_utc(cls, until: datetime) -> datetime:
        try:
            return until.astimezone(UTC)
        except OverflowError:
            raise ValueError("the time is out of range") from None


class NoteRequest(RequestBody):
    """Resolve with a note; the caller's status SMS quotes it."""

    note: Note


class ReassignRequest(RequestBody):
    """Reserve a callback for one agent, or null to free it for everyone."""

    agent_id: Id | None


class AvailabilityRequest(RequestBody):
    """The state an agent sets (on_call is set by the dialer only)."""

    availability: Literal["available", "wrap_up", "away"]


class AgentRequest(RequestBody):
    """A new agent account; without a password one is generated and returned once."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=64,
                                               pattern=r"^[A-Za-z0-9.@_-]+$")]
    password: Annotated[str, StringConstraints(min_length=10, max_length=256,
                                               pattern=r"^[^\x00]*$")] | None = None
    display_name: Annotated[str, StringConstraints(max_length=128,
                                                   pattern=r"^[^\x00]*$")] = ""
    role: Literal["agent", "admin"] = "agent"
    phone: Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00]*$")] = ""
    dial_mode: Literal["progressive", "preview"] = "progressive"
    languages: Languages = Field(default_factory=dict)
    topics: Topics = Field(default_factory=dict)


class SignInRequest(RequestBody):
    """A user name and password."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=128,
                                               pattern=r"^[^\x00]*$")]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024,
                                               pattern=r"^[^\x00]*$")]


class CallListQuery(BaseModel):
    """Query parameters of the call list."""

    include_closed: bool = Field(False, description="Also list done, unreachable and "
                                                    "cancelled callbacks")
    limit: int = Field(200, ge=1, le=1000, description="At most this many callbacks")


# Responses


class FieldProblem(BaseModel):
    """One invalid field of a request."""

    field: str = Field(description="Where, e.g. `until` or `query.limit`")
    message: str


class Problem(BaseModel):
    """Every error: a machine-readable code and a sentence for people."""

    error: str = Field(description="unauthorized, forbidden, not_found, invalid_json, "
                                   "validation_failed, csrf_failed, refused, conflict, "
                                   "reserved, ...")
    message: str
    fields: list[FieldProblem] = Field(default_factory=list)


class CallbackOut(BaseModel):
    """A callback as the call list shows it: who, why, how urgent, since when, how many tries."""

    id: int
    caller: str
    caller_name: str
    dial_number: str
    category: str
    priority: str
    reasons: str
    status: str = Field(description="pending, claimed, done, unreachable or cancelled")
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
    ticket_number: str | None
    snippet: str = Field(description="The start of the voicemail's transcript")
    assigned_agent: str | None
    claimed_by: str | None

    @classmethod
    def of(cls, entry: CallListEntry) -> CallbackOut:
        """The API form of a call list entry."""
        fields = {name: getattr(entry, name) for name in cls.model_fields}
        return cls(**fields)


class CallList(BaseModel):
    """Callbacks in the order the dialer takes them (earliest deadline first)."""

    callbacks: list[CallbackOut]


class EventOut(BaseModel):
    """One entry of a ticket's history."""

    id: int
    at: datetime
    kind: str = Field(description="created, transcribed, status (detail 'old -> new[: note]'), "
                                  "assigned, note (internal), reply (texted to the caller), "
                                  "caller_message, sms_sent, sms_skipped, sms_failed, ...")
    detail: str
    by: str
    notify: bool = Field(False, description="The caller is texted about this event (once)")
    about_event_id: int | None = Field(
        None, description="For sms_sent, sms_skipped, sms_failed: the event the text was about")
    audio_url: str | None = Field(
        None, description="A caller_message's recording (audio/wav), if kept")

    @classmethod
    def of(cls, event: TicketEvent, audio_url: str | None = None) -> EventOut:
        """The API form of a ticket event."""
        return cls(id=event.id, at=event.at, kind=event.kind, detail=event.detail, by=event.by,
                   notify=event.notify, about_event_id=event.about_event_id,
                   audio_url=audio_url)


class AttemptOut(BaseModel):
    """One try at calling back: ring the agent, whisper, bridge the caller."""

    id: int
    number: int
    agent_id: int | None
    stage: str
    mode: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    talk_seconds: int | None
    detail: str

    @classmethod
    def of(cls, attempt: CallbackAttempt) -> AttemptOut:
        """The API form of an attempt."""
        return cls(id=attempt.id, number=attempt.number, agent_id=attempt.agent_id,
                   stage=attempt.stage, mode=attempt.mode, started_at=attempt.started_at,
                   answered_at=attempt.answered_at, ended_at=attempt.ended_at,
                   talk_seconds=attempt.talk_seconds, detail=attempt.detail)


class TicketOut(BaseModel):
    """A ticket: the caller's problem with its transcript."""

    number: str = Field(description="The number callers hear, e.g. 10042")
    status: str = Field(description="new, assigned, in_progress, waiting_for_caller, resolved "
                                    "or closed")
    assigned_agent_id: int | None = None
    due_at: datetime | None = Field(None, description="The SLA deadline of its priority")
    overdue: bool = Field(False, description="Open and past its deadline")
    caller: str
    language: str
    category: str
    priority: str
    menu_path: str
    transcription: str = Field(description="pending, done, no_speech, bad_audio, no_model "
                                           "or failed")
    transcript: str
    confidence: float | None
    audio_notes: str
    created_at: datetime
    updated_at: datetime
    audio_url: str | None = Field(description="The kept recording (audio/wav), if any")

    @classmethod
    def of(cls, ticket: Ticket, audio_url: str | None) -> TicketOut:
        """The API form of a ticket."""
        return cls(number=ticket.number, status=ticket.status,
                   assigned_agent_id=ticket.assigned_agent_id, due_at=ticket.due_at,
                   overdue=is_overdue(ticket, utcnow()), caller=ticket.caller,
                   language=ticket.language, category=ticket.category,
                   priority=ticket.priority, menu_path=ticket.menu_path,
                   transcription=ticket.transcription, transcript=ticket.transcript,
                   confidence=ticket.confidence, audio_notes=ticket.audio_notes,
                   created_at=ticket.created_at, updated_at=ticket.updated_at,
                   audio_url=audio_url)


class CallbackDetail(BaseModel):
    """A callback with its ticket, its attempts and the ticket's history."""

    callback: CallbackOut
    ticket: TicketOut | None
    attempts: list[AttemptOut]
    events: list[EventOut]


class TicketDetail(BaseModel):
    """A ticket with its history and its callbacks."""

    ticket: TicketOut
    events: list[EventOut]
    callbacks: list[CallbackOut]


class AgentOut(BaseModel):
    """An agent account (never its password or token) with its skills."""

    id: int
    username: str
    name: str
    role: str
    phone: str
    availability: str = Field(description="available, on_call, wrap_up, away or offline "
                                          "(signed out)")
    availability_since: datetime
    dial_mode: str
    active: bool
    languages: dict[str, int] = Field(description="Languages spoken, each with a level 1-3")
    topics: dict[str, int] = Field(description="Topics known, each with a level 1-3")

    @classmethod
    def of(cls, agent: Agent, skills: AgentSkills | None = None) -> AgentOut:
        """The API form of an agent (skills read from SQL when not given)."""
        if skills is None:
            skills = skills_of(object_session(agent) or get_session(), agent.id)
        return cls(id=agent.id, username=agent.username, name=agent.name, role=agent.role,
                   phone=agent.phone, availability=agent.availability,
                   availability_since=agent.availability_since, dial_mode=agent.dial_mode,
                   active=agent.active, languages=dict(skills.languages),
                   topics=dict(skills.topics))


class AgentList(BaseModel):
    """Every agent account, by user name."""

    agents: list[AgentOut]


class SessionOut(BaseModel):
    """A cookie session: send `csrf_token` as the X-CSRFToken header on POST, PUT and DELETE."""

    agent: AgentOut
    csrf_token: str
