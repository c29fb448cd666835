"""mrv.sample.demo: the generated project loads, is deterministic, and carries each documented fault."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mrv.ingest import read_invoices, read_meter
from mrv.project import ProjectSpec, load_project
from mrv.sample import DEMO_PARAMETERS, generate_demo_project

SEED = 7


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("demo")
    t0 = time.perf_counter()
    project = generate_demo_project(out, seed=SEED, year=2023)
    return project, time.perf_counter() - t0


@pytest.fixture(scope="module")
def spec(generated) -> ProjectSpec:
    return load_project(generated[0])


@pytest.fixture(scope="module")
def readings(spec) -> dict[str, pd.DataFrame]:
    return {m.id: read_meter(spec, m) for m in spec.data_sources.meters}


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_project_loads_with_the_expected_shape(generated, spec):
    project, seconds = generated
    assert project.name == "project.yaml"
    assert seconds < 5.0
    assert spec.project.type.value == "wind"
    assert spec.methodology == "CDM:ACM0002:22.0"
    assert spec.boundary.country == "IN" and spec.boundary.geometry["type"] == "Polygon"
    lon, lat = np.array(spec.boundary.geometry["coordinates"][0]).mean(axis=0)
    assert 76.2 < lon < 80.4 and 8.0 < lat < 13.6  # inside Tamil Nadu's bounding box
    mp = spec.monitoring_period
    assert (mp.start.isoformat(), mp.end.isoformat(), mp.timezone) == ("2023-01-01", "2023-12-31", "Asia/Kolkata")
    assert spec.installed_capacity.kw == 50_000
    assert spec.registry is not None and spec.registry.name == "demo-registry"
    assert spec.parameters == DEMO_PARAMETERS
    meters = {m.id: m for m in spec.data_sources.meters}
    assert set(meters) == {"EXP-1", "EXP-2", "IMP-1"}
    e1, e2, i1 = meters["EXP-1"], meters["EXP-2"], meters["IMP-1"]
    assert (e1.direction.value, e1.reading.value, e1.timezone, e1.timestamp_label, e1.accuracy_class) == ("export", "interval", "Asia/Kolkata", "end", 0.2)
    assert (e2.direction.value, e2.reading.value, e2.timezone, e2.accuracy_class) == ("export", "cumulative", "UTC", 0.5)
    assert (i1.direction.value, i1.reading.value, i1.accuracy_class) == ("import", "interval", 0.5)
    assert len(spec.meter_files(e1)) == 12 and all(p.suffix == ".csv" for p in spec.meter_files(e1))
    assert all(p.suffix == ".parquet" for p in spec.meter_files(e2)) and len(spec.meter_files(e2)) > 1
    assert all(p.suffix == ".csv" for p in spec.meter_files(i1)) and len(spec.meter_files(i1)) > 1
    xc = spec.data_sources.cross_checks
    assert len(xc) == 1 and (xc[0].kind, xc[0].direction.value, xc[0].unit) == ("invoices", "export", "MWh")


def test_same_seed_gives_byte_identical_files(generated, tmp_path):
    first = generated[0].parent
    again = generate_demo_project(tmp_path / "again", seed=SEED, year=2023)
    assert digests(again.parent) == digests(first)
    other = generate_demo_project(tmp_path / "other", seed=SEED + 1, year=2023)
    changed = {k for k, v in digests(other.parent).items() if digests(first).get(k) != v}
    assert any(k.startswith("data/") for k in changed)


def test_faults_are_documented(generated):
    project = generated[0]
    readme = (project.parent / "README.txt").read_text()
    yaml_text = project.read_text()
    for needle in ("EXP-1 gap", "duplicated hour", "calibration lapse", "rollover", "Invoices: August"):
        assert needle in readme and needle in yaml_text


def test_realistic_wind_output(spec, readings):
    exp = pd.concat([readings["EXP-1"].drop_duplicates("ts"), readings["EXP-2"]]).groupby("ts")["value"].sum()
    per_interval_max_kwh = spec.installed_capacity.kw * 0.25
    assert exp.max() <= per_interval_max_kwh
    # The capacity factor over the intervals both feeders delivered.
    both = readings["EXP-1"].drop_duplicates("ts").set_index("ts")["value"] + readings["EXP-2"].set_index("ts")["value"]
    cf = both.dropna().mean() / per_interval_max_kwh
    assert 0.25 < cf < 0.35
    # Autocorrelated: consecutive 15-minute values are strongly correlated, not white noise.
    series = readings["EXP-2"]["value"].to_numpy()
    assert np.corrcoef(series[:-1], series[1:])[0, 1] > 0.9
    # Monsoon: July produces far more than February.
    local_month = readings["EXP-2"]["ts"].dt.tz_convert("Asia/Kolkata").dt.month
    monthly = readings["EXP-2"].groupby(local_month)["value"].sum()
    assert monthly[7] > 2 * monthly[2]
    # Auxiliary import only while export is (near) zero, a few tens of kW.
    imp = readings["IMP-1"].set_index("ts")["value"]
    drawing = imp[imp > 0]
    assert 0 < len(drawing) < len(imp)
    assert (drawing * 4).between(10, 60).all()  # kWh per 15 min -> kW
    assert (readings["EXP-2"].set_index("ts")["value"].reindex(drawing.index) < 0.01 * per_interval_max_kwh).all()


def test_every_meter_covers_the_period(spec, readings):
    start, end = pd.Timestamp(spec.monitoring_period.start_utc), pd.Timestamp(spec.monitoring_period.end_utc)
    for meter_id, df in readings.items():
        assert df["ts"].min() == start, meter_id
        assert df["ts"].max() == end - pd.Timedelta(minutes=15), meter_id
        assert (df["value"] >= 0).all(), meter_id


def test_exp1_has_one_two_day_gap(spec, readings):
    grid = pd.date_range(spec.monitoring_period.start_utc, spec.monitoring_period.end_utc, freq="15min", inclusive="left")
    missing = grid.difference(pd.DatetimeIndex(readings["EXP-1"]["ts"]))
    assert len(missing) == 2 * 96
    assert (missing[-1] - missing[0]) == pd.Timedelta(days=2) - pd.Timedelta(minutes=15)  # one contiguous block
    local = missing[0].tz_convert("Asia/Kolkata")
    assert (local.hour, local.minute) == (0, 0)  # whole local days
    for other in ("EXP-2", "IMP-1"):
        assert len(grid.difference(pd.DatetimeIndex(readings[other]["ts"]))) == 0


def test_exp1_has_one_hour_delivered_twice(readings):
    df = readings["EXP-1"]
    dup = df[df["ts"].duplicated(keep=False)]
    assert len(dup) == 8 and df["ts"].duplicated().sum() == 4
    assert dup["ts"].nunique() == 4 and dup["ts"].max() - dup["ts"].min() == pd.Timedelta(minutes=45)
    assert (dup.groupby("ts")["value"].nunique() == 1).all()  # same values
    assert (dup.groupby("ts")["source_row"].nunique() == 2).all()  # really two rows in the file
    for other in ("EXP-2", "IMP-1"):
        assert not readings[other]["ts"].duplicated().any()


def test_exp2_register_rolls_over_exactly_once(spec, readings):
    meter = spec.meter("EXP-2")
    raw = pd.concat([pq.read_table(p).to_pandas() for p in spec.meter_files(meter)]).sort_values("timestamp")
    reg = raw[meter.value_column].to_numpy()
    assert (reg >= 0).all() and (reg < meter.register_max).all()
    assert int((np.diff(reg) < 0).sum()) == 1
    # The reader unwraps it: no negative delta, none larger than the feeder could deliver.
    values = readings["EXP-2"]["value"]
    assert (values >= 0).all() and values.max() <= spec.installed_capacity.kw * 0.25
    assert values.sum() == pytest.approx((reg[-1] + meter.register_max) - reg[0], rel=1e-9)


def test_a_seven_day_calibration_hole(spec):
    start, end = spec.monitoring_period.start, spec.monitoring_period.end
    holes = {}
    for m in spec.data_sources.meters:
        days = pd.date_range(start, end, freq="D").date
        covered = np.zeros(len(days), dtype=bool)
        for c in m.calibrations:
            covered |= (days >= c.valid_from) & (days <= c.valid_to)
        holes[m.id] = [d for d, ok in zip(days, covered, strict=True) if not ok]
    lapsed = {k: v for k, v in holes.items() if v}
    assert list(lapsed) in (["EXP-2"], ["IMP-1"])
    days = next(iter(lapsed.values()))
    assert len(days) == 7 and days[-1] - days[0] == timedelta(days=6)


def test_invoices_match_metered_export_except_one_month(spec, readings):
    xc = spec.data_sources.cross_checks[0]
    inv = read_invoices(spec.resolve(xc.file), cross_check=xc, timezone=spec.monitoring_period.timezone)
    assert len(inv) == 12
    net = None
    # Sales invoices bill exported electricity (gross export, both export feeders).
    for meter_id, sign in (("EXP-1", 1.0), ("EXP-2", 1.0)):
        df = readings[meter_id].drop_duplicates("ts")
        bins = pd.cut(df["ts"], pd.DatetimeIndex([*inv["period_start"], inv["period_end"].iloc[-1]]), right=False, labels=False)
        s = sign * df.groupby(bins)["value"].sum() / 1000.0
        net = s if net is None else net + s
    ratio = inv["energy_MWh"].to_numpy() / net.to_numpy()
    off = np.flatnonzero(np.abs(ratio - 1) > 0.001)
    assert len(off) == 1
    assert 0.975 < ratio[off[0]] < 0.985  # about 2 % lower
    assert inv["period_start"].iloc[off[0]].tz_convert("Asia/Kolkata").month == 8
