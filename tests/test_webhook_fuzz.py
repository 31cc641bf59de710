"""Random and malformed Twilio parameters, correctly signed, posted to every Twilio webhook:
the answer is always valid TwiML or a 4xx, never a 500 or a stack trace; no webhook logs an
exception, and a caller hears the apology only where the fuzz broke the call's position on
purpose (or on the fallback URL, whose answer is the apology).

The webhooks are found in the app's URL map (every route that refuses an unsigned post as
forged), so a webhook added later is fuzzed without anyone listing it here."""

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

KNOWN_WEBHOOKS = {
    "/voice", "/voice/step", "/voice/silence", "/voice/recorded", "/voice/dialed",
    "/voice/recording", "/voice/saved", "/voice/status", "/voice/fallback", "/voice/survey",
    "/voice/test", "/voice/queue/wait", "/voice/queue/key", "/voice/queue/left",
    "/voice/queue/connect", "/voice/queue/talked", "/dialer/agent", "/dialer/bridged",
    "/dialer/agent-status", "/dialer/live/agent", "/dialer/live/agent-status", "/sms"}
"""Webhooks that exist today: the search of the URL map must find at least these."""
FUZZ_FLOW = VOICE_FLOW.replace(
    '      "3": {next: callback, label: callback}\n',
    '      "3": {next: callback, label: callback}\n'
    '      "4": {next: line, label: agent}\n').replace(
    "  bye: {type: hangup",
    '  line: {type: queue, prompt: {en: "Please hold.", de: "Bitte warten."},\n'
    "         category: network, callback: callback, voicemail: vm, overflow: vm}\n"
    "  bye: {type: hangup")
"""The test line with a queue node (menu key 4), so the queue's webhooks meet a real line."""
NAMES = ["CallSid", "From", "To", "Digits", "SpeechResult", "Confidence", "CallStatus",
         "RecordingUrl", "RecordingSid", "RecordingDuration", "RecordingStatus",
         "DialCallStatus", "DialCallDuration", "MessageSid", "Body", "AccountSid", "QueueSid",
         "QueueTime", "QueueResult", "CallDuration"]
QUERY_NAMES = ["v", "n", "l", "a", "s", "c", "w", "q", "t", "attempt", "offer", "live"]
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
    publish(app, FUZZ_FLOW)
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
    "/voice/queue/wait": [{"n": "line"}],
    "/voice/queue/key": [{"n": "line"}],
    "/voice/queue/left": [{"n": "line"}],
    "/voice/queue/connect": [{"n": "line", "live": "1"}],
    "/voice/queue/talked": [{"n": "line"}],
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


@pytest.fixture(scope="module")
def webhooks(line: Flask, app_log: Recorder) -> list[str]:
    """Every route of the app that refuses an unsigned post as forged: Twilio's webhooks.

    A route with URL variables is tried (and fuzzed) with each of them set to 1.
    """
    client = line.test_client()
    urls = line.url_map.bind("")
    found = []
    for rule in line.url_map.iter_rules():
        if "POST" not in (rule.methods or ()):
            continue
        path = urls.build(rule.endpoint, dict.fromkeys(rule.arguments, 1), method="POST")
        app_log.records.clear()
        answer = client.post(path, headers={"X-Twilio-Signature": "forged"},
                             data={"CallSid": "CA" + "a" * 32, "MessageSid": "SM" + "b" * 32})
        forged = any(record.getMessage().startswith("rejected unsigned or forged webhook")
                     for record in app_log.records)
        if answer.status_code == 403 and forged:
            found.append(path)
    app_log.records.clear()
    return sorted(found)


def test_every_webhook_is_found_and_refuses_forgeries(webhooks: list[str]) -> None:
    missing = KNOWN_WEBHOOKS - set(webhooks)
    assert not missing, f"not found, or no longer refusing forged posts: {sorted(missing)}"
    assert all(path.startswith(("/voice", "/dialer", "/sms")) for path in webhooks), webhooks


def is_apology(answer: TestResponse) -> bool:
    """Whether the caller heard the apology (it records on the `apology` position)."""
    if answer.mimetype not in ("text/xml", "application/xml"):
        return False
    return any("n=apology" in record.get("action", "")
               for record in ET.fromstring(answer.data).iter("Record"))


def post_and_check(line: Flask, app_log: Recorder, path: str, query: dict[str, str],
                   form: dict[str, str], injected: bool) -> None:
    """Post signed `form` to `path` with `query`: valid TwiML or a 4xx, no exception logged,
    and the apology only where the position was broken on purpose (or on the fallback)."""
    from urllib.parse import urlencode

    # Mostly past the first gate (a CallSid or MessageSid is there), so the junk reaches the
    # engine, the dialer and the survey; the random fields may still override them.
    form = {"CallSid": "CA" + "a" * 32, "MessageSid": "SM" + "b" * 32, "From": "+4915112345678",
            "To": "+493012345678", **form}
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


@settings(max_examples=int(os.environ.get("IVR_FUZZ_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), form=st.dictionaries(st.sampled_from(NAMES), junk, max_size=8))
def test_signed_junk_never_breaks_a_webhook(line: Flask, app_log: Recorder, webhooks: list[str],
                                            data: st.DataObject, form: dict[str, str]) -> None:
    assert set(webhooks) >= KNOWN_WEBHOOKS
    path = data.draw(st.sampled_from(webhooks), label="path")
    query, injected = data.draw(position(path), label="query")
    post_and_check(line, app_log, path, query, form, injected)


NUMBERS_THAT_FIT_NOTHING = ["2147483648", "99999999999999999999", "-1", "\u00b2", "\u0661\u0662"]
"""Beyond a 32-bit column, far beyond, negative, and Unicode digits that str.isdigit() takes."""


def test_numbers_that_fit_no_column_never_break_a_webhook(line: Flask, app_log: Recorder,
                                                        webhooks: list[str]) -> None:
    for path in webhooks:
        written = {"v": "1", "l": "en", "a": "0", "s": "1", "attempt": "1", "offer": "1",
                   **WRITTEN_POSITIONS.get(path, [{"n": "menu"}])[0]}
        for name in QUERY_NAMES:
            for number in NUMBERS_THAT_FIT_NOTHING:
                post_and_check(line, app_log, path, {**written, name: number}, {}, True)
        for name in ("Digits", "RecordingDuration", "DialCallDuration", "QueueTime",
                     "CallDuration", "Confidence"):
            for number in NUMBERS_THAT_FIT_NOTHING:
                post_and_check(line, app_log, path, written, {name: number},
                               path in WRITTEN_POSITIONS)
