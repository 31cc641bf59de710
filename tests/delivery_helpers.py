"""Shared pieces of the delivery tests: connector files, tickets with events, worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from benchmarks.ticket_receivers import SMTP_PASSWORD, SMTP_USER, WEBHOOK_SECRET
from callbacks import runtime
from callbacks.delivery.outbox import Delivery
from callbacks.settings import Settings
from callbacks.tickets.ticket import Ticket, add_event
from callbacks.voicemail import Voicemail, VoicemailAudio

SECRETS = {"TEST_DELIVERY_SMTP_PASSWORD": SMTP_PASSWORD,
           "TEST_DELIVERY_WEBHOOK_SECRET": WEBHOOK_SECRET,
           "TEST_ZAMMAD_TOKEN": "zammad-token-for-tests",
           "TEST_ZAMMAD_WEBHOOK_SECRET": "zammad-hub-secret"}


def email_connector(port: int, cert: Path, name: str = "mail", **extra: Any) -> str:
    """The YAML of an email connector to the test SMTP server."""
    lines = [f"  {name}:", "    type: email", "    smtp_host: 127.0.0.1",
             f"    smtp_port: {port}", "    security: starttls", f"    username: {SMTP_USER}",
             "    password_env: TEST_DELIVERY_SMTP_PASSWORD",
             '    from: "IT phone line <phone-line@example.test>"',
             "    to: servicedesk@example.test", f"    ca_file: {cert}"]
    lines += [f"    {key}: {value}" for key, value in {"timeout_seconds": 5, **extra}.items()]
    return "\n".join(lines) + "\n"


def webhook_connector(url: str, name: str = "hook", **extra: Any) -> str:
    """The YAML of a webhook connector to the test receiver."""
    lines = [f"  {name}:", "    type: webhook", f"    url: {url}",
             "    secret_env: TEST_DELIVERY_WEBHOOK_SECRET"]
    lines += [f"    {key}: {value}" for key, value in {"timeout_seconds": 2, **extra}.items()]
    return "\n".join(lines) + "\n"


def write_delivery_file(directory: Path, *connectors: str, max_attempts: int = 8,
                        first_backoff: int = 1, max_backoff: int = 2) -> Path:
    """A delivery file with these connectors and a short backoff."""
    path = directory / "delivery.yaml"
    path.write_text(f"retry: {{max_attempts: {max_attempts}, first_backoff_seconds: "
                    f"{first_backoff}, max_backoff_seconds: {max_backoff}}}\nconnectors:\n"
                    + "".join(connectors), encoding="utf-8")
    return path


def configure_runtime(database_url: str, redis_url: str, delivery_file: Path,
                      **extra: Any) -> Settings:
    """This process's jobs runtime on the test database, Redis and delivery file."""
    os.environ.update(SECRETS)
    settings = Settings(database_url=database_url, redis_url=redis_url,
                        delivery_file=str(delivery_file),
                        public_base_url="https://support.example.test", **extra)
    runtime.configure(settings)
    return settings


def open_ticket(session: Session, n: int, *, caller: str = "+4930555011",
                audio: bytes | None = None) -> Ticket:
    """A ticket of a voicemail (with its audio kept when given) and its `created` event."""
    voicemail = None
    if audio is not None:
        voicemail = Voicemail(recording_sid="RE" + f"{n:032x}", call_sid="CA" + f"{n:032x}",
                              language="en", recording_url="https://api.twilio.com/x",
                              duration_seconds=3, state="done")
        session.add(voicemail)
        session.flush()
        session.add(VoicemailAudio(voicemail_id=voicemail.id, data=audio))
    ticket = Ticket(voicemail_id=voicemail.id if voicemail else None,
                    call_sid="CA" + f"{n:032x}", caller=caller, language="en",
                    category="network", priority="P2", menu_path="welcome main_menu",
                    transcription="pending" if audio else "none", status="new")
    session.add(ticket)
    session.flush()
    add_event(session, ticket, "created", f"voicemail {n}")
    return ticket


def deliveries(session: Session, connector: str | None = None) -> list[Delivery]:
    """Every delivery (of a connector), by id."""
    query = select(Delivery).order_by(Delivery.id)
    if connector:
        query = query.where(Delivery.connector == connector)
    return list(session.scalars(query))


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    """The first true result of `check`, polled until `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def worker_env(database_url: str, redis_url: str, delivery_file: Path) -> dict[str, str]:
    """The environment of an `ivr worker` process for these tests."""
    return {**os.environ, **SECRETS, "IVR_DATABASE_URL": database_url,
            "IVR_REDIS_URL": redis_url, "IVR_DELIVERY_FILE": str(delivery_file),
            "IVR_RECONCILE_SECONDS": "2", "IVR_HEARTBEAT_SECONDS": "1",
            "IVR_PUBLIC_BASE_URL": "https://support.example.test", "IVR_LOG_LEVEL": "WARNING"}


@contextlib.contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`ivr worker --no-preload` in its own process group, killed at the end."""
    ivr = Path(sys.executable).with_name("ivr")
    process = subprocess.Popen([str(ivr), "worker", "--no-preload"], env=env,
                               stdout=log.open("ab"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
