"""Callback requests from the IVR: the dialog, its texts and windows, validation, webhooks."""

from __future__ import annotations

import textwrap
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import select
from werkzeug.serving import make_server

from callbacks.calllog import Call
from callbacks.queues import URGENT, sms_job_id
from callbacks.sms import sms_text
from callbacks.tickets.ticket import Ticket
from callbacks.workqueue.callback_requests import CallbackRequest
from ivr.simulator import ScriptedCaller, Simulator
from ivr.standin import StandinServer
from routing.callback_choices import callable_number, keyed_number, window_start
from routing.callback_texts import BUILT_IN, spoken_moment
from routing.engine import CompiledFlow, UnexpectedEvent, advance, compile_flow
from routing.flow import Flow
from routing.hours import BusinessHours
from routing.loader import check_flow
from routing.steps import (
    Digits,
    Gather,
    Hangup,
    NoInput,
    Position,
    Record,
    RequestCallback,
    Say,
)
from tests.conftest import (
    AUTH_TOKEN,
    DEMO_FLOW,
    app_config,
    empty_tables,
    free_port,
    publish,
)
from tests.test_voice import CALLER, Phone
from tests.test_voice import FLOW as VOICE_FLOW
from tests.test_voice import said as voice_said
from tests.voicemail_helpers import ACCOUNT_SID

BERLIN = ZoneInfo("Europe/Berlin")
OPEN = datetime(2026, 11, 25, 10, 0, tzinfo=BERLIN)  # a Wednesday morning
MOBILE = "+4915112345678"
LANGUAGES = ("en", "de", "pl", "ru")


def text(name: str) -> dict[str, str]:
    """A prompt in every language, spoken as '<name> [<language>]'."""
    return {language: f"{name} [{language}]" for language in LANGUAGES}


def said(name: str, language: str = "en") -> Say:
    return Say(f"{name} [{language}]", language)


def builtin(name: str, language: str = "en", **values: str) -> Say:
    return Say(BUILT_IN[name][language].format(**values), language)


def document(**callback: Any) -> dict[str, Any]:
    """A line whose menu key 1 asks for a callback; `callback` changes the callback node."""
    node = {"type": "callback", "prompt": text("booked"), "priority": "P2",
            "category": "network", "invalid": text("invalid"), "no_input": text("no_input"),
            "on_failure": "voicemail", "next": "bye"}
    node.update(callback)
    return {
        "name": "callbacks", "languages": list(LANGUAGES), "default_language": "en",
        "numbers": ["+493012345678"],
        "calendars": {"office": {"timezone": "Europe/Berlin", "hours": {"mon-fri": "08:00-18:00"},
                                 "holidays": {"country": "DE", "subdivision": "BE"}}},
        "start": "menu",
        "nodes": {
            "menu": {"type": "menu", "prompt": text("menu"), "options": {"1": {"next": "cb"}},
                     "on_failure": "bye"},
            "cb": {key: value for key, value in node.items() if value is not None},
            "voicemail": {"type": "voicemail", "prompt": text("voicemail")},
            "bye": {"type": "hangup", "text": text("bye")},
        },
    }


def compiled(**callback: Any) -> CompiledFlow:
    return compile_flow(Flow.model_validate(document(**callback)))


@pytest.fixture(scope="module")
def line() -> CompiledFlow:
    return compiled()


def at(step: str, window: str = "", attempt: int = 0, language: str = "en") -> Position:
    return Position("cb", language, attempt, step, window)


def only_gather(turn_steps: tuple[Any, ...]) -> Gather:
    (gather,) = turn_steps
    assert isinstance(gather, Gather)
    return gather


def queued(dial_number: str, window: str, language: str = "en") -> tuple[Any, ...]:
    return (said("booked", language),
            RequestCallback("cb", language, "P2", "network", dial_number, window),
            said("bye", language), Hangup())


# --- the engine, sub-step by sub-step ----------------------------------------------------


def test_entering_the_node_asks_for_a_window_first(line: CompiledFlow) -> None:
    turn = advance(line, Position("menu", "de"), Digits("1"), OPEN, MOBILE)
    gather = only_gather(turn.steps)
    assert gather.position == at("window", language="de")
    assert gather.prompts == (builtin("window", "de"),)
    assert gather.keys == ("1", "2", "3") and gather.num_digits == 1


