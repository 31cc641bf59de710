"""Agent accounts as admins manage them: create, edit, deactivate and reactivate, reset a
password, sign out everywhere; each change is kept in the account history.

The console's admin pages, the JSON API and `ivr agents` all call these functions, so an
account is checked the same way wherever it is changed. Nothing here is HTTP. Rules that hold
everywhere: one active admin always remains (nobody locks the line's admins out by accident),
and deactivating an account ends its sessions and its API token at once.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from callbacks.db import Base, UTCDateTime, utcnow
from callbacks.workqueue.agents import (
    DIAL_MODES,
    ROLES,
    Agent,
    AgentError,
    agent_phone,
    create_agent,
    end_sessions,
    set_password,
)
from callbacks.workqueue.skills import AgentSkills, SkillError, set_skills, skills_of

log = logging.getLogger(__name__)

ACTIONS = ("created", "edited", "deactivated", "reactivated", "password_reset",
           "unlocked", "signed_out_everywhere", "token_issued")
MAX_DETAIL = 300
GENERATED_PASSWORD_BYTES = 12
"""16 URL-safe characters: easy to type once, then the agent changes nothing (no rule asks)."""


class AccountEvent(Base):
    """One change to an agent's account: what, when and by whom (admins read these)."""

    __tablename__ = "agent_account_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"),
                                          index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(32))
    by: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(String(MAX_DETAIL), default="")


@dataclass(frozen=True)
class AccountChange:
    """What an admin asks to change; None leaves a field as it is."""

    display_name: str | None = None
    role: str | None = None
    phone: str | None = None
    dial_mode: str | None = None
    active: bool | None = None
    languages: dict[str, int] | None = None
    topics: dict[str, int] | None = None


@dataclass(frozen=True)
class NewAccount:
    """An account to create; without a password one is generated and shown once."""

    username: str
    display_name: str = ""
    role: str = "agent"
    phone: str = ""
    dial_mode: str = "progressive"
    languages: dict[str, int] | None = None
    topics: dict[str, int] | None = None
    password: str | None = None


@dataclass(frozen=True)
class HistoryLine:
    """An account event with the user name it is about."""

    at: datetime
    username: str
    action: str
    by: str
    detail: str


def record(session: Session, agent: Agent, action: str, by: str, detail: str = "") -> None:
    """Keep one account event, and log it without personal data (ids and field names)."""
    assert action in ACTIONS, action
    session.add(AccountEvent(agent_id=agent.id, at=utcnow(), action=action, by=by[:64],
                             detail=detail[:MAX_DETAIL]))
    log.info("agent account %s: %s by %s", agent.id, action.replace("_", " "),
             "the command line" if by == "cli" else "an admin")


def account_history(session: Session, agent_id: int | None = None,
                    limit: int = 50) -> list[HistoryLine]:
    """The latest account events, newest first (of one agent, or of everyone)."""
    query = (select(AccountEvent, Agent.username).join(Agent, Agent.id == AccountEvent.agent_id)
             .order_by(AccountEvent.at.desc(), AccountEvent.id.desc()).limit(limit))
    if agent_id is not None:
        query = query.where(AccountEvent.agent_id == agent_id)
    return [HistoryLine(event.at, username, event.action, event.by, event.detail)
            for event, username in session.execute(query)]


