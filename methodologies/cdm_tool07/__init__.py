"""CDM TOOL07: Tool to calculate the emission factor for an electricity system (combined margin)."""

from methodologies.cdm_tool07.v7 import (
    CLAUSE_CM,
    CLAUSE_WEIGHTS,
    TOOL_ID,
    CMWeights,
    CombinedMargin,
    cm_weights,
    combined_margin,
    resolve_combined_margin,
)

__all__ = [
    "CLAUSE_CM",
    "CLAUSE_WEIGHTS",
    "TOOL_ID",
    "CMWeights",
    "CombinedMargin",
    "cm_weights",
    "combined_margin",
    "resolve_combined_margin",
]
