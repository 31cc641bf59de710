"""The signed JSON webhook: every ticket event POSTed to the company's URL.

The body is the event's document (`TicketEventPayload`, in the OpenAPI document under
`webhooks`), byte for byte the same on every try. Headers:

    X-Helpdesk-Timestamp: 1767225600            (Unix seconds of this try)
    X-Helpdesk-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>
    Idempotency-Key: ivr-10042-317-servicedesk  (the same on every try of this event)
    X-Helpdesk-Event: transcribed

A receiver checks the signature, refuses timestamps outside its replay window (five minutes
by default) and ignores keys it has seen (a repeat after a worker died mid-delivery). A 2xx
answer counts as delivered; 408, 425, 429 and 5xx, timeouts and refused connections are tried
again with backoff; any other 4xx fails the delivery until an admin retries it. The same
signature, with the same secret, signs status changes the system reports back.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time

import requests

from callbacks.delivery.connectors import DeliveryFailed, DeliveryRefused, Outgoing, Sent
from callbacks.delivery.settings import WebhookSettings

TIMESTAMP_HEADER = "X-Helpdesk-Timestamp"
SIGNATURE_HEADER = "X-Helpdesk-Signature"
KEY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Helpdesk-Event"
RETRYABLE = (408, 425, 429)

_sessions: dict[str, requests.Session] = {}
_lock = threading.Lock()


class SignatureInvalid(ValueError):
    """A request whose signature or timestamp does not check out."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(secret: str, timestamp: str | None, body: bytes, given: str | None, *,
                     window_seconds: int, now: float | None = None) -> None:
    """Raise SignatureInvalid unless `given` signs `body` at a timestamp inside the window."""
    if not secret:
        raise SignatureInvalid("no secret is configured for this connector")
    if not timestamp or not given:
        raise SignatureInvalid(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
    if not hmac.compare_digest(signature(secret, timestamp, body), given):
        raise SignatureInvalid("the signature does not match")
    try:
        sent = int(timestamp)
    except ValueError:
        raise SignatureInvalid("the timestamp is not Unix seconds") from None
    if abs((time.time() if now is None else now) - sent) > window_seconds:
        raise SignatureInvalid(f"the timestamp is outside the {window_seconds} s replay window")


def send_webhook(name: str, settings: WebhookSettings, outgoing: Outgoing) -> Sent:
    """POST the event's document, signed; Sent on 2xx."""
    body = outgoing.body.encode("utf-8")
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
               SIGNATURE_HEADER: signature(settings.secret, timestamp, body),
               KEY_HEADER: outgoing.key, EVENT_HEADER: outgoing.payload.event.kind,
               "User-Agent": "helpdesk-ivr delivery"}
    try:
        response = _session(name).post(settings.url, data=body, headers=headers,
                                       timeout=settings.timeout_seconds, allow_redirects=False)
    except requests.RequestException as error:
        _drop(name)
        raise DeliveryFailed(f"POST {settings.url}: {type(error).__name__}: {error}") from None
    if 200 <= response.status_code < 300:
        return Sent(remote_ref=f"HTTP {response.status_code}")
    text = f"POST {settings.url}: HTTP {response.status_code} {response.text[:200]}".strip()
    if response.status_code >= 500 or response.status_code in RETRYABLE:
        raise DeliveryFailed(text)
    raise DeliveryRefused(text)


def _session(name: str) -> requests.Session:
    """This worker's keep-alive session for a connector."""
    with _lock:
        session = _sessions.get(name)
        if session is None:
            session = _sessions[name] = requests.Session()
        return session


def _drop(name: str) -> None:
    with _lock:
        session = _sessions.pop(name, None)
    if session is not None:
        session.close()
