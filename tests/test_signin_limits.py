"""Sign-in limits on the console form and the API session route: each attempt is counted
before its password is checked (parallel guesses cannot slip through), a user name waits a
little longer after each attempt (0, 0, 1, 2, 4 ... s) instead of being locked out, an address
has a higher limit, a success or an admin's unlock clears the wait."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from callbacks.workqueue.agents import create_agent
from ivr import signin_limits
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


def _assert_waits(response: TestResponse, seconds: int | None = None) -> int:
    assert response.status_code == 429, response.get_data(as_text=True)
    wait = int(response.headers["Retry-After"])
    assert 0 < wait <= signin_limits.MAX_DELAY_SECONDS
    if seconds is not None:
        assert wait == seconds
    text = response.get_data(as_text=True)
    assert f"Please wait {wait} second" in text, text
    return wait


def test_the_wait_grows_with_each_attempt_and_is_capped() -> None:
    assert [signin_limits.delay_after(n) for n in range(1, 10)] == [0, 1, 2, 4, 8, 16, 32, 60,
                                                                    60]


def test_after_two_free_attempts_each_next_one_waits_a_little_longer(web: FlaskClient) -> None:
    assert _console(web, "ana", "wrong").status_code == 401
    assert _console(web, "ANA ", "wrong").status_code == 401  # names count case-insensitively
    # The third attempt waits a second, and is told so; the API shares the count.
    _assert_waits(_console(web, "ana", PASSWORD), 1)
    _assert_waits(_api(web, "ana", PASSWORD))
    time.sleep(1.1)
    assert _console(web, "ana", "wrong").status_code == 401
    _assert_waits(_console(web, "ana", PASSWORD), 2)
    time.sleep(2.1)
    assert _console(web, "ana", PASSWORD).status_code == 303  # waited, then signed in
    # another user from the same address was never affected
    assert _console(web, "ben", PASSWORD).status_code == 303


def test_a_success_starts_the_user_name_afresh(web: FlaskClient) -> None:
    assert _console(web, "ana", "wrong").status_code == 401
    assert _console(web, "ana", PASSWORD, address="10.0.1.2").status_code == 303
    for _ in range(2):  # the second would have waited had the count not been cleared
        assert _console(web, "ana", "wrong", address="10.0.1.3").status_code == 401


def test_parallel_guesses_are_counted_before_any_password_is_checked(app: Flask,
                                                                     redis_url: str) -> None:
    _agent(app, "cleo")
    barrier = threading.Barrier(30)
    answers: list[int] = []
    lock = threading.Lock()

    def guess(n: int) -> None:
        client = app.test_client()
        barrier.wait()
        status = _api(client, "cleo", f"guess number {n}", address=f"10.1.0.{n}").status_code
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Only the two free attempts had their password checked (401); the second one's slot
    # started the one-second wait, so the other 28 were told to wait without a check.
    assert sorted(answers) == [401] * 2 + [429] * 28


@pytest.fixture
def small_address_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """A lower address limit than production's 50, so these tests sign in less often."""
    monkeypatch.setattr(signin_limits, "ADDRESS_LIMIT", 8)
    return 8


def test_one_address_has_a_higher_limit_than_a_user_name(web: FlaskClient,
                                                         small_address_limit: int) -> None:
    for n in range(signin_limits.ADDRESS_LIMIT):
        assert _console(web, f"guess{n}", "wrong", address="10.0.0.9").status_code == 401
    blocked = _console(web, "ana", PASSWORD, address="10.0.0.9")
    assert blocked.status_code == 429
    assert "from this network" in blocked.get_data(as_text=True)
    assert int(blocked.headers["Retry-After"]) > 60  # the rest of the address's window
    assert _console(web, "ana", PASSWORD, address="10.0.0.10").status_code == 303


def test_successes_and_waits_do_not_use_up_an_address(web: FlaskClient,
                                                     small_address_limit: int) -> None:
    # Colleagues behind one office address: many sign-ins, and someone's waits, are no failures.
    for _ in range(signin_limits.ADDRESS_LIMIT + 5):
        assert _api(web, "ben", PASSWORD, address="10.0.5.5").status_code == 200
    for _ in range(2):
        _api(web, "ana", "wrong", address="10.0.5.5")
    for _ in range(signin_limits.ADDRESS_LIMIT):
        assert _api(web, "ana", PASSWORD, address="10.0.5.5").status_code == 429  # waiting
    assert _api(web, "ben", PASSWORD, address="10.0.5.5").status_code == 200


def test_an_admin_unlock_clears_the_wait_at_once(app: Flask, web: FlaskClient) -> None:
    for _ in range(2):
        _console(web, "ana", "wrong")
    with app.test_request_context():
        assert signin_limits.state_of("ana").slowed
        signin_limits.unlock("ANA")
        assert signin_limits.state_of("ana") == signin_limits.SignInState(0, 0)
    assert _console(web, "ana", PASSWORD).status_code == 303


@pytest.fixture
def memory_app(database_url: str) -> Iterator[Flask]:
    """An app without Redis: counts live in the process."""
    from ivr import create_app

    application = create_app(app_config(database_url))
    yield application
    empty_tables(application)


def test_without_redis_the_counts_live_in_the_process(memory_app: Flask) -> None:
    _agent(memory_app, "ana")
    web = memory_app.test_client()
    for _ in range(2):
        assert _api(web, "ana", "wrong").status_code == 401
    _assert_waits(_api(web, "ana", PASSWORD), 1)
    _assert_waits(_api(web, "ana", PASSWORD, address="10.0.0.2"))  # the name waits anywhere
    with memory_app.test_request_context():
        assert signin_limits.state_of("ana").attempts == 2
        signin_limits.unlock("ana")
    assert _api(web, "ana", PASSWORD).status_code == 200


def test_without_redis_parallel_guesses_are_counted_too(memory_app: Flask) -> None:
    _agent(memory_app, "dora")
    barrier = threading.Barrier(20)
    answers: list[int] = []

    def guess(n: int) -> None:
        client = memory_app.test_client()
        barrier.wait()
        answers.append(_api(client, "dora", f"guess {n}", address=f"10.2.0.{n}").status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [401] * 2 + [429] * 18


def test_redis_going_away_does_not_lock_anyone_out(app: Flask, web: FlaskClient,
                                                   redis_server: Any) -> None:
    redis_server.stop()
    try:
        for _ in range(5):
            assert _console(web, "ana", "wrong").status_code == 401
        assert _console(web, "ana", PASSWORD).status_code == 303
    finally:
        redis_server.start()


def test_behind_a_load_balancer_each_client_address_counts_apart(
        database_url: str, redis_url: str, small_address_limit: int) -> None:
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url, PROXY_HOPS=1))
    try:
        _agent(app, "cara")
        web = app.test_client()

        def attempt(name: str, client: str) -> int:
            return web.post("/api/v1/session", json={"username": name, "password": "wrong"},
                            headers={"X-Forwarded-For": client},
                            environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code

        for n in range(signin_limits.ADDRESS_LIMIT):
            assert attempt(f"name{n}", "203.0.113.7") == 401
        assert attempt("other", "203.0.113.7") == 429  # that client used up its address
        # The balancer's own address saw all of them, but another client is not blocked.
        assert attempt("cara", "198.51.100.4") == 401
    finally:
        empty_tables(app)
