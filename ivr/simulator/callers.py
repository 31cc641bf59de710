"""The caller side of a simulated call: the person on the phone, scripted or at a terminal."""

from __future__ import annotations

import enum
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

DIAL_OUTCOMES: Final = ("completed", "answered", "busy", "no-answer", "failed")
KEYS: Final = frozenset("0123456789*#")
GATHER_PROMPT: Final = "Press keys (or type words, empty = silence, 'hangup'): "
WAITING_GATHER_PROMPT: Final = "Press keys while waiting (empty = keep waiting, 'hangup'): "
WAITING_PROMPT: Final = "Waiting: Enter to keep waiting, 'hangup' to hang up: "
RECORD_PROMPT: Final = "Path to a WAV file to record (empty = silence, 'hangup'): "


class _Hangup(enum.Enum):
    HANGUP = "hangup"


HANGUP: Final = _Hangup.HANGUP
"""Returned by a `Caller` at any input point: the caller hangs up there."""

Hangup = Literal[_Hangup.HANGUP]


class ScriptError(ValueError):
    """A caller script that cannot be played: a bad token, or a token at the wrong verb."""


# --- what the caller does ----------------------------------------------------------


@dataclass(frozen=True)
class Speech:
    """Words the caller says at a <Gather> that listens for speech."""

    text: str
    confidence: float = 0.9


@dataclass(frozen=True)
class Recording:
    """Audio the caller leaves at a <Record>; `hangup` ends it by hanging up instead of a key."""

    path: str
    hangup: bool = False


@dataclass(frozen=True)
class QueueWait:
    """What a caller waiting in a queue knows: the queue, their place, how long, which pass."""

    queue: str
    queue_sid: str
    position: int
    size: int
    seconds: int
    passes: int


@dataclass(frozen=True)
class GatherPrompt:
    """What the caller knows when a <Gather> listens: its settings and what was just heard."""

    url: str
    input: tuple[str, ...]
    timeout: int
    num_digits: int | None
    finish_on_key: str
    language: str
    hints: str | None
    heard: tuple[str, ...]
    queue: QueueWait | None = None
    """Set when the Gather is part of a queue's hold loop."""


@dataclass(frozen=True)
class RecordPrompt:
    """What the caller knows when a <Record> starts."""

    url: str
    max_length: int
    timeout: int
    finish_on_key: str
    heard: tuple[str, ...]


GatherAnswer = str | Speech | None | Hangup
RecordAnswer = str | os.PathLike[str] | Recording | None | Hangup


class Caller(ABC):
    """The person on the phone: answers each input point of the call."""

    @abstractmethod
    def gather(self, prompt: GatherPrompt) -> GatherAnswer:
        """Keys (a string such as "12#"), `Speech`, None for silence, or HANGUP."""

    @abstractmethod
    def record(self, prompt: RecordPrompt) -> RecordAnswer:
        """A WAV path or `Recording`, None for silence, or HANGUP."""

    def dial(self, numbers: list[str]) -> str | Hangup:
        """How dialing `numbers` ends: completed/answered, busy, no-answer or failed."""
        return "completed"

    def wait_pass(self, wait: QueueWait) -> None:
        """A new pass of a queue's hold loop begins (the waitUrl is requested again)."""
        return None

    def after_wait_pass(self, wait: QueueWait) -> Hangup | None:
        """A pass of the hold loop ended without a <Gather>: HANGUP to hang up, else wait on."""
        return None


@dataclass(frozen=True)
class _Token:
    kind: Literal["keys", "speech", "silence", "wav", "dial", "hangup", "wait"]
    value: str = ""
    hangup: bool = False
    raw: str = ""


