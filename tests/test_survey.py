"""The satisfaction survey: by keypad after a transfer, by SMS reply after a resolution or a
callback. Real PostgreSQL, Redis, rq and the Twilio stand-in; webhooks signed like Twilio's."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import func, select, update

from callbacks.db import utcnow
from callbacks.desk import resolve_ticket
from callbacks.queues import QUEUES
from callbacks.sms import sms_texts
from callbacks.survey import (
    KEYPAD_QUESTIONS,
    KEYPAD_TEXTS,
    SurveyAnswer,
    SurveyInvitation,
    SurveyPolicy,
    parse_score,
)
from callbacks.tickets.ticket import Ticket
from callbacks.workqueue.agents import Agent, create_agent
from callbacks.workqueue.callback_requests import CallbackAsk, request_callback
from callbacks.workqueue.router import route_agent
from callbacks.workqueue.skills import set_skills
from ivr.simulator.outbound import play_outbound_call
from ivr.standin import StandinServer
from tests.conftest import AUTH_TOKEN, LINE, PUBLIC_BASE_URL, desk_app, publish, sign, twilio_post
from tests.test_voice import FLOW, OPEN, Phone, said
from tests.voicemail_helpers import MOBILE_CALLER

DESK_PHONE = "+493012345601"
"""The test flow's only agent number: a transfer there is answered by that agent."""
POLISH_MOBILE = "+48512345678"
LANGUAGES = ("en", "de", "pl", "ru")
SURVEY_SMS_TEXTS = ("survey_question", "survey_after_call", "survey_thanks", "survey_help")


