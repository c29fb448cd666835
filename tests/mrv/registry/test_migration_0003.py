"""Migration 0003 on SQLite and PostgreSQL: a request stored before it (facts and labels under the
``_facts`` / ``_labels`` keys of ``checks``) comes out with them in columns, its meter serials
indexed, and the boundaries version moves whenever a project location changes; downgrading puts
the facts back."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import command

from mrv.registry import repository
from mrv.registry.db import RegistryStore, alembic_config
from mrv.registry.models import IntakeRequest, Project, ProjectLocation

NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)
BOUNDARY = '{"type":"Point","coordinates":[77.5,8.9]}'
OLD_CHECKS = {
    "report_signature": {"passed": True, "reason": "ok"},
    "_facts": {"project_id": "PRJ-1", "manifest_sha256": "sha256:" + "3" * 64, "period_timezone": "Asia/Kolkata",
               "meters": [{"id": "EXP-1", "serial": " SN-A1 "}], "meter_ids": [" SN-A1 "], "issuable_tCO2e": 120,
               "verified_tCO2e": 118, "opinion": "positive", "report_id": "urn:r", "statement_id": "urn:s",
               "country": "IN", "boundary": BOUNDARY},
    "_labels": ["CORSIA eligible"],
}


def _old_request(conn: sa.Connection) -> None:
    meta = sa.MetaData()
    tokens = sa.Table("api_tokens", meta, autoload_with=conn)
    requests = sa.Table("intake_requests", meta, autoload_with=conn)
    conn.execute(tokens.insert().values(id="tok1", token_hash="0" * 64, role="developer", subject="did:key:z6Mk", created_at=NOW))
    conn.execute(requests.insert().values(
        id="req1", token_id="tok1", idempotency_key="k1", request_digest="sha256:" + "1" * 64, project_id="PRJ-1",
        methodology_id="CDM:ACM0002:22.0", developer_did="did:key:dev", vvb_did="did:key:vvb", report_sha256="sha256:" + "a" * 64,
        merkle_root="sha256:" + "2" * 64, monitoring_period_start=NOW, monitoring_period_end=NOW, device_ids=[" SN-A1 "],
        requested_quantity=100, vintage_year=2026, status="checks_passed", checks=OLD_CHECKS, created_at=NOW, updated_at=NOW))


def test_0003_moves_facts_to_columns_indexes_meters_and_versions_boundaries(lineage_url: str) -> None:
    store = RegistryStore(lineage_url)
    try:
        with store.engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), "0002")
            _old_request(conn)
        store.migrate()
        with store.session(write=False) as s:
            req = s.get(IntakeRequest, "req1")
            assert req is not None
            assert req.checks == {"report_signature": {"passed": True, "reason": "ok"}}
            assert repository.stored_labels(req) == ["CORSIA eligible"]
            facts = repository.stored_facts(req)
            assert facts["boundary"] == BOUNDARY and facts["country"] == "IN" and facts["meters"] == [{"id": "EXP-1", "serial": " SN-A1 "}]
            assert (req.issuable_tco2e, req.verified_tco2e, req.opinion, req.period_timezone) == (120, 118, "positive", "Asia/Kolkata")
            assert s.execute(sa.text("SELECT serial, request_id FROM intake_request_meters")).all() == [("sn-a1", "req1")]
            assert repository.boundaries_version(s) == 1
        with store.session(write=True) as s:
            s.add(Project(warehouse_project_id="w1", current_registry="ODMRV", project_id="PRJ-1", origin_project_id="PRJ-1",
                          registry_of_origin="ODMRV", program=None, project_name="p", project_link="l", project_developer="d",
                          sector="s", project_type="t", project_tags=None, covered_by_ndc="Unknown", ndc_information=None,
                          project_status="Registered", project_status_date=NOW, unit_metric="tCO2e", methodology="m",
                          methodology2=None, validation_body=None, validation_date=None, description=None, created_at=NOW, updated_at=NOW))
            s.flush()
            s.add(ProjectLocation(id="loc1", warehouse_project_id="w1", country="India", in_country_region=None, geographic_identifier=BOUNDARY))
        with store.session(write=True) as s:
            assert repository.boundaries_version(s) == 2  # the trigger moved it
            s.get(ProjectLocation, "loc1").geographic_identifier = '{"type":"Point","coordinates":[10,10]}'
        with store.session(write=False) as s:
            assert repository.boundaries_version(s) == 3
            assert [(b.project_id, b.bounds) for b in repository.load_boundaries(s)] == [("PRJ-1", (10.0, 10.0, 10.0, 10.0))]

        with store.engine.begin() as conn:
            command.downgrade(alembic_config(connection=conn), "0002")
            checks = conn.execute(sa.text("SELECT checks FROM intake_requests WHERE id = 'req1'")).scalar_one()
        checks = checks if isinstance(checks, dict) else __import__("json").loads(checks)
        assert checks["_labels"] == ["CORSIA eligible"] and checks["_facts"]["boundary"] == BOUNDARY
        assert checks["_facts"]["issuable_tCO2e"] == 120 and checks["report_signature"]["passed"] is True
        store.migrate()  # and up again
    finally:
        store.dispose()
