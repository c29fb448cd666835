"""The intake service over HTTP: a real uvicorn server on loopback, on SQLite and PostgreSQL.

One demo run, one signed report and a positive VVB statement are built once per module (as in
test_intake_checks.py); each test gets a fresh registry store and its own server.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text

from mrv import pipeline
from mrv.attest import Opinion, attest
from mrv.registry.auth import create_token
from mrv.registry.db import RegistryStore
from mrv.registry.service import create_app
from mrv.report.build import build_report
from mrv.sample import generate_demo_project
from mrv.settings import MRVSettings
from mrv.signing import KeyRole, generate_key

pytestmark = pytest.mark.integration

PROJECT = "DEMO-WIND-TN-001"
METHODOLOGY = "CDM:ACM0002:22.0"


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("service")
    project = generate_demo_project(root / "project", seed=7)
    settings = MRVSettings(home=root / "ws")
    summary = pipeline.run_local(settings, project)
    ws, store, lineage = pipeline.open_workspace(settings)
    dev, dev2, vvb = generate_key(role=KeyRole.developer), generate_key(role=KeyRole.developer), generate_key(role=KeyRole.vvb)
    out = build_report(workspace=ws, store=store, lineage=lineage, run_id=summary["run_id"], key=dev, out_dir=root / "r1")
    pkg = root / "positive.zip"
    shutil.copyfile(out.package.path, pkg)
    attest(pkg, key=vvb, opinion=Opinion.positive, findings=[], replay=None, materiality=0.01)
    return {"dev": dev, "dev2": dev2, "vvb": vvb, "package": pkg.read_bytes(), "issuable": summary["issuable_tCO2e"]}


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=[pytest.mark.postgres]),
    ]
)
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty registry store: a SQLite file, or a fresh PostgreSQL schema (see tests/conftest.py)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("postgres_url")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The real app under uvicorn on a free loopback port, in a thread. ``app_options``: further
    ``create_app`` keywords (e.g. ``fast_path=False``)."""

    def __init__(self, db_url: str, **app_options: Any) -> None:
        self.db_url = db_url
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(db_url=db_url, base_url=self.url, **app_options)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        self.store = RegistryStore(self.db_url)  # migrated by the app's startup
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.store.engine.dispose()

    def token(self, role: str, subject: str) -> str:
        return create_token(self.store, role=role, subject=subject)


def start_server(db_url: str) -> LiveServer:
    return LiveServer(db_url)


@pytest.fixture
def live(registry_url: str, chain: dict[str, Any]) -> Iterator[dict[str, Any]]:
    with LiveServer(registry_url) as server:
        tokens = {
            "officer": server.token("officer", "officer-ana"),
            "developer": server.token("developer", chain["dev"].did),
            "developer2": server.token("developer", chain["dev2"].did),
            "public": server.token("public", "anyone"),
        }
        with httpx.Client(base_url=server.url, timeout=120.0) as client:
            yield {"server": server, "client": client, "tokens": tokens, "chain": chain}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def setup_policy(client: httpx.Client, officer: str, *, vvb: str, developer: str, project: str = PROJECT) -> None:
    h = auth(officer)
    assert client.post("/v1/admin/vvbs", json={"did": vvb}, headers=h).status_code == 201
    assert client.post("/v1/admin/developers", json={"project_id": project, "did": developer}, headers=h).status_code == 201
    assert client.post("/v1/admin/methodologies", json={"id": METHODOLOGY}, headers=h).status_code == 201
    # idempotent: a second time changes nothing
    assert client.post("/v1/admin/methodologies", json={"id": METHODOLOGY}, headers=h).status_code == 200


def submit(client: httpx.Client, token: str, package: bytes, *, quantity: int, key: str, labels: tuple[str, ...] = ()) -> httpx.Response:
    params: list[tuple[str, Any]] = [("quantity", quantity)] + [("label", x) for x in labels]
    headers = {**auth(token), "Idempotency-Key": key, "Content-Type": "application/zip"}
    return client.post("/v1/requests", params=params, content=package, headers=headers)


def _count(store: RegistryStore, table: str) -> int:
    with store.connection(write=False) as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


# --------------------------------------------------------------------------- the full path


