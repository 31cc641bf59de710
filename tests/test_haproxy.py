"""deploy/haproxy.cfg as shipped, in front of two gunicorn web processes: TLS ends at HAProxy,
Twilio's signatures check out against the public https URL, requests take turns between the
processes, plain HTTP is redirected, /metrics is not served, and a web process that dies is
passed over without a caller noticing."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from callbacks.workqueue.callback_requests import CallbackRequest
from ivr.simulator import ScriptedCaller, Simulator
from ivr.standin import StandinServer
from tests.conftest import (
    AUTH_TOKEN,
    STANDIN_ACCOUNT_SID,
    app_config,
    empty_tables,
    free_port,
    gunicorn_server,
    line_environment,
    publish,
)
from tests.test_scale_out import CALLBACK_FLOW, CALLBACK_LINE, SECRET_KEY

pytestmark = pytest.mark.server

CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "haproxy.cfg"
CALLS = 6


def haproxy_or_skip() -> str:
    """The haproxy binary, or a skip when it is missing outside CI (a failure in CI)."""
    found = shutil.which("haproxy", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if found is None:
        reason = "needs haproxy (apt-get install haproxy; bin/test does it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: HAProxy's PEM (certificate and key), and the
    certificate alone for the client to trust."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    bundle = directory / "haproxy.pem"
    bundle.write_text(cert.read_text() + key.read_text())
    return bundle, cert


def rendered(https_port: int, http_port: int, backends: list[str], pem: Path) -> str:
    """The shipped configuration with this machine's addresses and certificate, nothing else."""
    text = CONFIG.read_text()
    replacements = [
        (r"bind :443 ssl crt \S+", f"bind 127.0.0.1:{https_port} ssl crt {pem}"),
        (r"bind :80\n", f"bind 127.0.0.1:{http_port}\n"),
        (r"server web1 \S+ check", f"server web1 {backends[0].removeprefix('http://')} check"),
        (r"server web2 \S+ check", f"server web2 {backends[1].removeprefix('http://')} check"),
    ]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, f"deploy/haproxy.cfg no longer has one '{pattern}'"
    return text


@contextlib.contextmanager
def haproxy(binary: str, config: Path, log: Path, port: int) -> Iterator[None]:
    """HAProxy in the foreground on `config`, its log lines in `log`, until the block ends."""
    check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    process = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "haproxy did not listen within 15 s"
            time.sleep(0.1)
        yield
    finally:
        process.send_signal(signal.SIGUSR1)  # soft stop
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def line(database_url: str, redis_url: str) -> Iterator[Flask]:
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url))
    publish(app, CALLBACK_FLOW)
    yield app
    empty_tables(app)


def call(public_url: str, session: requests.Session, n: int) -> list[str]:
    """A caller asks for a callback through the balancer; what they heard."""
    simulator = Simulator(public_url, AUTH_TOKEN, caller=f"+4915112346{n:03d}",
                          called=CALLBACK_LINE, account_sid=STANDIN_ACCOUNT_SID,
                          session=session)
    transcript = simulator.run(ScriptedCaller(["1"]))
    assert not transcript.failed, transcript.failures
    return transcript.said()


def served_by(log: Path) -> Counter[str]:
    """How many requests each web process answered, from HAProxy's request log lines."""
    return Counter(re.findall(r"\] helpdesk~? helpdesk_web/(web\d) ",
                              log.read_text(errors="replace")))


def test_the_shipped_haproxy_config_balances_two_web_processes_over_tls(
        line: Flask, database_url: str, redis_url: str, standin: StandinServer,
        tmp_path: Path) -> None:
    binary = haproxy_or_skip()
    https_port, http_port = free_port(), free_port()
    public_url = f"https://127.0.0.1:{https_port}"
    pem, cert = certificate(tmp_path)
    # Every web process: the public https URL Twilio signs, one proxy hop in front.
    env = line_environment(database_url, redis_url, standin.url, SECRET_KEY=SECRET_KEY,
                           ENV="production", SMS_FROM=CALLBACK_LINE, METRICS_PRIVATE="true",
                           PUBLIC_BASE_URL=public_url, PROXY_HOPS="1")
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would win over the session's own setting
    session.verify = str(cert)  # the client trusts HAProxy's certificate, nothing else
    log = tmp_path / "haproxy.log"
    with contextlib.ExitStack() as stack, contextlib.ExitStack() as second:
        backends = [stack.enter_context(gunicorn_server(env, tmp_path, workers=1)),
                    second.enter_context(gunicorn_server(env, tmp_path, workers=1))]
        config = tmp_path / "haproxy.cfg"
        config.write_text(rendered(https_port, http_port, backends, pem))
        stack.enter_context(haproxy(binary, config, log, https_port))

        for n in range(CALLS):
            assert "We will call you back." in call(public_url, session, n)
        forged = session.post(f"{public_url}/voice", data={"CallSid": "CA" + "9" * 32},
                              headers={"X-Twilio-Signature": "forged"}, timeout=10)
        assert forged.status_code == 403
        assert session.get(f"{public_url}/readyz", timeout=10).status_code == 200
        assert session.get(f"{public_url}/metrics", timeout=10).status_code == 404
        plain = requests.get(f"http://127.0.0.1:{http_port}/voice", allow_redirects=False,
                             timeout=10)
        assert plain.status_code == 301
        assert plain.headers["Location"] == f"https://127.0.0.1:{http_port}/voice"
        time.sleep(0.2)  # HAProxy logs a request once it is done
        before = served_by(log)

        # The second web process stops. Its next turns go to the first one at once, before
        # the health check has noticed (that takes two failed checks, 5 s apart).
        second.close()
        for n in range(CALLS, 2 * CALLS):
            assert "We will call you back." in call(public_url, session, n)
        time.sleep(0.2)
        after = served_by(log)

    assert before["web1"] > 0 and before["web2"] > 0, before  # they took turns
    assert after["web2"] == before["web2"], after  # nothing more reached the stopped one
    assert after["web1"] - before["web1"] >= 2 * CALLS, (before, after)  # 2+ steps a call
    with line.extensions["ivr.sessions"]() as db:
        assert db.scalar(select(func.count()).select_from(CallbackRequest)) == 2 * CALLS