def generated_password() -> str:
    """A random password for an admin to hand over once."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def open_account(session: Session, new: NewAccount, by: str) -> tuple[Agent, str | None]:
    """Create the account with its skills; the generated password if none was given."""
    generated = generated_password() if not new.password else None
    agent = create_agent(session, new.username, new.password or str(generated),
                         display_name=new.display_name, role=new.role, phone=new.phone,
                         dial_mode=new.dial_mode)
    _set_skills(session, agent, new.languages, new.topics)
    record(session, agent, "created", by, f"{agent.role}, {agent.dial_mode} mode")
    return agent, generated


def change_account(session: Session, agent: Agent, change: AccountChange,
                   by: str) -> list[str]:
    """Apply an admin's edit (checked as a whole first); the names of the fields changed."""
    role = change.role if change.role is not None else agent.role
    if role not in ROLES:
        raise AgentError(f"role must be one of {', '.join(ROLES)}")
    if change.dial_mode is not None and change.dial_mode not in DIAL_MODES:
        raise AgentError(f"dial mode must be one of {', '.join(DIAL_MODES)}")
    phone = agent_phone(change.phone) if change.phone is not None else agent.phone
    name = change.display_name.strip() if change.display_name is not None else None
    if name is not None and len(name) > 128:
        raise AgentError("a name is at most 128 characters")
    active = change.active if change.active is not None else agent.active
    if agent.is_admin and (role != "admin" or not active):
        _keep_an_admin(session, agent)
    changed: list[str] = []
    old_skills = skills_of(session, agent.id)
    for field, value in (("display_name", name), ("role", change.role), ("phone", phone),
                         ("dial_mode", change.dial_mode)):
        if value is not None and getattr(agent, field) != value:
            setattr(agent, field, value)
            changed.append(field)
    new_skills = _set_skills(session, agent, change.languages, change.topics)
    changed += [kind for kind in ("languages", "topics")
                if getattr(new_skills, kind) != getattr(old_skills, kind)]
    if changed:
        record(session, agent, "edited", by, _describe(agent, changed, new_skills))
    if change.active is False and agent.active:
        deactivate(session, agent, by)
        changed.append("active")
    elif change.active is True and not agent.active:
        reactivate(session, agent, by)
        changed.append("active")
    return changed


def deactivate(session: Session, agent: Agent, by: str) -> None:
    """No sign-in, no API token, no calls: sessions end at once (a call in progress finishes)."""
    if agent.is_admin:
        _keep_an_admin(session, agent)
    agent.active = False
    agent.api_token_hash = ""
    end_sessions(agent)
    if agent.availability != "on_call":
        agent.availability, agent.availability_since = "offline", utcnow()
    record(session, agent, "deactivated", by)


def reactivate(session: Session, agent: Agent, by: str) -> None:
    """Let a deactivated agent sign in again (offline until they do; no API token)."""
    agent.active = True
    record(session, agent, "reactivated", by)


def reset_password(session: Session, agent: Agent, by: str,
                   password: str | None = None) -> str | None:
    """Set the typed password, or a generated one (returned, to be shown once); every session
    of the agent ends."""
    generated = generated_password() if not password else None
    set_password(agent, password or str(generated))
    record(session, agent, "password_reset", by,
           "generated, shown once" if generated else "typed by the admin")
    return generated


def sign_out_everywhere(session: Session, agent: Agent, by: str) -> None:
    """End every console session of the agent (their API token keeps working)."""
    end_sessions(agent)
    if agent.availability not in ("on_call", "offline"):
        agent.availability, agent.availability_since = "offline", utcnow()
    record(session, agent, "signed_out_everywhere", by)


def agent_named(session: Session, username: str) -> Agent:
    """The account with this user name; AgentError naming the way to find it if none."""
    agent = session.scalar(select(Agent).where(Agent.username == username.strip().lower()))
    if agent is None:
        raise AgentError(f"no agent named {username!r} (see: ivr agents list)")
    return agent


def _keep_an_admin(session: Session, leaving: Agent) -> None:
    others = session.scalar(select(func.count()).select_from(Agent).where(
        Agent.role == "admin", Agent.active.is_(True), Agent.id != leaving.id))
    if not others:
        raise AgentError(f"{leaving.username} is the last active admin; make someone else an "
                         "admin first")


def _set_skills(session: Session, agent: Agent, languages: dict[str, int] | None,
                topics: dict[str, int] | None) -> AgentSkills:
    try:
        return set_skills(session, agent.id, languages=languages, topics=topics)
    except SkillError as error:
        raise AgentError(str(error)) from None


def _describe(agent: Agent, changed: list[str], skills: AgentSkills) -> str:
    """What the history shows for an edit: the new values of the fields that changed."""
    shown = {"display_name": lambda: f"name {agent.display_name or '-'}",
             "role": lambda: f"role {agent.role}", "phone": lambda: f"phone {agent.phone or '-'}",
             "dial_mode": lambda: f"{agent.dial_mode} mode",
             "languages": lambda: f"languages {skills.describe().split(' | ')[0]}",
             "topics": lambda: f"topics {skills.describe().split(' | ')[1]}"}
    return "; ".join(shown[name]() for name in changed)


CHANGE_FIELDS = tuple(field.name for field in fields(AccountChange))
"""The fields an admin may change (the API's PATCH body names the same)."""
