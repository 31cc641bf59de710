"""A repeat caller keys in their ticket number on the phone: signed webhook posts as Twilio
sends them, real PostgreSQL and Redis, the voicemail job run by a real rq worker with real
(Korean) speech, and the Twilio stand-in. They hear the status only, may add a voice message
(transcribed onto the ticket, audio kept and playable in the console), which reopens a
resolved ticket; an unknown number gets a second try, then the flow goes on."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from flask import Flask
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import func, select

from callbacks.queues import QUEUES
from callbacks.settings import Settings
from callbacks.tickets.ticket import Ticket, TicketEvent, history
from callbacks.voicemail import Voicemail
from callbacks.workqueue.agents import create_agent
from ivr.standin import StandinServer
from speech.scoring import character_error_rate
from tests.conftest import AUTH_TOKEN, RedisServer, app_config, empty_tables, publish
from tests.speech_fixtures import shortest_clip
from tests.test_voice import Phone, said
from tests.voicemail_helpers import (
    ACCOUNT_SID,
    LINE,
    MOBILE_CALLER,
    configure_job_runtime,
    recording_sid,
    telephone_wav,
)

STATUS_KO = {
    "new": "접수 번호 {number} 는 담당자를 기다리고 있습니다.",
    "assigned": "접수 번호 {number} 는 담당자에게 배정되었습니다.",
    "in_progress": "접수 번호 {number} 를 처리하고 있습니다.",
    "waiting_for_caller": "접수 번호 {number} 는 고객님의 답변을 기다리고 있습니다.",
    "resolved": "접수 번호 {number} 는 해결되었습니다.",
    "closed": "접수 번호 {number} 는 종료되었습니다.",
}
STATUS_TEXTS = "\n".join(f"      status_{status}: {{ko: \"{text}\"}}"
                         for status, text in STATUS_KO.items())
REPEAT_FLOW = f"""\
name: korean-repeat
languages: [ko]
default_language: ko
numbers: ["{LINE}"]
start: lookup
nodes:
  lookup:
    type: ticket
    prompt: {{ko: "접수 번호를 입력하신 후 우물 정자를 눌러 주세요."}}
    retries: 1
    max_length: 60
    texts:
      unknown: {{ko: "해당 접수 번호를 찾을 수 없습니다."}}
{STATUS_TEXTS}
      add_message: {{ko: "메시지를 추가하려면 1번, 계속하려면 2번을 누르세요."}}
      record: {{ko: "신호음이 울린 후 말씀해 주세요."}}
      added: {{ko: "메시지가 접수 번호 {{number}} 에 추가되었습니다."}}
    on_failure: message
    next: bye
  message:
    type: voicemail
    prompt: {{ko: "신호음이 울린 후 메시지를 남겨 주세요."}}
    next: bye
  bye: {{type: hangup, text: {{ko: "감사합니다."}}}}
"""


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinServer]:
    with StandinServer(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def settings(database_url: str, redis_server: RedisServer, standin: StandinServer) -> Settings:
    """The jobs' runtime, once per module (the Korean model loads once)."""
    return configure_job_runtime(database_url, redis_server.url, standin.url)


@pytest.fixture
def line(database_url: str, redis_url: str, settings: Settings,
         standin: StandinServer) -> Iterator[Flask]:
    """The Korean line with the ticket node, wired to the stand-in."""
    from ivr import create_app

    standin.reset()
    app = create_app(app_config(
        database_url, REDIS_URL=redis_url, TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_API_BASE_URL=standin.url, SMS_FROM=LINE, CONFIGURE_RUNTIME=False))
    publish(app, REPEAT_FLOW)
    yield app
    empty_tables(app)


def _ticket(app: Flask, status: str) -> Ticket:
    with app.extensions["ivr.sessions"]() as session:
        ticket = Ticket(call_sid="CA" + "7" * 32, caller=MOBILE_CALLER, language="ko",
                        category="network", priority="P2", status=status,
                        transcription="done", transcript="VPN 연결이 안 됩니다",
                        sms_sid="SM" + "0" * 32)
        session.add(ticket)
        session.commit()
        return ticket


def _work(redis_url: str) -> None:
    SimpleWorker(list(QUEUES), connection=Redis.from_url(redis_url)).work(burst=True)


def _spoken(number: str) -> str:
    return " ".join(number)


