"""The console's ticket inbox: filters, search, sorting and pages, refreshed live.

The filters travel in the query string, so a filtered inbox can be bookmarked and its live
fragment (/console/tickets/list?...) shows the same tickets as the page.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from flask import current_app, flash, render_template, request, url_for
from flask_login import login_required
from werkzeug.datastructures import MultiDict

from callbacks.db import utcnow
from callbacks.incidents.settings import CATEGORIES
from callbacks.incidents.suggestion import suggestions
from callbacks.tickets.inbox import (
    ASSIGNMENTS,
    SORTS,
    STATUS_CHOICES,
    InboxFilter,
    InboxPage,
    inbox,
)
from callbacks.tickets.ticket import TRANSCRIPTION_STATES
from callbacks.tickets.workflow import TicketError
from ivr.auth import signed_in_agent
from ivr.console.blueprint import bp, display_zone, page_view
from ivr.db import get_session

PER_PAGE = 25


@bp.get("/tickets/")
@login_required
def inbox_page() -> str:
    """Every ticket to work on, most urgent first, with filters and search; refreshed live."""
    return render_template("console/inbox.html", **_inbox_view(report_errors=True))


@bp.get("/tickets/list")
@login_required
def inbox_fragment() -> str:
    """The inbox table alone, for the live refresh (same query string as the page)."""
    return render_template("console/_inbox_table.html", **_inbox_view(report_errors=False))


def inbox_filter(args: MultiDict[str, str]) -> InboxFilter:
    """The filter a query string asks for; TicketError naming the first bad value."""
    try:
        page = int(args.get("page") or 1)
        per_page = int(args.get("per_page") or PER_PAGE)
    except ValueError:
        raise TicketError("page and per_page are whole numbers") from None
    return InboxFilter(
        status=args.get("status") or "open", category=args.get("category", "").strip(),
        priority=args.get("priority", "").strip(), language=args.get("language", "").strip(),
        assigned=args.get("assigned") or "anyone",
        transcription=args.get("transcription", "").strip(),
        created_from=_date(args.get("from", "")), created_to=_date(args.get("to", "")),
        overdue=args.get("overdue") in ("1", "on", "true"), search=args.get("q", ""),
        sort=args.get("sort") or "priority", page=page, per_page=per_page)


def _inbox_view(report_errors: bool) -> dict[str, Any]:
    try:
        wanted = inbox_filter(request.args)
    except TicketError as bad:
        if report_errors:
            flash(f"{bad}; showing the open tickets instead.", "error")
        wanted = InboxFilter()
    me = signed_in_agent()
    found: InboxPage = inbox(get_session(), wanted, me=me.id,
                             directory=current_app.extensions["ivr.directory"],
                             zone=display_zone(), now=utcnow())
    query = {key: value for key, value in request.args.items() if value and key != "page"}
    return {
        "found": found, "wanted": wanted, "query": query,
        "live_url": _with_query(url_for("console.inbox_fragment"), request.args.to_dict()),
        "page_url": lambda page: _with_query(url_for("console.inbox_page"),
                                             {**query, "page": str(page)}),
        "status_choices": STATUS_CHOICES, "assignments": ASSIGNMENTS, "sorts": SORTS,
        "transcription_states": TRANSCRIPTION_STATES,
        "priorities": current_app.extensions["ivr.priorities"].names,
        **(_incident_view() if report_errors else {}),
        **page_view(back=request.full_path),
    }


def _incident_view() -> dict[str, Any]:
    """The desk's incident suggestions and the open incidents to group tickets into."""
    from ivr.console.incidents import open_incident_choices

    return {"suggested": suggestions(get_session(), current_app.extensions["ivr.incidents"],
                                     utcnow()),
            "incident_choices": open_incident_choices(), "incident_categories": CATEGORIES}


def _with_query(path: str, values: dict[str, str]) -> str:
    return f"{path}?{urlencode(values)}" if values else path


def _date(text: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise TicketError(f"'{text}' is not a date such as 2026-05-04") from None
