"""``mrv methodologies list|show`` and ``mrv calculate`` through the real CLI app (Typer CliRunner).

The calculate tests reuse the inputs of the ACM0002 worked example
``tests/methodologies/cdm_acm0002/test_acm0002_v22.py::test_wind_worked_example`` (CEA CO2 Baseline
Database v21.0, FY 2024-25: simple OM 0.9646, BM 0.5119 tCO2/MWh; export 100,000 MWh, import
500 MWh). Its hand calculation, quoted:

    EF_grid_CM_y  = 0.75 × 0.9646 + 0.25 × 0.5119 = 0.851425 tCO2e/MWh
    EG_facility_y = 100,000 − 500 = 99,500 MWh = EG_PJ_y (greenfield)
    BE_y          = 99,500 × 0.851425 = 84,716.7875 tCO2e
    ER_y          = 84,716.7875 tCO2e -> issuable floor = 84,716 tCO2e

and every CLI result is also compared with ``ACM0002().run(...)`` on the same inputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from methodologies.cdm_acm0002.v22 import ACM0002
from mrv.cli import app
from mrv.contracts import load_contract

ACM = "CDM:ACM0002:22.0"
OM_V21 = {"value": 0.9646, "unit": "tCO2e/MWh", "source": "CEA CO2 Baseline Database v21.0, FY 2024-25, simple OM"}
BM_V21 = {"value": 0.5119, "unit": "tCO2e/MWh", "source": "CEA CO2 Baseline Database v21.0, FY 2024-25, BM"}
PARAMS = {"project_type": "wind", "project_activity": "greenfield", "EF_grid_OM_y": OM_V21, "EF_grid_BM_y": BM_V21}
MONITORED = {"EG_export_y": 100_000.0, "EG_import_y": 500.0}

runner = CliRunner()


def invoke(*args: str):
    # Wide terminal so table cells are not wrapped in the middle of a number.
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


def write(tmp_path: Path, name: str, doc: dict) -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc, sort_keys=False) if name.endswith((".yaml", ".yml")) else json.dumps(doc), encoding="utf-8")
    return p


def expected_doc() -> dict:
    return ACM0002().run(raw_parameters=PARAMS, monitored=MONITORED).to_dict()


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


# --- list / show ------------------------------------------------------------------------------------


def test_list_table_and_json():
    res = invoke("methodologies", "list")
    assert res.exit_code == 0, res.output
    for header in ("id", "title", "program", "version"):
        assert header in res.stdout
    assert ACM in res.stdout and "Grid-connected electricity generation from renewable sources" in res.stdout
    rows = json.loads(invoke("methodologies", "list", "--json").stdout)
    assert {"id": ACM, "title": "Grid-connected electricity generation from renewable sources", "program": "CDM",
            "code": "ACM0002", "version": "22.0"} in rows


def test_show_text():
    res = invoke("methodologies", "show", ACM)
    assert res.exit_code == 0, res.output
    out = res.stdout
    for section in ("Applicability", "Parameters", "Monitored data", "Equations", "Outputs"):
        assert section in out
    assert "CDM approved consolidated methodology ACM0002, version 22.0" in out and "CDM:TOOL07:7.0" in out
    assert "project_activity" in out and "required" in out and "1 (first crediting period)" in out
    assert f"meter_readings {load_contract('meter_readings').version}" in out and "calibration_valid (warn)" in out
    assert "EG_export_y − EG_import_y" in out and "max(0, floor(ER_y))" in out


def test_show_json_structure():
    res = invoke("methodologies", "show", ACM, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc) == {"id", "title", "program", "code", "version", "source", "applicability", "parameters",
                        "monitored", "monitored_values", "instrument_quantities", "equations", "outputs", "rounding"}
    assert (doc["id"], doc["program"], doc["code"], doc["version"]) == (ACM, "CDM", "ACM0002", "22.0")
    assert doc["source"]["tools"] == ["CDM:TOOL07:7.0"] and doc["source"]["url"].startswith("https://cdm.unfccc.int")
    assert all(a["condition"] and a["clause"] for a in doc["applicability"])
    params = {p["symbol"]: p for p in doc["parameters"]}
    assert params["project_type"]["status"] == "required" and params["project_type"]["choices"] == ["wind", "solar", "other"]
    assert (params["crediting_period"]["status"], params["crediting_period"]["default"],
            params["crediting_period"]["default_source"]) == ("default", 1, "first crediting period")
    assert (params["crediting_period"]["minimum"], params["crediting_period"]["maximum"]) == (1, 3)
    assert params["EF_grid_OM_y"]["unit"] == "tCO2e/MWh" and params["EF_grid_OM_y"]["status"] == "optional"
    contract = load_contract("meter_readings")
    for mon in doc["monitored"]:
        assert mon["source"] == "meters" and mon["unit"] == "MWh"
        assert mon["contract"]["id"] == "meter_readings" and mon["contract"]["found"] is True
        assert mon["contract"]["version"] == contract.version
        assert [r["id"] for r in mon["contract"]["rules"]] == [r.id for r in contract.rules]
    assert [m["name"] for m in doc["monitored"]] == ["EG_export_y", "EG_import_y"]
    assert doc["monitored_values"] == [{"name": "EG_export_y", "unit": "MWh", "description": "Electricity exported to the grid in the period"},
                                       {"name": "EG_import_y", "unit": "MWh", "description": "Electricity imported from the grid in the period"}]
    eqs = {e["symbol"]: e for e in doc["equations"]}
    assert eqs["BE_y"]["expression"] == "EG_PJ_y × EF_grid_CM_y" and eqs["BE_y"]["unit"] == "tCO2e"
    assert all(e["clause"] for e in doc["equations"])
    # The declared outputs are exactly what the calculator returns, with the same units.
    computed = expected_doc()["quantities"]
    assert {o["symbol"]: o["unit"] for o in doc["outputs"]} == {k: v["unit"] for k, v in computed.items()}
    assert doc["rounding"]["symbol"] == "ER_issuable_y"


def test_show_does_not_import_great_expectations():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from mrv.cli import app\n"
        "r = CliRunner().invoke(app, ['methodologies', 'show', 'CDM:ACM0002:22.0', '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'great_expectations' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[3])


@pytest.mark.parametrize("command", [("methodologies", "show", "NOPE:X:1.0"), ("methodologies", "show", "NOPE:X:1.0", "--json")])
def test_show_unknown_id(command):
    err = one_line_error(invoke(*command))
    assert "unknown methodology 'NOPE:X:1.0'" in err and ACM in err


# --- calculate --------------------------------------------------------------------------------------


def test_calculate_json_inputs_reproduce_the_worked_example(tmp_path):
    inputs = write(tmp_path, "inputs.json", {"parameters": PARAMS, "monitored": MONITORED})
    res = invoke("calculate", ACM, "--inputs", str(inputs), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc == expected_doc()
    q = doc["quantities"]
    assert q["EF_grid_CM_y"]["value"] == pytest.approx(0.851425, abs=1e-12)
    assert q["EG_facility_y"]["value"] == q["EG_PJ_y"]["value"] == 99_500.0
    assert q["BE_y"]["value"] == pytest.approx(84_716.7875, abs=1e-6)
    assert doc["issuable_tCO2e"] == 84_716
    assert [s["symbol"] for s in doc["trace"]][-2:] == ["ER_y", "ER_issuable_y"]


def test_calculate_yaml_inputs_with_kwh_converted_to_mwh(tmp_path):
    """100,000 MWh = 100,000,000 kWh and 500 MWh = 0.5 GWh: the monitored values are converted to
    the declared MWh at the edge, so the result is the worked example's."""
    doc = {"parameters": PARAMS,
           "monitored": {"EG_export_y": {"value": 100_000_000, "unit": "kWh"}, "EG_import_y": {"value": 0.5, "unit": "GWh"}}}
    res = invoke("calculate", ACM, "--inputs", str(write(tmp_path, "inputs.yaml", doc)), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    expected = expected_doc()
    assert out["issuable_tCO2e"] == expected["issuable_tCO2e"] == 84_716
    for k, v in expected["quantities"].items():
        assert out["quantities"][k]["value"] == pytest.approx(v["value"], rel=1e-12)
    assert out["quantities"]["EG_facility_y"] == {"value": pytest.approx(99_500.0), "unit": "MWh"}


def test_calculate_bare_values_in_yaml(tmp_path):
    """Bare parameter values (choices) and bare monitored values in the declared unit (MWh)."""
    text = (
        "parameters:\n  project_type: wind\n  project_activity: greenfield\n"
        "  EF_grid_OM_y: {value: 0.9646, unit: tCO2e/MWh, source: CEA v21.0}\n"
        "  EF_grid_BM_y: {value: 0.5119, unit: tCO2e/MWh, source: CEA v21.0}\n"
        "monitored:\n  EG_export_y: 100000\n  EG_import_y: 500\n"
    )
    (tmp_path / "in.yml").write_text(text, encoding="utf-8")
    out = json.loads(invoke("calculate", ACM, "-i", str(tmp_path / "in.yml"), "--json").stdout)
    assert out["issuable_tCO2e"] == 84_716


def test_calculate_tables(tmp_path):
    inputs = write(tmp_path, "inputs.json", {"parameters": PARAMS, "monitored": {"EG_export_y": {"value": 100_000_000, "unit": "kWh"}, "EG_import_y": 500}})
    res = invoke("calculate", ACM, "--inputs", str(inputs))
    assert res.exit_code == 0, res.output
    out = res.stdout
    for section in ("Inputs", "Result", "Equation trace"):
        assert section in out
    assert "84,716.7875" in out and "issuable (rounded down)" in out and "84,716" in out
    assert "0.851425" in out and "99,500" in out and "100,000" in out  # EG_export_y shown in MWh
    assert "EG_PJ_y × EF_grid_CM_y" in out and "ACM0002 v22.0, 'Baseline emissions'" in out
    assert "CEA CO2 Baseline Database v21.0, FY 2024-25, simple OM" in out
    for step in expected_doc()["trace"]:
        assert step["symbol"] in out


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"parameters": {**PARAMS, "EF_grid_XX": 1}, "monitored": MONITORED}, "unknown parameter(s) EF_grid_XX"),
        ({"parameters": {k: v for k, v in PARAMS.items() if k != "project_type"}, "monitored": MONITORED},
         "required parameter project_type"),
        ({"parameters": {**PARAMS, "EF_grid_OM_y": {"value": 0.9646, "unit": "MWh"}}, "monitored": MONITORED}, "EF_grid_OM_y: MWh cannot be converted"),
        ({"parameters": PARAMS, "monitored": {**MONITORED, "EG_export_y": {"value": 5, "unit": "tCO2e"}}},
         "monitored EG_export_y: tCO2e cannot be converted to MWh"),
        ({"parameters": PARAMS, "monitored": {**MONITORED, "EG_export_y": {"value": 5, "unit": "furlongs_per_fortnight"}}},
         "monitored EG_export_y: unknown unit"),
        ({"parameters": PARAMS, "monitored": {**MONITORED, "EG_other_y": 1}}, "unknown monitored value(s) EG_other_y"),
        ({"parameters": PARAMS, "monitored": {**MONITORED, "EG_import_y": "lots"}}, "monitored EG_import_y must be a number"),
        ({"parameters": PARAMS, "monitored": {"EG_export_y": 1.0}}, "monitored value(s) missing: EG_import_y"),
        ({"parameters": {**PARAMS, "project_activity": "retrofit"}, "monitored": MONITORED},
         "project_activity 'retrofit' is not supported. ACM0002 v22.0, 'Applicability'"),
        ({"parameters": PARAMS, "monitored": MONITORED, "extra": 1}, "unknown key(s) extra"),
        ({"parameters": ["not", "a", "mapping"], "monitored": MONITORED}, "'parameters' must be a mapping"),
    ],
)
def test_calculate_errors_are_one_line_naming_the_symbol(tmp_path, doc, needle):
    err = one_line_error(invoke("calculate", ACM, "--inputs", str(write(tmp_path, "inputs.json", doc))))
    assert needle in err


