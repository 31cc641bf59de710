"""Sign-in for agents and admins: Flask-Login sessions, API tokens, roles and CSRF protection.

Pages sign in with a session cookie and every form carries a CSRF token (Flask-WTF); the JSON
API also accepts `Authorization: Bearer <token>` (no cookie, so no CSRF token needed). Twilio's
webhooks are exempt from both: they prove themselves with their signature instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Request, abort, session
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect

from callbacks.db import utcnow
from callbacks.workqueue.agents import Agent, agent_for_token, end_sessions
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
        """The session's user id with the agent's session version: signing out, a new
        password, deactivation or an admin's "sign out everywhere" bump the version, and every
        copy of an older session cookie stops working."""
        return f"{self.agent.id}:{self.agent.session_version}"

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
    """The agent of a session cookie, if the session is still current (checked every request)."""
    agent_id, _, version = user_id.partition(":")
    if not (agent_id.isascii() and agent_id.isdigit() and len(agent_id) <= 9):
        return None
    agent = get_session().get(Agent, int(agent_id))
    if agent is None or not agent.active or str(agent.session_version) != version:
        return None
    return SignedIn(agent)


@login_manager.request_loader
def _load_agent_from_token(request: Request) -> SignedIn | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    agent = agent_for_token(get_session(), header.removeprefix("Bearer ").strip())
    return SignedIn(agent, by_token=True) if agent is not None else None


def start_session(agent: Agent) -> None:
    """Sign the agent in on this browser with a fresh session; an offline agent is now away
    (signed in, not taking work until they say they are available)."""
    if agent.availability == "offline":
        agent.availability, agent.availability_since = "away", utcnow()
        get_session().commit()
    session.clear()  # nothing carried over from before the sign-in
    login_user(SignedIn(agent))


def end_session() -> None:
    """Sign out: every session of the agent ends, here and wherever its cookie was copied,
    and the agent is offline (one on a call stays on it; the call ends in wrap-up)."""
    user: Any = current_user
    if user.is_authenticated and not user.by_token:
        agent: Agent = user.agent
        end_sessions(agent)
        if agent.availability != "on_call":
            agent.availability, agent.availability_since = "offline", utcnow()
        get_session().commit()
    logout_user()
    session.clear()


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
