"""Benchmark: delivery through the outbox against a bare loop sending the same messages.

What is measured
----------------
A private PostgreSQL database (from ``--admin-url``, migrated; dropped at the end), a private
redis-server, and on loopback the receivers of ``benchmarks/ticket_receivers.py``: a real SMTP
server (aiosmtpd, STARTTLS with a self-signed certificate, AUTH) and a webhook receiver that
checks every request with the README's verification snippet (HMAC, replay window,
idempotency key). The delivery file has two connectors, email and webhook.

* **outbox rounds** (``--rounds``, 3): ``--workers`` ``ivr worker`` processes run; while they
  are paused (SIGSTOP), this process writes ``--tickets`` tickets with ``--events`` events each
  (created, transcribed, status, note, ...), every event in its own transaction through
  ``add_event`` (so each writes one outbox row per connector and queues its jobs on commit);
  then the workers go on (SIGCONT). Throughput = deliveries / (last ``delivered_at`` - first
  ``delivered_at``). Everything must arrive: the receivers' new messages are checked against
  the round's outbox rows (each key exactly once).
* **outbox live**: the same number of events written at ``--live-rate`` events a second while
  the workers deliver; delay = ``delivered_at`` - the event's time, per delivery (p50, p99).
* **bare**: one process sends exactly the same messages in a loop, with smtplib and requests
  directly: one SMTP connection (STARTTLS and AUTH once) on which each email is built from the
  same frozen payload by the same ``build_message`` and sent, then one requests session that
  signs and POSTs each of the same JSON bodies. Throughput = messages / elapsed.

Goal: outbox throughput at least 0.5x the bare loop's, judged on the median round (each
round's bare loop runs right after its outbox part, so both see the same load on a shared
machine).

    .venv/bin/python benchmarks/outbox.py                 # 100 tickets x 3 events x 2 connectors
    .venv/bin/python benchmarks/outbox.py --tickets 300 --events 4 --workers 2
    .venv/bin/python benchmarks/outbox.py --quick         # a smoke run: 10 x 2, one round

Exit status 0 for a measurement (goal met or not: the last line says which); 1 when a receiver
disagrees with the outbox (a message missing, repeated or rejected) or deliveries never end.
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
    parser.add_argument("--rounds", type=int, default=3,
                        help="backlog rounds, each against its own bare loop (median judged)")
    parser.add_argument("--live-rate", type=float, default=20.0,
                        help="ticket events a second written in the live run (0: flat out)")
    parser.add_argument("--quick", action="store_true",
                        help="10 tickets x 2 events, one round, one worker: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.tickets, args.events, args.rounds, args.workers = 10, 2, 1, 1
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
        for n in range(args.workers):
            workers.append(subprocess.Popen(
                [str(ivr), "worker", "--no-preload"], env=env, start_new_session=True,
                stdout=(workdir / f"worker-{n}.log").open("wb"), stderr=subprocess.STDOUT))
        time.sleep(3)  # the workers start and wait for jobs
        events = min(args.events, len(KINDS) + 1)
        rounds = []
        for number in range(args.rounds):
            # Throughput: a backlog written while the workers are paused, then drained; then
            # the bare loop sends the same messages.
            since = last_event_id()
            signal_workers(workers, signal.SIGSTOP)
            write_events(args.tickets, events, start=number * args.tickets)
            seen = (len(smtp.messages()), len(hooks.accepted()))
            signal_workers(workers, signal.SIGCONT)
            drain = wait_delivered(since=since, backlog=True)
            check_received(smtp, hooks, since, seen)
            settings, emails, bodies = same_messages(since)
            bare = measure_bare(smtp, hooks, settings, emails, bodies)
            rounds.append((drain, bare))
            print(f"round {number + 1}: outbox {drain['per_second']:.1f} msgs/s, bare loop "
                  f"{bare['per_second']:.1f} msgs/s", flush=True)
        # Delay: events written while the workers deliver (once the rounds' last jobs, which
        # find their events delivered by batches already, are out of the way).
        wait_for_empty_queue(redis.url)
        live = measure_live(args.tickets, events, start=args.rounds * args.tickets,
                            rate=args.live_rate)
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
    report(args, rounds, live)
    return 0


def write_events(tickets: int, events: int, start: int, rate: float = 0.0) -> float:
    """Tickets `start`.. with `events` events each, one transaction per event (at most `rate`
    events a second when given); seconds taken."""
    from callbacks import runtime
    from callbacks.tickets.ticket import Ticket, add_event

    sessions = runtime.sessions()
    began = time.perf_counter()
    written = 0

    def pace() -> None:
        nonlocal written
        written += 1
        if rate:
            ahead = began + written / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)

    ids = []
    for n in range(start, start + tickets):
        pace()
        with sessions() as session:
            # sms_sid: the caller has their number already (no ticket SMS for the reconciler
            # to queue: this measures delivery alone)
            ticket = Ticket(call_sid=f"CA{n:032x}", caller=f"+4930555{n:04d}", language="en",
                            category="network", priority="P2", menu_path="welcome main_menu",
                            transcription="none", status="new", sms_sid=f"SM{n:032x}")
            session.add(ticket)
            session.flush()
            add_event(session, ticket, "created", f"callback request {n}")
            session.commit()
            ids.append(ticket.id)
    for kind, detail in KINDS[:events - 1]:
        for ticket_id in ids:
            pace()
            with sessions() as session:
                ticket = session.get(Ticket, ticket_id)
                assert ticket is not None
                add_event(session, ticket, kind, detail)
                session.commit()
    return time.perf_counter() - began


def last_event_id() -> int:
    """The newest ticket event's id (0 when there is none)."""
    from sqlalchemy import func

    from callbacks import runtime
    from callbacks.tickets.ticket import TicketEvent

    with runtime.sessions()() as session:
        return session.scalar(select(func.max(TicketEvent.id))) or 0