def test_a_window_then_the_caller_confirms_their_number(line: CompiledFlow) -> None:
    turn = advance(line, at("window"), Digits("3"), OPEN, MOBILE)
    gather = only_gather(turn.steps)
    assert turn.choice == "tomorrow_morning"
    assert gather.position == at("confirm", "tomorrow_morning")
    assert gather.prompts == (builtin("confirm", digits="5 6 7 8"),)
    turn = advance(line, gather.position, Digits("1"), OPEN, MOBILE)
    assert turn.steps == queued("", "tomorrow_morning")
    assert turn.outcome == "callback" and turn.path == ("bye",)


def test_the_caller_keys_in_another_number(line: CompiledFlow) -> None:
    gather = only_gather(advance(line, at("confirm", "asap"), Digits("2"), OPEN, MOBILE).steps)
    assert gather.position == at("number", "asap")
    assert gather.prompts == (builtin("key_in"),)
    assert (gather.num_digits, gather.finish_on_key) == (None, "#")
    turn = advance(line, gather.position, Digits("030 1234567"), OPEN, MOBILE)
    assert turn.steps == queued("+49301234567", "asap")  # read as dialled from the caller's
    polish = advance(line, gather.position, Digits("600123456"), OPEN, "+48221234567")
    assert polish.steps == queued("+48600123456", "asap")
    withheld = advance(line, gather.position, Digits("600123456"), OPEN, "anonymous")
    assert withheld.steps == queued("+49600123456", "asap")  # the line's country


def test_an_invalid_number_is_asked_again_then_a_valid_one_is_taken(line: CompiledFlow) -> None:
    turn = advance(line, at("number", "afternoon"), Digits("12"), OPEN, MOBILE)
    gather = only_gather(turn.steps)
    assert gather.position == at("number", "afternoon", attempt=1)
    assert gather.prompts == (builtin("invalid_number"), builtin("key_in"))
    turn = advance(line, gather.position, Digits("004915112345678"), OPEN, MOBILE)
    assert turn.steps == queued(MOBILE, "afternoon")


def test_a_premium_rate_number_is_not_called(line: CompiledFlow) -> None:
    assert keyed_number("09001234567", line.flow, MOBILE) is None
    assert callable_number("+4915112345678") == MOBILE
    assert callable_number("anonymous") is None


def test_numbers_used_up_go_to_on_failure(line: CompiledFlow) -> None:
    turn = advance(line, at("number", attempt=2), Digits("999"), OPEN, MOBILE)
    assert turn.steps == (builtin("invalid_number"), said("voicemail"),
                          Record(Position("voicemail", "en"), 120, "#"))
    assert turn.outcome == "callback_failed" and turn.path == ("voicemail",)


def test_without_on_failure_the_caller_hears_why_and_the_call_ends() -> None:
    line = compiled(on_failure=None)
    turn = advance(line, at("confirm", attempt=2, language="pl"), NoInput(), OPEN, MOBILE)
    assert turn.steps == (said("no_input", "pl"), builtin("no_number", "pl"), Hangup())
    assert turn.outcome == "callback_failed"


def test_silence_and_unknown_keys_are_asked_again_like_a_menu(line: CompiledFlow) -> None:
    gather = only_gather(advance(line, at("window"), NoInput(), OPEN, MOBILE).steps)
    assert gather.position == at("window", attempt=1)
    assert gather.prompts == (said("no_input"), builtin("window"))
    gather = only_gather(advance(line, at("confirm", "asap"), Digits("7"), OPEN, MOBILE).steps)
    assert gather.position == at("confirm", "asap", attempt=1)
    assert gather.prompts[0] == said("invalid")
    gather = only_gather(advance(line, at("number"), NoInput(), OPEN, MOBILE).steps)
    assert gather.prompts == (said("no_input"), builtin("key_in"))


def test_a_window_never_chosen_means_as_soon_as_possible(line: CompiledFlow) -> None:
    gather = only_gather(advance(line, at("window", attempt=2), NoInput(), OPEN, MOBILE).steps[1:])
    assert gather.position == at("confirm", "asap")


def test_a_withheld_caller_id_goes_straight_to_keying_in(line: CompiledFlow) -> None:
    gather = only_gather(advance(line, at("window"), Digits("1"), OPEN, "anonymous").steps)
    assert gather.position == at("number", "asap")


