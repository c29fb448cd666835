"""The monitoring pipeline end to end, without Prefect (plain functions), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mrv import pipeline
from mrv.errors import ContractBlocked, IngestError, ParameterError
from mrv.lineage import LineageStore
from mrv.sample import generate_demo_project
from mrv.settings import MRVSettings


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory) -> Path:
    """The sample project, generated once; tests copy it before changing anything."""
    return generate_demo_project(tmp_path_factory.mktemp("demo") / "project", seed=7)


def _copy_project(template: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(template.parent, dest)
    return dest / template.name


def _settings(tmp_path: Path, lineage_url: str) -> MRVSettings:
    return MRVSettings(home=tmp_path / "ws", lineage_url=lineage_url)


def _sha256(p: Path) -> str:
    return "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()


def test_demo_run_records_every_input_and_result(tmp_path, lineage_url, demo_template):
    project = _copy_project(demo_template, tmp_path / "project")
    settings = _settings(tmp_path, lineage_url)
    summary = pipeline.run_local(settings, project)

    q = summary["quantities"]
    # ER_y = EG_PJ_y × EF_grid_CM_y − PE_y with PE_y = 0 for wind (ACM0002); rounded down.
    assert q["ER_y"]["value"] == pytest.approx(q["EG_PJ_y"]["value"] * q["EF_grid_CM_y"]["value"])
    assert summary["issuable_tCO2e"] == int(q["ER_y"]["value"])
    assert 40_000 < q["EG_PJ_y"]["value"] < 200_000  # 50 MW at a plausible wind capacity factor [MWh]

    lineage = LineageStore(settings.lineage_url)
    rows = lineage.run_artifacts(summary["run_id"])
    inputs = {r.digest for r in rows if r.direction == "input" and r.role.startswith("raw/")}
    raw_files = [p for p in (project.parent / "data").rglob("*") if p.is_file()] + [project.parent / "invoices.csv"]
    assert raw_files, "the sample project has raw files"
    for f in raw_files:
        assert _sha256(f) in inputs, f"{f.name} missing from the run's lineage"
    roles = {r.role for r in rows}
    assert {"validated", "quarantine", "validation_result", "calculation"} <= roles
    run = lineage.get_run(summary["run_id"])
    assert getattr(run.status, "value", run.status) == "completed"

    # Faults built into the sample are visible: the duplicated hour is quarantined with its rule,
    # and the methodology records the conservative treatments it applied.
    out = Path(settings.home) / "runs" / summary["run_id"]
    quarantine = (out / "quarantine.csv").read_text()
    assert "unique" in quarantine or "duplicate" in quarantine
    kinds = {t["kind"] for t in summary["treatments"]}
    assert any("calibration" in k for k in kinds)
    assert "missing_intervals" in kinds
    assert any(t["kind"] == "invoice_cross_check" and t["flagged"] for t in summary["treatments"])
    assert json.loads((out / "summary.json").read_text())["run_id"] == summary["run_id"]
    events = (Path(settings.home) / "openlineage" / "events.jsonl").read_text().splitlines()
    assert any(json.loads(e)["eventType"] == "COMPLETE" for e in events)


def test_resume_after_crash_reuses_steps_and_is_byte_identical(tmp_path, lineage_url, demo_template):
    # Reference: an uninterrupted run in its own workspace.
    ref_project = _copy_project(demo_template, tmp_path / "ref")
    ref = pipeline.run_local(MRVSettings(home=tmp_path / "ws-ref"), ref_project)

    # Crash: the calculate step fails (a parameter is missing) after ingest and validation completed.
    project = _copy_project(demo_template, tmp_path / "crash")
    good_yaml = project.read_text()
    project.write_text("\n".join(line for line in good_yaml.splitlines() if "EF_grid_BM_y" not in line) + "\n")
    settings = _settings(tmp_path, lineage_url)
    with pytest.raises(ParameterError, match="EF_grid_BM_y|EF_grid_CM_y"):
        pipeline.run_local(settings, project)
    lineage = LineageStore(settings.lineage_url)
    failed = lineage.list_runs()[0]
    assert getattr(failed.status, "value", failed.status) == "failed"
    completed_before = {s.name for s in lineage.list_steps(failed.id) if getattr(s.status, "value", s.status) == "completed"}
    assert "validate_readings" in completed_before

    # Re-run with the fix: every step that completed is reused, not recomputed.
    project.write_text(good_yaml)
    summary = pipeline.run_local(settings, project)
    steps = {s.name: getattr(s.status, "value", s.status) for s in lineage.list_steps(summary["run_id"])}
    for name in completed_before:
        assert steps[name] == "cached", f"{name} was recomputed"
    assert steps["calculate"] == "completed"
    assert summary["artifacts"]["calculation"] == ref["artifacts"]["calculation"]
    assert summary["artifacts"]["validation_result"] == ref["artifacts"]["validation_result"]


def test_wrong_period_blocks_and_keeps_the_validation_result(tmp_path, lineage_url, demo_template):
    project = _copy_project(demo_template, tmp_path / "project")
    text = project.read_text()
    # Same files, but a monitoring period the data does not cover.
    project.write_text(text.replace("start: 2023-01-01", "start: 2019-01-01").replace("end: 2023-12-31", "end: 2019-12-31"))
    settings = _settings(tmp_path, lineage_url)
    with pytest.raises(ContractBlocked) as info:
        pipeline.run_local(settings, project)
    assert "EXP-1" in str(info.value)
    lineage = LineageStore(settings.lineage_url)
    run = lineage.list_runs()[0]
    assert getattr(run.status, "value", run.status) == "failed"
    rows = lineage.run_artifacts(run.id)
    assert any(r.role == "validation_result" for r in rows)
    assert not any(r.role == "calculation" for r in rows)
    assert not (Path(settings.home) / "runs" / run.id).exists()


def test_malformed_file_names_file_and_row_and_writes_no_result(tmp_path, lineage_url, demo_template):
    project = _copy_project(demo_template, tmp_path / "project")
    victim = sorted((project.parent / "data").rglob("*.csv"))[0]
    lines = victim.read_text().splitlines()
    lines[5] = lines[5].split(",")[0] + ",not-a-number"
    victim.write_text("\n".join(lines) + "\n")
    settings = _settings(tmp_path, lineage_url)
    with pytest.raises(IngestError) as info:
        pipeline.run_local(settings, project)
    msg = str(info.value)
    assert victim.name in msg and "6" in msg and "not-a-number" in msg
    run = LineageStore(settings.lineage_url).list_runs()[0]
    assert not any(r.role == "calculation" for r in LineageStore(settings.lineage_url).run_artifacts(run.id))
    assert not (Path(settings.home) / "runs" / run.id).exists()


def test_validated_artifact_is_a_row_selection_equal_to_the_contract_on_the_readings(tmp_path, demo_template):
    """The validated artifact names the readings artifacts it selects from (by sha256) and
    materialises to exactly the valid rows of the contract run on their concatenation."""
    import pandas as pd

    from mrv.contracts import load_contract
    from mrv.frames import FramePieces, concat_readings
    from mrv.selection import is_selection

    project = _copy_project(demo_template, tmp_path / "project")
    settings = MRVSettings(home=tmp_path / "ws")
    summary = pipeline.run_local(settings, project)
    ctx = pipeline.RunContext.open(settings, run_id=summary["run_id"])
    outputs = {r.role: r.digest for r in ctx.lineage.run_artifacts(summary["run_id"]) if r.direction == "output"}
    doc = json.loads(ctx.store.read_bytes(outputs["validated"]))
    assert is_selection(doc)
    readings = {role: d for role, d in outputs.items() if role.startswith("readings/")}
    assert [(i["role"], i["sha256"]) for i in doc["inputs"]] == sorted(readings.items())
    # The sample's faults leave the selection visible: quarantined rows cut the kept ranges, and
    # a meter whose calibration lapsed has calibration_invalid ranges.
    assert any(len(i["keep"]) > 1 or i["keep"] != [[0, i["rows"]]] for i in doc["inputs"])
    assert any(i["calibration_invalid"] for i in doc["inputs"])

    frames = [pipeline.read_parquet_artifact(ctx.store, d) for _, d in sorted(readings.items())]
    spec = pipeline.load_spec(ctx, ctx.lineage.get_run(summary["run_id"]).project_file_digest)
    outcome = pipeline.run_contract(concat_readings(frames), contract=load_contract(pipeline.METER_CONTRACT),
                                    context=pipeline.contract_context(spec), engine="native")
    valid = pipeline.read_validated(ctx.store, outputs["validated"])
    valid = valid.concat() if isinstance(valid, FramePieces) else valid
    expected = outcome.valid.reset_index(drop=True)
    assert len(valid) == len(expected) == outcome.input_rows - len(outcome.quarantine)
    pd.testing.assert_frame_equal(valid.reset_index(drop=True), expected, check_categorical=False)
    assert int((~valid["calibration_valid"]).sum()) > 0
    ctx.lineage.dispose()


def test_readings_derivation_is_recomputed_from_raw_and_refused_for_another_code_version(tmp_path, demo_template):
    """Out of the process cache, a readings artifact is recomputed from the stored raw files (the
    same frame); a derivation recorded by another package version is refused, not reinterpreted."""
    import pandas as pd

    from mrv.artifacts import LocalArtifactStore
    from mrv.errors import ArtifactError

    project = _copy_project(demo_template, tmp_path / "project")
    settings = MRVSettings(home=tmp_path / "ws")
    summary = pipeline.run_local(settings, project)
    ctx = pipeline.RunContext.open(settings, run_id=summary["run_id"])
    digest = next(r.digest for r in ctx.lineage.run_artifacts(summary["run_id"]) if r.role == "readings/EXP-1")
    doc = json.loads(ctx.store.read_bytes(digest))
    assert doc["format"] == "open-dmrv/derived-frame" and doc["function"] == "mrv.ingest.meters.read_meter_files"
    spec = pipeline.load_spec(ctx, ctx.lineage.get_run(summary["run_id"]).project_file_digest)
    expected = pipeline.read_meter_files(spec.meter_files(spec.meter("EXP-1")), meter=spec.meter("EXP-1"))
    got = pipeline.read_parquet_artifact(ctx.store, digest)  # no run active: not cached, recomputed
    pd.testing.assert_frame_equal(got, expected)
    assert len(got) == doc["rows"]

    other = LocalArtifactStore(tmp_path / "other")
    for i in doc["inputs"]:
        other.put_bytes(ctx.store.read_bytes(i["sha256"]), media_type="application/octet-stream", name=i["name"])
    forged = other.put_bytes(pipeline.json_bytes({**doc, "code_version": "0.0.1"}), media_type="application/json")
    with pytest.raises(ArtifactError, match=r"derived by open-dmrv 0\.0\.1"):
        pipeline.read_parquet_artifact(other, forged.digest)
    short = other.put_bytes(pipeline.json_bytes({**doc, "rows": doc["rows"] + 1}), media_type="application/json")
    with pytest.raises(ArtifactError, match="recomputing it gave"):
        pipeline.read_parquet_artifact(other, short.digest)
    ctx.lineage.dispose()
