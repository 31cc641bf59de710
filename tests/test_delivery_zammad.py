"""The Zammad connector through Zammad's own Python client, against a stand-in at Zammad's HTTP
boundary that checks every request against the REST API's documentation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import select

from callbacks import runtime
from callbacks.delivery.outbox import DeliveryStream
from callbacks.queues import QUEUES
from callbacks.settings import Settings
from callbacks.tickets.ticket import Ticket, add_event
from callbacks.worker import HelpdeskWorker
from tests.conftest import app_config, empty_tables
from tests.delivery_helpers import SECRETS, configure_runtime, deliveries, open_ticket
from tests.zammad_standin import ZammadStandin

WAV = b"RIFF" + b"\x00" * 2000


def zammad_file(directory: Path, url: str, group: str = "Users") -> Path:
    path = directory / "delivery.yaml"
    path.write_text(
        "retry: {max_attempts: 4, first_backoff_seconds: 1, max_backoff_seconds: 1}\n"
        "connectors:\n  zammad:\n    type: zammad\n"
        f"    url: {url}\n    token_env: TEST_ZAMMAD_TOKEN\n    group: {group}\n"
        "    webhook_secret_env: TEST_ZAMMAD_WEBHOOK_SECRET\n", encoding="utf-8")
    return path


@pytest.fixture
def zammad() -> Iterator[ZammadStandin]:
    with ZammadStandin(SECRETS["TEST_ZAMMAD_TOKEN"]) as standin:
        yield standin


@pytest.fixture
def app(database_url: str, redis_url: str) -> Iterator[Flask]:
    from ivr import create_app

    application = create_app(app_config(database_url, REDIS_URL=redis_url,
                                        CONFIGURE_RUNTIME=False))
    yield application
    empty_tables(application)
    runtime.configure(Settings(database_url=database_url, redis_url=redis_url))


def work(app: Flask, redis_url: str, seconds: float = 15) -> None:
    """Run a worker (with rq's scheduler, for retries) until nothing is pending any more."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        HelpdeskWorker(list(QUEUES), connection=Redis.from_url(redis_url)).work(
            burst=True, with_scheduler=True)
        with app.extensions["ivr.sessions"]() as session:
            if all(row.status != "pending" for row in deliveries(session)):
                return
        time.sleep(0.3)
    raise AssertionError("deliveries still pending")


def add(app: Flask, ticket_id: int, kind: str, detail: str, **changes: str) -> None:
    with app.extensions["ivr.sessions"]() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        for name, value in changes.items():
            setattr(ticket, name, value)
        add_event(session, ticket, kind, detail)
        session.commit()


def test_the_first_event_makes_the_zammad_ticket_and_later_ones_add_articles_and_states(
        app: Flask, database_url: str, redis_url: str, zammad: ZammadStandin,
        tmp_path: Path) -> None:
    configure_runtime(database_url, redis_url, zammad_file(tmp_path, zammad.url))
    with app.extensions["ivr.sessions"]() as session:
        ticket_id = open_ticket(session, 1, audio=WAV).id
        session.commit()
    add(app, ticket_id, "transcribed", "5 words", transcript="my vpn is down again",
        transcription="done", priority="P1")
    add(app, ticket_id, "status", "new -> resolved: token replaced", status="resolved")
    work(app, redis_url)

    assert zammad.state.problems == []
    [user] = zammad.state.users.values()
    assert user["phone"] == "+4930555011" and user["lastname"] == "+4930555011"
    [remote] = zammad.state.tickets.values()
    assert remote["title"].startswith("Phone ticket 10001: network")
    assert (remote["group"], remote["customer_id"]) == ("Users", user["id"])
    assert (remote["state"], remote["priority"]) == ("closed", "3 high")
    first, transcribed, status = zammad.articles(remote["id"])
    assert (first["type"], first["sender"], first["internal"]) == ("phone", "Customer", False)
    assert "Ticket:         10001" in first["body"] and "Caller:" in first["body"]
    assert transcribed["internal"] is True and "my vpn is down again" in transcribed["body"]
    [wav] = transcribed["attachments"]
    assert (wav["filename"], wav["mime-type"]) == ("ticket-10001.wav", "audio/wav")
    assert "new -> resolved: token replaced" in status["body"]
    with app.extensions["ivr.sessions"]() as session:
        stream = session.scalar(select(DeliveryStream))
        assert stream is not None
        assert (stream.remote_id, stream.remote_number) == (str(remote["id"]), remote["number"])
        assert all(row.status == "delivered" for row in deliveries(session))


def test_a_second_ticket_of_the_same_caller_goes_to_the_same_zammad_customer(
        app: Flask, database_url: str, redis_url: str, zammad: ZammadStandin,
        tmp_path: Path) -> None:
    configure_runtime(database_url, redis_url, zammad_file(tmp_path, zammad.url))
    for n in (1, 2):
        with app.extensions["ivr.sessions"]() as session:
            open_ticket(session, n)
            session.commit()
        work(app, redis_url)
    assert len(zammad.state.users) == 1
    assert len({t["customer_id"] for t in zammad.state.tickets.values()}) == 1
    assert len(zammad.state.tickets) == 2 and zammad.state.problems == []


def test_a_try_after_a_lost_answer_finds_what_zammad_made_instead_of_making_it_twice(
        app: Flask, database_url: str, redis_url: str, zammad: ZammadStandin,
        tmp_path: Path) -> None:
    configure_runtime(database_url, redis_url, zammad_file(tmp_path, zammad.url))
    zammad.lose_next_answers(2)  # the user is made (answer lost), then the ticket is (lost)
    with app.extensions["ivr.sessions"]() as session:
        ticket_id = open_ticket(session, 1).id
        session.commit()
    work(app, redis_url)
    zammad.lose_next_answers(1)  # the article is made, its answer lost
    add(app, ticket_id, "note", "asked the network team")
    work(app, redis_url)
    [remote] = zammad.state.tickets.values()
    assert len(zammad.articles(remote["id"])) == 2  # the first, and the note once
    assert len(zammad.state.users) == 1
    with app.extensions["ivr.sessions"]() as session:
        assert [row.attempts for row in deliveries(session)] == [3, 2]
    assert zammad.state.problems == []


def test_zammad_refusing_a_request_fails_the_delivery_with_its_answer(
        app: Flask, database_url: str, redis_url: str, zammad: ZammadStandin,
        tmp_path: Path) -> None:
    configure_runtime(database_url, redis_url, zammad_file(tmp_path, zammad.url, "Sales"))
    with app.extensions["ivr.sessions"]() as session:
        open_ticket(session, 1)
        session.commit()
    work(app, redis_url)
    with app.extensions["ivr.sessions"]() as session:
        [row] = deliveries(session)
    assert row.status == "failed" and row.attempts == 1
    assert "HTTP 422" in (row.last_error or "") and "unknown group 'Sales'" in (
        row.last_error or "")
    assert zammad.state.tickets == {}
