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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
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


PARALLEL_MIN_SECONDS = 20.0
"""Recordings at least this long are cut at pauses and decoded on several cores at once."""

SPLIT_SEARCH_SECONDS = 2.0
"""How far from an even split point to look for the quietest moment to cut at."""


def transcribe(audio: DecodedAudio, model: Any, *, language: str,
               threads: int = 1) -> Transcript:
    """Recognise `audio` with a loaded vosk.Model; silent audio gives an empty transcript.

    With `threads` > 1, recordings of PARALLEL_MIN_SECONDS or more are cut at their quietest
    moments near even split points and the parts decoded at once (Vosk releases the GIL):
    faster on several cores, but each part starts its speaker adaptation afresh, which costs
    a few points of accuracy (measured on the Korean clips: CER 0.22 instead of 0.17).
    """
    if audio.is_silent or not audio.pcm16:
        return Transcript("", (), 0.0, language, audio.duration_seconds, 0.0, 0.0)
    started = time.perf_counter()
    parts = split_points(audio, threads)
    spans = list(zip(parts, [*parts[1:], len(audio.pcm16) // 2], strict=True))
    if len(spans) == 1:
        words = _decode(audio, model, *spans[0])
    else:
        with ThreadPoolExecutor(len(spans), thread_name_prefix="vosk") as pool:
            decoded = list(pool.map(lambda span: _decode(audio, model, *span), spans))
        words = tuple(word for part in decoded for word in part)
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


def split_points(audio: DecodedAudio, parts: int) -> list[int]:
    """Sample offsets where the parts of a long recording start: the first is 0, the others
    the quietest 20 ms within SPLIT_SEARCH_SECONDS of an even split, so no word is cut."""
    samples = len(audio.pcm16) // 2
    if parts < 2 or samples < PARALLEL_MIN_SECONDS * audio.sample_rate:
        return [0]
    frame = max(1, audio.sample_rate // 50)
    pcm = np.frombuffer(audio.pcm16, dtype="<i2")[: samples - samples % frame]
    energy = np.square(pcm.reshape(-1, frame).astype(np.float64)).mean(axis=1)
    reach = int(SPLIT_SEARCH_SECONDS * audio.sample_rate) // frame
    starts = [0]
    for k in range(1, parts):
        middle = len(energy) * k // parts
        low, high = max(1, middle - reach), min(len(energy) - 1, middle + reach)
        starts.append(int(low + np.argmin(energy[low:high])) * frame)
    return sorted(set(starts))


def _decode(audio: DecodedAudio, model: Any, first: int, last: int) -> tuple[Word, ...]:
    """The words of samples [first, last), timed from the start of the whole recording."""
    step = max(2, int(audio.sample_rate * CHUNK_SECONDS) * 2)
    pcm = memoryview(audio.pcm16)[first * 2 : last * 2]
    results: list[str] = []
    with _recognizer(model, audio.sample_rate, last - first) as (recognizer, earlier):
        for offset in range(0, len(pcm), step):
            if recognizer.AcceptWaveform(bytes(pcm[offset : offset + step])):
                results.append(recognizer.Result())
        results.append(recognizer.FinalResult())
    shift = earlier - first / audio.sample_rate
    return tuple(word for result in results for word in _words(result, shift))


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
