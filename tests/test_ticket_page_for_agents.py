"""What agents read on a ticket (and a callback) is a plain sentence: never a server path, a
setting or a command. Those go to the worker's log, for admins. Each case is a real failure
that carries them: a missing speech model, a line with no SMS sender, Twilio refusing the
line's credentials (texts, a recording, a callback's call)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import select

from callbacks.followups import send_survey_sms
from callbacks.jobs import process_voicemail
from callbacks.queues import QUEUES
from callbacks.tickets.ticket import Ticket, TicketEvent, ticket_number
from callbacks.voicemail import Voicemail
from ivr.standin import StandinServer
from tests.conftest import LINE, desk_app, publish
from tests.speech_fixtures import clips
from tests.test_console import _agent, _callback, _post, _sign_in
from tests.voicemail_helpers import leave_voicemail, recording_sid, telephone_wav

CALLER = "+4915112345678"
GERMAN_LINE = f"""\
name: german-line
languages: [de]
default_language: de
numbers: ["{LINE}"]
start: message
nodes:
  message:
    type: voicemail
    prompt: {{de: "Bitte sprechen Sie nach dem Ton."}}
    category: network
    max_length: 120
    next: bye
  bye: {{type: hangup, text: {{de: "Danke."}}}}
"""
ADVICE = re.compile(r"IVR_[A-Z_]+|\bivr (speech|flows|db|agents)\b|\.venv/|/instance/|check \w+")
"""What an agent must never read: settings, commands, checkout and instance paths, fixes."""


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """Where the line expects its German model, which nobody downloaded."""
    return tmp_path / "models" / "vosk-model-small-de-0.15"


@pytest.fixture
def desk(database_url: str, redis_url: str, standin: StandinServer,
         model_dir: Path) -> Iterator[Flask]:
    """The app on the stand-in, its German speech model missing."""
    with desk_app(database_url, redis_url, standin,
                  SPEECH_MODELS={"de": str(model_dir)}) as app:
        yield app


@pytest.fixture
def web(desk: Flask) -> FlaskClient:
    """An agent signed in to the console."""
    _agent(desk)
    client = desk.test_client()
    _sign_in(client)
    return client


def work_off(redis_url: str) -> None:
    """Run every queued job in this process, as a worker does."""
    connection = Redis.from_url(redis_url)
    SimpleWorker([Queue(name, connection=connection) for name in QUEUES],
                 connection=connection).work(burst=True)


def agents_see(web: FlaskClient, path: str, *also_absent: str) -> str:
    """The page at `path`, checked to hold no advice for admins nor any of `also_absent`."""
    response = web.get(path)
    assert response.status_code == 200, path
    page = response.get_data(as_text=True)
    leaked = ADVICE.search(page)
    assert leaked is None, f"{path} shows agents {leaked.group(0)!r}"
    for text in also_absent:
        assert text not in page, f"{path} shows agents {text!r}"
    return page


def ticket_page(desk: Flask, ticket_id: int) -> str:
    """The console path of a ticket."""
    return f"/console/tickets/{ticket_number(ticket_id)}"


def events(desk: Flask, ticket_id: int, kind: str) -> list[str]:
    """The details of the ticket's events of one kind."""
    with desk.extensions["ivr.sessions"]() as session:
        return list(session.scalars(select(TicketEvent.detail).where(
            TicketEvent.ticket_id == ticket_id, TicketEvent.kind == kind)))


