"""The buffered call log: batches, Twilio's repeats, late rows, and a database that goes away."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import select

from callbacks.calllog import Call, CallStep, StepRecord, call_path, record_status
from callbacks.calllog_buffer import CallLogBuffer
from callbacks.db import make_engine
from tests.conftest import publish
from tests.test_voice import FLOW

SID = "CA" + "4" * 32


def step(seq: int, node: str, outcome: str | None = None, language: str = "en") -> StepRecord:
    return StepRecord(SID, seq, "input", node, str(seq), (node,), outcome, language)


def test_rows_are_written_in_the_background_within_the_interval(app: Flask) -> None:
    version = publish(app, FLOW)
    buffer = CallLogBuffer(app.extensions["ivr.engine"], flush_seconds=0.05)
    buffer.open_call(SID, "+442071838750", "+493012345678", version.id, "en")
    buffer.record_step(step(0, "hello"))
    buffer.record_step(step(1, "menu", language="de"))
    deadline = time.monotonic() + 5
    while buffer.pending and time.monotonic() < deadline:
        time.sleep(0.02)
    with app.extensions["ivr.sessions"]() as session:
        call = session.scalar(select(Call))
        assert call is not None
        assert (call.caller, call.flow_version_id, call.language, call.last_node) == (
            "+442071838750", version.id, "de", "menu")
        assert [s.node for s in call_path(session, SID)] == ["hello", "menu"]
    buffer.close()


def test_repeated_deliveries_are_written_once(app: Flask) -> None:
    buffer = CallLogBuffer(app.extensions["ivr.engine"], flush_seconds=60)
    buffer.open_call(SID, "+442071838750", "+493012345678", None, "en")
    buffer.open_call(SID, "+442071838750", "+493012345678", None, "en")
    buffer.record_step(step(1, "menu"))
    buffer.record_step(step(1, "menu"))  # Twilio retried within the same batch
    assert buffer.flush() == 4
    buffer.record_step(step(1, "menu"))  # ... and once more after it was written
    buffer.record_step(step(2, "vm", outcome="voicemail"))
    buffer.flush()
    with app.extensions["ivr.sessions"]() as session:
        assert len(session.scalars(select(Call)).all()) == 1
        assert [(s.seq, s.node) for s in call_path(session, SID)] == [(1, "menu"), (2, "vm")]
        call = session.scalar(select(Call))
        assert call is not None and call.outcome == "voicemail"
    buffer.close()


def test_a_status_callback_that_overtakes_the_log_is_completed_by_it(app: Flask) -> None:
    version = publish(app, FLOW)
    buffer = CallLogBuffer(app.extensions["ivr.engine"], flush_seconds=60)
    buffer.open_call(SID, "+442071838750", "+493012345678", version.id, "en")
    buffer.record_step(step(0, "vm", outcome="voicemail"))
    with app.extensions["ivr.sessions"]() as session:
        record_status(session, SID, "completed", 30)  # arrives before the batch is written
        session.commit()
    buffer.flush()
    with app.extensions["ivr.sessions"]() as session:
        call = session.scalar(select(Call))
        assert call is not None
        assert (call.status, call.duration_seconds) == ("completed", 30)
        assert (call.flow_version_id, call.language, call.caller) == (
            version.id, "en", "+442071838750")
        assert call.outcome == "voicemail"  # not "abandoned": the log knew better
    buffer.close()


def test_rows_wait_while_the_database_is_unreachable(app: Flask) -> None:
    good_engine = app.extensions["ivr.engine"]
    buffer = CallLogBuffer(good_engine, flush_seconds=60)
    buffer.engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none",
                                connect_args={"connect_timeout": 1})
    buffer.open_call(SID, "+442071838750", "+493012345678", None, "en")
    buffer.record_step(step(0, "hello"))
    with pytest.raises(Exception, match="connect"):
        buffer.flush()
    assert buffer.pending == 2
    buffer.engine = good_engine
    buffer.record_step(step(1, "menu"))
    assert buffer.flush() == 3
    with app.extensions["ivr.sessions"]() as session:
        assert len(session.scalars(select(CallStep)).all()) == 2
    buffer.close()


def test_close_writes_what_is_pending(app: Flask) -> None:
    buffer = CallLogBuffer(app.extensions["ivr.engine"], flush_seconds=60)
    buffer.open_call(SID, "+442071838750", "+493012345678", None, "en")
    buffer.close()
    with app.extensions["ivr.sessions"]() as session:
        assert session.scalar(select(Call.call_sid)) == SID


def test_any_text_and_time_is_written_as_given(app: Flask) -> None:
    # PostgreSQL receives each batch as one JSON document: quotes, backslashes, line breaks,
    # any script and the microseconds of a timestamp come back as they went in.
    spoken = 'speech:my "VPN" \\ Wi-Fi\nist kaputt, сломался, zepsuł się 😞'
    at = datetime(2026, 11, 26, 7, 30, 1, 123456, tzinfo=UTC)
    buffer = CallLogBuffer(app.extensions["ivr.engine"], flush_seconds=60)
    buffer.open_call(SID, "+442071838750", "", None, "", at=at)
    buffer.record_step(StepRecord(SID, 0, "input", "menu", spoken, ("menu", "vpn"), None, "ru"),
                       at=at)
    buffer.record_step(StepRecord(SID, 1, "silence", "vpn", None, (), None, None), at=at)
    buffer.close()
    with app.extensions["ivr.sessions"]() as session:
        call = session.scalar(select(Call))
        assert call is not None
        assert (call.called, call.started_at, call.language, call.last_node) == ("", at, "ru",
                                                                                 "vpn")
        steps = call_path(session, SID)
        assert [(s.input, s.path, s.at) for s in steps] == [(spoken, "menu vpn", at),
                                                             (None, "", at)]


def test_a_forked_worker_writes_with_its_own_thread(app: Flask, database_url: str) -> None:
    # gunicorn forks its workers from a process that may have logged already: the writer
    # thread does not survive the fork, so the child's first row starts its own.
    engine = make_engine(database_url)
    buffer = CallLogBuffer(engine, flush_seconds=0.05)
    buffer.open_call("CA" + "5" * 32, "+442071838750", "+493012345678", None, "en")
    pid = os.fork()
    if pid == 0:  # the worker
        try:
            engine.dispose(close=False)  # the parent's connections stay the parent's
            buffer.open_call(SID, "+442071838750", "+493012345678", None, "de")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # only a writer thread can write it here
                with engine.connect() as connection:
                    if connection.scalar(select(Call.language).where(Call.call_sid == SID)):
                        os._exit(0)
                time.sleep(0.02)
            os._exit(1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    buffer.close()
    engine.dispose()
    with app.extensions["ivr.sessions"]() as session:
        assert session.scalar(select(Call.language).where(Call.call_sid == SID)) == "de"
