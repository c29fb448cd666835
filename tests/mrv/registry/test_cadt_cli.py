"""``mrv registry cadt publish``: our intake service and the fake CADT node (``fake_cadt.py``; a
real CADT node cannot run here, see test_cadt_adapter.py) both on real uvicorn servers on
loopback, the command run through its Typer app."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mrv.registry.cli import registry_app

pytestmark = pytest.mark.integration

_here = Path(__file__).parent


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


adapter = _load("_cadt_adapter_for_cli", _here / "test_cadt_adapter.py")
chain, issued, node = adapter.chain, adapter.issued, adapter.node


def _publish(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(registry_app, ["cadt", "publish", *args], env=env)


def test_cadt_publish_command_publishes_once_and_republishes_in_place(issued, node):
    approval = issued["approval"]
    project_id = approval["project"]["projectId"]
    args = [project_id, "--registry", issued["url"], "--cadt", node.url]
    first = _publish(*args, "--json", env={"MRV_CADT_API_KEY": adapter.API_KEY})
    assert first.exit_code == 0, first.output
    doc = json.loads(first.output)
    assert doc["project_action"] == "created" and doc["commits"] == 2
    (project,) = node.state.projects.values()
    assert doc["warehouseProjectId"] == project["warehouseProjectId"] and project["originProjectId"] == project_id
    (unit,) = node.state.units.values()
    assert doc["unit_ids"] == {approval["units"][0]["unitBlockStart"]: unit["warehouseUnitId"]}
    assert node.state.staging == []

    again = _publish(*args, "--api-key", adapter.API_KEY, "--issuance", approval["issuance"]["id"])
    assert again.exit_code == 0, again.output
    assert f"-> CADT warehouseProjectId {project['warehouseProjectId']} (updated)" in again.output
    assert f"units {unit['unitBlockStart']} -> {unit['warehouseUnitId']} (updated)" in again.output
    assert len(node.state.projects) == 1 and len(node.state.units) == 1


def test_cadt_publish_command_shows_the_nodes_refusal_and_fails(issued, node):
    project_id = issued["approval"]["project"]["projectId"]
    r = _publish(project_id, "--registry", issued["url"], "--cadt", node.url, "--api-key", "wrong-key", "--attempts", "1")
    assert r.exit_code == 1
    assert "HTTP 403" in r.output and "x-api-key" in r.output
    missing = _publish("NO-SUCH-PROJECT", "--registry", issued["url"], "--cadt", node.url, "--api-key", adapter.API_KEY)
    assert missing.exit_code == 1 and "has no project NO-SUCH-PROJECT" in missing.output
    assert node.state.projects == {} and node.state.staging == []
