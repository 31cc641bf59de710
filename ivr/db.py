"""The database for the web app: one engine per process, one session per request."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from callbacks.calllog_buffer import CallLogBuffer
from callbacks.db import make_engine, make_session_factory
from callbacks.flowstore import PublishedLookup

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


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


def once_more_if_dropped(view: Callable[P, R]) -> Callable[P, R]:
    """Answer a webhook once more when PostgreSQL dropped the connection under it (a restart,
    a failover, an idle timeout between the pool's check and the first statement).

    The failed transaction is rolled back and the view runs again on a fresh connection.
    Twilio's webhooks are idempotent (it may deliver each twice anyway), so a second run after
    a commit that did land changes nothing; any other error, or a second drop, propagates.
    """

    @functools.wraps(view)
    def again(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return view(*args, **kwargs)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            log.warning("database connection lost during %s; answering once more", request.path)
            get_session().rollback()
            return view(*args, **kwargs)

    return again


def answers_whatever_happens(what: str, fallback: Callable[[], Response], *,
                             quietly: tuple[type[Exception], ...] = ()
                             ) -> Callable[[Callable[[], Response]], Callable[[], Response]]:
    """A webhook that never answers with an error: run once more on a fresh connection when
    PostgreSQL dropped it (`once_more_if_dropped`); any other failure is logged, rolled back,
    and answered with `fallback()` (valid TwiML for whoever is on the line). Failures of the
    `quietly` kinds (bad input, not bugs) are logged as warnings without a traceback."""

    def decorate(view: Callable[[], Response]) -> Callable[[], Response]:
        view_again_if_dropped = once_more_if_dropped(view)

        @functools.wraps(view)
        def answered() -> Response:
            try:
                return view_again_if_dropped()
            except Exception as error:
                if isinstance(error, quietly):
                    log.warning("%s %s: %s", what, request.path, error)
                else:
                    log.exception("%s %s failed", what, request.path)
                try:
                    get_session().rollback()
                except Exception:
                    log.exception("rollback after a failed %s failed", what)
                return fallback()

        return answered

    return decorate
