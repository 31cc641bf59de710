"""API routes for delivery to the company's ticket system: the connectors' state and retries
(admins), and the signed URL where that system reports status changes back (public, signed).
"""

from __future__ import annotations

from datetime import datetime

from flask import Response, request
from pydantic import BaseModel, Field

from callbacks.delivery.inbound import InboundRefused, apply_report, read_report
from callbacks.delivery.outbox import delivery_settings
from callbacks.delivery.overview import (
    ConnectorSummary,
    DeliveryError,
    DeliveryRow,
    connector_summaries,
    retry_delivery,
    retry_failed,
)
from ivr.api.core import ADMIN, PUBLIC, ApiProblem, Reply, api_route, reply
from ivr.api.models import MAX_ID, Problem
from ivr.db import get_session

MAX_INBOUND_BYTES = 1024 * 1024


class DeliveryOut(BaseModel):
    """One delivery of one ticket event to one connector."""

    id: int
    ticket_number: str
    event_id: int
    kind: str
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    next_attempt_at: datetime
    last_error: str
    created_at: datetime
    delivered_at: datetime | None
    idempotency_key: str

    @classmethod
    def of(cls, row: DeliveryRow) -> DeliveryOut:
        """The API shape of a delivery."""
        return cls(**row.__dict__)


class ConnectorOut(BaseModel):
    """A connector: its counts, its latest error, and its failed and waiting deliveries."""

    name: str
    type: str
    enabled: bool
    configured: bool
    pending: int
    delivered: int
    failed: int
    last_error: str
    last_error_at: datetime | None
    last_delivered_at: datetime | None
    failed_deliveries: list[DeliveryOut]
    pending_deliveries: list[DeliveryOut]

    @classmethod
    def of(cls, summary: ConnectorSummary) -> ConnectorOut:
        """The API shape of a connector's summary."""
        fields = {name: value for name, value in summary.__dict__.items()
                  if name not in ("failed_rows", "pending_rows")}
        return cls(**fields,
                   failed_deliveries=[DeliveryOut.of(row) for row in summary.failed_rows],
                   pending_deliveries=[DeliveryOut.of(row) for row in summary.pending_rows])


class ConnectorList(BaseModel):
    """Every connector."""

    connectors: list[ConnectorOut]


class RetriedOut(BaseModel):
    """The deliveries put back in line."""

    retried: list[int]


class InboundOut(BaseModel):
    """What became of a reported status change."""

    outcome: str = Field(description="applied, unchanged (the ticket had that status), refused "
                                     "(the workflow does not allow it), duplicate (reported "
                                     "before: nothing done), ignored (not our ticket, or a "
                                     "state that maps to no status)")
    message: str
    ticket_number: str | None
    status: str | None


@api_route("GET", "/delivery/connectors", summary="Delivery connectors and their deliveries",
           tag="delivery", access=ADMIN,
           responses={200: Reply("Each connector's pending, delivered and failed counts, "
                                 "latest error, and failed and waiting deliveries",
                                 ConnectorList)})
def get_connectors() -> Response:
    """Every connector with its deliveries (admins only)."""
    summaries = connector_summaries(get_session())
    return reply(ConnectorList(connectors=[ConnectorOut.of(s) for s in summaries]))


@api_route("POST", "/delivery/deliveries/<int:delivery_id>/retry",
           summary="Retry a failed delivery", tag="delivery", access=ADMIN,
           responses={200: Reply("The delivery, pending again", DeliveryOut),
                      400: Reply("The delivery has not failed", Problem)})
def post_retry_delivery(delivery_id: int) -> Response:
    """Try a failed delivery again from its first try (admins only)."""
    if not 0 < delivery_id <= MAX_ID:
        raise ApiProblem(404, "not_found", f"no delivery {delivery_id}")
    session = get_session()
    try:
        row = retry_delivery(session, delivery_id)
    except DeliveryError as refused:
        session.rollback()
        status = 404 if "no such" in str(refused) else 400
        raise ApiProblem(status, "not_found" if status == 404 else "refused",
                         str(refused)) from None
    return reply(DeliveryOut.of(row))


@api_route("POST", "/delivery/connectors/<name>/retry",
           summary="Retry every failed delivery of a connector", tag="delivery", access=ADMIN,
           responses={200: Reply("The deliveries put back in line", RetriedOut)})
def post_retry_connector(name: str) -> Response:
    """Try every failed delivery of a connector again (admins only)."""
    session = get_session()
    try:
        retried = retry_failed(session, name)
    except DeliveryError as refused:
        session.rollback()
        raise ApiProblem(404, "not_found", str(refused)) from None
    return reply(RetriedOut(retried=retried))


@api_route("POST", "/delivery/inbound/<name>", summary="A status change reported back",
           tag="delivery", access=PUBLIC, responses={
               200: Reply("Applied once; a repeat is answered `duplicate`", InboundOut),
               400: Reply("The body cannot be read", Problem),
               403: Reply("The signature does not match, or its timestamp is outside the "
                          "replay window", Problem),
               404: Reply("No such connector, or it takes no status changes", Problem)})
def post_inbound(name: str) -> Response:
    """Zammad's webhook (`X-Hub-Signature`, HMAC-SHA1) or a webhook connector's system (signed
    like our deliveries) reports a ticket's new status; the caller is texted as usual."""
    connector = delivery_settings().connector(name)
    if connector is None or not connector.enabled:
        raise ApiProblem(404, "not_found", f"no enabled connector '{name}'")
    body = request.get_data(cache=False)
    if len(body) > MAX_INBOUND_BYTES:
        raise ApiProblem(400, "too_large", "the body is larger than 1 MiB")
    session = get_session()
    try:
        report = read_report(session, connector, body, dict(request.headers))
    except InboundRefused as refused:
        error = {403: "forbidden", 404: "not_found"}.get(refused.status, "bad_request")
        raise ApiProblem(refused.status, error, str(refused)) from None
    result = apply_report(session, connector, report)
    return reply(InboundOut(outcome=result.outcome, message=result.message,
                            ticket_number=result.ticket_number, status=result.status))
