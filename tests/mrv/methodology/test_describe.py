"""mrv.methodology.describe: the document behind ``mrv methodologies show``, and the declaration
checks run over every registered methodology (contracts linked by id exist in data_contracts/)."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Mapping

import pytest

from methodologies.cdm_acm0002.v22 import ACM0002
from mrv.contracts import load_contract
from mrv.errors import ContractError
from mrv.methodology import (
    Applicability,
    EquationSpec,
    Methodology,
    MethodologyInfo,
    MonitoredSpec,
    OutputSpec,
    ParameterSpec,
    Trace,
)
from mrv.methodology.describe import ROUNDING, contract_doc, declaration_problems, describe, parameter_doc, summary
from mrv.methodology.registry import all_methodologies


class FakeRule:
    def __init__(self, rule_id: str) -> None:
        self.id, self.severity, self.clause = rule_id, "block", f"clause of {rule_id}"


class FakeContract:
    id, version, description = "meter_readings", "9.9.9", " fake contract \n"
    rules = (FakeRule("r1"), FakeRule("r2"))


def fake_loader(contract_id: str):
    if contract_id != "meter_readings":
        raise ContractError(f"data contract {contract_id!r} not found")
    return FakeContract()


class Toy(Methodology):
    info = MethodologyInfo(id="TEST:TOY:1.0", title="Toy", program="TEST", code="TOY", version="1.0", source_document="none",
                           applicability=("plain condition", Applicability("cited condition", clause="Toy, section 2")))
    parameters = (
        ParameterSpec("EF", "emission factor", unit="tCO2e/MWh", minimum=0),
        ParameterSpec("kind", "project kind", kind="choice", choices=("a", "b")),
        ParameterSpec("n", "a count", kind="integer", required=False, default=1, default_source="toy default", maximum=3),
        ParameterSpec("opt", "optional factor", required=False),
    )
    monitored = (MonitoredSpec("EG", "energy", contract="meter_readings", unit="MWh"),
                 MonitoredSpec("FL", "flow", contract="flare_minutes_nope", unit="m**3/h", source="instruments"))
    equations = (EquationSpec("ER_y", "EG × EF", "tCO2e", "toy eq. 1"),)
    outputs = (OutputSpec("ER_y", "reductions", "tCO2e"),)

    def aggregate(self, data, *, trace):  # pragma: no cover - not used
        raise NotImplementedError

    def calculate(self, *, parameters, monitored: Mapping[str, float], trace: Trace):  # pragma: no cover - not used
        raise NotImplementedError


def test_describe_is_pure_with_an_injected_loader():
    doc = describe(Toy(), contract_loader=fake_loader)
    json.dumps(doc)  # JSON-ready
    assert (doc["id"], doc["title"], doc["program"], doc["code"], doc["version"]) == ("TEST:TOY:1.0", "Toy", "TEST", "TOY", "1.0")
    assert doc["source"] == {"document": "none", "url": None, "tools": []}
    assert doc["applicability"] == [{"condition": "plain condition", "clause": None},
                                    {"condition": "cited condition", "clause": "Toy, section 2"}]
    eg, fl = doc["monitored"]
    assert eg["contract"] == {"id": "meter_readings", "found": True, "version": "9.9.9", "description": "fake contract",
                              "rules": [{"id": "r1", "severity": "block", "clause": "clause of r1"},
                                        {"id": "r2", "severity": "block", "clause": "clause of r2"}]}
    assert (fl["source"], fl["unit"], fl["contract"]["found"]) == ("instruments", "m**3/h", False)
    assert "not found" in fl["contract"]["error"]
    assert doc["equations"] == [{"symbol": "ER_y", "expression": "EG × EF", "unit": "tCO2e", "clause": "toy eq. 1"}]
    assert doc["outputs"] == [{"symbol": "ER_y", "description": "reductions", "unit": "tCO2e"}]
    assert doc["rounding"] == ROUNDING


def test_parameter_statuses():
    docs = {p.symbol: parameter_doc(p) for p in Toy.parameters}
    assert (docs["EF"]["status"], docs["EF"]["required"], docs["EF"]["unit"], docs["EF"]["minimum"]) == ("required", True, "tCO2e/MWh", 0)
    assert (docs["kind"]["status"], docs["kind"]["unit"], docs["kind"]["choices"]) == ("required", None, ["a", "b"])
    assert (docs["n"]["status"], docs["n"]["default"], docs["n"]["default_source"], docs["n"]["maximum"]) == ("default", 1, "toy default", 3)
    assert (docs["opt"]["status"], docs["opt"]["required"]) == ("optional", False)


def test_describe_acm0002_with_the_real_contract():
    doc = describe(ACM0002())
    contract = load_contract("meter_readings")
    assert summary(ACM0002()) == {"id": "CDM:ACM0002:22.0", "title": ACM0002.info.title, "program": "CDM",
                                  "code": "ACM0002", "version": "22.0"}
    assert all(m["contract"]["version"] == contract.version for m in doc["monitored"])
    assert [a["clause"] for a in doc["applicability"]][1].startswith("ACM0002 v22.0, 'Applicability'")
    assert [e["symbol"] for e in doc["equations"]] == ["w_OM, w_BM", "EF_grid_CM_y", "EG_facility_y", "EG_PJ_y", "BE_y", "PE_y", "LE_y", "ER_y"]


def test_acm0002_equations_are_the_ones_its_trace_records():
    """Each declared equation symbol appears in the trace of the worked example (test_acm0002_v22.py)."""
    om = {"value": 0.9646, "unit": "tCO2e/MWh"}
    bm = {"value": 0.5119, "unit": "tCO2e/MWh"}
    res = ACM0002().run(raw_parameters={"project_type": "wind", "project_activity": "greenfield", "EF_grid_OM_y": om, "EF_grid_BM_y": bm},
                        monitored={"EG_export_y": 100_000.0, "EG_import_y": 500.0})
    traced = {s["symbol"] for s in res.trace}
    for eq in ACM0002.equations:
        assert set(eq.symbol.split(", ")) <= traced
        step = next(s for s in res.trace if s["symbol"] == eq.symbol.split(", ")[0])
        assert (step["unit"], step["clause"]) == (eq.unit, eq.clause)
    assert {o.symbol: o.unit for o in ACM0002.outputs} == {k: u for k, (_, u) in res.quantities.items()}


def test_contract_doc_reports_a_missing_contract_instead_of_failing():
    doc = contract_doc("no_such_contract")
    assert doc["found"] is False and "not found" in doc["error"] and doc["rules"] == []


def test_declaration_problems_found():
    class Bad(Toy):
        info = MethodologyInfo(id="TEST:TOY", title="Bad", program="TEST", code="TOY", version="1.0", source_document="none")
        parameters = (
            ParameterSpec("EF", "x", unit="tCO2e/MWh"),
            ParameterSpec("EF", "again", unit="bananas_per_second"),
            ParameterSpec("c", "choice without choices", kind="choice"),
            ParameterSpec("EG", "clashes with a monitored value"),
        )
        monitored = (MonitoredSpec("EG", "energy", contract="no_such_contract", unit="MWhh"),)
        outputs = (OutputSpec("BE_y", "baseline", "tCO2e"),)

    problems = declaration_problems(Bad())
    text = "\n".join(problems)
    assert "id 'TEST:TOY' is not <program>:<code>:<version>" in text
    assert "parameter 'EF' is declared twice" in text
    assert "parameter EF: unit 'bananas_per_second' is not a pint unit" in text
    assert "parameter c: kind 'choice' without choices" in text
    assert "'EG' is both a parameter and a monitored value" in text
    assert "monitored EG: unit 'MWhh' is not a pint unit" in text
    assert "monitored EG: contract 'no_such_contract' not found" in text
    assert "outputs are declared but do not include ER_y" in text

    class Mismatch(Toy):
        info = MethodologyInfo(id="TEST:TOY:2.0", title="t", program="TEST", code="TOY", version="1.0", source_document="none")
        monitored = ()

    assert declaration_problems(Mismatch()) == ["id 'TEST:TOY:2.0' disagrees with program/code/version 'TEST'/'TOY'/'1.0'"]


@pytest.mark.parametrize("methodology", all_methodologies(), ids=lambda m: m.id)
def test_every_registered_methodology_is_consistent(methodology):
    """Every MonitoredSpec.contract exists in data_contracts/ and loads; units are pint units; ids agree."""
    assert declaration_problems(methodology) == []
    for spec in methodology.monitored:
        assert load_contract(spec.contract).id == spec.contract
    json.dumps(describe(methodology))


def test_applicability_is_a_str_with_a_clause():
    a = Applicability("condition text", clause="Doc, section 1")
    assert a == "condition text" and isinstance(a, str) and "text" in a
    assert (a.condition, a.clause, a.to_dict()) == ("condition text", "Doc, section 1",
                                                   {"condition": "condition text", "clause": "Doc, section 1"})
    for b in (copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert b == a and b.clause == "Doc, section 1"
    assert json.dumps(ACM0002.info.to_dict())  # still a tuple of strings for everything that reads it


def test_monitored_values_in_the_document():
    """ACM0002: the values are its MonitoredSpecs; a dataset methodology lists its aggregated values."""
    doc = describe(ACM0002())
    assert doc["monitored_values"] == [{"name": s.name, "unit": s.unit, "description": s.description} for s in ACM0002.monitored]
    assert doc["instrument_quantities"] == {}

    class Dataset(Toy):
        monitored = (MonitoredSpec("flare_data", "minute data", contract="meter_readings", unit="per quantity", source="instruments"),)
        aggregated = (("MD_y", "t", "methane destroyed"),)
        instrument_quantities = {"V_t": "m3/h", "T": "not_a_unit"}

    doc = describe(Dataset(), contract_loader=fake_loader)
    assert doc["monitored_values"] == [{"name": "MD_y", "unit": "t", "description": "methane destroyed"}]
    assert doc["instrument_quantities"] == {"V_t": "m3/h", "T": "not_a_unit"}
    problems = declaration_problems(Dataset(), contract_loader=fake_loader)
    assert problems == ["instrument quantity T: unit 'not_a_unit' is not a pint unit (UndefinedUnitError: 'not_a_unit' is not defined in the unit registry)"]
