"""Incidents on PostgreSQL, Redis, rq workers and the Twilio stand-in: grouping tickets and
callbacks, the suggestion from SQL, resolving that texts every number exactly once (however
many of its tickets are linked and whether it also asked in the menu), skipped numbers, a send
cut off after Twilio took it, the reconciler, and the incidents file's located errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks import runtime
from callbacks.db import utcnow
from callbacks.incidents.grouping import (
    IncidentError,
    link,
    open_incident,
    resolve_incident,
    subscribe,
    unlink,
)
from callbacks.incidents.incident import (
    Incident,
    IncidentNotice,
    incident_id_from_number,
    incident_number,
)
from callbacks.incidents.notices import notice_job_id, send_incident_notice
from callbacks.incidents.overview import incident_list, incident_story
from callbacks.incidents.settings import load_incident_settings, parse_incident_settings
from callbacks.incidents.suggestion import suggestions
from callbacks.jobs import RetryLater
from callbacks.queues import QUEUES
from callbacks.reconciler import reconcile
from callbacks.telephony import send_sms
from callbacks.tickets.optout import record_keyword
from callbacks.tickets.ticket import Ticket, TicketEvent, history
from callbacks.workqueue.callback_requests import CallbackRequest
from ivr.standin import StandinServer
from routing.errors import FlowInvalid
from tests.conftest import LINE, ROOT, app_config, desk_app

KATRIN = "+4915112345678"  # in flows/directory.csv
OLGA = "+79031234567"
PIOTR = "+48601234567"
LANDLINE = "+493012345699"
STOPPED = "+4917612345678"
INCIDENTS_FILE = ROOT / "flows" / "incidents.yaml"


@pytest.fixture
def desk(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    with desk_app(database_url, redis_url, standin) as app:
        yield app


def _session(app: Flask) -> Session:
    session: Session = app.extensions["ivr.sessions"]()
    return session


def _ticket(app: Flask, caller: str, category: str = "network", language: str = "en",
            minutes_ago: int = 1, status: str = "new") -> int:
    with _session(app) as session:
        moment = utcnow() - timedelta(minutes=minutes_ago)
        ticket = Ticket(call_sid="CA" + "6" * 32, caller=caller, language=language,
                        category=category, priority="P3", status=status, transcription="none",
                        sms_sid="SM" + "0" * 32, created_at=moment, updated_at=moment)
        session.add(ticket)
        session.commit()
        return ticket.id


def _callback(app: Flask, caller: str, ticket_id: int | None = None) -> int:
    with _session(app) as session:
        now = utcnow()
        request = CallbackRequest(caller=caller, language="en", priority="P3", category="network",
                                  first_call_sid="CA" + "7" * 32, first_contact_at=now,
                                  due_at=now, available_at=now, ticket_id=ticket_id)
        session.add(request)
        session.commit()
        return request.id


def _work(redis_url: str) -> None:
    SimpleWorker(list(QUEUES), connection=Redis.from_url(redis_url)).work(burst=True)


def _notices(app: Flask) -> dict[str, tuple[str, str]]:
    with _session(app) as session:
        return {n.phone: (n.status, n.language) for n in session.scalars(select(IncidentNotice))}


def _events(app: Flask, ticket_id: int, kind: str) -> list[TicketEvent]:
    with _session(app) as session:
        return [event for event in history(session, ticket_id) if event.kind == kind]


def test_incident_numbers_read_like_ticket_numbers() -> None:
    assert incident_number(1) == "INC-10001"
    assert incident_id_from_number("INC-10001") == incident_id_from_number("10001") == 1
    assert incident_id_from_number("INC-9") is None and incident_id_from_number("x") is None


def test_resolving_texts_every_number_once_however_it_is_linked(
        desk: Flask, standin: StandinServer, redis_url: str) -> None:
    katrin_1, katrin_2 = _ticket(desk, KATRIN), _ticket(desk, KATRIN)
    olga = _ticket(desk, OLGA, language="ru")
    landline, stopped = _ticket(desk, LANDLINE), _ticket(desk, STOPPED)
    callback = _callback(desk, KATRIN, ticket_id=katrin_1)
    piotr_callback = _callback(desk, PIOTR)
    with _session(desk) as session:
        record_keyword(session, STOPPED, "stop", "STOP")
        session.commit()
        incident = open_incident(session, title="VPN down", category="network", by="ana",
                                 ticket_ids=[katrin_1, katrin_2, olga, landline, stopped],
                                 callback_ids=[callback, piotr_callback])
        incident_id = incident.id
        subscribe(session, [incident_id], KATRIN, "de", "CA" + "8" * 32)
        subscribe(session, [incident_id], "+48 601 234 567", "pl", "CA" + "9" * 32)
        resolved = resolve_incident(session, incident_id, "Restart the VPN client.", "ana")
    assert (resolved.notices, resolved.already) == (5, False)
    _work(redis_url)

    assert _notices(desk) == {KATRIN: ("sent", "de"), OLGA: ("sent", "ru"),
                              PIOTR: ("sent", "pl"), LANDLINE: ("skipped", "en"),
                              STOPPED: ("skipped", "en")}
    bodies = {m.to: m.body for m in standin.messages()}
    assert len(standin.messages()) == 3 and set(bodies) == {KATRIN, OLGA, PIOTR}
    assert bodies[KATRIN] == ("IT-Service-Desk: Das Problem mit dem VPN und dem Netzwerk "
                              "(INC-10001) ist behoben. Restart the VPN client.")
    assert bodies[OLGA].startswith("IT Service Desk: проблема с VPN и сетью (INC-10001)")
    assert all(m.from_ == LINE for m in standin.messages())
    with _session(desk) as session:
        skipped = {n.phone: n.detail for n in session.scalars(select(IncidentNotice))}
    assert skipped[LANDLINE] == "the caller's number cannot receive texts"
    assert skipped[STOPPED] == "the caller opted out of texts (STOP)"

    # a second resolve, a repeated job and a reconciler pass text nobody again
    with _session(desk) as session:
        again = resolve_incident(session, incident_id, "", "bob")
        assert again.already and again.notices == 5
        notice_ids = list(session.scalars(select(IncidentNotice.id)))
    for notice_id in notice_ids:
        assert send_incident_notice(notice_id) is None
    with _session(desk) as session:
        report = reconcile(session, Redis.from_url(redis_url), grace=timedelta(0))
    assert report.incident_notices_requeued == []
    _work(redis_url)
    assert len(standin.messages()) == 3
    # every linked ticket's history says it, once; the SMS came from the notice, not per ticket
    for ticket_id in (katrin_1, katrin_2, olga, landline, stopped):
        assert [e.detail for e in _events(desk, ticket_id, "incident_resolved")] == [
            "INC-10001: VPN down: Restart the VPN client."]
        assert _events(desk, ticket_id, "sms_sent") == []


def test_linking_is_recorded_once_and_a_resolved_incident_takes_no_more(desk: Flask) -> None:
    first, second = _ticket(desk, KATRIN), _ticket(desk, OLGA)
    with _session(desk) as session:
        incident_id = open_incident(session, title="  Printers   on 3  ", category="hardware",
                                    by="ana", ticket_ids=[first]).id
        assert link(session, incident_id, ticket_ids=[first, second], by="bob") == (1, 0)
        assert link(session, incident_id, ticket_ids=[first, second], by="bob") == (0, 0)
        assert unlink(session, incident_id, ticket_ids=[second], by="bob") == (1, 0)
        story = incident_story(session, incident_id, runtime.directory())
        assert story is not None and story.incident.title == "Printers on 3"
        assert [(t.number, t.caller_name, t.linked_by) for t in story.tickets] == [
            ("10001", "Katrin Schäfer", "ana")]
        with pytest.raises(IncidentError, match="does not exist"):
            link(session, incident_id, ticket_ids=[999], by="bob")
        session.rollback()
        resolve_incident(session, incident_id, "", "bob")
        with pytest.raises(IncidentError, match="is resolved; open a new one"):
            link(session, incident_id, ticket_ids=[second], by="bob")
        session.rollback()
        with pytest.raises(IncidentError, match="needs a title"):
            open_incident(session, title="  ", category="network", by="ana")
        with pytest.raises(IncidentError, match="no such incident"):
            link(session, 12345, by="ana")
    assert [e.by for e in _events(desk, first, "incident_linked")] == ["ana"]
    assert [e.kind for e in _events(desk, second, "incident_linked")
            + _events(desk, second, "incident_unlinked")] == ["incident_linked",
                                                              "incident_unlinked"]


def test_the_list_shows_open_incidents_first(desk: Flask) -> None:
    with _session(desk) as session:
        old = open_incident(session, title="Old", category="vdi", by="ana").id
        resolve_incident(session, old, "", "ana")
        newer = open_incident(session, title="Newer", category="network", by="ana").id
        kept = open_incident(session, title="Kept", category="network", by="ana",
                             ticket_ids=[_ticket(desk, KATRIN)]).id
        rows = incident_list(session)
    assert [row.incident.id for row in rows] == [kept, newer, old]
    assert [row.tickets for row in rows] == [1, 0, 0]


def test_the_desk_suggests_an_incident_when_enough_tickets_arrive(desk: Flask) -> None:
    settings = load_incident_settings(INCIDENTS_FILE)  # 5 in 30 min; password 7; outage 3
    for _ in range(4):
        _ticket(desk, KATRIN, "network", minutes_ago=5)
    _ticket(desk, KATRIN, "network", minutes_ago=45)  # too old to count
    _ticket(desk, KATRIN, "network", minutes_ago=2, status="resolved")  # done already
    for _ in range(6):
        _ticket(desk, OLGA, "password", minutes_ago=3)
    for _ in range(3):
        _ticket(desk, PIOTR, "outage", minutes_ago=10)
    with _session(desk) as session:
        assert [(s.category, s.count) for s in suggestions(session, settings, utcnow())] == [
            ("outage", 3)]
    newest = _ticket(desk, KATRIN, "network", minutes_ago=0)
    with _session(desk) as session:
        found = suggestions(session, settings, utcnow())
        assert [(s.category, s.count) for s in found] == [("network", 5), ("outage", 3)]
        assert newest in found[0].ticket_ids
        assert found[0].sentence == ("5 network tickets in the last 30 minutes, none in an "
                                     "open incident: open an incident?")
        open_incident(session, title="VPN", category="network", by="ana",
                      ticket_ids=list(found[0].ticket_ids))
        assert [s.category for s in suggestions(session, settings, utcnow())] == ["outage"]


def test_a_send_cut_off_after_twilio_took_it_is_found_and_not_sent_again(
        desk: Flask, standin: StandinServer) -> None:
    notice_id = _resolved_notice(desk, KATRIN)
    body = "IT Service Desk: the problem with the VPN and the network (INC-10001) is fixed."
    sid = send_sms(runtime.settings(), KATRIN, body, from_=LINE)  # the text that got through
    _claimed(desk, notice_id, body, minutes_ago=2)
    assert send_incident_notice(notice_id) == sid
    assert len(standin.messages()) == 1
    with _session(desk) as session:
        notice = session.get(IncidentNotice, notice_id)
        assert notice is not None and (notice.status, notice.message_sid) == ("sent", sid)
        assert "found at Twilio after an interrupted try" in notice.detail


def test_a_send_cut_off_before_twilio_took_it_is_sent(desk: Flask,
                                                      standin: StandinServer) -> None:
    notice_id = _resolved_notice(desk, KATRIN)
    _claimed(desk, notice_id, "a text that never reached Twilio", minutes_ago=2)
    sid = send_incident_notice(notice_id)
    assert [m.sid for m in standin.messages()] == [sid]


def test_a_claim_that_may_still_be_on_its_way_to_twilio_is_left_alone(
        desk: Flask, standin: StandinServer) -> None:
    notice_id = _resolved_notice(desk, KATRIN)
    _claimed(desk, notice_id, "on its way", minutes_ago=0)
    with pytest.raises(RetryLater, match="may still be on its way"):
        send_incident_notice(notice_id)
    assert standin.messages() == [] and standin.requests() == []


def test_the_reconciler_queues_again_a_notice_whose_job_redis_lost(
        desk: Flask, standin: StandinServer, redis_url: str) -> None:
    notice_id = _resolved_notice(desk, OLGA)
    connection = Redis.from_url(redis_url)
    connection.flushdb()  # Redis restarted: the queued job is gone
    with _session(desk) as session:
        report = reconcile(session, connection, grace=timedelta(0))
        assert report.incident_notices_requeued == [notice_id]
        again = reconcile(session, connection, grace=timedelta(0))
        assert again.incident_notices_requeued == []  # queued: alive
    assert connection.exists(f"rq:job:{notice_job_id(notice_id)}")
    _work(redis_url)
    assert [m.to for m in standin.messages()] == [OLGA]


def _resolved_notice(app: Flask, number: str) -> int:
    ticket_id = _ticket(app, number)
    with _session(app) as session:
        incident_id = open_incident(session, title="VPN", category="network", by="ana",
                                    ticket_ids=[ticket_id]).id
        resolve_incident(session, incident_id, "", "ana")
        notice_id = session.scalar(select(IncidentNotice.id))
        assert notice_id is not None
        return notice_id


def _claimed(app: Flask, notice_id: int, body: str, minutes_ago: int) -> None:
    """As a job that claimed the notice and was killed leaves it."""
    with _session(app) as session:
        notice = session.get(IncidentNotice, notice_id)
        assert notice is not None
        notice.status, notice.body, notice.sender = "sending", body, LINE
        notice.claimed_at, notice.attempts = utcnow() - timedelta(minutes=minutes_ago), 1
        session.commit()


# --- the incidents file -----------------------------------------------------------------


def _problems(text: str) -> list[str]:
    with pytest.raises(FlowInvalid) as invalid:
        parse_incident_settings(text, "incidents.yaml")
    return [str(error) for error in invalid.value.errors]


def test_the_shipped_incidents_file_is_valid_in_every_language() -> None:
    settings = load_incident_settings(INCIDENTS_FILE)
    assert settings.languages == ("en", "de", "pl", "ru")
    assert (settings.suggest.tickets, settings.suggest.minutes) == (5, 30)
    assert settings.rule("outage").tickets == 3 and settings.rule("vdi").tickets == 5
    for language in settings.languages:
        assert "{key}" not in settings.prompt("subscribe", language, key="7")
        assert settings.topic("nosuchcategory", language) == settings.topic("other", language)


def test_a_broken_incidents_file_is_reported_at_file_line_column() -> None:
    text = INCIDENTS_FILE.read_text(encoding="utf-8")
    broken = (text.replace("  tickets: 5\n", "  tickets: 1\n")
              .replace('    ru: "Спасибо. Мы отправим вам SMS, как только проблема будет '
                       'устранена."\n', "")
              .replace("press {key}.", "press {digit}.")
              .replace("suggest:\n", "sugest: 1\nsuggest:\n"))
    lines = broken.splitlines()

    def at(fragment: str) -> int:
        return next(number for number, row in enumerate(lines, 1) if fragment in row)

    problems = _problems(broken)
    assert problems == sorted(problems, key=lambda p: int(p.split(":")[1]))
    assert f"incidents.yaml:{at('sugest: 1')}:1: unknown key 'sugest' at the top level " \
           "(did you mean 'suggest'?)" in problems
    assert f"incidents.yaml:{at('tickets: 1')}:12: tickets must be a whole number from 2 to " \
           "1000, not 1" in problems
    assert any(p.startswith(f"incidents.yaml:{at('press {digit}')}:") and
               "menu text 'subscribe' (en) uses {digit}, which the line cannot fill in; it "
               "knows: {key}" in p for p in problems)
    assert f"incidents.yaml:{at('  subscribed:')}:3: menu text 'subscribed' has no 'ru' " \
           "translation" in problems
    assert len(problems) == 4


def test_a_missing_topic_or_menu_text_is_named() -> None:
    text = INCIDENTS_FILE.read_text(encoding="utf-8")
    start, end = text.index("  vdi:\n"), text.index("  outage:\n")
    problems = _problems(text[:start] + text[end:].replace("  cannot_text:", "  cannot_txt:"))
    assert any("topic 'vdi' is missing; callers hear it for vdi incidents" in p
               for p in problems)
    assert any("unknown key 'cannot_txt' under 'menu' (did you mean 'cannot_text'?)" in p
               for p in problems)
    assert any("menu text 'cannot_text' is missing" in p for p in problems)
    assert _problems("") == ["incidents.yaml:1:1: the incidents file is empty"]
    assert _problems("- a list") == [
        "incidents.yaml:1:1: the incidents file must be a mapping with 'languages', "
        "'suggest', 'topics' and 'menu'"]


def test_the_line_refuses_to_start_with_a_broken_incidents_file(database_url: str,
                                                                 tmp_path: Path) -> None:
    from ivr import create_app

    bad = tmp_path / "incidents.yaml"
    bad.write_text(INCIDENTS_FILE.read_text(encoding="utf-8").replace("minutes: 30\n",
                                                                      "minutes: never\n", 1))
    with pytest.raises(FlowInvalid) as refused:
        create_app(app_config(database_url, INCIDENTS_FILE=str(bad)))
    assert str(refused.value.errors[0]).startswith(f"{bad}:")
    assert "minutes must be a whole number from 1 to 1440, not 'never'" in str(
        refused.value.errors[0])
    assert Incident.__tablename__ == "incidents"


def test_linking_and_resolving_reach_the_companys_ticket_system_through_the_outbox(
        database_url: str, redis_url: str, standin: StandinServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from callbacks.delivery.outbox import Delivery
    from tests.delivery_helpers import SECRETS, webhook_connector, write_delivery_file

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    delivery_file = write_delivery_file(tmp_path, webhook_connector("http://127.0.0.1:9/in"))
    with desk_app(database_url, redis_url, standin, DELIVERY_FILE=str(delivery_file)) as app:
        ticket_id = _ticket(app, KATRIN)
        with _session(app) as session:
            incident_id = open_incident(session, title="VPN", category="network", by="ana",
                                        ticket_ids=[ticket_id]).id
            resolve_incident(session, incident_id, "", "ana")
            kinds = [d.kind for d in session.scalars(
                select(Delivery).where(Delivery.ticket_id == ticket_id).order_by(Delivery.id))]
    assert kinds == ["incident_linked", "incident_resolved"]
