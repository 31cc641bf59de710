"""What a connector gets to send and what it answers: one shape for email, webhook and Zammad.

A connector either returns `Sent` (the receiver has the event), raises `DeliveryRefused` (the
receiver said no for good: trying again changes nothing until someone fixes something), or
raises `DeliveryFailed` / anything else (a passing failure: tried again after a backoff).
"""

from __future__ import annotations

from dataclasses import dataclass

from callbacks.delivery.payloads import TicketEventPayload
from callbacks.delivery.settings import Connector


class DeliveryFailed(RuntimeError):
    """A passing failure (connection refused, timeout, 5xx, a temporary SMTP reply)."""


class DeliveryRefused(RuntimeError):
    """A lasting refusal (a 4xx, a permanent SMTP reply, wrong credentials)."""


@dataclass(frozen=True)
class Outgoing:
    """One try of one event to one connector."""

    key: str
    payload: TicketEventPayload
    body: str
    attempt: int
    thread_key: str
    """The idempotency key of the ticket's first message to this connector (threads hang
    from it); equal to `key` for that first message."""
    recording: bytes | None
    remote_id: str | None
    """The receiver's id of the ticket, once it has one (Zammad)."""


@dataclass(frozen=True)
class Sent:
    """What the receiver answered: a reference for the admin page, and its ticket's id."""

    remote_ref: str
    remote_id: str | None = None
    remote_number: str | None = None


def send(connector: Connector, outgoing: Outgoing) -> Sent:
    """Deliver one event through its connector."""
    if connector.email is not None:
        from callbacks.delivery.email import send_email

        return send_email(connector.name, connector.email, outgoing)
    if connector.webhook is not None:
        from callbacks.delivery.webhook import send_webhook

        return send_webhook(connector.name, connector.webhook, outgoing)
    if connector.zammad is not None:
        from callbacks.delivery.zammad import send_to_zammad

        return send_to_zammad(connector.name, connector.zammad, outgoing)
    raise DeliveryRefused(f"connector '{connector.name}' has no settings")


def max_recording_bytes(connector: Connector) -> int | None:
    """The largest recording a connector's messages carry (None: it carries none)."""
    if connector.email is not None:
        return connector.email.max_attachment_bytes
    if connector.zammad is not None:
        return 10 * 1024 * 1024
    return None
