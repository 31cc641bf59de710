"""Matching: which item a free agent gets (language, topic, level, aging, kinds of item) and
which free agent goes first. On PostgreSQL (one statement) and on SQLite (the demo)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from callbacks.db import make_claim_engine, make_engine, make_session_factory, utcnow
from callbacks.priority import RoutingRules
from callbacks.workqueue.agents import Agent, create_agent
from callbacks.workqueue.callback_requests import CallbackRequest
from callbacks.workqueue.live_calls import LiveCall, LiveOffer
from callbacks.workqueue.matching import Assignment, assign_next, rank
from callbacks.workqueue.router import route_sweep
from callbacks.workqueue.skills import set_skills
from ivr.standin import StandinServer
from tests.conftest import desk_app

RULES = RoutingRules(topic_preference=timedelta(minutes=2), level_bonus=timedelta(seconds=10))


@dataclass
class Store:
    """A migrated database: sessions for setting up, the engine claims run on."""

    sessions: sessionmaker[Session]
    claims: Engine
    now: datetime

    def agent(self, name: str, languages: dict[str, int] | None = None,
              topics: dict[str, int] | None = None, availability: str = "available",
              mode: str = "progressive", idle_since: timedelta = timedelta(minutes=1),
              phone: str = "") -> int:
        """An agent with skills, free (or not) since `idle_since` ago."""
        with self.sessions() as session:
            agent = create_agent(session, name, "correct horse battery", dial_mode=mode,
                                 phone=phone or f"+4930555{len(name):02d}{ord(name[0]):03d}")
            agent.availability = availability
            agent.availability_since = self.now - idle_since
            set_skills(session, agent.id, languages=languages or {}, topics=topics or {})
            session.commit()
            return agent.id

    def live(self, language: str, category: str = "", due_in: int = 0) -> int:
        """A caller waiting in line, due `due_in` seconds from now."""
        with self.sessions() as session:
            call = LiveCall(call_sid=f"CA{uuid.uuid4().hex}", caller="+4915100000000",
                            language=language, category=category, priority="P2", node="line",
                            queue_name="servicedesk", entered_at=self.now,
                            due_at=self.now + timedelta(seconds=due_in),
                            overflow_at=self.now + timedelta(minutes=10),
                            last_seen_at=self.now)
            session.add(call)
            session.commit()
            return call.id

    def callback(self, language: str, category: str = "other", due_in: int = 0,
                 assigned: int | None = None) -> int:
        """A callback request that may be dialled now, due `due_in` seconds from now."""
        with self.sessions() as session:
            request = CallbackRequest(
                caller=f"+49151{uuid.uuid4().int % 10**8:08d}", category=category,
                language=language, priority="P2", first_call_sid="CA1", last_call_sid="CA1",
                first_contact_at=self.now, due_at=self.now + timedelta(seconds=due_in),
                available_at=self.now - timedelta(seconds=1), assigned_agent_id=assigned)
            session.add(request)
            session.commit()
            return request.id

    def assign(self, agent_id: int) -> Assignment | None:
        """What the agent gets now."""
        return assign_next(self.claims, agent_id, self.now, RULES, uuid.uuid4().hex)

    def availability(self, agent_id: int) -> str:
        """The agent's state now."""
        with self.sessions() as session:
            return str(session.scalar(select(Agent.availability).where(Agent.id == agent_id)))


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same rule on PostgreSQL (the test database) and on a migrated SQLite file."""
    from ivr.schema import upgrade

    if request.param == "postgresql":
        app: Flask = request.getfixturevalue("app")
        url = app.config["DATABASE_URL"]
    else:
        url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
        upgrade(url)
    engine, claims = make_engine(url), make_claim_engine(url)
    yield Store(make_session_factory(engine), claims, utcnow())
    engine.dispose()
    claims.dispose()


def test_the_language_must_match(store: Store) -> None:
    polish = store.live("pl", due_in=-300)
    german = store.live("de", due_in=0)
    ana = store.agent("ana", languages={"de": 2})
    got = store.assign(ana)
    assert got is not None and (got.kind, got.item.id) == ("live", german)
    assert store.availability(ana) == "on_call"
    ben = store.agent("ben", languages={"ru": 2})
    assert store.assign(ben) is None  # only a Polish caller waits
    assert store.availability(ben) == "available"  # the claim changed nothing
    piotr = store.agent("piotr", languages={"pl": 3})
    got = store.assign(piotr)
    assert got is not None and got.item.id == polish


def test_an_item_without_a_language_is_open_to_everyone_and_no_language_gets_nothing_else(
        store: Store) -> None:
    unknown = store.live("", due_in=60)
    store.live("en", due_in=0)
    nobody = store.agent("nobody")
    got = store.assign(nobody)
    assert got is not None and got.item.id == unknown


def test_the_agents_topic_is_preferred_within_the_preference(store: Store) -> None:
    store.live("de", "network", due_in=0)
    password = store.live("de", "password", due_in=90)
    ana = store.agent("ana", languages={"de": 2}, topics={"password": 1})
    got = store.assign(ana)
    assert got is not None and got.item.id == password


def test_the_level_on_the_topic_breaks_ties(store: Store) -> None:
    network = store.live("de", "network", due_in=0)
    password = store.live("de", "password", due_in=15)
    expert = store.agent("ana", languages={"de": 2}, topics={"password": 3, "network": 1})
    got = store.assign(expert)  # password ranks 15 - 30 = -15 s, network 0 - 10 = -10 s
    assert got is not None and got.item.id == password
    other = store.agent("ben", languages={"de": 2}, topics={"password": 1, "network": 3})
    got = store.assign(other)
    assert got is not None and got.item.id == network


def test_aging_beats_the_topic(store: Store) -> None:
    old = store.live("de", "network", due_in=-300)  # overdue by five minutes
    store.live("de", "password", due_in=0)
    ana = store.agent("ana", languages={"de": 2}, topics={"password": 3})
    got = store.assign(ana)
    assert got is not None and got.item.id == old


def test_live_callers_and_callbacks_are_one_queue(store: Store) -> None:
    callback = store.callback("de", due_in=-60)
    live = store.live("de", due_in=0)
    ana = store.agent("ana", languages={"de": 2})
    got = store.assign(ana)
    assert got is not None and (got.kind, got.item.id) == ("callback", callback)
    assert got.item.attempts == 1
    ben = store.agent("ben", languages={"de": 2})
    got = store.assign(ben)
    assert got is not None and (got.kind, got.item.id) == ("live", live)


def test_at_the_same_due_time_the_caller_on_the_line_goes_first(store: Store) -> None:
    store.callback("de", due_in=30)
    live = store.live("de", due_in=30)
    got = store.assign(store.agent("ana", languages={"de": 2}))
    assert got is not None and (got.kind, got.item.id) == ("live", live)


def test_preview_agents_get_live_callers_but_choose_callbacks_themselves(store: Store) -> None:
    store.callback("de", due_in=-600)
    preview = store.agent("ana", languages={"de": 2}, mode="preview")
    assert store.assign(preview) is None
    live = store.live("de", due_in=0)
    got = store.assign(preview)
    assert got is not None and got.item.id == live


def test_a_reserved_callback_waits_for_its_agent(store: Store) -> None:
    ben = store.agent("ben", languages={"de": 2}, availability="away")
    reserved = store.callback("de", assigned=ben)
    ana = store.agent("ana", languages={"de": 2})
    assert store.assign(ana) is None
    with store.sessions() as session:
        agent = session.get(Agent, ben)
        assert agent is not None
        agent.availability = "available"
        session.commit()
    got = store.assign(ben)
    assert got is not None and got.item.id == reserved


@pytest.mark.parametrize("state", ["away", "on_call", "wrap_up", "offline"])
def test_an_agent_who_is_not_available_gets_nothing(store: Store, state: str) -> None:
    store.live("de")
    agent = store.agent("ana", languages={"de": 2}, availability=state)
    assert store.assign(agent) is None
    assert store.availability(agent) == state


def test_an_agent_without_a_phone_gets_nothing(store: Store) -> None:
    store.live("de")
    with store.sessions() as session:
        agent = create_agent(session, "ana", "correct horse battery")
        agent.availability = "available"
        set_skills(session, agent.id, languages={"de": 2})
        session.commit()
        agent_id = agent.id
    assert store.assign(agent_id) is None


def test_an_item_is_taken_once(store: Store) -> None:
    store.live("de")
    first = store.assign(store.agent("ana", languages={"de": 2}))
    second = store.assign(store.agent("ben", languages={"de": 2}))
    assert first is not None and second is None


def test_rank_is_the_due_time_shifted_by_topic_and_level() -> None:
    due = datetime(2026, 6, 10, 10, 0)
    assert rank(due, "vdi", {}, RULES) == due + timedelta(minutes=2)
    assert rank(due, "vdi", {"vdi": 2}, RULES) == due - timedelta(seconds=20)


# --- which free agent first ------------------------------------------------------------------


@pytest.fixture
def desk(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    """The app placing calls through the stand-in (a sweep rings agents)."""
    with desk_app(database_url, redis_url, standin) as app:
        yield app


def desk_store(app: Flask) -> Store:
    """A Store on the desk app's database."""
    from callbacks import runtime

    return Store(app.extensions["ivr.sessions"], runtime.claim_engine(), utcnow())