@pytest.fixture
def line(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    """The app answering the test flow during office hours, texting through the stand-in."""
    with desk_app(database_url, redis_url, standin, CLOCK=lambda: OPEN) as app:
        publish(app, FLOW)
        yield app


def _agent(app: Flask, name: str = "ana", phone: str = DESK_PHONE) -> int:
    with app.extensions["ivr.sessions"]() as session:
        agent = create_agent(session, name, "correct horse battery", phone=phone,
                             display_name=name.title())
        agent.availability = "available"
        set_skills(session, agent.id, languages={"en": 2, "de": 2, "pl": 2, "ru": 2})
        session.commit()
        return agent.id


def _ticket(app: Flask, caller: str = MOBILE_CALLER, language: str = "en",
            call_sid: str = "CA" + "9" * 32, category: str = "vpn") -> int:
    with app.extensions["ivr.sessions"]() as session:
        ticket = Ticket(call_sid=call_sid, caller=caller, language=language, category=category,
                        priority="P3", status="new", transcription="none")
        session.add(ticket)
        session.commit()
        return ticket.id


def _answers(app: Flask) -> list[SurveyAnswer]:
    with app.extensions["ivr.sessions"]() as session:
        return list(session.scalars(select(SurveyAnswer).order_by(SurveyAnswer.id)))


def _count(app: Flask, model: type) -> int:
    with app.extensions["ivr.sessions"]() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _talked_to_agent(app: Flask, call_sid: str = "CA" + "1" * 32) -> Phone:
    """A caller who chose English, asked for an agent and talked; the line speaks again."""
    phone = Phone(app.test_client(), call_sid=call_sid)
    phone.dial_in()
    phone.press("1")
    twiml = phone.press("2")
    dial = twiml.find("Dial")
    assert dial is not None and [n.text for n in dial.iter("Number")] == [DESK_PHONE]
    phone.post(dial.attrib["action"], DialCallStatus="completed", DialCallDuration="184",
               DialCallSid="CA" + "d" * 32)
    return phone


def _hung_up(twiml: ET.Element) -> bool:
    return twiml.find("Hangup") is not None and twiml.find("Gather") is None


# --- keypad ---------------------------------------------------------------------------


def test_after_a_transfer_the_caller_rates_it_by_keypad(line: Flask) -> None:
    agent_id = _agent(line)
    phone = _talked_to_agent(line)
    assert phone.twiml is not None
    gather = phone.twiml.find("Gather")
    assert gather is not None
    assert (gather.attrib["numDigits"], gather.attrib["input"]) == ("1", "dtmf")
    assert gather.attrib["action"].startswith("/voice/survey?")
    assert said(phone.twiml) == [
        "Thank you for calling. One short question before you go. How satisfied are you "
        "with the help you got? Press 1 for not at all, up to 5 for very satisfied."]

    second = phone.press("4")
    assert said(second) == ["Was your problem solved? Press 1 for not at all, up to 5 for "
                            "completely."]
    done = phone.press("5")
    assert said(done) == ["Thank you for your feedback. Goodbye."] and _hung_up(done)

    answers = _answers(line)
    assert [(a.question, a.score, a.channel) for a in answers] == [
        ("overall", 4, "keypad"), ("resolved", 5, "keypad")]
    first = answers[0]
    assert first.agent_id == agent_id and first.ticket_id is None
    assert (first.call_sid, first.language, first.category) == (phone.call_sid, "en", "agent")


def test_a_keypad_answer_attaches_to_the_calls_ticket(line: Flask) -> None:
    ticket_id = _ticket(line, call_sid="CA" + "2" * 32, category="password")
    phone = _talked_to_agent(line, call_sid="CA" + "2" * 32)
    phone.press("3")
    [answer] = _answers(line)
    assert (answer.ticket_id, answer.category, answer.agent_id) == (ticket_id, "password", None)


def test_a_german_caller_is_asked_in_german(line: Flask) -> None:
    phone = Phone(line.test_client(), call_sid="CA" + "3" * 32)
    phone.dial_in()
    phone.press("2")  # Deutsch
    dial = phone.press("2").find("Dial")
    assert dial is not None
    twiml = phone.post(dial.attrib["action"], DialCallStatus="completed")
    assert said(twiml)[0].startswith("Vielen Dank für Ihren Anruf.")
    assert {el.attrib["language"] for el in twiml.iter("Say")} == {"de-DE"}
    assert said(phone.press("1"))[0].startswith("Wurde Ihr Problem gelöst?")
    assert _answers(line)[0].language == "de"


def test_a_wrong_key_is_asked_again_once_then_the_call_ends(line: Flask) -> None:
    phone = _talked_to_agent(line)
    again = phone.press("9")
    assert said(again)[0].startswith("Please press a key from 1 to 5. How satisfied")
    assert "a=1" in phone.gather_action()
    ended = phone.press("0")
    assert said(ended) == ["Thank you for calling. Goodbye."] and _hung_up(ended)
    assert _answers(line) == []


def test_a_wrong_key_then_a_right_one_counts(line: Flask) -> None:
    phone = _talked_to_agent(line)
    phone.press("#")
    phone.press("2")
    assert [(a.question, a.score) for a in _answers(line)] == [("overall", 2)]


def test_silence_ends_the_call_politely(line: Flask) -> None:
    phone = _talked_to_agent(line)
    ended = phone.stay_silent()
    assert said(ended) == ["Thank you for calling. Goodbye."] and _hung_up(ended)
    assert _answers(line) == []
    # silence on the second question keeps the first answer
    phone = _talked_to_agent(line, call_sid="CA" + "4" * 32)
    phone.press("5")
    assert _hung_up(phone.stay_silent())
    assert [(a.question, a.score) for a in _answers(line)] == [("overall", 5)]


def test_a_repeated_webhook_counts_once(line: Flask) -> None:
    phone = _talked_to_agent(line)
    action = phone.gather_action()
    first = phone.post(action, Digits="4")
    again = phone.post(action, Digits="4")
    changed = phone.post(action, Digits="1")  # a late retry with other keys changes nothing
    assert said(first) == said(again) == said(changed)
    assert [(a.question, a.score) for a in _answers(line)] == [("overall", 4)]


def test_a_forged_survey_post_is_refused_and_writes_nothing(line: Flask) -> None:
    phone = _talked_to_agent(line)
    action = phone.gather_action()
    params = phone.params(Digits="5")
    forged = sign(PUBLIC_BASE_URL + action, params, token="not-the-token")
    client = line.test_client()
    assert client.post(action, data=params, headers={"X-Twilio-Signature": forged}
                       ).status_code == 403
    assert client.post(action, data=params).status_code == 403
    assert _answers(line) == []


def test_a_tampered_question_ends_politely(line: Flask) -> None:
    phone = _talked_to_agent(line)
    action = phone.gather_action().replace("q=overall", "q=salary")
    ended = phone.post(action, Digits="5")
    assert said(ended) == ["Thank you for calling. Goodbye."] and _hung_up(ended)
    assert _answers(line) == []


@pytest.mark.parametrize(("setting", "asked"), [
    (False, False), ("false", False), ("other-line", False), ("test-line,other-line", True),
    (True, True),
])
def test_the_keypad_survey_is_configurable(database_url: str, redis_url: str,
                                           standin: StandinServer, setting: object,
                                           asked: bool) -> None:
    with desk_app(database_url, redis_url, standin, CLOCK=lambda: OPEN, SURVEY=setting) as app:
        publish(app, FLOW)
        phone = _talked_to_agent(app)
        assert phone.twiml is not None
        assert (phone.twiml.find("Gather") is not None) is asked
        if not asked:
            assert _hung_up(phone.twiml) and said(phone.twiml) == []


def test_an_unanswered_transfer_still_goes_to_voicemail(line: Flask) -> None:
    phone = Phone(line.test_client())
    phone.dial_in()
    phone.press("1")
    dial = phone.press("2").find("Dial")
    assert dial is not None
    twiml = phone.post(dial.attrib["action"], DialCallStatus="no-answer")
    assert said(twiml)[0] == "Leave a message." and twiml.find("Record") is not None


# --- SMS --------------------------------------------------------------------------------


def _work(redis_url: str) -> None:
    SimpleWorker(list(QUEUES), connection=Redis.from_url(redis_url)).work(burst=True)


def _reply(client: FlaskClient, body: str, sid: str, caller: str = MOBILE_CALLER) -> ET.Element:
    params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": "AC" + "7" * 32,
              "From": caller, "To": LINE, "Body": body, "NumMedia": "0"}
    response = twilio_post(client, "/sms", params)
    assert response.status_code == 200 and response.mimetype == "text/xml", response.data
    return ET.fromstring(response.data)


