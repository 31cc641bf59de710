"""The rq queues and how work is put on them: one job id per piece of work, never twice."""

from __future__ import annotations

from datetime import datetime, timedelta

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job

# Every Redis client is made there (a URL or Sentinel); imported from here by older callers.
from callbacks.redis_client import redis_connection as redis_connection

URGENT, DEFAULT, LOW = "urgent", "default", "low"
QUEUES = (URGENT, DEFAULT, LOW)
"""Workers take from these in this order."""

VOICEMAIL_RETRY = Retry(max=4, interval=[5, 20, 60, 180])
SMS_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])


def voicemail_job_id(voicemail_id: int) -> str:
    """The job id that processes a voicemail."""
    return f"voicemail-{voicemail_id}"


def sms_job_id(ticket_id: int, kind: str = "ticket") -> str:
    """The job id that sends a ticket's SMS of a kind."""
    return f"sms-{kind}-{ticket_id}"


def enqueue_unique(connection: Redis, queue_name: str, func: str, job_id: str,
                   *args: object, retry: Retry | None = None, timeout: int = 180,
                   description: str | None = None) -> Job | None:
    """Enqueue `func(*args)` as `job_id` unless a job with that id exists; None if it did.

    `description` replaces the arguments in rq's log lines (which would show a number)."""
    queue = Queue(queue_name, connection=connection)
    try:
        return queue.enqueue_call(func, args=args, job_id=job_id, retry=retry, timeout=timeout,
                                  result_ttl=3600, failure_ttl=7 * 24 * 3600, unique=True,
                                  description=description)
    except DuplicateJobError:
        return None


def enqueue_voicemail(connection: Redis, voicemail_id: int, max_seconds: int = 600) -> Job | None:
    """Queue the job that turns a voicemail into a complete ticket."""
    return enqueue_unique(connection, DEFAULT, "callbacks.jobs.process_voicemail",
                          voicemail_job_id(voicemail_id), voicemail_id, retry=VOICEMAIL_RETRY,
                          timeout=max(180, 3 * max_seconds))


def enqueue_ticket_sms(connection: Redis, ticket_id: int, line: str = "") -> Job | None:
    """Queue the SMS that tells the caller their ticket number; `line` is the number they
    dialled (the sender when IVR_SMS_FROM is not set), known to the webhook that queues it."""
    args = (ticket_id, line) if line else (ticket_id,)
    return enqueue_unique(connection, URGENT, "callbacks.jobs.send_ticket_sms",
                          sms_job_id(ticket_id), *args, retry=SMS_RETRY, timeout=60,
                          description=f"callbacks.jobs.send_ticket_sms(ticket {ticket_id})")


ROUTE_AGENT = "callbacks.workqueue.router.route_agent"
ROUTE_SWEEP = "callbacks.workqueue.router.route_sweep"
NUDGE_JOB_ID = "route-sweep-nudge"
"""One sweep at a time asked for by waiting callers who see a free agent (see `nudge_sweep`)."""


def enqueue_route_job(connection: Redis, agent_id: int | None = None) -> Job:
    """Queue routing for one agent who just became free, or a sweep over all free agents.

    Not unique: every event may route, and each routing takes its agent and item atomically.
    """
    queue = Queue(URGENT, connection=connection)
    if agent_id is None:
        return queue.enqueue_call(ROUTE_SWEEP, timeout=120, result_ttl=600)
    return queue.enqueue_call(ROUTE_AGENT, args=(agent_id,), timeout=60, result_ttl=600)


def nudge_sweep(connection: Redis) -> Job | None:
    """Queue a sweep unless one asked for the same way is waiting or running (None then)."""
    queue = Queue(URGENT, connection=connection)
    try:  # no result kept: the id is free again as soon as the sweep is done
        return queue.enqueue_call(ROUTE_SWEEP, job_id=NUDGE_JOB_ID, timeout=120, result_ttl=0,
                                  failure_ttl=60, unique=True)
    except DuplicateJobError:
        return None


def schedule_route_sweep(connection: Redis, at: datetime) -> Job:
    """Sweep again when a retry or a caller's window becomes due (rq's scheduler runs it)."""
    return Queue(URGENT, connection=connection).enqueue_at(
        at, ROUTE_SWEEP, job_timeout=120, result_ttl=600)


def enqueue_wrap_up_end(connection: Redis, agent_id: int, seconds: int) -> Job:
    """Make the agent available again once their wrap-up time is over."""
    return Queue(URGENT, connection=connection).enqueue_in(
        timedelta(seconds=seconds), "callbacks.workqueue.dialer.end_wrap_up", agent_id,
        job_timeout=60, result_ttl=600)


def status_sms_job_id(kind: str, request_id: int | None, ticket_id: int | None) -> str:
    """The job id of a follow-up text of `kind` about a request or a ticket."""
    return f"sms-{kind}-r{request_id or 0}-t{ticket_id or 0}"


def enqueue_status_sms(connection: Redis, kind: str, request_id: int | None = None,
                       ticket_id: int | None = None) -> Job | None:
    """Queue a follow-up text to the caller (unreachable, resolved), once per kind and item."""
    job_id = status_sms_job_id(kind, request_id, ticket_id)
    return enqueue_unique(connection, URGENT, "callbacks.followups.send_status_sms", job_id,
                          kind, request_id, ticket_id, retry=SMS_RETRY, timeout=60)


def enqueue_survey_sms(connection: Redis, request_id: int | None, ticket_id: int | None,
                       agent_id: int | None) -> Job | None:
    """Queue the survey text after a callback, once per ticket (or ticketless callback)."""
    job_id = status_sms_job_id("survey", None if ticket_id else request_id, ticket_id)
    return enqueue_unique(connection, URGENT, "callbacks.followups.send_survey_sms", job_id,
                          request_id, ticket_id, agent_id, retry=SMS_RETRY, timeout=60)
