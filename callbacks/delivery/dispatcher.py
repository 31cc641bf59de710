"""The delivery job: one ticket's pending events to one connector, oldest first, one at a time.

`deliver_stream(ticket_id, connector)` holds a lock on the ticket's stream to that connector
(a PostgreSQL advisory lock, released by the server if the worker dies), so two jobs never
deliver the same ticket to the same place at once. Then, for the oldest undelivered event:

1. In SQL: count the try, set `next_attempt_at` to when the next try would be due (if this
   worker dies now, the reconciler starts over from there), and freeze the payload the first
   time, so every try sends the same document.
2. Send it (no transaction held open meanwhile).
3. In SQL: `delivered` (in the transaction that also starts the next event's try), or the
   error: after a passing failure the job is scheduled again at `next_attempt_at` (rq's
   scheduler) and stops; a lasting refusal, or the last try, makes the delivery `failed`,
   which the admin page shows, and the later events wait behind it.

A delivery is therefore sent at least once and recorded once; the receiver recognises a second
send (a worker killed between sending and recording) by its idempotency key or Message-ID.
Events of one ticket commit in the order of their ids (`record_event` locks the ticket's row
until its transaction ends), so the oldest undelivered event seen is never overtaken by one
committed later. Once its own ticket is done, the job sends
other tickets' next events to the same connector in batches (`callbacks.delivery.batch`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from callbacks import runtime
from callbacks.db import insert_ignoring_duplicates, utcnow
from callbacks.delivery.batch import help_other_tickets
from callbacks.delivery.connectors import (
    DeliveryRefused,
    Outgoing,
    Sent,
    max_recording_bytes,
    send,
)
from callbacks.delivery.outbox import (
    Delivery,
    DeliveryStream,
    enqueue_delivery,
    idempotency_key,
)
from callbacks.delivery.payloads import TicketEventPayload, build_payload, recording_bytes
from callbacks.delivery.settings import Connector, RetryPolicy

log = logging.getLogger(__name__)

NOTHING_PENDING = "nothing pending"


@dataclass
class _Stream:
    id: int
    first_event_id: int | None
    remote_id: str | None


@dataclass(frozen=True)
class _Stop:
    reason: str
    at: datetime | None = None


def deliver_stream(ticket_id: int, connector_name: str) -> dict[str, Any]:
    """Job: deliver the ticket's pending events to the connector in event order."""
    settings = runtime.delivery()
    connector = settings.connector(connector_name)
    if connector is None or not connector.enabled:
        log.warning("delivery to '%s' skipped: the connector is off or gone", connector_name)
        return {"delivered": 0, "stopped": "connector off"}
    delivered = 0
    done: tuple[int, Sent] | None = None
    with stream_lock(runtime.sessions(), ticket_id, connector_name) as (session, stream):
        while True:
            # What was just sent is written down in the transaction that starts the next try.
            step = _next_try(session, ticket_id, connector, settings.retry, stream, done)
            if done is not None:
                delivered, done = delivered + 1, None
            if isinstance(step, _Stop):
                if step.at is not None:
                    enqueue_delivery(runtime.redis(), ticket_id, connector_name, at=step.at)
                helped = 0
                if step.reason == NOTHING_PENDING:
                    release_stream(session, ticket_id, connector_name)  # its next job may go
                    helped = help_other_tickets(session, connector, settings.retry, ticket_id)
                return {"delivered": delivered, "helped": helped, "stopped": step.reason}
            delivery_id, outgoing = step
            try:
                sent = send(connector, outgoing)
            except Exception as error:
                due = _record_failure(session, delivery_id, error, settings.retry)
                if due is not None:
                    enqueue_delivery(runtime.redis(), ticket_id, connector_name, at=due)
                return {"delivered": delivered, "stopped": f"failed: {error}"}
            done = (delivery_id, sent)


@contextlib.contextmanager
def stream_lock(sessions: sessionmaker[Session], ticket_id: int,
                connector: str) -> Iterator[tuple[Session, _Stream]]:
    """A session on one connection that holds the lock of the ticket's stream to the
    connector while the block runs (PostgreSQL: an advisory lock on the connector's name and
    the ticket, released by the server if the worker dies; SQLite has one writer and the demo
    one worker). If that connection breaks, the lock is gone: the job fails, and the
    reconciler queues it again.

    Its commits do not wait for PostgreSQL's disk flush: they write down only the bookkeeping
    of tries. If the database server itself crashed within a fraction of a second after one,
    the delivery is pending again and goes once more under the same idempotency key, which
    the receiver recognises; a worker that dies loses nothing (the commit reached the server).
    """
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        with sessions() as session:
            yield session, _load_stream(session, ticket_id, connector)
        return
    keys = {"connector": connector, "ticket": ticket_id}
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(hashtext(:connector), :ticket)"), keys)
        connection.execute(text("SET synchronous_commit = off"))
        connection.commit()
        try:
            with Session(bind=connection, expire_on_commit=False) as session:
                yield session, _load_stream(session, ticket_id, connector)
        finally:
            with contextlib.suppress(Exception):  # a broken connection has no lock left
                connection.rollback()
                # this stream's lock and any a batch still held: the connection goes back
                # to the pool clean
                connection.execute(text("SELECT pg_advisory_unlock_all()"))
                connection.execute(text("RESET synchronous_commit"))
                connection.commit()


