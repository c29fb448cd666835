"""A small vectorised evaluator for the compiled expectations, for frames too large for GX.

It implements exactly the expectation types (and kwargs) the contracts use, with GX 1.x
semantics: a ``row_condition`` first restricts the rows; column-map expectations then skip nulls
(except ``not_be_null``); pair and compound expectations drop rows by ``ignore_row_if``. Anything
else raises :class:`ContractError` rather than being silently skipped.

Speed: everything is whole-column numpy. Checks on the series key column (the contract's ``key``,
e.g. ``meter_id``) and ``ts`` reuse the per-frame :class:`SeriesKeys` (series codes from one
factorisation, and a series/time grouping that costs no sort when the frame already comes as one
time-sorted block per series). Before judging each row, a check asks the column facts
(:class:`ColumnFacts`: nulls, smallest and largest value, one constant category; cached per
:class:`WorkFrame`) and the keys (one series, strictly increasing times) whether any row can fail
at all; on clean data the answer is usually no, at the cost of a few reductions. Every such
shortcut gives exactly the result of the per-row path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mrv.contracts.compile import (
    MAX_MISSING_LISTED,
    ColumnFacts,
    CompiledExpectation,
    Evaluation,
    SeriesKeys,
    WorkFrame,
    column_facts,
    float_values,
)
from mrv.errors import ContractError

Frame = pd.DataFrame | WorkFrame  # anything with frame[column] -> Series, frame[[...]] -> DataFrame, len()

_PAIR_IGNORE = ("both_values_are_missing", "either_value_is_missing", "neither")
_MULTI_IGNORE = ("all_values_are_missing", "any_value_is_missing", "never")
_ORDERED = ("number", "instant")  # fact kinds whose lo/hi bound the values as the checks compare them

# Tests only: False makes every check judge each row (the reference the shortcuts must equal).
_SHORTCUTS = True


def _col(frame: Frame, name: str, rule_id: str) -> pd.Series:
    try:
        return frame[name]
    except KeyError:
        raise ContractError(f"rule {rule_id}: column {name!r} is not in the frame") from None


def _facts(frame: Frame, name: str, rule_id: str) -> ColumnFacts | None:
    """The column's facts (cached on a WorkFrame); None when unknown or shortcuts are off."""
    if not _SHORTCUTS:
        return None
    if isinstance(frame, WorkFrame):
        try:
            return frame.facts(name)
        except KeyError:
            raise ContractError(f"rule {rule_id}: column {name!r} is not in the frame") from None
    return column_facts(_col(frame, name, rule_id))


def _notna(s: pd.Series) -> np.ndarray:
    return s.notna().to_numpy()


def _none() -> np.ndarray:
    """The failing rows of a check no row fails (row positions, as from np.flatnonzero)."""
    return np.empty(0, dtype=np.intp)


def _selects_none(domain: np.ndarray) -> bool:
    if domain.strides == (0,) and len(domain):  # a broadcast from condition_mask: O(1)
        return not domain[0]
    return not domain.any()


def _everywhere(value: bool, n: int) -> np.ndarray:
    return np.broadcast_to(np.bool_(value), (n,))  # read-only, without allocating a mask


def condition_mask(frame: Frame, cond: Mapping[str, Any] | None, rule_id: str) -> np.ndarray:
    """Rows a GX Condition (dict form) selects, with DataFrame.query semantics (what GX uses): a null
    cell fails every comparison except ``!=`` and ``NOT_IN``."""
    if cond is None:
        return _everywhere(True, len(frame))
    kind = cond.get("type")
    if kind in ("and", "or"):
        masks = [condition_mask(frame, c, rule_id) for c in cond["conditions"]]
        return np.logical_and.reduce(masks) if kind == "and" else np.logical_or.reduce(masks)
    if kind == "nullity":
        f = _facts(frame, cond["column"]["name"], rule_id)
        if f is not None and not f.nulls:
            return _everywhere(not cond["is_null"], len(frame))
        s = _col(frame, cond["column"]["name"], rule_id)
        return ~_notna(s) if cond["is_null"] else _notna(s)
    if kind != "comparison":
        raise ContractError(f"rule {rule_id}: native evaluator does not implement row_condition type {kind!r}")
    op, p = cond["operator"], cond["parameter"]
    hit = _constant_comparison(_facts(frame, cond["column"]["name"], rule_id), op, p)
    if hit is not None:
        return _everywhere(hit, len(frame))
    s = _col(frame, cond["column"]["name"], rule_id)
    if op in ("IN", "NOT_IN"):
        m = s.isin(list(p)).to_numpy(dtype=bool)
        return m if op == "IN" else ~m  # a null is "not in" the list, as in DataFrame.query
    ops: dict[str, Callable[[Any, Any], Any]] = {
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    if op not in ops:
        raise ContractError(f"rule {rule_id}: native evaluator does not implement operator {op!r}")
    res = ops[op](s, p)
    m = np.asarray(res.fillna(op == "!=") if hasattr(res, "fillna") else res, dtype=bool)
    # DataFrame.query semantics: a null is != anything and fails every other comparison.
    return m | ~_notna(s) if op == "!=" else m & _notna(s)


def _constant_comparison(f: ColumnFacts | None, op: str, p: Any) -> bool | None:
    """The comparison's result on every row when the column is one category (a string) and no row
    is null (e.g. a derived per-series column on one series' frame); None: compare per row."""
    if f is None or f.kind != "category" or f.nulls or not f.constant or not isinstance(f.lo, str):
        return None
    if op in ("==", "!=") and isinstance(p, str):
        return (f.lo == p) == (op == "==")
    if op in ("IN", "NOT_IN") and isinstance(p, (list, tuple)) and all(isinstance(v, str) for v in p):
        return (f.lo in p) == (op == "IN")
    return None


def _datetime_bound(value: Any, s: pd.Series) -> int:
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.tz_convert("UTC").value) // 1000  # Timestamp.value is in ns whatever the unit


