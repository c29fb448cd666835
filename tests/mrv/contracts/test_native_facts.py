"""The native evaluator's shortcuts from column facts and series keys give exactly the per-row result.

Each check first asks cheap facts (nulls, smallest/largest value, one constant category, one series
with strictly increasing times) whether any row can fail; these tests pin every shortcut to the
per-row path (``native._SHORTCUTS = False``) where it applies and where it must not, and to GX on
frames shaped like ingest output (categoricals, one series per frame).
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from mrv.contracts import ContractContext, load_contract, native, validate_readings
from mrv.contracts.compile import (
    ColumnFacts,
    CompiledExpectation,
    LazyColumn,
    SeriesKeys,
    WorkFrame,
    add_derived,
    column_facts,
    compile_contract,
)
from mrv.contracts.runner import _validate
from mrv.project import Calibration, Meter

START = datetime(2023, 1, 1, tzinfo=timezone.utc)
END = datetime(2023, 1, 5, tzinfo=timezone.utc)  # 384 intervals of 15 min
N = 384
CAL = (Calibration(valid_from=date(2022, 6, 1), valid_to=date(2023, 6, 1)),)
METERS = (
    Meter(id="EXP-1", serial="1", direction="export", accuracy_class=0.5, files="a", calibrations=CAL),
    Meter(id="IMP-1", serial="2", direction="import", accuracy_class=0.5, files="b", reading="cumulative", register_max=1e9, calibrations=CAL),
    Meter(id="EXP-2", serial="3", direction="export", accuracy_class=0.5, files="c", interval_minutes=30,
          calibrations=(Calibration(valid_from=date(2022, 6, 1), valid_to=date(2023, 1, 2)),)),
)
CONTEXT = ContractContext(period_start=START, period_end=END, sources=METERS, capacity_kw=1000.0)  # 262.5 kWh / 15 min
LIMIT = 262.5
CONTRACT = load_contract("meter_readings")
COMPILED = compile_contract(CONTRACT, context=CONTEXT)
BY_ID = {e.rule_id: e for e in COMPILED.expectations}
POSITIONS = (0, N // 2, N - 1)


def meter_frame(meter: str = "EXP-1", *, n: int = N, categorical: bool = True, value: float = 10.0) -> pd.DataFrame:
    """One meter's clean readings as ingest writes them (categoricals, us UTC times, one series)."""
    minutes = 30 if meter == "EXP-2" else 15
    text = (lambda v: pd.Categorical([v] * n)) if categorical else (lambda v: pd.array([v] * n, dtype="string"))
    return pd.DataFrame(
        {
            "meter_id": text(meter),
            "ts": pd.date_range(START, periods=n, freq=f"{minutes}min").as_unit("us"),
            "value": np.full(n, value),
            "unit": text("kWh"),
            "register": np.full(n, np.nan),
            "source_file": text(f"{meter}.csv"),
            "source_row": np.arange(2, n + 2, dtype=np.int64),
        }
    )


def set_at(df: pd.DataFrame, pos: int, column: str, value) -> pd.DataFrame:
    out = df.copy()
    s = out[column]
    if isinstance(s.dtype, pd.CategoricalDtype) and value is not None and value not in s.cat.categories:
        out[column] = s.cat.add_categories([value])
    out.loc[pos, column] = value
    return out


def variant(base: str, new_id: str, *, row_condition="keep", **kwargs) -> CompiledExpectation:
    """A copy of a compiled rule under another id, with kwargs changed (None removes one)."""
    e = BY_ID[base]
    kw = {**e.kwargs, **kwargs}
    if row_condition != "keep":
        kw["row_condition"] = row_condition
    kw = {k: v for k, v in kw.items() if v is not None}
    return dataclasses.replace(e, rule=e.rule.model_copy(update={"id": new_id}), kwargs=kw)


def cond(column: str, operator: str, parameter) -> dict:
    return {"type": "comparison", "column": {"name": column}, "operator": operator, "parameter": parameter}


