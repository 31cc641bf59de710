"""Soak and chaos: steady simulated calls while Redis, workers, PostgreSQL and Twilio misbehave.

What runs
---------
Everything is private and on loopback: a redis-server that keeps nothing on disk, a PostgreSQL
database created and migrated for the run (dropped at the end), the Twilio stand-in
(ivr/standin.py) in this process, gunicorn serving `ivr:create_app()` (2 workers) and 2
`ivr worker` processes, reconciling every `--reconcile-seconds` with a 1 s heartbeat. The line
publishes `benchmarks/chaos_flow.yaml` (Korean): key 1 leaves a voicemail, key 2 a voicemail
with a callback after it, key 3 asks for a callback, key 4 waits in line for an agent. The
recordings are the real Korean clips of `../shared/audio/ko/` at 8 kHz, served by the stand-in.
Two progressive agents work the line and the callbacks: a thread per agent plays their phone
(and a callback's caller) for each call the line places through the stand-in, lets about one
ring in ten ring out, and comes back through the JSON API when the line set them away
(benchmarks/chaos_line.py).

Traffic and faults
------------------
`--callers` threads place calls at `--rate` calls per minute in total, for `--minutes`, through
the real web server (signed like Twilio, by ivr/simulator). Each webhook's latency is kept, and
each call is checked: did every webhook answer valid TwiML (no "application error"), did the
caller hear the apology of the app's failure path, did they hear their ticket number. Callers
who wait in line (through the stand-in's queues) either wait until an agent answers, hang up
after a few passes of the hold loop, or press 1 for a callback; the line's P1 target is 20 s
and its max wait 30 s, so long waits overflow.

Meanwhile, every `--fault-every` seconds, the next fault of this cycle is injected:
redis restart (SIGKILL, start empty on the same port), redis FLUSHALL, SIGKILL of the worker
that is transcribing a voicemail (found with rq's worker registry, else by CPU use) and a
replacement started, pg_terminate_backend of every connection to the run's database, and the
stand-in answering 500 or stalling past the client's 30 s timeout for recording downloads,
outbound calls and SMS.

After the traffic, the run waits (at most `--converge-seconds`) until SQL shows no work left:
every voicemail transcribed (or failed for good), every ticket SMS sent, no callback claimed,
no caller still in line or talking. Then it counts from SQL and the stand-in and prints a
report and one JSON line (`CHAOS_COUNTS {...}`), with the live callers' counts: bridged,
abandoned, turned into callbacks, overflowed, lost (not in a final state, or left waiting while
a qualified agent was free, sampled during the run) and duplicated (bridged twice, an agent
rung twice at once, a ring for a caller already bridged).

Run
---
    .venv/bin/python benchmarks/chaos.py --short            # CI form: about 2 minutes
    .venv/bin/python benchmarks/chaos.py --minutes 10       # a soak

Exit status: 0 when nothing was lost (live callers included), nothing was done twice and no
call heard an application error; 1 otherwise; 2 when the stack did not start.
"""

# ruff: noqa: E402
from __future__ import annotations

import signal
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
import io
import json
import logging
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from benchmarks.chaos_line import (
    AGENTS,
    MAX_WAIT_PASSES,
    QUEUE_KINDS,
    WAIT_PACE,
    WRAP_UP_SECONDS,
    AgentDesk,
    StuckWatch,
    chaos_priorities,
    count_live,
    queue_script,
)
from benchmarks.chaos_stack import (
    ChaosDatabase,
    RedisProcess,
    WebServer,
    WorkerPool,
    cpu_ticks,
)

ROOT = _HERE.parent
FLOW_FILE = _HERE / "chaos_flow.yaml"
CLIPS_DIR = ROOT.parent / "shared" / "audio" / "ko"
ACCOUNT_SID = "AC" + "c" * 32
AUTH_TOKEN = "chaos-auth-token-3e9d1f0a7c5b2e4d"
LINE = "+493012345678"
APOLOGY = "시스템에 문제가 발생했습니다"  # the app's failure path (ivr/voice/messages.py, ko)
TICKET_HEARD = "접수 번호는"
REST_TIMEOUT = 30.0  # callbacks/telephony.py: how long the app waits for Twilio
CALL_KINDS = ("voicemail", "voicemail_callback", "callback", *QUEUE_KINDS)
CALL_WEIGHTS = (4, 3, 3, 4, 2, 2)
TICKET_KINDS = ("voicemail", "voicemail_callback", "callback")
"""Calls that always end with a ticket number (a caller in line only when they press 1)."""
STANDIN_PATHS = {"recordings": r"/Recordings/", "calls": r"/Calls\.json$",
                 "sms": r"/Messages\.json$"}
FAULT_KINDS = ("redis_restart", "standin_500_recordings", "worker_kill", "standin_500_sms",
               "pg_terminate", "standin_timeout_recordings", "redis_flushall",
               "standin_500_calls", "standin_timeout_sms", "standin_timeout_calls")
