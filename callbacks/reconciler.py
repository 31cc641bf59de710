"""The reconciler: SQL is the record, so any work whose rq job was lost is queued again.

It runs in every worker's maintenance loop (each `RECONCILE_SECONDS`) and as
`ivr reconcile`; running it twice at once is harmless, because job ids are unique and every
state change is conditional. Live callers are covered too: a claim whose router died goes
back in line, a ring Twilio never reported on ends, a caller the provider stopped holding is
closed as lost, and (with `sweep`) waiting callers are routed to free qualified agents.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, aliased

from callbacks.db import utcnow
from callbacks.delivery.outbox import requeue_lost_deliveries
from callbacks.incidents.notices import requeue_incident_notices
from callbacks.queues import (
    enqueue_ticket_sms,
    enqueue_voicemail,
    sms_job_id,
    voicemail_job_id,
)
from callbacks.tickets.caller_texts import OUTCOMES, caller_text_job_id, queue_caller_texts
from callbacks.tickets.ticket import Ticket, TicketEvent
from callbacks.voicemail import Voicemail
from callbacks.workqueue.agents import Agent, release_agent
from callbacks.workqueue.attempts import LIVE_STAGES, CallbackAttempt
from callbacks.workqueue.callback_requests import CallbackRequest, put_back
from callbacks.workqueue.live_calls import (
    LIVE_OFFER_STAGES,
    LiveCall,
    LiveOffer,
    end_offer,
    put_back_in_line,
)
from callbacks.workqueue.router import route_sweep

log = logging.getLogger(__name__)

LONGEST_CALL = timedelta(hours=4)
"""An attempt with no word from Twilio for this long is over (its status callbacks were lost)."""
FOLLOW_UP_WINDOW = timedelta(days=1)
"""Texts to callers older than this are not sent late any more."""

RECONCILE_SECONDS = 60
"""How often each worker reconciles; also the grace period before work counts as lost."""

HEARTBEAT_SECONDS = 30
"""How often a worker beats while a job runs (rq's job monitoring interval)."""

WRAP_UP_SECONDS = 60
"""The default wrap-up time (IVR_WRAP_UP_SECONDS); a wrap-up this much past it is stuck."""

WAITING = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)

RING_SECONDS = 20
"""The default ring of an agent's phone for a live caller (priorities.yaml routing:)."""
LOST_AFTER = timedelta(minutes=5)
"""A waiting caller whose hold loop was not asked for this long is gone (the provider stopped
holding them and its report was lost); a longer hold-music clip would look the same."""


@dataclass
class ReconcileReport:
    """What one pass found and queued again."""

    voicemails_checked: int = 0
    voicemails_requeued: list[int] = field(default_factory=list)
    sms_requeued: list[int] = field(default_factory=list)
    callbacks_put_back: list[int] = field(default_factory=list)
    caller_texts_requeued: list[int] = field(default_factory=list)
    """Ticket events whose text to the caller was queued again."""
    wrap_ups_ended: list[int] = field(default_factory=list)
    agents_freed: list[int] = field(default_factory=list)
    live_calls_put_back: list[int] = field(default_factory=list)
    live_offers_ended: list[int] = field(default_factory=list)
    live_calls_lost: list[int] = field(default_factory=list)
    live_calls_routed: list[int] = field(default_factory=list)
    callbacks_routed: list[int] = field(default_factory=list)
    deliveries_requeued: list[str] = field(default_factory=list)
    incident_notices_requeued: list[int] = field(default_factory=list)
    """Incident notices (texts on resolve) whose job was queued again."""


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
              wrap_up_seconds: int = WRAP_UP_SECONDS, *, ring_seconds: int = RING_SECONDS,
              lost_after: timedelta = LOST_AFTER, sweep: bool = False) -> ReconcileReport:
    """Queue again every voicemail, ticket SMS, text about a ticket event, delivery and
    incident notice whose job is gone,
    put back stuck callbacks and live callers, end wrap-ups whose scheduled end was lost and
    free stranded agents; with `sweep`, then route every free agent (the worker sweeps on its
    own)."""
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
                                Ticket.status.not_in(("resolved", "closed")))
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
    report.caller_texts_requeued = requeue_caller_texts(session, connection, settled_before)
    report.wrap_ups_ended = end_overdue_wrap_ups(
        session, settled_before - timedelta(seconds=wrap_up_seconds))
    report.live_offers_ended, report.live_calls_put_back = release_stuck_live_calls(
        session, settled_before, timedelta(seconds=ring_seconds))
    report.live_calls_lost = close_lost_live_calls(session, utcnow() - lost_after)
    report.agents_freed = free_stranded_agents(session, settled_before)
    report.deliveries_requeued = requeue_lost_deliveries(
        session, connection, settled_before,
        lambda redis, job_id: job_is_alive(redis, job_id, heartbeat_seconds))
    report.incident_notices_requeued = requeue_incident_notices(
        session, connection, settled_before,
        lambda redis, job_id: job_is_alive(redis, job_id, heartbeat_seconds), _forget)
    if sweep:
        try:
            routed = route_sweep()
            report.live_calls_routed, report.callbacks_routed = routed["live"], routed["callbacks"]
        except Exception:  # the next pass sweeps again
            log.exception("routing sweep after reconciling failed")
    if (report.voicemails_requeued or report.sms_requeued or report.callbacks_put_back
            or report.caller_texts_requeued or report.wrap_ups_ended or report.agents_freed
            or report.live_calls_put_back or report.live_offers_ended
            or report.live_calls_lost or report.deliveries_requeued
            or report.incident_notices_requeued):
        log.warning("reconciler queued again: voicemails %s, ticket SMS %s, callbacks %s, "
                    "texts about ticket events %s, deliveries %s, incident notices %s; "
                    "wrap-ups ended for agents %s; agents freed %s; live callers back in line "
                    "%s, rings ended %s, callers lost %s",
                    report.voicemails_requeued, report.sms_requeued, report.callbacks_put_back,
                    report.caller_texts_requeued, report.deliveries_requeued,
                    report.incident_notices_requeued,
                    report.wrap_ups_ended, report.agents_freed, report.live_calls_put_back,
                    report.live_offers_ended, report.live_calls_lost)
    return report


