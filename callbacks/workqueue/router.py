"""The router: free agents get the most urgent item they qualify for, and live callers reach them.

Jobs (rq, urgent queue): `route_agent(agent_id)` when one agent becomes free (available, end
of wrap-up, a call ended) and `route_sweep()` when work arrives and on every worker's periodic
pass: free agents, longest idle first, each take their best item (matching.py). A callback goes
to the dialer; a live caller's agent is rung (a live offer), whispered who is waiting, and the
caller is dequeued into a conference with them.

Every step is recorded in SQL first and guarded by the row's state, so a repeated webhook or a
lost job changes nothing twice. Outcomes of an offer: the agent answers and the caller joins
them (the agent then wraps up); the agent does not answer, is busy or the call fails (the agent
is set away, the caller waits again first in line); the caller hangs up or leaves the line
while the agent's phone rings (the ring is cancelled and the agent is free again).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from urllib.parse import quote

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callbacks import runtime
from callbacks.db import utcnow
from callbacks.priority import RoutingRules
from callbacks.settings import Settings
from callbacks.telephony import (
    MemberGone,
    TelephonyError,
    call_status,
    cancel_call,
    dequeue_member,
    place_call,
    queue_sid_for,
)
from callbacks.tickets.ticket import Ticket, spoken_number
from callbacks.workqueue.agents import Agent, release_agent
from callbacks.workqueue.attempts import live_attempt_of_agent
from callbacks.workqueue.dialer import (
    after_release,
    dial_claimed,
    enqueue_dial,
    spoken_digits,
    spoken_duration,
)
from callbacks.workqueue.live_calls import (
    IN_LINE,
    LEFT_LINE,
    LiveCall,
    LiveOffer,
    end_offer,
    leave_line,
    live_call_by_sid,
    live_offer_of_agent,
    live_offer_of_call,
    note_left,
    put_back_in_line,
)
from callbacks.workqueue.matching import Assignment, assign_next, waiting_work_exists

log = logging.getLogger(__name__)
M = TypeVar("M", LiveCall, LiveOffer)

SWEEP_LIMIT = 1000
"""Free agents one sweep routes at most."""
LANGUAGE_NAMES = {"en": "English", "de": "German", "pl": "Polish", "ru": "Russian",
                  "ko": "Korean", "fr": "French", "es": "Spanish", "it": "Italian"}
"""How the whisper names a caller's language (the agent hears English)."""
FINAL_CALL_STATUSES = ("completed", "busy", "no-answer", "canceled", "failed")
"""Twilio call statuses of a call that is over."""
BRIDGED_RESULTS = ("bridged", "bridging-in-process", "redirected", "redirected-from-bridged")
"""QueueResult values of a caller who left the line towards their agent."""


@dataclass(frozen=True)
class AgentAnswer:
    """What an agent who picked up a live offer hears and joins."""

    outcome: str
    """'connect' (whisper, then the conference), 'caller_gone', 'failed' or 'handled'."""
    whisper: str = ""
    conference: str = ""


# --- the jobs ----------------------------------------------------------------------------


def route_agent(agent_id: int) -> dict[str, object]:
    """Job: give a free agent their most urgent item; ring them for a live caller, or dial the
    callback. Nothing happens when the agent is not free or qualifies for nothing."""
    settings = runtime.settings()
    rules = runtime.priority_policy().routing
    assignment = assign_next(runtime.claim_engine(), agent_id, utcnow(), rules,
                             uuid.uuid4().hex[:16])
    if assignment is None:
        return {"agent": agent_id, "assigned": None}
    with runtime.sessions()() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        if assignment.kind == "callback":
            attempt = dial_claimed(session, settings, agent, assignment.item, mode="progressive")
            return {"agent": agent_id, "assigned": "callback", "id": assignment.item.id,
                    "attempt": attempt.id, "stage": attempt.stage}
        offer = ring_agent(session, settings, rules, agent, assignment)
        return {"agent": agent_id, "assigned": "live", "id": assignment.item.id,
                "offer": offer.id if offer is not None else None,
                "stage": offer.stage if offer is not None else "claim_lost"}


