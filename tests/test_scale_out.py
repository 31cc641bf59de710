"""Scale out on one machine: the same calls through 1 web + 1 worker and through 2 gunicorn web
processes behind a round-robin balancer + 2 `ivr worker` processes end the same way, once each,
with every process doing some of the work."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from redis import Redis
from rq import Worker
from rq.job import Job
from sqlalchemy import func, select

from callbacks.calllog import Call
from callbacks.queues import sms_job_id, voicemail_job_id
from callbacks.tickets.ticket import Ticket
from callbacks.voicemail import Voicemail
from callbacks.workqueue.callback_requests import CallbackRequest
from ivr.simulator import ScriptedCaller, Simulator
from ivr.standin import StandinServer
from tests.conftest import (
    AUTH_TOKEN,
    STANDIN_ACCOUNT_SID,
    app_config,
    empty_tables,
    gunicorn_server,
    line_environment,
    publish,
)
from tests.speech_fixtures import clips
from tests.test_worker_process import wait_for, worker_process
from tests.voicemail_helpers import KOREAN_FLOW, LINE, telephone_wav

pytestmark = pytest.mark.server

CALLBACK_LINE = "+493012345679"
PUBLIC_URL = "https://support.example.test"
"""What Twilio signs: TLS ends in front of the balancer in production (IVR_ENV=production
insists on https), while the test's balancer speaks plain HTTP on loopback."""
CALLBACK_FLOW = f"""\
name: callback-line
languages: [en]
default_language: en
numbers: ["{CALLBACK_LINE}"]
start: menu
nodes:
  menu:
    type: menu
    prompt: {{en: "Press 1 to be called back."}}
    options: {{"1": {{next: callback}}}}
    on_failure: bye
  callback:
    type: callback
    prompt: {{en: "We will call you back."}}
    priority: P2
    category: network
    windows: false
    confirm_number: false
    next: bye
  bye: {{type: hangup, text: {{en: "Goodbye."}}}}
"""
VOICEMAILS = 3
CALLBACKS = 3
SECRET_KEY = "scale-out-test-secret-key-0123456789abcdef"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade", "content-length"}


class RoundRobinBalancer:
    """An HTTP load balancer on loopback, like deploy/haproxy.cfg: each request goes to the
    next backend in turn (no sticky sessions), with X-Forwarded-For and X-Forwarded-Proto."""

    def __init__(self) -> None:
        self.backends: list[str] = []
        self.served: Counter[str] = Counter()
        self._turn = itertools.count()
        self._lock = threading.Lock()
        balancer = self

        class Forward(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                balancer.forward(self)

            do_POST = do_HEAD = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def next_backend(self) -> str:
        """The backend whose turn it is (and count the request for it)."""
        with self._lock:
            backend = self.backends[next(self._turn) % len(self.backends)]
            self.served[backend] += 1
            return backend

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        """Send the request to the next backend and its answer back to the client."""
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {name: value for name, value in handler.headers.items()
                   if name.lower() not in HOP_BY_HOP}
        client = handler.client_address[0]
        earlier = handler.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{earlier}, {client}" if earlier else client
        headers["X-Forwarded-Proto"] = "http"
        backend = urlsplit(self.next_backend())
        connection = http.client.HTTPConnection(backend.hostname or "", backend.port, timeout=30)
        try:
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        handler.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Outcome:
    """What a run left behind, to compare between runs."""

    calls: int
    voicemails: int
    tickets: int
    tickets_per_voicemail: tuple[int, ...]
    transcribed: int
    callback_requests: int
    sms: int
    sms_distinct: int


@pytest.fixture
def line_app(database_url: str, redis_url: str) -> Iterator[Flask]:
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url))
    yield app
    empty_tables(app)


def place_calls(balancer_url: str, standin: StandinServer, tmp_path: Path) -> None:
    """The workload: voicemails with real Korean speech and callback requests, interleaved."""
    for n in range(max(VOICEMAILS, CALLBACKS)):
        if n < VOICEMAILS:
            wav = tmp_path / f"message{n}.wav"
            wav.write_bytes(telephone_wav(clips()[1 + n].path))  # the three shortest clips
            simulator = Simulator(balancer_url, AUTH_TOKEN, caller=f"+8210123456{n:02d}",
                                  called=LINE, account_sid=STANDIN_ACCOUNT_SID,
                                  public_base_url=PUBLIC_URL,
                                  recording_base_url=standin.url, upload_recordings=True)
            transcript = simulator.run(ScriptedCaller([f"wav:{wav}"]))
            assert not transcript.failed, transcript.failures
            assert "접수 번호는 1 0 0" in " ".join(transcript.said())
        if n < CALLBACKS:
            simulator = Simulator(balancer_url, AUTH_TOKEN, caller=f"+4915112345{n:03d}",
                                  called=CALLBACK_LINE, account_sid=STANDIN_ACCOUNT_SID,
                                  public_base_url=PUBLIC_URL)
            transcript = simulator.run(ScriptedCaller(["1"]))
            assert not transcript.failed, transcript.failures
            assert "We will call you back." in transcript.said()


