"""A caller waiting in a Twilio queue: `<Enqueue>`, the hold loop of its waitUrl, and the ways
out of the queue.

Twilio plays the waitUrl's TwiML again and again while the caller waits; only Say, Play,
Pause, Gather, Redirect, Leave and Hangup may appear there. Every request made while waiting
carries QueueSid, QueuePosition, QueueTime, AvgQueueTime and CurrentQueueSize. Before each
pass the simulator asks the Twilio stand-in (when there is one) whether the line took the
caller out of the queue, by a Queue Member update or a call update. The ways out:

- dequeued to a URL (or given TwiML): Enqueue's action gets `QueueResult=redirected` at once
  (its answer is not played: the dequeue URL decides), then the call follows that URL;
- `<Leave>`: the action gets `QueueResult=leave` and its TwiML is played; without an action
  the call goes on with the verb after `<Enqueue>`;
- the caller hangs up (a `hangup` at a Gather, the end of the caller's patience, or
  `max_wait_passes` passes), or the waitUrl says `<Hangup/>`: `QueueResult=hangup`;
- the line ends the call (call update `Status=completed`): `QueueResult=hangup`;
- the queue is full: `QueueResult=queue-full`, as after `<Leave>`.

Without a stand-in the caller waits alone: position 1, and nobody dequeues them.
"""

from __future__ import annotations

import hashlib
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Protocol
from urllib.parse import quote, urljoin

import requests

from ivr.simulator.callers import HANGUP, Caller, QueueWait
from ivr.simulator.events import (
    ENDED,
    LEFT,
    CallEvent,
    CallFailed,
    CallTranscript,
    Outcome,
    Request,
    short_url,
    text_of,
)

WAIT_VERBS: Final = frozenset({"Say", "Play", "Pause", "Gather", "Redirect", "Leave", "Hangup"})
"""The verbs Twilio plays in a waitUrl document."""
DEFAULT_HOLD_SECONDS: Final = 30.0
"""How long one pass of Twilio's own hold music lasts, when <Enqueue> has no waitUrl."""
MAX_QUEUE_NAME: Final = 64


@dataclass
class QueueContext:
    """Where a waiting caller stands; JSON-able, so a paused call can carry it."""

    name: str
    queue_sid: str
    action: str | None
    action_method: str
    wait_url: str | None
    wait_method: str
    entered_at: float
    after_url: str
    after_twiml: str
    after_index: int
    passes: int = 0
    position: int = 1
    current_size: int = 1
    average_wait: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The context as plain JSON data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueueContext:
        """A context from `to_dict`'s data."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})

    def queue_time(self, seconds: float) -> int:
        """Whole seconds in the queue at simulated time `seconds`."""
        return max(0, int(seconds - self.entered_at))

    def wait(self, seconds: float) -> QueueWait:
        """What the caller knows about their wait."""
        return QueueWait(self.name, self.queue_sid, self.position, self.current_size,
                         self.queue_time(seconds), self.passes)

    def params(self, seconds: float) -> dict[str, str]:
        """The parameters Twilio adds to requests made while the caller waits."""
        queue_time = self.queue_time(seconds)
        average = self.average_wait if self.average_wait is not None else queue_time
        return {"QueueSid": self.queue_sid, "QueuePosition": str(self.position),
                "QueueTime": str(queue_time), "AvgQueueTime": str(average),
                "CurrentQueueSize": str(self.current_size)}

    def result(self, outcome: str, seconds: float) -> dict[str, str]:
        """The parameters of Enqueue's action when the caller leaves the queue."""
        return {"QueueResult": outcome, "QueueSid": self.queue_sid,
                "QueueTime": str(self.queue_time(seconds))}

    def take(self, where: dict[str, Any]) -> None:
        """Note what the stand-in says about the caller's place."""
        self.queue_sid = str(where.get("queue_sid") or self.queue_sid)
        if where.get("position"):
            self.position = int(where["position"])
        self.current_size = int(where.get("current_size") or self.current_size)
        if where.get("average_wait_time") is not None:
            self.average_wait = int(where["average_wait_time"])


class QueueLineError(Exception):
    """The stand-in could not be asked about the queue."""


