"""Stopping a real `ivr worker` in the middle of a real transcription: SIGTERM lets the job
finish and the worker exit 0 (warm shutdown); a second SIGTERM interrupts it (cold shutdown),
and a new worker finishes it; either way the voicemail is exactly one complete ticket."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import func, select

from callbacks.reconciler import reconcile
from callbacks.tickets.ticket import Ticket
from callbacks.voicemail import Voicemail
from ivr.standin import StandinServer
from tests.conftest import AUTH_TOKEN, app_config, empty_tables, line_environment, publish
from tests.test_worker_process import wait_for, worker_process
from tests.voicemail_helpers import (
    ACCOUNT_SID,
    KOREAN_FLOW,
    leave_voicemail,
    recording_sid,
    speech_wav,
)

pytestmark = pytest.mark.server

STOP_SECONDS = 180
"""Bound on a warm shutdown here: the rest of a few minutes' decode, with room to spare."""

MAX_SECONDS = 900
"""The longest voicemail the line transcribes here: room for the longest recording below."""


@pytest.fixture
def standin() -> Iterator[StandinServer]:
    with StandinServer(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def line_env(database_url: str, redis_url: str, standin: StandinServer) -> dict[str, str]:
    """The workers' settings: the test database, Redis and stand-in, JSON log lines."""
    return line_environment(database_url, redis_url, standin.url,
                            MAX_VOICEMAIL_SECONDS=str(MAX_SECONDS), LOG_FORMAT="json")


@pytest.fixture
def speech_minutes() -> float:
    """How long the voicemail speaks. A warm worker decodes a minute in 2 to 3 s on two cores,
    so three minutes leave several seconds to signal in the middle of the decode."""
    return 3


@pytest.fixture
def line(database_url: str, redis_url: str, standin: StandinServer,
         speech_minutes: float) -> Iterator[Flask]:
    """The Korean line, answering webhooks through the test client; a long voicemail left."""
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url,
                                TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_API_BASE_URL=standin.url,
                                MAX_VOICEMAIL_SECONDS=MAX_SECONDS))
    publish(app, KOREAN_FLOW)
    standin.put_recording(recording_sid(1), speech_wav(speech_minutes))
    leave_voicemail(app, standin.url, None, n=1)
    yield app
    empty_tables(app)


def voicemail(app: Flask) -> Voicemail:
    with app.extensions["ivr.sessions"]() as session:
        found = session.scalar(select(Voicemail))
        assert found is not None
        return found


def ticket_count(app: Flask) -> int:
    with app.extensions["ivr.sessions"]() as session:
        return session.scalar(select(func.count()).select_from(Ticket)) or 0


def transcribed(app: Flask) -> bool:
    with app.extensions["ivr.sessions"]() as session:
        return session.scalar(select(Ticket.transcription)) == "done"


def log_lines(log: Path) -> list[dict[str, Any]]:
    """The worker's log, every line of it JSON."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def exit_code(process: Any, seconds: float) -> int:
    """The process's exit code, once it exited within `seconds`."""
    deadline = time.monotonic() + seconds
    while process.poll() is None:
        assert time.monotonic() < deadline, f"still running {seconds} s after the signal"
        time.sleep(0.1)
    return int(process.returncode)


def test_sigterm_lets_the_running_transcription_finish_then_the_worker_exits_0(
        line: Flask, line_env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with worker_process(line_env, log) as worker:
        wait_for(lambda: voicemail(line).state == "processing", 60, "the transcription to start")
        time.sleep(1.0)  # inside the decode
        os.killpg(worker.pid, signal.SIGTERM)  # as Heroku and systemd do: the whole group
        signalled = time.monotonic()
        assert exit_code(worker, STOP_SECONDS) == 0
        stopped_after = time.monotonic() - signalled

    finished = voicemail(line)
    assert finished.state == "done" and finished.attempts == 1  # finished, not run again
    assert transcribed(line) and ticket_count(line) == 1
    lines = log_lines(log)
    messages = [entry["message"] for entry in lines]
    assert any("warm shut down requested" in message for message in messages)
    job_lines = [entry for entry in lines if entry.get("job_id") == f"voicemail-{finished.id}"]
    assert job_lines and {entry.get("call_sid") for entry in job_lines} == {finished.call_sid}
    assert stopped_after > 1  # it did wait for the job


def test_a_second_sigterm_interrupts_the_job_and_a_new_worker_finishes_it(
        line: Flask, line_env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with worker_process(line_env, log) as worker:
        wait_for(lambda: voicemail(line).state == "processing", 60, "the transcription to start")
        time.sleep(1.0)
        os.kill(worker.pid, signal.SIGTERM)  # warm: would wait for the job ...
        time.sleep(1.5)  # (rq ignores a second signal within 1 s: a pool's duplicate)
        assert voicemail(line).state == "processing", "the decode ended before the second signal"
        os.kill(worker.pid, signal.SIGTERM)  # ... cold: interrupts it
        assert exit_code(worker, 20) == 0
    interrupted = voicemail(line)
    assert interrupted.state != "done" and not transcribed(line)
    assert any("cold shut down" in entry["message"] for entry in log_lines(log))

    with worker_process(line_env, log):
        wait_for(lambda: transcribed(line), STOP_SECONDS, "the ticket after the restart")
    finished = voicemail(line)
    assert finished.state == "done" and finished.attempts >= 2
    assert ticket_count(line) == 1


@pytest.mark.parametrize("speech_minutes", [10])  # a decode well past a stale heartbeat
def test_a_long_transcription_beats_so_no_reconciler_takes_it_for_lost(
        line: Flask, line_env: dict[str, str], redis_url: str, tmp_path: Path) -> None:
    with worker_process(line_env, tmp_path / "worker.log"):
        wait_for(lambda: voicemail(line).state == "processing", 60, "the transcription to start")
        time.sleep(2 * 1 + 5 + 2)  # past 2 heartbeats + 5 s: a job that did not beat looks dead
        assert voicemail(line).state == "processing"
        with line.extensions["ivr.sessions"]() as session:  # another worker's reconciler
            report = reconcile(session, Redis.from_url(redis_url), grace=timedelta(0),
                               heartbeat_seconds=1)
        assert report.voicemails_requeued == []
        wait_for(lambda: transcribed(line), STOP_SECONDS, "the ticket")
    finished = voicemail(line)
    assert finished.state == "done" and finished.attempts == 1  # run once, not twice
    assert ticket_count(line) == 1
