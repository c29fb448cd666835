"""CDM ACM0002 v22.0 calculator (greenfield) with TOOL07 v07.0 combined margin.

Sources of the numbers:

* Grid factors: CEA "CO2 Baseline Database for the Indian Power Sector" Version 21.0 (Nov 2025),
  all-India, FY 2024-25, excluding imports: simple OM 0.9646, BM 0.5119, CM (50/50) 0.7383
  tCO2/MWh, as tabulated at https://batchwise.ai/methodology/cea-grid-emission-factors/all-india/
  (see tests/methodologies/cdm_tool07/test_tool07.py for the full citation and the reproduction of
  the published CMs).
* Emission reductions: no registered CDM project document with an ex-ante ER_y calculation could be
  read through the search tool (PDDs were found, but only their first pages were retrievable), so
  every ER_y below is a hand calculation shown step by step in the test's docstring.
* Conservative treatments of meter data: no published worked example exists; hand calculations.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from methodologies.cdm_acm0002.v22 import ACM0002
from mrv.errors import ApplicabilityError, MethodologyError, ParameterError
from mrv.methodology import MonitoringInput, Trace
from mrv.methodology.registry import get

OM_V21 = {"value": 0.9646, "unit": "tCO2e/MWh", "source": "CEA CO2 Baseline Database v21.0, FY 2024-25, simple OM"}
BM_V21 = {"value": 0.5119, "unit": "tCO2e/MWh", "source": "CEA CO2 Baseline Database v21.0, FY 2024-25, BM"}

START = pd.Timestamp("2024-01-01 00:00", tz="UTC")
END = pd.Timestamp("2024-01-01 04:00", tz="UTC")  # four hourly intervals
E1 = {"id": "E1", "serial": "S-E1", "direction": "export", "accuracy_class": 0.5, "interval_minutes": 60}
I1 = {"id": "I1", "serial": "S-I1", "direction": "import", "accuracy_class": 1.0, "interval_minutes": 60}


def wind(**extra):
    return {"project_type": "wind", "project_activity": "greenfield", "EF_grid_OM_y": OM_V21, "EF_grid_BM_y": BM_V21, **extra}


def readings(rows):
    """rows: (meter_id, 'HH:MM', value kWh, calibration_valid)."""
    return pd.DataFrame({
        "meter_id": pd.Series([r[0] for r in rows], dtype="string"),
        "ts": pd.Series([pd.Timestamp(f"2024-01-01 {r[1]}", tz="UTC") for r in rows], dtype="datetime64[us, UTC]"),
        "value": pd.Series([r[2] for r in rows], dtype="float64"),
        "unit": "kWh",
        "register": np.nan,
        "source_file": pd.Series([f"{r[0]}.csv" for r in rows], dtype="string"),
        "source_row": pd.Series(range(2, len(rows) + 2), dtype="int64"),
        "calibration_valid": pd.Series([r[3] for r in rows], dtype="bool"),
    })


def hourly(meter, values, valid=True):
    valid = valid if isinstance(valid, list) else [valid] * len(values)
    return [(meter, f"{h:02d}:00", v, ok) for h, v, ok in zip(range(len(values)), values, valid) if v is not None]


def invoices(rows):
    """rows: (start 'HH:MM', end 'HH:MM', MWh, direction)."""
    return pd.DataFrame({
        "period_start": pd.Series([pd.Timestamp(f"2024-01-01 {r[0]}", tz="UTC") for r in rows], dtype="datetime64[us, UTC]"),
        "period_end": pd.Series([pd.Timestamp(f"2024-01-01 {r[1]}", tz="UTC") if r[1] != "24:00" else END for r in rows],
                                dtype="datetime64[us, UTC]"),
        "energy_MWh": [r[2] for r in rows],
        "direction": [r[3] for r in rows],
        "source_file": "invoices.csv",
        "source_row": range(2, len(rows) + 2),
    })


def data_for(rows, inv=None, meters=(E1, I1), start=START, end=END):
    datasets = {"meter_readings": readings(rows)}
    if inv is not None:
        datasets["invoices"] = inv
    return MonitoringInput(start=start.to_pydatetime(), end=end.to_pydatetime(), datasets=datasets,
                           sources={"meters": [dict(m) for m in meters], "capacity_kw": 1000.0})


def aggregate(data):
    trace = Trace()
    monitored, treatments = ACM0002().aggregate(data, trace=trace)
    return monitored, treatments, trace


# --- registration and metadata ---------------------------------------------------------------------


def test_registered_under_its_id():
    m = get("CDM:ACM0002:22.0")
    assert isinstance(m, ACM0002)
    info = m.info
    assert (info.program, info.code, info.version) == ("CDM", "ACM0002", "22.0")
    assert info.tools == ("CDM:TOOL07:7.0",)
    assert any("greenfield" in a for a in info.applicability)
    assert {p.symbol for p in m.parameters} >= {"project_type", "project_activity", "crediting_period",
                                                 "EF_grid_OM_y", "EF_grid_BM_y", "EF_grid_CM_y", "PE_y"}
    assert {s.name for s in m.monitored} == {"EG_export_y", "EG_import_y"}
    assert all(s.contract == "meter_readings" for s in m.monitored)


# --- calculate: worked examples --------------------------------------------------------------------


def test_wind_worked_example():
    """Hand calculation with the CEA v21.0 FY 2024-25 OM/BM (no published project example found).

    EF_grid_CM_y  = 0.75 × 0.9646 + 0.25 × 0.5119 = 0.72345 + 0.127975 = 0.851425 tCO2e/MWh
    EG_facility_y = 100,000 − 500 = 99,500 MWh = EG_PJ_y (greenfield)
    BE_y          = 99,500 × 0.851425 = 84,716.7875 tCO2e
    PE_y = LE_y   = 0 (wind, no PE_y supplied)
    ER_y          = 84,716.7875 tCO2e -> issuable floor = 84,716 tCO2e
    """
    res = ACM0002().run(raw_parameters=wind(), monitored={"EG_export_y": 100_000.0, "EG_import_y": 500.0})
    q = {k: v for k, (v, _) in res.quantities.items()}
    assert q["EF_grid_CM_y"] == pytest.approx(0.851425, abs=1e-12)
    assert q["EG_facility_y"] == q["EG_PJ_y"] == 99_500.0
    assert q["BE_y"] == pytest.approx(84_716.7875, abs=1e-6)
    assert q["PE_y"] == 0.0 and q["LE_y"] == 0.0
    assert q["ER_y"] == pytest.approx(84_716.7875, abs=1e-6)
    assert res.issuable_tCO2e == 84_716
    assert res.quantities["BE_y"][1] == "tCO2e" and res.quantities["EF_grid_CM_y"][1] == "tCO2e/MWh"
    symbols = [s["symbol"] for s in res.trace]
    assert symbols == ["w_OM", "w_BM", "EF_grid_CM_y", "EG_facility_y", "EG_PJ_y", "BE_y", "PE_y", "LE_y", "ER_y", "ER_issuable_y"]
    be = next(s for s in res.trace if s["symbol"] == "BE_y")
    assert be["inputs"] == {"EG_PJ_y": 99_500.0, "EF_grid_CM_y": pytest.approx(0.851425)}
    assert "ACM0002 v22.0" in be["clause"]
    assert "TOOL07 v07.0" in next(s for s in res.trace if s["symbol"] == "EF_grid_CM_y")["clause"]


def test_other_first_period_with_project_emissions():
    """Hand calculation, 'other' (e.g. geothermal), first crediting period, CEA v21.0 factors.

    EF_grid_CM_y = 0.5 × 0.9646 + 0.5 × 0.5119 = 0.73825 tCO2e/MWh
    BE_y = (80,000 − 0) × 0.73825 = 59,060 tCO2e
    ER_y = 59,060 − 1,250.5 − 0 = 57,809.5 tCO2e -> 57,809 issuable
    """
    raw = {"project_type": "other", "project_activity": "greenfield", "EF_grid_OM_y": OM_V21, "EF_grid_BM_y": BM_V21,
           "PE_y": {"value": 1250.5, "unit": "tCO2e", "source": "TOOL03 calculation"}}
    res = ACM0002().run(raw_parameters=raw, monitored={"EG_export_y": 80_000.0, "EG_import_y": 0.0})
    assert res.quantities["BE_y"][0] == pytest.approx(59_060.0)
    assert res.quantities["ER_y"][0] == pytest.approx(57_809.5)
    assert res.issuable_tCO2e == 57_809


def test_other_second_period():
    """0.25 × 0.9646 + 0.75 × 0.5119 = 0.625075; BE = 10,000 × 0.625075 = 6,250.75; PE 0 -> 6,250 issuable."""
    raw = {"project_type": "other", "project_activity": "greenfield", "crediting_period": 2,
           "EF_grid_OM_y": OM_V21, "EF_grid_BM_y": BM_V21, "PE_y": {"value": 0, "unit": "tCO2e"}}
    res = ACM0002().run(raw_parameters=raw, monitored={"EG_export_y": 10_000.0, "EG_import_y": 0.0})
    assert res.quantities["EF_grid_CM_y"][0] == pytest.approx(0.625075)
    assert res.issuable_tCO2e == 6_250


def test_published_cm_path_is_traced():
    """Published CM 0.861 (CEA v20.0 wind/solar, Saur Energy 6 Jan 2025): BE = 1,000 × 0.861 = 861 tCO2e."""
    raw = {"project_type": "solar", "project_activity": "greenfield",
           "EF_grid_CM_y": {"value": 0.861, "unit": "tCO2e/MWh", "source": "CEA v20.0 CM for solar/wind"}}
    res = ACM0002().run(raw_parameters=raw, monitored={"EG_export_y": 1_000.0, "EG_import_y": 0.0})
    assert res.issuable_tCO2e == 861
    step = next(s for s in res.trace if s["symbol"] == "EF_grid_CM_y")
    assert "published" in step["note"] and step["inputs"]["source"] == "CEA v20.0 CM for solar/wind"
    assert not any(s["symbol"] in ("w_OM", "w_BM") for s in res.trace)


@pytest.mark.parametrize(
    ("value", "unit"), [(0.851425, "kgCO2e/kWh"), (851.425, "gCO2e/kWh"), (851.425, "kgCO2e/MWh"), (0.851425, "tCO2e/MWh")]
)
def test_ef_unit_converted_at_the_edge(value, unit):
    """1 kgCO2e/kWh = 1 tCO2e/MWh; 1 gCO2e/kWh = 1 kgCO2e/MWh = 0.001 tCO2e/MWh. BE = 1,000 × 0.851425 = 851.425."""
    raw = {"project_type": "wind", "project_activity": "greenfield", "EF_grid_CM_y": {"value": value, "unit": unit}}
    res = ACM0002().run(raw_parameters=raw, monitored={"EG_export_y": 1_000.0, "EG_import_y": 0.0})
    assert res.quantities["EF_grid_CM_y"] == (pytest.approx(0.851425), "tCO2e/MWh")
    assert res.issuable_tCO2e == 851


def test_pe_unit_converted():
    """PE_y = 2,500 kgCO2e = 2.5 tCO2e; ER = 1,000 × 0.851425 − 2.5 = 848.925 -> 848."""
    res = ACM0002().run(raw_parameters=wind(PE_y={"value": 2500, "unit": "kgCO2e"}),
                        monitored={"EG_export_y": 1_000.0, "EG_import_y": 0.0})
    assert res.quantities["PE_y"][0] == pytest.approx(2.5)
    assert res.issuable_tCO2e == 848


# --- rounding --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("export", "expected"), [(1234.9999, 1234), (1235.0, 1235), (0.9999, 0), (10.0 - 1e-7, 9)])
def test_issuable_rounded_down_never_up(export, expected):
    raw = {"project_type": "wind", "project_activity": "greenfield", "EF_grid_CM_y": {"value": 1.0, "unit": "tCO2e/MWh"}}
    assert ACM0002().run(raw_parameters=raw, monitored={"EG_export_y": export, "EG_import_y": 0.0}).issuable_tCO2e == expected


def test_net_import_gives_zero_issuable():
    """EG_facility_y = 10 − 50 = −40 MWh -> BE_y = −40 × 0.851425 = −34.057 -> ER_y negative, issuable 0."""
    res = ACM0002().run(raw_parameters=wind(), monitored={"EG_export_y": 10.0, "EG_import_y": 50.0})
    assert res.quantities["ER_y"][0] == pytest.approx(-34.057)
    assert res.issuable_tCO2e == 0


# --- applicability and parameter errors ------------------------------------------------------------


@pytest.mark.parametrize("activity", ["capacity_addition", "retrofit", "rehabilitation", "replacement"])
def test_only_greenfield_is_applicable(activity):
    with pytest.raises(ApplicabilityError, match=r"ACM0002 v22\.0, 'Applicability'"):
        ACM0002().run(raw_parameters=wind(project_activity=activity), monitored={"EG_export_y": 1.0, "EG_import_y": 0.0})


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"project_type": "wind", "project_activity": "greenfield"}, "no grid emission factor"),
        ({"project_type": "wind", "project_activity": "greenfield", "EF_grid_OM_y": OM_V21}, "EF_grid_BM_y is missing"),
        ({"project_type": "wind", "project_activity": "greenfield", "EF_grid_BM_y": BM_V21}, "EF_grid_OM_y is missing"),
        ({"project_type": "other", "project_activity": "greenfield", "EF_grid_OM_y": OM_V21, "EF_grid_BM_y": BM_V21},
         "PE_y is required for project_type 'other'"),
        ({"project_type": "wind", "EF_grid_OM_y": OM_V21, "EF_grid_BM_y": BM_V21}, "required parameter project_activity"),
        ({"project_activity": "greenfield", "EF_grid_OM_y": OM_V21, "EF_grid_BM_y": BM_V21}, "required parameter project_type"),
        (wind(crediting_period=4), "above the maximum"),
        (wind(project_type="hydro"), "must be one of"),
        (wind(EF_grid_OM_y={"value": 0.9646, "unit": "MWh"}), "cannot be converted"),
        (wind(EF_grid_OM_y={"value": -0.1, "unit": "tCO2e/MWh"}), "below the minimum"),
        (wind(EF_grid_CM_y={"value": 0.7383, "unit": "tCO2e/MWh"}), "disagrees"),
    ],
)
def test_parameter_errors(raw, match):
    with pytest.raises(ParameterError, match=match):
        ACM0002().run(raw_parameters=raw, monitored={"EG_export_y": 1.0, "EG_import_y": 0.0})


# --- aggregate: conservative treatments ------------------------------------------------------------


def test_clean_data_no_treatments():
    """4 h × 1,000 kWh export = 4.000 MWh; 4 h × 10 kWh import = 0.040 MWh; nothing to treat."""
    monitored, treatments, trace = aggregate(data_for(hourly("E1", [1000.0] * 4) + hourly("I1", [10.0] * 4)))
    assert monitored == {"EG_export_y": pytest.approx(4.0), "EG_import_y": pytest.approx(0.04)}
    assert treatments == []
    assert trace.value("EG_meter[E1]") == pytest.approx(4000.0)


def test_delayed_calibration_mpe():
    """Hand calculation. E1 class 0.5 lapsed in hours 0-1, I1 class 1.0 lapsed in hour 0.

    E1: 2 × 1,000 × (1 − 0.005) + 2 × 1,000 = 1,990 + 2,000 = 3,990 kWh (−10 kWh)
    I1: 1 × 10 × (1 + 0.01) + 3 × 10        = 10.1 + 30     = 40.1 kWh  (+0.1 kWh)
    """
    rows = hourly("E1", [1000.0] * 4, [False, False, True, True]) + hourly("I1", [10.0] * 4, [False, True, True, True])
    monitored, treatments, trace = aggregate(data_for(rows))
    assert monitored["EG_export_y"] == pytest.approx(3.990)
    assert monitored["EG_import_y"] == pytest.approx(0.0401)
    assert [(t["kind"], t["meter_id"]) for t in treatments] == [("delayed_calibration_mpe", "E1"), ("delayed_calibration_mpe", "I1")]
    e, i = treatments
    assert (e["rows"], e["kWh_adjusted"], e["effect_on_net_kWh"]) == (2, pytest.approx(-10.0), pytest.approx(-10.0))
    assert (i["rows"], i["kWh_adjusted"], i["effect_on_net_kWh"]) == (1, pytest.approx(0.1), pytest.approx(-0.1))
    assert e["first_ts"] == "2024-01-01T00:00:00+00:00" and e["last_ts"] == "2024-01-01T01:00:00+00:00"
    assert e["source_files"] == ["E1.csv"]
    assert "VVS-PA) v03.0, paras 366-368" in e["clause"]
    assert trace.value("adj_calibration[E1]") == pytest.approx(-10.0)


def test_gaps_export_zero_import_max():
    """Hand calculation. E1 misses hour 1 (e.g. quarantined); I1 misses hours 2 and 3.

    E1: 1,000 + 1,000 + 1,000 = 3,000 kWh; the missing hour contributes 0.
    I1: observed 5 + 12 = 17 kWh; each missing hour charged max(5, 12) = 12 kWh -> 17 + 2 × 12 = 41 kWh.
    (Filling the import gaps with 0 would give 17 kWh and a net 24 kWh higher.)
    """
    rows = hourly("E1", [1000.0, None, 1000.0, 1000.0]) + hourly("I1", [5.0, 12.0, None, None])
    monitored, treatments, _ = aggregate(data_for(rows))
    assert monitored["EG_export_y"] == pytest.approx(3.000)
    assert monitored["EG_import_y"] == pytest.approx(0.041)
    e, i = treatments
    assert (e["kind"], e["meter_id"], e["intervals"], e["kWh_adjusted"]) == ("missing_intervals", "E1", 1, 0.0)
    assert e["missing_ranges"] == [["2024-01-01T01:00:00+00:00", "2024-01-01T02:00:00+00:00"]]
    assert (i["kind"], i["meter_id"], i["intervals"], i["fill_kWh_per_interval"]) == ("missing_intervals", "I1", 2, 12.0)
    assert i["kWh_adjusted"] == pytest.approx(24.0) and i["effect_on_net_kWh"] == pytest.approx(-24.0)
    assert i["missing_ranges"] == [["2024-01-01T02:00:00+00:00", "2024-01-01T04:00:00+00:00"]]


def test_import_gap_fill_uses_mpe_adjusted_maximum():
    """I1 hour 1 lapsed: 12 × 1.01 = 12.12 kWh; gap in hours 2-3 filled with 12.12 each.
    I1 = 5 + 12.12 + 2 × 12.12 = 41.36 kWh."""
    rows = hourly("E1", [1000.0] * 4) + hourly("I1", [5.0, 12.0, None, None], [True, False, True, True])
    monitored, _, _ = aggregate(data_for(rows))
    assert monitored["EG_import_y"] == pytest.approx(0.04136)


def test_duplicates_outside_period_and_non_finite():
    """Hand calculation.

    E1 hour 0 delivered twice (1,000 and 990) -> 990 kept; hour 3 NaN -> treated as missing (0);
    a reading at 04:00 (= period end, exclusive) is outside the period -> excluded.
    E1 = 990 + 1,000 + 1,000 + 0 = 2,990 kWh.
    I1 hour 0 delivered twice (10 and 11) -> 11 kept; I1 = 11 + 3 × 10 = 41 kWh.
    """
    rows = (hourly("E1", [1000.0, 1000.0, 1000.0, float("nan")]) + [("E1", "00:00", 990.0, True), ("E1", "04:00", 1000.0, True)]
            + hourly("I1", [10.0] * 4) + [("I1", "00:00", 11.0, True)])
    monitored, treatments, _ = aggregate(data_for(rows))
    assert monitored["EG_export_y"] == pytest.approx(2.990)
    assert monitored["EG_import_y"] == pytest.approx(0.041)
    kinds = [(t["kind"], t["meter_id"]) for t in treatments]
    assert kinds == [("outside_period", "E1"), ("non_finite_value", "E1"), ("duplicate_intervals", "E1"),
                     ("missing_intervals", "E1"), ("duplicate_intervals", "I1")]
    assert treatments[0]["kWh_adjusted"] == pytest.approx(-1000.0) and treatments[0]["effect_on_net_kWh"] == 0.0
    assert treatments[2]["kWh_adjusted"] == pytest.approx(-1000.0)  # 1,000 + 990 -> 990
    assert treatments[4]["kWh_adjusted"] == pytest.approx(-10.0)  # 10 + 11 -> 11


def test_invoice_cross_check():
    """Hand calculation. E1 1,000 kWh/h (class 0.5), I1 10 kWh/h (class 1.0); invoices per 2 hours.

    Metered per invoice period: export 2,000, import 20, net 1,980 kWh.
    Tolerance = Σ|E_m| × accuracy_m = 2,000 × 0.005 + 20 × 0.01 = 10 + 0.2 = 10.2 kWh.

    P1 [00:00, 02:00): invoiced export 1.975 MWh, no import invoice -> invoiced net = 1,975 − 20 = 1,955.
       difference 1,980 − 1,955 = 25 > 10.2 -> flagged; invoice lower -> export −25 kWh.
    P2 [02:00, 04:00): invoiced import 0.030 MWh, no export invoice -> invoiced net = 2,000 − 30 = 1,970.
       difference 10 ≤ 10.2 -> not flagged, but the invoice is lower -> used: import +10 kWh.
    EG_export_y = (4,000 − 25) / 1,000 = 3.975 MWh; EG_import_y = (40 + 10) / 1,000 = 0.050 MWh.
    """
    inv = invoices([("00:00", "02:00", 1.975, "export"), ("02:00", "24:00", 0.030, "import")])
    monitored, treatments, trace = aggregate(data_for(hourly("E1", [1000.0] * 4) + hourly("I1", [10.0] * 4), inv))
    assert monitored["EG_export_y"] == pytest.approx(3.975)
    assert monitored["EG_import_y"] == pytest.approx(0.050)
    p1, p2 = treatments
    assert p1["kind"] == p2["kind"] == "invoice_cross_check"
    assert (p1["metered_net_kWh"], p1["invoice_net_kWh"], p1["difference_kWh"]) == (pytest.approx(1980.0), pytest.approx(1955.0), pytest.approx(25.0))
    assert p1["tolerance_kWh"] == pytest.approx(10.2)
    assert (p1["flagged"], p1["used"], p1["effect_on_net_kWh"]) == (True, "invoice", pytest.approx(-25.0))
    assert (p2["flagged"], p2["used"], p2["effect_on_net_kWh"]) == (False, "invoice", pytest.approx(-10.0))
    assert p2["invoice_export_kWh"] is None and p2["invoice_import_kWh"] == pytest.approx(30.0)
    assert trace.value("EG_export_y") == pytest.approx(3.975)


def test_invoice_higher_keeps_metered_and_is_only_traced():
    """One invoice period [00:00, 04:00): metered export 4,000, import 40, net 3,960 kWh.

    Invoiced export 4.004 MWh, import 0.040 MWh -> invoiced net = 4,004 − 40 = 3,964 kWh > 3,960 -> metered kept.
    |3,960 − 3,964| = 4 ≤ tolerance 4,000 × 0.005 + 40 × 0.01 = 20.4 kWh -> not flagged.
    Nothing changed and nothing flagged: no treatment, but the comparison is in the trace.
    """
    inv = invoices([("00:00", "24:00", 4.004, "export"), ("00:00", "24:00", 0.040, "import")])
    monitored, treatments, trace = aggregate(data_for(hourly("E1", [1000.0] * 4) + hourly("I1", [10.0] * 4), inv))
    assert monitored == {"EG_export_y": pytest.approx(4.0), "EG_import_y": pytest.approx(0.04)}
    assert treatments == []
    step = next(s for s in trace.steps if s.symbol.startswith("adj_invoice["))
    assert step.value == 0.0 and step.inputs["invoice_net_kWh"] == pytest.approx(3964.0) and step.inputs["flagged"] is False


def test_metered_energy_outside_invoice_periods_stays_metered():
    """Only [00:00, 01:00) is invoiced (0.9 MWh export): that hour's net 1,000 − 10 = 990 vs 900 − 10 = 890 ->
    −100 kWh. Hours 1-3 stay metered. EG_export_y = (4,000 − 100) / 1,000 = 3.9 MWh."""
    inv = invoices([("00:00", "01:00", 0.9, "export")])
    monitored, treatments, _ = aggregate(data_for(hourly("E1", [1000.0] * 4) + hourly("I1", [10.0] * 4), inv))
    assert monitored["EG_export_y"] == pytest.approx(3.9)
    assert [t["kind"] for t in treatments] == ["invoice_cross_check"]


def test_invoice_outside_period_not_compared():
    """An invoice for [23:00 the day before, 01:00) is not wholly inside the period: recorded, not compared."""
    inv = pd.DataFrame({"period_start": [START - pd.Timedelta(hours=1)], "period_end": [START + pd.Timedelta(hours=1)],
                        "energy_MWh": [0.5], "direction": ["export"], "source_file": ["i.csv"], "source_row": [2]})
    monitored, treatments, _ = aggregate(data_for(hourly("E1", [1000.0] * 4) + hourly("I1", [10.0] * 4), inv))
    assert monitored["EG_export_y"] == pytest.approx(4.0)
    assert [(t["kind"], t["used"]) for t in treatments] == [("invoice_outside_period", "metered")]


def test_overlapping_invoice_periods_refused():
    inv = invoices([("00:00", "02:00", 2.0, "export"), ("01:00", "03:00", 2.0, "export")])
    with pytest.raises(MethodologyError, match="overlap"):
        aggregate(data_for(hourly("E1", [1000.0] * 4) + hourly("I1", [10.0] * 4), inv))


def test_export_meter_without_data_counts_zero():
    monitored, treatments, _ = aggregate(data_for(hourly("I1", [10.0] * 4)))
    assert monitored == {"EG_export_y": 0.0, "EG_import_y": pytest.approx(0.04)}
    assert treatments[0]["kind"] == "missing_intervals" and treatments[0]["intervals"] == 4


def test_import_meter_without_data_is_an_error():
    with pytest.raises(MethodologyError, match="import meter I1 has no valid reading"):
        aggregate(data_for(hourly("E1", [1000.0] * 4)))


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.datasets["meter_readings"].drop(columns=["calibration_valid"]), "calibration_valid"),
        (lambda d: d.datasets["meter_readings"].assign(meter_id="X9"), "not in the project's meter list"),
    ],
)
def test_bad_readings_frame(mutate, match):
    d = data_for(hourly("E1", [1000.0] * 4) + hourly("I1", [10.0] * 4))
    bad = MonitoringInput(start=d.start, end=d.end, datasets={"meter_readings": mutate(d)}, sources=d.sources)
    with pytest.raises(MethodologyError, match=match):
        aggregate(bad)


def test_full_run_with_data():
    """Aggregate + calculate. From test_invoice_cross_check: export 3.975 MWh, import 0.050 MWh.

    EG_facility_y = 3.925 MWh; BE_y = 3.925 × 0.851425 = 3.341843... tCO2e -> issuable 3.
    Treatments are carried into the result.
    """
    inv = invoices([("00:00", "02:00", 1.975, "export"), ("02:00", "24:00", 0.030, "import")])
    res = ACM0002().run(raw_parameters=wind(), data=data_for(hourly("E1", [1000.0] * 4) + hourly("I1", [10.0] * 4), inv))
    assert res.quantities["EG_facility_y"][0] == pytest.approx(3.925)
    assert res.quantities["BE_y"][0] == pytest.approx(3.925 * 0.851425)
    assert res.issuable_tCO2e == 3
    assert [t["kind"] for t in res.treatments] == ["invoice_cross_check", "invoice_cross_check"]
    json.dumps(res.to_dict())  # the result, treatments and trace are JSON-serialisable


# --- properties ------------------------------------------------------------------------------------

mwh = st.floats(min_value=0.0, max_value=1e7, allow_nan=False)
ef = st.floats(min_value=0.0, max_value=2.0, allow_nan=False)


@given(a=mwh, b=mwh, imp=mwh, cm=ef, ptype=st.sampled_from(["wind", "solar"]))
def test_more_export_never_lowers_be(a, b, imp, cm, ptype):
    lo, hi = sorted((a, b))
    raw = {"project_type": ptype, "project_activity": "greenfield", "EF_grid_CM_y": {"value": cm, "unit": "tCO2e/MWh"}}
    be_lo = ACM0002().run(raw_parameters=raw, monitored={"EG_export_y": lo, "EG_import_y": imp}).quantities["BE_y"][0]
    be_hi = ACM0002().run(raw_parameters=raw, monitored={"EG_export_y": hi, "EG_import_y": imp}).quantities["BE_y"][0]
    assert be_lo <= be_hi


@given(exp=mwh, imp=mwh, om=ef, bm=ef, pe=st.floats(min_value=0, max_value=1e7, allow_nan=False),
       ptype=st.sampled_from(["wind", "solar", "other"]), period=st.sampled_from([1, 2, 3]))
def test_issuable_never_negative(exp, imp, om, bm, pe, ptype, period):
    raw = {"project_type": ptype, "project_activity": "greenfield", "crediting_period": period,
           "EF_grid_OM_y": {"value": om, "unit": "tCO2e/MWh"}, "EF_grid_BM_y": {"value": bm, "unit": "tCO2e/MWh"},
           "PE_y": {"value": pe, "unit": "tCO2e"}}
    res = ACM0002().run(raw_parameters=raw, monitored={"EG_export_y": exp, "EG_import_y": imp})
    er = res.quantities["ER_y"][0]
    assert isinstance(res.issuable_tCO2e, int) and res.issuable_tCO2e >= 0
    assert res.issuable_tCO2e <= max(0.0, er) + 1e-6


N_HOURS = 6
P_END = START + pd.Timedelta(hours=N_HOURS)


@st.composite
def meter_data(draw):
    """Two export meters and one import meter, hourly; random gaps, lapsed calibrations and invoices."""
    acc = st.sampled_from([0.2, 0.5, 1.0, 2.0])
    meters = [
        {"id": "E1", "direction": "export", "accuracy_class": draw(acc), "interval_minutes": 60},
        {"id": "E2", "direction": "export", "accuracy_class": draw(acc), "interval_minutes": 60},
        {"id": "I1", "direction": "import", "accuracy_class": draw(acc), "interval_minutes": 60},
    ]
    rows = []
    raw_net = 0.0
    for m in meters:
        hi = 5000.0 if m["direction"] == "export" else 200.0
        for h in range(N_HOURS):
            present = draw(st.booleans()) if not (m["id"] == "I1" and h == 0) else True
            if not present:
                continue
            v = draw(st.floats(min_value=0.0, max_value=hi, allow_nan=False))
            rows.append((m["id"], START + pd.Timedelta(hours=h), v, draw(st.booleans())))
            raw_net += v if m["direction"] == "export" else -v
    df = pd.DataFrame({
        "meter_id": [r[0] for r in rows], "ts": pd.Series([r[1] for r in rows], dtype="datetime64[us, UTC]"),
        "value": [r[2] for r in rows], "unit": "kWh", "register": np.nan, "source_file": "f.csv",
        "source_row": range(2, len(rows) + 2), "calibration_valid": [r[3] for r in rows],
    })
    datasets = {"meter_readings": df}
    if draw(st.booleans()):
        cut = draw(st.integers(min_value=1, max_value=N_HOURS - 1))
        bounds = [(START, START + pd.Timedelta(hours=cut)), (START + pd.Timedelta(hours=cut), P_END)]
        inv_rows = []
        for s, e in bounds:
            for direction, hi in (("export", 10.0 * (e - s) / pd.Timedelta(hours=1)), ("import", 0.5)):
                if draw(st.booleans()):
                    inv_rows.append((s, e, draw(st.floats(min_value=0.0, max_value=hi, allow_nan=False)), direction))
        if inv_rows:
            datasets["invoices"] = pd.DataFrame({
                "period_start": pd.Series([r[0] for r in inv_rows], dtype="datetime64[us, UTC]"),
                "period_end": pd.Series([r[1] for r in inv_rows], dtype="datetime64[us, UTC]"),
                "energy_MWh": [r[2] for r in inv_rows], "direction": [r[3] for r in inv_rows],
                "source_file": "inv.csv", "source_row": range(2, len(inv_rows) + 2),
            })
    data = MonitoringInput(start=START.to_pydatetime(), end=P_END.to_pydatetime(), datasets=datasets, sources={"meters": meters})
    return data, raw_net


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=meter_data(), cm=ef)
def test_conservative_treatments_never_raise_the_result(case, cm):
    """Net export after all treatments ≤ the raw metered net (gaps as absent, no MPE, no invoices),
    the treatments account for the whole difference, and ER_y/issuable follow."""
    data, raw_net_kwh = case
    monitored, treatments, _ = aggregate(data)
    net_kwh = (monitored["EG_export_y"] - monitored["EG_import_y"]) * 1000.0
    tol = 1e-6 * max(1.0, abs(raw_net_kwh))
    assert net_kwh <= raw_net_kwh + tol
    assert all(t["effect_on_net_kWh"] <= 1e-9 for t in treatments)
    assert net_kwh == pytest.approx(raw_net_kwh + sum(t["effect_on_net_kWh"] for t in treatments), abs=tol)

    raw = {"project_type": "wind", "project_activity": "greenfield", "EF_grid_CM_y": {"value": cm, "unit": "tCO2e/MWh"}}
    treated = ACM0002().run(raw_parameters=raw, data=data)
    untreated = ACM0002().run(raw_parameters=raw, monitored={"EG_export_y": raw_net_kwh / 1000.0, "EG_import_y": 0.0})
    assert treated.quantities["ER_y"][0] <= untreated.quantities["ER_y"][0] + 1e-9
    assert treated.issuable_tCO2e <= untreated.issuable_tCO2e


# --- treated one series at a time (the pipeline's local runner) -------------------------------------


def _treated_per_meter(data, *, keep_tables):
    """What the pipeline hands the aggregation: each meter's valid rows treated on their own."""
    m = ACM0002()
    df = data.datasets["meter_readings"]
    pieces = [df[df["meter_id"] == mid].reset_index(drop=True) for mid in pd.unique(df["meter_id"])]
    treated = m.combine_series([
        m.treat_series(p, sources=data.sources, start=data.start, end=data.end, keep_tables=keep_tables) for p in pieces
    ])
    datasets = {**data.datasets, "meter_readings": treated}
    return MonitoringInput(start=data.start, end=data.end, datasets=datasets, sources=data.sources)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=meter_data())
