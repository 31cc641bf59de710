"""The admin's agent pages through Flask's test client: the list with skills and sign-in waits,
creating, editing, deactivating and reactivating accounts, resetting passwords, unlocking and
signing out everywhere; each with a CSRF token, a flash and an entry in the account history."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from callbacks.workqueue.accounts import AccountEvent
from callbacks.workqueue.agents import Agent, authenticate, create_agent
from callbacks.workqueue.skills import skills_of
from ivr import signin_limits
from tests.conftest import app_config, empty_tables

PASSWORD = "correct horse battery"


@pytest.fixture
def desk(database_url: str, redis_url: str) -> Iterator[Flask]:
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url))
    with app.extensions["ivr.sessions"]() as session:
        create_agent(session, "rita", PASSWORD, display_name="Rita Root", role="admin")
        create_agent(session, "ana", PASSWORD, display_name="Ana Lima", phone="+4930555020")
        session.commit()
    yield app
    empty_tables(app)


def _csrf(page: TestResponse) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)[:300]
    return found.group(1)


def _sign_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    token = _csrf(client.get("/console/sign-in"))
    answer = client.post("/console/sign-in", data={"username": username, "password": PASSWORD,
                                                    "csrf_token": token})
    assert answer.status_code == 303
    return client


@pytest.fixture
def admin(desk: Flask) -> FlaskClient:
    return _sign_in(desk, "rita")


def _post(client: FlaskClient, path: str, **form: str) -> TestResponse:
    return client.post(path, data={"csrf_token": _csrf(client.get("/admin/agents")), **form})


def _followed(client: FlaskClient, answer: TestResponse) -> str:
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return client.get(answer.headers["Location"]).get_data(as_text=True)


def _agent(app: Flask, username: str) -> Agent:
    with app.extensions["ivr.sessions"]() as session:
        agent = session.scalar(select(Agent).where(Agent.username == username))
        assert agent is not None
        return agent


def _history(app: Flask, username: str) -> list[tuple[str, str, str]]:
    with app.extensions["ivr.sessions"]() as session:
        return [(event.action, event.by, event.detail) for event in session.scalars(
            select(AccountEvent).join(Agent, Agent.id == AccountEvent.agent_id)
            .where(Agent.username == username).order_by(AccountEvent.id))]


def _signs_in(app: Flask, username: str, password: str) -> bool:
    with app.extensions["ivr.sessions"]() as session:
        return authenticate(session, username, password) is not None


def test_the_agents_page_is_linked_and_lists_every_account(desk: Flask,
                                                           admin: FlaskClient) -> None:
    assert 'href="/admin/agents"' in admin.get("/admin/").get_data(as_text=True)
    page = admin.get("/admin/agents").get_data(as_text=True)
    assert 'data-agent="ana"' in page and 'data-agent="rita"' in page
    assert "+4930555020" in page and "offline" in page
    assert admin.get("/admin/agents").headers["Cache-Control"] == "private, no-store"
    agent = _sign_in(desk, "ana")
    assert agent.get("/admin/agents").status_code == 403
    assert desk.test_client().get("/admin/agents").status_code == 302


def test_an_admin_creates_an_agent_with_skills_and_a_typed_password(
        desk: Flask, admin: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="callbacks.workqueue.accounts"):
        page = _followed(admin, _post(
            admin, "/admin/agents", username="Ben", display_name="Ben Ode", role="agent",
            phone="+49 30 555 021", dial_mode="progressive", languages="de:3, en",
            topics="password:2, vdi:1", password="ben's long passphrase"))
    assert "Account ben created with the password you typed." in page
    row = re.search(r'<tr data-agent="ben".*?</tr>', page, re.S)
    assert row is not None
    assert "de:3, en:2" in row.group(0) and "password:2, vdi:1" in row.group(0)
    ben = _agent(desk, "ben")
    assert (ben.display_name, ben.phone, ben.dial_mode, ben.availability) == (
        "Ben Ode", "+4930555021", "progressive", "offline")
    assert _signs_in(desk, "ben", "ben's long passphrase")
    assert _history(desk, "ben") == [("created", "rita", "agent, progressive mode")]
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert f"agent account {ben.id}: created by an admin" in logged
    assert "ben" not in logged.lower() and "+49" not in logged  # no personal data in the log


def test_a_generated_password_is_shown_once(desk: Flask, admin: FlaskClient) -> None:
    answer = _post(admin, "/admin/agents", username="cleo", role="agent", dial_mode="preview")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "private, no-store"
    shown = re.search(r'data-testid="generated-password">([^<]+)<', answer.get_data(True))
    assert shown is not None
    assert _signs_in(desk, "cleo", shown.group(1))
    assert shown.group(1) not in admin.get("/admin/agents").get_data(as_text=True)


@pytest.mark.parametrize(("fields", "message"), [
    ({"username": "ana"}, "an agent named 'ana' exists already"),
    ({"username": "dan", "password": "short"}, "a password needs at least 10 characters"),
    ({"username": "dan", "phone": "12"}, "is not a phone number in international form"),
    ({"username": "dan", "languages": "german:3"}, "a language is a 2-3 letter code"),
    ({"username": "dan", "topics": "vdi:7"}, "level 7 is not one of 1, 2, 3"),
    ({"username": "dan", "role": "boss"}, "role must be one of agent, admin"),
])
def test_a_refused_account_keeps_the_form_and_says_why(desk: Flask, admin: FlaskClient,
                                                       fields: dict[str, str],
                                                       message: str) -> None:
    form = {"role": "agent", "dial_mode": "preview", "display_name": "Dan Dee", **fields}
    answer = _post(admin, "/admin/agents", **form)
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert message.replace("'", "&#39;") in page and 'value="Dan Dee"' in page
    with desk.extensions["ivr.sessions"]() as session:
        assert session.scalar(select(Agent).where(Agent.username == "dan")) is None


def test_an_admin_edits_name_role_phone_mode_and_skills(desk: Flask, admin: FlaskClient) -> None:
    ana = _agent(desk, "ana")
    page = _followed(admin, _post(
        admin, f"/admin/agents/{ana.id}", display_name="Ana Lima-Berg", role="admin",
        phone="+4930555029", dial_mode="preview", languages="pl:3, de:1", topics="vdi"))
    assert "Saved ana: name, role, phone, dial mode, languages, topics." in page
    assert 'value="pl:3, de:1"' not in page and 'value="de:1, pl:3"' in page
    ana = _agent(desk, "ana")
    assert (ana.display_name, ana.role, ana.phone, ana.dial_mode) == (
        "Ana Lima-Berg", "admin", "+4930555029", "preview")
    with desk.extensions["ivr.sessions"]() as session:
        skills = skills_of(session, ana.id)
    assert (skills.languages, skills.topics) == ({"de": 1, "pl": 3}, {"vdi": 2})
    [edit] = _history(desk, "ana")
    assert edit[:2] == ("edited", "rita")
    assert "role admin" in edit[2] and "languages de:1, pl:3" in edit[2]
    again = _followed(admin, _post(
        admin, f"/admin/agents/{ana.id}", display_name="Ana Lima-Berg", role="admin",
        phone="+4930555029", dial_mode="preview", languages="de:1, pl:3", topics="vdi:2"))
    assert "Nothing changed for ana." in again
    refused = _post(admin, f"/admin/agents/{ana.id}", display_name="X", role="agent",
                    phone="not a number", dial_mode="preview", languages="", topics="")
    assert refused.status_code == 422 and "Not saved" in refused.get_data(as_text=True)
    assert _agent(desk, "ana").display_name == "Ana Lima-Berg"  # nothing of it was saved


def test_the_last_admin_cannot_be_demoted_or_deactivated(desk: Flask, admin: FlaskClient) -> None:
    rita = _agent(desk, "rita")
    page = _followed(admin, _post(admin, f"/admin/agents/{rita.id}/deactivate"))
    assert "rita is the last active admin; make someone else an admin first" in page
    refused = _post(admin, f"/admin/agents/{rita.id}", display_name="Rita", role="agent",
                    phone="", dial_mode="preview", languages="", topics="")
    assert refused.status_code == 422 and "last active admin" in refused.get_data(as_text=True)
    assert _agent(desk, "rita").role == "admin" and _agent(desk, "rita").active


def test_deactivate_and_reactivate(desk: Flask, admin: FlaskClient) -> None:
    ana = _agent(desk, "ana")
    ana_browser = _sign_in(desk, "ana")
    page = _followed(admin, _post(admin, f"/admin/agents/{ana.id}/deactivate"))
    assert "ana is deactivated" in page and 'data-testid="account-state">deactivated' in page
    assert ana_browser.get("/console/").status_code == 302  # signed out at once
    assert not _signs_in(desk, "ana", PASSWORD)
    assert _agent(desk, "ana").availability == "offline"
    page = _followed(admin, _post(admin, f"/admin/agents/{ana.id}/reactivate"))
    assert "ana may sign in again" in page
    assert _signs_in(desk, "ana", PASSWORD)
    assert [action for action, _, _ in _history(desk, "ana")] == ["deactivated", "reactivated"]


def test_reset_a_password_typed_or_generated(desk: Flask, admin: FlaskClient) -> None:
    ana = _agent(desk, "ana")
    ana_browser = _sign_in(desk, "ana")
    page = _followed(admin, _post(admin, f"/admin/agents/{ana.id}/password",
                                  password="a brand new passphrase"))
    assert "Password of ana changed; their sessions have ended." in page
    assert ana_browser.get("/console/").status_code == 302
    assert _signs_in(desk, "ana", "a brand new passphrase")
    generated = _post(admin, f"/admin/agents/{ana.id}/password", password="")
    shown = re.search(r'data-testid="generated-password">([^<]+)<', generated.get_data(True))
    assert shown is not None and _signs_in(desk, "ana", shown.group(1))
    weak = _followed(admin, _post(admin, f"/admin/agents/{ana.id}/password", password="short"))
    assert "Password not changed: a password needs at least 10 characters" in weak
    assert [detail for action, _, detail in _history(desk, "ana")] == [
        "typed by the admin", "generated, shown once"]


def test_unlock_a_slowed_sign_in(desk: Flask, admin: FlaskClient) -> None:
    for _ in range(2):
        desk.test_client().post("/api/v1/session", json={"username": "ana", "password": "no"})
    ana = _agent(desk, "ana")
    page = admin.get("/admin/agents").get_data(as_text=True)
    row = re.search(r'<tr data-agent="ana".*?</tr>', page, re.S)
    assert row is not None and "waits" in row.group(0)
    assert "waits" in admin.get(f"/admin/agents/{ana.id}").get_data(as_text=True)
    page = _followed(admin, _post(admin, f"/admin/agents/{ana.id}/unlock"))
    assert "ana may sign in again at once." in page
    assert "no recent failed attempts" in page
    with desk.test_request_context():
        assert not signin_limits.state_of("ana").slowed
    assert desk.test_client().post("/api/v1/session", json={
        "username": "ana", "password": PASSWORD}).status_code == 200
    assert [action for action, _, _ in _history(desk, "ana")] == ["unlocked"]


def test_sign_out_everywhere(desk: Flask, admin: FlaskClient) -> None:
    ana = _agent(desk, "ana")
    phone, laptop = _sign_in(desk, "ana"), _sign_in(desk, "ana")
    page = _followed(admin, _post(admin, f"/admin/agents/{ana.id}/sign-out"))
    assert "ana is signed out everywhere." in page
    assert phone.get("/console/").status_code == 302 and laptop.get("/console/").status_code == 302
    assert admin.get("/admin/agents").status_code == 200  # the admin's own session stays
    assert [action for action, _, _ in _history(desk, "ana")] == ["signed_out_everywhere"]


def test_every_action_needs_a_csrf_token(database_url: str, redis_url: str) -> None:
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url))
    try:
        with app.extensions["ivr.sessions"]() as session:
            create_agent(session, "rita", PASSWORD, role="admin")
            ana = create_agent(session, "ana", PASSWORD)
            session.commit()
            ana_id = ana.id
        admin = _sign_in(app, "rita")
        for path in ("/admin/agents", f"/admin/agents/{ana_id}",
                     f"/admin/agents/{ana_id}/deactivate", f"/admin/agents/{ana_id}/password",
                     f"/admin/agents/{ana_id}/unlock", f"/admin/agents/{ana_id}/sign-out",
                     f"/admin/agents/{ana_id}/reactivate"):
            answer = admin.post(path, data={"username": "eve", "password": "x" * 12})
            assert answer.status_code == 400, path
        assert _history(app, "ana") == []
        assert admin.get("/admin/agents/4242").status_code == 404
    finally:
        empty_tables(app)
