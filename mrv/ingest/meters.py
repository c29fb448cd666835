"""Meter files (CSV or Parquet) to tidy readings: one row per interval, UTC interval start, kWh.

The output schema is the one in ``docs/internal-interfaces.md``::

    meter_id  str                   Meter.id
    ts        datetime64[us, UTC]   start of the interval
    value     float64               energy in the interval [kWh]
    unit      str                   always "kWh"
    register  float64               register reading at the interval end [kWh] (cumulative), else NaN
    source_file  str                file name the row came from
    source_row   int64              CSV: 1-based line number (header = line 1); Parquet: 1-based row

The reader is pure: it returns a frame or raises :class:`~mrv.errors.IngestError` naming the file
and, where there is one, the row. It reads whole columns and works on arrays (pyarrow, numpy,
pandas), never row by row, because the same code ingests fleets of 1-minute meters.

Timestamps
    ISO 8601 text or Parquet timestamps. Naive values are wall-clock time in ``meter.timezone``;
    values carrying an offset (or a timezone-aware Parquet column) must agree with that zone at
    that instant, so a mis-declared zone cannot silently shift a year of data. Naive local times
    skipped by a daylight-saving change are an error; local times that occur twice are resolved
    from the file order (the first run of the repeated hour is daylight time), and are an error
    when the order does not settle it.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePath

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mrv.errors import IngestError
from mrv.project import Meter, ProjectSpec, ReadingKind

__all__ = ["COLUMNS", "ROLLOVER_MAX_FRACTION", "ROLLOVER_RATE_FACTOR", "UNIT_TO_KWH", "read_meter", "read_meter_files"]

COLUMNS: tuple[str, ...] = ("meter_id", "ts", "value", "unit", "register", "source_file", "source_row")
UNIT_TO_KWH: dict[str, float] = {"Wh": 1e-3, "kWh": 1.0, "MWh": 1e3}
SUFFIXES: tuple[str, ...] = (".csv", ".parquet")

# A decrease of a cumulative register is a rollover only when the energy it implies,
# (register_max - previous) + current, is (a) at most this fraction of the register range, i.e. the
# previous reading was near the top and the new one near zero, and (b) at most this many times the
# largest per-interval increase seen elsewhere in the data, per elapsed interval. Any other
# decrease (meter exchange, reset, glitch) stays a negative delta for the data contract.
ROLLOVER_MAX_FRACTION = 0.1
ROLLOVER_RATE_FACTOR = 10.0

_US_PER_MINUTE = 60_000_000
# An explicit offset at the end of an ISO 8601 date-time (after the time part, so the day of a
# plain date such as 2023-01-01 is not mistaken for "-01").
_OFFSET_SUFFIX = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
_OFFSET_PARTS = r"(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2})?$"


def _where(file: str, row: int | None = None) -> str:
    return f"file {file}" if row is None else f"file {file} row {row}"


def _and_more(n_bad: int) -> str:
    return f" (and {n_bad - 1} more row(s))" if n_bad > 1 else ""


# --------------------------------------------------------------------------- CSV


def _csv_header(data: bytes, file: str) -> list[str]:
    pos = 0
    while pos < len(data):  # the first non-empty line, without splitting the whole file
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        raw_line = data[pos:end].rstrip(b"\r")
        pos = end + 1
        if raw_line:
            try:
                line = raw_line.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise IngestError(f"{_where(file)}: header is not UTF-8 text") from None
            return next(csv.reader([line]))
    raise IngestError(f"{_where(file)}: file is empty (no header, no data rows)")


def _record_lines_slow(text: str) -> list[int]:
    """Physical start line of every non-empty CSV record (handles quoted newlines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    starts: list[int] = []
    prev = 0
    for record in reader:
        if record:
            starts.append(prev + 1)
        prev = reader.line_num
    return starts


def _record_lines(data: bytes, n_records: int) -> npt.NDArray[np.int64]:
    """1-based physical line numbers of the ``n_records`` data records (the header is not counted).

    pyarrow skips empty lines and allows quoted newlines, so record i is not always line i + 2.
    """
    if b'"' not in data and b"\n\n" not in data and b"\n\r\n" not in data and data[:1] not in (b"\n", b"\r"):
        return np.arange(2, n_records + 2, dtype=np.int64)
    if b'"' not in data:
        buf = np.frombuffer(data, dtype=np.uint8)
        nl = np.flatnonzero(buf == 10)
        starts = np.concatenate(([0], nl + 1))
        ends = np.concatenate((nl, [len(buf)]))
        if starts[-1] == len(buf):  # trailing newline closes the last line; no line after it
            starts, ends = starts[:-1], ends[:-1]
        length = ends - starts
        has_cr = np.zeros(len(length), dtype=bool)
        has_cr[length > 0] = buf[ends[length > 0] - 1] == 13
        length = length - has_cr
        lines = np.flatnonzero(length > 0).astype(np.int64) + 1
        if len(lines) == n_records + 1:
            return lines[1:]
    lines_list = _record_lines_slow(data.decode("utf-8-sig", errors="replace"))
    if len(lines_list) == n_records + 1:
        return np.asarray(lines_list[1:], dtype=np.int64)
    return np.arange(2, n_records + 2, dtype=np.int64)  # cannot happen for what pyarrow accepts


def _field_count_error(data: bytes, file: str, n_columns: int) -> IngestError | None:
    text = data.decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    prev = 0
    header_seen = False
    for record in reader:
        start = prev + 1
        prev = reader.line_num
        if not record:
            continue
        if not header_seen:
            header_seen = True
            continue
        if len(record) != n_columns:
            return IngestError(f"{_where(file, start)}: expected {n_columns} columns like the header, found {len(record)}")
    return None


def read_csv_columns(
    path: Path, columns: Sequence[str], *, name: str | None = None
) -> tuple[dict[str, pa.ChunkedArray], npt.NDArray[np.int64]]:
    """Read ``columns`` of a CSV file as whitespace-trimmed text (null for empty cells).

    Returns the columns and the physical line number of every row. Raises :class:`IngestError`
    for an unreadable or empty file, a malformed row, a missing column or no data rows.
    """
    file = name or path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{_where(file)}: cannot read ({exc.strerror or exc})") from None
    header = _csv_header(data, file)
    missing = [c for c in columns if c not in header]
    if missing:
        raise IngestError(
            f"{_where(file)}: missing column(s) {', '.join(repr(c) for c in missing)} "
            f"(header has {', '.join(repr(h) for h in header)})"
        )
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(dict.fromkeys(columns)),
                column_types={c: pa.string() for c in columns},
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        if "UTF8" in msg or "UTF-8" in msg:
            raise IngestError(f"{_where(file)}: not UTF-8 text") from None
        err = _field_count_error(data, file, len(header))
        raise (err or IngestError(f"{_where(file)}: malformed CSV ({msg})")) from None
    if table.num_rows == 0:
        raise IngestError(f"{_where(file)}: no data rows (only a header)")
    out: dict[str, pa.ChunkedArray] = {}
    for c in columns:
        col = pc.utf8_trim_whitespace(table.column(c))
        out[c] = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
    return out, _record_lines(data, table.num_rows)


# --------------------------------------------------------------------------- values


def _numpy(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numeric Arrow column as NumPy: a view of its buffer when it is one chunk without nulls
    (``ChunkedArray.to_numpy`` copies even then: a meter-year column is 4 MB of fresh memory)."""
    if isinstance(arr, pa.ChunkedArray) and arr.num_chunks == 1:
        arr = arr.chunk(0)
    return arr.to_numpy(zero_copy_only=False)


_NONE = np.zeros(0, dtype=np.int64)
_ROWS_LOCK = threading.Lock()
_ROWS = np.arange(1, 1, dtype=np.int64)


def row_numbers(n: int) -> npt.NDArray[np.int64]:
    """``1..n`` (the 1-based rows of a file read whole), read-only: a view of one shared array
    grown as needed, so a fleet of same-size files does not allocate (and fault in) a fresh
    column per file. Consumers only read it (a write raises instead of changing another file's rows)."""
    global _ROWS
    rows = _ROWS
    if len(rows) < n:
        with _ROWS_LOCK:
            if len(_ROWS) < n:
                grown = np.arange(1, max(n, 2 * len(_ROWS)) + 1, dtype=np.int64)
                grown.flags.writeable = False
                _ROWS = grown
            rows = _ROWS
    return rows[:n]


def parse_numbers(arr: pa.ChunkedArray | pa.Array, *, file: str, column: str, rows: npt.NDArray[np.int64], label: str = "value") -> npt.NDArray[np.float64]:
    """Numbers from a text or numeric column; null -> NaN; text that is not a number -> IngestError."""
    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t):
        values = _numpy(pc.cast(arr, pa.float64()))
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            text = pd.Series(pd.array(arr, dtype="str"))
            parsed = pd.to_numeric(text, errors="coerce")
            bad = np.flatnonzero(parsed.isna().to_numpy() & text.notna().to_numpy())
            if len(bad):
                i = bad[0]
                raise IngestError(
                    f"{_where(file, int(rows[i]))}: {label} {text.iloc[i]!r} in column {column!r} is not a number{_and_more(len(bad))}"
                ) from None
            values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        raise IngestError(f"{_where(file)}: column {column!r} has type {t}, expected numbers")
    values = np.asarray(values, dtype=np.float64)
    # A sum that is not ±inf proves no value is (inf propagates; NaN cells are allowed): one pass,
    # no mask. Else (or on overflow) look for the infinite values themselves.
    bad = np.flatnonzero(np.isinf(values)) if np.isinf(np.add.reduce(values)) else _NONE
    if len(bad):
        raise IngestError(f"{_where(file, int(rows[bad[0]]))}: {label} {values[bad[0]]} in column {column!r} is not a finite number{_and_more(len(bad))}")
    return values


# --------------------------------------------------------------------------- timestamps


@dataclass(frozen=True, slots=True)
class _Times:
    """Timestamps of one file as int64 microseconds: UTC instants, or local wall-clock time."""

    us: npt.NDArray[np.int64]
    local: bool


def _fmt_offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    m = abs(int(minutes))
    return f"{sign}{m // 60:02d}:{m % 60:02d}"


def _zone_offsets_minutes(utc_us: npt.NDArray[np.int64], tz: str) -> npt.NDArray[np.int64]:
    """UTC offset of ``tz`` at each instant, in minutes."""
    if tz in ("UTC", "Etc/UTC", "Z", "+00:00"):
        return np.zeros(len(utc_us), dtype=np.int64)
    idx = pd.DatetimeIndex(utc_us.view("M8[us]")).tz_localize("UTC").tz_convert(tz)
    wall = idx.tz_localize(None).as_unit("us").asi8
    return (wall - utc_us) // _US_PER_MINUTE


def _check_offsets(utc_us: npt.NDArray[np.int64], offsets: npt.NDArray[np.int64], *, file: str, rows: npt.NDArray[np.int64], meter: Meter) -> None:
    expected = _zone_offsets_minutes(utc_us, meter.timezone)
    bad = np.flatnonzero(offsets != expected)
    if len(bad):
        i = bad[0]
        raise IngestError(
            f"{_where(file, int(rows[i]))}: timestamp offset {_fmt_offset(offsets[i])} disagrees with meter {meter.id}'s "
            f"declared timezone {meter.timezone} (UTC{_fmt_offset(expected[i])} at that instant){_and_more(len(bad))}"
        )


def _first_null(arr: pa.ChunkedArray | pa.Array, *, file: str, column: str, rows: npt.NDArray[np.int64]) -> None:
    if arr.null_count:
        bad = np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))
        raise IngestError(f"{_where(file, int(rows[bad[0]]))}: empty timestamp in column {column!r}{_and_more(len(bad))}")


