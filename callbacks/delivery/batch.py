"""Batches: a delivery job that has finished its own ticket also sends the next event of other
tickets to the same connector, many at a time, before their own jobs come round.

The rules of a single delivery hold for each ticket in a batch: only the oldest undelivered
event of a ticket is taken, and only while this job holds that ticket's stream lock (taken
without waiting: a ticket whose lock is held elsewhere is left alone); every try is counted,
with its lease and frozen payload, in SQL before anything is sent; what was sent is written
down after the batch. A worker that dies in the middle leaves the sent ones to be sent again
under the same idempotency keys, which receivers recognise, and the rest to their leases. The
tickets' own jobs, when they run, find their event delivered and stop.

Batching saves the per-event SQL round trips and job start-ups that dominate delivery on one
machine: one query finds the batch, one writes the tries, one writes what was delivered.
PostgreSQL only (the stream locks are advisory locks); SQLite delivers ticket by ticket.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from callbacks import runtime
from callbacks.db import utcnow
from callbacks.delivery.connectors import (
    DeliveryRefused,
    Outgoing,
    Sent,
    max_recording_bytes,
    send,
)
from callbacks.delivery.outbox import enqueue_delivery, idempotency_key
from callbacks.delivery.payloads import TicketEventPayload, build_payloads, recording_bytes
from callbacks.delivery.settings import Connector, RetryPolicy

log = logging.getLogger(__name__)

BATCH_SIZE = 50
"""Tickets taken at once."""
HELP_SECONDS = 2.0
"""How long a job goes on with other tickets' events after its own."""

_DUE_HEADS = """
SELECT d.id, d.ticket_id, d.event_id, d.attempts, d.payload, d.idempotency_key
FROM deliveries d
WHERE d.connector = :connector AND d.status = 'pending' AND d.next_attempt_at <= :now
  AND d.attempts < :max_attempts AND d.ticket_id {which}
  AND NOT EXISTS (SELECT 1 FROM deliveries e
                  WHERE e.connector = d.connector AND e.ticket_id = d.ticket_id
                    AND e.status <> 'delivered' AND e.event_id < d.event_id)
ORDER BY d.event_id
LIMIT :limit
"""
"""The oldest undelivered event of each ticket, when it is pending, due and tried fewer than
the most times."""


@dataclass
class _Item:
    delivery_id: int
    ticket_id: int
    outgoing: Outgoing


def help_other_tickets(session: Session, connector: Connector, retry: RetryPolicy,
                       own_ticket_id: int) -> int:
    """Deliver other tickets' next events to `connector` in batches for a while; how many."""
    if session.get_bind().dialect.name != "postgresql":
        return 0
    deadline, delivered = time.monotonic() + HELP_SECONDS, 0
    while time.monotonic() < deadline:
        items = _take_batch(session, connector, retry, own_ticket_id)
        if not items:
            break
        done, stopped = _send_batch(session, connector, retry, items)
        delivered += done
        if stopped:
            break
    return delivered


def _take_batch(session: Session, connector: Connector, retry: RetryPolicy,
                own_ticket_id: int) -> list[_Item]:
    """Lock the streams of due events of other tickets and count a try of each; commits."""
    keys = {"connector": connector.name, "now": utcnow(), "max_attempts": retry.max_attempts,
            "limit": BATCH_SIZE}
    candidates = [row.ticket_id for row in session.execute(
        text(_DUE_HEADS.format(which="<> :own")), {**keys, "own": own_ticket_id})]
    if not candidates:
        session.commit()
        return []
    locked = [row[0] for row in session.execute(text(
        "SELECT t FROM unnest(CAST(:tickets AS integer[])) AS t "
        "WHERE pg_try_advisory_lock(hashtext(:connector), t)"),
        {"tickets": candidates, "connector": connector.name})]
    # Locked now: look again (their own jobs may have delivered them meanwhile).
    heads = session.execute(text(_DUE_HEADS.format(which="= ANY(CAST(:mine AS integer[]))")),
                            {**keys, "mine": locked}).all() if locked else []
    _unlock(session, connector, sorted(set(locked) - {row.ticket_id for row in heads}))
    if not heads:
        session.commit()
        return []
    streams = _streams(session, connector, heads)
    fresh = {row.event_id: row.idempotency_key for row in heads if row.payload is None}
    payloads = build_payloads(
        session, fresh, connector=connector.name,
        max_recording_bytes=max_recording_bytes(connector),
        public_base_url=runtime.settings().public_base_url) if fresh else {}
    now, items, tries = utcnow(), [], []
    for row in heads:
        body = row.payload or payloads[row.event_id].to_json()
        payload = payloads.get(row.event_id) or TicketEventPayload.from_json(body)
        attempt = row.attempts + 1
        tries.append({"id": row.id, "attempts": attempt, "payload": body, "now": now,
                      "lease": now + timedelta(seconds=retry.backoff_seconds(attempt))})
        first_event_id, remote_id = streams[row.ticket_id]
        recording = (recording_bytes(session, row.event_id)
                     if payload.recording.included else None)
        items.append(_Item(row.id, row.ticket_id, Outgoing(
            key=row.idempotency_key, payload=payload, body=body, attempt=attempt,
            thread_key=idempotency_key(payload.ticket.number, first_event_id, connector.name),
            recording=recording, remote_id=remote_id)))
    session.execute(text(
        "UPDATE deliveries SET attempts = :attempts, next_attempt_at = :lease, "
        "payload = :payload, updated_at = :now WHERE id = :id"), tries)
    session.commit()
    return items


