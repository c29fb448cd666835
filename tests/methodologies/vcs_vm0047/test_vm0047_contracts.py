"""The tree_inventory and plot_statistics contracts (VM0047 v1.0), run by the contract engine on
small hand-made frames with both evaluators (native and Great Expectations)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd
import pytest

from mrv.contracts import load_contract, validate_readings
from mrv.contracts.model import ContractContext
from mrv.methodology.registry import get


@dataclass(frozen=True)
class Plot:
    """A plot as a contract series source (plots have no interval or calibration)."""

    id: str
    interval_minutes: int = 1440
    calibrations: tuple = field(default_factory=tuple)


def _ctx(ids: list[str]) -> ContractContext:
    return ContractContext(period_start=datetime(2023, 1, 1, tzinfo=timezone.utc), period_end=datetime(2024, 1, 1, tzinfo=timezone.utc),
                           sources=[Plot(i) for i in ids],
                           values={"param": {"D_max_qaqc": 300.0, "H_max_qaqc": 70.0, "f_valid_min": 0.8}})


def _trees(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["plot_id", "ts", "value", "tree_id", "species", "height_m", "wood_density"])
    df["ts"] = pd.to_datetime(df["ts"], utc=True).astype("datetime64[us, UTC]")
    df["source_file"], df["source_row"] = "inv.csv", range(2, len(df) + 2)
    return df


def test_contracts_reference_declared_parameters():
    m = get("VCS:VM0047:1.0")
    for symbol in ("D_max_qaqc", "H_max_qaqc", "f_valid_min"):
        assert m.parameter_spec(symbol).required
    assert load_contract("tree_inventory").key == "plot_id" and load_contract("plot_statistics").key == "plot_id"


@pytest.mark.parametrize("engine", ["native", "gx"])
def test_tree_inventory_quarantines_unknown_plot_and_blocks_bad_measurements(engine):
    good = [("I0", "2023-06-01", 20.0, "t1", "Tectona grandis", 15.0, 0.6),
            ("I0", "2020-06-01", 10.0, "t1", "Tectona grandis", 8.0, 0.6)]
    out = validate_readings(_trees(good + [("XX", "2023-06-01", 20.0, "t9", "Tectona grandis", 15.0, 0.6)]),
                            contract=load_contract("tree_inventory"), context=_ctx(["I0"]), engine=engine)
    assert not out.blocked and len(out.valid) == 2
    assert out.quarantine["rule_id"].tolist() == ["plot_known"]

    cases = {
        "dbh_range": ("I0", "2023-06-01", 350.0, "t2", "Tectona grandis", 15.0, 0.6),      # 350 cm > D_max_qaqc 300
        "height_range": ("I0", "2023-06-01", 20.0, "t2", "Tectona grandis", 0.0, 0.6),    # height 0 (strict min)
        "wood_density_range": ("I0", "2023-06-01", 20.0, "t2", "Tectona grandis", 15.0, 6.0),  # 6 g/cm3: kg/m3 typo
        "species_present": ("I0", "2023-06-01", 20.0, "t2", None, 15.0, 0.6),
        "unique_measurement": ("I0", "2023-06-01", 21.0, "t1", "Tectona grandis", 15.0, 0.6),  # t1 measured twice that day
    }
    for rule, row in cases.items():
        out = validate_readings(_trees(good + [row]), contract=load_contract("tree_inventory"), context=_ctx(["I0"]), engine=engine)
        assert out.blocked, rule
        assert rule in set(out.quarantine["rule_id"]), rule


@pytest.mark.parametrize("engine", ["native", "gx"])
def test_plot_statistics_quarantines_cloudy_and_empty_plot_dates(engine):
    df = pd.DataFrame({
        "plot_id": ["P1", "P1", "P1", "P2", "ZZ"],
        "ts": pd.to_datetime(["2012-06-01", "2012-07-01", "2023-06-01", "2023-06-01", "2023-06-01"], utc=True).astype("datetime64[us, UTC]"),
        "value": [0.31, 0.35, None, 0.4, 0.4],
        "valid_fraction": [0.95, 0.5, 0.9, 1.0, 1.0],   # 0.5 < f_valid_min 0.8
        "count": [100, 50, 0, 120, 120],
    })
    df["source_file"], df["source_row"] = "stats.parquet", range(2, 7)
    out = validate_readings(df, contract=load_contract("plot_statistics"), context=_ctx(["P1", "P2"]), engine=engine)
    assert not out.blocked
    # pre-project dates (2012) stay valid: the SI series spans t0 - 10 .. t
    assert sorted(zip(out.valid["plot_id"], out.valid["value"])) == [("P1", 0.31), ("P2", 0.4)]
    assert dict(zip(out.quarantine["source_row"], out.quarantine["rule_id"])) == {
        3: "valid_fraction_min", 4: "si_present", 6: "plot_known"}
