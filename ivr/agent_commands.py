"""`ivr agents add|edit|list|password|token|unlock|signout|disable|enable`: agent accounts
from the shell, with the same rules and account history as the admin pages and the API.

Passwords are read from a hidden prompt (typed twice) or, for scripts, from standard input
with --password-stdin; never from the command line, where `ps` and shell history would see them.
Skills are written like `--languages de:3,en:2 --topics password:2,vdi` (level 1-3, default 2).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from callbacks.workqueue.accounts import (
    AccountChange,
    NewAccount,
    agent_named,
    change_account,
    deactivate,
    open_account,
    reactivate,
    record,
    reset_password,
    sign_out_everywhere,
)
from callbacks.workqueue.agents import (
    DIAL_MODES,
    ROLES,
    Agent,
    AgentError,
    issue_api_token,
    list_agents,
)
from callbacks.workqueue.skills import SkillError, parse_skills, skills_by_agent
from ivr import signin_limits

BY = "cli"
"""What the account history records for changes made here."""

password_stdin = click.option(
    "--password-stdin", is_flag=True,
    help="Read the password from the first line of standard input instead of a prompt.")
languages_option = click.option(
    "--languages", help="Languages with a level 1-3, e.g. de:3,en:2 (empty: none).")
topics_option = click.option(
    "--topics", help="Topics with a level 1-3, e.g. password:2,vdi (empty: none).")


@click.group("agents")
def agents_group() -> None:
    """Agent accounts: add, edit, list, passwords, API tokens, unlock, sign out, disable."""


@agents_group.command("add")
@click.argument("username")
@click.option("--name", "display_name", default="", help="The name colleagues see.")
@click.option("--phone", default="", help="The number the agent answers, e.g. +4930555010.")
@click.option("--role", type=click.Choice(ROLES), default="agent", show_default=True)
@click.option("--mode", "dial_mode", type=click.Choice(DIAL_MODES), default="progressive",
              show_default=True, help="progressive: the dialer calls as soon as the agent is "
                                      "available; preview: the agent clicks Call.")
@languages_option
@topics_option
@password_stdin
@with_appcontext
def add_command(username: str, display_name: str, phone: str, role: str, dial_mode: str,
                languages: str | None, topics: str | None, password_stdin: bool) -> None:
    """Create the account USERNAME (offline until they sign in)."""
    wanted = (_skills(languages, "language"), _skills(topics, "topic"))
    password = _read_password(password_stdin)
    with _agents_session() as session:
        agent, _ = open_account(session, NewAccount(
            username=username, display_name=display_name, role=role, phone=phone,
            dial_mode=dial_mode, languages=wanted[0], topics=wanted[1], password=password), BY)
        session.commit()
        click.echo(f"added {agent.role} {agent.username} ({agent.name}, {agent.dial_mode})")


@agents_group.command("edit")
@click.argument("username")
@click.option("--name", "display_name", help="The name colleagues see.")
@click.option("--phone", help="The number the agent answers (empty: none).")
@click.option("--role", type=click.Choice(ROLES))
@click.option("--mode", "dial_mode", type=click.Choice(DIAL_MODES))
@languages_option
@topics_option
@with_appcontext
def edit_command(username: str, display_name: str | None, phone: str | None, role: str | None,
                 dial_mode: str | None, languages: str | None, topics: str | None) -> None:
    """Change USERNAME's name, phone, role, dial mode or skills (options left out stay)."""
    change = AccountChange(display_name=display_name, role=role, phone=phone,
                           dial_mode=dial_mode, languages=_skills(languages, "language"),
                           topics=_skills(topics, "topic"))
    with _agents_session() as session:
        agent = agent_named(session, username)
        changed = change_account(session, agent, change, BY)
        session.commit()
    click.echo(f"{agent.username}: changed {', '.join(changed)}" if changed
               else f"{agent.username}: nothing to change")


