"""Simulated calls through a real gunicorn server on loopback, as Twilio would place them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile
from flask import Flask
from sqlalchemy import select

from callbacks.calllog import Call, call_path
from callbacks.voicemail import Voicemail
from ivr.simulator import ScriptedCaller, Simulator
from tests.conftest import AUTH_TOKEN, DEMO_FLOW, gunicorn_server, publish

pytestmark = pytest.mark.server

ALWAYS_OPEN = (
    DEMO_FLOW.read_text(encoding="utf-8")
    .replace('mon-fri: "08:00-18:00"', 'mon-sun: "00:00-24:00"')
    .replace("holidays: {country: DE, subdivision: BE}\n", "")
    .replace("    closed:\n      - 2026-12-24\n      - 2026-12-31\n", "")
)


@pytest.fixture
def live_server(app: Flask, database_url: str, tmp_path: Path) -> Iterator[str]:
    """gunicorn serving the app on a free loopback port, with the always-open demo flow."""
    publish(app, ALWAYS_OPEN)
    with gunicorn_server({"IVR_DATABASE_URL": database_url}, tmp_path) as base:
        yield base


def test_a_scripted_call_leaves_a_voicemail_through_the_real_server(
        live_server: str, app: Flask, tmp_path: Path) -> None:
    wav = tmp_path / "message.wav"
    soundfile.write(wav, [0.1, -0.1] * 4000 * 3, 8000, subtype="PCM_16")
    simulator = Simulator(live_server, AUTH_TOKEN, caller="+48221234567")
    caller = ScriptedCaller(["3", "say:nie działa vpn", "2", f"wav:{wav}"])
    transcript = simulator.run(caller)

    assert not transcript.failed, transcript.failures
    said = transcript.said()
    assert said[0] == "Dzień dobry, tu IT Service Desk."  # a Polish number hears Polish first
    assert "For English, press 1." in said
    network_tip = [text for text in said if "VPN" in text and "Wi-Fi" in text]
    assert network_tip, said  # the spoken keyword reached the network branch, in Polish
    assert any(event.kind == "record" for event in transcript.events)

    # The server writes the call log behind the requests, within its flush interval.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with app.extensions["ivr.sessions"]() as session:
            if len(call_path(session, transcript.call_sid)) == 5:
                break
        time.sleep(0.05)
    with app.extensions["ivr.sessions"]() as session:
        call = session.scalar(select(Call).where(Call.call_sid == transcript.call_sid))
        assert call is not None
        assert (call.language, call.outcome, call.status) == ("pl", "voicemail", "completed")
        assert call.duration_seconds is not None and call.duration_seconds > 0
        steps = call_path(session, transcript.call_sid)
        assert [step.event for step in steps] == ["start", "input", "input", "input", "recorded"]
        assert steps[2].input == "speech:nie działa vpn"
        voicemail = session.scalar(select(Voicemail))
        assert voicemail is not None
        assert voicemail.language == "pl" and voicemail.duration_seconds == 3


def test_cli_call_against_the_real_server(live_server: str) -> None:
    ivr = Path(sys.executable).with_name("ivr")
    result = subprocess.run(
        [str(ivr), "call", "--url", live_server, "--token", AUTH_TOKEN, "--from", "+442071838750",
         "--press", "1,9,3"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Welcome to the IT Service Desk." in result.stdout
    assert "outage" in result.stdout.lower()
