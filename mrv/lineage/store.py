"""The lineage store: which step read and wrote which artifact, with which code and parameters.

SQL through SQLAlchemy: SQLite by default (one file in the workspace), PostgreSQL by URL when
several workers write at once. The schema belongs to the Alembic migrations shipped inside this
package (:meth:`LineageStore.migrate`); nothing here calls ``create_all``.

Every public method runs in one transaction. On PostgreSQL concurrent writers are safe because
artifact rows are upserted (``ON CONFLICT DO NOTHING``) and status changes lock the row; on SQLite
write transactions start with ``BEGIN IMMEDIATE`` and wait (``busy_timeout``) for each other.

Nothing secret is stored: parameter keys that name secrets and passwords inside URLs are redacted
before they reach the database, and error messages show the store URL without its password.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from sqlalchemy import Connection, Engine, bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from mrv.migrations_env import make_alembic_config, single_head
from mrv.sqlstore import WRITE_OPTION, create_store_engine
from mrv.artifacts import ArtifactRef
from mrv.errors import LineageError
from mrv.lineage.codeversion import code_version
from mrv.lineage.models import VERSION_TABLE, Artifact, Direction, Run, RunStatus, Step, StepIO, StepStatus

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_SUPPORTED_BACKENDS = ("sqlite", "postgresql")
_WRITE = WRITE_OPTION
# Serialises concurrent `migrate()` calls on one PostgreSQL server (transaction-scoped lock).
_PG_MIGRATION_LOCK = int.from_bytes(hashlib.sha256(b"open-dmrv lineage migrations").digest()[:8], "big", signed=True)
_MAX_ERROR_CHARS = 64_000

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_SECRET_KEY = re.compile(
    r"(?i)(passw(or)?d|passwd|secret|token|api[-_]?key|credentials?|private[-_]?key|authorization|cookie)"
)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)([^@/\s]+)@")
REDACTED = "***redacted***"


# --------------------------------------------------------------------------- value objects


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (ArtifactRef, _ToDict)):
        return value.to_dict()
    return value


class _ToDict:
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class StepInfo(_ToDict):
    id: str
    run_id: str
    name: str
    status: StepStatus
    started_at: datetime
    ended_at: datetime | None
    code_version: str
    parameters: dict[str, Any]
    cache_key: str
    error: str | None
    reused_from_step_id: str | None


@dataclass(frozen=True, slots=True)
class RunInfo(_ToDict):
    id: str
    project_id: str
    methodology_id: str
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None
    code_version: str
    git_commit: str | None
    git_dirty: bool | None
    parameters: dict[str, Any]
    project_file_digest: str | None
    steps: tuple[StepInfo, ...]


class _StepKey(NamedTuple):
    """What link writes need of a step."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class CachedStep(_ToDict):
    """A completed step whose outputs can stand in for recomputing it (same name and cache key)."""

    step_id: str
    run_id: str
    name: str
    cache_key: str
    code_version: str
    parameters: dict[str, Any]
    ended_at: datetime
    inputs: Mapping[str, ArtifactRef]
    outputs: Mapping[str, ArtifactRef]


@dataclass(frozen=True, slots=True)
class ArtifactRow(_ToDict):
    """One artifact as seen by one step of a run."""

    step_id: str
    step_name: str
    step_status: StepStatus
    role: str
    direction: Direction
    digest: str
    size: int
    media_type: str
    original_name: str | None
    code_version: str
    step_parameters: dict[str, Any]

    @property
    def ref(self) -> ArtifactRef:
        return ArtifactRef(self.digest, self.size, self.media_type, self.original_name)


# --------------------------------------------------------------------------- alembic


def alembic_config(*, url: str | None = None, connection: Connection | None = None) -> AlembicConfig:
    """The Alembic configuration of the lineage store, built in code (there is no alembic.ini).

    Adding a migration::

        from alembic import command
        command.revision(alembic_config(url="sqlite:///dev.db"), message="...", autogenerate=True)
    """
    return make_alembic_config(MIGRATIONS_DIR, url=url, connection=connection)


@functools.cache
def head_revision() -> str:
    """The newest lineage migration shipped with this code."""
    return single_head(alembic_config(), what="lineage", error=LineageError)


def _current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    heads = ctx.get_current_heads()
    return heads[0] if len(heads) == 1 else (None if not heads else ",".join(heads))


