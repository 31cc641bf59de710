"""Cookies and headers: the session cookie is SameSite=Lax and HttpOnly, every page carries a
Content-Security-Policy without inline code and refuses framing and sniffing, production adds
HSTS, and no template holds a script, style or event handler the policy would block."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from callbacks.workqueue.agents import create_agent
from tests.conftest import app_config, empty_tables, twilio_post

PASSWORD = "correct horse battery"
TEMPLATES = Path(__file__).resolve().parents[1] / "ivr" / "templates"


@pytest.fixture
def desk(database_url: str) -> Iterator[Flask]:
    from ivr import create_app

    app = create_app(app_config(database_url, WTF_CSRF_ENABLED=False))
    with app.extensions["ivr.sessions"]() as session:
        create_agent(session, "rita", PASSWORD, display_name="Rita Root", role="admin")
        session.commit()
    yield app
    empty_tables(app)


def signed_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    answer = client.post("/console/sign-in", data={"username": "rita", "password": PASSWORD})
    assert answer.status_code == 303
    return client


def csp_directives(value: str) -> dict[str, list[str]]:
    return {name: rest for name, *rest in (part.split() for part in value.split(";"))}


def test_the_session_cookie_is_same_site_lax_and_http_only(desk: Flask) -> None:
    assert desk.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    answer = desk.test_client().post("/console/sign-in",
                                     data={"username": "rita", "password": PASSWORD})
    cookie = answer.headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie
    assert "Secure" not in cookie  # only in production, which is https


def test_a_deployment_may_choose_strict(database_url: str) -> None:
    from ivr import create_app

    app = create_app(app_config(database_url, SESSION_COOKIE_SAMESITE="Strict"))
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Strict"
    empty_tables(app)


def test_every_page_gets_the_security_headers(desk: Flask) -> None:
    client = signed_in(desk)
    for url in ("/console/sign-in", "/console/", "/admin/", "/admin/reports",
                "/api/v1/me", "/static/console.css", "/console/no-such-page"):
        headers = client.get(url).headers
        policy = csp_directives(headers["Content-Security-Policy"])
        assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"], url
        assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
        assert headers["X-Frame-Options"] == "DENY", url
        assert headers["X-Content-Type-Options"] == "nosniff", url
        assert headers["Referrer-Policy"] == "same-origin", url
        assert "Strict-Transport-Security" not in headers  # not in development
    assert "'unsafe-inline'" not in client.get("/console/").headers["Content-Security-Policy"]


def test_twilio_webhooks_answer_plain_twiml(desk: Flask) -> None:
    answer = twilio_post(desk.test_client(), "/voice/fallback", {"CallSid": "CA" + "1" * 32})
    assert answer.status_code == 200 and answer.mimetype == "text/xml"
    assert "Content-Security-Policy" not in answer.headers


def test_production_adds_hsts_and_secure_cookies(tmp_path: Path) -> None:
    from ivr import create_app
    from tests.test_config import REAL

    app = create_app({**REAL, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    headers = app.test_client().get("/console/sign-in").headers
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert app.config["SESSION_COOKIE_SECURE"] is True


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
     "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> block"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def test_no_template_holds_code_the_policy_would_block() -> None:
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) >= 20
    found = [f"{path.relative_to(TEMPLATES)}: {what}" for path in templates
             for pattern, what in INLINE if pattern.search(path.read_text(encoding="utf-8"))]
    assert found == []
