"""What the stand-in holds: the SMS, calls, recordings and queues it received, behind locks."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from flask import Flask, current_app

from ivr.standin.queues import QueueBook
from ivr.standin.shapes import rfc2822_now

ENDED_STATUSES: Final = frozenset({"completed", "canceled", "busy", "no-answer", "failed"})
RINGING_STATUSES: Final = frozenset({"queued", "ringing"})
_RECORDING_SID: Final = re.compile(r"^RE[0-9a-fA-F]{32}$")
AUDIO_TYPES: Final = {"wav": "audio/x-wav", "mp3": "audio/mpeg"}


@dataclass(frozen=True)
class StandinMessage:
    """An SMS the stand-in accepted (nothing is delivered)."""

    sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    params: dict[str, str]
    resource: dict[str, Any]


@dataclass(frozen=True)
class StandinCall:
    """An outbound call the stand-in accepted (nobody is dialed)."""

    sid: str
    to: str
    from_: str
    url: str | None
    twiml: str | None
    status_callback: str | None
    params: dict[str, str]
    resource: dict[str, Any]


@dataclass(frozen=True)
class StandinRequest:
    """One request to the REST API part (not /_standin/), as received."""

    method: str
    path: str


@dataclass(frozen=True)
class CallUpdate:
    """A change to a call: asked for by the line (REST call update) or reported by the network."""

    status: str | None
    url: str | None
    method: str | None
    twiml: str | None
    by: Literal["line", "network"]
    at: str = field(default_factory=rfc2822_now)


@dataclass
class Fault:
    """Failures to inject: the next `times` requests whose path matches `path` (a regex)."""

    path: str
    status: int | None = 500
    times: int = 1
    delay_seconds: float = 0.0
    method: str | None = None
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.pattern = re.compile(self.path)
        self.method = self.method.upper() if self.method else None
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status (100-599) or null, not {self.status}")
        if self.times < 1:
            raise ValueError(f"times must be at least 1, not {self.times}")
        if not 0 <= self.delay_seconds <= 3600:
            raise ValueError(f"delay_seconds must be between 0 and 3600, not {self.delay_seconds}")


class StandinState:
    """Everything the stand-in holds, behind one lock (the server is threaded)."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.stopping = threading.Event()  # wakes injected delays when the server stops
        self._lock = threading.Lock()
        self._messages: list[StandinMessage] = []
        self._calls: list[StandinCall] = []
        self._deleted: list[str] = []
        self._requests: list[StandinRequest] = []
        self._recordings: dict[str, dict[str, bytes]] = {}
        self._faults: list[Fault] = []
        self._status: dict[str, str] = {}
        self._updates: dict[str, list[CallUpdate]] = {}
        self.queues = QueueBook(account_sid)

    def messages(self) -> list[StandinMessage]:
        """The SMS accepted so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def calls(self) -> list[StandinCall]:
        """The calls accepted so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def deleted(self) -> list[str]:
        """The SIDs of deleted recordings, in order."""
        with self._lock:
            return list(self._deleted)

    def requests(self) -> list[StandinRequest]:
        """Every REST API request received, in order (including refused ones)."""
        with self._lock:
            return list(self._requests)

    def put_recording(self, sid: str, data: bytes, audio_format: str = "wav") -> None:
        """Provide the audio Twilio would serve for recording `sid` (wav or mp3)."""
        if not _RECORDING_SID.match(sid):
            raise ValueError(f"{sid!r} is not a recording SID (RE + 32 hex digits)")
        if audio_format not in AUDIO_TYPES:
            raise ValueError(f"audio_format must be one of {sorted(AUDIO_TYPES)}")
        with self._lock:
            self._recordings.setdefault(sid, {})[audio_format] = bytes(data)

    def recordings(self) -> list[str]:
        """The SIDs of the recordings held now."""
        with self._lock:
            return list(self._recordings)

    def recording(self, sid: str, audio_format: str) -> bytes | None:
        """The stored audio of `sid` in `audio_format`, if any."""
        with self._lock:
            return self._recordings.get(sid, {}).get(audio_format)

    def delete_recording(self, sid: str) -> bool:
        """Forget recording `sid`; False when there was none."""
        with self._lock:
            if self._recordings.pop(sid, None) is None:
                return False
            self._deleted.append(sid)
            return True

    def add_fault(self, fault: Fault) -> None:
        """Fail the next matching requests."""
        with self._lock:
            self._faults.append(fault)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, used up once."""
        with self._lock:
            for fault in self._faults:
                if fault.method not in (None, method) or not fault.pattern.search(path):
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def record_request(self, method: str, path: str) -> None:
        """Note one REST API request."""
        with self._lock:
            self._requests.append(StandinRequest(method, path))

    def add_message(self, message: StandinMessage) -> None:
        """Keep an accepted SMS."""
        with self._lock:
            self._messages.append(message)

    def add_call(self, call: StandinCall) -> None:
        """Keep an accepted call."""
        with self._lock:
            self._calls.append(call)

    def find_message(self, sid: str) -> StandinMessage | None:
        """The SMS with this SID."""
        with self._lock:
            return next((m for m in self._messages if m.sid == sid), None)

    def find_call(self, sid: str) -> StandinCall | None:
        """The call with this SID."""
        with self._lock:
            return next((c for c in self._calls if c.sid == sid), None)

    def call_status(self, sid: str) -> str | None:
        """The call's status now: as created, updated by the line or reported by the network."""
        with self._lock:
            status = self._status.get(sid)
            if status is None:
                call = next((c for c in self._calls if c.sid == sid), None)
                status = str(call.resource["status"]) if call is not None else None
            return status

    def call_updates(self, sid: str) -> list[CallUpdate]:
        """The changes made to the call, oldest first."""
        with self._lock:
            return list(self._updates.get(sid, ()))

    def update_call(self, sid: str, update: CallUpdate) -> None:
        """Keep a change to call `sid`; its status, when given, becomes the call's status."""
        with self._lock:
            self._updates.setdefault(sid, []).append(update)
            if update.status:
                self._status[sid] = update.status

    def reset(self) -> None:
        """Forget messages, calls, recordings, deletions, requests, faults and queues."""
        with self._lock:
            for items in (self._messages, self._calls, self._deleted, self._requests,
                          self._faults):
                items.clear()
            self._recordings.clear()
            self._status.clear()
            self._updates.clear()
        self.queues.reset()


def standin_state(app: Flask) -> StandinState:
    """The state of a stand-in app made by `create_standin`."""
    state: StandinState = app.extensions["ivr.standin"]
    return state


def current_state() -> StandinState:
    """The state of the stand-in app serving this request."""
    return standin_state(current_app)
