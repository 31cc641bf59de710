"""The rq worker of the help desk: models loaded once and kept warm, reconciling as it goes.

Jobs run in the worker's own process (rq's SimpleWorker, no fork per job): the speech models
are loaded at start, and Vosk's recognisers, whose decoding graphs warm up with use and then
decode several times faster, live as long as the worker. A job that kills the process is
queued again by the reconciler once a worker runs.

Stopping: the first SIGTERM or SIGINT lets the running job finish, then the worker exits (rq's
warm shutdown); a second one, a second or more later, interrupts the job (cold shutdown), which
rq's retry or the reconciler runs again. While a job runs, a thread beats its heartbeat, so
other workers' reconcilers and rq's registry cleanup know it is alive however long it takes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.worker import WorkerStatus
from sqlalchemy import select

from callbacks import runtime
from callbacks.logs import log_context
from callbacks.queues import QUEUES
from callbacks.reconciler import RING_SECONDS, reconcile
from callbacks.tickets.ticket import Ticket, TicketEvent
from callbacks.tickets.workflow import desk_hours, fill_missing_due_times
from callbacks.voicemail import Voicemail
from callbacks.workqueue.callback_requests import CallbackRequest
from callbacks.workqueue.router import route_sweep

log = logging.getLogger(__name__)

_CALL_OF_JOB: dict[str, tuple[tuple[Any, ...], ...]] = {
    # job function: (CallSid column, key column, which argument holds the key, join conditions),
    # tried in order
    "callbacks.jobs.process_voicemail": ((Voicemail.call_sid, Voicemail.id, 0),),
    "callbacks.jobs.send_ticket_sms": ((Ticket.call_sid, Ticket.id, 0),),
    "callbacks.followups.send_status_sms": ((Ticket.call_sid, Ticket.id, 2),
                                            (CallbackRequest.last_call_sid, CallbackRequest.id, 1)),
    "callbacks.followups.send_survey_sms": ((Ticket.call_sid, Ticket.id, 1),
                                            (CallbackRequest.last_call_sid, CallbackRequest.id, 0)),
    "callbacks.tickets.caller_texts.send_caller_text": (
        (Ticket.call_sid, TicketEvent.id, 0, Ticket.id == TicketEvent.ticket_id),),
}
"""Jobs about one call, and where SQL keeps that call's CallSid for their log lines."""


def job_call_sid(job: Job) -> str | None:
    """The CallSid of the call a job works for (a voicemail's, a ticket's), or None."""
    lookups = _CALL_OF_JOB.get(job.func_name or "")
    if not lookups:
        return None
    args = job.args
    with runtime.sessions()() as session:
        for call_sid, key, position, *joins in lookups:
            if len(args) > position and args[position] is not None:
                found = session.scalar(select(call_sid).where(key == args[position], *joins))
                if found:
                    return str(found)
    return None


class HelpdeskWorker(SimpleWorker):
    """A non-forking rq worker whose maintenance loop also queues again work Redis lost."""

    @property
    def dequeue_timeout(self) -> int:
        """Wake from waiting on the queues at least once per maintenance interval, so an idle
        worker still reconciles on time."""
        return max(1, min(super().dequeue_timeout, int(self.maintenance_interval)))

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job here (no fork), beating its heartbeat while it runs."""
        execution = self.prepare_execution(job)
        with self._heartbeats(job, execution):
            self.perform_job(job, queue, execution)
        self.set_state(WorkerStatus.IDLE)

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """rq's perform_job, with every line logged meanwhile tagged with the job and its call."""
        try:
            call_sid = job_call_sid(job)
        except Exception:  # the tag is a nicety: never fail or delay a job for it
            log.warning("job %s: its call could not be looked up", job.id, exc_info=True)
            call_sid = None
        with log_context(job_id=job.id, call_sid=call_sid):
            return bool(super().perform_job(job, queue, execution))

    @contextlib.contextmanager
    def _heartbeats(self, job: Job, execution: Execution) -> Iterator[None]:
        """Beat the job's, the execution's and the worker's heartbeat from a thread meanwhile
        (rq's forking worker does this while it waits for its work horse; SimpleWorker not)."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.job_monitoring_interval):
                try:
                    self.maintain_heartbeats(job, execution)
                except Exception:  # Redis away for a moment: the next beat tries again
                    log.warning("job %s: heartbeat failed", job.id, exc_info=True)

        thread = threading.Thread(target=beat, name=f"heartbeat {job.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def run_maintenance_tasks(self) -> None:
        """rq's own registry cleanup, the SQL reconciler, then a routing sweep (not when
        stopping: rq's would start its scheduler again, and other workers reconcile)."""
        if self._stop_requested:
            return
        super().run_maintenance_tasks()
        try:
            settings = runtime.settings()
            with runtime.sessions()() as session:
                reconcile(session, self.connection,
                          grace=timedelta(seconds=settings.reconcile_seconds),
                          max_voicemail_seconds=settings.max_voicemail_seconds,
                          heartbeat_seconds=settings.heartbeat_seconds,
                          wrap_up_seconds=settings.wrap_up_seconds,
                          ring_seconds=_ring_seconds(), sweep=False)
        except Exception:
            # The loop must go on: the next pass tries again.
            log.exception("reconciler pass failed")
        try:
            with runtime.sessions()() as session:
                hours = desk_hours(session, settings.default_flow)
                if fill_missing_due_times(session, runtime.priority_policy(), hours):
                    session.commit()
        except Exception:
            log.exception("filling in tickets' deadlines failed")
        try:
            # Events route at once; this sweep catches what they missed (Redis was down, a
            # router died): no caller waits while a qualified agent is free.
            route_sweep()
        except Exception:
            log.exception("routing sweep failed")


def _ring_seconds() -> int:
    """How long agents' phones ring for live callers; the default if the file is unreadable
    (the reconciler must run even then)."""
    try:
        return runtime.priority_policy().routing.ring_seconds
    except Exception:
        log.warning("priorities file unreadable; the reconciler assumes a %s s ring",
                    RING_SECONDS, exc_info=True)
        return RING_SECONDS


def preload_models(languages: Iterable[str] | None = None) -> dict[str, float]:
    """Load the speech models present (or `languages`) now, so no job ever loads one."""
    registry = runtime.models()
    wanted = list(languages) if languages is not None else [
        status.language for status in registry.status() if status.present]
    timings: dict[str, float] = {}
    for language in wanted:
        started = time.perf_counter()
        registry.load(language)
        timings[language] = time.perf_counter() - started
        log.info("speech model '%s' loaded in %.1f s", language, timings[language])
    return timings


def run_worker(burst: bool = False, queues: Iterable[str] = QUEUES) -> None:
    """Work the queues until stopped (or, with `burst`, until they are empty)."""
    settings = runtime.settings()
    worker = HelpdeskWorker(list(queues), connection=runtime.redis(),
                            maintenance_interval=settings.reconcile_seconds,
                            job_monitoring_interval=settings.heartbeat_seconds)
    worker.work(with_scheduler=True, burst=burst)