def wait_for_empty_queue(redis_url: str) -> None:
    """Wait until no delivery job is queued or running."""
    from redis import Redis
    from rq import Queue
    from rq.registry import StartedJobRegistry

    connection = Redis.from_url(redis_url)
    queue = Queue("default", connection=connection)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if queue.count == 0 and StartedJobRegistry(queue=queue).count == 0:
            return
        time.sleep(0.1)


def signal_workers(workers: list[subprocess.Popen[bytes]], number: int) -> None:
    """Pause (SIGSTOP) or resume (SIGCONT) every worker's process group."""
    for process in workers:
        os.killpg(process.pid, number)


def wait_delivered(since: int, backlog: bool) -> dict[str, Any]:
    """Wait until the deliveries of events after `since` are made; their figures (a backlog's
    time runs from its first delivery, live events' from the first event)."""
    from callbacks import runtime
    from callbacks.delivery.outbox import Delivery
    from callbacks.tickets.ticket import TicketEvent

    sessions = runtime.sessions()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        with sessions() as session:
            statuses = list(session.scalars(select(Delivery.status).where(
                Delivery.event_id > since)))
        if statuses and all(status == "delivered" for status in statuses):
            break
        time.sleep(0.05)
    else:
        raise SystemExit("deliveries still pending after 10 minutes")
    with sessions() as session:
        rows = session.execute(
            select(Delivery.delivered_at, TicketEvent.at, Delivery.attempts)
            .join(TicketEvent, TicketEvent.id == Delivery.event_id)
            .where(Delivery.event_id > since)).all()
    last = max(delivered for delivered, _, _ in rows).timestamp()
    delays = sorted((delivered - at).total_seconds() * 1000 for delivered, at, _ in rows)
    if backlog:
        span = last - min(delivered for delivered, _, _ in rows).timestamp()
        count = len(rows) - 1
    else:
        span = last - min(at for _, at, _ in rows).timestamp()
        count = len(rows)
    return {"deliveries": len(rows), "seconds": span, "per_second": count / span,
            "p50_ms": statistics.median(delays), "p99_ms": delays[int(0.99 * (len(delays) - 1))],
            "repeats": sum(1 for *_, tries in rows if tries > 1)}


def measure_live(tickets: int, events: int, start: int, rate: float) -> dict[str, Any]:
    """Events written while the workers deliver: the delay from event to delivered."""
    since = last_event_id()
    written = write_events(tickets, events, start=start, rate=rate)
    figures = wait_delivered(since=since, backlog=False)
    figures["write_seconds"] = written
    return figures


def check_received(smtp: SmtpReceiver, hooks: WebhookReceiver, since: int,
                   seen: tuple[int, int]) -> None:
    """Each delivery of events after `since` arrived exactly once (after the `seen` counts)."""
    from callbacks import runtime
    from callbacks.delivery.outbox import Delivery

    with runtime.sessions()() as session:
        keys = {c: sorted(session.scalars(select(Delivery.idempotency_key).where(
            Delivery.connector == c, Delivery.event_id > since))) for c in ("mail", "hook")}
    mail = sorted(mid.strip("<>").split("@")[0] for mid in smtp.message_ids()[seen[0]:])
    hook = sorted(doc["idempotency_key"] for doc in hooks.accepted()[seen[1]:])
    if mail != keys["mail"] or hook != keys["hook"] or hooks.rejected:
        raise SystemExit(f"receivers disagree with the outbox: mail {len(mail)} of "
                         f"{len(keys['mail'])}, hook {len(hook)} of {len(keys['hook'])}, "
                         f"rejected {len(hooks.rejected)}")


