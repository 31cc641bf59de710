"""The agents' console: sign-in, the live call list, a callback's and a ticket's page, audio.

Views stay thin: they parse the request, call one function of callbacks/desk.py and render.
The one-click actions (call, snooze, resolve, reassign, availability) are in console_actions.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import login_required, login_user, logout_user
from flask_wtf.csrf import CSRFError
from werkzeug.wrappers import Response as BaseResponse

from callbacks.agents import AVAILABILITY, Agent, authenticate, list_agents
from callbacks.db import utcnow
from callbacks.desk import call_list, callback_story, ticket_audio, ticket_story
from callbacks.flowstore import compiled_version, published_version_for_number
from callbacks.tickets import ticket_id_from_number
from ivr import signin_limits
from ivr.auth import SignedIn, signed_in_agent
from ivr.db import get_session

log = logging.getLogger(__name__)
bp = Blueprint("console", __name__, url_prefix="/console")
SIGN_IN_FAILED = "Unknown user name or password."
SIGNED_IN_AREAS = ("/console/", "/admin/")
"""Where sign-in may send someone back to."""


@bp.after_request
def not_cached(response: Response) -> Response:
    """Console pages show callers' data: never keep them in a shared or back-button cache."""
    response.headers.setdefault("Cache-Control", "private, no-store")
    return response


@bp.errorhandler(CSRFError)
def form_expired(error: CSRFError) -> tuple[str, int]:
    """A form without a valid CSRF token: say what to do instead of a bare error page."""
    return render_template("console/error.html", title="Form expired",
                           message="This form has expired or was not sent from the console. "
                                   "Reload the page and try again."), 400


@bp.app_template_filter("local")
def local_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC timestamp in the console's display time zone."""
    return moment.astimezone(display_zone()).strftime(fmt) if moment is not None else ""


