"""`ivr speech models|download|keywords` and `ivr transcribe`, run through click's runner."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner
from flask import Flask
from flask.cli import FlaskGroup

from ivr.speech_commands import speech_group, transcribe_command
from speech.archives import MODEL_ARCHIVES, ModelArchive
from speech.models import korean_package_model
from tests.speech_fixtures import shortest_clip

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def speech_app(tmp_path: Path) -> Flask:
    """A bare Flask app carrying only the speech settings (no database needed)."""
    app = Flask("speech-test", instance_path=str(tmp_path / "instance"))
    app.config["MODELS_DIR"] = str(tmp_path / "models")
    app.config["SPEECH_MODELS"] = {"de": str(tmp_path / "big-german")}
    return app


def test_models_lists_the_default_paths_outside_an_app(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # instance/models is relative to where `ivr` runs
    result = CliRunner().invoke(speech_group, ["models"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["LANGUAGE", "PRESENT", "PATH"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:] if not line.startswith("miss")}
    assert rows["ko"] == ["yes", str(korean_package_model())]
    assert rows["en"] == ["no", "instance/models/vosk-model-small-en-us-0.15"]
    assert "missing: de, en, pl, ru (ivr speech download LANG)" in result.output


def test_models_uses_the_app_settings(speech_app: Flask, tmp_path: Path) -> None:
    with speech_app.app_context():
        result = CliRunner().invoke(speech_group, ["models"])
    assert result.exit_code == 0, result.output
    assert f"de        no       {tmp_path / 'big-german'}" in result.output
    assert f"pl        no       {tmp_path / 'models' / 'vosk-model-small-pl-0.22'}" in result.output


def test_commands_read_the_app_that_ivr_loads(speech_app: Flask, tmp_path: Path) -> None:
    cli = FlaskGroup(create_app=lambda: speech_app, add_default_commands=False,
                     load_dotenv=False)
    cli.add_command(speech_group)
    result = CliRunner().invoke(cli, ["speech", "models"])
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "big-german") in result.output


def test_download_installs_a_verified_archive(speech_app: Flask, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("vosk-model-small-pl-0.22/am/final.mdl", b"model")
    local = tmp_path / "mirror.zip"
    local.write_bytes(buffer.getvalue())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    monkeypatch.setitem(MODEL_ARCHIVES, "pl", ModelArchive(
        "pl", "vosk-model-small-pl-0.22", local.as_uri(), digest))
    with speech_app.app_context():
        result = CliRunner().invoke(speech_group, ["download", "pl"])
    assert result.exit_code == 0, result.output
    installed = tmp_path / "models" / "vosk-model-small-pl-0.22"
    assert f"pl: {installed}" in result.output
    assert (installed / "am" / "final.mdl").read_bytes() == b"model"


def test_download_refuses_an_unpinned_archive(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODEL_ARCHIVES, "ru", ModelArchive(
        "ru", "vosk-model-small-ru-0.22", (tmp_path / "absent.zip").as_uri(), None))
    result = CliRunner().invoke(speech_group, ["download", "ru", "--models-dir",
                                               str(tmp_path / "models")])
    assert result.exit_code == 1
    assert "no SHA-256 is pinned" in result.output and "--sha256" in result.output
    assert not (tmp_path / "models" / "vosk-model-small-ru-0.22").exists()


def test_download_reports_a_checksum_mismatch(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    local = tmp_path / "mirror.zip"
    local.write_bytes(b"PK\x05\x06" + bytes(18))
    monkeypatch.setitem(MODEL_ARCHIVES, "en", ModelArchive(
        "en", "vosk-model-small-en-us-0.15", local.as_uri(), "1" * 64))
    result = CliRunner().invoke(speech_group, ["download", "en", "--models-dir",
                                               str(tmp_path / "models")])
    assert result.exit_code == 1
    assert "expected " + "1" * 64 in result.output
    assert "nothing was unpacked" in result.output


def test_keywords_checks_a_file(tmp_path: Path) -> None:
    good = CliRunner().invoke(speech_group, ["keywords", str(ROOT / "flows" / "keywords.yaml")])
    assert good.exit_code == 0, good.output
    assert "ok (8 categories; languages en, de, pl, ru, ko)" in good.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("priorities: [P1]\nlanguages: [en]\ncategories:\n  x:\n    priority: P2\n"
                   "    keywords: {en: [a]}\n", encoding="utf-8")
    result = CliRunner().invoke(speech_group, ["keywords", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:5:15: unknown priority 'P2'" in result.output
    assert "1 problem(s) found" in result.output


def test_transcribe_a_shared_clip_as_json() -> None:
    clip = shortest_clip()
    result = CliRunner().invoke(transcribe_command, [str(clip.path), "--lang", "ko", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["language"] == "ko"
    assert report["text"] and report["words"]
    assert report["audio"]["source_format"] == "WAV PCM_16 16000 Hz 1 ch"
    for word in report["words"]:
        assert set(word) == {"text", "start", "end", "confidence"}
        assert 0 <= word["start"] <= word["end"] and 0 < word["confidence"] <= 1
    assert report["classification"]["category"] == "other"  # a news sentence, not an IT issue
    assert report["classification"]["priority"] == "P3"
    assert report["realtime_factor"] > 0


def test_transcribe_prints_notes_for_a_silent_file(tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(8000 * 3, dtype=np.float32), 8000, subtype="PCM_16")
    result = CliRunner().invoke(transcribe_command, [str(silent), "--lang", "de"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "(nothing recognised)"
    assert "category other · priority P3" in result.output
    assert "note: The recording is silent." in result.output


def test_transcribe_explains_bad_audio_and_missing_models(speech_app: Flask,
                                                          tmp_path: Path) -> None:
    page = tmp_path / "recording.wav"
    page.write_bytes(b"<html><body>Unauthorized</body></html>")
    result = CliRunner().invoke(transcribe_command, [str(page), "--lang", "de"])
    assert result.exit_code == 1
    assert "HTML page, not audio" in result.output and "(unsupported)" in result.output

    voice = tmp_path / "voice.wav"
    samples, rate = soundfile.read(shortest_clip().path, dtype="float32")
    soundfile.write(voice, samples, rate, subtype="PCM_16")
    with speech_app.app_context():
        missing = CliRunner().invoke(transcribe_command, [str(voice), "--lang", "de"])
    assert missing.exit_code == 1
    assert str(tmp_path / "big-german") in missing.output
    assert "ivr speech download de" in missing.output
