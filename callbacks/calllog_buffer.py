"""The call log written behind the webhooks: buffered per process, flushed in batches.

Menu steps are the hot path: each webhook only appends to this buffer, and a background thread
writes everything pending every `flush_seconds` in one transaction (multi-row inserts that ignore
Twilio's repeated deliveries). A crashed process can lose at most the last flush interval of
menu steps; voicemails, tickets and callbacks never go through here, they are written at once.
With `flush_seconds=0` every write happens synchronously (tests, one-off tools).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, case, func, update
from sqlalchemy.dialects import postgresql, sqlite

from callbacks.calllog import Call, CallStep, StepRecord, normalize_number
from callbacks.db import utcnow

log = logging.getLogger(__name__)

MAX_PENDING = 100_000
"""Rows kept while the database is unreachable; beyond this the oldest steps are dropped."""


class CallLogBuffer:
    """Collects call and step rows from webhooks and writes them in batches."""

    def __init__(self, engine: Engine, flush_seconds: float = 0.05) -> None:
        self.engine = engine
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []
        self._steps: list[dict[str, Any]] = []
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._dialect: Any = {"postgresql": postgresql, "sqlite": sqlite}.get(engine.dialect.name)
        if self._dialect is None:
            raise NotImplementedError(f"database dialect {engine.dialect.name!r} is not supported")
        atexit.register(self.close)

    def open_call(self, call_sid: str, caller: str, called: str, flow_version_id: int | None,
                  language: str, at: datetime | None = None) -> None:
        """Log a new call (a repeated entry webhook for the same CallSid changes nothing)."""
        self._add(self._calls, {
            "call_sid": call_sid, "caller": caller, "called": called,
            "flow_version_id": flow_version_id, "language": language,
            "status": "in-progress", "started_at": at or utcnow(),
        })

    def record_step(self, step: StepRecord, at: datetime | None = None) -> None:
        """Log one webhook of a call, once per (CallSid, seq)."""
        self._add(self._steps, {
            "call_sid": step.call_sid, "seq": step.seq, "at": at or utcnow(),
            "event": step.event, "node": step.node, "input": step.input,
            "path": " ".join(step.path), "outcome": step.outcome,
            "last_node": step.path[-1] if step.path else None, "language": step.language,
        })

    def flush(self) -> int:
        """Write everything pending now; returns the rows written (pending rows stay on error)."""
        with self._flush_lock:
            with self._lock:
                calls, self._calls = self._calls, []
                steps, self._steps = self._steps, []
            if not calls and not steps:
                return 0
            try:
                self._write(calls, steps)
            except Exception:
                with self._lock:
                    self._calls[:0] = calls
                    self._steps[:0] = steps
                    overflow = len(self._steps) - MAX_PENDING
                    if overflow > 0:
                        del self._steps[:overflow]
                        log.error("call log: dropped %d oldest steps; database unreachable",
                                  overflow)
                raise
            return len(calls) + len(steps)

    def close(self) -> None:
        """Stop the background thread and write what is pending."""
        self._stopped = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=5)
        try:
            self.flush()
        except Exception:
            log.exception("call log: final flush failed")

    @property
    def pending(self) -> int:
        """Rows not written yet."""
        with self._lock:
            return len(self._calls) + len(self._steps)

    def _add(self, rows: list[dict[str, Any]], row: dict[str, Any]) -> None:
        with self._lock:
            rows.append(row)
        if self.flush_seconds <= 0:
            self.flush()
        elif self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
            self._start()

    def _start(self) -> None:
        # After a fork (gunicorn workers) the parent's thread does not exist here: start anew.
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._stopped = False
            self._thread = threading.Thread(target=self._run, name="call-log-writer",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.flush_seconds)
            try:
                self.flush()
            except Exception:
                log.exception("call log: flush failed; rows kept for the next attempt")
                self._wake.wait(min(5.0, self.flush_seconds * 20))

    def _write(self, calls: list[dict[str, Any]], steps: list[dict[str, Any]]) -> None:
        for row in calls:
            row["caller"] = normalize_number(row["caller"])
            row["called"] = normalize_number(row["called"])
        unique_steps = list({(s["call_sid"], s["seq"]): s for s in steps}.values())
        latest: dict[str, dict[str, Any]] = {}
        for step in sorted(unique_steps, key=lambda s: s["seq"]):
            current = latest.setdefault(step["call_sid"], {"sid": step["call_sid"],
                                                           "last_node": None, "outcome": None,
                                                           "language": None})
            for key in ("last_node", "outcome", "language"):
                if step[key]:
                    current[key] = step[key]
        calls = list({row["call_sid"]: row for row in calls}.values())
        steps = [{k: v for k, v in s.items() if k not in ("last_node", "language")}
                 for s in unique_steps]
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                _write_postgresql(conn, calls, steps, list(latest.values()))
                return
            if calls:
                conn.execute(_upsert_calls(self._dialect), calls)
            if steps:
                conn.execute(self._dialect.insert(CallStep.__table__).on_conflict_do_nothing(
                    index_elements=["call_sid", "seq"]), steps)
            if latest:
                conn.execute(_STEP_UPDATE, list(latest.values()))


def _write_postgresql(conn: Connection, calls: list[dict[str, Any]],
                      steps: list[dict[str, Any]], latest: list[dict[str, Any]]) -> None:
    """One statement per table over arrays: a batch costs three round trips, whatever its size."""
    # A log, not a record: a database crash may lose the last moment of steps.
    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
    if calls:
        conn.exec_driver_sql(_PG_UPSERT_CALLS, _columns(calls, _CALL_COLUMNS))
    if steps:
        conn.exec_driver_sql(_PG_INSERT_STEPS, _columns(steps, _STEP_COLUMNS))
    if latest:
        conn.exec_driver_sql(_PG_UPDATE_CALLS, _columns(latest, _LATEST_COLUMNS))


def _columns(rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in names}


_CALL_COLUMNS = ("call_sid", "caller", "called", "flow_version_id", "language", "status",
                 "started_at")
_STEP_COLUMNS = ("call_sid", "seq", "at", "event", "node", "input", "path", "outcome")
_LATEST_COLUMNS = ("sid", "last_node", "outcome", "language")

_PG_UPSERT_CALLS = """
INSERT INTO calls (call_sid, caller, called, flow_version_id, language, status, started_at)
SELECT * FROM unnest(%(call_sid)s::text[], %(caller)s::text[], %(called)s::text[],
                     %(flow_version_id)s::int[], %(language)s::text[], %(status)s::text[],
                     %(started_at)s::timestamptz[])
