"""Agents: who may sign in, what they may do, which phone they answer and whether they are free."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import Boolean, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from callbacks.calllog import normalize_number
from callbacks.db import Base, UTCDateTime, utcnow

ROLES = ("agent", "admin")
AVAILABILITY = ("available", "on_call", "wrap_up", "away", "offline")
"""offline: signed out; away: signed in but not taking work; neither is ever rung."""
CHOSEN_STATES = ("available", "wrap_up", "away")
"""The states agents choose themselves (on_call is the dialer's, offline is signing out)."""
DIAL_MODES = ("progressive", "preview")
"""progressive: the dialer calls the agent as soon as they are available; preview: they click."""

# A hash for accounts that have none, so a wrong user name costs as much as a wrong password.
_NO_PASSWORD = generate_password_hash("no password was ever set for this account")


class AgentError(ValueError):
    """An agent account cannot be created or changed as asked; the message says why."""


class Agent(Base):
    """A person who works the call list (role agent) or also runs the line (role admin)."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(String(256), default="")
    role: Mapped[str] = mapped_column(String(16), default="agent")
    phone: Mapped[str] = mapped_column(String(64), default="")
    availability: Mapped[str] = mapped_column(String(16), default="offline", index=True)
    availability_since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dial_mode: Mapped[str] = mapped_column(String(16), default="progressive")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    api_token_hash: Mapped[str] = mapped_column(String(64), default="", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Carried by every console session; bumping it ends them all (sign-out, password, ...)."""

    @property
    def is_admin(self) -> bool:
        """Whether this agent may use the admin pages."""
        return self.role == "admin"

    @property
    def name(self) -> str:
        """What colleagues see: the display name, else the user name."""
        return self.display_name or self.username


def create_agent(session: Session, username: str, password: str, *, display_name: str = "",
                 role: str = "agent", phone: str = "", dial_mode: str = "progressive") -> Agent:
    """Add an agent account; the password is stored only as a salted hash."""
    username = username.strip().lower()
    if not username or len(username) > 64 or not username.replace(".", "").replace(
            "-", "").replace("_", "").replace("@", "").isalnum():
        raise AgentError("a user name is 1-64 letters, digits and . - _ @")
    if role not in ROLES:
        raise AgentError(f"role must be one of {', '.join(ROLES)}")
    if dial_mode not in DIAL_MODES:
        raise AgentError(f"dial mode must be one of {', '.join(DIAL_MODES)}")
    check_password_strength(password)
    if session.scalar(select(Agent.id).where(Agent.username == username)) is not None:
        raise AgentError(f"an agent named {username!r} exists already")
    agent = Agent(username=username, display_name=display_name.strip(),
                  password_hash=generate_password_hash(password), role=role,
                  phone=agent_phone(phone), dial_mode=dial_mode, availability="offline",
                  availability_since=utcnow(), session_version=0)
    session.add(agent)
    session.flush()
    return agent


def agent_phone(phone: str) -> str:
    """The E.164 form of the number an agent answers; '' for none; AgentError if invalid."""
    if not phone.strip():
        return ""
    number = normalize_number(phone)
    if not number.startswith("+"):
        raise AgentError(f"{phone!r} is not a phone number in international form (+49...)")
    return number


def check_password_strength(password: str) -> None:
    """Refuse passwords too short to resist guessing."""
    if len(password) < 10:
        raise AgentError("a password needs at least 10 characters")


def set_password(agent: Agent, password: str) -> None:
    """Replace an agent's password; every signed-in session of theirs ends."""
    check_password_strength(password)
    agent.password_hash = generate_password_hash(password)
    end_sessions(agent)


def end_sessions(agent: Agent) -> None:
    """End every console session of the agent, wherever its cookie was copied to (API tokens
    are not sessions: they work until replaced or the agent is deactivated)."""
    agent.session_version = (agent.session_version or 0) + 1


def authenticate(session: Session, username: str, password: str) -> Agent | None:
    """The active agent with this user name and password, else None (same cost either way)."""
    agent = session.scalar(select(Agent).where(Agent.username == username.strip().lower()))
    if agent is None or not agent.active or not agent.password_hash:
        check_password_hash(_NO_PASSWORD, password)
        return None
    return agent if check_password_hash(agent.password_hash, password) else None


def set_availability(session: Session, agent: Agent, availability: str,
                     now: datetime | None = None) -> bool:
    """Change an agent's state; False (and no change) if it is not a known state."""
    if availability not in AVAILABILITY:
        return False
    if agent.availability != availability:
        agent.availability = availability
        agent.availability_since = now or utcnow()
    return True


def release_agent(session: Session, agent_id: int, availability: str,
                  now: datetime | None = None) -> None:
    """Put an agent who was on a call into `availability` (wrap-up, available or away)."""
    session.execute(
        update(Agent).where(Agent.id == agent_id, Agent.availability == "on_call")
        .values(availability=availability, availability_since=now or utcnow())
    )


def issue_api_token(agent: Agent) -> str:
    """A new API token for the agent (shown once; only its SHA-256 is kept)."""
    token = "ivr_" + secrets.token_urlsafe(32)
    agent.api_token_hash = hashlib.sha256(token.encode()).hexdigest()
    return token


def agent_for_token(session: Session, token: str) -> Agent | None:
    """The active agent whose API token this is, else None."""
    if not token.startswith("ivr_") or len(token) > 128:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    agent = session.scalar(select(Agent).where(Agent.api_token_hash == digest))
    if agent is None or not agent.active or not hmac.compare_digest(agent.api_token_hash, digest):
        return None
    return agent


def list_agents(session: Session) -> list[Agent]:
    """Every account, by name."""
    return list(session.scalars(select(Agent).order_by(Agent.username)))
