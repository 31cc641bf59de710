"""Email-to-ticket as the ticket system's mailbox receives it (a real SMTP server with STARTTLS
and AUTH), and the admin page where failed deliveries are seen and retried."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from benchmarks.chaos_stack import free_port
from benchmarks.ticket_receivers import SmtpReceiver
from callbacks import runtime
from callbacks.delivery.email import close_connections
from callbacks.queues import QUEUES
from callbacks.settings import Settings
from callbacks.tickets.ticket import Ticket, add_event
from callbacks.worker import HelpdeskWorker
from callbacks.workqueue.agents import create_agent
from tests.conftest import app_config, empty_tables
from tests.delivery_helpers import (
    configure_runtime,
    deliveries,
    email_connector,
    open_ticket,
    write_delivery_file,
)

PASSWORD = "correct horse battery"
WAV = b"RIFF" + bytes(range(256)) * 16  # 4 KiB


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpReceiver]:
    with SmtpReceiver(tmp_path, free_port()) as server:
        yield server
    close_connections()


@pytest.fixture
def app(database_url: str, redis_url: str) -> Iterator[Flask]:
    from ivr import create_app

    application = create_app(app_config(database_url, REDIS_URL=redis_url,
                                        CONFIGURE_RUNTIME=False, WTF_CSRF_ENABLED=False))
    yield application
    empty_tables(application)
    runtime.configure(Settings(database_url=database_url, redis_url=redis_url))


def work(app: Flask, redis_url: str, seconds: float = 15) -> None:
    """Run a worker (with rq's scheduler) until no delivery is pending."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        HelpdeskWorker(list(QUEUES), connection=Redis.from_url(redis_url)).work(
            burst=True, with_scheduler=True)
        with app.extensions["ivr.sessions"]() as session:
            if all(row.status != "pending" for row in deliveries(session)):
                return
        time.sleep(0.3)
    raise AssertionError("deliveries still pending")


def voicemail_ticket(app: Flask, audio: bytes) -> int:
    """A voicemail's ticket: created, then transcribed (with its audio kept), then resolved."""
    with app.extensions["ivr.sessions"]() as session:
        ticket = open_ticket(session, 1, audio=audio)
        session.commit()
        ticket_id = ticket.id
    for kind, detail, changes in (
            ("transcribed", "4 words", {"transcript": "mój vpn nie działa",
                                        "transcription": "done", "language": "pl"}),
            ("status", "new -> resolved: token replaced", {"status": "resolved"})):
        with app.extensions["ivr.sessions"]() as session:
            found = session.get(Ticket, ticket_id)
            assert found is not None
            for name, value in changes.items():
                setattr(found, name, value)
            add_event(session, found, kind, detail)
            session.commit()
    return ticket_id


def test_the_mailbox_gets_a_threaded_message_per_event_with_fields_transcript_and_recording(
        app: Flask, database_url: str, redis_url: str, smtp: SmtpReceiver,
        tmp_path: Path) -> None:
    configure_runtime(database_url, redis_url,
                      write_delivery_file(tmp_path, email_connector(smtp.port, smtp.cert)))
    voicemail_ticket(app, WAV)
    work(app, redis_url)
    created, transcribed, resolved = smtp.messages()
    root = created["Message-ID"]
    assert root.startswith("<ivr-10001-") and root.endswith("-mail@example.test>")
    assert created["Subject"] == "[Ticket 10001] Phone ticket from +4930555011: network, P2"
    assert created["In-Reply-To"] is None
    for update in (transcribed, resolved):
        assert update["In-Reply-To"] == root and update["References"] == root
    assert transcribed["Subject"] == "Re: [Ticket 10001] voicemail transcribed"
    assert resolved["Subject"] == "Re: [Ticket 10001] status changed"
    assert (created["From"], created["To"]) == ("IT phone line <phone-line@example.test>",
                                                "servicedesk@example.test")
    text = transcribed.get_body(preferencelist=("plain",)).get_content()
    for line in ("Ticket:         10001", "Caller:         +4930555011", "Category:       network",
                 "Priority:       P2", "Language:       pl",
                 "Menu path:      welcome main_menu",
                 "Console:        https://support.example.test/console/tickets/10001",
                 "mój vpn nie działa"):
        assert line in text, line
    attachments = {part.get_filename(): part for part in transcribed.iter_attachments()}
    assert attachments["ticket-10001.wav"].get_content_type() == "audio/wav"
    assert attachments["ticket-10001.wav"].get_content() == WAV
    document = json.loads(attachments["ticket.json"].get_content())
    assert document["event"]["kind"] == "transcribed"
    assert document["ticket"]["transcript"] == "mój vpn nie działa"
    assert "ticket-10001.wav" not in {p.get_filename() for p in created.iter_attachments()}
    assert "Status:         resolved" in resolved.get_body(
        preferencelist=("plain",)).get_content()


