"""ORM models of the registry store.

Two groups of tables:

- CAD Trust records (``projects``, ``project_locations``, ``issuances``, ``units``, ``labels``,
  ``unit_labels``, ``estimations``, ``co_benefits``). Each CADT field is one column, named by the
  snake_case of the CADT name (:func:`column_name`: ``coveredByNDC`` -> ``covered_by_ndc``), so
  export and import are mechanical. Picklists are VARCHAR + CHECK of the CADT values.
- Intake bookkeeping (``intake_requests``, ``api_tokens``, ``accredited_vvbs``,
  ``project_developers``, ``accepted_methodologies``, ``serial_counters``, ``audit_log``).

The schema is owned by the Alembic migrations next to this module; a test checks that they and
these models agree. Table names do not collide with the lineage store's or Prefect's, so all
three may share one PostgreSQL database.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mrv.lineage.models import UTCDateTime
from mrv.registry.cadt import (
    CorrespondingAdjustmentDeclaration,
    CorrespondingAdjustmentStatus,
    CoveredByNDC,
    LabelType,
    ProjectStatus,
    UnitMetric,
    UnitStatus,
    UnitType,
)

# Not Alembic's default name: the registry may share a database with the lineage store and Prefect.
VERSION_TABLE = "registry_alembic_version"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DIGEST_LENGTH = len("sha256:") + 64
GENESIS_HASH = "0" * 64  # prev_hash of the first audit entry


def column_name(cadt_field: str) -> str:
    """The column of a CADT field: snake_case, acronyms kept whole (``coveredByNDC`` -> ``covered_by_ndc``)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cadt_field).lower()


class RequestStatus(enum.StrEnum):
    RECEIVED = "received"
    CHECKS_PASSED = "checks_passed"
    CHECKS_FAILED = "checks_failed"
    APPROVED = "approved"
    ISSUED = "issued"
    REJECTED = "rejected"


class Role(enum.StrEnum):
    DEVELOPER = "developer"  # submits requests, reads its own
    OFFICER = "officer"  # reviews, approves, rejects
    PUBLIC = "public"  # reads projects, issuances, units


def _enum(cls: type[enum.StrEnum], name: str, length: int = 32) -> Enum:
    # VARCHAR + CHECK (not a native PG ENUM): same DDL on both backends, values stored verbatim.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONType, list[str]: JSONType, datetime: UTCDateTime()}


# --------------------------------------------------------------------------- CAD Trust records


class Project(Base):
    __tablename__ = "projects"

    warehouse_project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    current_registry: Mapped[str | None] = mapped_column(Text)
    project_id: Mapped[str] = mapped_column(String(200), unique=True)  # our id, e.g. "PRJ-1"
    origin_project_id: Mapped[str] = mapped_column(String(200))
    registry_of_origin: Mapped[str] = mapped_column(Text)
    program: Mapped[str | None] = mapped_column(Text)
    project_name: Mapped[str] = mapped_column(Text)
    project_link: Mapped[str] = mapped_column(Text)
    project_developer: Mapped[str] = mapped_column(Text)
    sector: Mapped[str] = mapped_column(Text)
    project_type: Mapped[str] = mapped_column(Text)
    project_tags: Mapped[str | None] = mapped_column(Text)
    covered_by_ndc: Mapped[CoveredByNDC] = mapped_column(_enum(CoveredByNDC, "covered_by_ndc"))
    ndc_information: Mapped[str | None] = mapped_column(Text)
    project_status: Mapped[ProjectStatus] = mapped_column(_enum(ProjectStatus, "project_status"))
    project_status_date: Mapped[datetime]
    unit_metric: Mapped[UnitMetric] = mapped_column(_enum(UnitMetric, "unit_metric"))
    methodology: Mapped[str] = mapped_column(Text)
    methodology2: Mapped[str | None] = mapped_column(Text)
    validation_body: Mapped[str | None] = mapped_column(Text)
    validation_date: Mapped[datetime | None]
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ProjectLocation(Base):
    __tablename__ = "project_locations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    warehouse_project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.warehouse_project_id", ondelete="CASCADE"), index=True
    )
    country: Mapped[str] = mapped_column(String(100))
    in_country_region: Mapped[str | None] = mapped_column(Text)
    geographic_identifier: Mapped[str] = mapped_column(Text)


class Issuance(Base):
    __tablename__ = "issuances"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    warehouse_project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.warehouse_project_id", ondelete="CASCADE"), index=True
    )
    start_date: Mapped[datetime]
    end_date: Mapped[datetime]
    verification_approach: Mapped[str] = mapped_column(Text)
    verification_body: Mapped[str] = mapped_column(Text)
    verification_report_date: Mapped[datetime]


