"""The buffered call log: batches, Twilio's repeats, late rows, and a database that goes away."""

from __future__ import annotations

import time

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
