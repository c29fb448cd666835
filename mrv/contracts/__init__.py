"""Data contracts: YAML rules in ``data_contracts/`` compiled to Great Expectations 1.x suites and
evaluated on tidy readings to split them into valid rows and a quarantine (rule + reason).

Great Expectations is imported lazily (only by :func:`compile_suite` and the ``gx`` engine).
"""

from mrv.contracts.compile import DERIVATIONS, compile_contract, compile_suite, load_contract, parse_contract
from mrv.contracts.model import Contract, ContractContext, KeepPolicy, Rule, RowCondition, Severity, Stage
from mrv.contracts.runner import Engine, RuleResult, ValidationOutcome, validate_readings

__all__ = [
    "DERIVATIONS",
    "Contract",
    "ContractContext",
    "Engine",
    "KeepPolicy",
    "RowCondition",
    "Rule",
    "RuleResult",
    "Severity",
    "Stage",
    "ValidationOutcome",
    "compile_contract",
    "compile_suite",
    "load_contract",
    "parse_contract",
    "validate_readings",
]
