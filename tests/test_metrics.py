"""GET /metrics: the webhook histogram, the callback queue, failed jobs and the transcription
real-time factor, read from seeded SQL and a real Redis; the optional bearer token; several
processes adding up their histograms through PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Queue, SimpleWorker

from callbacks.db import utcnow
from callbacks.tickets.ticket import Ticket, TicketEvent
from callbacks.workqueue.callback_requests import CallbackRequest
from tests.conftest import ROOT, app_config, empty_tables, twilio_post

OLDEST_DUE = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
TOKEN = "metrics-token-0123456789"


def explode() -> None:
    """A job that fails, for rq's failed job registry."""
    raise RuntimeError("this job fails on purpose")


def scrape(client: FlaskClient, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]],
                                                         float]:
    """Every sample of /metrics by (name, sorted labels)."""
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.content_type.startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.get_data(as_text=True))
            for sample in family.samples}


def seed(app: Flask) -> None:
    """Open and closed callbacks, two transcriptions and one silent voicemail."""
    requests = [("P1", "pending", datetime(2026, 1, 6, tzinfo=UTC)),
                ("P1", "pending", datetime(2026, 1, 7, tzinfo=UTC)),
                ("P2", "claimed", datetime(2026, 1, 8, tzinfo=UTC)),
                ("P3", "pending", OLDEST_DUE),
                ("P1", "done", datetime(2026, 1, 1, tzinfo=UTC))]  # closed: not in the queue
    with app.extensions["ivr.sessions"]() as session:
        for n, (priority, status, due) in enumerate(requests, start=1):
            session.add(CallbackRequest(caller=f"+4917600000{n:02d}", category="vpn",
                                        priority=priority, first_call_sid=f"CA{n}",
                                        status=status, first_contact_at=due, due_at=due,
                                        available_at=due))
        ticket = Ticket(call_sid="CA9", created_at=utcnow(), updated_at=utcnow())
        session.add(ticket)
        session.flush()
        for kind, detail in (
                ("transcribed", "12 words, confidence 0.91, 8.0 s audio in 2.0 s "
                                "(real-time factor 0.250); keyword vpn"),
                ("transcribed", "3 words, confidence 0.80, 4.0 s audio in 0.6 s "
                                "(real-time factor 0.150); menu choice"),
                ("transcription_no_speech", "silent")):
            session.add(TicketEvent(ticket_id=ticket.id, kind=kind, detail=detail))
        session.commit()


@pytest.fixture
def app(database_url: str, redis_url: str) -> Iterator[Flask]:
    from ivr import create_app

    application = create_app(app_config(database_url, REDIS_URL=redis_url))
    seed(application)
    yield application
    empty_tables(application)


def test_metrics_show_the_queue_failed_jobs_and_transcription_speed(app: Flask,
                                                                     redis_url: str) -> None:
    connection = Redis.from_url(redis_url)
    Queue("default", connection=connection).enqueue(explode)
    SimpleWorker(["default"], connection=connection).work(burst=True)

    found = scrape(app.test_client())
    depth = {labels: value for (name, labels), value in found.items()
             if name == "ivr_callback_queue_depth"}
    assert depth == {(("priority", "P1"), ("status", "pending")): 2.0,
                     (("priority", "P2"), ("status", "claimed")): 1.0,
                     (("priority", "P3"), ("status", "pending")): 1.0}
    assert found[("ivr_callback_oldest_due_timestamp_seconds", ())] == OLDEST_DUE.timestamp()
    overdue = (utcnow() - OLDEST_DUE).total_seconds()
    assert found[("ivr_callback_oldest_due_overdue_seconds", ())] == pytest.approx(overdue,
                                                                                   abs=60)
    assert found[("ivr_transcription_real_time_factor", ())] == pytest.approx(0.2)
    assert found[("ivr_transcription_real_time_factor_samples", ())] == 2.0
    assert {queue: found[("ivr_jobs_failed", (("queue", queue),))]
            for queue in ("urgent", "default", "low")} == {"urgent": 0, "default": 1, "low": 0}


def test_webhooks_are_timed_and_other_routes_are_not(app: Flask) -> None:
    client = app.test_client()
    key = ("ivr_webhook_seconds_count", (("endpoint", "voice.incoming_call"),))
    before = scrape(client).get(key, 0.0)
    params = {"CallSid": "CA" + "5" * 32, "From": "+4917612345678", "To": "+493012345678"}
    assert twilio_post(client, "/voice", params).status_code == 200
    assert client.post("/voice", data=params).status_code == 403  # forged: still timed
    client.get("/console/sign-in")
    after = scrape(client)
    assert after[key] == before + 2
    assert after[("ivr_webhook_seconds_bucket",
                  (("endpoint", "voice.incoming_call"), ("le", "+Inf")))] == before + 2
    assert not any(dict(labels).get("endpoint", "").startswith(("console", "metrics"))
                   for _name, labels in after)


def test_a_configured_token_is_required(database_url: str, redis_url: str) -> None:
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url, METRICS_TOKEN=TOKEN))
    client = app.test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scrape(client, Authorization=f"Bearer {TOKEN}")


SCRIPT = textwrap.dedent("""
    import sys
    from ivr import create_app
    from tests.conftest import app_config, twilio_post
    app = create_app(app_config(sys.argv[1]))
    client = app.test_client()
    if sys.argv[2] == "call":
        twilio_post(client, "/voice", {"CallSid": "CA" + "6" * 32, "From": "+4917612345678"})
    else:
        sys.stdout.write(client.get("/metrics").get_data(as_text=True))
""")


def test_processes_add_up_through_the_multiprocess_directory(database_url: str,
                                                             tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}

    def run(action: str) -> str:
        done = subprocess.run([sys.executable, "-c", SCRIPT, database_url, action], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("call")
    run("call")
    exposition = run("scrape")
    counts = [sample.value for family in text_string_to_metric_families(exposition)
              for sample in family.samples if sample.name == "ivr_webhook_seconds_count"
              and sample.labels.get("endpoint") == "voice.incoming_call"]
    assert counts == [2.0]
