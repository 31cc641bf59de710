"""An agent's current work, and their Take next button.

The call an agent is on right now is either a ring for a live caller (a live offer: their
phone ringing, the caller being brought in, talking) or a callback attempt (their phone
ringing, the caller being dialled, talking); otherwise they are free, or away, in wrap-up or
signed out.

Take next means "I am ready for the next one": an agent who is away or wrapping up becomes
available, and the router gives them at once the most urgent item they qualify for
(`route_agent`, the same job every other trigger runs: no second way of routing). A preview
agent, whom the router never dials callbacks for, then calls the most urgent callback they
qualify for (`call_now`, as if they had clicked Call on its row). Nothing to take leaves the
agent available, to be rung when a caller they can help joins the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks import runtime
from callbacks.db import utcnow
from callbacks.settings import Settings
from callbacks.tickets.ticket import Ticket
from callbacks.workqueue.agents import Agent, set_availability
from callbacks.workqueue.attempts import live_attempt_of_agent
from callbacks.workqueue.callback_requests import CallbackRequest
from callbacks.workqueue.dialer import DialRefused, call_now
from callbacks.workqueue.live_calls import LiveCall, live_offer_of_agent
from callbacks.workqueue.matching import best_callbacks
from callbacks.workqueue.router import route_agent

LIVE_STAGES = {"ringing_agent": "ringing", "bridging": "connecting", "talking": "talking"}
CALLBACK_STAGES = {"dialing_agent": "ringing", "whisper": "connecting",
                   "dialing_caller": "connecting", "connected": "talking"}
"""What each stage of a live offer or a callback attempt is, for the agent."""


class TakeNextRefused(DialRefused):
    """Take next cannot start (the agent is on a call, or has no phone); the message says why."""


@dataclass(frozen=True)
class CurrentWork:
    """What an agent is doing now: the call they are on (who, why, since when) or nothing."""

    availability: str
    kind: str | None = None
    """'live' (a caller from the line), 'callback', or None: not on a call."""
    stage: str = ""
    """'ringing' (their phone), 'connecting' (bringing the caller in), 'talking'."""
    item_id: int | None = None
    """The live call's or the callback request's id."""
    caller: str = ""
    caller_name: str = ""
    language: str = ""
    category: str = ""
    priority: str = ""
    reasons: str = ""
    since: datetime | None = None
    """When this call started for the agent (rung, or answered)."""
    waiting_since: datetime | None = None
    """When the caller joined the line, or first asked for the callback."""
    ticket_number: str | None = None

    @property
    def free(self) -> bool:
        """Available and on no call: the next caller they qualify for rings them."""
        return self.kind is None and self.availability == "available"


@dataclass(frozen=True)
class NextItem:
    """What Take next gave the agent: `outcome` live, callback or nothing, and in words."""

    outcome: str
    message: str
    current: CurrentWork


def current_work(session: Session, agent: Agent) -> CurrentWork:
    """The call `agent` is on now, or what state they are in."""
    offer = live_offer_of_agent(session, agent.id)
    if offer is not None:
        call = session.get(LiveCall, offer.live_call_id)
        if call is not None:
            ticket = session.scalar(select(Ticket).where(Ticket.call_sid == call.call_sid)
                                    .order_by(Ticket.id.desc()).limit(1))
            return CurrentWork(
                agent.availability, "live", LIVE_STAGES.get(offer.stage, offer.stage), call.id,
                call.caller, _name(call.caller), call.language, call.category, call.priority,
                call.reasons, offer.answered_at or offer.started_at, call.entered_at,
                ticket.number if ticket is not None else None)
    attempt = live_attempt_of_agent(session, agent.id)
    if attempt is not None:
        request = session.get(CallbackRequest, attempt.request_id)
        if request is not None:
            ticket = session.get(Ticket, request.ticket_id) if request.ticket_id else None
            return CurrentWork(
                agent.availability, "callback", CALLBACK_STAGES.get(attempt.stage, attempt.stage),
                request.id, request.caller, _name(request.caller), request.language,
                request.category, request.priority, request.reasons,
                attempt.answered_at or attempt.started_at, request.first_contact_at,
                ticket.number if ticket is not None else None)
    return CurrentWork(agent.availability)


def take_next(session: Session, settings: Settings, agent: Agent,
              now: datetime | None = None) -> NextItem:
    """Give the agent their next item now (see the module's docstring); TakeNextRefused when
    they are on a call or have no phone."""
    if not agent.phone:
        raise TakeNextRefused("set the phone number you answer before taking calls")
    session.refresh(agent)
    if agent.availability == "on_call":
        raise TakeNextRefused("you are on a call; take the next one when it ends")
    if agent.availability != "available":
        set_availability(session, agent, "available", now)
        session.commit()
    routed = route_agent(agent.id)["assigned"]
    if routed is None and agent.dial_mode == "preview":
        routed = _call_most_urgent_callback(session, settings, agent, now or utcnow())
    session.expire_all()
    current = current_work(session, agent)
    if current.kind is not None:
        return NextItem(current.kind, _took(current), current)
    if routed is not None:  # the claim was made, but the phone could not be rung
        return NextItem("nothing", "Your phone could not be rung just now; you are available "
                        "and the next item will ring you.", current)
    return NextItem("nothing", "Nothing you qualify for is waiting. You are available: the "
                    "next caller who speaks your language rings your phone.", current)


def _call_most_urgent_callback(session: Session, settings: Settings, agent: Agent,
                               now: datetime) -> str | None:
    """Call the preview agent's most urgent callback ('callback'), None if there is none."""
    rules = runtime.priority_policy().routing
    for request_id in best_callbacks(session, agent.id, now, rules):
        try:
            call_now(session, settings, agent, request_id)
        except DialRefused:  # taken by someone else a moment ago: the next one
            session.rollback()
            continue
        return "callback"
    return None


def _took(current: CurrentWork) -> str:
    """The sentence that tells the agent what they got."""
    who = current.caller_name or current.caller or "a withheld number"
    about = current.category.replace("_", " ") or "no particular topic"
    if current.kind == "live":
        return (f"Your phone is ringing: {who} is on the line, about {about}, priority "
                f"{current.priority}. Answer it to be connected.")
    return (f"Calling your phone now for the callback to {who}, about {about}, priority "
            f"{current.priority}; answer it to be connected.")


def _name(number: str) -> str:
    employee = runtime.directory().lookup(number)
    return employee.name if employee else ""
