"""The line as a caller sees it: how urgent they are, who could answer them, their place and
the wait to expect; and as agents see it: the callers waiting, with their place and who is
being rung for them. Read from SQL, the same order agents are served in."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, true
from sqlalchemy.orm import Session

from callbacks.calllog import normalize_number
from callbacks.directory import Directory
from callbacks.priority import PriorityPolicy, priority_for
from callbacks.workqueue.agents import Agent
from callbacks.workqueue.callback_requests import CallbackRequest
from callbacks.workqueue.live_calls import IN_LINE, LineAsk, LiveCall, LiveOffer
from callbacks.workqueue.skills import AgentSkill

DEFAULT_HANDLE_TIME = timedelta(minutes=5)
"""What a conversation is assumed to take before the desk has answered any live call."""
HANDLE_TIME_SAMPLE = 50
"""The latest conversations the handle time is averaged over."""
HANDLE_TIME_WINDOW = timedelta(days=1)


def line_ask(policy: PriorityPolicy, directory: Directory, *, call_sid: str, caller: str,
             language: str, category: str | None, menu_priority: str | None,
             flow_version_id: int, node: str, seq: int, queue_name: str,
             now: datetime) -> LineAsk:
    """A caller about to join a line: their live priority (the menu's, raised for VIPs,
    departments and outages like a callback's) with its due time and max wait."""
    employee = directory.lookup(caller)
    live = policy.live
    priority, reasons = priority_for(
        policy, menu_priority=menu_priority, keyword_priority=None,
        vip=bool(employee and employee.vip),
        department_priority=policy.department_priority(employee.department if employee
                                                       else None),
        repeat_calls=1, outage=category == "outage")
    level = live.level(priority)
    if level.name != priority:
        reasons = (*reasons, f"not a live level: {level.name}")
    return LineAsk(
        call_sid=call_sid, caller=employee.number if employee else normalize_number(caller),
        language=language, category=category or "", priority=level.name,
        reasons="; ".join(reasons), flow_version_id=flow_version_id, node=node, seq=seq,
        queue_name=queue_name, due_at=now + level.target, overflow_at=now + level.max_wait)


def speaks(language: str) -> ColumnElement[bool]:
    """Agents who may take an item in `language` ('' is open to everyone)."""
    if not language:
        return true()
    return exists(select(AgentSkill.id).where(AgentSkill.agent_id == Agent.id,
                                              AgentSkill.kind == "language",
                                              AgentSkill.code == language))


def signed_in_agents_for(session: Session, language: str) -> int:
    """Agents signed in (any state but offline) with a phone who speak `language`."""
    return session.scalar(select(func.count()).select_from(Agent).where(
        Agent.active.is_(True), Agent.phone != "", Agent.availability != "offline",
        speaks(language))) or 0


def free_agents_for(session: Session, language: str) -> int:
    """Agents available right now who speak `language`."""
    return session.scalar(select(func.count()).select_from(Agent).where(
        Agent.active.is_(True), Agent.phone != "", Agent.availability == "available",
        speaks(language))) or 0


def place_in_line(session: Session, call: LiveCall, now: datetime) -> int:
    """1 + the items in the caller's language that agents take first: callers due earlier,
    and callbacks due earlier that may be dialled now."""
    ahead_live = session.scalar(select(func.count()).select_from(LiveCall).where(
        LiveCall.status.in_(IN_LINE), LiveCall.language == call.language,
        LiveCall.id != call.id,
        or_(LiveCall.due_at < call.due_at,
            and_(LiveCall.due_at == call.due_at, LiveCall.id < call.id)))) or 0
    ahead_callbacks = session.scalar(select(func.count()).select_from(CallbackRequest).where(
        CallbackRequest.status == "pending", CallbackRequest.language == call.language,
        CallbackRequest.available_at <= now, CallbackRequest.due_at < call.due_at)) or 0
    return 1 + ahead_live + ahead_callbacks


def handle_time(session: Session, now: datetime) -> timedelta:
    """The average length of the desk's latest conversations with live callers."""
    rows = session.execute(
        select(LiveCall.answered_at, LiveCall.ended_at).where(
            LiveCall.status == "done", LiveCall.answered_at.is_not(None),
            LiveCall.ended_at > now - HANDLE_TIME_WINDOW)
        .order_by(LiveCall.ended_at.desc()).limit(HANDLE_TIME_SAMPLE)).all()
    spans = [ended - answered for answered, ended in rows
             if answered is not None and ended is not None and ended > answered]
    if not spans:
        return DEFAULT_HANDLE_TIME
    return sum(spans, timedelta()) / len(spans)


def estimated_minutes(session: Session, call: LiveCall, place: int, now: datetime) -> int:
    """Whole minutes the caller should expect to wait: their place times the average handle
    time, shared by the agents signed in who speak their language (one minute at least)."""
    agents = max(1, signed_in_agents_for(session, call.language))
    expected = handle_time(session, now) * place / agents
    return max(1, math.ceil(expected / timedelta(minutes=1)))


@dataclass(frozen=True)
class LiveEntry:
    """A caller waiting on the line, as the agents' call list shows them."""

    id: int
    caller: str
    caller_name: str
    language: str
    category: str
    priority: str
    reasons: str
    status: str
    """'waiting', or 'offered' while an agent's phone rings for them."""
    entered_at: datetime
    due_at: datetime
    overdue: bool
    place: int
    offers: int
    ringing: str | None
    """The agent whose phone rings for this caller now, by name."""

    kind = "live"


def callers_in_line(session: Session, directory: Directory, now: datetime,
                    limit: int = 200) -> list[LiveEntry]:
    """Callers waiting on the line, due first (the order agents take them), with their place
    and the agent being rung for them."""
    ringing: dict[int, str] = {call_id: name for call_id, name in session.execute(
        select(LiveOffer.live_call_id, func.coalesce(func.nullif(Agent.display_name, ""),
                                                     Agent.username))
        .join(Agent, Agent.id == LiveOffer.agent_id)
        .where(LiveOffer.stage == "ringing_agent"))}
    calls = session.scalars(select(LiveCall).where(LiveCall.status.in_(IN_LINE))
                            .order_by(LiveCall.due_at, LiveCall.id).limit(limit)).all()
    entries = []
    for call in calls:
        employee = directory.lookup(call.caller)
        entries.append(LiveEntry(
            id=call.id, caller=call.caller, caller_name=employee.name if employee else "",
            language=call.language, category=call.category, priority=call.priority,
            reasons=call.reasons, status=call.status, entered_at=call.entered_at,
            due_at=call.due_at, overdue=call.due_at < now,
            place=place_in_line(session, call, now), offers=call.offers,
            ringing=ringing.get(call.id) if call.status == "offered" else None))
    return entries
