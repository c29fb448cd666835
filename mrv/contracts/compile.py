"""Contract YAML -> checked model -> compiled expectations (-> a GX 1.x ExpectationSuite).

Compilation resolves ``${...}`` references against the run context and the rule's ``params`` and
yields plain expectation configurations (``type``, ``kwargs``, ``meta`` — the same JSON shape GX
uses). Both evaluators consume exactly these: the ``gx`` engine after turning them into a
``gx.ExpectationSuite`` (:func:`compile_suite`), the ``native`` engine directly.

Some rules compare a reading with a per-series quantity that is not in the tidy frame (the
capacity bound for that series' interval, the step to the previous reading, whether a calibration
covered the reading, the series' total that day). A rule declares those *derived columns* by name
(``derive: [...]``); the registry :data:`DERIVATIONS` computes them vectorised before validation,
per series of the contract's ``key`` column.

Template syntax
    ``${period.start}`` / ``${period.end}``   ISO 8601 UTC instants (end exclusive)
    ``${period.label}``                       ``2023-01-01..2023-12-31`` (for messages)
    ``${sources.ids}``                        list of declared series ids (``${meters.ids}``: the same)
    ``${capacity_kw}``                        installed capacity [kW]; a contract using it (or a
                                              derivation needing it) requires it in the context
    ``${values.<dotted.name>}``               a value the pipeline passes (``ContractContext.values``;
                                              nested mappings are walked, e.g. ``${values.param.NCV}``)
    ``${<param>}``                            a value from the rule's ``params``
    A string that is exactly one reference becomes that value (a list stays a list); references
    inside longer text are interpolated (lists joined with ", "). In ``reason`` only,
    ``{column}`` is replaced per row by that row's value (``{missing}`` for set rules).
"""

from __future__ import annotations

import importlib
import importlib.resources
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from functools import cached_property, lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import ValidationError

from mrv.contracts.model import Contract, ContractContext, Rule, SeriesSource, Severity, Stage
from mrv.errors import ContractError
from mrv.frames import step_range
from mrv.project import ReadingKind

if TYPE_CHECKING:  # pragma: no cover
    import great_expectations as gx

# The tidy meter readings (the input columns of a contract keyed on meter_id, see Contract.input_columns).
TIDY_COLUMNS: tuple[str, ...] = ("meter_id", "ts", "value", "unit", "register", "source_file", "source_row")
CONTRACTS_PACKAGE = "data_contracts"

# Expectations whose result is per row (GX "map" expectations) vs. one verdict for the table.
_ROW_LEVEL_PREFIXES = (
    "expect_column_values_",
    "expect_column_pair_values_",
    "expect_compound_columns_",
    "expect_multicolumn_",
    "expect_select_column_values_",
)
_COLUMN_KWARGS = ("column", "column_A", "column_B")

# Our severity as GX's own FailureSeverity (shown in Data Docs); ours stays in `meta`.
_GX_SEVERITY = {Severity.block: "critical", Severity.quarantine: "warning", Severity.warn: "info"}


def is_row_level(expectation: str) -> bool:
    return expectation.startswith(_ROW_LEVEL_PREFIXES)


# --------------------------------------------------------------------------- templates

_REF = re.compile(r"\$\{([^{}]*)\}")
_CONTEXT_NAMES = ("period.start", "period.end", "period.label", "sources.ids", "meters.ids", "capacity_kw")
VALUES_PREFIX = "values."


def context_values(context: ContractContext) -> dict[str, Any]:
    """Every ``${name}`` the context defines (``capacity_kw`` only when the context has one)."""
    out: dict[str, Any] = {
        "period.start": context.period_start.astimezone(timezone.utc).isoformat(),
        "period.end": context.period_end.astimezone(timezone.utc).isoformat(),
        "period.label": context.period_label,
        "sources.ids": context.source_ids,
        "meters.ids": context.source_ids,  # the name the meter contract was written with
    }
    if context.capacity_kw is not None:
        out["capacity_kw"] = float(context.capacity_kw)

    def walk(prefix: str, value: Any) -> None:
        out[prefix] = value
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)

    for k, v in context.values.items():
        walk(f"{VALUES_PREFIX}{k}", v)
    return out