def test_a_recording_over_the_size_cap_is_left_out_and_the_message_says_so(
        app: Flask, database_url: str, redis_url: str, smtp: SmtpReceiver,
        tmp_path: Path) -> None:
    configure_runtime(database_url, redis_url, write_delivery_file(
        tmp_path, email_connector(smtp.port, smtp.cert, max_attachment_kb=1)))
    voicemail_ticket(app, WAV)
    work(app, redis_url)
    transcribed = smtp.messages()[1]
    assert [p.get_filename() for p in transcribed.iter_attachments()] == ["ticket.json"]
    text = transcribed.get_body(preferencelist=("plain",)).get_content()
    assert "Recording: not attached: the recording (4 KiB) is larger than the 1 KiB limit" in text


def test_wrong_smtp_credentials_fail_the_delivery_with_the_servers_answer(
        app: Flask, database_url: str, redis_url: str, smtp: SmtpReceiver,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_delivery_file(tmp_path, email_connector(smtp.port, smtp.cert))
    configure_runtime(database_url, redis_url, path)
    monkeypatch.setenv("TEST_DELIVERY_SMTP_PASSWORD", "wrong")
    runtime.configure(Settings(database_url=database_url, redis_url=redis_url,
                               delivery_file=str(path)))  # read again with the wrong password
    with app.extensions["ivr.sessions"]() as session:
        open_ticket(session, 1)
        session.commit()
    work(app, redis_url)
    with app.extensions["ivr.sessions"]() as session:
        [row] = deliveries(session)
    assert row.status == "failed" and "SMTP login refused: 535" in (row.last_error or "")
    assert smtp.messages() == []


def signed_in_admin(app: Flask) -> FlaskClient:
    with app.extensions["ivr.sessions"]() as session:
        create_agent(session, "root", PASSWORD, display_name="Rita Root", role="admin")
        session.commit()
    client = app.test_client()
    answer = client.post("/console/sign-in", data={"username": "root", "password": PASSWORD})
    assert answer.status_code == 303
    return client


def test_admins_see_failed_deliveries_with_their_error_and_retry_them_from_the_page(
        app: Flask, database_url: str, redis_url: str, smtp: SmtpReceiver,
        tmp_path: Path) -> None:
    configure_runtime(database_url, redis_url,
                      write_delivery_file(tmp_path, email_connector(smtp.port, smtp.cert)))
    smtp.fail("refuse", times=2)  # 554 to the first two tickets' messages
    for n in (1, 2):
        with app.extensions["ivr.sessions"]() as session:
            open_ticket(session, n)
            session.commit()
    work(app, redis_url)
    admin = signed_in_admin(app)
    page = admin.get("/admin/delivery").get_data(as_text=True)
    assert 'data-testid="failed-mail">2<' in page and 'data-testid="delivered-mail">0<' in page
    assert "SMTP 554 5.7.1 message refused" in page
    assert "Retry all failed" in page and 'aria-label="Retry delivery 1"' in page
    assert 'href="/admin/delivery">Delivery</a>' in admin.get("/admin/").get_data(as_text=True)

    one = admin.post("/admin/delivery/1/retry", follow_redirects=True).get_data(as_text=True)
    assert "Delivery 1 (ticket 10001, created) will be tried again." in one
    work(app, redis_url)
    rest = admin.post("/admin/delivery/connectors/mail/retry", follow_redirects=True)
    assert "1 failed deliveries to &#39;mail&#39; will be tried again." in rest.get_data(
        as_text=True)
    work(app, redis_url)
    page = admin.get("/admin/delivery").get_data(as_text=True)
    assert 'data-testid="delivered-mail">2<' in page and 'data-testid="failed-mail">0<' in page
    assert len(smtp.messages()) == 2
    agent = app.test_client()
    assert agent.get("/admin/delivery").status_code == 302  # not signed in: to the sign-in
