"""Shared fixtures: a private PostgreSQL database migrated with Alembic, the app, signed posts."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from redis import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from benchmarks.chaos_stack import RedisProcess, free_port, psycopg_dsn

ROOT = Path(__file__).resolve().parents[1]
DEMO_FLOW = ROOT / "flows" / "it-support.yaml"
AUTH_TOKEN = "5f2a9c0e7b1d4e6f0123456789abcdef"
"""Shaped like Twilio's auth tokens (32 hex digits), which production insists on."""
PUBLIC_BASE_URL = "https://support.example.test"
STANDIN_ACCOUNT_SID = "AC" + "7" * 32
LINE = "+493012345678"
"""The demo flow's number: callbacks and texts come from it in the desk tests."""
ADMIN_URL = os.environ.get(
    "IVR_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


_psycopg_dsn = psycopg_dsn
RedisServer = RedisProcess
"""A private redis-server on a free loopback port, that tests may stop and start again."""


REPORTS = pytest.StashKey[list[str]]()
"""Measurements a test wants in the run's output even when it passes (the chaos counts)."""


def pytest_configure(config: pytest.Config) -> None:
    config.stash[REPORTS] = []


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for report in config.stash.get(REPORTS, []):
        terminalreporter.section(report.splitlines()[0])
        terminalreporter.write_line("\n".join(report.splitlines()[1:]))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private Redis for the whole run."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The private Redis, emptied before each test (restarted if a test stopped it)."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    Redis.from_url(redis_server.url).flushall()
    yield redis_server.url


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated to head; dropped afterwards."""
    from ivr.schema import upgrade

    name = f"ivr_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_psycopg_dsn(ADMIN_URL), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        from callbacks.flowstore import clear_cache

        clear_cache()
        with psycopg.connect(_psycopg_dsn(ADMIN_URL), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_config(database_url: str, **extra: Any) -> dict[str, Any]:
    """The settings every test app gets (no Redis unless a test passes REDIS_URL)."""
    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "REDIS_URL": "",
        "CALL_LOG_FLUSH_SECONDS": 0,  # write-through, so tests read what a request logged
    }
    config.update(extra)
    return config


@pytest.fixture
def app(database_url: str, redis_url: str) -> Iterator[Flask]:
    """The app on the test database and private Redis; every table is emptied afterwards."""
    from ivr import create_app

    application = create_app(app_config(database_url, REDIS_URL=redis_url))
    yield application
    empty_tables(application)


def empty_tables(application: Flask) -> None:
    """Remove every row (and forget compiled flows, whose ids restart)."""
    from callbacks.db import Base
    from callbacks.flowstore import clear_cache

    engine = application.extensions["ivr.engine"]
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    clear_cache()


@pytest.fixture(scope="module")
def standin() -> Iterator[Any]:
    """Twilio's REST API played on loopback for a module's tests (reset by `desk_app`)."""
    from ivr.standin import StandinServer

    with StandinServer(STANDIN_ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


def line_environment(database_url: str, redis_url: str, standin_url: str,
                     **extra: str) -> dict[str, str]:
    """IVR_* settings for a web server and workers started as processes: the test database,
    Redis and the Twilio stand-in, reconciling every 2 s; `extra` adds or overrides."""
    return {
        "IVR_DATABASE_URL": database_url,
        "IVR_REDIS_URL": redis_url,
        "IVR_TWILIO_ACCOUNT_SID": STANDIN_ACCOUNT_SID,
        "IVR_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "IVR_TWILIO_API_BASE_URL": standin_url,
        "IVR_RECONCILE_SECONDS": "2",
        "IVR_HEARTBEAT_SECONDS": "1",
        **{f"IVR_{name}": value for name, value in extra.items()},
    }


@contextlib.contextmanager
def desk_app(database_url: str, redis_url: str, standin: Any, **extra: Any) -> Iterator[Flask]:
    """The app on the test database and Redis, placing calls and texts through the stand-in;
    every table is emptied afterwards."""
    from ivr import create_app

    standin.reset()
    settings = {"REDIS_URL": redis_url, "TWILIO_ACCOUNT_SID": STANDIN_ACCOUNT_SID,
                "TWILIO_API_BASE_URL": standin.url, "CALLBACK_FROM": LINE, "SMS_FROM": LINE}
    application = create_app(app_config(database_url, **{**settings, **extra}))
    try:
        yield application
    finally:
        empty_tables(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A CLI runner bound to the app."""
    return app.test_cli_runner()


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of `params` to `url`."""
    return RequestValidator(token).compute_signature(url, params)


def twilio_post(client: FlaskClient, path: str, params: dict[str, str],
                base: str = PUBLIC_BASE_URL, **kwargs: Any) -> TestResponse:
    """POST form `params` to `path`, signed as Twilio signs for the public URL."""
    headers = {"X-Twilio-Signature": sign(base + path, params)}
    return client.post(path, data=params, headers=headers, **kwargs)


def publish(app: Flask, source: str | Path = DEMO_FLOW, by: str = "test") -> Any:
    """Publish a flow (a path or YAML text) and return its version row."""
    from callbacks.flowstore import publish_flow

    if isinstance(source, Path):
        text_, filename = source.read_text(encoding="utf-8"), str(source)
    else:
        text_, filename = source, "test-flow.yaml"
    with app.extensions["ivr.sessions"]() as session:
        return publish_flow(session, text_, filename, by=by)


@contextlib.contextmanager
def gunicorn_server(env: dict[str, str], workdir: Path, workers: int = 2) -> Iterator[str]:
    """gunicorn serving `ivr:create_app()` on a free loopback port with `env` (IVR_* settings);
    yields its base URL, which is also its public URL for signatures."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    full_env = {**os.environ, "IVR_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "IVR_PUBLIC_BASE_URL": base, "IVR_LOG_LEVEL": "WARNING", **env}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = workdir / f"gunicorn-{port}.log"
    server = subprocess.Popen(
        [str(gunicorn), "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
         "ivr:create_app()"],
        env=full_env, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.post(base + "/voice", timeout=5)
                break
            except requests.RequestException:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log.read_text(errors="replace")) from None
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)
