"""Fixtures for the data-contract tests: small deterministic meters, periods and readings.

The helpers are reached through the ``td`` fixture (test modules here are not importable by name).
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pytest
from mrv.contracts import ContractContext, load_contract
from mrv.project import Calibration, Meter

PERIOD_START = datetime(2023, 1, 1, tzinfo=timezone.utc)
PERIOD_END = datetime(2023, 1, 5, tzinfo=timezone.utc)  # exclusive: 4 days, 384 intervals of 15 min
CAPACITY_KW = 1000.0  # -> 262.5 kWh per 15 min with the contract's 5 % tolerance
CALIBRATED = (Calibration(valid_from=date(2022, 6, 1), valid_to=date(2023, 6, 1)),)


def meter(id_: str, *, direction: str = "export", reading: str = "interval", **kw) -> Meter:
    extra = {"register_max": 1e9} if reading == "cumulative" else {}
    return Meter(
        id=id_, serial=f"SN-{id_}", direction=direction, accuracy_class=0.5, files=f"{id_}/*.csv",
        reading=reading, calibrations=kw.pop("calibrations", CALIBRATED), **extra, **kw,
    )


METERS = (meter("EXP-1"), meter("IMP-1", direction="import", reading="cumulative"))


def context(meters: Sequence[Meter] = METERS, *, start: datetime = PERIOD_START, end: datetime = PERIOD_END) -> ContractContext:
    return ContractContext(period_start=start, period_end=end, sources=meters, capacity_kw=CAPACITY_KW)


def readings(
    meter_id: str,
    *,
    start: datetime | str = PERIOD_START,
    n: int = 384,
    values: Sequence[float] | float = 10.0,
    file: str | None = None,
    minutes: int = 15,
) -> pd.DataFrame:
    """``n`` consecutive readings of one meter, as ingest would produce them (CSV rows from 2)."""
    ts = pd.date_range(pd.Timestamp(start), periods=n, freq=f"{minutes}min", tz="UTC" if pd.Timestamp(start).tzinfo is None else None)
    vals = np.full(n, values, dtype=np.float64) if np.isscalar(values) else np.asarray(values, dtype=np.float64)
    register = np.cumsum(vals) + 1000.0 if meter_id.startswith("IMP") else np.full(n, np.nan)
    return pd.DataFrame(
        {
            "meter_id": pd.array([meter_id] * n, dtype="string"),
            "ts": ts.as_unit("us"),
            "value": vals,
            "unit": pd.array(["kWh"] * n, dtype="string"),
            "register": register,
            "source_file": pd.array([file or f"{meter_id.lower()}.csv"] * n, dtype="string"),
            "source_row": np.arange(2, n + 2, dtype=np.int64),
        }
    )


def clean_frame() -> pd.DataFrame:
    return pd.concat([readings("EXP-1"), readings("IMP-1", values=2.0)], ignore_index=True)


def set_cell(df: pd.DataFrame, file: str, row: int, column: str, value) -> pd.DataFrame:
    out = df.copy()
    sel = (out["source_file"] == file) & (out["source_row"] == row)
    assert sel.sum() == 1, (file, row)
    out.loc[sel, column] = value
    return out


@pytest.fixture(scope="session")
def td() -> types.SimpleNamespace:
    """The helpers and constants above, for test modules."""
    return types.SimpleNamespace(
        PERIOD_START=PERIOD_START, PERIOD_END=PERIOD_END, CAPACITY_KW=CAPACITY_KW, METERS=METERS,
        meter=meter, context=context, readings=readings, clean_frame=clean_frame, set_cell=set_cell,
    )


@pytest.fixture(scope="session")
def contract():
    return load_contract("meter_readings")


@pytest.fixture(params=["gx", "native"])
def engine(request) -> str:
    return request.param


@pytest.fixture
def ctx() -> ContractContext:
    return context()