def _as_comparable(s: pd.Series, rule_id: str) -> tuple[np.ndarray, Callable[[Any], Any]]:
    """Column values as a numpy array and a converter for bounds (datetimes as int64 us)."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        if s.dtype.unit == "us":  # stored as UTC microseconds whatever the zone: no conversion copy
            return np.asarray(s.array.asi8), lambda v: _datetime_bound(v, s)
        return s.dt.tz_convert("UTC").dt.as_unit("us").to_numpy(dtype="datetime64[us]").view(np.int64), lambda v: _datetime_bound(v, s)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan), float
    raise ContractError(f"rule {rule_id}: native between supports numeric and tz-aware datetime columns, not {s.dtype}")


# Each handler gets (frame, kwargs, domain mask, keys) and returns (unexpected rows | None, observed):
# the rows as a boolean mask, or as ascending int positions when it knows them directly (none fail).
Handler = Callable[[Frame, Mapping[str, Any], np.ndarray, "SeriesKeys | None", str], tuple["np.ndarray | None", dict[str, Any]]]


def _not_null(frame, kw, domain, keys, rule_id):
    f = _facts(frame, kw["column"], rule_id)
    if f is not None and not f.nulls:
        return _none(), {}
    return domain & ~_notna(_col(frame, kw["column"], rule_id)), {}


def _in_set(frame, kw, domain, keys, rule_id):
    column, value_set = kw["column"], list(kw["value_set"])
    if keys is not None and column == keys.key:
        # Judge each distinct series once, then broadcast through the codes.
        allowed = set(value_set)
        ok = np.array([i in allowed for i in keys.ids] + [True])  # last slot: null key
        if ok.all():  # every series present is allowed: no row can fail (skip the per-row gather)
            return _none(), {}
        return domain & ~ok[keys.codes], {}
    s = _col(frame, column, rule_id)
    if pd.api.types.is_bool_dtype(s.dtype) and all(isinstance(v, bool) for v in value_set):
        f = _facts(frame, column, rule_id)
        if f is not None and f.kind == "bool" and {f.lo, f.hi} <= set(value_set):  # a bool between lo and hi is one of them
            return _none(), {}
        arr = s.to_numpy(dtype=bool, na_value=True)
        bad = np.ones(len(arr), dtype=bool)
        for v in value_set:
            bad &= arr != v
        return domain & _notna(s) & bad, {}
    if isinstance(s.dtype, pd.CategoricalDtype):
        f = _facts(frame, column, rule_id)
        if f is not None and f.constant and isinstance(f.lo, str) and all(isinstance(v, str) for v in value_set):
            if f.lo in value_set:  # the one category present is allowed (for strings `in` is isin)
                return _none(), {}
        # Judge each category once, then broadcast through the codes (a null -> code -1 -> last
        # slot, "in the set", as nulls are skipped).
        ok = np.r_[pd.Index(s.cat.categories).isin(value_set), True]
        if ok.all():  # every category is allowed: no row can fail
            return _none(), {}
        return domain & ~ok[s.cat.codes.to_numpy()], {}
    return domain & _notna(s) & ~s.isin(value_set).to_numpy(), {}


def _between(frame, kw, domain, keys, rule_id):
    s = _col(frame, kw["column"], rule_id)
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if lo is None and hi is None:
        raise ContractError(f"rule {rule_id}: min_value and max_value cannot both be None")
    f = _facts(frame, kw["column"], rule_id)
    if f is not None and f.kind in _ORDERED:
        # Nulls are skipped, so the non-null extremes decide (for any subset of rows, too). The
        # bounds convert as in _as_comparable (which accepts every column of these kinds).
        bound: Callable[[Any], Any] = float if f.kind == "number" else lambda v: _datetime_bound(v, s)
        lo_v, hi_v = (None if lo is None else bound(lo)), (None if hi is None else bound(hi))
        inside = f.lo is not None and (
            (lo_v is None or (f.lo > lo_v if kw.get("strict_min") else f.lo >= lo_v))
            and (hi_v is None or (f.hi < hi_v if kw.get("strict_max") else f.hi <= hi_v))
        )
        if inside or _selects_none(domain):
            return _none(), {}
    arr, conv = _as_comparable(s, rule_id)
    ok = np.ones(len(arr), dtype=bool)
    if lo is not None:
        ok &= (arr > conv(lo)) if kw.get("strict_min") else (arr >= conv(lo))
    if hi is not None:
        ok &= (arr < conv(hi)) if kw.get("strict_max") else (arr <= conv(hi))
    return domain & _notna(s) & ~ok, {}


def _pair_domain(frame, kw, domain, rule_id) -> tuple[pd.Series, pd.Series, np.ndarray]:
    a, b = _col(frame, kw["column_A"], rule_id), _col(frame, kw["column_B"], rule_id)
    ignore = kw.get("ignore_row_if", "both_values_are_missing")
    if ignore not in _PAIR_IGNORE:
        raise ContractError(f"rule {rule_id}: unknown ignore_row_if {ignore!r}")
    na, nb = ~_notna(a), ~_notna(b)
    drop = (na & nb) if ignore == "both_values_are_missing" else (na | nb) if ignore == "either_value_is_missing" else np.zeros(len(a), dtype=bool)
    return a, b, domain & ~drop


def _pair_values(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    def arr(s: pd.Series) -> np.ndarray:
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            return s.dt.tz_convert("UTC").dt.as_unit("us").to_numpy(dtype="datetime64[us]").view(np.int64).astype(np.float64)
        return float_values(s)  # a float64 column (or a broadcast derived one) as it is: no copy

    return arr(a), arr(b)


def _pair_facts(frame, kw, rule_id) -> tuple[ColumnFacts, ColumnFacts] | None:
    """Both columns' facts when their extremes decide every compared row, else None."""
    fa, fb = _facts(frame, kw["column_A"], rule_id), _facts(frame, kw["column_B"], rule_id)
    if fa is None or fb is None or fa.kind not in _ORDERED or fb.kind not in _ORDERED or fa.lo is None or fb.lo is None:
        return None
    ignore = kw.get("ignore_row_if", "both_values_are_missing")
    # Unless every row with a missing value is ignored, such a row is compared (and fails).
    if ignore != "either_value_is_missing" and (fa.nulls or fb.nulls):
        return None
    return (fa, fb) if ignore in _PAIR_IGNORE else None


