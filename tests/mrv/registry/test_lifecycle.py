"""Request lifecycle: legal paths, illegal moves refused, an audit entry per transition in the
same transaction, and concurrent approvals of one request yield one winner. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from mrv.errors import IllegalTransition, RegistryError
from mrv.registry.audit import verify_chain
from mrv.registry.auth import authenticate, create_token
from mrv.registry.db import RegistryStore
from mrv.registry.lifecycle import ALLOWED, can_transition, create_request, transition
from mrv.registry.models import AuditLog, IntakeRequest, RequestStatus, Role

S = RequestStatus


@pytest.fixture
def store(lineage_url: str) -> Iterator[RegistryStore]:
    s = RegistryStore(lineage_url)
    s.migrate()
    yield s
    s.dispose()


def _new(store: RegistryStore, n: int = 1) -> str:
    token_id = authenticate(store, create_token(store, role=Role.DEVELOPER, subject=f"did:key:dev{n}")).token_id
    with store.session() as s:
        return create_request(
            s, token_id=token_id, idempotency_key=f"key-{n}", request_digest="sha256:" + "1" * 64,
            project_id="PRJ-1", methodology_id="CDM:ACM0002:22.0", developer_did="did:key:dev",
            vvb_did="did:key:vvb", report_sha256="sha256:" + f"{n:064x}", merkle_root="sha256:" + "2" * 64,
            monitoring_period_start=datetime(2024, 1, 1, tzinfo=timezone.utc),
            monitoring_period_end=datetime(2024, 6, 30, tzinfo=timezone.utc),
            device_ids=["meter-2", "meter-1"], requested_quantity=120, vintage_year=2024,
        ).id


def _events(store: RegistryStore) -> list[dict]:
    with store.session(write=False) as s:
        return [e["event"] for e in s.scalars(select(AuditLog.entry).order_by(AuditLog.seq))]


def test_transition_table() -> None:
    assert can_transition("received", "checks_passed") and can_transition("checks_failed", "rejected")
    assert not can_transition("checks_failed", "approved") and not can_transition("issued", "rejected")
    assert ALLOWED[S.ISSUED] == frozenset() and ALLOWED[S.REJECTED] == frozenset()


def test_happy_path_is_audited(store: RegistryStore) -> None:
    rid = _new(store)
    checks = {"signatures": {"passed": True, "reason": "ok"}}
    for to, kw in [(S.CHECKS_PASSED, {"checks": checks}), (S.APPROVED, {"reason": "fine"}), (S.ISSUED, {})]:
        with store.session() as s:
            transition(s, request_id=rid, to=to, actor="officer", **kw)
    with store.session(write=False) as s:
        req = s.get(IntakeRequest, rid)
        assert (req.status, req.checks, req.device_ids) == (S.ISSUED, checks, ["meter-1", "meter-2"])
    moves = [(e["from"], e["to"]) for e in _events(store) if e["type"] == "intake_request.status"]
    assert moves == [("received", "checks_passed"), ("checks_passed", "approved"), ("approved", "issued")]
    assert verify_chain(store).ok


def test_failed_checks_then_rejected(store: RegistryStore) -> None:
    rid = _new(store)
    with store.session() as s:
        transition(s, request_id=rid, to="checks_failed", actor="intake-checks",
                   checks={"methodology": {"passed": False, "reason": "not accepted"}})
    with pytest.raises(RegistryError, match="reason"):
        with store.session() as s:
            transition(s, request_id=rid, to=S.REJECTED, actor="officer")
    with store.session() as s:
        transition(s, request_id=rid, to=S.REJECTED, actor="officer", reason="methodology not accepted")


@pytest.mark.parametrize("path", [
    [S.APPROVED], [S.ISSUED], [S.CHECKS_FAILED, S.APPROVED], [S.CHECKS_PASSED, S.ISSUED],
    [S.CHECKS_PASSED, S.APPROVED, S.REJECTED], [S.CHECKS_PASSED, S.CHECKS_FAILED],
])
def test_illegal_transitions_change_nothing(store: RegistryStore, path: list[RequestStatus]) -> None:
    rid = _new(store)
    *legal, illegal = path
    for to in legal:
        with store.session() as s:
            transition(s, request_id=rid, to=to, actor="officer", reason="r")
    before = len(_events(store))
    with pytest.raises(IllegalTransition, match="not allowed"):
        with store.session() as s:
            transition(s, request_id=rid, to=illegal, actor="officer", reason="r")
    assert len(_events(store)) == before  # no audit entry for a refused move
    with store.session(write=False) as s:
        assert s.get(IntakeRequest, rid).status == (legal[-1] if legal else S.RECEIVED)


def test_failure_after_transition_rolls_back_audit_too(store: RegistryStore) -> None:
    rid = _new(store)
    before = len(_events(store))
    with pytest.raises(RuntimeError):
        with store.session() as s:
            transition(s, request_id=rid, to=S.CHECKS_PASSED, actor="intake-checks", checks={})
            raise RuntimeError("crash before commit")
    assert len(_events(store)) == before
    with store.session(write=False) as s:
        assert s.get(IntakeRequest, rid).status == S.RECEIVED


def test_concurrent_approvals_one_winner(store: RegistryStore) -> None:
    rid = _new(store)
    with store.session() as s:
        transition(s, request_id=rid, to=S.CHECKS_PASSED, actor="intake-checks", checks={})

    def approve(i: int) -> str:
        try:
            with store.session() as s:
                transition(s, request_id=rid, to=S.APPROVED, actor=f"officer-{i}")
            return "ok"
        except IllegalTransition:
            return "illegal"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = sorted(pool.map(approve, range(6)))
    assert outcomes == ["illegal"] * 5 + ["ok"]
    assert sum(e.get("to") == "approved" for e in _events(store)) == 1
    assert verify_chain(store).ok
