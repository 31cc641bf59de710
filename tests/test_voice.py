"""The voice webhooks end to end through the Flask app, on the test PostgreSQL database."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from callbacks.calllog import Call, CallStep
from callbacks.voicemail import Voicemail
from callbacks.workqueue.callback_requests import CallbackRequest
from ivr.voice import calls as voice
from tests.conftest import PUBLIC_BASE_URL, app_config, empty_tables, publish, sign, twilio_post

BERLIN = ZoneInfo("Europe/Berlin")
OPEN = datetime(2026, 11, 25, 10, 0, tzinfo=BERLIN)  # a Wednesday morning
EVENING = datetime(2026, 11, 25, 20, 0, tzinfo=BERLIN)
CHRISTMAS = datetime(2026, 12, 25, 10, 0, tzinfo=BERLIN)  # public holiday in Germany
CHRISTMAS_EVE = datetime(2026, 12, 24, 10, 0, tzinfo=BERLIN)  # a Thursday, closed by the flow

FLOW = """\
name: test-line
languages: [en, de]
default_language: en
numbers: ["+493012345678"]
calendars:
  office:
    timezone: Europe/Berlin
    hours: {mon-fri: "08:00-18:00"}
    holidays: {country: DE, subdivision: BE}
    closed: [2026-12-24]
groups:
  desk: ["+493012345601"]
start: hello
nodes:
  hello: {type: say, text: {en: Hello, de: Hallo}, next: lang}
  lang:
    type: language
    prompt: {en: "For English press 1.", de: "Für Deutsch drücken Sie 2."}
    options: {"1": en, "2": de}
    next: office
  office: {type: hours, calendar: office, open: menu, closed: after_hours, holiday: holiday}
  after_hours: {type: say, text: {en: "We are closed.", de: "Wir sind geschlossen."}, next: vm}
  holiday: {type: say, text: {en: "Happy holidays.", de: "Frohe Feiertage."}, next: vm}
  menu:
    type: menu
    prompt: {en: "Press 1 for VPN, 2 for an agent, 3 for a callback.",
             de: "Drücken Sie 1 für VPN, 2 für einen Mitarbeiter, 3 für einen Rückruf."}
    options:
      "1": {next: vpn, label: network, keywords: {en: [vpn], de: [vpn]}}
      "2": {next: agent, label: agent}
      "3": {next: callback, label: callback}
    retries: 1
    invalid: {en: "That is not an option.", de: "Das ist keine Option."}
    no_input: {en: "I did not hear you.", de: "Ich habe Sie nicht gehört."}
    on_failure: vm
  vpn: {type: say, text: {en: "Restart the VPN client.", de: "Starten Sie den VPN-Client neu."},
        next: bye}
  agent: {type: transfer, group: desk, timeout: 20, on_no_answer: vm}
  callback: {type: callback, priority: P2, prompt: {en: "We will call you back.",
             de: "Wir rufen Sie zurück."}, next: bye}
  vm: {type: voicemail, prompt: {en: "Leave a message.", de: "Hinterlassen Sie eine Nachricht."}}
  bye: {type: hangup, text: {en: Goodbye., de: Auf Wiederhören.}}
