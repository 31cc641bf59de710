"""JSON log lines: every line logged while a webhook of a call or a job for it runs names the
call; two calls leave voicemails through the test client, a real worker makes the tickets."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Response, request
from redis import Redis
from sqlalchemy import select

from callbacks.logs import configure_logging, log_context, make_handler
from callbacks.queues import QUEUES
from callbacks.settings import Settings
from callbacks.voicemail import Voicemail
from callbacks.worker import HelpdeskWorker
from ivr.config import ConfigError
from ivr.standin import StandinServer
from tests.conftest import AUTH_TOKEN, RedisServer, app_config, empty_tables, publish
from tests.speech_fixtures import clips
from tests.voicemail_helpers import (
    ACCOUNT_SID,
    KOREAN_FLOW,
    configure_job_runtime,
    leave_voicemail,
    recording_sid,
    telephone_wav,
    ticket_of,
)

log = logging.getLogger("tests.json_logs")


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinServer]:
    with StandinServer(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def settings(database_url: str, redis_server: RedisServer, standin: StandinServer) -> Settings:
    """The jobs' runtime on the test database, Redis and stand-in (the model loads once)."""
    return configure_job_runtime(database_url, redis_server.url, standin.url)


@contextlib.contextmanager
def own_logging() -> Iterator[None]:
    """Logging as in a fresh process, without the test runner's handlers, for the block.

    (pytest adds its handlers as each test starts, after the fixtures, hence no fixture.)"""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def parse(text: str) -> list[dict[str, Any]]:
    """Every line as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_call_and_its_voicemail_job_log_json_lines_that_name_the_call(
        settings: Settings, database_url: str, redis_url: str, standin: StandinServer,
        capsys: pytest.CaptureFixture[str]) -> None:
    from ivr import create_app

    standin.reset()
    with own_logging():
        app = create_app(app_config(
            database_url, REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_API_BASE_URL=standin.url, MAX_VOICEMAIL_SECONDS=30, CONFIGURE_RUNTIME=False,
            LOG_FORMAT="json", LOG_LEVEL="INFO"))
        try:
            check_call_and_job_lines(app, redis_url, standin, capsys)
        finally:
            empty_tables(app)


def check_call_and_job_lines(app: Flask, redis_url: str, standin: StandinServer,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """Two calls leave voicemails, a worker makes them tickets; every line names its call."""

    @app.after_request
    def note(response: Response) -> Response:  # app code logging inside every webhook
        log.info("answered %s with %s", request.path, response.status_code)
        return response

    publish(app, KOREAN_FLOW)
    capsys.readouterr()
    spans: dict[str, list[dict[str, Any]]] = {}
    for n in (1, 2):
        standin.put_recording(recording_sid(n), telephone_wav(clips()[n - 1].path))
        phone = leave_voicemail(app, standin.url, None, n=n)
        spans[phone.call_sid] = parse(capsys.readouterr().err)

    for call_sid, lines in spans.items():
        in_webhooks = [line for line in lines if "request_id" in line]
        answered = [line for line in in_webhooks if line["message"].startswith("answered")]
        assert len(answered) == 3  # /voice, the Record action, the recording status callback
        assert {line["call_sid"] for line in in_webhooks} == {call_sid}
        assert len({line["request_id"] for line in answered}) == 3
        for line in lines:
            assert {"time", "level", "logger", "message"} <= set(line)
            assert line["time"].endswith("Z") and "T" in line["time"]

    HelpdeskWorker(list(QUEUES), connection=Redis.from_url(redis_url)).work(burst=True)
    worked = parse(capsys.readouterr().err)
    with app.extensions["ivr.sessions"]() as session:
        calls = {f"voicemail-{v.id}": v.call_sid for v in session.scalars(select(Voicemail))}
    for n in (1, 2):
        ticket, _ = ticket_of(app, n)
        assert ticket.transcription == "done"
        calls[f"sms-ticket-{ticket.id}"] = ticket.call_sid
    assert len(set(calls.values())) == 2
    in_jobs = [line for line in worked if line.get("job_id") in calls]
    assert {line["job_id"] for line in in_jobs} == set(calls)  # each job logged something
    for line in in_jobs:
        assert line.get("call_sid") == calls[line["job_id"]], line
    assert not [line for line in worked if "job_id" not in line and "call_sid" in line]


def test_an_exception_goes_in_exc_with_the_call() -> None:
    stream = io.StringIO()
    handler = make_handler("json", stream)
    logger = logging.getLogger("tests.json_logs.exc")
    logger.addHandler(handler)
    try:
        with log_context(call_sid="CA" + "5" * 32, request_id="r-1"):
            try:
                raise ValueError("the recording is empty")
            except ValueError:
                logger.error("voicemail 7 failed", exc_info=True)
        logger.error("outside any call")
    finally:
        logger.removeHandler(handler)
    first, second = parse(stream.getvalue())
    assert first["message"] == "voicemail 7 failed" and first["level"] == "ERROR"
    assert first["call_sid"] == "CA" + "5" * 32 and first["request_id"] == "r-1"
    assert first["logger"] == "tests.json_logs.exc"
    assert "ValueError: the recording is empty" in first["exc"]
    assert "call_sid" not in second and "exc" not in second


def test_text_lines_end_with_the_call() -> None:
    stream = io.StringIO()
    handler = make_handler("text", stream)
    logger = logging.getLogger("tests.json_logs.text")
    logger.addHandler(handler)
    try:
        with log_context(call_sid="CA" + "6" * 32, job_id="voicemail-3"):
            logger.warning("voicemail 3: will retry")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().rstrip().endswith(
        "voicemail 3: will retry [call CA" + "6" * 32 + ", job voicemail-3]")


def test_logging_set_up_by_someone_else_is_left_alone() -> None:
    theirs = logging.StreamHandler(io.StringIO())
    with own_logging():
        logging.root.addHandler(theirs)
        assert configure_logging("INFO", "json") is None
        assert logging.root.handlers == [theirs]


def test_setting_logging_up_again_replaces_our_handler() -> None:
    with own_logging():
        first = configure_logging("INFO", "text", io.StringIO())
        second = configure_logging("WARNING", "json", io.StringIO())
        assert logging.root.handlers == [second] and first is not second
        assert logging.root.level == logging.WARNING


@pytest.mark.parametrize(("env", "given", "expected"), [
    ("development", "", "text"),
    ("production", "", "json"),
    ("production", "TEXT", "text"),
    ("development", "json", "json"),
])
def test_the_log_format_defaults_to_json_in_production(
        env: str, given: str, expected: str, database_url: str) -> None:
    from ivr import config

    app = Flask("probe")
    production = {"SECRET_KEY": "s" * 32, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                  "TWILIO_ACCOUNT_SID": "AC" + "7" * 32, "METRICS_PRIVATE": True,
                  "PUBLIC_BASE_URL": "https://support.example.test"}
    config.load_config(app, {**production, "ENV": env, "LOG_FORMAT": given,
                             "DATABASE_URL": database_url})
    assert app.config["LOG_FORMAT"] == expected


def test_an_unknown_log_format_is_refused(database_url: str) -> None:
    from ivr import config

    with pytest.raises(ConfigError, match="IVR_LOG_FORMAT must be one of json, text"):
        config.load_config(Flask("probe"), {"LOG_FORMAT": "xml", "DATABASE_URL": database_url})