ON CONFLICT (call_sid) DO UPDATE SET
  flow_version_id = COALESCE(calls.flow_version_id, EXCLUDED.flow_version_id),
  language = CASE WHEN calls.language = '' THEN EXCLUDED.language ELSE calls.language END,
  caller = CASE WHEN calls.caller = '' THEN EXCLUDED.caller ELSE calls.caller END,
  called = CASE WHEN calls.called = '' THEN EXCLUDED.called ELSE calls.called END,
  started_at = LEAST(calls.started_at, EXCLUDED.started_at)
"""

_PG_INSERT_STEPS = """
INSERT INTO call_steps (call_sid, seq, at, event, node, input, path, outcome)
SELECT * FROM unnest(%(call_sid)s::text[], %(seq)s::int[], %(at)s::timestamptz[],
                     %(event)s::text[], %(node)s::text[], %(input)s::text[], %(path)s::text[],
                     %(outcome)s::text[])
ON CONFLICT (call_sid, seq) DO NOTHING
"""

_PG_UPDATE_CALLS = """
UPDATE calls SET last_node = COALESCE(latest.last_node, calls.last_node),
                 outcome = COALESCE(latest.outcome, calls.outcome),
                 language = COALESCE(latest.language, calls.language)
FROM unnest(%(sid)s::text[], %(last_node)s::text[], %(outcome)s::text[], %(language)s::text[])
     AS latest(sid, last_node, outcome, language)
WHERE calls.call_sid = latest.sid
"""


_STEP_UPDATE = (
    update(Call)
    .where(Call.call_sid == bindparam("sid"))
    .values(
        last_node=func.coalesce(bindparam("last_node"), Call.last_node),
        outcome=func.coalesce(bindparam("outcome"), Call.outcome),
        language=func.coalesce(bindparam("language"), Call.language),
    )
)


def _upsert_calls(dialect: Any) -> Any:
    """Insert calls; where a status callback created the row first, fill in what it lacked."""
    calls = dialect.insert(Call.__table__)
    excluded = calls.excluded
    table = Call.__table__.c
    return calls.on_conflict_do_update(
        index_elements=["call_sid"],
        set_={
            "flow_version_id": func.coalesce(table.flow_version_id, excluded.flow_version_id),
            "language": case((table.language == "", excluded.language), else_=table.language),
            "caller": case((table.caller == "", excluded.caller), else_=table.caller),
            "called": case((table.called == "", excluded.called), else_=table.called),
            "started_at": case((excluded.started_at < table.started_at, excluded.started_at),
                               else_=table.started_at),
        },
    )