INTERVAL = cond("meter_reading", "==", "interval")
VARIANTS = (
    # bounds: equal-to-bound values with strict and non-strict bounds
    variant("non_negative", "non_negative_strict", strict_min=True),
    variant("non_negative", "value_at_most_limit", min_value=None, max_value=LIMIT),
    variant("non_negative", "value_below_limit", min_value=None, max_value=LIMIT, strict_max=True),
    variant("non_negative", "value_between_strict", max_value=LIMIT, strict_min=True, strict_max=True),
    variant("in_period", "in_period_strict_min", strict_min=True),
    variant("in_period", "in_period_closed", strict_max=None),
    variant("in_period", "ts_after_end", min_value=END.isoformat(), max_value=None),
    # row conditions selecting all, none, some rows
    variant("non_negative", "nn_not_interval", row_condition=cond("meter_reading", "!=", "interval")),
    variant("non_negative", "nn_in", row_condition=cond("meter_reading", "IN", ["interval", "x"])),
    variant("non_negative", "nn_not_in", row_condition=cond("meter_reading", "NOT_IN", ["interval"])),
    variant("non_negative", "nn_unknown_kind", row_condition=cond("meter_reading", "==", "no-such-kind")),
    variant("non_negative", "nn_some", row_condition=cond("value", ">", 50.0)),
    variant("non_negative", "nn_nullity", row_condition={"type": "nullity", "column": {"name": "meter_reading"}, "is_null": False}),
    variant("non_negative", "nn_is_null", row_condition={"type": "nullity", "column": {"name": "value"}, "is_null": True}),
    variant("non_negative", "nn_and", row_condition={"type": "and", "conditions": [INTERVAL, cond("value", "<", 5.0)]}),
    variant("meter_id_present", "value_not_null_if_interval", column="value", row_condition=INTERVAL),
    variant("meter_id_present", "ts_present_if_cumulative", column="ts", row_condition=cond("meter_reading", "==", "cumulative")),
    # pair checks: strictness and every ignore_row_if mode
    variant("plausible_vs_capacity", "plausible_strict", or_equal=False),
    variant("plausible_vs_capacity", "plausible_both", ignore_row_if="both_values_are_missing"),
    variant("plausible_vs_capacity", "plausible_neither", ignore_row_if="neither"),
    variant("plausible_vs_capacity", "plausible_some", row_condition=cond("value", ">", 50.0)),
    variant("interval_regular", "regular_both", ignore_row_if="both_values_are_missing"),
    variant("interval_regular", "regular_neither", ignore_row_if="neither"),
    variant("interval_regular", "regular_if_interval", row_condition=INTERVAL),
    # sets
    variant("calibration_valid", "calibration_either", value_set=[True, False]),
    variant("calibration_valid", "calibration_lapsed", value_set=[False]),
    variant("unit_kwh", "unit_any", value_set=["kWh", "MWh"]),
    variant("unit_kwh", "unit_mixed_types", value_set=["kWh", 1]),
    variant("meter_known", "meter_known_if_interval", row_condition=INTERVAL),
    # duplicates: ignore modes and column lists with and without the key
    variant("unique_reading", "unique_ts_only", column_list=["ts"]),
    variant("unique_reading", "unique_with_value", column_list=["meter_id", "ts", "value"], ignore_row_if="any_value_is_missing"),
    variant("unique_reading", "unique_never", ignore_row_if="never"),
    variant("unique_reading", "unique_if_interval", row_condition=INTERVAL),
    # coverage under a condition
    variant("period_covered", "covered_if_interval", row_condition=INTERVAL),
    variant("period_covered", "covered_if_cumulative", row_condition=cond("meter_reading", "==", "cumulative")),
    variant("period_covered", "covered_if_big", row_condition=cond("value", ">", 50.0)),
)
EXPECTATIONS = (*COMPILED.expectations, *VARIANTS)


def evaluate(df: pd.DataFrame, expectations=EXPECTATIONS, *, shortcuts: bool, context: ContractContext = CONTEXT) -> dict:
    """Fresh keys and work frame (facts are cached on them) for each run."""
    with mock.patch.object(native, "_SHORTCUTS", shortcuts):
        keys = SeriesKeys.build(df, context.sources)
        work = add_derived(df, keys=keys, context=context, rules=[e.rule for e in expectations], always=("calibration_valid",))
        return native.evaluate(work, expectations, keys=keys)


