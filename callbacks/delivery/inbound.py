"""Status changes the company's ticket system reports back, applied once through the workflow.

Two senders are understood, each on its connector's own URL:

- Zammad's webhooks (a trigger with a webhook): signed with HMAC-SHA1 of the body in
  `X-Hub-Signature: sha1=<hex>`, one `X-Zammad-Delivery` id per delivery. The ticket is found
  by the Zammad ticket id we keep for it; its state is mapped with `inbound_states`.
- Any system through the webhook connector's secret: a JSON body `{"ticket_number": "10042",
  "status": "resolved", "note": "..."}` signed like our own deliveries (`X-Helpdesk-Timestamp`,
  `X-Helpdesk-Signature`, inside the replay window) with an `Idempotency-Key`.

Each report is written down under (connector, delivery id) in the transaction that changes the
ticket, so a repeated report changes nothing twice. The change goes through the ticket
workflow's `change_status`, by `connector:<name>`, so the caller is texted as for any status
change, and the event is not delivered back to the system it came from.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from callbacks.db import Base, UTCDateTime, insert_ignoring_duplicates, utcnow
from callbacks.delivery.outbox import DeliveryStream, origin
from callbacks.delivery.settings import STATUSES, Connector
from callbacks.delivery.webhook import (
    KEY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureInvalid,
    verify_signature,
)
from callbacks.delivery.zammad import title_marker
from callbacks.tickets.ticket import Ticket, ticket_id_from_number

log = logging.getLogger(__name__)

ZAMMAD_SIGNATURE_HEADER = "X-Hub-Signature"
ZAMMAD_DELIVERY_HEADER = "X-Zammad-Delivery"
MAX_NOTE = 500
OUTCOMES = ("applied", "unchanged", "refused")


class InboundChange(Base):
    """A status change reported by a connector's system, kept so a repeat is recognised."""

    __tablename__ = "delivery_inbound"
    __table_args__ = (UniqueConstraint("connector", "delivery_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connector: Mapped[str] = mapped_column(String(32))
    delivery_id: Mapped[str] = mapped_column(String(128))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           index=True)
    remote_state: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboundRefused(ValueError):
    """A report that is not accepted: bad signature (403) or a body we cannot read (400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StatusReport:
    """A status change as read from a signed request."""

    delivery_id: str
    ticket_id: int | None
    remote_state: str
    status: str | None
    note: str


@dataclass(frozen=True)
class InboundResult:
    """What became of a report: applied, unchanged, refused, duplicate or ignored."""

    outcome: str
    message: str
    ticket_number: str | None = None
    status: str | None = None


def read_report(session: Session, connector: Connector, body: bytes,
                headers: Mapping[str, str]) -> StatusReport:
    """Check the request's signature and read the status change it reports."""
    headers = _Headers(headers)
    if connector.zammad is not None:
        check_zammad_signature(connector.zammad.webhook_secret, body,
                               headers.get(ZAMMAD_SIGNATURE_HEADER))
        return _zammad_report(session, connector, _json(body), headers)
    if connector.webhook is not None:
        try:
            verify_signature(connector.webhook.secret, headers.get(TIMESTAMP_HEADER), body,
                             headers.get(SIGNATURE_HEADER),
                             window_seconds=connector.webhook.replay_window_seconds)
        except SignatureInvalid as invalid:
            raise InboundRefused(403, str(invalid)) from None
        return _webhook_report(_json(body), headers)
    raise InboundRefused(404, f"connector '{connector.name}' takes no status changes")


def check_zammad_signature(secret: str, body: bytes, given: str | None) -> None:
    """Refuse (403) a body whose X-Hub-Signature is not HMAC-SHA1 of it with the secret."""
    if not secret:
        raise InboundRefused(404, "set webhook_secret_env on the connector to take Zammad's "
                                  "webhooks")
    expected = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    if not given or not hmac.compare_digest(expected, given.strip()):
        raise InboundRefused(403, "the X-Hub-Signature does not match")


def apply_report(session: Session, connector: Connector, report: StatusReport) -> InboundResult:
    """Apply a reported status change once, through the ticket workflow; commits."""
    if report.ticket_id is None:
        return InboundResult("ignored", "not a ticket of this phone line")
    ticket = session.get(Ticket, report.ticket_id, with_for_update=True)
    if ticket is None:
        return InboundResult("ignored", "no such ticket")
    if report.status is None:
        return InboundResult("ignored", f"state '{report.remote_state}' is not mapped to a "
                                        "ticket status", ticket.number)
    change_id = session.scalar(insert_ignoring_duplicates(
        session, InboundChange.__table__, ["connector", "delivery_id"]).values(
            connector=connector.name, delivery_id=report.delivery_id[:128],
            ticket_id=ticket.id, remote_state=report.remote_state[:64], status=report.status,
            outcome="applied", detail="", received_at=utcnow()).returning(InboundChange.id))
    if change_id is None:
        session.rollback()
        return InboundResult("duplicate", "this report was received before", ticket.number)
    change = session.get(InboundChange, change_id)
    assert change is not None
    if ticket.status == report.status:
        change.outcome = "unchanged"
        session.commit()
        return InboundResult("unchanged", f"ticket {ticket.number} is {ticket.status} already",
                             ticket.number, ticket.status)
    workflow = importlib.import_module("callbacks.tickets.workflow")
    try:
        workflow.change_status(session, ticket, report.status, by=origin(connector.name),
                               note=report.note)
    except workflow.TicketError as refused:
        change.outcome, change.detail = "refused", str(refused)
        session.commit()
        return InboundResult("refused", str(refused), ticket.number, ticket.status)
    session.commit()  # the workflow queues the caller's text once this commits
    return InboundResult("applied", f"ticket {ticket.number} is now {report.status}",
                         ticket.number, report.status)


def _zammad_report(session: Session, connector: Connector, data: dict[str, Any],
                   headers: Mapping[str, str]) -> StatusReport:
    assert connector.zammad is not None
    ticket = data.get("ticket")
    if not isinstance(ticket, dict) or "id" not in ticket:
        raise InboundRefused(400, "the body has no 'ticket' with an 'id' (Zammad's default "
                                  "webhook payload)")
    state = ticket.get("state")
    state_name = state.get("name") if isinstance(state, dict) else state
    remote_id = str(ticket["id"])
    ticket_id = session.scalar(select(DeliveryStream.ticket_id).where(
        DeliveryStream.connector == connector.name, DeliveryStream.remote_id == remote_id))
    title = str(ticket.get("title") or "")
    if ticket_id is None and title.startswith(title_marker("")):
        ticket_id = ticket_id_from_number(title[len(title_marker("")):].split(":")[0].strip())
    delivery = headers.get(ZAMMAD_DELIVERY_HEADER) or \
        f"{remote_id}:{state_name}:{ticket.get('updated_at', '')}"
    number = ticket.get("number")
    note = f"{state_name} in Zammad" + (f" (ticket #{number})" if number else "")
    return StatusReport(delivery, ticket_id, str(state_name or ""),
                        connector.zammad.inbound_states.get(str(state_name)), note)


def _webhook_report(data: dict[str, Any], headers: Mapping[str, str]) -> StatusReport:
    key = headers.get(KEY_HEADER)
    if not key:
        raise InboundRefused(400, f"send an {KEY_HEADER} header, the same on every try")
    number, status = data.get("ticket_number"), data.get("status")
    if not isinstance(number, str) or not isinstance(status, str):
        raise InboundRefused(400, "the body must be {\"ticket_number\": \"10042\", \"status\": "
                                  "\"resolved\", \"note\": \"...\"}")
    if status not in STATUSES:
        raise InboundRefused(400, f"unknown status '{status}'; expected one of: "
                                  f"{', '.join(STATUSES)}")
    note = data.get("note")
    return StatusReport(key, ticket_id_from_number(number), status, status,
                        str(note)[:MAX_NOTE] if isinstance(note, str) else "")


class _Headers(dict[str, str]):
    """Request headers looked up regardless of case."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__((name.lower(), value) for name, value in headers.items())

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise InboundRefused(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise InboundRefused(400, "the body must be a JSON object")
    return data