def _parse_token(raw: str, number: int) -> _Token:
    token = raw.strip()
    prefix, sep, rest = token.partition(":")
    if token in ("", "-"):
        return _Token("silence", raw=token)
    if token.lower() == "hangup":
        return _Token("hangup", raw=token)
    if sep and prefix == "say" and rest.strip():
        return _Token("speech", rest.strip(), raw=token)
    if sep and prefix in ("wav", "wav+hangup") and rest.strip():
        if not Path(rest.strip()).is_file():
            raise ScriptError(f"script token {number} {token!r}: no such file")
        return _Token("wav", rest.strip(), hangup=prefix == "wav+hangup", raw=token)
    if sep and prefix == "dial" and rest.strip().lower() in DIAL_OUTCOMES:
        return _Token("dial", rest.strip().lower(), raw=token)
    if sep and prefix == "wait" and rest.strip().isdigit() and int(rest) > 0:
        return _Token("wait", str(int(rest)), raw=token)
    if not sep and set(token) <= KEYS:
        return _Token("keys", token, raw=token)
    raise ScriptError(
        f"script token {number} {token!r}: expected keys (0-9 * #), say:TEXT, - (silence), "
        f"wav:PATH, wav+hangup:PATH, dial:{'|'.join(DIAL_OUTCOMES)}, wait:N (N passes of a "
        "queue's hold loop in silence) or hangup"
    )


class ScriptedCaller(Caller):
    """A caller that plays script tokens in order and hangs up when the script runs out.

    In a queue's hold loop the caller stays silent through the passes a `wait:N` token names,
    answers the hold loop's Gathers with the next keys, silence or `hangup`, and, once the
    script has run out, waits silently (the simulator's `max_wait_passes` ends the wait).
    """

    def __init__(
        self,
        script: list[str],
        *,
        dial_default: str = "completed",
        recording: str | os.PathLike[str] | None = None,
    ) -> None:
        self._tokens = [_parse_token(raw, n) for n, raw in enumerate(script, start=1)]
        self._position = 0
        if dial_default not in DIAL_OUTCOMES:
            raise ScriptError(f"dial outcome {dial_default!r}: use one of {DIAL_OUTCOMES}")
        self.dial_default = dial_default
        # Used at the first <Record> the script does not answer with a wav: token.
        self._recording = str(recording) if recording is not None else None
        self._silent_passes = 0  # what is left of a wait:N token
        self._silent = False  # this pass of a hold loop is one of them

    @property
    def remaining(self) -> list[str]:
        """The tokens not played yet."""
        return [token.raw for token in self._tokens[self._position:]]

    def _peek(self) -> _Token | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def _take(self, verb: str, allowed: tuple[str, ...]) -> _Token | None:
        token = self._peek()
        if token is None:
            return None
        if token.kind not in allowed:
            raise ScriptError(
                f"script token {self._position + 1} {token.raw!r} came at a <{verb}>, "
                f"which takes {', '.join(allowed)}"
            )
        self._position += 1
        return token

    def gather(self, prompt: GatherPrompt) -> GatherAnswer:
        """The next keys, speech, silence or hang-up from the script."""
        if prompt.queue is not None:
            return self._gather_while_waiting()
        token = self._take("Gather", ("keys", "speech", "silence", "hangup"))
        if token is None or token.kind == "hangup":
            return HANGUP
        if token.kind == "keys":
            return token.value
        if token.kind == "speech":
            return Speech(token.value)
        return None

    def record(self, prompt: RecordPrompt) -> RecordAnswer:
        """The next recording; keys or silence tokens record nothing."""
        following = self._peek()
        if self._recording and (following is None or following.kind != "wav"):
            recording, self._recording = self._recording, None
            return Recording(recording)
        token = self._take("Record", ("wav", "keys", "speech", "silence", "hangup"))
        if token is None or token.kind == "hangup":
            return HANGUP
        if token.kind == "wav":
            return Recording(token.value, hangup=token.hangup)
        return None

    def _gather_while_waiting(self) -> GatherAnswer:
        following = self._peek()
        if self._silent or following is None or following.kind == "wait":
            return None  # a wait:N token starts with the next pass
        token = self._take("Gather", ("keys", "speech", "silence", "hangup"))
        if token is None or token.kind == "silence":
            return None
        if token.kind == "hangup":
            return HANGUP
        return token.value if token.kind == "keys" else Speech(token.value)

    def wait_pass(self, wait: QueueWait) -> None:
        """Count down a `wait:N` token, or start one that is next in the script."""
        following = self._peek()
        if self._silent_passes == 0 and following is not None and following.kind == "wait":
            self._position += 1
            self._silent_passes = int(following.value)
        self._silent = self._silent_passes > 0
        if self._silent:
            self._silent_passes -= 1

    def after_wait_pass(self, wait: QueueWait) -> Hangup | None:
        """Hang up when `hangup` is next (and this pass was not a silent one)."""
        following = self._peek()
        if not self._silent and following is not None and following.kind == "hangup":
            self._position += 1
            return HANGUP
        return None

    def dial(self, numbers: list[str]) -> str | Hangup:
        """The next dial: token's outcome, else `dial_default` (no token used)."""
        following = self._peek()
        if following is not None and following.kind == "dial":
            self._position += 1
            return following.value
        return self.dial_default


