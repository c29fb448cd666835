"""Instrument and device-fleet files to tidy long readings (``docs/internal-interfaces.md``,
"Generic monitored data").

Two readers, both pure (files in, frame out, :class:`~mrv.errors.IngestError` naming the file and
row for anything unreadable) and vectorised like :mod:`mrv.ingest.meters`, whose timestamp rules
they share (naive times are wall-clock time in the declared zone, offsets must agree with it,
DST gaps are errors):

``read_instrument_files``
    One instrument (one column of one or more CSV/Parquet files) ->
    ``instrument_id, ts, quantity, value, unit, source_file, source_row``. Values are converted
    from the instrument's unit to the unit the methodology uses for that quantity (pint, so
    degree Celsius to kelvin is right), at the edge.
``read_device_files``
    Long-format fleet files (one row per device per interval) ->
    ``device_id, ts, value, unit, source_file, source_row`` with energy in kWh, sorted by device
    then time. ``read_device_registry`` reads the fleet's registry CSV.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mrv.errors import IngestError
from mrv.ingest.meters import UNIT_TO_KWH, _and_more, _localize, _parse_time_column, _where, parse_numbers, read_csv_columns, utc_datetime_array
from mrv.project import DeviceFleet, Instrument

__all__ = [
    "DEVICE_COLUMNS",
    "INSTRUMENT_COLUMNS",
    "REGISTRY_REQUIRED",
    "read_device_files",
    "read_device_registry",
    "read_instrument_files",
]

INSTRUMENT_COLUMNS: tuple[str, ...] = ("instrument_id", "ts", "quantity", "value", "unit", "source_file", "source_row")
DEVICE_COLUMNS: tuple[str, ...] = ("device_id", "ts", "value", "unit", "source_file", "source_row")
REGISTRY_REQUIRED: tuple[str, ...] = ("device_id", "serial", "commissioned", "accuracy_class", "calibration_valid_from", "calibration_valid_to")
_US_PER_MINUTE = 60_000_000


@dataclass(frozen=True, slots=True)
class _Series:
    """What the shared timestamp parser needs to know about a series (its id and declared zone)."""

    id: str
    timezone: str


def _read_columns(path: Path, columns: Sequence[str], *, dictionary: Sequence[str] = ()) -> tuple[dict[str, Any], npt.NDArray[np.int64]]:
    """The named columns of a CSV (as text) or Parquet file, and each row's 1-based number.

    ``dictionary``: text columns of a Parquet file to read dictionary-encoded (as Parquet stores
    them), e.g. the device ids of a fleet file, rather than as one string per row.
    """
    file = path.name
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv_columns(path, columns)
    if suffix != ".parquet":
        raise IngestError(f"{_where(file)}: unsupported file type {suffix or '(none)'!r} (use .csv or .parquet)")
    try:
        schema = pq.read_schema(path)
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise IngestError(
                f"{_where(file)}: missing column(s) {', '.join(repr(c) for c in missing)} (file has {', '.join(repr(n) for n in schema.names)})"
            )
        text = [c for c in dictionary if pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type)]
        table = pq.read_table(path, columns=list(dict.fromkeys(columns)), read_dictionary=text or None)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{_where(file)}: not a readable Parquet file ({exc})") from None
    if table.num_rows == 0:
        raise IngestError(f"{_where(file)}: no data rows")
    return {c: table.column(c) for c in columns}, np.arange(1, table.num_rows + 1, dtype=np.int64)


def _dictionary_parts(arr: Any) -> list[tuple[np.ndarray, npt.NDArray[np.integer[Any]]]]:
    """(distinct values used, as Python strings; per-row index into them) for each chunk of a
    column: a dictionary-encoded chunk as it is, any other one encoded here."""
    out = []
    for ch in arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]:
        if not pa.types.is_dictionary(ch.type):
            ch = ch.cast(pa.string()).dictionary_encode()
        values = np.asarray(ch.dictionary.cast(pa.string()).to_pylist(), dtype=object)
        indices = ch.indices.to_numpy(zero_copy_only=False)
        if len(values) > 1 or len(indices) == 0:
            used = np.bincount(indices, minlength=len(values)) > 0 if len(indices) else np.zeros(len(values), dtype=bool)
            if not used.all():  # a stored dictionary may hold values no row uses: not categories
                values = np.where(used, values, None)
        out.append((values, indices))
    return out


def _times_utc(
    parts: Sequence[tuple[Any, npt.NDArray[np.int64]]], names: Sequence[str], *, series: _Series, column: str
) -> npt.NDArray[np.int64]:
    """UTC microseconds for each file's timestamp column, concatenated in file order."""
    out: list[npt.NDArray[np.int64]] = []
    for (arr, rows), name in zip(parts, names):
        t = _parse_time_column(arr, file=name, column=column, rows=rows, meter=series)  # type: ignore[arg-type]
        us = t.us
        if t.local:
            us = _localize(us, tz=series.timezone, meter_id=series.id, files=np.full(len(rows), name, dtype=object), rows=rows)
        out.append(us)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _convert(values: npt.NDArray[np.float64], *, unit: str, to: str, what: str) -> npt.NDArray[np.float64]:
    if unit == to:
        return values
    import pint

    from mrv.methodology.units import ureg

    try:
        return np.asarray(ureg().Quantity(values, unit).to(to).magnitude, dtype=np.float64)
    except (pint.errors.DimensionalityError, pint.errors.UndefinedUnitError) as exc:
        raise IngestError(f"{what}: cannot convert {unit!r} to {to!r} ({exc})") from None