class Label(Base):
    __tablename__ = "labels"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    warehouse_project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.warehouse_project_id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(Text)
    label_type: Mapped[LabelType] = mapped_column(_enum(LabelType, "label_type"))
    crediting_period_start_date: Mapped[datetime]
    crediting_period_end_date: Mapped[datetime]
    validity_period_start_date: Mapped[datetime]
    validity_period_end_date: Mapped[datetime]
    unit_quantity: Mapped[int] = mapped_column(BigInteger)
    label_link: Mapped[str] = mapped_column(Text)


class Estimation(Base):
    __tablename__ = "estimations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    warehouse_project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.warehouse_project_id", ondelete="CASCADE"), index=True
    )
    crediting_period_start: Mapped[datetime]
    crediting_period_end: Mapped[datetime]
    unit_count: Mapped[int] = mapped_column(BigInteger)


class CoBenefit(Base):
    __tablename__ = "co_benefits"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    warehouse_project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.warehouse_project_id", ondelete="CASCADE"), index=True
    )
    cobenefit: Mapped[str] = mapped_column(Text)


class Unit(Base):
    __tablename__ = "units"
    __table_args__ = (
        CheckConstraint("unit_count >= 1", name="unit_count_positive"),
        CheckConstraint("serial_last - serial_first + 1 = unit_count", name="serial_range_matches_count"),
        # One block per (registry, vintage, first serial): a second unit row for the same serial
        # range is refused by the database, whatever the code above it does.
        UniqueConstraint("serial_registry", "vintage_year", "serial_first"),
        Index("ix_units_serial_range", "serial_registry", "vintage_year", "serial_first", "serial_last"),
    )

    warehouse_unit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The nested `issuance` of the CADT unit, by id: the unit's only link to its project.
    issuance_id: Mapped[str] = mapped_column(ForeignKey("issuances.id"), index=True)
    project_location_id: Mapped[str | None] = mapped_column(String(64))
    unit_owner: Mapped[str | None] = mapped_column(Text)
    country_jurisdiction_of_owner: Mapped[str] = mapped_column(String(100))
    in_country_jurisdiction_of_owner: Mapped[str | None] = mapped_column(Text)
    unit_block_start: Mapped[str] = mapped_column(String(200), unique=True)
    unit_block_end: Mapped[str] = mapped_column(String(200), unique=True)
    unit_count: Mapped[int] = mapped_column(BigInteger)
    vintage_year: Mapped[int] = mapped_column(Integer)
    unit_type: Mapped[UnitType] = mapped_column(_enum(UnitType, "unit_type"))
    marketplace: Mapped[str | None] = mapped_column(Text)
    marketplace_link: Mapped[str | None] = mapped_column(Text)
    marketplace_identifier: Mapped[str | None] = mapped_column(Text)
    unit_tags: Mapped[str | None] = mapped_column(Text)
    unit_status: Mapped[UnitStatus] = mapped_column(_enum(UnitStatus, "unit_status"))
    unit_status_reason: Mapped[str | None] = mapped_column(Text)
    unit_registry_link: Mapped[str] = mapped_column(Text)
    corresponding_adjustment_declaration: Mapped[CorrespondingAdjustmentDeclaration] = mapped_column(
        _enum(CorrespondingAdjustmentDeclaration, "ca_declaration")
    )
    corresponding_adjustment_status: Mapped[CorrespondingAdjustmentStatus] = mapped_column(
        _enum(CorrespondingAdjustmentStatus, "ca_status")
    )
    # Not CADT fields: the numeric serial range behind unitBlockStart/End (for overlap queries).
    serial_registry: Mapped[str] = mapped_column(String(32))
    serial_first: Mapped[int] = mapped_column(BigInteger)
    serial_last: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class UnitLabel(Base):
    """CADT units nest ``labels``: the project labels that apply to this unit block."""

    __tablename__ = "unit_labels"

    warehouse_unit_id: Mapped[str] = mapped_column(
        ForeignKey("units.warehouse_unit_id", ondelete="CASCADE"), primary_key=True
    )
    label_id: Mapped[str] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True, index=True)


# --------------------------------------------------------------------------- intake


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # sha256 hex of the whole token. Tokens are 256-bit random, so a fast unsalted hash is enough:
    # there is nothing to brute-force or look up in a rainbow table. See mrv.registry.auth.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role", length=16))
    subject: Mapped[str] = mapped_column(String(500))  # developer DID or officer name
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


# Requests that count for double issuance (mrv.registry.checks.NON_COUNTING_STATUSES are the others).
_COUNTED_STATUSES = text("status NOT IN ('checks_failed', 'rejected')")


