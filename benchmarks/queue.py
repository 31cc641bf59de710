"""Benchmark: claiming the next callback request, the dialer's claim against bare SQL; then
dial jobs per second through a real rq worker against a trivial job.

What is measured
----------------
A private PostgreSQL database (``ivr_bench_queue_<hex>``, created from ``--admin-url``,
migrated with ``ivr.schema.upgrade``; dropped at the end, also on failure or Ctrl-C) is filled
with ``--pending`` pending rows in ``callback_requests`` by one ``INSERT ... SELECT FROM
generate_series``: distinct callers, categories cycling through network/password/hardware/
software/vdi/outage, priorities P1-P4, deadlines spread over the past and next two days (not in
id order), and one row in ten hidden until later (a caller's window). Then ``ANALYZE``.

**Claims.** Two ways to claim the next callback (earliest deadline first, ``FOR UPDATE SKIP
LOCKED``) run with 1, 2 and 8 concurrent claimers (threads, each with its own connection),
``--claims`` measured claims per run split across the claimers:

* **project**: ``claim_next_callback(engine, "agent:<n>", agent_id=n)`` on the claim engine
  (the callback claim a preview agent's or a reassigned request's dial makes; agents who
  become free are routed by ``benchmarks/routing.py``'s statement). Each claimer
  stands for one dialer process and gets its own engine from the factory
  ``callbacks.runtime.claim_engine()`` uses, ``callbacks.db.make_claim_engine(url)`` (only
  a statement timeout is added, at connect). The claim records what production records:
  status, claimer, claim time, attempt count, update time; it honours requests reassigned to
  one agent and returns the whole ``ClaimedCallback`` (11 columns).
* **bare**: one ``UPDATE ... WHERE id = (SELECT ... ORDER BY due_at, id LIMIT 1 FOR UPDATE
  SKIP LOCKED) RETURNING id`` over plain psycopg connections in autocommit.

Latency is timed per claim with ``time.perf_counter`` (for the project: the whole call,
connection checkout and return included). Reported per run: p50, p99 and claims/s (measured
claims over the wall time from a common start barrier to the last claimer finishing). The two
ways alternate in short runs (``--rounds`` rounds per claimer count, the first one switching each
round, so both see the same background load on a shared machine) and
their latencies are pooled per way. Before every run the claimed rows go back to pending with
one UPDATE, and ``VACUUM (ANALYZE)`` clears the dead row versions that claiming leaves in the
partial index, so every run starts from the same ~``--pending`` pending rows. Every run checks
that no id was claimed twice (ids returned to the claimers, and ``attempts`` in the table):
duplicates must be 0. Ten unmeasured warm-up claims per claimer open connections first.

Goal: the project's claim within 1.5x of bare SQL in p50 and p99 at 1 and 8 claimers.

The EXPLAIN (ANALYZE, BUFFERS) plan of the bare claim's subquery is printed once, to show that
the partial index ``ix_callback_requests_pending_due`` serves it.

**Dialer** (``benchmarks/dialing.py``; skipped with ``--dial-jobs 0``). With the claimed rows
pending again, ``--dial-jobs`` available progressive agents with phones are added (the first
by ``callbacks.workqueue.agents.create_agent``, the others copying its password hash), a private
redis-server is started on a free port and the Twilio stand-in (``ivr.standin``) on another.
A run starts one ``ivr worker`` process (IVR_* settings: this database, that Redis, the
stand-in as Twilio's API, a public URL and caller id), waits until it idles, makes the agents
available and queues one job per agent onto the urgent queue as ``enqueue_route_job`` does:

* **dialer**: ``callbacks.workqueue.router.route_agent(agent_id)``: take the agent and the next
  due callback in one statement, record the attempt, ask Twilio (the stand-in) to ring them;
* **trivial**: ``benchmarks.rq_baseline.noop(agent_id)``, the same queue and job options, so
  rq's own cost per job is the reference.

Jobs/s = jobs over the time from the first job's start to the last job's end (rq's job
timestamps); job p50/p99 are rq's per-job run times. ``--dial-rounds`` runs of each kind,
alternating which goes first, pooled. Every dialer run checks: every job finished and rang its
own agent (one call at the stand-in per job, whose URL names that job's attempt), one attempt
row per job, and no request dialled twice (distinct requests in the job results and the
attempt rows, no request with more than one attempt).

Run
---
    .venv/bin/python benchmarks/queue.py             # 100,000 pending, 6 x 1,000 claims, 300 dials
    .venv/bin/python benchmarks/queue.py --quick     # 500 claims at 1 and 8, 100 dials: ~1 min
    .venv/bin/python benchmarks/queue.py --claimers 1,8 --rounds 3 --dial-jobs 0

``--seconds-cap`` bounds each claim run: claimers stop early (the claims made are reported)
once a run has taken that long. PostgreSQL must answer at ``--admin-url`` (default: the test
suite's local server, trust auth). Exit status 0 for a measurement (goal met or not); 1 when a
claim failed, an id was claimed twice or a dialer check failed; 2 on setup failure.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

# This file shares its name with the standard library's `queue`, which psycopg, logging and
# concurrent.futures import. Run as a script, its own directory comes first on sys.path and it
# would shadow the real module: take that directory off and put the project root on instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

import argparse
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from benchmarks.dialing import BASELINE_JOB, DIAL_JOB, DialReport, DialSetupFailed, measure_dialer

CATEGORIES = ("network", "password", "hardware", "software", "vdi", "outage")
GOAL_RATIO = 1.5
GOAL_CLAIMERS = (1, 8)
WARMUP_CLAIMS = 10
STATEMENT_TIMEOUT = "-c statement_timeout=30000 -c lock_timeout=30000"

BARE_CLAIM = (
    "UPDATE callback_requests SET status='claimed', claimed_by=%s, claimed_at=now(), "
    "attempts=attempts+1, updated_at=now() WHERE id = (SELECT id FROM callback_requests "
    "WHERE status='pending' AND available_at <= now() ORDER BY due_at, id LIMIT 1 "
    "FOR UPDATE SKIP LOCKED) RETURNING id"
)
BARE_SUBQUERY = (
    "SELECT id FROM callback_requests WHERE status='pending' AND available_at <= now() "
    "ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
)
RESTORE = (
    "UPDATE callback_requests SET status='pending', claimed_by=NULL, claimed_at=NULL, "
    "attempts=0 WHERE status='claimed'"
)


def load_sql(pending: int) -> str:
    """One INSERT ... SELECT making `pending` realistic pending requests (n is 1..pending).

    Deadlines are a permutation of n (times a prime, modulo the count) spread evenly over
    [now - 2 days, now + 2 days), so queue order is not heap order; a request's first contact
    lies its priority's SLA (2/4/8/16 hours) before its deadline. One in ten becomes available
    only in the next 48 hours (a caller's window); the others some minutes ago.
    """
    categories = ", ".join(f"'{c}'" for c in CATEGORIES)
    return f"""
        INSERT INTO callback_requests (
            caller, category, language, priority, reasons, first_call_sid, last_call_sid,
            ticket_id, contacts, status, first_contact_at, due_at, available_at, attempts,
            claimed_by, claimed_at, updated_at)
        SELECT '+49151' || lpad(n::text, 8, '0'),
               (ARRAY[{categories}])[1 + n % {len(CATEGORIES)}],
               'en',
               'P' || prio,
               '',
               'CA' || n,
               'CA' || n,
               NULL,
               1,
               'pending',
               due - (2 ^ prio) * interval '1 hour',
               due,
               CASE WHEN n % 10 = 0 THEN now() + (1 + n % 48) * interval '1 hour'
                    ELSE now() - (1 + n % 3600) * interval '1 second' END,
               0,
               NULL,
               NULL,
               now()
        FROM (
            SELECT n,
                   1 + (n * 7) % 4 AS prio,
                   now() - interval '2 days'
                       + ((n::bigint * 7919) % {pending}) * (interval '4 days' / {pending})
                       AS due
            FROM generate_series(1, {pending}) AS n
        ) AS s
    """


# ---- Database lifecycle ---------------------------------------------------------------------


class SetupFailed(Exception):
    """The benchmark's database could not be prepared."""


def conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy or libpq URL."""
    return (make_url(url).set(drivername="postgresql")
            .render_as_string(hide_password=False))


def create_database(admin_url: str, name: str) -> None:
    """Create the (empty) database `name`."""
    try:
        with psycopg.connect(conninfo(admin_url), autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise SetupFailed(f"cannot create database {name} via {admin_url}: {exc}") from exc


def drop_database(admin_url: str, name: str) -> None:
    """Drop the benchmark's database (if it was created), closing its connections."""
    try:
        with psycopg.connect(conninfo(admin_url), autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(f"dropped database {name}")
    except psycopg.Error as exc:
        print(f"could not drop database {name}: {exc}", file=sys.stderr)


def load_pending(dsn: str, pending: int) -> float:
    """Bulk-load the pending requests and ANALYZE; returns the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(load_sql(pending))
        conn.execute("ANALYZE callback_requests")
        count = conn.execute(
            "SELECT count(*) FROM callback_requests WHERE status = 'pending'").fetchone()
    if count is None or count[0] != pending:
        raise SetupFailed(f"loaded {count} pending rows, wanted {pending}")
    return time.perf_counter() - started


def restore(dsn: str) -> int:
    """Claimed rows back to pending (one UPDATE), then VACUUM away the dead row versions."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(RESTORE)
        restored = cur.rowcount
        conn.execute("VACUUM (ANALYZE) callback_requests")
    return restored


def claimed_twice_in_table(dsn: str) -> tuple[int, int]:
    """(claimed rows, rows whose attempts say they were claimed more than once)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE attempts > 1) FROM callback_requests "
            "WHERE status = 'claimed'").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def explain_bare(dsn: str) -> tuple[list[str], bool]:
    """The bare claim's subquery plan (EXPLAIN ANALYZE, BUFFERS) and whether it uses the index."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {BARE_SUBQUERY}").fetchall()
    lines = [str(r[0]) for r in rows]
    return lines, any("ix_callback_requests_pending_due" in line for line in lines)


# ---- Claimers -------------------------------------------------------------------------------


@dataclass
class ClaimerResult:
    """What one claimer thread saw."""

    latencies: list[float] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    warmup_ids: list[int] = field(default_factory=list)
    empty: int = 0
    error: str | None = None


@dataclass
class RunResult:
    """One run: one way of claiming, one claimer count."""

    variant: str
    claimers: int
    latencies: list[float]
    wall: float
    duplicates: int
    table_duplicates: int
    empty: int
    errors: list[str]
    capped: bool

    @property
    def claims(self) -> int:
        return len(self.latencies)


# A claim: returns the claimed id (None when nothing was pending).
ClaimFn = Callable[[], int | None]
# Opens what one claimer needs and yields its claim function.
ClaimerFactory = Callable[[str], Any]


@contextmanager
def bare_claimer(dsn: str, name: str) -> Iterator[ClaimFn]:
    """A plain psycopg connection in autocommit claiming with one statement."""
    with psycopg.connect(dsn, autocommit=True, options=STATEMENT_TIMEOUT) as conn:
        def claim() -> int | None:
            row = conn.execute(BARE_CLAIM, (name,)).fetchone()
            return None if row is None else int(row[0])

        yield claim


@contextmanager
def project_claimer(url: str, name: str, agent_id: int) -> Iterator[ClaimFn]:
    """The dialer's way: `claim_next_callback` on the claim engine.

    Each claimer stands for one dialer process, so it gets its own engine from the factory
    `runtime.claim_engine()` uses (`make_claim_engine`, the runtime's pool settings).
    """
    from callbacks.db import make_claim_engine
    from callbacks.workqueue.callback_requests import claim_next_callback

    engine: Engine = make_claim_engine(url, connect_args={"options": STATEMENT_TIMEOUT})
    try:
        def claim() -> int | None:
            claimed = claim_next_callback(engine, name, agent_id=agent_id)
            return None if claimed is None else claimed.id

        yield claim
    finally:
        engine.dispose()


def claimer_thread(open_claimer: ClaimerFactory, name: str, quota: int, barrier: threading.Barrier,
                   stop: threading.Event, deadline: list[float], out: ClaimerResult) -> None:
    """Warm up, wait for the others, then make `quota` timed claims (or stop at the deadline)."""
    try:
        with open_claimer(name) as claim:
            for _ in range(WARMUP_CLAIMS):
                claimed = claim()
                if claimed is not None:
                    out.warmup_ids.append(claimed)
            barrier.wait(timeout=60)
            clock = time.perf_counter
            for _ in range(quota):
                if stop.is_set() or clock() > deadline[0]:
                    break
                started = clock()
                claimed = claim()
                out.latencies.append(clock() - started)
                if claimed is None:
                    out.empty += 1
                else:
                    out.ids.append(claimed)
    except threading.BrokenBarrierError:
        out.error = out.error or "start barrier broken"
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}"
        barrier.abort()


def run_claims(variant: str, open_claimer: ClaimerFactory, claimers: int, claims: int,
               cap: float, dsn: str, stop: threading.Event) -> RunResult:
    """Run `claims` claims split over `claimers` threads, all starting at one barrier."""
    quota, extra = divmod(claims, claimers)
    barrier = threading.Barrier(claimers + 1)
    deadline = [float("inf")]
    results = [ClaimerResult() for _ in range(claimers)]
    threads = [
        threading.Thread(
            target=claimer_thread, daemon=True, name=f"{variant}-{i}",
            args=(open_claimer, f"bench-{variant}-{i}", quota + (1 if i < extra else 0),
                  barrier, stop, deadline, results[i]))
        for i in range(claimers)
    ]
    for thread in threads:
        thread.start()
    with suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=60)
    started = time.perf_counter()
    deadline[0] = started + cap
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(timeout=0.2)
        if time.perf_counter() > started + cap + 60:  # a claimer hangs: give up on it
            stop.set()
            break
    wall = time.perf_counter() - started
    latencies = [lat for r in results for lat in r.latencies]
    ids = [i for r in results for i in (*r.warmup_ids, *r.ids)]
    _claimed, table_duplicates = claimed_twice_in_table(dsn)
    return RunResult(
        variant=variant, claimers=claimers, latencies=latencies, wall=wall,
        duplicates=len(ids) - len(set(ids)), table_duplicates=table_duplicates,
        empty=sum(r.empty for r in results),
        errors=[f"{t.name}: {r.error}" for t, r in zip(threads, results, strict=True) if r.error],
        capped=len(latencies) < claims,
    )