def _refs(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield from (m.group(1).strip() for m in _REF.finditer(value))
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _refs(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _refs(v)


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return f"{value:.0f}"
    return str(value)


def resolve_templates(value: Any, values: Mapping[str, Any], *, escape_braces: bool = False) -> Any:
    """Replace ``${name}`` references (see module doc). ``escape_braces`` doubles ``{``/``}`` in
    interpolated values (for reason templates, where single braces mark row fields)."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value.strip())
        if whole and not escape_braces:
            return values[whole.group(1).strip()]

        def sub(m: re.Match[str]) -> str:
            text = _text(values[m.group(1).strip()])
            return text.replace("{", "{{").replace("}", "}}") if escape_braces else text

        return _REF.sub(sub, value)
    if isinstance(value, Mapping):
        return {k: resolve_templates(v, values, escape_braces=escape_braces) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve_templates(v, values, escape_braces=escape_braces) for v in value]
    return value


TEXT = pa.large_string()  # 64-bit offsets: reasons for tens of millions of rows exceed 2 GiB

_FIELD = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")


@dataclass(frozen=True)
class ReasonTemplate:
    """A reason with ``{column}`` row fields (``{{``/``}}`` are literal braces), rendered vectorised."""

    parts: tuple[tuple[Literal["text", "field"], str], ...]

    @classmethod
    def parse(cls, text: str) -> "ReasonTemplate":
        parts: list[tuple[Literal["text", "field"], str]] = []
        pos = 0
        buf = ""
        for m in _FIELD.finditer(text):
            buf += text[pos : m.start()]
            pos = m.end()
            tok = m.group(0)
            if tok in ("{{", "}}"):
                buf += tok[0]
            elif m.group(1):
                if buf:
                    parts.append(("text", buf))
                    buf = ""
                parts.append(("field", m.group(1)))
            else:
                raise ValueError(f"unbalanced brace at position {m.start()} (write {{{{ or }}}} for a literal brace)")
        buf += text[pos:]
        if buf:
            parts.append(("text", buf))
        return cls(tuple(parts))

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(v for kind, v in self.parts if kind == "field")

    def render(self, values: Mapping[str, pd.Series | str], *, length: int) -> pa.Array:
        """One reason per row (a pyarrow string array): ``values`` maps field names to Series
        (row values, in row order) or scalars."""
        parts: list[Any] = []
        for kind, v in self.parts:
            if kind == "text":
                parts.append(v)
            else:
                val = values[v]
                parts.append(format_values(val) if isinstance(val, pd.Series) else str(val))
        return join_text(parts, length=length)


def join_text(parts: Sequence[Any], *, length: int) -> pa.Array:
    """Concatenate string arrays and plain strings element-wise (vectorised, in Arrow)."""
    if not any(isinstance(p, (pa.Array, pa.ChunkedArray)) for p in parts):
        return pa.array(["".join(parts)] * length, type=TEXT)
    args = [p.cast(TEXT) if isinstance(p, (pa.Array, pa.ChunkedArray)) else pa.scalar(str(p), type=TEXT) for p in parts]
    out = pc.binary_join_element_wise(*args, pa.scalar("", type=TEXT))
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def format_values(s: pd.Series) -> pa.Array:
    """Cell values as text for reasons (Arrow, vectorised): instants as ISO 8601 UTC to the second
    (``2023-01-01T00:15:00Z``), numbers in shortest round-trip form, nulls as ``missing``."""
    missing = s.isna().to_numpy()
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        us = s.dt.tz_convert("UTC").dt.as_unit("us").to_numpy(dtype="datetime64[us]").view(np.int64)
        secs = pa.array(np.floor_divide(us, 1_000_000), mask=missing, type=pa.int64()).cast(pa.timestamp("s"))
        text = join_text([pc.utf8_replace_slice(secs.cast(TEXT), start=10, stop=11, replacement="T"), "Z"], length=len(s))
    elif pd.api.types.is_float_dtype(s.dtype):
        text = pa.array(s.to_numpy(dtype=np.float64, na_value=np.nan), mask=missing, type=pa.float64()).cast(TEXT)
    elif pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_integer_dtype(s.dtype):
        kind = bool if pd.api.types.is_bool_dtype(s.dtype) else np.int64
        text = pa.array(s.to_numpy(dtype=kind, na_value=kind(0)), mask=missing).cast(TEXT)
    else:
        try:
            text = pa.array(s, from_pandas=True)  # Arrow-backed strings: no copy
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            text = pa.array(s.astype(object).where(~missing, None).astype(str).to_numpy(dtype=object), mask=missing)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    return pc.fill_null(text.cast(TEXT), "missing")


# --------------------------------------------------------------------------- column facts

FactKind = Literal["number", "instant", "bool", "category"]
_NAT = np.iinfo(np.int64).min


@dataclass(frozen=True)
class ColumnFacts:
    """Exact facts about a column's values that are cheap to get (like Parquet column statistics):
    from them a check can prove that no row fails without judging each row.

    ``kind`` says how the evaluator compares the values: ``number`` (as float64), ``instant``
    (int64 UTC microseconds), ``bool`` or ``category``. ``lo``/``hi`` are the smallest and largest
    non-null value in that form (for a category: both the one category every non-null row has);
    ``None`` when not known (no non-null value, or several categories).
    """

    kind: FactKind
    nulls: bool  # some row's value is missing
    lo: Any = None
    hi: Any = None

    @property
    def constant(self) -> bool:
        """Every non-null value is ``lo``."""
        return self.lo is not None and self.lo == self.hi


def _range(a: np.ndarray) -> tuple[Any, Any]:
    """(min, max) of a non-empty array; O(1) for a broadcast constant (stride 0)."""
    if a.strides == (0,):
        return a[0], a[0]
    return a.min(), a.max()


def column_facts(values: pd.Series | pd.Categorical | np.ndarray) -> ColumnFacts | None:
    """The facts of a column (None for an empty column or a dtype without them: the checks then
    judge each row). A few reductions over the values; O(1) for a broadcast constant."""
    if len(values) == 0:
        return None
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = (values.array if isinstance(values, pd.Series) else values).codes
        lo, hi = _range(codes)
        if lo < 0:  # a null: which categories the others have is not known without a pass
            return ColumnFacts("category", True)
        value = dtype.categories[int(lo)] if lo == hi else None
        return ColumnFacts("category", False, value, value)
    if isinstance(dtype, pd.DatetimeTZDtype):
        if dtype.unit != "us":  # the evaluator compares these after a unit conversion: no facts
            return None
        us = np.asarray(values.array.asi8 if isinstance(values, pd.Series) else values.asi8)
        lo, hi = _range(us)
        if lo != _NAT:
            return ColumnFacts("instant", False, int(lo), int(hi))
        if hi == _NAT:  # every row NaT
            return ColumnFacts("instant", True)
        return ColumnFacts("instant", True, int(us[us != _NAT].min()), int(hi))
    if not isinstance(dtype, np.dtype):
        return None
    a = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if dtype.kind == "b":
        lo, hi = _range(a)
        return ColumnFacts("bool", False, bool(lo), bool(hi))
    if dtype.kind in "iu":
        lo, hi = _range(a)
        return ColumnFacts("number", False, float(lo), float(hi))
    if dtype.kind == "f":
        lo, hi = _range(a)  # NaN (missing) propagates through min and max
        if not (np.isnan(lo) or np.isnan(hi)):
            return ColumnFacts("number", False, float(lo), float(hi))
        lo, hi = (lo, hi) if a.strides == (0,) else (np.fmin.reduce(a), np.fmax.reduce(a))  # NaN-skipping
        return ColumnFacts("number", True) if np.isnan(lo) else ColumnFacts("number", True, float(lo), float(hi))
    return None


# --------------------------------------------------------------------------- per-series keys


@dataclass(frozen=True)
class GroupedView:
    """Rows with a known series and timestamp, grouped by series and time-sorted within each group.

    ``perm`` maps view position -> row position; it is ``None`` when the frame already is in that
    shape (ingest writes one time-sorted block per series), which is checked in O(n) so the common
    case needs no sort at all.
    """

    perm: np.ndarray | None
    codes: np.ndarray
    ts: np.ndarray
    block_codes: np.ndarray
    bounds: np.ndarray  # block i is view[bounds[i]:bounds[i+1]]

    def scatter(self, view_values: np.ndarray, *, n: int, fill: Any) -> np.ndarray:
        if self.perm is None:  # identity: every row is in the view, in row order
            return view_values
        out = np.full(n, fill, dtype=view_values.dtype)
        out[self.perm] = view_values
        return out

    def blocks(self) -> Iterable[tuple[int, int, int]]:
        for i, c in enumerate(self.block_codes.tolist()):
            yield c, int(self.bounds[i]), int(self.bounds[i + 1])


@dataclass(frozen=True)
class SeriesKeys:
    """Per-row series codes (from the ``key`` column) and UTC microsecond timestamps, computed
    once per frame.

    Codes index ``ids``: declared series first (context order), then undeclared ids in order of
    appearance; ``-1`` for a missing key.
    """

    codes: np.ndarray
    ids: tuple[str, ...]
    sources: tuple[SeriesSource, ...]
    ts: np.ndarray
    ts_ok: np.ndarray
    grouped_hint: bool = False  # rows known to be grouped per series and time-sorted
    key: str = "meter_id"  # the key column the codes come from

    @classmethod
    def build(cls, frame: pd.DataFrame, sources: Sequence[SeriesSource], *, key: str = "meter_id") -> "SeriesKeys":
        declared = {m.id: i for i, m in enumerate(sources)}
        ids = [m.id for m in sources]
        mid = frame[key]
        if isinstance(mid.dtype, pd.CategoricalDtype) and all(str(c) in declared for c in mid.cat.categories):
            # Every category is a declared series: its codes map straight onto ``ids`` (no
            # factorisation pass; undeclared ids, whose order is by appearance, cannot occur).
            # Narrow codes: at fleet scale every full-length array costs memory bandwidth.
            code_type = np.int16 if len(ids) < 32_000 else np.int32
            remap = np.array([declared[str(c)] for c in mid.cat.categories] + [-1], dtype=code_type)
            codes = _remap_codes(np.asarray(mid.array.codes), remap)
            return cls(codes, tuple(ids), tuple(sources), *cls._utc_us(frame["ts"]), key=key)
        fcodes, uniques = pd.factorize(mid, use_na_sentinel=True)
        remap = np.empty(len(uniques) + 1, dtype=np.int64)
        for j, u in enumerate(np.asarray(uniques, dtype=object).tolist()):
            u = str(u)
            if u not in declared:
                declared[u] = len(ids)
                ids.append(u)
            remap[j] = declared[u]
        remap[-1] = -1  # factorize's NA sentinel -1 indexes this slot
        codes = _remap_codes(np.asarray(fcodes, dtype=np.int64), remap)
        return cls(codes, tuple(ids), tuple(sources), *cls._utc_us(frame["ts"]), key=key)

    @staticmethod
    def _utc_us(ts_series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """(UTC microseconds as int64, not-null mask) of a tz-aware column."""
        if not isinstance(ts_series.dtype, pd.DatetimeTZDtype):
            raise ContractError(f"readings: column ts must be timezone-aware datetime64 (UTC), got {ts_series.dtype}")
        if ts_series.dtype.unit == "us":
            ts = np.asarray(ts_series.array.asi8)  # stored as UTC us already, whatever the zone: no conversion pass
            if len(ts) and ts.min() != _NAT:  # no NaT (the smallest int64): a broadcast, no per-row mask
                return ts, np.broadcast_to(np.True_, ts.shape)
            return ts, ts != _NAT
        ts_ok = ts_series.notna().to_numpy()
        ts = ts_series.dt.tz_convert("UTC").dt.as_unit("us").to_numpy(dtype="datetime64[us]").view(np.int64)
        return ts, ts_ok

    @property
    def n(self) -> int:
        return len(self.codes)

    @property
    def n_declared(self) -> int:
        return len(self.sources)

    @cached_property
    def code_range(self) -> tuple[int, int]:
        """(min, max) of the codes, (0, -1) for no rows: O(1) when they are a broadcast (one series)."""
        if not self.n:
            return 0, -1
        lo, hi = _range(self.codes)
        return int(lo), int(hi)

    @cached_property
    def series(self) -> int | None:
        """The code every row has when that is one series (no row without a key), else None."""
        lo, hi = self.code_range
        return lo if lo == hi >= 0 else None

    @cached_property
    def ts_steps(self) -> tuple[int, int] | None:
        """(min, max) of ``np.diff(ts)`` in row order (int64, wrapping as it does); None for fewer
        than two rows."""
        return step_range(self.ts) if self.n >= 2 else None

    @cached_property
    def ts_increasing(self) -> bool:
        """Every row has a time and the times strictly increase in row order (so no two rows share one)."""
        if not self.n or self.ts[0] == _NAT:
            return False
        if self.n == 1:
            return True
        # Positive (int64-wrapped) steps prove it unless one wrapped: a drop by more than 2**63 seen
        # as a rise, which puts the sum of the steps 2**64 above ts[-1] - ts[0]. As ts[-1] >= -2**63
        # (NaT too), that needs ts[0] + (n - 1) * max step >= 2**63: below it, no step wrapped.
        lo, hi = self.ts_steps
        return lo > 0 and int(self.ts[0]) + (self.n - 1) * hi <= np.iinfo(np.int64).max

    @cached_property
    def present(self) -> np.ndarray:
        """The codes of the series that have rows, ascending."""
        if self.series is not None:
            return np.array([self.series], dtype=np.intp)
        codes = self.codes
        return np.flatnonzero(np.bincount(codes[codes >= 0] if self.code_range[0] < 0 else codes, minlength=1))

    def subset(self, mask: np.ndarray) -> "SeriesKeys":
        """Keys of the rows where ``mask`` is True (order kept). If this frame is known to be
        grouped already, so is any subset: the check is skipped."""
        grouped = "view" in self.__dict__ and self.view.perm is None
        return SeriesKeys(_take(self.codes, mask), self.ids, self.sources, self.ts[mask], _take(self.ts_ok, mask), grouped_hint=grouped, key=self.key)

    def per_source(self, values: Sequence[Any], *, unknown: Any, dtype: Any) -> np.ndarray:
        """Broadcast one value per declared series to rows (``unknown`` for other rows)."""
        table = np.empty(len(self.ids) + 1, dtype=dtype)
        table[: len(values)] = values
        table[len(values) :] = unknown
        if len(values) and len(self.ids) == len(values) and len(self.codes) and (table[0] == table[:-1]).all():
            # One value for every declared series (the usual fleet): a fill, unless a row lacks a key.
            # Read-only and stride 0: no 52 M-row allocation (fresh memory is the dominant cost at
            # fleet scale); consumers only read derived columns.
            if self.code_range[0] >= 0:
                return np.broadcast_to(table[:1], (len(self.codes),))
        return table[self.codes]  # code -1 -> the last slot (unknown)

    @cached_property
    def view(self) -> GroupedView:
        if self.series is not None and self.ts_increasing:  # one series, time-sorted: the rows as they are
            return GroupedView(None, self.codes, self.ts, np.array(self.codes[:1]), np.array([0, self.n], dtype=np.int64))
        ok = self.ts_ok & (self.codes >= 0)
        all_ok = bool(ok.all())
        pos = None if all_ok else np.flatnonzero(ok)
        codes = self.codes if all_ok else self.codes[pos]
        ts = self.ts if all_ok else self.ts[pos]
        perm = pos
        starts = np.zeros(min(len(codes), 1), dtype=np.int64)
        if len(codes) > 1:
            starts = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1]
            if not (self.grouped_hint or self._is_grouped(codes, ts, starts)):
                order = np.lexsort((ts, codes))
                perm = order if pos is None else pos[order]
                codes, ts = codes[order], ts[order]
                starts = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1]
        bounds = np.r_[starts, len(codes)].astype(np.int64)
        return GroupedView(perm, codes, ts, codes[starts], bounds)

    @staticmethod
    def _is_grouped(codes: np.ndarray, ts: np.ndarray, starts: np.ndarray) -> bool:
        """One contiguous block per series, time-sorted within it (O(n), no sort)."""
        if len(np.unique(codes[starts])) != len(starts):
            return False
        ordered = ts[1:] >= ts[:-1]
        ordered[starts[1:] - 1] = True  # a block boundary may go back in time
        return bool(ordered.all())


def _remap_codes(codes: np.ndarray, remap: np.ndarray) -> np.ndarray:
    """``remap[codes]`` (code -1 -> the last slot), without a per-row gather when every row has one
    code (a broadcast) or the remap is the identity (a cast)."""
    if len(codes):
        lo, hi = _range(codes)
        if lo == hi:
            return np.broadcast_to(remap[lo], codes.shape)
    k = len(remap) - 1
    if (remap[:k] == np.arange(k)).all():  # remap[-1] is -1 too: the codes as they are
        return codes.astype(remap.dtype, copy=False)
    return remap[codes]


def _take(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``a[mask]``, kept a broadcast when ``a`` is one (stride 0)."""
    if len(a) and a.strides == (0,):
        return np.broadcast_to(a[:1], (int(np.count_nonzero(mask)),))
    return a[mask]


# --------------------------------------------------------------------------- derivations

DeriveFn = Callable[[pd.DataFrame, SeriesKeys, ContractContext, Mapping[str, Any]], "np.ndarray | pd.Categorical"]
FactsFn = Callable[[pd.DataFrame, SeriesKeys, ContractContext, Mapping[str, Any]], "ColumnFacts | None"]


@dataclass(frozen=True)
class Derivation:
    name: str  # also the name of the column it adds
    description: str
    compute: DeriveFn
    params: tuple[str, ...] = ()
    needs_capacity: bool = False  # reads ContractContext.capacity_kw (checked at compile time)
    # The column's facts without computing it (None from it: take them from the values).
    facts: FactsFn | None = None


US_PER_MINUTE = 60_000_000
US_PER_HOUR = 3_600_000_000
US_PER_DAY = 86_400_000_000


def float_values(s: pd.Series) -> np.ndarray:
    """A float column as float64 with NaN for missing; no copy for a NumPy float64 column
    (``to_numpy(na_value=...)`` always copies)."""
    if s.dtype == np.float64:
        return s.to_numpy()
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


_READING_KINDS = pd.CategoricalDtype([k.value for k in ReadingKind])  # built once: a dtype costs more than a broadcast


def _meter_reading(frame: pd.DataFrame, keys: SeriesKeys, context: ContractContext, params: Mapping[str, Any]) -> pd.Categorical:
    kinds = [k.value for k in ReadingKind]
    # Sources that are not meters have no reading kind: null, like an undeclared meter.
    per = [kinds.index(r.value) if (r := getattr(m, "reading", None)) is not None else -1 for m in keys.sources]
    # Codes -1..len(kinds)-1 by construction: no validation pass (which would also copy a broadcast).
    return pd.Categorical.from_codes(keys.per_source(per, unknown=-1, dtype=np.int8), dtype=_READING_KINDS, validate=False)


def _interval_minutes(frame: pd.DataFrame, keys: SeriesKeys, context: ContractContext, params: Mapping[str, Any]) -> np.ndarray:
    return keys.per_source([float(m.interval_minutes) for m in keys.sources], unknown=np.nan, dtype=np.float64)


def _capacity_limit_kwh(frame: pd.DataFrame, keys: SeriesKeys, context: ContractContext, params: Mapping[str, Any]) -> np.ndarray:
    # Installed capacity bound: no interval can hold more than capacity x interval length, plus a
    # tolerance for meter error and short overloads.
    if context.capacity_kw is None:  # compile_contract refuses this earlier; kept for direct callers
        raise ContractError("derivation capacity_limit_kwh needs the installed capacity (capacity_kw) in the contract context")
    tol = float(params["tolerance"])
    limits = [context.capacity_kw * m.interval_minutes / 60.0 * (1.0 + tol) for m in keys.sources]
    return keys.per_source(limits, unknown=np.nan, dtype=np.float64)


def _interval_step_minutes(frame: pd.DataFrame, keys: SeriesKeys, context: ContractContext, params: Mapping[str, Any]) -> np.ndarray:
    v = keys.view
    step = np.empty(len(v.ts), dtype=np.float64)
    if len(v.ts):
        np.subtract(v.ts[1:], v.ts[:-1], out=step[1:], casting="unsafe")
        step /= US_PER_MINUTE
        step[v.bounds[:-1]] = np.nan  # each series' first reading has no previous one
    return v.scatter(step, n=keys.n, fill=np.nan)


def _interval_step_facts(frame: pd.DataFrame, keys: SeriesKeys, context: ContractContext, params: Mapping[str, Any]) -> ColumnFacts | None:
    # One series: the extreme steps from the integer differences (the values are float(diff) /
    # US_PER_MINUTE, a non-decreasing map, so its extremes are those of the diffs), never the column.
    v = keys.view
    if len(v.bounds) != 2 or len(v.ts) < 2:  # several series (a step across two is no step), or no step
        return None
    steps = keys.ts_steps if v.perm is None else step_range(v.ts)  # perm None: the view is the rows
    lo, hi = np.array(steps, dtype=np.int64).astype(np.float64) / US_PER_MINUTE
    return ColumnFacts("number", True, float(lo), float(hi))  # null: the first reading has no step


def _daily_total(frame: pd.DataFrame, keys: SeriesKeys, context: ContractContext, params: Mapping[str, Any]) -> np.ndarray:
    # Per series and UTC calendar day, the sum of `value` on every row of that series-day (e.g. a
    # device's energy that day, for a plausibility bound). Missing values add nothing, so a hole
    # in the data cannot hide an implausible day; rows without key or time get null.
    v = keys.view
    if len(v.ts) == 0:
        return np.full(keys.n, np.nan)
    vals = float_values(frame["value"])
    vals = vals if v.perm is None else vals[v.perm]  # view order: one gather, only when not grouped already
    nan = np.isnan(vals)
    if nan.any():
        vals = np.where(nan, 0.0, vals)
    del nan
    day = v.ts // US_PER_DAY  # time-sorted within each series, so each series-day is one run
    new = np.empty(len(day), dtype=bool)
    new[0] = True
    np.not_equal(day[1:], day[:-1], out=new[1:])
    del day
    new[v.bounds[1:-1]] = True  # a new series starts a new run even on the same day
    starts = np.flatnonzero(new)
    del new
    totals = np.add.reduceat(vals, starts)
    per_row = np.repeat(totals, np.diff(np.r_[starts, len(vals)]))
    return v.scatter(per_row, n=keys.n, fill=np.nan)


def calibration_windows_us(source: SeriesSource) -> list[tuple[int, int]]:
    """Calibration validity as half-open UTC microsecond ranges, merged.

    Certificate dates are calendar dates at the instrument, so they are read in the source's own
    timezone (its ``timezone`` attribute, the clock its files are written in; UTC when it has
    none): valid_from 00:00 local up to the midnight after valid_to (valid_to is inclusive).
    """
    tz = ZoneInfo(getattr(source, "timezone", None) or "UTC")
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)

    def us(d: Any) -> int:
        return (datetime.combine(d, time(0), tz) - epoch) // timedelta(microseconds=1)

    spans = sorted((us(c.valid_from), us(c.valid_to + timedelta(days=1))) for c in source.calibrations)
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _calibration_valid(frame: pd.DataFrame, keys: SeriesKeys, context: ContractContext, params: Mapping[str, Any]) -> np.ndarray:
    # CDM VVS-PA v03.0: a reading outside every calibration validity window was taken with an
    # instrument in delayed calibration; the methodology applies the maximum permissible error to it.
    v = keys.view
    flag = np.zeros(len(v.ts), dtype=bool)
    for code, lo, hi in v.blocks():  # one step per series (not per row)
        if code >= keys.n_declared:
            continue
        seg = v.ts[lo:hi]
        for s, e in calibration_windows_us(keys.sources[code]):
            a, b = np.searchsorted(seg, [s, e], side="left")
            flag[lo + a : lo + b] = True
    return v.scatter(flag, n=keys.n, fill=False)


DERIVATIONS: Mapping[str, Derivation] = {
    d.name: d
    for d in (
        Derivation("meter_reading", "Reading kind of the row's meter (interval | cumulative); null if undeclared or not a meter", _meter_reading),
        Derivation("interval_minutes", "Declared reading interval of the row's series [min]", _interval_minutes),
        Derivation(
            "capacity_limit_kwh",
            "capacity_kw x interval hours x (1 + tolerance) for the row's series [kWh]",
            _capacity_limit_kwh,
            params=("tolerance",),
            needs_capacity=True,
        ),
        Derivation(
            "interval_step_minutes", "Minutes since the series' previous reading (null for its first)", _interval_step_minutes, facts=_interval_step_facts
        ),
        Derivation("calibration_valid", "Reading start inside one of the series' calibration validity windows", _calibration_valid),
        Derivation("daily_total", "Sum of value of the row's series over its UTC calendar day (missing values add nothing)", _daily_total),
    )
}

# The name this class had while contracts only judged meters.
MeterKeys = SeriesKeys


@dataclass(frozen=True)
class LazyColumn:
    """A derived column computed when first read; ``facts`` (optional) gives its facts without it."""

    compute: Callable[[], Any]
    facts: Callable[[], ColumnFacts | None] | None = None


class WorkFrame:
    """The readings plus derived columns, read column by column without copying either. A derived
    column given as a :class:`LazyColumn` is computed on first read (a check its facts settle never
    reads it).

    The native engine reads it directly; GX gets :meth:`to_frame` (one DataFrame). ``keys`` (of
    ``base``) lend their facts about ``ts``.
    """

    def __init__(self, base: pd.DataFrame, derived: Mapping[str, Any], *, keys: SeriesKeys | None = None) -> None:
        clash = set(base.columns) & set(derived)
        if clash:
            raise ContractError(f"readings frame already has derived column(s) {', '.join(sorted(clash))}")
        self.base = base
        self.keys = keys
        self._derived = dict(derived)
        self._series: dict[str, pd.Series] = {}
        self._facts: dict[str, ColumnFacts | None] = {}

    def __len__(self) -> int:
        return len(self.base)

    @property
    def columns(self) -> list[str]:
        return [*self.base.columns, *self._derived]

    def _values(self, key: str) -> Any:
        v = self._derived[key]
        if isinstance(v, LazyColumn):
            v = self._derived[key] = v.compute()
        return v

    def __getitem__(self, key: str | list[str]) -> Any:
        if isinstance(key, list):
            return pd.DataFrame({k: self[k] for k in key})
        if key in self._derived:
            if key not in self._series:
                self._series[key] = pd.Series(self._values(key), index=self.base.index, name=key, copy=False)
            return self._series[key]
        return self.base[key]

    def facts(self, key: str) -> ColumnFacts | None:
        """:func:`column_facts` of a column, once per frame (raises KeyError for an unknown column)."""
        if key not in self._facts:
            lazy = self._derived.get(key)
            found = None
            if isinstance(lazy, LazyColumn) and lazy.facts is not None:
                found = lazy.facts()
            elif key == "ts" and self.keys is not None and self.keys.ts_increasing:
                # keys.ts are these instants as the checks compare them; sorted, no NaT: the ends are the extremes.
                found = ColumnFacts("instant", False, int(self.keys.ts[0]), int(self.keys.ts[-1]))
            if found is None:
                found = column_facts(self._values(key) if key in self._derived else self.base[key])
            self._facts[key] = found
        return self._facts[key]

    def to_frame(self) -> pd.DataFrame:
        return self.base.assign(**{k: self._values(k) for k in self._derived}) if self._derived else self.base


def add_derived(
    frame: pd.DataFrame, *, keys: SeriesKeys, context: ContractContext, rules: Sequence[Rule], always: Sequence[str] = ()
) -> WorkFrame:
    """The frame plus every derived column the rules declare, each computed once when first read."""
    wanted: dict[str, Mapping[str, Any]] = {name: {} for name in always}
    for rule in rules:
        for name in rule.derive:
            wanted[name] = rule.params
    columns = {}
    for name, params in wanted.items():
        d = DERIVATIONS[name]
        facts = partial(d.facts, frame, keys, context, params) if d.facts is not None else None
        columns[name] = LazyColumn(partial(d.compute, frame, keys, context, params), facts)
    return WorkFrame(frame, columns, keys=keys)


# --------------------------------------------------------------------------- loading


def _format_validation(source: str, exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        lines.append(f"{loc or '(top level)'}: {err['msg']}")
    return lines


def _semantic_problems(contract: Contract) -> list[str]:
    problems: list[str] = []
    for name in (contract.key, *contract.extra_columns):
        if name in DERIVATIONS:
            problems.append(f"{'key' if name == contract.key else 'columns'}: {name!r} is the name of a derived column")
    seen: dict[str, int] = {}
    derived_by: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for i, rule in enumerate(contract.rules):
        at = f"rules[{i}]"
        if rule.id in seen:
            problems.append(f"{at}.id: duplicate rule id {rule.id!r} (also rules[{seen[rule.id]}])")
        seen.setdefault(rule.id, i)
        for j, name in enumerate(rule.derive):
            d = DERIVATIONS.get(name)
            if d is None:
                problems.append(f"{at}.derive[{j}]: unknown derivation {name!r} (known: {', '.join(DERIVATIONS)})")
                continue
            for p in d.params:
                if p not in rule.params:
                    problems.append(f"{at}.params: derivation {name} needs param {p!r}")
            if name in derived_by and {p: derived_by[name][1].get(p) for p in d.params} != {p: rule.params.get(p) for p in d.params}:
                problems.append(f"{at}.params: derivation {name} is declared with different params in rules[{derived_by[name][0]}]")
            derived_by.setdefault(name, (i, rule.params))
        for p in rule.params:
            if p in _CONTEXT_NAMES or p.startswith(VALUES_PREFIX):
                problems.append(f"{at}.params.{p}: shadows the context value ${{{p}}}")
        known = set(_CONTEXT_NAMES) | set(rule.params)
        for fname, value in _templated_fields(rule):
            for ref in _refs(value):
                # ${values.<name>} depends on the run: it is checked when compiled against a context.
                if ref not in known and not (ref.startswith(VALUES_PREFIX) and len(ref) > len(VALUES_PREFIX)):
                    problems.append(f"{at}.{fname}: unknown reference ${{{ref}}} (known: {', '.join(sorted(known))}, values.<name>)")
        columns = set(contract.input_columns) | set(rule.derive)
        referenced = [(f"kwargs.{k}", rule.kwargs[k]) for k in _COLUMN_KWARGS if k in rule.kwargs]
        referenced += [(f"kwargs.column_list[{j}]", c) for j, c in enumerate(rule.kwargs.get("column_list") or [])]
        if rule.row_condition:
            referenced.append(("row_condition.column", rule.row_condition.column))
        for where, col in referenced:
            if isinstance(col, str) and _REF.search(col):
                continue  # a templated column name is checked once resolved (by the evaluator)
            if not isinstance(col, str) or col not in columns:
                problems.append(f"{at}.{where}: unknown column {col!r} (input columns and this rule's derive: {', '.join(sorted(columns))})")
        row_level = is_row_level(rule.expectation)
        if rule.reason is not None:
            try:
                fields = ReasonTemplate.parse(_REF.sub("x", rule.reason)).fields
            except ValueError as exc:
                problems.append(f"{at}.reason: {exc}")
                fields = ()
            allowed = columns if row_level else {"missing"}
            for f in fields:
                if f not in allowed:
                    problems.append(f"{at}.reason: unknown field {{{f}}} (allowed: {', '.join(sorted(allowed))})")
        if rule.severity is Severity.quarantine and not row_level:
            problems.append(f"{at}.severity: quarantine needs a row-level expectation; {rule.expectation} judges the whole table")
        if rule.severity is Severity.quarantine and rule.evaluate_on is Stage.valid:
            problems.append(f"{at}.evaluate_on: a quarantine rule must be evaluated on readings (it removes rows from them)")
        if rule.keep is not None:
            if rule.expectation != "expect_compound_columns_to_be_unique" or rule.severity is not Severity.quarantine:
                problems.append(f"{at}.keep: only for a quarantine rule with expect_compound_columns_to_be_unique")
            elif contract.key not in (rule.kwargs.get("column_list") or []):
                problems.append(f"{at}.keep: conservative keep needs the key {contract.key} in column_list (the series' conservative_keep decides)")
    return problems


def _templated_fields(rule: Rule) -> tuple[tuple[str, Any], ...]:
    return (("kwargs", rule.kwargs), ("row_condition", rule.row_condition.model_dump() if rule.row_condition else None), ("reason", rule.reason))


def parse_contract(text: str, *, source: str) -> Contract:
    """Validate contract YAML text; every problem is reported with ``source`` and the field path.

    Parsed once per (text, source): a contract is immutable, and the pure-Python YAML parse costs
    tens of milliseconds on every step that loads one."""
    return _parse_contract(text, source)


@lru_cache(maxsize=64)
def _parse_contract(text: str, source: str) -> Contract:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ContractError(f"{source}: expected a mapping at the top level")
    try:
        contract = Contract.model_validate({**raw, "source": source})
    except ValidationError as exc:
        problems = _format_validation(source, exc)
    else:
        problems = _semantic_problems(contract)
    if problems:
        lines = [f"{source}: invalid data contract ({len(problems)} problem(s))"] + [f"  - {p}" for p in problems]
        raise ContractError("\n".join(lines))
    return contract


def _packaged(name: str) -> Any:
    """A file of the ``data_contracts`` package (also when an old editable install registered it
    as a namespace package, which importlib.resources cannot open)."""
    try:
        return importlib.resources.files(CONTRACTS_PACKAGE) / name
    except (NotADirectoryError, TypeError):
        package = importlib.import_module(CONTRACTS_PACKAGE)
        dirs = [Path(p) for p in package.__path__ if Path(p).is_dir()]
        return next((d / name for d in dirs if (d / name).exists()), (dirs[0] if dirs else Path(CONTRACTS_PACKAGE)) / name)


def load_contract(contract_id: str, *, directory: Path | None = None) -> Contract:
    """Read ``<contract_id>.yaml`` from ``directory`` (default: the ``data_contracts`` package).

    Raises :class:`ContractError` naming the file and the field for any problem.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", contract_id):
        raise ContractError(f"invalid contract id {contract_id!r} (lowercase letters, digits and _)")
    name = f"{contract_id}.yaml"
    resource = Path(directory) / name if directory is not None else _packaged(name)
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractError(f"{resource}: data contract {contract_id!r} not found") from None
    except UnicodeDecodeError as exc:
        raise ContractError(f"{resource}: not UTF-8 text ({exc})") from None
    contract = parse_contract(text, source=str(resource))
    if contract.id != contract_id:
        raise ContractError(f"{resource}: id: is {contract.id!r} but the file is named for {contract_id!r}")
    return contract


# --------------------------------------------------------------------------- compiling


@dataclass(frozen=True)
class CompiledExpectation:
    """One rule as an expectation configuration with every reference resolved."""

    rule: Rule
    type: str
    kwargs: Mapping[str, Any]
    reason: ReasonTemplate | None

    @property
    def rule_id(self) -> str:
        return self.rule.id

    @property
    def row_level(self) -> bool:
        return is_row_level(self.type)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "kwargs": dict(self.kwargs),
            "meta": {
                "rule_id": self.rule.id,
                "severity": self.rule.severity.value,
                "evaluate_on": self.rule.evaluate_on.value,
                "clause": self.rule.clause,
                **({"keep": self.rule.keep.value} if self.rule.keep else {}),
                **({"derive": list(self.rule.derive)} if self.rule.derive else {}),
            },
            "description": self.rule.description,
            "severity": _GX_SEVERITY[self.rule.severity],
        }


@dataclass(frozen=True)
class CompiledContract:
    contract: Contract
    context: ContractContext
    expectations: tuple[CompiledExpectation, ...]
    suite_name: str = field(default="")

    def stage(self, stage: Stage) -> tuple[CompiledExpectation, ...]:
        return tuple(e for e in self.expectations if e.rule.evaluate_on is stage)

    def suite_json(self, expectations: Sequence[CompiledExpectation] | None = None) -> dict[str, Any]:
        """The suite in GX's JSON shape (deterministic: no generated ids)."""
        exps = self.expectations if expectations is None else expectations
        return {
            "name": self.suite_name,
            "expectations": [e.to_json() for e in exps],
            "meta": {"contract_id": self.contract.id, "contract_version": self.contract.version},
        }


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        raise ContractError(f"non-finite number {v} in a compiled expectation")
    return v


def _context_problems(contract: Contract, context: ContractContext, base: Mapping[str, Any]) -> list[str]:
    """What the contract needs from the run that ``context`` does not give (capacity, values)."""
    problems: list[str] = []
    for rule in contract.rules:
        refs = {ref for _, value in _templated_fields(rule) for ref in _refs(value)}
        if context.capacity_kw is None:
            users = ["${capacity_kw}"] if "capacity_kw" in refs else []
            users += [f"derive {d}" for d in rule.derive if DERIVATIONS[d].needs_capacity]
            if users:
                problems.append(f"rule {rule.id}: needs the installed capacity ({', '.join(users)}) but the contract context has no capacity_kw")
        for ref in sorted(r for r in refs if r.startswith(VALUES_PREFIX) and r not in rule.params and r not in base):
            have = sorted(k for k in base if k.startswith(VALUES_PREFIX))
            problems.append(f"rule {rule.id}: ${{{ref}}} is not in the context values (have: {', '.join(have) or 'none'})")
    return problems


def compile_contract(contract: Contract, *, context: ContractContext) -> CompiledContract:
    """Resolve references against ``context``: the expectations both evaluators run.

    Raises :class:`ContractError` when a rule needs what the context lacks (the installed capacity,
    a ``${values....}`` entry), naming every such rule.
    """
    base = context_values(context)
    problems = _context_problems(contract, context, base)
    if problems:
        raise ContractError("\n".join([f"{contract.source}: contract {contract.id} cannot run in this context:"] + [f"  - {p}" for p in problems]))
    out = []
    for rule in contract.rules:
        values = {**base, **rule.params}
        kwargs = resolve_templates(rule.kwargs, values)
        if rule.row_condition is not None:
            rc = rule.row_condition
            kwargs["row_condition"] = {
                "type": "comparison",
                "column": {"name": rc.column},
                "operator": rc.operator,
                "parameter": resolve_templates(rc.parameter, values),
            }
        kwargs = {k: _json_number(v) for k, v in kwargs.items()}
        reason = ReasonTemplate.parse(resolve_templates(rule.reason, values, escape_braces=True)) if rule.reason else None
        out.append(CompiledExpectation(rule, rule.expectation, kwargs, reason))
    return CompiledContract(contract, context, tuple(out), suite_name=f"{contract.id}@{contract.version}")


def import_gx() -> Any:
    """Import Great Expectations (slow, ~3 s) only when a GX object is needed; analytics off."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    with warnings.catch_warnings():
        # GX 1.x imports the deprecated sre_* modules; that is not our users' concern.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        import great_expectations as gx

    return gx


def gx_suite(doc: Mapping[str, Any], *, source: str = "<contract>") -> "gx.ExpectationSuite":
    """A ``gx.ExpectationSuite`` from :meth:`CompiledContract.suite_json` output."""
    gx = import_gx()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suite = gx.ExpectationSuite(name=doc["name"], meta=dict(doc.get("meta", {})))
    for e in doc["expectations"]:
        try:
            config = ExpectationConfiguration(
                type=e["type"], kwargs=dict(e["kwargs"]), meta=dict(e["meta"]), description=e.get("description"), severity=e.get("severity", "critical")
            )
            suite.add_expectation_configuration(config)
        except Exception as exc:  # GX raises several unrelated types for a bad type or kwargs
            raise ContractError(f"{source}: rule {e['meta']['rule_id']}: {e['type']} is not a valid GX expectation: {exc}") from None
    return suite


def compile_suite(contract: Contract, *, context: ContractContext) -> "gx.ExpectationSuite":
    """The contract as a Great Expectations 1.x ExpectationSuite (one expectation per rule, in order;
    ``meta`` carries rule_id, severity, evaluate_on and clause)."""
    compiled = compile_contract(contract, context=context)
    return gx_suite(compiled.suite_json(), source=contract.source)


# --------------------------------------------------------------------------- evaluation result


@dataclass(frozen=True)
class Evaluation:
    """What an evaluator found for one expectation (the same shape from both engines)."""

    rule_id: str
    success: bool
    unexpected_count: int
    unexpected_index: np.ndarray | None  # ascending row positions; None for table-level expectations
    observed: Mapping[str, Any] = field(default_factory=dict)  # table-level detail, JSON-native


MAX_MISSING_LISTED = 20  # GX lists at most 20 missing values (MAX_DISTINCT_VALUES); native does the same