def route_sweep(limit: int = SWEEP_LIMIT) -> dict[str, list[int]]:
    """Job: every free agent, longest idle first, takes their most urgent item (if any)."""
    with runtime.sessions()() as session:
        if not waiting_work_exists(session, utcnow()):
            return {"live": [], "callbacks": []}
        free = session.scalars(
            select(Agent.id).where(Agent.availability == "available", Agent.active.is_(True),
                                   Agent.phone != "")
            .order_by(Agent.availability_since, Agent.id).limit(limit)).all()
    routed: dict[str, list[int]] = {"live": [], "callbacks": []}
    for agent_id in free:
        result = route_agent(agent_id)
        if result["assigned"] is not None:
            kind = "live" if result["assigned"] == "live" else "callbacks"
            routed[kind].append(int(str(result["id"])))
    return routed


# --- ringing the agent ----------------------------------------------------------------------


def ring_agent(session: Session, settings: Settings, rules: RoutingRules, agent: Agent,
               assignment: Assignment) -> LiveOffer | None:
    """Record the offer, then ask the provider to ring the agent; the webhooks go on from there.

    None when this claim is no longer the caller's (the reconciler gave the caller back while
    this router stalled, and another took them): the agent is free again, nobody is rung.
    """
    now = utcnow()
    call = _locked(session, LiveCall, assignment.item.id)
    if call is None or call.status != "offered" or call.claimed_by != assignment.claim:
        session.rollback()
        _give_back(session, assignment)
        return None
    offer = LiveOffer(live_call_id=call.id, agent_id=agent.id, stage="ringing_agent",
                      started_at=now, detail="")
    session.add(offer)
    try:
        session.commit()
    except IntegrityError:  # the database refuses a second ring for this caller or agent
        session.rollback()
        log.warning("live call %s or agent %s is being rung already; not ringing again",
                    assignment.item.id, agent.id)
        _give_back(session, assignment)
        return None
    base = settings.public_base_url
    try:
        sid = place_call(settings, to=agent.phone, from_=settings.callback_from or agent.phone,
                         url=f"{base}/dialer/live/agent?offer={offer.id}",
                         status_callback=f"{base}/dialer/live/agent-status?offer={offer.id}",
                         timeout=rules.ring_seconds)
    except TelephonyError as error:
        log.warning("live call %s: ringing agent %s failed: %s", call.id, agent.id, error)
        offer = _locked(session, LiveOffer, offer.id) or offer
        if offer.stage == "ringing_agent":
            end_offer(offer, "dial_error", str(error), utcnow())
            put_back_in_line(session, call.id, "the agent's phone could not be rung")
        session.commit()
        _give_back(session, assignment)
        return offer
    offer = _locked(session, LiveOffer, offer.id) or offer
    offer.agent_call_sid = sid
    still_ringing = offer.stage == "ringing_agent"
    session.commit()
    if not still_ringing:  # the caller left while the ring was being placed
        _cancel_ring(session, settings, offer)
    return offer


def _give_back(session: Session, assignment: Assignment) -> None:
    """The agent of a claim that rang nobody is available again, unless they are no longer
    on this claim (the reconciler freed them and a newer call took them)."""
    session.execute(update(Agent).where(Agent.id == assignment.agent_id,
                                        Agent.availability == "on_call",
                                        Agent.availability_since == assignment.at)
                    .values(availability="available", availability_since=utcnow()))
    session.commit()


def _cancel_ring(session: Session, settings: Settings, offer: LiveOffer) -> None:
    """Stop the agent's phone ringing for a caller who left; the agent is free again at once
    (if the provider could not cancel, their call's end frees them)."""
    if offer.agent_call_sid is None:
        return  # the router has not rung yet: it sees the offer ended and cancels itself
    try:
        canceled = cancel_call(settings, offer.agent_call_sid)
    except TelephonyError as error:
        log.warning("offer %s: cancelling the agent's ring failed: %s", offer.id, error)
        return
    if canceled and _release_if_idle(session, offer, utcnow()):
        session.commit()
        after_release(settings, offer.agent_id, "available")


def _release_if_idle(session: Session, offer: LiveOffer, now: datetime) -> bool:
    """Free the agent of an ended offer unless a newer call took them meanwhile."""
    if offer.ended_at is None:
        return False
    if (live_offer_of_agent(session, offer.agent_id) is not None
            or live_attempt_of_agent(session, offer.agent_id) is not None):
        return False
    freed = session.execute(
        update(Agent).where(Agent.id == offer.agent_id, Agent.availability == "on_call",
                            Agent.availability_since <= offer.ended_at)
        .values(availability="available", availability_since=now))
    return bool(freed.rowcount)  # type: ignore[attr-defined]


