"""Liveness and readiness probes for load balancers: /healthz and /readyz (public, no secrets)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from callbacks.queues import redis_connection
from speech.models import model_paths, model_present

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive: no database, Redis or disk is touched."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 when the database and Redis answer; 503 naming the failed checks otherwise."""
    checks: dict[str, Any] = {"database": _database(), "redis": _redis(),
                              "speech_models": _speech_models()}
    failed = [name for name in ("database", "redis") if checks[name] == "failed"]
    body = {"status": "unavailable" if failed else "ok", "failed": failed, "checks": checks}
    return jsonify(body), 503 if failed else 200


def _database() -> str:
    """'ok' when the app's engine answers SELECT 1, else 'failed' (the cause is only logged)."""
    try:
        with current_app.extensions["ivr.engine"].connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # any driver or pool error means not ready
        log.warning("readiness: the database did not answer", exc_info=True)
        return "failed"
    return "ok"


def _redis() -> str:
    """'ok' when Redis answers PING, 'not configured' without REDIS_URL, else 'failed'."""
    url = current_app.config.get("REDIS_URL") or ""
    if not url:
        return "not configured"
    try:
        redis_connection(url).ping()
    except Exception:  # connection refused, timeout, auth error: all mean not ready
        log.warning("readiness: Redis did not answer PING", exc_info=True)
        return "failed"
    return "ok"


def _speech_models() -> dict[str, Any]:
    """Which languages have a model directory on disk (reported only: the web app does not
    transcribe, so a missing model never fails readiness)."""
    paths = model_paths(current_app.config.get("SPEECH_MODELS") or {},
                        current_app.config.get("MODELS_DIR") or "")
    present = sorted(lang for lang, path in paths.items() if model_present(path))
    missing = sorted(set(paths) - set(present))
    status = "ok" if not missing else ("missing" if not present else "partial")
    return {"status": status, "present": present, "missing": missing}