def _text_field(parts: pa.ChunkedArray | pa.Array, name: str, *, empty: str = "") -> pa.ChunkedArray | pa.Array:
    """A regex group as text, with unmatched (null or empty) groups replaced by ``empty``."""
    field = pc.fill_null(pc.struct_field(parts, name), empty)
    return pc.if_else(pc.equal(field, ""), empty, field) if empty else field


def _parse_time_text(arr: pa.ChunkedArray | pa.Array, *, file: str, column: str, rows: npt.NDArray[np.int64], meter: Meter) -> _Times:
    _first_null(arr, file=file, column=column, rows=rows)
    has_offset = pc.match_substring_regex(arr, _OFFSET_SUFFIX).to_numpy(zero_copy_only=False)
    mixed = np.flatnonzero(has_offset != has_offset[0])
    if len(mixed):
        i = mixed[0]
        kinds = ("with", "without") if has_offset[0] else ("without", "with")
        raise IngestError(
            f"{_where(file, int(rows[i]))}: timestamp {arr[int(i)].as_py()!r} is {kinds[1]} a UTC offset but row "
            f"{int(rows[0])} is {kinds[0]} one; a file must use one convention"
        )
    text = pd.Series(pd.array(arr, dtype="str"))
    aware = bool(has_offset[0])
    parsed = pd.to_datetime(text, format="ISO8601", utc=aware, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        i = bad[0]
        raise IngestError(
            f"{_where(file, int(rows[i]))}: timestamp {text.iloc[i]!r} in column {column!r} is not an ISO 8601 date-time "
            f"(e.g. 2023-01-01T00:15:00 or 2023-01-01T00:15:00+05:30){_and_more(len(bad))}"
        )
    us = pd.DatetimeIndex(parsed).as_unit("us").asi8
    if aware:
        parts = pc.extract_regex(arr, _OFFSET_PARTS)
        sign = np.where(_text_field(parts, "sign").to_numpy(zero_copy_only=False) == "-", -1, 1)
        hh = pc.cast(_text_field(parts, "hh", empty="0"), pa.int64()).to_numpy(zero_copy_only=False)
        mm = pc.cast(_text_field(parts, "mm", empty="0"), pa.int64()).to_numpy(zero_copy_only=False)
        # Rows ending in Z do not match the pattern (null struct): offset 0.
        zulu = pc.is_null(parts).to_numpy(zero_copy_only=False)
        offsets = np.where(zulu, 0, sign * (hh * 60 + mm)).astype(np.int64)
        _check_offsets(us, offsets, file=file, rows=rows, meter=meter)
    return _Times(us=np.ascontiguousarray(us, dtype=np.int64), local=not aware)


def _parse_time_column(arr: pa.ChunkedArray, *, file: str, column: str, rows: npt.NDArray[np.int64], meter: Meter) -> _Times:
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _parse_time_text(arr, file=file, column=column, rows=rows, meter=meter)
    if not pa.types.is_timestamp(t):
        raise IngestError(f"{_where(file)}: column {column!r} has type {t}, expected a timestamp or ISO 8601 text")
    _first_null(arr, file=file, column=column, rows=rows)
    # Sub-microsecond digits carry no meaning for meter intervals: truncate rather than fail.
    us = _numpy(pc.cast(arr, pa.timestamp("us", tz=t.tz), safe=False).cast(pa.int64()))
    us = np.ascontiguousarray(us, dtype=np.int64)
    if t.tz is None:
        return _Times(us=us, local=True)
    if t.tz != meter.timezone:
        offsets = _zone_offsets_minutes(us, t.tz)
        _check_offsets(us, offsets, file=file, rows=rows, meter=meter)
    return _Times(us=us, local=False)


def _localize(
    local_us: npt.NDArray[np.int64], *, tz: str, meter_id: str, files: npt.NDArray[np.object_], rows: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Wall-clock microseconds in ``tz`` (in file order) to UTC microseconds."""
    if tz in ("UTC", "Etc/UTC"):
        return local_us
    idx = pd.DatetimeIndex(local_us.view("M8[us]"))
    out = idx.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    if out.hasnans:
        gap = idx.tz_localize(tz, ambiguous=np.ones(len(idx), dtype=bool), nonexistent="NaT")
        missing = np.flatnonzero(np.asarray(gap.isna()))
        if len(missing):
            i = missing[0]
            raise IngestError(
                f"{_where(files[i], int(rows[i]))}: local time {idx[i]} does not exist in meter {meter_id}'s timezone {tz} "
                f"(clocks jump forward there){_and_more(len(missing))}"
            )
        try:
            out = idx.tz_localize(tz, ambiguous="infer")
        except ValueError:
            i = np.flatnonzero(np.asarray(out.isna()))[0]
            raise IngestError(
                f"{_where(files[i], int(rows[i]))}: local time {idx[i]} is ambiguous in meter {meter_id}'s timezone {tz} "
                "(it occurs twice when clocks go back) and the order of the rows does not tell which; "
                "write timestamps in UTC or with an explicit offset"
            ) from None
    return out.tz_convert("UTC").as_unit("us").asi8


# --------------------------------------------------------------------------- files


@dataclass(frozen=True, slots=True)
class _FileData:
    times: _Times
    values: npt.NDArray[np.float64]
    rows: npt.NDArray[np.int64]


def _read_csv(path: Path, meter: Meter, name: str) -> _FileData:
    cols, rows = read_csv_columns(path, [meter.timestamp_column, meter.value_column], name=name)
    return _FileData(
        times=_parse_time_column(cols[meter.timestamp_column], file=name, column=meter.timestamp_column, rows=rows, meter=meter),
        values=parse_numbers(cols[meter.value_column], file=name, column=meter.value_column, rows=rows),
        rows=rows,
    )


def _read_parquet(path: Path, meter: Meter, name: str) -> _FileData:
    file = name
    wanted = [meter.timestamp_column, meter.value_column]
    try:
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        missing = [c for c in wanted if c not in names]
        if missing:
            raise IngestError(
                f"{_where(file)}: missing column(s) {', '.join(repr(c) for c in missing)} "
                f"(file has {', '.join(repr(n) for n in names)})"
            )
        # Row group by row group (read_table cuts 128 Ki-row batches): a one-row-group file gives
        # one chunk per column, which reaches NumPy without a concatenation copy.
        table = pf.read(columns=list(dict.fromkeys(wanted)))
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{_where(file)}: not a readable Parquet file ({exc})") from None
    if table.num_rows == 0:
        raise IngestError(f"{_where(file)}: no data rows")
    rows = row_numbers(table.num_rows)
    return _FileData(
        times=_parse_time_column(table.column(meter.timestamp_column), file=file, column=meter.timestamp_column, rows=rows, meter=meter),
        values=parse_numbers(table.column(meter.value_column), file=file, column=meter.value_column, rows=rows),
        rows=rows,
    )


_READERS = {".csv": _read_csv, ".parquet": _read_parquet}


# --------------------------------------------------------------------------- cumulative registers


def _register_deltas(
    reg: npt.NDArray[np.float64], inst: npt.NDArray[np.int64], *, register_max: float, interval_us: int
) -> npt.NDArray[np.float64]:
    """Consecutive register differences, with rollovers unwrapped (see ROLLOVER_* above)."""
    d = np.diff(reg)
    elapsed = np.maximum(np.diff(inst) / interval_us, 1.0)
    wrapped = (register_max - reg[:-1]) + reg[1:]
    up = d >= 0
    roll = ~up & (wrapped <= ROLLOVER_MAX_FRACTION * register_max)
    if up.any():
        peak = float(np.max(d[up] / elapsed[up]))
        if peak > 0:
            roll &= wrapped / elapsed <= ROLLOVER_RATE_FACTOR * peak
    return np.where(roll, wrapped, d)


# --------------------------------------------------------------------------- public API


_UTC_US = pd.DatetimeTZDtype("us", "UTC")


def utc_datetime_array(us: npt.NDArray[np.int64]) -> pd.api.extensions.ExtensionArray:
    """A ``datetime64[us, UTC]`` array over UTC microseconds, without copying them."""
    try:
        return pd.arrays.DatetimeArray._simple_new(us.view("M8[us]"), dtype=_UTC_US)
    except (AttributeError, TypeError):  # pragma: no cover - other pandas versions
        return pd.Series(us.view("M8[us]")).dt.tz_localize("UTC").array


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "meter_id": pd.Series([], dtype="category"),
            "ts": pd.Series([], dtype="datetime64[us, UTC]"),
            "value": pd.Series([], dtype="float64"),
            "unit": pd.Series([], dtype="category"),
            "register": pd.Series([], dtype="float64"),
            "source_file": pd.Series([], dtype="category"),
            "source_row": pd.Series([], dtype="int64"),
        }
    )


@lru_cache(maxsize=4096)
def _categories(values: tuple[str, ...]) -> pd.CategoricalDtype:
    """One dtype per category list (building one validates its categories: a fleet reads the same
    meter ids, units and file names over and over)."""
    return pd.CategoricalDtype(list(values))


def read_meter_files(files: Sequence[Path], *, meter: Meter, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a meter's files (``.csv`` or ``.parquet``, chosen by suffix) into tidy readings.

    ``names``: the file names to use (format by suffix, ``source_file``, error messages) when the
    paths are not the original files (e.g. content-addressed blobs); default: each path's name.

    Files are read in the order given and their rows concatenated; the result is sorted by ``ts``
    (stable, so repeated intervals keep file order). Values are converted from ``meter.unit`` to
    kWh, timestamps to UTC interval starts (``timestamp_label: end`` moves them back by one
    interval).

    Interval meters: one output row per input row; an empty value cell gives NaN (the data
    contract decides what to do with it).

    Cumulative meters (``reading: cumulative``): each row is a register snapshot taken at the end of
    the interval its timestamp labels. Snapshots are ordered by that instant and each output row is
    the difference to the previous snapshot, stamped with the previous snapshot's instant (the
    start of the interval the difference covers); ``register`` is the later snapshot. Consequences:

    * the first snapshot only sets the baseline and emits no row, so N snapshots give N - 1 rows;
    * a decrease is a rollover, delta = (register_max - previous) + current, only when that is a
      plausible amount of energy (:data:`ROLLOVER_MAX_FRACTION`, :data:`ROLLOVER_RATE_FACTOR`);
      any other decrease stays a negative delta so the contract quarantines it;
    * a delta spanning missing snapshots covers the whole gap in one row;
    * empty register cells and exact repeats (same instant, same reading) are skipped;
    * a reading below 0 or at/above ``register_max`` is an error (wrong unit or register_max).

    Raises :class:`IngestError` naming the file and row for anything it cannot read.
    """
    if not files:
        raise IngestError(f"meter {meter.id}: no files to read")
    if names is None:
        names = [Path(f).name for f in files]
    elif len(names) != len(files):
        raise IngestError(f"meter {meter.id}: {len(names)} file names for {len(files)} files")
    parts: list[_FileData] = []
    for f, name in zip(files, names):
        suffix = PurePath(name).suffix
        reader = _READERS.get(suffix.lower())
        if reader is None:
            raise IngestError(f"{_where(name)}: unsupported file type {suffix or '(none)'!r} for meter {meter.id} (use .csv or .parquet)")
        parts.append(reader(Path(f), meter, name))

    names = np.array(list(names), dtype=object)
    if len(parts) == 1:  # one file (the usual case): its arrays as they are, no concatenation copies
        (part,) = parts
        file_idx: npt.NDArray[np.int32] | None = None
        rows, values, ts = part.rows, part.values, part.times.us
        if part.times.local:
            ts = _localize(ts, tz=meter.timezone, meter_id=meter.id, files=np.broadcast_to(names[:1], (len(ts),)), rows=rows)
    else:
        file_idx = np.concatenate([np.full(len(p.rows), i, dtype=np.int32) for i, p in enumerate(parts)])
        rows = np.concatenate([p.rows for p in parts])
        values = np.concatenate([p.values for p in parts])
        ts = np.concatenate([p.times.us for p in parts])
        local = np.concatenate([np.full(len(p.rows), p.times.local) for p in parts])
        if local.any():
            sel = np.flatnonzero(local)
            ts[sel] = _localize(ts[sel], tz=meter.timezone, meter_id=meter.id, files=names[file_idx[sel]], rows=rows[sel])

    interval_us = meter.interval_minutes * _US_PER_MINUTE
    factor = UNIT_TO_KWH[meter.unit]
    label_end = meter.timestamp_label == "end"

    if meter.reading is ReadingKind.cumulative:
        assert meter.register_max is not None  # guaranteed by the Meter model
        inst = ts if label_end else ts + interval_us  # the snapshot instant: end of the labelled interval
        if file_idx is None:
            file_idx = np.zeros(len(rows), dtype=np.int32)
        keep = ~np.isnan(values)
        bad = np.flatnonzero(keep & ((values < 0) | (values >= meter.register_max)))
        if len(bad):
            i = bad[0]
            raise IngestError(
                f"{_where(names[file_idx[i]], int(rows[i]))}: register reading {values[i]:g} {meter.unit} is outside "
                f"[0, register_max={meter.register_max:g}) of meter {meter.id}{_and_more(len(bad))}"
            )
        order = np.flatnonzero(keep)
        order = order[np.argsort(inst[order], kind="stable")]
        inst, reg, rows, file_idx = inst[order], values[order], rows[order], file_idx[order]
        repeat = np.zeros(len(inst), dtype=bool)
        repeat[1:] = (inst[1:] == inst[:-1]) & (reg[1:] == reg[:-1])
        if repeat.any():
            inst, reg, rows, file_idx = inst[~repeat], reg[~repeat], rows[~repeat], file_idx[~repeat]
        if len(reg) < 2:
            return _empty_frame()
        delta = _register_deltas(reg, inst, register_max=meter.register_max, interval_us=interval_us)
        ts, values, register = inst[:-1], delta * factor, reg[1:] * factor
        rows, file_idx = rows[1:], file_idx[1:]
    else:
        if label_end:
            ts = ts - interval_us
        values = values * factor if factor != 1.0 else values
        register = np.broadcast_to(np.float64(np.nan), (len(values),))  # read-only, no allocation: interval meters have none
        if len(ts) > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
            order = np.argsort(ts, kind="stable")
            ts, values, rows = ts[order], values[order], rows[order]
            file_idx = None if file_idx is None else file_idx[order]

    n = len(ts)
    # Repeated text columns are categoricals (dictionary-encoded in Parquet): on fleet-size data,
    # per-row strings would dominate every later read, concat and group-by.
    uniq, file_codes = np.unique(np.asarray(list(names), dtype=object), return_inverse=True)
    zeros = np.zeros(n, dtype=np.int8)

    def categorical(codes: np.ndarray, categories: list[str]) -> pd.Categorical:
        # The codes are built here and in range: skip from_codes' O(rows) validation pass.
        return pd.Categorical.from_codes(codes, dtype=_categories(tuple(categories)), validate=False)

    if file_idx is None:  # one file: every row has its (only) code
        source_file = categorical(zeros, list(uniq))
    else:
        source_file = categorical(file_codes[np.asarray(file_idx, dtype=np.int64)], list(uniq))
    return pd.DataFrame(
        {
            "meter_id": categorical(zeros, [meter.id]),
            # UTC instants labelled UTC: a relabelling, not the copy tz_localize makes.
            "ts": pd.Series(utc_datetime_array(np.ascontiguousarray(ts, dtype=np.int64)), copy=False),
            "value": np.ascontiguousarray(values, dtype=np.float64),
            "unit": categorical(zeros, ["kWh"]),
            "register": register if register.strides == (0,) else np.ascontiguousarray(register, dtype=np.float64),
            "source_file": source_file,
            "source_row": np.ascontiguousarray(rows, dtype=np.int64),
        },
        copy=False,  # the arrays are fresh: no need to copy them into consolidated blocks
    )


def read_meter(spec: ProjectSpec, meter: Meter) -> pd.DataFrame:
    """Tidy readings of one meter of a project (its ``files`` glob, relative to the project file)."""
    return read_meter_files(spec.meter_files(meter), meter=meter)