"""

CALLER = "+442071838750"
LINE = "+493012345678"


@pytest.fixture
def make_app(database_url: str) -> Iterator[Callable[..., Flask]]:
    """Apps with extra settings (a fixed clock, say); tables are emptied afterwards."""
    from ivr import create_app

    made: list[Flask] = []

    def factory(**extra: Any) -> Flask:
        application = create_app(app_config(database_url, **extra))
        made.append(application)
        return application

    yield factory
    if made:
        empty_tables(made[0])


class Phone:
    """Drives one call through the test client the way Twilio would."""

    def __init__(self, client: FlaskClient, call_sid: str = "CA" + "1" * 32,
                 caller: str = CALLER) -> None:
        self.client = client
        self.call_sid = call_sid
        self.caller = caller
        self.twiml: ET.Element | None = None

    def params(self, **extra: str) -> dict[str, str]:
        base = {"CallSid": self.call_sid, "AccountSid": "AC" + "0" * 32, "From": self.caller,
                "To": LINE, "CallStatus": "in-progress", "Direction": "inbound"}
        base.update(extra)
        return base

    def post(self, path: str, **extra: str) -> ET.Element:
        response = twilio_post(self.client, path, self.params(**extra))
        assert response.status_code == 200, response.data
        assert response.mimetype == "text/xml"
        self.twiml = ET.fromstring(response.data)
        assert self.twiml.tag == "Response"
        return self.twiml

    def dial_in(self) -> ET.Element:
        return self.post("/voice")

    def gather_action(self) -> str:
        assert self.twiml is not None
        gather = self.twiml.find("Gather")
        assert gather is not None, ET.tostring(self.twiml)
        return gather.attrib["action"]

    def press(self, digits: str) -> ET.Element:
        return self.post(self.gather_action(), Digits=digits)

    def say(self, words: str) -> ET.Element:
        return self.post(self.gather_action(), SpeechResult=words, Confidence="0.9")

    def stay_silent(self) -> ET.Element:
        assert self.twiml is not None
        redirect = self.twiml.find("Redirect")
        assert redirect is not None and redirect.text
        return self.post(redirect.text)


def said(twiml: ET.Element) -> list[str]:
    """Every sentence the caller hears, in order, including inside <Gather>."""
    return [el.text or "" for el in twiml.iter("Say")]


def languages(twiml: ET.Element) -> list[str]:
    return [el.attrib.get("language", "") for el in twiml.iter("Say")]


@pytest.fixture
def open_app(make_app: Callable[..., Flask]) -> Flask:
    application = make_app(CLOCK=lambda: OPEN)
    publish(application, FLOW)
    return application


def count(application: Flask, model: Any) -> int:
    with application.extensions["ivr.sessions"]() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_call_walks_the_menu_and_is_logged(open_app: Flask) -> None:
    phone = Phone(open_app.test_client())
    twiml = phone.dial_in()
    assert said(twiml) == ["Hello", "For English press 1.", "Für Deutsch drücken Sie 2."]
    assert languages(twiml)[1:] == ["en-US", "de-DE"]
    twiml = phone.press("1")
    assert said(twiml) == ["Press 1 for VPN, 2 for an agent, 3 for a callback."]
    twiml = phone.press("1")
    assert said(twiml) == ["Restart the VPN client.", "Goodbye."]
    assert twiml.find("Hangup") is not None

    with open_app.extensions["ivr.sessions"]() as session:
        call = session.scalar(select(Call))
        assert call is not None
        assert (call.call_sid, call.caller, call.called) == (phone.call_sid, CALLER, LINE)
        assert call.language == "en" and call.outcome == "hangup" and call.last_node == "bye"
        steps = session.scalars(select(CallStep).order_by(CallStep.seq)).all()
        assert [(s.seq, s.event, s.node, s.input) for s in steps] == [
            (0, "start", "hello", None),
            (1, "input", "lang", "1"),
            (2, "input", "menu", "1"),
        ]
        assert steps[2].path == "vpn bye"


def test_speech_reaches_the_branch(open_app: Flask) -> None:
    phone = Phone(open_app.test_client())
    phone.dial_in()
    phone.press("1")
    assert said(phone.say("my VPN is broken"))[0] == "Restart the VPN client."


def test_over_long_input_is_stored_cut_with_a_note_and_the_call_goes_on(open_app: Flask) -> None:
    phone = Phone(open_app.test_client(), caller="+44" + "2" * 5000)
    phone.dial_in()
    phone.press("1")
    phone.press("1" * 10_000)  # an invalid option: the menu asks again
    twiml = phone.say("my VPN is broken " + "x" * 200_000)
    assert said(twiml)[0] == "Restart the VPN client."  # the words that were kept still route
    with open_app.extensions["ivr.sessions"]() as session:
        call = session.scalar(select(Call))
        assert call is not None and len(call.caller) <= 64 and len(call.called) <= 64
        inputs = [step.input for step in session.scalars(
            select(CallStep).order_by(CallStep.seq)) if step.input]
    assert inputs[0] == "1"
    assert inputs[1] == "1" * 64 + " [cut: 10000 characters received, 64 kept]"
    assert inputs[2].startswith("speech:my VPN is broken xxx")
    assert inputs[2].endswith(" [cut: 200017 characters received, 1000 kept]")
    assert len(inputs[2]) < 1100


def test_german_caller_hears_german(open_app: Flask) -> None:
    phone = Phone(open_app.test_client())
    phone.dial_in()
    twiml = phone.press("2")
    assert said(twiml) == [
        "Drücken Sie 1 für VPN, 2 für einen Mitarbeiter, 3 für einen Rückruf."
    ]
    assert languages(twiml) == ["de-DE"]
    assert "l=de" in phone.gather_action()


def test_unknown_digit_then_silence_uses_up_retries(open_app: Flask) -> None:
    phone = Phone(open_app.test_client())
    phone.dial_in()
    phone.press("1")
    twiml = phone.press("7")
    assert said(twiml) == ["That is not an option.",
                           "Press 1 for VPN, 2 for an agent, 3 for a callback."]
    assert "a=1" in phone.gather_action()
    twiml = phone.stay_silent()
    assert said(twiml)[:2] == ["I did not hear you.", "Leave a message."]
    assert twiml.find("Record") is not None


def test_invalid_or_missing_signature_is_refused_and_writes_nothing(open_app: Flask) -> None:
    client = open_app.test_client()
    params = Phone(client).params()
    forged = client.post("/voice", data=params,
                         headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + "/voice",
                                                             params, token="wrong-token")})
    missing = client.post("/voice", data=params)
    tampered = dict(params, From="+15550001111")
    replayed = client.post("/voice", data=tampered,
                           headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + "/voice",
                                                               params)})
    other_url = client.post("/voice/status", data=params,
                            headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + "/voice",
                                                                params)})
    for response in (forged, missing, replayed, other_url):
        assert response.status_code == 403
    assert count(open_app, Call) == 0
    assert count(open_app, CallStep) == 0


def test_signature_is_checked_against_the_public_url_behind_a_proxy(open_app: Flask) -> None:
    client = open_app.test_client()
    phone = Phone(client)
    params = phone.params()
    # The proxy forwards to http://10.0.0.5:8000 with its own Host; Twilio signed the public URL.
    response = client.post("/voice", data=params, base_url="http://10.0.0.5:8000",
                           headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + "/voice",
                                                               params)})
    assert response.status_code == 200
    signed_for_internal = client.post(
        "/voice", data=params, base_url="http://10.0.0.5:8000",
        headers={"X-Twilio-Signature": sign("http://10.0.0.5:8000/voice", params)})
    assert signed_for_internal.status_code == 403


def test_signature_check_covers_the_query_string(open_app: Flask) -> None:
    phone = Phone(open_app.test_client())
    phone.dial_in()
    action = phone.gather_action()
    params = phone.params(Digits="1")
    tampered = action.replace("n=lang", "n=menu")
    response = phone.client.post(tampered, data=params,
                                 headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + action,
                                                                     params)})
    assert response.status_code == 403


def test_signature_check_can_be_turned_off_for_development(
        make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture) -> None:
    application = make_app(VALIDATE_SIGNATURE=False, CLOCK=lambda: OPEN)
    assert "signature checking is OFF" in caplog.text
    publish(application, FLOW)
    response = application.test_client().post("/voice", data=Phone(None).params())  # type: ignore[arg-type]
    assert response.status_code == 200


def test_an_engine_exception_still_answers_with_an_apology_and_voicemail(
        open_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from routing import engine

    phone = Phone(open_app.test_client())
    phone.dial_in()

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(engine, "advance", broken)
    twiml = phone.press("2")
    assert said(twiml)[0].startswith("We are sorry")
    record = twiml.find("Record")
    assert record is not None
    assert record.attrib["recordingStatusCallback"].startswith("/voice/recording?")


def test_a_tampered_position_gets_an_apology_in_the_callers_language(open_app: Flask) -> None:
    phone = Phone(open_app.test_client())
    phone.dial_in()
    twiml = phone.post("/voice/step?v=1&n=no_such_node&l=de&a=0&s=1", Digits="1")
    assert said(twiml)[0].startswith("Es tut uns leid")
    assert twiml.find("Record") is not None


def test_no_published_flow_still_answers(make_app: Callable[..., Flask]) -> None:
    application = make_app()
    phone = Phone(application.test_client(), caller="+48221234567")
    twiml = phone.dial_in()
    assert said(twiml)[0].startswith("Przepraszamy")  # a Polish number hears Polish
    assert twiml.find("Record") is not None


def test_the_fallback_url_offers_voicemail(open_app: Flask) -> None:
    twiml = Phone(open_app.test_client(), caller="+74951234567").post("/voice/fallback")
    assert said(twiml)[0].startswith("Извините")
    assert twiml.find("Record") is not None


def test_apology_voicemail_is_stored(open_app: Flask) -> None:
    phone = Phone(open_app.test_client())
    twiml = phone.post("/voice/fallback")
    record = twiml.find("Record")
    assert record is not None
    recording = {"RecordingSid": "RE" + "a" * 32, "RecordingUrl": "https://api.twilio.com/x",
                 "RecordingDuration": "7"}
    saved = phone.post(record.attrib["action"], **recording)
    assert said(saved) == ["Your ticket number is 1 0 0 0 1. I repeat: 1 0 0 0 1. "
                           "Thank you. Your message has been saved. Goodbye."]
    phone.post(record.attrib["recordingStatusCallback"], RecordingStatus="completed", **recording)
    assert count(open_app, Voicemail) == 1


def test_duplicate_webhooks_duplicate_nothing(open_app: Flask) -> None:
    phone = Phone(open_app.test_client())
    first = ET.tostring(phone.dial_in())
    again = ET.tostring(phone.dial_in())
    assert first == again
    action = phone.gather_action()
    a = ET.tostring(phone.post(action, Digits="1"))
    b = ET.tostring(phone.post(action, Digits="1"))
    assert a == b
    assert count(open_app, Call) == 1
    assert count(open_app, CallStep) == 2


def test_the_same_status_callback_twice_is_applied_once(open_app: Flask) -> None:
    phone = Phone(open_app.test_client())
    phone.dial_in()
    for _ in range(2):
        twiml = phone.post("/voice/status", CallStatus="completed", CallDuration="42")
        assert list(twiml) == []
    # A late, out-of-order "ringing" must not reopen the call.
    phone.post("/voice/status", CallStatus="ringing")
    with open_app.extensions["ivr.sessions"]() as session:
        calls = session.scalars(select(Call)).all()
        assert len(calls) == 1
        assert calls[0].status == "completed" and calls[0].duration_seconds == 42
        assert calls[0].outcome == "abandoned"  # hung up in the menu
        assert calls[0].ended_at is not None


def _drops_its_connection_once(monkeypatch: pytest.MonkeyPatch, module: Any,
                               name: str) -> list[str]:
    """Make `module.name(session, ...)` lose its PostgreSQL connection the first time: the
    server ends the backend under the open transaction, as a restart or failover does."""
    real = getattr(module, name)
    calls: list[str] = []

    def dropping(session: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        if len(calls) == 1:
            session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return real(session, *args, **kwargs)

    monkeypatch.setattr(module, name, dropping)
    return calls


def test_a_status_callback_survives_a_dropped_database_connection(
        open_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twilio does not send a status callback again: it is applied on a new connection."""
    phone = Phone(open_app.test_client())
    phone.dial_in()
    calls = _drops_its_connection_once(monkeypatch, voice, "record_status")
    assert list(phone.post("/voice/status", CallStatus="completed", CallDuration="42")) == []
    assert calls == ["record_status", "record_status"]
    with open_app.extensions["ivr.sessions"]() as session:
        call = session.scalars(select(Call)).one()
        assert (call.status, call.duration_seconds) == ("completed", 42)


