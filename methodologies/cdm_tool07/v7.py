"""CDM TOOL07 "Tool to calculate the emission factor for an electricity system", version 07.0.

Only Step 6 (the combined margin) is implemented: the operating margin (Steps 3-4) and build margin
(Step 5) come from a published source (e.g. a national grid emission factor database) and are
passed in as parameters. Pure functions, no I/O.

Combined margin, weighted average CM (TOOL07 v07.0, Step 6 "Calculate the combined margin
emissions factor"):

    EF_grid_CM_y = EF_grid_OM_y × w_OM + EF_grid_BM_y × w_BM                      [tCO2e/MWh]

Default weights (same section):

* wind and solar power generation project activities: w_OM = 0.75, w_BM = 0.25, for the first
  and for subsequent crediting periods (intermittent, non-dispatchable generation);
* all other projects: w_OM = 0.5, w_BM = 0.5 for the first crediting period and w_OM = 0.25,
  w_BM = 0.75 for the second and third crediting periods.

Check against published numbers: the Indian CEA "CO2 Baseline Database for the Indian Power
Sector" computes its combined margin with TOOL07 v7.0 and publishes OM, BM and CM (see
``tests/methodologies/cdm_tool07/test_tool07.py``, which reproduces them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from mrv.errors import ParameterError

TOOL_ID = "CDM:TOOL07:7.0"
TOOL_TITLE = "Tool to calculate the emission factor for an electricity system"
TOOL_VERSION = "07.0"

ProjectType = Literal["wind", "solar", "other"]
PROJECT_TYPES: tuple[str, ...] = ("wind", "solar", "other")
CREDITING_PERIODS: tuple[int, ...] = (1, 2, 3)

CLAUSE_CM = "CDM TOOL07 v07.0, Step 6 'Calculate the combined margin emissions factor', weighted average CM"
CLAUSE_WEIGHTS = (
    "CDM TOOL07 v07.0, Step 6 (weighted average CM), default weights: wind and solar w_OM=0.75/w_BM=0.25 "
    "for all crediting periods; all other projects 0.5/0.5 in the first and 0.25/0.75 in the second and "
    "third crediting periods"
)

# Tolerance when both a published CM and OM/BM are supplied: published factors are rounded to
# 3-4 decimals, so a computed CM can differ from a published one by a few 1e-5.
CM_CONSISTENCY_TOLERANCE = 5e-4  # [tCO2e/MWh]


@dataclass(frozen=True, slots=True)
class CMWeights:
    """Weights of the operating and build margins; ``w_OM + w_BM == 1``."""

    w_OM: float
    w_BM: float
    clause: str = CLAUSE_WEIGHTS


@dataclass(frozen=True, slots=True)
class CombinedMargin:
    """Result of Step 6.

    ``path`` is ``"weighted_average"`` (computed from OM and BM) or ``"published_cm"`` (a supplied
    EF_grid_CM_y was used as is; OM/BM and weights are then ``None``).
    """

    EF_grid_CM_y: float  # [tCO2e/MWh]
    path: Literal["weighted_average", "published_cm"]
    EF_grid_OM_y: float | None = None  # [tCO2e/MWh]
    EF_grid_BM_y: float | None = None  # [tCO2e/MWh]
    w_OM: float | None = None
    w_BM: float | None = None
    clause: str = CLAUSE_CM


def cm_weights(project_type: str, crediting_period: int) -> CMWeights:
    """Default (w_OM, w_BM) by project type and crediting period (TOOL07 v07.0, Step 6)."""
    if project_type not in PROJECT_TYPES:
        raise ParameterError(f"TOOL07: project_type must be one of {', '.join(PROJECT_TYPES)}, got {project_type!r}")
    if isinstance(crediting_period, bool) or not isinstance(crediting_period, int) or crediting_period not in CREDITING_PERIODS:
        raise ParameterError(f"TOOL07: crediting_period must be 1, 2 or 3, got {crediting_period!r}")
    if project_type in ("wind", "solar"):
        return CMWeights(0.75, 0.25)  # all crediting periods
    if crediting_period == 1:
        return CMWeights(0.5, 0.5)
    return CMWeights(0.25, 0.75)  # second and third crediting periods


def combined_margin(EF_grid_OM_y: float, EF_grid_BM_y: float, w_OM: float, w_BM: float) -> float:
    """EF_grid_CM_y = EF_grid_OM_y × w_OM + EF_grid_BM_y × w_BM  [tCO2e/MWh] (TOOL07 v07.0, Step 6)."""
    for name, v in (("EF_grid_OM_y", EF_grid_OM_y), ("EF_grid_BM_y", EF_grid_BM_y)):
        if not math.isfinite(v) or v < 0:
            raise ParameterError(f"TOOL07: {name} must be a finite non-negative emission factor, got {v!r}")
    if not (0.0 <= w_OM <= 1.0 and 0.0 <= w_BM <= 1.0 and math.isclose(w_OM + w_BM, 1.0, abs_tol=1e-12)):
        raise ParameterError(f"TOOL07: weights must lie in [0, 1] and sum to 1, got w_OM={w_OM}, w_BM={w_BM}")
    return EF_grid_OM_y * w_OM + EF_grid_BM_y * w_BM


def resolve_combined_margin(
    project_type: str,
    crediting_period: int,
    *,
    EF_grid_OM_y: float | None = None,
    EF_grid_BM_y: float | None = None,
    EF_grid_CM_y: float | None = None,
) -> CombinedMargin:
    """The CM to use: computed from OM and BM with the default weights, or a supplied published CM.

    * OM and BM given (CM not given): weighted average with :func:`cm_weights`.
    * CM given (OM and BM not given): used as published.
    * All three given: the computed CM must agree with the supplied one within
      :data:`CM_CONSISTENCY_TOLERANCE`, otherwise :class:`ParameterError` (a typical cause is a
      published 50/50 CM supplied for a wind or solar project, which needs 75/25). The computed
      value is then used.
    * Anything else (nothing, or OM without BM): :class:`ParameterError`.
    """
    weights = cm_weights(project_type, crediting_period)
    has_om, has_bm, has_cm = EF_grid_OM_y is not None, EF_grid_BM_y is not None, EF_grid_CM_y is not None
    if has_om != has_bm:
        missing = "EF_grid_BM_y" if has_om else "EF_grid_OM_y"
        raise ParameterError(
            f"TOOL07: {missing} is missing; supply both EF_grid_OM_y and EF_grid_BM_y, or a published EF_grid_CM_y"
        )
    if has_om:
        assert EF_grid_OM_y is not None and EF_grid_BM_y is not None
        cm = combined_margin(EF_grid_OM_y, EF_grid_BM_y, weights.w_OM, weights.w_BM)
        if has_cm:
            assert EF_grid_CM_y is not None
            if abs(cm - EF_grid_CM_y) > CM_CONSISTENCY_TOLERANCE:
                raise ParameterError(
                    f"TOOL07: supplied EF_grid_CM_y={EF_grid_CM_y} tCO2e/MWh disagrees with the combined margin "
                    f"{cm:.6f} tCO2e/MWh computed from EF_grid_OM_y={EF_grid_OM_y} and EF_grid_BM_y={EF_grid_BM_y} "
                    f"with w_OM={weights.w_OM}, w_BM={weights.w_BM} ({project_type}, crediting period "
                    f"{crediting_period}); supply either the CM or OM and BM"
                )
        return CombinedMargin(cm, "weighted_average", EF_grid_OM_y, EF_grid_BM_y, weights.w_OM, weights.w_BM)
    if has_cm:
        assert EF_grid_CM_y is not None
        if not math.isfinite(EF_grid_CM_y) or EF_grid_CM_y < 0:
            raise ParameterError(f"TOOL07: EF_grid_CM_y must be a finite non-negative emission factor, got {EF_grid_CM_y!r}")
        return CombinedMargin(EF_grid_CM_y, "published_cm")
    raise ParameterError(
        "TOOL07: no grid emission factor; supply either EF_grid_CM_y (published combined margin) "
        "or both EF_grid_OM_y and EF_grid_BM_y"
    )
