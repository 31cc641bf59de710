"""A ticket's one-click actions in the console (CSRF-protected forms, flashes) and the JSON API:
take, assign, status and reopen, internal notes and replies, priority; what the caller will
be texted is shown before and said after, only when a text will really go out."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from callbacks.tickets.ticket import Ticket, history
from callbacks.workqueue.agents import create_agent, issue_api_token
from ivr.standin import StandinServer
from tests.conftest import desk_app

PASSWORD = "correct horse battery"
MOBILE = "+4915112345678"  # Katrin Schäfer in flows/directory.csv
LANDLINE = "+493012345699"


@pytest.fixture
def desk(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    with desk_app(database_url, redis_url, standin) as app:
        with app.extensions["ivr.sessions"]() as session:
            for name in ("ann", "ben"):
                create_agent(session, name, PASSWORD, display_name=name.title())
            session.commit()
        yield app


def _ticket(app: Flask, caller: str = MOBILE, status: str = "new") -> str:
    with app.extensions["ivr.sessions"]() as session:
        ticket = Ticket(call_sid="CA" + "2" * 32, caller=caller, language="de",
                        category="network", priority="P3", status=status,
                        transcription="done", transcript="Das VPN geht nicht",
                        sms_sid="SM" + "0" * 32)
        session.add(ticket)
        session.commit()
        return ticket.number


def _token(page: TestResponse) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found
    return found.group(1)


def _signed_in(app: Flask, name: str = "ann") -> FlaskClient:
    web = app.test_client()
    web.post("/console/sign-in", data={"username": name, "password": PASSWORD,
                                       "csrf_token": _token(web.get("/console/sign-in"))})
    return web


def _act(web: FlaskClient, number: str, action: str, **form: str) -> str:
    """Post one of the ticket page's forms as the page would; the page it returns to."""
    token = _token(web.get(f"/console/tickets/{number}"))
    answer = web.post(f"/console/tickets/{number}/{action}", data={"csrf_token": token, **form})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    assert answer.headers["Location"] == f"/console/tickets/{number}"
    return web.get(answer.headers["Location"]).get_data(as_text=True)


def _status(app: Flask, number: str) -> str:
    with app.extensions["ivr.sessions"]() as session:
        ticket = session.get(Ticket, int(number) - 10000)
        assert ticket is not None
        return ticket.status


def test_the_ticket_page_shows_what_each_move_would_text_the_caller(desk: Flask) -> None:
    number = _ticket(desk)
    page = _signed_in(desk).get(f"/console/tickets/{number}").get_data(as_text=True)
    for status in ("assigned", "in_progress", "waiting_for_caller", "resolved", "closed"):
        assert f'data-testid="status-{status}"' in page
    assert ('<q data-testid="preview-in_progress">IT-Service-Desk: Wir bearbeiten Ihr Ticket '
            '10001. [your note]</q>') in page
    assert ('<q data-testid="preview-reply">IT-Service-Desk, Ticket 10001: [your reply]</q>'
            in page)
    assert "A reply is texted in German" in page and 'data-testid="take"' in page
    landline = _ticket(desk, caller=LANDLINE)
    page = _signed_in(desk).get(f"/console/tickets/{landline}").get_data(as_text=True)
    assert "none: the caller&#39;s number cannot receive texts" in page
    assert 'data-testid="reply" disabled' in page and "preview-" not in page


def test_each_console_action_flashes_what_happened(desk: Flask) -> None:
    number = _ticket(desk)
    web = _signed_in(desk)
    page = _act(web, number, "take")
    assert "You took ticket 10001. The caller will get a text in German." in page
    assert 'data-testid="ticket-assignee">Ann<' in page and 'data-testid="take"' not in page
    page = _act(web, number, "status", status="in_progress", note="")
    assert "Ticket 10001 is now in progress. The caller will get a text in German." in page
    page = _act(web, number, "status", status="resolved", note="")
    assert "write a short note for the caller" in page and _status(desk, number) == "in_progress"
    page = _act(web, number, "status", status="new")
    assert "cannot go from in progress to new" in page
    page = _act(web, number, "note", kind="note", text="Checked the logs")
    assert "Internal note added to ticket 10001." in page and "text" not in page.split(
        "Internal note added")[1].split("</li>")[0]
    page = _act(web, number, "note", kind="reply", text="Bitte neu starten")
    assert "Reply added to ticket 10001. The caller will get a text in German." in page
    page = _act(web, number, "status", status="resolved", note="VPN-Profil erneuert")
    assert "Ticket 10001 is now resolved." in page and 'data-testid="status-reopened"' in page
    page = _act(web, number, "status", status="reopened", note="")
    assert "Ticket 10001 is now assigned." in page
    page = _act(web, number, "assign", agent_id="")
    assert "Ticket 10001 is assigned to nobody now." in page
    page = _act(web, number, "priority", priority="P1")
    assert "Ticket 10001 is now P1." in page
    page = _act(web, number, "priority", priority="P9")
    assert "&#39;P9&#39; is not a priority" in page
    page = _act(web, number, "assign", agent_id="ann")
    assert "no such agent" in page
    with desk.extensions["ivr.sessions"]() as session:
        kinds = [event.kind for event in history(session, 1)]
    assert kinds.count("status") == 5 and "note" in kinds and "reply" in kinds
    assert "priority" in kinds