def _streams(session: Session, connector: Connector,
             heads: Sequence[Any]) -> dict[int, tuple[int, str | None]]:
    """Each ticket's first delivered event and remote id, its stream made where missing."""
    firsts = [{"ticket_id": row.ticket_id, "connector": connector.name,
               "first_event_id": row.event_id, "now": utcnow()} for row in heads]
    session.execute(text(
        "INSERT INTO delivery_streams (ticket_id, connector, first_event_id, created_at) "
        "VALUES (:ticket_id, :connector, :first_event_id, :now) "
        "ON CONFLICT (ticket_id, connector) DO UPDATE "
        "SET first_event_id = COALESCE(delivery_streams.first_event_id, "
        "EXCLUDED.first_event_id)"), firsts)
    rows = session.execute(text(
        "SELECT ticket_id, first_event_id, remote_id FROM delivery_streams "
        "WHERE connector = :connector AND ticket_id = ANY(CAST(:tickets AS integer[]))"),
        {"connector": connector.name, "tickets": [row.ticket_id for row in heads]})
    return {row.ticket_id: (row.first_event_id, row.remote_id) for row in rows}


def _send_batch(session: Session, connector: Connector, retry: RetryPolicy,
                items: list[_Item]) -> tuple[int, bool]:
    """Send the batch in event order and write down what went; (how many, stopped early)."""
    sent: list[tuple[_Item, Sent]] = []
    stopped = False
    try:
        for position, item in enumerate(items):
            try:
                sent.append((item, send(connector, item.outgoing)))
            except Exception as error:
                _failed(session, connector, retry, item, error, items[position + 1:])
                stopped = True
                break
        if sent:
            now = utcnow()
            session.execute(text(
                "UPDATE deliveries SET status = 'delivered', delivered_at = :now, "
                "updated_at = :now, remote_ref = :ref, last_error = NULL WHERE id = :id"),
                [{"id": item.delivery_id, "ref": answer.remote_ref[:255], "now": now}
                 for item, answer in sent])
            remote = [{"ticket_id": item.ticket_id, "connector": connector.name,
                       "remote_id": answer.remote_id, "number": answer.remote_number}
                      for item, answer in sent if answer.remote_id]
            if remote:
                session.execute(text(
                    "UPDATE delivery_streams SET remote_id = :remote_id, "
                    "remote_number = :number WHERE ticket_id = :ticket_id "
                    "AND connector = :connector"), remote)
            session.commit()
    finally:
        _unlock(session, connector, [item.ticket_id for item in items])
        session.commit()
    return len(sent), stopped


def _failed(session: Session, connector: Connector, retry: RetryPolicy, item: _Item,
            error: Exception, untried: list[_Item]) -> None:
    """Write down a failed try; the rest of the batch goes back to its tickets' own jobs."""
    reason = (str(error) or type(error).__name__)[:2000]
    lasting = isinstance(error, DeliveryRefused) or item.outgoing.attempt >= retry.max_attempts
    session.execute(text(
        "UPDATE deliveries SET last_error = :reason, updated_at = :now, "
        "status = CASE WHEN :lasting THEN 'failed' ELSE status END WHERE id = :id"),
        {"reason": reason, "now": utcnow(), "lasting": lasting, "id": item.delivery_id})
    if untried:
        session.execute(text(
            "UPDATE deliveries SET attempts = attempts - 1, next_attempt_at = :now "
            "WHERE id = :id"), [{"id": other.delivery_id, "now": utcnow()} for other in untried])
    session.commit()
    log.warning("delivery %s to '%s' failed (%s); %s other tickets handed back", item.delivery_id,
                connector.name, reason, len(untried))
    connection = runtime.redis()
    if not lasting:
        enqueue_delivery(connection, item.ticket_id, connector.name,
                         at=utcnow() + timedelta(seconds=retry.backoff_seconds(
                             item.outgoing.attempt)))
    for other in untried:
        enqueue_delivery(connection, other.ticket_id, connector.name)


def _unlock(session: Session, connector: Connector, tickets: list[int]) -> None:
    if tickets:
        session.execute(text(
            "SELECT pg_advisory_unlock(hashtext(:connector), t) "
            "FROM unnest(CAST(:tickets AS integer[])) AS t"),
            {"connector": connector.name, "tickets": tickets})
