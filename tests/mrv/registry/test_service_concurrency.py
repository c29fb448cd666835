"""Concurrent approvals over HTTP on a real uvicorn server: serial blocks never overlap, and one
request approved by several officers at once is issued exactly once.

Packages of three different projects (same vintage, so they contend for one serial counter) are
built from the demo project with its id, meter serials and boundary changed before the run.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from mrv import pipeline
from mrv.attest import Opinion, attest
from mrv.report.build import build_report
from mrv.sample import generate_demo_project
from mrv.settings import MRVSettings
from mrv.signing import KeyRole, generate_key

pytestmark = pytest.mark.integration

# The server helpers live in test_service.py (loaded by path: tests use --import-mode=importlib).
_spec = importlib.util.spec_from_file_location("_svc_helpers", Path(__file__).with_name("test_service.py"))
svc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(svc)  # type: ignore[union-attr]

N_PROJECTS = 3
registry_url = svc.registry_url  # the same fixture: SQLite and PostgreSQL


def _variant(yaml_text: str, k: int) -> str:
    """The demo project as project k: another id, other meter serials, a boundary 0.5° further east."""
    out = yaml_text.replace("DEMO-WIND-TN-001", f"DEMO-WIND-TN-10{k}")
    out = re.sub(r'serial: "EM-(\w+)-(\d+)"', lambda m: f'serial: "EM-{m.group(1)}-{k}{m.group(2)}"', out)
    return re.sub(r"\[(77\.5[37]), ", lambda m: f"[{float(m.group(1)) + 0.5 * k:.2f}, ", out)


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("concurrency")
    settings = MRVSettings(home=root / "ws")
    dev, vvb = generate_key(role=KeyRole.developer), generate_key(role=KeyRole.vvb)
    pkgs = []
    for k in range(1, N_PROJECTS + 1):
        project = generate_demo_project(root / f"project{k}", seed=7)
        project.write_text(_variant(project.read_text(), k))
        summary = pipeline.run_local(settings, project)
        ws, store, lineage = pipeline.open_workspace(settings)
        out = build_report(workspace=ws, store=store, lineage=lineage, run_id=summary["run_id"], key=dev, out_dir=root / f"r{k}")
        pkg = root / f"p{k}.zip"
        shutil.copyfile(out.package.path, pkg)
        attest(pkg, key=vvb, opinion=Opinion.positive, findings=[], replay=None, materiality=0.01)
        pkgs.append({"project": f"DEMO-WIND-TN-10{k}", "bytes": pkg.read_bytes(), "issuable": summary["issuable_tCO2e"]})
    return {"dev": dev, "vvb": vvb, "packages": pkgs}


@pytest.fixture
def live(registry_url: str, packages) -> Any:
    with svc.LiveServer(registry_url) as server:
        tokens = {"officer": server.token("officer", "officer-ana"), "developer": server.token("developer", packages["dev"].did)}
        with httpx.Client(base_url=server.url, timeout=120.0) as client:
            h = svc.auth(tokens["officer"])
            client.post("/v1/admin/vvbs", json={"did": packages["vvb"].did}, headers=h).raise_for_status()
            client.post("/v1/admin/methodologies", json={"id": svc.METHODOLOGY}, headers=h).raise_for_status()
            for p in packages["packages"]:
                client.post("/v1/admin/developers", json={"project_id": p["project"], "did": packages["dev"].did}, headers=h).raise_for_status()
            yield {"server": server, "client": client, "tokens": tokens}


def _approve(url: str, token: str, request_id: str) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=120.0) as c:  # one connection per officer
        return c.post(f"/v1/requests/{request_id}/approve", headers=svc.auth(token))


def test_parallel_approvals_of_different_projects_never_overlap(live, packages):
    client, tokens, server = live["client"], live["tokens"], live["server"]
    ids = []
    for i, p in enumerate(packages["packages"]):  # one request per project (a second would overlap in period)
        r = svc.submit(client, tokens["developer"], p["bytes"], quantity=1000 + 37 * i, key=f"parallel-{i}")
        assert r.status_code == 201 and r.json()["status"] == "checks_passed", r.text
        ids.append(r.json()["id"])
    with ThreadPoolExecutor(max_workers=len(ids)) as pool:
        results = list(pool.map(lambda rid: _approve(server.url, tokens["officer"], rid), ids))
    assert [r.status_code for r in results] == [200] * len(ids), [r.text for r in results]
    ranges = sorted((u["unitBlockStart"], u["unitBlockEnd"]) for r in results for u in r.json()["units"])
    nums = sorted((int(a.rsplit("-", 1)[1]), int(b.rsplit("-", 1)[1])) for a, b in ranges)
    assert nums[0][0] == 1
    for (_, last), (first, _) in zip(nums, nums[1:]):
        assert first == last + 1  # contiguous, no overlap, no gap
    assert nums[-1][1] == sum(1000 + 37 * i for i in range(len(ids)))
    units = client.get("/v1/units", params={"vintageYear": 2023}).json()
    assert units["total"] == len(ids)
    with server.store.connection(write=False) as conn:
        overlaps = conn.execute(text(
            "SELECT count(*) FROM units a JOIN units b ON a.warehouse_unit_id < b.warehouse_unit_id "
            "AND a.serial_registry = b.serial_registry AND a.vintage_year = b.vintage_year "
            "AND a.serial_first <= b.serial_last AND b.serial_first <= a.serial_last")).scalar_one()
    assert overlaps == 0


def test_the_same_request_approved_by_five_officers_is_issued_once(live, packages):
    client, tokens, server = live["client"], live["tokens"], live["server"]
    p = packages["packages"][0]
    r = svc.submit(client, tokens["developer"], p["bytes"], quantity=500, key="same-request-1")
    assert r.status_code == 201 and r.json()["status"] == "checks_passed", r.text
    rid = r.json()["id"]
    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(lambda _: _approve(server.url, tokens["officer"], rid), range(5)))
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409, 409, 409, 409], [r.text for r in results]
    assert all(r.json()["error"] == "illegal_transition" for r in results if r.status_code == 409)
    with server.store.connection(write=False) as conn:
        assert conn.execute(text("SELECT count(*) FROM issuances")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*), sum(unit_count) FROM units")).one() == (1, 500)
    assert client.get("/v1/issuances").json()["total"] == 1
    assert client.get("/v1/audit/verify", headers=svc.auth(tokens["officer"])).json()["ok"] is True