def assert_same_evaluations(fast: dict, slow: dict) -> None:
    assert fast.keys() == slow.keys()
    for rule_id, a in fast.items():
        b = slow[rule_id]
        assert (a.success, a.unexpected_count, a.observed) == (b.success, b.unexpected_count, b.observed), rule_id
        if b.unexpected_index is None:
            assert a.unexpected_index is None, rule_id
        else:
            assert a.unexpected_index.dtype.kind == "i", rule_id
            np.testing.assert_array_equal(a.unexpected_index, b.unexpected_index, err_msg=rule_id)


def assert_equivalent(df: pd.DataFrame, expectations=EXPECTATIONS) -> dict:
    fast = evaluate(df, expectations, shortcuts=True)
    assert_same_evaluations(fast, evaluate(df, expectations, shortcuts=False))
    return fast


# --------------------------------------------------------------------------- where the shortcuts apply


@pytest.mark.parametrize("meter", ["EXP-1", "IMP-1", "EXP-2"])
@pytest.mark.parametrize("categorical", [True, False])
def test_clean_frames_equal_the_per_row_path(meter, categorical):
    n = N // 2 if meter == "EXP-2" else N
    out = assert_equivalent(meter_frame(meter, n=n, categorical=categorical))
    lapses = {"period_covered"} | ({"calibration_valid"} if meter == "EXP-2" else set())  # EXP-2's calibration ends on 2023-01-02
    assert all(out[e.rule_id].success for e in COMPILED.expectations if e.rule_id not in lapses)


def test_shortcuts_skip_the_per_row_work_on_a_clean_series():
    # Every row-level rule answers "no row fails" from facts: its handler returns positions (not a
    # boolean mask that evaluate would have to scan), and the row conditions are broadcasts.
    df = meter_frame()
    keys = SeriesKeys.build(df, CONTEXT.sources)
    work = add_derived(df, keys=keys, context=CONTEXT, rules=[e.rule for e in COMPILED.expectations])
    for e in COMPILED.expectations:
        domain = native.condition_mask(work, e.kwargs.get("row_condition"), e.rule_id)
        assert domain.strides == (0,), e.rule_id
        handler = native.HANDLERS[e.type][0]
        if e.row_level:
            mask, _ = handler(work, e.kwargs, domain, keys, e.rule_id)
            assert mask.dtype.kind == "i" and len(mask) == 0, e.rule_id
        else:
            with mock.patch.object(np, "bincount", side_effect=AssertionError("bincount on one series")):
                _, observed = handler(work, e.kwargs, domain, keys, e.rule_id)
            assert observed["missing"] == ["EXP-2", "IMP-1"]
    # The step column was settled by its facts: never computed.
    assert isinstance(work._derived["interval_step_minutes"], LazyColumn)


def test_shortcuts_on_a_plain_dataframe_equal_the_per_row_path():
    # Without a WorkFrame (no cache, no keys) the facts come from the columns themselves.
    df = meter_frame().assign(bad=np.r_[np.full(N - 1, 1.0), np.nan], ok=True, limit=np.full(N, 10.0))
    exps = [
        variant("meter_id_present", "bad_present", column="bad", row_condition=None),
        variant("meter_id_present", "ok_present", column="ok", row_condition=None),
        variant("non_negative", "value_le_limit", column="value", min_value=None, max_value=10.0, row_condition=None),
        variant("plausible_vs_capacity", "limit_ge_value", column_A="limit", column_B="value", row_condition=None),
        variant("calibration_valid", "ok_true", column="ok", row_condition=None),
    ]
    for s in (True, False):
        with mock.patch.object(native, "_SHORTCUTS", s):
            out = native.evaluate(df, exps)
        assert [out[e.rule_id].unexpected_count for e in exps] == [1, 0, 0, 0, 0]


# --------------------------------------------------------------------------- where they must not


