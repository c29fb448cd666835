"""The meter-readings contract, rule by rule, on both engines (gx and native)."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pytest

from mrv.contracts import ContractContext, ValidationOutcome, compile_suite, validate_readings
from mrv.errors import ContractBlocked
from mrv.project import Calibration

TIDY = ["meter_id", "ts", "value", "unit", "register", "source_file", "source_row"]


def run(df: pd.DataFrame, contract, engine: str, ctx: ContractContext) -> ValidationOutcome:
    return validate_readings(df, contract=contract, context=ctx, engine=engine)


def rule(outcome: ValidationOutcome, rule_id: str):
    (r,) = [r for r in outcome.rules if r.rule_id == rule_id]
    return r


def quarantined(outcome: ValidationOutcome, rule_id: str) -> pd.DataFrame:
    return outcome.quarantine[outcome.quarantine["rule_id"] == rule_id]


def failing(outcome: ValidationOutcome) -> set[str]:
    return {r.rule_id for r in outcome.rules if not r.success}


# --------------------------------------------------------------------------- all clean


def test_clean_readings_pass_every_rule(td, contract, engine, ctx):
    df = td.clean_frame()
    out = run(df, contract, engine, ctx)
    assert out.engine == engine
    assert (out.contract_id, out.contract_version) == ("meter_readings", "1.0.0")
    assert failing(out) == set()
    assert not out.blocked
    out.raise_if_blocked()  # no-op
    assert list(out.valid.columns) == TIDY + ["calibration_valid"]
    assert len(out.valid) == len(df) and out.valid["calibration_valid"].all()
    pd.testing.assert_frame_equal(out.valid[TIDY], df)
    assert out.quarantine.empty and list(out.quarantine.columns) == TIDY + ["rule_id", "severity", "reason"]
    assert out.gaps.empty
    assert list(out.gaps.columns) == ["meter_id", "gap_start", "gap_end", "missing_intervals", "hours", "position"]


# --------------------------------------------------------------------------- block rules


def test_unknown_meter_blocks_naming_rule_file_row_and_clause(td, contract, engine, ctx):
    df = pd.concat([td.clean_frame(), td.readings("EXP-9", n=3, file="stray.csv")], ignore_index=True)
    out = run(df, contract, engine, ctx)
    assert out.blocked and failing(out) == {"meter_known"}
    q = quarantined(out, "meter_known")
    assert q["source_row"].tolist() == [2, 3, 4] and set(q["severity"]) == {"block"}
    assert q["reason"].iloc[0] == "meter EXP-9 is not declared in the project (declared: EXP-1, IMP-1)"
    with pytest.raises(ContractBlocked) as info:
        out.raise_if_blocked()
    msg = str(info.value)
    assert "rule meter_known (block)" in msg
    assert "stray.csv row 2: meter EXP-9" in msg and "stray.csv row 4" in msg
    assert "clause: CDM ACM0002 v22.0" in msg
    assert info.value.rule_ids == ["meter_known"]


def test_missing_meter_id_blocks(td, contract, engine, ctx):
    df = td.set_cell(td.clean_frame(), "exp-1.csv", 7, "meter_id", pd.NA)
    out = run(df, contract, engine, ctx)
    assert failing(out) == {"meter_id_present", "interval_regular"} and out.blocked  # + the hole it leaves
    with pytest.raises(ContractBlocked, match=r"meter_id_present[\s\S]*exp-1.csv row 7: no meter_id"):
        out.raise_if_blocked()


def test_unit_other_than_kwh_blocks(td, contract, engine, ctx):
    df = td.set_cell(td.clean_frame(), "imp-1.csv", 5, "unit", "MWh")
    out = run(df, contract, engine, ctx)
    assert failing(out) == {"unit_kwh", "interval_regular"} and out.blocked
    assert quarantined(out, "unit_kwh")["reason"].tolist() == ["unit MWh is not kWh"]


def test_meter_without_valid_readings_blocks_with_files(td, contract, engine, ctx):
    late = td.readings("IMP-1", start="2023-02-01", n=4, file="imp-feb.csv")
    out = run(pd.concat([td.readings("EXP-1"), late], ignore_index=True), contract, engine, ctx)
    assert failing(out) == {"in_period", "period_covered"}
    cov = rule(out, "period_covered")
    assert cov.details["missing"] == ["IMP-1"] and cov.details["missing_count"] == 1
    with pytest.raises(ContractBlocked) as info:
        out.raise_if_blocked()
    msg = str(info.value)
    assert (
        "meter IMP-1: no valid readings in the monitoring period 2023-01-01..2023-01-04 "
        "(files: imp-feb.csv; 4 input row(s), quarantined: in_period 4)"
    ) in msg
    assert "CDM ACM0002 v22.0, monitoring table for EG_facility,y: continuous measurement" in msg


def test_meter_with_no_rows_at_all_is_reported(td, contract, engine, ctx):
    out = run(td.readings("EXP-1"), contract, engine, ctx)
    assert failing(out) == {"period_covered"}
    assert rule(out, "period_covered").details["findings"] == [
        "meter IMP-1: no valid readings in the monitoring period 2023-01-01..2023-01-04 (no rows in the input)"
    ]
    whole = out.gaps[out.gaps["meter_id"] == "IMP-1"]
    assert whole["position"].tolist() == ["whole_period"] and whole["hours"].tolist() == [96.0]


# --------------------------------------------------------------------------- quarantine rules


def test_missing_timestamp_is_quarantined(td, contract, engine, ctx):
    df = td.set_cell(td.clean_frame(), "exp-1.csv", 10, "ts", pd.NaT)
    out = run(df, contract, engine, ctx)
    assert failing(out) == {"ts_present", "interval_regular"}  # the hole it leaves is a (warned) gap
    assert quarantined(out, "ts_present")["reason"].tolist() == ["no interval start time"]
    assert not out.blocked


def test_in_period_is_half_open(td, contract, engine, ctx):
    df = pd.concat(
        [
            td.readings("EXP-1", start="2022-12-31T23:45", n=386),  # one before start, one at the end
            td.readings("IMP-1", values=2.0),
        ],
        ignore_index=True,
    )
    out = run(df, contract, engine, ctx)
    q = quarantined(out, "in_period")
    assert q["ts"].tolist() == [pd.Timestamp("2022-12-31T23:45Z"), pd.Timestamp(td.PERIOD_END)]
    assert q["reason"].iloc[0] == "interval start 2022-12-31T23:45:00Z is outside the monitoring period 2023-01-01..2023-01-04"
    assert out.valid["ts"].min() == pd.Timestamp(td.PERIOD_START)  # start itself is in
    assert out.valid["ts"].max() == pd.Timestamp("2023-01-04T23:45Z")  # last interval before the end
    assert failing(out) == {"in_period"}


def test_missing_value_is_quarantined(td, contract, engine, ctx):
    df = td.set_cell(td.clean_frame(), "exp-1.csv", 3, "value", np.nan)
    out = run(df, contract, engine, ctx)
    assert failing(out) == {"value_not_null", "interval_regular"}
    assert quarantined(out, "value_not_null")["reason"].tolist() == ["energy value missing at 2023-01-01T00:15:00Z"]
    assert rule(out, "plausible_vs_capacity").success  # a missing value is not also "implausible"


def test_negative_interval_energy_is_quarantined_zero_is_fine(td, contract, engine, ctx):
    df = td.set_cell(td.clean_frame(), "exp-1.csv", 4, "value", -1.5)
    df = td.set_cell(df, "exp-1.csv", 5, "value", 0.0)
    out = run(df, contract, engine, ctx)
    q = quarantined(out, "non_negative")
    assert q["source_row"].tolist() == [4]
    assert q["reason"].iloc[0] == "negative energy -1.5 kWh at 2023-01-01T00:30:00Z from an interval meter"
    assert rule(out, "register_monotonic").success


def test_register_going_backwards_is_quarantined_for_cumulative_meters(td, contract, engine, ctx):
    df = td.set_cell(td.clean_frame(), "imp-1.csv", 6, "value", -3.0)
    out = run(df, contract, engine, ctx)
    assert rule(out, "non_negative").success  # the interval rule does not apply to cumulative meters
    q = quarantined(out, "register_monotonic")
    assert q["source_row"].tolist() == [6]
    assert q["reason"].iloc[0].startswith("register went backwards by -3 kWh at 2023-01-01T01:00:00Z (register 1010 kWh)")


def test_capacity_bound_with_tolerance(td, contract, engine, ctx):
    limit = CAP = 1000 * 0.25 * 1.05  # kW x h x (1 + tolerance)
    df = td.set_cell(td.clean_frame(), "exp-1.csv", 8, "value", limit)  # exactly at the bound: fine
    df = td.set_cell(df, "exp-1.csv", 9, "value", limit + 0.01)
    out = run(df, contract, engine, ctx)
    q = quarantined(out, "plausible_vs_capacity")
    assert q["source_row"].tolist() == [9]
    assert q["reason"].iloc[0] == (
        f"262.51 kWh at 2023-01-01T01:45:00Z exceeds the plausible maximum {CAP:g} kWh (1000 kW installed x interval x (1 + 0.05))"
    )


def test_capacity_bound_scales_with_the_meter_interval(td, contract, engine):
    hourly = td.meter("EXP-1", interval_minutes=60)
    ctx = td.context((hourly, td.METERS[1]))
    df = pd.concat([td.readings("EXP-1", n=96, minutes=60, values=1000.0), td.readings("IMP-1", values=2.0)], ignore_index=True)
    out = run(df, contract, engine, ctx)
    assert failing(out) == set()  # 1000 kWh in an hour from 1000 kW is plausible


def test_first_failing_rule_in_contract_order_wins(td, contract, engine, ctx):
    # Outside the period AND missing: quarantined once, under in_period (listed first).
    extra = td.readings("EXP-1", start="2023-02-01", n=1, values=np.nan, file="late.csv")
    out = run(pd.concat([td.clean_frame(), extra], ignore_index=True), contract, engine, ctx)
    assert quarantined(out, "in_period")["source_file"].tolist() == ["late.csv"]
    assert rule(out, "value_not_null").unexpected_count == 1
    assert rule(out, "value_not_null").quarantined_count == 0
    assert len(out.quarantine) == 1


# --------------------------------------------------------------------------- duplicates


def _with_copy(td, value: float, meter_id: str = "EXP-1", row: int = 10) -> pd.DataFrame:
    base = td.clean_frame()
    orig = base[(base["meter_id"] == meter_id) & (base["source_row"] == row)]
    copy = orig.assign(value=value, source_file="resent.csv", source_row=2)
    return pd.concat([base, copy], ignore_index=True)


def test_identical_duplicate_keeps_one_copy(td, contract, engine, ctx):
    out = run(_with_copy(td, 10.0), contract, engine, ctx)
    r = rule(out, "unique_reading")
    assert (r.success, r.unexpected_count, r.quarantined_count) == (False, 2, 1)
    assert r.details["duplicate_keys"] == 1 and r.details["conflicting_keys"] == 0
    (reason,) = quarantined(out, "unique_reading")["reason"]
    assert reason == "duplicate of exp-1.csv row 10 for (EXP-1, 2023-01-01T02:00:00Z): same value 10 kWh; one copy kept"
    assert len(out.valid) == len(td.clean_frame())
    assert not out.blocked


@pytest.mark.parametrize(
    ("meter_id", "copy_value", "kept_value", "word"),
    [("EXP-1", 12.0, 10.0, "lowest"), ("EXP-1", 7.5, 7.5, "lowest"), ("IMP-1", 5.0, 5.0, "highest"), ("IMP-1", 1.0, 2.0, "highest")],
)
def test_conflicting_duplicates_keep_the_conservative_copy(td, contract, engine, meter_id, copy_value, kept_value, word, ctx):
    out = run(_with_copy(td, copy_value, meter_id), contract, engine, ctx)
    v = out.valid
    kept = v[(v["meter_id"] == meter_id) & (v["ts"] == pd.Timestamp("2023-01-01T02:00Z"))]
    assert kept["value"].tolist() == [kept_value]
    (reason,) = quarantined(out, "unique_reading")["reason"]
    direction = "export" if meter_id.startswith("EXP") else "import"
    assert f"with a conflicting value" in reason and f"the {word} of 2 copies (conservative for an {direction} meter)" in reason
    assert rule(out, "unique_reading").details["conflicting_keys"] == 1


def test_duplicate_copy_failing_another_rule_goes_there(td, contract, engine, ctx):
    out = run(_with_copy(td, -4.0), contract, engine, ctx)  # the copy is negative: non_negative takes it
    assert quarantined(out, "non_negative")["source_file"].tolist() == ["resent.csv"]
    assert quarantined(out, "unique_reading").empty
    assert rule(out, "unique_reading").unexpected_count == 2  # GX still flags both copies


# --------------------------------------------------------------------------- warnings: gaps, calibration


def test_two_day_gap_is_reported(td, contract, engine, ctx):
    exp = td.readings("EXP-1")
    gap = exp["ts"].between(pd.Timestamp("2023-01-02T00:00Z"), pd.Timestamp("2023-01-03T23:45Z"))
    df = pd.concat([exp[~gap], td.readings("IMP-1", values=2.0)], ignore_index=True)
    out = run(df, contract, engine, ctx)
    assert failing(out) == {"interval_regular"} and not out.blocked
    r = rule(out, "interval_regular")
    assert (r.unexpected_count, r.quarantined_count) == (1, 0)
    assert r.details["findings"] == ["exp-1.csv row 290: 2895 min since the previous reading at 2023-01-04T00:00:00Z, expected 15 min"]
    g = out.gaps.to_dict(orient="records")
    assert g == [
        {
            "meter_id": "EXP-1",
            "gap_start": pd.Timestamp("2023-01-02T00:00Z"),
            "gap_end": pd.Timestamp("2023-01-04T00:00Z"),
            "missing_intervals": 192,
            "hours": 48.0,
            "position": "between",
        }
    ]
    assert out.to_summary()["gap_hours_per_meter"] == {"EXP-1": 48.0, "IMP-1": 0.0}


def test_gaps_at_the_period_edges(td, contract, engine, ctx):
    df = pd.concat([td.readings("EXP-1", start="2023-01-01T06:00", n=300), td.readings("IMP-1", values=2.0)], ignore_index=True)
    out = run(df, contract, engine, ctx)
    assert rule(out, "interval_regular").success  # consecutive readings are regular
    g = out.gaps[["position", "missing_intervals", "hours"]].to_dict(orient="records")
    assert g == [
        {"position": "start", "missing_intervals": 24, "hours": 6.0},
        {"position": "end", "missing_intervals": 60, "hours": 15.0},
    ]


def test_calibration_lapse_is_flagged_not_removed(td, contract, engine):
    # EXP-1 certificate runs out on 2023-01-02 (inclusive): readings from 2023-01-03 are flagged.
    exp = td.meter("EXP-1", calibrations=(Calibration(valid_from=date(2022, 1, 3), valid_to=date(2023, 1, 2)),))
    out = run(td.clean_frame(), contract, engine, td.context((exp, td.METERS[1])))
    assert failing(out) == {"calibration_valid"} and not out.blocked
    r = rule(out, "calibration_valid")
    assert (r.unexpected_count, r.quarantined_count) == (192, 0)
    assert r.details["findings"][0] == "exp-1.csv row 194: reading at 2023-01-03T00:00:00Z is outside every calibration validity window of meter EXP-1"
    v = out.valid
    lapsed = v[~v["calibration_valid"]]
    assert set(lapsed["meter_id"]) == {"EXP-1"} and lapsed["ts"].min() == pd.Timestamp("2023-01-03T00:00Z")
    s = out.to_summary()
    assert s["calibration_lapsed_rows_per_meter"] == {"EXP-1": 192, "IMP-1": 0}
    assert s["calibration_lapsed_kwh_per_meter"] == {"EXP-1": 1920.0, "IMP-1": 0.0}


def test_calibration_dates_are_read_in_the_meter_timezone(td, contract, engine):
    # Valid through 2023-01-02 in Asia/Kolkata (+05:30) = until 2023-01-02T18:30Z.
    exp = td.meter("EXP-1", timezone="Asia/Kolkata", calibrations=(Calibration(valid_from=date(2022, 1, 1), valid_to=date(2023, 1, 2)),))
    out = run(td.clean_frame(), contract, engine, td.context((exp, td.METERS[1])))
    v = out.valid[out.valid["meter_id"] == "EXP-1"]
    assert v.loc[v["calibration_valid"], "ts"].max() == pd.Timestamp("2023-01-02T18:15Z")
    assert v.loc[~v["calibration_valid"], "ts"].min() == pd.Timestamp("2023-01-02T18:30Z")


def test_two_calibration_windows_with_a_gap_between(td, contract, engine):
    windows = (Calibration(valid_from=date(2022, 1, 1), valid_to=date(2023, 1, 1)), Calibration(valid_from=date(2023, 1, 3), valid_to=date(2024, 1, 1)))
    out = run(td.clean_frame(), contract, engine, td.context((td.meter("EXP-1", calibrations=windows), td.METERS[1])))
    lapsed = out.valid[~out.valid["calibration_valid"]]
    assert lapsed["ts"].dt.date.unique().tolist() == [date(2023, 1, 2)]


# --------------------------------------------------------------------------- outcome, summary, suite


def test_summary_is_json_and_counts_per_meter(td, contract, engine, ctx):
    df = td.set_cell(td.clean_frame(), "exp-1.csv", 4, "value", 5000.0)
    df = td.set_cell(df, "imp-1.csv", 4, "value", -2.0)
    df = pd.concat([df, td.readings("EXP-9", n=2, values=3.0)], ignore_index=True)
    out = run(df, contract, engine, ctx)
    s = json.loads(json.dumps(out.to_summary()))
    assert s["engine"] == engine and s["blocked"] is True
    assert s["rows"] == {"input": 770, "valid": 766, "quarantined": 4}
    assert s["quarantined_rows_per_meter"] == {"EXP-1": 1, "IMP-1": 1, "EXP-9": 2}
    assert s["quarantined_kwh_per_meter"] == {"EXP-1": 5000.0, "IMP-1": -2.0, "EXP-9": 6.0}
    by_id = {r["rule_id"]: r for r in s["rules"]}
    assert [r["rule_id"] for r in s["rules"]] == [r.id for r in contract.rules]
    assert by_id["plausible_vs_capacity"]["quarantined_count"] == 1
    assert by_id["meter_known"]["clause"].startswith("CDM ACM0002 v22.0")


def _iso(v):
    return v.isoformat() if isinstance(v, datetime) else v  # GX parses ISO strings into datetimes


def test_suite_is_compiled_from_the_yaml(td, contract, ctx):
    suite = compile_suite(contract, context=ctx)
    assert type(suite).__name__ == "ExpectationSuite"
    assert [e.meta["rule_id"] for e in suite.expectations] == [r.id for r in contract.rules]
    configs = {e.meta["rule_id"]: e.configuration for e in suite.expectations}
    assert configs["meter_known"].kwargs["value_set"] == ["EXP-1", "IMP-1"]
    assert pd.Timestamp(configs["in_period"].kwargs["min_value"]) == pd.Timestamp("2023-01-01T00:00Z")
    assert pd.Timestamp(configs["in_period"].kwargs["max_value"]) == pd.Timestamp("2023-01-05T00:00Z")
    assert configs["non_negative"].kwargs["row_condition"]["parameter"] == "interval"
    assert configs["period_covered"].meta["clause"].startswith("CDM ACM0002 v22.0")
    # The outcome records the same suite as deterministic JSON.
    out = validate_readings(td.clean_frame(), contract=contract, context=ctx, engine="native")
    recorded = out.suite
    assert recorded["meta"] == {"contract_id": "meter_readings", "contract_version": "1.0.0"}
    for exp, gx_exp in zip(recorded["expectations"], suite.expectations):
        assert exp["type"] == gx_exp.expectation_type
        gx_kwargs = {k: _iso(v) for k, v in gx_exp.configuration.kwargs.items() if k != "row_condition"}
        assert {k: v for k, v in exp["kwargs"].items() if k != "row_condition"} == gx_kwargs
    assert json.loads(json.dumps(recorded)) == recorded


def test_auto_engine_switches_on_row_limit(td, contract, ctx):
    df = td.clean_frame()
    assert validate_readings(df, contract=contract, context=ctx, engine="auto", gx_row_limit=len(df)).engine == "gx"
    assert validate_readings(df, contract=contract, context=ctx, engine="auto", gx_row_limit=len(df) - 1).engine == "native"


def test_input_order_does_not_matter(td, contract, engine, ctx):
    df = td.clean_frame()
    df = td.set_cell(df, "exp-1.csv", 50, "value", np.nan)
    shuffled = df.sample(frac=1.0, random_state=7).reset_index(drop=True)
    gap = shuffled[~shuffled["source_row"].between(100, 120)].reset_index(drop=True)
    a = run(gap.sort_values(["meter_id", "ts"]).reset_index(drop=True), contract, engine, ctx)
    b = run(gap, contract, engine, ctx)
    key = ["source_file", "source_row"]
    pd.testing.assert_frame_equal(a.valid.sort_values(key).reset_index(drop=True), b.valid.sort_values(key).reset_index(drop=True))
    pd.testing.assert_frame_equal(a.quarantine.sort_values(key).reset_index(drop=True), b.quarantine.sort_values(key).reset_index(drop=True))
    pd.testing.assert_frame_equal(a.gaps, b.gaps)
    assert [(r.rule_id, r.unexpected_count) for r in a.rules] == [(r.rule_id, r.unexpected_count) for r in b.rules]


def test_period_in_a_local_timezone_is_labelled_with_instants(td, contract, engine):
    start = datetime(2022, 12, 31, 18, 30, tzinfo=timezone.utc)  # Asia/Kolkata midnight
    ctx = td.context(start=start, end=datetime(2023, 1, 4, 18, 30, tzinfo=timezone.utc))
    out = run(td.clean_frame(), contract, engine, ctx)
    reasons = quarantined(out, "in_period")["reason"]
    assert len(reasons) == 2 * 22  # 18:30..23:45 on the last day, both meters
    assert reasons.str.endswith("outside the monitoring period [2022-12-31T18:30:00+00:00, 2023-01-04T18:30:00+00:00)").all()
