"""Validating per-series frames one by one (and merging) equals validating their concatenation."""

from __future__ import annotations

import io
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mrv.contracts import ContractContext, load_contract, validate_readings
from mrv.contracts.runner import validate_series_frames
from mrv.frames import concat_readings
from mrv.pipeline import frame_to_parquet_bytes, json_bytes, validation_document
from mrv.project import Calibration, Meter

START = datetime(2023, 1, 1, tzinfo=timezone.utc)
END = datetime(2023, 1, 1, 6, tzinfo=timezone.utc)
METERS = (
    Meter(id="EXP-1", serial="1", direction="export", accuracy_class=0.2, files="a",
          calibrations=(Calibration(valid_from=date(2022, 1, 1), valid_to=date(2022, 12, 31)),
                        Calibration(valid_from=date(2023, 1, 2), valid_to=date(2024, 1, 1)))),
    Meter(id="IMP-1", serial="2", direction="import", accuracy_class=0.5, files="b", reading="cumulative", register_max=1e6,
          calibrations=(Calibration(valid_from=date(2022, 1, 1), valid_to=date(2024, 1, 1)),)),
    Meter(id="EXP-2", serial="3", direction="export", accuracy_class=0.5, files="c", interval_minutes=30),
)
CONTEXT = ContractContext(period_start=START, period_end=END, sources=METERS, capacity_kw=100.0)
INTERVAL = {"EXP-1": 15, "IMP-1": 15, "EXP-2": 30, "EXP-9": 15}
VALUES = [0.0, 1.0, 2.5, 10.0, 26.25, 26.26, 52.5, 60.0, -1.0, np.nan]


@st.composite
def meter_frames(draw) -> list[pd.DataFrame]:
    """One frame per meter (as ingest writes them: categoricals, one series each), with faults."""
    out = []
    ids = draw(st.sampled_from([["EXP-1", "IMP-1", "EXP-2"], ["EXP-1", "EXP-2"], ["EXP-1", "IMP-1", "EXP-2", "EXP-9"]]))
    for m in ids:
        n = 24 * 15 // INTERVAL[m]
        slots = [k for k in range(-2, n + 2) if draw(st.integers(0, 9)) > 0 and (0 <= k < n or draw(st.booleans()))]
        slots += draw(st.lists(st.integers(-1, n), max_size=3))  # duplicates
        slots.sort()
        n_rows = len(slots)
        if n_rows == 0:
            continue
        offs = [draw(st.sampled_from([0] * 12 + [5])) for _ in slots]
        ts = pd.Series(
            [pd.Timestamp(START) + pd.Timedelta(minutes=k * INTERVAL[m] + o) for k, o in zip(slots, offs)], dtype="datetime64[us, UTC]"
        )
        vals = np.array([draw(st.sampled_from(VALUES[:4] * 4 + VALUES)) for _ in slots], dtype=np.float64)
        unit = draw(st.sampled_from(["kWh"] * 6 + ["MWh"]))
        out.append(
            pd.DataFrame(
                {
                    "meter_id": pd.Categorical([m] * n_rows),
                    "ts": ts,
                    "value": vals,
                    "unit": pd.Categorical([unit] * n_rows),
                    "register": np.full(n_rows, np.nan),
                    "source_file": pd.Categorical([f"{m.lower()}-{i % 2}.csv" for i in range(n_rows)]),
                    "source_row": np.arange(2, n_rows + 2, dtype=np.int64),
                }
            )
        )
    return out


def _parquet_roundtrip_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    ba, bb = frame_to_parquet_bytes(a), frame_to_parquet_bytes(b)
    assert ba == bb
    pd.testing.assert_frame_equal(pq.read_table(io.BytesIO(ba)).to_pandas(), pq.read_table(io.BytesIO(bb)).to_pandas())


@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(frames=meter_frames())
def test_per_series_validation_equals_whole_frame(frames):
    if not frames:
        return
    contract = load_contract("meter_readings")
    whole = validate_readings(concat_readings(frames), contract=contract, context=CONTEXT, engine="native")
    split = validate_series_frames(list(frames), contract=contract, context=CONTEXT, engine="native", max_workers=2, consume=True)
    pd.testing.assert_frame_equal(split.valid, whole.valid)
    pd.testing.assert_frame_equal(split.quarantine, whole.quarantine)
    pd.testing.assert_frame_equal(split.gaps, whole.gaps)
    assert json_bytes(validation_document(split)) == json_bytes(validation_document(whole))
    _parquet_roundtrip_equal(split.valid, whole.valid)
    _parquet_roundtrip_equal(split.quarantine, whole.quarantine)


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(frames=meter_frames())
def test_parts_whose_rows_were_let_go_merge_to_the_same_result(frames):
    """The pipeline's local runner validates each meter as it is read and keeps only what the
    selection and the summary need (ValidRows): the documents are those of the whole frame."""
    from mrv.contracts.runner import merge_series_parts, series_mergeable, series_plan, validate_series_part
    from mrv.pipeline import selection_of

    assume(len(frames) >= 2)
    contract = load_contract("meter_readings")
    whole = validate_readings(concat_readings(frames), contract=contract, context=CONTEXT, engine="native")
    compiled = series_plan(contract, context=CONTEXT, engine="native", rows=0, gx_row_limit=0, frames=len(frames))
    assert compiled is not None
    parts = [validate_series_part(f, contract=contract, context=CONTEXT, compiled=compiled) for f in frames]
    assume(all(p is not None for p in parts) and series_mergeable(parts, CONTEXT))  # else validated whole (other tests)
    released = [p.released() for p in parts]
    merged = merge_series_parts(released, contract=contract, context=CONTEXT, compiled=compiled)
    pd.testing.assert_frame_equal(merged.quarantine, whole.quarantine)
    pd.testing.assert_frame_equal(merged.gaps, whole.gaps)
    assert json_bytes(validation_document(merged)) == json_bytes(validation_document(whole))
    sources = [(f"readings/{i}", f"sha256:{i:064x}", len(f)) for i, f in enumerate(frames)]
    assert selection_of(merged, sources) == selection_of(whole, sources)