def test_the_agent_idle_longest_is_rung_first(desk: Flask, standin: StandinServer) -> None:
    store = desk_store(desk)
    store.agent("recent", languages={"de": 2}, idle_since=timedelta(seconds=5),
                phone="+4930555001")
    longest = store.agent("longest", languages={"de": 2}, idle_since=timedelta(minutes=9),
                          phone="+4930555002")
    caller = store.live("de")
    assert route_sweep() == {"live": [caller], "callbacks": []}
    [call] = standin.calls()
    assert call.to == "+4930555002"
    with store.sessions() as session:
        offer = session.scalar(select(LiveOffer))
        assert offer is not None and (offer.agent_id, offer.stage) == (longest, "ringing_agent")
        assert offer.agent_call_sid == call.sid
        assert call.url is not None and call.url.endswith(f"/dialer/live/agent?offer={offer.id}")
        assert call.params.get("Timeout") == "20"


def test_a_sweep_rings_every_free_qualified_agent_once(desk: Flask,
                                                       standin: StandinServer) -> None:
    store = desk_store(desk)
    for index, language in enumerate(["de", "de", "pl", "en"]):
        store.agent(f"agent{index}", languages={language: 2}, phone=f"+493055501{index}")
    store.agent("away", languages={"de": 2}, availability="away", phone="+4930555020")
    store.agent("busy", languages={"de": 2}, availability="on_call", phone="+4930555021")
    store.agent("wrapping", languages={"de": 2}, availability="wrap_up", phone="+4930555022")
    calls = [store.live("de", due_in=due) for due in (0, 10, 20)] + [store.live("ru")]
    routed = route_sweep()
    assert sorted(routed["live"]) == sorted(calls[:2])  # two German agents; nobody speaks ru
    rung = sorted(call.to for call in standin.calls())
    assert rung == ["+4930555010", "+4930555011"]
    with store.sessions() as session:
        waiting = session.scalars(select(LiveCall.id).where(LiveCall.status == "waiting")).all()
    assert sorted(waiting) == sorted(calls[2:])


def test_nothing_waiting_means_no_agent_is_touched(desk: Flask, standin: StandinServer) -> None:
    store = desk_store(desk)
    agent = store.agent("ana", languages={"de": 2})
    assert route_sweep() == {"live": [], "callbacks": []}
    assert store.availability(agent) == "available" and standin.calls() == []

