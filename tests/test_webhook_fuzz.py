"""Random and malformed Twilio parameters, correctly signed, posted to every Twilio webhook:
the answer is always valid TwiML or a 4xx, never a 500 or a stack trace; no webhook logs an
exception, and a caller hears the apology only where the fuzz broke the call's position on
purpose (or on the fallback URL, whose answer is the apology)."""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from tests.conftest import app_config, empty_tables, publish, twilio_post
from tests.test_callback_ivr import OPEN, VOICE_FLOW

PATHS = ["/voice", "/voice/step", "/voice/silence", "/voice/recorded", "/voice/dialed",
         "/voice/recording", "/voice/saved", "/voice/status", "/voice/fallback",
         "/voice/survey", "/voice/test", "/dialer/agent", "/dialer/bridged",
         "/dialer/agent-status", "/sms"]
NAMES = ["CallSid", "From", "To", "Digits", "SpeechResult", "Confidence", "CallStatus",
         "RecordingUrl", "RecordingSid", "RecordingDuration", "RecordingStatus",
         "DialCallStatus", "DialCallDuration", "MessageSid", "Body", "AccountSid"]
QUERY_NAMES = ["v", "n", "l", "a", "s", "c", "w", "q", "attempt"]
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
junk = st.one_of(text, st.sampled_from(["", "1", "0", "-1", "99999999999999999999", "#", "*",
                                        "+4915112345678", "anonymous", "completed", "busy",
                                        "no-answer", "CA" + "f" * 32, "http://evil.test/x",
                                        "%00", "<Say>hi</Say>", "1e309", "NaN"]))


@pytest.fixture(scope="module")
def line(database_url: str) -> Iterator[Flask]:
    """The test line, published, on the test database (no Redis: queuing is skipped)."""
    from ivr import create_app

    app = create_app(app_config(database_url, CLOCK=lambda: OPEN))
    publish(app, VOICE_FLOW)
    yield app
    empty_tables(app)


class Recorder(logging.Handler):
    """Every record at WARNING or above logged by the app while one example runs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def app_log() -> Iterator[Recorder]:
    recorder = Recorder()
    loggers = [logging.getLogger(name) for name in ("ivr", "callbacks", "routing")]
    for logger in loggers:
        logger.addHandler(recorder)
    yield recorder
    for logger in loggers:
        logger.removeHandler(recorder)


WRITTEN_POSITIONS: dict[str, list[dict[str, str]]] = {
    "/voice/step": [{"n": "lang"}, {"n": "menu"}, {"n": "menu", "a": "1"},
                    {"n": "callback", "c": "window"}],
    "/voice/silence": [{"n": "lang"}, {"n": "menu"}, {"n": "menu", "a": "1"}],
    "/voice/recorded": [{"n": "vm"}],
    "/voice/dialed": [{"n": "agent"}],
    "/voice/survey": [{"n": "agent", "q": "overall"}, {"n": "agent", "q": "resolved"},
                      {"n": "agent", "q": "overall", "a": "1"}],
    "/voice/test": [{"n": "hello"}],  # the simulator's test call: version and language
}
"""Positions the line itself writes into each action URL of the test flow (version 1)."""


@st.composite
def position(draw: st.DrawFn, path: str) -> tuple[dict[str, str], bool]:
    """A query for `path`: a position the line writes, sometimes with fields broken on purpose;
    and whether the fuzz broke it (an injected fault the caller may hear the apology for)."""
    written = {"v": "1", "l": draw(st.sampled_from(["en", "de"])), "a": "0",
               "s": str(draw(st.integers(1, 60))),
               **draw(st.sampled_from(WRITTEN_POSITIONS.get(path, [{"n": "menu"}])))}
    broken = draw(st.dictionaries(st.sampled_from(QUERY_NAMES), junk, max_size=4))
    query = {**written, **broken}
    return query, path in WRITTEN_POSITIONS and query != written


def is_apology(answer: TestResponse) -> bool:
    """Whether the caller heard the apology (it records on the `apology` position)."""
    if answer.mimetype not in ("text/xml", "application/xml"):
        return False
    return any("n=apology" in record.get("action", "")
               for record in ET.fromstring(answer.data).iter("Record"))


@settings(max_examples=int(os.environ.get("IVR_FUZZ_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), path=st.sampled_from(PATHS),
       form=st.dictionaries(st.sampled_from(NAMES), junk, max_size=8))
def test_signed_junk_never_breaks_a_webhook(line: Flask, app_log: Recorder, data: st.DataObject,
                                            path: str, form: dict[str, str]) -> None:
    from urllib.parse import urlencode

    # Mostly past the first gate (a CallSid or MessageSid is there), so the junk reaches the
    # engine, the dialer and the survey; the random fields may still override them.
    form = {"CallSid": "CA" + "a" * 32, "MessageSid": "SM" + "b" * 32, "From": "+4915112345678",
            "To": "+493012345678", **form}
    query, injected = data.draw(position(path), label="query")
    target = f"{path}?{urlencode(query)}"
    app_log.records.clear()
    answer = twilio_post(line.test_client(), target, form)
    body = answer.get_data(as_text=True)
    assert answer.status_code < 500, (target, form, body[:500])
    assert "Traceback" not in body
    if answer.status_code == 200 and answer.mimetype in ("text/xml", "application/xml"):
        assert ET.fromstring(answer.data).tag == "Response"
    crashes = [f"{record.getMessage()}: {record.exc_info[1]!r}" for record in app_log.records
               if record.exc_info or record.levelno >= logging.ERROR]
    assert crashes == [], (target, form)
    if is_apology(answer):
        assert path == "/voice/fallback" or injected, (
            "an apology the fuzz did not cause", target, form)
