"""The agent's own current call, Take next, and the live callers in the call list: through the
console (Flask's test client) and the JSON API, with routing run for real against PostgreSQL
and the Twilio stand-in (the agent's phone is rung through it)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from callbacks.db import utcnow
from callbacks.workqueue.agents import Agent, create_agent, issue_api_token
from callbacks.workqueue.attempts import CallbackAttempt
from callbacks.workqueue.callback_requests import CallbackRequest
from callbacks.workqueue.live_calls import LiveCall, LiveOffer
from callbacks.workqueue.skills import set_skills
from ivr.standin import StandinServer
from tests.conftest import desk_app

PASSWORD = "correct horse battery"
ANA_PHONE = "+4930555020"
JONAS = "+4917612345678"  # Jonas Becker (Finance) in flows/directory.csv


@pytest.fixture
def desk(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    """The app placing calls through the stand-in; times shown in Berlin."""
    with desk_app(database_url, redis_url, standin, DISPLAY_TIMEZONE="Europe/Berlin",
                  WTF_CSRF_ENABLED=False) as app:
        yield app


def agent(app: Flask, name: str = "ana", *, availability: str = "away", mode: str = "progressive",
          languages: dict[str, int] | None = None, phone: str = ANA_PHONE) -> tuple[int, str]:
    """An agent who speaks `languages` (English by default); (id, API token)."""
    with app.extensions["ivr.sessions"]() as session:
        account = create_agent(session, name, PASSWORD, display_name=name.title(), phone=phone,
                               dial_mode=mode)
        account.availability = availability
        account.availability_since = utcnow() - timedelta(minutes=5)
        set_skills(session, account.id, languages=languages or {"en": 2})
        token = issue_api_token(account)
        session.commit()
        return account.id, token


def caller_in_line(app: Flask, language: str = "en", category: str = "password",
                   waited: timedelta = timedelta(minutes=1), due_in: timedelta = timedelta(
                       minutes=1), caller: str = JONAS) -> int:
    """A caller waiting in line since `waited` ago, due `due_in` from now."""
    now = utcnow()
    with app.extensions["ivr.sessions"]() as session:
        call = LiveCall(call_sid=f"CA{uuid.uuid4().hex}", caller=caller, language=language,
                        category=category, priority="P2", node="password_queue",
                        queue_name="servicedesk", queue_sid="QU" + "1" * 32,
                        entered_at=now - waited, due_at=now + due_in,
                        overflow_at=now + timedelta(minutes=10), last_seen_at=now)
        session.add(call)
        session.commit()
        return call.id


def callback(app: Flask, language: str = "en", due_in: timedelta = timedelta(hours=1),
             assigned: int | None = None, caller: str = "") -> int:
    """A callback request that may be dialled now."""
    now = utcnow()
    caller = caller or f"+49151{uuid.uuid4().int % 10**8:08d}"
    with app.extensions["ivr.sessions"]() as session:
        request = CallbackRequest(
            caller=caller, category="vpn", language=language, priority="P3",
            first_call_sid="CA1", last_call_sid="CA1", first_contact_at=now - timedelta(hours=1),
            due_at=now + due_in, available_at=now - timedelta(minutes=1),
            assigned_agent_id=assigned)
        session.add(request)
        session.commit()
        return request.id


def signed_in(app: Flask, name: str = "ana") -> FlaskClient:
    web = app.test_client()
    assert web.post("/console/sign-in",
                    data={"username": name, "password": PASSWORD}).status_code == 303
    return web


def flash_of(web: FlaskClient, answer: object) -> str:
    """The flash the page shows after an action."""
    assert answer.status_code == 303
    page = web.get(answer.location).get_data(as_text=True)
    found = re.findall(r'<li class="flash flash-(\w+)"[^>]*>(.*?)</li>', page, re.S)
    return " ".join(f"{kind}: {text.strip()}" for kind, text in found)


def state_of(app: Flask, agent_id: int) -> str:
    with app.extensions["ivr.sessions"]() as session:
        return str(session.scalar(select(Agent.availability).where(Agent.id == agent_id)))


def test_an_agent_with_nothing_waiting_is_told_so_and_stays_available(
        desk: Flask, standin: StandinServer) -> None:
    ana, _ = agent(desk)
    callback(desk, language="pl")  # not in a language Ana speaks
    web = signed_in(desk)
    page = web.get("/console/").get_data(as_text=True)
    assert 'data-testid="current-call">Not taking calls (away)' in page
    assert 'data-testid="take-next"' in page

    said = flash_of(web, web.post("/console/next", data={"next": "/console/"}))
    assert "ok: Nothing you qualify for is waiting. You are available" in said
    assert state_of(desk, ana) == "available" and standin.calls() == []
    panel = web.get("/console/me/current?back=/console/").get_data(as_text=True)
    assert 'data-testid="current-call">Free<' in panel and "take-next" in panel


def test_take_next_rings_the_agent_for_the_caller_first_in_line(
        desk: Flask, standin: StandinServer) -> None:
    ana, _ = agent(desk)
    later = caller_in_line(desk, due_in=timedelta(minutes=2), caller="+4915100000002")
    first = caller_in_line(desk, due_in=timedelta(seconds=30), waited=timedelta(minutes=2))
    callback(desk, due_in=timedelta(minutes=10))
    web = signed_in(desk)

    said = flash_of(web, web.post("/console/next", data={"next": "/console/"}))
    assert ("ok: Your phone is ringing: Jonas Becker is on the line, about password, "
            "priority P2.") in said
    assert state_of(desk, ana) == "on_call"
    with desk.extensions["ivr.sessions"]() as session:
        offer = session.scalar(select(LiveOffer))
        assert offer is not None and (offer.live_call_id, offer.agent_id, offer.stage) == (
            first, ana, "ringing_agent")
        assert session.get(LiveCall, later).status == "waiting"  # type: ignore[union-attr]
    [ring] = standin.calls()
    assert ring.to == ANA_PHONE and ring.url and f"/dialer/live/agent?offer={offer.id}" in ring.url

    page = web.get("/console/").get_data(as_text=True)
    panel = re.search(r'<section id="current-work".*?</section>', page, re.S)
    assert panel is not None
    assert "Your phone is ringing" in panel.group(0) and "Jonas Becker" in panel.group(0)
    assert "speaks English" in panel.group(0) and "take-next" not in panel.group(0)
    row = re.search(rf'<tr id="live-{first}".*?</tr>', page, re.S)
    assert row is not None and "ringing Ana" in row.group(0)

    refused = flash_of(web, web.post("/console/next", data={"next": "/console/"}))
    assert refused == "error: you are on a call; take the next one when it ends"
    assert len(standin.calls()) == 1


def test_a_preview_agent_gets_a_caller_on_the_line_before_a_callback(
        desk: Flask, standin: StandinServer) -> None:
    _, token = agent(desk, mode="preview", languages={"de": 3})
    callback(desk, language="de", due_in=timedelta(minutes=-5))
    waiting = caller_in_line(desk, language="de", due_in=timedelta(minutes=1))
    answer = desk.test_client().post("/api/v1/me/next",
                                     headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["outcome"] == "live"
    assert body["current"]["kind"] == "live" and body["current"]["item_id"] == waiting
    assert body["current"]["stage"] == "ringing" and body["current"]["language"] == "de"


def test_a_preview_agent_calls_the_most_urgent_callback_they_qualify_for(
        desk: Flask, standin: StandinServer) -> None:
    ana, token = agent(desk, mode="preview", languages={"de": 3})
    ben, _ = agent(desk, "ben", phone="+4930555021")
    callback(desk, language="en", due_in=timedelta(minutes=-30))  # not her language
    callback(desk, language="de", due_in=timedelta(minutes=-20), assigned=ben)  # Ben's
    later = callback(desk, language="de", due_in=timedelta(minutes=30))
    mine = callback(desk, language="de", due_in=timedelta(minutes=-10), caller=JONAS)
    bearer = {"Authorization": f"Bearer {token}"}
    client = desk.test_client()

    taken = client.post("/api/v1/me/next", headers=bearer).get_json()
    assert taken["outcome"] == "callback"
    assert taken["message"].startswith("Calling your phone now for the callback to Jonas Becker")
    with desk.extensions["ivr.sessions"]() as session:
        attempt = session.scalar(select(CallbackAttempt))
        assert attempt is not None and (attempt.request_id, attempt.agent_id, attempt.mode) == (
            mine, ana, "preview")
        assert session.get(CallbackRequest, later).status == "pending"  # type: ignore[union-attr]
    [ring] = standin.calls()
    assert ring.to == ANA_PHONE and f"/dialer/agent?attempt={attempt.id}" in (ring.url or "")

    current = client.get("/api/v1/me/current", headers=bearer).get_json()
    assert (current["kind"], current["stage"], current["item_id"]) == ("callback", "ringing",
                                                                        mine)
    assert current["caller_name"] == "Jonas Becker" and current["free"] is False
    again = client.post("/api/v1/me/next", headers=bearer)
    assert again.status_code == 409 and "on a call" in again.get_json()["message"]


def test_take_next_without_a_phone_is_refused_and_changes_nothing(desk: Flask) -> None:
    ana, token = agent(desk, phone="")
    caller_in_line(desk)
    answer = desk.test_client().post("/api/v1/me/next",
                                     headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 409
    assert answer.get_json()["message"] == "set the phone number you answer before taking calls"
    assert state_of(desk, ana) == "away"


def test_the_current_work_of_a_free_agent_as_json(desk: Flask) -> None:
    _, token = agent(desk, availability="available")
    current = desk.test_client().get("/api/v1/me/current",
                                     headers={"Authorization": f"Bearer {token}"}).get_json()
    assert current == {"availability": "available", "free": True, "kind": None, "stage": "",
                       "item_id": None, "caller": "", "caller_name": "", "language": "",
                       "category": "", "priority": "", "reasons": "", "since": None,
                       "waiting_since": None, "ticket_number": None}


def test_the_call_list_shows_live_callers_beside_callbacks_in_the_order_agents_get_them(
        desk: Flask) -> None:
    agent(desk)
    soon = callback(desk, due_in=timedelta(minutes=1), caller=JONAS)
    waiting = caller_in_line(desk, language="de", category="vdi", due_in=timedelta(seconds=30),
                             waited=timedelta(minutes=2), caller="+4915100000003")
    behind = caller_in_line(desk, language="de", category="", due_in=timedelta(minutes=3),
                            caller="+4915100000004")
    late = callback(desk, due_in=timedelta(hours=2))
    web = signed_in(desk)
    page = web.get("/console/").get_data(as_text=True)
    assert "2 callers on the line and 2 open callbacks, in the order agents get them" in page
    order = re.findall(r'<tr id="(live|callback)-(\d+)"', page)
    assert order == [("live", str(waiting)), ("callback", str(soon)), ("live", str(behind)),
                     ("callback", str(late))]
    row = re.search(rf'<tr id="live-{waiting}".*?</tr>', page, re.S)
    assert row is not None
    text = re.sub(r"\s+", " ", row.group(0))
    assert "on the line now" in text and "speaks German" in text and "vdi" in text
    assert "number 1 in line" in text and "waiting on the line" in text
    since = re.search(r'class="timer" data-since="([^"]+)"', text)
    assert since and since.group(1).endswith("Z")
    assert datetime.fromisoformat(since.group(1)) < utcnow() - timedelta(seconds=100)
    second = re.search(rf'<tr id="live-{behind}".*?</tr>', page, re.S)
    assert second is not None and "number 2 in line" in second.group(0)
    assert "no particular topic" in second.group(0)
    fragment = web.get("/console/list").get_data(as_text=True)
    assert f'id="live-{waiting}"' in fragment and "<html" not in fragment
