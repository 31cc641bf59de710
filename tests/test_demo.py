"""`ivr demo` (bin/demo): every command it prints and the README shows works as printed and
follows --port; texts and callbacks go out from the demo line's number; a restart keeps what
an admin published or rolled back; the database, instance folder and password stay private."""

from __future__ import annotations

import glob
import os
import re
import shlex
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import requests
from flask import Flask
from flask.testing import FlaskCliRunner

from benchmarks.chaos_stack import free_port
from callbacks.flowstore import PublishedFlow, publish_flow, rollback_flow
from ivr.cli import main
from ivr.demo import (
    DEMO_CALLER,
    DemoLine,
    demo_environment,
    demo_hints,
    ensure_demo_agent,
    flow_number,
    sign_in_hint,
)
from tests.conftest import DEMO_FLOW
from tests.test_console_browser import always_open

ROOT = Path(__file__).resolve().parents[1]
IVR = ".venv/bin/ivr"


def parse_command(words: list[str]) -> click.Context:
    """Parse an `ivr ...` command line down to its last subcommand, as the shell would run it
    (click raises a UsageError for an unknown option, a missing value or a bad choice)."""
    group: Any = main
    context = main.make_context("ivr", words, resilient_parsing=False)
    while isinstance(group, click.Group):
        arguments = [*context._protected_args, *context.args]
        if not arguments:
            break
        name, command, rest = group.resolve_command(context, arguments)
        assert command is not None, words
        context = command.make_context(name or "", rest, parent=context)
        group = command
    return context


def printed_commands(text: str) -> list[list[str]]:
    """Every command line in `text` that runs `ivr` or curl, split as the shell splits it."""
    return [shlex.split(line, comments=True) for line in text.splitlines()
            if re.match(r"\s*(\S*/)?(ivr|curl) ", line)]


# --- the printed hints --------------------------------------------------------------------


def test_every_printed_command_follows_the_port_and_parses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    wav = tmp_path / "demo-message.wav"
    wav.write_bytes(b"RIFF")
    line = DemoLine(6123, 6222, "+493012345678", IVR, str(wav))
    hints = demo_hints(line, "sign in as demo; the password is in instance/x (readable by you)")
    commands = printed_commands(hints)
    assert len(commands) == 8, hints
    assert "5000" not in hints and "5099" not in hints
    for words in commands:
        if words[0] == "curl":
            assert words[1] == "http://127.0.0.1:6222/_standin/messages"
            continue
        assert words[0] == IVR and (ROOT / IVR).exists()
        context = parse_command(words[1:])
        params = context.params
        if context.command.name == "call":
            assert params["base_url"] == "http://127.0.0.1:6123", words
            if params["standin_url"]:
                assert params["standin_url"] == "http://127.0.0.1:6222"
            for token in (params["script"] or "").split(","):
                if token.startswith("wav:"):
                    assert Path(token[4:]).exists()
        else:
            assert context.command.name == "answer"
            assert params["standin_url"] == "http://127.0.0.1:6222"
    assert "http://127.0.0.1:6123/console/" in hints


def test_the_demo_texts_and_calls_back_from_the_line_not_the_agent(tmp_path: Path) -> None:
    number = flow_number(DEMO_FLOW)
    env = demo_environment({}, 6123, tmp_path, number)
    assert env["IVR_SMS_FROM"] == env["IVR_CALLBACK_FROM"] == "+493012345678" == number
    assert env["IVR_TWILIO_API_BASE_URL"] == "http://127.0.0.1:6222"
    assert env["IVR_PUBLIC_BASE_URL"] == "http://127.0.0.1:6123"
    mine = demo_environment({"IVR_SMS_FROM": "MG" + "1" * 32}, 6123, tmp_path, number)
    assert mine["IVR_SMS_FROM"] == "MG" + "1" * 32  # the admin's own setting wins


