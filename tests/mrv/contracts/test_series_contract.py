"""The contract engine on keyed time series other than meters (instruments, a device fleet).

Two small contracts written here: one keyed on ``instrument_id`` (range rules restricted to a
quantity by ``row_condition``, duplicates, interval regularity, calibration, coverage), one keyed
on ``device_id`` with the ``daily_total`` derivation. Every check runs on both engines and the
engines must agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrv.contracts import (
    ContractContext,
    ValidationOutcome,
    compile_contract,
    conservative_keep,
    gap_columns,
    load_contract,
    parse_contract,
    validate_readings,
)
from mrv.errors import ContractError
from mrv.project import Calibration, Meter

INSTRUMENT_CONTRACT = """
id: flare_instruments
version: 0.1.0
description: Readings of flare instruments (test contract).
key: instrument_id
columns: [quantity, unit]
rules:
  - id: instrument_known
    severity: block
    description: Every reading belongs to a declared instrument.
    clause: "test: monitoring plan"
    expectation: expect_column_values_to_be_in_set
    kwargs: {column: instrument_id, value_set: "${sources.ids}"}
    reason: "instrument {instrument_id} is not declared (declared: ${sources.ids})"
  - id: value_not_null
    severity: quarantine
    description: Every reading has a value.
    clause: "test: continuous measurement"
    expectation: expect_column_values_to_not_be_null
    kwargs: {column: value}
    reason: "no value at {ts}"
  - id: flow_in_range
    severity: quarantine
    description: Flow is between 0 and the plausible maximum.
    clause: "test: flow plausibility"
    expectation: expect_column_values_to_be_between
    kwargs: {column: value, min_value: 0, max_value: "${values.param.max_flow}"}
    row_condition: {column: quantity, operator: "==", parameter: V_t_wb}
    reason: "flow {value} {unit} at {ts} is outside 0..${values.param.max_flow} {unit}"
  - id: fraction_in_range
    severity: quarantine
    description: A volume fraction is between 0 and 1.
    clause: "test: fraction plausibility"
    expectation: expect_column_values_to_be_between
    kwargs: {column: value, min_value: 0, max_value: 1}
    row_condition: {column: quantity, operator: IN, parameter: [w_CH4]}
    reason: "{quantity} {value} at {ts} is not a fraction"
  - id: unique_reading
    severity: quarantine
    description: One reading per instrument and interval; the conservative copy is kept.
    clause: "test: conservativeness"
    expectation: expect_compound_columns_to_be_unique
    kwargs: {column_list: [instrument_id, ts]}
    keep: conservative
  - id: interval_regular
    severity: warn
    evaluate_on: valid
    description: Consecutive valid readings are one declared interval apart.
    clause: "test: continuous measurement"
    expectation: expect_column_pair_values_to_be_equal
    kwargs: {column_A: interval_step_minutes, column_B: interval_minutes, ignore_row_if: either_value_is_missing}
    derive: [interval_step_minutes, interval_minutes]
    reason: "{interval_step_minutes} min since the previous reading of {instrument_id} at {ts}, expected {interval_minutes} min"
  - id: calibration_valid
    severity: warn
    evaluate_on: valid
    description: The reading falls inside a calibration window of its instrument.
    clause: "test: calibration"
    expectation: expect_column_values_to_be_in_set
    kwargs: {column: calibration_valid, value_set: [true]}
    derive: [calibration_valid]
    reason: "reading at {ts} is outside every calibration window of {instrument_id}"
  - id: period_covered
    severity: block
    evaluate_on: valid
    description: Every declared instrument has a valid reading.
    clause: "test: continuous measurement"
    expectation: expect_column_distinct_values_to_contain_set
    kwargs: {column: instrument_id, value_set: "${sources.ids}"}
    reason: "instrument {missing}: no valid readings in ${period.label}"
