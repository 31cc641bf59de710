"""One simulated call played an input at a time: for a web page, where each key press or
recording arrives in its own HTTP request.

The walk is the simulator's own (`network._Call`); between inputs the call is a small
JSON-able `CallState` (the TwiML document being played and where in it the call waits), so
any web process can take the next step. Resuming re-enters the waiting <Gather> or <Record>
quietly: what it said was already reported with the previous step.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import requests

from ivr.simulator.callers import (
    Caller,
    GatherAnswer,
    GatherPrompt,
    RecordAnswer,
    RecordPrompt,
)
from ivr.simulator.network import (
    _ENDED,
    CallEvent,
    Simulator,
    _Call,
    _CallFailed,
    _Request,
)

Waiting = Literal["gather", "record"]
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

    def to_dict(self) -> dict[str, Any]:
        """The state as plain JSON data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallState:
        """A state from `to_dict`'s data."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass
class CallStep:
    """What one step of the call did, and what it waits for next (None: the call is over)."""

    events: list[CallEvent]
    waiting: Waiting | None
    prompt: GatherPrompt | RecordPrompt | None = None
    state: CallState | None = None
    duration: float = 0.0
    failures: list[CallEvent] = field(default_factory=list)


class _NeedInput(Exception):
    def __init__(self, waiting: Waiting, prompt: GatherPrompt | RecordPrompt) -> None:
        super().__init__(waiting)
        self.waiting = waiting
        self.prompt = prompt


class _OneAnswer(Caller):
    """Gives the one answer the page sent, then asks the page again."""

    def __init__(self, call: _SteppedCall, answer: Any, dial_outcome: str) -> None:
        self.call = call
        self.answer = answer
        self.dial_outcome = dial_outcome

    def _next(self, waiting: Waiting, prompt: GatherPrompt | RecordPrompt) -> Any:
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


class _SteppedCall(_Call):
    """The simulator's call, stopping at each input point instead of asking a `Caller`."""

    def __init__(self, sim: Simulator, answer: Any, dial_outcome: str) -> None:
        super().__init__(sim, _OneAnswer(self, answer, dial_outcome), None)
        self.replaying = False
        self.index = 0
        self.seconds_before_verb = 0.0
        self.document_text = ""

    def _emit(self, event: CallEvent) -> None:
        if not self.replaying:  # the waiting verb's prompt was reported by the last step
            super()._emit(event)

    def _parse(self, response: requests.Response, url: str) -> ET.Element:
        root = super()._parse(response, url)
        self.document_text = response.text
        requested = [event for event in self.transcript.events if event.kind == "request"]
        if requested:
            requested[-1].detail["twiml"] = response.text
        return root

    def _walk_from(self, document: ET.Element, url: str, start: int) -> _Request | None:
        for index, element in enumerate(list(document)[start:], start=start):
            self.index, self.seconds_before_verb = index, self.seconds
            outcome = self._verb(element, url)
            if isinstance(outcome, _Request):
                return outcome
            if outcome is _ENDED:
                return None
        self._emit(CallEvent("hangup", "end of TwiML", url=url,
                             detail={"by": "app", "reason": "end of document"}))
        return None

    def play(self, state: CallState | None) -> CallStep:
        """Run from the entry URL (no state) or the waiting verb until the next input point."""
        try:
            if state is None:
                request = _Request(self.sim.entry_url, "POST", {}, "entry")
                document, url, start = self._fetch(request), request.url, 0
            else:
                self.transcript.call_sid, self.seconds = state.call_sid, state.seconds
                self.status, self.replaying = "in-progress", True
                document, url, start = ET.fromstring(state.twiml), state.url, state.index
                self.document_text = state.twiml
            while True:
                self.status = "in-progress"
                following = self._walk_from(document, url, start)
                if following is None:
                    break
                document, url, start = self._fetch(following), following.url, 0
        except _NeedInput as need:
            paused = CallState(self.transcript.call_sid, url, self.document_text, self.index,
                               self.seconds_before_verb, need.waiting,
                               getattr(self.caller, "dial_outcome", "completed"))
            return CallStep(self.transcript.events, need.waiting, need.prompt, paused,
                            self.seconds)
        except _CallFailed:  # reported as a failure event; the call stops like Twilio's
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
