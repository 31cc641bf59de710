"""Prometheus metrics at GET /metrics: webhook latency, callback queue, job failures, speech speed.

The webhook histogram is observed in this process; everything else is read at scrape time
(SQL and Redis), so every web process reports the same queue figures.

Several web processes (gunicorn workers): set PROMETHEUS_MULTIPROC_DIR to an empty directory,
the same for every worker and emptied before gunicorn starts; prometheus-client then keeps the
histogram in files there and any worker's /metrics adds them all up. It is read when
prometheus-client is imported, so set it in the environment, not in IVR_* settings.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from rq import Queue
from rq.registry import FailedJobRegistry
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from callbacks.db import utcnow
from callbacks.queues import QUEUES, redis_connection
from callbacks.tickets.ticket import TicketEvent
from callbacks.workqueue.callback_requests import OPEN_STATUSES, CallbackRequest

log = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)

TIMED_PREFIXES = ("/voice", "/dialer")
"""Twilio's webhooks: the routes whose latency callers hear."""
RTF_SAMPLES = 20
"""Transcriptions the real-time factor is averaged over (the latest ones)."""
_RTF = re.compile(r"real-time factor ([0-9.]+)")

# Its own registry: the app factory runs many times in one process (tests), the metric once.
_webhook_registry = CollectorRegistry()
WEBHOOK_SECONDS = Histogram(
    "ivr_webhook_seconds", "Time to answer a Twilio webhook, by route.", ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=_webhook_registry,
)


def init_app(app: Flask) -> None:
    """Time the webhooks and serve /metrics (exempt from CSRF: it is read-only)."""
    app.before_request(_start_timer)
    app.after_request(_observe)
    from ivr.auth import csrf

    csrf.exempt(bp)
    app.register_blueprint(bp)


def _start_timer() -> None:
    if request.path.startswith(TIMED_PREFIXES):
        g.webhook_started = time.perf_counter()


_webhook_timers: dict[str, Any] = {}
"""The histogram's child per endpoint, looked up once (every call step observes one)."""


def _observe(response: Response) -> Response:
    started = g.pop("webhook_started", None)
    if started is not None:
        endpoint = request.endpoint or "unknown"
        timer = _webhook_timers.get(endpoint)
        if timer is None:
            timer = _webhook_timers[endpoint] = WEBHOOK_SECONDS.labels(endpoint)
        timer.observe(time.perf_counter() - started)
    return response


@bp.get("/metrics")
def metrics() -> Response:
    """The metrics in Prometheus' text format; a bearer token when IVR_METRICS_TOKEN is set."""
    token = str(current_app.config.get("METRICS_TOKEN") or "")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            abort(Response("a valid bearer token is needed\n", 401,
                           {"WWW-Authenticate": 'Bearer realm="metrics"'}))
    desk = CollectorRegistry()
    desk.register(DeskCollector(current_app.extensions["ivr.sessions"],
                                str(current_app.config.get("REDIS_URL") or "")))
    body = webhook_exposition() + generate_latest(desk)
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def webhook_exposition() -> bytes:
    """The webhook histogram: this process's, or every worker's in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged)
    return generate_latest(_webhook_registry)


class DeskCollector(Collector):
    """Figures read at scrape time: the callback queue, failed jobs, transcription speed."""

    def __init__(self, sessions: sessionmaker[Session], redis_url: str) -> None:
        self.sessions = sessions
        self.redis_url = redis_url

    def collect(self) -> Iterator[Metric]:
        """Every figure that could be read; one that could not is left out and logged."""
        try:
            with self.sessions() as session:
                yield from queue_metrics(session)
                yield from transcription_metrics(session)
        except SQLAlchemyError:
            log.exception("metrics: the database could not be read")
        if self.redis_url:
            try:
                yield from job_metrics(self.redis_url)
            except RedisError:
                log.exception("metrics: Redis could not be read")


def queue_metrics(session: Session) -> Iterator[Metric]:
    """Open callback requests by priority and status, and the earliest due one."""
    depth = GaugeMetricFamily("ivr_callback_queue_depth",
                              "Open callback requests, by priority and status.",
                              labels=["priority", "status"])
    rows = session.execute(
        select(CallbackRequest.priority, CallbackRequest.status, func.count())
        .where(CallbackRequest.status.in_(OPEN_STATUSES))
        .group_by(CallbackRequest.priority, CallbackRequest.status)
    ).all()
    for priority, status, count in sorted(rows):
        depth.add_metric([priority, status], count)
    yield depth
    earliest = session.scalar(select(func.min(CallbackRequest.due_at))
                              .where(CallbackRequest.status.in_(OPEN_STATUSES)))
    due = GaugeMetricFamily("ivr_callback_oldest_due_timestamp_seconds",
                            "Due time of the open callback request due first (Unix time).")
    overdue = GaugeMetricFamily("ivr_callback_oldest_due_overdue_seconds",
                                "How far past due the open request due first is "
                                "(negative: due in the future; absent: none open).")
    if earliest is not None:
        due.add_metric([], earliest.timestamp())
        overdue.add_metric([], (utcnow() - earliest).total_seconds())
    yield due
    yield overdue


def transcription_metrics(session: Session) -> Iterator[Metric]:
    """Decoding time per second of audio over the latest transcribed voicemails."""
    details = session.scalars(
        select(TicketEvent.detail).where(TicketEvent.kind == "transcribed")
        .order_by(TicketEvent.id.desc()).limit(RTF_SAMPLES)
    ).all()
    factors = [float(found.group(1)) for found in map(_RTF.search, details) if found]
    rtf = GaugeMetricFamily(
        "ivr_transcription_real_time_factor",
        f"Mean decoding seconds per audio second of the latest {RTF_SAMPLES} transcriptions.")
    samples = GaugeMetricFamily("ivr_transcription_real_time_factor_samples",
                                "Transcriptions the real-time factor is averaged over.")
    if factors:
        rtf.add_metric([], sum(factors) / len(factors))
    samples.add_metric([], len(factors))
    yield rtf
    yield samples


def job_metrics(redis_url: str) -> Iterator[Metric]:
    """Failed and waiting rq jobs per queue."""
    connection = redis_connection(redis_url)
    failed = GaugeMetricFamily("ivr_jobs_failed",
                               "Jobs in rq's failed job registry (kept 7 days), by queue.",
                               labels=["queue"])
    queued = GaugeMetricFamily("ivr_jobs_queued", "Jobs waiting in rq, by queue.",
                               labels=["queue"])
    for name in QUEUES:
        queue = Queue(name, connection=connection)
        failed.add_metric([name], FailedJobRegistry(queue=queue).count)
        queued.add_metric([name], queue.count)
    yield failed
    yield queued
