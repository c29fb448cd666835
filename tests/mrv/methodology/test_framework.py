"""The calculator framework, exercised with a tiny methodology defined here (not a real one)."""

from collections.abc import Mapping

import pytest

from mrv.errors import ParameterError
from mrv.methodology import Methodology, MethodologyInfo, MonitoredSpec, ParameterSpec, Trace, round_down_issuable


class Toy(Methodology):
    info = MethodologyInfo(id="TEST:TOY:1.0", title="Toy", program="TEST", code="TOY", version="1.0", source_document="none")
    parameters = (
        ParameterSpec("EF", "emission factor", unit="tCO2e/MWh", minimum=0),
        ParameterSpec("kind", "project kind", kind="choice", choices=("a", "b")),
        ParameterSpec("n", "a count", kind="integer", required=False, default=1, default_source="toy default"),
    )
    monitored = (MonitoredSpec("EG", "energy", contract="meter_readings", unit="MWh"),)

    def aggregate(self, data, *, trace):  # pragma: no cover - not used
        raise NotImplementedError

    def calculate(self, *, parameters, monitored: Mapping[str, float], trace: Trace):
        er = trace.record("ER_y", monitored["EG"] * parameters["EF"].value, "tCO2e", equation="EG × EF", clause="toy eq. 1")
        return {"ER_y": (er, "tCO2e")}


def test_units_converted_at_the_edge():
    res = Toy().run(raw_parameters={"EF": {"value": 700, "unit": "kgCO2e/MWh", "source": "s"}, "kind": "a"}, monitored={"EG": 10.0})
    assert res.quantities["ER_y"][0] == pytest.approx(7.0)
    assert res.issuable_tCO2e == 7
    ef = next(p for p in res.parameters if p.symbol == "EF")
    assert ef.value == pytest.approx(0.7) and ef.unit == "tCO2e/MWh" and ef.source == "s"
    n = next(p for p in res.parameters if p.symbol == "n")
    assert n.value == 1 and n.source == "toy default"
    assert [s["symbol"] for s in res.trace] == ["ER_y", "ER_issuable_y"]


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"kind": "a"}, "required parameter EF"),
        ({"EF": {"value": 1, "unit": "tCO2e/MWh"}, "kind": "c"}, "must be one of"),
        ({"EF": {"value": 1, "unit": "MWh"}, "kind": "a"}, "cannot be converted"),
        ({"EF": {"value": 1}, "kind": "a"}, "needs a unit"),
        ({"EF": {"value": "x", "unit": "tCO2e/MWh"}, "kind": "a"}, "must be a number"),
        ({"EF": {"value": -1, "unit": "tCO2e/MWh"}, "kind": "a"}, "below the minimum"),
        ({"EF": {"value": 1, "unit": "tCO2e/MWh"}, "kind": "a", "bogus": 1}, "unknown parameter"),
        ({"EF": {"value": 1, "unit": "tCO2e/MWh"}, "kind": "a", "n": 1.5}, "must be an integer"),
    ],
)
def test_parameter_errors(raw, match):
    with pytest.raises(ParameterError, match=match):
        Toy().run(raw_parameters=raw, monitored={"EG": 1.0})


def test_missing_monitored_value():
    with pytest.raises(ParameterError, match="monitored value"):
        Toy().run(raw_parameters={"EF": {"value": 1, "unit": "tCO2e/MWh"}, "kind": "a"}, monitored={})


@pytest.mark.parametrize(("x", "expected"), [(10.999999, 10), (11.0, 11), (0.4, 0), (-3.2, 0), (1234.0 - 1e-12, 1234)])
def test_round_down_never_up(x, expected):
    assert round_down_issuable(x) == expected


def test_co2e_is_not_plain_mass():
    from mrv.methodology.units import Q, to_unit

    with pytest.raises(ParameterError):
        to_unit(Q(1, "tonne"), "tCO2e", symbol="x")
    assert to_unit(Q(1500, "kgCO2e"), "tCO2e") == pytest.approx(1.5)
