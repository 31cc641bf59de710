"""Sign-in rate limits on the console form and the API session route: 5 failures per user name
or client address in 15 minutes, then 429 with Retry-After; success clears the name's count."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from werkzeug.test import TestResponse

from callbacks.workqueue.agents import create_agent
from tests.conftest import app_config, empty_tables

PASSWORD = "correct horse battery"


def _agent(app: Flask, name: str) -> None:
    with app.extensions["ivr.sessions"]() as session:
        create_agent(session, name, PASSWORD, display_name=name.title())
        session.commit()


def _console(web: FlaskClient, username: str, password: str,
             address: str = "10.0.0.1") -> TestResponse:
    page = web.get("/console/sign-in").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return web.post("/console/sign-in", data={"username": username, "password": password,
                                               "csrf_token": found.group(1)},
                    environ_base={"REMOTE_ADDR": address})


def _api(web: FlaskClient, username: str, password: str,
         address: str = "10.0.0.1") -> TestResponse:
    return web.post("/api/v1/session", json={"username": username, "password": password},
                    environ_base={"REMOTE_ADDR": address})


@pytest.fixture
def web(app: Flask) -> FlaskClient:
    _agent(app, "ana")
    _agent(app, "ben")
    return app.test_client()


def _assert_blocked(response: TestResponse) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-in attempts" in response.get_data(as_text=True)


def test_sixth_wrong_password_is_429_even_with_the_right_one(web: FlaskClient,
                                                             redis_url: str) -> None:
    for _ in range(5):
        assert _console(web, "ana", "wrong").status_code == 401
    _assert_blocked(_console(web, "ana", "wrong"))
    _assert_blocked(_console(web, "ANA ", PASSWORD))  # names count case-insensitively
    client = Redis.from_url(redis_url)
    assert int(client.get("signin-fail:user:ana") or 0) == 5
    assert 0 < client.ttl("signin-fail:user:ana") <= 15 * 60
    # another user from another address is not affected
    assert _console(web, "ben", PASSWORD, address="10.0.0.2").status_code == 303


def test_the_counter_is_per_address_too(web: FlaskClient) -> None:
    for name in ("x1", "x2", "x3", "x4", "x5"):
        assert _console(web, name, "wrong", address="10.0.0.9").status_code == 401
    _assert_blocked(_console(web, "ana", PASSWORD, address="10.0.0.9"))
    assert _console(web, "ana", PASSWORD, address="10.0.0.10").status_code == 303


def test_success_clears_the_user_name_counter(web: FlaskClient) -> None:
    for _ in range(4):
        assert _console(web, "ana", "wrong", address="10.0.1.1").status_code == 401
    assert _console(web, "ana", PASSWORD, address="10.0.1.2").status_code == 303
    for _ in range(4):  # would be the 5th..8th failure had the count not been cleared
        assert _console(web, "ana", "wrong", address="10.0.1.3").status_code == 401
    assert _console(web, "ana", PASSWORD, address="10.0.1.4").status_code == 303


def test_the_api_session_route_is_limited_too(web: FlaskClient) -> None:
    for _ in range(5):
        assert _api(web, "ben", "wrong").status_code == 401
    blocked = _api(web, "ben", PASSWORD)
    _assert_blocked(blocked)
    body = blocked.get_json()
    assert body["error"] == "too_many_attempts" and body["message"]
    # the console shares the same counters
    _assert_blocked(_console(web, "ben", PASSWORD, address="10.0.0.3"))


@pytest.fixture
def demo_app(database_url: str) -> Iterator[Flask]:
    """An app without Redis: counters live in the process."""
    from ivr import create_app

    application = create_app(app_config(database_url))
    yield application
    empty_tables(application)


def test_without_redis_the_counters_live_in_the_process(demo_app: Flask) -> None:
    _agent(demo_app, "ana")
    web = demo_app.test_client()
    for _ in range(5):
        assert _api(web, "ana", "wrong").status_code == 401
    _assert_blocked(_api(web, "ana", PASSWORD))
    assert _api(web, "ana", PASSWORD, address="10.0.0.2").status_code == 429  # name blocked


def test_behind_a_load_balancer_each_client_address_counts_apart(database_url: str,
                                                                 redis_url: str) -> None:
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url, PROXY_HOPS=1))
    try:
        for name in ("cara", "dan", "eve", "finn", "gus", "hal"):
            _agent(app, name)
        web = app.test_client()

        def attempt(name: str, client: str) -> int:
            return web.post("/api/v1/session", json={"username": name, "password": "wrong"},
                            headers={"X-Forwarded-For": client},
                            environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code

        # Six different user names through the same balancer address, from two clients.
        assert [attempt(name, "203.0.113.7") for name in ("cara", "dan", "eve")] == [401] * 3
        assert [attempt(name, "198.51.100.4") for name in ("finn", "gus", "hal")] == [401] * 3
        # The balancer's own address saw six failures, but no client has reached five.
        assert attempt("cara", "198.51.100.99") == 401
    finally:
        empty_tables(app)
