"""The console's blueprint and what its pages and actions share: the display time zone,
time filters, safe redirects, ticket numbers and the common page values."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    render_template,
)
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import SQLAlchemyError

from callbacks.db import utcnow
from callbacks.desk import failed_texts
from callbacks.display_time import display_zone as zone_for_readers
from callbacks.tickets.actions import language_name
from callbacks.tickets.ticket import TicketEvent, ticket_id_from_number
from callbacks.tickets.workflow import label
from callbacks.workqueue.agents import CHOSEN_STATES, Agent, list_agents
from callbacks.workqueue.current_work import current_work
from callbacks.workqueue.skills import format_skills
from ivr.auth import signed_in_agent
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
    user: Any = current_user
    return render_template("console/error.html", title="Form expired",
                           message="This form has expired or was not sent from the console. "
                                   "Reload the page and try again.",
                           me=user.agent if user.is_authenticated else None), 400


@bp.app_template_filter("local")
def local_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC timestamp in the console's display time zone."""
    return moment.astimezone(display_zone()).strftime(fmt) if moment is not None else ""


@bp.app_template_filter("failed_texts")
def unsent_texts(events: list[TicketEvent]) -> list[TicketEvent]:
    """The failed texts of a ticket's history that no later text made up for."""
    return failed_texts(events)


@bp.app_template_filter("skill_list")
def skill_list(skills: dict[str, int]) -> str:
    """Skills as 'de:3, en:2', or '-' for none."""
    return format_skills(skills) or "-"


@bp.app_template_filter("duration")
def duration(minutes: int) -> str:
    """A wait in minutes as '12 min' or '3 h 05 min'."""
    hours, rest = divmod(max(0, minutes), 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


@bp.app_template_filter("iso")
def iso_time(moment: datetime) -> str:
    """A timestamp as the browser's clock code reads it: UTC, to the millisecond."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@bp.app_template_filter("seconds")
def seconds_text(seconds: float | None) -> str:
    """A short span as '42 s', '2 min' or '2 min 05 s'; '-' for none."""
    if seconds is None:
        return "-"
    minutes, rest = divmod(max(0, round(seconds)), 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min {rest:02d} s" if rest else f"{minutes} min"


@bp.app_template_filter("status_label")
def status_label(status: str) -> str:
    """A ticket status as people read it ('waiting for the caller')."""
    return label(status)


@bp.app_template_filter("language_name")
def language_label(code: str) -> str:
    """'German' for 'de'."""
    return language_name(code)


@bp.app_context_processor
def console_context() -> dict[str, Any]:
    """What every console page needs (and the error pages, which share its layout): the zone
    times are shown in, the states to choose."""
    zone = display_zone()
    in_an_hour = (utcnow() + timedelta(hours=1)).astimezone(zone)
    return {"display_zone": zone, "availability_states": CHOSEN_STATES,
            "snooze_default": in_an_hour.strftime("%Y-%m-%dT%H:%M"),
            "server_now": iso_time(utcnow())}


def display_zone() -> ZoneInfo:
    """The time zone the console shows and reads times in: IVR_DISPLAY_TIMEZONE, else the
    published flow's (first) calendar's, else UTC (the same zone ticket histories use)."""
    if "display_zone" not in g:
        try:
            g.display_zone = zone_for_readers(
                get_session(), str(current_app.config.get("DISPLAY_TIMEZONE") or ""),
                current_app.config["DEFAULT_FLOW"])
        except SQLAlchemyError:  # an error page while the database is away still renders
            log.warning("display zone unknown: the database did not answer; showing UTC")
            g.display_zone = ZoneInfo("UTC")
    zone: ZoneInfo = g.display_zone
    return zone


def safe_next(target: str | None, default: str) -> str:
    """`target` if it is a path of the console or the admin pages (no open redirects), else
    `default`."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(SIGNED_IN_AREAS):
        return default
    return target



def ticket_id_of(number_or_id: int) -> int:
    """Ticket numbers (10001 and up) are what people quote; smaller values are ids."""
    return ticket_id_from_number(str(number_or_id)) or number_or_id


def page_view(back: str) -> dict[str, Any]:
    """The signed-in agent and their current call, the agents to reassign to, and where
    actions return to."""
    agents: list[Agent] = [agent for agent in list_agents(get_session()) if agent.active]
    me = signed_in_agent()
    # The dialer marks a claim as 'agent:<id>'; the list shows 'dialling by <name>'.
    return {"agents": agents, "me": me, "back": back,
            "current": current_work(get_session(), me),
            "claimers": {f"agent:{agent.id}": agent.name for agent in agents}}


# The actions add their routes to `bp`; importing them here keeps one blueprint.
