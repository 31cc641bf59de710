"""The load balancers' probes: /healthz (alive) and /readyz (database, Redis, speech models)."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import app_config, empty_tables


def test_healthz_is_ok_without_touching_anything(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ok_with_the_database_and_redis(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "ok" and body["failed"] == []
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"] == "ok"
    models = body["checks"]["speech_models"]
    assert models["status"] in {"ok", "partial", "missing"}
    assert set(models) == {"status", "present", "missing"}


def test_readyz_is_503_and_names_redis_when_it_does_not_answer(database_url: str) -> None:
    from ivr import create_app

    app: Flask = create_app(app_config(database_url, REDIS_URL="redis://127.0.0.1:1/0"))
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        body = response.get_json()
        assert body["status"] == "unavailable" and body["failed"] == ["redis"]
        assert body["checks"]["database"] == "ok" and body["checks"]["redis"] == "failed"
        text = response.get_data(as_text=True)
        assert "127.0.0.1:1" not in text and "postgres" not in text  # no URLs or secrets
    finally:
        empty_tables(app)


def test_readyz_without_redis_reports_it_not_configured(database_url: str) -> None:
    from ivr import create_app

    app = create_app(app_config(database_url))
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 200
        assert response.get_json()["checks"]["redis"] == "not configured"
    finally:
        empty_tables(app)
