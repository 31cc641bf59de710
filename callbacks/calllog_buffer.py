"""The call log written behind the webhooks: buffered per process, flushed in batches.

Menu steps are the hot path: each webhook only appends to this buffer, and a background thread
writes everything pending every `flush_seconds` in one transaction (multi-row inserts that ignore
Twilio's repeated deliveries). A crashed process can lose at most the last flush interval of
menu steps; voicemails, tickets and callbacks never go through here, they are written at once.
With `flush_seconds=0` every write happens synchronously (tests, one-off tools).
"""

from __future__ import annotations

import atexit
import json
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

_forks = [0]
"""How many times this process's ancestry forked since import: a buffer whose writer thread
started under an earlier count is in a child (a gunicorn worker) where that thread is gone."""
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))

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
        self._started_in = -1  # the fork count when the writer started; -1: not started
        self._writing = False  # the writer thread is running
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
        elif not self._writing or self._started_in != _forks[0]:
            self._start()

    def _start(self) -> None:
        # After a fork (gunicorn workers) the parent's thread does not exist here: start anew.
        with self._lock:
            if (self._started_in == _forks[0] and self._thread is not None
                    and self._thread.is_alive()):
                return
            self._started_in = _forks[0]
            self._stopped = False
            self._writing = True
            self._thread = threading.Thread(target=self._run, name="call-log-writer",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopped:
                self._wake.wait(self.flush_seconds)
                try:
                    self.flush()
                except Exception:
                    log.exception("call log: flush failed; rows kept for the next attempt")
                    self._wake.wait(min(5.0, self.flush_seconds * 20))
        finally:
            self._writing = False

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
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # the JSON rows' other keys are ignored
                _write_postgresql(conn, calls, unique_steps, list(latest.values()))
                return
            steps = [{k: v for k, v in s.items() if k not in ("last_node", "language")}
                     for s in unique_steps]
            if calls:
                conn.execute(_upsert_calls(self._dialect), calls)
            if steps:
                conn.execute(self._dialect.insert(CallStep.__table__).on_conflict_do_nothing(
                    index_elements=["call_sid", "seq"]), steps)
            if latest:
                conn.execute(_STEP_UPDATE, list(latest.values()))


def _write_postgresql(conn: Connection, calls: list[dict[str, Any]],
                      steps: list[dict[str, Any]], latest: list[dict[str, Any]]) -> None:
    """One statement per table, each over one JSON document of its rows: a batch costs three
    round trips whatever its size, and the rows are encoded by the json module in C instead
    of value by value."""
    # A log, not a record: a database crash may lose the last moment of steps.
    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
    if calls:
        conn.exec_driver_sql(_PG_UPSERT_CALLS, (_json_rows(calls),))
    if steps:
        conn.exec_driver_sql(_PG_INSERT_STEPS, (_json_rows(steps),))
    if latest:
        conn.exec_driver_sql(_PG_UPDATE_CALLS, (_json_rows(latest),))


def _json_rows(rows: list[dict[str, Any]]) -> str:
    """The rows as a JSON array of objects; timestamps in ISO 8601 with their UTC offset."""
    return json.dumps(rows, default=datetime.isoformat, separators=(",", ":"))


_PG_UPSERT_CALLS = """
INSERT INTO calls (call_sid, caller, called, flow_version_id, language, status, started_at)
SELECT call_sid, caller, called, flow_version_id, language, status, started_at
FROM json_to_recordset(%s::json) AS row(call_sid text, caller text, called text,
                                        flow_version_id int, language text, status text,
                                        started_at timestamptz)
ON CONFLICT (call_sid) DO UPDATE SET
  flow_version_id = COALESCE(calls.flow_version_id, EXCLUDED.flow_version_id),
  language = CASE WHEN calls.language = '' THEN EXCLUDED.language ELSE calls.language END,
  caller = CASE WHEN calls.caller = '' THEN EXCLUDED.caller ELSE calls.caller END,
  called = CASE WHEN calls.called = '' THEN EXCLUDED.called ELSE calls.called END,
  started_at = LEAST(calls.started_at, EXCLUDED.started_at)
"""

_PG_INSERT_STEPS = """
INSERT INTO call_steps (call_sid, seq, at, event, node, input, path, outcome)
SELECT call_sid, seq, at, event, node, input, path, outcome
FROM json_to_recordset(%s::json) AS row(call_sid text, seq int, at timestamptz, event text,
                                        node text, input text, path text, outcome text)
ON CONFLICT (call_sid, seq) DO NOTHING
"""

_PG_UPDATE_CALLS = """
UPDATE calls SET last_node = COALESCE(latest.last_node, calls.last_node),
                 outcome = COALESCE(latest.outcome, calls.outcome),
                 language = COALESCE(latest.language, calls.language)
FROM json_to_recordset(%s::json) AS latest(sid text, last_node text, outcome text,
                                           language text)
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
