"""The Alembic environment shared by the lineage store and the registry store.

Each store's ``migrations/env.py`` calls :func:`run_migrations` with its own metadata and version
table. Alembic is configured in code (no ``alembic.ini``): the URL or an open connection comes in
``config.attributes``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, MetaData, create_engine


def run_migrations(*, target_metadata: MetaData, version_table: str) -> None:
    from alembic import context

    config = context.config
    own_tables = frozenset(target_metadata.tables)

    def include_name(name: str | None, type_: str, parent_names: object) -> bool:
        # The database may be shared (lineage, registry, Prefect): autogenerate must never propose
        # dropping tables that are not ours.
        if type_ == "table":
            return name in own_tables
        return True

    def configure(**kwargs: Any) -> None:
        context.configure(
            target_metadata=target_metadata,
            version_table=version_table,
            include_name=include_name,
            compare_type=True,
            render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds tables
            **kwargs,
        )

    def run(connection: Connection) -> None:
        configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()

    if context.is_offline_mode():
        configure(url=config.attributes["url"], literal_binds=True, dialect_opts={"paramstyle": "named"})
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = create_engine(config.attributes["url"])
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        engine.dispose()


def make_alembic_config(migrations_dir: Any, *, url: str | None = None, connection: Connection | None = None) -> Any:
    """An Alembic ``Config`` built in code for a migrations directory (there is no alembic.ini)."""
    from alembic.config import Config

    cfg = Config()
    # ConfigParser interpolates '%': escape it so unusual install paths survive.
    cfg.set_main_option("script_location", str(migrations_dir).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["url"] = url
    cfg.attributes["connection"] = connection
    return cfg


def single_head(cfg: Any, *, what: str, error: type[Exception]) -> str:
    """The one head revision of a migrations directory (two heads is a packaging bug)."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(cfg).get_heads()
    if len(heads) != 1:
        raise error(f"{what} migrations must have exactly one head, found {sorted(heads)}")
    return heads[0]
