"""What was said in a recording: Vosk's words with their times and confidences.

Vosk writes some numbers as bracketed digits ("[3]"). Word.text keeps each token exactly as
Vosk gave it; Transcript.text is for people and tickets: the brackets are removed ("3") and
Vosk's unknown-word marker "[unk]" is left out.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from vosk import KaldiRecognizer

from speech.audio import DecodedAudio

CHUNK_SECONDS = 0.4  # audio fed to Vosk per call: short enough for endpointing to cut segments
_BRACKETED = re.compile(r"^\[(.*)\]$")
_DROPPED = {"unk", "<unk>"}


@dataclass(frozen=True)
class Word:
    """One recognised word: its text, start and end in seconds, and Vosk's confidence (0-1)."""

    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Transcript:
    """The words of a recording, how sure the recogniser was, and how long decoding took."""

    text: str
    words: tuple[Word, ...]
    confidence: float
    language: str
    audio_seconds: float
    decode_seconds: float
    realtime_factor: float

    @property
    def is_empty(self) -> bool:
        """Whether nothing was recognised."""
        return not self.text


def transcribe(audio: DecodedAudio, model: Any, *, language: str) -> Transcript:
    """Recognise `audio` with a loaded vosk.Model; silent audio gives an empty transcript."""
    if audio.is_silent or not audio.pcm16:
        return Transcript("", (), 0.0, language, audio.duration_seconds, 0.0, 0.0)
    started = time.perf_counter()
    step = max(2, int(audio.sample_rate * CHUNK_SECONDS) * 2)
    pcm = memoryview(audio.pcm16)
    results: list[str] = []
    with _recognizer(model, audio.sample_rate, len(pcm) // 2) as (recognizer, earlier):
        for offset in range(0, len(pcm), step):
            if recognizer.AcceptWaveform(bytes(pcm[offset : offset + step])):
                results.append(recognizer.Result())
        results.append(recognizer.FinalResult())
    words = tuple(word for result in results for word in _words(result, earlier))
    seconds = time.perf_counter() - started
    return Transcript(
        text=clean_text(word.text for word in words),
        words=words,
        confidence=sum(w.confidence for w in words) / len(words) if words else 0.0,
        language=language,
        audio_seconds=audio.duration_seconds,
        decode_seconds=round(seconds, 3),
        realtime_factor=round(seconds / audio.duration_seconds, 3),
    )


RECOGNIZER_USES = 200
"""Decodes per recogniser before a fresh one replaces it (its decoding-graph cache grows)."""

_idle: dict[tuple[int, int], list[tuple[Any, int, int]]] = {}
_idle_lock = threading.Lock()


@contextlib.contextmanager
def _recognizer(model: Any, sample_rate: int, samples: int) -> Iterator[tuple[Any, float]]:
    """A recogniser for `model` at `sample_rate`, reused across decodes, and the seconds of
    audio it decoded before (Vosk keeps counting time across Reset()).

    Vosk's lookahead graphs are expanded lazily and cached in the recogniser: a reused one
    decodes several times faster than a new one, so a long-lived worker keeps them warm.
    """
    key = (id(model), sample_rate)
    with _idle_lock:
        pool = _idle.setdefault(key, [])
        recognizer, uses, fed = pool.pop() if pool else (None, 0, 0)
    if recognizer is None:
        recognizer = KaldiRecognizer(model, float(sample_rate))
        recognizer.SetWords(True)
    yield recognizer, fed / sample_rate  # an exception drops it: its state is unknown
    recognizer.Reset()
    if uses + 1 < RECOGNIZER_USES:
        with _idle_lock:
            _idle[key].append((recognizer, uses + 1, fed + samples))


def clean_text(tokens: Iterable[str]) -> str:
    """Vosk tokens joined for reading: brackets around numbers removed, '[unk]' left out."""
    shown = []
    for token in tokens:
        match = _BRACKETED.match(token)
        inner = match.group(1).strip() if match else token
        if inner and inner.lower() not in _DROPPED:
            shown.append(inner)
    return " ".join(shown)


def _words(result: str, earlier: float = 0.0) -> list[Word]:
    """The words of one Vosk JSON result, timed from the start of this recording."""
    parsed = json.loads(result)
    return [
        Word(
            text=str(item["word"]),
            start=round(float(item["start"]) - earlier, 3),
            end=round(float(item["end"]) - earlier, 3),
            confidence=float(item.get("conf", 0.0)),
        )
        for item in parsed.get("result", [])
    ]
