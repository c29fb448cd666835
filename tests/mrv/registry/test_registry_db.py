"""Registry schema: Alembic head equals the ORM models, migrate is idempotent, and the database
itself enforces idempotency-key and report-digest uniqueness. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from mrv.errors import RegistryError
from mrv.registry import cadt
from mrv.registry.db import RegistryStore, alembic_config, head_revision
from mrv.registry.lifecycle import create_request
from mrv.registry.models import VERSION_TABLE, ApiToken, Base, Role, column_name


@pytest.fixture
def store(lineage_url: str) -> Iterator[RegistryStore]:
    s = RegistryStore(lineage_url)
    s.migrate()
    yield s
    s.dispose()


def _token(store: RegistryStore, token_id: str) -> None:
    with store.session() as s:
        s.add(ApiToken(id=token_id, token_hash=token_id.ljust(64, "0"), role=Role.DEVELOPER, subject="did:key:z6Mk",
                       created_at=datetime.now(timezone.utc), revoked_at=None))


def _request(s, *, token_id: str = "tok1", key: str = "k1", report: str = "a") -> object:  # noqa: ANN001
    return create_request(
        s, token_id=token_id, idempotency_key=key, request_digest="sha256:" + "1" * 64, project_id="PRJ-1",
        methodology_id="CDM:ACM0002:22.0", developer_did="did:key:dev", vvb_did="did:key:vvb",
        report_sha256="sha256:" + report * 64, merkle_root="sha256:" + "2" * 64,
        monitoring_period_start=datetime(2024, 1, 1, tzinfo=timezone.utc),
        monitoring_period_end=datetime(2024, 12, 31, tzinfo=timezone.utc),
        device_ids=["meter-1"], requested_quantity=100, vintage_year=2024,
    )


def test_migrate_twice_and_own_version_table(lineage_url: str) -> None:
    store = RegistryStore(lineage_url)
    try:
        store.migrate()
        store.migrate()  # nothing to do the second time
        assert store.current_revision() == head_revision()
        tables = set(inspect(store.engine).get_table_names())
        assert set(Base.metadata.tables) | {VERSION_TABLE} <= tables
        assert "alembic_version" not in tables  # must not collide with Prefect's or anyone's table
    finally:
        store.dispose()


def test_alembic_head_matches_orm_models(store: RegistryStore) -> None:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"registry migrations and models disagree; add a migration: {diff}"


def test_downgrade_and_upgrade_again(store: RegistryStore) -> None:
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "base")
    assert not set(Base.metadata.tables) & set(inspect(store.engine).get_table_names())
    store.migrate()
    assert store.current_revision() == head_revision()


def test_unmigrated_store_refuses_sessions(lineage_url: str) -> None:
    store = RegistryStore(lineage_url)
    try:
        with pytest.raises(RegistryError, match=r"migrate\(\)"):
            with store.session():
                pass
    finally:
        store.dispose()


def test_every_cadt_field_has_a_column() -> None:
    # 1:1 mapping: every scalar CADT field of a record is a column of its table.
    pairs = [
        (cadt.Project, "projects"), (cadt.ProjectLocation, "project_locations"), (cadt.Issuance, "issuances"),
        (cadt.Label, "labels"), (cadt.Estimation, "estimations"), (cadt.CoBenefit, "co_benefits"), (cadt.Unit, "units"),
    ]
    nested = {"projectLocations", "issuances", "labels", "estimations", "coBenefits", "issuance"}
    for model, table in pairs:
        columns = set(Base.metadata.tables[table].columns.keys())
        for field in model.model_fields:
            if field in nested:
                continue
            assert column_name(field) in columns, f"{model.__name__}.{field} has no column in {table}"
    assert column_name("coveredByNDC") == "covered_by_ndc"


def test_idempotency_key_unique_per_token(store: RegistryStore) -> None:
    _token(store, "tok1")
    _token(store, "tok2")
    with store.session() as s:
        _request(s, token_id="tok1", key="k1", report="a")
    with pytest.raises(IntegrityError):
        with store.session() as s:
            _request(s, token_id="tok1", key="k1", report="b")  # same token, same key
    with store.session() as s:
        _request(s, token_id="tok2", key="k1", report="c")  # another token may reuse the key


def test_report_sha256_unique(store: RegistryStore) -> None:
    _token(store, "tok1")
    with store.session() as s:
        _request(s, key="k1", report="a")
    with pytest.raises(IntegrityError):
        with store.session() as s:
            _request(s, key="k2", report="a")  # same report under a new key: double issuance
