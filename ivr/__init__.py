"""The web app: Twilio voice webhooks, the agent console, admin pages, JSON API and CLI."""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration, database, signature checking and the blueprints."""
    app = Flask(__name__, instance_path=os.environ.get("IVR_INSTANCE_PATH") or None)
    from ivr import config, db, signature, voice
    from ivr.cookies import CookieSessions

    config.load_config(app, test_config)
    app.session_interface = CookieSessions()
    logging.basicConfig(level=app.config["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The twilio library logs every REST request's URL and headers at INFO.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    db.init_app(app)
    signature.init_app(app)
    _load_callback_rules(app)
    app.register_blueprint(voice.bp)
    _warm_flow_cache(app)
    # Everything built so far lives as long as the process: keep it out of the cyclic
    # garbage collector's full scans, which would otherwise stall a call step now and then.
    gc.freeze()
    return app


def _load_callback_rules(app: Flask) -> None:
    """Priority levels and SLA targets, and the caller directory, read once at start-up."""
    from callbacks.directory import load_directory
    from callbacks.priority import load_policy

    app.extensions["ivr.priorities"] = load_policy(app.config["PRIORITIES_FILE"])
    app.extensions["ivr.directory"] = load_directory(app.config["DIRECTORY_FILE"])


def _warm_flow_cache(app: Flask) -> None:
    """Compile published flows at start-up so no call pays for it (skipped if not migrated)."""
    from sqlalchemy.exc import SQLAlchemyError

    from callbacks.flowstore import warm_cache

    try:
        with app.extensions["ivr.sessions"]() as session:
            warm_cache(session)
    except SQLAlchemyError:
        logging.getLogger(__name__).info("flow cache not warmed: database not migrated yet")