def test_the_readme_shows_only_commands_that_run_as_printed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines, fence = [], None
    for line in readme.splitlines():
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
        elif (fence in ("sh", "bash", "") or (fence is None and line.startswith("    "))):
            lines.append(line.strip())
    bare = [line for line in lines if re.match(r"(\$ )?ivr ", line) or " | ivr " in line]
    assert bare == [], "ivr is not on PATH after bin/demo: write .venv/bin/ivr"
    # A checkout as the reader has it, with the files the examples name as their own.
    (tmp_path / "flows").symlink_to(ROOT / "flows")
    (tmp_path / "message.wav").write_bytes(b"RIFF")
    monkeypatch.chdir(tmp_path)
    parsed = 0
    for line in lines:
        if not line.startswith(IVR + " ") and f"| {IVR} " not in line:
            continue
        words = shlex.split(line.split(f"| {IVR} ", 1)[-1] if "| " in line else line,
                            comments=True)
        if words[0] == IVR:
            words = words[1:]
        expanded = [found for word in words if not word.startswith("<")
                    for found in (sorted(glob.glob(word)) if "*" in word else [word])]
        try:
            parse_command(expanded)
        except click.UsageError as error:
            raise AssertionError(f"README: {line!r}: {error}") from None
        parsed += 1
    assert parsed >= 20, parsed


# --- the instance folder, the database and the password -----------------------------------


