"""The Prefect flow and the CLI, for real: `mrv demo` in a subprocess on Prefect's ephemeral server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

MRV = [sys.executable, "-m", "mrv.cli"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_HOME": str(tmp_path / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            "GX_ANALYTICS_ENABLED": "false",
            "COLUMNS": "200",
        }
    )
    env.pop("MRV_HOME", None)
    return env


def test_mrv_demo_runs_the_prefect_flow_and_lineage_shows_it(tmp_path):
    ws = tmp_path / "ws"
    env = _env(tmp_path)
    proc = subprocess.run([*MRV, "demo", "--data-dir", str(ws)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "issuable (rounded down)" in out
    assert "ER_y" in out
    summaries = list((ws / "runs").glob("*/summary.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    assert summary["run_id"] in out
    assert f"{summary['issuable_tCO2e']:,}" in out

    # The Prefect path gives the same calculation bytes as the plain-function path.
    from mrv import pipeline
    from mrv.settings import MRVSettings

    local = pipeline.run_local(MRVSettings(home=tmp_path / "ws-local"), ws / "demo-project" / "project.yaml")
    assert local["artifacts"]["calculation"] == summary["artifacts"]["calculation"]

    shown = subprocess.run(
        [*MRV, "lineage", "show", summary["run_id"], "--json", "--data-dir", str(ws)], env=env, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    digests = {a["digest"] for a in doc["artifacts"]}
    assert summary["artifacts"]["calculation"] in digests
    assert all(a["digest"].startswith("sha256:") and a["size"] > 0 for a in doc["artifacts"])
    assert any(a["role"].startswith("raw/EXP-1/") for a in doc["artifacts"])

    table = subprocess.run([*MRV, "lineage", "show", summary["run_id"], "--data-dir", str(ws)], env=env, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and "validate_readings" in table.stdout


def test_cli_errors_are_clear_and_exit_2(tmp_path):
    env = _env(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("project: {id: X, name: x, type: wind}\nmethodology: nope\n")
    proc = subprocess.run([*MRV, "run", str(bad), "--data-dir", str(tmp_path / "ws")], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "methodology" in proc.stderr
    assert "Traceback" not in proc.stderr

    proc = subprocess.run([*MRV, "lineage", "show", "no-such-run", "--data-dir", str(tmp_path / "ws")], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no-such-run" in proc.stderr


SMALL_SAMPLES = {
    "landfill": ("mrv.sample.landfill", "generate_landfill_project", {"seed": 5, "days": 5}),
    "cooking": ("mrv.sample.cooking", "generate_cooking_project", {"seed": 5, "devices": 60, "days": 28}),
    "arr": ("mrv.sample.arr", "generate_arr_project", {"seed": 5}),
}


@pytest.mark.parametrize("sample", sorted(SMALL_SAMPLES))
def test_mrv_run_flows_instrument_fleet_and_satellite_projects(tmp_path, sample):
    """`mrv run` runs the Prefect flow for each kind of monitored data, and gives the same calculation
    bytes as the plain-function path."""
    import importlib

    from mrv import pipeline
    from mrv.settings import MRVSettings

    module, func, kwargs = SMALL_SAMPLES[sample]
    project = getattr(importlib.import_module(module), func)(tmp_path / "project", **kwargs)
    ws = tmp_path / "ws"
    proc = subprocess.run([*MRV, "run", str(project), "--data-dir", str(ws)], env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summaries = list((ws / "runs").glob("*/summary.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    assert summary["issuable_tCO2e"] > 0
    assert f"{summary['issuable_tCO2e']:,}" in proc.stdout
    if sample == "arr":  # VM0047 treatments are printed in their own units, never as energy
        assert "Conservative treatments applied" in proc.stdout and "kWh" not in proc.stdout
    local = pipeline.run_local(MRVSettings(home=tmp_path / "ws-local"), project)
    assert local["artifacts"]["calculation"] == summary["artifacts"]["calculation"]
