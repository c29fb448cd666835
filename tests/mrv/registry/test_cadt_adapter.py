"""The CAD Trust adapter against our live intake service and a fake CADT node, both real uvicorn
servers on loopback.

A real CADT node cannot run here (it needs a Chia full node, wallet and DataLayer), so the node is
the small in-repo fake in ``fake_cadt.py``, which follows CADT's documented payloads and source
(paths cited in its docstring). What is proven is our side of the contract: headers, staging then
commit, nesting, ids, idempotency and error handling, not a real node's on-chain confirmation.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mrv import pipeline
from mrv.attest import Opinion, attest
from mrv.registry.cadt_client import CadtClient, CadtError, CadtRetry, publish_from_registry, read_issued
from mrv.report.build import build_report
from mrv.sample import generate_demo_project
from mrv.settings import MRVSettings
from mrv.signing import KeyRole, generate_key

pytestmark = pytest.mark.integration

_here = Path(__file__).parent


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


svc = _load("_svc_helpers_cadt", _here / "test_service.py")
fake = _load("_fake_cadt", _here / "fake_cadt.py")

API_KEY = "cadt-test-key-0123456789"
LABEL = "CORSIA eligible"


def build_chain(root: Path) -> dict[str, Any]:
    """A real monitoring run, its signed package and a positive VVB statement (kept with the run)."""
    project = generate_demo_project(root / "project", seed=7)
    settings = MRVSettings(home=root / "ws")
    summary = pipeline.run_local(settings, project)
    ws, store, lineage = pipeline.open_workspace(settings)
    dev, vvb = generate_key(role=KeyRole.developer), generate_key(role=KeyRole.vvb)
    out = build_report(workspace=ws, store=store, lineage=lineage, run_id=summary["run_id"], key=dev, out_dir=root / "r1")
    pkg = root / "positive.zip"
    shutil.copyfile(out.package.path, pkg)
    attest(pkg, key=vvb, opinion=Opinion.positive, findings=[], replay=None, materiality=0.01)
    lineage.dispose()
    return {"dev": dev, "vvb": vvb, "package_path": pkg, "package": pkg.read_bytes(), "issuable": summary["issuable_tCO2e"],
            "settings": settings, "run_id": summary["run_id"]}


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict[str, Any]:
    return build_chain(tmp_path_factory.mktemp("cadt"))


@pytest.fixture
def issued(tmp_path: Path, chain: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The intake service after an officer approved the request: one project, issuance and unit block."""
    with svc.LiveServer(f"sqlite:///{tmp_path / 'registry.db'}") as server, httpx.Client(base_url=server.url, timeout=120) as http:
        officer, developer = server.token("officer", "officer-ana"), server.token("developer", chain["dev"].did)
        svc.setup_policy(http, officer, vvb=chain["vvb"].did, developer=chain["dev"].did)
        r = svc.submit(http, developer, chain["package"], quantity=chain["issuable"] - 10, key="cadt-submit-1", labels=(LABEL,))
        assert r.status_code == 201 and r.json()["status"] == "checks_passed", r.text
        approved = http.post(f"/v1/requests/{r.json()['id']}/approve", headers=svc.auth(officer))
        assert approved.status_code == 200, approved.text
        yield {"url": server.url, "approval": approved.json()}


@pytest.fixture
def node() -> Iterator[Any]:
    with fake.FakeCadtServer(api_key=API_KEY) as n:
        yield n


def _client(node: Any, *, api_key: str | None = API_KEY, **kw: Any) -> CadtClient:
    return CadtClient(base_url=node.url, api_key=api_key, retry=CadtRetry(attempts=3, base_delay_s=0.01, timeout_s=10), **kw)