def test_the_instance_folder_and_sqlite_database_are_private(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ivr import create_app

    instance = tmp_path / "instance"
    monkeypatch.setenv("IVR_INSTANCE_PATH", str(instance))
    monkeypatch.delenv("IVR_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    old = os.umask(0o022)  # a usual umask: others could read new files
    try:
        app = create_app({"TESTING": True})
    finally:
        os.umask(old)
    database = instance / "ivr.sqlite3"
    assert app.config["DATABASE_URL"] == f"sqlite:///{database}"
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    app.extensions["ivr.engine"].dispose()


def test_the_demo_password_is_shown_once_on_a_terminal_never_in_a_log(
        app: Flask, database_url: str, tmp_path: Path) -> None:
    (tmp_path / "demo-agent-password.txt").write_text("stale\n")
    (tmp_path / "demo-agent-password.txt").chmod(0o644)
    agent = ensure_demo_agent(database_url, tmp_path)
    assert agent.created and agent.password
    assert agent.password_file.read_text().strip() == agent.password
    assert stat.S_IMODE(agent.password_file.stat().st_mode) == 0o600
    assert agent.password in sign_in_hint(agent, show_password=True)
    redirected = sign_in_hint(agent, show_password=False)  # stdout is a file: no password
    assert agent.password not in redirected and "demo-agent-password.txt" in redirected
    again = ensure_demo_agent(database_url, tmp_path)  # the next start
    assert not again.created and again.password is None
    assert agent.password not in sign_in_hint(again, show_password=True)


# --- restarts keep an admin's changes -----------------------------------------------------


def test_publishing_if_new_keeps_an_admins_publish_and_rollback(runner: FlaskCliRunner,
                                                               app: Flask,
                                                               tmp_path: Path) -> None:
    flow_file = tmp_path / "it-support.yaml"
    flow_file.write_text(DEMO_FLOW.read_text(encoding="utf-8"), encoding="utf-8")

    def start_demo() -> str:
        result = runner.invoke(main, ["flows", "publish", str(flow_file), "--by", "demo",
                                      "--if-new"])
        assert result.exit_code == 0, result.output
        return result.output

    def live() -> int:
        with app.extensions["ivr.sessions"]() as session:
            published = session.get(PublishedFlow, "it-support")
            assert published is not None
            return published.version_id

    assert "published it-support version 1" in start_demo()
    first = live()
    with app.extensions["ivr.sessions"]() as session:  # an admin publishes in the browser
        edited = publish_flow(session, always_open(flow_file.read_text(encoding="utf-8")),
                              "it-support.yaml", by="rita")
        session.commit()
    assert "not published again (live: version 2)" in start_demo()
    assert live() == edited.id
    with app.extensions["ivr.sessions"]() as session:  # ... then rolls back
        rollback_flow(session, "it-support", 1, by="rita")
        session.commit()
    # CRLF on disk is the same text
    flow_file.write_bytes(flow_file.read_bytes().replace(b"\n", b"\r\n"))
    assert "not published again (live: version 1)" in start_demo()
    assert live() == first
    flow_file.write_text(DEMO_FLOW.read_text(encoding="utf-8") + "# edited on disk\n",
                         encoding="utf-8")
    assert "published it-support version 3" in start_demo()  # a new text is published


# --- the whole demo, as a newcomer runs it ------------------------------------------------


def _free_pair() -> int:
    for _ in range(50):
        port = free_port()
        if port + 99 < 65536 and _is_free(port + 99):
            return port
    raise RuntimeError("no two free ports")


def _is_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def demo_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str], Path, int]]:
    """`ivr demo --port P` on an always-open copy of the demo flow, as a newcomer starts it
    (output to a pipe, as to a log file); yields the process, its output lines so far, the
    instance folder and the port."""
    port = _free_pair()
    flow = tmp_path / "it-support.yaml"
    flow.write_text(always_open(DEMO_FLOW.read_text(encoding="utf-8")), encoding="utf-8")
    instance = tmp_path / "instance"
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("IVR_") and name not in ("REDIS_URL", "DATABASE_URL")}
    env["IVR_INSTANCE_PATH"] = str(instance)
    process = subprocess.Popen([str(ROOT / IVR), "demo", "--port", str(port), "--flow", str(flow)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if "Press Ctrl-C to stop." in line:
                break
        assert any("Press Ctrl-C" in line for line in lines), "\n".join(lines)
        for _ in range(100):  # gunicorn answers
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.2)
        yield process, lines, instance, port
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.server
def test_the_demo_runs_every_printed_command_as_printed(
        demo_run: tuple[subprocess.Popen[str], list[str], Path, int]) -> None:
    _, lines, instance, port = demo_run
    output = "\n".join(lines)
    password = (instance / "demo-agent-password.txt").read_text().strip()
    assert password and password not in output  # the output went to a pipe, like a log file
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    for name in ("ivr.sqlite3", "demo-agent-password.txt"):
        assert stat.S_IMODE((instance / name).stat().st_mode) == 0o600, name
    terminal = {name: value for name, value in os.environ.items()
                if not name.startswith("IVR_")}  # a second terminal knows none of the settings
    ran = 0
    for line in lines:
        words = shlex.split(line, comments=True) if re.match(r"\s*(\S*/)?(ivr|curl) ",
                                                             line) else []
        if not words or "after hours" in line or "# interactive" in line or (
                "answer" in words and "--list" not in words):
            continue  # the flow is always open; interactive needs a person; answer a dial
        if words[0] == "curl":
            continue  # read below, once the worker sent the text
        result = subprocess.run(words, cwd=ROOT, env=terminal, capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, (line, result.stdout, result.stderr)
        ran += 1
    assert ran == 4  # two calls, a voicemail and the list of ringing phones
    [curl] = [shlex.split(line, comments=True) for line in lines if "curl " in line]
    assert curl[1] == f"http://127.0.0.1:{port + 99}/_standin/messages"

    def texts() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = requests.get(curl[1], timeout=5).json()
        return found

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(texts()) < 2:
        time.sleep(0.5)
    sent = texts()
    assert {message["to"] for message in sent} == {DEMO_CALLER}
    assert {message["from"] for message in sent} == {"+493012345678"}  # the line's number
    assert len(sent) == 2  # the voicemail's ticket and the callback's ticket
    signed_in = requests.post(f"http://127.0.0.1:{port}/api/v1/session", timeout=10,
                              json={"username": "demo", "password": password})
    assert signed_in.status_code == 200
    assert signed_in.json()["agent"]["availability"] == "away"