def test_without_windows_or_confirmation_the_callback_is_queued_at_once() -> None:
    line = compiled(windows=False, confirm_number=False)
    turn = advance(line, Position("menu", "en"), Digits("1"), OPEN, MOBILE)
    assert turn.steps == queued("", "")
    turn = advance(compiled(windows=False), Position("menu", "en"), Digits("1"), OPEN, MOBILE)
    assert only_gather(turn.steps).position == at("confirm")


def test_a_node_may_word_its_texts_itself() -> None:
    line = compiled(texts={"confirm": {"en": "Ring {digits}? 1 yes, 2 no."}})
    gather = only_gather(advance(line, at("window"), Digits("1"), OPEN, MOBILE).steps)
    assert gather.prompts == (Say("Ring 5 6 7 8? 1 yes, 2 no.", "en"),)
    gather = only_gather(advance(line, at("window", language="de"), Digits("1"), OPEN,
                                 MOBILE).steps)
    assert gather.prompts == (builtin("confirm", "de", digits="5 6 7 8"),)


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_language_has_every_built_in_text(line: CompiledFlow, language: str) -> None:
    for name in BUILT_IN:
        assert BUILT_IN[name][language]
    gather = only_gather(advance(line, at("window", language=language), Digits("1"), OPEN,
                                 MOBILE).steps)
    assert gather.prompts == (builtin("confirm", language, digits="5 6 7 8"),)


@pytest.mark.parametrize(
    "position",
    [Position("cb", "en"), Position("cb", "en", 0, "dance"),
     Position("cb", "en", 0, "confirm", "never")],
)
def test_a_tampered_callback_position_is_refused(line: CompiledFlow, position: Position) -> None:
    with pytest.raises(UnexpectedEvent):
        advance(line, position, Digits("1"), OPEN, MOBILE)


# --- windows and spoken times -------------------------------------------------------------


def office() -> BusinessHours:
    return compiled().calendars["office"]


def test_windows_start_in_the_calendars_time_zone() -> None:
    hours = office()
    assert window_start("asap", OPEN, hours) == OPEN
    assert window_start("afternoon", OPEN, hours) == OPEN.replace(hour=14)
    late = OPEN.replace(hour=16)
    assert window_start("afternoon", late, hours) == late
    assert window_start("tomorrow_morning", OPEN, hours) == datetime(2026, 11, 26, 8, 0,
                                                                     tzinfo=BERLIN)
    friday = datetime(2026, 11, 27, 17, 0, tzinfo=BERLIN)
    assert window_start("tomorrow_morning", friday, hours) == datetime(2026, 11, 30, 8, 0,
                                                                       tzinfo=BERLIN)
    christmas_eve = datetime(2026, 12, 24, 9, 0, tzinfo=BERLIN)  # 25th and 26th: holidays
    assert window_start("tomorrow_morning", christmas_eve, hours) == datetime(
        2026, 12, 28, 8, 0, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("language", "moment", "spoken"),
    [
        ("en", OPEN.replace(hour=14, minute=30), "2:30 p.m."),
        ("en", datetime(2026, 11, 26, 8, 0, tzinfo=BERLIN), "8 a.m. tomorrow"),
        ("en", datetime(2026, 11, 30, 8, 0, tzinfo=BERLIN), "8 a.m. on Monday"),
        ("de", datetime(2026, 11, 26, 8, 0, tzinfo=BERLIN), "morgen, 8:00 Uhr"),
        ("pl", datetime(2026, 11, 30, 9, 15, tzinfo=BERLIN), "poniedziałek, 9:15"),
        ("ru", OPEN.replace(hour=11), "11:00"),
        ("fr", datetime(2026, 11, 26, 8, 0, tzinfo=BERLIN), "2026-11-26, 8:00"),
    ],
)
def test_spoken_moments(language: str, moment: datetime, spoken: str) -> None:
    assert spoken_moment(moment, OPEN, language) == spoken


# --- the validator ----------------------------------------------------------------------

FRENCH_LINE = textwrap.dedent(
    """\
    name: french
    languages: [en, fr]
    default_language: en
    calendars:
      office: {timezone: Europe/Paris, hours: {mon-fri: "08:00-18:00"}}
    start: cb
    nodes:
      cb:
        type: callback
        prompt: {en: Booked., fr: Réservé.}
        on_failure: bye
        next: bye
      bye: {type: hangup}
    """
)