"""Injected in this order, round and round."""

log = logging.getLogger("chaos")


@dataclass
class ChaosOptions:
    """How long, how busy, how often things break."""

    minutes: float = 1.0
    callers: int = 3
    rate: float = 20.0
    """Calls per minute, all caller threads together."""
    fault_every: float = 5.5
    reconcile_seconds: int = 3
    converge_seconds: float = 150.0
    admin_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    seed: int = 7
    keep: bool = False


@dataclass
class CallResult:
    """One simulated call, as the caller experienced it."""

    kind: str
    call_sid: str
    caller: str
    started: float
    recordings: list[str]
    failures: list[str]
    apology: bool
    heard_ticket: bool
    enqueued: bool = False
    """The caller reached <Enqueue> (waited in line)."""
    conferences: int = 0
    """Conversations with an agent the caller had (more than one would be a second bridge)."""


@dataclass
class FaultEvent:
    """One injected fault: what, when (monotonic), how long its effects may last, detail."""

    kind: str
    at: float
    window: float
    detail: str = ""


@dataclass
class ChaosCounts:
    """What the run counted; `ok` says whether it passed."""

    calls_placed: int = 0
    calls_by_kind: dict[str, int] = field(default_factory=dict)
    calls_valid_twiml: int = 0
    application_errors: int = 0
    apologies: int = 0
    ticket_number_not_heard: int = 0
    recordings_left: int = 0
    voicemails: int = 0
    voicemails_by_state: dict[str, int] = field(default_factory=dict)
    tickets: int = 0
    voicemails_with_one_ticket: int = 0
    voicemails_lost: int = 0
    voicemails_unfinished: int = 0
    tickets_twice_for_a_voicemail: int = 0
    tickets_transcribed_twice: int = 0
    voicemail_job_runs: int = 0
    callback_requests: int = 0
    callback_requests_by_status: dict[str, int] = field(default_factory=dict)
    callback_requests_in_bad_state: int = 0
    callback_requests_missing: int = 0
    callback_requests_duplicate: int = 0
    callback_requests_due_undialled: int = 0
    dialer_calls: int = 0
    attempts_still_live: int = 0
    agent_availability: str = ""
    agents_availability: dict[str, str] = field(default_factory=dict)
    live_callers: int = 0
    live_by_status: dict[str, int] = field(default_factory=dict)
    live_bridged: int = 0
    live_abandoned: int = 0
    live_to_callback: int = 0
    live_overflowed: int = 0
    live_offers: int = 0
    live_offers_by_outcome: dict[str, int] = field(default_factory=dict)
    live_lost: int = 0
    live_duplicated: int = 0
    live_detail: dict[str, int] = field(default_factory=dict)
    sms_sent: int = 0
    sms_sent_twice: int = 0
    ticket_sms_unsent: int = 0
    faults_injected: dict[str, int] = field(default_factory=dict)
    standin_faults_hit: int = 0
    webhooks: int = 0
    webhook_p50_ms: float = 0.0
    webhook_p99_ms: float = 0.0
    webhook_p99_fault_ms: float = 0.0
    webhook_max_ms: float = 0.0
    converged_seconds: float = 0.0
    converged: bool = False
    lost: int = 0
    duplicates: int = 0
    ok: bool = False


# --- the caller's side ---------------------------------------------------------------


class TimedSession(requests.Session):
    """A requests session that notes how long each request to the web server took."""

    def __init__(self, base_url: str, sink: Callable[[float, float], None]) -> None:
        super().__init__()
        self.base_url = base_url
        self.sink = sink

    def request(self, method: str | bytes, url: str | bytes,  # type: ignore[override]
                *args: Any, **kwargs: Any) -> requests.Response:
        """Send the request; for the web server, report (start, seconds)."""
        started = time.monotonic()
        try:
            return super().request(method, url, *args, **kwargs)
        finally:
            if str(url).startswith(self.base_url):
                self.sink(started, time.monotonic() - started)


def telephone_clips(workdir: Path) -> list[Path]:
    """The Korean clips as Twilio serves recordings: 8 kHz, 16-bit mono WAV files."""
    import numpy as np
    import soundfile

    from speech.resampling import resample

    paths = []
    for source in sorted(CLIPS_DIR.glob("*.wav")):
        samples, rate = soundfile.read(source, dtype="float32")
        buffer = io.BytesIO()
        soundfile.write(buffer, np.asarray(resample(samples, rate, 8000)), 8000,
                        subtype="PCM_16", format="WAV")
        target = workdir / f"phone-{source.name}"
        target.write_bytes(buffer.getvalue())
        paths.append(target)
    if not paths:
        raise RuntimeError(f"no Korean clips in {CLIPS_DIR}")
    return paths


