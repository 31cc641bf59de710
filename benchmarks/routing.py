"""Benchmark: routing an agent who just became available to their most urgent item, against the
bare SQL statement; then the time from "agent available" to "agent's phone rung" through a real
`ivr worker` process and the Twilio stand-in.

What is measured
----------------
A private PostgreSQL database (``ivr_bench_routing_<hex>``, created from ``--admin-url``,
migrated with ``ivr.schema.upgrade``; dropped at the end, also on failure or Ctrl-C) holds
``--items`` waiting items, half callers waiting in line (``live_calls``, due within ten minutes
either side of now) and half callback requests (``callback_requests``, pending, dialable,
due from twenty minutes ago to a day ahead), in mixed languages (en 40 %, de 30 %, pl 20 %, ru 10 %)
and topics (network, password, hardware, software, vdi, outage, or none), and ``--agents``
agents (four in five dial progressively) who speak one language, a third of them two, and
know one to three topics at levels 1-3. Loaded with ``INSERT ... SELECT FROM
generate_series``, then ``ANALYZE``.

**Assign.** A sample makes one random agent available (not timed), then times the claim that
gives them their best item (language must match, topic preferred, level breaks ties, callbacks
for progressive agents only) and takes agent and item in one statement, then puts both back
(not timed: the item waits again, the agent is away), so every sample sees the same queue:

* **project**: ``callbacks.workqueue.matching.assign_next`` on the claim engine
  (``callbacks.db.make_claim_engine``), as ``route_agent`` calls it: the whole call,
  connection checkout and the ``Assignment`` it builds included;
* **bare**: the same statement text and parameters through a plain psycopg connection in
  autocommit, returning the raw row.

Every sample times both ways for the same agent, one after the other (the first switching
each sample), so both meet the same background load; ``VACUUM (ANALYZE)`` after each of
``--rounds`` rounds clears what putting back leaves behind.
Every sample checks that the item came back claimed once (an item's offers or attempts never
above one). Goal: the project within 1.5x of bare SQL in p50 and p99.

**Ring.** A private redis-server, the stand-in in a thread of this process, and one ``ivr
worker --no-preload`` process (no maintenance pass during the run). A sample takes one away
agent and calls ``callbacks.desk.change_availability(session, agent, "available")``, what the
console and ``PUT /api/v1/me/availability`` call; it commits the state and queues
``route_agent(agent)``; the worker claims and asks Twilio (the stand-in) to ring the agent.
Timed from before the desk call to the moment the stand-in accepts the call to that agent's
phone (its ``add_call``), one sample at a time. After each sample the offer or attempt is
removed and the item and agent put back. For reference the same is timed for a trivial job
(``benchmarks.rq_baseline.noop``): enqueue to job finished. Goal: p99 under 500 ms.

Run
---
    .venv/bin/python benchmarks/routing.py             # 10,000 items, 500 agents
    .venv/bin/python benchmarks/routing.py --quick     # fewer samples: ~30 s

Exit status 0 for a measurement (goals met or not); 1 when an item was claimed twice or a
ring went to the wrong agent; 2 on setup failure.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/queue.py shares its name with the standard library's `queue`: run as a script,
# this directory would come first on sys.path and shadow it. Put the project root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

import argparse
import gc
import os
import random
import secrets
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import psycopg
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.worker import Worker, WorkerStatus
from sqlalchemy.engine import make_url

from benchmarks.dialing import (
    BASELINE_JOB,
    DialSetupFailed,
    private_redis,
    wait_until,
    worker_env,
    worker_process,
)
from benchmarks.queue import SetupFailed, conninfo, create_database, drop_database

GOAL_RATIO = 1.5
GOAL_RING_P99 = 0.5
CATEGORIES = ("network", "password", "hardware", "software", "vdi", "outage")
LANGUAGE_SHARES = ("en", "en", "en", "en", "de", "de", "de", "pl", "pl", "ru")


def load_sql(items: int, agents: int) -> list[str]:
    """Statements that make `items` waiting items (half live, half callbacks) and `agents`
    agents with skills; deterministic, spread evenly over languages, topics and due times."""
    live, callbacks = items // 2, items - items // 2
    languages = ", ".join(f"'{code}'" for code in LANGUAGE_SHARES)
    topics = ", ".join(f"'{code}'" for code in (*CATEGORIES, ""))
    categories = ", ".join(f"'{code}'" for code in CATEGORIES)
    return [
        f"""INSERT INTO live_calls (call_sid, caller, language, category, priority, reasons,
                node, seq, queue_name, status, entered_at, due_at, overflow_at, last_seen_at,
                offers, outcome_detail, updated_at)
            SELECT 'CA' || lpad(n::text, 32, '0'), '+49151' || lpad(n::text, 8, '0'),
                   (ARRAY[{languages}])[1 + (n * 7) % 10], (ARRAY[{topics}])[1 + n % 7],
                   'P' || (1 + (n * 3) % 4), '', 'line', 1, 'servicedesk', 'waiting',
                   now() - interval '5 minutes',
                   now() - interval '10 minutes'
                       + ((n::bigint * 7919) % {live}) * (interval '20 minutes' / {live}),
                   now() + interval '1 hour', now(), 0, '', now()
              FROM generate_series(1, {live}) AS n""",
        f"""INSERT INTO callback_requests (caller, category, language, priority, reasons,
                first_call_sid, last_call_sid, contacts, status, first_contact_at, due_at,
                available_at, attempts, "window", dial_number, updated_at)
            SELECT '+49152' || lpad(n::text, 8, '0'), (ARRAY[{categories}])[1 + n % 6],
                   (ARRAY[{languages}])[1 + (n * 3) % 10], 'P' || (1 + n % 4), '',
                   'CA' || n, 'CA' || n, 1, 'pending', now() - interval '2 hours',
                   now() - interval '20 minutes'
                       + ((n::bigint * 104729) % {callbacks}) * (interval '24 hours'
                                                                / {callbacks}),
                   now() - interval '1 minute', 0, '', '', now()
              FROM generate_series(1, {callbacks}) AS n""",
        f"""INSERT INTO agents (username, display_name, password_hash, role, phone,
                availability, availability_since, dial_mode, active, api_token_hash,
                created_at)
            SELECT 'bench-agent-' || n, 'Agent ' || n, 'no sign-in', 'agent',
                   '+4930' || lpad(n::text, 9, '0'), 'away', now() - n * interval '1 second',
                   CASE WHEN n % 5 = 0 THEN 'preview' ELSE 'progressive' END, true, '', now()
              FROM generate_series(1, {agents}) AS n""",
        f"""INSERT INTO agent_skills (agent_id, kind, code, level)
            SELECT id, 'language', (ARRAY[{languages}])[1 + (id * 11) % 10], 2 FROM agents
            UNION
            SELECT id, 'language', (ARRAY['de', 'en', 'ru', 'pl'])[1 + id % 4], 1 FROM agents
             WHERE id % 3 = 0
            ON CONFLICT DO NOTHING""",
        f"""INSERT INTO agent_skills (agent_id, kind, code, level)
            SELECT id, 'topic', (ARRAY[{categories}])[1 + (id + k * 2) % 6], 1 + (id + k) % 3
              FROM agents, generate_series(0, 2) AS k
             WHERE k <= id % 3
            ON CONFLICT DO NOTHING""",
        "ANALYZE",
    ]


def load(dsn: str, items: int, agents: int) -> float:
    """Fill the database; the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in load_sql(items, agents):
            conn.execute(statement)
        row = conn.execute(
            "SELECT (SELECT count(*) FROM live_calls WHERE status = 'waiting') + "
            "(SELECT count(*) FROM callback_requests WHERE status = 'pending'), "
            "(SELECT count(*) FROM agents)").fetchone()
    if row is None or (int(row[0]), int(row[1])) != (items, agents):
        raise SetupFailed(f"loaded {row}, wanted {items} items and {agents} agents")
    return time.perf_counter() - started