# --- the agent's phone ----------------------------------------------------------------------


def agent_answered_live(session: Session, settings: Settings, offer_id: int,
                        agent_call_sid: str, now: datetime | None = None) -> AgentAnswer:
    """The agent picked up: dequeue the caller into their conference; what the agent hears.

    A repeated webhook of the same call joins the same conference again.
    """
    moment = now or utcnow()
    offer = _locked(session, LiveOffer, offer_id)
    if offer is None:
        return AgentAnswer("handled")
    if offer.stage in ("bridging", "talking") and offer.agent_call_sid in (None, agent_call_sid):
        call = session.get(LiveCall, offer.live_call_id)
        assert call is not None
        return AgentAnswer("connect", live_whisper(session, call, moment), conference(call.id))
    if offer.stage != "ringing_agent":
        return AgentAnswer("caller_gone" if offer.stage == "caller_gone" else "handled")
    call = _locked(session, LiveCall, offer.live_call_id)
    assert call is not None
    if call.status != "offered":
        end_offer(offer, "caller_gone", f"the caller was {call.status} when the agent answered",
                  moment)
        session.commit()
        return AgentAnswer("caller_gone")
    offer.stage, offer.answered_at = "bridging", moment
    offer.agent_call_sid = offer.agent_call_sid or agent_call_sid
    whisper = live_whisper(session, call, moment)
    call_id, caller_sid, queue_name, queue_sid = call.id, call.call_sid, call.queue_name, \
        call.queue_sid
    url = connect_url(settings, call)
    session.commit()
    try:
        queue_sid = queue_sid or queue_sid_for(settings, queue_name)
        if queue_sid is None:
            raise MemberGone(f"no queue named {queue_name!r}")
        dequeue_member(settings, queue_sid, caller_sid, url)
    except TelephonyError as error:
        gone = isinstance(error, MemberGone)
        log.warning("live call %s: dequeuing the caller failed: %s", call_id, error)
        offer = _locked(session, LiveOffer, offer_id)
        assert offer is not None
        if offer.stage == "bridging":
            end_offer(offer, "caller_gone" if gone else "dial_error", str(error), utcnow())
        if gone:
            _not_in_queue(session, settings, call_id, caller_sid)
            return AgentAnswer("caller_gone")
        put_back_in_line(session, call_id, "the caller could not be dequeued")
        session.commit()
        enqueue_dial(runtime.redis())  # another agent may take them if they are still there
        return AgentAnswer("failed")
    call = _locked(session, LiveCall, call_id)
    assert call is not None
    if call.status == "offered":
        _bridged(call, offer.agent_id, moment)
    session.commit()
    return AgentAnswer("connect", whisper, conference(call_id))


def _not_in_queue(session: Session, settings: Settings, call_id: int, caller_sid: str) -> None:
    """Twilio no longer holds the caller in the queue although the line had no word of them
    leaving (that report was lost or is still on its way): no agent is rung for them again.
    A call Twilio reports over is an abandonment; otherwise the caller counts as lost, and
    comes back to the line if their hold loop asks again or their report still arrives."""
    try:
        status = call_status(settings, caller_sid)
    except TelephonyError as error:
        log.warning("live call %s: asking Twilio about the caller failed: %s", call_id, error)
        status = None
    call = _locked(session, LiveCall, call_id)
    if call is None or call.status not in IN_LINE:
        session.commit()
        return
    moment = utcnow()
    if status in FINAL_CALL_STATUSES:
        leave_line(session, call, "abandoned", moment,
                   f"hung up while an agent was rung (Twilio: {status}; its report was lost)")
    else:
        call.status, call.ended_at = "lost", moment
        call.claimed_by = call.claimed_at = None
        call.wait_seconds = max(0, int((moment - call.entered_at).total_seconds()))
        call.outcome_detail = (f"not in Twilio's queue when an agent answered (call "
                               f"{status or 'unknown to Twilio'}); waiting again if it asks")
    session.commit()
    log.info("live call %s: the caller was not in the queue any more: %s", call_id, call.status)