def test_a_language_without_built_in_texts_is_reported_at_the_node() -> None:
    problems = [str(error) for error in check_flow(FRENCH_LINE, "f.yaml")]
    assert problems[0] == ("f.yaml:8:3: callback 'cb' has no 'fr' text for 'confirm' (built in: "
                           "en, de, pl, ru); write it under 'texts: confirm: fr:'")
    assert len(problems) == 7  # confirm, invalid_number, key_in, queued, ..., window


def test_overrides_complete_a_language_and_their_placeholders_are_checked() -> None:
    texts = textwrap.indent(textwrap.dedent(
        """\
        texts:
          key_in: {fr: "Composez le numéro."}
          invalid_number: {fr: "Numéro invalide."}
          queued: {fr: "Place {place}, appel avant {when}."}
          ticket: {fr: "Ticket {number}."}
          confirm: {fr: "Numéro {digits} ? 1 oui, 2 non."}
          window: {fr: "1, 2 ou 3."}
          queued_window: {fr: "Place {place}, appel après {quand}.", de: "Ab {when}."}
        """), "    ")
    flow = FRENCH_LINE.replace("    on_failure: bye\n", "    on_failure: bye\n" + texts)
    problems = [str(error) for error in check_flow(flow, "f.yaml")]
    assert problems == [
        "f.yaml:19:27: callback 'cb' text 'queued_window' (fr) uses {quand}, which it cannot "
        "fill in; it knows: {place}, {when}",
        "f.yaml:19:66: callback 'cb' text 'queued_window' has 'de', which 'languages' does "
        "not declare",
    ]


def test_a_callback_calendar_must_exist_and_be_unambiguous() -> None:
    unknown = FRENCH_LINE.replace("    on_failure: bye\n", "    on_failure: bye\n"
                                  "    calendar: ofice\n    windows: false\n"
                                  "    confirm_number: false\n")
    problems = [str(error) for error in check_flow(unknown, "f.yaml")]
    assert "f.yaml:12:15: callback 'cb' calendar 'ofice' is not under 'calendars' " \
           "(did you mean 'office'?)" in problems
    two = FRENCH_LINE.replace("    start: cb\n", "").replace(
        "  office: {timezone: Europe/Paris, hours: {mon-fri: \"08:00-18:00\"}}\n",
        "  office: {timezone: Europe/Paris, hours: {mon-fri: \"08:00-18:00\"}}\n"
        "  night: {timezone: Europe/Paris, hours: {mon-fri: \"18:00-22:00\"}}\nstart: cb\n")
    problems = [str(error) for error in check_flow(two, "f.yaml")]
    assert any("offers windows but does not say which calendar" in p for p in problems)



# --- through the webhooks, on PostgreSQL ------------------------------------------------


@pytest.fixture
def make_line(database_url: str) -> Iterator[Callable[..., Flask]]:
    """Apps on the test database with the test line of test_voice published; emptied after."""
    from ivr import create_app

    made: list[Flask] = []

    def factory(flow: str | Path = VOICE_FLOW, **extra: Any) -> Flask:
        application = create_app(app_config(database_url, **extra))
        if not made:
            publish(application, flow)
        made.append(application)
        return application

    yield factory
    if made:
        empty_tables(made[0])


@pytest.fixture
def desk(make_line: Callable[..., Flask], redis_url: str) -> Flask:
    return make_line(CLOCK=lambda: OPEN, REDIS_URL=redis_url)


def ask_for_callback(phone: Phone, window: str = "1", confirm: str = "1") -> ET.Element:
    """Dial in, pick English and the callback, a window, then confirm (or press 2)."""
    phone.dial_in()
    phone.press("1")
    phone.press("3")
    phone.press(window)
    return phone.press(confirm)


def rows(application: Flask) -> list[CallbackRequest]:
    with application.extensions["ivr.sessions"]() as session:
        return list(session.scalars(select(CallbackRequest).order_by(CallbackRequest.id)))


def tickets(application: Flask) -> list[Ticket]:
    with application.extensions["ivr.sessions"]() as session:
        return list(session.scalars(select(Ticket).order_by(Ticket.id)))


def sms_jobs(redis_url: str) -> list[str]:
    return [job_id for job_id in Queue(URGENT, connection=Redis.from_url(redis_url)).job_ids
            if job_id.startswith("sms-")]


def dial_jobs(redis_url: str) -> list[str]:
    queue = Queue(URGENT, connection=Redis.from_url(redis_url))
    return [str(job.func_name) for job in queue.get_jobs()
            if str(job.func_name).startswith("callbacks.workqueue.router.")]


