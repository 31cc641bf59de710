"""What a simulated call produces (events, a transcript) and what its walk passes around: the
next request, the end of the call, and small readers of TwiML."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Final, Literal
from urllib.parse import urlsplit

API_VERSION: Final = "2010-04-01"

EventKind = Literal[
    "request", "say", "play", "pause", "gather", "record", "dial", "redirect", "hangup",
    "failure", "status", "skip", "enqueue", "wait", "leave", "dequeue", "conference",
]


@dataclass
class CallEvent:
    """One thing that happened on the call: a request, a verb heard, an input, an ending."""

    kind: EventKind
    text: str = ""
    language: str | None = None
    url: str | None = None
    http_status: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallTranscript:
    """Everything a simulated call did, in order."""

    call_sid: str
    events: list[CallEvent] = field(default_factory=list)
    recordings: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0

    def said(self) -> list[str]:
        """All texts spoken by <Say>, in order."""
        return [event.text for event in self.events if event.kind == "say"]

    @property
    def failures(self) -> list[CallEvent]:
        """The failure events (HTTP errors, invalid TwiML, loops)."""
        return [event for event in self.events if event.kind == "failure"]

    @property
    def failed(self) -> bool:
        """Whether Twilio would have played its "application error" or logged a webhook error."""
        return bool(self.failures)

    @property
    def requests(self) -> int:
        """How many HTTP requests the call made."""
        return sum(1 for event in self.events if event.kind == "request")



@dataclass(frozen=True)
class Request:
    """A webhook request the call makes next (or TwiML it plays without one: `twiml`)."""

    url: str  # the public URL: what Twilio requests and signs
    method: str
    params: dict[str, str]
    purpose: str
    call_params: bool = True
    callbacks: tuple[Request, ...] = ()  # sent after this request is answered, like Twilio
    twiml: str | None = None  # a document given inline (a call update's Twiml): no request


class Ended:
    """The call is over."""


class Left:
    """The caller left the queue through <Leave>."""


ENDED: Final = Ended()
LEFT: Final = Left()
Outcome = Request | Ended | Left | None
"""What a verb leads to: the next request, the end of the call, leaving a queue, or nothing
(the walk goes on with the next verb)."""


class CallFailed(Exception):
    """The call stops the way Twilio's would; the failure event is already recorded."""



# --- helpers -----------------------------------------------------------------------


def new_sid(prefix: str) -> str:
    """A fresh SID: the prefix and 32 hex digits."""
    return prefix + uuid.uuid4().hex


def timestamp() -> str:
    """Now, as Twilio writes it in webhooks (RFC 2822)."""
    return format_datetime(datetime.now(UTC))


def text_of(element: ET.Element) -> str:
    """The element's text with its whitespace collapsed."""
    return " ".join("".join(element.itertext()).split())


def int_attribute(value: str | None, default: int) -> int:
    """An integer attribute, or `default` when absent or not a number."""
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def join_root(root: str, path: str) -> str:
    """`path` under `root`, unless it is an absolute URL already."""
    if urlsplit(path).scheme:
        return path
    return root + "/" + path.lstrip("/")


def short_url(url: str | None) -> str:
    """A URL's path and query, for one-line messages."""
    if not url:
        return "?"
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
