"""mrv.ingest.meters: formats, units, time zones, cumulative registers and error messages."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrv.errors import IngestError, MRVError
from mrv.ingest import read_meter, read_meter_files
from mrv.ingest.meters import COLUMNS
from mrv.project import Meter, load_project


def meter(**kw) -> Meter:
    base = {"id": "EXP-1", "serial": "S1", "direction": "export", "accuracy_class": 0.5, "files": "*"}
    return Meter(**{**base, **kw})


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


def utc(*stamps: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(s, tz="UTC") for s in stamps]


def write_parquet(tmp_path: Path, name: str, columns: dict[str, pa.Array]) -> Path:
    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return path


# --------------------------------------------------------------------------- formats


def test_csv_interval_schema_and_values(tmp_path):
    f = write(
        tmp_path,
        "a.csv",
        """
        timestamp,value,quality
        2023-01-01T00:00:00,1.5,ok
        2023-01-01T00:15:00,2.25,ok
        2023-01-01T00:30:00,,missing
        """,
    )
    df = read_meter_files([f], meter=meter())
    assert list(df.columns) == list(COLUMNS)
    assert str(df["ts"].dtype) == "datetime64[us, UTC]"
    assert df["value"].dtype == np.float64 and df["register"].dtype == np.float64
    assert df["source_row"].dtype == np.int64
    for col in ("meter_id", "unit", "source_file"):
        assert pd.api.types.is_string_dtype(df[col]), col
    assert df["ts"].tolist() == utc("2023-01-01 00:00", "2023-01-01 00:15", "2023-01-01 00:30")
    assert df["value"].iloc[:2].tolist() == [1.5, 2.25]
    assert np.isnan(df["value"].iloc[2])  # an empty cell is a missing reading, for the contract to judge
    assert set(df["meter_id"]) == {"EXP-1"} and set(df["unit"]) == {"kWh"} and set(df["source_file"]) == {"a.csv"}
    assert df["register"].isna().all()
    assert df["source_row"].tolist() == [2, 3, 4]  # header is line 1


@pytest.mark.parametrize(("unit", "factor"), [("Wh", 1e-3), ("kWh", 1.0), ("MWh", 1e3)])
def test_units_are_normalised_to_kwh(tmp_path, unit, factor):
    f = write(tmp_path, "a.csv", "timestamp,value\n2023-01-01T00:00:00,1500\n")
    df = read_meter_files([f], meter=meter(unit=unit))
    assert df["value"].tolist() == [pytest.approx(1500 * factor)]
    assert df["unit"].tolist() == ["kWh"]


def test_rows_sorted_by_ts_stably_across_files_with_line_numbers(tmp_path):
    b = write(tmp_path, "b.csv", "timestamp,value\n2023-01-01T00:30:00,3\n2023-01-01T00:00:00,1\n")
    a = write(tmp_path, "a.csv", "timestamp,value\n2023-01-01T00:15:00,2\n2023-01-01T00:30:00,30\n")
    df = read_meter_files([b, a], meter=meter())
    assert df["ts"].tolist() == utc("2023-01-01 00:00", "2023-01-01 00:15", "2023-01-01 00:30", "2023-01-01 00:30")
    # The repeated interval keeps file order: b.csv first (given first), then a.csv.
    assert list(zip(df["source_file"], df["source_row"], df["value"], strict=True)) == [
        ("b.csv", 3, 1.0),
        ("a.csv", 2, 2.0),
        ("b.csv", 2, 3.0),
        ("a.csv", 3, 30.0),
    ]


def test_parquet_interval_utc_naive_and_text_timestamps(tmp_path):
    stamps = np.array(["2023-06-01T00:00", "2023-06-01T00:15"], dtype="M8[us]")
    aware = write_parquet(tmp_path, "aware.parquet", {"t": pa.array(stamps, pa.timestamp("us", tz="UTC")), "kwh": pa.array([1, 2], pa.int32())})
    m = meter(timestamp_column="t", value_column="kwh")
    df = read_meter_files([aware], meter=m)
    assert df["ts"].tolist() == utc("2023-06-01 00:00", "2023-06-01 00:15")
    assert df["value"].tolist() == [1.0, 2.0]
    assert df["source_row"].tolist() == [1, 2]  # Parquet: 1-based row number

    # Naive Parquet timestamps are wall-clock time in the meter's zone (CEST = UTC+2 in June).
    naive = write_parquet(tmp_path, "naive.parquet", {"t": pa.array(stamps.astype("M8[ns]")), "kwh": pa.array([1.0, 2.0])})
    df = read_meter_files([naive], meter=meter(timestamp_column="t", value_column="kwh", timezone="Europe/Berlin"))
    assert df["ts"].tolist() == utc("2023-05-31 22:00", "2023-05-31 22:15")

    text = write_parquet(tmp_path, "text.parquet", {"t": pa.array(["2023-06-01T02:00:00+02:00"]), "kwh": pa.array(["4.5"])})
    df = read_meter_files([text], meter=meter(timestamp_column="t", value_column="kwh", timezone="Europe/Berlin"))
    assert df["ts"].tolist() == utc("2023-06-01 00:00") and df["value"].tolist() == [4.5]


def test_parquet_zone_must_agree_with_meter(tmp_path):
    stamps = np.array(["2023-06-01T00:00"], dtype="M8[us]")
    f = write_parquet(tmp_path, "k.parquet", {"timestamp": pa.array(stamps, pa.timestamp("us", tz="Asia/Kolkata")), "value": pa.array([1.0])})
    assert read_meter_files([f], meter=meter(timezone="Asia/Kolkata"))["ts"].tolist() == utc("2023-06-01 00:00")
    with pytest.raises(IngestError, match=r"file k\.parquet row 1: timestamp offset \+05:30 disagrees with meter EXP-1's declared timezone UTC"):
        read_meter_files([f], meter=meter(timezone="UTC"))


def test_csv_and_parquet_files_of_one_meter_combine(tmp_path):
    c = write(tmp_path, "jan.csv", "timestamp,value\n2023-01-31T23:45:00,1\n")
    p = write_parquet(
        tmp_path, "feb.parquet", {"timestamp": pa.array(np.array(["2023-02-01T00:00"], dtype="M8[us]"), pa.timestamp("us", tz="UTC")), "value": pa.array([2.0])}
    )
    df = read_meter_files([c, p], meter=meter())
    assert df["source_file"].tolist() == ["jan.csv", "feb.parquet"]
    assert df["value"].tolist() == [1.0, 2.0]


def test_timestamp_label_end_moves_to_interval_start(tmp_path):
    f = write(tmp_path, "a.csv", "timestamp,value\n2023-01-01T00:15:00,1\n2023-01-01T00:30:00,2\n")
    df = read_meter_files([f], meter=meter(timestamp_label="end"))
    assert df["ts"].tolist() == utc("2023-01-01 00:00", "2023-01-01 00:15")
    hourly = read_meter_files([f], meter=meter(timestamp_label="end", interval_minutes=60))
    assert hourly["ts"].tolist() == utc("2022-12-31 23:15", "2022-12-31 23:30")


# --------------------------------------------------------------------------- time zones


def test_naive_local_time_across_the_october_fall_back(tmp_path):
    # Europe/Berlin, 29 Oct 2023: 03:00 CEST -> 02:00 CET, so 02:00-02:45 occurs twice.
    local = ["01:30", "01:45", "02:00", "02:15", "02:30", "02:45", "02:00", "02:15", "02:30", "02:45", "03:00"]
    f = write(tmp_path, "berlin.csv", "timestamp,value\n" + "".join(f"2023-10-29 {t},1\n" for t in local))
    df = read_meter_files([f], meter=meter(timezone="Europe/Berlin"))
    expected = pd.date_range("2023-10-28 23:30", periods=len(local), freq="15min", tz="UTC")
    assert df["ts"].tolist() == list(expected)
    assert df["source_row"].tolist() == list(range(2, len(local) + 2))


def test_naive_local_time_across_fall_back_with_end_labels_split_over_files(tmp_path):
    a = write(tmp_path, "a.csv", "timestamp,value\n2023-10-29 02:15,1\n2023-10-29 02:30,2\n2023-10-29 02:45,3\n")
    b = write(tmp_path, "b.csv", "timestamp,value\n2023-10-29 02:00,4\n2023-10-29 02:15,5\n")
    df = read_meter_files([a, b], meter=meter(timezone="Europe/Berlin", timestamp_label="end"))
    # 02:00 (second) CET = 01:00 UTC is the end of the interval starting 00:45 UTC.
    assert df["ts"].tolist() == list(pd.date_range("2023-10-29 00:00", periods=5, freq="15min", tz="UTC"))
    assert df["value"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_nonexistent_local_time_is_an_error_naming_the_row(tmp_path):
    f = write(tmp_path, "spring.csv", "timestamp,value\n2023-03-26 01:45,1\n2023-03-26 02:30,1\n2023-03-26 03:00,1\n")
    with pytest.raises(IngestError, match=r"file spring\.csv row 3: local time 2023-03-26 02:30:00 does not exist .*Europe/Berlin"):
        read_meter_files([f], meter=meter(timezone="Europe/Berlin"))


def test_unresolvable_ambiguous_local_time_is_an_error_naming_the_row(tmp_path):
    f = write(tmp_path, "fall.csv", "timestamp,value\n2023-10-29 01:45,1\n2023-10-29 02:30,1\n2023-10-29 03:00,1\n")
    with pytest.raises(IngestError, match=r"file fall\.csv row 3: local time 2023-10-29 02:30:00 is ambiguous .*Europe/Berlin"):
        read_meter_files([f], meter=meter(timezone="Europe/Berlin"))


def test_explicit_offsets_are_converted_to_utc(tmp_path):
    f = write(tmp_path, "k.csv", "timestamp,value\n2023-01-01T00:00:00+05:30,1\n2023-01-01T00:15:00+0530,2\n")
    df = read_meter_files([f], meter=meter(timezone="Asia/Kolkata"))
    assert df["ts"].tolist() == utc("2022-12-31 18:30", "2022-12-31 18:45")
    z = write(tmp_path, "z.csv", "timestamp,value\n2023-01-01T00:00:00Z,1\n2023-01-01 00:15:00+00:00,2\n")
    assert read_meter_files([z], meter=meter())["ts"].tolist() == utc("2023-01-01 00:00", "2023-01-01 00:15")


def test_explicit_offsets_follow_the_zone_across_dst(tmp_path):
    f = write(tmp_path, "b.csv", "timestamp,value\n2023-10-29T02:45:00+02:00,1\n2023-10-29T02:00:00+01:00,2\n")
    df = read_meter_files([f], meter=meter(timezone="Europe/Berlin"))
    assert df["ts"].tolist() == utc("2023-10-29 00:45", "2023-10-29 01:00")
    wrong = write(tmp_path, "w.csv", "timestamp,value\n2023-10-29T02:45:00+02:00,1\n2023-10-29T03:00:00+02:00,2\n")
    expected = r"file w\.csv row 3: timestamp offset \+02:00 disagrees with meter EXP-1's declared timezone Europe/Berlin \(UTC\+01:00"
    with pytest.raises(IngestError, match=expected):
        read_meter_files([wrong], meter=meter(timezone="Europe/Berlin"))


def test_offset_disagreeing_with_declared_zone(tmp_path):
    f = write(tmp_path, "x.csv", "timestamp,value\n2023-01-01T00:00:00+05:30,1\n")
    with pytest.raises(IngestError) as info:
        read_meter_files([f], meter=meter(timezone="UTC"))
    assert str(info.value).startswith("file x.csv row 2: timestamp offset +05:30 disagrees with meter EXP-1's declared timezone UTC")


def test_mixing_naive_and_offset_timestamps_in_a_file_is_an_error(tmp_path):
    f = write(tmp_path, "mix.csv", "timestamp,value\n2023-01-01T00:00:00Z,1\n2023-01-01T00:15:00,2\n")
    with pytest.raises(IngestError, match=r"file mix\.csv row 3: timestamp '2023-01-01T00:15:00' is without a UTC offset"):
        read_meter_files([f], meter=meter())


# --------------------------------------------------------------------------- cumulative registers


def cumulative_csv(tmp_path: Path, readings: list[tuple[str, float]], name: str = "reg.csv") -> Path:
    return write(tmp_path, name, "timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in readings))


def test_cumulative_deltas_with_one_rollover(tmp_path):
    f = cumulative_csv(
        tmp_path,
        [("2023-01-01T00:00", 990.0), ("2023-01-01T00:15", 994.0), ("2023-01-01T00:30", 998.5), ("2023-01-01T00:45", 3.5), ("2023-01-01T01:00", 8.0)],
    )
    df = read_meter_files([f], meter=meter(reading="cumulative", register_max=1000, timestamp_label="end"))
    # The first reading is the baseline: 5 readings -> 4 deltas, each stamped with the start of its interval.
    assert df["ts"].tolist() == utc("2023-01-01 00:00", "2023-01-01 00:15", "2023-01-01 00:30", "2023-01-01 00:45")
    assert df["value"].tolist() == pytest.approx([4.0, 4.5, 5.0, 4.5])  # 998.5 -> 3.5 wraps: (1000 - 998.5) + 3.5
    assert df["register"].tolist() == [994.0, 998.5, 3.5, 8.0]
    assert df["source_row"].tolist() == [3, 4, 5, 6]


def test_cumulative_label_start_means_reading_at_interval_end(tmp_path):
    f = cumulative_csv(tmp_path, [("2023-01-01T00:00", 10.0), ("2023-01-01T00:15", 12.0)])
    df = read_meter_files([f], meter=meter(reading="cumulative", register_max=1000, timestamp_label="start"))
    # Row "00:00" reports the register at 00:15, row "00:15" the register at 00:30: one delta for 00:15-00:30.
    assert df["ts"].tolist() == utc("2023-01-01 00:15")
    assert df["value"].tolist() == [2.0]


def test_cumulative_decrease_that_is_not_a_rollover_stays_negative(tmp_path):
    f = cumulative_csv(tmp_path, [("2023-01-01T00:00", 500.0), ("2023-01-01T00:15", 502.0), ("2023-01-01T00:30", 450.0), ("2023-01-01T00:45", 452.0)])
    df = read_meter_files([f], meter=meter(reading="cumulative", register_max=1000, timestamp_label="end"))
    assert df["value"].tolist() == pytest.approx([2.0, -52.0, 2.0])


def test_cumulative_reset_near_the_top_is_not_taken_for_a_rollover(tmp_path):
    # 950 -> 40 would wrap to 90 kWh in one interval, 45x the largest increase seen (2 kWh): a reset.
    readings = [("2023-01-01T00:00", 946.0), ("2023-01-01T00:15", 948.0), ("2023-01-01T00:30", 950.0), ("2023-01-01T00:45", 40.0), ("2023-01-01T01:00", 41.0)]
    df = read_meter_files([cumulative_csv(tmp_path, readings)], meter=meter(reading="cumulative", register_max=1000, timestamp_label="end"))
    assert df["value"].tolist() == pytest.approx([2.0, 2.0, -910.0, 1.0])


def test_cumulative_rollover_across_a_gap_and_in_wh(tmp_path):
    # Four intervals missing between 00:15 and 01:15; the wrap (20 Wh over 4 intervals) is plausible.
    readings = [("2023-01-01T00:00", 980.0), ("2023-01-01T00:15", 985.0), ("2023-01-01T01:15", 5.0), ("2023-01-01T01:30", 10.0)]
    df = read_meter_files([cumulative_csv(tmp_path, readings)], meter=meter(reading="cumulative", register_max=1000, unit="Wh", timestamp_label="end"))
    assert df["ts"].tolist() == utc("2023-01-01 00:00", "2023-01-01 00:15", "2023-01-01 01:15")
    assert df["value"].tolist() == pytest.approx([0.005, 0.020, 0.005])  # kWh
    assert df["register"].tolist() == pytest.approx([0.985, 0.005, 0.010])


def test_cumulative_across_files_unordered_with_repeat_and_empty_cell(tmp_path):
    b = cumulative_csv(tmp_path, [("2023-01-01T00:30", 30.0), ("2023-01-01T00:45", None)], name="b.csv")
    a = cumulative_csv(tmp_path, [("2023-01-01T00:00", 10.0), ("2023-01-01T00:15", 20.0), ("2023-01-01T00:15", 20.0)], name="a.csv")
    b.write_text(b.read_text().replace("None", ""))
    df = read_meter_files([b, a], meter=meter(reading="cumulative", register_max=1000, timestamp_label="end"))
    assert df["ts"].tolist() == utc("2023-01-01 00:00", "2023-01-01 00:15")
    assert df["value"].tolist() == [10.0, 10.0]
    assert list(zip(df["source_file"], df["source_row"], strict=True)) == [("a.csv", 3), ("b.csv", 2)]


def test_cumulative_single_reading_gives_no_rows(tmp_path):
    f = cumulative_csv(tmp_path, [("2023-01-01T00:00", 10.0)])
    df = read_meter_files([f], meter=meter(reading="cumulative", register_max=1000))
    assert df.empty and list(df.columns) == list(COLUMNS)
    assert str(df["ts"].dtype) == "datetime64[us, UTC]"


def test_cumulative_reading_outside_register_range_is_an_error(tmp_path):
    f = cumulative_csv(tmp_path, [("2023-01-01T00:00", 10.0), ("2023-01-01T00:15", 1200.0)])
    with pytest.raises(IngestError, match=r"file reg\.csv row 3: register reading 1200 kWh is outside \[0, register_max=1000\)"):
        read_meter_files([f], meter=meter(reading="cumulative", register_max=1000))


def test_parquet_cumulative(tmp_path):
    stamps = np.array(["2023-01-01T00:00", "2023-01-01T00:15", "2023-01-01T00:30"], dtype="M8[us]")
    registers = pa.array([99_999_990.0, 99_999_999.5, 7.25])
    f = write_parquet(tmp_path, "r.parquet", {"timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")), "value": registers})
    df = read_meter_files([f], meter=meter(reading="cumulative", register_max=100_000_000, timestamp_label="end"))
    assert df["value"].tolist() == pytest.approx([9.5, 7.75])
    assert df["source_row"].tolist() == [2, 3]


# --------------------------------------------------------------------------- bad input


def test_text_in_numeric_column_names_file_row_and_value(tmp_path):
    rows = "".join(f"2023-01-01T{h:02d}:00:00,{h}\n" for h in range(15))
    f = write(tmp_path, "a.csv", "timestamp,value\n" + rows + "2023-01-01T15:00:00,abc\n2023-01-01T16:00:00,x\n")
    with pytest.raises(IngestError) as info:
        read_meter_files([f], meter=meter())
    assert str(info.value) == "file a.csv row 17: value 'abc' in column 'value' is not a number (and 1 more row(s))"


def test_row_numbers_are_physical_lines_despite_blank_lines(tmp_path):
    f = write(tmp_path, "blank.csv", "timestamp,value\n2023-01-01T00:00:00,1\n\n\n2023-01-01T00:15:00,oops\n")
    with pytest.raises(IngestError, match=r"file blank\.csv row 5: value 'oops'"):
        read_meter_files([f], meter=meter())
    ok = write(tmp_path, "ok.csv", "timestamp,value\r\n\r\n2023-01-01T00:00:00,1\r\n\r\n2023-01-01T00:15:00,2\r\n\r\n")
    assert read_meter_files([ok], meter=meter())["source_row"].tolist() == [3, 5]


def test_row_numbers_with_quoted_newlines(tmp_path):
    f = write(tmp_path, "q.csv", 'timestamp,value,note\n2023-01-01T00:00:00,1,"two\nlines"\n2023-01-01T00:15:00,2,x\n')
    assert read_meter_files([f], meter=meter())["source_row"].tolist() == [2, 4]


def test_wrong_column_count_names_the_line(tmp_path):
    f = write(tmp_path, "bad.csv", "timestamp,value\n2023-01-01T00:00:00,1\n2023-01-01T00:15:00,2,3\n")
    with pytest.raises(IngestError, match=r"^file bad\.csv row 3: expected 2 columns like the header, found 3$"):
        read_meter_files([f], meter=meter())


def test_missing_column_is_named(tmp_path):
    f = write(tmp_path, "a.csv", "time;value\n2023-01-01T00:00:00;1\n")
    with pytest.raises(IngestError, match=r"^file a\.csv: missing column\(s\) 'timestamp', 'value' \(header has 'time;value'\)$"):
        read_meter_files([f], meter=meter())


@pytest.mark.parametrize("bad", ["2023-13-01T00:00:00", "yesterday", "01/02/2023 00:15"])
def test_unparseable_timestamp_names_the_row(tmp_path, bad):
    f = write(tmp_path, "t.csv", f"timestamp,value\n2023-01-01T00:00:00,1\n{bad},2\n")
    with pytest.raises(IngestError, match=rf"^file t\.csv row 3: timestamp '{bad}' in column 'timestamp' is not an ISO 8601 date-time"):
        read_meter_files([f], meter=meter())


def test_empty_timestamp_names_the_row(tmp_path):
    f = write(tmp_path, "t.csv", "timestamp,value\n2023-01-01T00:00:00,1\n,2\n")
    with pytest.raises(IngestError, match=r"^file t\.csv row 3: empty timestamp in column 'timestamp'$"):
        read_meter_files([f], meter=meter())


def test_infinite_value_is_rejected(tmp_path):
    f = write(tmp_path, "i.csv", "timestamp,value\n2023-01-01T00:00:00,inf\n")
    with pytest.raises(IngestError, match=r"^file i\.csv row 2: value inf in column 'value' is not a finite number$"):
        read_meter_files([f], meter=meter())


@pytest.mark.parametrize(("content", "message"), [(b"", "file is empty"), (b"\n\n", "file is empty"), (b"timestamp,value\n", "no data rows")])
def test_empty_files(tmp_path, content, message):
    f = tmp_path / "e.csv"
    f.write_bytes(content)
    with pytest.raises(IngestError, match=rf"^file e\.csv: {message}"):
        read_meter_files([f], meter=meter())


def test_not_utf8(tmp_path):
    f = tmp_path / "l1.csv"
    f.write_bytes("timestamp,value\n2023-01-01T00:00:00,1\n2023-01-01T00:15:00,\xe9\n".encode("latin-1"))
    with pytest.raises(IngestError, match=r"file l1\.csv: not UTF-8"):
        read_meter_files([f], meter=meter())


def test_unknown_suffix(tmp_path):
    f = write(tmp_path, "a.xlsx", "whatever")
    with pytest.raises(IngestError, match=r"^file a\.xlsx: unsupported file type '\.xlsx' for meter EXP-1"):
        read_meter_files([f], meter=meter())


def test_no_files(tmp_path):
    with pytest.raises(IngestError, match="meter EXP-1: no files"):
        read_meter_files([], meter=meter())


def test_corrupt_parquet(tmp_path):
    garbage = tmp_path / "g.parquet"
    garbage.write_bytes(b"PAR1 this is not parquet at all")
    with pytest.raises(IngestError, match=r"^file g\.parquet: not a readable Parquet file"):
        read_meter_files([garbage], meter=meter())
    good = write_parquet(tmp_path, "t.parquet", {"timestamp": pa.array(["2023-01-01T00:00:00"] * 1000), "value": pa.array(np.arange(1000.0))})
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(good.read_bytes()[:-50])
    with pytest.raises(IngestError, match=r"^file truncated\.parquet: not a readable Parquet file"):
        read_meter_files([truncated], meter=meter())


def test_parquet_bad_rows_and_columns(tmp_path):
    f = write_parquet(tmp_path, "p.parquet", {"timestamp": pa.array(["2023-01-01T00:00:00", "2023-01-01T00:15:00"]), "value": pa.array(["1", "n/a?"])})
    with pytest.raises(IngestError, match=r"^file p\.parquet row 2: value 'n/a\?' in column 'value' is not a number$"):
        read_meter_files([f], meter=meter())
    with pytest.raises(IngestError, match=r"^file p\.parquet: missing column\(s\) 'kwh' \(file has 'timestamp', 'value'\)$"):
        read_meter_files([f], meter=meter(value_column="kwh"))
    d = write_parquet(tmp_path, "d.parquet", {"timestamp": pa.array([1], pa.int64()), "value": pa.array([1.0])})
    with pytest.raises(IngestError, match=r"^file d\.parquet: column 'timestamp' has type int64, expected a timestamp"):
        read_meter_files([d], meter=meter())
    n = write_parquet(tmp_path, "n.parquet", {"timestamp": pa.array([None, 0], pa.timestamp("us", tz="UTC")), "value": pa.array([1.0, 2.0])})
    with pytest.raises(IngestError, match=r"^file n\.parquet row 1: empty timestamp"):
        read_meter_files([n], meter=meter())


def test_error_in_a_later_file_names_that_file_and_leaves_files_untouched(tmp_path):
    good = write(tmp_path, "good.csv", "timestamp,value\n2023-01-01T00:00:00,1\n")
    bad = write(tmp_path, "bad.csv", "timestamp,value\n2023-01-01T00:15:00,-\n")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (good, bad)}
    with pytest.raises(MRVError, match=r"^file bad\.csv row 2: value '-'"):
        read_meter_files([good, bad], meter=meter())
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (good, bad)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "good.csv"]


# --------------------------------------------------------------------------- project helper


def test_read_meter_uses_the_project_glob(tmp_path):
    (tmp_path / "data").mkdir()
    write(tmp_path, "data/m-02.csv", "ts,kwh\n2023-02-01T00:00:00,2\n")
    write(tmp_path, "data/m-01.csv", "ts,kwh\n2023-01-01T00:00:00,1\n")
    write(tmp_path, "data/notes.txt", "not a meter file")
    project = write(
        tmp_path,
        "project.yaml",
        """
        project: {id: P-1, name: Test, type: wind}
        methodology: "CDM:ACM0002:22.0"
        boundary: {country: IN, geometry: {type: Point, coordinates: [77.5, 8.9]}}
        monitoring_period: {start: 2023-01-01, end: 2023-12-31, timezone: UTC}
        installed_capacity: {value: 1, unit: MW}
        data_sources:
          meters:
            - {id: M-1, serial: S, direction: export, accuracy_class: 0.5, files: "data/m-*.csv", timestamp_column: ts, value_column: kwh}
        """,
    )
    spec = load_project(project)
    df = read_meter(spec, spec.meter("M-1"))
    assert df["source_file"].tolist() == ["m-01.csv", "m-02.csv"]
    assert df["meter_id"].tolist() == ["M-1", "M-1"]


def test_names_stand_for_paths_without_the_original_name(tmp_path):
    """Content-addressed blobs have no suffix: ``names`` gives the format, source_file and the
    file named in errors, and the frame equals the one read from the original files."""
    csv = write(tmp_path, "jan.csv", """
        timestamp,kwh
        2024-01-01T00:00:00Z,1.5
        2024-01-01T00:15:00Z,2.5
    """)
    pq_file = write_parquet(tmp_path, "feb.parquet", {
        "timestamp": pa.array(pd.to_datetime(["2024-02-01T00:00Z"]), type=pa.timestamp("us", tz="UTC")),
        "kwh": pa.array([3.0]),
    })
    blobs = []
    for i, src in enumerate([csv, pq_file]):
        blob = tmp_path / f"blob{i}"
        blob.write_bytes(src.read_bytes())
        blobs.append(blob)
    m = meter(timestamp_column="timestamp", value_column="kwh")
    expected = read_meter_files([csv, pq_file], meter=m)
    got = read_meter_files(blobs, meter=m, names=["jan.csv", "feb.parquet"])
    pd.testing.assert_frame_equal(got, expected)
    assert sorted(got["source_file"].astype(str).unique()) == ["feb.parquet", "jan.csv"]

    bad = tmp_path / "blob-bad"
    bad.write_text("timestamp,kwh\n2024-01-01T00:00:00Z,abc\n")
    with pytest.raises(IngestError, match=r"march\.csv.*row 2"):
        read_meter_files([bad], meter=m, names=["march.csv"])
    with pytest.raises(IngestError, match="2 file names for 1 files"):
        read_meter_files([bad], meter=m, names=["a.csv", "b.csv"])
