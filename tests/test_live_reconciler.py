"""The reconciler covers live callers: claims whose router died, rings Twilio never reported
on, callers the provider stopped holding, agents left on a call with nobody; and `ivr
reconcile` routes waiting callers to free agents. Real PostgreSQL, Redis and the stand-in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import select, update

from callbacks import runtime
from callbacks.db import utcnow
from callbacks.priority import RoutingRules
from callbacks.reconciler import ReconcileReport, reconcile
from callbacks.workqueue.agents import Agent
from callbacks.workqueue.live_calls import LiveCall, LiveOffer
from callbacks.workqueue.matching import assign_next
from callbacks.workqueue.router import route_sweep
from ivr.standin import StandinServer
from tests.conftest import PUBLIC_BASE_URL, desk_app, sign
from tests.test_matching import Store


@pytest.fixture
def desk(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    """The app placing calls through the stand-in."""
    with desk_app(database_url, redis_url, standin) as app:
        yield app


@pytest.fixture
def store(desk: Flask) -> Store:
    """Agents and callers written into the desk's database."""
    return Store(desk.extensions["ivr.sessions"], runtime.claim_engine(), utcnow())


def pass_of(app: Flask, redis_url: str, **options: Any) -> ReconcileReport:
    """One reconciler pass (without the routing sweep unless asked)."""
    with app.extensions["ivr.sessions"]() as session:
        return reconcile(session, Redis.from_url(redis_url), **options)


def row(app: Flask, model: type, ident: int) -> Any:
    """A row as stored now."""
    with app.extensions["ivr.sessions"]() as session:
        return session.get(model, ident)


def test_a_claim_whose_router_died_before_ringing_goes_back_in_line(
        desk: Flask, store: Store, redis_url: str) -> None:
    agent = store.agent("ana", languages={"de": 2})
    caller = store.live("de")
    taken = assign_next(store.claims, agent, utcnow(), RoutingRules(), uuid.uuid4().hex)
    assert taken is not None and taken.item.id == caller  # then the router was killed
    report = pass_of(desk, redis_url)
    assert report.live_calls_put_back == [] and report.agents_freed == []
    report = pass_of(desk, redis_url, grace=timedelta(seconds=-1))
    assert report.live_calls_put_back == [caller]
    assert report.agents_freed == [agent]
    call = row(desk, LiveCall, caller)
    assert call.status == "waiting" and call.claimed_by is None
    assert row(desk, Agent, agent).availability == "available"


def test_a_ring_twilio_never_reported_on_ends_and_the_caller_waits_again(
        desk: Flask, store: Store, redis_url: str, standin: StandinServer) -> None:
    agent = store.agent("ana", languages={"de": 2})
    caller = store.live("de")
    assert route_sweep()["live"] == [caller]
    report = pass_of(desk, redis_url, grace=timedelta(seconds=-1))  # the ring is recent
    assert report.live_offers_ended == []
    with desk.extensions["ivr.sessions"]() as session:  # no word for a minute
        session.execute(update(LiveOffer).values(started_at=utcnow() - timedelta(minutes=1)))
        session.commit()
    report = pass_of(desk, redis_url, grace=timedelta(seconds=0), ring_seconds=20)
    [offer_id] = report.live_offers_ended
    assert report.live_calls_put_back == [caller]
    offer = row(desk, LiveOffer, offer_id)
    assert offer.stage == "abandoned" and offer.ended_at is not None
    assert row(desk, LiveCall, caller).status == "waiting"
    assert row(desk, Agent, agent).availability == "available"
    assert route_sweep()["live"] == [caller]  # rung again, once
    assert len(standin.calls()) == 2


def test_a_conversation_never_reported_over_is_ended_after_hours(
        desk: Flask, store: Store, redis_url: str) -> None:
    agent = store.agent("ana", languages={"de": 2})
    caller = store.live("de")
    route_sweep()
    with desk.extensions["ivr.sessions"]() as session:
        session.execute(update(LiveOffer).values(stage="talking",
                                                 started_at=utcnow() - timedelta(hours=5)))
        session.execute(update(LiveCall).values(status="bridged", agent_id=agent))
        session.commit()
    report = pass_of(desk, redis_url)
    assert len(report.live_offers_ended) == 1
    assert row(desk, LiveCall, caller).status == "done"
    assert row(desk, Agent, agent).availability == "available"