def test_publish_after_approval_lands_on_the_node_and_republish_is_idempotent(issued, node):
    approval = issued["approval"]
    project_id = approval["project"]["projectId"]
    with _client(node) as client:
        first = publish_from_registry(registry_url=issued["url"], project_id=project_id, client=client)
    assert first.project_action == "created" and first.commits == 2
    assert node.state.staging == []
    # every call carried the api key (the node answers 403 otherwise) and writes were staged, then committed
    assert ("POST", "/v1/projects") in node.state.calls and ("POST", "/v1/units") in node.state.calls
    assert node.state.calls.count(("POST", "/v1/staging/commit")) == 2

    (project,) = node.state.projects.values()
    assert project["warehouseProjectId"] == first.warehouse_project_id != approval["project"]["warehouseProjectId"]
    assert project["originProjectId"] == project_id and project["projectLocations"][0]["country"] == "India"
    (node_issuance,) = project["issuances"]
    assert first.issuance_ids == {approval["issuance"]["id"]: node_issuance["id"]}
    assert [lab["label"] for lab in project["labels"]] == [LABEL]
    (unit,) = node.state.units.values()
    ours = approval["units"][0]
    assert (unit["unitBlockStart"], unit["unitBlockEnd"], unit["unitCount"], unit["vintageYear"]) == (
        ours["unitBlockStart"], ours["unitBlockEnd"], ours["unitCount"], ours["vintageYear"])
    # the unit's only link to its project: the nested issuance with the node's issuance id
    assert unit["issuance"]["id"] == node_issuance["id"] and unit["issuance"]["warehouseProjectId"] == project["warehouseProjectId"]
    assert unit["projectLocationId"] == project["projectLocations"][0]["id"]
    assert first.unit_ids == {ours["unitBlockStart"]: unit["warehouseUnitId"]}

    # Re-publishing (with co-benefits and an estimation added) updates in place: same ids, nothing doubled.
    project_doc, units = read_issued(registry_url=issued["url"], project_id=project_id)
    project_doc = {**project_doc,
                   "coBenefits": [{"cobenefit": "Local employment"}],
                   "estimations": [{"creditingPeriodStart": "2023-01-01T00:00:00Z", "creditingPeriodEnd": "2023-12-31T00:00:00Z", "unitCount": 5}]}
    with _client(node) as client:
        again = client.publish(project=project_doc, units=units)
        third = client.publish(project=project_doc, units=units)
    assert again.project_action == "updated" and set(again.unit_actions.values()) == {"updated"}
    assert (again.warehouse_project_id, again.issuance_ids, again.unit_ids) == (first.warehouse_project_id, first.issuance_ids, first.unit_ids)
    assert third.to_dict() == again.to_dict()
    (project,) = node.state.projects.values()
    assert len(node.state.units) == 1 and len(project["issuances"]) == 1 and len(project["labels"]) == 1
    assert [c["cobenefit"] for c in project["coBenefits"]] == ["Local employment"] and len(project["estimations"]) == 1
    assert project["issuances"][0]["id"] == node_issuance["id"]


def test_staged_writes_are_invisible_until_commit_and_a_killed_publish_resumes(issued, node):
    project_id = issued["approval"]["project"]["projectId"]
    project_doc, units = read_issued(registry_url=issued["url"], project_id=project_id)
    with _client(node) as client:
        # what a run killed after staging the project leaves behind
        payload = client._project_create(project_doc)
        client._request("POST", "/v1/projects", json_body=payload)
        assert client.list_projects() == [] and len(client.staging()) == 1
        assert client.find_project(project_id=project_id, registry_of_origin=project_doc["registryOfOrigin"]) is None
        result = client.publish(project=project_doc, units=units)
        assert len(client.list_projects()) == 1 and len(client.list_units()) == 1 and client.staging() == []
    assert result.project_action == "created" and len(node.state.projects) == 1
    # the paginated list shape is read too
    page = httpx.get(f"{node.url}/v1/units", params={"page": 1, "limit": 10}, headers={"x-api-key": API_KEY}).json()
    assert page["page"] == 1 and page["pageCount"] == 1 and len(page["data"]) == 1


def test_missing_or_wrong_api_key_is_a_clear_error(issued, node):
    project_id = issued["approval"]["project"]["projectId"]
    for key in (None, "wrong-key"):
        with _client(node, api_key=key) as client, pytest.raises(CadtError) as err:
            publish_from_registry(registry_url=issued["url"], project_id=project_id, client=client)
        assert err.value.status_code == 403
        assert "API key not found" in str(err.value) and "x-api-key" in str(err.value)
    assert node.state.projects == {} and node.state.staging == []


def test_unknown_keys_and_bad_picklists_are_refused(issued, node):
    project_id = issued["approval"]["project"]["projectId"]
    project_doc, units = read_issued(registry_url=issued["url"], project_id=project_id)
    # the node: 400 "Data Validation error", with the client showing the node's reasons
    with _client(node) as client, pytest.raises(CadtError) as err:
        client._request("POST", "/v1/projects", json_body={**CadtClient._project_create(project_doc), "notACadtField": 1})
    assert err.value.status_code == 400 and "Data Validation error" in str(err.value) and "notACadtField" in str(err.value)
    # the adapter refuses locally before anything is sent
    with _client(node) as client, pytest.raises(Exception) as local:
        client.publish(project={**project_doc, "unitMetric": "tonnes"}, units=units)
    assert "unitMetric" in str(local.value)
    assert node.state.staging == [] and node.state.projects == {}


def test_5xx_is_retried_then_4xx_is_final(issued, node):
    project_id = issued["approval"]["project"]["projectId"]
    delays: list[float] = []
    node.state.fail_next = 2
    with _client(node, sleep=delays.append) as client:
        result = publish_from_registry(registry_url=issued["url"], project_id=project_id, client=client)
    assert result.project_action == "created" and len(delays) == 2 and delays[1] > delays[0]
    node.state.fail_next = 10
    with _client(node, sleep=delays.append) as client, pytest.raises(CadtError) as err:
        client.commit()
    assert "after 3 attempts" in str(err.value) and "503" in str(err.value)
