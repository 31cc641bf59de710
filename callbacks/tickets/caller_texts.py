"""Texts to callers about their ticket: one per event marked `notify` (a status change, an
agent's reply, a callback that could not reach them), in the caller's language.

The workflow marks the event in the agent's transaction; once that commits, a job keyed by the
event is queued (`sms-event-<id>`), so a repeated click, webhook or job never texts twice.
The job records its outcome as a follow-up event about the one it texted: `sms_sent`,
`sms_skipped` (the number cannot receive texts, or it opted out with STOP) or `sms_failed`
(Twilio refused for good). A passing failure is retried by rq; a job Redis lost is queued
again by the reconciler (`requeue_caller_texts`) for any notified event without an outcome.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from sqlalchemy import event as sql_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks import runtime
from callbacks.calllog import Call
from callbacks.db import record_after_the_fact
from callbacks.queues import SMS_RETRY, URGENT, enqueue_unique
from callbacks.sms import can_receive_sms, sms_text, sms_texts
from callbacks.survey import invitation_sent, open_invitation
from callbacks.telephony import TelephonyError
from callbacks.tickets.optout import SKIPPED_DETAIL, OptedOut, is_opted_out, send_text
from callbacks.tickets.ticket import Ticket, TicketEvent, add_event
from callbacks.workqueue.agents import Agent
from callbacks.workqueue.callback_requests import CallbackRequest

log = logging.getLogger(__name__)

PENDING = "ivr.caller_texts"
"""Where a session keeps the events whose texts go out when it commits."""
OUTCOMES = ("sms_sent", "sms_failed", "sms_skipped")
TEXTED_KINDS = ("status", "reply", "unreachable")
MAX_NOTE = 300
"""Characters of an agent's note that go into a status text (SMS segments cost money)."""
_SPACES = re.compile(r"[ \t]{2,}")
_DONE = ("resolved", "closed")


@dataclass(frozen=True)
class CallerText:
    """A text as the caller will get it: what it is about, its language and its words."""

    what: str
    language: str
    body: str


def caller_text_job_id(event_id: int) -> str:
    """The job id of the text about one ticket event."""
    return f"sms-event-{event_id}"


def after_commit(session: Session, event: TicketEvent) -> None:
    """Queue the caller's text about `event` once `session` commits (nothing on rollback)."""
    session.info.setdefault(PENDING, []).append(event)


@sql_event.listens_for(Session, "after_commit")
def _queue_committed(session: Session) -> None:
    events = session.info.pop(PENDING, None)
    if not events:
        return
    ids = [event.id for event in events if event.id is not None]
    try:
        queue_caller_texts(runtime.redis(), ids)
    except Exception:
        # Redis away (or no worker configured): the reconciler queues them from SQL.
        log.warning("could not queue texts about ticket events %s; the reconciler will", ids,
                    exc_info=True)


@sql_event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(PENDING, None)


def queue_caller_texts(connection: Redis, event_ids: Iterable[int]) -> list[int]:
    """Queue the text about each event (once per event: a queued or running one stays)."""
    queued = []
    for event_id in event_ids:
        if enqueue_unique(connection, URGENT, "callbacks.tickets.caller_texts.send_caller_text",
                          caller_text_job_id(event_id), event_id, retry=SMS_RETRY, timeout=60):
            queued.append(event_id)
    return queued


NO_SENDER = "the line has no number to send texts from (an admin has to set one up)"


def why_no_text(session: Session, ticket: Ticket) -> str | None:
    """Why the ticket's caller cannot be texted (no mobile number, opted out, no sender), or
    None."""
    return why_not_textable(session, ticket.caller, sender_for(session, ticket))


def why_not_textable(session: Session, phone: str, sender: str | None) -> str | None:
    """Why a text to `phone` from `sender` cannot go out (no mobile number, opted out with
    STOP, no number to send from), or None."""
    if not can_receive_sms(phone):
        return "the caller's number cannot receive texts"
    if is_opted_out(session, phone):
        return SKIPPED_DETAIL
    if sender is None:
        return NO_SENDER
    return None


def sender_for(session: Session, ticket: Ticket) -> str | None:
    """The number texts to this ticket's caller come from: IVR_SMS_FROM, else the number they
    dialled; None when neither is known."""
    return runtime.settings().sms_from or line_called(session, ticket.caller, ticket.call_sid)


def line_called(session: Session, phone: str, call_sid: str | None = None) -> str | None:
    """The number a caller dialled (texts come from it when IVR_SMS_FROM is not set): that of
    call `call_sid`, else of their latest logged call."""
    return (call_sid and session.scalar(select(Call.called).where(Call.call_sid == call_sid))) \
        or session.scalar(select(Call.called).where(Call.caller == phone, Call.called != "")
                          .order_by(Call.id.desc()).limit(1)) or None