FAULTS = {
    "value_nan": ("value", np.nan),
    "value_negative": ("value", -1.0),
    "value_zero": ("value", 0.0),
    "value_at_limit": ("value", LIMIT),
    "value_above_limit": ("value", np.nextafter(LIMIT, np.inf)),
    "value_inf": ("value", np.inf),
    "ts_nat": ("ts", pd.NaT),
    "ts_before_period": ("ts", pd.Timestamp(START) - pd.Timedelta(minutes=15)),
    "ts_at_period_end": ("ts", pd.Timestamp(END)),
    "ts_off_grid": ("ts", None),  # +5 min, set below
    "meter_missing": ("meter_id", None),
    "meter_undeclared": ("meter_id", "EXP-9"),
    "meter_other_declared": ("meter_id", "IMP-1"),
    "unit_other": ("unit", "MWh"),
}


@pytest.mark.parametrize("pos", POSITIONS)
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_one_bad_row_equals_the_per_row_path(fault, pos):
    column, value = FAULTS[fault]
    df = meter_frame()
    if fault == "ts_off_grid":
        value = df["ts"].iloc[pos] + pd.Timedelta(minutes=5)
    assert_equivalent(set_at(df, pos, column, value))


@pytest.mark.parametrize("pos", POSITIONS)
@pytest.mark.parametrize("how", ["duplicate", "swap", "gap", "duplicate_conflict"])
def test_time_order_faults_equal_the_per_row_path(how, pos):
    df = meter_frame()
    other = pos - 1 if pos else pos + 1
    if how == "duplicate":
        df = set_at(df, pos, "ts", df["ts"].iloc[other])
    elif how == "duplicate_conflict":
        df = set_at(set_at(df, pos, "ts", df["ts"].iloc[other]), pos, "value", 20.0)
    elif how == "swap":
        order = np.arange(N)
        order[[pos, other]] = order[[other, pos]]
        df = df.iloc[order].reset_index(drop=True)
    else:
        df = df.drop(index=pos).reset_index(drop=True)
    assert_equivalent(df)


def test_a_frame_with_an_extra_category_equals_the_per_row_path():
    # Categories present in the dtype but on no row: the constant-category facts still decide.
    df = meter_frame()
    df["unit"] = df["unit"].cat.add_categories(["MWh"])
    df["meter_id"] = df["meter_id"].cat.add_categories(["EXP-9"])
    out = assert_equivalent(df)
    assert out["unit_kwh"].success and out["meter_known"].success


def test_all_null_and_empty_columns_equal_the_per_row_path():
    df = meter_frame().assign(value=np.nan)
    assert_equivalent(df)
    assert_equivalent(meter_frame().iloc[0:0].reset_index(drop=True))
    assert_equivalent(meter_frame(n=1))