def test_a_recording_survives_a_dropped_database_connection(
        open_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller who just left a message hears their ticket number, not the apology."""
    phone = Phone(open_app.test_client())
    record = phone.post("/voice/fallback").find("Record")
    assert record is not None
    calls = _drops_its_connection_once(monkeypatch, voice, "store_recording")
    saved = phone.post(record.attrib["action"], RecordingSid="RE" + "c" * 32,
                       RecordingUrl="https://api.twilio.com/x", RecordingDuration="7")
    assert calls == ["store_recording", "store_recording"]
    assert said(saved)[0].startswith("Your ticket number is 1 0 0 0 1.")
    assert count(open_app, Voicemail) == 1


def test_a_flow_published_during_a_call_does_not_change_it(open_app: Flask) -> None:
    old_call = Phone(open_app.test_client(), call_sid="CA" + "2" * 32)
    old_call.dial_in()
    old_call.press("1")
    publish(open_app, FLOW.replace("Restart the VPN client.", "Reconnect to the new VPN."))
    assert said(old_call.press("1"))[0] == "Restart the VPN client."
    new_call = Phone(open_app.test_client(), call_sid="CA" + "3" * 32)
    new_call.dial_in()
    new_call.press("1")
    assert said(new_call.press("1"))[0] == "Reconnect to the new VPN."
    with open_app.extensions["ivr.sessions"]() as session:
        versions = dict(session.execute(select(Call.call_sid, Call.flow_version_id)).all())
    assert versions == {old_call.call_sid: 1, new_call.call_sid: 2}


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (OPEN, "Press 1 for VPN, 2 for an agent, 3 for a callback."),
        (EVENING, "We are closed."),
        (datetime(2026, 11, 28, 10, 0, tzinfo=BERLIN), "We are closed."),  # Saturday
        (CHRISTMAS, "Happy holidays."),
        (CHRISTMAS_EVE, "Happy holidays."),  # an extra closed date of the calendar
    ],
)
def test_business_hours_route_the_call(make_app: Callable[..., Flask], moment: datetime,
                                       expected: str) -> None:
    application = make_app(CLOCK=lambda: moment)
    publish(application, FLOW)
    phone = Phone(application.test_client())
    phone.dial_in()
    twiml = phone.press("1")
    assert said(twiml)[0] == expected
    if expected != said(twiml)[-1]:
        assert twiml.find("Record") is not None or twiml.find("Gather") is not None


def test_transfer_to_an_agent_and_no_answer_falls_back_to_voicemail(open_app: Flask) -> None:
    phone = Phone(open_app.test_client())
    phone.dial_in()
    phone.press("1")
    twiml = phone.press("2")
    dial = twiml.find("Dial")
    assert dial is not None
    assert [n.text for n in dial.iter("Number")] == ["+493012345601"]
    twiml = phone.post(dial.attrib["action"], DialCallStatus="no-answer")
    assert said(twiml)[0] == "Leave a message."
    record = twiml.find("Record")
    assert record is not None
    recording = {"RecordingSid": "RE" + "b" * 32,
                 "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE",
                 "RecordingDuration": "12"}
    done = phone.post(record.attrib["action"], **recording)
    assert said(done) == ["Your ticket number is 1 0 0 0 1. I repeat: 1 0 0 0 1.",
                          "Thank you. Your message has been saved. Goodbye."]
    phone.post(record.attrib["recordingStatusCallback"], RecordingStatus="completed", **recording)
    phone.post(record.attrib["recordingStatusCallback"], RecordingStatus="completed", **recording)
    with open_app.extensions["ivr.sessions"]() as session:
        voicemails = session.scalars(select(Voicemail)).all()
        assert len(voicemails) == 1
        assert (voicemails[0].node, voicemails[0].language, voicemails[0].duration_seconds) == (
            "vm", "en", 12)
        call = session.scalar(select(Call))
        assert call is not None and call.outcome == "voicemail"


def test_a_callback_request_is_confirmed_and_logged(open_app: Flask) -> None:
    phone = Phone(open_app.test_client())
    phone.dial_in()
    phone.press("1")
    phone.press("3")  # the callback: when?
    phone.press("1")  # as soon as possible; then: is it this number?
    confirm_action = phone.gather_action()
    twiml = phone.press("1")
    assert said(twiml) == [
        "We will call you back.",
        "You are number 1 in line. We will call you back by 11 a.m. at the latest.",
        "Your ticket number is 1 0 0 0 1. I repeat: 1 0 0 0 1.",
        "Goodbye.",
    ]
    phone.post(confirm_action, Digits="1")  # Twilio again: still one request, one contact
    with open_app.extensions["ivr.sessions"]() as session:
        call = session.scalar(select(Call))
        assert call is not None and call.outcome == "callback"
        request = session.scalars(select(CallbackRequest)).one()
        assert (request.caller, request.priority, request.contacts) == (CALLER, "P2", 1)
        assert (request.dial_number, request.window) == ("", "asap")
        assert request.due_at == OPEN + timedelta(hours=1)  # P2: one hour, desk open
        assert request.available_at == OPEN
        assert "menu: P2" in request.reasons


def test_a_withheld_number_keys_in_the_number_to_call(open_app: Flask) -> None:
    phone = Phone(open_app.test_client(), caller="anonymous")
    phone.dial_in()
    phone.press("1")
    phone.press("3")
    twiml = phone.press("1")
    assert said(twiml) == ["Please enter the number we should call, with the area code, and "
                           "finish with the hash key."]
    assert said(phone.press("0301234567"))[0] == "We will call you back."
    with open_app.extensions["ivr.sessions"]() as session:
        request = session.scalars(select(CallbackRequest)).one()
        assert (request.caller, request.dial_number) == ("+49301234567", "+49301234567")


@pytest.mark.parametrize(
    ("key", "locale", "menu_start", "closed_start"),
    [
        ("1", "en-US", "For a password reset", "The IT Service Desk"),
        ("2", "de-DE", "Für ein neues Passwort", "Der IT-Service-Desk"),
        ("3", "pl-PL", "W sprawie", "IT Service Desk"),
        ("4", "ru-RU", "Чтобы сбросить пароль", "IT Service Desk"),
    ],
)
def test_each_language_of_the_demo_flow_reaches_its_prompts(
        make_app: Callable[..., Flask], key: str, locale: str, menu_start: str,
        closed_start: str) -> None:
    from tests.conftest import DEMO_FLOW

    for moment in (OPEN, EVENING):
        application = make_app(CLOCK=lambda moment=moment: moment)
        if moment is OPEN:
            publish(application, DEMO_FLOW)
        phone = Phone(application.test_client(), call_sid=f"CA{key}{moment.hour:02d}" + "0" * 29)
        phone.dial_in()
        twiml = phone.press(key)
        assert set(languages(twiml)) == {locale}, said(twiml)
        first_say = twiml.find(".//Say")
        assert first_say is not None and first_say.attrib["voice"].startswith("Polly.")
        if moment is OPEN:
            assert said(twiml)[0].startswith(menu_start), said(twiml)
            gather = twiml.find("Gather")
            assert gather is not None and gather.attrib["language"] == locale
        else:  # the after-hours menu: 9 rings the engineer on call, else a voicemail
            assert twiml.find("Gather") is not None
            assert closed_start in said(twiml)[0], said(twiml)


def test_a_signed_request_without_a_call_sid_is_refused(open_app: Flask) -> None:
    for path in ("/voice", "/voice/status", "/voice/recording?l=en&n=vm"):
        params = {"From": CALLER, "To": LINE}
        assert twilio_post(open_app.test_client(), path, params).status_code == 400
    assert count(open_app, Call) == 0
