"""Conservative treatments of metered energy series. Methodology-agnostic, pure, vectorised.

Every function here moves a metered quantity towards the side that can only *lower* the claimed
emission reductions, never raise them. Which side that is depends on the quantity's **direction**
relative to the claim:

* ``"export"``: the quantity is credited (more of it means more reductions), e.g. electricity
  exported to the grid. Conservative = the lower plausible value.
* ``"import"``: the quantity is deducted (more of it means fewer reductions), e.g. electricity
  imported from the grid, auxiliary consumption, fossil fuel burnt. Conservative = the higher
  plausible value.

The names follow the ``Meter.direction`` values of the project file. Methodologies compose these
functions in their ``aggregate`` step and record each treatment they apply; nothing here reads
files, logs or records anything.

Functions
---------
* :func:`mpe_bound`, :func:`apply_mpe`: maximum permissible error (accuracy class) applied in the
  conservative direction, e.g. for readings taken while a meter's calibration had lapsed.
* :func:`expected_grid`, :func:`missing_intervals`: intervals of a regular series absent from the
  data (never delivered, or quarantined by a data contract).
* :func:`conservative_fill_value`: what a missing interval contributes (export: zero; import: the
  maximum observed interval value).
* :func:`conservative_duplicates`: one value per interval when an interval was delivered twice.
* :func:`period_sums`, :func:`conservative_pair`, :func:`mpe_tolerance`,
  :func:`weighted_accuracy`: cross-checking against independent records (e.g. invoices).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from mrv.errors import MethodologyError

Direction = Literal["export", "import"]
EXPORT: Direction = "export"
IMPORT: Direction = "import"
DIRECTIONS: tuple[str, ...] = (EXPORT, IMPORT)

ArrayLike = npt.ArrayLike


def conservative_sign(direction: str | ArrayLike) -> npt.NDArray[np.float64]:
    """-1.0 for ``"export"`` (conservative = lower), +1.0 for ``"import"`` (conservative = higher).

    Accepts one direction or an array of them; anything else raises :class:`MethodologyError`.
    """
    d = np.asarray(direction, dtype=object)
    is_export = d == EXPORT
    is_import = d == IMPORT
    bad = ~(is_export | is_import)
    if np.any(bad):
        odd = sorted({str(x) for x in np.atleast_1d(d[bad])})
        raise MethodologyError(f"direction must be 'export' or 'import', got {', '.join(odd)}")
    return np.where(is_import, 1.0, -1.0).astype(np.float64)


def mpe_bound(values: ArrayLike, accuracy_pct: ArrayLike, direction: str | ArrayLike) -> npt.NDArray[np.float64]:
    """The conservative end of ``value ± |value| × MPE``.

    ``accuracy_pct`` is the maximum permissible error in percent (e.g. IEC 62053 accuracy class 0.5
    means ±0.5 %). For non-negative readings this is ``value × (1 − MPE)`` for exports and
    ``value × (1 + MPE)`` for imports; using ``|value|`` keeps the bound conservative for a
    (physically odd) negative reading too.
    """
    v = np.asarray(values, dtype=np.float64)
    a = np.asarray(accuracy_pct, dtype=np.float64)
    if np.any(~np.isfinite(a)) or np.any(a < 0):
        raise MethodologyError("accuracy_pct must be finite and non-negative")
    return v + conservative_sign(direction) * np.abs(v) * a / 100.0


def apply_mpe(
    values: ArrayLike, accuracy_pct: ArrayLike, direction: str | ArrayLike, affected: ArrayLike
) -> npt.NDArray[np.float64]:
    """:func:`mpe_bound` where ``affected`` is true, the value unchanged elsewhere (a new array)."""
    v = np.asarray(values, dtype=np.float64)
    mask = np.asarray(affected, dtype=bool)
    if mask.shape == v.shape and np.ndim(accuracy_pct) == 0 and isinstance(direction, str):
        # Only the affected readings: bounding every reading costs four full-size temporaries on
        # fleet-size series where usually none is affected.
        out = v.copy()
        if mask.any():
            out[mask] = mpe_bound(v[mask], accuracy_pct, direction)
        else:
            mpe_bound(v[:0], accuracy_pct, direction)  # the arguments are still checked
        return out
    return np.where(mask, mpe_bound(v, accuracy_pct, direction), v)


def to_utc(t: datetime | pd.Timestamp) -> pd.Timestamp:
    """A timezone-aware timestamp in UTC; a naive one is refused (its meaning is ambiguous)."""
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        raise MethodologyError(f"timestamp {ts} has no time zone; period bounds must be timezone-aware (UTC)")
    return ts.tz_convert("UTC")


def expected_grid(start: datetime | pd.Timestamp, end: datetime | pd.Timestamp, interval_minutes: int) -> pd.DatetimeIndex:
    """Interval starts of a regular series covering ``[start, end)``, anchored at ``start`` (UTC).

    The period start is the anchor, so a period starting at local midnight in UTC+05:30 yields
    hourly slots at HH:30 UTC, matching a meter that records local clock hours.
    """
    if isinstance(interval_minutes, bool) or int(interval_minutes) != interval_minutes or interval_minutes <= 0:
        raise MethodologyError(f"interval_minutes must be a positive integer, got {interval_minutes!r}")
    s, e = to_utc(start), to_utc(end)
    if e <= s:
        raise MethodologyError(f"empty period: end {e} is not after start {s}")
    return pd.date_range(s, e, freq=pd.Timedelta(minutes=int(interval_minutes)), inclusive="left").as_unit("us")


def missing_intervals(
    observed_ts: ArrayLike | pd.Series | pd.DatetimeIndex,
    start: datetime | pd.Timestamp,
    end: datetime | pd.Timestamp,
    interval_minutes: int,
) -> pd.DatetimeIndex:
    """Slots of :func:`expected_grid` with no observed interval start.

    Observed timestamps off the grid or outside the period do not cover any slot (they are the
    data contract's business); a slot is covered only by an exact interval-start match.
    """
    grid = expected_grid(start, end, interval_minutes)
    obs = pd.DatetimeIndex(pd.to_datetime(observed_ts, utc=True))
    if len(grid) == 0 or len(obs) == 0:
        return grid[~grid.isin(obs)]
    # The grid is regular, so "is slot i observed" is arithmetic on integer timestamps (in the
    # observations' own unit, so no value is rounded): O(n), no hashing. Same result as isin.
    unit = obs.unit
    g0 = int(grid[:1].as_unit(unit).asi8[0])
    step = int(np.timedelta64(int(interval_minutes), "m").astype(f"timedelta64[{unit}]").astype(np.int64))
    off = obs.asi8 - g0  # NaT (int64 min) -> a large negative offset: never on the grid
    on_grid = (off >= 0) & (off < len(grid) * step) & (off % step == 0) & ~obs.isna()
    covered = np.zeros(len(grid), dtype=bool)
    covered[off[on_grid] // step] = True
    return grid[~covered]


def conservative_fill_value(observed_values: ArrayLike, direction: Direction) -> float:
    """Energy a missing interval contributes, per interval.

    * export: ``0`` (no metered evidence of delivery, nothing is credited);
    * import: the largest observed interval value in the period, and never less than ``0``. A
      missing import interval filled with zero would *raise* the net export; the period maximum
      is the highest consumption the data show to be possible for that meter.

    An import series with no observed value at all has no conservative fill:
    :class:`MethodologyError`.
    """
    sign = conservative_sign(direction)
    if sign < 0:
        return 0.0
    v = np.asarray(observed_values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise MethodologyError(
            "no observed interval values to bound a missing import interval; "
            "a conservative fill is impossible without data"
        )
    return float(max(v.max(), 0.0))


def conservative_duplicates(
    frame: pd.DataFrame, *, keys: Sequence[str], value_col: str, direction_col: str | None = None, direction: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep one row per ``keys``: the lowest value for exports, the highest for imports.

    The direction is per row (``direction_col``) or one for every row (``direction``).
    Returns ``(kept, dropped)``; ``kept`` preserves the original row order and index.
    """
    if (direction_col is None) == (direction is None):
        raise MethodologyError("conservative_duplicates: give either direction_col or direction")
    if frame.empty:
        return frame, frame.iloc[0:0]
    if len(keys) == 1 and _strictly_increasing(frame[keys[0]]):  # sorted, distinct keys: O(n), no hashing
        return frame, frame.iloc[0:0]
    dup = frame.duplicated(subset=list(keys), keep=False).to_numpy()
    if not dup.any():  # the common case: nothing to choose between
        return frame, frame.iloc[0:0]
    sign = conservative_sign(direction) if direction is not None else conservative_sign(frame[direction_col].to_numpy(dtype=object))
    score = frame[value_col].to_numpy(dtype=np.float64) * sign
    order = (
        frame.assign(_score=score, _pos=np.arange(len(frame)))
        .sort_values([*keys, "_score", "_pos"], kind="mergesort")
    )
    keep_mask = ~order.duplicated(subset=list(keys), keep="last")
    kept_pos = np.sort(order.loc[keep_mask.to_numpy(), "_pos"].to_numpy())
    dropped_pos = np.sort(order.loc[~keep_mask.to_numpy(), "_pos"].to_numpy())
    return frame.iloc[kept_pos], frame.iloc[dropped_pos]


def _strictly_increasing(s: pd.Series) -> bool:
    """True when the (datetime or integer) column is strictly increasing, hence free of duplicates."""
    dtype = s.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or (isinstance(dtype, np.dtype) and dtype.kind in "Mm"):
        a = np.asarray(s.array.asi8)  # int64 in the column's unit; NaT is int64 min, distinct from the rest
    elif isinstance(dtype, np.dtype) and dtype.kind in "iu":
        a = s.to_numpy()
    else:
        return False
    return bool(np.all(a[1:] > a[:-1]))


def period_sums(
    ts: ArrayLike | pd.Series | pd.DatetimeIndex, values: ArrayLike, starts: ArrayLike, ends: ArrayLike
) -> npt.NDArray[np.float64]:
    """Sum of ``values`` whose ``ts`` falls in each half-open period ``[starts[i], ends[i])``.

    Periods must not overlap (an interval would be counted twice); values outside every period
    are ignored.
    """
    v = np.asarray(values, dtype=np.float64)
    s = pd.DatetimeIndex(pd.to_datetime(starts, utc=True))
    e = pd.DatetimeIndex(pd.to_datetime(ends, utc=True))
    if len(s) != len(e):
        raise MethodologyError("period starts and ends differ in length")
    if len(s) == 0:
        return np.zeros(0)
    if np.any(e <= s):
        raise MethodologyError("every period must end after it starts")
    periods = pd.IntervalIndex.from_arrays(s, e, closed="left")
    if periods.is_overlapping:
        raise MethodologyError("periods overlap; each interval must belong to at most one period")
    t = pd.DatetimeIndex(pd.to_datetime(ts, utc=True))
    if len(t) != len(v):
        raise MethodologyError("timestamps and values differ in length")
    idx = periods.get_indexer(t)
    inside = idx >= 0
    return np.bincount(idx[inside], weights=v[inside], minlength=len(periods)).astype(np.float64)


def conservative_pair(metered: ArrayLike, reference: ArrayLike, direction: str | ArrayLike = EXPORT) -> npt.NDArray[np.float64]:
    """Of two independent records of the same quantity, the conservative one.

    Export: the lower; import: the higher. Element-wise.
    """
    m = np.asarray(metered, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    return np.where(conservative_sign(direction) < 0, np.minimum(m, r), np.maximum(m, r))


def mpe_tolerance(energy: ArrayLike, accuracy_pct: ArrayLike) -> float:
    """Worst-case metering error of a sum of metered energies: ``Σ |E_i| × MPE_i``.

    Maximum permissible errors are bounds, not standard uncertainties, so they add linearly (the
    worst case), not in quadrature. Equal to the energy-weighted accuracy class times the total
    metered energy (see :func:`weighted_accuracy`).
    """
    e = np.abs(np.asarray(energy, dtype=np.float64))
    a = np.asarray(accuracy_pct, dtype=np.float64)
    return float(np.sum(e * a) / 100.0)


def weighted_accuracy(energy: ArrayLike, accuracy_pct: ArrayLike) -> float:
    """Energy-weighted accuracy class in percent, ``Σ |E_i| a_i / Σ |E_i|``; 0 when there is no energy."""
    e = np.abs(np.asarray(energy, dtype=np.float64))
    a = np.asarray(accuracy_pct, dtype=np.float64)
    total = e.sum()
    return float(np.sum(e * a) / total) if total > 0 else 0.0
