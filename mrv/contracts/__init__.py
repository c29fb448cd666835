"""Data contracts: YAML rules in ``data_contracts/`` compiled to Great Expectations 1.x suites and
evaluated on a tidy keyed time series (meter readings, instrument or device data) to split it into
valid rows and a quarantine (rule + reason).

Great Expectations is imported lazily (only by :func:`compile_suite` and the ``gx`` engine).
"""

from mrv.contracts.compile import DERIVATIONS, compile_contract, compile_suite, load_contract, parse_contract
from mrv.contracts.model import (
    CalibrationWindow,
    Contract,
    ContractContext,
    KeepPolicy,
    Rule,
    RowCondition,
    SeriesSource,
    Severity,
    Stage,
    conservative_keep,
)
from mrv.contracts.runner import Engine, RuleResult, ValidationOutcome, gap_columns, validate_readings

__all__ = [
    "DERIVATIONS",
    "CalibrationWindow",
    "Contract",
    "ContractContext",
    "Engine",
    "KeepPolicy",
    "RowCondition",
    "Rule",
    "RuleResult",
    "SeriesSource",
    "Severity",
    "Stage",
    "ValidationOutcome",
    "compile_contract",
    "compile_suite",
    "conservative_keep",
    "gap_columns",
    "load_contract",
    "parse_contract",
    "validate_readings",
]
