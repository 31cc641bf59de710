"""Admin reports: trend charts with date filters, and each figure as a CSV download.

Admins only (`admin_required`): agents get 403, anonymous visitors the sign-in page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, datetime, timedelta

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from callbacks.db import utcnow
from callbacks.reports import ReportRange, ReportRangeError, report_range
from ivr.admin.report_figures import FIGURES, SECTIONS, Figure, figure
from ivr.auth import admin_required, signed_in_agent
from ivr.console.blueprint import display_zone
from ivr.db import get_session

bp = Blueprint("reports", __name__, url_prefix="/admin/reports")
DEFAULT_DAYS = 7


class BadFilter(ValueError):
    """A date filter that cannot be used; the message says which and why."""


@bp.context_processor
def admin_links() -> dict[str, str | None]:
    """Where the header's admin link goes, when the admin pages are part of this app."""
    has_admin = "admin.overview" in current_app.view_functions
    return {"admin_home": url_for("admin.overview") if has_admin else None}


@bp.after_request
def not_cached(response: Response) -> Response:
    """Reports show callers' data: never keep them in a shared or back-button cache."""
    response.headers.setdefault("Cache-Control", "private, no-store")
    return response


def report_clock() -> datetime:
    """Now, for "open and past due" and "oldest waiting" (tests fix it with CLOCK)."""
    clock: Callable[[], datetime] | None = current_app.config.get("CLOCK")
    return clock() if clock else utcnow()


def requested_range() -> ReportRange:
    """The range in the query string (`from`, `to`: YYYY-MM-DD, inclusive), by default the
    last seven days up to today, in the display time zone."""
    zone = display_zone()
    today = report_clock().astimezone(zone).date()
    end = _date_arg("to", today)
    start = _date_arg("from", end - timedelta(days=DEFAULT_DAYS - 1))
    try:
        return report_range(start, end, zone)
    except ReportRangeError as error:
        raise BadFilter(str(error)) from error


def _date_arg(name: str, default: date) -> date:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadFilter(f"'{name}' must be a date like 2026-03-01, not {raw[:20]!r}") from None


@bp.get("")
@admin_required
def reports_page() -> tuple[str, int]:
    """Every figure of the chosen range: a chart, a table and a CSV link each."""
    try:
        rng = requested_range()
    except BadFilter as error:
        return render_template("reports/page.html", error=str(error), sections=[],
                               charts={}, me=signed_in_agent(), zone=display_zone(),
                               start=request.args.get("from", ""),
                               end=request.args.get("to", "")), 400
    session, now = get_session(), report_clock()
    sections = [(name, build(session, rng, now)) for name, build in SECTIONS.items()]
    charts = {f.slug: f.chart() for _name, figures in sections for f in figures}
    return render_template("reports/page.html", sections=sections, charts=charts, rng=rng,
                           me=signed_in_agent(), zone=rng.zone, error=None,
                           start=rng.start.isoformat(), end=rng.end.isoformat()), 200


@bp.get("/<slug>.csv")
@admin_required
def figure_csv(slug: str) -> BaseResponse | tuple[str, int]:
    """One figure as CSV (a header row, then the rows the chart draws), same filters."""
    if slug not in FIGURES:
        abort(404)
    try:
        rng = requested_range()
    except BadFilter as error:
        return str(error) + "\n", 400
    found = figure(get_session(), rng, report_clock(), slug)
    assert found is not None
    filename = f"{slug}_{rng.start.isoformat()}_{rng.end.isoformat()}.csv"
    return Response(figure_as_csv(found), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def figure_as_csv(found: Figure) -> str:
    """The figure's table as CSV text; empty cells for missing values."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(found.columns)
    for row in found.rows:
        writer.writerow([_cell(cell) for cell in row])
    return out.getvalue()


def _cell(cell: str | int | float | None) -> str | int | float:
    """A CSV cell; text a spreadsheet would run as a formula gets a leading apostrophe."""
    if cell is None:
        return ""
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@"):
        return "'" + cell
    return cell
