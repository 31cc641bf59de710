"""Routers running at once, in threads and in real `ivr worker` processes, and routers that fail
(a worker killed while it rings, Redis flushed, PostgreSQL connections cut): no caller is
offered twice, no agent is rung twice at once, and no caller waits while a free agent who
speaks their language could take them. Real PostgreSQL, Redis, workers and the stand-in."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import func, select

from callbacks import runtime
from callbacks.db import make_engine, make_session_factory, utcnow
from callbacks.queues import enqueue_route_job
from callbacks.workqueue.agents import Agent
from callbacks.workqueue.attempts import CallbackAttempt
from callbacks.workqueue.callback_requests import CallbackRequest
from callbacks.workqueue.live_calls import LIVE_OFFER_STAGES, LiveCall, LiveOffer
from callbacks.workqueue.router import route_agent, route_sweep
from ivr.standin import StandinServer
from tests.conftest import _psycopg_dsn, desk_app, line_environment
from tests.test_matching import Store

pytestmark = pytest.mark.server
LANGUAGES = ("de", "en", "pl")


@pytest.fixture
def desk(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    """The app placing calls through the stand-in."""
    with desk_app(database_url, redis_url, standin) as app:
        yield app


def store_of(app: Flask) -> Store:
    """Helpers to write agents, callers and callbacks into the desk's database."""
    return Store(app.extensions["ivr.sessions"], runtime.claim_engine(), utcnow())


def staff_and_callers(store: Store, agents: int, callers: int, callbacks: int = 0,
                      seed: int = 7) -> tuple[list[int], list[int]]:
    """Agents speaking one or two of LANGUAGES, callers and callbacks in mixed languages."""
    rng = random.Random(seed)
    agent_ids = []
    for n in range(agents):
        languages = {LANGUAGES[n % 3]: 2}
        if n % 4 == 0:
            languages[LANGUAGES[(n + 1) % 3]] = 1
        agent_ids.append(store.agent(f"agent{n:02d}", languages=languages,
                                     topics={rng.choice(["vpn", "password"]): 2},
                                     idle_since=timedelta(seconds=rng.randint(1, 600)),
                                     phone=f"+49305559{n:03d}"))
    caller_ids = [store.live(rng.choice(LANGUAGES), rng.choice(["vpn", "password", ""]),
                             due_in=rng.randint(-120, 300)) for _ in range(callers)]
    for _ in range(callbacks):
        store.callback(rng.choice(LANGUAGES), rng.choice(["vpn", "password"]),
                       due_in=rng.randint(-120, 300))
    return agent_ids, caller_ids


def check_nothing_twice(app: Flask, standin: StandinServer) -> dict[str, int]:
    """No caller with two offers on the phone, no agent with two calls at once, one ring per
    offer and attempt, and no caller waiting while a free agent speaks their language."""
    with app.extensions["ivr.sessions"]() as session:
        live = session.scalars(select(LiveOffer).where(
            LiveOffer.stage.in_(LIVE_OFFER_STAGES))).all()
        attempts = session.scalars(select(CallbackAttempt).where(
            CallbackAttempt.stage == "dialing_agent")).all()
        per_caller = Counter(offer.live_call_id for offer in live)
        assert not [c for c, n in per_caller.items() if n > 1], per_caller
        per_agent = Counter([o.agent_id for o in live] + [a.agent_id for a in attempts])
        assert not [a for a, n in per_agent.items() if n > 1], per_agent
        offered = session.scalars(select(LiveCall).where(LiveCall.status == "offered")).all()
        assert sorted(c.id for c in offered) == sorted(per_caller)
        claimed = session.scalar(select(func.count()).select_from(CallbackRequest).where(
            CallbackRequest.status == "claimed")) or 0
        assert claimed == len(attempts)
        on_call = session.scalars(select(Agent.id).where(Agent.availability == "on_call")).all()
        assert sorted(on_call) == sorted(per_agent)  # nobody on a call with nobody
        rung = Counter(call.to for call in standin.calls())
        phones = {phone: agent_id for phone, agent_id in session.execute(
            select(Agent.phone, Agent.id))}
        assert sum(rung.values()) == len(live) + len(attempts)
        assert {phones[to] for to in rung} == set(per_agent)
        stuck = stuck_callers(session)
        assert stuck == [], f"callers waiting while a qualified agent is free: {stuck}"
        return {"offers": len(live), "attempts": len(attempts)}


