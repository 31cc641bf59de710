"""Matching: a free agent takes the most urgent item they qualify for, live call or callback.

One rule for both kinds of item. An agent qualifies for an item in a language they speak (an
item with no language is open to everyone); for a callback they must also dial progressively
and the request must be free or reserved for them, and may be dialled now. Among those items
the agent gets the smallest rank:

    rank = due_at + (0 if the agent knows the item's topic else topic_preference)
                  - level_bonus x the agent's level on the topic

ties broken by due time, then live calls before callbacks, then id. Rank is the SLA due time
shifted by a couple of minutes at most, so old items overtake: nobody starves.

`assign_next` takes the agent (available -> on_call) and the item (waiting -> offered, or
pending -> claimed) in ONE statement on PostgreSQL: candidates are locked with FOR UPDATE
SKIP LOCKED, and the agent's UPDATE only succeeds while they are still available, so two
routers never take the same caller or the same agent. SQLite (the demo) runs the same steps
in one transaction, which its single writer serialises.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from callbacks.db import first_row_autocommit
from callbacks.priority import RoutingRules
from callbacks.workqueue.agents import Agent
from callbacks.workqueue.callback_requests import CallbackRequest, ClaimedCallback
from callbacks.workqueue.live_calls import LiveCall
from callbacks.workqueue.skills import AgentSkill


@dataclass(frozen=True)
class Assignment:
    """What an agent was just given: a live caller to ring them for, or a callback to dial.

    The agent is on a call from here on; the router rings them (or gives them back).
    """

    kind: str
    """'live' or 'callback'."""
    agent_id: int
    item: ClaimedCallback
    """The item's fields (for a live call: its entry time as first contact, offers as
    attempts)."""
    claim: str
    """Who holds the claim, as written on the item (the router checks it before ringing)."""
    at: datetime
    """When the claim was made: the agent's `availability_since` while it is theirs."""

    @property
    def live_call_id(self) -> int | None:
        """The live call's id, for a live item."""
        return self.item.id if self.kind == "live" else None


_ITEM_COLUMNS = tuple(field.name for field in dataclasses.fields(ClaimedCallback))
_LIVE_AS_ITEM = ("id", "caller", "category", "language", "priority", "reasons",
                 "NULL::integer", "1", "offers", "entered_at", "due_at")

# Candidates come per language the agent speaks (and '' for unknown), each once overall and
# once per topic the agent knows: the smallest rank is always among those (an item of no
# known topic ranks by its due time alone, so the earliest one wins), and every candidate is
# the head of an index range. FOR UPDATE SKIP LOCKED passes over rows another router holds.
_PG_ASSIGN = f"""
WITH me AS (
    SELECT id, dial_mode FROM agents
     WHERE id = %(agent)s AND availability = 'available' AND active AND phone <> ''
), langs AS (
    SELECT code FROM agent_skills WHERE agent_id = %(agent)s AND kind = 'language'
    UNION ALL SELECT ''
), topics AS (
    SELECT code, level FROM agent_skills WHERE agent_id = %(agent)s AND kind = 'topic'
), live AS (
    SELECT c.* FROM langs CROSS JOIN LATERAL (
        SELECT id, due_at, category FROM live_calls
         WHERE status = 'waiting' AND language = langs.code AND EXISTS (SELECT 1 FROM me)
         ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) c
    UNION ALL
    SELECT c.* FROM langs CROSS JOIN topics CROSS JOIN LATERAL (
        SELECT id, due_at, category FROM live_calls
         WHERE status = 'waiting' AND language = langs.code AND category = topics.code
           AND EXISTS (SELECT 1 FROM me)
         ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) c
), callbacks AS (
    SELECT c.* FROM langs CROSS JOIN LATERAL (
        SELECT id, due_at, category FROM callback_requests
         WHERE status = 'pending' AND language = langs.code AND available_at <= %(now)s
           AND (assigned_agent_id IS NULL OR assigned_agent_id = %(agent)s)
           AND EXISTS (SELECT 1 FROM me WHERE dial_mode = 'progressive')
         ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) c
    UNION ALL
    SELECT c.* FROM langs CROSS JOIN topics CROSS JOIN LATERAL (
        SELECT id, due_at, category FROM callback_requests
         WHERE status = 'pending' AND language = langs.code AND category = topics.code
           AND available_at <= %(now)s
           AND (assigned_agent_id IS NULL OR assigned_agent_id = %(agent)s)
           AND EXISTS (SELECT 1 FROM me WHERE dial_mode = 'progressive')
         ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) c
), ranked AS (
    SELECT kind, x.id, x.due_at,
           x.due_at + CASE WHEN t.level IS NULL THEN %(preference)s ELSE 0 END
                      * interval '1 second'
                    - COALESCE(t.level, 0) * %(bonus)s * interval '1 second' AS rank
      FROM (SELECT 'live' AS kind, 0 AS ord, * FROM live
            UNION ALL SELECT 'callback', 1, * FROM callbacks) x
      LEFT JOIN topics t ON t.code = x.category
     ORDER BY rank, x.due_at, ord, x.id LIMIT 1
), agent AS (
    UPDATE agents SET availability = 'on_call', availability_since = %(now)s
     WHERE id = %(agent)s AND availability = 'available' AND active AND phone <> ''
       AND EXISTS (SELECT 1 FROM ranked)
    RETURNING id
), took_live AS (
    UPDATE live_calls SET status = 'offered', claimed_by = %(live_claim)s,
           claimed_at = %(now)s, offers = offers + 1, updated_at = %(now)s
     WHERE id = (SELECT id FROM ranked WHERE kind = 'live') AND status = 'waiting'
       AND EXISTS (SELECT 1 FROM agent)
    RETURNING 'live'::text, {", ".join(_LIVE_AS_ITEM)}
), took_callback AS (
    UPDATE callback_requests SET status = 'claimed', claimed_by = %(callback_claim)s,
           claimed_at = %(now)s, attempts = attempts + 1, updated_at = %(now)s
     WHERE id = (SELECT id FROM ranked WHERE kind = 'callback') AND status = 'pending'
       AND EXISTS (SELECT 1 FROM agent)
    RETURNING 'callback'::text, {", ".join(_ITEM_COLUMNS)}
)
SELECT * FROM took_live UNION ALL SELECT * FROM took_callback
"""


