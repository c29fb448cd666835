"""The intake hot path on PostgreSQL in plain psycopg (mrv.registry.pgfast): it writes exactly what
the ORM path writes (request row, meter serials, audit entries whose hashes the database computes),
it is the path taken, and what it does not handle (a unique violation, a dead pooled connection)
ends as before, through the ORM path."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from mrv.registry import audit
from mrv.registry.auth import create_token
from mrv.registry.db import RegistryStore
from mrv.registry.service import ApiError, IntakeService

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

_spec = importlib.util.spec_from_file_location("_svc_helpers_fastpath", Path(__file__).with_name("test_service.py"))
svc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(svc)  # type: ignore[union-attr]

chain = svc.chain


@pytest.fixture
def two_schemas(postgres_url: str) -> Iterator[tuple[str, str]]:
    """The fixture's schema and a second fresh one on the same server."""
    from sqlalchemy.engine import make_url

    admin_url = os.environ.get("MRV_TEST_POSTGRES_URL") or make_url(postgres_url).difference_update_query(["options"]).render_as_string(hide_password=False)
    admin = create_engine(admin_url)
    schema = f"mrv_test_{uuid.uuid4().hex[:16]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield postgres_url, make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _service(url: str, chain: dict[str, Any], *, developer_registered: bool = True) -> tuple[IntakeService, str, str]:
    store = RegistryStore(url)
    store.migrate()
    service = IntakeService(store=store, registry_code="TEST")
    officer = service.principal(create_token(store, role="officer", subject="officer-ana"))
    assert officer is not None
    service.add_vvb(principal=officer, did=chain["vvb"].did, name=None)
    service.add_methodology(principal=officer, methodology_id=svc.METHODOLOGY)
    if developer_registered:
        service.add_developer(principal=officer, project_id=svc.PROJECT, did=chain["dev"].did)
    return service, create_token(store, role="developer", subject=chain["dev"].did), officer.subject


def _submit(service: IntakeService, token: str, key: str, body: bytes, *, existing_lookup: bool = True) -> tuple[int, dict[str, Any]]:
    principal, existing = service.submitter(token=token, key=key)
    return service.submit(principal=principal, key=key, body=body, quantity=1, labels=["CORSIA eligible"],
                          existing=existing if existing_lookup else None)


def _stored(store: RegistryStore) -> dict[str, Any]:
    with store.connection(write=False) as conn:
        row = dict(conn.execute(text("SELECT * FROM intake_requests")).mappings().one())
        meters = sorted(conn.execute(text("SELECT serial FROM intake_request_meters")).scalars())
        entries = [r[0] for r in conn.execute(text("SELECT entry FROM audit_log ORDER BY seq"))]
    request_id = row.pop("id")
    for k in ("created_at", "updated_at", "token_id"):
        row.pop(k)
    for e in entries:
        e.pop("created")
        ev = e["event"]
        for k in ("request_id", "token_id"):
            if ev.get(k) == request_id or k == "token_id":
                ev.pop(k, None)
    return {"row": row, "meters": meters, "audit": entries}


def test_fast_path_writes_what_the_orm_path_writes(two_schemas, chain, monkeypatch):
    fast_url, orm_url = two_schemas
    fast, fast_token, _ = _service(fast_url, chain)
    orm, orm_token, _ = _service(orm_url, chain)
    status, doc = _submit(fast, fast_token, "key-00000001", chain["package"])
    assert status == 201 and doc["status"] == "checks_passed"
    monkeypatch.setattr(IntakeService, "_store_request_pg", lambda self, **kw: None)  # the ORM path
    status2, doc2 = _submit(orm, orm_token, "key-00000001", chain["package"])
    assert status2 == 201 and {k: v for k, v in doc2.items() if k != "id"} == {k: v for k, v in doc.items() if k != "id"}
    a, b = _stored(fast.store), _stored(orm.store)
    assert a == b
    assert a["meters"] and a["audit"][-1]["event"]["type"] == "intake_request.status"
    for service in (fast, orm):
        v = audit.verify_chain(service.store)
        assert v.ok and v.count == len(a["audit"]), v
        service.store.dispose()


def test_the_fast_path_is_the_one_taken_and_retries_replay(postgres_url, chain, monkeypatch):
    service, token, _ = _service(postgres_url, chain)

    def orm_path(self: Any, **kw: Any) -> Any:
        raise AssertionError("the ORM path was taken")

    with monkeypatch.context() as m:
        m.setattr(IntakeService, "_store_request", orm_path)
        status, doc = _submit(service, token, "key-00000002", chain["package"])
        assert status == 201 and doc["status"] == "checks_passed"
        again = _submit(service, token, "key-00000002", chain["package"])  # found by submitter: no store path at all
        assert again == (200, doc)
    assert audit.verify_chain(service.store).ok
    service.store.dispose()


def test_unique_violation_and_dead_connections_end_as_before(postgres_url, chain):
    service, token, officer = _service(postgres_url, chain, developer_registered=False)
    status, doc = _submit(service, token, "key-00000003", chain["package"])
    assert status == 201 and doc["status"] == "checks_failed"  # does not count: the fast path goes on to INSERT
    # The same key again without the submitter's lookup (as when two retries race): the INSERT hits
    # the (token, key) unique index, nothing is committed, and the ORM path replays the original.
    assert _submit(service, token, "key-00000003", chain["package"], existing_lookup=False) == (200, doc)

    principal = service.principal(create_token(service.store, role="officer", subject="officer-bo"))
    service.add_developer(principal=principal, project_id=svc.PROJECT, did=chain["dev"].did)
    pids = [c.info.backend_pid for c in service.store._pg_idle]
    assert pids
    with service.store.connection(write=True) as conn:
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    status, doc = _submit(service, token, "key-00000004", chain["package"])
    assert status == 201 and doc["status"] == "checks_passed"
    with pytest.raises(ApiError) as err:  # a counting request of the report exists: the ORM path answers 409
        _submit(service, token, "key-00000005", chain["package"])
    assert err.value.status == 409 and err.value.code == "report_already_submitted"
    v = audit.verify_chain(service.store)
    assert v.ok, v
    service.store.dispose()