def _a_greater_than_b(frame, kw, domain, keys, rule_id):
    facts = _pair_facts(frame, kw, rule_id)
    if facts is not None:
        # Values compare as float64 and float() is non-decreasing: min(A) vs max(B) decides.
        a_lo, b_hi = float(facts[0].lo), float(facts[1].hi)
        if a_lo >= b_hi if kw.get("or_equal") else a_lo > b_hi:
            return _none(), {}
    a, b, dom = _pair_domain(frame, kw, domain, rule_id)
    x, y = _pair_values(a, b)
    with np.errstate(invalid="ignore"):
        ok = (x >= y) if kw.get("or_equal") else (x > y)  # NaN compares False, as in pandas
    return dom & ~ok, {}


def _pair_equal(frame, kw, domain, keys, rule_id):
    facts = _pair_facts(frame, kw, rule_id)
    if facts is not None and facts[0].constant and facts[1].constant and float(facts[0].lo) == float(facts[1].lo):
        return _none(), {}
    a, b, dom = _pair_domain(frame, kw, domain, rule_id)
    x, y = _pair_values(a, b)
    return dom & ~(x == y), {}


def _compound_unique(frame, kw, domain, keys, rule_id):
    cols = list(kw["column_list"])
    ignore = kw.get("ignore_row_if", "all_values_are_missing")
    if ignore not in _MULTI_IGNORE:
        raise ContractError(f"rule {rule_id}: unknown ignore_row_if {ignore!r}")
    if _SHORTCUTS and keys is not None and "ts" in cols and set(cols) <= set(frame.columns) and keys.n == len(frame) and keys.ts_increasing:
        return _none(), {}  # no two rows share a time, so no two rows share a key with ts in it
    full_domain = bool(domain.all())
    if keys is not None and sorted(cols) == sorted([keys.key, "ts"]) and full_domain and bool(keys.ts_ok.all()) and bool((keys.codes >= 0).all()):
        # Fast path: in the series/time grouping, copies of a key are neighbours.
        v = keys.view
        eq = (v.codes[1:] == v.codes[:-1]) & (v.ts[1:] == v.ts[:-1])
        dup = np.zeros(len(v.ts), dtype=bool)
        dup[1:] |= eq
        dup[:-1] |= eq
        return v.scatter(dup, n=keys.n, fill=False), {}
    sub = frame[cols]
    nulls = sub.isna().to_numpy()
    drop = nulls.all(axis=1) if ignore == "all_values_are_missing" else nulls.any(axis=1) if ignore == "any_value_is_missing" else np.zeros(len(sub), dtype=bool)
    dom = domain & ~drop
    pos = np.flatnonzero(dom)
    dup = np.zeros(len(sub), dtype=bool)
    dup[pos] = sub.iloc[pos].duplicated(keep=False).to_numpy()
    return dup, {}


