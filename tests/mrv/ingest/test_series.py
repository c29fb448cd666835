"""mrv.ingest.series: instrument columns and device fleets to tidy long readings, with errors
naming file and row."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrv.errors import IngestError
from mrv.ingest.series import DEVICE_COLUMNS, INSTRUMENT_COLUMNS, read_device_files, read_device_registry, read_instrument_files
from mrv.project import DeviceFleet, Instrument


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


def instrument(**kw) -> Instrument:
    base = {"id": "TT-1", "quantity": "T_flare", "unit": "degC", "files": "*", "column": "t_c", "interval_minutes": 1}
    return Instrument(**{**base, **kw})


FLARE_CSV = """
    timestamp,t_c,flow
    2023-01-01T00:00:00,800.5,100
    2023-01-01T00:01:00,,101
    2023-01-01T00:02:00,300,102
"""


def test_instrument_column_is_read_and_converted_to_the_methodology_unit(tmp_path: Path) -> None:
    f = write(tmp_path, "flare.csv", FLARE_CSV)
    df = read_instrument_files([f], instrument=instrument(), unit="K")
    assert tuple(df.columns) == INSTRUMENT_COLUMNS
    assert df["instrument_id"].tolist() == ["TT-1"] * 3
    assert df["quantity"].tolist() == ["T_flare"] * 3
    assert df["unit"].tolist() == ["K"] * 3
    # Celsius to kelvin is an offset conversion, not a factor: 800.5 degC = 1073.65 K.
    np.testing.assert_allclose(df["value"].to_numpy()[[0, 2]], [1073.65, 573.15])
    assert np.isnan(df["value"].iloc[1])  # empty cell kept as missing for the contract
    assert df["source_row"].tolist() == [2, 3, 4]
    assert df["ts"].iloc[0] == pd.Timestamp("2023-01-01T00:00", tz="UTC")


def test_two_instruments_share_one_file(tmp_path: Path) -> None:
    f = write(tmp_path, "flare.csv", FLARE_CSV)
    flow = read_instrument_files([f], instrument=instrument(id="FT-1", quantity="V", unit="m3/h", column="flow"), unit="m3/h")
    assert flow["value"].tolist() == [100.0, 101.0, 102.0]


def test_local_time_and_end_label_become_utc_interval_starts(tmp_path: Path) -> None:
    f = write(tmp_path, "f.csv", """
        timestamp,t_c
        2023-06-01T05:31:00,1
        2023-06-01T05:32:00,2
    """)
    df = read_instrument_files([f], instrument=instrument(timezone="Asia/Kolkata", timestamp_label="end"), unit="degC")
    assert df["ts"].tolist() == [pd.Timestamp("2023-06-01T00:00", tz="UTC"), pd.Timestamp("2023-06-01T00:01", tz="UTC")]


def test_instrument_errors_name_file_row_and_column(tmp_path: Path) -> None:
    f = write(tmp_path, "bad.csv", """
        timestamp,t_c
        2023-01-01T00:00:00,1
        2023-01-01T00:01:00,hot
    """)
    with pytest.raises(IngestError, match=r"bad.csv row 3: value 'hot' in column 't_c' is not a number"):
        read_instrument_files([f], instrument=instrument(), unit="degC")
    g = write(tmp_path, "nocol.csv", "timestamp,x\n2023-01-01T00:00:00,1\n")
    with pytest.raises(IngestError, match=r"nocol.csv: missing column\(s\) 't_c'"):
        read_instrument_files([g], instrument=instrument(), unit="degC")
    with pytest.raises(IngestError, match=r"instrument TT-1 \(T_flare\): cannot convert 'degC' to 'm3/h'"):
        read_instrument_files([write(tmp_path, "ok.csv", FLARE_CSV)], instrument=instrument(), unit="m3/h")


REGISTRY = """
    device_id,serial,commissioned,accuracy_class,calibration_valid_from,calibration_valid_to,household
    D2,S2,2023-02-01,1.0,2023-01-01,2024-12-31,H2
    D1,S1,2023-01-01,2.0,2023-01-01,2023-06-30,H1
