"""The ticket page's one-click actions: take, assign, change status (or reopen), internal note,
reply to the caller, priority, and the recordings of messages the caller added by phone.

Each action calls one function of callbacks/tickets/actions.py and goes back to the ticket's
page with a flash that says what happened, including whether the caller will get a text; what
the workflow refuses becomes a flash error, never a 500. Every form carries the CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response as BaseResponse

from callbacks.db import small_number
from callbacks.desk import message_audio
from callbacks.tickets.actions import (
    ActionResult,
    assign_ticket,
    move_ticket,
    note_ticket,
    prioritise_ticket,
    take_ticket,
)
from callbacks.tickets.ticket import Ticket
from callbacks.tickets.workflow import TicketError, desk_hours
from ivr.auth import signed_in_agent
from ivr.console.blueprint import bp, safe_next, ticket_id_of
from ivr.db import get_session


def _ticket_or_404(number_or_id: int) -> Ticket:
    ticket = get_session().get(Ticket, ticket_id_of(number_or_id))
    if ticket is None:
        abort(404)
    return ticket


def _on_ticket(number_or_id: int, action: Callable[[int], ActionResult]) -> BaseResponse:
    """Run an action on the ticket; its sentence (or the refusal) is flashed; back to the page."""
    ticket = _ticket_or_404(number_or_id)
    page = url_for("console.ticket_page", number_or_id=ticket.number)
    try:
        flash(action(ticket.id).message, "ok")
    except TicketError as refusal:
        get_session().rollback()
        flash(str(refusal), "error")
    return redirect(safe_next(request.form.get("next"), page), code=303)


@bp.post("/tickets/<int:number_or_id>/take")
@login_required
def take(number_or_id: int) -> BaseResponse:
    """The signed-in agent takes the ticket."""
    return _on_ticket(number_or_id,
                      lambda ticket_id: take_ticket(get_session(), ticket_id, signed_in_agent()))


@bp.post("/tickets/<int:number_or_id>/assign")
@login_required
def assign(number_or_id: int) -> BaseResponse:
    """Assign the ticket to an agent, or to nobody (an empty choice)."""
    def assign_to(ticket_id: int) -> ActionResult:
        chosen = request.form.get("agent_id", "").strip()
        agent_id = small_number(chosen)
        if chosen and agent_id is None:
            raise TicketError("no such agent")
        return assign_ticket(get_session(), ticket_id, agent_id, signed_in_agent())

    return _on_ticket(number_or_id, assign_to)


@bp.post("/tickets/<int:number_or_id>/status")
@login_required
def change_status(number_or_id: int) -> BaseResponse:
    """Move the ticket to the status of the button pressed (or reopen it), with a note."""
    return _on_ticket(number_or_id, lambda ticket_id: move_ticket(
        get_session(), ticket_id, request.form.get("status", ""), request.form.get("note", ""),
        signed_in_agent()))


@bp.post("/tickets/<int:number_or_id>/note")
@login_required
def add_note(number_or_id: int) -> BaseResponse:
    """An internal note (kind=note) or a reply texted to the caller (kind=reply)."""
    def note(ticket_id: int) -> ActionResult:
        kind = request.form.get("kind", "note")
        if kind not in ("note", "reply"):
            raise TicketError("choose an internal note or a reply to the caller")
        return note_ticket(get_session(), ticket_id, request.form.get("text", ""),
                           signed_in_agent(), internal=kind == "note")

    return _on_ticket(number_or_id, note)


@bp.post("/tickets/<int:number_or_id>/priority")
@login_required
def set_priority(number_or_id: int) -> BaseResponse:
    """Change the ticket's priority; its SLA deadline is counted again."""
    def prioritise(ticket_id: int) -> ActionResult:
        session = get_session()
        return prioritise_ticket(session, ticket_id, request.form.get("priority", ""),
                                 signed_in_agent(), current_app.extensions["ivr.priorities"],
                                 desk_hours(session, current_app.config["DEFAULT_FLOW"]))

    return _on_ticket(number_or_id, prioritise)


@bp.get("/tickets/<int:number_or_id>/messages/<int:voicemail_id>/audio")
@login_required
def message_audio_file(number_or_id: int, voicemail_id: int) -> Response:
    """A message the caller added by phone, to signed-in agents only, never cached."""
    ticket = _ticket_or_404(number_or_id)
    audio = message_audio(get_session(), ticket.id, voicemail_id)
    if audio is None:
        abort(404)
    response = Response(audio, mimetype="audio/wav")
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Disposition"] = (
        f'inline; filename="ticket-{ticket.number}-message-{voicemail_id}.wav"')
    return response