def put_back(conn: psycopg.Connection[Any], agent_id: int) -> None:
    """The agent away again, their item waiting again, and any ring of theirs forgotten."""
    conn.execute("DELETE FROM live_offers WHERE agent_id = %s", (agent_id,))
    conn.execute("DELETE FROM callback_attempts WHERE agent_id = %s", (agent_id,))
    conn.execute("UPDATE live_calls SET status = 'waiting', claimed_by = NULL, "
                 "claimed_at = NULL, offers = 0 WHERE status = 'offered'")
    conn.execute("UPDATE callback_requests SET status = 'pending', claimed_by = NULL, "
                 "claimed_at = NULL, attempts = 0 WHERE status = 'claimed'")
    conn.execute("UPDATE agents SET availability = 'away' WHERE id = %s", (agent_id,))


def claimed_twice(conn: psycopg.Connection[Any]) -> int:
    """Items whose count of claims went above one (must be 0)."""
    row = conn.execute("SELECT (SELECT count(*) FROM live_calls WHERE offers > 1) + "
                       "(SELECT count(*) FROM callback_requests WHERE attempts > 1)").fetchone()
    return int(row[0]) if row else -1


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of `values` (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


@dataclass
class Timings:
    """Latencies of one way, and what the samples got."""

    latencies: list[float] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def note(self, kind: str) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


# ---- Assign ---------------------------------------------------------------------------------


def measure_assign(url: str, dsn: str, agent_ids: list[int], samples: int,
                   rounds: int) -> dict[str, Timings]:
    """`samples` claims per way, in alternating rounds, each for a freshly available agent."""
    from callbacks.db import make_claim_engine, utcnow
    from callbacks.priority import RoutingRules
    from callbacks.workqueue.matching import _PG_ASSIGN, assign_next, live_claim

    rules = RoutingRules()
    engine = make_claim_engine(url)
    bare = psycopg.connect(dsn, autocommit=True)
    setup = psycopg.connect(dsn, autocommit=True)
    rng = random.Random(13)
    results = {"bare": Timings(), "project": Timings()}

    def project(agent_id: int) -> str:
        got = assign_next(engine, agent_id, utcnow(), rules, uuid.uuid4().hex[:16])
        return got.kind if got is not None else "nothing"

    def raw(agent_id: int) -> str:
        token = uuid.uuid4().hex[:16]
        row = bare.execute(_PG_ASSIGN, {  # type: ignore[call-overload]
            "agent": agent_id, "now": datetime.now(UTC), "live_claim": live_claim(agent_id, token),
            "callback_claim": f"agent:{agent_id}", "preference": 120.0, "bonus": 10.0,
        }).fetchone()
        return str(row[0]) if row is not None else "nothing"

    ways: dict[str, Callable[[int], str]] = {"bare": raw, "project": project}
    # What is loaded by now lives as long as the process (as in the web app, which freezes it
    # too): full collections of it would land in either way's timings at random.
    gc.collect()
    gc.freeze()
    try:
        for agent_id in agent_ids[:20]:  # warm both connections and the plan cache
            for way in ways.values():
                setup.execute("UPDATE agents SET availability = 'available', "
                              "availability_since = now() WHERE id = %s", (agent_id,))
                way(agent_id)
                put_back(setup, agent_id)
        per_round = max(1, samples // rounds)
        for round_no in range(rounds):
            for n in range(per_round):
                agent_id = rng.choice(agent_ids)
                # both ways claim for the same agent, in turns, so both meet the same load
                order = ("bare", "project") if n % 2 == 0 else ("project", "bare")
                for name in order:
                    timings, claim = results[name], ways[name]
                    setup.execute("UPDATE agents SET availability = 'available', "
                                  "availability_since = now() WHERE id = %s", (agent_id,))
                    started = time.perf_counter()
                    kind = claim(agent_id)
                    timings.latencies.append(time.perf_counter() - started)
                    timings.note(kind)
                    if claimed_twice(setup):
                        timings.problems.append(f"{name}: an item was claimed twice")
                    put_back(setup, agent_id)
            setup.execute("VACUUM (ANALYZE) live_calls")
            setup.execute("VACUUM (ANALYZE) callback_requests")
            setup.execute("VACUUM (ANALYZE) agents")
            line = ", ".join(
                f"{name} p50 {percentile(t.latencies[-per_round:], 50) * 1000:.3f} ms "
                f"p99 {percentile(t.latencies[-per_round:], 99) * 1000:.3f} ms"
                for name, t in results.items())
            print(f"  assign round {round_no + 1}: {per_round} samples each, {line}", flush=True)
    finally:
        engine.dispose()
        bare.close()
        setup.close()
    return results


def explain(dsn: str, agent_id: int) -> list[str]:
    """The claim's plan for one agent (EXPLAIN ANALYZE, rolled back)."""
    from callbacks.workqueue.matching import _PG_ASSIGN

    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE agents SET availability = 'available' WHERE id = %s", (agent_id,))
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + _PG_ASSIGN, {  # type: ignore[call-overload]
            "agent": agent_id, "now": datetime.now(UTC), "live_claim": "explain",
            "callback_claim": "explain", "preference": 120.0, "bonus": 10.0}).fetchall()
        conn.rollback()
    return [str(row[0]) for row in rows]


# ---- Ring -----------------------------------------------------------------------------------


def measure_ring(url: str, dsn: str, agent_ids: list[int], samples: int,
                 phones: dict[int, str]) -> tuple[Timings, Timings]:
    """Agent available (the desk call) -> the stand-in accepts the call to their phone."""
    from callbacks import runtime
    from callbacks.db import make_engine, make_session_factory
    from callbacks.desk import change_availability
    from callbacks.queues import URGENT
    from callbacks.settings import Settings
    from callbacks.workqueue.agents import Agent
    from ivr.standin import StandinServer

    account_sid, auth_token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
    ring, floor = Timings(), Timings()
    rng = random.Random(29)
    with tempfile.TemporaryDirectory(prefix="ivr-bench-routing-") as tmp, \
            private_redis(Path(tmp)) as redis_url, \
            StandinServer(account_sid, auth_token) as standin:
        arrivals: dict[str, float] = {}
        arrived = threading.Condition()
        accept = standin.state.add_call

        def stamped(call: Any) -> None:
            at = time.perf_counter()
            accept(call)
            with arrived:
                arrivals[call.to] = at
                arrived.notify_all()

        standin.state.add_call = stamped  # type: ignore[method-assign]
        env = worker_env(url, redis_url, standin.url, account_sid, auth_token)
        runtime.configure(Settings(database_url=url, redis_url=redis_url,
                                   twilio_account_sid=account_sid, twilio_auth_token=auth_token,
                                   twilio_api_base_url=standin.url))
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        connection = Redis.from_url(redis_url)
        log = Path(tmp) / "worker.log"
        try:
            with worker_process(env, log) as process, \
                    psycopg.connect(dsn, autocommit=True) as setup:
                wait_until(lambda: any(w.get_state() == WorkerStatus.IDLE
                                       for w in Worker.all(connection=connection)),
                           120, "the worker to start", process, log)
                for n in range(samples):
                    agent_id = rng.choice(agent_ids)
                    phone = phones[agent_id]
                    with sessions() as session:
                        agent = session.get(Agent, agent_id)
                        assert agent is not None
                        started = time.perf_counter()
                        change_availability(session, agent, "available")
                    with arrived:
                        if not arrived.wait_for(lambda p=phone: p in arrivals, timeout=30):
                            ring.problems.append(f"sample {n}: the agent was not rung in 30 s")
                            put_back(setup, agent_id)
                            continue
                        ring.latencies.append(arrivals.pop(phone) - started)
                    wait_until(lambda a=agent_id: _ringing_recorded(setup, a), 30,
                               "the router to record the ring", process, log)
                    ring.note(_what_rang(setup, agent_id))
                    wrong = [to for to in arrivals if to != phone]
                    if wrong:
                        ring.problems.append(f"sample {n}: rang {wrong} as well")
                        arrivals.clear()
                    if claimed_twice(setup):
                        ring.problems.append(f"sample {n}: an item was claimed twice")
                    put_back(setup, agent_id)
                queue = Queue(URGENT, connection=connection)
                for _ in range(samples):
                    started = time.perf_counter()
                    job = queue.enqueue_call(BASELINE_JOB, args=(0,), timeout=60, result_ttl=60)
                    while job.get_status(refresh=True) not in (JobStatus.FINISHED,
                                                               JobStatus.FAILED):
                        time.sleep(0.0005)
                    floor.latencies.append(time.perf_counter() - started)
                    Job.fetch(job.id, connection=connection).delete()
        finally:
            engine.dispose()
            connection.close()
    return ring, floor


def _ringing_recorded(conn: psycopg.Connection[Any], agent_id: int) -> bool:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM live_offers WHERE agent_id = %s AND agent_call_sid IS NOT "
        "NULL) + (SELECT count(*) FROM callback_attempts WHERE agent_id = %s AND "
        "agent_call_sid IS NOT NULL)", (agent_id, agent_id)).fetchone()
    return bool(row and row[0])


