"""The rq worker of the help desk: speech models loaded before forking, reconciling as it goes."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import timedelta

from rq import Worker

from callbacks import runtime
from callbacks.queues import QUEUES
from callbacks.reconciler import reconcile

log = logging.getLogger(__name__)


class HelpdeskWorker(Worker):
    """An rq worker whose maintenance loop also queues again any work Redis lost."""

    def run_maintenance_tasks(self) -> None:
        """rq's own registry cleanup, then the SQL reconciler."""
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