def run_bare(dsn: str, claimers: int, claims: int, cap: float,
             stop: threading.Event) -> RunResult:
    return run_claims("bare", lambda name: bare_claimer(dsn, name), claimers, claims, cap, dsn,
                      stop)


def run_project(url: str, dsn: str, claimers: int, claims: int, cap: float,
                stop: threading.Event) -> RunResult:
    # Claimer i claims for agent i + 1: "agent:<id>", agent_id=<id>.
    def open_claimer(name: str) -> Any:
        agent_id = int(name.rsplit("-", 1)[1]) + 1
        return project_claimer(url, f"agent:{agent_id}", agent_id)

    return run_claims("project", open_claimer, claimers, claims, cap, dsn, stop)


# ---- Reporting ------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of `values` (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


@dataclass
class Pooled:
    """All runs of one way of claiming at one claimer count."""

    runs: list[RunResult] = field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return [lat for run in self.runs for lat in run.latencies]

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000

    @property
    def rate(self) -> float:
        wall = sum(run.wall for run in self.runs)
        return len(self.latencies) / wall if wall else float("nan")

    @property
    def duplicates(self) -> int:
        return sum(run.duplicates + run.table_duplicates for run in self.runs)

    @property
    def problems(self) -> list[str]:
        out = [e for run in self.runs for e in run.errors]
        out += [f"{run.variant}: {run.empty} claims found nothing" for run in self.runs
                if run.empty]
        out += [f"{run.variant}: capped at {run.claims} claims" for run in self.runs
                if run.capped]
        return out


