"""Per-series pieces of a frame (series_pieces, FramePieces); ACM0002 gives the same document
from per-meter pieces as from their concatenation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mrv import pipeline
from mrv.frames import FramePieces, concat_readings


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


def test_series_pieces_of_an_unordered_frame_is_the_frame():
    whole = concat_readings(_pieces())
    shuffled = whole.sample(frac=1, random_state=1).reset_index(drop=True)
    assert len(pipeline.series_pieces(shuffled, "meter_id")) == 1
    assert len(pipeline.series_pieces(whole, "meter_id")) == 3


def test_frame_pieces_total_rows():
    pieces = _pieces()
    assert FramePieces(pieces).rows == sum(len(p) for p in pieces)
    pd.testing.assert_frame_equal(FramePieces(pieces).concat(), concat_readings(pieces))