def live_claim(agent_id: int, token: str) -> str:
    """The claim a router writes on a live call it takes for an agent (unique per claim)."""
    return f"agent:{agent_id}:{token}"


def assign_next(engine: Engine, agent_id: int, now: datetime, rules: RoutingRules,
                token: str) -> Assignment | None:
    """Take agent `agent_id` (if still free) and their most urgent item, atomically; None
    when the agent is not free or qualifies for nothing (then nothing changed).

    `engine` is the claim engine (`callbacks.db.make_claim_engine`); `token` makes this
    claim's mark on a live call unique, so a router only rings for its own claim.
    """
    params = {"agent": agent_id, "now": now, "live_claim": live_claim(agent_id, token),
              "callback_claim": f"agent:{agent_id}",
              "preference": rules.topic_preference.total_seconds(),
              "bonus": rules.level_bonus.total_seconds()}
    if engine.dialect.name == "postgresql":
        row = first_row_autocommit(engine, _PG_ASSIGN, params)
        if row is None:
            return None
        claim = params["live_claim"] if row[0] == "live" else params["callback_claim"]
        return Assignment(str(row[0]), agent_id, ClaimedCallback(*row[1:]), str(claim), now)
    return _assign_in_one_transaction(engine, agent_id, now, rules, params)


def rank(due_at: datetime, category: str, topics: dict[str, int], rules: RoutingRules
         ) -> datetime:
    """An item's rank for an agent with `topics` (code -> level): the matching rule above."""
    level = topics.get(category)
    if level is None:
        return due_at + rules.topic_preference
    return due_at - level * rules.level_bonus


