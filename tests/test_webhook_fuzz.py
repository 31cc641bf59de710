"""Random and malformed Twilio parameters, correctly signed, posted to every Twilio webhook:
the answer is always valid TwiML or a 4xx, never a 500 or a stack trace."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


@settings(max_examples=int(os.environ.get("IVR_FUZZ_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS),
       form=st.dictionaries(st.sampled_from(NAMES), junk, max_size=8),
       query=st.dictionaries(st.sampled_from(QUERY_NAMES), junk, max_size=6))
def test_signed_junk_never_breaks_a_webhook(line: Flask, path: str, form: dict[str, str],
                                            query: dict[str, str]) -> None:
    from urllib.parse import urlencode

    # Mostly past the first gate (a CallSid or MessageSid is there), so the junk reaches the
    # engine, the dialer and the survey; the random fields may still override them.
    form = {"CallSid": "CA" + "a" * 32, "MessageSid": "SM" + "b" * 32, "From": "+4915112345678",
            "To": "+493012345678", **form}
    query = {"v": "1", "n": "menu", "l": "en", **query}
    target = f"{path}?{urlencode(query)}"
    answer = twilio_post(line.test_client(), target, form)
    body = answer.get_data(as_text=True)
    assert answer.status_code < 500, (target, form, body[:500])
    assert "Traceback" not in body
    if answer.status_code == 200 and answer.mimetype in ("text/xml", "application/xml"):
        assert ET.fromstring(answer.data).tag == "Response"