@bp.app_template_filter("duration")
def duration(minutes: int) -> str:
    """A wait in minutes as '12 min' or '3 h 05 min'."""
    hours, rest = divmod(max(0, minutes), 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


@bp.context_processor
def console_context() -> dict[str, Any]:
    """What every console page needs: the zone times are shown in, the states to choose."""
    zone = display_zone()
    in_an_hour = (utcnow() + timedelta(hours=1)).astimezone(zone)
    return {"display_zone": zone, "availability_states": AVAILABILITY,
            "snooze_default": in_an_hour.strftime("%Y-%m-%dT%H:%M")}


def display_zone() -> ZoneInfo:
    """The time zone the console shows and reads times in: IVR_DISPLAY_TIMEZONE, else the
    published flow's (first) calendar's, else UTC."""
    if "display_zone" not in g:
        g.display_zone = _configured_zone() or _flow_zone() or ZoneInfo("UTC")
    zone: ZoneInfo = g.display_zone
    return zone


def _configured_zone() -> ZoneInfo | None:
    name = str(current_app.config.get("DISPLAY_TIMEZONE") or "")
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("IVR_DISPLAY_TIMEZONE %r is not a known time zone; using UTC", name)
        return ZoneInfo("UTC")


def _flow_zone() -> ZoneInfo | None:
    db = get_session()
    version_id = published_version_for_number(db, "", current_app.config["DEFAULT_FLOW"])
    if version_id is None:
        return None
    calendars = compiled_version(db, version_id).calendars
    return next((hours.zone for hours in calendars.values()), None)


def safe_next(target: str | None, default: str) -> str:
    """`target` if it is a path of the console or the admin pages (no open redirects), else
    `default`."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(SIGNED_IN_AREAS):
        return default
    return target


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> BaseResponse | tuple[str, int]:
    """The sign-in form; a failed sign-in gets one generic message and 401."""
    next_page = safe_next(request.values.get("next"), url_for("console.call_list_page"))
    if request.method == "GET":
        return render_template("console/sign_in.html", next_page=next_page), 200
    username = request.form.get("username", "")
    wait = signin_limits.blocked_for(username, request.remote_addr)
    if wait:
        log.info("console sign-in refused: too many failures")
        blocked = make_response(render_template("console/sign_in.html", next_page=next_page,
                                                error=signin_limits.retry_message(wait),
                                                username=username), 429)
        blocked.headers["Retry-After"] = str(wait)
        return blocked
    agent = authenticate(get_session(), username, request.form.get("password", ""))
    if agent is None:
        log.info("console sign-in failed")
        signin_limits.record_failure(username, request.remote_addr)
        return render_template("console/sign_in.html", next_page=next_page,
                               error=SIGN_IN_FAILED, username=username), 401
    signin_limits.record_success(username)
    session.clear()  # a fresh session: nothing carried over from before the sign-in
    login_user(SignedIn(agent))
    flash(f"Signed in as {agent.name}.", "ok")
    return redirect(next_page, code=303)


@bp.post("/sign-out")
def sign_out() -> BaseResponse:
    """End the session."""
    logout_user()
    session.clear()
    flash("Signed out.", "ok")
    return redirect(url_for("console.sign_in"), code=303)


@bp.get("/")
@login_required
def call_list_page() -> str:
    """The call list in queue order, refreshed live."""
    return render_template("console/list.html", **_call_list_view())


@bp.get("/list")
@login_required
def call_list_fragment() -> str:
    """The call list table alone, for the live refresh."""
    return render_template("console/_call_list.html", **_call_list_view())


def _call_list_view() -> dict[str, Any]:
    return {"entries": call_list(get_session()),
            **_page_view(back=url_for("console.call_list_page"))}


@bp.get("/callbacks/<int:request_id>")
@login_required
def callback_page(request_id: int) -> str:
    """One callback: who, why, since when, its attempts and its ticket's history."""
    story = callback_story(get_session(), request_id)
    if story is None:
        abort(404)
    return render_template("console/callback.html", story=story, **_page_view(request.path))


@bp.get("/callbacks/<int:request_id>/history")
@login_required
def callback_history(request_id: int) -> str:
    """A callback's attempts and history alone, for the live refresh."""
    story = callback_story(get_session(), request_id)
    if story is None:
        abort(404)
    return render_template("console/_callback_history.html", story=story,
                           **_page_view(url_for("console.callback_page", request_id=request_id)))


@bp.get("/tickets/<int:number_or_id>")
@login_required
def ticket_page(number_or_id: int) -> str:
    """A ticket by its number (10001...) or id: transcript, audio, history, callbacks."""
    story = ticket_story(get_session(), ticket_id_of(number_or_id))
    if story is None:
        abort(404)
    caller = current_app.extensions["ivr.directory"].lookup(story.ticket.caller)
    return render_template("console/ticket.html", story=story,
                           caller_name=caller.name if caller else "", **_page_view(request.path))


@bp.get("/tickets/<int:number_or_id>/history")
@login_required
def ticket_history(number_or_id: int) -> str:
    """A ticket's history alone, for the live refresh."""
    story = ticket_story(get_session(), ticket_id_of(number_or_id))
    if story is None:
        abort(404)
    return render_template("console/_ticket_history.html", story=story,
                           **_page_view(url_for("console.ticket_page",
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


def ticket_id_of(number_or_id: int) -> int:
    """Ticket numbers (10001 and up) are what people quote; smaller values are ids."""
    return ticket_id_from_number(str(number_or_id)) or number_or_id


def _page_view(back: str) -> dict[str, Any]:
    """The signed-in agent, the agents to reassign to, and where actions return to."""
    agents: list[Agent] = [agent for agent in list_agents(get_session()) if agent.active]
    # The dialer marks a claim as 'agent:<id>'; the list shows 'dialling by <name>'.
    return {"agents": agents, "me": signed_in_agent(), "back": back,
            "claimers": {f"agent:{agent.id}": agent.name for agent in agents}}


# The actions add their routes to `bp`; importing them here keeps one blueprint.
from ivr import console_actions  # noqa: E402, F401