def _what_rang(conn: psycopg.Connection[Any], agent_id: int) -> str:
    row = conn.execute("SELECT count(*) FROM live_offers WHERE agent_id = %s",
                       (agent_id,)).fetchone()
    return "live" if row and row[0] else "callback"


# ---- Reporting and main ---------------------------------------------------------------------


def report(assign: dict[str, Timings], ring: Timings, floor: Timings) -> tuple[bool, bool]:
    """Print both measurements side by side with their goals; (assign goal met, ring met)."""
    bare, project = assign["bare"], assign["project"]
    ratio50, ratio99 = project.ms(50) / bare.ms(50), project.ms(99) / bare.ms(99)
    assign_met = ratio50 <= GOAL_RATIO and ratio99 <= GOAL_RATIO
    ring_met = percentile(ring.latencies, 99) < GOAL_RING_P99
    print("\nwhat                                              samples      p50       p99  "
          "goal")
    print("-" * 92)
    print(f"assign, bare SQL (psycopg, same statement)        {len(bare.latencies):>7} "
          f"{bare.ms(50):>7.3f} ms {bare.ms(99):>7.3f} ms")
    print(f"assign, project (assign_next on the claim engine) {len(project.latencies):>7} "
          f"{project.ms(50):>7.3f} ms {project.ms(99):>7.3f} ms  "
          f"{ratio50:.2f}x / {ratio99:.2f}x of bare, at most {GOAL_RATIO}x: "
          f"{'met' if assign_met else 'NOT met'}")
    print(f"agent available -> phone rung (worker, stand-in) {len(ring.latencies):>7} "
          f"{ring.ms(50):>7.1f} ms {ring.ms(99):>7.1f} ms  p99 under "
          f"{GOAL_RING_P99 * 1000:.0f} ms: {'met' if ring_met else 'NOT met'}")
    print(f"  for reference: a trivial rq job, enqueue -> done {len(floor.latencies):>5} "
          f"{floor.ms(50):>7.1f} ms {floor.ms(99):>7.1f} ms")
    print(f"\nwhat the samples got: assign bare {bare.kinds}, project {project.kinds}; "
          f"rings {ring.kinds}")
    return assign_met, ring_met


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--admin-url", default=os.environ.get(
        "IVR_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL URL allowed to CREATE DATABASE")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--samples", type=int, default=2000,
                        help="timed claims per way (bare, project)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per way")
    parser.add_argument("--rings", type=int, default=200, help="timed rings through a worker")
    parser.add_argument("--quick", action="store_true", help="400 claims, 60 rings")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.rounds, args.rings = 400, 2, 60
    return args


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    name = f"ivr_bench_routing_{secrets.token_hex(5)}"
    url = (make_url(args.admin_url).set(drivername="postgresql+psycopg", database=name)
           .render_as_string(hide_password=False))
    dsn = conninfo(url)
    signal.signal(signal.SIGTERM, _interrupt)
    created = False
    try:
        create_database(args.admin_url, name)
        created = True
        from ivr.schema import upgrade

        upgrade(url)
        seconds = load(dsn, args.items, args.agents)
        with psycopg.connect(dsn, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            agents = conn.execute("SELECT id, phone FROM agents ORDER BY id").fetchall()
        phones = {int(row[0]): str(row[1]) for row in agents}
        agent_ids = sorted(phones)
        print(f"database {name} (PostgreSQL {version[0] if version else '?'}): "
              f"{args.items:,} waiting items ({args.items // 2:,} callers in line, "
              f"{args.items - args.items // 2:,} callbacks) and {args.agents} agents loaded in "
              f"{seconds:.1f} s; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}\n")
        print("EXPLAIN (ANALYZE, BUFFERS) of the claim for one agent:")
        for line in explain(dsn, agent_ids[len(agent_ids) // 2]):
            print(f"    {line}")
        print()
        assign = measure_assign(url, dsn, agent_ids, args.samples, args.rounds)
        print(f"\nring: {args.rings} samples, one at a time, through one `ivr worker`")
        ring, floor = measure_ring(url, dsn, agent_ids, args.rings, phones)
        report(assign, ring, floor)
        problems = [p for t in (*assign.values(), ring) for p in t.problems]
        for problem in problems:
            print(f"problem: {problem}")
        return 1 if problems else 0
    except (SetupFailed, DialSetupFailed) as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if created:
            drop_database(args.admin_url, name)


if __name__ == "__main__":
    sys.exit(main())
