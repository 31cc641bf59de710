"""The native Zammad connector, through Zammad's maintained Python client (`zammad_py`).

The first event of a ticket creates the Zammad ticket in the configured group, for a customer
found by the caller's phone number (or created with it), with the event as its first article
(the recording attached when it is kept); its id and number are kept with the ticket
(`DeliveryStream`). Later events become articles (internal notes, except replies to the
caller), status changes also set the Zammad state (`states`), and a transcription updates
the priority (`priorities`).

A try that follows one that may have reached Zammad first looks there: the ticket by the title
that names our ticket number, an article by the delivery key it carries, so a worker killed
between Zammad's answer and our record never makes a second ticket or article.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

import requests
from zammad_py import ZammadAPI

from callbacks.delivery.connectors import DeliveryFailed, DeliveryRefused, Outgoing, Sent
from callbacks.delivery.email import KIND_TITLES, message_text
from callbacks.delivery.settings import ZammadSettings

STATE_KINDS = ("status", "resolved", "closed", "reopened", "unreachable")
"""Events that move the Zammad ticket's state."""
PRIORITY_KINDS = ("transcribed",)
UNKNOWN_CALLER = "guess:unknown-caller@phone-line.invalid"
"""Zammad's `guess:` customer (made on first use) for tickets whose caller withheld the number."""

_clients: dict[tuple[str, str, str, float], ZammadAPI] = {}
_lock = threading.Lock()


class _Session(requests.Session):
    """A requests session with a timeout on every request, remembering the last status code
    (zammad_py's errors carry only the response text)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        self.last_status = 0

    def request(self, method: str | bytes, url: str | bytes,  # type: ignore[override]
                *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        response = super().request(method, url, *args, **kwargs)
        self.last_status = response.status_code
        return response


def title_marker(number: str) -> str:
    """The start of the Zammad ticket's title: how a later try finds it."""
    return f"Phone ticket {number}"


def send_to_zammad(name: str, settings: ZammadSettings, outgoing: Outgoing) -> Sent:
    """Create the Zammad ticket, or add the event to it."""
    api = _client(name, settings)
    session = api.session
    assert isinstance(session, _Session)
    try:
        if outgoing.remote_id is None:
            return _create_ticket(api, settings, outgoing)
        return _update_ticket(api, settings, outgoing, int(outgoing.remote_id))
    except requests.HTTPError as error:
        status = session.last_status
        text = f"Zammad answered HTTP {status}: {str(error)[:300]}"
        if status >= 500 or status in (408, 429):
            raise DeliveryFailed(text) from None
        raise DeliveryRefused(text) from None
    except requests.RequestException as error:
        raise DeliveryFailed(f"cannot reach Zammad: {type(error).__name__}: {error}") from None


def _create_ticket(api: ZammadAPI, settings: ZammadSettings, outgoing: Outgoing) -> Sent:
    ticket = outgoing.payload.ticket
    marker = title_marker(ticket.number)
    if outgoing.attempt > 1:
        for found in api.ticket.search(f'title:"{marker}"'):
            if isinstance(found, dict) and str(found.get("title", "")).startswith(marker):
                return Sent(f"ticket {found['id']} (found)", str(found["id"]),
                            str(found.get("number") or ""))
    who = ticket.caller_name or ticket.caller or "an unknown caller"
    params: dict[str, Any] = {
        "title": f"{marker}: {ticket.category} from {who}",
        "group": settings.group,
        "customer_id": _customer_id(api, outgoing),
        "priority": settings.priorities.get(ticket.priority, "2 normal"),
        "article": _article(outgoing, first=True),
    }
    state = settings.states.get(ticket.status)
    if state:
        params["state"] = state
    created = api.ticket.create(params)
    return Sent(f"ticket {created['id']}", str(created["id"]), str(created.get("number") or ""))


def _update_ticket(api: ZammadAPI, settings: ZammadSettings, outgoing: Outgoing,
                   ticket_id: int) -> Sent:
    payload = outgoing.payload
    article_id = None
    if outgoing.attempt > 1:
        article_id = next((article.get("id") for article in api.ticket.articles(ticket_id)
                           if isinstance(article, dict) and outgoing.key in
                           str(article.get("body", ""))), None)
    if article_id is None:
        article = _article(outgoing, first=False)
        article["ticket_id"] = ticket_id
        article_id = api.ticket_article.create(article)["id"]
    changes: dict[str, Any] = {}
    if payload.event.kind in STATE_KINDS and settings.states.get(payload.ticket.status):
        changes["state"] = settings.states[payload.ticket.status]
    if payload.event.kind in PRIORITY_KINDS:
        changes["priority"] = settings.priorities.get(payload.ticket.priority, "2 normal")
    if changes:
        api.ticket.update(ticket_id, changes)
    return Sent(f"ticket {ticket_id} article {article_id}", str(ticket_id))


def _customer_id(api: ZammadAPI, outgoing: Outgoing) -> int | str:
    """The Zammad user with the caller's phone number, created when there is none."""
    ticket = outgoing.payload.ticket
    if not ticket.caller:
        return UNKNOWN_CALLER
    digits = ticket.caller.lstrip("+")
    for user in api.user.search(digits):
        if isinstance(user, dict) and ticket.caller in (_e164(user.get("phone")),
                                                        _e164(user.get("mobile"))):
            return int(user["id"])
    first, _, last = ticket.caller_name.partition(" ") if ticket.caller_name else ("", "", "")
    created = api.user.create({
        "firstname": first or "Caller", "lastname": last or ticket.caller,
        "phone": ticket.caller, "note": "Created by the phone line for its tickets."})
    return int(created["id"])


def _article(outgoing: Outgoing, *, first: bool) -> dict[str, Any]:
    payload = outgoing.payload
    kind = payload.event.kind
    title = KIND_TITLES.get(kind, kind.replace("_", " "))
    body = f"{message_text(payload, title)}\nDelivery key: {outgoing.key}\n"
    article: dict[str, Any] = {
        "subject": f"{title_marker(payload.ticket.number)}: {title}",
        "body": body,
        "content_type": "text/plain",
        "type": "phone" if first else "note",
        "internal": not first and kind != "reply",
        "sender": "Customer" if first or kind == "caller_message" else "System",
        "message_id": f"<{outgoing.key}@helpdesk-ivr>",
    }
    if payload.recording.included and outgoing.recording is not None:
        article["attachments"] = [{
            "filename": f"ticket-{payload.ticket.number}.wav",
            "data": base64.b64encode(outgoing.recording).decode("ascii"),
            "mime-type": "audio/wav"}]
    return article


def _e164(value: Any) -> str:
    text = "".join(ch for ch in str(value or "") if ch.isdigit() or ch == "+")
    return text if text.startswith("+") else (f"+{text}" if text else "")


def _client(name: str, settings: ZammadSettings) -> ZammadAPI:
    """This worker's client for a connector (one keep-alive session)."""
    key = (name, settings.url, settings.token, settings.timeout_seconds)
    with _lock:
        api = _clients.get(key)
        if api is None:
            api = ZammadAPI(url=settings.url, http_token=settings.token)
            session = _Session(settings.timeout_seconds)
            session.headers.update(api.session.headers)
            api.session.close()
            api.session = session
            _clients[key] = api
        return api
