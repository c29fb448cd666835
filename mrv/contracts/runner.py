"""Apply a compiled contract to a tidy keyed time series (meter readings, instrument or device
data): valid rows, quarantine, gap report, verdicts.

Order of work
  1. Rules with ``evaluate_on: readings`` run on the input frame (plus the derived columns they
     declare). Each row failing a ``block`` or ``quarantine`` rule leaves the valid set.
  2. Rules with ``evaluate_on: valid`` run on what is left (gaps, calibration, coverage).

Quarantine attribution: a row failing several rules is quarantined **once**, under the first
failing rule in contract order (``rule_id``/``severity``/``reason`` of that rule). Each rule's
``unexpected_count`` still counts every row the expectation flagged; ``quarantined_count`` counts
the rows attributed to it.

Duplicates (``keep: conservative``): copies that fail another rule are quarantined by that rule;
among the remaining copies of a key one is kept — the lowest or the highest value, as the series'
source says (:func:`mrv.contracts.model.conservative_keep`: lowest for an export meter, highest
for an import meter, so the net energy is never overstated (CDM conservativeness); lowest for any
other source unless it sets ``conservative_keep``) — and the others are quarantined with a reason
naming the kept copy and whether the values disagreed.

Gap report: per declared series, the contract's key column first (``meter_id`` for meters).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mrv.contracts import native
from mrv.contracts.compile import (
    US_PER_HOUR,
    US_PER_MINUTE,
    CompiledContract,
    CompiledExpectation,
    Evaluation,
    MAX_MISSING_LISTED,
    SeriesKeys,
    WorkFrame,
    add_derived,
    compile_contract,
    float_values,
    format_values,
    gx_suite,
    import_gx,
    join_text,
)
from mrv.contracts.model import OUTPUT_COLUMNS, Contract, ContractContext, Severity, Stage, conservative_keep
from mrv.errors import ContractBlocked, ContractError
from mrv.project import Meter

Engine = Literal["auto", "gx", "native"]
EngineUsed = Literal["gx", "native"]

QUARANTINE_COLUMNS = ("rule_id", "severity", "reason")
GAP_COLUMNS = ("meter_id", "gap_start", "gap_end", "missing_intervals", "hours", "position")  # for key meter_id
GapPosition = Literal["start", "between", "end", "whole_period"]
MAX_FINDINGS = 5


def gap_columns(key: str) -> tuple[str, ...]:
    """The gap report's columns for a contract keyed on ``key``."""
    return (key, *GAP_COLUMNS[1:])


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    severity: Severity
    description: str
    clause: str
    success: bool
    unexpected_count: int  # rows the expectation flagged (0 for table-level expectations)
    quarantined_count: int  # rows placed in the quarantine under this rule
    details: dict[str, Any] = field(default_factory=dict)  # JSON-native: findings, missing values, ...

    def to_json(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity.value,
            "description": self.description,
            "clause": self.clause,
            "success": self.success,
            "unexpected_count": self.unexpected_count,
            "quarantined_count": self.quarantined_count,
            "details": self.details,
        }


@dataclass(frozen=True)
class ValidRows:
    """What an outcome keeps of its valid rows once the rows themselves were handed on (the
    pipeline treats each series' valid rows as they are validated, then lets them go): enough for
    the row selection and the summary, a small fraction of the rows' memory."""

    rows: int
    calibration_valid: tuple[np.ndarray, ...]  # the added column, per piece of valid rows (input order)
    lapsed: pd.DataFrame  # <key>, value of the valid rows with calibration_valid false (input order)

    @classmethod
    def of(cls, valid: pd.DataFrame, key: str) -> "ValidRows":
        flags = valid["calibration_valid"].to_numpy(dtype=bool)
        if flags.all():  # the usual series: no lapsed row, no boolean indexing of the frame
            return cls(len(valid), (flags,), pd.DataFrame({key: valid[key].array[:0], "value": valid["value"].array[:0]}))
        return cls(len(valid), (flags,), valid.loc[~flags, [key, "value"]].reset_index(drop=True))

    @property
    def flags(self) -> np.ndarray:
        return np.concatenate(self.calibration_valid) if self.calibration_valid else np.zeros(0, dtype=bool)


