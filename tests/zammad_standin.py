"""A loopback stand-in for Zammad's REST API (v1), for the Zammad connector's tests.

It answers the part of the API the connector uses and checks each request against Zammad's
public REST API documentation (docs.zammad.org, "API" › Ticket, Ticket Article, User):

- every request carries `Authorization: Token token=<token>` (else 401, as Zammad answers);
- POST /api/v1/users needs at least one of firstname, lastname, email, phone, mobile, login;
- GET /api/v1/users/search and /api/v1/tickets/search need `query`;
- POST /api/v1/tickets needs title, group (a known group), customer_id or customer, and an
  article with a body; state and priority must be names Zammad knows;
- POST /api/v1/ticket_articles needs ticket_id (an existing ticket) and body; type is one of
  Zammad's article types; attachments need filename, data (base64) and mime-type;
- PUT /api/v1/tickets/{id} on an existing ticket, with known state/priority names.

A request that breaks a rule gets 422 like Zammad's `{"error": ...}` and is kept in
`problems`, so a test asserts the connector never sent one. `fail_next(status, times)` makes
the next requests fail; `webhook(...)` signs a state change like Zammad's webhooks do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
from flask import Flask, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

STATES = ("new", "open", "pending reminder", "closed", "merged", "pending close")
PRIORITIES = ("1 low", "2 normal", "3 high")
ARTICLE_TYPES = ("email", "sms", "chat", "fax", "phone", "twitter status", "web", "note")
SENDERS = ("Agent", "Customer", "System")


@dataclass
class ZammadState:
    """What the stand-in holds: users, tickets, articles, every request and every problem."""

    token: str
    groups: tuple[str, ...] = ("Users",)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    articles: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    lost_answers: int = 0
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)


def create_zammad_standin(state: ZammadState) -> Flask:
    """The Flask app of the stand-in."""
    app = Flask("zammad_standin")

    def problem(message: str, status: int = 422) -> Any:
        state.problems.append(f"{request.method} {request.path}: {message}")
        response = jsonify({"error": message, "error_human": message})
        response.status_code = status
        return response

    @app.before_request
    def check() -> Any:
        with state.lock:
            state.requests.append((request.method, request.path))
            if state.failures:
                return jsonify({"error": "stand-in failure"}), state.failures.pop(0)
        if request.headers.get("Authorization") != f"Token token={state.token}":
            return jsonify({"error": "authentication failed"}), 401
        if request.method in ("POST", "PUT") and not request.is_json:
            return problem("send the body as application/json")
        return None

    @app.after_request
    def lose(response: Any) -> Any:
        with state.lock:
            if state.lost_answers and request.method in ("POST", "PUT") \
                    and response.status_code < 300:
                state.lost_answers -= 1
                return jsonify({"error": "gateway timeout"}), 504
        return response

    @app.get("/api/v1/users/search")
    def search_users() -> Any:
        query = request.args.get("query", "")
        if not query:
            return problem("query is required")
        digits = "".join(ch for ch in query if ch.isdigit())
        found = [user for user in state.users.values()
                 if digits and any(digits in "".join(ch for ch in str(user.get(f) or "")
                                                      if ch.isdigit())
                                   for f in ("phone", "mobile"))]
        return jsonify(found)

    @app.post("/api/v1/users")
    def create_user() -> Any:
        body = request.get_json()
        if not any(body.get(key) for key in ("firstname", "lastname", "email", "phone",
                                              "mobile", "login")):
            return problem("a user needs at least one of firstname, lastname, email, phone, "
                           "mobile or login")
        with state.lock:
            user = {**body, "id": next(state.ids), "roles": ["Customer"]}
            state.users[user["id"]] = user
        return jsonify(user), 201

    @app.get("/api/v1/tickets/search")
    def search_tickets() -> Any:
        query = request.args.get("query", "")
        if not query:
            return problem("query is required")
        wanted = query.removeprefix("title:").strip('"')
        return jsonify([t for t in state.tickets.values() if wanted in t["title"]])

    @app.post("/api/v1/tickets")
    def create_ticket() -> Any:
        body = request.get_json()
        for key in ("title", "group", "article"):
            if not body.get(key):
                return problem(f"{key} is required")
        if body["group"] not in state.groups:
            return problem(f"unknown group '{body['group']}'")
        customer = body.get("customer_id") or body.get("customer")
        if not customer:
            return problem("customer_id or customer is required")
        if isinstance(customer, int) and customer not in state.users:
            return problem(f"no user {customer}")
        if isinstance(customer, str) and not customer.startswith("guess:"):
            return problem("customer must be a user id or guess:<email>")
        bad = _bad_fields(body)
        if bad:
            return problem(bad)
        article = body["article"]
        if not isinstance(article, dict) or not article.get("body"):
            return problem("article needs a body")
        bad = _bad_article(article)
        if bad:
            return problem(bad)
        with state.lock:
            ticket_id = next(state.ids)
            ticket = {"id": ticket_id, "number": str(31000 + ticket_id), "title": body["title"],
                      "group": body["group"], "customer_id": customer,
                      "state": body.get("state", "new"),
                      "priority": body.get("priority", "2 normal"), "article_count": 1}
            state.tickets[ticket_id] = ticket
            state.articles[next(state.ids)] = {**article, "ticket_id": ticket_id}
        return jsonify(ticket), 201

    @app.put("/api/v1/tickets/<int:ticket_id>")
    def update_ticket(ticket_id: int) -> Any:
        if ticket_id not in state.tickets:
            return problem("no such ticket", 404)
        body = request.get_json()
        bad = _bad_fields(body)
        if bad:
            return problem(bad)
        with state.lock:
            state.tickets[ticket_id].update({k: v for k, v in body.items()
                                             if k in ("state", "priority", "title")})
        return jsonify(state.tickets[ticket_id])

    @app.post("/api/v1/ticket_articles")
    def create_article() -> Any:
        body = request.get_json()
        if body.get("ticket_id") not in state.tickets:
            return problem("ticket_id must name an existing ticket")
        if not body.get("body"):
            return problem("body is required")
        bad = _bad_article(body)
        if bad:
            return problem(bad)
        with state.lock:
            article_id = next(state.ids)
            state.articles[article_id] = {**body, "id": article_id}
            state.tickets[body["ticket_id"]]["article_count"] += 1
        return jsonify(state.articles[article_id]), 201

    @app.get("/api/v1/ticket_articles/by_ticket/<int:ticket_id>")
    def articles_of(ticket_id: int) -> Any:
        if ticket_id not in state.tickets:
            return problem("no such ticket", 404)
        return jsonify([{**a, "id": i} for i, a in state.articles.items()
                        if a["ticket_id"] == ticket_id])

    return app


def _bad_fields(body: dict[str, Any]) -> str:
    if "state" in body and body["state"] not in STATES:
        return f"unknown state '{body['state']}'"
    if "priority" in body and body["priority"] not in PRIORITIES:
        return f"unknown priority '{body['priority']}'"
    return ""


def _bad_article(article: dict[str, Any]) -> str:
    if article.get("type", "note") not in ARTICLE_TYPES:
        return f"unknown article type '{article.get('type')}'"
    if article.get("sender", "Agent") not in SENDERS:
        return f"unknown sender '{article.get('sender')}'"
    if not isinstance(article.get("internal", False), bool):
        return "internal must be true or false"
    for attachment in article.get("attachments", []):
        if not all(attachment.get(key) for key in ("filename", "data", "mime-type")):
            return "attachments need filename, data and mime-type"
        try:
            base64.b64decode(attachment["data"], validate=True)
        except (binascii.Error, ValueError):
            return "attachment data must be base64"
    return ""


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class ZammadStandin:
    """The stand-in on a free loopback port in a background thread; a context manager."""

    def __init__(self, token: str) -> None:
        self.state = ZammadState(token)
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, create_zammad_standin(self.state), threaded=True,
            request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}/api/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="zammad-standin").start()

    def __enter__(self) -> ZammadStandin:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` requests with `status`."""
        with self.state.lock:
            self.state.failures.extend([status] * times)

    def lose_next_answers(self, times: int = 1) -> None:
        """Do the next `times` writes, but answer them 504 (the answer is lost on the way)."""
        with self.state.lock:
            self.state.lost_answers += times

    def articles(self, ticket_id: int) -> list[dict[str, Any]]:
        """The articles of a ticket, in the order they were made."""
        return [a for a in self.state.articles.values() if a["ticket_id"] == ticket_id]

    def webhook_request(self, secret: str, ticket_id: int, state: str,
                        delivery: str | None = None) -> tuple[bytes, dict[str, str]]:
        """The body and headers of Zammad's webhook for a state change (default payload,
        signed with HMAC-SHA1 in X-Hub-Signature)."""
        ticket = {**self.state.tickets[ticket_id], "state": state,
                  "updated_at": "2026-12-03T10:00:00.000Z"}
        body = json.dumps({"ticket": ticket, "article": {}}).encode()
        digest = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
        return body, {"Content-Type": "application/json", "User-Agent": "Zammad User Agent",
                      "X-Zammad-Trigger": "phone line",
                      "X-Zammad-Delivery": delivery or uuid.uuid4().hex,
                      "X-Hub-Signature": digest}

    def webhook(self, url: str, secret: str, ticket_id: int, state: str,
                delivery: str | None = None) -> requests.Response:
        """POST a state change to `url` as Zammad's webhook does."""
        body, headers = self.webhook_request(secret, ticket_id, state, delivery)
        return requests.post(url, data=body, headers=headers, timeout=10)