def test_full_path_submit_approve_units_and_audit(live):
    client, tokens, chain, server = live["client"], live["tokens"], live["chain"], live["server"]
    setup_policy(client, tokens["officer"], vvb=chain["vvb"].did, developer=chain["dev"].did)
    quantity = chain["issuable"] - 1000
    r = submit(client, tokens["developer"], chain["package"], quantity=quantity, key="submit-0001", labels=("CORSIA eligible",))
    assert r.status_code == 201, r.text
    req = r.json()
    assert req["status"] == "checks_passed", [c for c in req["checks"] if not c["passed"]]
    assert req["project_id"] == PROJECT and req["requested_quantity"] == quantity
    assert req["report_sha256"].startswith("sha256:") and len(req["checks"]) == 12
    assert all(set(c) == {"name", "passed", "reason"} for c in req["checks"])

    # the officer reviews it
    listed = client.get("/v1/requests", params={"status": "checks_passed"}, headers=auth(tokens["officer"])).json()
    assert [i["id"] for i in listed["items"]] == [req["id"]] and listed["total"] == 1
    shown = client.get(f"/v1/requests/{req['id']}", headers=auth(tokens["developer"])).json()
    assert shown["labels"] == ["CORSIA eligible"] and shown["vintage_year"] == 2023

    approved = client.post(f"/v1/requests/{req['id']}/approve", headers=auth(tokens["officer"]))
    assert approved.status_code == 200, approved.text
    doc = approved.json()
    assert doc["request"]["status"] == "issued" and doc["request"]["issuance_id"] == doc["issuance"]["id"]
    assert [(u["unitBlockStart"], u["unitBlockEnd"], u["unitCount"]) for u in doc["units"]] == [
        (f"ODMRV-{PROJECT}-2023-1", f"ODMRV-{PROJECT}-2023-{quantity}", quantity)
    ]

    # approving again: 409, no second units
    again = client.post(f"/v1/requests/{req['id']}/approve", headers=auth(tokens["officer"]))
    assert again.status_code == 409 and again.json()["error"] == "illegal_transition"
    rejected = client.post(f"/v1/requests/{req['id']}/reject", json={"reason": "too late"}, headers=auth(tokens["officer"]))
    assert rejected.status_code == 409

    # public reads, no token
    units = client.get("/v1/units", params={"projectId": PROJECT, "vintageYear": 2023, "unitStatus": "Held"}).json()
    assert units["total"] == 1 and sum(u["unitCount"] for u in units["items"]) == quantity
    unit = units["items"][0]
    assert unit["issuance"]["id"] == doc["issuance"]["id"] and unit["countryJurisdictionOfOwner"] == "India"
    assert [x["label"] for x in unit["labels"]] == ["CORSIA eligible"]
    assert client.get("/v1/units", params={"unitStatus": "Retired"}).json()["total"] == 0
    assert client.get("/v1/units", params={"vintageYear": 2022}).json()["total"] == 0
    projects = client.get("/v1/projects").json()
    assert projects["total"] == 1 and projects["items"][0]["projectId"] == PROJECT
    project = client.get(f"/v1/projects/{PROJECT}").json()
    assert project["methodology"] == METHODOLOGY and project["projectLocations"][0]["country"] == "India"
    assert project["issuances"][0]["id"] == doc["issuance"]["id"]
    assert client.get(f"/v1/projects/{projects['items'][0]['warehouseProjectId']}").status_code == 200
    assert client.get("/v1/projects/NOPE").status_code == 404
    issuances = client.get("/v1/issuances", params={"projectId": PROJECT}, headers=auth(tokens["public"])).json()
    assert [i["id"] for i in issuances["items"]] == [doc["issuance"]["id"]]
    page2 = client.get("/v1/units", params={"page": 2, "limit": 1}).json()
    assert page2 == {"items": [], "page": 2, "limit": 1, "total": 1}
    assert client.get("/v1/units", params={"limit": 1001}).status_code == 422

    # audit chain: ok, then tampered with raw SQL -> the altered entry is named
    verify = client.get("/v1/audit/verify", headers=auth(tokens["officer"])).json()
    assert verify["ok"] is True and verify["count"] >= 10
    engine = create_engine(server.db_url)
    with engine.begin() as conn:
        seq = conn.execute(text("SELECT min(seq) FROM audit_log WHERE entry LIKE '%intake_request.received%'"
                                if engine.dialect.name == "sqlite" else
                                "SELECT min(seq) FROM audit_log WHERE entry::text LIKE '%intake_request.received%'")).scalar_one()
        row = conn.execute(text("SELECT entry FROM audit_log WHERE seq = :s"), {"s": seq}).scalar_one()
        tampered = (row if isinstance(row, str) else __import__("json").dumps(row)).replace(str(quantity), str(quantity + 1))
        conn.execute(text("UPDATE audit_log SET entry = :e WHERE seq = :s"
                          if engine.dialect.name == "sqlite" else "UPDATE audit_log SET entry = CAST(:e AS jsonb) WHERE seq = :s"),
                     {"e": tampered, "s": seq})
    engine.dispose()
    broken = client.get("/v1/audit/verify", headers=auth(tokens["officer"])).json()
    assert broken["ok"] is False and broken["first_bad_seq"] == seq and "altered" in broken["reason"]