"""

DEVICE_CONTRACT = """
id: device_energy
version: 0.1.0
description: Energy delivered by a device fleet (test contract).
key: device_id
columns: [unit]
rules:
  - id: device_known
    severity: block
    description: Every reading belongs to a registered device.
    clause: "test: device registry"
    expectation: expect_column_values_to_be_in_set
    kwargs: {column: device_id, value_set: "${sources.ids}"}
    reason: "device {device_id} is not in the registry"
  - id: value_not_null
    severity: quarantine
    description: Every reading has a value.
    clause: "test: continuous measurement"
    expectation: expect_column_values_to_not_be_null
    kwargs: {column: value}
    reason: "no energy value for {device_id} at {ts}"
  - id: unique_reading
    severity: quarantine
    description: One reading per device and interval.
    clause: "test: conservativeness"
    expectation: expect_compound_columns_to_be_unique
    kwargs: {column_list: [device_id, ts]}
    keep: conservative
  - id: daily_energy_plausible
    severity: quarantine
    description: A device's energy over a UTC day stays below what it can deliver in a day.
    clause: "test: implausible daily energy"
    expectation: expect_column_values_to_be_between
    kwargs: {column: daily_total, max_value: "${values.max_daily_kwh}"}
    derive: [daily_total]
    reason: "{device_id} delivered {daily_total} {unit} on the UTC day of {ts}, more than ${values.max_daily_kwh} {unit}"
  - id: interval_regular
    severity: warn
    evaluate_on: valid
    description: Consecutive valid readings are one declared interval apart.
    clause: "test: continuous measurement"
    expectation: expect_column_pair_values_to_be_equal
    kwargs: {column_A: interval_step_minutes, column_B: interval_minutes, ignore_row_if: either_value_is_missing}
    derive: [interval_step_minutes, interval_minutes]
  - id: calibration_valid
    severity: warn
    evaluate_on: valid
    description: The reading falls inside the device's calibration window.
    clause: "test: calibration"
    expectation: expect_column_values_to_be_in_set
    kwargs: {column: calibration_valid, value_set: [true]}
    derive: [calibration_valid]
  - id: period_covered
    severity: block
    evaluate_on: valid
    description: Every registered device has a valid reading.
    clause: "test: continuous measurement"
    expectation: expect_column_distinct_values_to_contain_set
    kwargs: {column: device_id, value_set: "${sources.ids}"}
