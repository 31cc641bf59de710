"""The callback queue on PostgreSQL: deadline order, aging, windows, joins, atomic claims."""

from __future__ import annotations

import dataclasses
import os
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from callbacks.workqueue.callback_requests import (
    CallbackAsk,
    CallbackRequest,
    claim_next_callback,
    put_back,
    queue_place,
    request_callback,
)

RANK = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def ask(caller: str, priority: str, due_in: timedelta, *, category: str = "network",
        available_in: timedelta = timedelta(0), asked: datetime = NOW) -> CallbackAsk:
    return CallbackAsk(caller=caller, category=category, language="en", priority=priority,
                       reasons=f"menu: {priority}", call_sid="CA" + uuid.uuid4().hex,
                       due_at=asked + due_in, available_at=asked + available_in)


def add(app: Flask, *asks: CallbackAsk) -> list[int]:
    with app.extensions["ivr.sessions"]() as session:
        ids = [request_callback(session, a, RANK).id for a in asks]
        session.commit()
        return ids


def claim(app: Flask, who: str = "agent-1", now: datetime = NOW) -> CallbackRequest | None:
    with app.extensions["ivr.sessions"]() as session:
        return claim_next_callback(session, who, now)


def test_the_earliest_deadline_is_served_first(app: Flask) -> None:
    add(app, ask("+4915100000001", "P3", timedelta(hours=4)),
        ask("+4915100000002", "P1", timedelta(minutes=15)),
        ask("+4915100000003", "P2", timedelta(hours=1)))
    order = [claim(app) for _ in range(3)]
    assert [r.priority for r in order if r] == ["P1", "P2", "P3"]
    assert claim(app) is None


def test_an_aged_low_priority_request_overtakes_a_fresh_urgent_one(app: Flask) -> None:
    two_days_ago = NOW - timedelta(days=2)
    add(app, ask("+4915100000004", "P4", timedelta(hours=24), asked=two_days_ago),
        ask("+4915100000005", "P1", timedelta(minutes=15)))
    first = claim(app)
    assert first is not None and first.priority == "P4"  # its deadline passed a day ago


def test_a_request_is_invisible_until_its_window_opens(app: Flask) -> None:
    add(app, ask("+4915100000006", "P1", timedelta(minutes=15),
                 available_in=timedelta(hours=4)))  # "call me after 14:00"
    assert claim(app, now=NOW + timedelta(hours=1)) is None
    taken = claim(app, now=NOW + timedelta(hours=4))
    assert taken is not None and taken.attempts == 1


def test_a_repeat_caller_joins_the_open_request_and_raises_it(app: Flask) -> None:
    first, again = add(app, ask("+4915100000007", "P3", timedelta(hours=4)),
                       ask("+4915100000007", "P2", timedelta(hours=1)))
    assert first == again
    with app.extensions["ivr.sessions"]() as session:
        assert session.scalar(select(func.count()).select_from(CallbackRequest)) == 1
        request = session.get(CallbackRequest, first)
        assert request is not None
        assert (request.contacts, request.priority) == (2, "P2")
        assert request.due_at == NOW + timedelta(hours=1)
    other_problem = add(app, ask("+4915100000007", "P3", timedelta(hours=4),
                                 category="hardware"))
    assert other_problem != [first]


def test_a_callback_put_back_keeps_its_place(app: Flask) -> None:
    (first,) = add(app, ask("+4915100000008", "P2", timedelta(hours=1)))
    taken = claim(app)
    assert taken is not None and taken.id == first
    with app.extensions["ivr.sessions"]() as session:
        put_back(session, first, available_at=NOW + timedelta(minutes=5))
        session.commit()
    assert claim(app, now=NOW + timedelta(minutes=1)) is None  # backoff
    again = claim(app, now=NOW + timedelta(minutes=5))
    assert again is not None and again.id == first and again.attempts == 2
    assert again.first_contact_at == taken.first_contact_at  # never reset