def release_stuck_live_calls(session: Session, settled_before: datetime,
                             ring_timeout: timedelta = timedelta(seconds=RING_SECONDS),
                             longest_call: timedelta = LONGEST_CALL
                             ) -> tuple[list[int], list[int]]:
    """End offers Twilio never reported on (a ring long over, a conversation hours old) and
    put back in line callers claimed by a router that died before ringing anyone.

    Returns (offers ended, live calls put back in line).
    """
    now = utcnow()
    ended: list[int] = []
    put_back_calls: list[int] = []
    silent = session.scalars(select(LiveOffer).where(
        ((LiveOffer.stage == "ringing_agent") & (LiveOffer.started_at < settled_before
                                                  - ring_timeout))
        | (LiveOffer.stage.in_(("bridging", "talking"))
           & (LiveOffer.started_at < now - longest_call))).with_for_update(skip_locked=True)
    ).all()
    for offer in silent:
        ringing = offer.stage == "ringing_agent"
        end_offer(offer, "abandoned", "no word from Twilio about this call", now)
        if ringing and put_back_in_line(session, offer.live_call_id, "the ring was never "
                                        "reported; back in line"):
            put_back_calls.append(offer.live_call_id)
        elif not ringing:
            session.execute(update(LiveCall).where(LiveCall.id == offer.live_call_id,
                                                   LiveCall.status == "bridged")
                            .values(status="done", ended_at=now))
        release_agent(session, offer.agent_id, "available", now)
        ended.append(offer.id)
    in_progress = select(LiveOffer.id).where(LiveOffer.live_call_id == LiveCall.id,
                                             LiveOffer.stage.in_(LIVE_OFFER_STAGES))
    orphans = session.scalars(select(LiveCall.id).where(
        LiveCall.status == "offered", LiveCall.claimed_at < settled_before,
        ~exists(in_progress))).all()
    for call_id in orphans:
        if put_back_in_line(session, call_id, "its router stopped before ringing; back in line"):
            put_back_calls.append(call_id)
    session.commit()
    return ended, put_back_calls


def close_lost_live_calls(session: Session, lost_before: datetime) -> list[int]:
    """Close as lost the callers waiting whose hold loop was last asked for before
    `lost_before`: the provider no longer holds them, and the report saying so was lost. A
    caller who is still there comes back on their next hold loop."""
    lost = session.scalars(select(LiveCall).where(
        LiveCall.status == "waiting", LiveCall.last_seen_at < lost_before)
        .with_for_update(skip_locked=True)).all()
    for call in lost:
        call.status, call.ended_at = "lost", call.last_seen_at
        call.wait_seconds = max(0, int((call.last_seen_at - call.entered_at).total_seconds()))
        call.outcome_detail = "the hold loop stopped being asked for; the caller is gone"
    session.commit()
    return [call.id for call in lost]


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
    callback attempt and no live offer in progress: a router or dialer that died, or lost its
    database connection, between taking the agent and ringing them; a caller who left while
    the agent's phone rang, when the end of that ring was never reported. Nothing else would
    give them calls again."""
    in_progress = (select(CallbackAttempt.id)
                   .where(CallbackAttempt.agent_id == Agent.id,
                          CallbackAttempt.stage.in_(LIVE_STAGES)))
    ringing = (select(LiveOffer.id)
               .where(LiveOffer.agent_id == Agent.id, LiveOffer.stage.in_(LIVE_OFFER_STAGES)))
    freed = session.scalars(
        update(Agent).where(Agent.availability == "on_call",
                            Agent.availability_since < stranded_before, ~exists(in_progress),
                            ~exists(ringing))
        .values(availability="available", availability_since=utcnow())
        .returning(Agent.id).execution_options(synchronize_session=False)
    ).all()
    session.commit()
    return list(freed)


def requeue_caller_texts(session: Session, connection: Redis,
                         settled_before: datetime) -> list[int]:
    """Queue again the texts about ticket events (status changes, replies, callbacks that did
    not reach the caller) that have no outcome yet and whose job is gone."""
    requeued: list[int] = []
    followed = aliased(TicketEvent)
    outcome = select(followed.id).where(followed.about_event_id == TicketEvent.id,
                                        followed.kind.in_(OUTCOMES))
    waiting = session.scalars(select(TicketEvent.id).where(
        TicketEvent.notify.is_(True), TicketEvent.at > utcnow() - FOLLOW_UP_WINDOW,
        TicketEvent.at < settled_before, ~outcome.exists()).order_by(TicketEvent.id)).all()
    for event_id in waiting:
        job_id = caller_text_job_id(event_id)
        if job_is_alive(connection, job_id):
            continue
        _forget(connection, job_id)
        if queue_caller_texts(connection, [event_id]):
            requeued.append(event_id)
    return requeued


def _forget(connection: Redis, job_id: str) -> None:
    """Remove what is left of a dead job so its id can be used again."""
    try:
        Job.fetch(job_id, connection=connection).delete(remove_from_queue=True)
    except (NoSuchJobError, ValueError):
        connection.delete(Job.key_for(job_id))
