"""Benchmark: the voice webhooks under gunicorn against a bare Flask baseline, same machine.

What is measured
----------------
Two gunicorn servers run side by side with the same worker settings on loopback ports:

* **ivr webhooks**: `ivr:create_app()` on a private PostgreSQL database (created for the run,
  migrated with Alembic, `flows/it-support.yaml` published; dropped at the end), production
  settings, signature checking on, log level WARNING, no access log.
* **bare Flask baseline**: `benchmarks/bare_app.py`, a catch-all POST view returning a constant
  TwiML menu step of the same shape and size: no signature check, no form parsing, no SQL.

Client processes (multiprocessing, several threads each) play Twilio: every simulated call has
a new CallSid, POSTs `/voice` with Twilio's form fields, then follows the `<Gather action>` of
each answer with a scripted key sequence (language, main-menu topic, then agent / voicemail /
callback), until the answer has no `<Gather>` (`<Dial>`, `<Record>`, `<Hangup>`: the call
ends and the next starts). Every request carries a valid `X-Twilio-Signature` for the public
URL. Outside office hours the flow sends callers to voicemail after the language choice; the
client simply follows what the app answers. The baseline gets the same kind of calls (same
paths, bodies and signatures; its Gather action is constant), as many requests per call.

* Phase A, closed loop (saturation): C callers send as fast as answers come back, for
  `--seconds` per server. Reported: requests/s, p50 and p99 latency per request (client side,
  `time.perf_counter`), errors (non-200, non-TwiML, connection failures) and apologies (an
  answer of the app's failure path: `n=apology` in its URLs or "something went wrong";
  counted as errors: there must be none).
* Phase B, open loop at the goal load: requests to the app on a fixed schedule at 50% of the
  baseline's phase A throughput, spread over `--open-concurrency` connections, for `--seconds`.
  Latency counts from the scheduled send time, so a stalled server is not hidden by a client
  that waits for it (coordinated omission). As a control, the baseline then gets the same
  schedule: its p99 is the best this machine allows at that rate right now.

Goal: ratio (ivr/baseline req/s) >= 0.5, and p99 < 25 ms at 50% of the baseline's load.

Rounds: phases A and B run `--rounds` times (default 3) on the same two servers. The goal is
judged on the median round by p99 at the goal load, and the spread over the rounds is printed:
on a shared two-core host one round's p99 can double from a moment of stolen CPU.

Besides wall-clock numbers, each phase A row shows CPU milliseconds per request spent by the
server's process group and by the PostgreSQL backends of the benchmark's database (from
/proc), and the client's own CPU per request. The client runs on the same cores as the servers
and PostgreSQL; on a shared machine throughput and tail latency swing with whatever else runs
(the load average is printed), while CPU per request stays comparatively steady.

Run
---
    .venv/bin/python benchmarks/webhook.py                  # 3 rounds, 10 s per phase
    .venv/bin/python benchmarks/webhook.py --rounds 1       # one round: about a minute
    .venv/bin/python benchmarks/webhook.py --seconds 5 --concurrency 16 --workers 3
    .venv/bin/python benchmarks/webhook.py --app 'mymodule:create_app()'   # try a variant

A round takes about 4 x --seconds; a run adds warm-up and start-up (about 2.5 minutes by
default).

PostgreSQL must answer at `--admin-url` (default: the test suite's local server). Exit status
is 0 for a measurement (goal met or not); 1 when a server did not start or any request failed.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/queue.py shares its name with the standard library's `queue` (which psycopg and
# multiprocessing import): run as a script, this directory would come first on sys.path and
# shadow it. Take the directory off and put the project root on instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

import argparse
import base64
import contextlib
import dataclasses
import hashlib
import hmac
import http.client
import math
import multiprocessing
import multiprocessing.process
import os
import queue
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlencode

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
DEMO_FLOW = ROOT / "flows" / "it-support.yaml"
GUNICORN = Path(sys.executable).parent / "gunicorn"
GUNICORN_CONF = ROOT / "gunicorn.conf.py"  # the web process's settings, for both servers
HOST = "127.0.0.1"
LINE = "+493012345678"  # the number flows/it-support.yaml answers
ACCOUNT_SID = "AC" + "5" * 32
REQUEST_TIMEOUT = 10.0  # seconds; no request may hang a phase longer than this

# Key sequences callers press after dialling in: language (1 English, 2 German), a main-menu
# topic (1 password, 2 network, 3 hardware, 4 software, 5 VDI, 9 outage), then the topic
# menu's choice (1 agent, 2 voicemail, 3 callback); "0" in the main menu asks for an agent.
SCRIPTS: tuple[tuple[str, ...], ...] = (
    *((lang, topic, choice) for lang in "11112" for topic in "123459" for choice in "123"),
    ("1", "0"),
    ("2", "0"),
)

GATHER_ACTION = re.compile(rb'<Gather [^>]*?action="([^"]+)"')
CALL_ENDINGS = ((b"<Dial", "dial"), (b"<Record", "record"), (b"<Hangup", "hangup"))

# Client processes of the running phase, ended by the clean-up on Ctrl-C or failure.
_clients: list[multiprocessing.process.BaseProcess] = []


# ---- Requests signed like Twilio's ---------------------------------------------------------


def sign(key: bytes, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature: HMAC-SHA1 of the URL and the sorted form fields, base64."""
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(key, data.encode(), hashlib.sha1).digest()).decode()


