"""Delivery through the outbox on real PostgreSQL, Redis, `ivr worker` processes, a real SMTP
server (STARTTLS, AUTH) and a webhook receiver that checks every request with the README's
snippet: each ticket event reaches each connector exactly once, in order per ticket, while
the receivers fail and recover, a worker is killed mid-delivery, or Redis forgets the jobs."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import func, select

from benchmarks.chaos_stack import free_port
from benchmarks.ticket_receivers import SmtpReceiver, WebhookReceiver
from callbacks import runtime
from callbacks.delivery.email import close_connections
from callbacks.delivery.outbox import Delivery, origin
from callbacks.settings import Settings
from callbacks.tickets.ticket import Ticket, TicketEvent, add_event
from callbacks.workqueue.agents import create_agent, issue_api_token
from tests.conftest import app_config, empty_tables
from tests.delivery_helpers import (
    configure_runtime,
    deliveries,
    email_connector,
    open_ticket,
    wait_for,
    webhook_connector,
    worker_env,
    worker_process,
    write_delivery_file,
)

pytestmark = pytest.mark.server

UPDATES = (("transcribed", "12 words"), ("status", "new -> assigned"),
           ("note", "asked the network team"), ("status", "assigned -> resolved: fixed"))


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpReceiver]:
    with SmtpReceiver(tmp_path, free_port()) as server:
        yield server
    close_connections()


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def app(database_url: str, redis_url: str) -> Iterator[Flask]:
    """The app (for its sessions and API); the jobs' runtime is configured by each test."""
    from ivr import create_app

    application = create_app(app_config(database_url, REDIS_URL=redis_url,
                                        CONFIGURE_RUNTIME=False))
    yield application
    empty_tables(application)
    runtime.configure(Settings(database_url=database_url, redis_url=redis_url))


def make_tickets(app: Flask, count: int, updates: tuple[tuple[str, str], ...] = UPDATES,
                 start: int = 1) -> list[int]:
    """`count` tickets, each with its `created` event and then `updates`, every event in a
    transaction of its own (as the webhooks, jobs and agents write them)."""
    ids = []
    for n in range(start, start + count):
        with app.extensions["ivr.sessions"]() as session:
            ids.append(open_ticket(session, n).id)
            session.commit()
    for kind, detail in updates:
        for ticket_id in ids:
            with app.extensions["ivr.sessions"]() as session:
                ticket = session.get(Ticket, ticket_id)
                assert ticket is not None
                add_event(session, ticket, kind, detail)
                session.commit()
    return ids


def expected_keys(app: Flask, connector: str) -> dict[int, list[str]]:
    """Per ticket, the idempotency keys of its deliveries to `connector`, in event order."""
    with app.extensions["ivr.sessions"]() as session:
        rows = session.scalars(select(Delivery).where(Delivery.connector == connector)
                               .order_by(Delivery.event_id))
        found: dict[int, list[str]] = {}
        for row in rows:
            found.setdefault(row.ticket_id, []).append(row.idempotency_key)
        return found


def all_delivered(app: Flask) -> bool:
    with app.extensions["ivr.sessions"]() as session:
        rows = deliveries(session)
        return bool(rows) and all(row.status == "delivered" for row in rows)


def assert_once_in_order(received_keys: list[str], expected: dict[int, list[str]]) -> None:
    """Every expected key arrived exactly once, and each ticket's keys in event order."""
    everything = [key for keys in expected.values() for key in keys]
    assert sorted(received_keys) == sorted(everything)
    for keys in expected.values():
        arrived = [key for key in received_keys if key in keys]
        assert arrived == keys


def email_key(message_id: str) -> str:
    return message_id.strip("<>").split("@")[0]


def test_each_ticket_event_writes_one_delivery_per_connector_in_its_own_transaction(
        app: Flask, database_url: str, redis_url: str, tmp_path: Path) -> None:
    path = write_delivery_file(
        tmp_path, email_connector(2525, tmp_path / "ca.pem", events="[created, status]"),
        webhook_connector("http://127.0.0.1:9/hooks"))
    (tmp_path / "ca.pem").write_text("not used before a delivery")
    configure_runtime(database_url, redis_url, path)
    with app.extensions["ivr.sessions"]() as session:
        ticket = open_ticket(session, 1)
        add_event(session, ticket, "sms_sent", "ticket number sent")  # bookkeeping: not sent
        add_event(session, ticket, "transcribed", "3 words")  # the mail connector skips it
        session.commit()
        add_event(session, ticket, "status", "new -> assigned")
        session.rollback()  # never happened: never delivered
        add_event(session, ticket, "status", "new -> resolved", by=origin("hook"))
        session.commit()  # reported by the hook's system: not sent back to it
    with app.extensions["ivr.sessions"]() as session:
        rows = [(row.connector, row.kind, row.status) for row in deliveries(session)]
        keys = {row.idempotency_key for row in deliveries(session)}
    assert rows == [("mail", "created", "pending"), ("hook", "created", "pending"),
                    ("hook", "transcribed", "pending"), ("mail", "status", "pending")]
    assert len(keys) == 4 and all(key.startswith("ivr-10001-") for key in keys)
    queued = Redis.from_url(redis_url).lrange("rq:queue:default", 0, -1)
    assert sorted(job.decode() for job in queued) == ["delivery-hook-1", "delivery-mail-1"]


