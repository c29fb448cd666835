"""Framework for digitized methodologies: metadata, parameters with units, trace, registry."""

from mrv.methodology.base import (
    CalculationResult,
    EquationSpec,
    Methodology,
    MethodologyInfo,
    MonitoredSpec,
    MonitoringInput,
    OutputSpec,
    ParameterSpec,
    ParameterValue,
    SourceKind,
    round_down_issuable,
)
from mrv.methodology.trace import Trace, TraceStep

__all__ = [
    "CalculationResult",
    "EquationSpec",
    "Methodology",
    "MethodologyInfo",
    "MonitoredSpec",
    "MonitoringInput",
    "OutputSpec",
    "ParameterSpec",
    "ParameterValue",
    "SourceKind",
    "Trace",
    "TraceStep",
    "round_down_issuable",
]