def _categorical(codes: npt.NDArray[np.integer[Any]], categories: Sequence[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=list(categories))


def _ts_series(us: npt.NDArray[np.int64]) -> pd.Series:
    return pd.Series(utc_datetime_array(np.ascontiguousarray(us, dtype=np.int64)), copy=False)  # a relabelling, no copy


def read_instrument_files(files: Sequence[Path], *, instrument: Instrument, unit: str) -> pd.DataFrame:
    """One instrument's readings from its files, values converted to ``unit`` (the methodology's).

    Rows are sorted by time (stable, so repeated timestamps keep file order for the contract's
    duplicate rule). An empty value cell gives NaN: the data contract decides what it means.
    """
    if not files:
        raise IngestError(f"instrument {instrument.id}: no files to read")
    series = _Series(instrument.id, instrument.timezone)
    cols = [instrument.timestamp_column, instrument.column]
    read = [(_read_columns(Path(f), cols), Path(f).name) for f in files]
    names = [n for _, n in read]
    ts = _times_utc([(c[instrument.timestamp_column], rows) for (c, rows), _ in read], names, series=series, column=instrument.timestamp_column)
    values = np.concatenate([
        parse_numbers(c[instrument.column], file=n, column=instrument.column, rows=rows) for (c, rows), n in read
    ])
    rows = np.concatenate([rows for (_, rows), _ in read])
    file_idx = np.concatenate([np.full(len(r), i, dtype=np.int32) for i, ((_, r), _) in enumerate(read)])
    if instrument.timestamp_label == "end":
        ts = ts - instrument.interval_minutes * _US_PER_MINUTE
    values = _convert(values, unit=instrument.unit, to=unit, what=f"instrument {instrument.id} ({instrument.quantity})")
    if len(ts) > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
        order = np.argsort(ts, kind="stable")
        ts, values, rows, file_idx = ts[order], values[order], rows[order], file_idx[order]
    n = len(ts)
    zeros = np.zeros(n, dtype=np.int8)
    return pd.DataFrame(
        {
            "instrument_id": _categorical(zeros, [instrument.id]),
            "ts": _ts_series(ts),
            "quantity": _categorical(zeros, [instrument.quantity]),
            "value": np.ascontiguousarray(values, dtype=np.float64),
            "unit": _categorical(zeros, [unit]),
            "source_file": _categorical(file_idx, names),
            "source_row": np.ascontiguousarray(rows, dtype=np.int64),
        },
        copy=False,
    )


def read_device_registry(path: Path) -> pd.DataFrame:
    """The fleet's device registry (CSV): one row per device, required columns checked, dates parsed.

    Extra columns are kept (as text) for the methodology. Duplicate device ids are an error: the
    registry is the authority on which device a reading belongs to.
    """
    file = path.name
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise IngestError(f"device registry {path} not found") from None
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise IngestError(f"{_where(file)}: not a readable CSV device registry ({exc})") from None
    missing = [c for c in REGISTRY_REQUIRED if c not in df.columns]
    if missing:
        raise IngestError(f"{_where(file)}: device registry is missing column(s) {', '.join(missing)}")
    if df.empty:
        raise IngestError(f"{_where(file)}: device registry has no devices")
    df = df.apply(lambda s: s.str.strip())
    dup = df["device_id"].duplicated(keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])  # the first repeat (CSV line = index + 2)
        raise IngestError(f"{_where(file, i + 2)}: device {df['device_id'].iloc[i]!r} is listed more than once{_and_more(int(dup.sum()))}")
    empty = df["device_id"] == ""
    if empty.any():
        raise IngestError(f"{_where(file, int(np.flatnonzero(empty.to_numpy())[0]) + 2)}: empty device_id")
    for col in ("commissioned", "calibration_valid_from", "calibration_valid_to"):
        parsed = pd.to_datetime(df[col].replace("", None), format="ISO8601", errors="coerce")
        bad = np.flatnonzero(parsed.isna().to_numpy() & (df[col] != "").to_numpy())
        if len(bad):
            i = int(bad[0])
            raise IngestError(f"{_where(file, i + 2)}: {col} {df[col].iloc[i]!r} is not an ISO date{_and_more(len(bad))}")
        if col == "commissioned" and parsed.isna().any():
            i = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            raise IngestError(f"{_where(file, i + 2)}: device {df['device_id'].iloc[i]} has no commissioning date")
        df[col] = parsed.dt.date
    acc = pd.to_numeric(df["accuracy_class"], errors="coerce")
    bad = np.flatnonzero((acc.isna() | (acc <= 0) | (acc > 10)).to_numpy())
    if len(bad):
        i = int(bad[0])
        raise IngestError(f"{_where(file, i + 2)}: accuracy_class {df['accuracy_class'].iloc[i]!r} is not a percentage in (0, 10]")
    df["accuracy_class"] = acc.astype(np.float64)
    return df.reset_index(drop=True)


