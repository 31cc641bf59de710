"""Follow-up texts to callers: their callback could not reach them, their ticket is resolved,
and how satisfied they are."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks import runtime
from callbacks.db import record_after_the_fact
from callbacks.jobs import RetryLater
from callbacks.sms import can_receive_sms, sms_text
from callbacks.survey import invitation_sent, open_invitation, resolving_agent_id
from callbacks.telephony import TelephonyError, send_sms
from callbacks.tickets.ticket import Ticket, TicketEvent, add_event
from callbacks.workqueue.callback_requests import CallbackRequest

log = logging.getLogger(__name__)

KINDS = ("unreachable", "resolved")
MAX_NOTE = 300
"""Characters of an agent's note that go into a resolution text (SMS segments cost money)."""


def status_text(kind: str, language: str, *, ticket: Ticket | None, attempts: int = 0,
                note: str = "", survey: bool = False) -> str:
    """The follow-up message of `kind` in the caller's language (a resolution may ask the survey
    question at its end)."""
    if kind == "unreachable":
        about = sms_text("ticket_about", language, number=ticket.number) if ticket else ""
        return sms_text("callback_unreachable", language, attempts=str(attempts), about=about)
    if kind == "resolved":
        assert ticket is not None
        text = sms_text("ticket_resolved", language, number=ticket.number,
                        note=note.strip()[:MAX_NOTE]).strip()
        return f"{text} {sms_text('survey_question', language)}" if survey else text
    raise ValueError(f"unknown follow-up {kind!r}")


def send_status_sms(kind: str, request_id: int | None, ticket_id: int | None) -> str | None:
    """Job: text the caller a follow-up; recorded on the ticket (sent, skipped or failed)."""
    settings = runtime.settings()
    invitation_id = None
    with runtime.sessions()() as session:
        request = session.get(CallbackRequest, request_id) if request_id else (
            session.scalar(select(CallbackRequest).where(CallbackRequest.ticket_id == ticket_id)
                           .order_by(CallbackRequest.id.desc()).limit(1)) if ticket_id else None)
        if ticket_id is None and request is not None:
            ticket_id = request.ticket_id
        ticket = session.get(Ticket, ticket_id) if ticket_id else None
        caller = ticket.caller if ticket else (request.caller if request else "")
        language = (ticket.language if ticket else "") or (request.language if request else "")
        note = ""
        if kind == "resolved" and ticket is not None:
            note = resolution_note(session, ticket.id)
        if not can_receive_sms(caller):
            if ticket is not None:
                add_event(session, ticket, "sms_skipped",
                          f"{kind}: the caller's number cannot receive texts")
                session.commit()
            return None
        if kind == "resolved" and ticket is not None and settings.survey.enabled:
            # The resolution text carries the survey question: one text, not two.
            invitation = open_invitation(session, ticket=ticket, request=None,
                                         agent_id=resolving_agent_id(session, ticket.id))
            invitation_id = invitation.id if invitation is not None else None
            session.commit()
        body = status_text(kind, language or "en", ticket=ticket,
                           attempts=request.attempts if request else 0, note=note,
                           survey=invitation_id is not None)
    try:
        sid = send_sms(settings, caller, body)
    except TelephonyError as error:
        if error.retryable:
            raise RetryLater(str(error)) from error
        log.warning("follow-up text (%s) of ticket %s not sent: %s", kind, ticket_id, error)
        _record(ticket_id, "sms_failed", f"{kind}: {error.public}")
        _invitation_sent(invitation_id, None, ok=False)
        return None
    _invitation_sent(invitation_id, sid)
    _record(ticket_id, "sms_sent", f"{kind} ({language or 'en'}): {sid}")
    return sid


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
        sid = send_sms(settings, caller, body)
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


def resolution_note(session: Session, ticket_id: int) -> str:
    """The note of the ticket's latest resolution, or ''."""
    return session.scalar(
        select(TicketEvent.detail)
        .where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "resolved")
        .order_by(TicketEvent.id.desc()).limit(1)
    ) or ""


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
