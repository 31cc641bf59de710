"""The dialer: ring a free agent, whisper who is waiting and why, then bridge the caller.

Every step is recorded in SQL first (attempt stage, request status, agent availability), so a
lost job or a repeated webhook changes nothing twice. Which callback a progressive agent gets
is decided by the router (callbacks/workqueue/router.py), with live callers in the same queue;
routing starts on events (a request arrives, an agent becomes available, a call ends) and on
the worker's periodic sweep.

Outcomes: the caller talked to the agent (done); the caller was busy, did not answer or the call
failed (retry after the next backoff step, then unreachable: the caller gets an SMS and the
ticket says so); the agent did not answer or hung up before the bridge (the request goes back to
the queue unharmed: it does not count as an attempt on the caller).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis import Redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callbacks import runtime
from callbacks.db import utcnow
from callbacks.display_time import local_text, readers_zone
from callbacks.queues import (
    enqueue_route_job,
    enqueue_status_sms,
    enqueue_survey_sms,
    enqueue_wrap_up_end,
    schedule_route_sweep,
)
from callbacks.settings import Settings
from callbacks.telephony import TelephonyError, place_call
from callbacks.tickets import caller_texts
from callbacks.tickets.ticket import Ticket, add_event
from callbacks.tickets.workflow import change_status
from callbacks.workqueue.agents import Agent, release_agent
from callbacks.workqueue.attempts import CALLER_MISSED, LIVE_STAGES, CallbackAttempt
from callbacks.workqueue.callback_requests import (
    CallbackRequest,
    ClaimedCallback,
    claim_callback,
    put_back,
)

log = logging.getLogger(__name__)

DIAL_ERROR_PAUSE = timedelta(minutes=1)
"""How long a request waits after Twilio refused to place a call (an outage at Twilio)."""


class DialRefused(RuntimeError):
    """A dial the agent asked for cannot start; the message says why."""


class ReservedForAnother(DialRefused):
    """The callback is reserved for another agent (only they, or an admin, may call it)."""


@dataclass(frozen=True)
class Whisper:
    """What the agent hears before the bridge, and whom to bridge."""

    text: str
    dial_number: str
    caller_id: str
    timeout: int


@dataclass(frozen=True)
class DialOutcome:
    """How an attempt ended, for the agent's last words and the call list."""

    outcome: str
    request_status: str
    next_try_at: datetime | None = None