@dataclass(frozen=True)
class ValidationOutcome:
    # input columns + calibration_valid (bool); FramePieces (per series) from
    # validate_series_frames(concat_valid=False); ValidRows from merge_series_parts of released parts
    valid: pd.DataFrame
    quarantine: pd.DataFrame  # input columns + rule_id, severity, reason
    rules: list[RuleResult]  # contract order
    gaps: pd.DataFrame  # <key>, gap_start, gap_end, missing_intervals, hours, position
    engine: EngineUsed
    contract_id: str
    contract_version: str
    suite: dict[str, Any]  # the compiled suite, GX JSON shape
    series_ids: tuple[str, ...] = ()  # declared series, for per-series summaries
    input_rows: int = 0
    key: str = "meter_id"  # the contract's series key column
    # One boolean per input row, in input order (the concatenation of the frames validated):
    # True where the row is in ``valid`` (see mrv.selection). None when not tracked. A tuple of
    # one array per frame when per-series outcomes were merged (their concatenation is the mask).
    kept: np.ndarray | tuple[np.ndarray, ...] | None = None

    @property
    def blocked(self) -> bool:
        return any(r.severity is Severity.block and not r.success for r in self.rules)

    def blocking_rules(self) -> list[RuleResult]:
        return [r for r in self.rules if r.severity is Severity.block and not r.success]

    def raise_if_blocked(self) -> None:
        """Raise :class:`ContractBlocked` naming each failed block rule, its first offending rows
        (file and row) or missing values, and the clause behind it."""
        failed = self.blocking_rules()
        if not failed:
            return
        lines = [f"data contract {self.contract_id} {self.contract_version} blocks the run:"]
        for r in failed:
            what = f"{r.unexpected_count} row(s)" if r.unexpected_count else f"{r.details.get('missing_count', 0)} missing value(s)"
            lines.append(f"- rule {r.rule_id} (block) failed for {what}: {r.description}")
            findings = r.details.get("findings", [])
            lines += [f"    {f}" for f in findings]
            more = (r.unexpected_count or r.details.get("missing_count", 0)) - len(findings)
            if more > 0:
                lines.append(f"    ... and {more} more")
            lines.append(f"  clause: {r.clause}")
        exc = ContractBlocked("\n".join(lines))
        exc.rule_ids = [r.rule_id for r in failed]  # type: ignore[attr-defined]
        raise exc

    @property
    def meter_ids(self) -> tuple[str, ...]:
        return self.series_ids  # the name from when contracts only judged meters

    def to_summary(self) -> dict[str, Any]:
        """JSON-serialisable digest: per-rule counts and per-series quarantine, gap and calibration figures.

        Keyed on ``meter_id`` the figures are ``..._per_meter`` and the sums ``..._kwh_...`` (as
        always); on any other key ``..._per_series`` and ``..._value_...``, with ``key`` naming the column.
        """
        key = self.key
        meters = list(self.series_ids)
        q = self.quarantine
        q_ids = q[key].astype(object).where(q[key].notna(), f"(missing {key})")
        extra = [m for m in dict.fromkeys(q_ids.tolist()) if m not in meters]
        keys = meters + extra
        q_rows = q_ids.value_counts()
        q_kwh = q["value"].groupby(q_ids.to_numpy()).sum(min_count=1) if len(q) else pd.Series(dtype=float)
        from mrv.frames import FramePieces

        if isinstance(self.valid, ValidRows):
            lapsed, n_valid = self.valid.lapsed, self.valid.rows
        else:
            pieces = list(self.valid) if isinstance(self.valid, FramePieces) else [self.valid]
            lapsed_parts = []
            for p in pieces:  # most series have no lapsed reading: skip them without indexing
                bad = ~p["calibration_valid"].to_numpy(dtype=bool)
                if bad.any() or not lapsed_parts and p is pieces[-1]:
                    lapsed_parts.append(p.loc[bad, [key, "value"]])
            lapsed = lapsed_parts[0] if len(lapsed_parts) == 1 else pd.concat(lapsed_parts, ignore_index=True)
            n_valid = sum(len(p) for p in pieces)
        l_rows = lapsed[key].astype(object).value_counts()
        l_kwh = lapsed.groupby(lapsed[key].astype(object))["value"].sum() if len(lapsed) else pd.Series(dtype=float)
        g_hours = self.gaps.groupby(self.gaps[key].astype(object))["hours"].sum() if len(self.gaps) else pd.Series(dtype=float)
        # Meter summaries keep their established names (reports read them); others say what they are.
        per, amount = ("per_meter", "kwh") if key == "meter_id" else ("per_series", "value")

        def num(series: pd.Series, key: str, kind: type) -> Any:
            v = series.get(key, 0)
            v = 0 if v is None or (isinstance(v, float) and math.isnan(v)) else v
            return kind(v)

        return {
            "contract_id": self.contract_id,
            "contract_version": self.contract_version,
            "engine": self.engine,
            "blocked": self.blocked,
            **({} if key == "meter_id" else {"key": key}),
            "rows": {"input": self.input_rows, "valid": n_valid, "quarantined": len(q)},
            "rules": [r.to_json() for r in self.rules],
            f"quarantined_rows_{per}": {m: num(q_rows, m, int) for m in keys},
            f"quarantined_{amount}_{per}": {m: num(q_kwh, m, float) for m in keys},
            f"gap_hours_{per}": {m: num(g_hours, m, float) for m in meters},
            f"calibration_lapsed_rows_{per}": {m: num(l_rows, m, int) for m in meters},
            f"calibration_lapsed_{amount}_{per}": {m: num(l_kwh, m, float) for m in meters},
        }


# --------------------------------------------------------------------------- engines