def _distinct_contain_set(frame, kw, domain, keys, rule_id):
    column, value_set = kw["column"], list(kw["value_set"])
    if keys is not None and column == keys.key and _SHORTCUTS and keys.series is not None:
        present = set() if _selects_none(domain) else {keys.ids[keys.series]}  # every row has the one series
    elif keys is not None and column == keys.key:
        codes = keys.codes if domain.all() else keys.codes[domain]
        if len(codes) and int(codes.min()) >= 0:  # no null key: count without shifting a copy
            seen = np.bincount(codes, minlength=len(keys.ids)) > 0
        else:
            seen = np.bincount(codes + 1, minlength=len(keys.ids) + 1)[1:] > 0  # slot 0: null key
        present = {i for i, s in zip(keys.ids, seen.tolist()) if s}
    else:
        s = _col(frame, column, rule_id)[domain]
        present = set(s.dropna().unique().tolist())
    missing = sorted((v for v in dict.fromkeys(value_set) if v not in present), key=str)
    return None, {"missing_count": len(missing), "missing": missing[:MAX_MISSING_LISTED]}


HANDLERS: Mapping[str, tuple[Handler, frozenset[str]]] = {
    "expect_column_values_to_not_be_null": (_not_null, frozenset({"column"})),
    "expect_column_values_to_be_in_set": (_in_set, frozenset({"column", "value_set"})),
    "expect_column_values_to_be_between": (_between, frozenset({"column", "min_value", "max_value", "strict_min", "strict_max"})),
    "expect_column_pair_values_a_to_be_greater_than_b": (_a_greater_than_b, frozenset({"column_A", "column_B", "or_equal", "ignore_row_if"})),
    "expect_column_pair_values_to_be_equal": (_pair_equal, frozenset({"column_A", "column_B", "ignore_row_if"})),
    "expect_compound_columns_to_be_unique": (_compound_unique, frozenset({"column_list", "ignore_row_if"})),
    "expect_column_distinct_values_to_contain_set": (_distinct_contain_set, frozenset({"column", "value_set"})),
}


def check_supported(expectations: Sequence[CompiledExpectation]) -> None:
    """Raise ContractError for an expectation type or kwarg this evaluator does not implement."""
    for e in expectations:
        if e.type not in HANDLERS:
            raise ContractError(
                f"{e.rule.id}: the native evaluator does not implement {e.type} "
                f"(implemented: {', '.join(sorted(HANDLERS))}); use engine='gx'"
            )
        extra = set(e.kwargs) - HANDLERS[e.type][1] - {"row_condition"}
        if extra:
            raise ContractError(f"{e.rule.id}: the native evaluator does not implement {e.type} kwarg(s) {', '.join(sorted(extra))}")


def evaluate(frame: Frame, expectations: Sequence[CompiledExpectation], *, keys: SeriesKeys | None = None) -> dict[str, Evaluation]:
    """Evaluate compiled expectations on ``frame`` (RangeIndex); ``keys`` enables the series/time fast paths."""
    check_supported(expectations)
    out: dict[str, Evaluation] = {}
    for e in expectations:
        handler, _ = HANDLERS[e.type]
        domain = condition_mask(frame, e.kwargs.get("row_condition"), e.rule.id)
        mask, observed = handler(frame, e.kwargs, domain, keys, e.rule.id)
        if mask is None:
            out[e.rule.id] = Evaluation(e.rule.id, observed.get("missing_count", 0) == 0, 0, None, observed)
        else:
            idx = np.flatnonzero(mask) if mask.dtype == bool else mask
            out[e.rule.id] = Evaluation(e.rule.id, len(idx) == 0, len(idx), idx, observed)
    return out
