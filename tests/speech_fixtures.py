"""Shared speech test material: the Korean clips, their references, one model per process.

The Korean model takes about 5 s to load and decoding runs near real time on the 2-core test
machines, so every test module goes through `korean_registry()` (one load per process) and the
16 kHz transcripts of the four clips are computed once and reused.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from speech.audio import decode_audio
from speech.models import ModelRegistry, model_paths, shared_registry
from speech.transcriber import Transcript, transcribe

ROOT = Path(__file__).resolve().parents[1]
CLIPS_DIR = ROOT.parent / "shared" / "audio" / "ko"


@dataclass(frozen=True)
class Clip:
    """One shared Korean recording and what is said in it."""

    path: Path
    reference: str


@cache
def clips() -> tuple[Clip, ...]:
    """The clips listed in the shared manifest, in file order."""
    with (CLIPS_DIR / "manifest.tsv").open(encoding="utf-8", newline="") as manifest:
        rows = list(csv.DictReader(manifest, delimiter="\t"))
    return tuple(Clip(CLIPS_DIR / row["file"], row["reference_text"]) for row in rows)


def shortest_clip() -> Clip:
    """The clip with the fewest bytes (the quickest to decode)."""
    return min(clips(), key=lambda clip: clip.path.stat().st_size)


def korean_registry() -> ModelRegistry:
    """The process-wide registry with the default paths (the same one the CLI uses)."""
    return shared_registry(model_paths({}, "instance/models"))


@cache
def transcripts_16k() -> dict[str, Transcript]:
    """Each clip transcribed as shipped (16 kHz), by file name; decoded once per process."""
    model = korean_registry().load("ko")
    return {
        clip.path.name: transcribe(decode_audio(clip.path.read_bytes()), model, language="ko")
        for clip in clips()
    }
