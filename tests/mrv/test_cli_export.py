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


def export(run: tuple[MRVSettings, str], role: str, out) -> tuple[int, str]:
    """``mrv lineage export`` of the fixture's run: exit code and the output on one line."""
    settings, run_id = run
    res = runner.invoke(app, ["lineage", "export", run_id, role, "-o", str(out), "--data-dir", str(settings.home)])
    return res.exit_code, " ".join(res.output.split())


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[MRVSettings, str]:
    base = tmp_path_factory.mktemp("export")
    project = generate_demo_project(base / "project", seed=11)
    settings = MRVSettings(home=base / "ws")
    return settings, pipeline.run_local(settings, project)["run_id"]


def test_export_validated_rows_equal_the_selection(run, tmp_path):
    settings, run_id = run
    out = tmp_path / "valid.parquet"
    code, output = export(run, "validated", out)
    assert code == 0, output
    got = pd.read_parquet(out)
    ctx = pipeline.RunContext.open(settings, run_id=run_id)
    digest = next(r.digest for r in ctx.lineage.run_artifacts(run_id) if r.role == "validated" and r.direction == "output")
    expected = pipeline.read_validated(ctx.store, digest)
    expected = expected.concat() if isinstance(expected, FramePieces) else expected
    assert len(got) == len(expected) > 0
    assert got["value"].tolist() == expected["value"].tolist()
    assert got["calibration_valid"].tolist() == expected["calibration_valid"].tolist()
    assert f"{len(got):,} rows of validated" in output
    ctx.lineage.dispose()


def test_export_readings_as_csv_and_refusals(run, tmp_path):
    out = tmp_path / "exp1.csv"
    code, output = export(run, "readings/EXP-1", out)
    assert code == 0, output
    df = pd.read_csv(out)
    assert list(df.columns[:4]) == ["meter_id", "ts", "value", "unit"] and set(df["meter_id"]) == {"EXP-1"}

    code, output = export(run, "nope", tmp_path / "x.csv")
    assert code != 0 and "no output artifact with role 'nope'" in output
    code, output = export(run, "validated", tmp_path / "x.xlsx")
    assert code != 0 and "use a .parquet or .csv" in output
    code, output = export(run, "calculation", tmp_path / "c.csv")
    assert code != 0 and not (tmp_path / "c.csv").exists()
    assert "calculation" in output and "is not a tabular artifact" in output