def test_concurrent_claimers_never_get_the_same_callback(app: Flask) -> None:
    callers = [f"+49151{n:08d}" for n in range(300)]
    with app.extensions["ivr.sessions"]() as session:
        session.add_all([
            CallbackRequest(caller=c, category="network", language="en", priority="P3",
                            reasons="", first_call_sid=f"CA{n:032d}", contacts=1,
                            status="pending", first_contact_at=NOW,
                            due_at=NOW + timedelta(seconds=n), available_at=NOW)
            for n, c in enumerate(callers)])
        session.commit()
    claimed: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def claimer(name: str) -> None:
        try:
            while True:
                with app.extensions["ivr.sessions"]() as session:
                    request = claim_next_callback(session, name, NOW)
                if request is None:
                    return
                with lock:
                    claimed.append(request.id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(f"worker-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(claimed) == 300 and len(set(claimed)) == 300


def test_simultaneous_requests_of_one_caller_make_one_request(app: Flask) -> None:
    barrier = threading.Barrier(6)
    ids: list[int] = []

    def ask_at_once(priority: str) -> None:
        barrier.wait()
        with app.extensions["ivr.sessions"]() as session:
            ids.append(request_callback(session, ask("+4915100000009", priority,
                                                     timedelta(hours=1)), RANK).id)
            session.commit()

    threads = [threading.Thread(target=ask_at_once, args=(p,))
               for p in ("P3", "P2", "P3", "P1", "P3", "P4")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1
    with app.extensions["ivr.sessions"]() as session:
        request = session.scalars(select(CallbackRequest)).one()
        assert (request.contacts, request.priority) == (6, "P1")


def test_the_same_call_delivered_twice_counts_once(app: Flask) -> None:
    once = ask("+4915100000010", "P3", timedelta(hours=4))
    first, again = add(app, once, once)
    assert first == again
    with app.extensions["ivr.sessions"]() as session:
        request = session.get(CallbackRequest, first)
        assert request is not None and request.contacts == 1


def test_the_place_in_line_follows_deadlines_and_a_join_updates_number_and_window(
        app: Flask) -> None:
    first, second, third = add(app, ask("+4915100000011", "P3", timedelta(hours=4)),
                               ask("+4915100000012", "P1", timedelta(minutes=15)),
                               ask("+4915100000013", "P3", timedelta(hours=4)))
    later = dataclasses.replace(ask("+4915100000011", "P3", timedelta(hours=8),
                                    available_in=timedelta(hours=6)),
                                dial_number="+4915199999999", window="afternoon")
    (joined,) = add(app, later)
    with app.extensions["ivr.sessions"]() as session:
        places = {i: queue_place(session, session.get(CallbackRequest, i))
                  for i in (first, second, third)}
        request = session.get(CallbackRequest, first)
        assert request is not None and joined == first
        assert (request.dial_number, request.window) == ("+4915199999999", "afternoon")
        assert request.available_at == NOW + timedelta(hours=6)
        assert request.due_at == NOW + timedelta(hours=6)  # never before the window opens
    assert places == {second: 1, third: 2, first: 3}  # its own later window moved it back


def test_a_row_another_claimer_holds_is_skipped_not_waited_for(app: Flask) -> None:
    first, second = add(app, ask("+4915100000021", "P1", timedelta(minutes=15)),
                        ask("+4915100000022", "P3", timedelta(hours=4)))
    taken: list[CallbackRequest | None] = []
    holder = app.extensions["ivr.engine"].connect()
    holding = holder.begin()
    try:
        # Another claimer's transaction holds the most urgent row (as mid-claim).
        locked = holder.execute(select(CallbackRequest.id).where(CallbackRequest.id == first)
                                .with_for_update()).scalar_one()
        assert locked == first
        claimer = threading.Thread(target=lambda: taken.append(claim(app, "agent-2")))
        claimer.start()
        claimer.join(timeout=10)
        blocked = claimer.is_alive()
    finally:
        holding.rollback()
        holder.close()
    claimer.join(timeout=10)
    assert not blocked, "the second claimer waited for the held row instead of skipping it"
    assert taken and taken[0] is not None and taken[0].id == second
    after = claim(app, "agent-3")  # once released, the held row is there to take
    assert after is not None and after.id == first


SLA = {"P1": timedelta(minutes=15), "P2": timedelta(hours=1), "P3": timedelta(hours=4),
       "P4": timedelta(hours=24)}
waiting_request = st.fixed_dictionaries({
    "priority": st.sampled_from(sorted(SLA)),
    "asked_minutes_ago": st.integers(0, 3 * 24 * 60),
    "window_in_minutes": st.one_of(st.none(), st.integers(-600, 600)),
    "snooze_minutes": st.one_of(st.none(), st.integers(1, 600)),
})


@settings(max_examples=int(os.environ.get("IVR_ORDER_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(waiting_request, min_size=1, max_size=12),
       later_minutes=st.integers(1, 700))
def test_claims_follow_deadlines_like_a_plain_sort(app: Flask, requests: list[dict[str, Any]],
                                                   later_minutes: int) -> None:
    from callbacks.desk import snooze_callback
    from callbacks.workqueue.agents import Agent

    with app.extensions["ivr.sessions"]() as session:
        session.execute(delete(CallbackRequest))
        snoozer = session.scalar(select(Agent).where(Agent.username == "snoozer")) or Agent(
            username="snoozer", password_hash="")
        session.add(snoozer)
        session.commit()
    expected: dict[int, tuple[datetime, datetime]] = {}  # id -> (due, may be dialled from)
    for n, wish in enumerate(requests):
        asked = NOW - timedelta(minutes=wish["asked_minutes_ago"])
        due, opens = asked + SLA[wish["priority"]], asked
        if wish["window_in_minutes"] is not None:  # the caller chose a window
            opens = NOW + timedelta(minutes=wish["window_in_minutes"])
            due = max(due, opens)  # never due before the window opens
        (request_id,) = add(app, CallbackAsk(
            caller=f"+49151{n:08d}", category="network", language="en",
            priority=wish["priority"], reasons="", call_sid=f"CA{n:032d}", due_at=due,
            available_at=opens))
        if wish["snooze_minutes"] is not None:  # an agent snoozed it from the console
            opens = NOW + timedelta(minutes=wish["snooze_minutes"])
            with app.extensions["ivr.sessions"]() as session:
                snooze_callback(session, request_id, opens, session.merge(snoozer), now=NOW)
        expected[request_id] = (due, opens)

    later = NOW + timedelta(minutes=later_minutes)
    for moment in (NOW, later):
        reference = sorted((due, request_id) for request_id, (due, opens) in expected.items()
                           if opens <= moment)
        claimed = []
        while (taken := claim(app, "agent-1", moment)) is not None:
            claimed.append(taken.id)
        assert claimed == [request_id for _, request_id in reference], moment
        for request_id in claimed:
            del expected[request_id]
