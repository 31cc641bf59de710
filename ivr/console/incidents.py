"""The console's incidents: the list (open first, with the desk's suggestions), an incident's
page with everyone affected, and the actions: open (also from the inbox's selection or a
suggestion), link and unlink tickets and callbacks, switch the announcement, resolve.

Each action calls one function of callbacks/incidents/grouping.py and goes back with a flash
that says what happened; what it refuses becomes a flash error, never a 500. Every form
carries the CSRF token; agents and admins alike may use them.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response as BaseResponse

from callbacks.db import small_number, utcnow
from callbacks.incidents.grouping import (
    IncidentError,
    link,
    open_incident,
    resolve_incident,
    set_announcement,
    unlink,
)
from callbacks.incidents.incident import incident_id_from_number
from callbacks.incidents.overview import incident_list, incident_story, open_incidents
from callbacks.incidents.settings import CATEGORIES, IncidentSettings
from callbacks.incidents.suggestion import suggestion_for, suggestions
from callbacks.tickets.ticket import ticket_id_from_number
from ivr.auth import signed_in_agent
from ivr.console.blueprint import bp, page_view, safe_next
from ivr.db import get_session
from ivr.voice.incidents import forget_open_incidents


def _settings() -> IncidentSettings:
    settings: IncidentSettings = current_app.extensions["ivr.incidents"]
    return settings


@bp.get("/incidents/")
@login_required
def incidents_page() -> str:
    """Every incident, open ones first, and the incidents the desk suggests opening."""
    session = get_session()
    return render_template("console/incidents.html", rows=incident_list(session),
                           suggested=suggestions(session, _settings(), utcnow()),
                           categories=CATEGORIES, **page_view(request.path))


@bp.get("/incidents/<int:incident_id>")
@login_required
def incident_page(incident_id: int) -> str:
    """One incident: who is affected, how each caller's text ended, and its actions."""
    story = incident_story(get_session(), incident_id, current_app.extensions["ivr.directory"])
    if story is None:
        abort(404)
    settings = _settings()
    return render_template("console/incident.html", story=story,
                           languages=settings.languages, **page_view(request.path))


@bp.post("/incidents/")
@login_required
def create_incident() -> BaseResponse:
    """Open an incident, linking the tickets selected in the inbox (if any)."""
    return _open(request.form.get("title", ""), request.form.get("category", ""),
                 _ticket_ids(request.form.getlist("ticket")))


@bp.post("/incidents/suggested")
@login_required
def open_suggested() -> BaseResponse:
    """One click on a suggestion: open the incident with the tickets it counted."""
    category = request.form.get("category", "")
    found = suggestion_for(get_session(), _settings(), category, utcnow())
    if found is None:
        flash(f"There is no suggestion for {category or 'that category'} any more.", "error")
        return redirect(url_for("console.incidents_page"), code=303)
    title = "Problem with " + _settings().topic(category, "en")
    return _open(title, category, list(found.ticket_ids))


@bp.post("/incidents/group")
@login_required
def group_tickets() -> BaseResponse:
    """The inbox's "Group into incident": the selected tickets into a new or an open incident."""
    ticket_ids = _ticket_ids(request.form.getlist("ticket"))
    if not ticket_ids:
        flash("Select the tickets to group first.", "error")
        return redirect(safe_next(request.form.get("next"), url_for("console.inbox_page")),
                        code=303)
    target = request.form.get("incident", "new")
    if target == "new":
        return _open(request.form.get("title", ""), request.form.get("category", ""),
                     ticket_ids)
    incident_id = incident_id_from_number(target) or small_number(target) or 0
    return _act(incident_id, lambda: _linked_message(link(
        get_session(), incident_id, ticket_ids=ticket_ids, by=signed_in_agent().username)))


@bp.post("/incidents/<int:incident_id>/link")
@login_required
def link_to_incident(incident_id: int) -> BaseResponse:
    """Link tickets (by number) and callbacks (by id) to the incident."""
    tickets = _ticket_ids(request.form.getlist("ticket") + _split(request.form.get("tickets")))
    callbacks = _ids(request.form.getlist("callback") + _split(request.form.get("callbacks")))
    return _act(incident_id, lambda: _linked_message(link(
        get_session(), incident_id, ticket_ids=tickets, callback_ids=callbacks,
        by=signed_in_agent().username)))