def test_every_event_reaches_both_receivers_once_and_in_order_while_they_fail_and_recover(
        app: Flask, database_url: str, redis_url: str, smtp: SmtpReceiver,
        hooks: WebhookReceiver, tmp_path: Path) -> None:
    path = write_delivery_file(tmp_path, email_connector(smtp.port, smtp.cert),
                               webhook_connector(hooks.url), max_attempts=20)
    configure_runtime(database_url, redis_url, path)
    smtp.fail("reject")  # 451 to every message
    hooks.fail("503")
    make_tickets(app, 6)
    env = worker_env(database_url, redis_url, path)
    with worker_process(env, tmp_path / "w1.log"), worker_process(env, tmp_path / "w2.log"):
        def tried_twice() -> bool:
            with app.extensions["ivr.sessions"]() as session:
                return session.scalar(select(func.count()).select_from(Delivery).where(
                    Delivery.attempts >= 2)) >= 12
        wait_for(tried_twice, 30, "failed tries being repeated")
        smtp.fail("drop", times=4)  # the server hangs up on the next four messages
        hooks.stop()  # connection refused
        time.sleep(2)
        hooks.start()
        hooks.fail("503", times=5)
        wait_for(lambda: all_delivered(app), 90, "every event delivered")
    assert smtp.faults.hits >= 4
    assert_once_in_order([email_key(mid) for mid in smtp.message_ids()],
                         expected_keys(app, "mail"))
    assert_once_in_order([doc["idempotency_key"] for doc in hooks.accepted()],
                         expected_keys(app, "hook"))
    assert not hooks.rejected  # every request carried a valid signature and timestamp
    with app.extensions["ivr.sessions"]() as session:
        assert all(row.attempts >= 2 for row in deliveries(session)
                   if row.event_id <= 6)  # the first events were all refused at first


def test_a_worker_killed_mid_delivery_loses_nothing_and_the_receiver_recognises_the_repeat(
        app: Flask, database_url: str, redis_url: str, smtp: SmtpReceiver,
        hooks: WebhookReceiver, tmp_path: Path) -> None:
    path = write_delivery_file(tmp_path, email_connector(smtp.port, smtp.cert),
                               webhook_connector(hooks.url, timeout_seconds=30))
    configure_runtime(database_url, redis_url, path)
    hooks.fail("stall", times=1, stall_seconds=20)  # the request arrives; no answer comes
    smtp.fail("stall", times=1, stall_seconds=20)  # the message arrives; no 250 comes
    make_tickets(app, 2)
    env = worker_env(database_url, redis_url, path)
    with worker_process(env, tmp_path / "w1.log") as first:
        wait_for(lambda: hooks.faults.hits == 1 and len(hooks.hooks) == 1, 30,
                 "the webhook stalling on its first request")
        os.killpg(first.pid, signal.SIGKILL)  # in the middle of the POST
    smtp.recover()
    hooks.recover()
    with worker_process(env, tmp_path / "w2.log"):
        wait_for(lambda: all_delivered(app), 60, "every event delivered after the restart")
    keys = [doc["idempotency_key"] for doc in hooks.accepted()]
    assert_once_in_order(keys, expected_keys(app, "hook"))
    repeats = [hook.key for hook in hooks.hooks if hook.document is None]
    assert len(repeats) == 1 and repeats[0] == hooks.hooks[0].key  # the cut-off one, once more
    by_id: dict[str, int] = {}
    for key in (email_key(mid) for mid in smtp.message_ids()):
        by_id[key] = by_id.get(key, 0) + 1
    assert sorted(by_id) == sorted(k for ks in expected_keys(app, "mail").values() for k in ks)
    assert all(count <= 2 for count in by_id.values())  # a repeat has the same Message-ID
    with app.extensions["ivr.sessions"]() as session:
        killed = session.scalar(select(Delivery).where(
            Delivery.idempotency_key == hooks.hooks[0].key))
        assert killed is not None and killed.status == "delivered" and killed.attempts == 2


