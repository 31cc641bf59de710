"""Benchmark: delivery through the outbox against a bare loop sending the same messages.

What is measured
----------------
A private PostgreSQL database (from ``--admin-url``, migrated; dropped at the end), a private
redis-server, and on loopback the receivers of ``benchmarks/ticket_receivers.py``: a real SMTP
server (aiosmtpd, STARTTLS with a self-signed certificate, AUTH) and a webhook receiver that
checks every request with the README's verification snippet (HMAC, replay window,
idempotency key). The delivery file has two connectors, email and webhook.

* **outbox**: ``--workers`` ``ivr worker`` processes run; this process writes ``--tickets``
  tickets with ``--events`` events each (created, transcribed, status, note, ...), every event
  in its own transaction through ``add_event`` (so each writes one outbox row per connector
  and queues its jobs on commit), as fast as it can. Throughput = deliveries / (last
  ``delivered_at`` - first event's time); delay = ``delivered_at`` - the event's time, per
  delivery (p50, p99). Everything must arrive: the receivers' counts are checked against the
  outbox (each key exactly once).
* **bare**: one process sends exactly the same messages (the emails built from the frozen
  payloads by the same ``build_message``, the same JSON bodies signed the same way) in a loop:
  smtplib with one connection (STARTTLS and AUTH once) and a requests session, one message
  after the other. Throughput = messages / elapsed.

Goal: outbox throughput at least 0.5x the bare loop's.

    .venv/bin/python benchmarks/outbox.py                 # 100 tickets x 3 events x 2 connectors
    .venv/bin/python benchmarks/outbox.py --tickets 300 --events 4 --workers 2
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this directory would come first on sys.path and benchmarks/queue.py would
# shadow the standard library's queue (imported by urllib3 and multiprocessing).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import smtplib  # noqa: E402
import ssl  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from email.policy import SMTP as SMTP_POLICY  # noqa: E402
from typing import Any  # noqa: E402

import requests  # noqa: E402
from sqlalchemy import select  # noqa: E402

from benchmarks.chaos_stack import ChaosDatabase, RedisProcess, free_port  # noqa: E402
from benchmarks.ticket_receivers import (  # noqa: E402
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_SECRET,
    SmtpReceiver,
    WebhookReceiver,
)

KINDS = (("transcribed", "12 words"), ("status", "new -> assigned"),
         ("note", "asked the network team"), ("status", "assigned -> resolved: fixed"),
         ("reply", "please restart the VPN client"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--admin-url", default=os.environ.get(
        "IVR_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--tickets", type=int, default=100)
    parser.add_argument("--events", type=int, default=3, help="events per ticket (1-6)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="outbox-bench-") as tmp:
        return run(args, Path(tmp))


def run(args: argparse.Namespace, workdir: Path) -> int:
    from callbacks import runtime
    from callbacks.settings import Settings

    database = ChaosDatabase(args.admin_url)
    database.create()
    redis = RedisProcess(workdir)
    redis.start()
    smtp = SmtpReceiver(workdir, free_port())
    smtp.__enter__()
    hooks = WebhookReceiver()
    secrets = {"BENCH_SMTP_PASSWORD": SMTP_PASSWORD, "BENCH_WEBHOOK_SECRET": WEBHOOK_SECRET}
    os.environ.update(secrets)
    delivery = workdir / "delivery.yaml"
    delivery.write_text(
        "connectors:\n"
        f"  mail:\n    type: email\n    smtp_host: 127.0.0.1\n    smtp_port: {smtp.port}\n"
        f"    username: {SMTP_USER}\n    password_env: BENCH_SMTP_PASSWORD\n"
        f'    from: "Phone line <line@example.test>"\n    to: desk@example.test\n'
        f"    ca_file: {smtp.cert}\n"
        f"  hook:\n    type: webhook\n    url: {hooks.url}\n    secret_env: BENCH_WEBHOOK_SECRET\n",
        encoding="utf-8")
    env = {**os.environ, "IVR_DATABASE_URL": database.url, "IVR_REDIS_URL": redis.url,
           "IVR_DELIVERY_FILE": str(delivery), "IVR_LOG_LEVEL": "WARNING",
           "IVR_PUBLIC_BASE_URL": "https://support.example.test"}
    workers: list[subprocess.Popen[bytes]] = []
    try:
        runtime.configure(Settings(database_url=database.url, redis_url=redis.url,
                                   delivery_file=str(delivery),
                                   public_base_url="https://support.example.test"))
        ivr = Path(sys.executable).with_name("ivr")

        def start_workers() -> None:
            for n in range(args.workers):
                workers.append(subprocess.Popen(
                    [str(ivr), "worker", "--no-preload"], env=env, start_new_session=True,
                    stdout=(workdir / f"worker-{n}.log").open("wb"),
                    stderr=subprocess.STDOUT))

        events = min(args.events, len(KINDS) + 1)
        # Throughput: a backlog written first, then drained by workers that start at once.
        write_events(args.tickets, events, start=0)
        start_workers()
        drain = wait_delivered(since=None)
        # Delay: events written while the (warm) workers deliver.
        time.sleep(1)
        live = measure_live(args.tickets, events)
        check_received(smtp, hooks)
        emails, bodies = same_messages()
        bare = measure_bare(smtp, hooks, emails, bodies)
    finally:
        for process in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        hooks.stop()
        smtp.__exit__()
        redis.kill()
        runtime.configure(Settings(database_url="sqlite://"))
        database.drop()
    report(args, drain, live, bare)
    return 0 if drain["per_second"] >= 0.5 * bare["per_second"] else 1


def write_events(tickets: int, events: int, start: int) -> float:
    """Tickets `start`.. with `events` events each, one transaction per event; seconds taken."""
    from callbacks import runtime
    from callbacks.tickets.ticket import Ticket, add_event

    sessions = runtime.sessions()
    began = time.perf_counter()
    ids = []
    for n in range(start, start + tickets):
        with sessions() as session:
            ticket = Ticket(call_sid=f"CA{n:032x}", caller=f"+4930555{n:04d}", language="en",
                            category="network", priority="P2", menu_path="welcome main_menu",
                            transcription="none", status="new")
            session.add(ticket)
            session.flush()
            add_event(session, ticket, "created", f"callback request {n}")
            session.commit()
            ids.append(ticket.id)
    for kind, detail in KINDS[:events - 1]:
        for ticket_id in ids:
            with sessions() as session:
                ticket = session.get(Ticket, ticket_id)
                assert ticket is not None
                add_event(session, ticket, kind, detail)
                session.commit()
    return time.perf_counter() - began


def wait_delivered(since: int | None) -> dict[str, Any]:
    """Wait until every delivery (of events after id `since`) is made; their figures."""
    from callbacks import runtime
    from callbacks.delivery.outbox import Delivery
    from callbacks.tickets.ticket import TicketEvent

    sessions = runtime.sessions()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        with sessions() as session:
            statuses = list(session.scalars(select(Delivery.status)))
        if statuses and all(status == "delivered" for status in statuses):
            break
        time.sleep(0.05)
    else:
        raise SystemExit("deliveries still pending after 10 minutes")
    with sessions() as session:
        query = select(Delivery.delivered_at, TicketEvent.at, Delivery.attempts).join(
            TicketEvent, TicketEvent.id == Delivery.event_id)
        if since is not None:
            query = query.where(Delivery.event_id > since)
        rows = session.execute(query).all()
    last = max(delivered for delivered, _, _ in rows).timestamp()
    delays = sorted((delivered - at).total_seconds() * 1000 for delivered, at, _ in rows)
    if since is None:  # a backlog: from the first delivery on (not the workers' start-up)
        span = last - min(delivered for delivered, _, _ in rows).timestamp()
        count = len(rows) - 1
    else:
        span = last - min(at for _, at, _ in rows).timestamp()
        count = len(rows)
    return {"deliveries": len(rows), "seconds": span, "per_second": count / span,
            "p50_ms": statistics.median(delays), "p99_ms": delays[int(0.99 * (len(delays) - 1))],
            "repeats": sum(1 for *_, tries in rows if tries > 1)}


def measure_live(tickets: int, events: int) -> dict[str, Any]:
    """Events written while the workers deliver: the delay from event to delivered."""
    from sqlalchemy import func

    from callbacks import runtime
    from callbacks.tickets.ticket import TicketEvent

    with runtime.sessions()() as session:
        since = session.scalar(select(func.max(TicketEvent.id))) or 0
    written = write_events(tickets, events, start=tickets)
    figures = wait_delivered(since=since)
    figures["write_seconds"] = written
    return figures


def check_received(smtp: SmtpReceiver, hooks: WebhookReceiver) -> None:
    """Each delivery arrived exactly once."""
    from callbacks import runtime
    from callbacks.delivery.outbox import Delivery

    with runtime.sessions()() as session:
        keys = {c: sorted(session.scalars(select(Delivery.idempotency_key).where(
            Delivery.connector == c))) for c in ("mail", "hook")}
    mail = sorted(mid.strip("<>").split("@")[0] for mid in smtp.message_ids())
    hook = sorted(doc["idempotency_key"] for doc in hooks.accepted())
    if mail != keys["mail"] or hook != keys["hook"] or hooks.rejected:
        raise SystemExit(f"receivers disagree with the outbox: mail {len(mail)} of "
                         f"{len(keys['mail'])}, hook {len(hook)} of {len(keys['hook'])}, "
                         f"rejected {len(hooks.rejected)}")


def same_messages() -> tuple[list[bytes], list[tuple[str, bytes]]]:
    """The emails (as bytes) and webhook bodies the outbox sent, rebuilt from its rows."""
    from callbacks import runtime
    from callbacks.delivery.connectors import Outgoing
    from callbacks.delivery.email import build_message
    from callbacks.delivery.outbox import Delivery, idempotency_key
    from callbacks.delivery.payloads import TicketEventPayload

    settings = runtime.delivery()
    mail = settings.connector("mail")
    assert mail is not None and mail.email is not None
    emails, bodies = [], []
    with runtime.sessions()() as session:
        firsts: dict[int, int] = {}
        for row in session.scalars(select(Delivery).order_by(Delivery.event_id)):
            assert row.payload is not None
            if row.connector == "hook":
                bodies.append((row.idempotency_key, row.payload.encode()))
                continue
            payload = TicketEventPayload.from_json(row.payload)
            first = firsts.setdefault(row.ticket_id, row.event_id)
            outgoing = Outgoing(row.idempotency_key, payload, row.payload, 1,
                                idempotency_key(payload.ticket.number, first, "mail"), None,
                                None)
            emails.append(build_message(mail.email, outgoing).as_bytes(policy=SMTP_POLICY))
    return emails, bodies


def measure_bare(smtp: SmtpReceiver, hooks: WebhookReceiver, emails: list[bytes],
                 bodies: list[tuple[str, bytes]]) -> dict[str, Any]:
    """The same messages from a separate process, sent one after the other."""
    hooks.seen.clear()  # the same keys again: the receiver takes them as new
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    process = context.Process(target=_bare_loop, args=(
        smtp.port, str(smtp.cert), hooks.url, emails, bodies, results))
    process.start()
    seconds = results.get(timeout=600)
    process.join(timeout=30)
    count = len(emails) + len(bodies)
    return {"messages": count, "seconds": seconds, "per_second": count / seconds}


def _bare_loop(port: int, cert: str, url: str, emails: list[bytes],
               bodies: list[tuple[str, bytes]], results: Any) -> None:
    from callbacks.delivery.webhook import signature

    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as connection:
        connection.starttls(context=ssl.create_default_context(cafile=cert))
        connection.login(SMTP_USER, SMTP_PASSWORD)
        for message in emails:
            connection.sendmail("line@example.test", ["desk@example.test"], message)
    with requests.Session() as session:
        for key, body in bodies:
            timestamp = str(int(time.time()))
            response = session.post(url, data=body, timeout=30, headers={
                "Content-Type": "application/json", "X-Helpdesk-Timestamp": timestamp,
                "X-Helpdesk-Signature": signature(WEBHOOK_SECRET, timestamp, body),
                "Idempotency-Key": key})
            response.raise_for_status()
    results.put(time.perf_counter() - started)


def report(args: argparse.Namespace, drain: dict[str, Any], live: dict[str, Any],
           bare: dict[str, Any]) -> None:
    ratio = drain["per_second"] / bare["per_second"]
    print(f"outbox benchmark: {args.tickets} tickets x {args.events} events x 2 connectors "
          f"(email over STARTTLS+AUTH, signed webhook), {args.workers} ivr worker processes")
    print(f"{'':14} {'messages':>9} {'seconds':>8} {'msgs/s':>8} {'delay p50':>10} "
          f"{'delay p99':>10}")
    for name, row in (("outbox drain", drain), ("outbox live", live)):
        print(f"{name:14} {row['deliveries']:>9} {row['seconds']:>8.2f} "
              f"{row['per_second']:>8.1f} {row['p50_ms']:>8.0f}ms {row['p99_ms']:>8.0f}ms")
    print(f"{'bare loop':14} {bare['messages']:>9} {bare['seconds']:>8.2f} "
          f"{bare['per_second']:>8.1f} {'-':>10} {'-':>10}")
    print(f"drain: a backlog of events written first, from the first delivery to the last; "
          f"live: events written (in {live['write_seconds']:.2f} s, one transaction "
          f"each) while the workers deliver; tried more than once: "
          f"{drain['repeats'] + live['repeats']}")
    print(f"outbox drain / bare loop throughput: {ratio:.2f}x (goal >= 0.5x): "
          f"{'met' if ratio >= 0.5 else 'NOT met'}")


if __name__ == "__main__":
    raise SystemExit(main())
