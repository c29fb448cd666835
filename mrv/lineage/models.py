"""ORM models of the lineage store.

Four tables: ``runs`` (one pipeline execution), ``steps`` (one unit of work inside a run),
``artifacts`` (content-addressed blobs, by digest) and ``step_io`` (which artifact a step read or
wrote, under which role). Edges between steps are derived: an output of step A that is an input of
step B. The schema is owned by the Alembic migrations next to this module; a test checks that they
and these models agree.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Alembic's bookkeeping table. Not the default name: the lineage tables may share a PostgreSQL
# database with Prefect, whose own migrations use `alembic_version`.
VERSION_TABLE = "lineage_alembic_version"

# Deterministic constraint names: SQLite batch migrations and autogenerate need them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DIGEST_LENGTH = len("sha256:") + 64


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class StepStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CACHED = "cached"  # outputs reused from an earlier completed step with the same cache key


class Direction(enum.StrEnum):
    INPUT = "input"
    OUTPUT = "output"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every backend.

    SQLite has no timestamp type and returns naive values; they were written as UTC, so UTC is
    attached on the way out. Naive values are refused on the way in rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: lineage timestamps must be timezone-aware")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# JSONB on PostgreSQL (indexable, compact), plain JSON (text) elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


def _status_enum(cls: type[enum.StrEnum], name: str) -> Enum:
    # VARCHAR + CHECK rather than a native PG ENUM type: same DDL on both backends and no
    # ALTER TYPE dance in later migrations. Values (not member names) are stored.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONType, datetime: UTCDateTime()}


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(200), index=True)
    methodology_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[RunStatus] = mapped_column(_status_enum(RunStatus, "run_status"))
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    code_version: Mapped[str] = mapped_column(String(100))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    git_dirty: Mapped[bool | None]
    parameters: Mapped[dict[str, Any]]
    project_file_digest: Mapped[str | None] = mapped_column(String(DIGEST_LENGTH))


class Step(Base):
    __tablename__ = "steps"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[StepStatus] = mapped_column(_status_enum(StepStatus, "step_status"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    code_version: Mapped[str] = mapped_column(String(100))
    parameters: Mapped[dict[str, Any]]
    cache_key: Mapped[str] = mapped_column(String(128), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    # No FK: the reused step may live in a run that is later deleted; the id stays as evidence.
    reused_from_step_id: Mapped[str | None] = mapped_column(String(64))


class Artifact(Base):
    __tablename__ = "artifacts"

    digest: Mapped[str] = mapped_column(String(DIGEST_LENGTH), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(255))
    original_name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class StepIO(Base):
    __tablename__ = "step_io"
    # One artifact per (step, direction, role): a role names a slot, so two digests under the
    # same role of the same step would make `outputs[role]` ambiguous.
    __table_args__ = (UniqueConstraint("step_id", "direction", "role"),)

    step_id: Mapped[str] = mapped_column(ForeignKey("steps.id", ondelete="CASCADE"), primary_key=True)
    digest: Mapped[str] = mapped_column(ForeignKey("artifacts.digest"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(255), primary_key=True)
    direction: Mapped[Direction] = mapped_column(_status_enum(Direction, "direction"), primary_key=True)
