"""The registry store: engine, transactions and Alembic migrations of the registry tables.

SQLite by default (one file), PostgreSQL by URL. The schema belongs to the migrations shipped in
``mrv/registry/migrations`` (:meth:`RegistryStore.migrate`), tracked in their own version table
``registry_alembic_version`` so the registry can share a database with the lineage store and
Prefect. Nothing here calls ``create_all``.

Transactions: :meth:`RegistryStore.session` yields a Session bound to one open transaction that
commits on exit and rolls back on error. Functions such as :func:`mrv.registry.serials.allocate_block`
and :func:`mrv.registry.audit.append` take that session, so everything a request does (status
change, audit entry, serial block, units) commits or fails together. On SQLite write sessions
start with ``BEGIN IMMEDIATE``: writers queue on the database lock (``busy_timeout``) instead of
failing when a read transaction is upgraded.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mrv.migrations_env import make_alembic_config, single_head
from mrv.sqlstore import WRITE_OPTION, create_store_engine
from mrv.errors import RegistryError
from mrv.registry.models import VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_SUPPORTED_BACKENDS = ("sqlite", "postgresql")
PG_IDLE_CONNECTIONS = 10  # idle plain psycopg connections kept per process (RegistryStore.pg_connection)
_WRITE = WRITE_OPTION
# Serialises concurrent migrate() calls on one PostgreSQL server (transaction-scoped lock).
_PG_MIGRATION_LOCK = int.from_bytes(hashlib.sha256(b"open-dmrv registry migrations").digest()[:8], "big", signed=True)


def alembic_config(*, url: str | None = None, connection: Connection | None = None) -> AlembicConfig:
    """The registry's Alembic configuration, built in code (there is no alembic.ini).

    Adding a migration::

        from alembic import command
        command.revision(alembic_config(url="sqlite:///dev.db"), message="...", autogenerate=True)
    """
    return make_alembic_config(MIGRATIONS_DIR, url=url, connection=connection)


@functools.cache
def head_revision() -> str:
    """The newest registry migration shipped with this code."""
    return single_head(alembic_config(), what="registry", error=RegistryError)


def _current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_heads()
    return heads[0] if len(heads) == 1 else (None if not heads else ",".join(heads))


class RegistryStore:
    """Handle on one registry database. Cheap to create; the engine is made on first use."""

    def __init__(self, url: str) -> None:
        if not isinstance(url, str) or not url:
            raise RegistryError("registry store URL must be a non-empty string, e.g. sqlite:///registry.db")
        try:
            self._url = make_url(url)
        except Exception as exc:  # noqa: BLE001 - sqlalchemy raises ArgumentError and others
            raise RegistryError(f"invalid registry store URL: {exc}") from None
        self._backend = self._url.get_backend_name()
        if self._backend not in _SUPPORTED_BACKENDS:
            raise RegistryError(f"registry store backend {self._backend!r} is not supported ({', '.join(_SUPPORTED_BACKENDS)})")
        self._engine: Engine | None = None
        self._engine_pid = 0
        self._lock = threading.Lock()
        self._schema_ok = False
        # Plain psycopg connections for the intake hot path (PostgreSQL only, see pg_connection)
        self._pg_idle: list[Any] = []
        self._pg_pid = 0
        self._pg_lock = threading.Lock()

    # ---- plumbing

    @property
    def url(self) -> str:
        """The URL with any password hidden (safe to log)."""
        return self._url.render_as_string(hide_password=True)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend

    def __repr__(self) -> str:
        return f"RegistryStore({self.url!r})"

    def __enter__(self) -> RegistryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def dispose(self) -> None:
        """Close pooled connections (the store stays usable)."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = None
        with self._pg_lock:
            idle, self._pg_idle = self._pg_idle, []
        if self._pg_pid == os.getpid():
            for conn in idle:
                conn.close()

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is not None and self._engine_pid != os.getpid():
                self._engine.dispose(close=False)  # forked child: never reuse the parent's sockets
                self._engine = None
            if self._engine is None:
                self._engine = self._create_engine()
                self._engine_pid = os.getpid()
            return self._engine

    def _create_engine(self) -> Engine:
        return create_store_engine(self._url, label=f"registry store {self.url}", error=RegistryError, pool_size=10, max_overflow=20)

    @contextmanager
    def connection(self, *, write: bool) -> Iterator[Connection]:
        """One connection inside one transaction (commit on exit, rollback on error)."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{_WRITE: write})
                with conn.begin():
                    yield conn
        except RegistryError:
            raise
        except SQLAlchemyError as exc:
            raise RegistryError(f"registry store {self.url}: {type(exc).__name__}: {exc}") from exc

    @contextmanager
    def pg_connection(self) -> Iterator[Any]:
        """A plain psycopg connection to this PostgreSQL store (autocommit: callers send BEGIN and COMMIT; returned to the
        pool rolled back if a transaction was left open), for the intake hot path, which sends its
        statements itself (pipelined) instead of through the ORM.

        Unlike the engine's pool, checkout does not ping the server: a connection that turns out to
        be dead raises ``psycopg.OperationalError`` on first use and is dropped, and the caller
        retries through :meth:`session` (which pings). Up to :data:`PG_IDLE_CONNECTIONS` stay open
        per process; ``dispose`` closes them."""
        import psycopg

        if self._backend != "postgresql":
            raise RegistryError("pg_connection needs a PostgreSQL registry store")
        self._ensure_schema()
        conn = None
        with self._pg_lock:
            if self._pg_pid != os.getpid():  # forked child: never reuse the parent's sockets
                self._pg_idle, self._pg_pid = [], os.getpid()
            while self._pg_idle:
                candidate = self._pg_idle.pop()
                if not candidate.closed and not candidate.broken:
                    conn = candidate
                    break
        if conn is None:
            try:
                conn = psycopg.connect(**self._pg_connect_args())
            except psycopg.Error as exc:
                raise RegistryError(f"registry store {self.url}: {type(exc).__name__}: {exc}") from exc
        try:
            yield conn
        finally:
            keep = not conn.closed and not conn.broken
            if keep and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                try:
                    conn.rollback()
                except psycopg.Error:
                    keep = False
            with self._pg_lock:
                if keep and len(self._pg_idle) < PG_IDLE_CONNECTIONS and self._pg_pid == os.getpid():
                    self._pg_idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def _pg_connect_args(self) -> dict[str, Any]:
        _, kwargs = self.engine.dialect.create_connect_args(self._url)
        kwargs.pop("context", None)  # SQLAlchemy's adapters: the hot path uses psycopg's own
        return {**kwargs, "autocommit": True}  # explicit BEGIN/COMMIT (pipelined)

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """An ORM session in one transaction; checks first that the schema is at this code's head.

        Errors raised inside propagate unchanged (``IntegrityError`` included, so callers can
        tell a duplicate idempotency key from other failures); database errors of the store
        itself become :class:`RegistryError`.
        """
        self._ensure_schema()
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: write})
            with conn.begin():
                with Session(bind=conn, expire_on_commit=False, autoflush=True) as session:
                    yield session
                    session.flush()

    def _ensure_schema(self) -> None:
        if self._schema_ok:
            return
        with self.connection(write=False) as conn:
            current = _current_revision(conn)
        head = head_revision()
        if current is None:
            raise RegistryError(f"registry store {self.url} has no registry schema yet: call RegistryStore.migrate() first")
        if current != head:
            raise RegistryError(
                f"registry store {self.url} is at schema revision {current}, this code expects {head}: "
                "run RegistryStore.migrate() (or upgrade open-dmrv if a newer version migrated it)"
            )
        self._schema_ok = True

    # ---- schema

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration (``alembic upgrade head``). Idempotent."""
        from alembic import command
        from alembic.util import CommandError

        try:
            with self.connection(write=True) as conn:
                if self._backend == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
                command.upgrade(alembic_config(connection=conn), "head")
        except CommandError as exc:
            raise RegistryError(f"cannot migrate registry store {self.url}: {exc} (migrated by a newer open-dmrv?)") from exc
        self._schema_ok = False

    def current_revision(self) -> str | None:
        with self.connection(write=False) as conn:
            return _current_revision(conn)
