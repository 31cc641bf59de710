"""The database for the web app: one engine per process, one session per request."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from callbacks.calllog_buffer import CallLogBuffer
from callbacks.db import make_engine, make_session_factory
from callbacks.flowstore import PublishedLookup


def init_app(app: Flask) -> None:
    """Create the engine for `DATABASE_URL` and close each request's session afterwards."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["ivr.engine"] = engine
    app.extensions["ivr.sessions"] = make_session_factory(engine)
    app.extensions["ivr.calllog"] = CallLogBuffer(engine, app.config["CALL_LOG_FLUSH_SECONDS"])
    app.extensions["ivr.published"] = PublishedLookup(app.config["PUBLISH_LOOKUP_SECONDS"])
    app.teardown_appcontext(_close_session)


def call_log() -> CallLogBuffer:
    """The process's buffered call log."""
    buffer: CallLogBuffer = current_app.extensions["ivr.calllog"]
    return buffer


def get_session() -> Session:
    """The current request's session, opened on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["ivr.sessions"]()
    session: Session = g.db_session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()