def _texts(twiml: ET.Element) -> list[str]:
    return [el.text or "" for el in twiml.iter("Message")]


def _resolve(app: Flask, ticket_id: int, agent_id: int, note: str = "VPN profile renewed.") -> None:
    with app.extensions["ivr.sessions"]() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        resolve_ticket(session, ticket_id, note, agent)


def test_a_resolved_ticket_asks_by_sms_and_the_reply_is_kept(line: Flask, standin: StandinServer,
                                                              redis_url: str) -> None:
    agent_id = _agent(line)
    ticket_id = _ticket(line)
    _resolve(line, ticket_id, agent_id)
    _work(redis_url)
    [sms] = standin.messages()
    assert sms.to == MOBILE_CALLER
    assert sms.body == ("IT Service Desk: your ticket 10001 is resolved. VPN profile renewed. "
                        "How satisfied are you with the help you got? Reply with a number from "
                        "1 (not at all) to 5 (very).")

    thanks = _reply(line.test_client(), "4", "SM" + "1" * 32)
    assert _texts(thanks) == ["IT Service Desk: thank you for your feedback."]
    [answer] = _answers(line)
    assert (answer.channel, answer.question, answer.score) == ("sms", "overall", 4)
    assert (answer.ticket_id, answer.agent_id, answer.category) == (ticket_id, agent_id, "vpn")
    assert answer.message_sid == "SM" + "1" * 32 and answer.subject == f"ticket:{ticket_id}"


