"""Alembic environment of the registry store.

Configured in code by :func:`mrv.registry.db.alembic_config`: no ``alembic.ini`` is read. The
caller normally hands over an open connection (``config.attributes["connection"]``) inside its
own transaction; otherwise the URL in ``config.attributes["url"]`` is used (developer commands
such as ``revision --autogenerate``).
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine

from mrv.registry.models import VERSION_TABLE, Base

config = context.config
target_metadata = Base.metadata
_OWN_TABLES = frozenset(target_metadata.tables)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # The database may be shared (lineage store, Prefect): autogenerate must never propose dropping
    # tables that are not ours.
    if type_ == "table":
        return name in _OWN_TABLES
    return True


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        compare_type=True,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds tables
        **kwargs,
    )


def run_offline() -> None:
    _configure(url=config.attributes["url"], literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.attributes["url"])
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
