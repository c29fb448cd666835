"""ACM0002 v22.0 aggregation: validated meter readings (+ invoices) -> EG_export_y, EG_import_y [MWh].

Order of the conservative treatments, per meter (see :mod:`methodologies.common.metering`):

1. readings outside the monitoring period ``[start, end)`` are excluded;
2. readings without a finite value are dropped (they become missing intervals);
3. an interval delivered twice counts once (export: lower value; import: higher value);
4. readings taken while calibration was not valid (``calibration_valid`` false) get the meter's
   maximum permissible error (``accuracy_class`` [%]) in the conservative direction:
   export × (1 − MPE), import × (1 + MPE);
5. missing intervals (expected on the meter's regular grid but absent, including quarantined ones):
   export contributes 0; import is charged the meter's largest interval value of the period (after
   step 4), because an import gap filled with zero would raise the net export;
6. invoices, if supplied: per invoice period lying inside the monitoring period, the metered net
   export (after 1-5) is compared with the invoiced net export; the difference is flagged when it
   exceeds the worst-case metering error of the metered net, ``Σ_meters |E_m| × accuracy_m`` (MPEs
   are bounds, so they add linearly; this equals the energy-weighted accuracy class of all meters
   times their metered energy). The lower of the two is used in every invoice period (conservative
   pair); when the invoice is lower, the invoiced export/import replace the metered ones for that
   period (a direction without an invoice keeps its metered value). Metered energy outside every
   invoice period stays as metered.

Every treatment that applies is returned as a JSON-ready dict and also recorded in the trace.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from methodologies.cdm_acm0002.v22 import clauses
from methodologies.common import metering as mt
from mrv.errors import MethodologyError
from mrv.frames import step_range
from mrv.methodology import MonitoringInput, Trace

READINGS = "meter_readings"
INVOICES = "invoices"
READING_COLUMNS = ("meter_id", "ts", "value", "calibration_valid")
INVOICE_COLUMNS = ("period_start", "period_end", "energy_MWh", "direction")
MAX_RANGES_LISTED = 50  # missing-interval runs listed per treatment; the count is always complete


@dataclass(frozen=True, slots=True)
class MeterInfo:
    id: str
    direction: str  # "export" | "import"
    accuracy_class: float  # maximum permissible error [%]
    interval_minutes: int


def _meters(raw: Any) -> dict[str, MeterInfo]:
    if not raw:
        raise MethodologyError("ACM0002: sources['meters'] is empty; the meter list of the project file is needed")
    out: dict[str, MeterInfo] = {}
    for m in raw:
        try:
            info = MeterInfo(str(m["id"]), str(m["direction"]), float(m["accuracy_class"]), int(m.get("interval_minutes", 15)))
        except (KeyError, TypeError, ValueError) as exc:
            raise MethodologyError(f"ACM0002: meter entry {m!r} lacks id, direction or accuracy_class ({exc})") from None
        if info.direction not in (mt.EXPORT, mt.IMPORT):
            mt.conservative_sign(info.direction)  # raises, naming the bad direction
        out[info.id] = info
    return dict(sorted(out.items()))


def _iso(t: Any) -> str | None:
    return None if t is None or pd.isna(t) else pd.Timestamp(t).isoformat()


def _runs(missing: pd.DatetimeIndex, interval_minutes: int) -> list[list[str]]:
    """Consecutive missing slots as half-open ``[start, end)`` ranges (ISO strings)."""
    if len(missing) == 0:
        return []
    step = pd.Timedelta(minutes=interval_minutes)
    t = missing.sort_values()
    breaks = np.flatnonzero((t[1:] - t[:-1]) != step) + 1
    starts = np.r_[0, breaks]
    ends = np.r_[breaks, len(t)]
    return [[t[s].isoformat(), (t[e - 1] + step).isoformat()] for s, e in zip(starts, ends)]


class _Recorder:
    """Collects treatments and mirrors each into the trace."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.items: list[dict[str, Any]] = []

    def meter(
        self,
        kind: str,
        m: MeterInfo,
        *,
        symbol: str,
        equation: str,
        clause: str,
        rows: int,
        intervals: int,
        kwh_before: float,
        kwh_after: float,
        detail: str,
        net_effect: float | None = None,
        **extra: Any,
    ) -> None:
        delta = kwh_after - kwh_before
        if net_effect is None:
            net_effect = delta if m.direction == mt.EXPORT else -delta
        item = {
            "kind": kind,
            "meter_id": m.id,
            "direction": m.direction,
            "rows": int(rows),
            "intervals": int(intervals),
            "kWh_before": float(kwh_before),
            "kWh_after": float(kwh_after),
            "kWh_adjusted": float(delta),
            # Effect on EG_facility,y (export − import) in kWh: never positive for a conservative treatment.
            "effect_on_net_kWh": float(net_effect),
            "clause": clause,
            "detail": detail,
            **extra,
        }
        self.items.append(item)
        self.trace.record(
            f"{symbol}[{m.id}]", float(delta), "kWh", equation=equation, clause=clause,
            inputs={"rows": int(rows), "intervals": int(intervals), "kWh_before": float(kwh_before),
                    "accuracy_class_pct": m.accuracy_class, "direction": m.direction},
            note=detail,
        )

    def period(self, item: dict[str, Any], *, symbol: str, value: float, equation: str) -> None:
        self.items.append(item)
        self.trace.record(symbol, float(value), "kWh", equation=equation, clause=item["clause"],
                          inputs={k: v for k, v in item.items() if k not in ("kind", "clause", "detail")},
                          note=item.get("detail"))


