"""Follow-up texts to callers: their callback could not reach them, and how satisfied they are
(texts about a ticket's changes are callbacks/tickets/caller_texts.py)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks import runtime
from callbacks.db import record_after_the_fact
from callbacks.jobs import RetryLater
from callbacks.sms import can_receive_sms, sms_text
from callbacks.survey import invitation_sent, open_invitation
from callbacks.telephony import TelephonyError
from callbacks.tickets.caller_texts import send_caller_text
from callbacks.tickets.optout import OptedOut, send_text
from callbacks.tickets.ticket import Ticket, TicketEvent, add_event
from callbacks.workqueue.callback_requests import CallbackRequest

log = logging.getLogger(__name__)

KINDS = ("unreachable", "resolved")


def status_text(kind: str, language: str, *, request: CallbackRequest) -> str:
    """The follow-up about a callback without a ticket, in the caller's language."""
    if kind != "unreachable":
        raise ValueError(f"unknown follow-up {kind!r} for a callback without a ticket")
    return sms_text("callback_unreachable", language, attempts=str(request.attempts), about="")


def send_status_sms(kind: str, request_id: int | None, ticket_id: int | None) -> str | None:
    """Job: text the caller a follow-up (unreachable, resolved).

    About a ticket, the text is the one of the ticket's latest such event (sent once per event
    by callbacks/tickets/caller_texts.py); here only a callback without a ticket is texted
    directly, and its outcome is only logged (it has no history).
    """
    settings = runtime.settings()
    with runtime.sessions()() as session:
        request = session.get(CallbackRequest, request_id) if request_id else None
        if ticket_id is None and request is not None:
            ticket_id = request.ticket_id
        if ticket_id is not None:
            event_id = _latest_texted_event(session, ticket_id, kind)
            if event_id is None:
                return None
            session.rollback()
            return send_caller_text(event_id)
        if request is None:
            return None
        caller = request.dial_number or request.caller
        body = status_text(kind, request.language or "en", request=request)
    if not can_receive_sms(caller):
        return None
    try:
        return send_text(settings, caller, body)
    except OptedOut:
        return None
    except TelephonyError as error:
        if error.retryable:
            raise RetryLater(str(error)) from error
        log.warning("callback %s: the %s text failed: %s", request_id, kind, error)
        return None


def send_survey_sms(request_id: int | None, ticket_id: int | None,
                    agent_id: int | None) -> str | None:
    """Job: after a callback, ask the caller by SMS how satisfied they are (once per ticket)."""
    settings = runtime.settings()
    with runtime.sessions()() as session:
        request = session.get(CallbackRequest, request_id) if request_id else None
        ticket = session.get(Ticket, ticket_id) if ticket_id else None
        invitation = open_invitation(session, ticket=ticket, request=request,
                                     agent_id=agent_id)
        session.commit()
        if invitation is None:
            return None  # surveyed already (a repeated job, or the ticket's earlier text)
        invitation_id, caller, language = invitation.id, invitation.caller, invitation.language
        if not can_receive_sms(caller):
            _invitation_sent(invitation_id, None, ok=False)
            _record(ticket_id, "sms_skipped", "survey: the caller's number cannot receive texts")
            return None
        about = sms_text("ticket_about", language, number=ticket.number) if ticket else ""
        body = (f"{sms_text('survey_after_call', language, about=about)} "
                f"{sms_text('survey_question', language)}")
    try:
        sid = send_text(settings, caller, body)
    except OptedOut as refused:
        _invitation_sent(invitation_id, None, ok=False)
        _record(ticket_id, "sms_skipped", f"survey: {refused}")
        return None
    except TelephonyError as error:
        if error.retryable:
            raise RetryLater(str(error)) from error
        log.warning("survey text of ticket %s not sent: %s", ticket_id, error)
        _invitation_sent(invitation_id, None, ok=False)
        _record(ticket_id, "sms_failed", f"survey: {error.public}")
        return None
    _invitation_sent(invitation_id, sid)
    _record(ticket_id, "sms_sent", f"survey ({language}): {sid}")
    return sid


def _latest_texted_event(session: Session, ticket_id: int, kind: str) -> int | None:
    """The ticket's latest event of a follow-up kind that its caller is to be texted about."""
    query = select(TicketEvent.id).where(TicketEvent.ticket_id == ticket_id,
                                         TicketEvent.notify.is_(True))
    if kind == "resolved":
        query = query.where(TicketEvent.kind == "status",
                            TicketEvent.detail.like("% -> resolved%"))
    else:
        query = query.where(TicketEvent.kind == kind)
    return session.scalar(query.order_by(TicketEvent.id.desc()).limit(1))


def _invitation_sent(invitation_id: int | None, sid: str | None, ok: bool = True) -> None:
    if invitation_id is None:
        return
    record_after_the_fact(runtime.sessions(),
                          lambda session: invitation_sent(session, invitation_id, sid, ok))


def _record(ticket_id: int | None, kind: str, detail: str) -> None:
    if ticket_id is None:
        return

    def write(session: Session) -> None:
        ticket = session.get(Ticket, ticket_id)
        if ticket is not None:
            add_event(session, ticket, kind, detail)

    record_after_the_fact(runtime.sessions(), write)
