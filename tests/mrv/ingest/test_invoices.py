"""mrv.ingest.invoices: billing periods to half-open UTC intervals, units, error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mrv.errors import IngestError
from mrv.ingest import read_invoices
from mrv.ingest.invoices import INVOICE_COLUMNS
from mrv.project import CrossCheck, MonitoringPeriod


def write(tmp_path: Path, text: str, name: str = "invoices.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_periods_become_half_open_utc_intervals(tmp_path):
    f = write(tmp_path, "invoice_no,period_start,period_end,energy\nI-1,2023-01-01,2023-01-31,3543.511\nI-2,2023-02-01,2023-02-28,12.5\n")
    df = read_invoices(f, cross_check=CrossCheck(file="invoices.csv"), timezone="Asia/Kolkata")
    assert list(df.columns) == list(INVOICE_COLUMNS)
    assert str(df["period_start"].dtype) == "datetime64[us, UTC]" and str(df["period_end"].dtype) == "datetime64[us, UTC]"
    # Local midnight in Asia/Kolkata (+05:30) is 18:30 UTC the day before; the end is exclusive.
    assert df["period_start"].tolist() == [pd.Timestamp("2022-12-31 18:30", tz="UTC"), pd.Timestamp("2023-01-31 18:30", tz="UTC")]
    assert df["period_end"].tolist() == [pd.Timestamp("2023-01-31 18:30", tz="UTC"), pd.Timestamp("2023-02-28 18:30", tz="UTC")]
    assert df["energy_MWh"].tolist() == [3543.511, 12.5]
    assert df["direction"].tolist() == ["export", "export"]
    assert df["source_file"].tolist() == ["invoices.csv"] * 2
    assert df["source_row"].tolist() == [2, 3]
    assert df["source_row"].dtype == np.int64


def test_periods_line_up_with_the_monitoring_period(tmp_path):
    f = write(tmp_path, "period_start,period_end,energy\n2023-03-01,2023-11-30,1\n")
    df = read_invoices(f, cross_check=CrossCheck(file="x"), timezone="Europe/Berlin")
    mp = MonitoringPeriod(start="2023-03-01", end="2023-11-30", timezone="Europe/Berlin")
    assert df["period_start"].iloc[0] == pd.Timestamp(mp.start_utc)
    assert df["period_end"].iloc[0] == pd.Timestamp(mp.end_utc)


def test_kwh_and_import_direction(tmp_path):
    f = write(tmp_path, "period_start,period_end,energy\n2023-01-01,2023-01-31,1500\n")
    df = read_invoices(f, cross_check=CrossCheck(file="x", unit="kWh", direction="import"), timezone="UTC")
    assert df["energy_MWh"].tolist() == [1.5]
    assert df["direction"].tolist() == ["import"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("2023-01-01,2023-01-31,1\n2023-02-01,2023-02-30,2\n", r"^file inv\.csv row 3: period_end '2023-02-30' is not a date \(expected YYYY-MM-DD\)$"),
        ("01/01/2023,2023-01-31,1\n", r"^file inv\.csv row 2: period_start '01/01/2023' is not a date"),
        ("2023-01-01,2023-01-31,1\n2023-02-01,2023-02-28,lots\n", r"^file inv\.csv row 3: energy 'lots' in column 'energy' is not a number$"),
        ("2023-01-01,2023-01-31,\n", r"^file inv\.csv row 2: energy is empty$"),
        ("2023-01-31,2023-01-01,1\n", r"^file inv\.csv row 2: period_end 2023-01-01 is before period_start 2023-01-31$"),
        ("2023-01-01,2023-01-31\n", r"^file inv\.csv row 2: expected 3 columns like the header, found 2$"),
    ],
)
def test_bad_rows_are_named(tmp_path, body, message):
    f = write(tmp_path, "period_start,period_end,energy\n" + body, name="inv.csv")
    with pytest.raises(IngestError, match=message):
        read_invoices(f, cross_check=CrossCheck(file="inv.csv"), timezone="UTC")


def test_missing_column_and_empty_file(tmp_path):
    f = write(tmp_path, "start,end,energy\n2023-01-01,2023-01-31,1\n", name="inv.csv")
    with pytest.raises(IngestError, match=r"^file inv\.csv: missing column\(s\) 'period_start', 'period_end'"):
        read_invoices(f, cross_check=CrossCheck(file="inv.csv"), timezone="UTC")
    e = write(tmp_path, "period_start,period_end,energy\n", name="empty.csv")
    with pytest.raises(IngestError, match=r"^file empty\.csv: no data rows"):
        read_invoices(e, cross_check=CrossCheck(file="empty.csv"), timezone="UTC")
