"""A caller's recording decoded to 16-bit mono PCM, with what is wrong with it in words.

Rates: anything from 8000 Hz to 48000 Hz is kept as it is, because Vosk's recognizer takes the
rate and resamples internally (Kaldi's band-limited resampler) for free. Above 48 kHz the audio
is resampled here to 16000 Hz (the rate of the models): it shrinks what is kept in memory and
fed to Vosk by 3-12x, and Kaldi's short internal filter aliases more for such large ratios.
Below 8000 Hz there is too little of the speech band left: the recording is refused.

Silence: the signal is cut into 20 ms frames; a frame "has sound" when its RMS (DC removed)
is above -40 dBFS (full scale = 1.0). A recording with less than 0.25 s of such frames is
silent. Telephone line noise and comfort noise sit around -50 to -70 dBFS and speech on a
phone line around -30 to -15 dBFS, so the threshold leaves about 10 dB either side; clicks
shorter than 0.25 s do not count as sound.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import soundfile

from speech.resampling import resample

MIN_SAMPLE_RATE = 8000
MAX_NATIVE_RATE = 48000
RESAMPLED_RATE = 16000
MAX_SAMPLE_RATE = 768000
SILENCE_DBFS = -40.0
FRAME_SECONDS = 0.02
MIN_SOUND_SECONDS = 0.25
CLIPPED_FRACTION = 0.01  # share of samples at full scale from which a recording is distorted
_BLOCK_SECONDS = 0.25  # read granularity: a damaged frame loses at most this much before it
_UNKNOWN_LENGTH = 1 << 62  # libsndfile reports streams of unknown length as a huge count

AudioProblemKind = Literal["empty", "corrupt", "unsupported"]


class AudioProblem(Exception):
    """Data that cannot be used as a recording; `kind` is empty, corrupt or unsupported."""

    def __init__(self, kind: AudioProblemKind, message: str) -> None:
        super().__init__(message)
        self.kind: AudioProblemKind = kind
        self.message = message


@dataclass(frozen=True)
class DecodedAudio:
    """Little-endian 16-bit mono PCM ready for Vosk, and what was found while decoding it."""

    pcm16: bytes
    sample_rate: int
    duration_seconds: float
    source_format: str
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    loudest_dbfs: float = -120.0
    sound_seconds: float = 0.0

    @property
    def is_silent(self) -> bool:
        """Whether the recording holds no sound worth transcribing."""
        return "silent" in self.problems


def decode_audio(data: bytes, *, max_seconds: float = 600.0) -> DecodedAudio:
    """The recording in `data` (WAV, FLAC, OGG, MP3, ...); AudioProblem if it is not usable."""
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive (got {max_seconds})")
    raw = bytes(data)
    if not raw:
        raise AudioProblem("empty", "The recording is empty (0 bytes were received).")
    try:
        stream = soundfile.SoundFile(io.BytesIO(raw))
    except Exception as exc:  # libsndfile reports bad data in many ways; wrap them all
        raise _unreadable(raw, exc) from None
    with stream:
        return _decode_open(stream, raw, max_seconds)


def _decode_open(stream: Any, raw: bytes, max_seconds: float) -> DecodedAudio:
    rate, channels = int(stream.samplerate), int(stream.channels)
    source = f"{stream.format} {stream.subtype} {rate} Hz {channels} ch"
    if rate < MIN_SAMPLE_RATE:
        raise AudioProblem(
            "unsupported",
            f"The recording's sample rate is {rate} Hz; at least {MIN_SAMPLE_RATE} Hz is needed "
            f"({source}).",
        )
    if rate > MAX_SAMPLE_RATE or channels < 1:
        raise AudioProblem("unsupported", f"The recording's format is not usable ({source}).")
    limit = int(max_seconds * rate)
    mono, read_failed = _read_mono(stream, limit + 1)
    declared = int(stream.frames) if 0 <= stream.frames < _UNKNOWN_LENGTH else None
    if mono.size == 0:
        if read_failed:
            raise AudioProblem("corrupt", f"The recording could not be decoded ({source}).")
        raise AudioProblem("empty", f"The recording contains no audio samples ({source}).")

    problems: list[str] = []
    notes: list[str] = []
    if mono.size > limit:
        mono = mono[:limit]
        problems.append("too_long")
        total = f"is {declared / rate:.1f} s long" if declared else "is longer than that"
        notes.append(
            f"The recording {total}; only the first {max_seconds:.1f} s were transcribed."
        )
    elif read_failed or (declared is not None and mono.size < declared) or _wav_shortfall(raw):
        problems.append("truncated")
        notes.append(f"The recording was cut off after {mono.size / rate:.1f} s.")
    if channels > 1:
        problems.append("mixed_down")
        notes.append(f"The recording had {channels} channels; they were mixed into one.")
    if rate > MAX_NATIVE_RATE:
        mono = resample(mono, rate, RESAMPLED_RATE)
        problems.append("resampled")
        notes.append(f"The recording was resampled from {rate} Hz to {RESAMPLED_RATE} Hz.")
        rate = RESAMPLED_RATE
    if np.count_nonzero(np.abs(mono) >= 0.999) > CLIPPED_FRACTION * mono.size:
        problems.append("clipped")
        notes.append("The recording is distorted (too loud); the transcript may be poor.")
    loudest, sound = _levels(mono, rate)
    if sound < MIN_SOUND_SECONDS:
        problems.append("silent")
        notes.append("The recording is silent.")
    pcm = np.clip(np.rint(mono * 32768.0), -32768, 32767).astype("<i2")
    return DecodedAudio(
        pcm16=pcm.tobytes(),
        sample_rate=rate,
        duration_seconds=pcm.size / rate,
        source_format=source,
        problems=tuple(problems),
        notes=tuple(notes),
        loudest_dbfs=loudest,
        sound_seconds=sound,
    )


def _read_mono(stream: Any, most: int) -> tuple[npt.NDArray[np.float32], bool]:
    """Up to `most` mono samples, and whether decoding failed before the end of the data."""
    blocks: list[npt.NDArray[np.float32]] = []
    count = 0
    size = max(256, int(stream.samplerate * _BLOCK_SECONDS))
    while count < most:
        try:
            block = stream.read(min(size, most - count), dtype="float32", always_2d=True)
        except Exception:  # a damaged frame mid-stream: keep what decoded before it
            return _joined(blocks), True
        if len(block) == 0:
            break
        mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
        blocks.append(np.ascontiguousarray(mono, dtype=np.float32))
        count += len(mono)
    return _joined(blocks), False


def _joined(blocks: list[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def _levels(mono: npt.NDArray[np.float32], rate: int) -> tuple[float, float]:
    """The loudest 20 ms frame in dBFS, and the seconds of frames above the silence level."""
    size = max(1, int(rate * FRAME_SECONDS))
    count = mono.size // size
    if count == 0:
        frames = mono[None, :].astype(np.float64)
    else:
        frames = mono[: count * size].reshape(count, size).astype(np.float64)
    rms = frames.std(axis=1)  # the standard deviation is the RMS with the DC offset removed
    dbfs = 20 * np.log10(np.maximum(rms, 1e-6))
    sound = float(np.count_nonzero(dbfs > SILENCE_DBFS)) * size / rate
    return round(float(dbfs.max()), 1), round(sound, 2)


def _wav_shortfall(raw: bytes) -> int:
    """Bytes a RIFF/WAVE header promises in its data chunk beyond the end of `raw`."""
    if len(raw) < 12 or raw[:4] not in (b"RIFF", b"RIFX") or raw[8:12] != b"WAVE":
        return 0
    order = "<" if raw[:4] == b"RIFF" else ">"
    position = 12
    while position + 8 <= len(raw):
        chunk = raw[position : position + 4]
        (size,) = struct.unpack(order + "I", raw[position + 4 : position + 8])
        if chunk == b"data":
            if size in (0, 0xFFFFFFFF):  # written while streaming: the length was never filled in
                return 0
            return max(0, position + 8 + size - len(raw))
        position += 8 + size + (size & 1)
    return 0


def _unreadable(raw: bytes, exc: Exception) -> AudioProblem:
    """Why libsndfile could not open `raw`, as the caller should hear it."""
    head = raw[:512].lstrip().lower()
    kind = None
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
        kind = "an HTML page"
    elif head.startswith((b"<?xml", b"{")):
        kind = "an XML document" if head.startswith(b"<") else "a JSON document"
    if kind:
        return AudioProblem(
            "unsupported",
            f"The download is {kind}, not audio (an error page instead of the recording?).",
        )
    if _is_text(raw[:4096]):
        return AudioProblem("unsupported", "The download is a text file, not audio.")
    detail = str(exc).rsplit(": ", 1)[-1].strip() or type(exc).__name__
    return AudioProblem(
        "corrupt", f"The recording is damaged or in an unknown format ({detail})."
    )


def _is_text(sample: bytes) -> bool:
    text = sample.decode("utf-8", errors="replace")
    readable = sum(ch != "\ufffd" and (ch.isprintable() or ch in "\r\n\t") for ch in text)
    return readable >= 0.95 * max(1, len(text))
