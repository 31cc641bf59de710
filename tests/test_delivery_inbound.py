"""Status changes reported back by the company's ticket system: Zammad's signed webhook and a
webhook connector's signed JSON, applied once through the ticket workflow; forged, stale and
repeated reports change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from benchmarks.ticket_receivers import WEBHOOK_SECRET
from callbacks import runtime
from callbacks.delivery.inbound import InboundChange
from callbacks.delivery.outbox import origin
from callbacks.delivery.webhook import signature
from callbacks.settings import Settings
from callbacks.tickets.ticket import Ticket, TicketEvent
from tests.conftest import app_config, empty_tables
from tests.delivery_helpers import SECRETS, deliveries, open_ticket
from tests.test_delivery_zammad import work
from tests.zammad_standin import ZammadStandin

HUB_SECRET = SECRETS["TEST_ZAMMAD_WEBHOOK_SECRET"]
ZAMMAD_URL = "/api/v1/delivery/inbound/zammad"
HOOK_URL = "/api/v1/delivery/inbound/hook"


@pytest.fixture
def zammad() -> Iterator[ZammadStandin]:
    with ZammadStandin(SECRETS["TEST_ZAMMAD_TOKEN"]) as standin:
        yield standin


@pytest.fixture
def app(database_url: str, redis_url: str, zammad: ZammadStandin,
        tmp_path: Path) -> Iterator[Flask]:
    """The app with a Zammad and a webhook connector (the runtime configured from it)."""
    from ivr import create_app

    path = tmp_path / "delivery.yaml"
    path.write_text(
        "retry: {max_attempts: 3, first_backoff_seconds: 1, max_backoff_seconds: 1}\n"
        "connectors:\n"
        f"  zammad:\n    type: zammad\n    url: {zammad.url}\n"
        "    token_env: TEST_ZAMMAD_TOKEN\n    group: Users\n"
        "    webhook_secret_env: TEST_ZAMMAD_WEBHOOK_SECRET\n"
        "  hook:\n    type: webhook\n    url: http://127.0.0.1:9/hooks\n"
        "    secret_env: TEST_DELIVERY_WEBHOOK_SECRET\n    events: [created]\n",
        encoding="utf-8")
    import os
    os.environ.update(SECRETS)
    application = create_app(app_config(database_url, REDIS_URL=redis_url,
                                        DELIVERY_FILE=str(path)))
    yield application
    empty_tables(application)
    runtime.configure(Settings(database_url=database_url, redis_url=redis_url))


def zammad_ticket(app: Flask, redis_url: str, zammad: ZammadStandin,
                  status: str = "assigned") -> tuple[int, int]:
    """Our ticket (in `status`) delivered to Zammad: (our id, Zammad's id)."""
    with app.extensions["ivr.sessions"]() as session:
        ticket = open_ticket(session, 1)
        ticket.status = status
        session.commit()
        ticket_id = ticket.id
    with app.extensions["ivr.sessions"]() as session:  # the webhook cannot take it: refused
        for row in deliveries(session, "hook"):
            row.status = "delivered"
        session.commit()
    work(app, redis_url)
    [remote] = zammad.state.tickets
    return ticket_id, remote


def status_of(app: Flask, ticket_id: int) -> str:
    with app.extensions["ivr.sessions"]() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket.status


def inbound_rows(app: Flask) -> list[tuple[str, str]]:
    with app.extensions["ivr.sessions"]() as session:
        return [(row.remote_state, row.outcome) for row in session.scalars(
            select(InboundChange).order_by(InboundChange.id))]


def signed_hook(body: dict[str, Any], key: str, *, at: float | None = None,
                secret: str = WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time() if at is None else at))
    return raw, {"Content-Type": "application/json", "X-Helpdesk-Timestamp": timestamp,
                 "X-Helpdesk-Signature": signature(secret, timestamp, raw),
                 "Idempotency-Key": key}


def test_a_forged_or_unsigned_zammad_report_gets_403_and_changes_nothing(
        app: Flask, client: FlaskClient, redis_url: str, zammad: ZammadStandin) -> None:
    ticket_id, remote = zammad_ticket(app, redis_url, zammad)
    body, headers = zammad.webhook_request("not-the-secret", remote, "closed")
    assert client.post(ZAMMAD_URL, data=body, headers=headers).status_code == 403
    del headers["X-Hub-Signature"]
    refused = client.post(ZAMMAD_URL, data=body, headers=headers)
    assert refused.status_code == 403 and "X-Hub-Signature" in refused.get_json()["message"]
    body, headers = zammad.webhook_request(HUB_SECRET, remote, "closed")
    tampered = body.replace(b'"closed"', b'"open"')
    assert client.post(ZAMMAD_URL, data=tampered, headers=headers).status_code == 403
    assert status_of(app, ticket_id) == "assigned" and inbound_rows(app) == []