def stuck_callers(session: Any) -> list[int]:
    """Callers waiting although a free agent with a phone speaks their language."""
    from callbacks.workqueue.line import free_agents_for

    waiting = session.scalars(select(LiveCall).where(LiveCall.status == "waiting")).all()
    return [call.id for call in waiting if free_agents_for(session, call.language) > 0]


def test_routers_in_many_threads_never_take_a_caller_or_an_agent_twice(
        desk: Flask, standin: StandinServer) -> None:
    store = store_of(desk)
    agents, callers = staff_and_callers(store, agents=12, callers=30, callbacks=10)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def router(n: int) -> None:
        rng = random.Random(n)
        try:
            start.wait()
            for _ in range(6):
                if rng.random() < 0.4:
                    route_sweep()
                else:
                    route_agent(rng.choice(agents))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=router, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    counts = check_nothing_twice(desk, standin)
    assert counts["offers"] + counts["attempts"] == len(agents)  # enough work for everyone
    assert len(callers) == 30


# --- real worker processes -----------------------------------------------------------------


@contextlib.contextmanager
def worker(env: dict[str, str], log: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """`ivr worker` in its own process group; killed (group and all) afterwards."""
    ivr = Path(sys.executable).with_name("ivr")
    process = subprocess.Popen([str(ivr), "worker", "--no-preload", *extra],
                               env=dict(os.environ, **env), stdout=log.open("ab"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    """The first truthy result of `check`, trying for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.fixture
def fast_ring(tmp_path: Path) -> Path:
    """A priorities file whose agents' phones ring 5 s (the reconciler's wait follows it)."""
    shipped = (Path(__file__).resolve().parents[1] / "flows" / "priorities.yaml").read_text()
    path = tmp_path / "priorities.yaml"
    path.write_text(shipped.replace("ring_seconds: 20", "ring_seconds: 5"), encoding="utf-8")
    return path


@pytest.fixture
def shipped_ring() -> Path:
    """The shipped priorities file: a 20 s ring, longer than these tests watch."""
    return Path(__file__).resolve().parents[1] / "flows" / "priorities.yaml"


def env_of(database_url: str, redis_url: str, standin: StandinServer, priorities: Path
           ) -> dict[str, str]:
    """Worker settings: the test database, Redis and stand-in, reconciling every 2 s."""
    return line_environment(database_url, redis_url, standin.url,
                            PRIORITIES_FILE=str(priorities),
                            PUBLIC_BASE_URL="https://support.example.test",
                            CALLBACK_FROM="+493012345678")


def offered(app: Flask) -> int:
    """How many callers have an agent's phone ringing for them."""
    with app.extensions["ivr.sessions"]() as session:
        return session.scalar(select(func.count()).select_from(LiveCall).where(
            LiveCall.status == "offered")) or 0


def test_routing_jobs_in_three_worker_processes_take_nothing_twice(
        desk: Flask, standin: StandinServer, database_url: str, redis_url: str,
        fast_ring: Path, tmp_path: Path) -> None:
    store = store_of(desk)
    agents, _ = staff_and_callers(store, agents=15, callers=40, callbacks=10, seed=11)
    connection = Redis.from_url(redis_url)
    for n in range(60):  # every event routes: sweeps and single agents, all at once
        enqueue_route_job(connection, None if n % 3 == 0 else agents[n % len(agents)])
    env = env_of(database_url, redis_url, standin, fast_ring)
    with contextlib.ExitStack() as stack:
        workers = [stack.enter_context(worker(env, tmp_path / f"worker{n}.log", "--burst"))
                   for n in range(3)]
        for process in workers:
            assert process.wait(timeout=120) == 0, (tmp_path / "worker0.log").read_text()
    counts = check_nothing_twice(desk, standin)
    assert counts["offers"] + counts["attempts"] == len(agents)


def test_a_worker_killed_while_ringing_an_agent_strands_nobody(
        desk: Flask, standin: StandinServer, database_url: str, redis_url: str,
        fast_ring: Path, tmp_path: Path) -> None:
    store = store_of(desk)
    agent = store.agent("ana", languages={"de": 2}, phone="+4930555010")
    caller = store.live("de")
    standin.inject_fault(r"/Calls\.json$", None, delay_seconds=25)  # Twilio hangs on the ring
    env = env_of(database_url, redis_url, standin, fast_ring)
    enqueue_route_job(Redis.from_url(redis_url))
    with worker(env, tmp_path / "killed.log") as doomed:
        # the claim commits first, then the offer: wait for the ring itself
        [first] = wait_for(lambda: _offers(desk), 20, "the worker to ring the agent")
        assert offered(desk) == 1 and first.agent_call_sid is None  # mid-ring
        os.killpg(doomed.pid, signal.SIGKILL)
    with worker(env, tmp_path / "next.log"):
        # the reconciler ends the ring nobody reported on and the sweep rings again
        second = wait_for(lambda: _offers(desk)[1:], 40, "a new ring for the caller")
    offers = _offers(desk)
    assert [offer.stage for offer in offers[:1]] == ["abandoned"]
    assert offers[0].ended_at is not None and offers[0].ended_at <= second[0].started_at
    assert (second[0].live_call_id, second[0].agent_id) == (caller, agent)
    with desk.extensions["ivr.sessions"]() as session:
        call = session.get(LiveCall, caller)
        assert call is not None and (call.status, call.offers) == ("offered", 2)


def _offers(app: Flask) -> list[LiveOffer]:
    with app.extensions["ivr.sessions"]() as session:
        return list(session.scalars(select(LiveOffer).order_by(LiveOffer.id)))


def every_claim_rings(app: Flask) -> bool:
    """Whether every caller claimed for an agent has that agent's phone ringing or talking."""
    with app.extensions["ivr.sessions"]() as session:
        claimed = set(session.scalars(select(LiveCall.id).where(LiveCall.status == "offered")))
        ringing = set(session.scalars(select(LiveOffer.live_call_id).where(
            LiveOffer.stage.in_(LIVE_OFFER_STAGES))))
        return claimed <= ringing and not stuck_callers(session)


def routed_everyone(app: Flask) -> bool:
    """Whether callers are being rung for and none waits while a qualified agent is free."""
    with app.extensions["ivr.sessions"]() as session:
        return offered(app) > 0 and not stuck_callers(session)


def test_callers_whose_routing_jobs_redis_lost_are_routed_by_the_sweep(
        desk: Flask, standin: StandinServer, database_url: str, redis_url: str,
        shipped_ring: Path, tmp_path: Path) -> None:
    store = store_of(desk)
    agents, _ = staff_and_callers(store, agents=6, callers=10, seed=3)
    connection = Redis.from_url(redis_url)
    for agent_id in agents:
        enqueue_route_job(connection, agent_id)
    connection.flushall()  # Redis restarted before any worker took the jobs
    with worker(env_of(database_url, redis_url, standin, shipped_ring), tmp_path / "w.log"):
        wait_for(lambda: routed_everyone(desk), 15, "the periodic sweep to route")
    check_nothing_twice(desk, standin)


def test_cut_database_connections_neither_lose_nor_double_a_caller(
        desk: Flask, standin: StandinServer, database_url: str, redis_url: str,
        shipped_ring: Path, tmp_path: Path) -> None:
    # this test's own writes come from connections the cuts spare
    own = make_engine(database_url, connect_args={"application_name": "test-setup"})
    store = Store(make_session_factory(own), runtime.claim_engine(), utcnow())
    staff_and_callers(store, agents=10, callers=0, seed=5)
    connection = Redis.from_url(redis_url)
    name = database_url.rsplit("/", 1)[-1]
    env = env_of(database_url, redis_url, standin, shipped_ring)
    arriving = threading.Event()

    def cut_connections() -> None:  # PostgreSQL restarting, again and again
        with psycopg.connect(_psycopg_dsn(database_url), autocommit=True) as admin:
            while not arriving.wait(0.15):
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid() "
                              "AND application_name <> 'test-setup'", (name,))

    with worker(env, tmp_path / "a.log"), worker(env, tmp_path / "b.log"):
        cutter = threading.Thread(target=cut_connections)
        cutter.start()
        try:
            for n in range(30):
                store.live(LANGUAGES[n % 3], due_in=n)
                enqueue_route_job(connection)
                time.sleep(0.1)
        finally:
            arriving.set()
            cutter.join()
        enqueue_route_job(connection)
        wait_for(lambda: routed_everyone(desk), 15, "every caller a free agent can take")
        # a router whose connection was cut between its claim and the ring leaves the caller
        # claimed with no ring: the workers' reconciler puts them back and routes them again
        wait_for(lambda: every_claim_rings(desk), 30, "the reconciler to settle the claims")
    own.dispose()
    check_nothing_twice(desk, standin)