def print_table(results: dict[int, dict[str, Pooled]]) -> bool:
    """The comparison table; returns whether the goal is met."""
    header = (f"{'claimers':>8} | {'bare p50':>9} {'bare p99':>9} {'bare/s':>8} | "
              f"{'proj p50':>9} {'proj p99':>9} {'proj/s':>8} | "
              f"{'ratio p50':>9} {'ratio p99':>9} | {'dups':>4}")
    print(header)
    print("-" * len(header))
    met = True
    for claimers, pooled in results.items():
        bare, project = pooled["bare"], pooled["project"]
        r50 = project.p(50) / bare.p(50)
        r99 = project.p(99) / bare.p(99)
        if claimers in GOAL_CLAIMERS and not (r50 <= GOAL_RATIO and r99 <= GOAL_RATIO):
            met = False
        print(f"{claimers:>8} | {bare.p(50):>6.3f} ms {bare.p(99):>6.3f} ms {bare.rate:>8.0f} | "
              f"{project.p(50):>6.3f} ms {project.p(99):>6.3f} ms {project.rate:>8.0f} | "
              f"{r50:>8.2f}x {r99:>8.2f}x | {bare.duplicates + project.duplicates:>4}")
    missing = [c for c in GOAL_CLAIMERS if c not in results]
    if missing:
        met = False
    print()
    print(f"goal: project claim within {GOAL_RATIO}x of bare SQL in p50 and p99 at "
          f"{' and '.join(map(str, GOAL_CLAIMERS))} claimers -> "
          f"{'MET' if met else 'NOT MET'}"
          + (f" (not measured at {missing})" if missing else ""))
    return met