def test_a_reply_to_a_caller_who_cannot_get_texts_is_refused(desk: Flask) -> None:
    number = _ticket(desk, caller=LANDLINE)
    web = _signed_in(desk)
    page = _act(web, number, "note", kind="reply", text="Hallo")
    assert "the caller cannot get a reply: the caller&#39;s number cannot receive texts" in page
    page = _act(web, number, "take")
    assert "The caller gets no text: the caller&#39;s number cannot receive texts." in page


def test_forms_without_the_csrf_token_change_nothing(desk: Flask) -> None:
    number = _ticket(desk)
    web = _signed_in(desk)
    for action in ("take", "assign", "status", "note", "priority"):
        answer = web.post(f"/console/tickets/{number}/{action}", data={"status": "resolved"})
        assert answer.status_code == 400, action
        assert "Form expired" in answer.get_data(as_text=True)
    assert _status(desk, number) == "new"
    token = _token(web.get("/console/"))
    assert web.post("/console/tickets/10999/take", data={"csrf_token": token}).status_code == 404


# --- the JSON API ---------------------------------------------------------------------------


def _bearer(app: Flask, name: str = "ann") -> dict[str, str]:
    from sqlalchemy import select

    from callbacks.workqueue.agents import Agent

    with app.extensions["ivr.sessions"]() as session:
        agent = session.scalar(select(Agent).where(Agent.username == name))
        assert agent is not None
        token = issue_api_token(agent)
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_the_api_actions_answer_with_the_ticket_the_event_and_the_callers_text(
        desk: Flask) -> None:
    number = _ticket(desk)
    client, headers = desk.test_client(), _bearer(desk)
    taken = client.post(f"/api/v1/tickets/{number}/take", headers=headers).get_json()
    assert taken["ticket"]["status"] == "assigned" and taken["event"]["kind"] == "assigned"
    assert taken["caller_text"] == {
        "what": "assigned", "language": "de",
        "body": "IT-Service-Desk: Ihr Ticket 10001 wurde einem Mitarbeiter zugewiesen."}
    moved = client.post(f"/api/v1/tickets/{number}/status", headers=headers,
                        json={"status": "waiting_for_caller", "note": "Neustart bitte"})
    assert moved.status_code == 200
    assert moved.get_json()["event"]["detail"] == "assigned -> waiting_for_caller: Neustart bitte"
    refused = client.post(f"/api/v1/tickets/{number}/status", headers=headers,
                          json={"status": "new"})
    assert refused.status_code == 400 and "cannot go from" in refused.get_json()["message"]
    assert client.post(f"/api/v1/tickets/{number}/status", headers=headers,
                       json={"status": "open"}).status_code == 422
    note = client.post(f"/api/v1/tickets/{number}/notes", headers=headers,
                       json={"text": "internal only"}).get_json()
    assert note["event"]["kind"] == "note" and note["caller_text"] is None
    reply = client.post(f"/api/v1/tickets/{number}/notes", headers=headers,
                        json={"text": "Bitte neu starten", "kind": "reply"}).get_json()
    assert reply["caller_text"]["body"] == "IT-Service-Desk, Ticket 10001: Bitte neu starten"
    assigned = client.post(f"/api/v1/tickets/{number}/assign", headers=headers,
                           json={"agent_id": None}).get_json()
    assert assigned["ticket"]["assigned_agent_id"] is None
    prioritised = client.post(f"/api/v1/tickets/{number}/priority", headers=headers,
                              json={"priority": "P1"}).get_json()
    assert prioritised["ticket"]["priority"] == "P1" and prioritised["ticket"]["due_at"]
    detail = client.get(f"/api/v1/tickets/{number}", headers=headers).get_json()
    kinds = [event["kind"] for event in detail["events"]]
    assert kinds[:3] == ["assigned", "status", "status"] and "reply" in kinds
    assert detail["events"][1]["notify"] is True
    assert client.post("/api/v1/tickets/10999/take", headers=headers).status_code == 404
    assert client.post(f"/api/v1/tickets/{number}/take").status_code == 401


@pytest.mark.parametrize("odd", ["²", "٣", "99999999999", "12a"])
def test_numbers_no_column_can_hold_are_refused_with_a_message(desk: Flask, odd: str) -> None:
    number = _ticket(desk)
    page = _act(_signed_in(desk), number, "assign", agent_id=odd)
    assert "no such agent" in page
    assert _status(desk, number) == "new"
    web = _signed_in(desk)
    token = _token(web.get(f"/console/tickets/{number}"))
    linked = web.post(f"/console/tickets/{number}/incident",
                      data={"csrf_token": token, "incident": odd})
    assert linked.status_code == 303  # back to the ticket with a message, never a 500


@pytest.mark.parametrize("odd", ["²", "٣", "99999999999", "", "INC-²", "#12a"])
def test_ticket_and_incident_numbers_that_cannot_be_ids_name_nothing(odd: str) -> None:
    from callbacks.incidents.incident import incident_id_from_number
    from callbacks.tickets.ticket import ticket_id_from_number

    assert ticket_id_from_number(odd) is None
    assert incident_id_from_number(odd) is None
    assert ticket_id_from_number("10042") == 42 and incident_id_from_number("INC-10042") == 42