def test_a_report_to_an_unknown_connector_or_an_unreadable_body_is_refused(
        app: Flask, client: FlaskClient) -> None:
    missing = client.post("/api/v1/delivery/inbound/jira", data=b"{}")
    assert missing.status_code == 404
    raw, headers = signed_hook({"ticket_number": "10001"}, "k1")
    bad = client.post(HOOK_URL, data=raw, headers=headers)
    assert bad.status_code == 400 and "ticket_number" in bad.get_json()["message"]


def test_a_webhook_report_outside_the_replay_window_or_badly_signed_is_refused(
        app: Flask, client: FlaskClient, redis_url: str, zammad: ZammadStandin) -> None:
    ticket_id, _ = zammad_ticket(app, redis_url, zammad)
    report = {"ticket_number": "10001", "status": "resolved", "note": "fixed"}
    raw, headers = signed_hook(report, "k1", at=time.time() - 3600)
    stale = client.post(HOOK_URL, data=raw, headers=headers)
    assert stale.status_code == 403 and "replay window" in stale.get_json()["message"]
    raw, headers = signed_hook(report, "k2", secret="guessed")
    assert client.post(HOOK_URL, data=raw, headers=headers).status_code == 403
    assert status_of(app, ticket_id) == "assigned" and inbound_rows(app) == []


def test_a_repeated_zammad_report_is_taken_once_and_unmapped_states_are_ignored(
        app: Flask, client: FlaskClient, redis_url: str, zammad: ZammadStandin) -> None:
    ticket_id, remote = zammad_ticket(app, redis_url, zammad, status="in_progress")
    body, headers = zammad.webhook_request(HUB_SECRET, remote, "open", delivery="d-1")
    first = client.post(ZAMMAD_URL, data=body, headers=headers)
    assert first.status_code == 200 and first.get_json()["outcome"] == "unchanged"
    again = client.post(ZAMMAD_URL, data=body, headers=headers)
    assert again.get_json()["outcome"] == "duplicate"
    body, headers = zammad.webhook_request(HUB_SECRET, remote, "merged", delivery="d-2")
    ignored = client.post(ZAMMAD_URL, data=body, headers=headers)
    assert ignored.status_code == 200 and ignored.get_json()["outcome"] == "ignored"
    assert inbound_rows(app) == [("open", "unchanged")]
    assert status_of(app, ticket_id) == "in_progress"


def test_a_zammad_state_change_is_applied_once_through_the_workflow_and_not_sent_back(
        app: Flask, client: FlaskClient, redis_url: str, zammad: ZammadStandin) -> None:
    ticket_id, remote = zammad_ticket(app, redis_url, zammad, status="assigned")
    body, headers = zammad.webhook_request(HUB_SECRET, remote, "open", delivery="d-7")
    applied = client.post(ZAMMAD_URL, data=body, headers=headers)
    assert applied.get_json() == {"outcome": "applied", "ticket_number": "10001",
                                  "status": "in_progress",
                                  "message": "ticket 10001 is now in_progress"}
    assert client.post(ZAMMAD_URL, data=body, headers=headers).get_json()[
        "outcome"] == "duplicate"
    assert status_of(app, ticket_id) == "in_progress"
    with app.extensions["ivr.sessions"]() as session:
        [event] = session.scalars(select(TicketEvent).where(TicketEvent.kind == "status"))
        assert event.by == origin("zammad")
        assert [row.connector for row in deliveries(session)
                if row.event_id == event.id] == []  # the hook takes only 'created' here
    work(app, redis_url)
    assert len(zammad.articles(remote)) == 1  # nothing went back to Zammad


def test_a_webhook_connectors_system_resolves_a_ticket_once(
        app: Flask, client: FlaskClient, redis_url: str, zammad: ZammadStandin) -> None:
    ticket_id, _ = zammad_ticket(app, redis_url, zammad, status="in_progress")
    raw, headers = signed_hook({"ticket_number": "10001", "status": "resolved",
                                "note": "replaced the VPN token"}, "change-1")
    applied = client.post(HOOK_URL, data=raw, headers=headers)
    assert applied.get_json()["outcome"] == "applied"
    raw, headers = signed_hook({"ticket_number": "10001", "status": "resolved",
                                "note": "replaced the VPN token"}, "change-1")
    assert client.post(HOOK_URL, data=raw, headers=headers).get_json()[
        "outcome"] == "duplicate"
    assert status_of(app, ticket_id) == "resolved"
