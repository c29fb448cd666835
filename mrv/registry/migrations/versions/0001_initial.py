"""Initial registry schema: CAD Trust records, intake requests, tokens, allow-lists, serial
counters and the hash-chained audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Self-contained on purpose (no imports from mrv.registry.models): a migration must keep producing
the same schema after the models move on. Constraint names follow the models' naming convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)  # UTC; the models' UTCDateTime decorates this type


def upgrade() -> None:
    op.create_table('accepted_methodologies',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('created_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accepted_methodologies'))
    )
    op.create_table('accredited_vvbs',
    sa.Column('did', sa.String(length=500), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('created_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('did', name=op.f('pk_accredited_vvbs'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('role', sa.Enum('developer', 'officer', 'public', name='role', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('created_at', _TS, nullable=False),
    sa.Column('revoked_at', _TS, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_table('audit_log',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('entry', _JSON, nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_log')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_log_hash')),
    sa.UniqueConstraint('prev_hash', name=op.f('uq_audit_log_prev_hash'))
    )
    op.create_table('project_developers',
    sa.Column('project_id', sa.String(length=200), nullable=False),
    sa.Column('did', sa.String(length=500), nullable=False),
    sa.Column('created_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'did', name=op.f('pk_project_developers'))
    )
    op.create_table('projects',
    sa.Column('warehouse_project_id', sa.String(length=64), nullable=False),
    sa.Column('current_registry', sa.Text(), nullable=True),
    sa.Column('project_id', sa.String(length=200), nullable=False),
    sa.Column('origin_project_id', sa.String(length=200), nullable=False),
    sa.Column('registry_of_origin', sa.Text(), nullable=False),
    sa.Column('program', sa.Text(), nullable=True),
    sa.Column('project_name', sa.Text(), nullable=False),
    sa.Column('project_link', sa.Text(), nullable=False),
    sa.Column('project_developer', sa.Text(), nullable=False),
    sa.Column('sector', sa.Text(), nullable=False),
    sa.Column('project_type', sa.Text(), nullable=False),
    sa.Column('project_tags', sa.Text(), nullable=True),
    sa.Column('covered_by_ndc', sa.Enum('Inside NDC', 'Outside NDC', 'Unknown', name='covered_by_ndc', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('ndc_information', sa.Text(), nullable=True),
    sa.Column('project_status', sa.Enum('Listed', 'Validated', 'Registered', 'Approved', 'Authorized', 'Completed', 'Inactive', 'Withdrawn', 'Rejected', 'De-registered', name='project_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('project_status_date', _TS, nullable=False),
    sa.Column('unit_metric', sa.Enum('tCO2e', name='unit_metric', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('methodology', sa.Text(), nullable=False),
    sa.Column('methodology2', sa.Text(), nullable=True),
    sa.Column('validation_body', sa.Text(), nullable=True),
    sa.Column('validation_date', _TS, nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', _TS, nullable=False),
    sa.Column('updated_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('warehouse_project_id', name=op.f('pk_projects')),
    sa.UniqueConstraint('project_id', name=op.f('uq_projects_project_id'))
    )
    op.create_table('serial_counters',
    sa.Column('registry_code', sa.String(length=32), nullable=False),
    sa.Column('vintage_year', sa.Integer(), nullable=False),
    sa.Column('next_serial', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('next_serial >= 1', name=op.f('ck_serial_counters_next_serial_positive')),
    sa.PrimaryKeyConstraint('registry_code', 'vintage_year', name=op.f('pk_serial_counters'))
    )
    op.create_table('co_benefits',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('warehouse_project_id', sa.String(length=64), nullable=False),
    sa.Column('cobenefit', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['warehouse_project_id'], ['projects.warehouse_project_id'], name=op.f('fk_co_benefits_warehouse_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_co_benefits'))
    )
    with op.batch_alter_table('co_benefits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_co_benefits_warehouse_project_id'), ['warehouse_project_id'], unique=False)

    op.create_table('estimations',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('warehouse_project_id', sa.String(length=64), nullable=False),
    sa.Column('crediting_period_start', _TS, nullable=False),
    sa.Column('crediting_period_end', _TS, nullable=False),
    sa.Column('unit_count', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['warehouse_project_id'], ['projects.warehouse_project_id'], name=op.f('fk_estimations_warehouse_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_estimations'))
    )
    with op.batch_alter_table('estimations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_estimations_warehouse_project_id'), ['warehouse_project_id'], unique=False)

    op.create_table('issuances',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('warehouse_project_id', sa.String(length=64), nullable=False),
    sa.Column('start_date', _TS, nullable=False),
    sa.Column('end_date', _TS, nullable=False),
    sa.Column('verification_approach', sa.Text(), nullable=False),
    sa.Column('verification_body', sa.Text(), nullable=False),
    sa.Column('verification_report_date', _TS, nullable=False),
    sa.ForeignKeyConstraint(['warehouse_project_id'], ['projects.warehouse_project_id'], name=op.f('fk_issuances_warehouse_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_issuances'))
    )
    with op.batch_alter_table('issuances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_issuances_warehouse_project_id'), ['warehouse_project_id'], unique=False)

    op.create_table('labels',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('warehouse_project_id', sa.String(length=64), nullable=False),
    sa.Column('label', sa.Text(), nullable=False),
    sa.Column('label_type', sa.Enum('Endorsement', 'Letter of Qualification', 'Certification', name='label_type', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('crediting_period_start_date', _TS, nullable=False),
    sa.Column('crediting_period_end_date', _TS, nullable=False),
    sa.Column('validity_period_start_date', _TS, nullable=False),
    sa.Column('validity_period_end_date', _TS, nullable=False),
    sa.Column('unit_quantity', sa.BigInteger(), nullable=False),
    sa.Column('label_link', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['warehouse_project_id'], ['projects.warehouse_project_id'], name=op.f('fk_labels_warehouse_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_labels'))
    )
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_labels_warehouse_project_id'), ['warehouse_project_id'], unique=False)

    op.create_table('project_locations',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('warehouse_project_id', sa.String(length=64), nullable=False),
    sa.Column('country', sa.String(length=100), nullable=False),
    sa.Column('in_country_region', sa.Text(), nullable=True),
    sa.Column('geographic_identifier', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['warehouse_project_id'], ['projects.warehouse_project_id'], name=op.f('fk_project_locations_warehouse_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_locations'))
    )
    with op.batch_alter_table('project_locations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_locations_warehouse_project_id'), ['warehouse_project_id'], unique=False)

    op.create_table('intake_requests',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('token_id', sa.String(length=32), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('request_digest', sa.String(length=71), nullable=False),
    sa.Column('project_id', sa.String(length=200), nullable=False),
    sa.Column('methodology_id', sa.String(length=100), nullable=False),
    sa.Column('developer_did', sa.String(length=500), nullable=False),
    sa.Column('vvb_did', sa.String(length=500), nullable=False),
    sa.Column('report_sha256', sa.String(length=71), nullable=False),
    sa.Column('merkle_root', sa.String(length=71), nullable=False),
    sa.Column('monitoring_period_start', _TS, nullable=False),
    sa.Column('monitoring_period_end', _TS, nullable=False),
    sa.Column('device_ids', _JSON, nullable=False),
    sa.Column('requested_quantity', sa.BigInteger(), nullable=False),
    sa.Column('vintage_year', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('received', 'checks_passed', 'checks_failed', 'approved', 'issued', 'rejected', name='request_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('checks', _JSON, nullable=False),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('issuance_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', _TS, nullable=False),
    sa.Column('updated_at', _TS, nullable=False),
    sa.CheckConstraint('monitoring_period_end >= monitoring_period_start', name=op.f('ck_intake_requests_monitoring_period_ordered')),
    sa.CheckConstraint('requested_quantity > 0', name=op.f('ck_intake_requests_requested_quantity_positive')),
    sa.ForeignKeyConstraint(['issuance_id'], ['issuances.id'], name=op.f('fk_intake_requests_issuance_id_issuances')),
    sa.ForeignKeyConstraint(['token_id'], ['api_tokens.id'], name=op.f('fk_intake_requests_token_id_api_tokens')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intake_requests')),
    sa.UniqueConstraint('report_sha256', name=op.f('uq_intake_requests_report_sha256')),
    sa.UniqueConstraint('token_id', 'idempotency_key', name=op.f('uq_intake_requests_token_id_idempotency_key'))
    )
    with op.batch_alter_table('intake_requests', schema=None) as batch_op:
        batch_op.create_index('ix_intake_requests_project_period', ['project_id', 'monitoring_period_start', 'monitoring_period_end'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_requests_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_requests_token_id'), ['token_id'], unique=False)

    op.create_table('units',
    sa.Column('warehouse_unit_id', sa.String(length=64), nullable=False),
    sa.Column('issuance_id', sa.String(length=64), nullable=False),
    sa.Column('project_location_id', sa.String(length=64), nullable=True),
    sa.Column('unit_owner', sa.Text(), nullable=True),
    sa.Column('country_jurisdiction_of_owner', sa.String(length=100), nullable=False),
    sa.Column('in_country_jurisdiction_of_owner', sa.Text(), nullable=True),
    sa.Column('unit_block_start', sa.String(length=200), nullable=False),
    sa.Column('unit_block_end', sa.String(length=200), nullable=False),
    sa.Column('unit_count', sa.BigInteger(), nullable=False),
    sa.Column('vintage_year', sa.Integer(), nullable=False),
    sa.Column('unit_type', sa.Enum('Avoidance', 'Reduction - nature', 'Reduction - technical', 'Removal - nature', 'Removal - technical', 'Not Determined', name='unit_type', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('marketplace', sa.Text(), nullable=True),
    sa.Column('marketplace_link', sa.Text(), nullable=True),
    sa.Column('marketplace_identifier', sa.Text(), nullable=True),
    sa.Column('unit_tags', sa.Text(), nullable=True),
    sa.Column('unit_status', sa.Enum('Held', 'Retired', 'Cancelled', 'Expired', 'Inactive', 'Buffer', 'Exported', 'Rejected', 'Pending Export', name='unit_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('unit_status_reason', sa.Text(), nullable=True),
    sa.Column('unit_registry_link', sa.Text(), nullable=False),
    sa.Column('corresponding_adjustment_declaration', sa.Enum('Committed', 'Not Required', 'Unknown', name='ca_declaration', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('corresponding_adjustment_status', sa.Enum('Not Applicable', 'Not Started', 'Pending', 'Completed', name='ca_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('serial_registry', sa.String(length=32), nullable=False),
    sa.Column('serial_first', sa.BigInteger(), nullable=False),
    sa.Column('serial_last', sa.BigInteger(), nullable=False),
    sa.Column('created_at', _TS, nullable=False),
    sa.CheckConstraint('serial_last - serial_first + 1 = unit_count', name=op.f('ck_units_serial_range_matches_count')),
    sa.CheckConstraint('unit_count >= 1', name=op.f('ck_units_unit_count_positive')),
    sa.ForeignKeyConstraint(['issuance_id'], ['issuances.id'], name=op.f('fk_units_issuance_id_issuances')),
    sa.PrimaryKeyConstraint('warehouse_unit_id', name=op.f('pk_units')),
    sa.UniqueConstraint('serial_registry', 'vintage_year', 'serial_first', name=op.f('uq_units_serial_registry_vintage_year_serial_first')),
    sa.UniqueConstraint('unit_block_end', name=op.f('uq_units_unit_block_end')),
    sa.UniqueConstraint('unit_block_start', name=op.f('uq_units_unit_block_start'))
    )
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_units_issuance_id'), ['issuance_id'], unique=False)
        batch_op.create_index('ix_units_serial_range', ['serial_registry', 'vintage_year', 'serial_first', 'serial_last'], unique=False)

    op.create_table('unit_labels',
    sa.Column('warehouse_unit_id', sa.String(length=64), nullable=False),
    sa.Column('label_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['label_id'], ['labels.id'], name=op.f('fk_unit_labels_label_id_labels'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['warehouse_unit_id'], ['units.warehouse_unit_id'], name=op.f('fk_unit_labels_warehouse_unit_id_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('warehouse_unit_id', 'label_id', name=op.f('pk_unit_labels'))
    )
    with op.batch_alter_table('unit_labels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unit_labels_label_id'), ['label_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('unit_labels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unit_labels_label_id'))

    op.drop_table('unit_labels')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_index('ix_units_serial_range')
        batch_op.drop_index(batch_op.f('ix_units_issuance_id'))

    op.drop_table('units')
    with op.batch_alter_table('intake_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intake_requests_token_id'))
        batch_op.drop_index(batch_op.f('ix_intake_requests_status'))
        batch_op.drop_index('ix_intake_requests_project_period')

    op.drop_table('intake_requests')
    with op.batch_alter_table('project_locations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_locations_warehouse_project_id'))

    op.drop_table('project_locations')
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_labels_warehouse_project_id'))

    op.drop_table('labels')
    with op.batch_alter_table('issuances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_issuances_warehouse_project_id'))

    op.drop_table('issuances')
    with op.batch_alter_table('estimations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_estimations_warehouse_project_id'))

    op.drop_table('estimations')
    with op.batch_alter_table('co_benefits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_co_benefits_warehouse_project_id'))

    op.drop_table('co_benefits')
    op.drop_table('serial_counters')
    op.drop_table('projects')
    op.drop_table('project_developers')
    op.drop_table('audit_log')
    op.drop_table('api_tokens')
    op.drop_table('accredited_vvbs')
    op.drop_table('accepted_methodologies')
