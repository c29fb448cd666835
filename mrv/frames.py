"""Frame helpers shared by the pipeline, the contract runner and replay: concatenating per-series
frames without losing categorical columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd


def concat_readings(
    frames: Sequence[pd.DataFrame], *, consume: bool = False, categories: Mapping[str, Sequence[Any]] | None = None
) -> pd.DataFrame:
    """Concatenate per-meter frames keeping categorical columns categorical (plain ``pd.concat``
    falls back to per-row objects when the categories differ); categories become the sorted union.

    ``consume=True`` (``frames`` a list the caller gives up): each frame is released as soon as it
    has been copied, so the peak memory is about one copy of the data instead of two.

    ``categories``: per categorical column, the categories of the result (a superset of the
    frames' own, e.g. those of a larger frame the pieces were cut from) instead of their union.
    """
    categories = categories or {}
    if len(frames) == 1 and not categories:
        return frames[0]
    fast = _concat_columnwise(frames, consume=consume, categories=categories)
    if fast is not None:
        return fast
    cat_cols = [c for c in frames[0].columns if isinstance(frames[0][c].dtype, pd.CategoricalDtype)]
    for c in cat_cols:
        cats = list(categories[c]) if c in categories else sorted(set().union(*(f[c].cat.categories for f in frames)))
        frames = [f.assign(**{c: f[c].cat.set_categories(cats)}) for f in frames]
    return pd.concat(frames, ignore_index=True)


def _utc_array(naive: Any, dtype: pd.DatetimeTZDtype) -> Any:
    """A tz-aware datetime array over ``naive`` UTC datetime64 values, without a copy (the public
    ``tz_localize`` path costs ~1 s per 50 M rows for what is a relabelling)."""
    try:
        return pd.arrays.DatetimeArray._simple_new(naive, dtype=dtype)
    except (AttributeError, TypeError):  # pragma: no cover - other pandas versions
        return pd.Series(naive, copy=False).dt.tz_localize("UTC").dt.tz_convert(dtype.tz).array


def _concat_columnwise(
    frames: Sequence[pd.DataFrame], *, consume: bool = False, categories: Mapping[str, Sequence[Any]] | None = None
) -> pd.DataFrame | None:
    """``concat_readings`` for the usual case (same columns, numpy / datetime / unordered
    categorical dtypes): each column preallocated once and filled frame by frame, categorical
    codes remapped onto the sorted union of categories. ``None`` when a frame does not fit (then
    nothing has been consumed); the general path handles it."""
    first = frames[0]
    columns = list(first.columns)
    if first.columns.has_duplicates or any(list(f.columns) != columns for f in frames):
        return None
    # Pass 1 (dtypes only): does every column fit, and what is its output buffer?
    plan: dict[str, tuple[str, Any]] = {}
    for c in columns:
        dtypes = [f.dtypes.iloc[j] for f in frames for j in [columns.index(c)]]
        d0 = dtypes[0]
        if isinstance(d0, pd.CategoricalDtype):
            if any(not isinstance(d, pd.CategoricalDtype) or d.ordered for d in dtypes):
                return None
            union = set().union(*(d.categories for d in dtypes))
            given = (categories or {}).get(c)
            if given is not None and not union <= set(given):
                return None
            cats = list(given) if given is not None else sorted(union)
            plan[c] = ("cat", pd.CategoricalDtype(cats))
        elif isinstance(d0, pd.DatetimeTZDtype) or (isinstance(d0, np.dtype) and d0.kind in "biufcmM"):
            if any(d != d0 for d in dtypes):
                return None
            plan[c] = ("tz" if isinstance(d0, pd.DatetimeTZDtype) else "np", d0)
        else:
            return None
    total = sum(len(f) for f in frames)
    bufs: dict[str, np.ndarray] = {}
    lookups: dict[str, dict[Any, int]] = {}
    for c, (kind, d) in plan.items():
        if kind == "cat":
            n_cats = len(d.categories)
            bufs[c] = np.empty(total, dtype=np.int8 if n_cats < 127 else np.int16 if n_cats < 32_000 else np.int32)
            lookups[c] = {v: i for i, v in enumerate(d.categories)}
        elif kind == "tz":
            bufs[c] = np.empty(total, dtype=f"M8[{d.unit}]")
        else:
            bufs[c] = np.empty(total, dtype=d)
    # Pass 2: fill, releasing each frame once copied (when consuming).
    pos = 0
    for i in range(len(frames)):
        f = frames[i]
        n = len(f)
        for c, (kind, d) in plan.items():
            out = bufs[c][pos : pos + n]
            s = f[c]
            if kind == "cat":
                codes = s.cat.codes.to_numpy()
                cats = list(s.cat.categories)
                if cats == list(d.categories):
                    out[:] = codes
                else:
                    lookup = np.array([lookups[c][v] for v in cats] + [-1], dtype=out.dtype)
                    np.take(lookup, codes, out=out)  # code -1 (missing) -> last slot -> -1
            elif kind == "tz":
                out[:] = s.array._ndarray
            else:
                out[:] = s.to_numpy()
        pos += n
        if consume:
            frames[i] = None  # type: ignore[index]
        del f, s
    out_cols: dict[str, Any] = {}
    for c, (kind, d) in plan.items():
        if kind == "cat":
            out_cols[c] = pd.Categorical.from_codes(bufs[c], dtype=d, validate=False)
        elif kind == "tz":
            out_cols[c] = _utc_array(bufs[c], d)
        else:
            out_cols[c] = bufs[c]
    return pd.DataFrame(out_cols, columns=columns, copy=False)


class FramePieces(tuple):
    """Consecutive pieces of one frame (e.g. the valid rows of each series, in series order), held
    instead of their concatenation: every piece has the same columns, dtypes and categories, so
    ``concat_readings(list(pieces))`` is the frame they stand for."""

    def concat(self) -> pd.DataFrame:
        return concat_readings(list(self))

    @property
    def rows(self) -> int:
        return sum(len(p) for p in self)


def with_categories(df: pd.DataFrame, categories: Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """``df`` with each listed categorical column recoded onto ``categories[col]`` (a superset of
    its own), the other columns shared, not copied."""
    cols: dict[str, Any] = {}
    changed = False
    for c in df.columns:
        s = df[c]
        if c in categories and isinstance(s.dtype, pd.CategoricalDtype) and list(s.cat.categories) != list(categories[c]):
            cats = list(categories[c])
            lookup = {v: i for i, v in enumerate(cats)}
            codes = s.cat.codes.to_numpy()
            n = len(cats)
            table = np.array([lookup[v] for v in s.cat.categories] + [-1], dtype=np.int8 if n < 127 else np.int16 if n < 32_000 else np.int32)
            cols[c] = pd.Categorical.from_codes(table[codes], dtype=pd.CategoricalDtype(cats, ordered=s.dtype.ordered), validate=False)
            changed = True
        else:
            cols[c] = s.array if not isinstance(s.dtype, np.dtype) else s.to_numpy()
    if not changed:
        return df
    return pd.DataFrame(cols, columns=df.columns, copy=False)


_STEP_CHUNK = 1 << 16  # values per step of a chunked pass: its scratch stays in cache (a fresh full-length array costs page faults)


def step_range(ts: np.ndarray) -> tuple[int, int]:
    """(min, max) of ``np.diff(ts)`` (int64, wrapping as it does) for at least two values, in
    cache-sized chunks: no full-length temporary. Shared by the contract's time facts and the
    methodologies' regular-grid checks."""
    m = len(ts) - 1
    if m < 1:
        raise ValueError("step_range needs at least two values")
    buf = np.empty(min(m, _STEP_CHUNK), dtype=np.int64)
    lo, hi = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    for i in range(0, m, _STEP_CHUNK):
        d = buf[: min(m - i, _STEP_CHUNK)]
        np.subtract(ts[i + 1 : i + 1 + len(d)], ts[i : i + len(d)], out=d)
        lo, hi = min(lo, int(d.min())), max(hi, int(d.max()))
    return lo, hi