def test_the_caller_hears_place_window_and_ticket_and_the_row_says_so(desk: Flask,
                                                                      redis_url: str) -> None:
    twiml = ask_for_callback(Phone(desk.test_client()), window="2")
    assert voice_said(twiml) == [
        "We will call you back.",
        "You are number 1 in line. We will call you back after 2 p.m., as soon as an agent is "
        "free.",
        "Your ticket number is 1 0 0 0 1. I repeat: 1 0 0 0 1.",
        "Goodbye.",
    ]
    (request,) = rows(desk)
    assert (request.window, request.dial_number, request.priority) == ("afternoon", "", "P2")
    assert request.available_at == OPEN.replace(hour=14)
    assert request.due_at == OPEN.replace(hour=15)  # P2's hour counts from the window
    (ticket,) = tickets(desk)
    assert request.ticket_id == ticket.id and ticket.voicemail_id is None
    assert (ticket.caller, ticket.category, ticket.transcription) == (CALLER, "other", "none")
    assert sms_jobs(redis_url) == [sms_job_id(ticket.id)]
    # a free agent may take it
    assert dial_jobs(redis_url) == ["callbacks.workqueue.router.route_sweep"]


def test_the_place_counts_the_callers_served_first(desk: Flask) -> None:
    places = []
    for n, caller in enumerate(("+4915100000001", "+4915100000002", "+4915100000003")):
        phone = Phone(desk.test_client(), call_sid=f"CA{n:032d}", caller=caller)
        places.append(voice_said(ask_for_callback(phone))[1].split(". ")[0])
    assert places == ["You are number 1 in line", "You are number 2 in line",
                      "You are number 3 in line"]


def test_another_number_is_keyed_in_and_called(desk: Flask) -> None:
    phone = Phone(desk.test_client())
    twiml = ask_for_callback(phone, confirm="2")
    gather = twiml.find("Gather")
    assert gather is not None and gather.attrib["finishOnKey"] == "#"
    assert "numDigits" not in gather.attrib
    assert "Digits" not in gather.attrib["action"] and "c=number" in gather.attrib["action"]
    assert voice_said(phone.press("004915187654321"))[0] == "We will call you back."
    (request,) = rows(desk)
    assert (request.caller, request.dial_number) == (CALLER, "+4915187654321")
    assert tickets(desk)[0].caller == "+4915187654321"  # the SMS goes where we will call


def test_no_callable_number_ends_the_call_politely(desk: Flask) -> None:
    phone = Phone(desk.test_client(), caller="anonymous")
    phone.dial_in()
    phone.press("1")
    phone.press("3")
    phone.press("1")
    for _ in range(2):
        assert voice_said(phone.press("123"))[0] == BUILT_IN["invalid_number"]["en"]
    twiml = phone.press("123")
    assert voice_said(twiml) == [BUILT_IN["invalid_number"]["en"], BUILT_IN["no_number"]["en"]]
    assert twiml.find("Hangup") is not None
    assert rows(desk) == [] and tickets(desk) == []
    with desk.extensions["ivr.sessions"]() as session:
        call = session.scalar(select(Call))
        assert call is not None and call.outcome == "callback_failed"


def test_calling_again_joins_the_request_keeps_its_place_and_raises_it(desk: Flask,
                                                                      redis_url: str) -> None:
    first = voice_said(ask_for_callback(Phone(desk.test_client(), call_sid="CA" + "1" * 32)))
    (before,) = rows(desk)
    again = Phone(desk.test_client(), call_sid="CA" + "2" * 32)
    second = voice_said(ask_for_callback(again, window="3", confirm="2"))
    assert second == [BUILT_IN["key_in"]["en"]]
    heard = voice_said(again.press("004915187654321"))
    assert heard[2] == first[2]  # the same ticket number
    assert heard[1] == ("You are number 1 in line. We will call you back after 8 a.m. "
                        "tomorrow, as soon as an agent is free.")
    (joined,) = rows(desk)
    assert (joined.id, joined.contacts, joined.first_contact_at) == (
        before.id, 2, before.first_contact_at)
    assert (joined.window, joined.dial_number) == ("tomorrow_morning", "+4915187654321")
    assert joined.available_at == datetime(2026, 11, 26, 8, 0, tzinfo=BERLIN)
    assert joined.due_at >= joined.available_at
    assert (before.priority, joined.priority) == ("P2", "P1")  # calling again raises it
    ask_for_callback(Phone(desk.test_client(), call_sid="CA" + "3" * 32))
    (third,) = rows(desk)
    assert (third.contacts, third.priority) == (3, "P1")  # P1 is the top
    assert (third.window, third.dial_number) == ("asap", "")
    assert third.first_contact_at == before.first_contact_at
    assert len(tickets(desk)) == 1 and len(sms_jobs(redis_url)) == 1


