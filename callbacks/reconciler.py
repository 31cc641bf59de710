"""The reconciler: SQL is the record, so any work whose rq job was lost is queued again.

It runs in every worker's maintenance loop (each `RECONCILE_SECONDS`) and as
`ivr reconcile`; running it twice at once is harmless, because job ids are unique.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from callbacks.db import utcnow
from callbacks.delivery.outbox import requeue_lost_deliveries
from callbacks.queues import (
    enqueue_status_sms,
    enqueue_ticket_sms,
    enqueue_voicemail,
    sms_job_id,
    status_sms_job_id,
    voicemail_job_id,
)
from callbacks.tickets.ticket import Ticket, TicketEvent, history
from callbacks.voicemail import Voicemail
from callbacks.workqueue.agents import Agent, release_agent
from callbacks.workqueue.attempts import LIVE_STAGES, CallbackAttempt
from callbacks.workqueue.callback_requests import CallbackRequest, put_back

log = logging.getLogger(__name__)

LONGEST_CALL = timedelta(hours=4)
"""An attempt with no word from Twilio for this long is over (its status callbacks were lost)."""
FOLLOW_UP_WINDOW = timedelta(days=1)
FOLLOW_UP_STATUSES = ("unreachable", "resolved")

RECONCILE_SECONDS = 60
"""How often each worker reconciles; also the grace period before work counts as lost."""

HEARTBEAT_SECONDS = 30
"""How often a worker beats while a job runs (rq's job monitoring interval)."""

WRAP_UP_SECONDS = 60
"""The default wrap-up time (IVR_WRAP_UP_SECONDS); a wrap-up this much past it is stuck."""

WAITING = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


@dataclass
class ReconcileReport:
    """What one pass found and queued again."""

    voicemails_checked: int = 0
    voicemails_requeued: list[int] = field(default_factory=list)
    sms_requeued: list[int] = field(default_factory=list)
    callbacks_put_back: list[int] = field(default_factory=list)
    status_sms_requeued: list[int] = field(default_factory=list)
    wrap_ups_ended: list[int] = field(default_factory=list)
    agents_freed: list[int] = field(default_factory=list)
    deliveries_requeued: list[str] = field(default_factory=list)


def job_is_alive(connection: Redis, job_id: str,
                 heartbeat_seconds: int = HEARTBEAT_SECONDS) -> bool:
    """Whether rq holds a job that will run: waiting, or running with a recent heartbeat."""
    try:
        job = Job.fetch(job_id, connection=connection)
    except (NoSuchJobError, ValueError):  # gone, or unreadable after a restart
        return False
    status = job.get_status(refresh=False)
    if status in WAITING:
        return True
    if status == JobStatus.STARTED:
        # A worker beats while its horse runs; a killed worker stops beating.
        beat = job.last_heartbeat or job.started_at
        stale = timedelta(seconds=2 * heartbeat_seconds + 5)
        return beat is not None and utcnow() - beat.replace(tzinfo=UTC) < stale
    return False


def reconcile(session: Session, connection: Redis,
              grace: timedelta = timedelta(seconds=RECONCILE_SECONDS),
              max_voicemail_seconds: int = 600,
              heartbeat_seconds: int = HEARTBEAT_SECONDS,
              wrap_up_seconds: int = WRAP_UP_SECONDS) -> ReconcileReport:
    """Queue again every voicemail, ticket SMS and delivery whose job is gone, put back stuck
    callbacks and end wrap-ups whose scheduled end was lost."""
    report = ReconcileReport()
    settled_before = utcnow() - grace
    pending = session.scalars(
        select(Voicemail).where(Voicemail.state.in_(("recorded", "processing")),
                                Voicemail.updated_at < settled_before)
    ).all()
    for voicemail in pending:
        report.voicemails_checked += 1
        job_id = voicemail_job_id(voicemail.id)
        if job_is_alive(connection, job_id, heartbeat_seconds):
            continue
        _forget(connection, job_id)
        if enqueue_voicemail(connection, voicemail.id, max_voicemail_seconds):
            report.voicemails_requeued.append(voicemail.id)
    unsent = session.scalars(
        # A ticket resolved before its number went out gets the resolution text instead.
        select(Ticket.id).where(Ticket.sms_sid.is_(None), Ticket.created_at < settled_before,
                                Ticket.status != "resolved")
        .where(~select(TicketEvent.id).where(
            TicketEvent.ticket_id == Ticket.id,
            TicketEvent.kind.in_(("sms_skipped", "sms_failed"))).exists())
    ).all()
    for ticket_id in unsent:
        job_id = sms_job_id(ticket_id)
        if job_is_alive(connection, job_id, heartbeat_seconds):
            continue
        _forget(connection, job_id)
        if enqueue_ticket_sms(connection, ticket_id):
            report.sms_requeued.append(ticket_id)
    report.callbacks_put_back = release_stuck_callbacks(session, settled_before)
    report.status_sms_requeued = requeue_status_sms(session, connection, settled_before)
    report.wrap_ups_ended = end_overdue_wrap_ups(
        session, settled_before - timedelta(seconds=wrap_up_seconds))
    report.agents_freed = free_stranded_agents(session, settled_before)
    report.deliveries_requeued = requeue_lost_deliveries(
        session, connection, settled_before,
        lambda redis, job_id: job_is_alive(redis, job_id, heartbeat_seconds))
    if (report.voicemails_requeued or report.sms_requeued or report.callbacks_put_back
            or report.status_sms_requeued or report.wrap_ups_ended or report.agents_freed
            or report.deliveries_requeued):
        log.warning("reconciler queued again: voicemails %s, ticket SMS %s, callbacks %s, "
                    "follow-up SMS %s, deliveries %s; wrap-ups ended for agents %s; agents "
                    "freed %s", report.voicemails_requeued, report.sms_requeued,
                    report.callbacks_put_back, report.status_sms_requeued,
                    report.deliveries_requeued, report.wrap_ups_ended, report.agents_freed)
    return report


def release_stuck_callbacks(session: Session, settled_before: datetime,
                            longest_call: timedelta = LONGEST_CALL) -> list[int]:
    """Put back callbacks claimed by a dialer that died before ringing anyone, and end
    attempts whose calls never reported back (Twilio's callbacks lost)."""
    released: list[int] = []
    live = select(CallbackAttempt.request_id).where(CallbackAttempt.stage.in_(LIVE_STAGES))
    orphans = session.scalars(select(CallbackRequest.id).where(
        CallbackRequest.status == "claimed", CallbackRequest.claimed_at < settled_before,
        CallbackRequest.id.not_in(live))).all()
    for request_id in orphans:
        put_back(session, request_id, utcnow(), refund_attempt=True)
        released.append(request_id)
    silent = session.scalars(select(CallbackAttempt).where(
        CallbackAttempt.stage.in_(LIVE_STAGES),
        CallbackAttempt.started_at < utcnow() - longest_call)).all()
    for attempt in silent:
        attempt.stage, attempt.ended_at = "abandoned", utcnow()
        attempt.detail = "no word from Twilio about this call; put back"
        put_back(session, attempt.request_id, utcnow(), refund_attempt=True)
        if attempt.agent_id is not None:
            release_agent(session, attempt.agent_id, "available")
        released.append(attempt.request_id)
    session.commit()
    return released


def end_overdue_wrap_ups(session: Session, overdue_before: datetime) -> list[int]:
    """Make available again the agents in wrap-up since before `overdue_before`: the job that
    ends a wrap-up is a delayed rq job, lost with Redis, and nothing else would end it (the
    dial sweep only takes available agents)."""
    ended = session.scalars(
        update(Agent).where(Agent.availability == "wrap_up",
                            Agent.availability_since < overdue_before)
        .values(availability="available", availability_since=utcnow())
        .returning(Agent.id).execution_options(synchronize_session=False)
    ).all()
    session.commit()
    return list(ended)


def free_stranded_agents(session: Session, stranded_before: datetime) -> list[int]:
    """Make available again the agents marked on a call since before `stranded_before` with no
    attempt in progress: a dialer that died, or lost its database connection, between taking
    the agent and recording the attempt. Nothing else would give them calls again."""
    in_progress = (select(CallbackAttempt.id)
                   .where(CallbackAttempt.agent_id == Agent.id,
                          CallbackAttempt.stage.in_(LIVE_STAGES)))
    freed = session.scalars(
        update(Agent).where(Agent.availability == "on_call",
                            Agent.availability_since < stranded_before, ~exists(in_progress))
        .values(availability="available", availability_since=utcnow())
        .returning(Agent.id).execution_options(synchronize_session=False)
    ).all()
    session.commit()
    return list(freed)


def requeue_status_sms(session: Session, connection: Redis,
                       settled_before: datetime) -> list[int]:
    """Queue again follow-up texts (unreachable, resolved) that never reached an outcome."""
    requeued: list[int] = []
    recent = utcnow() - FOLLOW_UP_WINDOW
    for ticket in session.scalars(select(Ticket).where(
            Ticket.status.in_(FOLLOW_UP_STATUSES), Ticket.updated_at > recent,
            Ticket.updated_at < settled_before)):
        kinds = [event.kind for event in history(session, ticket.id)]
        closing = max((i for i, kind in enumerate(kinds) if kind == ticket.status), default=-1)
        if closing < 0 or any(kind.startswith("sms_") for kind in kinds[closing + 1:]):
            continue
        job_id = status_sms_job_id(ticket.status, None, ticket.id)
        if job_is_alive(connection, job_id):
            continue
        _forget(connection, job_id)
        if enqueue_status_sms(connection, ticket.status, ticket_id=ticket.id):
            requeued.append(ticket.id)
    return requeued


def _forget(connection: Redis, job_id: str) -> None:
    """Remove what is left of a dead job so its id can be used again."""
    try:
        Job.fetch(job_id, connection=connection).delete(remove_from_queue=True)
    except (NoSuchJobError, ValueError):
        connection.delete(Job.key_for(job_id))