def call_now(session: Session, settings: Settings, agent: Agent,
             request_id: int) -> CallbackAttempt:
    """Preview mode: the agent clicked Call on a request; ring the agent now, then the caller.

    A callback reserved for another agent is refused (ReservedForAnother); an admin may call it
    anyway, and the override is written into the ticket's history.
    """
    if not agent.phone:
        raise DialRefused("set the phone number you answer before calling")
    holder = _reserved_for_another(session, request_id, agent)
    taken = session.execute(
        update(Agent).where(Agent.id == agent.id, Agent.availability != "on_call")
        .values(availability="on_call", availability_since=utcnow())
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise DialRefused("you are on a call already")
    session.commit()
    claimed = claim_callback(runtime.claim_engine(), request_id, f"agent:{agent.id}",
                             agent_id=None if holder else agent.id)
    if claimed is None:
        release_agent(session, agent.id, "available")
        session.commit()
        if _reserved_for_another(session, request_id, agent):  # reserved meanwhile
            raise ReservedForAnother("this callback was just reserved for another agent")
        raise DialRefused("this callback is not waiting any more (someone took it or closed it)")
    if holder is not None:
        request = session.get(CallbackRequest, request_id)
        assert request is not None
        _note(session, request, "reservation_overridden",
              f"callback {request_id} was reserved for {holder.name}; called by an admin",
              by=agent.username)
        session.commit()
        log.info("callback %s: an admin called it over another agent's reservation", request_id)
    return dial_claimed(session, settings, agent, claimed, mode="preview")


def _reserved_for_another(session: Session, request_id: int, agent: Agent) -> Agent | None:
    """The agent a callback is reserved for when that is someone else and `agent` is an admin
    (who may override); ReservedForAnother when `agent` may not; None if it is free to call."""
    assigned = session.scalar(select(CallbackRequest.assigned_agent_id)
                              .where(CallbackRequest.id == request_id))
    if assigned is None or assigned == agent.id:
        return None
    holder = session.get(Agent, assigned)
    name = holder.name if holder is not None else "another agent"
    if not agent.is_admin or holder is None:
        raise ReservedForAnother(f"this callback is reserved for {name}; ask them or an admin "
                                 "to reassign it before calling")
    return holder


def dial_claimed(session: Session, settings: Settings, agent: Agent, claimed: ClaimedCallback,
                 mode: str) -> CallbackAttempt:
    """Record the attempt, then ask Twilio to ring the agent; the webhooks take it from there."""
    attempt = CallbackAttempt(request_id=claimed.id, agent_id=agent.id, number=claimed.attempts,
                              stage="dialing_agent", mode=mode, started_at=utcnow())
    session.add(attempt)
    session.commit()
    base = settings.public_base_url
    try:
        sid = place_call(settings, to=agent.phone, from_=settings.callback_from or agent.phone,
                         url=f"{base}/dialer/agent?attempt={attempt.id}",
                         status_callback=f"{base}/dialer/agent-status?attempt={attempt.id}")
    except TelephonyError as error:
        log.warning("callback %s: placing the agent's call failed: %s", claimed.id, error)
        _end_attempt(session, attempt, "dial_error", error.public)  # agents read it
        put_back(session, claimed.id, utcnow() + DIAL_ERROR_PAUSE, refund_attempt=True)
        release_agent(session, agent.id, "available")
        session.commit()
        return attempt
    attempt.agent_call_sid = sid
    session.commit()
    return attempt


def agent_answered(session: Session, settings: Settings, attempt_id: int,
                   now: datetime | None = None) -> Whisper | None:
    """The agent picked up: what to whisper and whom to bridge; None if the attempt is over."""
    attempt = session.get(CallbackAttempt, attempt_id, with_for_update=True)
    if attempt is None or attempt.stage not in LIVE_STAGES:
        return None
    request = session.get(CallbackRequest, attempt.request_id)
    if request is None or request.status != "claimed":
        _end_attempt(session, attempt, "abandoned", "the request was closed meanwhile")
        if attempt.agent_id is not None:
            release_agent(session, attempt.agent_id, "available")
        session.commit()
        return None
    moment = now or utcnow()
    if attempt.stage == "dialing_agent":
        attempt.stage = "dialing_caller"
        attempt.answered_at = moment
    text = whisper_text(session, request, settings.callback_max_attempts, moment)
    session.commit()
    return Whisper(text=text, dial_number=request.dial_number or request.caller,
                   caller_id=settings.callback_from, timeout=settings.dial_timeout_seconds)


def whisper_text(session: Session, request: CallbackRequest, max_attempts: int,
                 now: datetime) -> str:
    """Who is waiting, why, for how long and which try this is, in a sentence or three."""
    employee = runtime.directory().lookup(request.caller)
    who = f"{employee.name}, {employee.department}" if employee else spoken_digits(request.caller)
    waited = max(0, int((now - request.first_contact_at).total_seconds() // 60))
    ticket = session.get(Ticket, request.ticket_id) if request.ticket_id else None
    parts = [
        f"Callback to {who}, about {request.category.replace('_', ' ')}, "
        f"priority {request.priority}.",
        f"Waiting {spoken_duration(waited)}, attempt {request.attempts} of {max_attempts}.",
    ]
    if ticket is not None:
        parts.append(f"Ticket {spoken_digits(ticket.number)}.")
    parts.append("Connecting you now.")
    return " ".join(parts)


def caller_dial_ended(session: Session, settings: Settings, attempt_id: int, status: str,
                      duration: int | None, now: datetime | None = None) -> DialOutcome | None:
    """The bridge to the caller ended (Dial's action): done, retry later, or unreachable."""
    attempt = session.get(CallbackAttempt, attempt_id, with_for_update=True)
    if attempt is None or attempt.stage not in LIVE_STAGES:
        return None  # Twilio delivered the same action again
    moment = now or utcnow()
    request = session.get(CallbackRequest, attempt.request_id, with_for_update=True)
    assert request is not None
    if status in ("completed", "answered"):
        _end_attempt(session, attempt, "completed", f"talked {duration or 0} s", moment)
        attempt.talk_seconds = duration
        _close(session, request, "done", moment)
        _note(session, request, "called_back", f"by agent {attempt.agent_id}, "
              f"{duration or 0} s, attempt {request.attempts}")
        result = DialOutcome("completed", "done")
        agent_state = "wrap_up"
    else:
        outcome = {"busy": "caller_busy", "no-answer": "caller_no_answer"}.get(
            status, "caller_failed")
        _end_attempt(session, attempt, outcome, f"Twilio DialCallStatus {status}", moment)
        result = _after_missed(session, settings, request, outcome, moment)
        agent_state = "available"
    if attempt.agent_id is not None:
        release_agent(session, attempt.agent_id, agent_state, moment)
    session.commit()
    after_release(settings, attempt.agent_id, agent_state)
    if result.outcome == "completed" and settings.survey.enabled:
        _queue_survey(request, attempt.agent_id)
    if result.request_status == "unreachable" and request.ticket_id is None:
        # A ticket's caller is texted about its `unreachable` event once the commit is done.
        enqueue_status_sms(runtime.redis(), "unreachable", request_id=request.id)
    return result


def agent_call_ended(session: Session, settings: Settings, attempt_id: int, status: str,
                     now: datetime | None = None) -> str | None:
    """The agent's leg ended (its status callback); puts the request back if it never bridged."""
    attempt = session.get(CallbackAttempt, attempt_id, with_for_update=True)
    if attempt is None or attempt.stage not in LIVE_STAGES:
        return None
    moment = now or utcnow()
    if status == "completed":
        outcome, agent_state = "agent_hung_up", "wrap_up"
    else:
        # An agent who does not pick up is probably away from the phone: stop ringing them.
        outcome = "agent_busy" if status == "busy" else (
            "agent_no_answer" if status in ("no-answer", "canceled") else "agent_failed")
        agent_state = "away"
    _end_attempt(session, attempt, outcome, f"Twilio CallStatus {status}", moment)
    put_back(session, attempt.request_id, moment, refund_attempt=True)
    if attempt.agent_id is not None:
        release_agent(session, attempt.agent_id, agent_state, moment)
    session.commit()
    after_release(settings, attempt.agent_id, agent_state)
    enqueue_dial(runtime.redis())  # another agent may take it now
    return outcome


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    """How long to wait after the caller missed attempt number `attempts` (1-based)."""
    steps = settings.callback_retry_minutes
    return timedelta(minutes=steps[min(attempts, len(steps)) - 1])


def end_wrap_up(agent_id: int) -> bool:
    """Job: an agent's wrap-up time is over; make them available (if still wrapping up)."""
    with runtime.sessions()() as session:
        changed = session.execute(
            update(Agent).where(Agent.id == agent_id, Agent.availability == "wrap_up")
            .values(availability="available", availability_since=utcnow())
        ).rowcount == 1  # type: ignore[attr-defined]
        session.commit()
    if changed:
        enqueue_dial(runtime.redis(), agent_id)
    return changed


def enqueue_dial(connection: Redis, agent_id: int | None = None) -> None:
    """Queue routing for `agent_id` (or a sweep over all free agents); never fails the caller."""
    try:
        enqueue_route_job(connection, agent_id)
    except Exception:
        # Redis down: the worker's periodic sweep routes from SQL anyway.
        log.warning("could not queue a routing job; the periodic sweep will route",
                    exc_info=True)


def dial_when_due(connection: Redis, available_at: datetime) -> None:
    """A request arrived: sweep now, or when the caller's window opens (rq's scheduler)."""
    if available_at <= utcnow():
        enqueue_dial(connection)
        return
    try:
        schedule_route_sweep(connection, available_at)
    except Exception:
        log.warning("could not schedule a dial sweep; the periodic sweep will dial",
                    exc_info=True)


def _after_missed(session: Session, settings: Settings, request: CallbackRequest, outcome: str,
                  moment: datetime) -> DialOutcome:
    assert outcome in CALLER_MISSED
    if request.attempts >= settings.callback_max_attempts:
        _close(session, request, "unreachable", moment)
        ticket = session.get(Ticket, request.ticket_id) if request.ticket_id else None
        if ticket is not None:
            # The caller is texted about this event; the ticket now waits for them to call.
            event = add_event(session, ticket, "unreachable",
                              f"no answer after {request.attempts} attempts", notify=True)
            caller_texts.after_commit(session, event)
            if ticket.status in ("new", "assigned", "in_progress"):
                change_status(session, ticket, "waiting_for_caller", by="dialer",
                              note="the callback could not reach the caller", notify=False)
        return DialOutcome(outcome, "unreachable")
    next_try = moment + retry_delay(settings, request.attempts)
    put_back(session, request.id, next_try)
    _note(session, request, "callback_retry",
          f"attempt {request.attempts} {outcome.replace('_', ' ')}; next try "
          f"{local_text(next_try, readers_zone(session))}")
    _schedule_sweep(next_try)
    return DialOutcome(outcome, "pending", next_try)


def after_release(settings: Settings, agent_id: int | None, state: str) -> None:
    """After an agent's call: schedule the end of their wrap-up, or route them at once."""
    if agent_id is None:
        return
    try:
        if state == "wrap_up":
            enqueue_wrap_up_end(runtime.redis(), agent_id, settings.wrap_up_seconds)
        elif state == "available":
            enqueue_dial(runtime.redis(), agent_id)
    except Exception:
        log.warning("could not queue the agent's next step; the sweep will", exc_info=True)


def _queue_survey(request: CallbackRequest, agent_id: int | None) -> None:
    try:
        enqueue_survey_sms(runtime.redis(), request.id, request.ticket_id, agent_id)
    except Exception:
        # Redis down: a survey is a nicety, the callback itself is done and recorded.
        log.warning("could not queue the survey SMS of callback %s", request.id, exc_info=True)


def _schedule_sweep(at: datetime) -> None:
    try:
        schedule_route_sweep(runtime.redis(), at)
    except Exception:
        log.warning("could not schedule a dial sweep; the periodic sweep will dial",
                    exc_info=True)


def _end_attempt(session: Session, attempt: CallbackAttempt, outcome: str, detail: str,
                 moment: datetime | None = None) -> None:
    attempt.stage = outcome
    attempt.detail = detail
    attempt.ended_at = moment or utcnow()


def _close(session: Session, request: CallbackRequest, status: str, moment: datetime) -> None:
    request.status = status
    request.closed_at = moment
    request.claimed_by = None


def _note(session: Session, request: CallbackRequest, kind: str, detail: str,
          by: str = "system") -> None:
    ticket = session.get(Ticket, request.ticket_id) if request.ticket_id else None
    if ticket is not None:
        add_event(session, ticket, kind, detail, by=by)


def spoken_digits(text: str) -> str:
    """A phone number as the agent hears it, digit by digit ('plus 4 9 ...')."""
    return " ".join(ch for ch in text if ch.isdigit() or ch == "+").replace("+", "plus")


def spoken_duration(minutes: int) -> str:
    """'1 minute', '42 minutes', '2 hours 5 minutes'."""
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, rest = divmod(minutes, 60)
    return f"{hours} hour{'s' if hours != 1 else ''} {rest} minutes"