def test_treating_each_series_first_gives_the_same_aggregation(case):
    data, _ = case
    present = set(data.datasets["meter_readings"]["meter_id"])
    if present != {"E1", "E2", "I1"}:
        # A meter without any row is treated with the others' (the pipeline's contract blocks
        # such a run before the calculation): the per-series path refuses it rather than guess.
        with pytest.raises(MethodologyError, match="lack meter"):
            aggregate(_treated_per_meter(data, keep_tables=True))
        return
    expected, expected_treatments, expected_trace = aggregate(data)
    got, got_treatments, got_trace = aggregate(_treated_per_meter(data, keep_tables="invoices" in data.datasets))
    assert got == expected  # exactly: the same per-meter arithmetic in the same order
    assert got_treatments == expected_treatments
    assert json.dumps(got_trace.to_list(), sort_keys=True, default=str) == json.dumps(expected_trace.to_list(), sort_keys=True, default=str)


def test_per_series_treatments_refuse_what_they_cannot_stand_for():
    rows = hourly("E1", [1000.0] * 4) + hourly("I1", [10.0] * 4)
    inv = invoices([("00:00", "02:00", 1.975, "export")])
    # The invoice cross-check needs the interval tables: treated without them, it is refused.
    with pytest.raises(MethodologyError, match="interval table"):
        aggregate(_treated_per_meter(data_for(rows, inv), keep_tables=False))
    # A meter's rows split over two pieces cannot be treated apart.
    m = ACM0002()
    d = data_for(rows)
    df = d.datasets["meter_readings"]
    halves = [df.iloc[:2], df.iloc[2:]]
    with pytest.raises(MethodologyError, match="two pieces"):
        m.combine_series([m.treat_series(h, sources=d.sources, start=d.start, end=d.end, keep_tables=False) for h in halves])