# --------------------------------------------------------------------------- idempotency


def test_idempotent_retry_returns_the_original_and_conflict_is_409(live):
    client, tokens, chain, server = live["client"], live["tokens"], live["chain"], live["server"]
    setup_policy(client, tokens["officer"], vvb=chain["vvb"].did, developer=chain["dev"].did)
    first = submit(client, tokens["developer"], chain["package"], quantity=100, key="retry-key-1")
    assert first.status_code == 201, first.text
    before = (_count(server.store, "intake_requests"), _count(server.store, "audit_log"))
    retry = submit(client, tokens["developer"], chain["package"], quantity=100, key="retry-key-1")
    assert retry.status_code == 200 and retry.json() == first.json()
    # still the original after the request moved on
    client.post(f"/v1/requests/{first.json()['id']}/reject", json={"reason": "test"}, headers=auth(tokens["officer"]))
    later = submit(client, tokens["developer"], chain["package"], quantity=100, key="retry-key-1")
    assert later.status_code == 200 and later.json() == first.json()
    assert _count(server.store, "intake_requests") == before[0]
    conflict = submit(client, tokens["developer"], chain["package"], quantity=101, key="retry-key-1")
    assert conflict.status_code == 409 and conflict.json()["error"] == "idempotency_conflict"
    # another key, the same report: accepted, the earlier request was rejected (it does not count);
    # while this one counts, a third key is refused and nothing is stored
    again = submit(client, tokens["developer"], chain["package"], quantity=100, key="retry-key-2")
    assert again.status_code == 201, again.text
    dup = submit(client, tokens["developer"], chain["package"], quantity=100, key="retry-key-3")
    assert dup.status_code == 409 and dup.json()["error"] == "report_already_submitted"
    assert _count(server.store, "intake_requests") == 2