# --------------------------------------------------------------------------- the write round trip


def _rows(token_id: str, i: int) -> tuple[dict[str, Any], list[dict[str, str]], list[dict[str, Any]]]:
    """The rows of a checked request of project ``P-<i>`` with one meter (as the service makes them)."""
    from datetime import datetime, timezone

    from mrv.registry.lifecycle import checked_request_rows
    from mrv.registry.models import RequestStatus

    digest = lambda tag: "sha256:" + hashlib.sha256(f"{tag}-{i}".encode()).hexdigest()  # noqa: E731
    return checked_request_rows(
        token_id=token_id, idempotency_key=f"key-{i:08d}", request_digest=digest("request"), project_id=f"P-{i}",
        methodology_id=svc.METHODOLOGY, developer_did="did:key:z6MkDev", vvb_did="did:key:z6MkVvb", report_sha256=digest("report"),
        merkle_root=digest("root"), monitoring_period_start=datetime(2023, 1, 1, tzinfo=timezone.utc),
        monitoring_period_end=datetime(2023, 12, 31, tzinfo=timezone.utc), device_ids=[f"SN-{i}"], requested_quantity=1,
        vintage_year=2023, status=RequestStatus.CHECKS_PASSED, checks={"checks": []}, facts={}, labels=[],
    )


def test_the_request_statement_takes_the_audit_lock_after_its_inserts(postgres_url):
    """The request row, its meters and the audit chain's lock are one statement: after it, the
    rows are there and the chain is locked by this transaction (so the audit INSERT that follows,
    a later statement, reads the chain's head under the lock)."""
    import psycopg

    from mrv.registry import pgfast

    store = RegistryStore(postgres_url)
    store.migrate()
    create_token(store, role="developer", subject="did:key:z6MkDev")
    with store.connection(write=False) as conn:
        token_id = conn.execute(text("SELECT id FROM api_tokens")).scalar_one()
    row, meters, _ = _rows(token_id, 1)
    params = {c: (pgfast._json(v) if c in pgfast._JSON_COLUMNS and v is not None else getattr(v, "value", v)) for c, v in row.items()}
    params.update(_serials=[m["serial"] for m in meters], _audit_lock=audit.PG_LOCK_KEY)
    lock_key = audit.PG_LOCK_KEY & 0xFFFFFFFF, (audit.PG_LOCK_KEY >> 32) & 0xFFFFFFFF
    with store.pg_connection() as conn, store.pg_connection() as other:
        conn.execute("BEGIN")
        conn.execute(pgfast._insert_request_sql(tuple(row)), params)
        held = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                            "AND objid = %s AND classid = %s AND granted", lock_key).fetchone()
        assert held == (1,)
        assert conn.execute("SELECT count(*) FROM intake_request_meters WHERE serial = 'sn-1'").fetchone() == (1,)
        assert other.execute("SELECT pg_try_advisory_xact_lock(%s)", (audit.PG_LOCK_KEY,)).fetchone() == (False,)
        conn.execute("ROLLBACK")
        assert other.execute("SELECT pg_try_advisory_lock(%s), pg_advisory_unlock(%s)", (audit.PG_LOCK_KEY, audit.PG_LOCK_KEY)).fetchone() \
            == (True, True)
        # A request row that violates a unique index fails the statement before any lock is taken.
        conn.execute("BEGIN")
        conn.execute(pgfast._insert_request_sql(tuple(row)), params)
        conn.execute("COMMIT")
        conn.execute("BEGIN")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(pgfast._insert_request_sql(tuple(row)), params)
        conn.execute("ROLLBACK")
    store.dispose()


def test_simultaneous_fast_path_writes_keep_one_audit_chain(postgres_url):
    """Writes of different projects (no shared submission lock) meet only at the audit chain:
    released together, every one is stored with its two entries and the chain stays whole."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from mrv.registry import pgfast

    store = RegistryStore(postgres_url)
    store.migrate()
    create_token(store, role="developer", subject="did:key:z6MkDev")
    with store.connection(write=False) as conn:
        token_id = conn.execute(text("SELECT id FROM api_tokens")).scalar_one()
    before = audit.verify_chain(store).count  # (issuing the token is audited)
    n, rounds = 8, 3
    for r in range(rounds):
        barrier = threading.Barrier(n)

        def write(i: int) -> None:
            row, meters, events = _rows(token_id, r * n + i)
            with store.pg_connection() as conn:
                conn.execute("BEGIN")
                conn.execute("SELECT 1")
                barrier.wait()
                pgfast.write_and_commit(conn, row=row, meters=meters, events=events)

        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(write, range(n)))
    v = audit.verify_chain(store)
    assert v.ok and v.count == before + 2 * n * rounds, v
    with store.connection(write=False) as conn:
        assert conn.execute(text("SELECT count(*) FROM intake_requests")).scalar_one() == n * rounds
        assert conn.execute(text("SELECT count(*) FROM intake_request_meters")).scalar_one() == n * rounds
        seqs = [s for (s,) in conn.execute(text("SELECT (entry->>'seq')::int FROM audit_log ORDER BY seq"))]
    assert seqs == list(range(1, before + 2 * n * rounds + 1))
    store.dispose()
