"""Matching on PostgreSQL passes over an item another transaction holds: the router's claim
(`assign_next`) skips a locked row and takes the next one instead of waiting for it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from callbacks.db import make_claim_engine, make_engine, make_session_factory, utcnow
from callbacks.workqueue.callback_requests import CallbackRequest
from callbacks.workqueue.live_calls import LiveCall
from callbacks.workqueue.matching import Assignment, assign_next
from tests.test_matching import RULES, Store

LOCK_WAIT = "-c lock_timeout=2000 -c statement_timeout=10000"
"""A claim that waits for a held row fails within 2 s: a regression fails, never hangs."""


@pytest.fixture
def store(app: Flask) -> Iterator[Store]:
    """The test database; claims run on an engine whose statements give up on a held lock."""
    url = app.config["DATABASE_URL"]
    engine = make_engine(url)
    claims = make_claim_engine(url, connect_args={"options": LOCK_WAIT})
    yield Store(make_session_factory(engine), claims, utcnow())
    engine.dispose()
    claims.dispose()


@contextlib.contextmanager
def row_held(store: Store, model: type[LiveCall] | type[CallbackRequest],
             item_id: int) -> Iterator[None]:
    """Hold `item_id` with FOR UPDATE in a second connection, as a router mid-claim does."""
    holder = make_engine(store.claims.url.render_as_string(hide_password=False))
    try:
        with holder.connect() as connection, connection.begin():
            locked = connection.execute(select(model.id).where(model.id == item_id)
                                        .with_for_update()).scalar_one()
            assert locked == item_id
            yield
    finally:
        holder.dispose()


def assign_without_waiting(store: Store, agent_id: int) -> Assignment | None:
    """The agent's claim as the router makes it; a claim that waited for a lock fails."""
    try:
        return assign_next(store.claims, agent_id, store.now, RULES, uuid.uuid4().hex)
    except OperationalError as error:
        pytest.fail(f"the claim waited for a row another transaction holds: {error.orig}")


@pytest.mark.parametrize("kind", ["live", "callback"])
def test_the_most_urgent_item_held_by_another_claimer_is_skipped_not_waited_for(
        store: Store, kind: str) -> None:
    add = store.live if kind == "live" else store.callback
    model: type[LiveCall] | type[CallbackRequest] = (
        LiveCall if kind == "live" else CallbackRequest)
    # Both items are of the agent's topic, so the statement's overall and per-topic
    # candidates both meet the held row first.
    held = add("de", "network", due_in=-300)
    after = add("de", "network", due_in=60)
    ana = store.agent("ana", languages={"de": 2}, topics={"network": 2})
    ben = store.agent("ben", languages={"de": 2}, topics={"network": 2})
    with row_held(store, model, held):
        got = assign_without_waiting(store, ana)
    assert got is not None and (got.kind, got.item.id) == (kind, after)
    assert store.availability(ana) == "on_call"
    got = assign_without_waiting(store, ben)  # released: the held item is there to take
    assert got is not None and (got.kind, got.item.id) == (kind, held)


@pytest.mark.parametrize("kind", ["live", "callback"])
def test_an_agent_whose_only_item_is_held_stays_free(store: Store, kind: str) -> None:
    add = store.live if kind == "live" else store.callback
    model: type[LiveCall] | type[CallbackRequest] = (
        LiveCall if kind == "live" else CallbackRequest)
    held = add("de", "network", due_in=0)
    ana = store.agent("ana", languages={"de": 2}, topics={"network": 1})
    with row_held(store, model, held):
        assert assign_without_waiting(store, ana) is None
    assert store.availability(ana) == "available"
    got = assign_without_waiting(store, ana)
    assert got is not None and got.item.id == held
