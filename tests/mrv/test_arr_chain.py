"""A satellite ARR project (VCS VM0047 v1.0, area-based) through the whole chain: STAC scenes ->
raster contract -> plot statistics -> field inventory -> VM0047 -> signed report + package -> VVB
replay of every step -> attest.

Real files, real signatures, the seeded synthetic sample (36 project plots, 80 control candidates,
14 years of small scenes), so VM0047's matching rules (>= 30 plots, three pre-project years) hold.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import zipfile
from pathlib import Path

import pytest

from mrv import pipeline
from mrv.attest import Opinion, attest
from mrv.package import verify_package
from mrv.replay import replay_package
from mrv.report.build import build_report
from mrv.sample.arr import generate_arr_project
from mrv.settings import MRVSettings
from mrv.signing import KeyRole, generate_key, verify_credential

sys.path.insert(0, str(Path(__file__).parent))
from installed_contracts import install_contracts  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("arr")
    project = generate_arr_project(root / "project", seed=47)
    settings = MRVSettings(home=root / "ws")
    summary = pipeline.run_local(settings, project)
    ws, store, lineage = pipeline.open_workspace(settings)
    dev = generate_key(role=KeyRole.developer)
    out = build_report(workspace=ws, store=store, lineage=lineage, run_id=summary["run_id"], key=dev, out_dir=root / "out")
    return {"root": root, "project": project, "settings": settings, "summary": summary, "lineage": lineage, "store": store, "out": out}


def test_run_records_every_step_and_a_positive_result(chain):
    summary = chain["summary"]
    assert summary["methodology_id"] == "VCS:VM0047:1.0"
    assert summary["issuable_tCO2e"] > 0
    q = {k: v["value"] for k, v in summary["quantities"].items()}
    assert 0 < q["PB_t"] < 1  # controls grew, slower than the planting: a partial baseline
    assert q["buffer_y"] == pytest.approx(0.20 * q["ER_y"])
    assert summary["issuable_tCO2e"] == int(q["ER_after_buffer_y"])
    steps = {s.name for s in chain["lineage"].list_steps(summary["run_id"])}
    assert {"ingest_scenes", "validate_scenes", "plot_statistics", "ingest_inventory", "calculate"} <= steps
    # Clouds quarantine plot-dates (with the rule), nothing is lost, and no previous campaign -> documented zero stock.
    rows = summary["contract"]["rows"]
    assert rows["quarantined"] > 0 and rows["input"] == rows["valid"] + rows["quarantined"]
    assert any(t["kind"] == "previous_stock_zero" for t in summary["treatments"])


def test_raw_scene_assets_are_step_inputs(chain):
    arts = chain["lineage"].run_artifacts(chain["summary"]["run_id"])
    raw = {a.role for a in arts if a.direction == "input" and a.role.startswith("raw/scenes/")}
    assert any(r.endswith("/red") for r in raw) and any(r.endswith("/cloud_mask") for r in raw)
    assert any(a.role == "raw/inventory/inventory.csv" for a in arts)


def test_signed_report_package_map_and_series(chain):
    out = chain["out"]
    assert verify_credential(out.report).verified
    assert out.report["credentialSubject"]["issuable_tCO2e"] == chain["summary"]["issuable_tCO2e"]
    check = verify_package(out.package.path, verify_signature=verify_credential, required_signatures=["report"])
    assert check.ok, check.first_failure
    with zipfile.ZipFile(out.package.path) as zf:
        html = zf.read("report/report.html").decode()
        roles = {e["role"] for e in json.loads(zf.read("manifest.json"))["artifacts"]}
    assert {"validated", "quarantine", "validation_result", "calculation", "scenes", "plot_geometry", "inventory"} <= roles
    svg = " ".join(base64.b64decode(m).decode() for m in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", html))
    assert "project plots (median SI)" in svg and "matched controls (median SI)" in svg  # SI series per group
    assert "matched controls (" in svg and "donor pool (1)" in svg  # the map legend


def test_vvb_replay_reproduces_every_step_and_attests(chain):
    out = chain["out"]
    replay = replay_package(out.package.path)
    assert replay.identical, [s for s in replay.steps if not s.matched]
    assert replay.issuable_replayed == replay.issuable_recorded == chain["summary"]["issuable_tCO2e"]
    names = [s.name for s in replay.steps]
    for n in ("ingest scenes", "validate scenes", "plot statistics: valid plot-dates", "ingest inventory: trees", "calculate"):
        assert n in names
    vvb = generate_key(role=KeyRole.vvb)
    _, info = attest(out.package.path, key=vvb, opinion=Opinion.positive, findings=[], replay=replay, materiality=replay.materiality)
    final = verify_package(info.path, verify_signature=verify_credential, required_signatures=["report", "statement"])
    assert final.ok, final.first_failure


@pytest.mark.parametrize(("contract_id", "kind"), [("raster_scenes", "raster"), ("plot_statistics", "data"), ("tree_inventory", "data")])
def test_replay_refuses_when_any_contract_the_run_used_is_installed_at_another_version(chain, monkeypatch, tmp_path, contract_id, kind):
    """An ARR run uses three contracts (the raster contract, plot_statistics, tree_inventory): each
    recorded version is checked against the installed one, not only the one the report names."""
    import mrv.contracts
    import mrv.raster.contracts
    from mrv.errors import ReplayError

    load = mrv.raster.contracts.load_raster_contract if kind == "raster" else mrv.contracts.load_contract
    recorded = load(contract_id).version
    install_contracts(monkeypatch, tmp_path / "contracts", {contract_id: "9.0.0"})
    with pytest.raises(ReplayError, match="replay refused") as info:
        replay_package(chain["out"].package.path)
    assert f"{kind} contract {contract_id} {recorded} was used; 9.0.0 is installed" in str(info.value)
    assert str(info.value).count("was used;") == 1  # the other two contracts are as recorded


def test_replay_with_installed_inventory_contract_reports_the_difference(chain, monkeypatch, tmp_path):
    import mrv.contracts

    recorded = mrv.contracts.load_contract("tree_inventory").version
    install_contracts(monkeypatch, tmp_path / "contracts", {"tree_inventory": "9.0.0"})
    result = replay_package(chain["out"].package.path, use_installed=True)
    assert result.notes == [f"replayed with installed code: data contract tree_inventory {recorded} was used; 9.0.0 is installed"]
    # Same rules, another version: only the inventory validation document (which records the version) differs.
    assert [s.name for s in result.steps if not s.matched] == ["ingest inventory: result"]
    assert result.ok and result.issuable_replayed == result.issuable_recorded


def test_plot_statistics_refuses_a_stage_one_result_of_other_scenes(chain):
    """compute_plot_statistics reuses a given stage-1 result (the replay passes the one it just
    compared) only when it is the result for the same scenes and contract."""
    from mrv import arr
    from mrv.project import load_project
    from mrv.raster.scenes import scene_from_json

    spec = load_project(chain["project"])
    arts = chain["lineage"].run_artifacts(chain["summary"]["run_id"])
    digest = {a.role: a.digest for a in arts}
    scenes = [scene_from_json(d, chain["store"]) for d in json.loads(chain["store"].read_bytes(digest["scenes"]))]
    geo = arr.plot_geometry(spec, json.loads(chain["store"].read_bytes(digest["plot_geometry"])))
    fewer = arr.scene_stage(spec, scenes[1:], geo)
    with pytest.raises(ValueError, match="other scenes"):
        arr.compute_plot_statistics(spec, scenes, geo, prior=fewer)
    # the stage-1 result of the same scenes is the one the run recorded
    assert arr.scene_stage(spec, scenes, geo).to_bytes() == chain["store"].read_bytes(digest["scene_validation"])


def test_rerun_reuses_every_step(chain, tmp_path):
    again = pipeline.run_local(chain["settings"], chain["project"])
    assert again["issuable_tCO2e"] == chain["summary"]["issuable_tCO2e"]
    assert again["artifacts"] == chain["summary"]["artifacts"]


def test_a_blocked_raster_contract_stops_the_run_and_writes_no_result(tmp_path):
    """Nothing half-written: scenes at 10 m against a contract expecting 30 m block the run at the
    scene stage; the validation result is kept as evidence, no statistics, calculation or run
    summary are written, and the run is marked failed."""
    from mrv.errors import ContractBlocked

    project = generate_arr_project(tmp_path / "project", seed=47)
    text = project.read_text()
    assert "resolution_m: 10.0" in text
    project.write_text(text.replace("resolution_m: 10.0", "resolution_m: 30.0"))
    settings = MRVSettings(home=tmp_path / "ws")
    run_id, _ = pipeline.start_run(settings, project)
    with pytest.raises(ContractBlocked, match="resolution"):
        pipeline.run_local(settings, project, run_id=run_id)
    ws, store, lineage = pipeline.open_workspace(settings)
    assert str(getattr(lineage.get_run(run_id).status, "value", lineage.get_run(run_id).status)) == "failed"
    roles = {a.role for a in lineage.run_artifacts(run_id)}
    assert "scene_validation" in roles
    assert not roles & {"validated", "quarantine", "calculation", "inventory"}
    assert not (ws.run_dir(run_id) / "summary.json").exists()


def test_a_blocked_inventory_contract_stops_the_run_and_writes_nothing_downstream(tmp_path):
    """A tree measured with DBH 250 cm (above the project's D_max_qaqc) breaks the tree_inventory
    contract's block rule ``dbh_range``: the run stops with an error naming the rule, the file and
    the row; the inventory validation result is kept as evidence; no inventory, calculation or run
    summary is written, and the run is marked failed."""
    import csv

    from mrv.errors import ContractBlocked

    project = generate_arr_project(tmp_path / "project", seed=47)
    assert "D_max_qaqc:\n    value: 100.0" in project.read_text()
    inv = project.parent / "field" / "inventory.csv"
    with inv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0])
    bad = 6  # 0-based data row -> file line 8 (header is line 1)
    assert float(rows[bad]["dbh_cm"]) <= 100.0
    rows[bad]["dbh_cm"] = "250.0"
    with inv.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    tree = rows[bad]["tree_id"]

    settings = MRVSettings(home=tmp_path / "ws")
    run_id, _ = pipeline.start_run(settings, project)
    with pytest.raises(ContractBlocked) as info:
        pipeline.run_local(settings, project, run_id=run_id)
    msg = str(info.value)
    assert "tree_inventory" in msg and "dbh_range" in msg
    assert f"inventory.csv row {bad + 2}:" in msg, msg  # file line (header = line 1)
    assert tree in msg and "250" in msg
    assert getattr(info.value, "rule_ids", None) == ["dbh_range"]

    ws, store, lineage = pipeline.open_workspace(settings)
    run = lineage.get_run(run_id)
    assert str(getattr(run.status, "value", run.status)) == "failed"
    arts = lineage.run_artifacts(run_id)
    roles = {a.role for a in arts}
    assert "inventory_validation" in roles  # the evidence
    assert not roles & {"inventory", "inventory_quarantine", "calculation"}
    assert not (ws.run_dir(run_id) / "summary.json").exists()
    # The evidence says which rule failed and how often.
    evidence = next(a for a in arts if a.role == "inventory_validation")
    doc = json.loads(store.read_bytes(evidence.digest))
    failed = [r for r in doc["summary"]["rules"] if not r["success"]]
    assert [(r["rule_id"], r["severity"], r["unexpected_count"]) for r in failed] == [("dbh_range", "block", 1)]
    steps = {s.name: s for s in lineage.list_steps(run_id)}
    assert "calculate" not in steps
    assert str(getattr(steps["ingest_inventory"].status, "value", steps["ingest_inventory"].status)) == "failed"
