"""The JSON API's agent accounts, for admins: list and create (with skills), read one with its
sign-in state and history, change it (PATCH), reset its password, unlock its sign-in and sign
it out everywhere. The same account rules as the admin pages and `ivr agents` apply
(callbacks/workqueue/accounts.py); every change is kept in the account history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Response

from callbacks.workqueue.accounts import (
    AccountChange,
    NewAccount,
    account_history,
    change_account,
    open_account,
    reset_password,
    sign_out_everywhere,
)
from callbacks.workqueue.agents import Agent, AgentError, list_agents
from callbacks.workqueue.skills import AgentSkills, skills_by_agent, skills_of
from ivr import signin_limits
from ivr.api.agent_models import (
    AgentCreated,
    AgentDetail,
    AgentPatch,
    PasswordOut,
    PasswordRequest,
)
from ivr.api.core import ADMIN, ApiProblem, Reply, api_route, reply
from ivr.api.models import MAX_ID, AgentList, AgentOut, AgentRequest, Problem
from ivr.auth import signed_in_agent
from ivr.db import get_session

T = TypeVar("T")
REFUSED = Reply("The account cannot be changed as asked: a taken user name, a weak password, "
                "an invalid phone number or skill, or the last active admin (the message "
                "says which)", Problem)


@api_route("GET", "/agents", summary="Every agent account", tag="agents", access=ADMIN,
           responses={200: Reply("Agents by user name, with their skills", AgentList)})
def get_agents() -> Response:
    """Every agent account with its skills (admins only)."""
    session = get_session()
    skills = skills_by_agent(session)
    return reply(AgentList(agents=[AgentOut.of(agent, skills.get(agent.id, AgentSkills()))
                                   for agent in list_agents(session)]))


@api_route("POST", "/agents", summary="Create an agent account", tag="agents", access=ADMIN,
           body=AgentRequest, responses={
               201: Reply("The new account; generated_password is set (this once) when no "
                          "password was sent", AgentCreated),
               400: REFUSED})
def post_agent(body: AgentRequest) -> Response:
    """Create an agent account with skills; without a password one is generated (admins only)."""
    session = get_session()
    agent, generated = _refusable(lambda: open_account(session, NewAccount(
        username=body.username, display_name=body.display_name, role=body.role,
        phone=body.phone, dial_mode=body.dial_mode, languages=body.languages,
        topics=body.topics, password=body.password), _admin()))
    session.commit()
    return reply(AgentCreated(**AgentOut.of(agent).model_dump(), generated_password=generated),
                 201)


@api_route("GET", "/agents/<int:agent_id>", summary="An agent account", tag="agents",
           access=ADMIN, responses={
               200: Reply("The account, its sign-in state and its history", AgentDetail)})
def get_agent(agent_id: int) -> Response:
    """One account with its skills, sign-in wait and account history (admins only)."""
    return _detail(_agent(agent_id))


@api_route("PATCH", "/agents/<int:agent_id>", summary="Change an agent account",
           tag="agents", access=ADMIN, body=AgentPatch, responses={
               200: Reply("The account as changed", AgentDetail), 400: REFUSED})
def patch_agent(agent_id: int, body: AgentPatch) -> Response:
    """Change name, role, phone, dial mode, skills or whether the account is active; the
    change is checked as a whole (admins only)."""
    agent = _agent(agent_id)
    session = get_session()
    _refusable(lambda: change_account(session, agent, AccountChange(
        display_name=body.name, role=body.role, phone=body.phone, dial_mode=body.dial_mode,
        active=body.active, languages=body.languages, topics=body.topics), _admin()))
    session.commit()
    return _detail(agent)


@api_route("POST", "/agents/<int:agent_id>/password", summary="Reset an agent's password",
           tag="agents", access=ADMIN, body=PasswordRequest, responses={
               200: Reply("The password is set; every session of the agent has ended",
                          PasswordOut), 400: REFUSED})
def post_password(agent_id: int, body: PasswordRequest) -> Response:
    """Set the sent password, or generate one (returned this once); sessions end."""
    agent = _agent(agent_id)
    session = get_session()
    generated = _refusable(lambda: reset_password(session, agent, _admin(), body.password))
    session.commit()
    return reply(PasswordOut(agent=AgentOut.of(agent), generated_password=generated))


@api_route("POST", "/agents/<int:agent_id>/unlock", summary="Unlock an agent's sign-in",
           tag="agents", access=ADMIN, responses={
               200: Reply("The wait after failed sign-ins is cleared", AgentDetail)})
def post_unlock(agent_id: int) -> Response:
    """Clear the wait after failed sign-in attempts (admins only)."""
    agent = _agent(agent_id)
    session = get_session()
    signin_limits.unlock_account(session, agent, _admin())
    session.commit()
    return _detail(agent)


@api_route("POST", "/agents/<int:agent_id>/sign-out", summary="Sign an agent out everywhere",
           tag="agents", access=ADMIN, responses={
               200: Reply("Every console session of the agent has ended (an API token keeps "
                          "working until replaced or the account is deactivated)",
                          AgentDetail)})
def post_sign_out(agent_id: int) -> Response:
    """End every cookie session of the agent, on every device (admins only)."""
    agent = _agent(agent_id)
    session = get_session()
    sign_out_everywhere(session, agent, _admin())
    session.commit()
    return _detail(agent)


def _refusable(action: Callable[[], T]) -> T:
    """Run an account change; a refusal becomes a 400 with the rule's message."""
    try:
        return action()
    except AgentError as refused:
        get_session().rollback()
        raise ApiProblem(400, "refused", str(refused)) from None


def _agent(agent_id: int) -> Agent:
    agent = get_session().get(Agent, agent_id) if 0 < agent_id <= MAX_ID else None
    if agent is None:
        raise ApiProblem(404, "not_found", f"no agent {agent_id}")
    return agent


def _detail(agent: Agent) -> Response:
    session = get_session()
    return reply(AgentDetail.detail(agent, skills_of(session, agent.id),
                                    signin_limits.state_of(agent.username),
                                    account_history(session, agent.id)))


def _admin() -> str:
    return signed_in_agent().username

