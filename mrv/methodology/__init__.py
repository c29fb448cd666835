"""Framework for digitized methodologies: metadata, parameters with units, trace, registry.

Names are imported lazily (PEP 562), so ``import mrv.methodology.cli`` (mounted by ``mrv --help``)
does not pull in pandas and pint; ``from mrv.methodology import Methodology`` works as usual.
See docs/methodology-guide.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "Applicability": "mrv.methodology.base",
    "CalculationResult": "mrv.methodology.base",
    "EquationSpec": "mrv.methodology.base",
    "Methodology": "mrv.methodology.base",
    "MethodologyInfo": "mrv.methodology.base",
    "MonitoredSpec": "mrv.methodology.base",
    "MonitoredValue": "mrv.methodology.base",
    "MonitoringInput": "mrv.methodology.base",
    "OutputSpec": "mrv.methodology.base",
    "ParameterSpec": "mrv.methodology.base",
    "ParameterValue": "mrv.methodology.base",
    "SourceKind": "mrv.methodology.base",
    "round_down_issuable": "mrv.methodology.conservative",
    "Trace": "mrv.methodology.trace",
    "TraceStep": "mrv.methodology.trace",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from mrv.methodology.base import (
        Applicability,
        CalculationResult,
        EquationSpec,
        Methodology,
        MethodologyInfo,
        MonitoredSpec,
        MonitoredValue,
        MonitoringInput,
        OutputSpec,
        ParameterSpec,
        ParameterValue,
        SourceKind,
    )
    from mrv.methodology.conservative import round_down_issuable
    from mrv.methodology.trace import Trace, TraceStep


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mrv.methodology' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
