"""`ivr agents add|list|password|token|disable`: agent accounts from the shell.

Passwords are read from a hidden prompt (typed twice) or, for scripts, from standard input
with --password-stdin; never from the command line, where `ps` and shell history would see them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks.workqueue.agents import (
    DIAL_MODES,
    ROLES,
    Agent,
    AgentError,
    create_agent,
    issue_api_token,
    list_agents,
    set_password,
)

password_stdin = click.option(
    "--password-stdin", is_flag=True,
    help="Read the password from the first line of standard input instead of a prompt.")


@click.group("agents")
def agents_group() -> None:
    """Agent accounts: add, list, change passwords, issue API tokens, disable."""


@agents_group.command("add")
@click.argument("username")
@click.option("--name", "display_name", default="", help="The name colleagues see.")
@click.option("--phone", default="", help="The number the agent answers, e.g. +4930555010.")
@click.option("--role", type=click.Choice(ROLES), default="agent", show_default=True)
@click.option("--mode", "dial_mode", type=click.Choice(DIAL_MODES), default="progressive",
              show_default=True, help="progressive: the dialer calls as soon as the agent is "
                                      "available; preview: the agent clicks Call.")
@password_stdin
@with_appcontext
def add_command(username: str, display_name: str, phone: str, role: str, dial_mode: str,
                password_stdin: bool) -> None:
    """Create the account USERNAME."""
    password = _read_password(password_stdin)
    with _agents_session() as session:
        agent = create_agent(session, username, password, display_name=display_name,
                             role=role, phone=phone, dial_mode=dial_mode)
        session.commit()
        click.echo(f"added {agent.role} {agent.username} ({agent.name}, {agent.dial_mode})")


@agents_group.command("list")
@with_appcontext
def list_command() -> None:
    """List every account: user name, name, role, phone, availability and dial mode."""
    with _agents_session() as session:
        agents = list_agents(session)
    if not agents:
        click.echo("no agents yet: ivr agents add USERNAME --name 'Full Name' --phone +49...")
        return
    rows = [("USERNAME", "NAME", "ROLE", "PHONE", "AVAILABILITY", "MODE")] + [
        (agent.username, agent.name, agent.role, agent.phone or "-",
         agent.availability if agent.active else "disabled", agent.dial_mode)
        for agent in agents]
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
        agent = _agent_named(session, username)
        set_password(agent, _read_password(password_stdin))
        session.commit()
    click.echo(f"password of {agent.username} changed")


@agents_group.command("token")
@click.argument("username")
@with_appcontext
def token_command(username: str) -> None:
    """Issue a new API token for USERNAME (printed once; the previous token stops working)."""
    with _agents_session() as session:
        agent = _agent_named(session, username)
        if not agent.active:
            raise AgentError(f"{agent.username} is disabled")
        token = issue_api_token(agent)
        session.commit()
    click.echo(f"API token of {agent.username} (shown once; send it as "
               "'Authorization: Bearer <token>'):", err=True)
    click.echo(token)


@agents_group.command("disable")
@click.argument("username")
@with_appcontext
def disable_command(username: str) -> None:
    """Disable USERNAME: no sign-in, no API token, no calls from the dialer."""
    with _agents_session() as session:
        agent = _agent_named(session, username)
        agent.active = False
        agent.api_token_hash = ""
        if agent.availability != "on_call":
            agent.availability = "away"
        session.commit()
    click.echo(f"{agent.username} is disabled")


@contextmanager
def _agents_session() -> Iterator[Session]:
    """A database session; an AgentError inside becomes a one-line message and exit code 1."""
    with current_app.extensions["ivr.sessions"]() as session:
        try:
            yield session
        except AgentError as error:
            session.rollback()
            raise click.ClickException(str(error)) from None


def _agent_named(session: Session, username: str) -> Agent:
    agent = session.scalar(select(Agent).where(Agent.username == username.strip().lower()))
    if agent is None:
        raise AgentError(f"no agent named {username!r} (see: ivr agents list)")
    return agent


def _read_password(from_stdin: bool) -> str:
    """The new password, from standard input's first line or a hidden prompt typed twice."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.ClickException("no password given")
    return password