def call_fields(call_sid: str, caller: str, country: str) -> dict[str, str]:
    """The form fields Twilio posts with every voice webhook of one inbound call."""
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "in-progress",
        "Called": LINE,
        "CalledCountry": "DE",
        "Caller": caller,
        "CallerCountry": country,
        "Direction": "inbound",
        "From": caller,
        "FromCountry": country,
        "To": LINE,
        "ToCountry": "DE",
    }


CALLERS: tuple[tuple[str, str], ...] = (
    *((f"+4930{n:07d}", "DE") for n in range(1234500, 1234530)),
    *((f"+4420{n:08d}", "GB") for n in range(71838700, 71838710)),
    *((f"+4822{n:07d}", "PL") for n in range(5551200, 5551210)),
)


# ---- Load generator (runs in client processes) --------------------------------------------


@dataclass(frozen=True)
class Load:
    """One phase against one server, as each client process receives it."""

    port: int
    token: str
    callers: int  # over all client processes
    seconds: float
    start_at: float  # time.perf_counter() value (CLOCK_MONOTONIC: the same in every process)
    rate: float = 0.0  # requests/s over all processes; 0 = closed loop, as fast as possible
    seed: int = 0


@dataclass
class Tally:
    """What callers measured: latencies of good answers (seconds) and what went wrong."""

    latencies: array[float] = field(default_factory=lambda: array("d"))
    errors: int = 0
    apologies: int = 0
    calls: int = 0
    endings: Counter[str] = field(default_factory=Counter)
    first_error: str = ""
    finished: float = 0.0  # perf_counter of the last answer
    cpu: float = 0.0  # CPU seconds the client processes spent

    def add(self, other: Tally) -> None:
        self.latencies.extend(other.latencies)
        self.errors += other.errors
        self.apologies += other.apologies
        self.calls += other.calls
        self.endings.update(other.endings)
        self.first_error = self.first_error or other.first_error
        self.finished = max(self.finished, other.finished)
        self.cpu += other.cpu

    def error(self, what: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or what


def caller(load: Load, slot: int, tally: Tally) -> None:
    """One caller: calls one after another until the phase ends; paced when load.rate > 0."""
    rng = random.Random(load.seed * 1_000_003 + slot)
    key = load.token.encode()
    base = f"https://{HOST}:{load.port}"  # the URL signed: TLS ends in front of the app
    perf = time.perf_counter
    end = load.start_at + load.seconds
    paced = load.rate > 0
    interval = load.callers / load.rate if paced else 0.0
    scheduled = load.start_at + slot / load.rate if paced else 0.0
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "User-Agent": "TwilioProxy/1.1", "X-Twilio-Signature": ""}
    pause = load.start_at - perf()
    if pause > 0:
        time.sleep(pause)
    while perf() < end and (not paced or scheduled < end):
        fields = call_fields("CA" + uuid.UUID(int=rng.getrandbits(128)).hex,
                             *rng.choice(CALLERS))
        keys = rng.choice(SCRIPTS)
        path, params = "/voice", fields
        conn = http.client.HTTPConnection(HOST, load.port, timeout=REQUEST_TIMEOUT)
        tally.calls += 1
        ending = "script"
        try:
            for step in range(len(keys) + 1):
                if paced:
                    if scheduled >= end:
                        ending = "phase end"
                        break
                    wait = scheduled - perf()
                    if wait > 0:
                        time.sleep(wait)
                    began = scheduled
                    scheduled += interval
                else:
                    if perf() >= end:
                        ending = "phase end"
                        break
                    began = perf()
                headers["X-Twilio-Signature"] = sign(key, base + path, params)
                try:
                    conn.request("POST", path, urlencode(params), headers)
                    response = conn.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    tally.error(f"POST {path}: {exc!r}")
                    ending = "error"
                    time.sleep(0.001)  # a refused connection must not spin
                    break
                done = perf()
                tally.finished = done
                if response.status != 200 or not body.endswith(b"</Response>"):
                    tally.error(f"POST {path}: HTTP {response.status}: {body[:300]!r}")
                    ending = "error"
                    break
                tally.latencies.append(done - began)
                if b"n=apology" in body or b"something went wrong" in body:
                    tally.apologies += 1
                    ending = "apology"
                    break
                match = GATHER_ACTION.search(body)
                if match is None:
                    ending = next((name for tag, name in CALL_ENDINGS if tag in body), "other")
                    break
                if step == len(keys):
                    break
                path = match.group(1).decode().replace("&amp;", "&")
                params = {**fields, "Digits": keys[step]}
        finally:
            conn.close()
        tally.endings[ending] += 1


