"""The web app: Twilio voice webhooks, the agent console, admin pages, JSON API and CLI."""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration, database, signature checking and the blueprints."""
    from ivr.requests import HelpdeskApp

    # every call step's form parsed in one pass, its hooks' sync wrappers looked up once
    app = HelpdeskApp(__name__, instance_path=os.environ.get("IVR_INSTANCE_PATH") or None)
    from callbacks import runtime
    from callbacks.settings import Settings
    from ivr import auth, config, db, logs, security_headers
    from ivr.cookies import CookieSessions
    from ivr.voice import calls, dialer_hooks, live_hooks, queue, signature, sms_hooks

    config.load_config(app, test_config)
    app.session_interface = CookieSessions()
    logs.init_app(app)  # JSON or text lines, each tagged with its request and call
    db.init_app(app)
    # The dialer and the desk actions also run in web requests (an agent clicks Call). Tests
    # that configured the jobs' runtime themselves (speech models loaded once) keep theirs.
    if app.config.get("CONFIGURE_RUNTIME", True):
        runtime.configure(Settings.from_config(app.config))
    signature.init_app(app)
    auth.init_app(app)
    security_headers.init_app(app)
    _load_callback_rules(app)
    for webhooks in (calls.bp, queue.bp, dialer_hooks.bp, live_hooks.bp, sms_hooks.bp):
        auth.csrf.exempt(webhooks)  # Twilio signs these instead
        app.register_blueprint(webhooks)
    from ivr.console import bp as console_bp
    app.register_blueprint(console_bp)
    import ivr.api.delivery  # noqa: F401  (registers its routes on the API blueprint)
    from ivr.api.routes import bp as api_bp
    auth.csrf.exempt(api_bp)  # cookie requests send X-CSRFToken instead; bearer ones need none
    app.register_blueprint(api_bp)
    from ivr import metrics
    from ivr.admin import reports
    app.register_blueprint(reports.bp)
    metrics.init_app(app)
    from ivr.admin import bp as admin_bp
    app.register_blueprint(admin_bp)
    from ivr.health import bp as health_bp
    auth.csrf.exempt(health_bp)  # load balancers' probes: GET only, public
    app.register_blueprint(health_bp)
    _warm_flow_cache(app)
    # Everything built so far lives as long as the process: keep it out of the cyclic
    # garbage collector's full scans, which would otherwise stall a call step now and then.
    hops = int(app.config["PROXY_HOPS"])
    if hops:  # behind a load balancer: the client's address comes from X-Forwarded-For
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    gc.freeze()
    return app


def _load_callback_rules(app: Flask) -> None:
    """Priority levels and SLA targets, the caller directory, the texts to callers, the
    delivery connectors and the incidents file, read once at start-up (a broken file stops the
    start with its problems)."""
    from callbacks.delivery.settings import load_delivery
    from callbacks.directory import load_directory
    from callbacks.incidents.settings import load_incident_settings
    from callbacks.priority import load_policy
    from callbacks.tickets.texts import load_texts

    app.extensions["ivr.priorities"] = load_policy(app.config["PRIORITIES_FILE"])
    app.extensions["ivr.directory"] = load_directory(app.config["DIRECTORY_FILE"])
    app.extensions["ivr.texts"] = load_texts(app.config["TEXTS_FILE"])
    app.extensions["ivr.delivery"] = load_delivery(app.config["DELIVERY_FILE"])
    app.extensions["ivr.incidents"] = load_incident_settings(app.config["INCIDENTS_FILE"])


def _warm_flow_cache(app: Flask) -> None:
    """Compile published flows at start-up so no call pays for it (skipped if not migrated)."""
    from sqlalchemy.exc import SQLAlchemyError

    from callbacks.flowstore import warm_cache

    try:
        with app.extensions["ivr.sessions"]() as session:
            warm_cache(session)
    except SQLAlchemyError:
        logging.getLogger(__name__).info("flow cache not warmed: database not migrated yet")
