"""For the voicemail tests: the Korean test line, real clips, a voicemail left by phone."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import soundfile
from flask import Flask
from sqlalchemy import select

from callbacks import runtime
from callbacks.settings import Settings
from callbacks.tickets.ticket import Ticket
from callbacks.voicemail import Voicemail
from speech.resampling import resample
from tests.speech_fixtures import clips
from tests.test_voice import Phone

ACCOUNT_SID = "AC" + "7" * 32
MOBILE_CALLER = "+821012345678"  # a Korean mobile number: it can receive texts
LINE = "+493012345678"

KOREAN_FLOW = f"""\
name: korean-line
languages: [ko]
default_language: ko
numbers: ["{LINE}"]
start: message
nodes:
  message:
    type: voicemail
    prompt: {{ko: "신호음이 울린 후 메시지를 남겨 주세요."}}
    category: network
    callback: true
    max_length: 120
    next: bye
  bye: {{type: hangup, text: {{ko: "감사합니다."}}}}
"""


def telephone_wav(*paths: Path, rate: int = 8000) -> bytes:
    """The clips joined and resampled to `rate` as 16-bit mono WAV, as Twilio serves them."""
    parts = []
    for path in paths:
        samples, source_rate = soundfile.read(path, dtype="float32")
        parts.append(resample(samples, source_rate, rate) if source_rate != rate else samples)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.concatenate(parts), rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def speech_wav(minutes: float) -> bytes:
    """The shared Korean clips (about 45 s) repeated to `minutes` of telephone audio: a decode
    long enough to stop or kill a worker in the middle of it (a warm worker decodes a minute in
    2 to 3 s on two cores, a cold one in about 6 s)."""
    one_pass = telephone_wav(*(clip.path for clip in clips()))
    samples, rate = soundfile.read(io.BytesIO(one_pass), dtype="int16")
    repeated = np.tile(samples, math.ceil(minutes * 60 * rate / len(samples)))
    buffer = io.BytesIO()
    soundfile.write(buffer, repeated, rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def recording_sid(n: int) -> str:
    """A RecordingSid that looks like Twilio's."""
    return "RE" + f"{n:032x}"


def leave_voicemail(app: Flask, standin_url: str, audio: bytes | None, *, n: int,
                    caller: str = MOBILE_CALLER, url: str | None = None) -> Phone:
    """Call the line, record, and deliver Twilio's Record action and recording callback."""
    phone = Phone(app.test_client(), call_sid="CA" + f"{n:032x}", caller=caller)
    twiml = phone.dial_in()
    record = twiml.find("Record")
    assert record is not None, "the Korean line starts with a voicemail"
    sid = recording_sid(n)
    recording = {
        "RecordingSid": sid,
        "RecordingUrl": url or f"{standin_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}",
        "RecordingDuration": "10",
    }
    phone.post(record.attrib["action"], **recording)
    phone.post(record.attrib["recordingStatusCallback"], RecordingStatus="completed",
               **recording)
    return phone


def ticket_of(app: Flask, n: int) -> tuple[Ticket, Voicemail]:
    """The ticket and voicemail of recording number `n`."""
    with app.extensions["ivr.sessions"]() as session:
        voicemail = session.scalar(
            select(Voicemail).where(Voicemail.recording_sid == recording_sid(n)))
        assert voicemail is not None
        ticket = session.scalar(select(Ticket).where(Ticket.voicemail_id == voicemail.id))
        assert ticket is not None
        return ticket, voicemail


def configure_job_runtime(database_url: str, redis_url: str, standin_url: str) -> Settings:
    """Configure the jobs' runtime on the test database, Redis and the Twilio stand-in, with
    the repository's rule files; configured once per module, so the Korean model loads once."""
    from tests.conftest import AUTH_TOKEN, ROOT

    configured = Settings(
        database_url=database_url, redis_url=redis_url,
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
        twilio_api_base_url=standin_url, max_voicemail_seconds=30,
        keywords_file=str(ROOT / "flows" / "keywords.yaml"),
        priorities_file=str(ROOT / "flows" / "priorities.yaml"),
        directory_file=str(ROOT / "flows" / "directory.csv"),
    )
    runtime.configure(configured)
    return configured
