"""GS MECD v2.0 aggregation of per-device interval energy (coverage rule, MPE, commissioning, ...).

No public worked example exists for the device-level treatments; every expectation is a hand
calculation on a tiny fleet with hourly intervals over one day (24 expected intervals per device).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from methodologies.gs_mecd.v2 import MECD, clauses
from methodologies.gs_mecd.v2.aggregation import aggregate_device_energy
from mrv.errors import MethodologyError
from mrv.methodology import MonitoringInput, Trace

START = pd.Timestamp("2024-03-01 00:00", tz="UTC")
END = pd.Timestamp("2024-03-02 00:00", tz="UTC")


def dev(device_id, *, accuracy=1.0, commissioned="2023-01-01", cal=("2023-01-01", "2025-12-31"), **extra):
    return {"device_id": device_id, "serial": f"S-{device_id}", "commissioned": commissioned, "accuracy_class": accuracy,
            "calibration_valid_from": cal[0], "calibration_valid_to": cal[1], **extra}


def frame(rows, *, categorical=True):
    """rows: (device_id, hour (float ok), kWh)."""
    ids = [r[0] for r in rows]
    return pd.DataFrame({
        "device_id": pd.Categorical(ids) if categorical else pd.Series(ids, dtype="string"),
        "ts": pd.Series([START + pd.Timedelta(hours=r[1]) for r in rows], dtype="datetime64[us, UTC]"),
        "value": pd.Series([r[2] for r in rows], dtype="float64"),
        "unit": pd.Categorical(["kWh"] * len(rows)),
    })


def hours(device_id, n, kwh=0.1, first=0):
    return [(device_id, h, kwh) for h in range(first, first + n)]


def agg(rows, devices, *, interval=60, categorical=True, **frame_extra):
    df = frame(rows, categorical=categorical)
    for k, v in frame_extra.items():
        df[k] = v
    sources = {"devices": devices}
    if interval is not None:
        sources["device_interval_minutes"] = interval
    data = MonitoringInput(start=START.to_pydatetime(), end=END.to_pydatetime(), datasets={"device_energy": df}, sources=sources)
    trace = Trace()
    monitored, treatments = aggregate_device_energy(data, trace=trace)
    return monitored, treatments, trace


def kinds(treatments):
    return {t["kind"]: t for t in treatments}


def test_full_coverage_and_meter_error():
    """D1: 24 × 0.1 kWh = 2.4 kWh, class 1 % -> BE side 2.376, PE side 2.424 kWh.
    D2: 24 × 0.2 kWh = 4.8 kWh, class 2 % -> 4.704 / 4.896 kWh.
    EG_p_y = (2.376 + 4.704) / 1000 = 0.00708 MWh; EG_p_PE_y = (2.424 + 4.896) / 1000 = 0.00732 MWh."""
    m, t, trace = agg(hours("D1", 24, 0.1) + hours("D2", 24, 0.2), [dev("D1", accuracy=1.0), dev("D2", accuracy=2.0)])
    assert m["EG_p_y"] == pytest.approx(0.00708, rel=1e-12)
    assert m["EG_p_PE_y"] == pytest.approx(0.00732, rel=1e-12)
    assert (m["N_p_y"], m["N_p_rep_y"]) == (2.0, 2.0)
    assert kinds(t)["meter_accuracy"]["kWh_metered"] == pytest.approx(7.2)
    per = next(s for s in trace.steps if s.symbol == "EG_p_d_y").inputs
    assert per["D1"]["coverage"] == 1.0 and per["D1"]["reporting_days"] == 1
    assert trace.value("interval_minutes") == 60


def test_minimum_coverage_rule():
    """D1 reports 12 of 24 hours (50 %: kept, gaps not filled), D2 11 of 24 (45.8 %: excluded).
    EG (1 % class) = 12 × 0.1 × 0.99 / 1000 = 0.001188 MWh; N_p_y = 2, N_p_rep_y = 1."""
    m, t, _ = agg(hours("D1", 12) + hours("D2", 11), [dev("D1"), dev("D2")])
    assert m["EG_p_y"] == pytest.approx(12 * 0.1 * 0.99 / 1000, rel=1e-12)
    assert (m["N_p_y"], m["N_p_rep_y"]) == (2.0, 1.0)
    ex = [x for x in t if x["kind"] == "device_excluded_low_coverage"]
    assert [x["device_id"] for x in ex] == ["D2"]
    assert ex[0]["coverage"] == pytest.approx(11 / 24) and ex[0]["kWh_excluded"] == pytest.approx(1.1)
    assert ex[0]["clause"] == clauses.DEVICE_COVERAGE
    assert kinds(t)["gaps_not_filled"]["missing_intervals"] == 12
    assert clauses.MIN_DEVICE_COVERAGE == 0.5


def test_never_reporting_device_counts_against_the_fleet():
    """D2 is in the registry but sends nothing: coverage 0, excluded, N_p_y = 2, N_p_rep_y = 1."""
    m, t, _ = agg(hours("D1", 24), [dev("D1"), dev("D2")])
    assert (m["N_p_y"], m["N_p_rep_y"]) == (2.0, 1.0)
    assert kinds(t)["device_excluded_low_coverage"]["device_id"] == "D2"


def test_commissioned_during_the_period_counts_from_commissioning():
    """D1 commissioned 2024-03-01T12:00: expected 12 intervals (12:00-24:00). It reports hours 8-23:
    hours 8-11 are before commissioning (dropped, 4 rows); 12 of 12 expected -> coverage 1.0.
    EG = 12 × 0.1 × 0.99 / 1000. D3 commissioned after the period: not in service."""
    rows = hours("D1", 16, first=8)
    m, t, trace = agg(rows, [dev("D1", commissioned="2024-03-01T12:00:00Z"), dev("D3", commissioned="2024-03-05")])
    assert m["EG_p_y"] == pytest.approx(12 * 0.1 * 0.99 / 1000, rel=1e-12)
    assert (m["N_p_y"], m["N_p_rep_y"]) == (1.0, 1.0)
    k = kinds(t)
    assert k["before_commissioning"]["rows"] == 4
    assert k["commissioned_in_period"]["device_ids"] == ["D1"]
    assert k["not_in_service"]["device_ids"] == ["D3"]
    assert next(s for s in trace.steps if s.symbol == "EG_p_d_y").inputs["D1"]["coverage"] == 1.0


def test_duplicates_unknown_devices_bad_values_and_period():
    """D1: 24 hours at 0.1 kWh, hour 5 delivered again at 0.5 (kept: 0.1), one reading at -0.2 (hour 6
    delivered twice: -0.2 dropped, 0.1 kept), a reading at 25:00 (next day: outside), NaN at hour 7
    (dropped; the valid 0.1 copy stays). X9 not in the registry: 3 rows dropped.
    EG = 24 × 0.1 × 0.99 / 1000."""
    rows = hours("D1", 24) + [("D1", 5, 0.5), ("D1", 6, -0.2), ("D1", 25, 0.1), ("D1", 7, float("nan"))] + hours("X9", 3)
    m, t, _ = agg(rows, [dev("D1")])
    assert m["EG_p_y"] == pytest.approx(24 * 0.1 * 0.99 / 1000, rel=1e-12)
    k = kinds(t)
    assert k["device_not_in_registry"]["rows"] == 3
    assert k["outside_period"]["rows"] == 1
    assert k["invalid_value"]["rows"] == 2
    assert k["duplicate_interval"]["rows"] == 1


def test_calibration_lapse_from_registry_and_from_the_contract_column():
    """D1 calibrated until 2024-02-29 (inclusive): all 24 readings on 03-01 are outside -> dropped,
    coverage 0, excluded. With the contract's calibration_valid column (True for hours 0-17 only)
    the column wins: 18 readings kept (coverage 0.75)."""
    devices = [dev("D1", cal=("2023-01-01", "2024-02-29")), dev("D2")]
    rows = hours("D1", 24) + hours("D2", 24)
    m, t, _ = agg(rows, devices)
    assert kinds(t)["calibration_not_valid"]["rows"] == 24
    assert (m["N_p_y"], m["N_p_rep_y"]) == (2.0, 1.0)
    flags = np.array([h < 18 for h in range(24)] + [True] * 24)
    m2, _, _ = agg(rows, devices, calibration_valid=flags)
    assert m2["EG_p_y"] == pytest.approx((18 + 24) * 0.1 * 0.99 / 1000, rel=1e-12)


def test_interval_inferred_and_string_ids_give_the_same_result():
    rows = hours("D1", 24, 0.1) + hours("D2", 20, 0.3)
    a, _, _ = agg(rows, [dev("D1"), dev("D2")])
    b, _, tr = agg(rows, [dev("D1"), dev("D2")], interval=None, categorical=False)
    assert a == b
    assert tr.value("interval_minutes") == 60
    c, _, tr2 = agg(rows, [dev("D1", interval_minutes=60), dev("D2", interval_minutes=60)], interval=None)
    assert c == a and "registry" in next(s for s in tr2.steps if s.symbol == "interval_minutes").equation


def test_unsorted_input_is_handled():
    rows = hours("D1", 24, 0.1) + hours("D2", 24, 0.2)
    rng = np.random.default_rng(3)
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    assert agg(shuffled, [dev("D1"), dev("D2")])[0] == agg(rows, [dev("D1"), dev("D2")])[0]


def test_bad_registry_is_an_error():
    with pytest.raises(MethodologyError, match="no device registry"):
        agg(hours("D1", 2), [])
    with pytest.raises(MethodologyError, match="accuracy_class"):
        agg(hours("D1", 2), [dev("D1", accuracy=float("nan"))])


def test_run_end_to_end_with_data():
    """Aggregate + calculate through Methodology.run: 24 × 1 kWh, class 1 % -> EG_p_y 0.02376 MWh;
    BE = 0.02376 × 0.0036 × (2.402/0.276) × 93.74 = 0.069781 tCO2e."""
    raw = {"project_fuel": {"value": "electricity"}, "quantification_method": {"value": "M2_specific_consumption"},
           "SC_b": {"value": 2.402, "unit": "MJ"}, "SC_p": {"value": 0.276, "unit": "MJ"},
           "EF_b_input": {"value": 93.74, "unit": "tCO2e/TJ"}, "EF_el_y": {"value": 0.412, "unit": "tCO2e/MWh"},
           "TDL_y": 0.1041, "f_LE": 0.0, "EG_max_d": {"value": 8, "unit": "kWh/day"}}
    df = frame(hours("D1", 24, 1.0))
    data = MonitoringInput(start=START.to_pydatetime(), end=END.to_pydatetime(), datasets={"device_energy": df},
                           sources={"devices": [dev("D1")], "device_interval_minutes": 60})
    res = MECD().run(raw_parameters=raw, data=data)
    assert res.quantities["BE_y"][0] == pytest.approx(0.02376 * 0.0036 * 2.402 / 0.276 * 93.74, rel=1e-12)
    assert res.quantities["PE_y"][0] == pytest.approx(0.02424 * 0.412 * 1.1041, rel=1e-12)
    assert any(t["kind"] == "meter_accuracy" for t in res.treatments)


@settings(max_examples=40, deadline=None)
@given(acc1=st.floats(0.0, 5.0), acc2=st.floats(0.0, 5.0), kwh=st.lists(st.floats(0.0, 2.0), min_size=24, max_size=24))
def test_worse_meter_accuracy_never_raises_er(acc1, acc2, kwh):
    """A larger MPE lowers EG_p_y and raises EG_p_PE_y, so ER_y never rises."""
    rows = [("D1", h, v) for h, v in enumerate(kwh)]
    lo, hi = sorted((acc1, acc2))
    m_lo, _, _ = agg(rows, [dev("D1", accuracy=lo)])
    m_hi, _, _ = agg(rows, [dev("D1", accuracy=hi)])
    assert m_hi["EG_p_y"] <= m_lo["EG_p_y"] + 1e-15 and m_hi["EG_p_PE_y"] >= m_lo["EG_p_PE_y"] - 1e-15


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 24), extra=st.floats(0.0, 3.0))
def test_more_metered_energy_never_lowers_eg(n, extra):
    """Adding energy to one reported interval never lowers EG_p_y (monotone input to BE_y)."""
    rows = hours("D1", 24, 0.1)
    more = [(d, h, v + extra if h == n % 24 else v) for d, h, v in rows]
    assert agg(more, [dev("D1")])[0]["EG_p_y"] >= agg(rows, [dev("D1")])[0]["EG_p_y"]
