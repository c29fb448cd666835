"""Framework hooks: monitored values converted at the edge, the applicability hook, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from mrv.errors import ApplicabilityError, ParameterError
from mrv.methodology import Methodology, MethodologyInfo, MonitoredSpec, ParameterSpec, Trace


class Toy(Methodology):
    info = MethodologyInfo(id="TEST:TOY:1.0", title="Toy", program="TEST", code="TOY", version="1.0", source_document="none")
    parameters = (ParameterSpec("EF", "emission factor", unit="tCO2e/MWh"), ParameterSpec("grid", "grid-connected", kind="boolean"))
    monitored = (MonitoredSpec("EG", "energy", contract="meter_readings", unit="MWh"),
                 MonitoredSpec("T", "temperature", contract="meter_readings", unit="K", source="instruments"),
                 MonitoredSpec("on", "flame detected share", contract="meter_readings", unit="dimensionless", source="instruments"))
    calls: list[str]

    def __init__(self) -> None:
        self.calls = []

    def check_applicability(self, parameters):
        self.calls.append("check_applicability")
        if not parameters["grid"].value:
            raise self.not_applicable("the plant is off-grid", clause="Toy v1, section 2, para 3")

    def aggregate(self, data, *, trace):
        self.calls.append("aggregate")
        return {"EG": 1.0, "T": 300.0, "on": 1.0}, []

    def calculate(self, *, parameters, monitored: Mapping[str, float], trace: Trace):
        self.calls.append("calculate")
        er = trace.record("ER_y", monitored["EG"] * parameters["EF"].value, "tCO2e", equation="EG × EF", clause="toy eq. 1")
        return {"ER_y": (er, "tCO2e")}


EF = {"value": 1.0, "unit": "tCO2e/MWh"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"EG": {"value": 1500, "unit": "kWh"}}, {"EG": 1.5}),
        ({"EG": 2.5}, {"EG": 2.5}),  # bare value: declared unit
        ({"EG": {"value": "3", "source": "meter log"}}, {"EG": 3.0}),  # no unit: declared unit
        ({"EG": {"value": 0.002, "unit": "GWh"}}, {"EG": 2.0}),
        ({"T": {"value": 26.85, "unit": "degC"}}, {"T": 300.0}),  # offset units convert too
        ({"on": 1}, {"on": 1.0}),
    ],
)
def test_resolve_monitored_converts_to_the_declared_unit(raw, expected):
    assert Toy().resolve_monitored(raw) == {k: pytest.approx(v) for k, v in expected.items()}


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"XX": 1}, r"unknown monitored value\(s\) XX; known: EG, T, on"),
        ({"EG": {"value": 1, "unit": "tCO2e"}}, "monitored EG: tCO2e cannot be converted to MWh"),
        ({"EG": {"value": 1, "unit": "nonsense_unit"}}, "monitored EG: unknown unit"),
        ({"EG": "many"}, "monitored EG must be a number"),
        ({"EG": True}, "monitored EG must be a number"),
        ({"EG": float("nan")}, "monitored EG must be finite"),
        ({"EG": {"unit": "MWh"}}, "monitored EG has no value"),
        ({"EG": {"value": 1, "units": "MWh"}}, "unexpected key"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_resolve_monitored_errors_name_the_value(raw, match):
    with pytest.raises(ParameterError, match=match):
        Toy().resolve_monitored(raw)


def test_applicability_hook_runs_before_aggregate_and_cites_the_clause():
    from datetime import datetime, timezone

    from mrv.methodology import MonitoringInput

    m = Toy()
    data = MonitoringInput(start=datetime(2024, 1, 1, tzinfo=timezone.utc), end=datetime(2024, 1, 2, tzinfo=timezone.utc), datasets={})
    with pytest.raises(ApplicabilityError) as info:
        m.run(raw_parameters={"EF": EF, "grid": False}, data=data)
    assert str(info.value) == "TEST:TOY:1.0: the plant is off-grid. Toy v1, section 2, para 3"
    assert info.value.clause == "Toy v1, section 2, para 3"
    assert m.calls == ["check_applicability"]  # nothing aggregated or calculated

    m = Toy()
    res = m.run(raw_parameters={"EF": EF, "grid": True}, data=data)
    assert m.calls == ["check_applicability", "aggregate", "calculate"] and res.issuable_tCO2e == 1


def test_default_hook_accepts_everything():
    class NoHook(Toy):
        check_applicability = Methodology.check_applicability

    assert NoHook().run(raw_parameters={"EF": EF, "grid": False}, monitored={"EG": 2.0, "T": 1.0, "on": 0.0}).issuable_tCO2e == 2


def test_methodology_cli_import_stays_light():
    """`mrv --help` imports the methodology CLI; that must not pull in pandas, pint or Great Expectations."""
    code = (
        "import sys, mrv.methodology.cli\n"
        "heavy = [m for m in ('pandas', 'pint', 'great_expectations') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from mrv.methodology import Methodology, Trace, round_down_issuable\n"
        "assert Methodology.__module__ == 'mrv.methodology.base'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[3])


class DatasetToy(Methodology):
    """One instruments dataset aggregated into two values (the ACM0001 shape)."""

    info = MethodologyInfo(id="TEST:DS:1.0", title="Dataset toy", program="TEST", code="DS", version="1.0", source_document="none")
    parameters = (ParameterSpec("GWP", "GWP of CH4", unit="tCO2e/t"),)
    monitored = (MonitoredSpec("flare_data", "minute readings", contract="meter_readings", unit="per quantity", source="instruments"),)
    aggregated = (("MD_y", "t", "methane destroyed"), ("EG_y", "MWh", "electricity generated"))
    instrument_quantities = {"V_t": "m3/h"}

    def aggregate(self, data, *, trace):  # pragma: no cover - not used
        raise NotImplementedError

    def calculate(self, *, parameters, monitored, trace):
        er = trace.record("ER_y", monitored["MD_y"] * parameters["GWP"].value, "tCO2e", equation="MD_y × GWP", clause="toy")
        return {"ER_y": (er, "tCO2e")}


def test_aggregated_values_replace_the_dataset_spec_as_calculate_inputs():
    from mrv.methodology import MonitoredValue

    m = DatasetToy()
    assert m.monitored_values() == (MonitoredValue("MD_y", "t", "methane destroyed"), MonitoredValue("EG_y", "MWh", "electricity generated"))
    assert m.resolve_monitored({"MD_y": {"value": 2500, "unit": "kg"}, "EG_y": 3}) == {"MD_y": pytest.approx(2.5), "EG_y": 3.0}
    with pytest.raises(ParameterError, match=r"unknown monitored value\(s\) flare_data; known: EG_y, MD_y"):
        m.resolve_monitored({"flare_data": 1})
    res = m.run(raw_parameters={"GWP": {"value": 28, "unit": "tCO2e/t"}}, monitored={"MD_y": 2.5, "EG_y": 3.0})
    assert res.issuable_tCO2e == 70  # 2.5 t × 28 = 70 tCO2e
    with pytest.raises(ParameterError, match=r"monitored value\(s\) missing: EG_y"):
        m.run(raw_parameters={"GWP": {"value": 28, "unit": "tCO2e/t"}}, monitored={"MD_y": 2.5})


def test_m3_is_a_cubic_metre():
    from mrv.methodology.units import Q, to_unit

    assert to_unit(Q(60, "m3/min"), "m3/h") == pytest.approx(3600.0)
    assert to_unit(Q(1, "m3"), "m**3") == pytest.approx(1.0)
