"""STOP and START as Twilio's messaging conventions expect, on real PostgreSQL, Redis, rq
workers and the Twilio stand-in: an opted-out number gets no text of ours (the send job
records sms_skipped), START brings texts back, and a send Twilio refuses with 21610 records
the opt-out too. We never answer the keywords ourselves: Twilio does."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks.jobs import send_ticket_sms
from callbacks.queues import QUEUES
from callbacks.tickets.actions import move_ticket
from callbacks.tickets.optout import SmsOptOut, is_opted_out, keyword_kind
from callbacks.tickets.ticket import Ticket, TicketEvent, history
from callbacks.workqueue.agents import Agent, create_agent
from ivr.standin import StandinServer
from tests.conftest import LINE, desk_app, twilio_post

MOBILE = "+4915112345678"


@pytest.fixture
def desk(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    with desk_app(database_url, redis_url, standin) as app:
        yield app


def _session(app: Flask) -> Session:
    session: Session = app.extensions["ivr.sessions"]()
    return session


def _agent(app: Flask) -> Agent:
    with _session(app) as session:
        agent = create_agent(session, "ann", "correct horse battery")
        session.commit()
        return agent


def _ticket(app: Flask, caller: str = MOBILE, *, texted: bool = True) -> int:
    with _session(app) as session:
        ticket = Ticket(call_sid="CA" + "6" * 32, caller=caller, language="en",
                        category="network", priority="P3", status="new", transcription="none",
                        sms_sid="SM" + "0" * 32 if texted else None)
        session.add(ticket)
        session.commit()
        return ticket.id


def _text(client: FlaskClient, body: str, n: int, caller: str = MOBILE,
          **extra: str) -> ET.Element:
    sid = "SM" + f"{n:032x}"
    params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": "AC" + "7" * 32, "From": caller,
              "To": LINE, "Body": body, "NumMedia": "0", **extra}
    response = twilio_post(client, "/sms", params)
    assert response.status_code == 200 and response.mimetype == "text/xml", response.data
    return ET.fromstring(response.data)


def _work(redis_url: str) -> None:
    SimpleWorker(list(QUEUES), connection=Redis.from_url(redis_url)).work(burst=True)


def _move(app: Flask, ticket_id: int, status: str, agent: Agent) -> str:
    with _session(app) as session:
        return move_ticket(session, ticket_id, status, "", agent).message


def _events(app: Flask, ticket_id: int, kind: str) -> list[TicketEvent]:
    with _session(app) as session:
        return [event for event in history(session, ticket_id) if event.kind == kind]


def test_stop_silences_every_text_until_start(desk: Flask, standin: StandinServer,
                                              redis_url: str) -> None:
    ann = _agent(desk)
    ticket_id = _ticket(desk)
    client = desk.test_client()
    assert list(_text(client, "STOP", 1)) == []  # Twilio answers STOP itself
    with _session(desk) as session:
        assert is_opted_out(session, MOBILE)
        assert is_opted_out(session, "+49 151 12345678")  # the same number, written otherwise
    message = _move(desk, ticket_id, "assigned", ann)
    assert "The caller gets no text: the caller opted out of texts (STOP)." in message
    _work(redis_url)
    assert standin.messages() == []
    assert [event.detail for event in _events(desk, ticket_id, "sms_skipped")] == [
        "assigned: the caller opted out of texts (STOP)"]

    assert list(_text(client, "start", 2)) == []
    message = _move(desk, ticket_id, "in_progress", ann)
    assert "The caller will get a text in English." in message
    _work(redis_url)
    assert [m.body for m in standin.messages()] == [
        "IT Service Desk: we are working on your ticket 10001."]
    with _session(desk) as session:
        row = session.scalar(select(SmsOptOut))
        assert row is not None and (row.opted_out, row.keyword, row.source) == (
            False, "START", "keyword")


def test_the_ticket_number_text_is_not_sent_after_stop(desk: Flask, standin: StandinServer
                                                       ) -> None:
    ticket_id = _ticket(desk, texted=False)
    _text(desk.test_client(), "Unsubscribe", 3)
    assert send_ticket_sms(ticket_id) is None
    assert standin.messages() == [] and standin.requests() == []  # Twilio never asked
    assert [event.detail for event in _events(desk, ticket_id, "sms_skipped")] == [
        "the caller opted out of texts (STOP)"]


def test_a_text_twilio_refuses_with_21610_records_the_opt_out(
        desk: Flask, standin: StandinServer, redis_url: str) -> None:
    ann = _agent(desk)
    ticket_id = _ticket(desk)
    standin.opt_out(MOBILE)  # the caller texted STOP to another of our numbers
    _move(desk, ticket_id, "assigned", ann)
    _work(redis_url)
    assert standin.messages() == []
    [skipped] = _events(desk, ticket_id, "sms_skipped")
    assert "error 21610" in skipped.detail
    with _session(desk) as session:
        row = session.scalar(select(SmsOptOut))
        assert row is not None and (row.opted_out, row.source) == (True, "twilio")
    asked = len(standin.requests())
    _move(desk, ticket_id, "in_progress", ann)
    _work(redis_url)
    assert len(standin.requests()) == asked  # known now: not even tried


@pytest.mark.parametrize("word", ["STOP", "stopall", "Unsubscribe", "CANCEL", "end", " Quit "])
def test_every_opt_out_keyword_opts_out(desk: Flask, word: str) -> None:
    assert list(_text(desk.test_client(), word, 4)) == []
    with _session(desk) as session:
        assert is_opted_out(session, MOBILE)


@pytest.mark.parametrize("word", ["START", "unstop", "Yes"])
def test_every_opt_in_keyword_opts_back_in(desk: Flask, word: str) -> None:
    client = desk.test_client()
    _text(client, "STOP", 5)
    assert list(_text(client, word, 6)) == []
    with _session(desk) as session:
        assert not is_opted_out(session, MOBILE)


def test_help_and_info_change_nothing_and_get_no_reply_from_us(desk: Flask) -> None:
    client = desk.test_client()
    _text(client, "STOP", 7)
    for n, word in enumerate(("HELP", "info"), start=8):
        assert list(_text(client, word, n)) == []
    with _session(desk) as session:
        assert is_opted_out(session, MOBILE)


def test_only_a_single_keyword_counts_unless_twilio_says_so(desk: Flask) -> None:
    client = desk.test_client()
    _text(client, "please stop calling me", 10)
    with _session(desk) as session:
        assert not is_opted_out(session, MOBILE)
    # Advanced Opt-Out: a keyword added in another language arrives tagged by Twilio
    assert list(_text(client, "STOPP", 11, OptOutType="STOP")) == []
    with _session(desk) as session:
        assert is_opted_out(session, MOBILE)
    assert keyword_kind("Anuluj", "start") == "start"
    assert keyword_kind("4 thanks") is None


def test_a_forged_stop_is_refused_and_changes_nothing(desk: Flask) -> None:
    params = {"MessageSid": "SM" + "e" * 32, "From": MOBILE, "To": LINE, "Body": "STOP"}
    response = desk.test_client().post("/sms", data=params,
                                       headers={"X-Twilio-Signature": "forged"})
    assert response.status_code == 403
    with _session(desk) as session:
        assert not is_opted_out(session, MOBILE)
