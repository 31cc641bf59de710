"""The rq queues and how work is put on them: one job id per piece of work, never twice."""

from __future__ import annotations

import threading

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job

URGENT, DEFAULT, LOW = "urgent", "default", "low"
QUEUES = (URGENT, DEFAULT, LOW)
"""Workers take from these in this order."""

VOICEMAIL_RETRY = Retry(max=4, interval=[5, 20, 60, 180])
SMS_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])

_connections: dict[str, Redis] = {}
_lock = threading.Lock()


def redis_connection(url: str) -> Redis:
    """One Redis client per URL per process."""
    with _lock:
        if url not in _connections:
            _connections[url] = Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5,
                                               health_check_interval=30)
        return _connections[url]


def voicemail_job_id(voicemail_id: int) -> str:
    """The job id that processes a voicemail."""
    return f"voicemail-{voicemail_id}"


def sms_job_id(ticket_id: int, kind: str = "ticket") -> str:
    """The job id that sends a ticket's SMS of a kind."""
    return f"sms-{kind}-{ticket_id}"


def enqueue_unique(connection: Redis, queue_name: str, func: str, job_id: str,
                   *args: object, retry: Retry | None = None, timeout: int = 180) -> Job | None:
    """Enqueue `func(*args)` as `job_id` unless a job with that id exists; None if it did."""
    queue = Queue(queue_name, connection=connection)
    try:
        return queue.enqueue_call(func, args=args, job_id=job_id, retry=retry, timeout=timeout,
                                  result_ttl=3600, failure_ttl=7 * 24 * 3600, unique=True)
    except DuplicateJobError:
        return None


def enqueue_voicemail(connection: Redis, voicemail_id: int, max_seconds: int = 600) -> Job | None:
    """Queue the job that turns a voicemail into a complete ticket."""
    return enqueue_unique(connection, DEFAULT, "callbacks.jobs.process_voicemail",
                          voicemail_job_id(voicemail_id), voicemail_id, retry=VOICEMAIL_RETRY,
                          timeout=max(180, 3 * max_seconds))


def enqueue_ticket_sms(connection: Redis, ticket_id: int) -> Job | None:
    """Queue the SMS that tells the caller their ticket number."""
    return enqueue_unique(connection, URGENT, "callbacks.jobs.send_ticket_sms",
                          sms_job_id(ticket_id), ticket_id, retry=SMS_RETRY, timeout=60)
