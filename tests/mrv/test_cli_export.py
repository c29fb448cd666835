"""``mrv lineage export``: the rows behind a run's tabular artifacts, derivations and selections
materialised, through the real CLI app (Typer CliRunner) on a real run."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from mrv import pipeline
from mrv.cli import app
from mrv.frames import FramePieces
from mrv.sample import generate_demo_project
from mrv.settings import MRVSettings

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[MRVSettings, str]:
    base = tmp_path_factory.mktemp("export")
    project = generate_demo_project(base / "project", seed=11)
    settings = MRVSettings(home=base / "ws")
    return settings, pipeline.run_local(settings, project)["run_id"]


def test_export_validated_rows_equal_the_selection(run, tmp_path):
    settings, run_id = run
    out = tmp_path / "valid.parquet"
    res = runner.invoke(app, ["lineage", "export", run_id, "validated", "-o", str(out), "--data-dir", str(settings.home)])
    assert res.exit_code == 0, res.output
    got = pd.read_parquet(out)
    ctx = pipeline.RunContext.open(settings, run_id=run_id)
    digest = next(r.digest for r in ctx.lineage.run_artifacts(run_id) if r.role == "validated" and r.direction == "output")
    expected = pipeline.read_validated(ctx.store, digest)
    expected = expected.concat() if isinstance(expected, FramePieces) else expected
    assert len(got) == len(expected) > 0
    assert got["value"].tolist() == expected["value"].tolist()
    assert got["calibration_valid"].tolist() == expected["calibration_valid"].tolist()
    assert f"{len(got):,} rows of validated" in " ".join(res.output.split())
    ctx.lineage.dispose()


def test_export_readings_as_csv_and_refusals(run, tmp_path):
    settings, run_id = run
    out = tmp_path / "exp1.csv"
    res = runner.invoke(app, ["lineage", "export", run_id, "readings/EXP-1", "-o", str(out), "--data-dir", str(settings.home)])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out)
    assert list(df.columns[:4]) == ["meter_id", "ts", "value", "unit"] and set(df["meter_id"]) == {"EXP-1"}

    res = runner.invoke(app, ["lineage", "export", run_id, "nope", "-o", str(tmp_path / "x.csv"), "--data-dir", str(settings.home)])
    assert res.exit_code != 0 and "no output artifact with role 'nope'" in " ".join(res.output.split())
    res = runner.invoke(app, ["lineage", "export", run_id, "validated", "-o", str(tmp_path / "x.xlsx"), "--data-dir", str(settings.home)])
    assert res.exit_code != 0 and "use a .parquet or .csv" in " ".join(res.output.split())
    res = runner.invoke(app, ["lineage", "export", run_id, "calculation", "-o", str(tmp_path / "c.csv"), "--data-dir", str(settings.home)])
    assert res.exit_code != 0 and not (tmp_path / "c.csv").exists()
    assert "calculation" in res.output and "is not a tabular artifact" in " ".join(res.output.split())
