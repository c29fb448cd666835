"""The run summary ``mrv run`` and ``mrv demo`` print (mrv.cli._print_summary): each conservative
treatment is shown with the unit it carries. Energy treatments (ACM0002) in kWh; the treatments of
a VM0047 ARR run are not energy and never show kWh. Real runs of the bundled samples
(pipeline.run_local, the same calculation the Prefect flow runs), printed by the real function."""

from __future__ import annotations


import pytest
from rich.console import Console

from mrv import cli, pipeline
from mrv.settings import MRVSettings


def _printed(summary: dict, monkeypatch: pytest.MonkeyPatch) -> str:
    console = Console(width=250, color_system=None, highlight=False)
    monkeypatch.setattr(cli, "console", console)
    with console.capture() as cap:
        cli._print_summary(summary)
    return cap.get()


def _treatment_lines(out: str) -> list[str]:
    head = out.index("Conservative treatments applied")
    tail = out.index("\nRun ", head)
    return [line for line in out[head:tail].splitlines() if line.startswith("  - ")]


@pytest.fixture(scope="module")
def arr_summary(tmp_path_factory):
    from mrv.sample.arr import generate_arr_project

    root = tmp_path_factory.mktemp("arr-cli")
    project = generate_arr_project(root / "project", seed=47)
    return pipeline.run_local(MRVSettings(home=root / "ws"), project)


@pytest.fixture(scope="module")
def wind_summary(tmp_path_factory):
    from mrv.sample import generate_demo_project

    root = tmp_path_factory.mktemp("wind-cli")
    project = generate_demo_project(root / "project", seed=7)
    return pipeline.run_local(MRVSettings(home=root / "ws"), project)


def test_arr_treatments_are_printed_without_kwh(arr_summary, monkeypatch) -> None:
    assert arr_summary["methodology_id"] == "VCS:VM0047:1.0"
    treatments = arr_summary["treatments"]
    zero = next(t for t in treatments if t["kind"] == "previous_stock_zero")
    out = _printed(arr_summary, monkeypatch)
    lines = _treatment_lines(out)
    assert len(lines) == len(treatments)
    assert "kWh" not in out  # nothing of an ARR run is energy
    line = next(ln for ln in lines if "previous_stock_zero" in ln)
    assert f" {zero['plots']} plots  " in line and zero["detail"] in line  # the count the treatment carries, in its unit


def test_energy_treatments_keep_their_kwh(wind_summary, monkeypatch) -> None:
    out = _printed(wind_summary, monkeypatch)
    lines = _treatment_lines(out)
    mpe = next(t for t in wind_summary["treatments"] if t["kind"] == "delayed_calibration_mpe")
    line = next(ln for ln in lines if "delayed_calibration_mpe" in ln)
    assert mpe["meter_id"] in line and f" {mpe['effect_on_net_kWh']:,.1f} kWh  " in line
    quiet = [t for t in wind_summary["treatments"] if t["kind"] == "invoice_cross_check" and not t.get("flagged")]
    total = sum(t["effect_on_net_kWh"] for t in quiet)
    assert any(f"{len(quiet)} periods" in ln and f" {total:,.1f} kWh  " in ln for ln in lines)


def test_treatment_quantity_uses_the_unit_the_treatment_carries() -> None:
    """One treatment of each shape the methodologies emit (keys as in their monitoring modules)."""
    q = cli._treatment_quantity
    assert q({"kind": "invoice_cross_check", "effect_on_net_kWh": -1914.036, "kWh_adjusted": -1914.036}) == "-1,914.0 kWh"  # ACM0002
    assert q({"kind": "missing_intervals", "effect_on_net_kWh": 0.0, "intervals": 192, "rows": 0}) == "0.0 kWh"
    assert q({"kind": "flow_gap", "count": 42, "count_unit": "intervals"}) == "42 intervals"  # ACM0001 recorder
    assert q({"kind": "device_excluded_low_coverage", "kWh_excluded": 12.5}) == "12.5 kWh"  # MECD
    assert q({"kind": "not_in_service", "devices": 3, "device_ids": ["a", "b", "c"]}) == "3 devices"
    assert q({"kind": "project_plot_excluded", "plot_ids": ["P1", "P7"]}) == "2 plots"  # VM0047
    assert q({"kind": "tree_in_unregistered_plot", "rows": 5}) == "5 rows"
    assert q({"kind": "meter_accuracy", "detail": "..."}) == ""  # carries no quantity: none shown