def test_deliveries_whose_jobs_redis_lost_are_queued_again_by_the_reconciler(
        app: Flask, database_url: str, redis_url: str, hooks: WebhookReceiver,
        tmp_path: Path) -> None:
    path = write_delivery_file(tmp_path, webhook_connector(hooks.url))
    configure_runtime(database_url, redis_url, path)
    make_tickets(app, 3, updates=UPDATES[:2])
    Redis.from_url(redis_url).flushall()  # every queued delivery job is gone
    with worker_process(worker_env(database_url, redis_url, path), tmp_path / "w.log"):
        wait_for(lambda: all_delivered(app), 60, "the reconciler to queue the deliveries")
    assert_once_in_order([doc["idempotency_key"] for doc in hooks.accepted()],
                         expected_keys(app, "hook"))
    assert "deliveries" in (tmp_path / "w.log").read_text()  # the reconciler said what it did


def test_a_refused_delivery_fails_visibly_holds_back_later_events_and_goes_after_a_retry(
        app: Flask, database_url: str, redis_url: str, smtp: SmtpReceiver,
        tmp_path: Path) -> None:
    path = write_delivery_file(tmp_path, email_connector(smtp.port, smtp.cert))
    configure_runtime(database_url, redis_url, path)
    smtp.fail("refuse", times=1)  # 554 for the first message: a lasting refusal
    [ticket_id] = make_tickets(app, 1, updates=())
    with app.extensions["ivr.sessions"]() as session:
        admin = create_agent(session, "root", "correct horse battery", role="admin",
                             phone="+4930555010")
        token = issue_api_token(admin)
        session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    env = worker_env(database_url, redis_url, path)
    client = app.test_client()
    with worker_process(env, tmp_path / "w.log"):
        def failed() -> bool:
            with app.extensions["ivr.sessions"]() as session:
                return [row.status for row in deliveries(session)] == ["failed"]
        wait_for(failed, 30, "the refused delivery to fail")
        with app.extensions["ivr.sessions"]() as session:
            ticket = session.get(Ticket, ticket_id)
            assert ticket is not None
            add_event(session, ticket, "status", "new -> assigned")
            session.commit()
        time.sleep(3)  # the worker looks, and the update waits behind the failed delivery
        listing = client.get("/api/v1/delivery/connectors", headers=headers).get_json()
        [mail] = listing["connectors"]
        assert (mail["failed"], mail["pending"], mail["delivered"]) == (1, 1, 0)
        assert "554" in mail["last_error"] and "554" in mail["failed_deliveries"][0][
            "last_error"]
        assert smtp.messages() == []
        page = client.get("/admin/delivery")  # admins only: not signed in, sent to sign in
        assert page.status_code == 302
        retried = client.post(f"/api/v1/delivery/deliveries/"
                              f"{mail['failed_deliveries'][0]['id']}/retry", headers=headers)
        assert retried.status_code == 200 and retried.get_json()["status"] == "pending"
        wait_for(lambda: all_delivered(app), 30, "both events after the retry")
    assert_once_in_order([email_key(mid) for mid in smtp.message_ids()],
                         expected_keys(app, "mail"))
    again = client.post("/api/v1/delivery/deliveries/1/retry", headers=headers)
    assert again.status_code == 400  # delivered, not failed
    with app.extensions["ivr.sessions"]() as session:
        kinds = [kind for kind in session.scalars(select(TicketEvent.kind).order_by(
            TicketEvent.id)) if not kind.startswith("sms_")]  # the worker texts the caller
        assert kinds == ["created", "status"], kinds


def test_without_the_runtime_configured_nothing_is_written_to_the_outbox(
        app: Flask, database_url: str) -> None:
    runtime._settings = None  # a process that is neither the web app nor a worker
    try:
        with app.extensions["ivr.sessions"]() as session:
            open_ticket(session, 1)
            session.commit()
            assert deliveries(session) == []
    finally:
        runtime.configure(Settings(database_url=database_url))