def client_process(load: Load, slots: range, results: multiprocessing.Queue[Tally]) -> None:
    """Run the callers of `slots` as threads and send back their merged tally."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent cleans up on Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # and ends us with SIGTERM if need be
    tallies = [Tally() for _ in slots]
    threads = [threading.Thread(target=caller, args=(load, slot, tally), daemon=True)
               for slot, tally in zip(slots, tallies, strict=True)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, load.start_at - time.perf_counter()))
    cpu = time.process_time()
    for thread in threads:
        thread.join(timeout=load.start_at - time.perf_counter() + load.seconds
                    + REQUEST_TIMEOUT + 5)
    total = Tally(cpu=time.process_time() - cpu)
    for tally in tallies:
        total.add(tally)
    if any(thread.is_alive() for thread in threads):
        total.error("a caller thread did not finish in time")
    results.put(total)


@dataclass(frozen=True)
class Result:
    """A phase's numbers."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    apologies: int
    calls: int
    endings: Counter[str]
    first_error: str
    client_cpu: float  # seconds
    server_cpu: float = 0.0  # seconds, the gunicorn process group
    db_cpu: float = 0.0  # seconds, the PostgreSQL backends of the benchmark's database

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def per_request_ms(self, seconds: float) -> float:
        return seconds * 1000 / self.requests if self.requests else 0.0


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


@dataclass(frozen=True)
class Round:
    """One round: both servers saturated (phase A), then both paced at the goal load (B)."""

    base: Result
    app: Result
    goal_rate: float
    paced: Result
    base_paced: Result

    @property
    def ratio(self) -> float:
        return self.app.rate / self.base.rate if self.base.rate else 0.0

    @property
    def met(self) -> bool:
        return (self.ratio >= 0.5 and self.paced.p99_ms < GOAL_P99_MS
                and self.paced.rate >= 0.95 * self.goal_rate)

    def failures(self) -> list[tuple[str, Result]]:
        return [(name, r) for name, r in (("baseline", self.base), ("ivr", self.app),
                                          ("ivr paced", self.paced),
                                          ("baseline paced", self.base_paced))
                if r.errors or r.apologies]


GOAL_P99_MS = 25.0