def test_a_missing_speech_model_is_a_plain_sentence_and_the_fix_goes_to_the_log(
        desk: Flask, web: FlaskClient, redis_url: str, standin: StandinServer,
        model_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    publish(desk, GERMAN_LINE)
    standin.put_recording(recording_sid(1), telephone_wav(clips()[0].path))
    leave_voicemail(desk, standin.url, None, n=1, caller=CALLER)
    with caplog.at_level(logging.WARNING, logger="callbacks.jobs"):
        work_off(redis_url)
    with desk.extensions["ivr.sessions"]() as session:
        ticket = session.scalar(select(Ticket))
        assert ticket is not None and ticket.transcription == "no_model"
    page = agents_see(web, ticket_page(desk, ticket.id), str(model_dir), "speech download")
    assert "speech recognition for &#39;de&#39; is not set up on this line yet" in page
    # The admin's fix is in the worker's log: the model's path and the command.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert str(model_dir) in logged and "ivr speech download de" in logged


def test_a_line_without_an_sms_sender_says_so_without_naming_the_setting(
        database_url: str, redis_url: str, standin: StandinServer,
        caplog: pytest.LogCaptureFixture) -> None:
    with desk_app(database_url, redis_url, standin, SMS_FROM="", CALLBACK_FROM="") as app:
        _agent(app)
        web = app.test_client()
        _sign_in(web)
        request_id = _callback(app, CALLER)
        with app.extensions["ivr.sessions"]() as session:
            ticket_id = session.scalar(select(Ticket.id))
            assert ticket_id is not None
        with caplog.at_level(logging.WARNING):
            send_survey_sms(request_id, ticket_id, None)  # the job after a callback
        assert standin.messages() == []
        for path in (ticket_page(app, ticket_id), f"/console/callbacks/{request_id}"):
            page = agents_see(web, path, "no SMS sender")
            assert "The caller did not get a text." in page
        [failed] = events(app, ticket_id, "sms_failed")
        assert failed == ("survey: the line has no number to send texts from (an admin has to "
                          "set one up)")
        assert "no SMS sender: set IVR_SMS_FROM" in caplog.text


def test_twilio_refusing_the_credentials_for_a_text_is_told_without_the_fix(
        desk: Flask, web: FlaskClient, redis_url: str, standin: StandinServer,
        caplog: pytest.LogCaptureFixture) -> None:
    request_id = _callback(desk, CALLER)
    with desk.extensions["ivr.sessions"]() as session:
        ticket_id = session.scalar(select(Ticket.id))
        assert ticket_id is not None
    response = _post(web, f"/console/tickets/{ticket_number(ticket_id)}/status",
                     status="resolved", note="VPN profile renewed")
    assert response.status_code == 303
    standin.inject_fault(r"/Messages\.json$", 401, times=5)  # the auth token was changed
    with caplog.at_level(logging.WARNING):
        work_off(redis_url)
    assert standin.messages() == []
    [failed] = events(desk, ticket_id, "sms_failed")
    assert failed.startswith("resolved: sending an SMS: Twilio answered HTTP 401")
    for path in (ticket_page(desk, ticket_id), f"/console/callbacks/{request_id}"):
        page = agents_see(web, path)
        assert "The caller did not get a text." in page and "HTTP 401" in page
    assert "check IVR_TWILIO_AUTH_TOKEN" in caplog.text  # the admin's hint is logged


def test_a_recording_twilio_refuses_to_hand_over_is_told_without_the_fix(
        desk: Flask, web: FlaskClient, redis_url: str, standin: StandinServer,
        caplog: pytest.LogCaptureFixture) -> None:
    publish(desk, GERMAN_LINE)
    standin.put_recording(recording_sid(1), telephone_wav(clips()[0].path))
    standin.put_recording(recording_sid(2), telephone_wav(clips()[0].path))
    leave_voicemail(desk, standin.url, None, n=1, caller=CALLER)
    standin.inject_fault(r"/Recordings/", 401, times=10)
    with caplog.at_level(logging.WARNING):
        work_off(redis_url)
        with desk.extensions["ivr.sessions"]() as session:
            ticket = session.scalar(select(Ticket))
            assert ticket is not None and ticket.transcription == "failed"
            # The caller calls again and adds a message to their ticket (as the ticket
            # dialog records it): its recording is refused too.
            added = Voicemail(recording_sid=recording_sid(2), call_sid="CA" + "2" * 32,
                              recording_url=standin.recording_url(recording_sid(2)),
                              language="de", ticket_id=ticket.id)
            session.add(added)
            session.commit()
            added_id = added.id
        process_voicemail(added_id)
    [message] = events(desk, ticket.id, "caller_message")
    assert "Twilio refused the line's credentials (401)" in message
    page = agents_see(web, ticket_page(desk, ticket.id))
    assert page.count("Twilio refused the line&#39;s credentials (401)") >= 2
    assert "check IVR_TWILIO_ACCOUNT_SID and IVR_TWILIO_AUTH_TOKEN" in caplog.text


def test_a_callback_call_twilio_refuses_is_told_without_the_fix(
        desk: Flask, web: FlaskClient, standin: StandinServer,
        caplog: pytest.LogCaptureFixture) -> None:
    request_id = _callback(desk, CALLER)
    standin.inject_fault(r"/Calls\.json$", 401, times=5)
    with caplog.at_level(logging.WARNING):
        response = _post(web, f"/console/callbacks/{request_id}/call")
    assert response.status_code == 303
    page = agents_see(web, f"/console/callbacks/{request_id}")
    assert "placing a call: Twilio answered HTTP 401" in page
    assert "check IVR_TWILIO_AUTH_TOKEN" in caplog.text