class Traffic:
    """Caller threads placing calls at a steady rate until told to stop."""

    def __init__(self, base_url: str, standin_url: str, clips: list[Path],
                 options: ChaosOptions) -> None:
        self.base_url = base_url
        self.standin_url = standin_url
        self.clips = clips
        self.options = options
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.results: list[CallResult] = []
        self.latencies: list[tuple[float, float]] = []
        self.serial = 0
        self.random = random.Random(options.seed)
        self.waiting: list[threading.Thread] = []
        """Callers in line run in their own threads, so the rate of new calls holds."""

    def note_latency(self, started: float, seconds: float) -> None:
        """Keep one webhook's latency."""
        with self.lock:
            self.latencies.append((started, seconds))

    def _next_call(self) -> tuple[int, str, list[str]]:
        with self.lock:
            self.serial += 1
            n = self.serial
            kind = self.random.choices(CALL_KINDS, weights=CALL_WEIGHTS)[0]
            clip = self.random.choice(self.clips)
            if kind in QUEUE_KINDS:
                return n, kind, queue_script(kind, self.random)
        script = {"voicemail": ["1", f"wav:{clip}"],
                  "voicemail_callback": ["2", f"wav:{clip}"],
                  "callback": ["3", "1"]}[kind]
        return n, kind, script

    def place_call(self, call: tuple[int, str, list[str]] | None = None) -> CallResult:
        """One call through the web server, as Twilio and the caller would make it."""
        from ivr.simulator import ScriptedCaller, Simulator

        n, kind, script = call or self._next_call()
        caller = f"+8210{5000_0000 + n:08d}"  # a Korean mobile per call: no joined requests
        session = TimedSession(self.base_url, self.note_latency)
        simulator = Simulator(self.base_url, AUTH_TOKEN, caller=caller, called=LINE,
                              account_sid=ACCOUNT_SID, call_sid="CA" + f"{n:032x}",
                              recording_base_url=self.standin_url, upload_recordings=True,
                              session=session, timeout=30, standin_url=self.standin_url,
                              wait_pace=WAIT_PACE, max_wait_passes=MAX_WAIT_PASSES)
        started = time.monotonic()
        transcript = simulator.run(ScriptedCaller(script))
        session.close()
        said = " ".join(transcript.said())
        return CallResult(kind, transcript.call_sid, caller, started,
                          list(transcript.recordings), [f.text for f in transcript.failures],
                          APOLOGY in said, TICKET_HEARD in said,
                          enqueued=any(e.kind == "enqueue" for e in transcript.events),
                          conferences=sum(1 for e in transcript.events
                                          if e.kind == "conference"))

    def _one_call(self, call: tuple[int, str, list[str]] | None = None) -> None:
        try:
            result = self.place_call(call)
        except Exception as error:  # a bug in the simulator must not end the soak
            log.exception("call failed in the simulator")
            result = CallResult("error", "", "", time.monotonic(), [], [repr(error)],
                                False, False)
        with self.lock:
            self.results.append(result)

    def _caller_loop(self, index: int) -> None:
        interval = 60.0 * self.options.callers / self.options.rate
        next_at = time.monotonic() + interval * index / self.options.callers
        while not self.stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += interval
            call = self._next_call()
            if call[1] in QUEUE_KINDS:
                waiting = threading.Thread(target=self._one_call, args=(call,),
                                           name=f"in line {call[0]}", daemon=True)
                with self.lock:
                    self.waiting.append(waiting)
                waiting.start()
            else:
                self._one_call(call)

    def run(self) -> list[threading.Thread]:
        """Start the caller threads."""
        threads = [threading.Thread(target=self._caller_loop, args=(i,), name=f"caller-{i}",
                                    daemon=True) for i in range(self.options.callers)]
        for thread in threads:
            thread.start()
        return threads


# --- faults ------------------------------------------------------------------------------