def run_phase(port: int, token: str, processes: int, callers: int, seconds: float,
              rate: float = 0.0, seed: int = 0) -> Result:
    """Drive one server with `callers` callers spread over `processes` client processes."""
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[Tally] = context.Queue()
    processes = min(processes, callers)
    load = Load(port, token, callers, seconds, time.perf_counter() + 0.3 + 0.05 * processes,
                rate, seed)
    # Process i runs callers i, i + processes, i + 2 * processes, ...
    _clients[:] = [context.Process(target=client_process,
                                   args=(load, range(i, callers, processes), results),
                                   daemon=True)
                   for i in range(processes)]
    for process in _clients:
        process.start()
    total = Tally()
    deadline = load.start_at + seconds + REQUEST_TIMEOUT + 20
    try:
        for _ in range(processes):
            try:
                total.add(results.get(timeout=max(1.0, deadline - time.perf_counter())))
            except queue.Empty:
                total.error("a client process sent no results in time")
                break
    finally:
        stop_clients()
    ordered = sorted(total.latencies)
    elapsed = seconds if rate > 0 else max(total.finished - load.start_at, 1e-9)
    return Result(len(ordered), elapsed, percentile(ordered, 0.50) * 1000,
                  percentile(ordered, 0.99) * 1000, total.errors, total.apologies, total.calls,
                  total.endings, total.first_error, total.cpu)


def stop_clients() -> None:
    """End this phase's client processes (they normally have exited already)."""
    for process in _clients:
        process.join(timeout=5)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)
    _clients.clear()


# ---- CPU accounting from /proc (Linux) ------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: str) -> list[str]:
    with open(f"/proc/{pid}/stat", "rb") as stat:
        raw = stat.read()
    return raw[raw.rfind(b")") + 2:].decode().split()  # from field 3 (state) on


def cpu_seconds(group: int | None = None, database: str | None = None) -> float:
    """CPU seconds used so far by the processes of a process group, or by the PostgreSQL
    backends connected to `database` (best effort: 0.0 where /proc cannot tell)."""
    ticks = 0
    needle = f" {database} ".encode() if database else b""
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return 0.0
    for pid in pids:
        try:
            if database:
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    command = cmdline.read()
                if not command.startswith(b"postgres: ") or needle not in command:
                    continue
            fields = _proc_stat(pid)
            if group is not None and int(fields[2]) != group:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, ValueError, IndexError):
            continue
    return ticks / CLOCK_TICKS


# ---- Servers --------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class ServerFailed(RuntimeError):
    """A gunicorn server did not start or died."""