def read_device_files(files: Sequence[Path], *, fleet: DeviceFleet) -> pd.DataFrame:
    """A fleet's long-format readings -> tidy device readings [kWh], sorted by device, then time.

    Device ids not in the registry are kept (the contract's registry-match rule quarantines them
    with a reason; nothing is dropped here).
    """
    if not files:
        raise IngestError("device fleet: no files to read")
    series = _Series("device fleet", fleet.timezone)
    cols = [fleet.id_column, fleet.timestamp_column, fleet.value_column]
    read = [(_read_columns(Path(f), cols, dictionary=[fleet.id_column]), Path(f).name) for f in files]
    names = [n for _, n in read]
    ts = _times_utc([(c[fleet.timestamp_column], rows) for (c, rows), _ in read], names, series=series, column=fleet.timestamp_column)
    values = np.concatenate([parse_numbers(c[fleet.value_column], file=n, column=fleet.value_column, rows=rows) for (c, rows), n in read])
    rows = np.concatenate([rows for (_, rows), _ in read])
    file_idx = np.concatenate([np.full(len(r), i, dtype=np.int32) for i, ((_, r), _) in enumerate(read)])
    # Device ids: dictionary-encode per file, then map to one sorted category list.
    # (Parquet stores them dictionary-encoded: read that way, each chunk's few distinct ids are
    # mapped once instead of hashing every row's string again.)
    id_parts: list[tuple[np.ndarray, npt.NDArray[np.integer[Any]]]] = []
    for (c, rows_f), n in read:
        arr = c[fleet.id_column]
        if arr.null_count:
            bad = np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))
            raise IngestError(f"{_where(n, int(rows_f[bad[0]]))}: empty {fleet.id_column}{_and_more(len(bad))}")
        id_parts += _dictionary_parts(arr)
    used_ids = [v[v != None] for v, _ in id_parts]  # noqa: E711 (object arrays: elementwise)
    categories = np.unique(np.concatenate(used_ids)) if used_ids else np.zeros(0, dtype=object)
    codes = np.empty(len(ts), dtype=np.int32)
    pos = 0
    for ids_used, indices in id_parts:
        lookup = np.searchsorted(categories, np.where(ids_used == None, categories[0] if len(categories) else "", ids_used)).astype(np.int32)  # noqa: E711
        np.take(lookup, indices, out=codes[pos : pos + len(indices)])
        pos += len(indices)
    if fleet.timestamp_label == "end":
        ts = ts - fleet.interval_minutes * _US_PER_MINUTE
    factor = UNIT_TO_KWH[fleet.unit]
    if factor != 1.0:
        values = values * factor
    # Sorted by (device, ts), stable: the contract's per-series rules need grouped, ordered series;
    # fleet files are usually written that way already, so check before paying for a sort.
    if len(ts) > 1:
        d_codes = np.diff(codes)
        ordered = bool(np.all((d_codes > 0) | ((d_codes == 0) & (np.diff(ts) >= 0))))
        if not ordered:
            order = np.lexsort((ts, codes))
            codes, ts, values, rows, file_idx = codes[order], ts[order], values[order], rows[order], file_idx[order]
    n = len(ts)
    return pd.DataFrame(
        {
            "device_id": _categorical(codes, [str(c) for c in categories]),
            "ts": _ts_series(ts),
            "value": np.ascontiguousarray(values, dtype=np.float64),
            "unit": _categorical(np.zeros(n, dtype=np.int8), ["kWh"]),
            "source_file": _categorical(file_idx, names),
            "source_row": np.ascontiguousarray(rows, dtype=np.int64),
        },
        copy=False,
    )
