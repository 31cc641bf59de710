"""The router's claim order is the documented matching rule: a property test on PostgreSQL.

Random live callers and callbacks (priorities, first contacts, windows, snoozes, reservations,
languages and topics) and a random agent (languages, topics and levels, dial mode, rules): an
agent who is free again after each claim takes items through `assign_next` (the claim the
router makes) in exactly the order a plain `sorted()` of the rule gives, now and later, when
windows and snoozes have opened.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, text, update
from sqlalchemy.orm import Session, sessionmaker

from callbacks.db import make_claim_engine
from callbacks.priority import RoutingRules
from callbacks.tickets.ticket import TicketEvent
from callbacks.workqueue.agents import Agent
from callbacks.workqueue.callback_requests import CallbackAsk, CallbackRequest, request_callback
from callbacks.workqueue.live_calls import LiveCall
from callbacks.workqueue.matching import assign_next
from callbacks.workqueue.skills import AgentSkill, set_skills

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
CALLBACK_SLA = {"P1": timedelta(minutes=15), "P2": timedelta(hours=1),
                "P3": timedelta(hours=4), "P4": timedelta(hours=24)}
LIVE_TARGET = {"P1": timedelta(seconds=60), "P2": timedelta(minutes=2),
               "P3": timedelta(minutes=3), "P4": timedelta(minutes=5)}
RANK = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}
LANGUAGES = ["de", "en", "pl"]
TOPICS = ["network", "password", "vdi"]
ITEM_LANGUAGES = ["de", "de", "en", "", "ru"]
"""Mostly German, so items often compete in one language; nobody here speaks Russian."""


@dataclass
class Item:
    """What the reference knows of an item: as the README's matching rule reads it."""

    kind: str
    id: int
    language: str
    category: str
    due_at: datetime
    available_at: datetime
    reserved: str  # '' (anyone), 'me', 'other'


def key(item: Item, topics: dict[str, int], rules: RoutingRules
        ) -> tuple[datetime, datetime, int, int]:
    """The rule: rank (due, later unless the agent knows the topic, sooner per level), then
    the due time, then a caller on the line before a callback, then the id."""
    level = topics.get(item.category)
    shift = rules.topic_preference if level is None else -level * rules.level_bonus
    return (item.due_at + shift, item.due_at, 0 if item.kind == "live" else 1, item.id)


def qualifies(item: Item, languages: set[str], progressive: bool, moment: datetime) -> bool:
    """The language must match (no language: open to everyone); a callback needs a
    progressive agent, no reservation for someone else, and may be dialled now."""
    if item.language and item.language not in languages:
        return False
    if item.kind == "live":
        return True
    return progressive and item.reserved != "other" and item.available_at <= moment


# Due times on a coarse grid (the first contact follows from the priority's target), so due
# times, ranks and window openings often tie and every tie-break is exercised.
due_in = st.integers(-6, 6).map(lambda m: timedelta(minutes=m))
live_caller = st.fixed_dictionaries({
    "kind": st.just("live"),
    "priority": st.sampled_from(sorted(LIVE_TARGET)),
    "due_in": due_in,
    "language": st.sampled_from(ITEM_LANGUAGES),
    "category": st.sampled_from([*TOPICS, "other", ""]),
})
callback = st.fixed_dictionaries({
    "kind": st.just("callback"),
    "priority": st.sampled_from(sorted(CALLBACK_SLA)),
    "due_in": due_in,
    "language": st.sampled_from(ITEM_LANGUAGES),
    "category": st.sampled_from([*TOPICS, "other"]),
    "window_minutes": st.one_of(st.none(), st.sampled_from([-10, 0, 3, 10])),
    "snooze_minutes": st.one_of(st.none(), st.sampled_from([3, 10, 30])),
    "reserved": st.sampled_from(["", "", "me", "other"]),
})
agent_skills = st.fixed_dictionaries({
    "languages": st.dictionaries(st.sampled_from(LANGUAGES), st.integers(1, 3), min_size=1,
                                 max_size=3),
    "topics": st.dictionaries(st.sampled_from(TOPICS), st.integers(1, 3), min_size=1,
                              max_size=3),
    "progressive": st.booleans(),
    "preference_seconds": st.sampled_from([120, 30, 0]),
    "bonus_seconds": st.sampled_from([10, 60, 0]),
})