class IntakeRequest(Base):
    __tablename__ = "intake_requests"
    __table_args__ = (
        # A retry with the same Idempotency-Key from the same token finds the original request.
        UniqueConstraint("token_id", "idempotency_key"),
        CheckConstraint("requested_quantity > 0", name="requested_quantity_positive"),
        CheckConstraint("monitoring_period_end >= monitoring_period_start", name="monitoring_period_ordered"),
        Index("ix_intake_requests_project_period", "project_id", "monitoring_period_start", "monitoring_period_end"),
        # Double-issuance guard, enforced by the DB: one *counting* request per report. Requests
        # that are checks_failed or rejected do not count (nothing was or will be issued), so the
        # same report may be submitted again after them (migration 0002).
        # Every request of a report, whatever its status (the double-issuance checks read them).
        Index("ix_intake_requests_report_sha256", "report_sha256"),
        Index(
            "uq_intake_requests_report_sha256_counted",
            "report_sha256",
            unique=True,
            postgresql_where=_COUNTED_STATUSES,
            sqlite_where=_COUNTED_STATUSES,
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[str] = mapped_column(ForeignKey("api_tokens.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_digest: Mapped[str] = mapped_column(String(DIGEST_LENGTH))  # same key, other body -> conflict
    project_id: Mapped[str] = mapped_column(String(200))  # projects.project_id (not a FK: checks report it)
    methodology_id: Mapped[str] = mapped_column(String(100))
    developer_did: Mapped[str] = mapped_column(String(500))
    vvb_did: Mapped[str] = mapped_column(String(500))
    # At most one counting request per report: see uq_intake_requests_report_sha256_counted above.
    report_sha256: Mapped[str] = mapped_column(String(DIGEST_LENGTH))
    merkle_root: Mapped[str] = mapped_column(String(DIGEST_LENGTH))
    monitoring_period_start: Mapped[datetime]
    monitoring_period_end: Mapped[datetime]
    device_ids: Mapped[list[str]]  # meter and device ids the period covers (overlap check)
    requested_quantity: Mapped[int] = mapped_column(BigInteger)
    vintage_year: Mapped[int] = mapped_column(Integer)
    status: Mapped[RequestStatus] = mapped_column(_enum(RequestStatus, "request_status", length=16), index=True)
    checks: Mapped[dict[str, Any]]  # {check name: {"passed": bool, "reason": str}}
    decision_reason: Mapped[str | None] = mapped_column(Text)
    issuance_id: Mapped[str | None] = mapped_column(ForeignKey("issuances.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # What the package said beyond the columns above (mrv.registry.checks.IntakeFacts; migration
    # 0003 moved them here from the ``_facts`` key of ``checks``). NULL when the package did not say.
    manifest_sha256: Mapped[str | None] = mapped_column(String(DIGEST_LENGTH))
    period_timezone: Mapped[str | None] = mapped_column(String(64))
    meters: Mapped[list[dict[str, str]] | None] = mapped_column(JSONType)  # [{"id": ..., "serial": ...}] from the project file
    issuable_tco2e: Mapped[int | None] = mapped_column(BigInteger)  # the signed report's
    verified_tco2e: Mapped[int | None] = mapped_column(BigInteger)  # the VVB statement's
    opinion: Mapped[str | None] = mapped_column(String(32))
    report_id: Mapped[str | None] = mapped_column(Text)
    statement_id: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str | None] = mapped_column(String(100))  # as the report states it (ISO code or name)
    boundary: Mapped[str | None] = mapped_column(Text)  # GeoJSON geometry as text (JSON numbers kept exactly)
    labels: Mapped[list[str] | None] = mapped_column(JSONType)  # CADT label texts asked for at submission


class IntakeRequestMeter(Base):
    """The meter serials of a request as the period check compares them (trimmed, case-folded):
    requests sharing a meter are found through the index, not by reading every request of an
    overlapping period (migration 0003)."""

    __tablename__ = "intake_request_meters"

    serial: Mapped[str] = mapped_column(Text, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("intake_requests.id", ondelete="CASCADE"), primary_key=True, index=True)


class AccreditedVVB(Base):
    __tablename__ = "accredited_vvbs"

    did: Mapped[str] = mapped_column(String(500), primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class ProjectDeveloper(Base):
    __tablename__ = "project_developers"

    project_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    did: Mapped[str] = mapped_column(String(500), primary_key=True)
    created_at: Mapped[datetime]


class AcceptedMethodology(Base):
    __tablename__ = "accepted_methodologies"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # e.g. "CDM:ACM0002:22.0"
    created_at: Mapped[datetime]


class SerialCounter(Base):
    """Next free serial per (registry, vintage). Its row lock serialises concurrent allocations."""

    __tablename__ = "serial_counters"
    __table_args__ = (CheckConstraint("next_serial >= 1", name="next_serial_positive"),)

    registry_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    vintage_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_serial: Mapped[int] = mapped_column(BigInteger)


class RegistryState(Base):
    """Version counters of registry state that the intake service caches. ``boundaries`` moves
    whenever a project location is inserted, changed or deleted: database triggers keep it
    (migration 0003), so no writer can forget it."""

    __tablename__ = "registry_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


BOUNDARIES_STATE = "boundaries"


class AuditLog(Base):
    """Append-only, hash-chained: ``hash = sha256(prev_hash || JCS(entry))``. See mrv.registry.audit."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entry: Mapped[dict[str, Any]]
    # Unique: two entries can never claim the same predecessor, so the chain cannot fork.
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
