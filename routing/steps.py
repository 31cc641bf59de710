"""What the engine asks the telephony layer to do, and what the caller did: plain values."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Position:
    """Where a call stands in its flow; travels in action URLs so any process can answer."""

    node: str
    language: str
    attempt: int = 0
    step: str = ""
    """Where inside a multi-turn node: a callback's 'window', 'confirm' or 'number'."""
    window: str = ""
    """The callback window already chosen, carried to the number steps."""
    ticket: str = ""
    """The ticket number a repeat caller keyed in, carried to its status and message steps."""


# --- steps: the engine's output -------------------------------------------------


@dataclass(frozen=True)
class Say:
    """Speak text in a language."""

    text: str
    language: str


@dataclass(frozen=True)
class Gather:
    """Speak prompts while listening for keys (and speech when hints are given)."""

    position: Position
    prompts: tuple[Say, ...]
    timeout: int
    keys: tuple[str, ...]
    speech_hints: tuple[str, ...] = ()
    num_digits: int | None = 1
    """Keys to wait for; None: until `finish_on_key` or the timeout (a phone number)."""
    finish_on_key: str | None = None


@dataclass(frozen=True)
class Record:
    """Record a voicemail; the recording comes back to `position`."""

    position: Position
    max_length: int
    finish_key: str


@dataclass(frozen=True)
class Dial:
    """Ring agent numbers; the outcome comes back to `position`."""

    position: Position
    numbers: tuple[str, ...]
    timeout: int


@dataclass(frozen=True)
class RequestCallback:
    """Queue a callback to the caller (a side effect for the web layer to carry out).

    The web layer says in its place where the caller stands in line, when to expect the
    call, and the ticket number.
    """

    node: str
    language: str
    priority: str | None = None
    category: str | None = None
    dial_number: str = ""
    """The number the caller keyed in, in E.164; '' to call the caller id."""
    window: str = ""
    """The window the caller chose ('asap', 'afternoon', 'tomorrow_morning'); '' if not asked."""


@dataclass(frozen=True)
class Enqueue:
    """Put the caller in line for an agent; leaving the line comes back to `position`.

    The web layer records the waiting caller (or, when no agent who speaks their language is
    signed in, answers at once with QueueLeft('overflow')) and runs the hold loop: place and
    wait every `announce_every` seconds, `hold_music` (or silence) in between.
    """

    position: Position
    queue_name: str
    category: str | None
    priority: str | None
    hold_music: str | None
    announce_every: int
    prompt: Say | None = None
    """Said once, just before the caller joins the line (not when they overflow at once)."""


@dataclass(frozen=True)
class LookupTicket:
    """Look up the ticket a caller keyed in (for the web layer), then answer the engine at
    `position` with a TicketLooked event: the ticket's status, or that there is none."""

    position: Position
    number: str


@dataclass(frozen=True)
class SubscribeToIncidents:
    """The caller pressed a menu's incident key: the web layer notes their number for a text
    when the incidents are fixed and says in its place that it did (or why it cannot)."""

    incident_ids: tuple[int, ...]
    language: str


@dataclass(frozen=True)
class Hangup:
    """End the call."""


Step = (Say | Gather | Record | Dial | RequestCallback | Enqueue | LookupTicket
        | SubscribeToIncidents | Hangup)


@dataclass(frozen=True)
class Turn:
    """The engine's answer to one event: steps to carry out, nodes passed, and the outcome."""

    steps: tuple[Step, ...]
    path: tuple[str, ...]
    outcome: str | None = None
    language: str | None = None
    choice: str | None = field(default=None)
    announced: bool = False
    """The call has heard the open incidents (in this turn or before): later menus of the call
    do not announce them again."""


# --- events: what the caller (or the network) did --------------------------------


@dataclass(frozen=True)
class Digits:
    """Keys the caller pressed."""

    value: str


@dataclass(frozen=True)
class Speech:
    """Words the caller said, as transcribed by the telephony provider."""

    text: str
    confidence: float | None = None


@dataclass(frozen=True)
class NoInput:
    """The caller stayed silent until the timeout."""


@dataclass(frozen=True)
class Recorded:
    """A voicemail recording finished."""


@dataclass(frozen=True)
class DialEnded:
    """A transfer ended: answered (the conversation happened) or not."""

    answered: bool


QUEUE_EXITS = ("overflow", "callback", "voicemail", "talked", "hangup")
"""Why a caller left the line: sent on (max wait, nobody qualified), pressed 1 or 2, talked
to an agent, or hung up while waiting."""


@dataclass(frozen=True)
class QueueLeft:
    """The caller left the line of a queue node, for one of QUEUE_EXITS."""

    reason: str


@dataclass(frozen=True)
class TicketLooked:
    """The web layer's answer to LookupTicket: the ticket's status, or None if there is none."""

    status: str | None


Event = Digits | Speech | NoInput | Recorded | DialEnded | QueueLeft | TicketLooked
