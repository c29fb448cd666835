"""Sales invoices (a cross-check of metered energy) to a tidy frame of billing periods.

The CSV has one row per invoice: ``period_start,period_end,energy`` with inclusive local calendar
dates (``YYYY-MM-DD``) and the energy in ``CrossCheck.unit``; other columns are ignored. The
output follows ``docs/internal-interfaces.md``::

    period_start  datetime64[us, UTC]   local midnight starting the first day
    period_end    datetime64[us, UTC]   local midnight after the last day (exclusive)
    energy_MWh    float64
    direction     str                   CrossCheck.direction ("export" / "import")
    source_file   str
    source_row    int64                 1-based line number (header = line 1)

Rows keep their file order; overlapping periods are allowed (a credit note may correct a month).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from mrv.errors import IngestError
from mrv.ingest.meters import parse_numbers, read_csv_columns
from mrv.project import CrossCheck

__all__ = ["INVOICE_COLUMNS", "read_invoices"]

INVOICE_COLUMNS: tuple[str, ...] = ("period_start", "period_end", "energy_MWh", "direction", "source_file", "source_row")
_TO_MWH = {"kWh": 1e-3, "MWh": 1.0}


def _local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    # Same convention as MonitoringPeriod.start_utc, so invoice and monitoring periods line up.
    return datetime.combine(day, time(0), tz).astimezone(timezone.utc)


def _dates(arr: pa.ChunkedArray, *, file: str, column: str, rows: np.ndarray) -> pd.Series:
    text = pd.Series(pd.array(arr, dtype="str"))
    parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        i = bad[0]
        shown = "(empty)" if pd.isna(text.iloc[i]) else repr(text.iloc[i])
        raise IngestError(f"file {file} row {int(rows[i])}: {column} {shown} is not a date (expected YYYY-MM-DD)")
    return parsed.dt.date


def read_invoices(path: Path, *, cross_check: CrossCheck, timezone: str) -> pd.DataFrame:
    """Read an invoices CSV; ``timezone`` is the zone of its calendar dates (the monitoring period's).

    Raises :class:`IngestError` naming the file and row for a malformed file, a missing column, a
    date that is not ``YYYY-MM-DD``, an energy that is not a number, or a period ending before it
    starts.
    """
    path = Path(path)
    file = path.name
    cols, rows = read_csv_columns(path, ["period_start", "period_end", "energy"])
    starts = _dates(cols["period_start"], file=file, column="period_start", rows=rows)
    ends = _dates(cols["period_end"], file=file, column="period_end", rows=rows)
    energy = parse_numbers(cols["energy"], file=file, column="energy", rows=rows, label="energy")
    missing = np.flatnonzero(np.isnan(energy))
    if len(missing):
        raise IngestError(f"file {file} row {int(rows[missing[0]])}: energy is empty")
    backwards = np.flatnonzero((ends < starts).to_numpy())
    if len(backwards):
        i = backwards[0]
        raise IngestError(f"file {file} row {int(rows[i])}: period_end {ends.iloc[i]} is before period_start {starts.iloc[i]}")

    tz = ZoneInfo(timezone)
    # A handful of distinct dates (one per billing period): converting each once is exact and cheap.
    start_map = {d: _local_midnight_utc(d, tz) for d in set(starts)}
    end_map = {d: _local_midnight_utc(d + timedelta(days=1), tz) for d in set(ends)}
    n = len(rows)
    return pd.DataFrame(
        {
            "period_start": pd.Series(pd.DatetimeIndex([start_map[d] for d in starts]).as_unit("us")).dt.tz_convert("UTC"),
            "period_end": pd.Series(pd.DatetimeIndex([end_map[d] for d in ends]).as_unit("us")).dt.tz_convert("UTC"),
            "energy_MWh": energy * _TO_MWH[cross_check.unit],
            "direction": pd.Series([cross_check.direction.value] * n, dtype="str"),
            "source_file": pd.Series([file] * n, dtype="str"),
            "source_row": rows.astype(np.int64),
        }
    )