def test_several_series_and_calibration_lapses_equal_the_per_row_path():
    # EXP-2's calibration lapses on 2023-01-03: calibration_valid is False for part of its rows.
    exp2 = meter_frame("EXP-2", n=N // 2)
    df = pd.concat([meter_frame("EXP-1"), exp2, meter_frame("IMP-1", value=3.0)], ignore_index=True)
    for c in ("meter_id", "unit", "source_file"):
        df[c] = df[c].astype(str).astype("category")
    assert_equivalent(df)
    assert_equivalent(exp2)
    assert not evaluate(exp2, shortcuts=True)["calibration_valid"].success


@pytest.mark.parametrize("seed", range(40))
def test_random_frames_equal_the_per_row_path(seed):
    rng = np.random.default_rng(seed)
    parts = []
    for m in rng.choice(["EXP-1", "IMP-1", "EXP-2", "EXP-9"], size=rng.integers(1, 4), replace=False):
        m = str(m)
        df = meter_frame("EXP-1" if m == "EXP-9" else m, n=int(rng.integers(1, 60)), value=float(rng.choice([0.0, 5.0, LIMIT])))
        df["meter_id"] = pd.Categorical([m] * len(df))
        parts.append(df)
    df = pd.concat(parts, ignore_index=True)
    for c in ("meter_id", "unit", "source_file"):
        df[c] = df[c].astype(str).astype("category" if rng.random() < 0.7 else "string")
    for _ in range(rng.integers(0, 4)):
        i = int(rng.integers(len(df)))
        column, value = FAULTS[str(rng.choice(sorted(FAULTS)))]
        if column == "ts" and value is None:
            value = df["ts"].iloc[i] + pd.Timedelta(minutes=5)
        df = set_at(df, i, column, value)
    if rng.random() < 0.2:
        df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    assert_equivalent(df)


# --------------------------------------------------------------------------- the whole validation


def outcome(df: pd.DataFrame, *, shortcuts: bool, part: bool = False):
    with mock.patch.object(native, "_SHORTCUTS", shortcuts):
        return _validate(df, contract=CONTRACT, context=CONTEXT, compiled=COMPILED, used="native", part=part)


def assert_same_outcome(a, b) -> None:
    pd.testing.assert_frame_equal(a.valid, b.valid)
    pd.testing.assert_frame_equal(a.quarantine, b.quarantine)
    pd.testing.assert_frame_equal(a.gaps, b.gaps)
    assert [r.to_json() for r in a.rules] == [r.to_json() for r in b.rules]
    np.testing.assert_array_equal(a.kept, b.kept)


@pytest.mark.parametrize("fault", ["clean", "value_negative", "ts_nat", "duplicate", "gap"])
@pytest.mark.parametrize("part", [False, True])
def test_validation_outcomes_equal_the_per_row_path(fault, part):
    df = meter_frame()
    if fault == "duplicate":
        df = set_at(set_at(df, 10, "ts", df["ts"].iloc[9]), 10, "value", 11.0)
    elif fault == "gap":
        df = df.drop(index=[5, 6, 200]).reset_index(drop=True)
    elif fault != "clean":
        df = set_at(df, 7, *FAULTS[fault])
    assert_same_outcome(outcome(df, shortcuts=True, part=part), outcome(df, shortcuts=False, part=part))


@pytest.mark.parametrize("fault", ["clean", "value_above_limit", "duplicate_ts", "unsorted"])
def test_native_with_shortcuts_equals_gx_on_ingest_shaped_frames(fault):
    df = pd.concat([meter_frame("EXP-1", n=48), meter_frame("EXP-2", n=24), meter_frame("IMP-1", n=48, value=2.0)], ignore_index=True)
    for c in ("meter_id", "unit", "source_file"):
        df[c] = df[c].astype(str).astype("category")
    if fault == "value_above_limit":
        df = set_at(df, 47, "value", LIMIT + 1)
    elif fault == "duplicate_ts":
        df = set_at(df, 3, "ts", df["ts"].iloc[2])
    elif fault == "unsorted":
        df = df.iloc[::-1].reset_index(drop=True)
    gx = validate_readings(df, contract=CONTRACT, context=CONTEXT, engine="gx")
    nat = validate_readings(df, contract=CONTRACT, context=CONTEXT, engine="native")
    pd.testing.assert_frame_equal(gx.valid, nat.valid)
    pd.testing.assert_frame_equal(gx.quarantine, nat.quarantine)
    pd.testing.assert_frame_equal(gx.gaps, nat.gaps)
    assert [r.to_json() for r in gx.rules] == [r.to_json() for r in nat.rules]


# --------------------------------------------------------------------------- the facts themselves


def brute_facts(values: pd.Series) -> tuple[bool, object, object]:
    ok = values.dropna()
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        ok = ok.astype("int64")
    return bool(values.isna().any()), (ok.min() if len(ok) else None), (ok.max() if len(ok) else None)


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([1.5, -2.0, 3.0]),
        pd.Series([np.nan, 1.0, -np.inf]),
        pd.Series([np.nan, np.nan]),
        pd.Series([3, 1, 2], dtype=np.int64),
        pd.Series([True, True]),
        pd.Series([False, True]),
        pd.Series(pd.to_datetime(["2023-01-02", None, "2023-01-01"], utc=True).as_unit("us")),
        pd.Series(pd.to_datetime([None, None], utc=True).as_unit("us")),
    ],
)
def test_column_facts_match_the_values(values):
    f = column_facts(values)
    nulls, lo, hi = brute_facts(values)
    assert (f.nulls, f.lo, f.hi) == (nulls, lo, hi)