def test_a_job_delivers_other_tickets_next_events_in_batches_and_a_failure_hands_them_back(
        app: Flask, database_url: str, redis_url: str, hooks: WebhookReceiver,
        tmp_path: Path) -> None:
    from callbacks.worker import HelpdeskWorker
    from tests.test_delivery_zammad import work

    path = write_delivery_file(tmp_path, webhook_connector(hooks.url))
    configure_runtime(database_url, redis_url, path)
    make_tickets(app, 8, updates=UPDATES[:1])  # 8 tickets, 2 events each, nothing delivered
    hooks.fail("503", times=1, skip=4)  # the 5th request fails: inside the first batch
    connection = Redis.from_url(redis_url)
    worker = HelpdeskWorker(["default"], connection=connection)
    worker.work(burst=True, max_jobs=1)  # only the first ticket's job
    with app.extensions["ivr.sessions"]() as session:
        by_ticket = {row.ticket_id: row for row in deliveries(session) if row.kind == "created"}
        # its own two events, then tickets 2 and 3 in a batch, then the 503
        assert [by_ticket[n].status for n in (1, 2, 3)] == ["delivered"] * 3
        assert [row.status for row in deliveries(session) if row.ticket_id == 1] == [
            "delivered", "delivered"]
        assert by_ticket[4].attempts == 1 and "HTTP 503" in (by_ticket[4].last_error or "")
        assert all(by_ticket[n].attempts == 0 for n in range(5, 9))  # handed back untried
    work(app, redis_url)  # the other tickets' own jobs, and the 5th again after its backoff
    assert_once_in_order([doc["idempotency_key"] for doc in hooks.accepted()],
                         expected_keys(app, "hook"))
    assert not [hook for hook in hooks.hooks if hook.document is None]  # nothing sent twice


def test_a_second_writer_of_the_same_tickets_events_waits_so_ids_commit_in_order(
        app: Flask, database_url: str, redis_url: str, tmp_path: Path) -> None:
    import threading

    configure_runtime(database_url, redis_url, write_delivery_file(
        tmp_path, webhook_connector("http://127.0.0.1:9/hooks")))
    [ticket_id] = make_tickets(app, 1, updates=())
    sessions = app.extensions["ivr.sessions"]
    first = sessions()
    ticket = first.get(Ticket, ticket_id)
    assert ticket is not None
    add_event(first, ticket, "note", "written first, committed last")

    def second_writer() -> None:
        with sessions() as session:
            same = session.get(Ticket, ticket_id)
            assert same is not None
            add_event(session, same, "note", "written second")
            session.commit()

    writer = threading.Thread(target=second_writer)
    writer.start()
    time.sleep(1)
    assert writer.is_alive()  # waiting for the first transaction to end
    first.commit()
    first.close()
    writer.join(timeout=10)
    with sessions() as session:
        notes = [(row.event_id, row.kind) for row in deliveries(session) if row.kind == "note"]
        details = [session.get(TicketEvent, event_id).detail for event_id, _ in notes]
    assert details == ["written first, committed last", "written second"]  # ids in that order


def test_the_webhook_body_matches_the_schema_the_openapi_document_publishes(
        app: Flask, database_url: str, redis_url: str, hooks: WebhookReceiver,
        tmp_path: Path) -> None:
    import jsonschema

    from tests.test_delivery_zammad import work

    configure_runtime(database_url, redis_url,
                      write_delivery_file(tmp_path, webhook_connector(hooks.url)))
    make_tickets(app, 1, updates=UPDATES[:2])
    work(app, redis_url)
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    hook = spec["webhooks"]["ticketEvent"]["post"]
    assert {p["name"] for p in hook["parameters"]} == {
        "X-Helpdesk-Timestamp", "X-Helpdesk-Signature", "Idempotency-Key", "X-Helpdesk-Event"}
    schema = {"$ref": "#/components/schemas/TicketEventPayload",
              "components": spec["components"]}
    documents = hooks.accepted()
    assert [doc["event"]["kind"] for doc in documents] == ["created", "transcribed", "status"]
    for document in documents:
        jsonschema.validate(document, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**documents[0], "ticket": {"number": 10001}}, schema)


def test_a_voicemail_reported_twice_is_one_created_event_and_one_delivery_per_connector(
        app: Flask, database_url: str, redis_url: str, tmp_path: Path) -> None:
    from callbacks.tickets.ticket import open_ticket_for_voicemail
    from callbacks.voicemail import RecordingReport, store_recording

    configure_runtime(database_url, redis_url, write_delivery_file(
        tmp_path, webhook_connector("http://127.0.0.1:9/hooks")))
    report = RecordingReport(recording_sid="RE" + "1" * 32, call_sid="CA" + "1" * 32,
                             recording_url="https://api.twilio.com/r", duration_seconds=7,
                             flow_version_id=None, node="voicemail", language="en")
    for _ in range(2):  # Twilio reports a recording twice: the Record action, then its status
        with app.extensions["ivr.sessions"]() as session:
            voicemail, _new = store_recording(session, report)
            open_ticket_for_voicemail(session, voicemail, "+4930555011")
            session.commit()
    with app.extensions["ivr.sessions"]() as session:
        kinds = list(session.scalars(select(TicketEvent.kind)))
        assert kinds == ["created"]
        assert [row.kind for row in deliveries(session)] == ["created"]