def test_a_repeated_webhook_makes_nothing_twice(desk: Flask, redis_url: str) -> None:
    phone = Phone(desk.test_client())
    phone.dial_in()
    phone.press("1")
    phone.press("3")
    phone.press("1")
    confirm = phone.gather_action()
    once = ET.tostring(phone.post(confirm, Digits="1"))
    twice = ET.tostring(phone.post(confirm, Digits="1"))
    assert once == twice
    (request,) = rows(desk)
    assert request.contacts == 1
    assert len(tickets(desk)) == 1
    assert sms_jobs(redis_url) == [sms_job_id(tickets(desk)[0].id)]


@pytest.mark.parametrize(("key", "language"), [("1", "en"), ("2", "de"), ("3", "pl"),
                                               ("4", "ru")])
def test_each_language_of_the_demo_flow_reaches_the_callback_dialog(
        make_line: Callable[..., Flask], key: str, language: str) -> None:
    application = make_line(DEMO_FLOW, CLOCK=lambda: OPEN)
    phone = Phone(application.test_client())
    phone.dial_in()
    phone.press(key)
    phone.press("1")  # password
    assert voice_said(phone.press("3")) == [BUILT_IN["window"][language]]
    confirm = voice_said(phone.press("1"))
    assert confirm == [BUILT_IN["confirm"][language].format(digits="8 7 5 0")]
    heard = voice_said(phone.press("1"))
    place = BUILT_IN["queued"][language].split("{place}")[0]
    assert heard[1].startswith(place) and "11" in heard[1], heard
    assert heard[2] == BUILT_IN["ticket"][language].format(number="1 0 0 0 1")
    assert phone.twiml is not None and phone.twiml.find("Hangup") is not None
    (request,) = rows(application)
    assert (request.language, request.category, request.window) == (language, "password",
                                                                     "asap")


def test_a_callback_ticket_texts_its_own_message() -> None:
    assert "callback" in sms_text("callback_queued", "en", number="10001")
    for language in LANGUAGES:
        assert "10001" in sms_text("callback_queued", language, number="10001")


def test_the_ticket_sms_of_a_callback_says_we_will_call_back(
        make_line: Callable[..., Flask], redis_url: str) -> None:
    with StandinServer(ACCOUNT_SID, AUTH_TOKEN) as standin:
        application = make_line(CLOCK=lambda: OPEN, REDIS_URL=redis_url,
                                TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_API_BASE_URL=standin.url)
        ask_for_callback(Phone(application.test_client(), caller=MOBILE))
        SimpleWorker([URGENT], connection=Redis.from_url(redis_url)).work(burst=True)
        (message,) = standin.messages()
    (ticket,) = tickets(application)
    assert message.to == MOBILE
    assert message.body == sms_text("callback_queued", "en", number=ticket.number)
    assert ticket.sms_sid is not None


def test_a_simulated_caller_books_a_callback_for_another_number(
        make_line: Callable[..., Flask], redis_url: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    application = make_line(DEMO_FLOW, CLOCK=lambda: OPEN, REDIS_URL=redis_url,
                            PUBLIC_BASE_URL=base)
    server = make_server("127.0.0.1", port, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        simulator = Simulator(base, AUTH_TOKEN, caller="+48221234567")
        # Polish, network, callback, next working morning, another number, keyed in with #
        script = ["3", "2", "3", "3", "2", "600123456#"]
        transcript = simulator.run(ScriptedCaller(script))
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert not transcript.failed, transcript.failures
    heard = transcript.said()
    assert BUILT_IN["window"]["pl"] in heard
    assert BUILT_IN["key_in"]["pl"] in heard
    assert "Pana lub Pani miejsce w kolejce: 1. Oddzwonimy najwcześniej: jutro, 8:00." in heard
    assert BUILT_IN["ticket"]["pl"].format(number="1 0 0 0 1") in heard
    (request,) = rows(application)
    assert (request.caller, request.dial_number, request.window, request.category) == (
        "+48221234567", "+48600123456", "tomorrow_morning", "network")
