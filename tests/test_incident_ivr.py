"""Open incidents on the phone, through the signed voice webhooks of the demo flow on
PostgreSQL: the main menu announces them before its prompt once per call in the caller's
language (en, de, pl, ru), 7 notes the caller for a text when it is fixed and confirms, a
withheld number or one that opted out hears why it cannot be texted, and the flow checker
refuses an incident key that is also a menu option."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select

from callbacks.incidents.grouping import open_incident, resolve_incident, set_announcement
from callbacks.incidents.incident import IncidentSubscriber
from callbacks.tickets.optout import record_keyword
from ivr.voice.messages import MESSAGES
from routing.loader import check_flow
from tests.conftest import DEMO_FLOW, publish
from tests.test_console_browser import always_open
from tests.test_voice import Phone, make_app, said  # noqa: F401 (make_app is a fixture)

BERLIN = ZoneInfo("Europe/Berlin")
OPEN = datetime(2026, 11, 25, 10, 0, tzinfo=BERLIN)
NIGHT = datetime(2026, 11, 25, 22, 0, tzinfo=BERLIN)
MOBILE = "+4915112345678"
LANGUAGE_KEYS = {"en": "1", "de": "2", "pl": "3", "ru": "4"}
ANNOUNCED = {
    "en": ("We know about a problem with the VPN and the network and are working on it.",
           "To get a text message when it is fixed, press 7.",
           "Thank you. We will send you a text message as soon as it is fixed."),
    "de": ("Uns ist ein Problem mit dem VPN und dem Netzwerk bekannt, wir arbeiten daran.",
           "Wenn Sie eine SMS erhalten möchten, sobald es behoben ist, drücken Sie die 7.",
           "Vielen Dank. Wir schicken Ihnen eine SMS, sobald es behoben ist."),
    "pl": ("Wiemy o problemie z VPN i siecią i pracujemy nad jego rozwiązaniem.",
           "Aby otrzymać SMS, gdy problem zostanie usunięty, prosimy nacisnąć 7.",
           "Dziękujemy. Wyślemy SMS, gdy tylko problem zostanie usunięty."),
    "ru": ("Нам известно о проблеме с VPN и сетью, мы уже работаем над её устранением.",
           "Чтобы получить SMS, когда проблема будет устранена, нажмите 7.",
           "Спасибо. Мы отправим вам SMS, как только проблема будет устранена."),
}


@pytest.fixture
def line(make_app: Callable[..., Flask]) -> Flask:  # noqa: F811
    application = make_app(CLOCK=lambda: OPEN, INCIDENT_CACHE_SECONDS=0)
    publish(application, always_open(DEMO_FLOW.read_text(encoding="utf-8")))
    return application


def _open_vpn_incident(app: Flask, **extra: object) -> int:
    with app.extensions["ivr.sessions"]() as session:
        return open_incident(session, title="VPN down in Berlin", category="network",
                             by="ana", **extra).id  # type: ignore[arg-type]


def _subscribers(app: Flask) -> list[tuple[str, str, str]]:
    with app.extensions["ivr.sessions"]() as session:
        return [(s.phone, s.language, s.call_sid) for s in session.scalars(
            select(IncidentSubscriber).order_by(IncidentSubscriber.id))]


def _to_main_menu(phone: Phone, language: str) -> list[str]:
    phone.dial_in()
    return said(phone.press(LANGUAGE_KEYS[language]))


@pytest.mark.parametrize("language", ["en", "de", "pl", "ru"])
def test_the_main_menu_announces_an_open_incident_and_takes_the_callers_number(
        line: Flask, language: str) -> None:
    incident_id = _open_vpn_incident(line)
    phone = Phone(line.test_client(), caller=MOBILE)
    heard = _to_main_menu(phone, language)
    announcement, offer, thanks = ANNOUNCED[language]
    assert heard[:2] == [announcement, offer]
    assert len(heard) == 3  # then the menu's own prompt
    menu_prompt = heard[2]

    after = said(phone.press("7"))
    assert after == [thanks, menu_prompt]  # confirmed, then the menu again, not re-announced
    assert _subscribers(line) == [(MOBILE, language, phone.call_sid)]

    phone.press("7")  # pressed again: still one subscription
    assert len(_subscribers(line)) == 1
    with line.extensions["ivr.sessions"]() as session:
        resolved = resolve_incident(session, incident_id, "", "ana")
    assert resolved.notices == 1


def test_the_announcement_is_said_once_per_call_and_a_new_call_hears_it_again(
        line: Flask) -> None:
    _open_vpn_incident(line)
    phone = Phone(line.test_client(), caller=MOBILE)
    first = _to_main_menu(phone, "en")
    assert first[0] == ANNOUNCED["en"][0]
    again = said(phone.press("5"))  # a wrong key? no: 5 is VDI; it says a tip and goes on
    assert ANNOUNCED["en"][0] not in again
    retry = said(phone.press("6"))  # not an option: the menu is asked again, unannounced
    assert ANNOUNCED["en"][0] not in retry
    other = Phone(line.test_client(), call_sid="CA" + "2" * 32, caller=MOBILE)
    assert _to_main_menu(other, "en")[0] == ANNOUNCED["en"][0]


def test_without_an_open_announced_incident_the_menu_is_unchanged_and_7_is_no_option(
        line: Flask) -> None:
    phone = Phone(line.test_client(), caller=MOBILE)
    plain = _to_main_menu(phone, "en")
    assert len(plain) == 1 and ANNOUNCED["en"][0] not in plain
    gather = phone.twiml.find("Gather") if phone.twiml is not None else None
    assert gather is not None
    retry = said(phone.press("7"))
    assert retry[-1] == plain[0] and _subscribers(line) == []  # re-asked, nobody noted

    incident_id = _open_vpn_incident(line)
    with line.extensions["ivr.sessions"]() as session:
        set_announcement(session, incident_id, False)
    quiet = Phone(line.test_client(), call_sid="CA" + "3" * 32, caller=MOBILE)
    assert _to_main_menu(quiet, "en") == plain


def test_several_open_incidents_are_announced_together_and_7_subscribes_to_each(
        line: Flask) -> None:
    first = _open_vpn_incident(line)
    with line.extensions["ivr.sessions"]() as session:
        second = open_incident(session, title="Printers", category="hardware", by="ana").id
        set_announcement(session, second, True, {"de": "Die Drucker im 3. Stock sind gestört."})
    phone = Phone(line.test_client(), caller=MOBILE)
    heard = _to_main_menu(phone, "de")
    assert heard[0] == (ANNOUNCED["de"][0] + " Die Drucker im 3. Stock sind gestört.")
    phone.press("7")
    with line.extensions["ivr.sessions"]() as session:
        ids = sorted(s.incident_id for s in session.scalars(select(IncidentSubscriber)))
    assert ids == sorted([first, second])


@pytest.mark.parametrize("caller", ["anonymous", "+493012345699"])
def test_a_withheld_or_landline_number_is_told_it_cannot_be_texted(line: Flask,
                                                                    caller: str) -> None:
    _open_vpn_incident(line)
    phone = Phone(line.test_client(), caller=caller)
    heard = _to_main_menu(phone, "en")
    after = said(phone.press("7"))
    assert after == ["Sorry, we cannot send a text message to the number you are calling "
                     "from.", heard[2]]
    assert _subscribers(line) == []


def test_a_number_that_opted_out_is_not_subscribed(line: Flask) -> None:
    _open_vpn_incident(line)
    with line.extensions["ivr.sessions"]() as session:
        record_keyword(session, MOBILE, "stop", "STOP")
        session.commit()
    phone = Phone(line.test_client(), caller=MOBILE)
    _to_main_menu(phone, "en")
    assert said(phone.press("7"))[0].startswith("Sorry, we cannot send a text")
    assert _subscribers(line) == []


def test_an_incident_resolved_meanwhile_is_no_longer_offered(line: Flask) -> None:
    incident_id = _open_vpn_incident(line)
    phone = Phone(line.test_client(), caller=MOBILE)
    _to_main_menu(phone, "en")
    with line.extensions["ivr.sessions"]() as session:
        resolve_incident(session, incident_id, "", "ana")
    retry = said(phone.press("7"))  # 7 is no option any more: the menu is asked again
    assert ANNOUNCED["en"][2] not in retry and _subscribers(line) == []


def test_after_hours_the_closed_menu_announces_the_incident_too(
        make_app: Callable[..., Flask]) -> None:  # noqa: F811
    app = make_app(CLOCK=lambda: NIGHT, INCIDENT_CACHE_SECONDS=0)
    publish(app, DEMO_FLOW)
    _open_vpn_incident(app)
    phone = Phone(app.test_client(), caller=MOBILE)
    heard = _to_main_menu(phone, "en")
    assert heard[:2] == list(ANNOUNCED["en"][:2])
    assert heard[2].startswith("The IT Service Desk is closed right now.")
    assert said(phone.press("7"))[0] == ANNOUNCED["en"][2]


def test_an_incident_key_that_is_also_a_menu_option_is_refused_where_it_is_written() -> None:
    text = DEMO_FLOW.read_text(encoding="utf-8").replace(
        'incidents: {subscribe: "7"}  # open incidents', 'incidents: {subscribe: "8"}  # open')
    written = next(number for number, row in enumerate(text.splitlines(), 1)
                   if 'subscribe: "8"' in row)
    column = text.splitlines()[written - 1].index('"8"') + 1
    assert [str(error) for error in check_flow(text, "it-support.yaml")] == [
        f"it-support.yaml:{written}:{column}: menu 'main_menu' incidents subscribe key '8' is "
        "already option '8' (which goes to 'ticket_status'); free keys: 6, 7, *, #"]


def test_the_flow_schema_documents_the_incident_key() -> None:
    from routing.flow import flow_json_schema

    schema = flow_json_schema()
    menu = schema["$defs"]["MenuNode"]["properties"]["incidents"]
    assert "Announce open incidents" in menu["description"]
    assert schema["$defs"]["MenuIncidents"]["properties"]["subscribe"]["pattern"] == "^[0-9*#]$"


def test_the_simulator_hears_the_announcement_and_subscribes_with_7(line: Flask) -> None:
    from ivr.simulator import ScriptedCaller, Simulator
    from ivr.simulator.inprocess import IN_PROCESS_BASE_URL, in_process_session
    from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL

    _open_vpn_incident(line)
    call = Simulator(IN_PROCESS_BASE_URL, AUTH_TOKEN, caller=MOBILE, called="+493012345678",
                     session=in_process_session(line), public_base_url=PUBLIC_BASE_URL).run(
        ScriptedCaller(["2", "7"]))
    assert not call.failed, call.failures
    heard = call.said()
    assert ANNOUNCED["de"][0] in heard and ANNOUNCED["de"][2] in heard
    assert heard.count(ANNOUNCED["de"][0]) == 1
    assert [s[0] for s in _subscribers(line)] == [MOBILE]


@pytest.mark.parametrize("key", list("0123456789*#"))
def test_every_key_of_the_main_menu_answers_valid_twiml_while_an_incident_is_open(
        line: Flask, key: str) -> None:
    _open_vpn_incident(line)
    phone = Phone(line.test_client(), caller=MOBILE)
    _to_main_menu(phone, "en")
    answer = phone.press(key)
    apology = MESSAGES["apology"]["en"]
    assert answer.tag == "Response" and len(answer) > 0 and apology not in said(answer)
    if answer.find("Redirect") is not None:  # silence at whatever asks next
        assert apology not in said(phone.stay_silent())


def test_back_from_an_unknown_ticket_number_the_menu_still_takes_7_without_repeating(
        line: Flask) -> None:
    _open_vpn_incident(line)
    phone = Phone(line.test_client(), caller=MOBILE)
    _to_main_menu(phone, "en")
    phone.press("8")
    phone.press("99999#")  # no such ticket: asked once more
    back = said(phone.press("99998#"))  # then back to the main menu
    assert ANNOUNCED["en"][0] not in back
    assert said(phone.press("7"))[0] == ANNOUNCED["en"][2]
    assert [s[0] for s in _subscribers(line)] == [MOBILE]
