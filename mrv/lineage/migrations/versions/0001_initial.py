"""Initial lineage schema: runs, steps, artifacts, step_io.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Self-contained on purpose (no imports from mrv.lineage.models): a migration must keep producing
the same schema after the models move on. Constraint names follow the models' naming convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)
_DIGEST = sa.String(length=71)  # "sha256:" + 64 hex


def _one_of(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=name)


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("digest", _DIGEST, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=255), nullable=False),
        sa.Column("original_name", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_artifacts"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=200), nullable=False),
        sa.Column("methodology_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("code_version", sa.String(length=100), nullable=False),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.Column("git_dirty", sa.Boolean(), nullable=True),
        sa.Column("parameters", _JSON, nullable=False),
        sa.Column("project_file_digest", _DIGEST, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        _one_of("status", ("running", "completed", "failed"), "ck_runs_run_status"),
    )
    op.create_index("ix_runs_project_id", "runs", ["project_id"])
    op.create_index("ix_runs_started_at", "runs", ["started_at"])

    op.create_table(
        "steps",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("code_version", sa.String(length=100), nullable=False),
        sa.Column("parameters", _JSON, nullable=False),
        sa.Column("cache_key", sa.String(length=128), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("reused_from_step_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_steps_run_id_runs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_steps"),
        _one_of("status", ("running", "completed", "failed", "cached"), "ck_steps_step_status"),
    )
    op.create_index("ix_steps_cache_key", "steps", ["cache_key"])
    op.create_index("ix_steps_run_id", "steps", ["run_id"])

    op.create_table(
        "step_io",
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column("digest", _DIGEST, nullable=False),
        sa.Column("role", sa.String(length=255), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["digest"], ["artifacts.digest"], name="fk_step_io_digest_artifacts"),
        sa.ForeignKeyConstraint(["step_id"], ["steps.id"], name="fk_step_io_step_id_steps", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("step_id", "digest", "role", "direction", name="pk_step_io"),
        sa.UniqueConstraint("step_id", "direction", "role", name="uq_step_io_step_id_direction_role"),
        _one_of("direction", ("input", "output"), "ck_step_io_direction"),
    )
    op.create_index("ix_step_io_digest", "step_io", ["digest"])


def downgrade() -> None:
    op.drop_table("step_io")
    op.drop_table("steps")
    op.drop_table("runs")
    op.drop_table("artifacts")
