"""Every route of the app, walked from its URL map: Twilio's routes refuse unsigned requests,
console and API routes refuse anonymous visitors, admin routes refuse agents, and a route that
fits none of these is on the short list of public ones. A new route must be placed here."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.routing import Rule

from callbacks.workqueue.agents import create_agent, issue_api_token
from tests.conftest import app_config, empty_tables

TWILIO_PREFIXES = ("/voice", "/dialer", "/sms")
PUBLIC = {
    ("/healthz", "GET"), ("/readyz", "GET"), ("/metrics", "GET"),
    ("/static/<path:filename>", "GET"),
    ("/console/sign-in", "GET"), ("/console/sign-in", "POST"),
    ("/api/v1/openapi.json", "GET"), ("/api/v1/session", "POST"),
    ("/api/v1/delivery/inbound/<name>", "POST"),
}
"""Reachable without signing in: probes, metrics (IVR_METRICS_TOKEN guards them when set),
static files, the sign-in form and API sign-in, the API's description, and the status changes
a ticket system reports back (signed with its connector's secret instead)."""
SAMPLE_VALUES = {"name": "it-support", "slug": "calls-by-hour", "filename": "console.css",
                 "number": "10001"}


@pytest.fixture(scope="module")
def desk(database_url: str) -> Iterator[tuple[Flask, str]]:
    """The app with CSRF off (its own tests cover it), so each answer shows the access rule;
    yields the app and an agent's API token."""
    from ivr import create_app

    app = create_app(app_config(database_url, WTF_CSRF_ENABLED=False))
    with app.extensions["ivr.sessions"]() as session:
        agent = create_agent(session, "route-walker", "correct horse battery")
        token = issue_api_token(agent)
        session.commit()
    yield app, token
    empty_tables(app)


def _routes(app: Flask) -> list[tuple[Rule, str]]:
    return sorted(((rule, method) for rule in app.url_map.iter_rules()
                   for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})),
                  key=lambda item: (item[0].rule, item[1]))


def _path(rule: Rule) -> str:
    """The rule with a plausible value in each variable (1 for integers)."""
    def value(found: re.Match[str]) -> str:
        converter, argument = found.group(1), found.group(2)
        return "1" if converter == "int" else SAMPLE_VALUES.get(argument, "x")

    return re.sub(r"<(?:(\w+):)?(\w+)>", value, rule.rule)


def test_every_route_is_guarded_or_listed_as_public(desk: tuple[Flask, str]) -> None:
    app, _ = desk
    client = app.test_client()
    unguarded = []
    for rule, method in _routes(app):
        if (rule.rule, method) in PUBLIC:
            continue
        answer = client.open(_path(rule), method=method, json={} if method != "GET" else None)
        if rule.rule.startswith(TWILIO_PREFIXES):
            denied = answer.status_code == 403  # unsigned: refused before anything runs
        elif rule.rule.startswith("/api/"):
            denied = answer.status_code == 401
        else:
            denied = answer.status_code in (302, 303) and "/console/sign-in" in answer.location
        if not denied:
            unguarded.append(f"{method} {rule.rule}: {answer.status_code}")
    assert unguarded == []


def test_agents_are_refused_every_admin_route(desk: tuple[Flask, str]) -> None:
    app, token = desk
    client = app.test_client()
    admin_routes = [(rule, method) for rule, method in _routes(app)
                    if rule.rule.startswith("/admin") or rule.rule == "/api/v1/agents"]
    assert len(admin_routes) >= 15
    answers = {f"{method} {rule.rule}": client.open(
        _path(rule), method=method, json={} if method != "GET" else None,
        headers={"Authorization": f"Bearer {token}"}).status_code
        for rule, method in admin_routes}
    assert set(answers.values()) == {403}, answers


def test_the_public_list_names_only_routes_that_exist(desk: tuple[Flask, str]) -> None:
    app, _ = desk
    existing = {(rule.rule, method) for rule, method in _routes(app)}
    assert existing >= PUBLIC


@pytest.fixture(scope="module")
def guarded(database_url: str) -> Iterator[Flask]:
    """The app as deployed: CSRF on; an admin account to sign in with."""
    from ivr import create_app

    app = create_app(app_config(database_url))
    with app.extensions["ivr.sessions"]() as session:
        create_agent(session, "csrf-root", "correct horse battery", role="admin")
        session.commit()
    yield app
    empty_tables(app)


def test_every_change_from_a_signed_in_browser_needs_a_csrf_token(guarded: Flask) -> None:
    """A forged cross-site post rides on the admin's cookie but cannot know the token: every
    route that changes something refuses it (Twilio's routes are signed instead, bearer-token
    API calls carry no cookie, sign-in has no session yet)."""
    client = guarded.test_client()
    page = client.get("/console/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    signed = client.post("/console/sign-in", data={
        "username": "csrf-root", "password": "correct horse battery",
        "csrf_token": token.group(1)})
    assert signed.status_code in (302, 303)
    changing = [(rule, method) for rule, method in _routes(guarded)
                if method in ("POST", "PUT", "PATCH", "DELETE")
                and not rule.rule.startswith(TWILIO_PREFIXES)
                and (rule.rule, method) not in PUBLIC]
    assert len(changing) >= 20
    accepted = {}
    for rule, method in changing:
        for body in ({"data": {"source": "x"}}, {"json": {}}):
            answer = client.open(_path(rule), method=method, **body)  # type: ignore[arg-type]
            text = answer.get_data(as_text=True)
            # The console says "Form expired"; the admin pages and the API name the token.
            if answer.status_code != 400 or not ("CSRF" in text or "Form expired" in text):
                accepted[f"{method} {rule.rule}"] = answer.status_code
    assert accepted == {}