def _gx_context() -> Any:
    import_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults, ProgressBarsConfig

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _json_native(v: Any) -> Any:
    if isinstance(v, (list, tuple, set)):
        return [_json_native(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def _gx_evaluate(
    frame: pd.DataFrame, expectations: Sequence[CompiledExpectation], *, compiled: CompiledContract, gx_context: Any, asset: str
) -> dict[str, Evaluation]:
    datasource = gx_context.data_sources.add_or_update_pandas(name="open-dmrv")
    batch = datasource.add_dataframe_asset(name=asset).add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": frame}
    )
    suite = gx_suite(compiled.suite_json(expectations), source=compiled.contract.source)
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    out: dict[str, Evaluation] = {}
    for r in result.results:
        rule_id = r.expectation_config.meta["rule_id"]
        info = r.exception_info or {}
        infos = [info] if "raised_exception" in info else list(info.values())
        for i in infos:
            if i.get("raised_exception"):
                raise ContractError(f"rule {rule_id}: Great Expectations could not evaluate {r.expectation_config.type}: {i.get('exception_message')}")
        res = r.result or {}
        if "unexpected_index_list" in res:
            idx = np.unique(np.asarray([int(i) for i in res["unexpected_index_list"]], dtype=np.int64))
            out[rule_id] = Evaluation(rule_id, bool(r.success), int(res.get("unexpected_count", len(idx))), idx, {})
        elif "missing_count" in res:
            missing = sorted(_json_native(res.get("partial_missing_list", [])), key=str)[:MAX_MISSING_LISTED]
            out[rule_id] = Evaluation(rule_id, bool(r.success), 0, None, {"missing_count": int(res["missing_count"]), "missing": missing})
        else:
            out[rule_id] = Evaluation(rule_id, bool(r.success), 0, None, {"observed_value": _json_native(res.get("observed_value"))})
    return out


class _Evaluator:
    def __init__(self, engine: EngineUsed, compiled: CompiledContract) -> None:
        self.engine = engine
        self.compiled = compiled
        self._gx_context: Any = None

    def __call__(self, work: WorkFrame, expectations: Sequence[CompiledExpectation], *, keys: SeriesKeys, asset: str) -> dict[str, Evaluation]:
        if not expectations:
            return {}
        if self.engine == "native":
            return native.evaluate(work, expectations, keys=keys)
        if self._gx_context is None:
            self._gx_context = _gx_context()
        return _gx_evaluate(work.to_frame(), expectations, compiled=self.compiled, gx_context=self._gx_context, asset=asset)


# --------------------------------------------------------------------------- helpers


def _check_input(df: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    expected = contract.input_columns
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise ContractError(f"readings frame lacks column(s) {', '.join(missing)} (contract {contract.id} expects {', '.join(expected)})")
    if not isinstance(df["ts"].dtype, pd.DatetimeTZDtype):
        raise ContractError(f"readings: column ts must be timezone-aware datetime64 (UTC), got {df['ts'].dtype}")
    if not pd.api.types.is_float_dtype(df["value"].dtype):
        raise ContractError(f"readings: column value must be float64, got {df['value'].dtype}")
    clash = [c for c in df.columns if c in OUTPUT_COLUMNS]
    if clash:
        raise ContractError(f"readings frame already has output column(s) {', '.join(clash)}")
    if isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1:
        return df
    return df.reset_index(drop=True)


def _where(frame: pd.DataFrame | WorkFrame, positions: np.ndarray) -> pa.Array:
    """``<source_file> row <source_row>`` for the given row positions."""
    files = format_values(frame["source_file"].iloc[positions])
    rows = format_values(frame["source_row"].iloc[positions])
    return join_text([files, " row ", rows], length=len(positions))


def _render_reasons(e: CompiledExpectation, work: WorkFrame, positions: np.ndarray) -> pa.Array:
    if e.reason is None:
        return join_text([f"{e.rule.id}: {e.rule.description}"], length=len(positions))
    return e.reason.render({f: work[f].iloc[positions] for f in e.reason.fields}, length=len(positions))


@dataclass
class _Dedup:
    dropped: np.ndarray  # row positions quarantined by the keep rule
    reasons: pa.Array  # aligned with `dropped`
    details: dict[str, Any]


def _conservative_labels(keys: SeriesKeys) -> list[str]:
    """Per series code (plus a last slot for a missing key): whose conservativeness a kept copy serves."""
    labels = [f"an {m.direction.value} meter" if isinstance(m, Meter) else f"{keys.key} {m.id}" for m in keys.sources]
    labels += [f"{keys.key} {i}" for i in keys.ids[keys.n_declared :]]
    return labels + [f"a row without {keys.key}"]


def _resolve_duplicates(e: CompiledExpectation, frame: pd.DataFrame, keys: SeriesKeys, candidates: np.ndarray) -> _Dedup:
    """Keep one copy per key among ``candidates`` (copies that fail no other rule); return the rest."""
    none = {"duplicate_keys": 0, "conflicting_keys": 0, "copies_quarantined": 0}
    if len(candidates) == 0:
        return _Dedup(np.empty(0, dtype=np.int64), pa.array([], type=pa.large_string()), none)
    cols = list(e.kwargs["column_list"])
    sub = frame.iloc[candidates]
    gid = sub.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()
    value = float_values(sub["value"])
    # The series' conservative side (undeclared series and missing keys: lowest).
    side = np.array([conservative_keep(m) == "highest" for m in keys.sources] + [False] * (len(keys.ids) - keys.n_declared + 1))
    highest = side[keys.codes[candidates]]  # only the candidates' codes: no full-length array (code -1 -> last slot)
    # Conservative copy first: lowest or highest value as the series says; NaN last; ties -> input order.
    order = np.lexsort((candidates, np.where(highest, -value, value), gid))
    g = gid[order]
    first = np.r_[True, g[1:] != g[:-1]]
    starts = np.flatnonzero(first)
    sizes = np.diff(np.r_[starts, len(g)])
    v_sorted = value[order]
    with np.errstate(invalid="ignore"):
        vmin = np.fmin.reduceat(v_sorted, starts)
        vmax = np.fmax.reduceat(v_sorted, starts)
    conflict = ~((vmin == vmax) | (np.isnan(vmin) & np.isnan(vmax)))
    group_of = np.cumsum(first) - 1  # sorted position -> group number
    drop_sorted = np.flatnonzero(~first)
    if len(drop_sorted) == 0:
        return _Dedup(np.empty(0, dtype=np.int64), pa.array([], type=pa.large_string()), none)
    # Report in row order.
    drop_sorted = drop_sorted[np.argsort(candidates[order[drop_sorted]], kind="stable")]
    dropped = candidates[order[drop_sorted]]
    kept = candidates[order[starts[group_of[drop_sorted]]]]
    grp = group_of[drop_sorted]
    n = len(dropped)
    key_parts: list[Any] = ["("]
    for j, c in enumerate(cols):
        key_parts += [", "] if j else []
        key_parts.append(format_values(frame[c].iloc[dropped]))
    key_parts.append(")")
    head = ["duplicate of ", _where(frame, kept), " for ", *key_parts]
    this_v = format_values(frame["value"].iloc[dropped])
    # The row's unit where the frame has one (copies of one key share it: same series).
    unit: list[Any] = [" ", format_values(frame["unit"].iloc[dropped])] if "unit" in frame.columns else []
    high = highest[order[drop_sorted]]
    slot = keys.codes[dropped].astype(np.int64)
    slot[slot < 0] = len(keys.ids)  # a missing key -> the last label
    label = pa.array(_conservative_labels(keys), type=pa.large_string()).take(pa.array(slot))
    same = join_text([*head, ": same value ", this_v, *unit, "; one copy kept"], length=n)
    differ = join_text(
        [
            *head, " with a conflicting value: this copy ", this_v, *unit, ", kept ", format_values(frame["value"].iloc[kept]),
            *unit, ", the ", pa.array(np.where(high, "highest", "lowest")), " of ", pa.array(sizes[grp]).cast(pa.large_string()),
            " copies (conservative for ", label, ")",
        ],
        length=n,
    )
    reasons = pc.if_else(pa.array(conflict[grp]), differ, same)
    details = {
        "duplicate_keys": int((sizes > 1).sum()),
        "conflicting_keys": int((conflict & (sizes > 1)).sum()),
        "copies_quarantined": n,
    }
    return _Dedup(dropped, reasons, details)


def _gap_report(keys: SeriesKeys, context: ContractContext, *, only: np.ndarray | None = None) -> pd.DataFrame:
    """Missing data per declared series within the monitoring period, from the valid readings
    (first column: the contract's key column).

    ``between``: consecutive readings more than one interval apart (gap starts where the earlier
    interval ends); ``start``/``end``: from the period start to the first reading, and from the
    end of the last interval to the period end; ``whole_period``: no valid reading at all.
    """
    v = keys.view
    nd = keys.n_declared
    iv_us = np.array([int(m.interval_minutes) * US_PER_MINUTE for m in keys.sources] + [0] * (len(keys.ids) - nd + 1), dtype=np.int64)
    p0 = int(pd.Timestamp(context.period_start).tz_convert("UTC").value) // 1000  # ns -> us
    p1 = int(pd.Timestamp(context.period_end).tz_convert("UTC").value) // 1000
    codes: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    pos: list[np.ndarray] = []
    block_of: dict[int, tuple[int, int]] = {}
    for code, lo, hi in v.blocks():  # one pass per series over its (sorted) readings
        block_of[code] = (lo, hi)
        if code >= nd or hi - lo < 2:
            continue
        seg, iv = v.ts[lo:hi], iv_us[code]
        if v.perm is None and len(v.bounds) == 2 and keys.ts_increasing and keys.ts_steps[1] <= iv:  # type: ignore[index]
            continue  # one series' readings in order, none more than an interval after the previous: no gap between
        gi = np.flatnonzero(np.diff(seg) > iv)
        codes.append(np.full(len(gi), code, dtype=np.int64))
        starts.append(seg[gi] + iv)
        ends.append(seg[gi + 1])
        pos.append(np.full(len(gi), "between", dtype=object))
    edge_c: list[int] = []
    edge_s: list[int] = []
    edge_e: list[int] = []
    edge_p: list[GapPosition] = []

    def edge(code: int, start: int, end: int, position: GapPosition) -> None:
        edge_c.append(code), edge_s.append(start), edge_e.append(end), edge_p.append(position)

    for code in range(nd) if only is None else [int(c) for c in only if c < nd]:
        if code not in block_of:
            edge(code, p0, p1, "whole_period")
            continue
        lo, hi = block_of[code]
        first, last_end = int(v.ts[lo]), int(v.ts[hi - 1]) + int(iv_us[code])
        if first > p0:
            edge(code, p0, first, "start")
        if last_end < p1:
            edge(code, last_end, p1, "end")
    codes.append(np.asarray(edge_c, dtype=np.int64))
    starts.append(np.asarray(edge_s, dtype=np.int64))
    ends.append(np.asarray(edge_e, dtype=np.int64))
    pos.append(np.asarray(edge_p, dtype=object))
    c = np.concatenate(codes)
    if len(c) == 0:  # no gap (the usual series): the empty report, without building its columns
        return _no_gaps(keys.key)
    s = np.concatenate(starts)
    e = np.concatenate(ends)
    p = np.concatenate(pos)
    order = np.lexsort((s, c))
    c, s, e, p = c[order], s[order], e[order], p[order]
    ids = np.asarray(keys.ids, dtype=object)
    return _gap_frame(keys.key, ids[c], s, e, iv_us[c], c, p)


def _gap_frame(key: str, ids: np.ndarray, s: np.ndarray, e: np.ndarray, iv: np.ndarray, c: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            key: pd.array(ids if len(c) else [], dtype="string"),
            "gap_start": pd.to_datetime(s, unit="us", utc=True).as_unit("us"),
            "gap_end": pd.to_datetime(e, unit="us", utc=True).as_unit("us"),
            "missing_intervals": ((e - s) // np.maximum(iv, 1)).astype(np.int64),
            "hours": (e - s) / US_PER_HOUR,
            "position": pd.array(p.astype(str) if len(p) else [], dtype="string"),
        },
        columns=list(gap_columns(key)),
    )


_EMPTY_GAPS: dict[str, pd.DataFrame] = {}
_EMPTY_LOCK = threading.Lock()


def _no_gaps(key: str) -> pd.DataFrame:
    """The empty gap report (one per key column, handed out as shallow copies: a caller adding a
    column changes its copy only). Most series of a fleet have no gap, and building the report's
    columns costs more than finding the gaps."""
    with _EMPTY_LOCK:
        frame = _EMPTY_GAPS.get(key)
        if frame is None:
            z = np.zeros(0, dtype=np.int64)
            frame = _EMPTY_GAPS[key] = _gap_frame(key, np.zeros(0, dtype=object), z, z, z, z, np.zeros(0, dtype=object))
    return frame.copy(deep=False)


def _filter_rows(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """``frame[mask]`` with a fresh RangeIndex, column by column: Arrow-backed columns filtered in
    Arrow, NumPy-backed ones with ``np.compress`` (on tens of millions of rows this is several times
    faster than pandas' positional take, and nothing is consolidated or copied twice)."""
    pa_mask: pa.Array | None = None
    cols: dict[str, Any] = {}
    for name in frame.columns:
        s = frame[name]
        if isinstance(s.dtype, (pd.StringDtype, pd.ArrowDtype)) and hasattr(s.array, "__arrow_array__"):
            pa_mask = pa.array(mask) if pa_mask is None else pa_mask
            cols[name] = pd.array(s.array.__arrow_array__().filter(pa_mask), dtype=s.dtype)
        elif isinstance(s.dtype, pd.DatetimeTZDtype):
            # The values are UTC instants whatever the zone: filter them and relabel, without the
            # two full conversion passes of tz_localize(None) / tz_localize("UTC").
            cols[name] = _tz_array(np.compress(mask, s.array._ndarray), s.dtype)
        elif isinstance(s.dtype, np.dtype):
            cols[name] = np.compress(mask, s.to_numpy())
        else:
            cols[name] = s.array[mask]
    return pd.DataFrame(cols, columns=frame.columns, copy=False)


def _tz_array(utc: np.ndarray, dtype: pd.DatetimeTZDtype) -> Any:
    try:
        return pd.arrays.DatetimeArray._simple_new(utc, dtype=dtype)
    except (AttributeError, TypeError):  # pragma: no cover - other pandas versions
        return pd.Series(utc, copy=False).dt.tz_localize("UTC").dt.tz_convert(dtype.tz).array


_NO_TEXT = pd.array([], dtype="string")  # empty and never written to: shared by empty quarantines


def _empty_quarantine(frame: pd.DataFrame) -> pd.DataFrame:
    cols: dict[str, Any] = {c: s.array[:0] for c, s in frame.items()}  # same dtypes (categories too)
    cols.update(dict.fromkeys(QUARANTINE_COLUMNS, _NO_TEXT))
    return pd.DataFrame(cols, copy=False)


# --------------------------------------------------------------------------- the entry point


def resolve_engine(engine: Engine, *, rows: int, gx_row_limit: int) -> EngineUsed:
    if engine == "auto":
        return "gx" if rows <= gx_row_limit else "native"
    if engine not in ("gx", "native"):
        raise ContractError(f"unknown contract engine {engine!r} (auto, gx or native)")
    return engine


def validate_readings(
    df: pd.DataFrame,
    *,
    contract: Contract,
    context: ContractContext,
    engine: Engine = "auto",
    gx_row_limit: int = 2_000_000,
) -> ValidationOutcome:
    """Split a tidy keyed time series (meter readings, instrument or device data: the columns
    ``contract.input_columns``, one series per value of ``contract.key``) into valid rows and a
    quarantine, per the contract.

    ``engine``: ``gx`` (Great Expectations), ``native`` (vectorised numpy), or ``auto`` (GX up
    to ``gx_row_limit`` rows). Both evaluate the same compiled suite and give the same result.
    """
    frame = _check_input(df, contract)
    used = resolve_engine(engine, rows=len(frame), gx_row_limit=gx_row_limit)
    compiled = compile_contract(contract, context=context)
    if used == "native":
        native.check_supported(compiled.expectations)  # fail before any work
    return _validate(frame, contract=contract, context=context, compiled=compiled, used=used)


def _validate(
    frame: pd.DataFrame,
    *,
    contract: Contract,
    context: ContractContext,
    compiled: CompiledContract,
    used: EngineUsed,
    part: bool = False,
) -> ValidationOutcome:
    """:func:`validate_readings` on a checked frame. ``part``: the frame is one series of a larger
    input (:func:`validate_series_frames`): the gap report covers only the series present in it
    and table-level findings are left to the merge."""
    evaluate = _Evaluator(used, compiled)
    rules = contract.rules
    rule_index = {r.id: i for i, r in enumerate(rules)}
    exp_of = {e.rule_id: e for e in compiled.expectations}
    n = len(frame)

    # ---- stage 1: the input readings
    stage1 = compiled.stage(Stage.readings)
    keys1 = SeriesKeys.build(frame, context.sources, key=contract.key)
    work1 = add_derived(frame, keys=keys1, context=context, rules=[e.rule for e in stage1])
    ev1 = evaluate(work1, stage1, keys=keys1, asset="readings")

    first = np.full(n, -1, dtype=np.int32)  # index of the rule a row is quarantined under
    keep_rules = []
    for e in stage1:
        if e.rule.severity is Severity.warn or not e.row_level:
            continue
        if e.rule.keep is not None:
            keep_rules.append(e)
            continue
        idx = ev1[e.rule_id].unexpected_index
        idx = idx[first[idx] < 0]
        first[idx] = rule_index[e.rule_id]
    dedup: dict[str, _Dedup] = {}
    for e in keep_rules:
        idx = ev1[e.rule_id].unexpected_index
        d = _resolve_duplicates(e, frame, keys1, idx[first[idx] < 0])
        first[d.dropped] = rule_index[e.rule_id]
        dedup[e.rule_id] = d

    q_pos = np.flatnonzero(first >= 0)
    q_rule = first[q_pos]
    pieces: list[tuple[np.ndarray, pa.Array]] = []
    for e in stage1:
        sel = np.flatnonzero(q_rule == rule_index[e.rule_id])
        if len(sel):
            text = dedup[e.rule_id].reasons if e.rule_id in dedup else _render_reasons(e, work1, q_pos[sel])
            pieces.append((sel, text))
    if len(q_pos):
        where = np.concatenate([p for p, _ in pieces])
        reasons = pa.concat_arrays([t.cast(pa.large_string()) for _, t in pieces]).take(pa.array(np.argsort(where, kind="stable")))
        quarantine = frame.iloc[q_pos].reset_index(drop=True)
        quarantine["rule_id"] = pd.array(pa.array([r.id for r in rules]).take(pa.array(q_rule)), dtype="string")
        quarantine["severity"] = pd.array(pa.array([r.severity.value for r in rules]).take(pa.array(q_rule)), dtype="string")
        quarantine["reason"] = pd.array(reasons, dtype="string")
    else:
        quarantine = _empty_quarantine(frame)

    # ---- stage 2: the rows that remain
    keep_mask = first < 0
    if len(q_pos):
        valid_in = _filter_rows(frame, keep_mask)
        keys2 = keys1.subset(keep_mask)
    else:
        valid_in, keys2 = frame, keys1
    stage2 = compiled.stage(Stage.valid)
    work2 = add_derived(valid_in, keys=keys2, context=context, rules=[e.rule for e in stage2], always=("calibration_valid",))
    ev2 = evaluate(work2, stage2, keys=keys2, asset="valid")
    valid = valid_in.assign(calibration_valid=work2["calibration_valid"].to_numpy(dtype=bool))
    gaps = _gap_report(keys2, context, only=keys1.present if part else None)  # part: the series present only

    # ---- verdicts
    q_counts = np.bincount(q_rule, minlength=len(rules)) if len(q_rule) else np.zeros(len(rules), dtype=np.int64)
    results: list[RuleResult] = []
    for i, rule in enumerate(rules):
        e = exp_of[rule.id]
        on_valid = rule.evaluate_on is Stage.valid
        ev = (ev2 if on_valid else ev1)[rule.id]
        wframe = work2 if on_valid else work1
        details: dict[str, Any] = {"evaluate_on": rule.evaluate_on.value}
        details.update({k: _json_native(v) for k, v in ev.observed.items()})
        if rule.id in dedup:
            d = dedup[rule.id]
            details.update(d.details)
            ex = d.dropped[:MAX_FINDINGS]
            details["findings"] = _findings(_where(frame, ex), d.reasons[: len(ex)]) if len(ex) else []
        elif ev.unexpected_index is not None and len(ev.unexpected_index):
            ex = ev.unexpected_index[:MAX_FINDINGS]
            details["findings"] = _findings(_where(wframe, ex), _render_reasons(e, wframe, ex))
        elif ev.unexpected_index is None and details.get("missing") and not part:
            details["findings"] = _missing_findings(e, frame, keys1, first, rules, details["missing"][:MAX_FINDINGS])
        results.append(
            RuleResult(
                rule_id=rule.id,
                severity=rule.severity,
                description=rule.description,
                clause=rule.clause,
                success=bool(ev.success),
                unexpected_count=int(ev.unexpected_count),
                quarantined_count=int(q_counts[i]),
                details=details,
            )
        )

    return ValidationOutcome(
        valid=valid,
        quarantine=quarantine,
        rules=results,
        gaps=gaps,
        engine=used,
        contract_id=contract.id,
        contract_version=contract.version,
        suite=compiled.suite_json(),
        series_ids=tuple(context.source_ids),
        input_rows=n,
        key=contract.key,
        kept=keep_mask,
    )


def _findings(where: pa.Array, reasons: pa.Array) -> list[str]:
    return [f"{w}: {r}" for w, r in zip(where.to_pylist(), reasons.to_pylist())]


def _missing_findings(
    e: CompiledExpectation, frame: pd.DataFrame, keys: SeriesKeys, first: np.ndarray, rules: Sequence[Any], missing: Sequence[Any]
) -> list[str]:
    """For a set rule (e.g. period coverage): each missing value, with where its input rows went."""
    column = e.kwargs.get("column")
    out = []
    for value in missing:
        text = e.reason.render({"missing": str(value)}, length=1)[0].as_py() if e.reason else f"{column} {value}: {e.rule.description}"
        if column == keys.key:
            code = keys.ids.index(value) if value in keys.ids else None
            rows = np.flatnonzero(keys.codes == code) if code is not None else np.empty(0, dtype=np.int64)
        elif column in frame.columns:
            rows = np.flatnonzero((frame[column] == value).fillna(False).to_numpy(dtype=bool))
        else:
            rows = np.empty(0, dtype=np.int64)
        if len(rows) == 0:
            text += " (no rows in the input)"
        else:
            files = sorted(set(frame["source_file"].iloc[rows].astype(str)))
            counts = np.bincount(first[rows] + 1, minlength=len(rules) + 1)
            by_rule = ", ".join(f"{rules[i].id} {counts[i + 1]}" for i in range(len(rules)) if counts[i + 1])
            text += f" (files: {', '.join(files)}; {len(rows)} input row(s)" + (f", quarantined: {by_rule})" if by_rule else ")")
        out.append(text)
    return out


# --------------------------------------------------------------------------- one series at a time


def _single_series(frame: pd.DataFrame, key: str) -> str | None:
    """The one series id of ``frame`` (every row has it), else ``None``."""
    s = frame[key]
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        if len(codes) == 0 or int(codes.min()) < 0 or int(codes.max()) != int(codes.min()):
            return None
        return str(s.cat.categories[int(codes[0])])
    values = pd.unique(s.to_numpy(dtype=object))
    return str(values[0]) if len(values) == 1 and values[0] is not None and not pd.isna(values[0]) else None


def _separable(compiled: CompiledContract, key: str, ids: Sequence[str]) -> bool:
    """Whether every rule judges a row by its own series only (row-level rules, duplicates within a
    series) or is a coverage check of the declared series that the merge can redo."""
    for e in compiled.expectations:
        if e.type not in native.HANDLERS:
            return False
        if e.type == "expect_compound_columns_to_be_unique" and key not in e.kwargs.get("column_list", ()):
            return False
        if not e.row_level:
            if e.type != "expect_column_distinct_values_to_contain_set" or e.kwargs.get("column") != key:
                return False
            if e.kwargs.get("row_condition") is not None or list(e.kwargs.get("value_set", ())) != list(ids):
                return False
    return True


@dataclass(frozen=True)
class SeriesPart:
    """The contract outcome of one series' frame, to be merged with the others' (:func:`merge_series_parts`)."""

    series: str
    outcome: ValidationOutcome
    categories: dict[str, list[Any]]  # the frame's categorical columns' categories

    @property
    def valid_rows(self) -> int:
        v = self.outcome.valid
        return v.rows if isinstance(v, ValidRows) else len(v)

    def released(self) -> "SeriesPart":
        """This part without its valid rows (kept: what the selection and the summary need)."""
        v = self.outcome.valid
        if isinstance(v, ValidRows):
            return self
        return replace(self, outcome=replace(self.outcome, valid=ValidRows.of(v, self.outcome.key)))


def series_plan(contract: Contract, *, context: ContractContext, engine: Engine, rows: int, gx_row_limit: int, frames: int) -> CompiledContract | None:
    """The compiled contract when ``frames`` frames of ``rows`` rows in all can be validated one
    series at a time and merged (:func:`validate_series_frames`), else ``None``."""
    if resolve_engine(engine, rows=rows, gx_row_limit=gx_row_limit) != "native" or frames < 2:
        return None
    compiled = compile_contract(contract, context=context)
    native.check_supported(compiled.expectations)
    return compiled if _separable(compiled, contract.key, context.source_ids) else None


def validate_series_part(frame: pd.DataFrame, *, contract: Contract, context: ContractContext, compiled: CompiledContract) -> SeriesPart | None:
    """The outcome of one frame holding one series, on its own; ``None`` when the frame holds
    several series or rows without one (it must then be validated with the others)."""
    checked = _check_input(frame, contract)
    series = _single_series(checked, contract.key)
    if series is None:
        return None
    # A frame of one undeclared series (e.g. a device missing from the registry) is validated on
    # its own too: its rows fail the row-level membership rule there as in the whole frame, and
    # the gap report, which covers declared series only, has nothing for it.
    outcome = _validate(checked, contract=contract, context=context, compiled=compiled, used="native", part=True)
    cats = {c: list(checked[c].cat.categories) for c in checked.columns if isinstance(checked[c].dtype, pd.CategoricalDtype)}
    return SeriesPart(series, outcome, cats)


def series_mergeable(parts: Sequence[SeriesPart], context: ContractContext) -> bool:
    """Whether the parts decide the outcome of their concatenation: each series once, every
    declared series kept a valid row (coverage) and no block rule failed (its message names rows
    of the whole input). Otherwise the concatenation must be validated as a whole."""
    series = [p.series for p in parts]
    return len(set(series)) == len(series) and _mergeable(parts, context)


def merge_series_parts(
    parts: list[SeriesPart], *, contract: Contract, context: ContractContext, compiled: CompiledContract, consume: bool = False,
    concat_valid: bool = True,
) -> ValidationOutcome:
    """The outcome of the concatenation of the parts' frames (in order), when
    :func:`series_mergeable`. ``consume``: ``parts`` is emptied (its valid frames released as
    they are copied)."""
    if not series_mergeable(parts, context):
        raise ContractError("internal: these per-series outcomes do not decide the whole input")
    series = [p.series for p in parts]
    # The categories the concatenated input would have: the union over all frames.
    categories = {c: sorted(set().union(*(p.categories[c] for p in parts))) for c in parts[0].categories}
    outcomes = [p.outcome for p in parts]
    if consume:
        parts.clear()
    return _merge(outcomes, series, categories, compiled=compiled, contract=contract, context=context, consume=consume,
                  concat_valid=concat_valid)


def validate_series_frames(
    frames: Sequence[pd.DataFrame],
    *,
    contract: Contract,
    context: ContractContext,
    engine: Engine = "auto",
    gx_row_limit: int = 2_000_000,
    max_workers: int = 2,
    consume: bool = False,
    concat_valid: bool = True,
    whole_frame: pd.DataFrame | None = None,
) -> ValidationOutcome:
    """:func:`validate_readings` of the concatenation of ``frames`` (one series each, in order),
    without building it: with the native engine and a contract whose rules judge each row within
    its own series, each frame is validated on its own (in ``max_workers`` threads) and the
    results merged; the outcome equals that of the concatenated frame. Anything else (GX, a frame
    holding several or undeclared series, a failed coverage or block rule, whose messages need
    the whole input) is validated on the concatenation.

    ``consume=True`` (``frames`` a list the caller gives up): the list is emptied and each frame
    released once its rows are copied into the result, so the peak memory stays near one copy.

    ``concat_valid=False``: when the per-series outcomes are merged, ``valid`` is a
    :class:`mrv.frames.FramePieces` of the per-series valid frames (categories unified as in the
    concatenation) instead of their concatenation (which is never built).

    ``whole_frame``: the concatenation of ``frames`` when the caller has it (the frames are then
    slices of it): validated as it is when the frames cannot be validated one by one.
    """
    from mrv.frames import concat_readings

    given = frames
    frames = list(frames)
    if consume and isinstance(given, list):
        given.clear()
    total = sum(len(f) for f in frames)
    used = resolve_engine(engine, rows=total, gx_row_limit=gx_row_limit)

    def whole() -> ValidationOutcome:
        df = whole_frame if whole_frame is not None else concat_readings(frames, consume=consume)
        frames.clear()
        return validate_readings(df, contract=contract, context=context, engine=used, gx_row_limit=gx_row_limit)

    compiled = series_plan(contract, context=context, engine=used, rows=total, gx_row_limit=gx_row_limit, frames=len(frames))
    if compiled is None:
        return whole()

    def one(f: pd.DataFrame) -> SeriesPart | None:
        return validate_series_part(f, contract=contract, context=context, compiled=compiled)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="mrv-validate") as pool:
        parts = list(pool.map(one, frames))
    if any(p is None for p in parts) or not series_mergeable(parts, context):  # type: ignore[arg-type]
        del parts
        return whole()
    if consume:  # from here on, the per-series outcomes hold the only references to the rows
        frames.clear()
    return merge_series_parts(parts, contract=contract, context=context, compiled=compiled, consume=consume,  # type: ignore[arg-type]
                              concat_valid=concat_valid)


def _mergeable(parts: Sequence[SeriesPart], context: ContractContext) -> bool:
    """Whether the per-series outcomes decide the whole: every declared series kept a valid row
    (coverage) and no block rule failed (its message names rows of the whole input)."""
    present = {p.series for p in parts if p.valid_rows}
    if any(i not in present for i in context.source_ids):
        return False
    outcomes = [p.outcome for p in parts]
    for i, rule in enumerate(outcomes[0].rules):
        if rule.severity is Severity.block and not all(o.rules[i].success for o in outcomes):
            if rule.unexpected_count or any(o.rules[i].unexpected_count for o in outcomes):
                return False  # a row-level block rule failed
    return True


def _merge(
    parts: list[ValidationOutcome],
    series: Sequence[str | None],
    categories: dict[str, list[Any]],
    *,
    compiled: CompiledContract,
    contract: Contract,
    context: ContractContext,
    consume: bool,
    concat_valid: bool = True,
) -> ValidationOutcome:
    """One outcome from the per-series outcomes (checked by :func:`_mergeable`)."""
    from mrv.frames import concat_readings

    ids = context.source_ids
    rules = contract.rules
    results: list[RuleResult] = []
    for i, rule in enumerate(rules):
        rs = [p.rules[i] for p in parts]
        e = next(x for x in compiled.expectations if x.rule_id == rule.id)
        if not e.row_level:
            results.append(RuleResult(rule.id, rule.severity, rule.description, rule.clause, True, 0, 0,
                                      {"evaluate_on": rule.evaluate_on.value, "missing_count": 0, "missing": []}))
            continue
        details: dict[str, Any] = {"evaluate_on": rule.evaluate_on.value}
        for k in ("duplicate_keys", "conflicting_keys", "copies_quarantined"):
            if k in rs[0].details:
                details[k] = sum(int(r.details[k]) for r in rs)
        if any("findings" in r.details for r in rs):  # row order: the frames are consecutive
            details["findings"] = [f for r in rs for f in r.details.get("findings", ())][:MAX_FINDINGS]
        results.append(
            RuleResult(
                rule_id=rule.id,
                severity=rule.severity,
                description=rule.description,
                clause=rule.clause,
                success=all(r.success for r in rs),
                unexpected_count=sum(r.unexpected_count for r in rs),
                quarantined_count=sum(r.quarantined_count for r in rs),
                details=details,
            )
        )
    q_parts = [p.quarantine for p in parts if len(p.quarantine)]
    if q_parts:
        quarantine = concat_readings(q_parts, categories=categories)
    else:
        quarantine = concat_readings([parts[0].quarantine], categories=categories)
    del q_parts
    declared = {s: i for i, s in enumerate(ids)}
    order = sorted((j for j in range(len(parts)) if series[j] in declared), key=lambda j: declared[series[j]])  # gap report: declared order
    order = order or [0]
    gap_parts = [parts[j].gaps for j in order if len(parts[j].gaps)]
    gaps = pd.concat(gap_parts, ignore_index=True) if gap_parts else parts[order[0]].gaps.iloc[0:0].reset_index(drop=True)
    input_rows = sum(p.input_rows for p in parts)
    kept = tuple(p.kept for p in parts) if all(p.kept is not None for p in parts) else None  # per input (see ValidationOutcome)
    valid_parts = [p.valid for p in parts]
    if consume:
        parts.clear()  # the valid frames are now referenced only by valid_parts, released one by one
    if any(isinstance(v, ValidRows) for v in valid_parts):
        released = [v if isinstance(v, ValidRows) else ValidRows.of(v, contract.key) for v in valid_parts]
        lapsed = [v.lapsed for v in released if len(v.lapsed)] or [released[-1].lapsed]
        valid = ValidRows(sum(v.rows for v in released), tuple(f for v in released for f in v.calibration_valid),
                          concat_readings(lapsed, categories={contract.key: categories[contract.key]} if contract.key in categories else None))
    elif concat_valid:
        valid = concat_readings(valid_parts, categories=categories, consume=consume)
    else:
        from mrv.frames import FramePieces, with_categories

        valid = FramePieces(with_categories(v, categories) for v in valid_parts)
    del valid_parts
    return ValidationOutcome(
        valid=valid,
        quarantine=quarantine,
        rules=results,
        gaps=gaps,
        engine="native",
        contract_id=contract.id,
        contract_version=contract.version,
        suite=compiled.suite_json(),
        series_ids=tuple(ids),
        input_rows=input_rows,
        key=contract.key,
        kept=kept,
    )
