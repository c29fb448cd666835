"""Generic conservative treatments of metered series (methodologies/common/metering.py).

No published worked example exists for these treatments; every expected number is a hand
calculation shown next to the assertion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from methodologies.common import metering as mt
from mrv.errors import MethodologyError

UTC = "UTC"


def T(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz=UTC)


# --- maximum permissible error -------------------------------------------------------------------


def test_mpe_bound_by_direction():
    # export 1000 kWh, class 0.5: 1000 × (1 − 0.005) = 995
    # import 1000 kWh, class 0.5: 1000 × (1 + 0.005) = 1005
    # import   40 kWh, class 2.0:   40 × (1 + 0.02)  = 40.8
    out = mt.mpe_bound([1000.0, 1000.0, 40.0], [0.5, 0.5, 2.0], ["export", "import", "import"])
    assert out == pytest.approx([995.0, 1005.0, 40.8])


def test_mpe_bound_negative_reading_stays_conservative():
    # A negative export reading −10 kWh, class 1: the bound is −10 − |−10| × 0.01 = −10.1 (lower),
    # a negative import reading −10 kWh: −10 + 0.1 = −9.9 (higher). Both lower the net.
    assert mt.mpe_bound([-10.0, -10.0], 1.0, ["export", "import"]) == pytest.approx([-10.1, -9.9])


def test_apply_mpe_only_where_affected():
    # rows 0 and 2 lapsed: 200 × 0.99 = 198, 300 × 0.99 = 297; row 1 unchanged
    out = mt.apply_mpe([200.0, 250.0, 300.0], 1.0, "export", [True, False, True])
    assert out == pytest.approx([198.0, 250.0, 297.0])


@pytest.mark.parametrize("bad", ["exp", "", None, "Export"])
def test_direction_is_checked(bad):
    with pytest.raises(MethodologyError, match="direction must be"):
        mt.conservative_sign(bad)


def test_negative_accuracy_refused():
    with pytest.raises(MethodologyError, match="accuracy_pct"):
        mt.mpe_bound([1.0], [-0.5], "export")


# --- expected grid and missing intervals ---------------------------------------------------------


def test_expected_grid_half_open():
    g = mt.expected_grid(T("2024-01-01 00:00"), T("2024-01-01 01:00"), 15)
    assert list(g) == [T("2024-01-01 00:00"), T("2024-01-01 00:15"), T("2024-01-01 00:30"), T("2024-01-01 00:45")]


def test_expected_grid_anchored_at_local_midnight():
    # Local midnight in Asia/Kolkata (UTC+05:30) is 18:30 UTC the day before; hourly slots follow it.
    start = pd.Timestamp("2024-01-01", tz="Asia/Kolkata")
    g = mt.expected_grid(start, start + pd.Timedelta(hours=3), 60)
    assert [t.isoformat() for t in g] == [
        "2023-12-31T18:30:00+00:00", "2023-12-31T19:30:00+00:00", "2023-12-31T20:30:00+00:00"]


@pytest.mark.parametrize(
    ("start", "end", "minutes", "match"),
    [
        (pd.Timestamp("2024-01-01"), T("2024-01-02"), 15, "no time zone"),
        (T("2024-01-02"), T("2024-01-01"), 15, "empty period"),
        (T("2024-01-01"), T("2024-01-02"), 0, "positive integer"),
        (T("2024-01-01"), T("2024-01-02"), 7.5, "positive integer"),
    ],
)
def test_expected_grid_errors(start, end, minutes, match):
    with pytest.raises(MethodologyError, match=match):
        mt.expected_grid(start, end, minutes)


def test_missing_intervals():
    # Grid 00:00, 00:15, 00:30, 00:45. Observed: 00:00 and 00:30 on the grid, 00:20 off the grid,
    # 01:00 outside the period. Missing: 00:15 and 00:45 (off-grid/outside readings cover nothing).
    obs = pd.Series(pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:20", "2024-01-01 00:30", "2024-01-01 01:00"], utc=True))
    miss = mt.missing_intervals(obs, T("2024-01-01 00:00"), T("2024-01-01 01:00"), 15)
    assert list(miss) == [T("2024-01-01 00:15"), T("2024-01-01 00:45")]


def test_missing_intervals_none_observed():
    miss = mt.missing_intervals(pd.Series([], dtype="datetime64[us, UTC]"), T("2024-01-01"), T("2024-01-01 02:00"), 60)
    assert len(miss) == 2


# --- gap fill --------------------------------------------------------------------------------------


def test_fill_export_is_zero():
    assert mt.conservative_fill_value([500.0, 900.0], "export") == 0.0
    assert mt.conservative_fill_value([], "export") == 0.0  # nothing to bound, nothing credited


def test_fill_import_is_period_maximum():
    # observed import intervals 2.0, 3.5, NaN, 1.0 kWh -> max of the finite ones = 3.5 kWh
    assert mt.conservative_fill_value([2.0, 3.5, np.nan, 1.0], "import") == 3.5


def test_fill_import_never_below_zero():
    # only a (bad) negative observation: the fill is max(−1, 0) = 0, never a negative import
    assert mt.conservative_fill_value([-1.0], "import") == 0.0


def test_fill_import_without_data_is_an_error():
    with pytest.raises(MethodologyError, match="no observed interval values"):
        mt.conservative_fill_value([np.nan], "import")


# --- duplicates ------------------------------------------------------------------------------------


def test_conservative_duplicates():
    df = pd.DataFrame({
        "meter_id": ["E", "E", "E", "I", "I"],
        "ts": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:00", "2024-01-01 00:15", "2024-01-01 00:00", "2024-01-01 00:00"], utc=True),
        "value": [100.0, 98.0, 50.0, 4.0, 5.0],
        "direction": ["export", "export", "export", "import", "import"],
    })
    kept, dropped = mt.conservative_duplicates(df, keys=["meter_id", "ts"], value_col="value", direction_col="direction")
    # export 00:00 keeps the lower 98, import 00:00 keeps the higher 5; order and index preserved
    assert list(kept.index) == [1, 2, 4]
    assert kept["value"].tolist() == [98.0, 50.0, 5.0]
    assert dropped["value"].tolist() == [100.0, 4.0]


# --- periods, pairs, tolerance ---------------------------------------------------------------------


def test_period_sums_half_open():
    ts = pd.to_datetime(["2024-01-01 00:00", "2024-01-31 23:45", "2024-02-01 00:00", "2023-12-31 23:45"], utc=True)
    # January [01-01, 02-01): 10 + 20 = 30; February [02-01, 03-01): 40; the December value is in no period.
    out = mt.period_sums(ts, [10.0, 20.0, 40.0, 99.0], ["2024-01-01", "2024-02-01"], ["2024-02-01", "2024-03-01"])
    assert out == pytest.approx([30.0, 40.0])


def test_period_sums_refuses_overlap():
    with pytest.raises(MethodologyError, match="overlap"):
        mt.period_sums([T("2024-01-05")], [1.0], ["2024-01-01", "2024-01-15"], ["2024-02-01", "2024-02-15"])


def test_conservative_pair():
    # export: lower of (1000, 990) = 990; import: higher of (10, 12) = 12
    assert mt.conservative_pair([1000.0, 10.0], [990.0, 12.0], ["export", "import"]) == pytest.approx([990.0, 12.0])


def test_tolerance_and_weighted_accuracy():
    # 1000 kWh at class 0.5 and 200 kWh at class 1.0:
    # tolerance = 1000 × 0.005 + 200 × 0.01 = 5 + 2 = 7 kWh
    # weighted accuracy = (1000 × 0.5 + 200 × 1.0) / 1200 = 700 / 1200 = 0.58333 %; × 1200 kWh = 7 kWh
    assert mt.mpe_tolerance([1000.0, 200.0], [0.5, 1.0]) == pytest.approx(7.0)
    wa = mt.weighted_accuracy([1000.0, 200.0], [0.5, 1.0])
    assert wa == pytest.approx(700 / 1200)
    assert wa / 100 * 1200 == pytest.approx(7.0)
    assert mt.weighted_accuracy([0.0], [0.5]) == 0.0


# --- properties ------------------------------------------------------------------------------------

finite = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False)
accuracy = st.floats(min_value=0.0, max_value=5.0, allow_nan=False)


@given(v=finite, a=accuracy)
def test_mpe_bound_is_never_favourable(v, a):
    assert mt.mpe_bound(v, a, "export") <= v
    assert mt.mpe_bound(v, a, "import") >= v


@given(values=st.lists(finite, min_size=1, max_size=20))
def test_import_fill_bounds_every_observation(values):
    fill = mt.conservative_fill_value(values, "import")
    assert fill >= 0.0 and fill >= max(values)


@settings(max_examples=50)
@given(m=st.lists(finite, min_size=1, max_size=10), r=st.lists(finite, min_size=1, max_size=10))
def test_pair_is_never_favourable(m, r):
    n = min(len(m), len(r))
    m, r = np.array(m[:n]), np.array(r[:n])
    assert np.all(mt.conservative_pair(m, r, "export") <= m)
    assert np.all(mt.conservative_pair(m, r, "import") >= m)