def test_a_completed_callback_asks_by_sms(line: Flask, standin: StandinServer,
                                          redis_url: str) -> None:
    agent_id = _agent(line, phone="+4930555010")
    ticket_id = _ticket(line, language="pl", caller=POLISH_MOBILE)
    with line.extensions["ivr.sessions"]() as session:
        request_callback(session, CallbackAsk(
            caller=POLISH_MOBILE, category="vpn", language="pl", priority="P2", reasons="menu",
            call_sid="CA" + "9" * 32, due_at=utcnow() + timedelta(hours=1),
            available_at=utcnow(), ticket_id=ticket_id), {"P1": 0, "P2": 1, "P3": 2})
        session.commit()
    assert route_agent(agent_id)["assigned"] == "callback"
    client = line.test_client()

    def post(url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        response = client.post(url.removeprefix(PUBLIC_BASE_URL), data=params, headers=headers)
        return response.status_code, response.get_data(as_text=True)

    play_outbound_call(standin.calls()[0], AUTH_TOKEN, caller="completed", post=post)
    _work(redis_url)
    [sms] = standin.messages()
    assert sms.to == POLISH_MOBILE
    assert sms.body.startswith("IT Service Desk: dziękujemy za rozmowę w sprawie zgłoszenia "
                               "10001. Jak bardzo")

    thanks = _reply(client, " 5 dzięki ", "SM" + "2" * 32, caller=POLISH_MOBILE)
    assert _texts(thanks) == ["IT Service Desk: dziękujemy za opinię."]
    [answer] = _answers(line)
    assert (answer.score, answer.agent_id, answer.ticket_id, answer.language) == (
        5, agent_id, ticket_id, "pl")

    # One survey per ticket: resolving it later sends the resolution without the question.
    _resolve(line, ticket_id, agent_id, note="Gotowe.")
    _work(redis_url)
    assert standin.messages()[-1].body == ("IT Service Desk: zgłoszenie 10001 zostało "
                                           "rozwiązane. Gotowe.")
    assert _count(line, SurveyInvitation) == 1


def test_a_forged_sms_is_refused_and_writes_nothing(line: Flask, redis_url: str) -> None:
    _resolve(line, _ticket(line), _agent(line))
    _work(redis_url)
    client = line.test_client()
    params = {"MessageSid": "SM" + "3" * 32, "From": MOBILE_CALLER, "To": LINE, "Body": "1"}
    forged = sign(PUBLIC_BASE_URL + "/sms", params, token="not-the-token")
    assert client.post("/sms", data=params, headers={"X-Twilio-Signature": forged}
                       ).status_code == 403
    assert client.post("/sms", data=params).status_code == 403
    assert _answers(line) == []
    response = client.post("/sms", data=params)
    assert "Set-Cookie" not in response.headers  # a webhook: no session cookie


def test_a_reply_without_a_survey_gets_no_answer(line: Flask) -> None:
    twiml = _reply(line.test_client(), "5", "SM" + "4" * 32)
    assert twiml.tag == "Response" and list(twiml) == []
    assert _answers(line) == []


def test_anything_but_a_score_gets_a_hint(line: Flask, redis_url: str) -> None:
    _resolve(line, _ticket(line, language="de"), _agent(line))
    _work(redis_url)
    client = line.test_client()
    for body in ("great, thanks", "45", "0", "", "10"):
        assert _texts(_reply(client, body, f"SM{body!s:x>32}"[:34])) == [
            sms_texts().texts["survey_help"]["de"]], body
    assert list(_reply(client, "STOP", "SM" + "5" * 32)) == []  # Twilio handles opt-outs
    assert _answers(line) == []


def test_a_repeated_message_or_a_second_reply_counts_once(line: Flask, redis_url: str) -> None:
    _resolve(line, _ticket(line), _agent(line))
    _work(redis_url)
    client = line.test_client()
    first = _reply(client, "2", "SM" + "6" * 32)
    again = _reply(client, "2", "SM" + "6" * 32)
    later = _reply(client, "5", "SM" + "7" * 32)  # the first answer counts
    assert _texts(first) == _texts(again) == _texts(later)
    assert [(a.score, a.message_sid) for a in _answers(line)] == [(2, "SM" + "6" * 32)]


def test_a_second_reply_is_told_apart_from_the_first(line: Flask, redis_url: str) -> None:
    from callbacks.survey import answer_by_sms

    _resolve(line, _ticket(line), _agent(line))
    _work(redis_url)
    with line.extensions["ivr.sessions"]() as session:
        first = answer_by_sms(session, MOBILE_CALLER, "4", "SM" + "a" * 32)
        session.commit()
        second = answer_by_sms(session, MOBILE_CALLER, "1", "SM" + "b" * 32)
        session.commit()
    assert (first.outcome, second.outcome) == ("recorded", "repeated")


def test_a_reply_after_seven_days_is_not_counted(line: Flask, redis_url: str) -> None:
    _resolve(line, _ticket(line), _agent(line))
    _work(redis_url)
    with line.extensions["ivr.sessions"]() as session:
        session.execute(update(SurveyInvitation).values(sent_at=utcnow() - timedelta(days=8)))
        session.commit()
    assert list(_reply(line.test_client(), "3", "SM" + "8" * 32)) == []
    assert _answers(line) == []


def test_surveys_can_be_turned_off(database_url: str, redis_url: str,
                                   standin: StandinServer) -> None:
    with desk_app(database_url, redis_url, standin, SURVEY=False) as app:
        _resolve(app, _ticket(app), _agent(app), note="Done.")
        _work(redis_url)
        assert [m.body for m in standin.messages()] == [
            "IT Service Desk: your ticket 10001 is resolved. Done."]
        assert _count(app, SurveyInvitation) == 0


# --- texts and parsing ------------------------------------------------------------------


def test_every_survey_text_exists_in_each_language() -> None:
    for name in (*KEYPAD_QUESTIONS, "intro", "invalid", "thanks", "goodbye"):
        texts = KEYPAD_TEXTS[name]
        assert all(texts.get(language) for language in LANGUAGES), name
        assert len({texts[language] for language in LANGUAGES}) == len(LANGUAGES), name
    for name in SURVEY_SMS_TEXTS:
        texts = sms_texts().texts[name]
        assert all(texts.get(language) for language in LANGUAGES), name
        assert len({texts[language] for language in LANGUAGES}) == len(LANGUAGES), name


@pytest.mark.parametrize(("text", "score"), [
    ("1", 1), ("5", 5), (" 5 ", 5), ("4 thanks", 4), ("3.", 3), ("0", None), ("6", None),
    ("45", None), ("10", None), ("", None), ("five", None), ("#", None),
])
def test_scores_are_read_from_the_start_of_a_reply(text: str, score: int | None) -> None:
    assert parse_score(text) == score


def test_the_survey_setting_reads_switches_and_flow_names() -> None:
    assert SurveyPolicy.from_setting(True).keypad_for("any")
    assert not SurveyPolicy.from_setting("off").enabled
    assert not SurveyPolicy.from_setting(0).enabled
    some = SurveyPolicy.from_setting("it-support, sales")
    assert some.enabled and some.keypad_for("sales") and not some.keypad_for("other")
    assert SurveyPolicy.from_setting(["it-support"]).keypad_for("it-support")
