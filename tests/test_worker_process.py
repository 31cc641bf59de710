"""End to end: a simulated call through gunicorn leaves a voicemail; a real `ivr worker` process
(real Redis, real Vosk) makes it a ticket; a worker killed mid-job loses nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq.job import Job
from sqlalchemy import func, select

from callbacks.queues import voicemail_job_id
from callbacks.tickets.ticket import Ticket
from callbacks.voicemail import Voicemail
from ivr.simulator import ScriptedCaller, Simulator
from ivr.standin import StandinServer
from speech.scoring import character_error_rate
from tests.conftest import (
    AUTH_TOKEN,
    app_config,
    empty_tables,
    gunicorn_server,
    line_environment,
    publish,
)
from tests.speech_fixtures import clips
from tests.test_voicemail_jobs import CER_LIMIT_8KHZ
from tests.voicemail_helpers import (
    ACCOUNT_SID,
    KOREAN_FLOW,
    MOBILE_CALLER,
    speech_wav,
    telephone_wav,
)

pytestmark = pytest.mark.server


@pytest.fixture
def standin() -> Iterator[StandinServer]:
    with StandinServer(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def line_env(database_url: str, redis_url: str, standin: StandinServer) -> dict[str, str]:
    """IVR_* settings shared by the web server and the workers of these tests."""
    return line_environment(database_url, redis_url, standin.url, MAX_VOICEMAIL_SECONDS="180")


@pytest.fixture
def line(database_url: str, redis_url: str, line_env: dict[str, str],
         tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    """The Korean line published and served by gunicorn; yields the app and the server URL."""
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url))
    publish(app, KOREAN_FLOW)
    with gunicorn_server(line_env, tmp_path) as base:
        yield app, base
    empty_tables(app)


@contextlib.contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`ivr worker` in its own process group (so a test can kill it and its work horse)."""
    ivr = Path(sys.executable).with_name("ivr")
    process = subprocess.Popen([str(ivr), "worker"], env=dict(os.environ, **env),
                               stdout=log.open("ab"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def call_and_leave(base: str, standin: StandinServer, wav: Path, call_n: int) -> None:
    """A simulated call that records `wav` as a voicemail, the audio served by the stand-in."""
    simulator = Simulator(base, AUTH_TOKEN, caller=MOBILE_CALLER, account_sid=ACCOUNT_SID,
                          call_sid="CA" + f"{call_n:032x}", recording_base_url=standin.url,
                          upload_recordings=True)
    transcript = simulator.run(ScriptedCaller([f"wav:{wav}"]))
    assert not transcript.failed, transcript.failures
    spoken = " ".join(transcript.said())
    assert "접수 번호는 1 0 0" in spoken  # the caller hears the ticket number


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def tickets(app: Flask) -> list[Ticket]:
    with app.extensions["ivr.sessions"]() as session:
        return list(session.scalars(select(Ticket).order_by(Ticket.id)))


def test_a_call_to_voicemail_ends_as_one_ticket_made_by_a_worker_process(
        line: tuple[Flask, str], line_env: dict[str, str], standin: StandinServer,
        tmp_path: Path) -> None:
    app, base = line
    first, second = clips()[0], clips()[3]  # 8 kHz CER about 0.10 and 0.17
    for n, clip in enumerate((first, second), start=1):
        wav = tmp_path / f"message{n}.wav"
        wav.write_bytes(telephone_wav(clip.path))
        call_and_leave(base, standin, wav, n)

    log = tmp_path / "worker.log"
    with worker_process(line_env, log) as worker:
        def both_transcribed() -> list[Ticket] | None:
            done = [t for t in tickets(app) if t.transcription == "done"]
            return done if len(done) == 2 else None

        done = wait_for(both_transcribed, 120, "two transcribed tickets")
        wait_for(lambda: len(standin.messages()) == 2, 30, "two SMS")

    assert len(tickets(app)) == 2  # exactly one ticket per voicemail
    for ticket, clip in zip(done, (first, second), strict=True):
        cer = character_error_rate(clip.reference, ticket.transcript)
        assert cer <= CER_LIMIT_8KHZ, (clip.path.name, cer, ticket.transcript)
    bodies = [message.body for message in standin.messages()]
    for ticket in done:
        assert sum(ticket.number in body for body in bodies) == 1

    # The model was loaded once, when the worker started; both jobs ran in that process and
    # found it loaded.
    connection = Redis.from_url(line_env["IVR_REDIS_URL"])
    with app.extensions["ivr.sessions"]() as session:
        ids = list(session.scalars(select(Voicemail.id).order_by(Voicemail.id)))
    results = [Job.fetch(voicemail_job_id(i), connection=connection).return_value()
               for i in ids]
    assert [r["model_loads"] for r in results] == [1, 1]
    assert results[0]["pid"] == results[1]["pid"] == worker.pid
    assert log.read_text().count("speech model 'ko' loaded") == 1


def test_a_worker_killed_during_a_transcription_loses_nothing(
        line: tuple[Flask, str], line_env: dict[str, str], standin: StandinServer,
        tmp_path: Path) -> None:
    app, base = line
    wav = tmp_path / "long.wav"
    wav.write_bytes(speech_wav(2))
    call_and_leave(base, standin, wav, 9)
    log = tmp_path / "worker.log"

    def processing() -> bool:
        with app.extensions["ivr.sessions"]() as session:
            return session.scalar(select(Voicemail.state)) == "processing"

    with worker_process(line_env, log) as first_worker:
        wait_for(processing, 60, "the transcription to start")
        time.sleep(1.0)  # well inside the decode, which takes over 10 s
        os.killpg(first_worker.pid, signal.SIGKILL)  # the worker and its work horse
    assert tickets(app)[0].transcription == "pending"

    with worker_process(line_env, log):
        ticket = wait_for(lambda: next((t for t in tickets(app) if t.transcription == "done"),
                                       None), 150, "the ticket after the restart")
    with app.extensions["ivr.sessions"]() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1
        voicemail = session.scalar(select(Voicemail))
        assert voicemail is not None and voicemail.state == "done"
        assert voicemail.attempts >= 2  # the killed run counted, the second one finished
    assert ticket.transcript
    assert len(standin.messages()) == 1
