"""The agents' console: sign-in, the live call list, a callback's and a ticket's page, audio.

Views stay thin: they parse the request, call one function of callbacks/desk.py and render.
The one-click actions (call, snooze, resolve, reassign, availability) are in actions.py;
the blueprint and what both share are in blueprint.py.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import login_required
from werkzeug.wrappers import Response as BaseResponse

from callbacks.desk import callback_story, ticket_audio, ticket_story, work_list
from callbacks.incidents.overview import incidents_of_ticket
from callbacks.workqueue.agents import authenticate
from ivr import signin_limits
from ivr.auth import end_session, start_session
from ivr.console.blueprint import (
    SIGN_IN_FAILED,
    bp,
    page_view,
    safe_next,
    ticket_id_of,
)
from ivr.db import get_session

log = logging.getLogger(__name__)


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> BaseResponse | tuple[str, int]:
    """The sign-in form; a failed sign-in gets one generic message and 401."""
    next_page = safe_next(request.values.get("next"), url_for("console.call_list_page"))
    if request.method == "GET":
        return render_template("console/sign_in.html", next_page=next_page), 200
    username = request.form.get("username", "")[:signin_limits.MAX_NAME_LENGTH]
    attempt = signin_limits.begin_attempt(username, request.remote_addr)
    if not attempt.allowed:
        log.info("console sign-in refused: too many attempts")
        blocked = make_response(render_template("console/sign_in.html", next_page=next_page,
                                                error=attempt.message(), username=username),
                                429)
        blocked.headers["Retry-After"] = str(attempt.wait)
        return blocked
    agent = authenticate(get_session(), username, request.form.get("password", ""))
    if agent is None:
        log.info("console sign-in failed")
        return render_template("console/sign_in.html", next_page=next_page,
                               error=SIGN_IN_FAILED, username=username), 401
    signin_limits.succeeded(username, request.remote_addr)
    start_session(agent)
    flash(f"Signed in as {agent.name}.", "ok")
    return redirect(next_page, code=303)


@bp.post("/sign-out")
def sign_out() -> BaseResponse:
    """End the session, and every copy of it: the agent is offline until they sign in."""
    end_session()
    flash("Signed out.", "ok")
    return redirect(url_for("console.sign_in"), code=303)


@bp.get("/")
@login_required
def call_list_page() -> str:
    """Callers on the line and callbacks in the order agents get them, refreshed live."""
    return render_template("console/list.html", **_call_list_view())


@bp.get("/list")
@login_required
def call_list_fragment() -> str:
    """The call list table alone, for the live refresh."""
    return render_template("console/_call_list.html", **_call_list_view())


def _call_list_view() -> dict[str, Any]:
    entries = work_list(get_session())
    return {"entries": entries,
            "live_count": sum(1 for entry in entries if entry.kind == "live"),
            **page_view(back=url_for("console.call_list_page"))}


@bp.get("/me/current")
@login_required
def current_work_fragment() -> str:
    """The signed-in agent's current call (or state) and Take next, for the live refresh."""
    return render_template("console/_current_work.html",
                           **page_view(back=request.args.get("back", "")))


@bp.get("/callbacks/<int:request_id>")
@login_required
def callback_page(request_id: int) -> str:
    """One callback: who, why, since when, its attempts and its ticket's history."""
    story = callback_story(get_session(), request_id)
    if story is None:
        abort(404)
    return render_template("console/callback.html", story=story, **page_view(request.path))


@bp.get("/callbacks/<int:request_id>/history")
@login_required
def callback_history(request_id: int) -> str:
    """A callback's attempts and history alone, for the live refresh."""
    story = callback_story(get_session(), request_id)
    if story is None:
        abort(404)
    return render_template("console/_callback_history.html", story=story,
                           **page_view(url_for("console.callback_page", request_id=request_id)))


@bp.get("/tickets/<int:number_or_id>")
@login_required
def ticket_page(number_or_id: int) -> str:
    """A ticket by its number (10001...) or id: transcript, audio, history, callbacks."""
    story = ticket_story(get_session(), ticket_id_of(number_or_id))
    if story is None:
        abort(404)
    caller = current_app.extensions["ivr.directory"].lookup(story.ticket.caller)
    from ivr.console.incidents import open_incident_choices

    return render_template("console/ticket.html", story=story,
                           caller_name=caller.name if caller else "",
                           incidents=incidents_of_ticket(get_session(), story.ticket.id),
                           incident_choices=open_incident_choices(),
                           priorities=current_app.extensions["ivr.priorities"].names,
                           **page_view(request.path))


@bp.get("/tickets/<int:number_or_id>/history")
@login_required
def ticket_history(number_or_id: int) -> str:
    """A ticket's history alone, for the live refresh."""
    story = ticket_story(get_session(), ticket_id_of(number_or_id))
    if story is None:
        abort(404)
    return render_template("console/_ticket_history.html", story=story,
                           **page_view(url_for("console.ticket_page",
                                                number_or_id=number_or_id)))


@bp.get("/tickets/<int:number_or_id>/audio")
@login_required
def ticket_audio_file(number_or_id: int) -> Response:
    """The voicemail recording, to signed-in agents only, never cached by anyone else."""
    audio = ticket_audio(get_session(), ticket_id_of(number_or_id))
    if audio is None:
        abort(404)
    response = Response(audio, mimetype="audio/wav")
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Disposition"] = f'inline; filename="ticket-{number_or_id}.wav"'
    return response