"""


def test_device_registry_parses_dates_and_keeps_extra_columns(tmp_path: Path) -> None:
    reg = read_device_registry(write(tmp_path, "devices.csv", REGISTRY))
    assert reg["device_id"].tolist() == ["D2", "D1"]
    assert reg["commissioned"].tolist() == [date(2023, 2, 1), date(2023, 1, 1)]
    assert reg["accuracy_class"].tolist() == [1.0, 2.0]
    assert reg["household"].tolist() == ["H2", "H1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (REGISTRY.replace("D1,S1", "D2,S1"), r"devices.csv row 3: device 'D2' is listed more than once"),
        (REGISTRY.replace("2023-02-01", "Feb 1"), r"devices.csv row 2: commissioned 'Feb 1' is not an ISO date"),
        (REGISTRY.replace(",2.0,", ",-1,"), r"devices.csv row 3: accuracy_class '-1' is not a percentage"),
        ("device_id,serial\nD1,S1\n", r"missing column\(s\) commissioned, accuracy_class"),
    ],
)
def test_device_registry_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(IngestError, match=message):
        read_device_registry(write(tmp_path, "devices.csv", text))


def fleet(**kw) -> DeviceFleet:
    return DeviceFleet(**{"registry": "devices.csv", "files": "*.parquet", "interval_minutes": 15, **kw})


def test_device_files_are_merged_sorted_by_device_then_time(tmp_path: Path) -> None:
    t0 = np.datetime64("2023-01-01T00:00", "us")
    q = np.timedelta64(15, "m")
    a = tmp_path / "a.parquet"
    b = tmp_path / "b.parquet"
    pq.write_table(pa.table({"device_id": ["D2", "D1", "D2"], "timestamp": pa.array(np.array([t0 + q, t0, t0])).cast(pa.timestamp("us", tz="UTC")), "value": [0.2, 0.1, 0.3]}), a)
    pq.write_table(pa.table({"device_id": ["D1", "X9"], "timestamp": pa.array(np.array([t0 + q, t0])).cast(pa.timestamp("us", tz="UTC")), "value": [0.4, 9.0]}), b)
    df = read_device_files([a, b], fleet=fleet(unit="Wh"))
    assert tuple(df.columns) == DEVICE_COLUMNS
    assert df["device_id"].tolist() == ["D1", "D1", "D2", "D2", "X9"]  # unknown X9 kept for the contract
    assert df["value"].tolist() == pytest.approx([0.0001, 0.0004, 0.0003, 0.0002, 0.009])  # Wh -> kWh
    assert df["source_file"].tolist() == ["a.parquet", "b.parquet", "a.parquet", "a.parquet", "b.parquet"]
    assert df["source_row"].tolist() == [2, 1, 3, 1, 2]
    assert df["ts"].is_monotonic_increasing is False and df.groupby("device_id", observed=True)["ts"].apply(lambda s: s.is_monotonic_increasing).all()


def test_device_file_errors_name_file_and_row(tmp_path: Path) -> None:
    f = write(tmp_path, "fleet.csv", """
        device_id,timestamp,value
        D1,2023-01-01T00:00:00,0.1
        ,2023-01-01T00:15:00,0.1
    """)
    with pytest.raises(IngestError, match=r"fleet.csv row 3: empty device_id"):
        read_device_files([f], fleet=fleet())
    g = write(tmp_path, "fleet2.csv", """
        device_id,timestamp,value
        D1,2023-01-01T00:00:00,0.1
        D1,yesterday,0.1
    """)
    with pytest.raises(IngestError, match=r"fleet2.csv row 3: timestamp 'yesterday'"):
        read_device_files([g], fleet=fleet())
