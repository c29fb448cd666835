"""The validated artifact streamed per series (row group per series) equals the bytes replay
computes from the concatenated frame; ACM0002 gives the same document from per-meter pieces."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mrv import pipeline
from mrv.artifacts import LocalArtifactStore
from mrv.frames import FramePieces, concat_readings, with_categories


def _pieces(n_meters: int = 3) -> list[pd.DataFrame]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n_meters):
        n = 500 + 37 * i
        out.append(pd.DataFrame({
            "meter_id": pd.Categorical([f"M{i}"] * n),
            "ts": pd.date_range("2023-01-01", periods=n, freq="min", tz="UTC"),
            "value": rng.random(n),
            "source_file": pd.Categorical([f"m{i}.csv"] * n),
            "source_row": np.arange(n, dtype=np.int64),
            "calibration_valid": rng.random(n) > 0.1,
        }))
    return out


def test_streamed_series_artifact_equals_bytes_of_the_concatenation(tmp_path):
    pieces = _pieces()
    whole = concat_readings(pieces)
    cats = {c: list(whole[c].cat.categories) for c in ("meter_id", "source_file")}
    unified = [with_categories(p, cats) for p in pieces]
    store = LocalArtifactStore(tmp_path)
    ref = pipeline.put_series_frames(store, unified, name="v.parquet")
    data = store.read_bytes(ref.digest)
    assert data == pipeline.series_parquet_bytes(whole, "meter_id")
    assert ref.size == len(data)
    assert pq.ParquetFile(io.BytesIO(data)).num_row_groups == 3
    pd.testing.assert_frame_equal(pq.read_table(io.BytesIO(data)).to_pandas(), whole)
    store.verify(ref.digest)


def test_series_pieces_of_an_unordered_frame_is_the_frame():
    whole = concat_readings(_pieces())
    shuffled = whole.sample(frac=1, random_state=1).reset_index(drop=True)
    assert len(pipeline.series_pieces(shuffled, "meter_id")) == 1
    assert len(pipeline.series_pieces(whole, "meter_id")) == 3


def test_failed_streaming_write_stores_nothing(tmp_path):
    store = LocalArtifactStore(tmp_path)
    a, b = _pieces(2)
    b = b.drop(columns=["source_row"])  # another schema: refused
    try:
        pipeline.put_series_frames(store, [a, b], name="bad.parquet")
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("expected a schema error")
    assert not list((tmp_path / "sha256").rglob("*")) if (tmp_path / "sha256").exists() else True
    assert not list(tmp_path.glob(".incoming-*"))


def test_frame_pieces_total_rows():
    pieces = _pieces()
    assert FramePieces(pieces).rows == sum(len(p) for p in pieces)
    pd.testing.assert_frame_equal(FramePieces(pieces).concat(), concat_readings(pieces))
