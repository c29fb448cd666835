"""Simultaneous submissions on PostgreSQL over HTTP (a real uvicorn server on loopback): the
double-issuance checks hold when the requests race, not only one after the other.

The intake service no longer serialises every submission on one lock: submissions of the same
project or sharing a meter serial wait for each other (advisory locks), and the unique indexes on
(token, Idempotency-Key) and on the counting report digest back that up. These tests start the
racing requests together (a barrier, one connection per request) and check the outcome: exactly one
request wins each conflict, whatever the interleaving.

Package variants of the same project (another report over the same period) are made by re-issuing
the signed report with another credential id and attesting it again: same artifacts and Merkle
root, a different report digest.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from mrv.attest import Opinion, attest
from mrv.report.build import REPORT_TYPE, plain_json
from mrv.signing import issue_credential

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

_spec = importlib.util.spec_from_file_location("_svc_helpers_concurrent", Path(__file__).with_name("test_service.py"))
svc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(svc)  # type: ignore[union-attr]

chain = svc.chain
N = 6  # racing requests per test

REPORT = "signatures/report.json"
STATEMENT = "signatures/statement.json"


def _reissued(package: bytes, *, dev: Any, vvb: Any, nonce: str, tmp: Path) -> bytes:
    """The package with its report re-issued under another credential id and a new statement."""
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist() if i.filename != STATEMENT]
    report = json.loads(dict((i.filename, b) for i, b in members)[REPORT])
    vc = issue_credential(subject=plain_json(report["credentialSubject"]), types=[REPORT_TYPE], issuer_key=dev,
                          credential_id=f"urn:mrv:report:test-{nonce}")
    path = tmp / f"variant-{nonce}.zip"
    with zipfile.ZipFile(path, "w") as out:
        for info, data in members:
            out.writestr(info, json.dumps(vc, indent=2).encode() if info.filename == REPORT else data)
    attest(path, key=vvb, opinion=Opinion.positive, findings=[], replay=None, materiality=0.01)
    return path.read_bytes()


@pytest.fixture
def live(postgres_url: str, chain: dict[str, Any]) -> Any:
    with svc.LiveServer(postgres_url) as server:
        tokens = {"officer": server.token("officer", "officer-ana"), "developer": server.token("developer", chain["dev"].did)}
        with httpx.Client(base_url=server.url, timeout=120.0) as client:
            yield {"server": server, "client": client, "tokens": tokens, "chain": chain}


def _race(url: str, token: str, bodies: list[bytes], keys: list[str], *, quantity: int = 10) -> list[httpx.Response]:
    """POST every body at once (one connection each, released together by a barrier)."""
    barrier = threading.Barrier(len(bodies))

    def one(i: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=120.0) as c:
            c.get("/openapi.json")  # connect first, so the barrier releases requests, not handshakes
            barrier.wait()
            return svc.submit(c, token, bodies[i], quantity=quantity, key=keys[i])

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(one, range(len(bodies))))


def _statuses(server: Any) -> list[str]:
    with server.store.connection(write=False) as conn:
        return sorted(r[0] for r in conn.execute(text("SELECT status FROM intake_requests")))


def _audit_ok(client: httpx.Client, officer: str) -> bool:
    return client.get("/v1/audit/verify", headers=svc.auth(officer)).json()["ok"] is True


def test_the_same_report_submitted_at_once_under_different_keys_is_accepted_once(live):
    client, tokens, chain, server = live["client"], live["tokens"], live["chain"], live["server"]
    svc.setup_policy(client, tokens["officer"], vvb=chain["vvb"].did, developer=chain["dev"].did)
    results = _race(server.url, tokens["developer"], [chain["package"]] * N, [f"same-report-{i}" for i in range(N)])
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * (N - 1), [r.text for r in results]
    winner = next(r for r in results if r.status_code == 201).json()
    assert winner["status"] == "checks_passed", winner
    for r in results:
        if r.status_code == 409:
            assert r.json()["error"] == "report_already_submitted", r.text
            assert r.json().get("request_id", winner["id"]) == winner["id"]
    assert _statuses(server) == ["checks_passed"]
    assert _audit_ok(client, tokens["officer"])


def test_overlapping_periods_of_one_project_at_once_pass_the_overlap_check_once(live, tmp_path):
    client, tokens, chain, server = live["client"], live["tokens"], live["chain"], live["server"]
    svc.setup_policy(client, tokens["officer"], vvb=chain["vvb"].did, developer=chain["dev"].did)
    variants = [_reissued(chain["package"], dev=chain["dev"], vvb=chain["vvb"], nonce=str(i), tmp=tmp_path) for i in range(N)]
    assert len({_report_digest(v) for v in variants}) == N  # N different reports, one project, one period
    results = _race(server.url, tokens["developer"], variants, [f"overlap-{i}" for i in range(N)])
    assert [r.status_code for r in results] == [201] * N, [r.text for r in results]
    docs = [r.json() for r in results]
    passed = [d for d in docs if d["status"] == "checks_passed"]
    assert len(passed) == 1, [d["status"] for d in docs]
    for d in docs:
        if d is passed[0]:
            continue
        failed = [c for c in d["checks"] if not c["passed"]]
        assert [c["name"] for c in failed] == ["period_not_overlapping"], failed
        assert passed[0]["id"] in failed[0]["reason"]  # names the request it overlaps
    assert _statuses(server) == ["checks_failed"] * (N - 1) + ["checks_passed"]
    assert _audit_ok(client, tokens["officer"])


def test_resubmissions_at_once_after_checks_failed_are_accepted_once(live):
    client, tokens, chain, server = live["client"], live["tokens"], live["chain"], live["server"]
    # the developer is not registered for the project yet: checks_failed, which does not count
    svc.setup_policy(client, tokens["officer"], vvb=chain["vvb"].did, developer=chain["dev2"].did)
    failed = svc.submit(client, tokens["developer"], chain["package"], quantity=10, key="resubmit-failed-0")
    assert failed.status_code == 201 and failed.json()["status"] == "checks_failed", failed.text
    h = svc.auth(tokens["officer"])
    assert client.post("/v1/admin/developers", json={"project_id": svc.PROJECT, "did": chain["dev"].did}, headers=h).status_code == 201
    results = _race(server.url, tokens["developer"], [chain["package"]] * N, [f"resubmit-{i}" for i in range(N)])
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * (N - 1), [r.text for r in results]
    winner = next(r for r in results if r.status_code == 201).json()
    assert winner["status"] == "checks_passed"
    assert all(r.json()["error"] == "report_already_submitted" for r in results if r.status_code == 409)
    assert _statuses(server) == ["checks_failed", "checks_passed"]
    # the winner's key sent again by several clients at once: every answer is the original
    winner_key = next(f"resubmit-{i}" for i, r in enumerate(results) if r.status_code == 201)
    same_key = _race(server.url, tokens["developer"], [chain["package"]] * 3, [winner_key] * 3)
    assert [r.status_code for r in same_key] == [200] * 3 and all(r.json() == winner for r in same_key)
    assert _statuses(server) == ["checks_failed", "checks_passed"]
    assert _audit_ok(client, tokens["officer"])


def test_the_same_new_key_sent_at_once_creates_one_request(live):
    client, tokens, chain, server = live["client"], live["tokens"], live["chain"], live["server"]
    svc.setup_policy(client, tokens["officer"], vvb=chain["vvb"].did, developer=chain["dev"].did)
    results = _race(server.url, tokens["developer"], [chain["package"]] * N, ["one-key-for-all"] * N)
    codes = sorted(r.status_code for r in results)
    assert codes == [200] * (N - 1) + [201], [r.text for r in results]
    first = next(r for r in results if r.status_code == 201).json()
    assert all(r.json() == first for r in results)
    assert _statuses(server) == ["checks_passed"]
    assert _audit_ok(client, tokens["officer"])


def _report_digest(package: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        return hashlib.sha256(zf.read(REPORT)).hexdigest()
