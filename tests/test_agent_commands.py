"""`ivr agents add|list|password|token|disable`, and the demo agent `ivr demo` creates."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from callbacks.workqueue.agents import Agent, agent_for_token, authenticate
from ivr.cli import main
from ivr.demo import DEMO_AGENT_PHONE, ensure_demo_agent

PASSWORD = "correct horse battery"


def add(runner: FlaskCliRunner, username: str, *options: str,
        password: str = PASSWORD) -> tuple[int, str]:
    result = runner.invoke(main, ["agents", "add", username, *options, "--password-stdin"],
                           input=password + "\n")
    return result.exit_code, result.output


def stored(app: Flask, username: str) -> Agent | None:
    with app.extensions["ivr.sessions"]() as session:
        return session.scalar(select(Agent).where(Agent.username == username))


def signs_in(app: Flask, username: str, password: str) -> bool:
    with app.extensions["ivr.sessions"]() as session:
        return authenticate(session, username, password) is not None


def test_add_then_list(runner: FlaskCliRunner, app: Flask) -> None:
    code, output = add(runner, "Ann", "--name", "Ann Smith", "--phone", "+49 30 555 011",
                       "--role", "admin", "--mode", "preview")
    assert code == 0, output
    assert "added admin ann (Ann Smith, preview)" in output
    assert add(runner, "bob")[0] == 0
    agent = stored(app, "ann")
    assert agent is not None and agent.phone == "+4930555011" and agent.dial_mode == "preview"
    assert signs_in(app, "ann", PASSWORD)
    listing = runner.invoke(main, ["agents", "list"])
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    assert lines[0].split() == ["USERNAME", "NAME", "ROLE", "PHONE", "AVAILABILITY", "MODE"]
    assert lines[1].split() == ["ann", "Ann", "Smith", "admin", "+4930555011", "offline", "preview"]
    assert lines[2].split() == ["bob", "bob", "agent", "-", "offline", "progressive"]


def test_an_empty_list_says_how_to_add(runner: FlaskCliRunner) -> None:
    result = runner.invoke(main, ["agents", "list"])
    assert result.exit_code == 0 and "ivr agents add" in result.output


def test_the_password_prompt_asks_twice_and_hides_the_input(runner: FlaskCliRunner,
                                                            app: Flask) -> None:
    result = runner.invoke(main, ["agents", "add", "cleo"],
                           input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert result.output.count("Password") == 1 and "Repeat for confirmation" in result.output
    assert signs_in(app, "cleo", PASSWORD)
    help_text = runner.invoke(main, ["agents", "add", "--help"]).output
    assert "--password-stdin" in help_text and "--password " not in help_text


def test_errors_are_one_line_with_exit_code_1(runner: FlaskCliRunner, app: Flask) -> None:
    assert add(runner, "ann")[0] == 0
    for args, password, message in [
        (["ann"], PASSWORD, "an agent named 'ann' exists already"),
        (["dan"], "short", "a password needs at least 10 characters"),
        (["dan", "--phone", "12"], PASSWORD, "is not a phone number in international form"),
        (["no spaces"], PASSWORD, "a user name is 1-64 letters"),
        (["dan"], "", "no password given"),
    ]:
        code, output = add(runner, *args, password=password)
        assert code == 1, output
        assert output.startswith("Error: ") and message in output
        assert len(output.strip().splitlines()) == 1 and "Traceback" not in output
    assert stored(app, "dan") is None
    for command in ("password", "token", "disable"):
        result = runner.invoke(main, ["agents", command, "nobody", "--password-stdin"]
                               if command == "password" else ["agents", command, "nobody"],
                               input=PASSWORD + "\n")
        assert result.exit_code == 1
        assert result.output.strip() == "Error: no agent named 'nobody' (see: ivr agents list)"


def test_password_change(runner: FlaskCliRunner, app: Flask) -> None:
    add(runner, "ann")
    new = "another long passphrase"
    result = runner.invoke(main, ["agents", "password", "ann", "--password-stdin"],
                           input=new + "\n")
    assert result.exit_code == 0 and "password of ann changed" in result.output
    assert signs_in(app, "ann", new) and not signs_in(app, "ann", PASSWORD)
    weak = runner.invoke(main, ["agents", "password", "ann", "--password-stdin"],
                         input="short\n")
    assert weak.exit_code == 1 and "at least 10 characters" in weak.output
    assert signs_in(app, "ann", new)


def test_token_is_printed_once_and_replaces_the_previous(runner: FlaskCliRunner,
                                                         app: Flask) -> None:
    add(runner, "ann")
    first = runner.invoke(main, ["agents", "token", "ann"])
    second = runner.invoke(main, ["agents", "token", "ann"])
    assert first.exit_code == second.exit_code == 0
    old, new = first.stdout.strip(), second.stdout.strip()
    assert new.startswith("ivr_") and len(new.splitlines()) == 1 and old != new
    assert "shown once" in second.stderr
    with app.extensions["ivr.sessions"]() as session:
        assert agent_for_token(session, old) is None
        found = agent_for_token(session, new)
        assert found is not None and found.username == "ann"


def test_disable_ends_sign_in_tokens_and_calls(runner: FlaskCliRunner, app: Flask) -> None:
    add(runner, "ann")
    token = runner.invoke(main, ["agents", "token", "ann"]).stdout.strip()
    result = runner.invoke(main, ["agents", "disable", "ann"])
    assert result.exit_code == 0 and "ann is disabled" in result.output
    assert not signs_in(app, "ann", PASSWORD)
    with app.extensions["ivr.sessions"]() as session:
        assert agent_for_token(session, token) is None
    assert "disabled" in runner.invoke(main, ["agents", "list"]).output
    refused = runner.invoke(main, ["agents", "token", "ann"])
    assert refused.exit_code == 1 and "ann is disabled" in refused.output


def test_the_demo_agent_is_made_once_when_there_is_no_agent(app: Flask, database_url: str,
                                                             tmp_path: Path) -> None:
    password = ensure_demo_agent(database_url, tmp_path)
    assert password is not None
    agent = stored(app, "demo")
    assert agent is not None
    assert (agent.phone, agent.dial_mode) == (DEMO_AGENT_PHONE, "preview")
    assert signs_in(app, "demo", password)
    assert ensure_demo_agent(database_url, tmp_path) == password  # kept for the next run
    assert (tmp_path / "demo-agent-password.txt").stat().st_mode & 0o077 == 0


def test_no_demo_agent_where_agents_exist(runner: FlaskCliRunner, app: Flask,
                                          database_url: str, tmp_path: Path) -> None:
    add(runner, "ann")
    assert ensure_demo_agent(database_url, tmp_path) is None
    assert stored(app, "demo") is None
