"""The JSON API of the live line: the signed-in agent's current call, Take next, and the
wallboard (every signed-in agent may read it)."""

from __future__ import annotations

from flask import Response, current_app

from callbacks import runtime
from callbacks.db import utcnow
from callbacks.display_time import display_zone as zone_for_readers
from callbacks.workqueue.current_work import current_work, take_next
from callbacks.workqueue.dialer import DialRefused
from callbacks.workqueue.wallboard import wallboard
from ivr.api.core import ApiProblem, Reply, api_route, reply
from ivr.api.line_models import CurrentWorkOut, NextOut, WallboardOut
from ivr.api.models import Problem
from ivr.auth import signed_in_agent
from ivr.db import get_session


@api_route("GET", "/me/current", summary="Your current call", tag="agents",
           responses={200: Reply("The call you are on (a caller from the line or a "
                                 "callback), or none", CurrentWorkOut)})
def get_current() -> Response:
    """The call the signed-in agent is on now, or their state."""
    return reply(CurrentWorkOut.of(current_work(get_session(), signed_in_agent())))


@api_route("POST", "/me/next", summary="Take next", tag="agents", responses={
    200: Reply("You are available and were given your most urgent item (your phone rings), "
               "or nothing you qualify for waits", NextOut),
    409: Reply("You are on a call, or have no phone number", Problem)})
def post_next() -> Response:
    """Make the signed-in agent available and give them their most urgent item at once: a
    caller from the line or (progressive) a callback; a preview agent calls the most urgent
    callback they qualify for."""
    try:
        taken = take_next(get_session(), runtime.settings(), signed_in_agent())
    except DialRefused as refused:
        get_session().rollback()
        raise ApiProblem(409, "conflict", str(refused)) from None
    return reply(NextOut.of(taken))


@api_route("GET", "/wallboard", summary="The wallboard", tag="line",
           responses={200: Reply("Callers waiting, agents by state, today's service level, "
                                 "answer speed and abandonment, callbacks due", WallboardOut)})
def get_wallboard() -> Response:
    """The desk at a glance, as the wallboard page shows it."""
    session = get_session()
    zone = zone_for_readers(session, str(current_app.config.get("DISPLAY_TIMEZONE") or ""),
                            current_app.config["DEFAULT_FLOW"])
    board = wallboard(session, utcnow(), zone, current_app.extensions["ivr.priorities"].live)
    return reply(WallboardOut.of(board))
