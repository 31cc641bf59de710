"""What admins see of delivery and what they can do: per connector the pending, delivered and
failed deliveries and the last error, and a retry of one failed delivery or all of them.

The admin page and the JSON API both call these functions; they hold no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callbacks import runtime
from callbacks.db import utcnow
from callbacks.delivery.outbox import Delivery, delivery_settings, enqueue_delivery
from callbacks.tickets.ticket import ticket_number

SHOWN = 100
"""Failed and pending deliveries listed per connector."""


class DeliveryError(ValueError):
    """An action that cannot be done as asked; the message says why, for the admin."""


@dataclass(frozen=True)
class DeliveryRow:
    """One delivery as the admin page lists it."""

    id: int
    ticket_number: str
    event_id: int
    kind: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str
    created_at: datetime
    delivered_at: datetime | None
    idempotency_key: str


@dataclass(frozen=True)
class ConnectorSummary:
    """A connector's counts, its latest error and its failed and waiting deliveries."""

    name: str
    type: str
    enabled: bool
    configured: bool
    pending: int
    delivered: int
    failed: int
    last_error: str
    last_error_at: datetime | None
    last_delivered_at: datetime | None
    failed_rows: list[DeliveryRow]
    pending_rows: list[DeliveryRow]


def connector_summaries(session: Session) -> list[ConnectorSummary]:
    """Every configured connector, and any connector that still has deliveries in SQL."""
    settings = delivery_settings()
    counts: dict[str, dict[str, int]] = {}
    for connector, status, count in session.execute(
            select(Delivery.connector, Delivery.status, func.count())
            .group_by(Delivery.connector, Delivery.status)):
        counts.setdefault(connector, {})[status] = count
    names = [c.name for c in settings.connectors] + sorted(
        set(counts) - {c.name for c in settings.connectors})
    summaries = []
    for name in names:
        configured = settings.connector(name)
        latest = session.scalar(select(Delivery).where(
            Delivery.connector == name, Delivery.last_error.is_not(None))
            .order_by(Delivery.updated_at.desc()).limit(1))
        summaries.append(ConnectorSummary(
            name=name, type=configured.type if configured else "(not configured)",
            enabled=bool(configured and configured.enabled), configured=configured is not None,
            pending=counts.get(name, {}).get("pending", 0),
            delivered=counts.get(name, {}).get("delivered", 0),
            failed=counts.get(name, {}).get("failed", 0),
            last_error=latest.last_error or "" if latest else "",
            last_error_at=latest.updated_at if latest else None,
            last_delivered_at=session.scalar(select(func.max(Delivery.delivered_at)).where(
                Delivery.connector == name)),
            failed_rows=deliveries(session, name, "failed"),
            pending_rows=deliveries(session, name, "pending")))
    return summaries


def deliveries(session: Session, connector: str, status: str,
               limit: int = SHOWN) -> list[DeliveryRow]:
    """A connector's deliveries in one status, oldest event first."""
    rows = session.scalars(select(Delivery).where(Delivery.connector == connector,
                                                  Delivery.status == status)
                           .order_by(Delivery.event_id).limit(limit))
    return [_row(row) for row in rows]


def retry_delivery(session: Session, delivery_id: int) -> DeliveryRow:
    """Try a failed delivery again from the start (its tries counted anew), and what waits
    behind it."""
    row = session.get(Delivery, delivery_id, with_for_update=True)
    if row is None:
        raise DeliveryError("no such delivery")
    if row.status != "failed":
        raise DeliveryError(f"delivery {delivery_id} is {row.status}, not failed")
    _reset(row)
    session.commit()
    enqueue_delivery(runtime.redis(), row.ticket_id, row.connector)
    return _row(row)


def retry_failed(session: Session, connector: str) -> list[int]:
    """Try every failed delivery of a connector again; their ids."""
    if delivery_settings().connector(connector) is None:
        raise DeliveryError(f"no connector '{connector}' is configured")
    rows = list(session.scalars(select(Delivery).where(
        Delivery.connector == connector, Delivery.status == "failed").with_for_update()))
    for row in rows:
        _reset(row)
    session.commit()
    connection = runtime.redis()
    for ticket_id in sorted({row.ticket_id for row in rows}):
        enqueue_delivery(connection, ticket_id, connector)
    return [row.id for row in rows]


def _reset(row: Delivery) -> None:
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = utcnow()
    row.updated_at = utcnow()


def _row(row: Delivery) -> DeliveryRow:
    return DeliveryRow(id=row.id, ticket_number=ticket_number(row.ticket_id),
                       event_id=row.event_id, kind=row.kind, status=row.status,
                       attempts=row.attempts, next_attempt_at=row.next_attempt_at,
                       last_error=row.last_error or "", created_at=row.created_at,
                       delivered_at=row.delivered_at, idempotency_key=row.idempotency_key)