class FaultInjector:
    """Breaks one thing every `fault_every` seconds, cycling through FAULT_KINDS."""

    def __init__(self, redis: RedisProcess, database: ChaosDatabase, workers: WorkerPool,
                 standin: Any, options: ChaosOptions) -> None:
        self.redis = redis
        self.database = database
        self.workers = workers
        self.standin = standin
        self.options = options
        self.stop = threading.Event()
        self.events: list[FaultEvent] = []
        self.standin_faults: list[Any] = []
        self.skipped = Counter[str]()

    def inject(self, kind: str) -> FaultEvent | None:
        """Inject one fault of `kind` now; None when it could not be (nothing to kill)."""
        from ivr.standin import Fault

        quick = 2.0 * self.options.reconcile_seconds + 2
        at = time.monotonic()
        if kind == "redis_restart":
            self.redis.restart()
            return FaultEvent(kind, at, quick, f"port {self.redis.port}")
        if kind == "redis_flushall":
            from redis import Redis

            with Redis.from_url(self.redis.url) as client:
                client.flushall()
            return FaultEvent(kind, at, quick)
        if kind == "pg_terminate":
            cut = self.database.terminate_connections()
            return FaultEvent(kind, at, quick, f"{cut} connections")
        if kind == "worker_kill":
            return self._kill_transcribing_worker()
        _, failure, path_name = kind.split("_")
        delay = REST_TIMEOUT + 5 if failure == "timeout" else 0.0
        fault = Fault(STANDIN_PATHS[path_name], 503 if delay else 500, times=1,
                      delay_seconds=delay)
        self.standin.state.add_fault(fault)
        self.standin_faults.append(fault)
        return FaultEvent(kind, at, delay + quick, f"{fault.path} {fault.status}")

    def _kill_transcribing_worker(self) -> FaultEvent | None:
        """SIGKILL the worker in the middle of a transcription, and start a replacement."""
        deadline = time.monotonic() + 3 * self.options.fault_every
        while not self.stop.is_set() and time.monotonic() < deadline:
            if transcribing_now(self.database.url):
                pid, how = self._transcribing_pid()
                if pid is not None:
                    at = time.monotonic()
                    self.workers.kill(pid)
                    self.workers.start_one()
                    return FaultEvent("worker_kill", at, 20.0, f"pid {pid} (found by {how})")
            time.sleep(0.1)
        return None

    def _transcribing_pid(self) -> tuple[int | None, str]:
        from redis import Redis
        from redis.exceptions import RedisError
        from rq import Worker

        pids = self.workers.pids()
        try:
            with Redis.from_url(self.redis.url) as client:
                for worker in Worker.all(connection=client):
                    job_id = worker.get_current_job_id() or ""
                    if job_id.startswith("voicemail-") and worker.pid in pids:
                        return worker.pid, "rq"
        except RedisError:
            pass
        before = {pid: cpu_ticks(pid) for pid in pids}
        time.sleep(0.3)
        busiest = max(pids, key=lambda pid: cpu_ticks(pid) - before[pid], default=None)
        return busiest, "cpu"

    def run(self, first_at: float) -> threading.Thread:
        """Inject faults on the schedule until stopped."""
        def loop() -> None:
            index = 0
            if self.stop.wait(max(0.0, first_at - time.monotonic())):
                return
            while not self.stop.is_set():
                kind = FAULT_KINDS[index % len(FAULT_KINDS)]
                index += 1
                started = time.monotonic()
                try:
                    event = self.inject(kind)
                except Exception as error:
                    log.exception("fault %s could not be injected", kind)
                    event, self.skipped[kind] = None, self.skipped[kind] + 1
                    print(f"  fault {kind}: not injected ({error})", flush=True)
                if event is not None:
                    self.events.append(event)
                    print(f"  t+{event.at - first_at:6.1f}s fault {kind} {event.detail}",
                          flush=True)
                elif kind == "worker_kill":
                    self.skipped[kind] += 1
                    print("  fault worker_kill: no transcription to interrupt", flush=True)
                self.stop.wait(max(0.0, self.options.fault_every
                                   - (time.monotonic() - started)))

        thread = threading.Thread(target=loop, name="faults", daemon=True)
        thread.start()
        return thread


