"""The flow format: what an admin writes in YAML, as typed models with a JSON Schema."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

NodeId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]
Key = Annotated[str, StringConstraints(pattern=r"^[0-9*#]$")]
Priority = Annotated[str, StringConstraints(pattern=r"^P[1-9]$")]
Prompt = dict[LanguageCode, Annotated[str, StringConstraints(min_length=1, max_length=4000)]]
"""Text to speak, one entry per language the flow declares."""

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_SPEC = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?$")
TIME_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class _Model(BaseModel):
    # by alias: a stored flow's JSON must read back with the keys the YAML uses ('from')
    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)


class Voice(_Model):
    """Text-to-speech settings for one language (Twilio <Say> voice and locale)."""

    locale: str = Field(description="BCP-47 locale for <Say language=...>, e.g. de-DE")
    voice: str | None = Field(default=None, description="Twilio voice name, e.g. Polly.Vicki")


class HolidaySource(_Model):
    """Public holidays taken from the `holidays` package."""

    country: str = Field(description="ISO 3166-1 alpha-2 country code, e.g. DE")
    subdivision: str | None = Field(default=None, description="State or region code, e.g. BE")


class Calendar(_Model):
    """Business hours: a time zone, weekly opening hours, public holidays and closed dates."""

    timezone: str = Field(description="IANA time zone, e.g. Europe/Berlin")
    hours: dict[str, list[str] | str] = Field(
        description="Opening hours per day or day range (mon, mon-fri) as 'HH:MM-HH:MM'"
    )
    holidays: HolidaySource | None = None
    closed: list[date] = Field(default_factory=list, description="Extra closed dates")


class RotaShift(_Model):
    """A weekly on-call shift: who is on duty from a time on each listed day until a time."""

    days: list[Weekday] = Field(min_length=1, description="Days the shift starts on")
    from_: str = Field(alias="from", description="Start, local time 'HH:MM'")
    to: str = Field(
        description="End, local time 'HH:MM' ('24:00' is midnight); at or before 'from' the "
        "shift ends the next day, equal to 'from' it lasts 24 hours")
    person: str = Field(description="A name under the rota's 'people'")


class RotaOverride(_Model):
    """A swap: someone on duty for a whole local date, or from one local time to another."""

    day: date | None = Field(default=None, alias="date", description="A whole local day")
    from_: datetime | None = Field(
        default=None, alias="from", description="Start, local 'YYYY-MM-DD HH:MM'")
    to: datetime | None = Field(default=None, description="End (exclusive), local time")
    person: str


class Rota(_Model):
    """Who is on call when: weekly shifts, a holiday person and dated overrides."""

    timezone: str = Field(description="IANA time zone the shifts are written in")
    calendar: str | None = Field(
        default=None, description="Calendar whose public holidays and closed dates apply")
    people: dict[str, str] = Field(min_length=1, description="Name -> E.164 number")
    weekly: list[RotaShift] = Field(default_factory=list)
    holidays: str | None = Field(
        default=None, description="Person on duty all day on the calendar's days off")
    overrides: list[RotaOverride] = Field(
        default_factory=list, description="Dated swaps; they win over shifts and holidays")


class MenuOption(_Model):
    """One choice of a menu: a key, optional spoken keywords per language, and a target."""

    next: NodeId
    keywords: dict[LanguageCode, list[str]] = Field(default_factory=dict)
    label: str | None = Field(default=None, description="Short name for reports")


class SayNode(_Model):
    """Speak a prompt, then continue."""

    type: Literal["say"]
    text: Prompt
    next: NodeId


class MenuIncidents(_Model):
    """A menu that announces open outage incidents (their words come from incidents.yaml)."""

    subscribe: Key = Field(
        description="The key that asks for a text when the incident is fixed; it must not be "
        "one of the menu's options")


class MenuNode(_Model):
    """Ask the caller to press a key (or say a keyword) and branch on it."""

    type: Literal["menu"]
    prompt: Prompt
    options: dict[Key, MenuOption] = Field(min_length=1)
    timeout: int = Field(default=6, ge=1, le=60, description="Seconds to wait for input")
    retries: int = Field(default=2, ge=0, le=5, description="Repeats after invalid or no input")
    invalid: Prompt | None = Field(default=None, description="Said after an unknown key")
    no_input: Prompt | None = Field(default=None, description="Said after silence")
    on_failure: NodeId = Field(description="Where to go when the retries are used up")
    incidents: MenuIncidents | None = Field(
        default=None, description="Announce open incidents before the prompt (the first time "
        "in a call) and offer a key to be texted when they are fixed")


class LanguageNode(_Model):
    """Let the caller pick a language; each option is announced in its own language."""

    type: Literal["language"]
    prompt: Prompt = Field(description="Per language: the sentence that offers that language")
    options: dict[Key, LanguageCode] = Field(min_length=1)
    timeout: int = Field(default=5, ge=1, le=60)
    retries: int = Field(default=1, ge=0, le=5)
    next: NodeId = Field(description="Where to go once a language is chosen (or defaulted)")


class HoursNode(_Model):
    """Branch on a calendar: open, closed, or a public holiday."""

    type: Literal["hours"]
    calendar: str
    open: NodeId
    closed: NodeId
    holiday: NodeId | None = Field(default=None, description="Defaults to 'closed'")


class VoicemailNode(_Model):
    """Record a message that becomes a ticket."""

    type: Literal["voicemail"]
    prompt: Prompt
    max_length: int = Field(default=120, ge=5, le=3600, description="Seconds")
    finish_key: str = Field(default="#", pattern=r"^[0-9*#]$")
    category: str | None = Field(default=None, description="Ticket category hint")
    priority: Priority | None = Field(default=None, description="Ticket priority, e.g. P1")
    callback: bool = Field(default=False, description="Also queue a callback for the ticket")
    next: NodeId | None = Field(default=None, description="After the recording; else hang up")


class CallbackTexts(_Model):
    """Wording of a callback node's dialog; any text left out uses the line's built-in one."""

    window: Prompt | None = Field(default=None, description="Offer the windows: keys 1, 2, 3")
    confirm: Prompt | None = Field(
        default=None, description="Confirm the caller id; {digits}: its last four digits")
    key_in: Prompt | None = Field(default=None, description="Ask for another number, then #")
    invalid_number: Prompt | None = Field(default=None, description="A number we cannot call")
    queued: Prompt | None = Field(
        default=None, description="{place} in line, called back by {when}")
    queued_window: Prompt | None = Field(
        default=None, description="{place} in line, called back from {when} (a window)")
    ticket: Prompt | None = Field(default=None, description="{number}: the ticket number")
    no_number: Prompt | None = Field(
        default=None, description="Goodbye when no number was taken and there is no on_failure")


class CallbackNode(_Model):
    """Ask when and where to call back, queue the callback, tell the caller, then continue."""

    type: Literal["callback"]
    prompt: Prompt = Field(description="Said once the callback is queued")
    priority: Priority | None = Field(default=None, description="Priority level, e.g. P2")
    category: str | None = None
    confirm_number: bool = Field(
        default=True, description="Let the caller confirm their caller id or key in another")
    windows: bool = Field(
        default=True, description="Offer: as soon as possible, after 14:00, next working morning")
    calendar: str | None = Field(
        default=None, description="Calendar for windows and due times; default: the only one")
    timeout: int = Field(default=8, ge=1, le=60, description="Seconds to wait for keys")
    retries: int = Field(default=2, ge=0, le=5, description="Repeats after invalid or no input")
    invalid: Prompt | None = Field(default=None, description="Said after an unknown key")
    no_input: Prompt | None = Field(default=None, description="Said after silence")
    texts: CallbackTexts = Field(default_factory=CallbackTexts)
    on_failure: NodeId | None = Field(
        default=None, description="Where to go when no number can be taken; else hang up")
    next: NodeId


class TicketTexts(_Model):
    """Wording of a ticket node; any text left out uses the line's built-in one. Status texts
    say the status only ({number}: the ticket number as keyed in), never who or what."""

    unknown: Prompt | None = Field(default=None, description="No ticket has that number")
    status_new: Prompt | None = None
    status_assigned: Prompt | None = None
    status_in_progress: Prompt | None = None
    status_waiting_for_caller: Prompt | None = None
    status_resolved: Prompt | None = None
    status_closed: Prompt | None = None
    add_message: Prompt | None = Field(
        default=None, description="Offer: key 1 adds a voice message, key 2 goes on")
    record: Prompt | None = Field(default=None, description="Said before the tone")
    added: Prompt | None = Field(default=None, description="{number}: the message is kept")


class TicketNode(_Model):
    """A repeat caller keys in their ticket number and hears its status (nothing personal);
    they may add a voice message to the ticket, which reopens it if it was resolved."""

    type: Literal["ticket"]
    prompt: Prompt = Field(description="Ask for the ticket number, ending with the hash key")
    timeout: int = Field(default=10, ge=1, le=60, description="Seconds to wait for keys")
    retries: int = Field(default=1, ge=0, le=5,
                         description="Tries after an unknown number or silence (1: two tries)")
    no_input: Prompt | None = Field(default=None, description="Said after silence")
    max_length: int = Field(default=120, ge=5, le=3600, description="Seconds of message")
    texts: TicketTexts = Field(default_factory=TicketTexts)
    on_failure: NodeId = Field(description="Where to go when no ticket was found")
    next: NodeId = Field(description="Where to go after the status, without a message")


class TransferNode(_Model):
    """Connect the caller to a fixed number or group (an outside vendor); agents of the desk
    are reached through a `queue` node."""

    type: Literal["transfer"]
    prompt: Prompt | None = None
    to: str | None = Field(default=None, description="E.164 number")
    group: str | None = Field(default=None, description="Name of a group under 'groups'")
    timeout: int = Field(default=20, ge=5, le=120, description="Seconds to ring")
    on_no_answer: NodeId


class QueueTexts(_Model):
    """Wording of a queue node's hold loop; any text left out uses the line's built-in one."""

    place: Prompt | None = Field(default=None, description="{place}: the caller's place in line")
    wait: Prompt | None = Field(
        default=None, description="{minutes}: the estimated wait, in whole minutes")
    wait_short: Prompt | None = Field(default=None, description="A wait under two minutes")
    offer: Prompt | None = Field(
        default=None, description="Press 1 for a callback, 2 for a voicemail (both set)")
    offer_callback: Prompt | None = Field(
        default=None, description="Press 1 for a callback (only 'callback' set)")
    offer_voicemail: Prompt | None = Field(
        default=None, description="Press 2 for a voicemail (only 'voicemail' set)")
    hold: Prompt | None = Field(
        default=None, description="The apology for the wait, said on later announcements")


class QueueNode(_Model):
    """Wait in line for an agent who speaks the caller's language (and knows the topic).

    The caller hears their place and the estimated wait every `announce_every` seconds, hold
    music or silence in between, and may press 1 for a callback that keeps their place or 2
    for a voicemail. After the priority's max wait, or when no agent who speaks the caller's
    language is signed in, the caller goes to `overflow`.
    """

    type: Literal["queue"]
    category: str | None = Field(
        default=None, description="Topic for matching agents (a ticket category); none: any")
    priority: Priority | None = Field(
        default=None, description="Live priority (priorities.yaml 'live:'); else its default")
    queue: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="Twilio queue name (64 characters at most); default: the "
        "flow's name")
    prompt: Prompt | None = Field(default=None, description="Said once, on joining the line")
    hold_music: str | None = Field(
        default=None, description="https URL of a short audio clip played while waiting; "
        "else silence")
    announce_every: int = Field(
        default=30, ge=10, le=300, description="Seconds between place and wait announcements")
    callback: NodeId | None = Field(
        default=None, description="A callback node for key 1 (the caller keeps their place)")
    voicemail: NodeId | None = Field(default=None, description="A voicemail node for key 2")
    overflow: NodeId = Field(
        description="Where callers go after the max wait, or when no qualified agent is "
        "signed in")
    texts: QueueTexts = Field(default_factory=QueueTexts)


class OncallNode(_Model):
    """Ring whoever is on duty in a rota; nobody on duty, or no answer: go on."""

    type: Literal["oncall"]
    rota: str = Field(description="Name of a rota under 'rotas'")
    prompt: Prompt | None = Field(default=None, description="Said before ringing")
    timeout: int = Field(default=25, ge=5, le=120, description="Seconds to ring")
    on_no_answer: NodeId = Field(description="Where to go when nobody is on duty or answers")


class HangupNode(_Model):
    """Say goodbye (optional) and end the call."""

    type: Literal["hangup"]
    text: Prompt | None = None


class GotoNode(_Model):
    """Jump to another node."""

    type: Literal["goto"]
    next: NodeId


Node = Annotated[
    SayNode
    | MenuNode
    | LanguageNode
    | HoursNode
    | VoicemailNode
    | CallbackNode
    | TicketNode
    | TransferNode
    | QueueNode
    | OncallNode
    | HangupNode
    | GotoNode,
    Field(discriminator="type"),
]

WAITING_TYPES = frozenset({"menu", "language", "voicemail", "transfer", "queue", "ticket",
                           "oncall", "hangup"})
"""Node kinds that wait for the caller or end the call; a loop must pass through one."""


class Flow(_Model):
    """A complete call flow: languages, calendars, agent groups and the graph of nodes."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
    description: str = ""
    languages: list[LanguageCode] = Field(min_length=1)
    default_language: LanguageCode
    voices: dict[LanguageCode, Voice] = Field(default_factory=dict)
    numbers: list[str] = Field(default_factory=list, description="E.164 numbers it answers")
    calendars: dict[str, Calendar] = Field(default_factory=dict)
    groups: dict[str, list[str]] = Field(default_factory=dict, description="Agent numbers")
    rotas: dict[str, Rota] = Field(default_factory=dict, description="On-call rotas")
    start: NodeId
    nodes: dict[NodeId, Node] = Field(min_length=1)

    def node(self, node_id: str) -> Any:
        """The node with this id (KeyError if the flow has none)."""
        return self.nodes[node_id]


def flow_json_schema() -> dict[str, Any]:
    """The JSON Schema of the flow format, for editors and `ivr flows schema`."""
    schema = Flow.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "IVR call flow"
    return schema
