"""Loading contract YAML: the packaged contract, and every kind of mistake named by file and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mrv.contracts import Severity, Stage, compile_suite, load_contract, validate_readings
from mrv.errors import ContractError

MINIMAL = """
id: demo
version: 0.1.0
description: A tiny contract.
rules:
  - id: value_not_null
    severity: quarantine
    description: Values are present.
    clause: "test clause"
    expectation: expect_column_values_to_not_be_null
    kwargs: {column: value}
"""


def write(tmp_path: Path, text: str, name: str = "demo") -> Path:
    (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ContractError) as info:
        load_contract("demo", directory=write(tmp_path, text))
    msg = str(info.value)
    assert str(tmp_path / "demo.yaml") in msg  # always names the file
    return msg


def test_packaged_contract_loads():
    c = load_contract("meter_readings")
    assert c.id == "meter_readings" and c.version == "1.0.0"
    assert c.source.endswith("meter_readings.yaml")
    ids = [r.id for r in c.rules]
    assert ids[:2] == ["meter_id_present", "meter_known"] and ids[-1] == "period_covered"
    for required in ("meter_known", "in_period", "value_not_null", "unique_reading", "non_negative", "register_monotonic",
                     "plausible_vs_capacity", "interval_regular", "calibration_valid", "period_covered"):
        assert required in ids
    assert c.rule("calibration_valid").clause == "CDM VVS-PA v03.0: delayed calibration -> apply maximum permissible error"
    assert c.rule("calibration_valid").severity is Severity.warn and c.rule("calibration_valid").evaluate_on is Stage.valid
    assert c.rule("plausible_vs_capacity").params == {"tolerance": 0.05}
    assert all(r.clause for r in c.rules)


def test_minimal_contract_from_a_directory(tmp_path):
    c = load_contract("demo", directory=write(tmp_path, MINIMAL))
    assert [r.id for r in c.rules] == ["value_not_null"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("severity: quarantine", "severity: fatal"), "rules[0].severity"),
        (("version: 0.1.0", "version: '1.0'"), "version"),
        (("    clause: \"test clause\"\n", ""), "rules[0].clause: Field required"),
        (("expectation: expect_column_values_to_not_be_null", "expectation: not_null"), "rules[0].expectation"),
        (("kwargs: {column: value}", "kwargs: {column: value}\n    colour: red"), "rules[0].colour: Extra inputs"),
        (("kwargs: {column: value}", "kwargs: {column: value}\n    derive: [wind_speed]"), "rules[0].derive[0]: unknown derivation 'wind_speed'"),
        (("kwargs: {column: value}", "kwargs: {column: \"${period.middle}\"}"), "rules[0].kwargs: unknown reference ${period.middle}"),
        (("kwargs: {column: value}", "kwargs: {column: voltage}"), "rules[0].kwargs.column: unknown column 'voltage'"),
        (("kwargs: {column: value}", "kwargs: {column: value}\n    derive: [capacity_limit_kwh]"), "rules[0].params: derivation capacity_limit_kwh needs param 'tolerance'"),
        (("kwargs: {column: value}", "kwargs: {column: value}\n    evaluate_on: valid"), "rules[0].evaluate_on: a quarantine rule must be evaluated on readings"),
        (("kwargs: {column: value}", "kwargs: {column: value}\n    keep: conservative"), "rules[0].keep: only for a quarantine rule with expect_compound_columns_to_be_unique"),
        (("kwargs: {column: value}", "kwargs: {column: value}\n    reason: \"bad {voltage}\""), "rules[0].reason: unknown field {voltage}"),
        (("kwargs: {column: value}", "kwargs: {column: value}\n    reason: \"unbalanced { brace\""), "rules[0].reason: unbalanced brace"),
        (("kwargs: {column: value}", "kwargs: {column: value}\n    params: {capacity_kw: 3}"), "rules[0].params.capacity_kw: shadows the context value"),
        (
            ("expectation: expect_column_values_to_not_be_null\n    kwargs: {column: value}", "expectation: expect_column_distinct_values_to_contain_set\n    kwargs: {column: meter_id, value_set: [a]}"),
            "rules[0].severity: quarantine needs a row-level expectation",
        ),
    ],
)
def test_invalid_fields_are_named(tmp_path, edit, expected):
    assert edit[0] in MINIMAL
    msg = load_error(tmp_path, MINIMAL.replace(*edit))
    assert expected in msg


def test_duplicate_rule_ids(tmp_path):
    rule = MINIMAL.split("rules:\n")[1]
    msg = load_error(tmp_path, MINIMAL + rule)
    assert "rules[1].id: duplicate rule id 'value_not_null' (also rules[0])" in msg


def test_every_problem_is_listed(tmp_path):
    msg = load_error(tmp_path, MINIMAL.replace("kwargs: {column: value}", "kwargs: {column: \"${nope}\"}\n    derive: [nothing]"))
    assert "(2 problem(s))" in msg and "rules[0].derive[0]" in msg and "${nope}" in msg


def test_not_yaml_not_a_mapping_missing_and_misnamed(tmp_path):
    assert "not valid YAML" in load_error(tmp_path, "id: [unclosed\n")
    assert "expected a mapping at the top level" in load_error(tmp_path, "- just\n- a list\n")
    with pytest.raises(ContractError, match=r"other.yaml: data contract 'other' not found"):
        load_contract("other", directory=tmp_path)
    write(tmp_path, MINIMAL, name="renamed")
    with pytest.raises(ContractError, match=r"renamed.yaml: id: is 'demo' but the file is named for 'renamed'"):
        load_contract("renamed", directory=tmp_path)
    with pytest.raises(ContractError, match="invalid contract id"):
        load_contract("../etc/passwd")


def test_unknown_expectation_type_fails_at_compile_for_gx(tmp_path, td):
    text = MINIMAL.replace("expect_column_values_to_not_be_null", "expect_column_values_to_be_purple")
    c = load_contract("demo", directory=write(tmp_path, text))  # syntactically fine
    with pytest.raises(ContractError, match=r"demo.yaml: rule value_not_null: expect_column_values_to_be_purple is not a valid GX expectation"):
        compile_suite(c, context=td.context())


def test_native_engine_refuses_what_it_does_not_implement(tmp_path, td):
    text = MINIMAL.replace(
        "expectation: expect_column_values_to_not_be_null\n    kwargs: {column: value}",
        "expectation: expect_column_values_to_match_regex\n    kwargs: {column: source_file, regex: '\\.csv$'}",
    )
    c = load_contract("demo", directory=write(tmp_path, text))
    df = td.clean_frame()
    with pytest.raises(ContractError, match=r"value_not_null: the native evaluator does not implement expect_column_values_to_match_regex"):
        validate_readings(df, contract=c, context=td.context(), engine="native")
    # Great Expectations does implement it: same contract, gx engine.
    out = validate_readings(df, contract=c, context=td.context(), engine="gx")
    assert out.rules[0].success and out.engine == "gx"


def test_native_engine_refuses_unknown_kwargs(tmp_path, td):
    text = MINIMAL.replace("kwargs: {column: value}", "kwargs: {column: value, mostly: 0.9}")
    c = load_contract("demo", directory=write(tmp_path, text))
    with pytest.raises(ContractError, match=r"does not implement expect_column_values_to_not_be_null kwarg\(s\) mostly"):
        validate_readings(td.clean_frame(), contract=c, context=td.context(), engine="native")


def test_input_frame_is_checked(td, contract):
    df = td.clean_frame()
    with pytest.raises(ContractError, match="lacks column"):
        validate_readings(df.drop(columns=["source_row"]), contract=contract, context=td.context(), engine="native")
    with pytest.raises(ContractError, match="timezone-aware"):
        validate_readings(df.assign(ts=df["ts"].dt.tz_localize(None)), contract=contract, context=td.context(), engine="native")
    with pytest.raises(ContractError, match="unknown contract engine"):
        validate_readings(df, contract=contract, context=td.context(), engine="spark")  # type: ignore[arg-type]
    with pytest.raises(ContractError, match="period_end"):
        td.context(end=td.PERIOD_START)