@pytest.mark.parametrize("valid", [True, [True, False, True, True]])
def test_a_complete_series_takes_the_short_path_with_the_same_result(monkeypatch, valid):
    """A meter with every interval once, finite and calibrated skips steps 1-5 (they change
    nothing); with one reading out of calibration it does not. Same result as the long path."""
    from methodologies.cdm_acm0002.v22 import monitoring

    data = data_for(hourly("E1", [1000.0, 990.0, 1010.0, 1000.0], valid) + hourly("I1", [10.0, 11.0, 9.0, 10.0]))
    e1 = data.datasets["meter_readings"].query("meter_id == 'E1'")["ts"].reset_index(drop=True)
    assert monitoring._complete_grid(e1, START, END, 60)  # the short path's condition holds here
    assert not monitoring._complete_grid(e1.iloc[[0, 1, 3]].reset_index(drop=True), START, END, 60)  # a gap
    short = aggregate(data)
    monkeypatch.setattr(monitoring, "_complete_grid", lambda *a, **k: False)
    long = aggregate(data)
    assert short[0] == long[0] and short[1] == long[1]
    assert short[2].to_list() == long[2].to_list()
    assert short[0]["EG_export_y"] == pytest.approx((4000.0 if valid is True else 4000.0 - 990.0 * 0.005) / 1000.0)