def print_dial_table(report: DialReport) -> None:
    """Trivial rq jobs against dial jobs, through the same worker, pooled over the runs."""
    header = (f"{'job':<34} | {'runs':>4} {'jobs':>6} {'wall s':>7} {'jobs/s':>7} | "
              f"{'job p50':>9} {'job p99':>9}")
    print(header)
    print("-" * len(header))
    names = {"trivial": BASELINE_JOB, "dialer": DIAL_JOB}
    rates: dict[str, float] = {}
    for kind, runs in report.runs.items():
        jobs = sum(run.jobs for run in runs)
        wall = sum(run.wall for run in runs)
        durations = [d for run in runs for d in run.durations]
        rates[kind] = jobs / wall if wall > 0 else float("nan")
        p50, p99 = (percentile(durations, q) * 1000 for q in (50, 99))
        print(f"{names[kind]:<34} | {len(runs):>4} {jobs:>6} {wall:>7.2f} {rates[kind]:>7.0f} | "
              f"{p50:>6.2f} ms {p99:>6.2f} ms")
    print()
    print(f"dialer: {rates['dialer']:.0f} jobs/s = {rates['dialer'] / rates['trivial']:.2f} of "
          f"the trivial job's {rates['trivial']:.0f} jobs/s through the same rq worker")
    for n, checks in enumerate(report.checks, start=1):
        print(f"checks, dialer run {n}: " + ", ".join(f"{v} {k}" for k, v in checks.items()))