class QueueLine:
    """The stand-in's /_standin/queues endpoints: the phone network's side of Twilio's queues."""

    def __init__(self, base_url: str, session: requests.Session, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.timeout = timeout

    def _ask(self, method: str, path: str, **options: Any) -> requests.Response:
        url = f"{self.base_url}/_standin/queues/{path}"
        try:
            return self.session.request(method, url, timeout=self.timeout, **options)
        except requests.RequestException as exc:
            raise QueueLineError(f"no answer from the Twilio stand-in at {self.base_url}: "
                                 f"{exc}") from exc

    def join(self, name: str, call_sid: str) -> dict[str, Any] | None:
        """Put the caller in the named queue; where they stand, or None when it is full."""
        response = self._ask("POST", f"{quote(name, safe='')}/members",
                             json={"call_sid": call_sid})
        if response.status_code == 409:
            return None
        return self._json(response, f"putting {call_sid} in queue {name!r}")

    def whereabouts(self, call_sid: str) -> dict[str, Any] | None:
        """Where the caller waits or was dequeued to; None when the stand-in does not know."""
        response = self._ask("GET", f"members/{call_sid}")
        if response.status_code == 404:
            return None
        return self._json(response, f"asking where {call_sid} waits")

    def leave(self, call_sid: str, *, hung_up: bool = False) -> None:
        """The caller left the queue (<Leave>), or hung up (`hung_up`: the call is over)."""
        response = self._ask("DELETE", f"members/{call_sid}",
                             params={"status": "completed"} if hung_up else None)
        if response.status_code not in (204, 404):
            raise QueueLineError(f"the stand-in answered HTTP {response.status_code} when "
                                 f"{call_sid} left its queue")

    @staticmethod
    def _json(response: requests.Response, doing: str) -> dict[str, Any]:
        if not 200 <= response.status_code < 300:
            raise QueueLineError(f"the stand-in answered HTTP {response.status_code} "
                                 f"{doing}: {response.text[:200]}")
        answer: dict[str, Any] = response.json()
        return answer


class SimulatorSettings(Protocol):
    """The simulator settings the hold loop reads."""

    max_wait_passes: int
    wait_pace: float


class QueueCall(Protocol):
    """The parts of a simulated call the queue walk uses."""

    @property
    def sim(self) -> SimulatorSettings: ...

    caller: Caller
    transcript: CallTranscript
    seconds: float
    status: str
    queue: QueueContext | None
    line: QueueLine | None
    index: int
    seconds_before_verb: float
    document_text: str
    current_url: str
    gathered_in_pass: bool

    def _emit(self, event: CallEvent) -> None: ...

    def _fail(self, reason: str, text: str, url: str | None = None,
              http_status: int | None = None, **detail: Any) -> CallFailed: ...

    def _fetch(self, request: Request) -> ET.Element: ...

    def _post_callback(self, request: Request) -> int | None: ...

    def _walk_verbs(self, document: ET.Element, url: str, start: int = 0) -> Outcome: ...


# --- joining -----------------------------------------------------------------------


def enter_queue(call: QueueCall, element: ET.Element, url: str) -> Outcome:
    """`<Enqueue>`: join the queue, then wait in it until a way out."""
    name = text_of(element)
    if not name or len(name) > MAX_QUEUE_NAME:
        raise call._fail("invalid-twiml", f"<Enqueue> needs a queue name of 1 to "
                         f"{MAX_QUEUE_NAME} characters ({short_url(url)})", url)
    action, wait_url = element.get("action"), element.get("waitUrl")
    context = QueueContext(
        name=name, queue_sid="QU" + hashlib.md5(name.encode()).hexdigest(),
        action=urljoin(url, action) if action else None,
        action_method=(element.get("method") or "POST").upper(),
        wait_url=urljoin(url, wait_url) if wait_url else None,
        wait_method=(element.get("waitUrlMethod") or "POST").upper(),
        entered_at=call.seconds, after_url=call.current_url, after_twiml=call.document_text,
        after_index=call.index)
    if call.line is not None:
        try:
            where = call.line.join(name, call.transcript.call_sid)
        except QueueLineError as exc:
            raise call._fail("standin", str(exc), url) from exc
        if where is None:
            return _leave(call, context, "queue-full")
        context.take(where)
    call._emit(CallEvent("enqueue", name, url=url, detail={
        "queue_sid": context.queue_sid, "position": context.position,
        "wait_url": context.wait_url, "action": context.action,
        "standin": call.line is not None}))
    return wait_in_queue(call, context)


# --- the hold loop -----------------------------------------------------------------


def wait_in_queue(call: QueueCall, context: QueueContext,
                  resume: tuple[ET.Element, str, int] | None = None) -> Outcome:
    """Loop the waitUrl until the caller leaves the queue; `resume` goes on with a paused pass.

    The outcome is what follows the queue: a request (the dequeue URL, Enqueue's action), the
    end of the call, or None: the verb after `<Enqueue>`.
    """
    call.queue = context
    pending: Request | None = None
    while True:
        outcome: Outcome
        if resume is not None:
            document, url, start = resume
            resume = None
            outcome = call._walk_verbs(document, url, start)
        else:
            taken = _ask_the_line(call, context)
            if taken is not None:
                return taken
            if pending is None or pending.purpose == "redirect":
                if context.passes >= call.sim.max_wait_passes:
                    call._emit(CallEvent("hangup", f"caller hung up after {context.passes} "
                                         "passes of the hold loop", url=call.current_url,
                                         detail={"by": "caller", "reason": "max wait passes"}))
                    return _hang_up(call, context)
                _start_pass(call, context)
            request = pending or _wait_request(context)
            pending = None
            if request is None:
                outcome = _default_hold_music(call)
            else:
                request = replace(request, params={**context.params(call.seconds),
                                                   **request.params})
                outcome = call._walk_verbs(call._fetch(request), request.url)
        if isinstance(outcome, Request):
            pending = outcome  # a Gather's action or a Redirect, still in the queue
            continue
        if outcome is LEFT:
            return _leave(call, context, "leave")
        if outcome is ENDED:
            return _hang_up(call, context)
        if not call.gathered_in_pass and (
                call.caller.after_wait_pass(context.wait(call.seconds)) is HANGUP):
            call._emit(CallEvent("hangup", "caller hung up while waiting", url=call.current_url,
                                 detail={"by": "caller", "reason": "waiting"}))
            return _hang_up(call, context)


def _start_pass(call: QueueCall, context: QueueContext) -> None:
    if context.passes and call.sim.wait_pace > 0:
        time.sleep(call.sim.wait_pace)  # real time, so the line can ring an agent meanwhile
    context.passes += 1
    call.gathered_in_pass = False
    call.caller.wait_pass(context.wait(call.seconds))
    call._emit(CallEvent("wait", context.name, url=context.wait_url, detail={
        "pass": context.passes, "position": context.position, "size": context.current_size,
        "queue_time": context.queue_time(call.seconds)}))


def _wait_request(context: QueueContext) -> Request | None:
    if context.wait_url is None:
        return None
    return Request(context.wait_url, context.wait_method, {}, "queue-wait")


def _default_hold_music(call: QueueCall) -> Outcome:
    # An empty document stands for the music, so a paused call resumes after it.
    call.document_text, call.index = "<Response/>", 0
    call.seconds += DEFAULT_HOLD_SECONDS
    call.seconds_before_verb = call.seconds
    call._emit(CallEvent("play", "Twilio's default hold music", url=None,
                         detail={"digits": None, "loop": 1}))
    return None


def leave_verb(call: QueueCall, element: ET.Element, url: str) -> Outcome:
    """`<Leave>`: out of the queue in a waitUrl document; elsewhere Twilio ignores it."""
    if call.queue is None:
        call._emit(CallEvent("skip", "<Leave> outside a queue's hold loop is ignored", url=url,
                             detail={"verb": "Leave", "attributes": dict(element.attrib)}))
        return None
    return LEFT


# --- the ways out ------------------------------------------------------------------


def _ask_the_line(call: QueueCall, context: QueueContext) -> Outcome:
    """None while the caller still waits; else what the line's dequeue leads to."""
    if call.line is None:
        return None
    sid = call.transcript.call_sid
    try:
        where = call.line.whereabouts(sid)
        if where is None:  # the stand-in was reset: Twilio would still hold the caller
            where = call.line.join(context.name, sid)
            if where is None:
                return _leave(call, context, "queue-full")
    except QueueLineError as exc:
        raise call._fail("standin", str(exc), call.current_url) from exc
    context.take(where)
    if not where.get("dequeued"):
        return None
    call.queue = None
    queue_time = context.queue_time(call.seconds)
    if where.get("hangup"):
        call._emit(CallEvent("hangup", "the line ended the call while it waited",
                             url=call.current_url, detail={"by": "line", "queue_time": queue_time}))
        call.status = "completed"
        _post_result(call, context, "hangup")
        return ENDED
    twiml = where.get("twiml")
    target = str(where.get("url") or context.wait_url or call.current_url)
    call._emit(CallEvent("dequeue", context.name, url=target, detail={
        "queue_sid": context.queue_sid, "queue_time": queue_time, "twiml": twiml,
        "method": where.get("method") or "POST"}))
    _post_result(call, context, "redirected")
    return Request(target, str(where.get("method") or "POST").upper(), {}, "dequeue",
                   twiml=twiml)


def _leave(call: QueueCall, context: QueueContext, result: str) -> Outcome:
    call.queue = None
    if result == "leave" and call.line is not None:
        try:
            call.line.leave(call.transcript.call_sid)
        except QueueLineError as exc:
            raise call._fail("standin", str(exc), call.current_url) from exc
    call._emit(CallEvent("leave", context.name, url=call.current_url, detail={
        "result": result, "queue_time": context.queue_time(call.seconds),
        "action": context.action}))
    if context.action is None:
        return None  # Twilio goes on with the verb after <Enqueue>
    return Request(context.action, context.action_method,
                   context.result(result, call.seconds), "queue-left")


def _hang_up(call: QueueCall, context: QueueContext) -> Outcome:
    call.queue = None
    call.status = "completed"
    if call.line is not None:
        try:
            call.line.leave(call.transcript.call_sid, hung_up=True)
        except QueueLineError as exc:  # the call is over anyway; the failure is reported
            call._fail("standin", str(exc), call.current_url)
    call._emit(CallEvent("leave", context.name, url=call.current_url, detail={
        "result": "hangup", "queue_time": context.queue_time(call.seconds),
        "action": context.action}))
    _post_result(call, context, "hangup")
    return ENDED


def _post_result(call: QueueCall, context: QueueContext, result: str) -> None:
    """Tell Enqueue's action how the caller left; its answer is not played."""
    if context.action is not None:
        call._post_callback(Request(context.action, context.action_method,
                                    context.result(result, call.seconds), "queue-left"))
