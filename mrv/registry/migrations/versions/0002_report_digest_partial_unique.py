"""A report may be re-submitted once every earlier request with its digest was ``checks_failed``
or ``rejected``: the unique constraint on ``intake_requests.report_sha256`` becomes a partial
unique index over the requests that count for double issuance.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Self-contained on purpose (no imports from mrv.registry.models), as 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = 'uq_intake_requests_report_sha256_counted'
_COUNTED = sa.text("status NOT IN ('checks_failed', 'rejected')")


def upgrade() -> None:
    # Batch mode: SQLite cannot drop a constraint in place (the table is copied); PostgreSQL alters it.
    with op.batch_alter_table('intake_requests', schema=None) as batch_op:
        batch_op.drop_constraint('uq_intake_requests_report_sha256', type_='unique')
        batch_op.create_index(_INDEX, ['report_sha256'], unique=True, postgresql_where=_COUNTED, sqlite_where=_COUNTED)


def downgrade() -> None:
    # Fails (as it should) when a report has several requests: the old schema cannot hold them.
    with op.batch_alter_table('intake_requests', schema=None) as batch_op:
        batch_op.drop_index(_INDEX)
        batch_op.create_unique_constraint('uq_intake_requests_report_sha256', ['report_sha256'])