# ---- Main -----------------------------------------------------------------------------------


QUICK = {"claims": 500, "rounds": 1, "claimers": "1,8", "dial_jobs": 100, "dial_rounds": 1}
FULL = {"claims": 1000, "rounds": 6, "claimers": "1,2,8", "dial_jobs": 300, "dial_rounds": 2}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="a short run: " + ", ".join(f"--{k.replace('_', '-')} {v}"
                                                         for k, v in QUICK.items()))
    parser.add_argument("--pending", type=int, default=100_000, help="pending rows to load")
    parser.add_argument("--claims", type=int, help="measured claims per run, split across the "
                        f"claimers (default {FULL['claims']})")
    parser.add_argument("--seconds-cap", type=float, default=60.0,
                        help="stop a run's claimers after this many seconds")
    parser.add_argument("--claimers", help="claimer counts, comma-separated "
                        f"(default {FULL['claimers']})")
    parser.add_argument("--rounds", type=int, help="runs of each way per claimer count "
                        f"(alternating which goes first; default {FULL['rounds']})")
    parser.add_argument("--dial-jobs", type=int, help="dial jobs (and agents) per rq run; 0 "
                        f"skips the dialer (default {FULL['dial_jobs']})")
    parser.add_argument("--dial-rounds", type=int, help="rq runs of each job kind "
                        f"(default {FULL['dial_rounds']})")
    parser.add_argument("--admin-url", default=os.environ.get(
        "IVR_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL database to create the benchmark's database from")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        args.claimer_counts = [int(c) for c in args.claimers.split(",") if c.strip()]
    except ValueError:
        parser.error("--claimers must be comma-separated integers")
    if not args.claimer_counts or min(args.claimer_counts) < 1 or max(args.claimer_counts) > 64:
        parser.error("claimer counts must be in 1..64")
    if not 1 <= args.pending <= 10_000_000:
        parser.error("--pending must be in 1..10,000,000")
    if not 1 <= args.claims <= 1_000_000:
        parser.error("--claims must be in 1..1,000,000")
    if not 0 < args.seconds_cap <= 600 or not 1 <= args.rounds <= 20:
        parser.error("--seconds-cap must be in (0, 600] and --rounds in 1..20")
    if not 0 <= args.dial_jobs <= 100_000 or not 1 <= args.dial_rounds <= 20:
        parser.error("--dial-jobs must be in 0..100,000 and --dial-rounds in 1..20")
    needed = args.rounds * (args.claims + WARMUP_CLAIMS * max(args.claimer_counts))
    if max(needed, args.dial_jobs) > args.pending * 0.9 * 0.5:
        parser.error("--pending is too small for --claims or --dial-jobs "
                     "(claims would drain the queue)")
    return args


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    name = f"ivr_bench_queue_{secrets.token_hex(5)}"
    url = (make_url(args.admin_url)
           .set(drivername="postgresql+psycopg", database=name)
           .render_as_string(hide_password=False))
    dsn = conninfo(url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, _interrupt)
    created = False
    try:
        create_database(args.admin_url, name)
        created = True
        from ivr.schema import upgrade

        upgrade(url)
        seconds = load_pending(dsn, args.pending)
        with psycopg.connect(dsn, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        print(f"database {name} (PostgreSQL {version[0] if version else '?'}), "
              f"{args.pending:,} pending rows loaded in {seconds:.1f} s; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        print(f"{args.claims:,} measured claims per run (+{WARMUP_CLAIMS} warm-up per claimer), "
              f"{args.rounds} round(s) per way and claimer count, cap {args.seconds_cap:g} s "
              f"per run\n")

        plan, uses_index = explain_bare(dsn)
        print("EXPLAIN (ANALYZE, BUFFERS) of the bare claim's subquery:")
        for line in plan:
            print(f"    {line}")
        print(f"-> partial index ix_callback_requests_pending_due "
              f"{'used' if uses_index else 'NOT used'}\n")

        results: dict[int, dict[str, Pooled]] = {}
        problems: list[str] = []
        for claimers in args.claimer_counts:
            pooled = results[claimers] = {"bare": Pooled(), "project": Pooled()}
            for round_no in range(args.rounds):
                order = ("bare", "project") if round_no % 2 == 0 else ("project", "bare")
                for variant in order:
                    restore(dsn)
                    if variant == "bare":
                        run = run_bare(dsn, claimers, args.claims, args.seconds_cap, stop)
                    else:
                        run = run_project(url, dsn, claimers, args.claims, args.seconds_cap,
                                          stop)
                    pooled[variant].runs.append(run)
                    print(f"  {claimers} claimer(s), round {round_no + 1}, {variant:>7}: "
                          f"{run.claims} claims in {run.wall:.2f} s, "
                          f"p50 {percentile(run.latencies, 50) * 1000:.3f} ms, "
                          f"p99 {percentile(run.latencies, 99) * 1000:.3f} ms, "
                          f"duplicates {run.duplicates + run.table_duplicates}", flush=True)
            problems += pooled["bare"].problems + pooled["project"].problems
        print()
        print_table(results)
        duplicates = sum(p.duplicates for pooled in results.values() for p in pooled.values())
        for problem in problems:
            print(f"problem: {problem}")
        errors = any(run.errors for pooled in results.values() for p in pooled.values()
                     for run in p.runs)
        dial_problems: list[str] = []
        if args.dial_jobs:
            restore(dsn)
            print(f"\nDialer: {args.dial_jobs} available agents, one {DIAL_JOB}(agent id) job "
                  f"each, through one `ivr worker` process, against the Twilio stand-in; "
                  f"{args.dial_rounds} run(s) of each job kind\n")
            report = measure_dialer(url, dsn, args.dial_jobs, args.dial_rounds)
            print()
            print_dial_table(report)
            dial_problems = report.problems
            for problem in dial_problems:
                print(f"problem: {problem}")
        return 1 if duplicates or errors or dial_problems else 0
    except (SetupFailed, DialSetupFailed) as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        stop.set()
        if created:
            drop_database(args.admin_url, name)


if __name__ == "__main__":
    sys.exit(main())
