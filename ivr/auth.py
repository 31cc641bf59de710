"""Sign-in for agents and admins: Flask-Login sessions, API tokens, roles and CSRF protection.

Pages sign in with a session cookie and every form carries a CSRF token (Flask-WTF); the JSON
API also accepts `Authorization: Bearer <token>` (no cookie, so no CSRF token needed). Twilio's
webhooks are exempt from both: they prove themselves with their signature instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Request, abort
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFProtect

from callbacks.workqueue.agents import Agent, agent_for_token
from ivr.db import get_session

login_manager = LoginManager()
csrf = CSRFProtect()
F = TypeVar("F", bound=Callable[..., Any])


class SignedIn(UserMixin):
    """The signed-in agent, as Flask-Login sees them."""

    def __init__(self, agent: Agent, by_token: bool = False) -> None:
        self.agent = agent
        self.by_token = by_token

    def get_id(self) -> str:
        """The session's user id; a changed password (hash) signs every session out."""
        return f"{self.agent.id}:{self.agent.password_hash[-12:]}"

    @property
    def is_admin(self) -> bool:
        """Whether the agent has the admin role."""
        return self.agent.is_admin


def init_app(app: Flask) -> None:
    """Sign-in, sessions and CSRF for the console, admin pages and API."""
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    # Flask defines the key as None, so setdefault would leave it unset: set it unless a
    # deployment chose a value (Strict) itself.
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if app.config["ENV"] == "production":
        app.config["SESSION_COOKIE_SECURE"] = True
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 12 * 3600)
    login_manager.init_app(app)
    login_manager.login_view = "console.sign_in"
    login_manager.login_message = "Please sign in."
    login_manager.session_protection = "basic"
    csrf.init_app(app)


@login_manager.user_loader
def _load_agent(user_id: str) -> SignedIn | None:
    agent_id, _, stamp = user_id.partition(":")
    if not agent_id.isdigit():
        return None
    agent = get_session().get(Agent, int(agent_id))
    if agent is None or not agent.active or agent.password_hash[-12:] != stamp:
        return None
    return SignedIn(agent)


@login_manager.request_loader
def _load_agent_from_token(request: Request) -> SignedIn | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    agent = agent_for_token(get_session(), header.removeprefix("Bearer ").strip())
    return SignedIn(agent, by_token=True) if agent is not None else None


def signed_in_agent() -> Agent:
    """The current request's agent (call only behind login_required)."""
    user: Any = current_user
    agent: Agent = user.agent
    return agent


def admin_required(view: F) -> F:
    """Only agents with the admin role; everyone else gets 403."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not getattr(current_user, "is_admin", False):
            abort(403)
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]
