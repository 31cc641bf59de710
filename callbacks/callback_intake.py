"""A caller asks for a callback: who they are, how urgent it is, and when it is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks.callback_requests import (
    OPEN_STATUSES,
    CallbackAsk,
    CallbackRequest,
    request_callback,
)
from callbacks.calllog import normalize_number
from callbacks.directory import Directory
from callbacks.priority import PriorityPolicy, priority_for
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


def ask_for_callback(session: Session, wish: CallbackWish, policy: PriorityPolicy,
                     directory: Directory, hours: BusinessHours | None,
                     now: datetime) -> CallbackRequest | None:
    """Queue (or join) the caller's callback with its priority and SLA deadline.

    None when there is no number to call back (withheld or not a phone number).
    """
    employee = directory.lookup(wish.caller)
    caller = employee.number if employee else normalize_number(wish.caller)
    if not can_call_back(caller):
        return None
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
    ask = CallbackAsk(
        caller=caller, category=category, language=wish.language, priority=priority,
        reasons="; ".join(reasons), call_sid=wish.call_sid,
        due_at=policy.due_at(priority, now, hours), available_at=now, ticket_id=wish.ticket_id,
    )
    ranks = {level.name: rank for rank, level in enumerate(policy.levels)}
    return request_callback(session, ask, ranks)


def can_call_back(number: str) -> bool:
    """Whether a caller id is a valid phone number we could dial (not withheld, not SIP)."""
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False
