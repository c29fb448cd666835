"""The issuance flow and the plain functions under it, against the real intake service on loopback.

Most assertions call :mod:`mrv.registry.issuance` directly; one test runs the Prefect flow for real
in a subprocess on Prefect's ephemeral server (``PREFECT_HOME`` under ``tmp_path``, analytics off),
with an officer approving while it polls and a fake CADT node (see
tests/mrv/registry/fake_cadt.py: a real CADT node cannot run here) receiving the units.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from mrv.pipeline import open_workspace
from mrv.registry.client import RegistryClientError, RetryPolicy
from mrv.registry.issuance import DECIDED, IssuanceTimeout, poll_status, submit_and_record

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
_reg = ROOT / "tests" / "mrv" / "registry"


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


adapter = _load("_cadt_adapter_helpers", _reg / "test_cadt_adapter.py")
svc, fake = adapter.svc, adapter.fake
FAST = RetryPolicy(attempts=2, base_delay_s=0.01, timeout_s=60)


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict[str, Any]:
    return adapter.build_chain(tmp_path_factory.mktemp("issuance"))


@pytest.fixture
def live(tmp_path: Path, chain: dict[str, Any]) -> Iterator[dict[str, Any]]:
    with svc.LiveServer(f"sqlite:///{tmp_path / 'registry.db'}") as server, httpx.Client(base_url=server.url, timeout=120) as http:
        tokens = {"officer": server.token("officer", "officer-ana"), "developer": server.token("developer", chain["dev"].did),
                  "public": server.token("public", "anyone")}
        svc.setup_policy(http, tokens["officer"], vvb=chain["vvb"].did, developer=chain["dev"].did)
        yield {"server": server, "http": http, "tokens": tokens}


def _steps(settings: Any, run_id: str) -> dict[str, dict[str, str]]:
    """step name -> {role: digest} of the run's outputs (last step of each name wins)."""
    _, _, lineage = open_workspace(settings)
    out: dict[str, dict[str, str]] = {}
    for row in lineage.run_artifacts(run_id):
        if row.direction == "output" or getattr(row.direction, "value", None) == "output":
            out.setdefault(row.step_name, {})[row.role] = row.digest
    lineage.dispose()
    return out


def _read(settings: Any, digest: str) -> Any:
    _, store, lineage = open_workspace(settings)
    lineage.dispose()
    return json.loads(store.read_bytes(digest))


def test_submit_records_request_and_response_and_is_exactly_once(live, chain, tmp_path):
    settings, run_id, server = chain["settings"], chain["run_id"], live["server"]
    token = live["tokens"]["developer"]
    first = submit_and_record(settings=settings, run_id=run_id, package=chain["package_path"], registry_url=server.url,
                              token=token, labels=["CORSIA eligible"], quantity=100, retry=FAST, outbox_path=tmp_path / "outbox.db")
    assert first["status"] == "checks_passed"
    steps = _steps(settings, run_id)
    assert steps["registry-submit"] == {"registry/request": first["request"], "registry/response": first["response"]}
    request, response = _read(settings, first["request"]), _read(settings, first["response"])
    assert request["idempotency_key"] == first["idempotency_key"] and request["quantity"] == 100
    assert request["labels"] == ["CORSIA eligible"] and request["package_sha256"].startswith("sha256:")
    assert token not in json.dumps(request) and token not in json.dumps(response)
    assert response["body"]["id"] == first["request_id"] and len(response["body"]["checks"]) == 12

    # a rerun answers from the outbox: the same request, nothing posted again
    again = submit_and_record(settings=settings, run_id=run_id, package=chain["package_path"], registry_url=server.url,
                              token=token, quantity=100, retry=FAST, outbox_path=tmp_path / "outbox.db")
    assert again["request_id"] == first["request_id"] and again["response"] == first["response"]
    with server.store.connection(write=False) as conn:
        assert conn.execute(text("SELECT count(*) FROM intake_requests")).scalar_one() == 1

    # the officer has not decided: a bounded wait for the decision times out clearly
    with pytest.raises(IssuanceTimeout, match="still checks_passed"):
        poll_status(registry_url=server.url, token=token, request_id=first["request_id"], until=DECIDED, timeout_s=0.3, interval_s=0.1)


def test_a_refusal_is_recorded_then_raised(live, chain, tmp_path):
    settings, run_id, server = chain["settings"], chain["run_id"], live["server"]
    with pytest.raises(RegistryClientError) as err:  # a public token may not submit
        submit_and_record(settings=settings, run_id=run_id, package=chain["package_path"], registry_url=server.url,
                          token=live["tokens"]["public"], quantity=5, retry=FAST, outbox_path=tmp_path / "outbox.db")
    assert err.value.status_code == 403
    _, _, lineage = open_workspace(settings)
    failed = [s for s in lineage.list_steps(run_id) if s.name == "registry-submit" and getattr(s.status, "value", s.status) == "failed"]
    lineage.dispose()
    assert failed and "403" in (failed[-1].error or "")


def test_issuance_flow_on_prefect_submits_polls_publishes_and_records_lineage(live, chain, tmp_path):
    settings, run_id, server, http, tokens = chain["settings"], chain["run_id"], live["server"], live["http"], live["tokens"]
    with fake.FakeCadtServer(api_key=adapter.API_KEY) as node:
        params = {
            "settings": settings.model_dump(mode="json"), "run_id": run_id, "package": str(chain["package_path"]),
            "registry_url": server.url, "labels": ["CORSIA eligible"], "quantity": 250, "wait_for_decision": True,
            "timeout_s": 240.0, "interval_s": 0.5, "cadt_url": node.url,
            "outbox_path": str(tmp_path / "outbox.db"),  # per test: loopback ports (outbox keys) can repeat
        }
        env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
               "GX_ANALYTICS_ENABLED": "false", "MRV_REGISTRY_TOKEN": tokens["developer"], "MRV_CADT_API_KEY": adapter.API_KEY}
        env.pop("MRV_HOME", None)
        script = "import json, sys\nfrom flows.issuance import issuance\nprint('RESULT ' + json.dumps(issuance(**json.loads(sys.argv[1]))))\n"
        proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(params)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # the officer approves once the flow's request has arrived
            deadline = time.monotonic() + 240
            approved = False
            while not approved and proc.poll() is None and time.monotonic() < deadline:
                items = http.get("/v1/requests", params={"status": "checks_passed"}, headers=svc.auth(tokens["officer"])).json()["items"]
                for item in items:
                    r = http.post(f"/v1/requests/{item['id']}/approve", headers=svc.auth(tokens["officer"]))
                    assert r.status_code == 200, r.text
                    approved = True
                time.sleep(0.3)
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, out + err
        assert approved
        result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[len("RESULT "):])
        assert result["status"] == "issued" and result["cadt"]["project_action"] == "created"
        (unit,) = node.state.units.values()
        assert unit["unitCount"] == 250 and unit["issuance"]["id"] in result["cadt"]["issuance_ids"].values()

    steps = _steps(settings, run_id)
    assert steps["registry-submit"]["registry/request"] == result["submitted"]["request"]
    assert steps["registry-submit"]["registry/response"] == result["submitted"]["response"]
    assert _read(settings, steps["registry-status"]["registry/status"])["status"] == "issued"
    assert set(steps["cadt-publish"]) == {"cadt/request", "cadt/response"}
    assert _read(settings, steps["cadt-publish"]["cadt/response"])["unit_ids"] == result["cadt"]["unit_ids"]
    # the monitoring run's own outputs are still there: issuance steps were added to the same run
    assert "calculation" in {role for roles in steps.values() for role in roles}
