"""CDM TOOL06: Project emissions from flaring (flare efficiency per minute, PE_flare,y)."""

from methodologies.cdm_tool06.v4 import (
    CLAUSE_ENCLOSED_DEFAULT,
    CLAUSE_ENCLOSED_MEASURED,
    CLAUSE_LOW_HEIGHT,
    CLAUSE_OPEN,
    CLAUSE_PE,
    CLAUSE_SUB_MINUTE,
    EFFICIENCY_OPTIONS,
    ETA_ENCLOSED_DEFAULT,
    ETA_OPEN_DEFAULT,
    FLARE_TYPES,
    LOW_HEIGHT_ADJUSTMENT,
    T_EG_MIN_DEGC,
    TOOL_ID,
    eta_flare_calc_y,
    eta_flare_m,
    pe_flare_y,
)

__all__ = [
    "CLAUSE_ENCLOSED_DEFAULT",
    "CLAUSE_ENCLOSED_MEASURED",
    "CLAUSE_LOW_HEIGHT",
    "CLAUSE_OPEN",
    "CLAUSE_PE",
    "CLAUSE_SUB_MINUTE",
    "EFFICIENCY_OPTIONS",
    "ETA_ENCLOSED_DEFAULT",
    "ETA_OPEN_DEFAULT",
    "FLARE_TYPES",
    "LOW_HEIGHT_ADJUSTMENT",
    "T_EG_MIN_DEGC",
    "TOOL_ID",
    "eta_flare_calc_y",
    "eta_flare_m",
    "pe_flare_y",
]