def test_column_facts_of_broadcasts_categoricals_and_other_dtypes():
    const = np.broadcast_to(np.float64(2.5), (10,))
    assert column_facts(const) == ColumnFacts("number", False, 2.5, 2.5)
    assert column_facts(np.broadcast_to(np.float64(np.nan), (10,))) == ColumnFacts("number", True)
    assert column_facts(pd.Series(pd.Categorical(["a", "a"], categories=["b", "a"]))) == ColumnFacts("category", False, "a", "a")
    assert column_facts(pd.Series(pd.Categorical(["a", "b"]))) == ColumnFacts("category", False)
    assert column_facts(pd.Series(pd.Categorical(["a", None]))) == ColumnFacts("category", True)
    assert column_facts(pd.Series(pd.to_datetime(["2023-01-01"], utc=True).as_unit("ns"))) is None  # compared after a conversion
    assert column_facts(pd.Series(["a"], dtype="string")) is None
    assert column_facts(pd.Series([1.0], dtype="Float64")) is None
    assert column_facts(pd.Series([], dtype=float)) is None


def keys_of(ts: np.ndarray, codes: np.ndarray | None = None) -> SeriesKeys:
    codes = np.zeros(len(ts), dtype=np.int16) if codes is None else codes
    return SeriesKeys(codes, tuple(m.id for m in METERS), METERS, ts, ts != np.iinfo(np.int64).min)


def brute_increasing(ts: np.ndarray) -> bool:
    """Strictly increasing without NaT, in exact integers."""
    vals = [int(v) for v in ts]
    nat = int(np.iinfo(np.int64).min)
    return bool(vals) and nat not in vals and all(b > a for a, b in zip(vals, vals[1:]))


I64 = np.iinfo(np.int64)


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ([5], True),
        ([I64.min], False),  # NaT
        ([1, 2, 3], True),
        ([1, 1, 2], False),
        ([3, 2, 1], False),
        ([1, I64.min, 3], False),
        ([1, 2, I64.min], False),
        ([I64.min, 1, 2], False),
        ([-(2**61), 2**61], True),
        ([I64.max - 2, I64.max - 1, I64.max], True),
        ([I64.min + 1, I64.max], False),  # increasing, but the step wraps: not proven (the per-row path decides)
        ([2**62, I64.max, -(2**62)], False),  # a drop by more than 2**63 wraps to a rise
        ([0, 2**62, I64.max, I64.min + 5], False),  # ... into NaT's neighbourhood
    ],
)
def test_ts_increasing_is_sound_at_the_int64_limits(ts, expected):
    arr = np.array(ts, dtype=np.int64)
    keys = keys_of(arr)
    assert keys.ts_increasing == expected
    assert not keys.ts_increasing or brute_increasing(arr)  # never claimed wrongly
    if len(arr) >= 2:
        d = np.diff(arr)
        assert keys.ts_steps == (int(d.min()), int(d.max()))


def test_ts_increasing_on_random_arrays_across_chunks(monkeypatch):
    import mrv.frames as frames_module

    monkeypatch.setattr(frames_module, "_STEP_CHUNK", 7)  # several chunks, a partial last one
    rng = np.random.default_rng(1)
    for _ in range(200):
        arr = np.cumsum(rng.integers(1, 4, size=int(rng.integers(1, 40)))).astype(np.int64)
        if rng.random() < 0.5:
            arr[int(rng.integers(len(arr)))] = rng.choice([arr[0], I64.min, arr[-1] + 1, 0])
        keys = keys_of(arr)
        assert keys.ts_increasing == brute_increasing(arr)
        if len(arr) >= 2:
            assert keys.ts_steps == (int(np.diff(arr).min()), int(np.diff(arr).max()))


