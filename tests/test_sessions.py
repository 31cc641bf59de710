"""Console sessions can be ended: signing out, a new password, deactivation and an admin's
"sign out everywhere" end every copy of an agent's session cookie at its next request. API
tokens are not sessions. Signing in and out moves agents between offline and away."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from callbacks.workqueue.accounts import (
    deactivate,
    reset_password,
    sign_out_everywhere,
)
from callbacks.workqueue.agents import Agent, create_agent, issue_api_token

PASSWORD = "correct horse battery"


def _agent(app: Flask, name: str = "ana", role: str = "agent") -> tuple[int, str]:
    """A new account (offline) and its API token."""
    with app.extensions["ivr.sessions"]() as session:
        agent = create_agent(session, name, PASSWORD, display_name=name.title(), role=role)
        token = issue_api_token(agent)
        session.commit()
        return agent.id, token


def _signed_in(app: Flask, name: str = "ana") -> FlaskClient:
    client = app.test_client()
    page = client.get("/console/sign-in").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    answer = client.post("/console/sign-in", data={"username": name, "password": PASSWORD,
                                                    "csrf_token": csrf.group(1)})
    assert answer.status_code == 303
    return client


def _copy_of(client: FlaskClient, app: Flask) -> FlaskClient:
    """Another browser holding a copy of `client`'s session cookie (stolen, or a second tab)."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    other = app.test_client()
    other.set_cookie("session", cookie.value)
    return other


def _works(client: FlaskClient) -> bool:
    answer = client.get("/console/")
    assert answer.status_code in (200, 302)
    return answer.status_code == 200


def _availability(app: Flask, agent_id: int) -> str:
    with app.extensions["ivr.sessions"]() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        return agent.availability


def _csrf(client: FlaskClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"',
                      client.get("/console/").get_data(as_text=True))
    assert found
    return found.group(1)


def test_a_copied_cookie_stops_working_when_the_agent_signs_out(app: Flask) -> None:
    _agent(app)
    browser = _signed_in(app)
    copy = _copy_of(browser, app)
    assert _works(copy)
    assert browser.post("/console/sign-out",
                        data={"csrf_token": _csrf(browser)}).status_code == 303
    assert not _works(browser)
    assert not _works(copy)  # the copy is refused too, without any cookie change of its own
    assert copy.get("/api/v1/me").status_code == 401


def test_signing_out_through_the_api_ends_copies_too(app: Flask) -> None:
    _agent(app)
    client = app.test_client()
    signed = client.post("/api/v1/session", json={"username": "ana", "password": PASSWORD})
    assert signed.status_code == 200 and signed.get_json()["agent"]["availability"] == "away"
    copy = _copy_of(client, app)
    assert copy.get("/api/v1/me").status_code == 200
    assert client.delete("/api/v1/session", headers={
        "X-CSRFToken": signed.get_json()["csrf_token"]}).status_code == 204
    assert copy.get("/api/v1/me").status_code == 401


def _by_admin(change: Callable[[Session, Agent], object]) -> Callable[[Flask, int], None]:
    def apply(app: Flask, agent_id: int) -> None:
        with app.extensions["ivr.sessions"]() as session:
            agent = session.get(Agent, agent_id)
            assert agent is not None
            change(session, agent)
            session.commit()
    return apply


@pytest.mark.parametrize(("what", "change", "token_survives"), [
    ("a new password", _by_admin(lambda s, a: reset_password(s, a, "rita", "a new passphrase!")),
     True),
    ("sign out everywhere", _by_admin(lambda s, a: sign_out_everywhere(s, a, "rita")), True),
    ("deactivation", _by_admin(lambda s, a: deactivate(s, a, "rita")), False),
])
def test_every_session_ends_after(app: Flask, what: str, change: Callable[[Flask, int], None],
                                  token_survives: bool) -> None:
    agent_id, token = _agent(app)
    _agent(app, "rita", role="admin")  # deactivating ana leaves an admin
    desk, laptop = _signed_in(app), _signed_in(app)  # two sign-ins, two cookies
    copy = _copy_of(desk, app)
    assert all(_works(client) for client in (desk, laptop, copy))
    change(app, agent_id)
    assert not any(_works(client) for client in (desk, laptop, copy)), what
    bearer = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert (bearer.status_code == 200) is token_survives, what


def test_a_new_sign_in_after_sign_out_everywhere_works(app: Flask) -> None:
    agent_id, _ = _agent(app)
    _signed_in(app)
    _by_admin(lambda s, a: sign_out_everywhere(s, a, "rita"))(app, agent_id)
    assert _works(_signed_in(app))


def test_new_accounts_start_offline_sign_in_makes_them_away_sign_out_offline(app: Flask) -> None:
    agent_id, _ = _agent(app)
    assert _availability(app, agent_id) == "offline"
    browser = _signed_in(app)
    assert _availability(app, agent_id) == "away"
    page = browser.get("/console/").get_data(as_text=True)
    options = re.findall(r'<option value="([a-z_]+)"', page)
    assert options == ["available", "wrap_up", "away"]  # never on call or offline
    browser.post("/console/sign-out", data={"csrf_token": _csrf(browser)})
    assert _availability(app, agent_id) == "offline"


def test_an_agent_on_a_call_who_signs_out_stays_on_it(app: Flask) -> None:
    agent_id, _ = _agent(app)
    browser = _signed_in(app)
    with app.extensions["ivr.sessions"]() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        agent.availability = "on_call"
        session.commit()
    page = browser.get("/console/").get_data(as_text=True)
    assert 'id="availability"' not in page  # no menu that would claim "available"
    assert "Your state changes when the call ends." in page
    browser.post("/console/sign-out", data={"csrf_token": _csrf(browser)})
    assert _availability(app, agent_id) == "on_call"
    assert not _works(browser)


def test_agents_cannot_choose_offline_or_on_call(app: Flask) -> None:
    agent_id, token = _agent(app)
    for state in ("offline", "on_call"):
        answer = app.test_client().put("/api/v1/me/availability", json={"availability": state},
                                       headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 422, state
    assert _availability(app, agent_id) == "offline"