def transcribing_now(database_url: str) -> bool:
    """Whether a voicemail is being transcribed (its state in SQL is 'processing')."""
    import psycopg

    from benchmarks.chaos_stack import psycopg_dsn

    try:
        with psycopg.connect(psycopg_dsn(database_url), connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT count(*) FROM voicemails WHERE state = 'processing'").fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0])


# --- the line ---------------------------------------------------------------------------


def set_up_line(database_url: str) -> dict[str, str]:
    """Publish the chaos flow and add the available progressive agents, who speak its
    language (calls reach only agents who speak the caller's language); phone -> API token."""
    from callbacks.db import make_engine, make_session_factory
    from callbacks.flowstore import publish_flow
    from callbacks.workqueue.agents import create_agent, issue_api_token, set_availability
    from callbacks.workqueue.skills import set_skills

    engine = make_engine(database_url)
    tokens = {}
    try:
        with make_session_factory(engine)() as session:
            publish_flow(session, FLOW_FILE.read_text(encoding="utf-8"), str(FLOW_FILE),
                         by="chaos")
            for username, name, phone in AGENTS:
                agent = create_agent(session, username, "chaos-agent-password-1",
                                     display_name=name, phone=phone)
                set_availability(session, agent, "available")
                set_skills(session, agent.id, languages={"ko": 2})
                tokens[phone] = issue_api_token(agent)
            session.commit()
    finally:
        engine.dispose()
    return tokens


def line_environment(database_url: str, redis_url: str, standin_url: str,
                     options: ChaosOptions, priorities: Path) -> dict[str, str]:
    """IVR_* settings of the web server and the workers."""
    return {
        "IVR_PRIORITIES_FILE": str(priorities),
        "IVR_DATABASE_URL": database_url,
        "IVR_REDIS_URL": redis_url,
        "IVR_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "IVR_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "IVR_TWILIO_API_BASE_URL": standin_url,
        "IVR_RECONCILE_SECONDS": str(options.reconcile_seconds),
        "IVR_HEARTBEAT_SECONDS": "1",
        "IVR_WRAP_UP_SECONDS": str(WRAP_UP_SECONDS),
        "IVR_SURVEY": "false",
        "IVR_SMS_FROM": LINE,
        "IVR_CALLBACK_FROM": LINE,
        "IVR_MAX_VOICEMAIL_SECONDS": "120",
        "IVR_LOG_LEVEL": "WARNING",
    }


def wait_for_workers(pool: WorkerPool, workdir: Path, seconds: float = 90) -> None:
    """Wait until every worker listens on its queues (it loads its speech model first)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        logs = [workdir / f"worker-{n}.log" for n in range(1, pool.started + 1)]
        loaded = sum(1 for path in logs if path.exists()
                     and "Listening on" in path.read_text(errors="replace"))
        if loaded >= len(pool.pids()):
            return
        time.sleep(0.5)
    raise RuntimeError("the workers did not load their speech model in time")


# --- convergence and counting -------------------------------------------------------------

_WORK_LEFT = """
SELECT (SELECT count(*) FROM voicemails WHERE state IN ('recorded', 'processing')),
       (SELECT count(*) FROM callback_requests
         WHERE status = 'claimed' OR (status = 'pending' AND available_at <= now())),
       (SELECT count(*) FROM tickets WHERE sms_sid IS NULL AND NOT EXISTS (
            SELECT 1 FROM ticket_events e WHERE e.ticket_id = tickets.id
               AND e.kind IN ('sms_skipped', 'sms_failed'))),
       (SELECT count(*) FROM live_calls WHERE status IN ('waiting', 'offered', 'bridged'))
     + (SELECT count(*) FROM live_offers
         WHERE stage IN ('ringing_agent', 'bridging', 'talking'))
"""


def wait_for_convergence(database_url: str, seconds: float) -> tuple[bool, float]:
    """Wait until SQL shows no unfinished work (or `seconds` pass); (converged, waited)."""
    import psycopg

    from benchmarks.chaos_stack import psycopg_dsn

    started = time.monotonic()
    last: tuple[int, ...] | None = None
    while time.monotonic() - started < seconds:
        try:
            with psycopg.connect(psycopg_dsn(database_url), connect_timeout=3) as conn:
                row = conn.execute(_WORK_LEFT).fetchone()
        except psycopg.Error:
            row = None
        if row is not None:
            left = tuple(int(v) for v in row)
            if left != last:
                print(f"  t+{time.monotonic() - started:5.1f}s left: voicemails {left[0]}, "
                      f"callbacks claimed or due {left[1]}, unsent SMS {left[2]}, callers in "
                      f"line or talking and rings {left[3]}", flush=True)
                last = left
            if not any(left):
                return True, time.monotonic() - started
        time.sleep(1.0)
    return False, time.monotonic() - started


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def count(database_url: str, traffic: Traffic, injector: FaultInjector, standin: Any,
          converged: tuple[bool, float], watch: StuckWatch,
          desks: list[AgentDesk]) -> ChaosCounts:
    """Everything the report says, from SQL, the stand-in and what the callers heard."""
    import psycopg

    from benchmarks.chaos_stack import psycopg_dsn
    from callbacks.sms import can_receive_sms

    counts = ChaosCounts()
    results = traffic.results
    counts.calls_placed = len(results)
    counts.calls_by_kind = dict(Counter(r.kind for r in results))
    counts.application_errors = sum(1 for r in results if r.failures)
    counts.calls_valid_twiml = counts.calls_placed - counts.application_errors
    counts.apologies = sum(1 for r in results if r.apology)
    counts.ticket_number_not_heard = sum(1 for r in results
                                         if r.kind in TICKET_KINDS and not r.heard_ticket)
    left = {sid: r for r in results for sid in r.recordings}
    counts.recordings_left = len(left)

    with psycopg.connect(psycopg_dsn(database_url)) as conn:
        def rows(sql: str, *params: Any) -> list[tuple[Any, ...]]:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

        voicemails = rows("SELECT v.id, v.recording_sid, v.state, "
                          "(SELECT count(*) FROM tickets t WHERE t.voicemail_id = v.id) "
                          "FROM voicemails v")
        counts.voicemails = len(voicemails)
        counts.voicemails_by_state = dict(Counter(state for _, _, state, _ in voicemails))
        counts.voicemails_with_one_ticket = sum(1 for *_, n in voicemails if n == 1)
        counts.tickets_twice_for_a_voicemail = sum(1 for *_, n in voicemails if n > 1)
        stored = {sid for _, sid, _, _ in voicemails}
        counts.voicemails_lost = (sum(1 for *_, n in voicemails if n == 0)
                                  + sum(1 for sid in left if sid not in stored))
        counts.voicemails_unfinished = sum(1 for _, _, state, _ in voicemails
                                           if state in ("recorded", "processing"))
        counts.tickets = rows("SELECT count(*) FROM tickets")[0][0]
        counts.voicemail_job_runs = rows("SELECT coalesce(sum(attempts), 0) FROM voicemails")[0][0]
        # Two runs of one voicemail's job that both finished: the work was done twice.
        counts.tickets_transcribed_twice = rows(
            "SELECT count(*) FROM (SELECT ticket_id FROM ticket_events "
            "WHERE kind = 'transcribed' OR starts_with(kind, 'transcription_') "
            "GROUP BY ticket_id HAVING count(*) > 1) AS twice")[0][0]

        requests_ = rows("SELECT id, caller, first_call_sid, status FROM callback_requests")
        counts.callback_requests = len(requests_)
        counts.callback_requests_by_status = dict(Counter(status for *_, status in requests_))
        counts.callback_requests_in_bad_state = sum(
            1 for *_, status in requests_ if status not in ("pending", "done", "unreachable"))
        per_caller = Counter(caller for _, caller, _, _ in requests_)
        counts.callback_requests_duplicate = sum(n - 1 for n in per_caller.values() if n > 1)
        # Who must have a request: callback calls that heard their ticket number, and
        # voicemails with a callback once their ticket is complete.
        finished = {sid for _, sid, state, _ in voicemails if state in ("done", "failed")}
        expected = {r.caller for r in results
                    if r.kind in ("callback", "queue_callback") and r.heard_ticket}
        expected |= {r.caller for r in results if r.kind == "voicemail_callback"
                     and any(sid in finished for sid in r.recordings)}
        counts.callback_requests_missing = len(expected - set(per_caller))
        # Due for longer than a few sweeps (workers sweep every reconcile interval).
        counts.callback_requests_due_undialled = rows(
            "SELECT count(*) FROM callback_requests WHERE status = 'pending' "
            "AND available_at <= now() - interval '15 seconds'")[0][0]
        counts.attempts_still_live = rows(
            "SELECT count(*) FROM callback_attempts WHERE ended_at IS NULL")[0][0]
        counts.agent_availability = rows(
            "SELECT availability FROM agents WHERE username = 'chaos.agent'")[0][0]
        counts.agents_availability = dict(rows("SELECT username, availability FROM agents"))
        live = count_live(conn, results, watch, desks)
        counts.live_callers, counts.live_by_status = live.callers, live.by_status
        counts.live_bridged, counts.live_abandoned = live.bridged, live.abandoned
        counts.live_to_callback, counts.live_overflowed = live.to_callback, live.overflowed
        counts.live_offers, counts.live_offers_by_outcome = live.offers, live.offers_by_outcome
        counts.live_lost, counts.live_duplicated = live.lost, live.duplicated
        counts.live_detail = live.detail

        unsent = rows("SELECT t.caller FROM tickets t WHERE t.sms_sid IS NULL AND NOT EXISTS "
                      "(SELECT 1 FROM ticket_events e WHERE e.ticket_id = t.id "
                      "AND e.kind IN ('sms_skipped', 'sms_failed'))")
        counts.ticket_sms_unsent = sum(1 for (caller,) in unsent if can_receive_sms(caller))

    messages = standin.messages()
    counts.sms_sent = len(messages)
    same = Counter((m.to, m.body) for m in messages)
    counts.sms_sent_twice = sum(n - 1 for n in same.values() if n > 1)
    counts.dialer_calls = len(standin.calls())

    counts.faults_injected = dict(Counter(event.kind for event in injector.events))
    counts.standin_faults_hit = sum(1 for fault in injector.standin_faults if fault.times <= 0)

    latencies = [seconds for _, seconds in traffic.latencies]
    in_fault = [seconds for started, seconds in traffic.latencies
                if any(e.at <= started <= e.at + e.window for e in injector.events)]
    counts.webhooks = len(latencies)
    counts.webhook_p50_ms = round(1000 * percentile(latencies, 0.50), 1)
    counts.webhook_p99_ms = round(1000 * percentile(latencies, 0.99), 1)
    counts.webhook_p99_fault_ms = round(1000 * percentile(in_fault, 0.99), 1)
    counts.webhook_max_ms = round(1000 * max(latencies, default=0.0), 1)
    counts.converged, counts.converged_seconds = converged[0], round(converged[1], 1)

    counts.lost = (counts.voicemails_lost + counts.voicemails_unfinished
                   + counts.callback_requests_missing + counts.ticket_sms_unsent
                   + counts.callback_requests_due_undialled + counts.live_lost)
    counts.duplicates = (counts.tickets_twice_for_a_voicemail + counts.callback_requests_duplicate
                         + counts.sms_sent_twice + counts.tickets_transcribed_twice
                         + counts.live_duplicated)
    counts.ok = (counts.lost == 0 and counts.duplicates == 0 and counts.application_errors == 0
                 and counts.callback_requests_in_bad_state == 0)
    return counts


def print_report(counts: ChaosCounts, traffic: Traffic) -> None:
    """The human report, then the machine-readable line."""
    def line(label: str, value: object) -> None:
        print(f"  {label:<44} {value}")

    print("\n=== chaos report ===")
    line("calls placed", f"{counts.calls_placed} {counts.calls_by_kind}")
    line("calls answered with valid TwiML", counts.calls_valid_twiml)
    line("calls that heard an application error", counts.application_errors)
    line("calls that heard the apology (failure path)", counts.apologies)
    line("calls that did not hear a ticket number", counts.ticket_number_not_heard)
    line("recordings left by callers", counts.recordings_left)
    line("voicemails", f"{counts.voicemails} {counts.voicemails_by_state}")
    line("tickets", counts.tickets)
    line("voicemails with exactly one ticket", counts.voicemails_with_one_ticket)
    line("voicemails without ticket (lost)", counts.voicemails_lost)
    line("voicemails never finished (lost work)", counts.voicemails_unfinished)
    line("tickets twice for a voicemail", counts.tickets_twice_for_a_voicemail)
    line("tickets transcribed twice (job ran twice)", counts.tickets_transcribed_twice)
    line("voicemail job runs (retries included)", counts.voicemail_job_runs)
    line("callback requests", f"{counts.callback_requests} "
         f"{counts.callback_requests_by_status}")
    line("callback requests not pending/done/unreachable", counts.callback_requests_in_bad_state)
    line("callback requests missing", counts.callback_requests_missing)
    line("duplicate callback requests", counts.callback_requests_duplicate)
    line("callback requests due but never dialled", counts.callback_requests_due_undialled)
    line("dialer calls / attempts still live", f"{counts.dialer_calls} / "
         f"{counts.attempts_still_live}")
    line("agents at the end", counts.agents_availability)
    line("live callers (waited in line)", f"{counts.live_callers} {counts.live_by_status}")
    line("live: bridged / abandoned / to callback / overflowed",
         f"{counts.live_bridged} / {counts.live_abandoned} / {counts.live_to_callback} / "
         f"{counts.live_overflowed}")
    line("live: rings of agents' phones", f"{counts.live_offers} "
         f"{counts.live_offers_by_outcome}")
    line("live: lost / duplicated", f"{counts.live_lost} / {counts.live_duplicated}")
    line("live: detail", counts.live_detail)
    line("SMS sent / sent twice / ticket SMS unsent",
         f"{counts.sms_sent} / {counts.sms_sent_twice} / {counts.ticket_sms_unsent}")
    line("faults injected", f"{sum(counts.faults_injected.values())} {counts.faults_injected}")
    line("stand-in faults that hit a request", counts.standin_faults_hit)
    line("webhooks timed", counts.webhooks)
    line("webhook p50 / p99 / max (ms)", f"{counts.webhook_p50_ms} / {counts.webhook_p99_ms} / "
         f"{counts.webhook_max_ms}")
    line("webhook p99 during fault windows (ms)", counts.webhook_p99_fault_ms)
    line("converged after (s)", f"{counts.converged_seconds} "
         f"({'yes' if counts.converged else 'NO'})")
    line("lost / duplicates", f"{counts.lost} / {counts.duplicates}")
    failures = [f for r in traffic.results for f in r.failures][:5]
    for failure in failures:
        print(f"  failure heard: {failure[:300]}")
    print(f"  result: {'PASS' if counts.ok else 'FAIL'}")
    print("CHAOS_COUNTS " + json.dumps(asdict(counts), sort_keys=True), flush=True)


# --- the run -------------------------------------------------------------------------------


def run_chaos(options: ChaosOptions) -> ChaosCounts:
    """Start the stack, run traffic and faults, converge, count; everything stopped after."""
    from ivr.standin import StandinServer

    workdir = Path(tempfile.mkdtemp(prefix="ivr-chaos-"))
    redis = RedisProcess(workdir)
    database = ChaosDatabase(options.admin_url)
    standin = StandinServer(ACCOUNT_SID, AUTH_TOKEN)
    web: WebServer | None = None
    workers: WorkerPool | None = None
    ok = False
    try:
        t0 = time.monotonic()
        redis.start()
        database.create()
        tokens = set_up_line(database.url)
        env = line_environment(database.url, redis.url, standin.url, options,
                               chaos_priorities(workdir))
        web = WebServer(env, workdir)
        web.start()
        # The dialer gives Twilio absolute webhook URLs: the workers need the public URL too.
        workers = WorkerPool({**env, "IVR_PUBLIC_BASE_URL": web.url}, workdir)
        workers.start_one()
        workers.start_one()
        clips = telephone_clips(workdir)
        wait_for_workers(workers, workdir)
        print(f"stack up in {time.monotonic() - t0:.1f}s: web {web.url}, redis {redis.url}, "
              f"database {database.name}, stand-in {standin.url}, logs {workdir}", flush=True)

        traffic = Traffic(web.url, standin.url, clips, options)
        seconds = 60.0 * options.minutes
        desks = [AgentDesk(standin, web.url, phone, token, AUTH_TOKEN, options.seed + n,
                           break_between=(seconds / 3, seconds * 3 / 4) if n else None)
                 for n, (phone, token) in enumerate(tokens.items())]
        watch = StuckWatch(database.url)
        injector = FaultInjector(redis, database, workers, standin, options)
        started = time.monotonic()
        callers = traffic.run()
        desk_threads = [desk.run() for desk in desks]
        watch_thread = watch.run()
        faults = injector.run(first_at=started + min(3.0, seconds / 10))
        print(f"traffic for {seconds:.0f}s at {options.rate:g} calls/min, "
              f"{options.callers} callers; a fault every {options.fault_every:g}s", flush=True)
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        injector.stop.set()
        traffic.stop.set()
        for thread in callers:
            thread.join(timeout=120)
        faults.join(timeout=60)
        print(f"traffic stopped after {time.monotonic() - started:.1f}s: "
              f"{len(traffic.results)} calls; converging", flush=True)
        converged = wait_for_convergence(database.url, options.converge_seconds)
        done_by = time.monotonic() + 30  # converged: every caller in line has left it
        for waiting in list(traffic.waiting):
            waiting.join(timeout=max(0.1, done_by - time.monotonic()))
        watch.stop.set()
        watch_thread.join(timeout=10)
        watch.sample()  # one last look, after convergence
        for desk in desks:
            desk.stop.set()
        for thread in desk_threads:
            thread.join(timeout=10)
        counts = count(database.url, traffic, injector, standin, converged, watch, desks)
        print_report(counts, traffic)
        ok = counts.ok
        return counts
    finally:
        if workers is not None:
            workers.stop()
        if web is not None:
            web.stop()
        standin.stop()
        redis.kill()
        try:
            database.drop()
        except Exception:
            log.exception("could not drop %s", database.name)
        if ok and not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}", flush=True)


def parse_options(argv: list[str] | None = None) -> ChaosOptions:
    """Command-line options; `--short` is the CI form."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=None,
                        help="Minutes of traffic (default 3; --short: 1).")
    parser.add_argument("--short", action="store_true",
                        help="CI form: 1 minute of traffic, shorter convergence wait.")
    parser.add_argument("--callers", type=int, default=3, help="Caller threads.")
    parser.add_argument("--rate", type=float, default=None,
                        help="Calls per minute, all callers together (default 20).")
    parser.add_argument("--fault-every", type=float, default=None,
                        help="Seconds between faults (default 5.5; longer runs: 15).")
    parser.add_argument("--reconcile-seconds", type=int, default=3)
    parser.add_argument("--converge-seconds", type=float, default=None,
                        help="Longest wait for the work to finish (default 150; --short: 120).")
    parser.add_argument("--admin-url", default=None,
                        help="PostgreSQL URL to create the run's database from (default: "
                             "IVR_TEST_DATABASE_URL or the local test server).")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="Keep the logs directory.")
    args = parser.parse_args(argv)
    import os

    minutes = args.minutes if args.minutes is not None else (1.0 if args.short else 3.0)
    return ChaosOptions(
        minutes=minutes, callers=args.callers,
        rate=args.rate if args.rate is not None else 20.0,
        fault_every=args.fault_every if args.fault_every is not None else (
            5.5 if minutes <= 1.5 else 15.0),
        reconcile_seconds=args.reconcile_seconds,
        converge_seconds=args.converge_seconds if args.converge_seconds is not None else (
            120.0 if args.short else 150.0 + 30 * minutes),
        admin_url=args.admin_url or os.environ.get(
            "IVR_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        seed=args.seed, keep=args.keep)


def main(argv: list[str] | None = None) -> int:
    """Run the chaos test; the exit status says whether it passed."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = parse_options(argv)
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C: processes stopped, database dropped.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    try:
        counts = run_chaos(options)
    except RuntimeError as error:
        print(f"chaos: {error}", file=sys.stderr)
        return 2
    return 0 if counts.ok else 1


if __name__ == "__main__":
    sys.exit(main())
