"""A caller asks for a callback: who they are, how urgent it is, and when it is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks.calllog import normalize_number
from callbacks.directory import Directory
from callbacks.priority import PriorityPolicy, priority_for
from callbacks.workqueue.callback_requests import (
    OPEN_STATUSES,
    CallbackAsk,
    CallbackRequest,
    request_callback,
)
from routing.callback_choices import callable_number, window_start
from routing.hours import BusinessHours

OUTAGE = "outage"


@dataclass(frozen=True)
class CallbackWish:
    """What the IVR learned: the number to call, the call, the problem, the menu's urgency."""

    caller: str
    call_sid: str
    language: str
    category: str | None
    menu_priority: str | None
    ticket_id: int | None = None
    keyword_priority: str | None = None
    dial_number: str | None = None
    """The number the caller keyed in (E.164), '' for the caller id; None when not asked."""
    window: str | None = None
    """'asap', 'afternoon' or 'tomorrow_morning'; None when the caller was not asked."""
    first_contact_at: datetime | None = None
    """When the caller first asked for help, if earlier than now (they waited in line)."""
    due_by: datetime | None = None
    """A deadline the request must not exceed (a caller in line keeps their place)."""


def ask_for_callback(session: Session, wish: CallbackWish, policy: PriorityPolicy,
                     directory: Directory, hours: BusinessHours | None,
                     now: datetime) -> CallbackRequest | None:
    """Queue (or join) the caller's callback with its priority and SLA deadline.

    A window makes the request wait until it opens (`available_at`), and the SLA clock then
    starts at the window's start, so the deadline never comes before the caller may be called.
    A caller who waited in line first keeps their place: their first contact is when they
    joined the line, and the deadline is no later than their due time there (`due_by`).
    None when there is no number to call back (withheld caller id and none keyed in).
    """
    employee = directory.lookup(wish.caller)
    caller = employee.number if employee else normalize_number(wish.caller)
    if not can_call_back(caller):
        if not wish.dial_number:
            return None
        caller = wish.dial_number  # a withheld caller id: the number they keyed in is theirs
    category = wish.category or "other"
    earlier = session.scalar(
        select(CallbackRequest.contacts).where(
            CallbackRequest.caller == caller, CallbackRequest.category == category,
            CallbackRequest.status.in_(OPEN_STATUSES),
            CallbackRequest.last_call_sid != wish.call_sid)
    )
    priority, reasons = priority_for(
        policy,
        menu_priority=wish.menu_priority,
        keyword_priority=wish.keyword_priority,
        vip=bool(employee and employee.vip),
        department_priority=policy.department_priority(employee.department if employee
                                                       else None),
        repeat_calls=(earlier or 0) + 1,
        outage=category == OUTAGE,
    )
    available_at = window_start(wish.window, now, hours) if wish.window else now
    due_at = policy.due_at(priority, available_at, hours)
    if wish.due_by is not None:  # never later than the line promised, never before the window
        due_at = max(available_at, min(due_at, wish.due_by))
    ask = CallbackAsk(
        caller=caller, category=category, language=wish.language, priority=priority,
        reasons="; ".join(reasons), call_sid=wish.call_sid,
        due_at=due_at, available_at=available_at,
        ticket_id=wish.ticket_id, dial_number=wish.dial_number, window=wish.window,
        first_contact_at=wish.first_contact_at,
    )
    ranks = {level.name: rank for rank, level in enumerate(policy.levels)}
    return request_callback(session, ask, ranks)


def can_call_back(number: str) -> bool:
    """Whether a caller id is a valid phone number we could dial (not withheld, not SIP)."""
    return callable_number(number) is not None
