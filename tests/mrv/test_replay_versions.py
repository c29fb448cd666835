"""Replay refuses when a data contract the run used is installed at another version.

Source-based runs (instrument contract ``flare_instruments`` of the ACM0001 landfill sample, device
contract ``device_energy`` of the GS MECD cooking sample): the contract the package records is
looked up in the report's replay section and in the packaged validation result, and checked
against the installed contract. ``--use-installed`` replays anyway and reports the difference.

Real runs, real signed packages; the "installed" contracts are real YAML copies with another
version (tests/mrv/installed_contracts.py).
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mrv.contracts
from mrv import pipeline
from mrv.cli import app
from mrv.contracts import load_contract
from mrv.errors import ReplayError
from mrv.replay import recorded_contracts, replay_package
from mrv.report.build import build_report
from mrv.sample.cooking import generate_cooking_project
from mrv.sample.landfill import generate_landfill_project
from mrv.settings import MRVSettings
from mrv.signing import KeyRole, generate_key

sys.path.insert(0, str(Path(__file__).parent))
from installed_contracts import install_contracts  # noqa: E402

pytestmark = pytest.mark.integration

SAMPLES = {
    # (generator, the contract the methodology's monitored data uses)
    "landfill": (lambda d: generate_landfill_project(d, seed=5, days=3), "flare_instruments"),
    "cooking": (lambda d: generate_cooking_project(d, seed=5, devices=60, days=7), "device_energy"),
}


@pytest.fixture(scope="module", params=sorted(SAMPLES))
def package(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    make, contract_id = SAMPLES[request.param]
    settings = MRVSettings(home=root / "ws")
    summary = pipeline.run_local(settings, make(root / "project"), max_workers=2)
    ws, store, lineage = pipeline.open_workspace(settings)
    out = build_report(workspace=ws, store=store, lineage=lineage, run_id=summary["run_id"], key=generate_key(role=KeyRole.developer), out_dir=root / "out")
    return {"path": out.package.path, "contract_id": contract_id, "report": out.report}


def _other_version(version: str) -> str:
    major, minor, patch = (int(x) for x in version.split("."))
    return f"{major}.{minor + 1}.{patch}"


def test_the_package_records_the_instrument_or_device_contract(package):
    subject = package["report"]["credentialSubject"]
    with zipfile.ZipFile(package["path"]) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        path = next(a["path"] for a in manifest["artifacts"] if a["role"] == "validation_result")
        validation = json.loads(zf.read(path))
    installed = load_contract(package["contract_id"]).version
    assert validation["contract"] == {"id": package["contract_id"], "version": installed}
    found = recorded_contracts(subject["replay"], {"validation_result": validation})
    assert [(c.kind, c.id, c.version) for c in found] == [("tabular", package["contract_id"], installed)]
    # and a clean replay has nothing to report
    result = replay_package(package["path"])
    assert result.identical and result.notes == []


def test_another_installed_contract_version_is_refused(package, monkeypatch, tmp_path):
    cid = package["contract_id"]
    recorded = load_contract(cid).version
    newer = _other_version(recorded)
    install_contracts(monkeypatch, tmp_path / "contracts", {cid: newer})
    assert mrv.contracts.load_contract(cid).version == newer  # the loaders now see the other installation
    with pytest.raises(ReplayError, match="replay refused") as info:
        replay_package(package["path"])
    assert f"data contract {cid} {recorded} was used; {newer} is installed" in str(info.value)
    assert "--use-installed" in str(info.value)


def test_use_installed_replays_and_reports_every_difference(package, monkeypatch, tmp_path):
    cid = package["contract_id"]
    recorded = load_contract(cid).version
    newer = _other_version(recorded)
    install_contracts(monkeypatch, tmp_path / "contracts", {cid: newer})
    result = replay_package(package["path"], use_installed=True)
    assert result.notes == [f"replayed with installed code: data contract {cid} {recorded} was used; {newer} is installed"]
    # The rules are unchanged, only the version: the validation result records the installed version
    # and differs; the rows and the calculation are the same.
    assert [s.name for s in result.steps if not s.matched] == ["validate: result"]
    assert result.ok and result.issuable_replayed == result.issuable_recorded

    runner = CliRunner()
    refused = runner.invoke(app, ["verify", str(package["path"]), "--replay"])
    assert refused.exit_code != 0
    assert "replay refused" in refused.output and cid in refused.output
    shown = runner.invoke(app, ["verify", str(package["path"]), "--replay", "--use-installed", "--json"])
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.output[shown.output.index("{\n"):])
    assert doc["notes"] == result.notes


def test_a_contract_the_run_did_not_use_is_not_a_difference(package, monkeypatch, tmp_path):
    # meter_readings is used by neither sample's methodology.
    other = "meter_readings"
    assert other != package["contract_id"]
    install_contracts(monkeypatch, tmp_path / "contracts", {other: _other_version(load_contract(other).version)})
    result = replay_package(package["path"])
    assert result.identical and result.notes == []
