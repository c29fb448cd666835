"""The flare_instruments data contract and the sample landfill project, end to end.

Sample (mrv/sample/landfill.py) -> project file -> instrument reader (unit conversion) ->
flare_instruments contract (generic keyed engine) -> CDM:ACM0001:19.0 aggregate + calculate.
The sample is synthetic; the checks are structural (every injected fault is found and treated,
the result is consistent with its own trace), not a comparison with a published number.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import yaml

from methodologies.cdm_acm0001.v19 import ACM0001
from mrv.contracts.compile import load_contract
from mrv.contracts.model import ContractContext, Severity
from mrv.contracts.runner import validate_readings
from mrv.ingest.series import read_instrument_files
from mrv.methodology import MonitoringInput
from mrv.project import load_project
from mrv.sample.landfill import LANDFILL_PARAMETERS, generate_landfill_project

CONTRACT_FILE = Path(__file__).resolve().parents[3] / "data_contracts" / "flare_instruments.yaml"


def test_contract_parses_and_matches_the_methodology():
    c = load_contract("flare_instruments")
    assert (c.id, c.key, c.columns) == ("flare_instruments", "instrument_id", ("quantity", "unit"))
    ids = [r.id for r in c.rules]
    for rule in ("instrument_known", "in_period", "value_not_null", "flow_range", "ch4_fraction_range", "gas_temperature_range",
                 "gas_pressure_range", "exhaust_temperature_range", "flame_binary", "unique_reading", "interval_regular",
                 "calibration_valid", "period_covered"):
        assert rule in ids
    quantities = set(ACM0001.instrument_quantities)
    conditioned = set()
    for r in c.rules:
        assert r.clause.strip()
        if r.row_condition is not None and r.row_condition.column == "quantity":
            p = r.row_condition.parameter
            conditioned |= set(p if isinstance(p, list) else [p])
    assert conditioned == quantities  # every quantity has a range rule, and no rule names an unknown one
    known = next(r for r in c.rules if r.id == "quantity_known")
    assert set(known.kwargs["value_set"]) == quantities
    units = next(r for r in c.rules if r.id == "unit_normalised")
    assert set(units.kwargs["value_set"]) == set(ACM0001.instrument_quantities.values())
    assert yaml.safe_load(CONTRACT_FILE.read_text())["version"] == c.version


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A 3-day sample run through reader and contract."""
    path = generate_landfill_project(tmp_path_factory.mktemp("lfg"), seed=11, days=3)
    spec = load_project(path)
    m = ACM0001()
    frames = [read_instrument_files(sorted(path.parent.glob(i.files)), instrument=i, unit=m.instrument_quantities[i.quantity])
              for i in spec.data_sources.instruments]
    df = pd.concat(frames, ignore_index=True)
    for c in ("instrument_id", "quantity", "unit", "source_file"):
        df[c] = df[c].astype("category")
    tz = ZoneInfo(spec.monitoring_period.timezone)
    start = datetime.combine(spec.monitoring_period.start, time(0), tz)
    end = datetime.combine(spec.monitoring_period.end + timedelta(days=1), time(0), tz)
    ctx = ContractContext(period_start=start, period_end=end, sources=spec.data_sources.instruments,
                          values={"param": {"V_t_max": LANDFILL_PARAMETERS["V_t_max"]["value"]}})
    outcome = validate_readings(df, contract=load_contract("flare_instruments"), context=ctx, engine="native")
    data = MonitoringInput(start=start, end=end, datasets={"flare_data": outcome.valid},
                           sources={"instruments": [i.model_dump(mode="json") for i in spec.data_sources.instruments]})
    return spec, df, outcome, data


def test_sample_project_file(sample):
    spec, df, _, _ = sample
    assert spec.methodology == "CDM:ACM0001:19.0"
    assert {i.quantity for i in spec.data_sources.instruments} <= set(ACM0001.instrument_quantities)
    # eight instruments x three days of minutes, less 40 minutes with no row in flare.parquet (six instruments)
    assert len(df) == 8 * 3 * 1440 - 6 * 40
    assert set(spec.parameters) == set(LANDFILL_PARAMETERS)


def test_contract_validates_the_sample(sample):
    _, df, outcome, _ = sample
    assert not outcome.blocked
    by_rule = {r.rule_id: r for r in outcome.rules}
    assert by_rule["value_not_null"].unexpected_count > 0  # the blank methane readings
    assert by_rule["calibration_valid"].unexpected_count > 0  # the analyser's lapsed calibration window
    assert by_rule["interval_regular"].unexpected_count > 0  # the missing minutes
    assert all(by_rule[r].unexpected_count == 0 for r in ("flow_range", "ch4_fraction_range", "flame_binary", "unique_reading"))
    assert by_rule["value_not_null"].severity is Severity.quarantine and by_rule["value_not_null"].quarantined_count == 25
    assert len(outcome.valid) + len(outcome.quarantine) == len(df)


def test_sample_runs_through_the_methodology(sample):
    spec, _, _, data = sample
    raw = {k: v.model_dump() if hasattr(v, "model_dump") else v for k, v in spec.parameters.items()}
    res = ACM0001().run(raw_parameters=raw, data=data)
    q = {k: v for k, (v, _) in res.quantities.items()}
    kinds = {t["kind"] for t in res.treatments}
    assert {"calibration_lapsed_mpe", "missing_flow", "missing_CH4_fraction", "no_flame", "low_T_EG"} <= kinds
    assert q["GWP_CH4"] == 21  # 2023, CDM temporary measures
    assert 0 < q["F_CH4_flared_y"] < q["F_CH4_sent_flare_y"]
    assert q["F_CH4_flared_y"] == pytest.approx(0.9 * next(s["value"] for s in res.trace if s["symbol"] == "F_CH4_flare_ok_y"))
    assert q["EG_PJ_y"] > 0 and q["BE_EC_y"] == pytest.approx(q["EG_PJ_y"] * LANDFILL_PARAMETERS["EF_grid_y"]["value"])
    assert q["ER_y"] == pytest.approx(q["BE_y"] - q["PE_y"]) and res.issuable_tCO2e == int(q["ER_y"] // 1)
    # A ~1 MWe engine over three days, ~0.9 MW average with its maintenance day outside the window.
    assert 55 < q["EG_PJ_y"] < 80


def test_sample_is_deterministic(tmp_path):
    a = generate_landfill_project(tmp_path / "a", seed=5, days=2)
    b = generate_landfill_project(tmp_path / "b", seed=5, days=2)
    for rel in ("project.yaml", "data/flare.parquet", "data/engine.parquet"):
        assert (a.parent / rel).read_bytes() == (b.parent / rel).read_bytes()
    c = generate_landfill_project(tmp_path / "c", seed=6, days=2)
    assert (c.parent / "data/flare.parquet").read_bytes() != (a.parent / "data/flare.parquet").read_bytes()