@pytest.fixture
def claims(app: Flask) -> Iterator[Engine]:
    """The engine the router's claims run on, for the test database."""
    engine = make_claim_engine(app.config["DATABASE_URL"])
    yield engine
    engine.dispose()


def start_over(sessions: sessionmaker[Session]) -> tuple[int, int]:
    """No items, and two agents: the one who claims and a colleague (busy, holding
    reservations); their ids."""
    with sessions() as session:
        session.execute(delete(TicketEvent))
        session.execute(delete(LiveCall))
        session.execute(delete(CallbackRequest))
        session.execute(delete(AgentSkill))
        session.execute(delete(Agent))
        for table in ("live_calls", "callback_requests"):  # ids from 1: examples are exact
            session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1,"
                                 " false)"))
        me = Agent(username="me", password_hash="", phone="+4930555001",
                   availability="available", availability_since=NOW - timedelta(minutes=5))
        other = Agent(username="other", password_hash="", phone="+4930555002",
                      availability="away", availability_since=NOW)
        session.add_all([me, other])
        session.commit()
        return me.id, other.id


def add_items(sessions: sessionmaker[Session], wishes: list[dict[str, Any]], me: int,
              other: int) -> list[Item]:
    """The items as production makes them (callbacks through the intake, snoozes through the
    desk); what the reference needs to know of each."""
    from callbacks.desk import snooze_callback

    items = []
    with sessions() as session:
        colleague = session.get(Agent, other)
        assert colleague is not None
        for n, wish in enumerate(wishes):
            due = NOW + wish["due_in"]
            if wish["kind"] == "live":
                first_contact = due - LIVE_TARGET[wish["priority"]]
                call = LiveCall(call_sid=f"CA{uuid.uuid4().hex}", caller=f"+49151{n:08d}",
                                language=wish["language"], category=wish["category"],
                                priority=wish["priority"], node="line",
                                queue_name="servicedesk", entered_at=first_contact, due_at=due,
                                overflow_at=NOW + timedelta(hours=1), last_seen_at=NOW)
                session.add(call)
                session.flush()
                items.append(Item("live", call.id, call.language, call.category, due, NOW, ""))
                continue
            first_contact = due - CALLBACK_SLA[wish["priority"]]
            opens = first_contact
            if wish["window_minutes"] is not None:  # the caller chose a window
                opens = NOW + timedelta(minutes=wish["window_minutes"])
                due = max(due, opens)
            request = request_callback(session, CallbackAsk(
                caller=f"+49152{n:08d}", category=wish["category"], language=wish["language"],
                priority=wish["priority"], reasons="", call_sid=f"CA{n:032d}", due_at=due,
                available_at=opens, first_contact_at=first_contact,
                window=None if wish["window_minutes"] is None else "later"), RANK)
            request.assigned_agent_id = {"": None, "me": me, "other": other}[wish["reserved"]]
            session.commit()
            if wish["snooze_minutes"] is not None:  # an agent snoozed it from the console
                opens = NOW + timedelta(minutes=wish["snooze_minutes"])
                snooze_callback(session, request.id, opens, colleague, now=NOW)
            items.append(Item("callback", request.id, wish["language"], wish["category"], due,
                              opens, wish["reserved"]))
        session.commit()
    return items


def live(due_in: int, language: str = "de", category: str = "other") -> dict[str, Any]:
    """A caller on the line, due `due_in` minutes from now (for the fixed examples)."""
    return {"kind": "live", "priority": "P2", "due_in": timedelta(minutes=due_in),
            "language": language, "category": category}