def test_a_repeat_caller_hears_the_status_adds_a_message_and_reopens_the_ticket(
        line: Flask, standin: StandinServer, redis_url: str) -> None:
    ticket = _ticket(line, "resolved")
    phone = Phone(line.test_client(), call_sid="CA" + "8" * 32, caller=MOBILE_CALLER)
    asked = phone.dial_in()
    gather = asked.find("Gather")
    assert gather is not None and gather.attrib["finishOnKey"] == "#"
    assert said(asked) == ["접수 번호를 입력하신 후 우물 정자를 눌러 주세요."]

    heard = phone.press(ticket.number)
    assert said(heard) == [STATUS_KO["resolved"].format(number=_spoken(ticket.number)),
                           "메시지를 추가하려면 1번, 계속하려면 2번을 누르세요."]
    page = ET.tostring(heard, encoding="unicode")
    assert MOBILE_CALLER not in page and "VPN" not in page  # the status only, nothing personal
    assert f"t={ticket.number}" in phone.gather_action()

    record_twiml = phone.press("1")
    assert said(record_twiml)[0] == "신호음이 울린 후 말씀해 주세요."
    record = record_twiml.find("Record")
    assert record is not None and record.attrib["maxLength"] == "60"
    clip = shortest_clip()
    sid = recording_sid(77)
    standin.put_recording(sid, telephone_wav(clip.path))
    recording = {"RecordingSid": sid, "RecordingUrl": standin.recording_url(sid),
                 "RecordingDuration": "9"}
    thanked = phone.post(record.attrib["action"], **recording)
    assert said(thanked) == [f"메시지가 접수 번호 {_spoken(ticket.number)} 에 추가되었습니다."]
    assert thanked.find("Hangup") is not None
    phone.post(record.attrib["recordingStatusCallback"], RecordingStatus="completed",
               **recording)  # Twilio's second report of the same recording changes nothing

    with line.extensions["ivr.sessions"]() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1  # no new ticket
        voicemail = session.scalars(select(Voicemail)).one()
        assert voicemail.ticket_id == ticket.id
    _work(redis_url)

    with line.extensions["ivr.sessions"]() as session:
        stored = session.get(Ticket, ticket.id)
        assert stored is not None
        events = history(session, ticket.id)
    assert stored.status == "new"  # reopened; nobody had it
    [message] = [event for event in events if event.kind == "caller_message"]
    assert message.voicemail_id == voicemail.id and message.by == "caller"
    assert character_error_rate(clip.reference, message.detail) <= 0.4, message.detail
    assert stored.added_transcripts == message.detail
    assert stored.transcript == "VPN 연결이 안 됩니다"  # the first message stays as it was
    assert ("status", "resolved -> new: the caller added a message by phone") in [
        (event.kind, event.detail) for event in events]
    texts = standin.messages()
    assert len(texts) == 1 and texts[0].to == MOBILE_CALLER
    assert "your ticket 10001 is open again" in texts[0].body  # no Korean text: English
    assert texts[0].from_ == LINE  # from the number they called (no IVR_SMS_FROM here)

    with line.extensions["ivr.sessions"]() as session:
        create_agent(session, "ann", "correct horse battery")
        session.commit()
    web = line.test_client()
    form = web.get("/console/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    web.post("/console/sign-in", data={"username": "ann", "password": "correct horse battery",
                                       "csrf_token": token.group(1)})
    page_html = web.get(f"/console/tickets/{ticket.number}").get_data(as_text=True)
    audio_url = f"/console/tickets/{ticket.number}/messages/{voicemail.id}/audio"
    assert f'src="{audio_url}"' in page_html and "message from the caller" in page_html
    audio = web.get(audio_url)
    assert audio.status_code == 200 and audio.data.startswith(b"RIFF")
    assert audio.headers["Cache-Control"] == "private, no-store"
    assert web.get(f"/console/tickets/{ticket.number}/messages/999/audio").status_code == 404


def test_a_message_to_an_open_ticket_joins_it_without_reopening_anything(
        line: Flask, standin: StandinServer, redis_url: str) -> None:
    ticket = _ticket(line, "in_progress")
    phone = Phone(line.test_client(), call_sid="CA" + "9" * 32, caller=MOBILE_CALLER)
    phone.dial_in()
    assert said(phone.press(ticket.number))[0] == STATUS_KO["in_progress"].format(
        number=_spoken(ticket.number))
    record = phone.press("1").find("Record")
    assert record is not None
    sid = recording_sid(78)
    standin.put_recording(sid, b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28))  # no speech
    phone.post(record.attrib["recordingStatusCallback"], RecordingStatus="completed",
               RecordingSid=sid, RecordingUrl=standin.recording_url(sid),
               RecordingDuration="1")
    _work(redis_url)
    with line.extensions["ivr.sessions"]() as session:
        stored = session.get(Ticket, ticket.id)
        kinds = [(event.kind, event.detail) for event in history(session, ticket.id)]
    assert stored is not None and stored.status == "in_progress"
    [detail] = [detail for kind, detail in kinds if kind == "caller_message"]
    assert detail.startswith("(no transcript: ")  # kept even without words
    assert not [item for item in kinds if item[0] == "status"]
    assert standin.messages() == []


def test_an_unknown_number_gets_a_second_try_then_the_flow_goes_on(line: Flask) -> None:
    phone = Phone(line.test_client(), call_sid="CA" + "a" * 32, caller=MOBILE_CALLER)
    phone.dial_in()
    again = phone.press("10999")
    assert said(again) == ["해당 접수 번호를 찾을 수 없습니다.",
                           "접수 번호를 입력하신 후 우물 정자를 눌러 주세요."]
    assert "a=1" in phone.gather_action()
    on = phone.press("12")  # not even a ticket number
    assert said(on)[:2] == ["해당 접수 번호를 찾을 수 없습니다.",
                            "신호음이 울린 후 메시지를 남겨 주세요."]
    assert on.find("Record") is not None  # on_failure: the ordinary voicemail


def test_silence_is_asked_again_once_and_key_2_goes_on_without_a_message(line: Flask) -> None:
    ticket = _ticket(line, "new")
    phone = Phone(line.test_client(), call_sid="CA" + "b" * 32, caller=MOBILE_CALLER)
    phone.dial_in()
    assert said(phone.stay_silent()) == ["접수 번호를 입력하신 후 우물 정자를 눌러 주세요."]
    phone.press(ticket.number)
    done = phone.press("2")
    assert said(done) == ["감사합니다."] and done.find("Hangup") is not None
    with line.extensions["ivr.sessions"]() as session:
        assert session.scalar(select(func.count()).select_from(Voicemail)) == 0
        assert session.scalars(select(TicketEvent.kind)).all() == []  # hearing changes nothing