def _bridged(call: LiveCall, agent_id: int, moment: datetime) -> None:
    """The caller is on their way to the agent: answered now, after this long in line."""
    call.status, call.agent_id, call.answered_at = "bridged", agent_id, moment
    call.wait_seconds = max(0, int((moment - call.entered_at).total_seconds()))


def agent_leg_ended_live(session: Session, settings: Settings, offer_id: int, status: str,
                         now: datetime | None = None) -> str | None:
    """The agent's call ended (its status callback): a ring nobody answered puts the caller
    back first in line and the agent away; after a conversation the agent wraps up."""
    moment = now or utcnow()
    offer = _locked(session, LiveOffer, offer_id)
    if offer is None:
        return None
    if offer.stage == "ringing_agent":
        if status == "completed":  # picked up, but hung up before the caller was brought in
            outcome, agent_state = "agent_hung_up", "wrap_up"
        else:  # an agent who does not pick up is probably away from the phone
            outcome = {"busy": "agent_busy", "no-answer": "agent_no_answer",
                       "canceled": "agent_no_answer"}.get(status, "agent_failed")
            agent_state = "away"
        end_offer(offer, outcome, f"Twilio CallStatus {status}", moment)
        put_back_in_line(session, offer.live_call_id, f"agent {offer.agent_id}: {outcome}")
        release_agent(session, offer.agent_id, agent_state, moment)
        session.commit()
        after_release(settings, offer.agent_id, agent_state)
        enqueue_dial(runtime.redis())  # the caller is first in line for the next free agent
        return outcome
    if offer.stage == "bridging":  # the agent left before the caller joined them
        end_offer(offer, "agent_hung_up", f"Twilio CallStatus {status} before the caller "
                  "joined", moment)
        session.execute(update(LiveCall).where(LiveCall.id == offer.live_call_id,
                                               LiveCall.status == "bridged")
                        .values(status="waiting", agent_id=None, answered_at=None,
                                claimed_by=None, claimed_at=None,
                                outcome_detail="the agent left before the caller joined"))
        release_agent(session, offer.agent_id, "wrap_up", moment)
        session.commit()
        after_release(settings, offer.agent_id, "wrap_up")
        enqueue_dial(runtime.redis())
        return "agent_hung_up"
    if offer.stage == "talking":
        end_conversation(session, offer, moment, f"the agent's call ended ({status})")
        session.commit()
        after_release(settings, offer.agent_id, "wrap_up")
        return "completed"
    if _release_if_idle(session, offer, moment):  # the caller left; the agent is free again
        session.commit()
        after_release(settings, offer.agent_id, "available")
        return "released"
    return None


def end_conversation(session: Session, offer: LiveOffer, now: datetime, detail: str) -> None:
    """Agent and caller have talked: the offer is complete, the call done, the agent wraps up."""
    if offer.live:
        end_offer(offer, "completed", detail, now)
    call = _locked(session, LiveCall, offer.live_call_id)
    if call is not None and call.status == "bridged":
        call.status, call.ended_at = "done", now
    release_agent(session, offer.agent_id, "wrap_up", now)


# --- the caller in line ---------------------------------------------------------------------


def caller_leaves_line(session: Session, settings: Settings, call_sid: str, status: str,
                       now: datetime | None = None, queue_seconds: int | None = None, *,
                       detail: str = "", from_statuses: tuple[str, ...] = IN_LINE
                       ) -> LiveCall | None:
    """The caller goes (`status`: abandoned, overflowed, to_callback, to_voicemail) if they
    are in one of `from_statuses`; an agent being rung for them is stopped and free again.
    The call as it is now, or None."""
    moment = now or utcnow()
    call = live_call_by_sid(session, call_sid, lock=True)
    if call is None:
        return None
    ringing = leave_line(session, call, status, moment, detail, queue_seconds, from_statuses)
    session.commit()
    if ringing is not None:
        _cancel_ring(session, settings, ringing)
    return call