def release_stream(session: Session, ticket_id: int, connector: str) -> None:
    """Let go of the ticket's stream lock before the block ends (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_unlock(hashtext(:connector), :ticket)"),
                        {"connector": connector, "ticket": ticket_id})
        session.commit()


def _load_stream(session: Session, ticket_id: int, connector: str) -> _Stream:
    """The stream's row as it stands (made on its first delivery)."""
    query = select(DeliveryStream).where(DeliveryStream.ticket_id == ticket_id,
                                         DeliveryStream.connector == connector)
    row = session.scalar(query)
    if row is None:
        session.execute(insert_ignoring_duplicates(
            session, DeliveryStream.__table__, ["ticket_id", "connector"]).values(
                ticket_id=ticket_id, connector=connector, created_at=utcnow()))
        row = session.scalar(query)
        session.commit()
    assert row is not None
    return _Stream(row.id, row.first_event_id, row.remote_id)


def _next_try(session: Session, ticket_id: int, connector: Connector, retry: RetryPolicy,
              stream: _Stream, done: tuple[int, Sent] | None) -> tuple[int, Outgoing] | _Stop:
    """Write down the delivery just made (if any), then count a try of the oldest undelivered
    event, or say why nothing is sent now; commits."""
    if done is not None:
        _mark_delivered(session, *done, stream)
    query = select(Delivery).where(
        Delivery.ticket_id == ticket_id, Delivery.connector == connector.name,
        Delivery.status != "delivered").order_by(Delivery.event_id).limit(1)
    head = session.scalar(query)
    stop = _why_not(head, retry, connector.name)
    if stop is not None:
        session.commit()
        return stop
    assert head is not None
    now = utcnow()
    head.attempts += 1
    head.next_attempt_at = now + timedelta(seconds=retry.backoff_seconds(head.attempts))
    first_event_id = stream.first_event_id or head.event_id
    if stream.first_event_id is None:
        session.execute(update(DeliveryStream).where(DeliveryStream.id == stream.id)
                        .values(first_event_id=head.event_id))
    if head.payload is None:
        head.payload = build_payload(
            session, key=head.idempotency_key, connector=connector.name,
            event_id=head.event_id, max_recording_bytes=max_recording_bytes(connector),
            public_base_url=runtime.settings().public_base_url).to_json()
    payload = TicketEventPayload.from_json(head.payload)
    recording = (recording_bytes(session, head.event_id)
                 if payload.recording.included else None)
    outgoing = Outgoing(
        key=head.idempotency_key, payload=payload, body=head.payload, attempt=head.attempts,
        recording=recording, remote_id=stream.remote_id,
        thread_key=idempotency_key(payload.ticket.number, first_event_id, connector.name))
    delivery_id = head.id
    session.commit()
    stream.first_event_id = first_event_id
    return delivery_id, outgoing


def _why_not(head: Delivery | None, retry: RetryPolicy, connector: str) -> _Stop | None:
    """Why the oldest undelivered event is not to be sent now (None: it is)."""
    if head is None:
        return _Stop(NOTHING_PENDING)
    if head.status == "failed":
        return _Stop(f"waiting behind failed delivery {head.id}")
    if head.next_attempt_at > utcnow() + timedelta(milliseconds=500):
        return _Stop("backing off", head.next_attempt_at)
    if head.attempts >= retry.max_attempts:  # tries cut short by dying workers count too
        head.status = "failed"
        head.last_error = f"{head.last_error or 'no answer'} (gave up after " \
                          f"{head.attempts} tries)"
        log.error("delivery %s to '%s' failed for good after %s tries", head.id, connector,
                  head.attempts)
        return _Stop(f"delivery {head.id} failed")
    return None


def _mark_delivered(session: Session, delivery_id: int, sent: Sent, stream: _Stream) -> None:
    session.execute(update(Delivery).where(Delivery.id == delivery_id).values(
        status="delivered", delivered_at=utcnow(), updated_at=utcnow(),
        remote_ref=sent.remote_ref[:255], last_error=None))
    if sent.remote_id and stream.remote_id != sent.remote_id:
        session.execute(update(DeliveryStream).where(DeliveryStream.id == stream.id).values(
            remote_id=sent.remote_id, remote_number=sent.remote_number))
        stream.remote_id = sent.remote_id


def _record_failure(session: Session, delivery_id: int, error: Exception,
                    retry: RetryPolicy) -> datetime | None:
    """Write down a failed try; when the next one is due (None: the delivery failed)."""
    reason = str(error) or type(error).__name__
    session.rollback()
    row = session.get(Delivery, delivery_id)
    assert row is not None
    row.last_error = reason[:2000]
    row.updated_at = utcnow()
    due = None
    if isinstance(error, DeliveryRefused) or row.attempts >= retry.max_attempts:
        row.status = "failed"
    else:
        due = row.next_attempt_at
    session.commit()
    if due is None:
        log.error("delivery %s failed for good: %s", delivery_id, reason)
    else:
        log.warning("delivery %s failed, next try at %s: %s", delivery_id, f"{due:%H:%M:%S}",
                    reason)
    return due
