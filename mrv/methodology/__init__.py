"""Framework for digitized methodologies: metadata, parameters with units, trace, registry."""

from mrv.methodology.base import (
    CalculationResult,
    Methodology,
    MethodologyInfo,
    MonitoredSpec,
    MonitoringInput,
    ParameterSpec,
    ParameterValue,
    round_down_issuable,
)
from mrv.methodology.trace import Trace, TraceStep

__all__ = [
    "CalculationResult",
    "Methodology",
    "MethodologyInfo",
    "MonitoredSpec",
    "MonitoringInput",
    "ParameterSpec",
    "ParameterValue",
    "Trace",
    "TraceStep",
    "round_down_issuable",
]
