"""Row selections (mrv.selection): the validated meter artifact as the rows kept of the readings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mrv.selection import SelectionError, mask_of, materialize, ranges, selection_document


@pytest.mark.parametrize(
    "mask",
    [[], [True], [False], [True, True, False, True], [False, False, True, True, False], [True] * 5, [False, True] * 4],
)
def test_ranges_round_trip(mask: list[bool]) -> None:
    m = np.array(mask, dtype=bool)
    spans = ranges(m)
    assert np.array_equal(mask_of(spans, len(m)), m)
    assert all(b > a for a, b in spans)
    assert sum(b - a for a, b in spans) == int(m.sum())


def test_ranges_random_masks() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        m = rng.random(rng.integers(0, 300)) < rng.random()
        assert np.array_equal(mask_of(ranges(m), len(m)), m)


@pytest.mark.parametrize("spans", [[[2, 1]], [[0, 2], [1, 3]], [[0, 11]], [[3, 3]], [[1]]])
def test_mask_of_refuses_bad_ranges(spans: list[list[int]]) -> None:
    with pytest.raises(SelectionError):
        mask_of(spans, 10)


def _readings(meter: str, n: int, files: list[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "meter_id": pd.Categorical([meter] * n),
        "ts": pd.date_range("2024-01-01", periods=n, freq="15min", tz="UTC"),
        "value": np.arange(n, dtype=float),
        "source_file": pd.Categorical([files[i % len(files)] for i in range(n)]),
    })


def test_materialize_gives_kept_rows_with_calibration_flags() -> None:
    a, b = _readings("A", 6, ["a.csv"]), _readings("B", 4, ["b1.csv", "b2.csv"])
    kept = np.array([True, False, True, True, True, False] + [True] * 4)
    cal_a = np.array([True, False, True, True])  # the 2nd kept row of A (input row 2) is out of calibration
    cal_b = np.array([True, True, True, False])
    doc = selection_document(key="meter_id", inputs=[("readings/A", "sha256:a", 6), ("readings/B", "sha256:b", 4)],
                             kept=kept, calibration_valid=[cal_a, cal_b])
    assert doc["inputs"][0]["keep"] == [[0, 1], [2, 5]]
    assert doc["inputs"][0]["calibration_invalid"] == [[2, 3]]
    assert doc["inputs"][1]["keep"] == [[0, 4]]
    assert doc["inputs"][1]["calibration_invalid"] == [[3, 4]]

    pieces = materialize(doc, {"sha256:a": a, "sha256:b": b}.__getitem__)
    assert [len(p) for p in pieces] == [4, 4]
    assert pieces[0]["value"].tolist() == [0.0, 2.0, 3.0, 4.0]
    assert pieces[0]["calibration_valid"].tolist() == cal_a.tolist()
    assert pieces[1]["calibration_valid"].tolist() == cal_b.tolist()
    # Categories as in the concatenation of the inputs: the union, in sorted order, on every piece.
    for p in pieces:
        assert list(p["meter_id"].cat.categories) == ["A", "B"]
        assert list(p["source_file"].cat.categories) == ["a.csv", "b1.csv", "b2.csv"]
    assert pieces[1]["meter_id"].astype(str).unique().tolist() == ["B"]


def test_materialize_refuses_an_input_of_another_length() -> None:
    a = _readings("A", 5, ["a.csv"])
    doc = selection_document(key="meter_id", inputs=[("readings/A", "sha256:a", 5)], kept=np.ones(5, bool),
                             calibration_valid=[np.ones(5, bool)])
    with pytest.raises(SelectionError, match="4 rows, the selection expects 5"):
        materialize(doc, lambda d: a.iloc[:4])


def test_selection_document_checks_its_arguments() -> None:
    with pytest.raises(SelectionError, match="covers 3 rows"):
        selection_document(key="meter_id", inputs=[("r", "d", 4)], kept=np.ones(3, bool), calibration_valid=[np.ones(3, bool)])
    with pytest.raises(SelectionError, match="calibration flags"):
        selection_document(key="meter_id", inputs=[("r", "d", 3)], kept=np.array([True, False, True]),
                           calibration_valid=[np.ones(3, bool)])