class Server:
    """A gunicorn process group on a loopback port, its output in a log file."""

    def __init__(self, name: str, app: str, port: int, worker_args: list[str],
                 env: dict[str, str], log_dir: Path) -> None:
        self.name, self.app, self.port = name, app, port
        self.worker_args, self.env = worker_args, env
        self.log_path = log_dir / f"{name.split()[0]}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [str(GUNICORN), "--config", str(GUNICORN_CONF), "--bind", f"{HOST}:{self.port}",
                   "--chdir", str(ROOT),
                   "--log-level", "warning", "--graceful-timeout", "5", *self.worker_args,
                   self.app]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the server answers HTTP (any status); raise if it dies or never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise ServerFailed(f"{self.name} exited during start-up\n{self.log_tail()}")
            conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
            try:
                conn.request("GET", "/__ready__")
                conn.getresponse().read()
                return
            except (OSError, http.client.HTTPException):
                time.sleep(0.1)
            finally:
                conn.close()
        raise ServerFailed(f"{self.name} did not answer within {timeout:.0f} s\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the arbiter and its workers."""
        return cpu_seconds(group=self.process.pid) if self.process else 0.0

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise ServerFailed(f"{self.name} died\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the whole process group (arbiter and workers), then kill what is left."""
        process, self.process = self.process, None
        if process is None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # workers outliving their arbiter
            os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(f"  | {line}" for line in text[-lines:])


# ---- Database -------------------------------------------------------------------------------


def psycopg_dsn(url: str) -> str:
    """A libpq URL from a SQLAlchemy one."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


class SetupFailed(RuntimeError):
    """The benchmark's database or a server could not be made ready."""


def database_url_for(admin_url: str) -> str:
    """The URL of a new, uniquely named database on admin_url's server."""
    return (make_url(admin_url)
            .set(drivername="postgresql+psycopg", database=f"ivr_bench_{uuid.uuid4().hex[:10]}")
            .render_as_string(hide_password=False))


def create_database(admin_url: str, url: str) -> None:
    """Create the (empty) database at `url`."""
    import psycopg

    try:
        with psycopg.connect(psycopg_dsn(admin_url), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{make_url(url).database}"')
    except psycopg.Error as exc:
        raise SetupFailed(f"cannot create a database via {make_url(admin_url)!s}: {exc}") from exc


def always_open(flow_yaml: str) -> str:
    """The demo flow with its desk open around the clock, so every run takes the same paths
    through the menus whatever the hour (the hours check itself still runs on each call)."""
    return (flow_yaml.replace('mon-fri: "08:00-18:00"', 'mon-sun: "00:00-24:00"')
            .replace("holidays: {country: DE, subdivision: BE}\n", "")
            .replace("    closed:\n      - 2026-12-24\n      - 2026-12-31\n", ""))


def prepare_database(url: str) -> None:
    """Migrate the database to head and publish the demo flow, open around the clock."""
    from callbacks.db import make_engine, make_session_factory
    from callbacks.flowstore import publish_flow
    from ivr.schema import upgrade

    upgrade(url)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            publish_flow(session, always_open(DEMO_FLOW.read_text(encoding="utf-8")),
                         str(DEMO_FLOW), by="benchmark")
    finally:
        engine.dispose()


def drop_database(admin_url: str, url: str) -> None:
    """Drop the benchmark's database (if it was created), closing its connections."""
    import psycopg

    name = make_url(url).database
    try:
        with psycopg.connect(psycopg_dsn(admin_url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error as exc:
        print(f"could not drop database {name}: {exc}", file=sys.stderr)


# ---- The run --------------------------------------------------------------------------------


def self_check() -> None:
    """Our fast signature must equal the twilio library's."""
    from twilio.request_validator import RequestValidator

    fields = {**call_fields("CA" + "1" * 32, *CALLERS[0]), "Digits": "1"}
    url = "http://127.0.0.1:8000/voice/step?v=1&n=main_menu&l=en&a=0&s=2"
    expected = RequestValidator("token").compute_signature(url, fields)
    if sign(b"token", url, fields) != expected:
        raise AssertionError("benchmark signature differs from twilio's RequestValidator")


def server_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment without any IVR_/database settings of the caller's shell, plus extra."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("IVR_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def row(label: str, result: Result) -> str:
    """A table line: throughput, latency, errors, then CPU ms per request of server and DB."""
    return (f"{label:<22}{result.rate:>9.1f}{result.p50_ms:>9.1f}{result.p99_ms:>9.1f}"
            f"{result.errors + result.apologies:>8d}"
            f"{result.per_request_ms(result.server_cpu):>12.2f}"
            f"{result.per_request_ms(result.db_cpu):>9.2f}")


def describe_endings(result: Result) -> str:
    total = sum(result.endings.values()) or 1
    return ", ".join(f"{name} {count * 100 / total:.0f}%"
                     for name, count in result.endings.most_common())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="closed-loop callers (phase A)")
    parser.add_argument("--open-concurrency", type=int, default=32,
                        help="connections that carry the paced load (phase B)")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="GIL switch interval (s) in both servers' workers "
                             "(default: gunicorn.conf.py's)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per server")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measure phases A and B this many times on the same servers and "
                             "judge the goal by the median round (a shared host is noisy)")
    parser.add_argument("--load-fraction", type=float, default=0.5,
                        help="phase B rate as a fraction of the baseline's req/s")
    parser.add_argument("--app", default="ivr:create_app()",
                        help="the app under test, as gunicorn names it (to try a variant)")
    parser.add_argument("--admin-url", default=os.environ.get(
        "IVR_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL database to create the benchmark's database from")
    args = parser.parse_args(argv)
    if not (0 < args.seconds <= 600 and 0 <= args.warmup <= 60):
        parser.error("--seconds must be in (0, 600] and --warmup in [0, 60]")
    if min(args.concurrency, args.open_concurrency, args.clients, args.workers,
           args.threads, args.rounds) < 1:
        parser.error("counts must be at least 1")
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    load_before = os.getloadavg()[0]
    self_check()
    worker_args = ["--workers", str(args.workers), "--worker-class", args.worker_class]
    if args.worker_class == "gthread":
        worker_args += ["--threads", str(args.threads)]
    switch = ({"IVR_GIL_SWITCH_SECONDS": str(args.switch_interval)}
              if args.switch_interval is not None else {})
    token = uuid.uuid4().hex  # shaped like a Twilio auth token, as production insists
    servers: list[Server] = []
    database_url = database_url_for(args.admin_url)
    created = False
    tmp = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
    try:
        create_database(args.admin_url, database_url)
        created = True
        prepare_database(database_url)
        base_port, app_port = free_port(), free_port()
        while app_port == base_port:
            app_port = free_port()
        baseline = Server("bare Flask baseline", "benchmarks.bare_app:create_app()",
                          base_port, worker_args, server_env(switch), tmp)
        app = Server("ivr webhooks", args.app, app_port, worker_args, server_env({
            "IVR_ENV": "production",
            "IVR_SECRET_KEY": uuid.uuid4().hex * 2,
            "IVR_DATABASE_URL": database_url,
            "IVR_TWILIO_AUTH_TOKEN": token,
            "IVR_PUBLIC_BASE_URL": f"https://{HOST}:{app_port}",
            "IVR_METRICS_PRIVATE": "true",
            "IVR_LOG_LEVEL": "WARNING",
            "IVR_INSTANCE_PATH": str(tmp),
            **switch,
        }), tmp)
        servers = [baseline, app]
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()

        database = make_url(database_url).database

        def phase(server: Server, seconds: float, callers: int, rate: float = 0.0,
                  seed: int = 0) -> Result:
            server_cpu, db_cpu = server.cpu_seconds(), cpu_seconds(database=database)
            result = run_phase(server.port, token, args.clients, callers, seconds, rate, seed)
            server.check_alive()
            return dataclasses.replace(result, server_cpu=server.cpu_seconds() - server_cpu,
                                       db_cpu=cpu_seconds(database=database) - db_cpu)

        if args.warmup:
            for i, server in enumerate(servers):
                warm = phase(server, args.warmup, args.concurrency, seed=100 + i)
                if warm.requests == 0:
                    raise ServerFailed(f"{server.name} answered nothing during warm-up: "
                                       f"{warm.first_error}\n{server.log_tail()}")
        rounds: list[Round] = []
        for number in range(args.rounds):
            seed = 1 + 4 * number
            base_result = phase(baseline, args.seconds, args.concurrency, seed=seed)
            app_result = phase(app, args.seconds, args.concurrency, seed=seed + 1)
            goal_rate = args.load_fraction * base_result.rate
            paced = phase(app, args.seconds, args.open_concurrency, rate=goal_rate, seed=seed + 2)
            # The same paced load on the baseline: the latency this machine allows right now.
            base_paced = phase(baseline, args.seconds, args.open_concurrency, rate=goal_rate,
                               seed=seed + 3)
            rounds.append(Round(base_result, app_result, goal_rate, paced, base_paced))
            if args.rounds > 1:
                print(f"round {number + 1}/{args.rounds}: {round_line(rounds[-1])}", flush=True)
        app_log = app.log_tail(15)
    except ServerFailed as exc:
        print(f"server failed: {exc}", file=sys.stderr)
        return 1
    except SetupFailed as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: stopping servers and dropping the database", file=sys.stderr)
        return 130
    finally:
        stop_clients()
        for server in servers:
            server.stop()
        if created:
            drop_database(args.admin_url, database_url)
        shutil.rmtree(tmp, ignore_errors=True)

    width = args.workers if args.worker_class != "gthread" else f"{args.workers}x{args.threads}"
    interval = (f"{args.switch_interval * 1000:g} ms" if args.switch_interval is not None
                else "as in gunicorn.conf.py")
    print(f"webhook benchmark ({os.cpu_count()} cores, gunicorn {args.worker_class} {width}, "
          f"GIL switch interval {interval}, "
          f"{args.concurrency} concurrent callers in {args.clients} client processes, "
          f"{args.seconds:g} s each; load average before {load_before:.2f}, "
          f"after {os.getloadavg()[0]:.2f})")
    # The median round by p99 at the goal load (of two middle ones, the slower).
    typical = sorted(rounds, key=lambda r: r.paced.p99_ms)[len(rounds) // 2]
    if len(rounds) > 1:
        print(f"the median round by p99 at the goal load, of {len(rounds)}:")
    report_round(typical, args)
    if len(rounds) > 1:
        ratios = sorted(r.ratio for r in rounds)
        p99s = sorted(r.paced.p99_ms for r in rounds)
        print(f"over {len(rounds)} rounds: ratio median {statistics.median(ratios):.2f} "
              f"(min {ratios[0]:.2f}, max {ratios[-1]:.2f}); p99 at the goal load median "
              f"{statistics.median(p99s):.1f} ms (min {p99s[0]:.1f}, max {p99s[-1]:.1f}); "
              f"goal met in {sum(r.met for r in rounds)} of {len(rounds)} rounds")
    print(f"goal: ratio >= 0.5 and p99 < {GOAL_P99_MS:g} ms at that load"
          f"{' (median round)' if len(rounds) > 1 else ''} -> "
          f"{'MET' if typical.met else 'NOT MET'}")
    failed = [(f"round {n + 1} {name}" if len(rounds) > 1 else name, result)
              for n, r in enumerate(rounds) for name, result in r.failures()]
    for name, result in failed:
        print(f"{name}: {result.errors} errors, {result.apologies} apologies; first: "
              f"{result.first_error}", file=sys.stderr)
    if failed and app_log:
        print(f"ivr server log:\n{app_log}", file=sys.stderr)
    return 1 if failed else 0


def round_line(r: Round) -> str:
    """A round in one line: both servers' req/s, the ratio and the paced p99s."""
    return (f"baseline {r.base.rate:.0f} req/s, ivr {r.app.rate:.0f} req/s, ratio "
            f"{r.ratio:.2f}; at {r.goal_rate:.0f} req/s ivr p99 {r.paced.p99_ms:.1f} ms "
            f"(baseline {r.base_paced.p99_ms:.1f} ms) -> {'met' if r.met else 'not met'}")


def report_round(r: Round, args: argparse.Namespace) -> None:
    """The table of one round, as a single-round run prints it."""
    base_cost = r.base.per_request_ms(r.base.server_cpu)
    app_cost = r.app.per_request_ms(r.app.server_cpu + r.app.db_cpu)
    print(f"{'':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'server CPU':>12}"
          f"{'db CPU':>9}   (CPU: ms per request)")
    print(row("bare Flask baseline", r.base))
    print(row("ivr webhooks", r.app))
    print(f"{'ratio (ivr/baseline)':<22}{r.ratio:>9.2f}"
          f"{'CPU cost ratio':>38}{base_cost / app_cost if app_cost else 0.0:>9.2f}")
    print(f"ivr at {args.load_fraction:.0%} of baseline load ({r.goal_rate:.0f} req/s paced over "
          f"{args.open_concurrency} connections): achieved {r.paced.rate:.0f} req/s, "
          f"p50 {r.paced.p50_ms:.1f} ms, p99 {r.paced.p99_ms:.1f} ms, "
          f"errors {r.paced.errors + r.paced.apologies}")
    print(f"bare Flask at the same paced load (control): achieved {r.base_paced.rate:.0f} req/s, "
          f"p50 {r.base_paced.p50_ms:.1f} ms, p99 {r.base_paced.p99_ms:.1f} ms, "
          f"errors {r.base_paced.errors}")
    print(f"client CPU per request: baseline {r.base.per_request_ms(r.base.client_cpu):.2f} ms, "
          f"ivr {r.app.per_request_ms(r.app.client_cpu):.2f} ms (the client shares the cores "
          f"with the servers)")
    print(f"ivr calls in phase A: {r.app.calls}, "
          f"{r.app.requests / max(r.app.calls, 1):.2f} requests per call; "
          f"ended by {describe_endings(r.app)}")


if __name__ == "__main__":
    sys.exit(main())
