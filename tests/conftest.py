"""Shared fixtures: a private PostgreSQL database migrated with Alembic, the app, signed posts."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

ROOT = Path(__file__).resolve().parents[1]
DEMO_FLOW = ROOT / "flows" / "it-support.yaml"
AUTH_TOKEN = "test-auth-token-5f2a9c0e7b1d4e6f"
PUBLIC_BASE_URL = "https://support.example.test"
ADMIN_URL = os.environ.get(
    "IVR_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _psycopg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


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
    """The settings every test app gets."""
    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "REDIS_URL": os.environ.get("IVR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    }
    config.update(extra)
    return config


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """The app on the test database; every table is emptied after the test."""
    from ivr import create_app

    application = create_app(app_config(database_url))
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
