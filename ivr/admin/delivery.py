"""Admin page: delivery to the company's ticket system, per connector the pending, delivered
and failed deliveries, the latest error, and retry buttons (one delivery, or all failed)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from werkzeug.wrappers import Response as BaseResponse

from callbacks.delivery.overview import (
    DeliveryError,
    connector_summaries,
    retry_delivery,
    retry_failed,
)
from ivr.admin.blueprint import bp
from ivr.auth import admin_required, signed_in_agent
from ivr.db import get_session


@bp.get("/delivery")
@admin_required
def delivery_page() -> str:
    """Each connector: counts, latest error, failed deliveries with retry buttons, and waiting
    ones."""
    return render_template("admin/delivery.html", connectors=connector_summaries(get_session()),
                           me=signed_in_agent())


@bp.post("/delivery/<int:delivery_id>/retry")
@admin_required
def retry_one(delivery_id: int) -> BaseResponse:
    """Put one failed delivery back in line."""
    session = get_session()
    try:
        row = retry_delivery(session, delivery_id)
    except DeliveryError as refused:
        session.rollback()
        flash(str(refused), "error")
    else:
        flash(f"Delivery {row.id} (ticket {row.ticket_number}, {row.kind}) will be tried again.",
              "ok")
    return redirect(url_for("admin.delivery_page"))


@bp.post("/delivery/connectors/<name>/retry")
@admin_required
def retry_all(name: str) -> BaseResponse:
    """Put every failed delivery of a connector back in line."""
    session = get_session()
    try:
        retried = retry_failed(session, name)
    except DeliveryError as refused:
        session.rollback()
        flash(str(refused), "error")
    else:
        flash(f"{len(retried)} failed deliveries to '{name}' will be tried again.", "ok")
    return redirect(url_for("admin.delivery_page"))