def test_a_caller_whose_hold_loop_stopped_is_lost_with_their_wait_and_comes_back(
        desk: Flask, store: Store, redis_url: str) -> None:
    from tests.conftest import publish
    from tests.test_live_queue import ALWAYS_OPEN

    version = publish(desk, ALWAYS_OPEN)
    caller = store.live("de")
    with desk.extensions["ivr.sessions"]() as session:
        session.execute(update(LiveCall).values(
            entered_at=utcnow() - timedelta(minutes=9), node="password_queue",
            flow_version_id=version.id, last_seen_at=utcnow() - timedelta(minutes=6)))
        session.commit()
        call_sid = session.scalar(select(LiveCall.call_sid))
    report = pass_of(desk, redis_url)
    assert report.live_calls_lost == [caller]
    lost = row(desk, LiveCall, caller)
    assert lost.status == "lost" and 170 <= lost.wait_seconds <= 190
    store.agent("ana", languages={"de": 2}, availability="away")  # someone is signed in
    path = f"/voice/queue/wait?v={version.id}&n=password_queue&l=de&a=0&s=4"
    params = {"CallSid": str(call_sid), "QueueSid": "QU1", "QueueTime": "540"}
    answer = desk.test_client().post(path, data=params, headers={
        "X-Twilio-Signature": sign(PUBLIC_BASE_URL + path, params)})
    assert answer.status_code == 200 and b"<Say" in answer.data  # the caller was there after all
    assert row(desk, LiveCall, caller).status == "waiting"


def test_ivr_reconcile_reports_live_callers_and_routes_the_waiting_ones(
        desk: Flask, store: Store, standin: StandinServer) -> None:
    from ivr.cli import main

    agent = store.agent("ana", languages={"pl": 2})
    caller = store.live("pl")
    result = desk.test_cli_runner().invoke(main, ["reconcile"])
    assert result.exit_code == 0, result.output
    assert "live callers back in line: none; rings ended: none; callers lost: none" in \
        result.output
    assert f"routed now: live callers {caller}, callbacks none" in result.output
    [call] = standin.calls()
    assert call.to == row(desk, Agent, agent).phone


def test_a_router_that_stalled_past_the_reconciler_rings_nobody(
        desk: Flask, store: Store, redis_url: str, standin: StandinServer) -> None:
    from callbacks.workqueue.router import ring_agent

    agent = store.agent("ana", languages={"de": 2})
    caller = store.live("de")
    taken = assign_next(store.claims, agent, utcnow(), RoutingRules(), uuid.uuid4().hex)
    assert taken is not None  # ... and the router stalls here for minutes
    report = pass_of(desk, redis_url, grace=timedelta(seconds=-1))
    assert report.live_calls_put_back == [caller] and report.agents_freed == [agent]
    again = assign_next(store.claims, agent, utcnow(), RoutingRules(), uuid.uuid4().hex)
    assert again is not None  # another router claimed the caller for the agent again
    with runtime.sessions()() as session:
        stale = ring_agent(session, runtime.settings(), RoutingRules(),
                           session.get(Agent, agent), taken)  # the first router wakes up
    assert stale is None and standin.calls() == []
    assert row(desk, Agent, agent).availability == "on_call"  # still the second claim's
    assert row(desk, LiveCall, caller).claimed_by == again.claim


def test_twilio_refusing_to_ring_the_agent_keeps_the_caller_first_in_line(
        desk: Flask, store: Store, standin: StandinServer) -> None:
    agent = store.agent("ana", languages={"de": 2})
    caller = store.live("de")
    standin.inject_fault(r"/Calls\.json$", 400, times=1)
    assert route_sweep()["live"] == [caller]
    with desk.extensions["ivr.sessions"]() as session:
        offer = session.scalar(select(LiveOffer))
    assert offer is not None and offer.stage == "dial_error"
    call = row(desk, LiveCall, caller)
    assert (call.status, call.claimed_by) == ("waiting", None)
    assert row(desk, Agent, agent).availability == "available"
    assert route_sweep()["live"] == [caller]  # the next sweep rings
    assert len(standin.calls()) == 1
