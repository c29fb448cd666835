"""Package facts and labels of an intake request get their own columns (they were kept under the
reserved ``_facts`` / ``_labels`` keys of ``intake_requests.checks``); ``intake_request_meters``
indexes each request's normalised meter serials and ``ix_intake_requests_report_sha256`` every
request of a report, so the double-issuance checks read only the requests they can fail on; and
``registry_state`` holds version counters the intake service caches by: ``boundaries`` is moved
by triggers on ``project_locations`` (any insert, update or delete, whoever makes it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

Self-contained on purpose (no imports from mrv.registry.models), as 0001.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_FACTS, _LABELS = '_facts', '_labels'
# column -> key in the old ``_facts`` document
_FACT_COLUMNS = {
    'manifest_sha256': 'manifest_sha256', 'period_timezone': 'period_timezone', 'meters': 'meters',
    'issuable_tco2e': 'issuable_tCO2e', 'verified_tco2e': 'verified_tCO2e', 'opinion': 'opinion',
    'report_id': 'report_id', 'statement_id': 'statement_id', 'country': 'country', 'boundary': 'boundary',
}
_LOCATION_EVENTS = ('INSERT', 'UPDATE', 'DELETE')


def _requests_table() -> sa.Table:
    return sa.table(
        'intake_requests',
        sa.column('id', sa.String), sa.column('checks', _JSON), sa.column('labels', _JSON), sa.column('meters', _JSON),
        sa.column('manifest_sha256', sa.String), sa.column('period_timezone', sa.String), sa.column('issuable_tco2e', sa.BigInteger),
        sa.column('verified_tco2e', sa.BigInteger), sa.column('opinion', sa.String), sa.column('report_id', sa.Text),
        sa.column('statement_id', sa.Text), sa.column('country', sa.String), sa.column('boundary', sa.Text),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any, limit: int | None = None) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def upgrade() -> None:
    with op.batch_alter_table('intake_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('manifest_sha256', sa.String(length=71), nullable=True))
        batch_op.add_column(sa.Column('period_timezone', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('meters', _JSON, nullable=True))
        batch_op.add_column(sa.Column('issuable_tco2e', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('verified_tco2e', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('opinion', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('report_id', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('statement_id', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('country', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('boundary', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('labels', _JSON, nullable=True))

    # Move the facts and labels out of the checks document.
    bind = op.get_bind()
    requests = _requests_table()
    for rid, checks in bind.execute(sa.select(requests.c.id, requests.c.checks)).all():
        if isinstance(checks, str):
            checks = json.loads(checks)
        if not isinstance(checks, dict) or not ({_FACTS, _LABELS} & set(checks)):
            continue
        facts = checks.get(_FACTS) if isinstance(checks.get(_FACTS), dict) else {}
        labels = checks.get(_LABELS)
        meters = facts.get('meters')
        values: dict[str, Any] = {
            'checks': {k: v for k, v in checks.items() if k not in (_FACTS, _LABELS)},
            'labels': [str(x) for x in labels] if isinstance(labels, list) else [],
            'meters': [{'id': str(m.get('id')), 'serial': str(m.get('serial'))} for m in meters if isinstance(m, dict)]
            if isinstance(meters, list) else None,
            'manifest_sha256': _str(facts.get('manifest_sha256'), 71),
            'period_timezone': _str(facts.get('period_timezone'), 64),
            'issuable_tco2e': _int(facts.get('issuable_tCO2e')),
            'verified_tco2e': _int(facts.get('verified_tCO2e')),
            'opinion': _str(facts.get('opinion'), 32),
            'report_id': _str(facts.get('report_id')),
            'statement_id': _str(facts.get('statement_id')),
            'country': _str(facts.get('country'), 100),
            'boundary': _str(facts.get('boundary')),
        }
        bind.execute(requests.update().where(requests.c.id == rid).values(**values))

    with op.batch_alter_table('intake_requests', schema=None) as batch_op:
        batch_op.create_index('ix_intake_requests_report_sha256', ['report_sha256'], unique=False)
    op.create_table('intake_request_meters',
    sa.Column('serial', sa.Text(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['intake_requests.id'], name=op.f('fk_intake_request_meters_request_id_intake_requests'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('serial', 'request_id', name=op.f('pk_intake_request_meters'))
    )
    with op.batch_alter_table('intake_request_meters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intake_request_meters_request_id'), ['request_id'], unique=False)
    meters_table = sa.table('intake_request_meters', sa.column('serial', sa.Text), sa.column('request_id', sa.String))
    ids = sa.table('intake_requests', sa.column('id', sa.String), sa.column('device_ids', _JSON))
    rows = []
    for rid, device_ids in bind.execute(sa.select(ids.c.id, ids.c.device_ids)).all():
        if isinstance(device_ids, str):
            device_ids = json.loads(device_ids)
        # as mrv.registry.checks.norm_serial compares them: trimmed, case-folded
        rows += [{'serial': serial, 'request_id': rid} for serial in sorted({str(d).strip().casefold() for d in device_ids or ()})]
    if rows:
        bind.execute(meters_table.insert(), rows)

    op.create_table('registry_state',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_registry_state'))
    )
    op.execute("INSERT INTO registry_state (name, version) VALUES ('boundaries', 1)")
    if bind.dialect.name == 'postgresql':
        op.execute(
            "CREATE FUNCTION registry_bump_boundaries() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN UPDATE registry_state SET version = version + 1 WHERE name = 'boundaries'; RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER project_locations_bump_boundaries AFTER INSERT OR UPDATE OR DELETE ON project_locations "
            "FOR EACH STATEMENT EXECUTE FUNCTION registry_bump_boundaries()"
        )
    else:
        for event in _LOCATION_EVENTS:
            op.execute(
                f"CREATE TRIGGER project_locations_bump_boundaries_{event.lower()} AFTER {event} ON project_locations "
                "BEGIN UPDATE registry_state SET version = version + 1 WHERE name = 'boundaries'; END"
            )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS project_locations_bump_boundaries ON project_locations")
        op.execute("DROP FUNCTION IF EXISTS registry_bump_boundaries()")
    else:
        for event in _LOCATION_EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS project_locations_bump_boundaries_{event.lower()}")
    op.drop_table('registry_state')
    with op.batch_alter_table('intake_request_meters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intake_request_meters_request_id'))
    op.drop_table('intake_request_meters')
    with op.batch_alter_table('intake_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_intake_requests_report_sha256')

    # Put the facts and labels back under their reserved keys of the checks document.
    requests = _requests_table()
    rows = bind.execute(sa.select(requests)).mappings().all()
    for row in rows:
        checks = row['checks']
        if isinstance(checks, str):
            checks = json.loads(checks)
        checks = dict(checks or {})
        facts = {key: row[col] for col, key in _FACT_COLUMNS.items()}
        if any(v is not None for v in facts.values()):
            facts['meters'] = facts['meters'] or []
            checks[_FACTS] = facts
        checks[_LABELS] = list(row['labels'] or [])
        bind.execute(requests.update().where(requests.c.id == row['id']).values(checks=checks))

    with op.batch_alter_table('intake_requests', schema=None) as batch_op:
        for col in ('labels', 'boundary', 'country', 'statement_id', 'report_id', 'opinion', 'verified_tco2e',
                    'issuable_tco2e', 'meters', 'period_timezone', 'manifest_sha256'):
            batch_op.drop_column(col)