def same_messages(since: int) -> tuple[Any, list[Any], list[tuple[str, bytes]]]:
    """What the outbox sent, from its rows: the email settings, each email's content (built
    into a message by the bare loop, as a sender would) and each webhook body."""
    from callbacks import runtime
    from callbacks.delivery.connectors import Outgoing
    from callbacks.delivery.outbox import Delivery, idempotency_key
    from callbacks.delivery.payloads import TicketEventPayload

    settings = runtime.delivery()
    mail = settings.connector("mail")
    assert mail is not None and mail.email is not None
    emails, bodies = [], []
    with runtime.sessions()() as session:
        firsts: dict[int, int] = {}
        for row in session.scalars(select(Delivery).where(Delivery.event_id > since)
                                   .order_by(Delivery.event_id)):
            assert row.payload is not None
            if row.connector == "hook":
                bodies.append((row.idempotency_key, row.payload.encode()))
                continue
            payload = TicketEventPayload.from_json(row.payload)
            first = firsts.setdefault(row.ticket_id, row.event_id)
            emails.append(Outgoing(row.idempotency_key, payload, row.payload, 1,
                                   idempotency_key(payload.ticket.number, first, "mail"), None,
                                   None))
    return mail.email, emails, bodies


def measure_bare(smtp: SmtpReceiver, hooks: WebhookReceiver, settings: Any, emails: list[Any],
                 bodies: list[tuple[str, bytes]]) -> dict[str, Any]:
    """The same messages from a separate process, sent one after the other."""
    hooks.seen.clear()  # the same keys again: the receiver takes them as new
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    process = context.Process(target=_bare_loop, args=(
        smtp.port, str(smtp.cert), hooks.url, settings, emails, bodies, results))
    process.start()
    seconds = results.get(timeout=600)
    process.join(timeout=30)
    count = len(emails) + len(bodies)
    return {"messages": count, "seconds": seconds, "per_second": count / seconds}


def _bare_loop(port: int, cert: str, url: str, settings: Any, emails: list[Any],
               bodies: list[tuple[str, bytes]], results: Any) -> None:
    """smtplib and requests directly: one connection each, every message built and sent."""
    from callbacks.delivery.email import build_message
    from callbacks.delivery.webhook import signature

    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as connection:
        connection.starttls(context=ssl.create_default_context(cafile=cert))
        connection.login(SMTP_USER, SMTP_PASSWORD)
        for outgoing in emails:
            connection.send_message(build_message(settings, outgoing))
    with requests.Session() as session:
        for key, body in bodies:
            timestamp = str(int(time.time()))
            response = session.post(url, data=body, timeout=30, headers={
                "Content-Type": "application/json", "X-Helpdesk-Timestamp": timestamp,
                "X-Helpdesk-Signature": signature(WEBHOOK_SECRET, timestamp, body),
                "Idempotency-Key": key})
            response.raise_for_status()
    results.put(time.perf_counter() - started)


def report(args: argparse.Namespace, rounds: list[tuple[dict[str, Any], dict[str, Any]]],
           live: dict[str, Any]) -> float:
    """Print the figures side by side; the median round's ratio."""
    ratios = sorted(drain["per_second"] / bare["per_second"] for drain, bare in rounds)
    ratio = statistics.median(ratios)
    print(f"outbox benchmark: {args.tickets} tickets x {args.events} events x 2 connectors "
          f"(email over STARTTLS+AUTH, signed webhook), {args.workers} ivr worker processes")
    print(f"{'':16} {'messages':>9} {'seconds':>8} {'msgs/s':>8} {'delay p50':>10} "
          f"{'delay p99':>10}")
    for number, (drain, bare) in enumerate(rounds, start=1):
        print(f"{f'outbox round {number}':16} {drain['deliveries']:>9} {drain['seconds']:>8.2f} "
              f"{drain['per_second']:>8.1f} {'-':>10} {'-':>10}")
        print(f"{f'bare round {number}':16} {bare['messages']:>9} {bare['seconds']:>8.2f} "
              f"{bare['per_second']:>8.1f} {'-':>10} {'-':>10}")
    print(f"{'outbox live':16} {live['deliveries']:>9} {live['seconds']:>8.2f} "
          f"{live['per_second']:>8.1f} {live['p50_ms']:>8.0f}ms {live['p99_ms']:>8.0f}ms")
    print(f"rounds: a backlog written while the workers were paused, from its first delivery to "
          f"its last, then the bare loop with the same messages; live: events written at "
          f"{args.live_rate:g}/s (in {live['write_seconds']:.2f} s, one transaction each) while "
          f"the workers deliver, delay from event to delivered; deliveries tried more than once: "
          f"{sum(d['repeats'] for d, _ in rounds) + live['repeats']}")
    print(f"outbox / bare loop throughput per round: "
          f"{', '.join(f'{r:.2f}x' for r in ratios)}; median {ratio:.2f}x (goal >= 0.5x): "
          f"{'met' if ratio >= 0.5 else 'NOT met'}")
    return ratio


if __name__ == "__main__":
    raise SystemExit(main())
