"""The chaos run's live-caller counts (benchmarks/chaos_line.py) find what they must: a caller
left waiting while a qualified agent is free, a caller bridged twice, an agent rung twice at
once, a ring for a caller already bridged, a caller still in line after the run; and a clean
run counts nothing. Rows are written straight into the test database (the counts read SQL
only)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask

from benchmarks.chaos_line import (
    AGENTS,
    StuckWatch,
    chaos_priorities,
    count_live,
    queue_script,
)
from benchmarks.chaos_stack import psycopg_dsn
from callbacks.db import utcnow
from callbacks.priority import load_policy
from callbacks.workqueue.agents import create_agent
from callbacks.workqueue.attempts import CallbackAttempt
from callbacks.workqueue.callback_requests import CallbackRequest
from callbacks.workqueue.live_calls import LiveCall, LiveOffer
from callbacks.workqueue.skills import set_skills


@dataclass
class Heard:
    """What a simulated caller in line experienced (the fields count_live reads)."""

    call_sid: str
    kind: str = "queue"
    enqueued: bool = True
    conferences: int = 1


@pytest.fixture
def line(app: Flask) -> Flask:
    """The app on the test database (emptied afterwards)."""
    return app


def agent(app: Flask, name: str, availability: str, free_for: timedelta) -> int:
    with app.extensions["ivr.sessions"]() as session:
        account = create_agent(session, name, "correct horse battery", phone="+4930555077")
        account.availability = availability
        account.availability_since = utcnow() - free_for
        set_skills(session, account.id, languages={"ko": 2})
        session.commit()
        return account.id


def live_call(app: Flask, status: str, waited: timedelta, language: str = "ko",
              offers: tuple[tuple[int, str, timedelta, timedelta | None], ...] = ()) -> str:
    """A live call; each offer is (agent, stage, started after joining, answered after)."""
    now = utcnow()
    entered = now - waited
    sid = f"CA{uuid.uuid4().hex}"
    with app.extensions["ivr.sessions"]() as session:
        call = LiveCall(call_sid=sid, caller="+821050000001", language=language,
                        category="network", priority="P1", node="line", queue_name="chaos-line",
                        status=status, entered_at=entered, due_at=entered + timedelta(seconds=20),
                        overflow_at=entered + timedelta(seconds=25), last_seen_at=now,
                        answered_at=entered + timedelta(seconds=5) if status == "done" else None)
        session.add(call)
        session.flush()
        for agent_id, stage, started, answered in offers:
            session.add(LiveOffer(
                live_call_id=call.id, agent_id=agent_id, stage=stage,
                started_at=entered + started,
                answered_at=entered + answered if answered is not None else None,
                ended_at=entered + started + timedelta(seconds=3)))
        session.commit()
    return sid


def counted(app: Flask, results: list[Any], watch: StuckWatch) -> Any:
    with psycopg.connect(psycopg_dsn(app.config["DATABASE_URL"])) as conn:
        return count_live(conn, results, watch, [])


def test_a_clean_line_counts_its_callers_and_nothing_lost_or_twice(line: Flask) -> None:
    ana = agent(line, "ana", "available", timedelta(minutes=5))
    ben = agent(line, "ben", "wrap_up", timedelta(seconds=1))
    answered = live_call(line, "done", timedelta(minutes=2),
                         offers=((ben, "agent_no_answer", timedelta(seconds=1), None),
                                 (ana, "completed", timedelta(seconds=5),
                                  timedelta(seconds=6))))
    gone = live_call(line, "abandoned", timedelta(minutes=1))
    watch = StuckWatch(line.config["DATABASE_URL"], seconds=0)
    watch.sample()
    counts = counted(line, [Heard(answered), Heard(gone, "queue_hangup", conferences=0)], watch)
    assert (counts.callers, counts.bridged, counts.abandoned) == (2, 1, 1)
    assert counts.offers_by_outcome == {"agent_no_answer": 1, "completed": 1}
    assert (counts.lost, counts.duplicated) == (0, 0), counts.detail


def test_a_caller_waiting_while_a_qualified_agent_is_free_is_lost(line: Flask) -> None:
    agent(line, "ana", "available", timedelta(minutes=5))
    agent(line, "ben", "away", timedelta(minutes=5))
    live_call(line, "waiting", timedelta(minutes=1))
    live_call(line, "waiting", timedelta(minutes=1), language="de")  # nobody speaks German
    watch = StuckWatch(line.config["DATABASE_URL"], seconds=0)
    watch.sample()
    counts = counted(line, [], watch)
    assert counts.detail["stuck_with_a_free_agent"] == 1
    assert counts.detail["not_final"] == 2 and counts.lost == 3


def test_a_caller_bridged_twice_and_a_ring_after_the_bridge_are_duplicates(line: Flask) -> None:
    ana = agent(line, "ana", "wrap_up", timedelta(seconds=1))
    ben = agent(line, "ben", "wrap_up", timedelta(seconds=1))
    twice = live_call(line, "done", timedelta(minutes=2), offers=(
        (ana, "completed", timedelta(seconds=1), timedelta(seconds=2)),
        (ben, "completed", timedelta(seconds=30), timedelta(seconds=31))))
    counts = counted(line, [Heard(twice, conferences=2)],
                     StuckWatch(line.config["DATABASE_URL"]))
    assert counts.detail["bridged_twice"] == 1 and counts.detail["conferences_twice"] == 1
    assert counts.detail["offer_after_bridge"] == 1
    assert counts.duplicated == 3


def test_an_agent_rung_for_a_caller_during_a_callback_is_rung_twice_at_once(
        line: Flask) -> None:
    ana = agent(line, "ana", "on_call", timedelta(seconds=1))
    live_call(line, "done", timedelta(minutes=2),
              offers=((ana, "completed", timedelta(seconds=1), timedelta(seconds=2)),))
    now = utcnow()
    with line.extensions["ivr.sessions"]() as session:
        request = CallbackRequest(caller="+821050000002", category="password", language="ko",
                                  priority="P2", first_call_sid="CA1", last_call_sid="CA1",
                                  first_contact_at=now, due_at=now, available_at=now,
                                  status="done")
        session.add(request)
        session.flush()
        session.add(CallbackAttempt(request_id=request.id, agent_id=ana, stage="completed",
                                    started_at=now - timedelta(minutes=2) + timedelta(seconds=2),
                                    ended_at=now))
        session.commit()
    counts = counted(line, [], StuckWatch(line.config["DATABASE_URL"]))
    assert counts.detail["agent_rung_twice_at_once"] == 1 and counts.duplicated == 1


def test_the_chaos_line_settings_and_scripts(tmp_path: Path) -> None:
    policy = load_policy(str(chaos_priorities(tmp_path)))
    assert policy.live.level("P1").target == timedelta(seconds=20)
    assert policy.live.level("P1").max_wait == timedelta(seconds=25)
    assert policy.routing.ring_seconds == 10
    assert len({phone for _, _, phone in AGENTS}) == 2
    rng = random.Random(1)
    assert queue_script("queue", rng) == ["4"]
    assert queue_script("queue_hangup", rng)[-1] == "hangup"
    assert queue_script("queue_callback", rng)[-2:] == ["1", "1"]
