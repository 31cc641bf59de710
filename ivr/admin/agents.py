"""Admin pages for agent accounts: the list (role, phone, dial mode, availability, skills,
sign-in waits), creating an account, editing it, deactivating and reactivating, resetting a
password (typed, or generated and shown once), unlocking a slowed sign-in and signing an agent
out everywhere. Every action is a CSRF-checked form, ends in a flash message and is kept in
the account history (callbacks/workqueue/accounts.py), which the pages show.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from callbacks.workqueue.accounts import (
    AccountChange,
    NewAccount,
    account_history,
    change_account,
    deactivate,
    open_account,
    reactivate,
    reset_password,
    sign_out_everywhere,
)
from callbacks.workqueue.agents import DIAL_MODES, ROLES, Agent, AgentError, list_agents
from callbacks.workqueue.skills import (
    LEVELS,
    SkillError,
    format_skills,
    parse_skills,
    skills_by_agent,
    skills_of,
)
from ivr import signin_limits
from ivr.admin.blueprint import bp, who
from ivr.auth import signed_in_agent
from ivr.db import get_session

FORM_FIELDS = ("username", "display_name", "role", "phone", "dial_mode", "languages", "topics")


@bp.get("/agents")
def agents_page() -> str:
    """Every account with its state, skills and sign-in wait; the form for a new one."""
    return _agents_page({"role": "agent", "dial_mode": "preview"})


def _agents_page(form: dict[str, str], status: int = 200) -> Any:
    session = get_session()
    agents = list_agents(session)
    return render_template(
        "admin/agents.html", agents=agents, skills=skills_by_agent(session),
        sign_in=signin_limits.states_of([agent.username for agent in agents]),
        history=account_history(session, limit=30), form=form, roles=ROLES,
        dial_modes=DIAL_MODES, levels=LEVELS, me=signed_in_agent()), status


@bp.post("/agents")
def create_account() -> Any:
    """Create an account; a password left empty is generated and shown once."""
    form = {name: request.form.get(name, "") for name in FORM_FIELDS}
    session = get_session()
    try:
        agent, generated = open_account(session, NewAccount(
            username=form["username"], display_name=form["display_name"],
            role=form["role"], phone=form["phone"], dial_mode=form["dial_mode"],
            languages=_skills(form["languages"], "language"),
            topics=_skills(form["topics"], "topic"),
            password=request.form.get("password") or None), who())
        session.commit()
    except AgentError as refused:
        session.rollback()
        flash(f"Not created: {refused}.", "error")
        return _agents_page(form, 422)
    if generated is not None:
        return _password_once(agent, generated, f"Account {agent.username} created.")
    flash(f"Account {agent.username} created with the password you typed.", "ok")
    return redirect(url_for("admin.agents_page"), code=303)


@bp.get("/agents/<int:agent_id>")
def agent_page(agent_id: int) -> str:
    """One account: its fields to edit, its actions and its history."""
    agent = _agent_or_404(agent_id)
    skills = skills_of(get_session(), agent.id)
    form = {"display_name": agent.display_name, "role": agent.role, "phone": agent.phone,
            "dial_mode": agent.dial_mode, "languages": format_skills(skills.languages),
            "topics": format_skills(skills.topics)}
    return _agent_page(agent, form)[0]


def _agent_page(agent: Agent, form: dict[str, str], status: int = 200) -> tuple[str, int]:
    session = get_session()
    return render_template(
        "admin/agent.html", agent=agent, form=form, roles=ROLES, dial_modes=DIAL_MODES,
        sign_in=signin_limits.state_of(agent.username),
        history=account_history(session, agent.id), me=signed_in_agent()), status


@bp.post("/agents/<int:agent_id>")
def edit_account(agent_id: int) -> Any:
    """Save an edit (name, role, phone, dial mode, languages, topics), checked as a whole."""
    agent = _agent_or_404(agent_id)
    form = {name: request.form.get(name, "") for name in FORM_FIELDS if name != "username"}
    session = get_session()
    try:
        changed = change_account(session, agent, AccountChange(
            display_name=form["display_name"], role=form["role"], phone=form["phone"],
            dial_mode=form["dial_mode"], languages=_skills(form["languages"], "language"),
            topics=_skills(form["topics"], "topic")), who())
        session.commit()
    except AgentError as refused:
        session.rollback()
        flash(f"Not saved: {refused}.", "error")
        return _agent_page(_agent_or_404(agent_id), form, 422)
    flash(f"Saved {agent.username}: {', '.join(_label(f) for f in changed)}." if changed
          else f"Nothing changed for {agent.username}.", "ok")
    return redirect(url_for("admin.agent_page", agent_id=agent_id), code=303)


@bp.post("/agents/<int:agent_id>/deactivate")
def deactivate_account(agent_id: int) -> BaseResponse:
    """No sign-in, no API token, no calls; every session ends."""
    return _act(agent_id, lambda agent, by: deactivate(get_session(), agent, by),
                "{} is deactivated: signed out everywhere, API token revoked, no calls.")


@bp.post("/agents/<int:agent_id>/reactivate")
def reactivate_account(agent_id: int) -> BaseResponse:
    """Let a deactivated agent sign in again."""
    return _act(agent_id, lambda agent, by: reactivate(get_session(), agent, by),
                "{} may sign in again (offline until they do; issue a new API token if "
                "they need one).")


@bp.post("/agents/<int:agent_id>/unlock")
def unlock_account(agent_id: int) -> BaseResponse:
    """Clear the wait after failed sign-ins, so the agent may try again at once."""
    return _act(agent_id, lambda agent, by: signin_limits.unlock_account(get_session(), agent,
                                                                         by),
                "{} may sign in again at once.")


@bp.post("/agents/<int:agent_id>/sign-out")
def sign_out_account(agent_id: int) -> BaseResponse:
    """End every session of the agent, on every device (their API token keeps working)."""
    return _act(agent_id, lambda agent, by: sign_out_everywhere(get_session(), agent, by),
                "{} is signed out everywhere.")


@bp.post("/agents/<int:agent_id>/password")
def reset_account_password(agent_id: int) -> Any:
    """Set the typed password, or generate one and show it once; every session ends."""
    agent = _agent_or_404(agent_id)
    session = get_session()
    try:
        generated = reset_password(session, agent, who(),
                                   request.form.get("password") or None)
        session.commit()
    except AgentError as refused:
        session.rollback()
        flash(f"Password not changed: {refused}.", "error")
        return redirect(url_for("admin.agent_page", agent_id=agent_id), code=303)
    if generated is not None:
        return _password_once(agent, generated, f"New password for {agent.username}.")
    flash(f"Password of {agent.username} changed; their sessions have ended.", "ok")
    return redirect(url_for("admin.agent_page", agent_id=agent_id), code=303)


def _act(agent_id: int, action: Any, done: str) -> BaseResponse:
    """Run an account action; its refusal is flashed; back to the agent's page."""
    agent = _agent_or_404(agent_id)
    session = get_session()
    try:
        action(agent, who())
        session.commit()
        flash(done.format(agent.username), "ok")
    except AgentError as refused:
        session.rollback()
        flash(f"Not done: {refused}.", "error")
    return redirect(url_for("admin.agent_page", agent_id=agent_id), code=303)


def _password_once(agent: Agent, password: str, headline: str) -> str:
    """The one page that shows a generated password (never stored in plain text, not cached)."""
    return render_template("admin/password_once.html", agent=agent, password=password,
                           headline=headline, me=signed_in_agent())


def _skills(text: str, kind: str) -> dict[str, int]:
    try:
        return parse_skills(text, kind)
    except SkillError as error:
        raise AgentError(str(error)) from None


def _agent_or_404(agent_id: int) -> Agent:
    agent = get_session().get(Agent, agent_id) if 0 < agent_id < 2**31 else None
    if agent is None:
        abort(404)
    return agent


def _label(field: str) -> str:
    return {"display_name": "name", "dial_mode": "dial mode", "active": "active"}.get(field,
                                                                                   field)
