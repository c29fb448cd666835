"""Engine set-up shared by the SQL-backed stores (lineage, registry): SQLite by default, PostgreSQL by URL.

SQLite: WAL (readers never block the writer), foreign keys on, a busy timeout, and write
transactions that start with ``BEGIN IMMEDIATE`` so concurrent writers queue on the lock instead
of one failing while upgrading a read lock. A connection marks a write transaction with the
execution option :data:`WRITE_OPTION`. ``sqlite_synchronous="NORMAL"`` (for stores whose content
a rerun can rebuild, like lineage) skips the fsync on every commit: in WAL mode that is still safe
against an application crash and corruption; only a power loss may undo the latest commits.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL

WRITE_OPTION = "mrv_write"  # connection execution option: this transaction writes
SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_store_engine(
    url: URL,
    *,
    label: str,
    error: type[Exception],
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL",
    **pg_options: Any,
) -> Engine:
    """An engine for ``url``; ``label`` names the store in errors, raised as ``error``."""
    if url.get_backend_name() == "sqlite":
        database = url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            parent = Path(database).expanduser().resolve().parent
            if not parent.is_dir():
                raise error(f"{label}: directory {parent} does not exist")
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", functools.partial(_sqlite_on_connect, synchronous=sqlite_synchronous))
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, **pg_options)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any, *, synchronous: str = "FULL") -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is deferred
    # and emitted lazily, which makes writers deadlock-prone under concurrency).
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        _sqlite_enable_wal(cur)
        cur.execute(f"PRAGMA synchronous={synchronous}")
    finally:
        cur.close()


def _sqlite_enable_wal(cur: Any) -> None:
    # The setting is persistent, so usually this only reads it. Switching needs an exclusive lock
    # and SQLite reports "locked" without waiting on the busy handler, so first-time openers retry.
    if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() in ("wal", "memory"):
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")
