"""The gx and native engines evaluate the same compiled suite to the same result."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrv.contracts import ContractContext, ValidationOutcome, load_contract, validate_readings
from mrv.project import Calibration, Meter

START = datetime(2023, 1, 1, tzinfo=timezone.utc)
END = datetime(2023, 1, 1, 6, tzinfo=timezone.utc)  # 24 intervals of 15 min
METERS = (
    Meter(id="EXP-1", serial="1", direction="export", accuracy_class=0.2, files="a",
          calibrations=(Calibration(valid_from=date(2022, 1, 1), valid_to=date(2022, 12, 31)),
                        Calibration(valid_from=date(2023, 1, 2), valid_to=date(2024, 1, 1)))),
    Meter(id="IMP-1", serial="2", direction="import", accuracy_class=0.5, files="b", reading="cumulative", register_max=1e6,
          calibrations=(Calibration(valid_from=date(2022, 1, 1), valid_to=date(2024, 1, 1)),)),
    Meter(id="EXP-2", serial="3", direction="export", accuracy_class=0.5, files="c", interval_minutes=30),
)
CONTEXT = ContractContext(period_start=START, period_end=END, sources=METERS, capacity_kw=100.0)  # 26.25 kWh / 15 min
INTERVAL = {"EXP-1": 15, "IMP-1": 15, "EXP-2": 30, "EXP-9": 15}
VALUES = [0.0, 1.0, 2.5, 10.0, 26.25, 26.26, 52.5, 60.0, -1.0, np.nan]

fault_row = st.tuples(
    st.sampled_from(["EXP-1", "IMP-1", "EXP-2", "EXP-9", None]),  # meter (None: missing)
    st.integers(min_value=-2, max_value=26),  # interval slot (outside 0..23 is outside the period)
    st.sampled_from(VALUES),
    st.sampled_from([0, 0, 0, 0, 5, None]),  # minute offset (5: off the grid, None: no timestamp)
    st.sampled_from(["kWh"] * 9 + ["MWh"]),
)


@st.composite
def frames(draw) -> pd.DataFrame:
    rows: list[tuple] = []
    for m in ("EXP-1", "IMP-1", "EXP-2"):
        if not draw(st.sampled_from([True, True, True, False])):  # mostly every meter reports
            continue
        n = 24 * 15 // INTERVAL[m]
        dropped = draw(st.sets(st.integers(0, n - 1), max_size=4))
        rows += [(m, k, draw(st.sampled_from(VALUES[:4])), 0, "kWh") for k in range(n) if k not in dropped]
    rows += draw(st.lists(fault_row, max_size=25))
    if rows:  # copies of existing readings, some with another value (conflicting duplicates)
        for i, v in draw(st.lists(st.tuples(st.integers(0, len(rows) - 1), st.sampled_from(VALUES)), max_size=6)):
            rows.append((*rows[i][:2], draw(st.sampled_from([rows[i][2], v])), *rows[i][3:]))
    files = {"EXP-1": "exp1.csv", "IMP-1": "imp1.csv", "EXP-2": "exp2.csv", "EXP-9": "exp9.csv", None: "broken.csv"}
    ts = [
        pd.NaT if off is None else pd.Timestamp(START) + pd.Timedelta(minutes=k * INTERVAL[m or "EXP-1"] + off)
        for m, k, _, off, _ in rows
    ]
    df = pd.DataFrame(
        {
            "meter_id": pd.array([r[0] for r in rows], dtype="string"),
            "ts": pd.to_datetime(pd.Series(ts, dtype="datetime64[us, UTC]")),
            "value": np.array([r[2] for r in rows], dtype=np.float64),
            "unit": pd.array([r[4] for r in rows], dtype="string"),
            "register": np.full(len(rows), np.nan),
            "source_file": pd.array([files[r[0]] for r in rows], dtype="string"),
            "source_row": np.arange(2, len(rows) + 2, dtype=np.int64),
        }
    )
    if draw(st.booleans()):
        df = df.iloc[draw(st.permutations(list(range(len(df)))))].reset_index(drop=True)
    return df


def assert_same(a: ValidationOutcome, b: ValidationOutcome) -> None:
    pd.testing.assert_frame_equal(a.valid, b.valid)
    pd.testing.assert_frame_equal(a.quarantine, b.quarantine)
    pd.testing.assert_frame_equal(a.gaps, b.gaps)
    assert [r.to_json() for r in a.rules] == [r.to_json() for r in b.rules]
    assert a.suite == b.suite
    sa, sb = a.to_summary(), b.to_summary()
    assert sa.pop("engine") == "gx" and sb.pop("engine") == "native"
    assert sa == sb


@settings(max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(df=frames())
def test_gx_and_native_agree_on_random_faulty_frames(df):
    contract = load_contract("meter_readings")  # not a fixture: keeps hypothesis' failure report short
    gx = validate_readings(df, contract=contract, context=CONTEXT, engine="gx")
    nat = validate_readings(df, contract=contract, context=CONTEXT, engine="native")
    assert (gx.engine, nat.engine) == ("gx", "native")
    assert_same(gx, nat)
    # Every input row is accounted for exactly once.
    assert len(gx.valid) + len(gx.quarantine) == len(df)


@pytest.mark.parametrize("rows", [0, 1])
def test_engines_agree_on_tiny_frames(contract, rows):
    df = pd.DataFrame(
        {
            "meter_id": pd.array(["EXP-1"] * rows, dtype="string"),
            "ts": pd.Series([pd.Timestamp(START)] * rows, dtype="datetime64[us, UTC]"),
            "value": np.ones(rows),
            "unit": pd.array(["kWh"] * rows, dtype="string"),
            "register": np.full(rows, np.nan),
            "source_file": pd.array(["f.csv"] * rows, dtype="string"),
            "source_row": np.arange(2, rows + 2, dtype=np.int64),
        }
    )
    gx = validate_readings(df, contract=contract, context=CONTEXT, engine="gx")
    nat = validate_readings(df, contract=contract, context=CONTEXT, engine="native")
    assert_same(gx, nat)
    assert gx.blocked  # not every meter has readings


def test_native_engine_and_import_do_not_load_great_expectations():
    # GX takes seconds to import: only compile_suite and the gx engine may load it.
    code = textwrap.dedent(
        """
        import sys
        from datetime import datetime, timezone
        import pandas as pd
        from mrv.contracts import ContractContext, load_contract, validate_readings
        from mrv.project import Meter

        m = Meter(id="EXP-1", serial="1", direction="export", accuracy_class=0.2, files="a")
        ctx = ContractContext(period_start=datetime(2023, 1, 1, tzinfo=timezone.utc),
                              period_end=datetime(2023, 1, 2, tzinfo=timezone.utc), sources=[m], capacity_kw=10.0)
        df = pd.DataFrame({"meter_id": pd.array(["EXP-1"], dtype="string"),
                           "ts": pd.Series([pd.Timestamp("2023-01-01", tz="UTC")], dtype="datetime64[us, UTC]"),
                           "value": [1.0], "unit": pd.array(["kWh"], dtype="string"), "register": [float("nan")],
                           "source_file": pd.array(["a.csv"], dtype="string"), "source_row": [2]})
        out = validate_readings(df, contract=load_contract("meter_readings"), context=ctx, engine="native")
        assert len(out.valid) == 1 and out.engine == "native"
        assert "great_expectations" not in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize(
    ("column", "operator", "parameter", "query"),
    [
        ("kind", "==", "interval", "kind == 'interval'"),
        ("kind", "!=", "interval", "kind != 'interval'"),
        ("kind", "IN", ["interval", "x"], "kind in ['interval', 'x']"),
        ("kind", "NOT_IN", ["interval"], "kind not in ['interval']"),
        ("text", "!=", "a", "text != 'a'"),
        ("x", "<", 2.0, "x < 2.0"),
        ("x", ">=", 1.0, "x >= 1.0"),
        ("x", "!=", 1.0, "x != 1.0"),
    ],
)
def test_native_row_conditions_match_dataframe_query(column, operator, parameter, query):
    # GX's pandas engine applies a row_condition with DataFrame.query; nulls included.
    from mrv.contracts.native import condition_mask

    df = pd.DataFrame(
        {
            "kind": pd.Categorical(["interval", None, "cumulative", "interval"]),
            "text": pd.array(["a", None, "b", "a"], dtype="string"),
            "x": [1.0, np.nan, 3.0, 0.5],
        }
    )
    cond = {"type": "comparison", "column": {"name": column}, "operator": operator, "parameter": parameter}
    assert np.flatnonzero(condition_mask(df, cond, "r")).tolist() == df.query(query).index.tolist()
