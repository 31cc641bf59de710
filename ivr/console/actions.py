"""The console's one-click actions: call now, snooze, resolve with a note, reassign, availability,
take next.

Each action calls one function of callbacks/desk.py or callbacks/workqueue/dialer.py and goes
back to the page it came from with a flash message; what the desk refuses becomes a flash
error, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from callbacks import runtime
from callbacks.db import small_number
from callbacks.desk import (
    DeskError,
    change_availability,
    reassign_callback,
    resolve_callback,
    resolve_ticket,
    snooze_callback,
)
from callbacks.tickets.caller_texts import why_no_text
from callbacks.tickets.ticket import Ticket
from callbacks.workqueue.callback_requests import CallbackRequest
from callbacks.workqueue.current_work import take_next
from callbacks.workqueue.dialer import DialRefused, call_now
from ivr.auth import signed_in_agent
from ivr.console.blueprint import bp, display_zone, local_time, safe_next, ticket_id_of
from ivr.db import get_session


def local_input_time(text: str, zone: ZoneInfo) -> datetime:
    """A datetime-local field's value ('2026-05-04T14:30') read as a wall time in `zone`."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DeskError("give a date and a time, for example 2026-05-04 14:30") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _act(action: Callable[[], str], default_back: str) -> Response:
    """Run an action; its message (or the desk's refusal) is flashed; back to the page."""
    try:
        flash(action(), "ok")
    except (DeskError, DialRefused) as refusal:
        get_session().rollback()
        flash(str(refusal), "error")
    return redirect(safe_next(request.form.get("next"), default_back), code=303)


def _text_goes_out(done: str, ticket_id: int | None) -> str:
    """The flash after a resolve: the caller gets a text, or (flashed as an error) why not."""
    ticket = get_session().get(Ticket, ticket_id) if ticket_id is not None else None
    problem = why_no_text(get_session(), ticket) if ticket is not None else None
    if problem is None:
        return f"{done}; the caller gets a text with your note."
    flash(f"No text goes to the caller: {problem}. Tell them another way.", "error")
    return f"{done}."


def _callback_or_404(request_id: int) -> CallbackRequest:
    callback = get_session().get(CallbackRequest, request_id)
    if callback is None:
        abort(404)
    return callback


def _callback_page(request_id: int) -> str:
    return url_for("console.callback_page", request_id=request_id)


@bp.post("/callbacks/<int:request_id>/call")
@login_required
def call_callback(request_id: int) -> Response:
    """Preview mode's Call button: ring the agent's phone now, then the caller."""
    _callback_or_404(request_id)
    agent = signed_in_agent()

    def call() -> str:
        attempt = call_now(get_session(), runtime.settings(), agent, request_id)
        if attempt.stage == "dial_error":
            raise DialRefused(f"the call could not be placed ({attempt.detail}); "
                              "the callback stays in the list")
        return f"Calling your phone {agent.phone} now; answer it to be connected."

    return _act(call, _callback_page(request_id))


@bp.post("/callbacks/<int:request_id>/snooze")
@login_required
def snooze(request_id: int) -> Response:
    """Hide a callback from the dialer until a time given in the display time zone."""
    _callback_or_404(request_id)

    def snooze_until() -> str:
        until = local_input_time(request.form.get("until", ""), display_zone())
        snooze_callback(get_session(), request_id, until, signed_in_agent())
        return f"Callback {request_id} snoozed until {local_time(until)}."

    return _act(snooze_until, _callback_page(request_id))


@bp.post("/callbacks/<int:request_id>/resolve")
@login_required
def resolve(request_id: int) -> Response:
    """Close a callback and its ticket with a note; the caller gets a status SMS."""
    _callback_or_404(request_id)

    def resolve_with_note() -> str:
        note = request.form.get("note", "")
        if not note.strip():
            raise DeskError("write a short note for the caller")
        resolved = resolve_callback(get_session(), request_id, note, signed_in_agent())
        return _text_goes_out(f"Callback {request_id} resolved", resolved.ticket_id)

    return _act(resolve_with_note, _callback_page(request_id))


@bp.post("/callbacks/<int:request_id>/reassign")
@login_required
def reassign(request_id: int) -> Response:
    """Reserve a callback for one agent, or give it back to everyone."""
    _callback_or_404(request_id)

    def reassign_to() -> str:
        chosen = request.form.get("agent_id", "").strip()
        agent_id = small_number(chosen)
        if chosen and agent_id is None:
            raise DeskError("no such agent")
        reassign_callback(get_session(), request_id, agent_id, signed_in_agent())
        return f"Callback {request_id} reassigned." if agent_id else (
            f"Callback {request_id} is open to every agent again.")

    return _act(reassign_to, _callback_page(request_id))


@bp.post("/tickets/<int:number_or_id>/resolve")
@login_required
def resolve_ticket_page(number_or_id: int) -> Response:
    """Resolve a ticket with a note (its waiting callbacks close); the caller gets an SMS."""
    ticket = get_session().get(Ticket, ticket_id_of(number_or_id))
    if ticket is None:
        abort(404)
    ticket_id = ticket.id

    def resolve_with_note() -> str:
        resolved = resolve_ticket(get_session(), ticket_id, request.form.get("note", ""),
                                  signed_in_agent())
        return _text_goes_out(f"Ticket {resolved.number} resolved", ticket_id)

    return _act(resolve_with_note, url_for("console.ticket_page", number_or_id=number_or_id))


@bp.post("/availability")
@login_required
def availability() -> Response:
    """The signed-in agent sets their state (available, wrap-up, away)."""
    agent = signed_in_agent()

    def set_state() -> str:
        state = request.form.get("availability", "")
        change_availability(get_session(), agent, state)
        return f"You are now {state.replace('_', ' ')}."

    return _act(set_state, url_for("console.call_list_page"))


@bp.post("/next")
@login_required
def take_next_item() -> Response:
    """Take next: the signed-in agent is ready and gets their most urgent item at once."""
    agent = signed_in_agent()

    def take() -> str:
        return take_next(get_session(), runtime.settings(), agent).message

    return _act(take, url_for("console.call_list_page"))