def caller_left(session: Session, settings: Settings, call_sid: str, result: str,
                queue_seconds: int | None, now: datetime | None = None) -> str:
    """The provider reports the caller out of the line (Enqueue's action, QueueResult).

    'hangup' for a caller who hung up (recorded as abandoned with their wait), 'connect' for
    one on the way to their agent, else the flow's way on: overflow, callback or voicemail.
    """
    moment = now or utcnow()
    if result == "hangup":  # also after choosing a way out the flow never got to take
        caller_leaves_line(session, settings, call_sid, "abandoned", moment, queue_seconds,
                           from_statuses=(*IN_LINE, *LEFT_LINE, "lost"))
        return "hangup"
    if result in BRIDGED_RESULTS:
        return "connect"
    call = caller_leaves_line(session, settings, call_sid, "overflowed", moment, queue_seconds)
    if call is None:
        return "overflow"
    reason = note_left(call, moment, queue_seconds)
    session.commit()
    return reason


def caller_joins_agent(session: Session, live_call_id: int, call_sid: str,
                       now: datetime | None = None) -> str:
    """The dequeued caller asks for their conference: 'talk' when their agent is there,
    'requeue' when the agent is gone (the caller waits again, first in line), 'gone' when the
    call is over."""
    call = _locked(session, LiveCall, live_call_id)
    if call is None or call.call_sid != call_sid:
        return "gone"
    offer = live_offer_of_call(session, call.id)
    if offer is not None and offer.stage in ("bridging", "talking"):
        offer.stage = "talking"
        if call.status in IN_LINE:  # the dequeue outran its own bookkeeping
            _bridged(call, offer.agent_id, now or utcnow())
        session.commit()
        return "talk"
    if call.status not in (*IN_LINE, "bridged"):
        return "gone"
    if offer is None and call.status != "waiting":  # a ring for them goes on otherwise
        call.status, call.agent_id, call.answered_at = "waiting", None, None
        call.claimed_by = call.claimed_at = None
        call.outcome_detail = "the agent left before the caller joined; waiting again"
    session.commit()
    enqueue_dial(runtime.redis())
    return "requeue"


def caller_talked(session: Session, settings: Settings, call_sid: str,
                  now: datetime | None = None) -> int | None:
    """The caller's conversation ended (their Dial's action); the agent who talked, if known."""
    moment = now or utcnow()
    call = live_call_by_sid(session, call_sid, lock=True)
    if call is None:
        return None
    agent_id = call.agent_id
    offer = live_offer_of_call(session, call.id)
    if offer is not None:
        end_conversation(session, offer, moment, "the caller's side ended")
    elif call.status == "bridged":
        call.status, call.ended_at = "done", moment
    session.commit()
    if offer is not None:
        after_release(settings, offer.agent_id, "wrap_up")
    return agent_id


# --- what the agent hears, where the caller goes -------------------------------------------


def live_whisper(session: Session, call: LiveCall, now: datetime) -> str:
    """Who is waiting, in which language, about what, how urgent and for how long."""
    employee = runtime.directory().lookup(call.caller)
    who = (f"{employee.name}, {employee.department}" if employee
           else spoken_digits(call.caller) or "a withheld number")
    language = LANGUAGE_NAMES.get(call.language, call.language or "an unknown language")
    topic = call.category.replace("_", " ") if call.category else "no particular topic"
    waited = max(0, int((now - call.entered_at).total_seconds()))
    wait = (f"{waited} second{'s' if waited != 1 else ''}" if waited < 60
            else spoken_duration(waited // 60))
    parts = [f"Caller on the line: {who}, speaking {language}, about {topic}, "
             f"priority {call.priority}.", f"Waited {wait}."]
    ticket = session.scalar(select(Ticket).where(Ticket.call_sid == call.call_sid)
                            .order_by(Ticket.id.desc()).limit(1))
    if ticket is not None:
        parts.append(f"Ticket {spoken_number(ticket.number)}.")
    parts.append("Connecting you now.")
    return " ".join(parts)


def conference(live_call_id: int) -> str:
    """The conference an agent and their live caller meet in."""
    return f"live-{live_call_id}"


def connect_url(settings: Settings, call: LiveCall) -> str:
    """Where a dequeued caller's call goes on: their conference, with the flow position."""
    return (f"{settings.public_base_url}/voice/queue/connect?v={call.flow_version_id}"
            f"&n={quote(call.node)}&l={quote(call.language)}&a=0&s={call.seq}&live={call.id}")


def _locked(session: Session, model: type[M], ident: int) -> M | None:
    """The row, locked for update and read afresh."""
    return session.get(model, ident, with_for_update=True, populate_existing=True)
