"""`ivr agents add|edit|list|password|token|unlock|signout|disable|enable`, and the demo agent
`ivr demo` creates."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from callbacks.workqueue.accounts import AccountEvent
from callbacks.workqueue.agents import Agent, agent_for_token, authenticate
from callbacks.workqueue.skills import skills_of
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
                       "--role", "admin", "--mode", "preview", "--languages", "de:3,en:2",
                       "--topics", "password:2,vdi")
    assert code == 0, output
    assert "added admin ann (Ann Smith, preview)" in output
    assert add(runner, "bob")[0] == 0
    agent = stored(app, "ann")
    assert agent is not None and agent.phone == "+4930555011" and agent.dial_mode == "preview"
    assert signs_in(app, "ann", PASSWORD)
    listing = runner.invoke(main, ["agents", "list"])
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    assert lines[0].split() == ["USERNAME", "NAME", "ROLE", "PHONE", "AVAILABILITY", "MODE",
                                "LANGUAGES", "TOPICS", "SIGN-IN"]
    assert lines[1].split() == ["ann", "Ann", "Smith", "admin", "+4930555011", "offline",
                                "preview", "de:3,en:2", "password:2,vdi:2", "ok"]
    assert lines[2].split() == ["bob", "bob", "agent", "-", "offline", "progressive", "-", "-",
                                "ok"]


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
    made = ensure_demo_agent(database_url, tmp_path)
    assert made.created and made.password is not None
    agent = stored(app, "demo")
    assert agent is not None
    assert (agent.phone, agent.dial_mode, agent.role) == (DEMO_AGENT_PHONE, "preview", "admin")
    assert signs_in(app, "demo", made.password)
    again = ensure_demo_agent(database_url, tmp_path)  # the next start: kept, not shown
    assert not again.created and again.password is None
    assert (tmp_path / "demo-agent-password.txt").read_text().strip() == made.password
    assert (tmp_path / "demo-agent-password.txt").stat().st_mode & 0o077 == 0


def test_no_demo_agent_where_agents_exist(runner: FlaskCliRunner, app: Flask,
                                          database_url: str, tmp_path: Path) -> None:
    add(runner, "ann")
    assert not ensure_demo_agent(database_url, tmp_path).created
    assert stored(app, "demo") is None


def test_edit_changes_only_what_is_given(runner: FlaskCliRunner, app: Flask) -> None:
    add(runner, "ann", "--name", "Ann Smith", "--languages", "de:3")
    result = runner.invoke(main, ["agents", "edit", "ann", "--phone", "+4930555019",
                                  "--mode", "preview", "--topics", "vdi:3,network"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "ann: changed phone, dial_mode, topics"
    agent = stored(app, "ann")
    assert agent is not None
    assert (agent.display_name, agent.phone, agent.dial_mode) == (
        "Ann Smith", "+4930555019", "preview")
    with app.extensions["ivr.sessions"]() as session:
        skills = skills_of(session, agent.id)
    assert (skills.languages, skills.topics) == ({"de": 3}, {"network": 2, "vdi": 3})
    cleared = runner.invoke(main, ["agents", "edit", "ann", "--languages", ""])
    assert cleared.output.strip() == "ann: changed languages"
    assert runner.invoke(main, ["agents", "edit", "ann"]).output.strip() == (
        "ann: nothing to change")
    bad = runner.invoke(main, ["agents", "edit", "ann", "--languages", "german"])
    assert bad.exit_code == 2 and "a language is a 2-3 letter code" in bad.output
    with app.extensions["ivr.sessions"]() as session:
        actions = session.scalars(select(AccountEvent.action).order_by(AccountEvent.id)).all()
        by = set(session.scalars(select(AccountEvent.by)))
    assert actions == ["created", "edited", "edited"] and by == {"cli"}


def test_unlock_and_signout(runner: FlaskCliRunner, app: Flask) -> None:
    add(runner, "ann")
    client = app.test_client()
    assert client.post("/api/v1/session", json={"username": "ann", "password": PASSWORD}
                       ).status_code == 200
    for _ in range(3):
        app.test_client().post("/api/v1/session", json={"username": "ann", "password": "no"})
    assert "waits-" in runner.invoke(main, ["agents", "list"]).output
    unlocked = runner.invoke(main, ["agents", "unlock", "ann"])
    assert unlocked.exit_code == 0 and "ann may sign in again at once" in unlocked.output
    assert "waits-" not in runner.invoke(main, ["agents", "list"]).output
    signed_out = runner.invoke(main, ["agents", "signout", "ann"])
    assert signed_out.exit_code == 0 and "ann is signed out everywhere" in signed_out.output
    assert client.get("/api/v1/me").status_code == 401
    for command in ("unlock", "signout", "edit", "enable"):
        result = runner.invoke(main, ["agents", command, "nobody"])
        assert result.exit_code == 1 and "no agent named 'nobody'" in result.output


def test_disable_then_enable(runner: FlaskCliRunner, app: Flask) -> None:
    add(runner, "ann")
    add(runner, "root", "--role", "admin")
    assert runner.invoke(main, ["agents", "disable", "ann"]).exit_code == 0
    assert not signs_in(app, "ann", PASSWORD)
    enabled = runner.invoke(main, ["agents", "enable", "ann"])
    assert enabled.exit_code == 0 and "ann may sign in again" in enabled.output
    assert signs_in(app, "ann", PASSWORD)
    last_admin = runner.invoke(main, ["agents", "disable", "root"])
    assert last_admin.exit_code == 1 and "last active admin" in last_admin.output