def test_long_error_stays_on_one_line_in_a_narrow_terminal(tmp_path):
    inputs = write(tmp_path, "inputs.json", {"parameters": {**PARAMS, "project_activity": "retrofit"}, "monitored": MONITORED})
    res = runner.invoke(app, ["calculate", ACM, "--inputs", str(inputs)], env={"COLUMNS": "60"})
    err = one_line_error(res)
    assert len(err) > 200 and "only (a) greenfield is implemented" in err


def test_calculate_file_errors(tmp_path):
    assert "inputs file not found" in one_line_error(invoke("calculate", ACM, "--inputs", str(tmp_path / "none.json")))
    (tmp_path / "bad.yaml").write_text("parameters: [unclosed\n", encoding="utf-8")
    assert "not valid YAML" in one_line_error(invoke("calculate", ACM, "--inputs", str(tmp_path / "bad.yaml")))
    (tmp_path / "bad.json").write_text("{parameters:", encoding="utf-8")
    assert "not valid JSON" in one_line_error(invoke("calculate", ACM, "--inputs", str(tmp_path / "bad.json")))


def test_calculate_unknown_id(tmp_path):
    inputs = write(tmp_path, "inputs.json", {"parameters": PARAMS, "monitored": MONITORED})
    err = one_line_error(invoke("calculate", "CDM:ACM9999:1.0", "--inputs", str(inputs)))
    assert "unknown methodology 'CDM:ACM9999:1.0'" in err and ACM in err