class _Deferred:
    """Stands in for :class:`_Recorder` while a meter is treated off the main thread; the calls
    are replayed on the real recorder in meter order (deterministic trace)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def meter(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("meter", args, kwargs))

    def period(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("period", args, kwargs))

    def replay(self, rec: _Recorder) -> None:
        for name, args, kwargs in self.calls:
            getattr(rec, name)(*args, **kwargs)


@dataclass(frozen=True)
class TreatedMeter:
    """Steps 1-5 of one meter, done on its valid rows ahead of the aggregation (:func:`treat_series`)."""

    kWh: float  # Σ interval energy after the treatments [kWh]
    deferred: _Deferred  # the treatments, replayed into the trace in meter order
    table: pd.DataFrame | None  # ts, kWh per interval; kept only for an invoice cross-check


class TreatedSeries(dict):  # type: ignore[type-arg]
    """``meter id -> TreatedMeter`` for every declared meter: stands for the readings dataset of a
    :class:`MonitoringInput` whose meters were treated series by series as their valid rows came
    in (the pipeline's local runner), so the fleet's readings need not be held until the end.
    The aggregation from it equals the aggregation from the readings themselves."""

    @classmethod
    def combine(cls, parts: "list[TreatedSeries]") -> "TreatedSeries":
        out = cls()
        for part in parts:
            clash = set(out) & set(part)
            if clash:  # a meter's rows in two pieces: its treatment needs them together
                raise MethodologyError(f"ACM0002: meter(s) {', '.join(sorted(clash))} treated in two pieces")
            out.update(part)
        return out


def treat_series(
    piece: pd.DataFrame, *, sources: Any, start: Any, end: Any, keep_tables: bool
) -> TreatedSeries:
    """Steps 1-5 for the meters whose valid rows are in ``piece`` (a contiguous part of the
    validated readings, e.g. one meter's). Pure; ``keep_tables`` keeps the interval tables
    (needed by the invoice cross-check, step 6)."""
    meters = _meters(sources)
    start, end = mt.to_utc(start), mt.to_utc(end)
    df = _prepare_readings(piece, meters)
    blocks = _meter_blocks(df)
    if blocks is not None:
        rows_of = {mid: df.iloc[lo:hi] for mid, (lo, hi) in blocks.items()}
    else:
        rows_of = {str(mid): df.iloc[pos] for mid, pos in df.groupby("meter_id", observed=True, sort=False).indices.items()}
    out = TreatedSeries()
    for mid in meters:
        if mid in rows_of:
            buf = _Deferred()
            table = _treat_meter(meters[mid], rows_of[mid], start, end, buf)  # type: ignore[arg-type]
            out[mid] = TreatedMeter(_energy(table), buf, table if keep_tables else None)
    return out


def _reading_pieces(data: MonitoringInput) -> list[pd.DataFrame]:
    """The readings as consecutive pieces: the frame itself, or the per-meter frames of a
    ``FramePieces`` (which stand for their concatenation, never built)."""
    if READINGS not in data.datasets:
        raise MethodologyError(f"ACM0002: dataset {READINGS!r} is missing from the monitoring input")
    raw = data.datasets[READINGS]
    if isinstance(raw, tuple):  # mrv.frames.FramePieces
        return [p for p in raw] or [pd.DataFrame(columns=list(READING_COLUMNS))]
    return [raw]


def _prepare_readings(raw: pd.DataFrame, meters: dict[str, MeterInfo]) -> pd.DataFrame:
    """The readings with the columns the treatments read, in the dtypes they expect: meter_id
    (categorical of str), ts (UTC), value (float64), calibration_valid (bool), source_file
    (categorical). Columns already in shape are shared, not copied; a frame entirely in shape
    (the pipeline's validated readings) is returned as it is."""
    missing_cols = [c for c in READING_COLUMNS if c not in raw.columns]
    if missing_cols:
        raise MethodologyError(
            f"ACM0002: {READINGS} lacks column(s) {', '.join(missing_cols)} (is it the contract-validated frame?)"
        )
    if not (isinstance(raw.index, pd.RangeIndex) and raw.index.start == 0 and raw.index.step == 1):
        raw = raw.reset_index(drop=True)
    columns = {c: raw[c] for c in (*READING_COLUMNS, "source_file") if c in raw.columns}
    shaped = len(columns) == len(READING_COLUMNS) + 1  # every column present and (so far) unchanged
    # Categoricals keep this vectorised: per-element string conversion dominates on fleet-size data.
    meter_cat = columns["meter_id"]
    if not isinstance(meter_cat.dtype, pd.CategoricalDtype):
        meter_cat, shaped = meter_cat.astype("category"), False
    cats = [str(c) for c in meter_cat.cat.categories]
    unknown = sorted(set(cats) - set(meters))
    if unknown:
        raise MethodologyError(f"ACM0002: readings for meter(s) {', '.join(unknown)} not in the project's meter list")
    if cats and list(meter_cat.cat.categories) != cats:
        meter_cat, shaped = meter_cat.cat.rename_categories(cats), False
    valid_flag = columns["calibration_valid"]
    if valid_flag.dtype != np.dtype(bool):  # a plain bool column has no missing flag to fill
        # A reading without a calibration flag is treated as not calibrated (conservative).
        valid_flag, shaped = valid_flag.astype("boolean").fillna(False).astype(bool), False
    value = columns["value"]
    if value.dtype != np.dtype(np.float64):
        value, shaped = pd.to_numeric(value, errors="coerce").astype(np.float64), False
    source_file = columns["source_file"] if "source_file" in columns else pd.Series("", index=raw.index)
    if not isinstance(source_file.dtype, pd.CategoricalDtype):
        source_file, shaped = source_file.astype("category"), False
    ts = columns["ts"]
    if not (isinstance(ts.dtype, pd.DatetimeTZDtype) and str(ts.dtype.tz) == "UTC"):
        ts, shaped = _utc(ts), False
    if shaped:
        return raw  # already in shape (other columns are never read)
    # (direction and accuracy class are per meter: _treat_meter takes them from MeterInfo, not per row)
    return pd.DataFrame(
        {"meter_id": meter_cat, "ts": ts, "value": value, "calibration_valid": valid_flag, "source_file": source_file}, copy=False
    )  # columns by reference: copying fleet-size readings here only costs memory


def _inside(ts: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> bool:
    """Whether every timestamp is known to lie in ``[start, end)`` from the column's extremes
    (integer reductions on UTC microseconds); ``False`` means "not shown", not "outside"."""
    if not (isinstance(ts.dtype, pd.DatetimeTZDtype) and ts.dtype.unit == "us") or len(ts) == 0:
        return False
    a = np.asarray(ts.array.asi8)
    lo = int(a.min())  # NaT is int64 min: it fails the bound below and the rows get the full test
    return lo * 1000 >= start.value and int(a.max()) * 1000 < end.value  # Timestamp.value: ns


def _utc(ts: pd.Series) -> pd.Series:
    """``pd.to_datetime(ts, utc=True)``; a column already in UTC is used as it is (the conversion
    would copy tens of millions of values to get the same ones)."""
    if isinstance(ts.dtype, pd.DatetimeTZDtype) and str(ts.dtype.tz) == "UTC":
        return ts
    return pd.to_datetime(ts, utc=True)


def _missing_intervals(ts: pd.Series, start: pd.Timestamp, end: pd.Timestamp, interval_minutes: int) -> pd.DatetimeIndex:
    """:func:`metering.missing_intervals`, answered in one pass over the integer timestamps when
    the readings are exactly the regular grid of the period (the usual, complete series)."""
    if _complete_grid(ts, start, end, interval_minutes):
        return pd.DatetimeIndex([], dtype=f"datetime64[{ts.dtype.unit}, UTC]")
    return mt.missing_intervals(ts, start, end, interval_minutes)


def _complete_grid(ts: pd.Series, start: pd.Timestamp, end: pd.Timestamp, interval_minutes: int) -> bool:
    """Whether the readings are exactly the period's regular grid: every slot of ``[start, end)``
    once, in order (so none is outside the period, duplicated or missing). ``False`` also means
    "not shown"."""
    if not (isinstance(ts.dtype, pd.DatetimeTZDtype) and len(ts) > 1 and isinstance(interval_minutes, int) and interval_minutes > 0):
        return False
    unit = ts.dtype.unit
    per = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}.get(unit)
    s_ns, e_ns = int(start.value), int(end.value)  # Timestamp.value: nanoseconds
    if per is None or s_ns % per or e_ns <= s_ns:
        return False
    a = np.asarray(ts.array.asi8)
    step = int(np.timedelta64(interval_minutes, "m").astype(f"timedelta64[{unit}]").astype(np.int64))
    s0, e0 = s_ns // per, -(-e_ns // per)
    n_grid = -(-(e0 - s0) // step)  # slots in [start, end)
    if len(a) != n_grid or int(a[0]) != s0:
        return False
    return step_range(a) == (step, step)  # every step exactly one interval (no full-length temporaries)


def _meter_blocks(df: pd.DataFrame) -> dict[str, tuple[int, int]] | None:
    """``{meter_id: (start, stop)}`` when each meter's rows form one contiguous block (rows without
    a meter_id included in no block), else ``None``. O(n) on the categorical codes."""
    codes = df["meter_id"].cat.codes.to_numpy()
    if len(codes) == 0:
        return {}
    lo = int(codes.min())
    if lo == int(codes.max()):  # one meter (the pipeline's per-meter pieces): one block, no scan
        return {str(df["meter_id"].cat.categories[lo]): (0, len(codes))} if lo >= 0 else {}
    starts = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1]
    block_codes = codes[starts]
    if len(np.unique(block_codes)) != len(block_codes):
        return None
    stops = np.r_[starts[1:], len(codes)]
    cats = df["meter_id"].cat.categories
    return {str(cats[c]): (int(a), int(b)) for c, a, b in zip(block_codes.tolist(), starts.tolist(), stops.tolist()) if c >= 0}


def _treat_meter(
    m: MeterInfo, rows: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, rec: _Recorder
) -> pd.DataFrame:
    """Steps 1-5 for one meter. Returns the interval table ``ts, kWh`` (observed rows + filled gaps)."""
    values = rows["value"].to_numpy(dtype=np.float64)
    if (_complete_grid(rows["ts"], start, end, m.interval_minutes) and np.isfinite(np.add.reduce(values))
            and rows["calibration_valid"].to_numpy(dtype=bool).all()):
        # Every interval of the period read once, each value finite and taken in calibration
        # (a finite sum proves every value finite): steps 1-5 change nothing.
        mt.mpe_bound(values[:0], m.accuracy_class, m.direction)  # the arguments are still checked
        return pd.DataFrame({"ts": rows["ts"].array, "kWh": values}, copy=False)
    # 1. outside the monitoring period
    if _inside(rows["ts"], start, end):  # the usual case, from the extremes alone
        any_outside = False
    else:
        outside = (rows["ts"] < start) | (rows["ts"] >= end)
        any_outside = bool(outside.any())
    if any_outside:
        out = rows[outside]
        total = float(out["value"].sum(skipna=True))
        tot_all = float(rows["value"].sum(skipna=True))
        rec.meter("outside_period", m, symbol="adj_outside_period", clause=clauses.OUTSIDE_PERIOD,
                  equation="readings with ts ∉ [start, end) excluded", rows=len(out), intervals=len(out),
                  kwh_before=tot_all, kwh_after=tot_all - total, net_effect=0.0,
                  detail=f"{len(out)} reading(s) outside the monitoring period excluded "
                         "(never part of this period's net, so no effect on it)",
                  first_ts=_iso(out["ts"].min()), last_ts=_iso(out["ts"].max()))
    if any_outside:
        rows = rows[~outside]

    # 2. non-finite values become missing intervals
    values = rows["value"].to_numpy(dtype=np.float64)
    # A finite sum proves every value finite (NaN and ±inf propagate): one pass, no mask.
    bad = np.zeros(0, dtype=bool) if np.isfinite(np.add.reduce(values)) else ~np.isfinite(values)
    if bad.any():
        b = rows[bad]
        tot = float(rows["value"].sum(skipna=True))
        rec.meter("non_finite_value", m, symbol="adj_non_finite", clause=clauses.NON_FINITE,
                  equation="reading dropped; its interval is treated as missing", rows=int(bad.sum()),
                  intervals=int(bad.sum()), kwh_before=tot, kwh_after=tot,
                  detail="readings without a finite value dropped (handled as missing intervals below)",
                  first_ts=_iso(b["ts"].min()), last_ts=_iso(b["ts"].max()))
        rows = rows[~bad]

    # 3. duplicated intervals
    kept, dropped = mt.conservative_duplicates(rows, keys=["ts"], value_col="value", direction=m.direction)
    if len(dropped):
        before, after = float(rows["value"].sum()), float(kept["value"].sum())
        rec.meter("duplicate_intervals", m, symbol="adj_duplicate", clause=clauses.DUPLICATES,
                  equation="one row per ts: min(value) for export, max(value) for import",
                  rows=len(dropped), intervals=int(dropped["ts"].nunique()), kwh_before=before, kwh_after=after,
                  detail=f"{len(dropped)} duplicate reading(s) dropped",
                  first_ts=_iso(dropped["ts"].min()), last_ts=_iso(dropped["ts"].max()))
    rows = kept

    # 4. delayed / lapsed calibration: maximum permissible error, conservative direction
    values = rows["value"].to_numpy(dtype=np.float64)
    calibrated = rows["calibration_valid"].to_numpy(dtype=bool)
    if calibrated.all():  # nothing to bound: the values as they are (no copy)
        mt.mpe_bound(values[:0], m.accuracy_class, m.direction)  # the arguments are still checked
        lapsed, adjusted = np.zeros(0, dtype=bool), values
    else:
        lapsed = ~calibrated
        adjusted = mt.apply_mpe(values, m.accuracy_class, m.direction, lapsed)
    if lapsed.any():
        lr = rows[lapsed]
        factor = "(1 − MPE)" if m.direction == mt.EXPORT else "(1 + MPE)"
        rec.meter("delayed_calibration_mpe", m, symbol="adj_calibration", clause=clauses.CALIBRATION,
                  equation=f"value × {factor}, MPE = accuracy_class/100 = {m.accuracy_class / 100:g}, "
                           "for readings with calibration_valid = false",
                  rows=int(lapsed.sum()), intervals=int(lapsed.sum()),
                  kwh_before=float(values.sum()), kwh_after=float(adjusted.sum()),
                  detail=f"{int(lapsed.sum())} reading(s) taken outside a valid calibration",
                  first_ts=_iso(lr["ts"].min()), last_ts=_iso(lr["ts"].max()),
                  source_files=sorted(set(lr["source_file"].astype(str))))

    # 5. missing intervals on the meter's regular grid
    missing = _missing_intervals(rows["ts"], start, end, m.interval_minutes)
    table = pd.DataFrame({"ts": rows["ts"].array, "kWh": adjusted}, copy=False)
    if len(missing):
        try:
            fill = mt.conservative_fill_value(adjusted, m.direction)  # type: ignore[arg-type]
        except MethodologyError:
            raise MethodologyError(
                f"ACM0002: import meter {m.id} has no valid reading in the period, so its "
                f"{len(missing)} missing interval(s) cannot be filled conservatively; supply its data"
            ) from None
        before = float(adjusted.sum())
        after = before + fill * len(missing)
        runs = _runs(missing, m.interval_minutes)
        if m.direction == mt.EXPORT:
            eq, det = "missing export interval contributes 0 kWh", "missing export intervals credited nothing"
        else:
            eq = f"each missing import interval charged max observed interval = {fill:g} kWh"
            det = "missing import intervals filled with the meter's maximum observed interval value of the period"
        rec.meter("missing_intervals", m, symbol="adj_gap", clause=clauses.GAPS, equation=eq,
                  rows=0, intervals=len(missing), kwh_before=before, kwh_after=after,
                  detail=f"{len(missing)} of {len(mt.expected_grid(start, end, m.interval_minutes))} expected "
                         f"{m.interval_minutes}-min interval(s) missing (not delivered or quarantined); {det}",
                  fill_kWh_per_interval=float(fill), first_ts=_iso(missing.min()), last_ts=_iso(missing.max()),
                  missing_ranges=runs[:MAX_RANGES_LISTED], missing_ranges_total=len(runs))
        if fill != 0.0:
            filled = pd.DataFrame({"ts": pd.Series(missing), "kWh": np.full(len(missing), fill)})
            table = pd.concat([table, filled], ignore_index=True)
    return table


def _energy(table: pd.DataFrame) -> float:
    """Σ kWh of a treated interval table [kWh] (finite values only: step 2 dropped the others)."""
    return float(np.add.reduce(table["kWh"].to_numpy(dtype=np.float64)))


def _cross_check_invoices(
    invoices: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    meters: dict[str, MeterInfo],
    start: pd.Timestamp,
    end: pd.Timestamp,
    rec: _Recorder,
) -> tuple[float, float, int, int]:
    """Step 6. Returns (export adjustment kWh, import adjustment kWh, periods compared, periods flagged)."""
    missing_cols = [c for c in INVOICE_COLUMNS if c not in invoices.columns]
    if missing_cols:
        raise MethodologyError(f"ACM0002: invoices lack column(s) {', '.join(missing_cols)}")
    inv = pd.DataFrame({
        "period_start": pd.to_datetime(invoices["period_start"], utc=True),
        "period_end": pd.to_datetime(invoices["period_end"], utc=True),
        "kWh": pd.to_numeric(invoices["energy_MWh"], errors="raise").to_numpy(dtype=np.float64) * 1000.0,
        "direction": invoices["direction"].astype(str).to_numpy(dtype=object),
    })
    mt.conservative_sign(inv["direction"].to_numpy(dtype=object))  # validates directions
    if not np.all(np.isfinite(inv["kWh"].to_numpy())):
        raise MethodologyError("ACM0002: invoices contain a non-finite energy_MWh")

    inside = (inv["period_start"] >= start) & (inv["period_end"] <= end)
    for (ps, pe), g in inv[~inside].groupby(["period_start", "period_end"], sort=True):
        rec.period({"kind": "invoice_outside_period", "meter_id": None, "period_start": _iso(ps), "period_end": _iso(pe),
                    "invoice_kWh": float(g["kWh"].sum()), "flagged": False, "used": "metered",
                    "kWh_adjusted": 0.0, "effect_on_net_kWh": 0.0, "clause": clauses.INVOICES,
                    "detail": "invoice period not wholly inside the monitoring period: not compared"},
                   symbol=f"adj_invoice[{_iso(ps)}/{_iso(pe)}]", value=0.0, equation="not compared")
    inv = inv[inside]
    if inv.empty:
        return 0.0, 0.0, 0, 0

    per = inv.pivot_table(index=["period_start", "period_end"], columns="direction", values="kWh", aggfunc="sum")
    per = per.sort_index()
    starts = per.index.get_level_values(0)
    ends = per.index.get_level_values(1)

    def metered(direction: str) -> tuple[np.ndarray, list[tuple[MeterInfo, np.ndarray]]]:
        total = np.zeros(len(per))
        by_meter = []
        for m in meters.values():
            if m.direction != direction:
                continue
            t = tables[m.id]
            s = mt.period_sums(t["ts"], t["kWh"], starts, ends)  # raises if invoice periods overlap
            total += s
            by_meter.append((m, s))
        return total, by_meter

    met_exp, exp_by_meter = metered(mt.EXPORT)
    met_imp, imp_by_meter = metered(mt.IMPORT)
    inv_exp = per[mt.EXPORT].to_numpy(dtype=np.float64) if mt.EXPORT in per.columns else np.full(len(per), np.nan)
    inv_imp = per[mt.IMPORT].to_numpy(dtype=np.float64) if mt.IMPORT in per.columns else np.full(len(per), np.nan)
    # A direction without an invoice in a period keeps its metered value on the invoice side.
    ref_exp = np.where(np.isnan(inv_exp), met_exp, inv_exp)
    ref_imp = np.where(np.isnan(inv_imp), met_imp, inv_imp)
    met_net = met_exp - met_imp
    inv_net = ref_exp - ref_imp
    used_net = mt.conservative_pair(met_net, inv_net, mt.EXPORT)
    use_invoice = inv_net < met_net

    adj_exp = adj_imp = 0.0
    flagged_n = 0
    for i in range(len(per)):
        tol = mt.mpe_tolerance([s[i] for _, s in exp_by_meter + imp_by_meter],
                               [m.accuracy_class for m, _ in exp_by_meter + imp_by_meter])
        diff = float(met_net[i] - inv_net[i])
        flagged = abs(diff) > tol
        flagged_n += int(flagged)
        d_exp = float(ref_exp[i] - met_exp[i]) if use_invoice[i] else 0.0
        d_imp = float(ref_imp[i] - met_imp[i]) if use_invoice[i] else 0.0
        adj_exp += d_exp
        adj_imp += d_imp
        effect = float(used_net[i] - met_net[i])
        label = f"{_iso(starts[i])}/{_iso(ends[i])}"
        item = {
            "kind": "invoice_cross_check",
            "meter_id": None,
            "period_start": _iso(starts[i]),
            "period_end": _iso(ends[i]),
            "metered_export_kWh": float(met_exp[i]),
            "metered_import_kWh": float(met_imp[i]),
            "invoice_export_kWh": None if np.isnan(inv_exp[i]) else float(inv_exp[i]),
            "invoice_import_kWh": None if np.isnan(inv_imp[i]) else float(inv_imp[i]),
            "metered_net_kWh": float(met_net[i]),
            "invoice_net_kWh": float(inv_net[i]),
            "difference_kWh": diff,
            "tolerance_kWh": float(tol),
            "flagged": bool(flagged),
            "used": "invoice" if use_invoice[i] else "metered",
            "kWh_adjusted": effect,
            "effect_on_net_kWh": effect,
            "clause": clauses.INVOICES,
            "detail": ("|metered − invoiced net| exceeds the metering tolerance Σ|E_m|×accuracy_m; "
                       if flagged else "within the metering tolerance; ")
                      + ("invoiced values used (lower net export)" if use_invoice[i] else "metered values kept (not higher than invoiced)"),
        }
        # Record every compared period in the trace; in the treatments list only what changed or was flagged.
        if flagged or use_invoice[i]:
            rec.period(item, symbol=f"adj_invoice[{label}]", value=effect,
                       equation="EG_net_period = min(metered net, invoiced net)")
        else:
            rec.trace.record(f"adj_invoice[{label}]", 0.0, "kWh", equation="EG_net_period = min(metered net, invoiced net)",
                             clause=clauses.INVOICES,
                             inputs={k: v for k, v in item.items() if k not in ("kind", "clause", "detail")},
                             note=item["detail"])
    return adj_exp, adj_imp, len(per), flagged_n


def aggregate_meter_readings(data: MonitoringInput, *, trace: Trace) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Validated readings (and optional invoices) -> ``{"EG_export_y": MWh, "EG_import_y": MWh}`` and treatments."""
    meters = _meters(data.sources.get("meters"))
    start, end = mt.to_utc(data.start), mt.to_utc(data.end)
    if end <= start:
        raise MethodologyError(f"ACM0002: empty monitoring period [{start}, {end})")
    treated = data.datasets.get(READINGS)
    if isinstance(treated, TreatedSeries):
        return _aggregate_treated(treated, meters, data, start, end, trace)
    raw_pieces = _reading_pieces(data)
    pieces = [_prepare_readings(p, meters) for p in raw_pieces]
    # Each meter's rows as a slice (not a copy) when they form one contiguous block in one piece
    # (the usual case: one piece per meter, or one frame ordered by meter) ...
    where: dict[str, tuple[int, int, int]] = {}  # meter -> (piece, lo, hi)
    for i, df in enumerate(pieces):
        blocks = _meter_blocks(df)
        if blocks is None or any(mid in where for mid in blocks):
            where, blocks = {}, None
            break
        where.update({mid: (i, lo, hi) for mid, (lo, hi) in blocks.items()})
    else:
        blocks = {}
    positions: dict[Any, np.ndarray] = {}
    if blocks is None:
        # ... else one pass to group row positions by meter over the whole (concatenated) frame
        # (a boolean mask per meter would be O(rows × meters)).
        if len(pieces) > 1:
            from mrv.frames import concat_readings

            pieces = [_prepare_readings(concat_readings(raw_pieces), meters)]
        positions = pieces[0].groupby("meter_id", observed=True, sort=False).indices
    del raw_pieces
    empty = np.zeros(0, dtype=np.int64)

    def treat(item: tuple[str, MeterInfo]) -> tuple[pd.DataFrame, _Deferred]:
        mid, m = item
        if blocks is not None:
            i, lo, hi = where.get(mid, (0, 0, 0))
            rows = pieces[i].iloc[lo:hi]
        else:
            rows = pieces[0].iloc[positions.get(mid, empty)]
        buf = _Deferred()
        return _treat_meter(m, rows, start, end, buf), buf  # type: ignore[arg-type]

    # Meters are independent: treated in threads (the array work releases the GIL), their
    # treatments recorded afterwards in meter order, so the trace is the same as sequentially.
    workers = min(len(meters), os.cpu_count() or 1, 4)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="acm0002-meter") as pool:
            done = list(pool.map(treat, meters.items()))
    else:
        done = [treat(item) for item in meters.items()]
    treated = TreatedSeries((mid, TreatedMeter(_energy(table), buf, table)) for mid, (table, buf) in zip(meters, done))
    return _aggregate_treated(treated, meters, data, start, end, trace)


def _aggregate_treated(
    treated: TreatedSeries, meters: dict[str, MeterInfo], data: MonitoringInput, start: pd.Timestamp, end: pd.Timestamp, trace: Trace
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Record each meter's treatments (meter order), then the totals and the invoice cross-check."""
    rec = _Recorder(trace)
    lacking = [mid for mid in meters if mid not in treated]
    if lacking:
        raise MethodologyError(f"ACM0002: the treated readings lack meter(s) {', '.join(lacking)}")
    invoices = data.datasets.get(INVOICES)
    tables: dict[str, pd.DataFrame] = {}
    for mid in meters:
        t = treated[mid]
        t.deferred.replay(rec)
        if t.table is not None:
            tables[mid] = t.table
    if invoices is not None and len(invoices) and len(tables) != len(meters):
        raise MethodologyError("ACM0002: the invoice cross-check needs each meter's interval table (treat_series keep_tables=True)")

    per_meter = {mid: treated[mid].kWh for mid in meters}
    for mid, kwh in per_meter.items():
        trace.record(f"EG_meter[{mid}]", kwh, "kWh", equation="Σ interval energy after treatments (MPE, gaps, duplicates)",
                     clause=clauses.EG_FACILITY, inputs={"direction": meters[mid].direction,
                                                         "accuracy_class_pct": meters[mid].accuracy_class})
    export_kwh = sum(v for k, v in per_meter.items() if meters[k].direction == mt.EXPORT)
    import_kwh = sum(v for k, v in per_meter.items() if meters[k].direction == mt.IMPORT)

    adj_exp = adj_imp = 0.0
    n_periods = n_flagged = 0
    if invoices is not None and len(invoices):
        adj_exp, adj_imp, n_periods, n_flagged = _cross_check_invoices(invoices, tables, meters, start, end, rec)

    inputs_exp = {f"EG_meter[{k}]": v for k, v in per_meter.items() if meters[k].direction == mt.EXPORT}
    inputs_imp = {f"EG_meter[{k}]": v for k, v in per_meter.items() if meters[k].direction == mt.IMPORT}
    eg_export = trace.record(
        "EG_export_y", (export_kwh + adj_exp) / 1000.0, "MWh",
        equation="(Σ export meters EG_meter + invoice cross-check adjustment) / 1000",
        clause=clauses.EG_FACILITY, inputs={**inputs_exp, "invoice_adjustment_kWh": adj_exp,
                                            "invoice_periods_compared": n_periods, "invoice_periods_flagged": n_flagged},
    )
    eg_import = trace.record(
        "EG_import_y", (import_kwh + adj_imp) / 1000.0, "MWh",
        equation="(Σ import meters EG_meter + invoice cross-check adjustment) / 1000",
        clause=clauses.EG_FACILITY, inputs={**inputs_imp, "invoice_adjustment_kWh": adj_imp},
    )
    return {"EG_export_y": float(eg_export), "EG_import_y": float(eg_import)}, rec.items