@pytest.mark.parametrize(
    ("cat_ids", "categories"),
    [
        (["EXP-1"] * 5, ["EXP-1"]),  # one series: a broadcast
        ([None] * 3, ["EXP-1"]),  # every key missing: a broadcast of -1
        (["EXP-1", "IMP-1", None, "EXP-2"], ["EXP-1", "IMP-1", "EXP-2"]),  # declared order: a cast
        (["EXP-2", "EXP-1", None, "EXP-2"], ["EXP-2", "EXP-1"]),  # another order: a gather
    ],
)
def test_series_codes_equal_the_gathered_codes(cat_ids, categories):
    df = meter_frame(n=len(cat_ids)).assign(meter_id=pd.Categorical(cat_ids, categories=categories))
    keys = SeriesKeys.build(df, METERS)
    declared = {m.id: i for i, m in enumerate(METERS)}
    expected = np.array([declared[c] if c is not None else -1 for c in cat_ids])
    np.testing.assert_array_equal(keys.codes, expected)
    from_strings = SeriesKeys.build(df.assign(meter_id=df["meter_id"].astype("string")), METERS)
    np.testing.assert_array_equal(from_strings.codes, expected)
    present = sorted({int(c) for c in expected if c >= 0})
    assert keys.present.tolist() == present == from_strings.present.tolist()
    sub = keys.subset(np.arange(len(cat_ids)) % 2 == 0)
    np.testing.assert_array_equal(sub.codes, expected[::2])


@pytest.mark.parametrize("fault", ["clean", "unsorted", "nat", "duplicate", "two_series"])
def test_the_grouped_view_of_one_sorted_series_is_the_rows(fault):
    df = meter_frame(n=20)
    if fault == "unsorted":
        df = df.iloc[[1, 0, *range(2, 20)]].reset_index(drop=True)
    elif fault == "nat":
        df = set_at(df, 4, "ts", pd.NaT)
    elif fault == "duplicate":
        df = set_at(df, 4, "ts", df["ts"].iloc[3])
    elif fault == "two_series":
        df = df.assign(meter_id=pd.Categorical(["EXP-1"] * 10 + ["IMP-1"] * 10))
    keys = SeriesKeys.build(df, METERS)
    view = keys.view
    # The reference: the same computation without the one-series shortcut.
    ref_keys = SeriesKeys(np.array(keys.codes), keys.ids, keys.sources, keys.ts, np.array(keys.ts_ok))
    ref_keys.__dict__["series"] = None
    ref = ref_keys.view
    assert keys.ts_increasing == (fault in ("clean", "two_series"))
    for a, b in zip(dataclasses.astuple(view), dataclasses.astuple(ref)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fault", ["clean", "gap", "duplicate", "unsorted", "nat", "two_series", "one_row"])
def test_step_facts_equal_the_facts_of_the_step_column(fault):
    df = meter_frame(n=30)
    if fault == "gap":
        df = df.drop(index=[0, 1, 15]).reset_index(drop=True)
    elif fault == "duplicate":
        df = set_at(df, 29, "ts", df["ts"].iloc[28])
    elif fault == "unsorted":
        df = df.iloc[[0, 2, 1, *range(3, 30)]].reset_index(drop=True)
    elif fault == "nat":
        df = set_at(df, 0, "ts", pd.NaT)
    elif fault == "two_series":
        df = df.assign(meter_id=pd.Categorical(["EXP-1"] * 15 + ["IMP-1"] * 15))
    elif fault == "one_row":
        df = df.iloc[:1]
    keys = SeriesKeys.build(df, METERS)
    work = add_derived(df, keys=keys, context=CONTEXT, rules=[BY_ID["interval_regular"].rule])
    settled = work.facts("interval_step_minutes")
    assert settled == column_facts(work["interval_step_minutes"])
    fresh = WorkFrame(df, {"interval_step_minutes": work["interval_step_minutes"].to_numpy()})
    assert settled == fresh.facts("interval_step_minutes")


def test_derived_columns_are_computed_on_first_read_only():
    calls: list[str] = []

    def lazy(name: str, values) -> LazyColumn:
        return LazyColumn(lambda: calls.append(name) or values)

    df = meter_frame(n=3)
    work = WorkFrame(df, {"a": lazy("a", np.ones(3)), "b": lazy("b", np.zeros(3))})
    assert work.columns[-2:] == ["a", "b"] and calls == []
    assert work["a"].tolist() == [1.0, 1.0, 1.0] and work["a"].sum() == 3 and calls == ["a"]
    assert list(work.to_frame().columns[-2:]) == ["a", "b"] and calls == ["a", "b"]
