"""What was said in a recording: Vosk's words with their times and confidences.

Vosk writes some numbers as bracketed digits ("[3]"). Word.text keeps each token exactly as
Vosk gave it; Transcript.text is for people and tickets: the brackets are removed ("3") and
Vosk's unknown-word marker "[unk]" is left out.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
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
    recognizer = KaldiRecognizer(model, float(audio.sample_rate))
    recognizer.SetWords(True)
    step = max(2, int(audio.sample_rate * CHUNK_SECONDS) * 2)
    pcm = memoryview(audio.pcm16)
    results: list[str] = []
    for offset in range(0, len(pcm), step):
        if recognizer.AcceptWaveform(bytes(pcm[offset : offset + step])):
            results.append(recognizer.Result())
    results.append(recognizer.FinalResult())
    words = tuple(word for result in results for word in _words(result))
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


def clean_text(tokens: Iterable[str]) -> str:
    """Vosk tokens joined for reading: brackets around numbers removed, '[unk]' left out."""
    shown = []
    for token in tokens:
        match = _BRACKETED.match(token)
        inner = match.group(1).strip() if match else token
        if inner and inner.lower() not in _DROPPED:
            shown.append(inner)
    return " ".join(shown)


def _words(result: str) -> list[Word]:
    """The words of one Vosk JSON result (a segment cut at a pause, or the final one)."""
    parsed = json.loads(result)
    return [
        Word(
            text=str(item["word"]),
            start=float(item["start"]),
            end=float(item["end"]),
            confidence=float(item.get("conf", 0.0)),
        )
        for item in parsed.get("result", [])
    ]
