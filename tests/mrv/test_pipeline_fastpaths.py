"""The fast paths added for fleet-size data give exactly what the general paths give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from methodologies.common import metering as mt
from mrv import pipeline
from mrv.contracts import native
from mrv.contracts.compile import MeterKeys
from mrv.project import Meter


def _meter_frame(meter_id: str, file: str, n: int, start: str, *, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.Series(pd.date_range(start, periods=n, freq="min", tz="UTC").as_unit("us"))
    return pd.DataFrame(
        {
            "meter_id": pd.Categorical([meter_id] * n),
            "ts": ts,
            "value": rng.random(n),
            "unit": pd.Categorical(["kWh"] * n),
            "register": np.full(n, np.nan),
            "source_file": pd.Categorical([file] * n),
            "source_row": np.arange(1, n + 1, dtype=np.int64),
        }
    )


def _general_concat(frames):
    cat_cols = [c for c in frames[0].columns if isinstance(frames[0][c].dtype, pd.CategoricalDtype)]
    for c in cat_cols:
        cats = sorted(set().union(*(f[c].cat.categories for f in frames)))
        frames = [f.assign(**{c: f[c].cat.set_categories(cats)}) for f in frames]
    return pd.concat(frames, ignore_index=True)


def test_concat_readings_matches_pandas_concat():
    frames = [_meter_frame(f"M{i}", f"f{9 - i}.csv", 50 + i, "2023-01-01", seed=i) for i in range(4)]
    frames[1] = frames[1].assign(source_file=frames[1]["source_file"].cat.add_categories(["aaa.csv"]))
    frames[2].loc[3, "meter_id"] = np.nan  # a missing categorical value stays missing
    expected = _general_concat(frames)
    got = pipeline.concat_readings(frames)
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_categorical=True)
    assert list(got["source_file"].cat.categories) == sorted(got["source_file"].cat.categories)

    consumed = list(frames)
    again = pipeline.concat_readings(consumed, consume=True)
    assert all(f is None for f in consumed)
    pd.testing.assert_frame_equal(again, expected, check_exact=True, check_categorical=True)


def test_concat_readings_general_path_for_other_dtypes():
    a = _meter_frame("M1", "a.csv", 5, "2023-01-01", seed=1).assign(note=pd.array(["x"] * 5, dtype="string"))
    b = _meter_frame("M2", "b.csv", 5, "2023-01-02", seed=2).assign(note=pd.array(["y"] * 5, dtype="string"))
    pd.testing.assert_frame_equal(pipeline.concat_readings([a, b]), _general_concat([a, b]), check_exact=True)


def test_frame_cache_only_inside_a_run(tmp_path):
    from mrv.artifacts import LocalArtifactStore

    store = LocalArtifactStore(tmp_path)
    df = _meter_frame("M1", "a.csv", 10, "2023-01-01", seed=3)
    ref = pipeline.put_frame(store, df, name="x.parquet")
    assert pipeline.read_parquet_artifact(store, ref.digest) is not df  # not active: read from the store
    with pipeline._FRAMES.activate():
        ref = pipeline.put_frame(store, df, name="x.parquet")
        assert pipeline.read_parquet_artifact(store, ref.digest) is df
        assert pipeline.read_parquet_artifact(store, ref.digest, consume=True) is df
        pd.testing.assert_frame_equal(pipeline.read_parquet_artifact(store, ref.digest), df)
    # The Parquet artifact decodes to the frame that was cached.
    pd.testing.assert_frame_equal(pipeline.read_parquet_artifact(store, ref.digest), df)
    assert pipeline.frame_to_parquet_bytes(df) == pipeline.frame_to_parquet_bytes(df)


@pytest.mark.parametrize("unit", ["s", "us", "ns"])
@pytest.mark.parametrize("interval", [1, 15])
def test_missing_intervals_matches_isin(unit, interval):
    start, end = pd.Timestamp("2023-01-01", tz="UTC"), pd.Timestamp("2023-01-08", tz="UTC")
    grid = mt.expected_grid(start, end, interval)
    rng = np.random.default_rng(interval)
    keep = np.sort(rng.choice(len(grid), len(grid) - 37, replace=False))
    extra = pd.DatetimeIndex(
        ["2023-01-02 00:00:30", "2022-12-31 23:59", "2023-01-08 00:00", "2023-01-03 00:07", None], tz="UTC"
    ).as_unit("us")
    obs = grid[keep].append(extra).as_unit(unit)
    for observed in (obs, pd.Series(obs).dt.tz_convert("Asia/Kolkata")):
        got = mt.missing_intervals(observed, start, end, interval)
        want = grid[~grid.isin(pd.DatetimeIndex(pd.to_datetime(observed, utc=True)))]
        assert got.equals(want) and got.dtype == want.dtype and got.freq == want.freq


def test_conservative_duplicates_fast_path_only_when_sorted_and_distinct():
    ts = pd.Series(pd.date_range("2023-01-01", periods=6, freq="min", tz="UTC"))
    frame = pd.DataFrame({"ts": ts, "value": np.arange(6.0), "direction": ["export"] * 6})
    kept, dropped = mt.conservative_duplicates(frame, keys=["ts"], value_col="value", direction_col="direction")
    assert kept is frame and dropped.empty
    dup = pd.concat([frame, frame.iloc[[2]].assign(value=-1.0)], ignore_index=True).sort_values("ts", kind="stable")
    kept, dropped = mt.conservative_duplicates(dup, keys=["ts"], value_col="value", direction_col="direction")
    assert len(kept) == 6 and dropped["value"].tolist() == [2.0]


def test_meter_keys_categorical_fast_path_matches_factorize():
    meters = [Meter.model_validate({"id": m, "serial": f"SN{m}", "files": "x.csv", "direction": "export", "accuracy_class": 0.5}) for m in ("B", "A")]
    mid = pd.Categorical(["A", "B", None, "A"], categories=["A", "B"])
    ts = pd.Series(pd.date_range("2023-01-01", periods=4, freq="min", tz="UTC").as_unit("us"))
    frame = pd.DataFrame({"meter_id": mid, "ts": ts})
    fast = MeterKeys.build(frame, meters)
    slow = MeterKeys.build(frame.assign(meter_id=frame["meter_id"].astype(object)), meters)
    assert fast.ids == slow.ids
    np.testing.assert_array_equal(fast.codes, slow.codes)
    np.testing.assert_array_equal(fast.ts, slow.ts)
    np.testing.assert_array_equal(fast.ts_ok, slow.ts_ok)


def test_in_set_on_categorical_matches_isin():
    s = pd.Series(pd.Categorical(["kWh", "Wh", None, "kWh", "MWh"], categories=["MWh", "Wh", "kWh", "unused"]))
    frame = pd.DataFrame({"unit": s})
    domain = np.ones(len(s), dtype=bool)
    got, _ = native._in_set(frame, {"column": "unit", "value_set": ["kWh"]}, domain, None, "r")
    want = domain & s.notna().to_numpy() & ~s.astype(object).isin(["kWh"]).to_numpy()
    np.testing.assert_array_equal(got, want)


def _tidy_frames():
    a = _meter_frame("M1", "a.parquet", 5000, "2023-01-01", seed=1)
    b = a.copy()
    b.loc[3, "value"] = np.nan
    b["register"] = np.where(np.arange(len(b)) % 3 == 0, np.nan, 1.5)
    b["ts"] = b["ts"].where(np.arange(len(b)) != 7)  # a NaT
    b["meter_id"] = b["meter_id"].cat.set_categories(["M0", "M1"]).where(np.arange(len(b)) != 9)  # a missing code, unused category
    b["calibration_valid"] = np.arange(len(b)) % 2 == 0
    empty = b.iloc[0:0].reset_index(drop=True)
    q = b.iloc[:10].reset_index(drop=True).assign(rule_id=pd.array(["r"] * 10, dtype="string"))
    return [a, b, empty, q]


@pytest.mark.parametrize("which", range(4))
def test_frame_to_table_matches_from_pandas(which):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    df = _tidy_frames()[which]
    fast = pipeline.frame_to_table(df)
    slow = pa.Table.from_pandas(df, preserve_index=False)
    assert fast.schema.equals(slow.schema, check_metadata=True)
    assert fast.equals(slow)
    data = pipeline.frame_to_parquet_bytes(df)
    buf = io.BytesIO()
    pq.write_table(slow, buf)  # the Parquet bytes do not depend on how the table was built
    roundtrip = pq.read_table(io.BytesIO(data)).to_pandas()
    pd.testing.assert_frame_equal(roundtrip, pq.read_table(buf).to_pandas())


@pytest.mark.parametrize("which", range(4))
def test_parquet_bytes_do_not_depend_on_the_table_fast_path(which, monkeypatch):
    import pyarrow as pa

    df = _tidy_frames()[which]
    fast = pipeline.frame_to_parquet_bytes(df)
    monkeypatch.setattr(pipeline, "frame_to_table", lambda d: pa.Table.from_pandas(d, preserve_index=False))
    assert pipeline.frame_to_parquet_bytes(df) == fast


@pytest.mark.parametrize("n", [2, 3, (1 << 16), (1 << 16) + 1, (1 << 16) + 2, 3 * (1 << 16) + 7])
def test_step_range_is_the_extremes_of_np_diff(n):
    from mrv.frames import step_range

    rng = np.random.default_rng(n)
    ts = np.cumsum(rng.integers(-5, 60_000_000, n)).astype(np.int64)
    ts[n // 2] = ts[n // 2 - 1] + 123_456_789  # an outlier step somewhere in the middle chunk
    d = np.diff(ts)
    assert step_range(ts) == (int(d.min()), int(d.max()))
    with pytest.raises(ValueError):
        step_range(ts[:1])
