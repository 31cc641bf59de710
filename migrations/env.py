"""Alembic environment: the project's models, the URL from IVR_DATABASE_URL or -x url=."""

from __future__ import annotations

import os

from alembic import context

from callbacks.db import make_engine
from callbacks.models import metadata

config = context.config
target_metadata = metadata


def database_url() -> str:
    """The URL to migrate: -x url=..., the alembic config, or the environment."""
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    url = url or os.environ.get("IVR_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    if not url:
        raise SystemExit("set IVR_DATABASE_URL (or pass -x url=...) to run migrations")
    return url


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = make_engine(database_url())
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
