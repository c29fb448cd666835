"""The device_energy contract and the cooking sample generator, end to end (small fleet).

Pipeline pieces used exactly as the monitoring flow uses them: project file -> device registry and
long-format Parquet readers -> contract (native engine) -> GS:MECD:2.0 aggregate + calculate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from mrv.contracts import load_contract, validate_readings
from mrv.ingest.series import read_device_files, read_device_registry
from mrv.methodology import MonitoringInput
from mrv.methodology.registry import get
from mrv.project import load_project
from mrv.sample.cooking import COOKING_PARAMETERS, EG_MAX_D, generate_cooking_project
from mrv.sources import dataset_context, registry_records

CONTRACT = Path(__file__).resolve().parents[3] / "data_contracts" / "device_energy.yaml"
RULES = ["device_id_present", "device_in_registry", "unit_kwh", "ts_present", "in_period", "value_not_null", "non_negative",
         "unique_reading", "daily_energy_plausible", "interval_regular", "calibration_valid", "devices_reporting"]


def test_contract_yaml_is_well_formed():
    raw = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    assert raw["id"] == "device_energy" and raw["key"] == "device_id"
    assert [r["id"] for r in raw["rules"]] == RULES
    assert all("MECD v2.0" in r["clause"] for r in raw["rules"])
    by_id = {r["id"]: r for r in raw["rules"]}
    assert by_id["device_in_registry"]["kwargs"]["value_set"] == "${sources.ids}"
    assert by_id["daily_energy_plausible"]["kwargs"]["max_value"] == "${values.param.EG_max_d}"
    assert by_id["daily_energy_plausible"]["derive"] == ["daily_total"]
    assert by_id["unique_reading"]["keep"] == "conservative"
    # The value the contract reads is a declared parameter of the methodology that uses the contract.
    m = get("GS:MECD:2.0")
    assert m.parameter_spec("EG_max_d").required
    assert {s.contract for s in m.monitored} == {"device_energy"}


def test_contract_loads_in_the_engine():
    c = load_contract("device_energy")
    assert (c.id, c.key) == ("device_energy", "device_id")
    assert [r.id for r in c.rules] == RULES


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("cooking")
    return generate_cooking_project(out, seed=11, devices=60, days=21)


def _read(path):
    spec = load_project(path)
    fleet = spec.data_sources.devices
    reg = read_device_registry(spec.resolve(fleet.registry))
    df = read_device_files(spec.source_files(fleet.files, what="device fleet"), fleet=fleet)
    return spec, reg, df


def test_sample_project_is_valid_and_deterministic(sample, tmp_path):
    spec, reg, df = _read(sample)
    assert spec.methodology == "GS:MECD:2.0" and spec.project.type.value == "clean_cooking"
    assert len(reg) == 60 and set(spec.parameters) == set(COOKING_PARAMETERS)
    assert len(list((sample.parent / "data" / "devices").glob("*.parquet"))) >= 2
    assert str(df["ts"].dtype) == "datetime64[us, UTC]"
    ids = set(df["device_id"].astype(str))
    assert {"EC-X0001", "EC-X0002", "EC-X0003"} <= ids and not ids - set(reg["device_id"]) - {"EC-X0001", "EC-X0002", "EC-X0003"}
    # Faults present: duplicates, spikes above the plausible daily maximum, negatives.
    assert df.duplicated(["device_id", "ts"]).any()
    assert (df["value"] > EG_MAX_D).any() and (df["value"] < 0).any()
    # Meal-time usage: the evening hours (local 18-22 = 12-16 UTC) carry more energy than the night (local 0-5).
    hour = df["ts"].dt.hour
    assert df.loc[hour.between(12, 15), "value"].clip(upper=5).sum() > 5 * df.loc[hour.between(18, 22), "value"].clip(upper=5).sum()
    again = generate_cooking_project(tmp_path, seed=11, devices=60, days=21)
    for f in sorted((sample.parent / "data" / "devices").glob("*.parquet")):
        assert f.read_bytes() == (again.parent / "data" / "devices" / f.name).read_bytes()
    assert (sample.parent / "devices.csv").read_bytes() == (again.parent / "devices.csv").read_bytes()


def test_contract_validates_the_sample_and_mecd_credits_it(sample):
    spec, reg, df = _read(sample)
    outcome = validate_readings(df, contract=load_contract("device_energy"), context=dataset_context(spec, registry=reg), engine="native")
    assert not outcome.blocked
    q = outcome.quarantine.groupby("rule_id", observed=True).size().to_dict()
    # Three unregistered devices x 21 days x 96 intervals.
    assert q["device_in_registry"] == 3 * 21 * 96
    assert q["non_negative"] >= 1 and q["unique_reading"] >= 1 and q["daily_energy_plausible"] >= 96
    valid = outcome.valid
    assert not valid.duplicated(["device_id", "ts"]).any() and (valid["value"] >= 0).all()
    daily = valid.groupby([valid["device_id"].astype(str), valid["ts"].dt.floor("D")])["value"].sum()
    assert daily.max() <= EG_MAX_D
    assert "calibration_valid" in valid.columns
    assert len(outcome.gaps) > 0 and {"gap_start", "gap_end", "missing_intervals"} <= set(outcome.gaps.columns)

    data = MonitoringInput(start=spec.monitoring_period.start_utc, end=spec.monitoring_period.end_utc,
                           datasets={"device_energy": valid}, sources={"devices": registry_records(reg)})
    res = get("GS:MECD:2.0").run(raw_parameters=spec.parameters, data=data)
    v = {k: x for k, (x, _) in res.quantities.items()}
    assert v["CTEC_y"] >= 0.95
    # Plausible fleet energy: 0.3-1.5 kWh per reporting device-day.
    kwh = res.quantities["EC_p_y"][0] / 0.0036 * 1000
    n_rep = next(s for s in res.trace if s["symbol"] == "N_p_rep_y")["value"]
    assert 0.3 < kwh / (n_rep * 21) < 1.5
    assert v["ER_y"] > 0 and res.issuable_tCO2e == int(np.floor(v["ER_y"]))
    kinds = {t["kind"] for t in res.treatments}
    assert {"meter_accuracy", "commissioned_in_period"} <= kinds
    assert "device_not_in_registry" not in kinds  # the contract removed them first
