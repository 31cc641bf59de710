"""The outbox: one row per ticket event and connector, written in the event's own transaction.

`record_event` is called by `add_event` for every ticket event; it writes a pending delivery for
each enabled connector that wants the event's kind, so a ticket change and the duty to tell the
company's ticket system commit (or roll back) together. Once the transaction commits, one rq job
per ticket and connector is queued (`enqueue_delivery`); if Redis is down or loses the job, the
reconciler queues it again from these rows. The job (`callbacks.delivery.dispatcher`) sends a
ticket's events to a connector strictly in event order.

A row is `pending` (waiting, or in backoff until `next_attempt_at`), `delivered`, or `failed`
(its tries used up or refused for good: shown on the admin page, retried from there; later
events of the same ticket wait behind it, so the ticket system never sees them out of order).
Each row's idempotency key (ticket number, event id, connector) travels with every try, so a
receiver recognises a repeat after a worker died between sending and recording.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    select,
    text,
)
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from callbacks.db import Base, UTCDateTime, utcnow
from callbacks.delivery.settings import NO_DELIVERY, DeliverySettings

if TYPE_CHECKING:
    from callbacks.tickets.ticket import Ticket, TicketEvent

log = logging.getLogger(__name__)

STATUSES = ("pending", "delivered", "failed")
QUEUE = "default"
JOB_TIMEOUT = 600
_STREAMS_KEY = "delivery.streams"
_WAITING = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


class Delivery(Base):
    """One ticket event on its way to one connector."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "connector"),
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        Index("ix_deliveries_stream", "connector", "ticket_id", "status", "event_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("ticket_events.id", ondelete="CASCADE"))
    connector: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(96), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)
    remote_ref: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeliveryStream(Base):
    """A ticket as one connector knows it: the remote ticket (Zammad's id and number) and the
    event its first message carried (email threads hang from it). Its id keys the lock that
    keeps one ticket's deliveries to one connector in order."""

    __tablename__ = "delivery_streams"
    __table_args__ = (UniqueConstraint("ticket_id", "connector"),
                      Index("ix_delivery_streams_remote", "connector", "remote_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    connector: Mapped[str] = mapped_column(String(32))
    remote_id: Mapped[str | None] = mapped_column(String(64))
    remote_number: Mapped[str | None] = mapped_column(String(64))
    first_event_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def idempotency_key(ticket_number: str, event_id: int, connector: str) -> str:
    """The key a receiver sees on every try of one event to one connector."""
    return f"ivr-{ticket_number}-{event_id}-{connector}"


def origin(connector: str) -> str:
    """The `by` of ticket events a connector's own system caused (never sent back to it)."""
    return f"connector:{connector}"


def delivery_settings() -> DeliverySettings:
    """The connectors of this process (none where the jobs' runtime is not configured)."""
    from callbacks import runtime  # here: runtime's settings import the ticket desk

    try:
        return runtime.delivery()
    except runtime.NotConfigured:
        return NO_DELIVERY


def record_event(session: Session, ticket: Ticket, ticket_event: TicketEvent) -> list[Delivery]:
    """Write the event's deliveries in the caller's transaction; jobs are queued on commit."""
    settings = delivery_settings()
    targets = [connector for connector in settings.enabled
               if connector.wants(ticket_event.kind) and ticket_event.by != origin(connector.name)]
    if not targets:
        return []
    if session.get_bind().dialect.name == "postgresql":
        # Until this transaction ends, no other adds a delivered event to this ticket: event
        # ids of a ticket commit in their order, so the dispatcher never sees a later event
        # before an earlier one (SQLite has one writer). Taken before the event gets its id;
        # the lock is the one an UPDATE of the ticket takes, so it adds no new lock order.
        with session.no_autoflush:
            session.execute(text("SELECT 1 FROM tickets WHERE id = :ticket FOR NO KEY UPDATE"),
                            {"ticket": ticket.id})
    if ticket_event.id is None:
        session.flush()
    moment = ticket_event.at or utcnow()
    rows = [Delivery(ticket_id=ticket.id, event_id=ticket_event.id, connector=connector.name,
                     kind=ticket_event.kind, status="pending", attempts=0,
                     idempotency_key=idempotency_key(ticket.number, ticket_event.id,
                                                     connector.name),
                     next_attempt_at=moment, created_at=moment, updated_at=moment)
            for connector in targets]
    session.add_all(rows)
    streams: set[tuple[int, str]] = session.info.setdefault(_STREAMS_KEY, set())
    streams.update((ticket.id, connector.name) for connector in targets)
    return rows


@event.listens_for(Session, "after_commit")
def _queue_after_commit(session: Session) -> None:
    """Queue the delivery jobs of what this transaction wrote (Redis down: the reconciler will)."""
    streams = session.info.pop(_STREAMS_KEY, None)
    if not streams:
        return
    from callbacks import runtime

    try:
        connection = runtime.redis()
        for ticket_id, connector in sorted(streams):
            enqueue_delivery(connection, ticket_id, connector)
    except (RedisError, OSError, runtime.NotConfigured) as error:
        log.warning("delivery jobs not queued (%s); the reconciler will queue them", error)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_STREAMS_KEY, None)


# --- jobs ------------------------------------------------------------------------------


def delivery_job_ids(ticket_id: int, connector: str) -> tuple[str, str]:
    """The two job ids of a ticket's deliveries to a connector: while one runs, the other
    can wait behind it for events committed meanwhile."""
    first = f"delivery-{connector}-{ticket_id}"
    return first, f"{first}-next"


def enqueue_delivery(connection: Redis, ticket_id: int, connector: str,
                     at: datetime | None = None) -> Job | None:
    """Make sure a job will deliver the ticket's pending events to the connector, at `at` or
    now; None when a waiting job already will (by then)."""
    wanted = at if at is not None and at > utcnow() + timedelta(seconds=1) else None
    for job_id in delivery_job_ids(ticket_id, connector):
        try:  # the usual case: a finished job leaves nothing behind (result_ttl 0)
            return _enqueue(connection, job_id, ticket_id, connector, wanted)
        except DuplicateJobError:
            pass
        status = _job_status(connection, job_id)
        if status == JobStatus.STARTED:
            continue  # it may have read SQL already: queue the other id behind it
        if status in _WAITING and not _scheduled_after(connection, job_id, wanted or utcnow()):
            return None  # it reads SQL when it runs, so it sees what was just committed
        forget_job(connection, job_id)  # failed, stopped, or waiting too long: free its id
        try:
            return _enqueue(connection, job_id, ticket_id, connector, wanted)
        except DuplicateJobError:
            return None  # another process queued it just now
    return None


def _scheduled_after(connection: Redis, job_id: str, moment: datetime) -> bool:
    """Whether the job waits in rq's scheduler until well after `moment`."""
    try:
        scheduled = ScheduledJobRegistry(QUEUE, connection=connection).get_scheduled_time(job_id)
    except NoSuchJobError:
        return False
    return scheduled.replace(tzinfo=UTC) > moment + timedelta(seconds=1)


def _enqueue(connection: Redis, job_id: str, ticket_id: int, connector: str,
             at: datetime | None) -> Job:
    queue = Queue(QUEUE, connection=connection)
    function = "callbacks.delivery.dispatcher.deliver_stream"
    if at is not None:
        return queue.enqueue_at(at, function, ticket_id, connector, job_id=job_id,
                                job_timeout=JOB_TIMEOUT, result_ttl=0,
                                failure_ttl=7 * 24 * 3600, unique=True)
    # No result kept: a finished job leaves its id free for the ticket's next event.
    return queue.enqueue_call(function, args=(ticket_id, connector), timeout=JOB_TIMEOUT,
                              job_id=job_id, result_ttl=0, failure_ttl=7 * 24 * 3600,
                              unique=True)


def _job_status(connection: Redis, job_id: str) -> JobStatus | None:
    try:
        return Job.fetch(job_id, connection=connection).get_status(refresh=False)
    except (NoSuchJobError, ValueError):
        return None


def forget_job(connection: Redis, job_id: str) -> None:
    """Remove what is left of a job so its id can be used again."""
    try:
        Job.fetch(job_id, connection=connection).delete(remove_from_queue=True)
    except (NoSuchJobError, ValueError):
        connection.delete(Job.key_for(job_id))


_Pending = aliased(Delivery)


def requeue_lost_deliveries(session: Session, connection: Redis, settled_before: datetime,
                            is_alive: Callable[[Redis, str], bool]) -> list[str]:
    """Queue again the delivery jobs of due pending events whose job Redis lost (or whose
    scheduled run is long overdue: the worker running rq's scheduler died). Streams waiting
    behind a failed delivery are left to the admin page."""
    names = {connector.name for connector in delivery_settings().enabled}
    blocked = select(Delivery.id).where(
        Delivery.ticket_id == _Pending.ticket_id, Delivery.connector == _Pending.connector,
        Delivery.status == "failed")
    streams = session.execute(
        select(_Pending.ticket_id, _Pending.connector).where(
            _Pending.status == "pending", _Pending.next_attempt_at < settled_before,
            ~blocked.exists()).distinct()).all()
    requeued: list[str] = []
    for ticket_id, connector in streams:
        if connector not in names:
            continue
        job_ids = delivery_job_ids(ticket_id, connector)
        if any(_alive(connection, job_id, settled_before, is_alive) for job_id in job_ids):
            continue
        for job_id in job_ids:
            forget_job(connection, job_id)
        if enqueue_delivery(connection, ticket_id, connector) is not None:
            requeued.append(f"{connector}/{ticket_id}")
    return requeued


def _alive(connection: Redis, job_id: str, settled_before: datetime,
           is_alive: Callable[[Redis, str], bool]) -> bool:
    if _job_status(connection, job_id) == JobStatus.SCHEDULED:
        try:
            at = ScheduledJobRegistry(QUEUE, connection=connection).get_scheduled_time(job_id)
        except NoSuchJobError:
            return False
        return at.replace(tzinfo=UTC) >= settled_before
    return is_alive(connection, job_id)
