"""The rq worker of the help desk: models loaded once and kept warm, reconciling as it goes.

Jobs run in the worker's own process (rq's SimpleWorker, no fork per job): the speech models
are loaded at start, and Vosk's recognisers, whose decoding graphs warm up with use and then
decode several times faster, live as long as the worker. A job that kills the process is
queued again by the reconciler once a worker runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import timedelta

from rq import SimpleWorker

from callbacks import runtime
from callbacks.dialer import dial_sweep
from callbacks.queues import QUEUES
from callbacks.reconciler import reconcile

log = logging.getLogger(__name__)


class HelpdeskWorker(SimpleWorker):
    """A non-forking rq worker whose maintenance loop also queues again work Redis lost."""

    @property
    def dequeue_timeout(self) -> int:
        """Wake from waiting on the queues at least once per maintenance interval, so an idle
        worker still reconciles on time."""
        return max(1, min(super().dequeue_timeout, int(self.maintenance_interval)))

    def run_maintenance_tasks(self) -> None:
        """rq's own registry cleanup, the SQL reconciler, then a dial sweep."""
        super().run_maintenance_tasks()
        try:
            settings = runtime.settings()
            with runtime.sessions()() as session:
                reconcile(session, self.connection,
                          grace=timedelta(seconds=settings.reconcile_seconds),
                          max_voicemail_seconds=settings.max_voicemail_seconds,
                          heartbeat_seconds=settings.heartbeat_seconds)
        except Exception:
            # The loop must go on: the next pass tries again.
            log.exception("reconciler pass failed")
        try:
            # Events dial at once; this sweep catches what they missed (Redis was down).
            dial_sweep()
        except Exception:
            log.exception("dial sweep failed")


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
