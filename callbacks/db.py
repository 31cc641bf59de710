"""The SQL store: declarative base, engines, sessions and dialect-aware upserts."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql import Insert
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every table; constraint names are stable for Alembic."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def small_number(text: str, digits: int = 9) -> int | None:
    """`text` as a whole number of at most `digits` ASCII digits (fits any integer column),
    else None."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= digits else None


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout for one writer, and
    a database file only its owner may read."""
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, **kwargs)


def private_sqlite_file(url: str) -> None:
    """Create a SQLite database file (and its folder) readable by the owner only, before SQLite
    would create it with the process's umask (its -wal and -shm files take the same mode)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


RECONNECT_TRIES = 4
"""How often `first_row_autocommit` runs a statement when it keeps finding dropped connections."""


def make_claim_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for one-statement claims: autocommit connections, no per-checkout round trip.

    On PostgreSQL every connection stays in autocommit (set once, when it is opened), so a
    checkout neither switches isolation levels nor sends a pre-ping or a ROLLBACK on return;
    `first_row_autocommit` replaces a connection found dead instead. SQLite gets `make_engine`.
    """
    if url.startswith("sqlite"):
        return make_engine(url, **kwargs)
    kwargs.setdefault("isolation_level", "AUTOCOMMIT")
    kwargs.setdefault("skip_autocommit_rollback", True)
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_size", 2)
    kwargs.setdefault("max_overflow", 2)
    return make_engine(url, **kwargs)


def first_row_autocommit(engine: Engine, statement: str,
                         params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """Run one driver-level statement on a pooled autocommit connection; its first row or None.

    A connection the server dropped (a restart, an idle timeout) is discarded and the statement
    runs again on the next one (a few times: after a restart every pooled one is dead). A
    one-statement claim either committed or did nothing; one that committed just before its
    connection broke is put back by the reconciler.
    """
    dbapi_error = engine.dialect.loaded_dbapi.Error
    for tries_left in range(RECONNECT_TRIES, 0, -1):
        connection = engine.raw_connection()
        cursor = None
        try:
            cursor = connection.cursor()
            cursor.execute(statement, params)
            row = cursor.fetchone()
            cursor.close()
            return row
        except dbapi_error as error:
            gone = engine.dialect.is_disconnect(error, connection.dbapi_connection, cursor)
            if gone:
                connection.invalidate(error)
            if tries_left == 1 or not gone:
                raise DBAPIError.instance(statement, dict(params), error, dbapi_error,
                                          connection_invalidated=gone) from error
        finally:
            connection.close()
    raise AssertionError("unreachable")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine` that keep loaded objects usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def record_after_the_fact(sessions: sessionmaker[Session], write: Callable[[Session], object],
                          *, tries: int = 5, pause: float = 0.5) -> None:
    """Write down something done outside the database (a text Twilio has sent), in its own
    transaction, trying again on a fresh connection when PostgreSQL drops one.

    A job that fails here runs again and would do the outside thing twice (a second text), so
    a lost connection is given a few seconds (`tries`, `pause` growing) to come back first.
    """
    for attempt in range(1, tries + 1):
        try:
            with sessions() as session:
                write(session)
                session.commit()
            return
        except DBAPIError as error:
            if not error.connection_invalidated or attempt == tries:
                raise
            log.warning("database connection lost while recording; trying again (%s of %s)",
                        attempt + 1, tries)
            time.sleep(pause * attempt)


def insert_ignoring_duplicates(session: Session, table: Any, index_elements: list[str]) -> Insert:
    """An INSERT that does nothing when a row with the same unique key exists."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    raise NotImplementedError(f"database dialect {name!r} is not supported")