def scripted_caller_from_options(
    press: str | None,
    say: list[str] | tuple[str, ...],
    script: str | None,
    *,
    recording: str | os.PathLike[str] | None = None,
    dial_default: str = "completed",
) -> ScriptedCaller:
    """A `ScriptedCaller` from CLI options: --press 1,3 then each --say, or a full --script."""
    if script is not None and (press is not None or say):
        raise ScriptError("--script gives the whole call; do not combine it with --press or --say")
    if script is not None:
        tokens = script.split(",")
    else:
        tokens = press.split(",") if press is not None else []
        tokens += [f"say:{text}" for text in say]
    return ScriptedCaller(tokens, dial_default=dial_default, recording=recording)


class InteractiveCaller(Caller):
    """A caller at a terminal: asks for keys, words, recordings and dial outcomes."""

    def __init__(
        self,
        input_fn: Callable[[str], str] = input,
        print_fn: Callable[[str], Any] = print,
        *,
        recording: str | os.PathLike[str] | None = None,
        dial_outcome: str | None = None,
    ) -> None:
        self._input = input_fn
        self._print = print_fn
        self._recording = str(recording) if recording is not None else None
        self._dial_outcome = dial_outcome

    def _ask(self, question: str) -> str | None:
        try:
            return self._input(question).strip()
        except EOFError:
            return None

    def gather(self, prompt: GatherPrompt) -> GatherAnswer:
        """Keys if the line is all keys, words otherwise; empty is silence."""
        line = self._ask(GATHER_PROMPT if prompt.queue is None else WAITING_GATHER_PROMPT)
        if line is None or line.lower() == "hangup":
            return HANGUP
        if line in ("", "-"):
            return None
        if line.startswith("say:"):
            return Speech(line[4:].strip())
        return line if set(line) <= KEYS else Speech(line)

    def record(self, prompt: RecordPrompt) -> RecordAnswer:
        """The --record file the first time, then a path typed by the user."""
        if self._recording:
            recording, self._recording = self._recording, None
            self._print(f"  (recording {recording})")
            return Recording(recording)
        while True:
            line = self._ask(RECORD_PROMPT)
            if line is None or line.lower() == "hangup":
                return HANGUP
            if line in ("", "-"):
                return None
            if Path(line).is_file():
                return Recording(line)
            self._print(f"  no such file: {line}")

    def after_wait_pass(self, wait: QueueWait) -> Hangup | None:
        """Asks whether to keep waiting after a pass of hold music the user cannot answer."""
        line = self._ask(WAITING_PROMPT)
        return HANGUP if line is None or line.lower() == "hangup" else None

    def dial(self, numbers: list[str]) -> str | Hangup:
        """The --dial outcome, else the one the user types."""
        if self._dial_outcome:
            return self._dial_outcome
        question = (f"Dialing {', '.join(numbers) or '?'}: outcome [{'/'.join(DIAL_OUTCOMES)}] "
                    "(empty = completed): ")
        while True:
            line = self._ask(question)
            if line is None or line.lower() == "hangup":
                return HANGUP
            if not line:
                return "completed"
            if line.lower() in DIAL_OUTCOMES:
                return line.lower()
            self._print(f"  unknown outcome {line!r}")