def subject_of(event: TicketEvent) -> tuple[str, str]:
    """What a texted event is about ('resolved', 'reopened', 'reply', 'unreachable', ...) and
    the words of the agent that go with it (a status note, a reply)."""
    if event.kind == "status":
        old, _, rest = event.detail.partition(" -> ")
        new, _, note = rest.partition(": ")
        reopened = old in _DONE and new not in _DONE
        return ("reopened" if reopened else new), note
    return event.kind, event.detail if event.kind == "reply" else ""


def compose(ticket: Ticket, what: str, words: str = "", *, attempts: int = 0,
            survey: bool = False) -> CallerText:
    """The text the caller gets about `what` (a status, 'reopened', 'reply', 'unreachable')."""
    asked = ticket.language or "en"
    if what == "reply":
        name, values = "reply", {"number": ticket.number, "text": words}
    elif what == "unreachable":
        name = "callback_unreachable"
        values = {"attempts": str(attempts),
                  "about": sms_text("ticket_about", asked, number=ticket.number)}
    else:
        name, values = f"status_{what}", {"number": ticket.number,
                                          "note": words.strip()[:MAX_NOTE]}
    body = _SPACES.sub(" ", sms_text(name, asked, **values)).strip()
    if survey:
        body = f"{body} {sms_text('survey_question', asked)}"
    return CallerText(what, sms_texts().language_of(name, asked), body)


def preview(session: Session, ticket: Ticket, what: str, words: str = "") -> CallerText | None:
    """What an agent's action would text the caller, or None when no text would go out."""
    if why_no_text(session, ticket) is not None:
        return None
    return compose(ticket, what, words)


def send_caller_text(event_id: int) -> str | None:
    """Job: text the caller about one ticket event, once; the outcome goes into the history."""
    from callbacks.jobs import RetryLater

    settings = runtime.settings()
    with runtime.sessions()() as session:
        event = session.get(TicketEvent, event_id, with_for_update=True)
        if event is None or not event.notify or outcome_of(session, event_id) is not None:
            return None  # no such event, nothing to text, or texted already
        ticket = session.get(Ticket, event.ticket_id)
        assert ticket is not None
        what, words = subject_of(event)
        reason = why_no_text(session, ticket)
        if reason:
            add_event(session, ticket, "sms_skipped", f"{what}: {reason}",
                      about_event_id=event_id)
            session.commit()
            return None
        invitation_id = None
        if what == "resolved" and settings.survey.enabled:
            # The resolution text carries the survey question: one text, not two.
            invitation = open_invitation(session, ticket=ticket, request=None,
                                         agent_id=_agent_id(session, event.by))
            invitation_id = invitation.id if invitation is not None else None
        text = compose(ticket, what, words, attempts=_attempts(session, ticket.id),
                       survey=invitation_id is not None)
        sender = sender_for(session, ticket)
        caller, ticket_id = ticket.caller, ticket.id
        session.commit()
    try:
        sid = send_text(settings, caller, text.body, from_=sender)
    except OptedOut as refused:
        _invitation_sent(invitation_id, None, ok=False)
        _record(ticket_id, event_id, "sms_skipped", f"{what}: {refused}")
        return None
    except TelephonyError as error:
        if error.retryable:
            raise RetryLater(str(error)) from error
        # The setting to fix is for admins (the log); agents read the ticket's history.
        log.warning("the %s text of ticket %s was not sent: %s", what, ticket_id, error)
        _invitation_sent(invitation_id, None, ok=False)
        _record(ticket_id, event_id, "sms_failed", f"{what}: {error.public}")
        return None
    _invitation_sent(invitation_id, sid)
    _record(ticket_id, event_id, "sms_sent", f"{what} ({text.language}): {sid}")
    return sid


def outcome_of(session: Session, event_id: int) -> TicketEvent | None:
    """The follow-up that says how the text about an event ended, if it did."""
    return session.scalar(select(TicketEvent).where(
        TicketEvent.about_event_id == event_id, TicketEvent.kind.in_(OUTCOMES))
        .order_by(TicketEvent.id).limit(1))


def _attempts(session: Session, ticket_id: int) -> int:
    return session.scalar(select(CallbackRequest.attempts).where(
        CallbackRequest.ticket_id == ticket_id).order_by(CallbackRequest.id.desc()).limit(1)) or 0


def _agent_id(session: Session, username: str) -> int | None:
    return session.scalar(select(Agent.id).where(Agent.username == username))


def _invitation_sent(invitation_id: int | None, sid: str | None, ok: bool = True) -> None:
    if invitation_id is None:
        return
    record_after_the_fact(runtime.sessions(),
                          lambda session: invitation_sent(session, invitation_id, sid, ok))


def _record(ticket_id: int, event_id: int, kind: str, detail: str) -> None:
    def write(session: Session) -> None:
        ticket: Any = session.get(Ticket, ticket_id)
        if ticket is not None:
            add_event(session, ticket, kind, detail, about_event_id=event_id)

    record_after_the_fact(runtime.sessions(), write)