def outcome(app: Flask, standin: StandinServer) -> Outcome:
    with app.extensions["ivr.sessions"]() as session:
        def count(model: type) -> int:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

        per_voicemail = session.execute(
            select(Ticket.voicemail_id, func.count()).where(Ticket.voicemail_id.is_not(None))
            .group_by(Ticket.voicemail_id)).all()
        transcribed = session.scalar(select(func.count()).select_from(Ticket).where(
            Ticket.transcription == "done"))
        messages = standin.messages()
        return Outcome(
            calls=count(Call), voicemails=count(Voicemail), tickets=count(Ticket),
            tickets_per_voicemail=tuple(sorted(n for _, n in per_voicemail)),
            transcribed=int(transcribed or 0), callback_requests=count(CallbackRequest),
            sms=len(messages), sms_distinct=len({(m.to, m.body) for m in messages}))


def job_workers(app: Flask, redis_url: str) -> set[str]:
    """The names of the workers that ran the voicemail and SMS jobs."""
    connection = Redis.from_url(redis_url)
    with app.extensions["ivr.sessions"]() as session:
        job_ids = [voicemail_job_id(i) for i in session.scalars(select(Voicemail.id))]
        job_ids += [sms_job_id(i) for i in session.scalars(select(Ticket.id))]
    jobs = Job.fetch_many(job_ids, connection=connection)
    return {str(job.worker_name) for job in jobs if job is not None}


def run_workload(app: Flask, standin: StandinServer, env: dict[str, str], tmp_path: Path,
                 webs: int, workers: int) -> tuple[Outcome, Counter[str], set[str], set[str]]:
    """Serve the line with `webs` gunicorn processes behind the balancer and `workers` workers,
    place the calls, wait for the work to finish; what was made, and who made it."""
    standin.reset()
    publish(app, KOREAN_FLOW)
    publish(app, CALLBACK_FLOW)
    balancer = RoundRobinBalancer()
    # Identical in every process: public URL (what Twilio signs), secret key, auth token
    # (gunicorn_server adds it), database and Redis. The balancer adds X-Forwarded-For.
    env = {**env, "IVR_PUBLIC_BASE_URL": PUBLIC_URL, "IVR_PROXY_HOPS": "1"}
    expected_tickets = VOICEMAILS + CALLBACKS
    try:
        with contextlib.ExitStack() as stack:
            for _ in range(webs):
                balancer.backends.append(
                    stack.enter_context(gunicorn_server(env, tmp_path, workers=1)))
            for n in range(workers):
                stack.enter_context(worker_process(env, tmp_path / f"worker-{webs}-{n}.log"))
            connection = Redis.from_url(env["IVR_REDIS_URL"])
            wait_for(lambda: len(Worker.all(connection=connection)) == workers, 60,
                     f"{workers} workers to load their models and register")
            names = {worker.name for worker in Worker.all(connection=connection)}
            place_calls(balancer.url, standin, tmp_path)

            def done() -> bool:
                now = outcome(app, standin)
                return (now.transcribed == VOICEMAILS and now.sms >= expected_tickets
                        and now.calls == VOICEMAILS + CALLBACKS)

            with contextlib.suppress(AssertionError):
                wait_for(done, 60, "every voicemail transcribed and every SMS sent")
            assert done(), (outcome(app, standin), balancer.served)
            time.sleep(1.0)  # anything done twice would show now
        return outcome(app, standin), balancer.served, names, job_workers(
            app, env["IVR_REDIS_URL"])
    finally:
        balancer.close()


def test_two_web_processes_and_two_workers_do_the_same_work_as_one_of_each(
        line_app: Flask, database_url: str, redis_url: str, standin: StandinServer,
        tmp_path: Path) -> None:
    # SMS_FROM set: without it a ticket text takes its sender from the call log, which is
    # written behind the webhook and may not be there yet when a fast worker sends the text.
    env = line_environment(database_url, redis_url, standin.url, SECRET_KEY=SECRET_KEY,
                           ENV="production", SMS_FROM=LINE, MAX_VOICEMAIL_SECONDS="90",
                           METRICS_TOKEN="scale-out-metrics-token")

    single, single_served, _, _ = run_workload(line_app, standin, env, tmp_path, 1, 1)
    empty_tables(line_app)
    Redis.from_url(redis_url).flushall()
    scaled, served, worker_names, job_worker_names = run_workload(
        line_app, standin, env, tmp_path, 2, 2)

    assert scaled == single
    assert single.calls == VOICEMAILS + CALLBACKS
    assert single.voicemails == VOICEMAILS
    assert single.tickets_per_voicemail == (1,) * VOICEMAILS  # exactly one ticket each
    assert single.tickets == VOICEMAILS + CALLBACKS  # a callback request opens a ticket too
    assert single.callback_requests == VOICEMAILS + CALLBACKS  # the voicemail asks one too
    assert single.sms == single.sms_distinct == single.tickets  # one text per ticket, no twin
    assert len(single_served) == 1
    # Both web processes answered webhooks, both workers ran jobs.
    assert len(served) == 2 and min(served.values()) > 0, served
    assert len(worker_names) == 2 and job_worker_names == worker_names, (
        worker_names, job_worker_names)