# --------------------------------------------------------------------------- helpers


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _new_id() -> str:
    return uuid.uuid4().hex


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise LineageError(f"invalid {what} {value!r}: expected 1-64 characters of [A-Za-z0-9._:-]")
    return value


def _check_text(value: object, what: str, *, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise LineageError(f"invalid {what} {value!r}: expected a non-empty string of at most {max_len} characters")
    return value


def _check_digest(value: object) -> str:
    if not isinstance(value, str) or not _DIGEST.match(value):
        raise LineageError(f"invalid artifact digest {value!r}: expected 'sha256:' and 64 lowercase hex digits")
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def redact(value: Any) -> Any:
    """Replace values under secret-looking keys and passwords inside URLs (recursively)."""
    if isinstance(value, dict):
        return {k: (REDACTED if _SECRET_KEY.search(str(k)) and v is not None else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\1{REDACTED}@", value)
    return value


def _clean_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(parameters, Mapping):
        raise LineageError(f"parameters must be a mapping, not {type(parameters).__name__}")
    try:
        # Round trip: what is stored is exactly what reads back, and NaN (rejected by JSONB) fails here.
        plain = json.loads(json.dumps(dict(parameters), default=_json_default, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise LineageError(f"parameters cannot be stored as JSON: {exc}") from exc
    cleaned: dict[str, Any] = redact(plain)
    return cleaned


def _describe(exc: SQLAlchemyError) -> str:
    # The driver's message only: SQLAlchemy's wrapper appends the statement and its parameters.
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        msg = str(exc.orig)
    else:
        msg = str(exc)
    return msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__


def _step_info(s: Step) -> StepInfo:
    return StepInfo(
        id=s.id,
        run_id=s.run_id,
        name=s.name,
        status=StepStatus(s.status),
        started_at=s.started_at,
        ended_at=s.ended_at,
        code_version=s.code_version,
        parameters=s.parameters,
        cache_key=s.cache_key,
        error=s.error,
        reused_from_step_id=s.reused_from_step_id,
    )


def _run_info(r: Run, steps: list[Step]) -> RunInfo:
    return RunInfo(
        id=r.id,
        project_id=r.project_id,
        methodology_id=r.methodology_id,
        status=RunStatus(r.status),
        started_at=r.started_at,
        ended_at=r.ended_at,
        code_version=r.code_version,
        git_commit=r.git_commit,
        git_dirty=r.git_dirty,
        parameters=r.parameters,
        project_file_digest=r.project_file_digest,
        steps=tuple(_step_info(s) for s in steps),
    )


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class _Statements:
    """The statements every step runs, built once per backend: constructing SQLAlchemy
    expressions costs more Python time than executing them on SQLite, and a fleet run records
    hundreds of steps (SQLAlchemy caches their compiled form by structure)."""

    run_exists: Any
    insert_step: Any
    step_row: Any
    finish_step: Any
    insert_artifacts: Any
    artifact_sizes: Any
    step_links: Any
    insert_links: Any
    cached_step: Any


@functools.lru_cache(maxsize=None)
def _statements(backend: str) -> _Statements:
    ins = pg_insert if backend == "postgresql" else sqlite_insert
    return _Statements(
        run_exists=select(Run.id).where(Run.id == bindparam("run_id")),
        insert_step=insert(Step.__table__),
        step_row=select(Step.name, Step.status).where(Step.id == bindparam("step_id")).with_for_update(),
        finish_step=update(Step.__table__).where(Step.id == bindparam("b_step_id")).values(
            status=bindparam("b_status"), ended_at=bindparam("b_ended_at"), error=bindparam("b_error")
        ),
        insert_artifacts=ins(Artifact.__table__).on_conflict_do_nothing(index_elements=["digest"]),
        artifact_sizes=select(Artifact.digest, Artifact.size).where(Artifact.digest.in_(bindparam("digests", expanding=True))),
        step_links=select(StepIO.direction, StepIO.role, StepIO.digest).where(StepIO.step_id == bindparam("step_id")),
        insert_links=ins(StepIO.__table__).on_conflict_do_nothing(index_elements=["step_id", "digest", "role", "direction"]),
        cached_step=select(Step.id, Step.run_id, Step.name, Step.cache_key, Step.code_version, Step.parameters, Step.ended_at)
        .where(Step.cache_key == bindparam("cache_key"), Step.name == bindparam("name"), Step.status == StepStatus.COMPLETED)
        .order_by(Step.ended_at.desc(), Step.id.desc())
        .limit(1),
    )


class LineageStore:
    """Lineage records in a SQL database given by a SQLAlchemy URL (SQLite or PostgreSQL).

    Cheap to construct: the engine is created on first use (and again after a fork). Pickles as
    its URL, so it can travel to Prefect or Dask workers inside a task context.
    """

    def __init__(self, url: str) -> None:
        try:
            self._url: URL = make_url(url)
        except Exception:  # the parser's message would echo the URL, password included
            raise LineageError("invalid lineage store URL (not shown: it may contain a password)") from None
        backend = self._url.get_backend_name()
        if backend not in _SUPPORTED_BACKENDS:
            raise LineageError(f"unsupported lineage store backend {backend!r}; use one of {_SUPPORTED_BACKENDS}")
        self._backend: Literal["sqlite", "postgresql"] = backend  # type: ignore[assignment]
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._engine_pid: int | None = None
        self._schema_ok = False

    # ---- plumbing

    @property
    def url(self) -> str:
        """The URL with any password hidden (safe to log)."""
        return self._url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"LineageStore({self.url!r})"

    def __reduce__(self) -> tuple[type[LineageStore], tuple[str]]:
        return (type(self), (self._url.render_as_string(hide_password=False),))

    def __enter__(self) -> LineageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def dispose(self) -> None:
        """Close pooled connections (the store stays usable; a new engine is made on demand)."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is not None and self._engine_pid != os.getpid():
                # Forked child: never reuse the parent's pooled sockets or file handles.
                self._engine.dispose(close=False)
                self._engine = None
            if self._engine is None:
                self._engine = self._create_engine()
                self._engine_pid = os.getpid()
            return self._engine

    def _create_engine(self) -> Engine:
        # NORMAL: a rerun rebuilds lineage, and an fsync on every step commit was most of its cost.
        return create_store_engine(self._url, label=f"lineage store {self.url}", error=LineageError, sqlite_synchronous="NORMAL")

    @contextmanager
    def _connection(self, *, write: bool) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{_WRITE: write})
                with conn.begin():
                    yield conn
        except LineageError:
            raise
        except SQLAlchemyError as exc:
            raise LineageError(f"lineage store {self.url}: {_describe(exc)}") from exc

    @contextmanager
    def _session(self, *, write: bool) -> Iterator[Session]:
        self._ensure_schema()
        with self._connection(write=write) as conn:
            with Session(bind=conn, expire_on_commit=False, autoflush=True) as session:
                yield session
                session.flush()

    def _ensure_schema(self) -> None:
        # Once per store: refuse to write into a database that is not at this code's revision.
        if self._schema_ok:
            return
        with self._connection(write=False) as conn:
            current = _current_revision(conn)
        head = head_revision()
        if current is None:
            raise LineageError(f"lineage store {self.url} has no lineage schema yet: call LineageStore.migrate() first")
        if current != head:
            raise LineageError(
                f"lineage store {self.url} is at schema revision {current}, this code expects {head}: "
                "run LineageStore.migrate() (or upgrade open-dmrv if the database was migrated by newer code)"
            )
        self._schema_ok = True

    def _insert(self, table: Any) -> Any:
        return pg_insert(table) if self._backend == "postgresql" else sqlite_insert(table)

    # ---- schema

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration (``alembic upgrade head``). Idempotent."""
        from alembic import command
        from alembic.util import CommandError

        try:
            with self._connection(write=True) as conn:
                if self._backend == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
                command.upgrade(alembic_config(connection=conn), "head")
        except CommandError as exc:  # e.g. the database is at a revision this code does not know
            raise LineageError(
                f"cannot migrate lineage store {self.url}: {exc} (was it migrated by a newer open-dmrv?)"
            ) from exc
        self._schema_ok = False  # re-checked on next use (cheap), in case another process moved on

    def current_revision(self) -> str | None:
        with self._connection(write=False) as conn:
            return _current_revision(conn)

    # ---- runs

    def start_run(
        self,
        *,
        project_id: str,
        methodology_id: str,
        parameters: Mapping[str, Any],
        project_file_digest: str | None = None,
        run_id: str | None = None,
    ) -> str:
        """Open a run (status ``running``) and return its id (a new uuid4 hex unless given)."""
        run_id = _new_id() if run_id is None else _check_id(run_id, "run id")
        _check_text(project_id, "project id", max_len=200)
        _check_text(methodology_id, "methodology id", max_len=100)
        if project_file_digest is not None:
            _check_digest(project_file_digest)
        params = _clean_parameters(parameters)
        cv = code_version()
        try:
            with self._session(write=True) as s:
                if s.get(Run, run_id) is not None:
                    raise LineageError(f"run {run_id} already exists in the lineage store")
                s.add(
                    Run(
                        id=run_id,
                        project_id=project_id,
                        methodology_id=methodology_id,
                        status=RunStatus.RUNNING,
                        started_at=_now(),
                        ended_at=None,
                        code_version=cv.label,
                        git_commit=cv.git_commit,
                        git_dirty=cv.dirty,
                        parameters=params,
                        project_file_digest=project_file_digest,
                    )
                )
        except LineageError as exc:
            if isinstance(exc.__cause__, IntegrityError):  # lost a race for the same explicit id
                raise LineageError(f"run {run_id} already exists in the lineage store") from exc.__cause__
            raise
        return run_id

    def finish_run(self, run_id: str, *, status: Literal["completed", "failed"]) -> None:
        """Close a run. A resumed run may be finished again (e.g. failed, then completed)."""
        new = _final_status(RunStatus, status, what="run")
        with self._session(write=True) as s:
            run = s.get(Run, run_id, with_for_update=True)
            if run is None:
                raise _unknown_run(run_id)
            run.status = new
            run.ended_at = _now()

    def get_run(self, run_id: str) -> RunInfo:
        with self._session(write=False) as s:
            run = s.get(Run, run_id)
            if run is None:
                raise _unknown_run(run_id)
            steps = list(s.scalars(select(Step).where(Step.run_id == run_id).order_by(Step.started_at, Step.id)))
            return _run_info(run, steps)

    def list_steps(self, run_id: str) -> list[StepInfo]:
        """The run's steps in start order (cheaper than :meth:`get_run` for live progress)."""
        with self._session(write=False) as s:
            if s.get(Run, run_id) is None:
                raise _unknown_run(run_id)
            steps = s.scalars(select(Step).where(Step.run_id == run_id).order_by(Step.started_at, Step.id))
            return [_step_info(step) for step in steps]

    def list_runs(self, *, project_id: str | None = None, limit: int = 50) -> list[RunInfo]:
        """Newest first."""
        if not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise LineageError(f"limit must be an integer between 1 and 10000, not {limit!r}")
        with self._session(write=False) as s:
            q = select(Run).order_by(Run.started_at.desc(), Run.id.desc()).limit(limit)
            if project_id is not None:
                q = q.where(Run.project_id == project_id)
            runs = list(s.scalars(q))
            by_run: dict[str, list[Step]] = {r.id: [] for r in runs}
            if runs:
                steps = s.scalars(
                    select(Step).where(Step.run_id.in_(list(by_run))).order_by(Step.started_at, Step.id)
                )
                for step in steps:
                    by_run[step.run_id].append(step)
            return [_run_info(r, by_run[r.id]) for r in runs]

    # ---- steps

    def start_step(
        self,
        run_id: str,
        *,
        name: str,
        parameters: Mapping[str, Any],
        cache_key: str,
        inputs: Sequence[tuple[ArtifactRef, str]] = (),
    ) -> str:
        """Open a step (status ``running``) in a run and return its id. ``inputs``: ``(ref, role)``
        pairs linked as inputs in the same transaction."""
        _check_text(name, "step name", max_len=200)
        _check_text(cache_key, "cache key", max_len=128)
        params = _clean_parameters(parameters)
        checked = [self._check_io(ref, role, "input") for ref, role in inputs]
        step_id = _new_id()
        # Core statements on one connection (no ORM session): every step of a fleet run passes here.
        q = _statements(self._backend)
        with self._write() as conn:
            if conn.execute(q.run_exists, {"run_id": run_id}).first() is None:
                raise _unknown_run(run_id)
            conn.execute(
                q.insert_step,
                {
                    "id": step_id,
                    "run_id": run_id,
                    "name": name,
                    "status": StepStatus.RUNNING,
                    "started_at": _now(),
                    "ended_at": None,
                    "code_version": code_version().label,
                    "parameters": params,
                    "cache_key": cache_key,
                    "error": None,
                    "reused_from_step_id": None,
                },
            )
            self._link_all(conn, _StepKey(step_id, name), checked, fresh=True)
        return step_id

    def record_artifact(
        self, step_id: str, ref: ArtifactRef, *, role: str, direction: Literal["input", "output"]
    ) -> None:
        """Link an artifact to a running step (the artifact row is created on first sight).

        Idempotent for the same (step, digest, role, direction). The first media type and original
        name recorded for a digest are kept.
        """
        self.record_artifacts(step_id, [(ref, role, direction)])

    def record_artifacts(
        self, step_id: str, items: Sequence[tuple[ArtifactRef, str, Literal["input", "output"]]]
    ) -> None:
        """:meth:`record_artifact` for each ``(ref, role, direction)``, in one transaction (all or none)."""
        checked = [self._check_io(ref, role, direction) for ref, role, direction in items]
        if not checked:
            return
        with self._write() as conn:
            step = self._running_step(conn, step_id)
            self._link_all(conn, step, checked)

    @staticmethod
    def _check_io(ref: ArtifactRef, role: str, direction: str) -> tuple[ArtifactRef, str, Direction]:
        _check_digest(ref.digest)
        _check_text(role, "role", max_len=255)
        try:
            dir_ = Direction(direction)
        except ValueError:
            raise LineageError(f"direction must be 'input' or 'output', not {direction!r}") from None
        if not isinstance(ref.size, int) or ref.size < 0:
            raise LineageError(f"artifact {ref.digest}: invalid size {ref.size!r}")
        _check_text(ref.media_type, "media type", max_len=255)
        return ref, role, dir_

    def _step_row(self, conn: Connection, step_id: str) -> tuple[_StepKey, StepStatus]:
        row = conn.execute(_statements(self._backend).step_row, {"step_id": step_id}).first()
        if row is None:
            raise _unknown_step(step_id)
        return _StepKey(step_id, row.name), StepStatus(row.status)

    def _running_step(self, conn: Connection, step_id: str) -> _StepKey:
        step, status = self._step_row(conn, step_id)
        if status != StepStatus.RUNNING:
            raise LineageError(f"step {step_id} ({step.name}) is {status.value}: its artifacts can no longer change")
        return step

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction on a plain connection (schema checked once per store)."""
        self._ensure_schema()
        with self._connection(write=True) as conn:
            yield conn

    def _link_all(
        self, s: Session | Connection, step: _StepKey, items: Sequence[tuple[ArtifactRef, str, Direction]], *, fresh: bool = False
    ) -> None:
        """Link ``items`` to ``step`` in the open transaction: a few set-wise statements, whatever
        the number of items (a fleet run links hundreds of artifacts)."""
        if not items:
            return
        slots: dict[tuple[str, str], str] = {}
        for ref, role, dir_ in items:
            other = slots.setdefault((dir_.value, role), ref.digest)
            if other != ref.digest:
                raise LineageError(f"step {step.id} ({step.name}) already has {dir_.value} {role!r} = {other}; cannot also record {ref.digest}")
        sizes: dict[str, int] = {}
        for ref, _, _ in items:
            if sizes.setdefault(ref.digest, ref.size) != ref.size:
                raise LineageError(f"artifact {ref.digest} is given with sizes {sizes[ref.digest]} and {ref.size}: same digest, different bytes?")
        first = {}
        for ref, _, _ in items:
            first.setdefault(ref.digest, ref)
        now = _now()
        q = _statements(self._backend)
        s.execute(
            q.insert_artifacts,
            [{"digest": r.digest, "size": r.size, "media_type": r.media_type, "original_name": r.original_name, "created_at": now}
             for r in first.values()],
        )
        stored = dict(s.execute(q.artifact_sizes, {"digests": list(first)}).all())
        for digest, size in sizes.items():
            if stored.get(digest) != size:
                raise LineageError(
                    f"artifact {digest} was recorded with size {stored.get(digest)}, now {size}: same digest, different bytes?"
                )
        existing = [] if fresh else s.execute(q.step_links, {"step_id": step.id}).all()  # a step created in this transaction has no links yet
        for direction, role, digest in existing:
            key = (getattr(direction, "value", direction), role)
            if key in slots and slots[key] != digest:
                raise LineageError(
                    f"step {step.id} ({step.name}) already has {key[0]} {role!r} = {digest}; cannot also record {slots[key]}"
                )
        s.execute(
            q.insert_links,
            [{"step_id": step.id, "digest": d, "role": role, "direction": direction} for (direction, role), d in slots.items()],
        )

    def finish_step(
        self,
        step_id: str,
        *,
        status: Literal["completed", "failed"],
        error: str | None = None,
        outputs: Sequence[tuple[ArtifactRef, str]] = (),
    ) -> None:
        """Close a running step. ``error`` (failed steps) is stored with URL passwords redacted.
        ``outputs``: ``(ref, role)`` pairs linked as outputs in the same transaction."""
        new = _final_status(StepStatus, status, what="step")
        if error is not None:
            if not isinstance(error, str):
                raise LineageError(f"error must be a string, not {type(error).__name__}")
            error = redact(error)[:_MAX_ERROR_CHARS]
        checked = [self._check_io(ref, role, "output") for ref, role in outputs]
        with self._write() as conn:
            step, status = self._step_row(conn, step_id)
            if status != StepStatus.RUNNING:
                raise LineageError(f"step {step_id} ({step.name}) is already {status.value}")
            self._link_all(conn, step, checked)
            conn.execute(_statements(self._backend).finish_step, {"b_step_id": step_id, "b_status": new, "b_ended_at": _now(), "b_error": error})

    def find_cached_step(self, *, name: str, cache_key: str) -> CachedStep | None:
        """The most recently completed step with this name and cache key, with its artifacts.

        Running, failed and ``cached`` rows never qualify: only a step that really computed and
        finished stands in for recomputation (after a crash, the interrupted step is redone).
        """
        self._ensure_schema()
        with self._connection(write=False) as s:
            step = s.execute(_statements(self._backend).cached_step, {"cache_key": cache_key, "name": name}).first()
            if step is None:
                return None
            inputs, outputs = self._io_of(s, step.id)
            assert step.ended_at is not None  # completed steps always have one
            return CachedStep(
                step_id=step.id,
                run_id=step.run_id,
                name=step.name,
                cache_key=step.cache_key,
                code_version=step.code_version,
                parameters=step.parameters,
                ended_at=step.ended_at,
                inputs=inputs,
                outputs=outputs,
            )

    def record_cached_step(
        self, run_id: str, *, name: str, parameters: Mapping[str, Any], cache_key: str, reused: CachedStep
    ) -> str:
        """Record in ``run_id`` that ``name`` was satisfied by ``reused``: a ``cached`` step linking
        the same input and output artifacts. Its code version is the reused step's (the code that
        made the bytes)."""
        _check_text(name, "step name", max_len=200)
        _check_text(cache_key, "cache key", max_len=128)
        if name != reused.name or cache_key != reused.cache_key:
            raise LineageError(
                f"cached step {reused.step_id} is ({reused.name!r}, {reused.cache_key}); it cannot stand in for "
                f"({name!r}, {cache_key})"
            )
        params = _clean_parameters(parameters)
        step_id = _new_id()
        with self._session(write=True) as s:
            if s.get(Run, run_id) is None:
                raise _unknown_run(run_id)
            original = s.get(Step, reused.step_id)
            if original is None or original.status != StepStatus.COMPLETED:
                state = "missing" if original is None else original.status.value
                raise LineageError(f"cannot reuse step {reused.step_id}: it is {state}, not completed")
            now = _now()
            s.add(
                Step(
                    id=step_id,
                    run_id=run_id,
                    name=name,
                    status=StepStatus.CACHED,
                    started_at=now,
                    ended_at=now,
                    code_version=original.code_version,
                    parameters=params,
                    cache_key=cache_key,
                    error=None,
                    reused_from_step_id=original.id,
                )
            )
            s.flush()  # the step row must exist before its step_io rows (FK)
            links = s.execute(
                select(StepIO.digest, StepIO.role, StepIO.direction).where(StepIO.step_id == original.id)
            ).all()
            if links:
                s.execute(
                    insert(StepIO),
                    [{"step_id": step_id, "digest": d, "role": r, "direction": Direction(x).value} for d, r, x in links],
                )
        return step_id

    def _io_of(self, s: Session | Connection, step_id: str) -> tuple[dict[str, ArtifactRef], dict[str, ArtifactRef]]:
        rows = s.execute(
            select(StepIO.role, StepIO.direction, Artifact.digest, Artifact.size, Artifact.media_type, Artifact.original_name)
            .join(Artifact, Artifact.digest == StepIO.digest)
            .where(StepIO.step_id == step_id)
            .order_by(StepIO.role)
        ).all()
        inputs: dict[str, ArtifactRef] = {}
        outputs: dict[str, ArtifactRef] = {}
        for role, direction, digest, size, media_type, original_name in rows:
            target = inputs if Direction(direction) == Direction.INPUT else outputs
            target[role] = ArtifactRef(digest, size, media_type, original_name)
        return inputs, outputs

    # ---- reading a run

    def run_artifacts(self, run_id: str) -> list[ArtifactRow]:
        """Every artifact of every step of the run, in step order (inputs before outputs)."""
        with self._session(write=False) as s:
            if s.get(Run, run_id) is None:
                raise _unknown_run(run_id)
            rows = s.execute(
                select(StepIO.role, StepIO.direction, Artifact, Step)
                .join(Artifact, Artifact.digest == StepIO.digest)
                .join(Step, Step.id == StepIO.step_id)
                .where(Step.run_id == run_id)
                .order_by(Step.started_at, Step.id, StepIO.direction, StepIO.role)
            ).all()
            return [
                ArtifactRow(
                    step_id=step.id,
                    step_name=step.name,
                    step_status=StepStatus(step.status),
                    role=role,
                    direction=Direction(direction),
                    digest=a.digest,
                    size=a.size,
                    media_type=a.media_type,
                    original_name=a.original_name,
                    code_version=step.code_version,
                    step_parameters=step.parameters,
                )
                for role, direction, a, step in rows
            ]

    def run_graph(self, run_id: str) -> dict[str, Any]:
        """The run as a graph, JSON-serialisable.

        ``nodes``: steps (``id`` ``step:<id>``) and artifacts (``artifact:<digest>``). ``edges``:
        ``input`` (artifact -> step), ``output`` (step -> artifact) and ``derived`` (step A -> step B
        when B read an artifact A wrote).
        """
        info = self.get_run(run_id)
        rows = self.run_artifacts(run_id)
        nodes: list[dict[str, Any]] = []
        for st in info.steps:
            node = {"id": f"step:{st.id}", "kind": "step"}
            node.update({k: v for k, v in st.to_dict().items() if k not in ("id", "run_id")})
            node["step_id"] = st.id
            nodes.append(node)
        seen: set[str] = set()
        edges: list[dict[str, Any]] = []
        producers: dict[str, list[str]] = {}
        consumers: dict[str, list[str]] = {}
        for row in rows:
            art = f"artifact:{row.digest}"
            if row.digest not in seen:
                seen.add(row.digest)
                nodes.append(
                    {
                        "id": art,
                        "kind": "artifact",
                        "digest": row.digest,
                        "size": row.size,
                        "media_type": row.media_type,
                        "original_name": row.original_name,
                    }
                )
            step = f"step:{row.step_id}"
            if row.direction == Direction.INPUT:
                edges.append({"source": art, "target": step, "kind": "input", "role": row.role})
                consumers.setdefault(row.digest, []).append(step)
            else:
                edges.append({"source": step, "target": art, "kind": "output", "role": row.role})
                producers.setdefault(row.digest, []).append(step)
        derived: set[tuple[str, str, str]] = set()
        for digest, makers in producers.items():
            for a in makers:
                for b in consumers.get(digest, []):
                    if a != b:
                        derived.add((a, b, digest))
        edges.extend({"source": a, "target": b, "kind": "derived", "digest": d} for a, b, d in sorted(derived))
        run = {k: v for k, v in info.to_dict().items() if k != "steps"}
        return {"run": run, "nodes": nodes, "edges": edges}


# --------------------------------------------------------------------------- module helpers


def _final_status(cls: Any, status: object, *, what: str) -> Any:
    if status not in ("completed", "failed"):
        raise LineageError(f"a {what} finishes as 'completed' or 'failed', not {status!r}")
    return cls(status)


def _unknown_run(run_id: object) -> LineageError:
    return LineageError(f"unknown run id {run_id!r}: no such run in the lineage store")


def _unknown_step(step_id: object) -> LineageError:
    return LineageError(f"unknown step id {step_id!r}: no such step in the lineage store")