def _assign_in_one_transaction(engine: Engine, agent_id: int, now: datetime,
                               rules: RoutingRules, params: dict[str, object]
                               ) -> Assignment | None:
    """The same steps as the PostgreSQL statement, for SQLite: the agent's UPDATE comes first,
    so the transaction holds the single writer's lock while it chooses."""
    with Session(engine) as session:
        taken = session.execute(
            update(Agent).where(Agent.id == agent_id, Agent.availability == "available",
                                Agent.active.is_(True), Agent.phone != "")
            .values(availability="on_call", availability_since=now))
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            return None
        mode = session.scalar(select(Agent.dial_mode).where(Agent.id == agent_id))
        skills = session.execute(select(AgentSkill.kind, AgentSkill.code, AgentSkill.level)
                                 .where(AgentSkill.agent_id == agent_id)).all()
        languages = [code for kind, code, _ in skills if kind == "language"] + [""]
        topics = {code: level for kind, code, level in skills if kind == "topic"}
        best: tuple[tuple[datetime, datetime, int, int], str] | None = None
        for kind, model, open_status in _kinds(mode == "progressive"):
            query = select(model.id, model.due_at, model.category).where(
                model.status == open_status, model.language.in_(languages))
            if model is CallbackRequest:
                query = query.where(CallbackRequest.available_at <= now,
                                    CallbackRequest.assigned_agent_id.is_(None)
                                    | (CallbackRequest.assigned_agent_id == agent_id))
            order = 0 if kind == "live" else 1
            for item_id, due_at, category in session.execute(query):
                key = (rank(due_at, category, topics, rules), due_at, order, item_id)
                if best is None or key < best[0]:
                    best = (key, kind)
        if best is None:
            session.rollback()
            return None
        (_, _, _, item_id), kind = best
        if kind == "live":
            claim = str(params["live_claim"])
            took = session.execute(
                update(LiveCall).where(LiveCall.id == item_id, LiveCall.status == "waiting")
                .values(status="offered", claimed_by=claim, claimed_at=now,
                        offers=LiveCall.offers + 1, updated_at=now)
                .returning(LiveCall.id, LiveCall.caller, LiveCall.category, LiveCall.language,
                           LiveCall.priority, LiveCall.reasons, LiveCall.offers,
                           LiveCall.entered_at, LiveCall.due_at)).one()
            item = ClaimedCallback(took[0], took[1], took[2], took[3], took[4], took[5], None,
                                   1, took[6], took[7], took[8])
        else:
            claim = str(params["callback_claim"])
            found = session.execute(
                update(CallbackRequest)
                .where(CallbackRequest.id == item_id, CallbackRequest.status == "pending")
                .values(status="claimed", claimed_by=claim, claimed_at=now,
                        attempts=CallbackRequest.attempts + 1, updated_at=now)
                .returning(*(getattr(CallbackRequest, name) for name in _ITEM_COLUMNS))).one()
            item = ClaimedCallback(*found)
        session.commit()
        return Assignment(kind, agent_id, item, claim, now)


def _kinds(progressive: bool) -> list[tuple[str, type[LiveCall] | type[CallbackRequest], str]]:
    kinds: list[tuple[str, type[LiveCall] | type[CallbackRequest], str]] = [
        ("live", LiveCall, "waiting")]
    if progressive:
        kinds.append(("callback", CallbackRequest, "pending"))
    return kinds


def waiting_work_exists(session: Session, now: datetime) -> bool:
    """Whether any caller waits in line or any callback may be dialled now (a sweep's cue)."""
    live = session.scalar(select(LiveCall.id).where(LiveCall.status == "waiting").limit(1))
    if live is not None:
        return True
    return session.scalar(select(CallbackRequest.id).where(
        CallbackRequest.status == "pending", CallbackRequest.available_at <= now).limit(1)
    ) is not None



def best_callbacks(session: Session, agent_id: int, now: datetime, rules: RoutingRules,
                   limit: int = 3) -> list[int]:
    """The waiting callbacks the agent qualifies for by language and reservation, most urgent
    for them first (the matching rule's rank), whatever their dial mode: what a preview
    agent's Take next calls. At most `limit`; nothing is claimed."""
    skills = session.execute(select(AgentSkill.kind, AgentSkill.code, AgentSkill.level)
                             .where(AgentSkill.agent_id == agent_id)).all()
    languages = [code for kind, code, _ in skills if kind == "language"] + [""]
    topics = {code: level for kind, code, level in skills if kind == "topic"}
    waiting = select(CallbackRequest.id, CallbackRequest.due_at, CallbackRequest.category).where(
        CallbackRequest.status == "pending", CallbackRequest.available_at <= now,
        CallbackRequest.assigned_agent_id.is_(None)
        | (CallbackRequest.assigned_agent_id == agent_id))
    found: dict[int, tuple[datetime, datetime, int]] = {}
    # The heads of each language, overall and per topic the agent knows, hold the best ranks
    # (as in the routing statement).
    for language in languages:
        in_language = waiting.where(CallbackRequest.language == language)
        for query in (in_language, *(in_language.where(CallbackRequest.category == topic)
                                     for topic in topics)):
            for item_id, due_at, category in session.execute(
                    query.order_by(CallbackRequest.due_at, CallbackRequest.id).limit(limit)):
                found[item_id] = (rank(due_at, category, topics, rules), due_at, item_id)
    return [key[2] for key in sorted(found.values())][:limit]
