"""The JSON API's bodies for agent accounts (admins only): create, read, change, reset a
password, and the account's history, as pydantic models (see ivr/api/models.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from callbacks.workqueue.accounts import HistoryLine
from callbacks.workqueue.agents import Agent
from callbacks.workqueue.skills import AgentSkills
from ivr.api.models import AgentOut, Languages, RequestBody, Topics
from ivr.signin_limits import SignInState

Text = Annotated[str, StringConstraints(max_length=128, pattern=r"^[^\x00]*$")]
Phone = Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00]*$")]
Password = Annotated[str, StringConstraints(min_length=10, max_length=256,
                                            pattern=r"^[^\x00]*$")]


class AgentPatch(RequestBody):
    """The fields to change; a field left out stays as it is."""

    name: Text | None = Field(None, description="The name colleagues see")
    role: Literal["agent", "admin"] | None = None
    phone: Phone | None = Field(None, description="The number the agent answers (E.164), "
                                                  "or empty for none")
    dial_mode: Literal["progressive", "preview"] | None = None
    active: bool | None = Field(None, description="false deactivates: no sign-in, no API "
                                                  "token, no calls; true reactivates")
    languages: Languages | None = None
    topics: Topics | None = None


class PasswordRequest(RequestBody):
    """A new password, or none to have one generated (returned once)."""

    password: Password | None = None


class AccountEventOut(BaseModel):
    """One change to an account: what, when, by whom."""

    at: datetime
    action: str = Field(description="created, edited, deactivated, reactivated, "
                                    "password_reset, unlocked, signed_out_everywhere, "
                                    "token_issued")
    by: str
    detail: str

    @classmethod
    def of(cls, line: HistoryLine) -> AccountEventOut:
        """The API form of an account event."""
        return cls(at=line.at, action=line.action, by=line.by, detail=line.detail)


class AgentDetail(AgentOut):
    """An account with its sign-in state and its history, newest first."""

    sign_in_attempts: int = Field(description="Recent sign-in attempts under this user name")
    sign_in_wait_seconds: int = Field(description="How long the next sign-in has to wait "
                                                  "(0: it may start now)")
    history: list[AccountEventOut]

    @classmethod
    def detail(cls, agent: Agent, skills: AgentSkills, state: SignInState,
               history: list[HistoryLine]) -> AgentDetail:
        """The API form of an account with everything admins see."""
        return cls(**AgentOut.of(agent, skills).model_dump(), sign_in_attempts=state.attempts,
                   sign_in_wait_seconds=state.wait,
                   history=[AccountEventOut.of(line) for line in history])


class AgentCreated(AgentOut):
    """A new account; `generated_password` is shown this once when none was sent."""

    generated_password: str | None


class PasswordOut(BaseModel):
    """A password was set: the generated one (shown once), or null when the admin sent it."""

    agent: AgentOut
    generated_password: str | None