@bp.post("/tickets/<int:number_or_id>/incident")
@login_required
def link_ticket(number_or_id: int) -> BaseResponse:
    """The ticket page's "Link to incident": this ticket into the chosen open incident."""
    chosen = request.form.get("incident", "")
    incident_id = small_number(chosen) or 0
    ticket_id = ticket_id_from_number(str(number_or_id)) or number_or_id
    page = url_for("console.ticket_page", number_or_id=number_or_id)
    try:
        added = link(get_session(), incident_id, ticket_ids=[ticket_id],
                     by=signed_in_agent().username)
        flash("The ticket is linked to the incident." if added[0]
              else "The ticket was linked to that incident already.", "ok")
    except IncidentError as refusal:
        get_session().rollback()
        flash(str(refusal), "error")
    return redirect(page, code=303)


@bp.post("/incidents/<int:incident_id>/unlink")
@login_required
def unlink_from_incident(incident_id: int) -> BaseResponse:
    """Take a ticket or a callback off the incident."""
    tickets = _ticket_ids(request.form.getlist("ticket"))
    callbacks = _ids(request.form.getlist("callback"))

    def act() -> str:
        gone = unlink(get_session(), incident_id, ticket_ids=tickets, callback_ids=callbacks,
                      by=signed_in_agent().username)
        return f"Unlinked {gone[0]} ticket(s) and {gone[1]} callback(s)."

    return _act(incident_id, act)


@bp.post("/incidents/<int:incident_id>/announce")
@login_required
def announce_incident(incident_id: int) -> BaseResponse:
    """Switch the menu's announcement on or off, with the incident's own words per language."""
    on = request.form.get("announce") == "on"
    texts = {language: request.form.get(f"announcement_{language}", "")
             for language in _settings().languages}

    def act() -> str:
        incident = set_announcement(get_session(), incident_id, on, texts)
        forget_open_incidents(current_app._get_current_object())  # type: ignore[attr-defined]
        return (f"Callers now hear about {incident.number} in the menu." if on
                else f"Callers no longer hear about {incident.number} in the menu.")

    return _act(incident_id, act)


@bp.post("/incidents/<int:incident_id>/resolve")
@login_required
def resolve_the_incident(incident_id: int) -> BaseResponse:
    """Resolve the incident: every linked and subscribed caller is texted once."""
    def act() -> str:
        done = resolve_incident(get_session(), incident_id, request.form.get("note", ""),
                                signed_in_agent().username)
        forget_open_incidents(current_app._get_current_object())  # type: ignore[attr-defined]
        if done.already:
            return f"{done.incident.number} was resolved already; nobody is texted again."
        return (f"{done.incident.number} is resolved; {done.notices} caller(s) get a text "
                "(once each).")

    return _act(incident_id, act)


def _open(title: str, category: str, ticket_ids: list[int]) -> BaseResponse:
    try:
        incident = open_incident(get_session(), title=title, category=category,
                                 by=signed_in_agent().username, ticket_ids=ticket_ids)
    except IncidentError as refusal:
        get_session().rollback()
        flash(str(refusal), "error")
        return redirect(safe_next(request.form.get("next"), url_for("console.incidents_page")),
                        code=303)
    forget_open_incidents(current_app._get_current_object())  # type: ignore[attr-defined]
    flash(f"Incident {incident.number} is open with {len(ticket_ids)} ticket(s).", "ok")
    return redirect(url_for("console.incident_page", incident_id=incident.id), code=303)


def _act(incident_id: int, action: Callable[[], str]) -> BaseResponse:
    """Run an action; its sentence (or the refusal) is flashed; back to the incident."""
    page = url_for("console.incident_page", incident_id=incident_id)
    try:
        flash(action(), "ok")
    except IncidentError as refusal:
        get_session().rollback()
        flash(str(refusal), "error")
        if str(refusal) == "no such incident":
            page = url_for("console.incidents_page")
    return redirect(safe_next(request.form.get("next"), page), code=303)


def _linked_message(added: tuple[int, int]) -> str:
    return f"Linked {added[0]} ticket(s) and {added[1]} callback(s)."


def _split(text: str | None) -> list[str]:
    return [part for part in (text or "").replace(",", " ").split() if part]


def _ticket_ids(values: list[str]) -> list[int]:
    """Ticket ids from ticket numbers ('10042' or '#10042'); IncidentError-free: bad ones are
    refused by the action (an id that does not exist)."""
    found = []
    for value in values:
        ticket_id = ticket_id_from_number(value)
        found.append(ticket_id if ticket_id is not None else -1)
    return found


def _ids(values: list[str]) -> list[int]:
    return [-1 if (number := small_number(value.strip())) is None else number
            for value in values]


def open_incident_choices() -> list[tuple[str, str]]:
    """(value, label) of each open incident, for the inbox's and the ticket page's choices."""
    return [(str(incident.id), f"{incident.number} {incident.title}")
            for incident in open_incidents(get_session())]