@agents_group.command("list")
@with_appcontext
def list_command() -> None:
    """Every account: user name, name, role, phone, availability, dial mode and skills."""
    with _agents_session() as session:
        agents = list_agents(session)
        skills = skills_by_agent(session)
        waits = signin_limits.states_of([agent.username for agent in agents])
    if not agents:
        click.echo("no agents yet: ivr agents add USERNAME --name 'Full Name' --phone +49...")
        return
    rows = [("USERNAME", "NAME", "ROLE", "PHONE", "AVAILABILITY", "MODE", "LANGUAGES",
             "TOPICS", "SIGN-IN")]
    for agent in agents:
        known = skills.get(agent.id)
        wait = waits[agent.username]
        rows.append((agent.username, agent.name, agent.role, agent.phone or "-",
                     agent.availability if agent.active else "disabled", agent.dial_mode,
                     _listed(known.languages if known else {}),
                     _listed(known.topics if known else {}),
                     f"waits-{wait.wait}s" if wait.slowed else "ok"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                       strict=True)).rstrip())


@agents_group.command("password")
@click.argument("username")
@password_stdin
@with_appcontext
def password_command(username: str, password_stdin: bool) -> None:
    """Set a new password for USERNAME (their signed-in sessions end)."""
    with _agents_session() as session:
        agent = agent_named(session, username)
        reset_password(session, agent, BY, _read_password(password_stdin))
        session.commit()
    click.echo(f"password of {agent.username} changed")


@agents_group.command("token")
@click.argument("username")
@with_appcontext
def token_command(username: str) -> None:
    """Issue a new API token for USERNAME (printed once; the previous token stops working)."""
    with _agents_session() as session:
        agent = agent_named(session, username)
        if not agent.active:
            raise AgentError(f"{agent.username} is disabled")
        token = issue_api_token(agent)
        record(session, agent, "token_issued", BY)
        session.commit()
    click.echo(f"API token of {agent.username} (shown once; send it as "
               "'Authorization: Bearer <token>'):", err=True)
    click.echo(token)


def _account_command(name: str, change: Callable[[Session, Agent, str], object], done: str,
                     summary: str) -> None:
    """Add `ivr agents NAME USERNAME`: one change to one account, recorded as the shell's."""

    @agents_group.command(name, help=summary)
    @click.argument("username")
    @with_appcontext
    def command(username: str) -> None:
        with _agents_session() as session:
            agent = agent_named(session, username)
            change(session, agent, BY)
            session.commit()
        click.echo(done.format(agent.username))


_account_command("unlock", signin_limits.unlock_account, "{} may sign in again at once",
                 "Clear USERNAME's wait after failed sign-in attempts.")
_account_command("signout", sign_out_everywhere, "{} is signed out everywhere",
                 "Sign USERNAME out everywhere (every console session ends; an API token keeps "
                 "working).")
_account_command("disable", deactivate, "{} is disabled",
                 "Disable USERNAME: no sign-in, no API token, no calls from the dialer.")
_account_command("enable", reactivate, "{} may sign in again",
                 "Let a disabled USERNAME sign in again (a new API token is needed: ivr agents "
                 "token).")


@contextmanager
def _agents_session() -> Iterator[Session]:
    """A database session; an AgentError inside becomes a one-line message and exit code 1."""
    with current_app.extensions["ivr.sessions"]() as session:
        try:
            yield session
        except AgentError as error:
            session.rollback()
            raise click.ClickException(str(error)) from None


def _skills(text: str | None, kind: str) -> dict[str, int] | None:
    """An option's skills; None when the option was not given."""
    if text is None:
        return None
    try:
        return parse_skills(text, kind)
    except SkillError as error:
        raise click.BadParameter(str(error), param_hint=f"--{kind}s") from None


def _listed(skills: dict[str, int]) -> str:
    return ",".join(f"{code}:{level}" for code, level in sorted(skills.items())) or "-"


def _read_password(from_stdin: bool) -> str:
    """The new password, from standard input's first line or a hidden prompt typed twice."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.ClickException("no password given")
    return password
