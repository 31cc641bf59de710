"""`ivr speech models|download|keywords` and `ivr transcribe`: offline speech from the shell.

Model paths come from the app's SPEECH_MODELS (language -> directory) laid over the defaults
under MODELS_DIR; outside an app (a plain click runner) the defaults under instance/models.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app, has_app_context
from flask.cli import ScriptInfo

from routing.errors import FlowInvalid
from speech.audio import AudioProblem, DecodedAudio, decode_audio
from speech.download import DownloadProblem, download_model
from speech.keywords import Classification, KeywordRules
from speech.models import ModelMissing, model_paths, shared_registry
from speech.transcriber import Transcript, transcribe

DEFAULT_MODELS_DIR = "instance/models"
DEFAULT_KEYWORDS_FILE = str(Path(__file__).resolve().parents[1] / "flows" / "keywords.yaml")


def _app() -> Flask | None:
    """The app in context, or the one `ivr` would load; None under a bare click runner."""
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    context = click.get_current_context(silent=True)
    info = context.find_object(ScriptInfo) if context is not None else None
    return info.load_app() if info is not None else None


def speech_settings() -> tuple[dict[str, str], str, str]:
    """(language -> model directory, models directory, keywords file) for these commands."""
    app = _app()
    if app is None:
        return model_paths({}, DEFAULT_MODELS_DIR), DEFAULT_MODELS_DIR, DEFAULT_KEYWORDS_FILE
    models_dir = str(app.config.get("MODELS_DIR") or os.path.join(app.instance_path, "models"))
    configured = dict(app.config.get("SPEECH_MODELS") or {})
    keywords = str(app.config.get("KEYWORDS_FILE") or DEFAULT_KEYWORDS_FILE)
    return model_paths(configured, models_dir), models_dir, keywords


@click.group("speech")
def speech_group() -> None:
    """Offline speech recognition: list, download and check models and keywords."""


@speech_group.command("models")
def models_command() -> None:
    """List each language's model directory and whether it is on disk."""
    paths, _, _ = speech_settings()
    registry = shared_registry(paths)
    rows = [("LANGUAGE", "PRESENT", "PATH")] + [
        (status.language, "yes" if status.present else "no", status.path)
        for status in registry.status()
    ]
    for language, present, path in rows:
        click.echo(f"{language:<9} {present:<8} {path}")
    missing = [status.language for status in registry.status() if not status.present]
    if missing:
        click.echo(f"missing: {', '.join(missing)} (ivr speech download LANG)", err=True)


@speech_group.command("download")
@click.argument("language")
@click.option("--models-dir", type=click.Path(file_okay=False), default=None,
              help="Where to unpack (default: MODELS_DIR of the app, or instance/models).")
@click.option("--sha256", "sha256", default=None,
              help="Expected SHA-256 of the archive, for one without a pinned checksum.")
def download_command(language: str, models_dir: str | None, sha256: str | None) -> None:
    """Download LANGUAGE's official Vosk model, verify its SHA-256 and unpack it."""
    paths, default_dir, _ = speech_settings()
    target_dir = models_dir or default_dir
    click.echo(f"fetching the '{language}' model into {target_dir} ...", err=True)
    try:
        target = download_model(language, target_dir, expected_sha256=sha256)
    except DownloadProblem as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{language}: {target}")
    configured = paths.get(language)
    if configured and Path(configured).resolve() != target.resolve():
        click.echo(f"note: SPEECH_MODELS points '{language}' at {configured}, not at {target}",
                   err=True)


@speech_group.command("keywords")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def keywords_command(file: str | None) -> None:
    """Check a keywords file (default: the configured one); print problems as file:line:col."""
    path = file or speech_settings()[2]
    try:
        rules = KeywordRules.load(path)
    except FlowInvalid as invalid:
        for error in invalid.errors:
            click.echo(str(error), err=True)
        click.echo(f"{len(invalid.errors)} problem(s) found", err=True)
        sys.exit(1)
    click.echo(f"{path}: ok ({len(rules.categories)} categories; languages "
               f"{', '.join(rules.languages)})")


@click.command("transcribe")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--lang", "language", required=True, help="Language of the speech, e.g. de.")
@click.option("--json", "as_json", is_flag=True, help="Print words, times and confidences.")
@click.option("--keywords", "keywords_file", type=click.Path(dir_okay=False), default=None,
              help="Keywords file for the category (default: the configured one).")
@click.option("--max-seconds", type=float, default=600.0, show_default=True,
              help="Transcribe at most this much of the recording.")
def transcribe_command(file: str, language: str, as_json: bool, keywords_file: str | None,
                       max_seconds: float) -> None:
    """Transcribe an audio FILE offline and classify it as a voicemail would be."""
    paths, _, default_keywords = speech_settings()
    try:
        rules = KeywordRules.load(keywords_file or default_keywords)
    except FlowInvalid as invalid:
        raise click.ClickException(str(invalid)) from invalid
    try:
        audio = decode_audio(Path(file).read_bytes(), max_seconds=max_seconds)
    except AudioProblem as problem:
        raise click.ClickException(f"{file}: {problem.message} ({problem.kind})") from problem
    try:
        model = None if audio.is_silent else shared_registry(paths).load(language)
    except ModelMissing as exc:
        raise click.ClickException(str(exc)) from exc
    transcript = transcribe(audio, model, language=language)
    classification = rules.classify(transcript.text, language)
    if as_json:
        report = _report(file, audio, transcript, classification)
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    click.echo(transcript.text or "(nothing recognised)")
    click.echo(
        f"language {language} · {transcript.audio_seconds:.1f} s of audio · confidence "
        f"{transcript.confidence:.2f} · decoded in {transcript.decode_seconds:.1f} s "
        f"({transcript.realtime_factor:.2f}x real time)"
    )
    click.echo(f"category {classification.category} · priority {classification.priority}"
               + (f" · keywords: {', '.join(classification.matched)}"
                  if classification.matched else ""))
    for note in audio.notes:
        click.echo(f"note: {note}")


def _report(file: str, audio: DecodedAudio, transcript: Transcript,
            classification: Classification) -> dict[str, Any]:
    """Everything `ivr transcribe --json` prints, as plain data."""
    return {
        "file": file,
        "language": transcript.language,
        "text": transcript.text,
        "confidence": round(transcript.confidence, 3),
        "audio_seconds": round(transcript.audio_seconds, 3),
        "decode_seconds": transcript.decode_seconds,
        "realtime_factor": transcript.realtime_factor,
        "words": [
            {"text": w.text, "start": w.start, "end": w.end, "confidence": round(w.confidence, 3)}
            for w in transcript.words
        ],
        "audio": {
            "source_format": audio.source_format,
            "sample_rate": audio.sample_rate,
            "problems": list(audio.problems),
            "notes": list(audio.notes),
        },
        "classification": {
            "category": classification.category,
            "priority": classification.priority,
            "matched": list(classification.matched),
            "reasons": list(classification.reasons),
        },
    }