def call_back(due_in: int, language: str = "de", category: str = "other", *,
              window: int | None = None, snooze: int | None = None,
              reserved: str = "") -> dict[str, Any]:
    """A callback request due `due_in` minutes from now (for the fixed examples)."""
    return {"kind": "callback", "priority": "P1", "due_in": timedelta(minutes=due_in),
            "language": language, "category": category, "window_minutes": window,
            "snooze_minutes": snooze, "reserved": reserved}


def skilled(languages: dict[str, int], topics: dict[str, int], preference: int = 120,
            bonus: int = 10, progressive: bool = True) -> dict[str, Any]:
    """An agent's skills and the rules (for the fixed examples)."""
    return {"languages": languages, "topics": topics, "progressive": progressive,
            "preference_seconds": preference, "bonus_seconds": bonus}


@settings(max_examples=int(os.environ.get("IVR_MATCHING_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
# Every part of the rule once for sure, whatever the random examples hit:
# equal ranks go to the earlier due time (the later one has the lower id) ...
@example(wishes=[live(2, category="network"), live(0)],
         skills=skilled({"de": 1}, {"network": 1}, bonus=0), later_minutes=3)
# ... then to the caller on the line (the callback has the lower id) ...
@example(wishes=[live(0, "ru"), call_back(0), live(0)],
         skills=skilled({"de": 1}, {"network": 1}), later_minutes=3)
# ... an item of the agent's topic due later than the language's first item, per kind ...
@example(wishes=[live(0), live(1, category="network"), call_back(0, "en"),
                 call_back(1, "en", "network")],
         skills=skilled({"de": 1, "en": 2}, {"network": 1}), later_minutes=3)
# ... and a window or snooze opening exactly now or later, reservations, unknown languages.
@example(wishes=[call_back(5, window=0), call_back(-5, snooze=3), call_back(-6, window=3),
                 call_back(-6, reserved="other"), call_back(6, reserved="me"), live(4, ""),
                 call_back(-4, "")],
         skills=skilled({"de": 1}, {"vdi": 3}), later_minutes=3)
@given(wishes=st.lists(st.one_of(live_caller, callback), min_size=3, max_size=12),
       skills=agent_skills, later_minutes=st.sampled_from([3, 10, 20]))
def test_an_agent_claims_items_in_the_order_of_a_plain_sort_of_the_rule(
        app: Flask, claims: Engine, wishes: list[dict[str, Any]], skills: dict[str, Any],
        later_minutes: int) -> None:
    sessions: sessionmaker[Session] = app.extensions["ivr.sessions"]
    me, other = start_over(sessions)
    with sessions() as session:
        set_skills(session, me, languages=skills["languages"], topics=skills["topics"])
        session.execute(update(Agent).where(Agent.id == me).values(
            dial_mode="progressive" if skills["progressive"] else "preview"))
        session.commit()
    rules = RoutingRules(topic_preference=timedelta(seconds=skills["preference_seconds"]),
                         level_bonus=timedelta(seconds=skills["bonus_seconds"]))
    waiting = {(item.kind, item.id): item for item in add_items(sessions, wishes, me, other)}
    languages = set(skills["languages"])

    for moment in (NOW, NOW + timedelta(minutes=later_minutes)):
        reference = sorted(
            (item for item in waiting.values()
             if qualifies(item, languages, skills["progressive"], moment)),
            key=lambda item: key(item, skills["topics"], rules))
        claimed = []
        while (got := assign_next(claims, me, moment, rules, uuid.uuid4().hex)) is not None:
            claimed.append((got.kind, got.item.id))
            with sessions() as session:  # the call is over: the agent is free again
                session.execute(update(Agent).where(Agent.id == me)
                                .values(availability="available"))
                session.commit()
        assert claimed == [(item.kind, item.id) for item in reference], moment
        for taken in claimed:
            del waiting[taken]