def test_unregistered_developer_gets_a_stored_failed_request_and_owners_only_read(live):
    client, tokens, chain = live["client"], live["tokens"], live["chain"]
    setup_policy(client, tokens["officer"], vvb=chain["vvb"].did, developer=chain["dev2"].did)
    r = submit(client, tokens["developer"], chain["package"], quantity=10, key="unregistered-1")
    assert r.status_code == 201 and r.json()["status"] == "checks_failed"
    failed = [c for c in r.json()["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["developer_registered"]
    assert "is not registered for project" in failed[0]["reason"]
    rid = r.json()["id"]
    assert client.get(f"/v1/requests/{rid}", headers=auth(tokens["developer"])).status_code == 200
    assert client.get(f"/v1/requests/{rid}", headers=auth(tokens["developer2"])).status_code == 404
    assert client.get("/v1/requests", headers=auth(tokens["developer2"])).json()["total"] == 0
    assert client.get("/v1/requests", headers=auth(tokens["developer"])).json()["total"] == 1
    approve = client.post(f"/v1/requests/{rid}/approve", headers=auth(tokens["officer"]))
    assert approve.status_code == 409
    assert client.post(f"/v1/requests/{rid}/reject", json={"reason": "developer not registered"},
                       headers=auth(tokens["officer"])).json()["status"] == "rejected"


def test_bad_submissions_are_clear_4xx(live):
    client, tokens, chain = live["client"], live["tokens"], live["chain"]
    h = {**auth(tokens["developer"]), "Idempotency-Key": "bad-input-1"}
    junk = client.post("/v1/requests", params={"quantity": 5}, content=b"not a zip", headers={**h, "Content-Type": "application/zip"})
    assert junk.status_code == 422 and junk.json()["error"] == "unreadable_package" and len(junk.json()["checks"]) == 12
    wrong_type = client.post("/v1/requests", params={"quantity": 5}, content=chain["package"], headers={**h, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415 and wrong_type.json()["error"] == "unsupported_media_type"
    no_key = client.post("/v1/requests", params={"quantity": 5}, content=chain["package"],
                         headers={**auth(tokens["developer"]), "Content-Type": "application/zip"})
    assert no_key.status_code == 422 and "Idempotency-Key" in no_key.json()["detail"]
    short_key = submit(client, tokens["developer"], chain["package"], quantity=5, key="short")
    assert short_key.status_code == 422
    zero = submit(client, tokens["developer"], chain["package"], quantity=0, key="zero-quantity")
    assert zero.status_code == 422 and zero.json()["error"] == "invalid_request"
    bad_token = client.get("/v1/requests", headers=auth("mrvt_" + "x" * 43))
    assert bad_token.status_code == 401 and bad_token.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/requests", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.post("/v1/admin/vvbs", json={"did": "nope"}, headers=auth(tokens["officer"])).status_code == 422
    assert client.get("/v1/requests/unknown", headers=auth(tokens["officer"])).status_code == 404
    with zipfile.ZipFile(__import__("io").BytesIO(chain["package"])) as zf:
        assert "signatures/statement.json" in zf.namelist()


# --------------------------------------------------------------------------- roles


ENDPOINTS: list[tuple[str, str, dict[str, Any], set[str]]] = [
    # method, path, request kwargs, roles allowed (None = no token)
    ("POST", "/v1/requests?quantity=1", {"content": b"PK", "headers": {"Idempotency-Key": "role-test-1", "Content-Type": "application/zip"}}, {"developer"}),
    ("GET", "/v1/requests", {}, {"developer", "officer"}),
    ("GET", "/v1/requests/none", {}, {"developer", "officer"}),
    ("POST", "/v1/requests/none/approve", {}, {"officer"}),
    ("POST", "/v1/requests/none/reject", {"json": {"reason": "x"}}, {"officer"}),
    ("POST", "/v1/admin/vvbs", {"json": {"did": "did:key:z6MkRoleTest"}}, {"officer"}),
    ("POST", "/v1/admin/developers", {"json": {"project_id": "P-1", "did": "did:key:z6MkRoleTest"}}, {"officer"}),
    ("POST", "/v1/admin/methodologies", {"json": {"id": "X:Y:1"}}, {"officer"}),
    ("GET", "/v1/audit/verify", {}, {"officer"}),
    ("GET", "/v1/projects", {}, {None, "public", "developer", "officer"}),
    ("GET", "/v1/projects/none", {}, {None, "public", "developer", "officer"}),
    ("GET", "/v1/issuances", {}, {None, "public", "developer", "officer"}),
    ("GET", "/v1/units", {}, {None, "public", "developer", "officer"}),
]


@pytest.mark.parametrize("method,path,kwargs,allowed", ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
def test_each_role_is_enforced_on_each_endpoint(live, method, path, kwargs, allowed):
    client, tokens = live["client"], live["tokens"]
    for role in (None, "public", "developer", "officer"):
        headers = dict(kwargs.get("headers", {}))
        if role is not None:
            headers.update(auth(tokens[role]))
        r = client.request(method, path, **{**kwargs, "headers": headers})
        if role in allowed or (None in allowed):
            assert r.status_code not in (401, 403), (role, r.status_code, r.text)
            assert r.status_code < 500
        elif role is None:
            assert r.status_code == 401 and r.json()["error"] == "unauthorized", (role, r.text)
        else:
            assert r.status_code == 403 and r.json()["error"] == "forbidden", (role, r.text)
