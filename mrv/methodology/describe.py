"""What ``mrv methodologies list|show`` print, as plain JSON-ready documents (no I/O besides
reading the linked data contracts, which the caller may replace).

:func:`describe` is the one place that turns a :class:`~mrv.methodology.Methodology` declaration
into a document: metadata and source, applicability conditions with their clauses, parameters
(unit, default and its source, or required), monitored data with the data contract that applies
(id, version, rule ids), equations with their clauses, outputs and the issuance rounding rule.
:func:`declaration_problems` checks a declaration for the mistakes a reviewer would otherwise
catch by hand (unknown units, missing contracts, duplicate symbols).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from mrv.errors import MRVError
from mrv.methodology.base import Methodology, ParameterSpec
from mrv.methodology.conservative import ISSUANCE_ROUNDING_CLAUSE

if TYPE_CHECKING:  # pragma: no cover
    from mrv.contracts.model import Contract

ContractLoader = Callable[[str], "Contract"]

ROUNDING = {
    "symbol": "ER_issuable_y",
    "expression": "max(0, floor(ER_y))",
    "unit": "tCO2e",
    "clause": ISSUANCE_ROUNDING_CLAUSE,
}


def _default_loader(contract_id: str) -> "Contract":
    # mrv.contracts compiles to Great Expectations only on demand; loading the YAML does not import it.
    from mrv.contracts import load_contract

    return load_contract(contract_id)


def summary(m: Methodology) -> dict[str, str]:
    """One row of ``mrv methodologies list``."""
    i = m.info
    return {"id": i.id, "title": i.title, "program": i.program, "code": i.code, "version": i.version}


def applicability(m: Methodology) -> list[dict[str, str | None]]:
    """Declared conditions; a plain string has no separate clause (``None``)."""
    out: list[dict[str, str | None]] = []
    for cond in m.info.applicability:
        out.append({"condition": str(cond), "clause": getattr(cond, "clause", None)})
    return out


def parameter_doc(p: ParameterSpec) -> dict[str, Any]:
    if p.default is not None:
        status = "default"
    elif p.required:
        status = "required"
    else:
        status = "optional"
    return {
        "symbol": p.symbol,
        "description": p.description,
        "kind": p.kind,
        "unit": p.unit if p.kind == "quantity" else None,
        "status": status,  # required | default | optional (no default; the calculator says when it is needed)
        "required": p.required and p.default is None,
        "default": p.default,
        "default_source": p.default_source,
        "choices": list(p.choices),
        "minimum": p.minimum,
        "maximum": p.maximum,
    }


def contract_doc(contract_id: str, loader: ContractLoader | None = None) -> dict[str, Any]:
    """``{id, found, version, description, rules: [{id, severity, clause}]}``; a contract that cannot
    be loaded gives ``found: false`` and the error (``show`` must still work)."""
    try:
        c = (loader or _default_loader)(contract_id)
    except MRVError as exc:
        return {"id": contract_id, "found": False, "error": str(exc), "version": None, "rules": []}
    return {
        "id": c.id,
        "found": True,
        "version": c.version,
        "description": c.description.strip(),
        "rules": [{"id": r.id, "severity": getattr(r.severity, "value", str(r.severity)), "clause": r.clause} for r in c.rules],
    }


def describe(m: Methodology, *, contract_loader: ContractLoader | None = None) -> dict[str, Any]:
    """The full ``mrv methodologies show --json`` document of one methodology.

    Each distinct contract is loaded once (``contract_loader``, default
    :func:`mrv.contracts.load_contract`).
    """
    i = m.info
    contracts: dict[str, dict[str, Any]] = {}
    for spec in m.monitored:
        if spec.contract not in contracts:
            contracts[spec.contract] = contract_doc(spec.contract, contract_loader)
    return {
        "id": i.id,
        "title": i.title,
        "program": i.program,
        "code": i.code,
        "version": i.version,
        "source": {"document": i.source_document, "url": i.source_url, "tools": list(i.tools)},
        "applicability": applicability(m),
        "parameters": [parameter_doc(p) for p in m.parameters],
        "monitored": [
            {
                "name": s.name,
                "description": s.description,
                "source": s.source,
                "unit": s.unit,
                "contract": contracts[s.contract],
            }
            for s in m.monitored
        ],
        # The names and units `mrv calculate` takes under `monitored:` (= calculate()'s inputs).
        "monitored_values": [v._asdict() for v in m.monitored_values()],
        "instrument_quantities": dict(getattr(m, "instrument_quantities", None) or {}),
        "equations": [e.to_dict() for e in m.equations],
        "outputs": [o.to_dict() for o in m.outputs],
        "rounding": dict(ROUNDING),
    }


def _unit_problem(unit: str) -> str | None:
    from mrv.methodology.units import ureg

    try:
        ureg().Unit(unit)
    except Exception as exc:  # pint raises several types (UndefinedUnitError, parse errors)
        return f"{type(exc).__name__}: {exc}"
    return None


def _duplicates(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for x in items:
        if x in seen and x not in dup:
            dup.append(x)
        seen.add(x)
    return dup


def declaration_problems(m: Methodology, *, contract_loader: ContractLoader | None = None) -> list[str]:
    """Mistakes in a methodology's declaration; empty when it is consistent.

    Checks: the id is ``<program>:<code>:<version>`` and agrees with ``program``/``code``/``version``;
    parameter, monitored-value and instrument-quantity units are pint units (they are converted at
    the edge); symbols are unique; every MonitoredSpec's contract exists in ``data_contracts/`` and
    loads; choices have choices; outputs, when declared, include ``ER_y``.
    """
    i = m.info
    problems: list[str] = []
    parts = i.id.split(":")
    if len(parts) != 3 or not all(parts):
        problems.append(f"id {i.id!r} is not <program>:<code>:<version>")
    elif tuple(parts) != (i.program, i.code, i.version):
        problems.append(f"id {i.id!r} disagrees with program/code/version {i.program!r}/{i.code!r}/{i.version!r}")
    values = m.monitored_values()
    for what, symbols in (
        ("parameter", [p.symbol for p in m.parameters]),
        ("monitored spec", [s.name for s in m.monitored]),
        ("monitored value", [v.name for v in values] if m.aggregated else []),
        ("output", [o.symbol for o in m.outputs]),
    ):
        for d in _duplicates(symbols):
            problems.append(f"{what} {d!r} is declared twice")
    for clash in sorted({p.symbol for p in m.parameters} & {v.name for v in values}):
        problems.append(f"{clash!r} is both a parameter and a monitored value")
    for p in m.parameters:
        if p.kind == "quantity" and (err := _unit_problem(p.unit)):
            problems.append(f"parameter {p.symbol}: unit {p.unit!r} is not a pint unit ({err})")
        if p.kind == "choice" and not p.choices:
            problems.append(f"parameter {p.symbol}: kind 'choice' without choices")
        if p.kind == "choice" and p.default is not None and str(p.default) not in p.choices:
            problems.append(f"parameter {p.symbol}: default {p.default!r} is not one of its choices")
    for v in values:  # converted with pint at the edge (mrv calculate), so they must be pint units
        if err := _unit_problem(v.unit):
            problems.append(f"monitored {v.name}: unit {v.unit!r} is not a pint unit ({err})")
    for q, unit in (getattr(m, "instrument_quantities", None) or {}).items():
        if err := _unit_problem(unit):
            problems.append(f"instrument quantity {q}: unit {unit!r} is not a pint unit ({err})")
    loaded: dict[str, dict[str, Any]] = {}
    for s in m.monitored:
        doc = loaded.setdefault(s.contract, contract_doc(s.contract, contract_loader))
        if not doc["found"]:
            problems.append(f"monitored {s.name}: contract {s.contract!r} not found or invalid ({doc['error']})")
    if m.outputs and "ER_y" not in {o.symbol for o in m.outputs}:
        problems.append("outputs are declared but do not include ER_y")
    return problems