"""


@dataclass(frozen=True)
class Instrument:
    """A series source as another module would declare it: id, interval, calibrations (+ options)."""

    id: str
    interval_minutes: int
    calibrations: tuple[Calibration, ...] = (Calibration(valid_from=date(2022, 1, 1), valid_to=date(2024, 1, 1)),)


@dataclass(frozen=True)
class Thermocouple(Instrument):
    conservative_keep: str = "highest"  # e.g. a temperature whose lower value would raise reductions


I_START = datetime(2023, 1, 1, 22, tzinfo=timezone.utc)
I_END = datetime(2023, 1, 2, 2, tzinfo=timezone.utc)  # 8 half-hours across midnight
INSTRUMENTS = (
    Instrument("FT-101", 30),
    Instrument("AT-201", 30, (Calibration(valid_from=date(2023, 1, 2), valid_to=date(2023, 12, 31)),)),
    Thermocouple("TT-301", 60),
)
I_CONTEXT = ContractContext(period_start=I_START, period_end=I_END, sources=INSTRUMENTS, values={"param": {"max_flow": 500.0}})
QUANTITY = {"FT-101": ("V_t_wb", "m3/h"), "AT-201": ("w_CH4", "fraction"), "TT-301": ("T_flare", "degC"), "XX-9": ("V_t_wb", "m3/h")}


def series_frame(key: str, rows: list[tuple[str | None, pd.Timestamp | None, float, str, int]], *, kind: dict[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """A tidy frame keyed on ``key`` from (series id, ts, value, file, row) tuples; categoricals as ingest writes them."""
    cols: dict[str, object] = {
        key: pd.Categorical([r[0] for r in rows]),
        "ts": pd.Series([pd.NaT if r[1] is None else r[1] for r in rows], dtype="datetime64[us, UTC]"),
    }
    if kind is not None:
        cols["quantity"] = pd.Categorical([kind.get(r[0] or "", ("V_t_wb", ""))[0] for r in rows])
    cols["value"] = np.array([r[2] for r in rows], dtype=np.float64)
    cols["unit"] = pd.Categorical([(kind or {}).get(r[0] or "", ("", "kWh"))[1] for r in rows])
    cols["source_file"] = pd.array([r[3] for r in rows], dtype="string")
    cols["source_row"] = np.array([r[4] for r in rows], dtype=np.int64)
    return pd.DataFrame(cols)


def slot(start: datetime, minutes: int, k: int) -> pd.Timestamp:
    return pd.Timestamp(start) + pd.Timedelta(minutes=minutes * k)


def instrument_frame() -> pd.DataFrame:
    rows: list[tuple] = []
    for k in range(8):  # FT-101: one value out of range (slot 2)
        rows.append(("FT-101", slot(I_START, 30, k), -5.0 if k == 2 else 100.0, "ft.csv", k + 2))
    for k in range(1, 8):  # AT-201: starts one interval late; slot 5 is not a fraction
        rows.append(("AT-201", slot(I_START, 30, k), 1.5 if k == 5 else 0.5, "at.csv", k + 1))
    for k, v in enumerate([800.0, 800.0, 850.0]):  # TT-301: stops two hours early (800 > max_flow: not a flow)
        rows.append(("TT-301", slot(I_START, 60, k), v, "tt.csv", k + 2))
    rows += [
        ("FT-101", slot(I_START, 30, 3), 120.0, "late.csv", 2),  # conflicting copy: keep the lowest (default)
        ("TT-301", slot(I_START, 60, 1), 800.0, "late.csv", 3),  # identical copy
        ("TT-301", slot(I_START, 60, 2), 700.0, "late.csv", 4),  # conflicting copy: keep the highest (source says)
        ("XX-9", slot(I_START, 30, 0), 1.0, "xx.csv", 2),  # undeclared instrument
    ]
    return series_frame("instrument_id", rows, kind=QUANTITY)


def assert_same(a: ValidationOutcome, b: ValidationOutcome) -> None:
    assert (a.engine, b.engine) == ("gx", "native")
    pd.testing.assert_frame_equal(a.valid, b.valid)
    pd.testing.assert_frame_equal(a.quarantine, b.quarantine)
    pd.testing.assert_frame_equal(a.gaps, b.gaps)
    assert [r.to_json() for r in a.rules] == [r.to_json() for r in b.rules]
    assert a.suite == b.suite
    sa, sb = a.to_summary(), b.to_summary()
    assert (sa.pop("engine"), sb.pop("engine")) == ("gx", "native")
    assert sa == sb


def both(df: pd.DataFrame, contract_text: str, context: ContractContext) -> ValidationOutcome:
    contract = parse_contract(contract_text, source="<test>")
    gx = validate_readings(df, contract=contract, context=context, engine="gx")
    nat = validate_readings(df, contract=contract, context=context, engine="native")
    assert_same(gx, nat)
    assert len(nat.valid) + len(nat.quarantine) == len(df)
    return nat


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_instrument_contract_quarantine_reasons_and_gaps():
    out = both(instrument_frame(), INSTRUMENT_CONTRACT, I_CONTEXT)
    q = out.quarantine
    assert list(q.columns) == ["instrument_id", "ts", "quantity", "value", "unit", "source_file", "source_row", "rule_id", "severity", "reason"]
    got = list(zip(q["source_file"], q["source_row"], q["rule_id"], q["severity"], q["reason"]))
    assert got == [
        ("ft.csv", 4, "flow_in_range", "quarantine", "flow -5 m3/h at 2023-01-01T23:00:00Z is outside 0..500 m3/h"),
        ("at.csv", 6, "fraction_in_range", "quarantine", "w_CH4 1.5 at 2023-01-02T00:30:00Z is not a fraction"),
        (
            "late.csv", 2, "unique_reading", "quarantine",
            "duplicate of ft.csv row 5 for (FT-101, 2023-01-01T23:30:00Z) with a conflicting value: this copy 120 m3/h, "
            "kept 100 m3/h, the lowest of 2 copies (conservative for instrument_id FT-101)",
        ),
        ("late.csv", 3, "unique_reading", "quarantine", "duplicate of tt.csv row 3 for (TT-301, 2023-01-01T23:00:00Z): same value 800 degC; one copy kept"),
        (
            "late.csv", 4, "unique_reading", "quarantine",
            "duplicate of tt.csv row 4 for (TT-301, 2023-01-02T00:00:00Z) with a conflicting value: this copy 700 degC, "
            "kept 850 degC, the highest of 2 copies (conservative for instrument_id TT-301)",
        ),
        ("xx.csv", 2, "instrument_known", "block", "instrument XX-9 is not declared (declared: FT-101, AT-201, TT-301)"),
    ]
    # The flow rule is restricted to flows: the 800 degC temperatures are not judged by it.
    assert out.valid.loc[out.valid["instrument_id"] == "TT-301", "value"].tolist() == [800.0, 800.0, 850.0]

    verdict = {r.rule_id: r for r in out.rules}
    assert out.blocked and [r.rule_id for r in out.blocking_rules()] == ["instrument_known"]
    assert verdict["unique_reading"].details["duplicate_keys"] == 3 and verdict["unique_reading"].details["conflicting_keys"] == 2
    assert verdict["interval_regular"].unexpected_count == 2  # after the quarantined FT-101 and AT-201 slots
    assert verdict["interval_regular"].details["findings"][0] == (
        "ft.csv row 5: 60 min since the previous reading of FT-101 at 2023-01-01T23:30:00Z, expected 30 min"
    )
    lapsed = out.valid.loc[~out.valid["calibration_valid"]]
    assert lapsed["instrument_id"].astype(str).unique().tolist() == ["AT-201"]
    assert lapsed["ts"].tolist() == [utc("2023-01-01T22:30"), utc("2023-01-01T23:00"), utc("2023-01-01T23:30")]
    assert verdict["calibration_valid"].unexpected_count == 3 and verdict["period_covered"].success

    g = out.gaps
    assert list(g.columns) == list(gap_columns("instrument_id")) and g.columns[0] == "instrument_id"
    assert g.astype({"instrument_id": object, "position": object}).to_dict("records") == [
        {"instrument_id": "FT-101", "gap_start": utc("2023-01-01T23:00"), "gap_end": utc("2023-01-01T23:30"), "missing_intervals": 1, "hours": 0.5, "position": "between"},
        {"instrument_id": "AT-201", "gap_start": utc("2023-01-01T22:00"), "gap_end": utc("2023-01-01T22:30"), "missing_intervals": 1, "hours": 0.5, "position": "start"},
        {"instrument_id": "AT-201", "gap_start": utc("2023-01-02T00:30"), "gap_end": utc("2023-01-02T01:00"), "missing_intervals": 1, "hours": 0.5, "position": "between"},
        {"instrument_id": "TT-301", "gap_start": utc("2023-01-02T01:00"), "gap_end": utc("2023-01-02T02:00"), "missing_intervals": 1, "hours": 1.0, "position": "end"},
    ]

    s = json.loads(json.dumps(out.to_summary()))
    assert s["key"] == "instrument_id"
    assert s["quarantined_rows_per_series"] == {"FT-101": 2, "AT-201": 1, "TT-301": 2, "XX-9": 1}
    assert s["gap_hours_per_series"] == {"FT-101": 0.5, "AT-201": 1.0, "TT-301": 1.0}
    assert s["calibration_lapsed_rows_per_series"] == {"FT-101": 0, "AT-201": 3, "TT-301": 0}


D_START = datetime(2023, 1, 1, tzinfo=timezone.utc)
D_END = datetime(2023, 1, 3, tzinfo=timezone.utc)  # two UTC days of 6-hour intervals
DEVICES = (Instrument("D-1", 360), Instrument("D-2", 360, ()))  # D-2 has no calibration certificate
D_CONTEXT = ContractContext(period_start=D_START, period_end=D_END, sources=DEVICES, values={"max_daily_kwh": 12.0})


def device_frame() -> pd.DataFrame:
    d1 = [1.0] * 8
    d2 = [1.0, 1.0, 10.0, 1.0, 2.0, np.nan, 2.0, 2.0]  # day 1: 13 kWh (implausible); day 2: a missing value
    rows = [("D-1", slot(D_START, 360, k), v, "devices.parquet", k + 1) for k, v in enumerate(d1)]
    rows += [("D-2", slot(D_START, 360, k), v, "devices.parquet", k + 9) for k, v in enumerate(d2)]
    rows.append(("D-1", slot(D_START, 360, 6), 1.0, "devices-2.parquet", 1))  # an identical copy
    return series_frame("device_id", rows)


def test_device_contract_daily_total():
    df = device_frame()
    out = both(df, DEVICE_CONTRACT, D_CONTEXT)
    q = out.quarantine
    assert list(zip(q["source_row"], q["rule_id"])) == [
        (9, "daily_energy_plausible"), (10, "daily_energy_plausible"), (11, "daily_energy_plausible"), (12, "daily_energy_plausible"),
        (14, "value_not_null"), (1, "unique_reading"),
    ]
    assert q["reason"].iloc[0] == "D-2 delivered 13 kWh on the UTC day of 2023-01-01T00:00:00Z, more than 12 kWh"
    assert q["reason"].iloc[4] == "no energy value for D-2 at 2023-01-02T06:00:00Z"
    assert not out.blocked
    # D-2's implausible day leaves the valid set, as does its missing value.
    assert out.gaps.astype({"device_id": object, "position": object})[["device_id", "gap_start", "missing_intervals", "position"]].to_dict("records") == [
        {"device_id": "D-2", "gap_start": utc("2023-01-01"), "missing_intervals": 4, "position": "start"},
        {"device_id": "D-2", "gap_start": utc("2023-01-02T06:00"), "missing_intervals": 1, "position": "between"},
    ]
    assert out.valid.loc[~out.valid["calibration_valid"], "device_id"].astype(str).unique().tolist() == ["D-2"]


def test_daily_total_derivation_per_series_and_utc_day():
    from mrv.contracts.compile import DERIVATIONS, SeriesKeys

    df = device_frame()
    shuffled = df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    for frame in (df, shuffled):
        keys = SeriesKeys.build(frame, DEVICES, key="device_id")
        total = DERIVATIONS["daily_total"].compute(frame, keys, D_CONTEXT, {})
        day = frame["ts"].dt.floor("D")
        want = frame.groupby([frame["device_id"].astype(str), day])["value"].transform("sum").to_numpy()
        np.testing.assert_array_equal(total, want)  # a missing value adds nothing; the copy counts on `readings`
    # Rows without a key or a time have no total.
    broken = pd.concat([df, series_frame("device_id", [(None, slot(D_START, 360, 0), 1.0, "x", 1), ("D-1", None, 1.0, "x", 2)])], ignore_index=True)
    keys = SeriesKeys.build(broken, DEVICES, key="device_id")
    total = DERIVATIONS["daily_total"].compute(broken, keys, D_CONTEXT, {})
    assert np.isnan(total[-2:]).all() and (total[0], total[6]) == (4.0, 5.0)  # D-1: day 1, and day 2 with its copy


# --------------------------------------------------------------------------- GX == native on random device frames

fault = st.tuples(
    st.sampled_from(["D-1", "D-2", "D-9", None]),
    st.integers(min_value=-1, max_value=9),  # slot (outside 0..7: outside the period)
    st.sampled_from([0.5, 1.0, 4.0, 20.0, np.nan]),
    st.sampled_from([0, 0, 0, 30, None]),  # minute offset (None: no timestamp)
)


@st.composite
def device_frames(draw) -> pd.DataFrame:
    rows: list[tuple] = []
    for d in ("D-1", "D-2"):
        if draw(st.sampled_from([True, True, True, False])):
            dropped = draw(st.sets(st.integers(0, 7), max_size=3))
            rows += [(d, k, draw(st.sampled_from([0.5, 1.0, 4.0])), 0) for k in range(8) if k not in dropped]
    rows += draw(st.lists(fault, max_size=12))
    if rows:  # copies, some with another value
        for i, v in draw(st.lists(st.tuples(st.integers(0, len(rows) - 1), st.sampled_from([1.0, 5.0])), max_size=4)):
            rows.append((rows[i][0], rows[i][1], draw(st.sampled_from([rows[i][2], v])), rows[i][3]))
    order = draw(st.permutations(list(range(len(rows)))))
    rows = [rows[i] for i in order]
    return series_frame(
        "device_id",
        [(d, None if off is None else slot(D_START, 360, k) + pd.Timedelta(minutes=off), v, "f.parquet", j + 1) for j, (d, k, v, off) in enumerate(rows)],
    )


@settings(max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(df=device_frames())
def test_gx_and_native_agree_on_random_device_frames(df):
    both(df, DEVICE_CONTRACT, D_CONTEXT)


# --------------------------------------------------------------------------- the model and the context


def test_key_and_columns_are_validated():
    base = INSTRUMENT_CONTRACT
    for edit, message in [
        (("key: instrument_id", "key: ts"), "key: 'ts' is a column every frame has"),
        (("key: instrument_id", "key: reason"), "key: 'reason'"),
        (("key: instrument_id", "key: instrument-id"), "key: String should match pattern"),
        (("columns: [quantity, unit]", "columns: [quantity, value]"), "columns: 'value' is not an extra input column"),
        (("columns: [quantity, unit]", "columns: [quantity]"), "rules[2].reason: unknown field {unit}"),
        (("key: instrument_id", "key: daily_total"), "key: 'daily_total' is the name of a derived column"),
        (("column_list: [instrument_id, ts]", "column_list: [ts, quantity]"), "conservative keep needs the key instrument_id in column_list"),
        (("${values.param.max_flow}\"}", "${valuesx}\"}"), "unknown reference ${valuesx}"),
    ]:
        assert edit[0] in base
        with pytest.raises(ContractError) as info:
            parse_contract(base.replace(*edit), source="<t>")
        assert message in str(info.value), (edit, str(info.value))


def test_default_key_and_columns_are_the_meter_readings():
    meter = load_contract("meter_readings")
    assert meter.key == "meter_id" and meter.input_columns == ("meter_id", "ts", "value", "unit", "register", "source_file", "source_row")
    assert parse_contract(DEVICE_CONTRACT, source="<t>").input_columns == ("device_id", "ts", "value", "unit", "source_file", "source_row")
    # Keyed on anything else, only the core columns are required unless `columns` lists more.
    bare = parse_contract(DEVICE_CONTRACT.replace("columns: [unit]\n", "").replace(" {unit}", " kWh"), source="<t>")
    assert bare.input_columns == ("device_id", "ts", "value", "source_file", "source_row")


def test_missing_input_column_names_the_contract():
    with pytest.raises(ContractError, match=r"lacks column\(s\) quantity \(contract flare_instruments expects instrument_id, ts, value, quantity, unit"):
        validate_readings(instrument_frame().drop(columns=["quantity"]), contract=parse_contract(INSTRUMENT_CONTRACT, source="<t>"), context=I_CONTEXT, engine="native")


def test_capacity_is_required_only_by_rules_that_use_it(td):
    meter = load_contract("meter_readings")
    no_capacity = ContractContext(period_start=td.PERIOD_START, period_end=td.PERIOD_END, sources=td.METERS)
    with pytest.raises(ContractError) as info:
        compile_contract(meter, context=no_capacity)
    assert "rule plausible_vs_capacity: needs the installed capacity (${capacity_kw}, derive capacity_limit_kwh)" in str(info.value)
    with pytest.raises(ContractError, match="no capacity_kw"):
        validate_readings(td.clean_frame(), contract=meter, context=no_capacity, engine="native")
    # A contract without such rules runs without a capacity.
    compile_contract(parse_contract(INSTRUMENT_CONTRACT, source="<t>"), context=I_CONTEXT)


def test_values_must_be_in_the_context():
    c = parse_contract(INSTRUMENT_CONTRACT, source="<t>")
    bare = ContractContext(period_start=I_START, period_end=I_END, sources=INSTRUMENTS, values={"param": {"NCV": 1.0}})
    with pytest.raises(ContractError, match=r"rule flow_in_range: \$\{values.param.max_flow\} is not in the context values \(have: values.param, values.param.NCV\)"):
        compile_contract(c, context=bare)
    compiled = compile_contract(c, context=I_CONTEXT)
    assert compiled.expectations[2].kwargs["max_value"] == 500.0


def test_meters_ids_is_sources_ids(td):
    text = INSTRUMENT_CONTRACT.replace('value_set: "${sources.ids}"}\n    reason: "instrument {instrument_id}', 'value_set: "${meters.ids}"}\n    reason: "instrument {instrument_id}')
    assert text != INSTRUMENT_CONTRACT
    a = compile_contract(parse_contract(text, source="<t>"), context=I_CONTEXT)
    assert a.expectations[0].kwargs["value_set"] == ["FT-101", "AT-201", "TT-301"]


def test_conservative_side_of_sources(td):
    assert conservative_keep(td.meter("EXP-1")) == "lowest"
    assert conservative_keep(td.meter("IMP-1", direction="import")) == "highest"
    assert conservative_keep(INSTRUMENTS[0]) == "lowest" and conservative_keep(INSTRUMENTS[2]) == "highest"
    with pytest.raises(ContractError, match="conservative_keep must be 'lowest' or 'highest'"):
        ContractContext(period_start=I_START, period_end=I_END, sources=[Thermocouple("T", 1, (), "middle")])
    with pytest.raises(ContractError, match=r"duplicate series ids \['FT-101'\]"):
        ContractContext(period_start=I_START, period_end=I_END, sources=[INSTRUMENTS[0], INSTRUMENTS[0]])
    with pytest.raises(ContractError, match="capacity_kw must be > 0"):
        ContractContext(period_start=I_START, period_end=I_END, sources=INSTRUMENTS, capacity_kw=0.0)


def test_a_meter_is_a_series_source():
    from mrv.contracts import SeriesSource

    m: SeriesSource = Meter(id="EXP-1", serial="1", direction="export", accuracy_class=0.5, files="a")  # type-checks as a source
    assert (m.id, m.interval_minutes, tuple(m.calibrations)) == ("EXP-1", 15, ())


@pytest.mark.parametrize(
    ("contract_id", "columns"),
    [
        ("meter_readings", ("meter_id", "ts", "value", "unit", "register", "source_file", "source_row")),
        ("flare_instruments", ("instrument_id", "ts", "value", "quantity", "unit", "source_file", "source_row")),
        ("device_energy", ("device_id", "ts", "value", "unit", "source_file", "source_row")),
    ],
)
def test_packaged_contracts_read_the_documented_frames(contract_id, columns):
    # docs/internal-interfaces.md, "Generic monitored data": one tidy frame per data source.
    assert load_contract(contract_id).input_columns == columns
