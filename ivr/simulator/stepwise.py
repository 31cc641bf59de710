"""One simulated call played an input at a time: for a web page, where each key press or
recording arrives in its own HTTP request.

The walk is the simulator's own (`network._Call`); between inputs the call is a small
JSON-able `CallState` (the TwiML document being played, where in it the call waits and, in a
queue's hold loop, the queue), so any web process can take the next step. Resuming re-enters
the waiting <Gather> or <Record> quietly: what it said was already reported with the previous
step. In a hold loop the call also stops after each pass without a <Gather> ("wait"): the
page then keeps waiting (silence) or hangs up.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import requests

from ivr.simulator.callers import (
    HANGUP,
    Caller,
    GatherAnswer,
    GatherPrompt,
    Hangup,
    QueueWait,
    RecordAnswer,
    RecordPrompt,
)
from ivr.simulator.events import ENDED, CallEvent, CallFailed, Request
from ivr.simulator.network import Simulator, _Call
from ivr.simulator.waiting import QueueContext, wait_in_queue

Waiting = Literal["gather", "record", "wait"]
Prompt = GatherPrompt | RecordPrompt | QueueWait
_NO_ANSWER: Any = object()


@dataclass
class CallState:
    """Where a paused call stands: JSON-able, so it can wait in a page or a store."""

    call_sid: str
    url: str
    twiml: str
    index: int
    seconds: float
    waiting: Waiting
    dial_outcome: str = "completed"
    queue: dict[str, Any] | None = None  # a QueueContext while the caller waits in a queue

    def to_dict(self) -> dict[str, Any]:
        """The state as plain JSON data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallState:
        """A state from `to_dict`'s data."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


@dataclass
class CallStep:
    """What one step of the call did, and what it waits for next (None: the call is over)."""

    events: list[CallEvent]
    waiting: Waiting | None
    prompt: Prompt | None = None
    state: CallState | None = None
    duration: float = 0.0
    failures: list[CallEvent] = field(default_factory=list)


class _NeedInput(Exception):
    def __init__(self, waiting: Waiting, prompt: Prompt) -> None:
        super().__init__(waiting)
        self.waiting = waiting
        self.prompt = prompt


class _OneAnswer(Caller):
    """Gives the one answer the page sent, then asks the page again."""

    def __init__(self, call: _SteppedCall, answer: Any, dial_outcome: str) -> None:
        self.call = call
        self.answer = answer
        self.dial_outcome = dial_outcome

    def _next(self, waiting: Waiting, prompt: Prompt) -> Any:
        if self.answer is _NO_ANSWER:
            raise _NeedInput(waiting, prompt)
        answer, self.answer = self.answer, _NO_ANSWER
        self.call.replaying = False
        return answer

    def gather(self, prompt: GatherPrompt) -> GatherAnswer:
        """The page's keys, speech, silence or hang-up."""
        return self._next("gather", prompt)  # type: ignore[no-any-return]

    def record(self, prompt: RecordPrompt) -> RecordAnswer:
        """The page's recording, silence or hang-up."""
        return self._next("record", prompt)  # type: ignore[no-any-return]

    def dial(self, numbers: list[str]) -> str:
        """How a transfer ends, as chosen when the call started."""
        return self.dial_outcome

    def after_wait_pass(self, wait: QueueWait) -> Hangup | None:
        """The page keeps waiting (silence) or hangs up after a pass of hold music."""
        return HANGUP if self._next("wait", wait) is HANGUP else None


class _SteppedCall(_Call):
    """The simulator's call, stopping at each input point instead of asking a `Caller`."""

    def __init__(self, sim: Simulator, answer: Any, dial_outcome: str) -> None:
        super().__init__(sim, _OneAnswer(self, answer, dial_outcome), None)
        self.replaying = False

    def _emit(self, event: CallEvent) -> None:
        if not self.replaying:  # the waiting verb's prompt was reported by the last step
            super()._emit(event)

    def _parse(self, response: requests.Response, url: str) -> ET.Element:
        root = super()._parse(response, url)
        requested = [event for event in self.transcript.events if event.kind == "request"]
        if requested:
            requested[-1].detail["twiml"] = response.text
        return root

    def _resume(self, state: CallState) -> Request | None:
        """Re-enter the paused verb (in its queue's hold loop, if any); what follows it."""
        self.transcript.call_sid, self.seconds = state.call_sid, state.seconds
        self.status, self.replaying = "in-progress", True
        self.document_text = state.twiml
        document = ET.fromstring(state.twiml)
        if state.queue is None:
            return self._walk(document, state.url, state.index)
        context = QueueContext.from_dict(state.queue)
        outcome = wait_in_queue(self, context, resume=(document, state.url, state.index))
        if isinstance(outcome, Request):
            return outcome
        if outcome is ENDED:
            return None
        # Out of the queue without an action: the verb after <Enqueue> in its document.
        self.document_text = context.after_twiml
        return self._walk(ET.fromstring(context.after_twiml), context.after_url,
                          context.after_index + 1)

    def play(self, state: CallState | None) -> CallStep:
        """Run from the entry URL (no state) or the waiting verb until the next input point."""
        try:
            if state is None:
                request = Request(self.sim.entry_url, "POST", {}, "entry")
                document = self._fetch(request)
                self.status = "in-progress"
                following = self._walk(document, request.url)
            else:
                following = self._resume(state)
            while following is not None:
                document = self._fetch(following)
                self.status = "in-progress"
                following = self._walk(document, following.url)
        except _NeedInput as need:
            paused = CallState(self.transcript.call_sid, self.current_url, self.document_text,
                               self.index, self.seconds_before_verb, need.waiting,
                               getattr(self.caller, "dial_outcome", "completed"),
                               self.queue.to_dict() if self.queue is not None else None)
            return CallStep(self.transcript.events, need.waiting, need.prompt, paused,
                            self.seconds)
        except CallFailed:  # reported as a failure event; the call stops like Twilio's
            return CallStep(self.transcript.events, None, duration=self.seconds,
                            failures=self.transcript.failures)
        self._finish()
        return CallStep(self.transcript.events, None, duration=self.seconds,
                        failures=self.transcript.failures)


def start_call(sim: Simulator, dial_outcome: str = "completed") -> CallStep:
    """Place a call and play it until it first waits for the caller (or ends)."""
    return _SteppedCall(sim, _NO_ANSWER, dial_outcome).play(None)


def continue_call(sim: Simulator, state: CallState, answer: GatherAnswer | RecordAnswer
                  ) -> CallStep:
    """Give the waiting <Gather> or <Record> `answer` and play on to the next input point."""
    return _SteppedCall(sim, answer, state.dial_outcome).play(state)
