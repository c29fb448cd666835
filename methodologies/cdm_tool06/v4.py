"""CDM TOOL06 "Project emissions from flaring", version 04.0: flare efficiency per minute and PE_flare,y.

Pure, vectorised functions (numpy arrays of minutes, or scalars). No I/O.

Equations (symbols as in the tool; m = minute of year y):

    PE_flare,y   = GWP_CH4 × Σ_m F_CH4,RG,m × (1 − η_flare,m) / 1000               [tCO2e]
                   F_CH4,RG,m: mass of methane in the residual gas flared in minute m [kg]
                   (determined with TOOL08, see methodologies/cdm_acm0001/v19/monitoring.py)
    η_flare,m    = flare efficiency in minute m                                       [fraction]

η_flare,m by flare type and option (see :func:`eta_flare_m`):

* **Open flare** — default value only (the efficiency of an open flare cannot be measured reliably:
  ambient air dilutes the exhaust): η = 50 % in a minute in which the flare is shown to be
  operating by the flame detection system, 0 % otherwise (no flame, or no flame signal).
* **Enclosed flare, Option A (default value)** — η = 90 % in a minute in which the temperature of
  the exhaust gas is at or above 500 °C and the flare is operated within the manufacturer's
  specifications; 0 % otherwise. (A flame detector, where one is installed, that reports no
  flame or no signal also gives 0 %.)
* **Enclosed flare, Option B (measured)** — η = η_flare,calc in minutes meeting the same operating
  conditions, 0 % otherwise. η_flare,calc comes from the periodic exhaust-gas measurements:
  η_flare,calc,y = 1 − (1/n) Σ_t F_CH4,EG,t / F_CH4,RG,t over the n measurements t of the year
  (:func:`eta_flare_calc_y`; two measurements a year in the tool's biannual option).
* **Low height flares** — for an *enclosed* flare that is a low height flare, the efficiency
  determined under Option A or B is reduced by 0.1 (90 % → 80 %; a measured 99 % → 89 %).

Sources consulted (the v04.0 document itself could not be read through the search tool, so each
rule is cited to the text it was checked against; equation numbers are not given):

* open flare 50 % / 0 % by flame detection: TOOL06 v01 ("Tool to determine project emissions from
  flaring gases containing methane"), section "Baseline methodology procedure";
* Option B measured efficiency, η_flare,calc,y = 1 − ½ Σ_{t=1,2} F_CH4,EG,t / F_CH4,RG,t, and the
  per-minute calculation: TOOL06 v02.0 (EB 68 annex 15), Option B.1;
* low height flares, "subtracting 0.1 from the efficiency as determined in Options A or B. For
  example, the default value applied should be 80%, rather than 90%, and if ... the measured value
  was 99%, then the value to be used shall correspond to 89%": quoted from the tool by the UNFCCC
  secretariat's registration check cdm.unfccc.int/IRCheck/reg_forms/NZ5QIGSRO31W4HF. The tool's
  *definition* of a low height flare was not found, so whether a flare is one is a required
  project fact (``low_height_flare``), not derived from its height here;
* 90 % default with exhaust temperature ≥ 500 °C and the manufacturer's specifications: TOOL06
  default values for enclosed flares. The tool states the temperature condition in seconds within
  the minute (below 500 °C for part of a minute); one minute-average temperature cannot show that,
  so a minute average below 500 °C gives 0 % and a minute average at or above 500 °C is accepted.
  Where the tool grants an intermediate value (temperature met, specifications not met), this
  implementation gives 0 % — never more than the tool, possibly less (conservative).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from mrv.errors import ParameterError

TOOL_ID = "CDM:TOOL06:4.0"
TOOL_TITLE = "Project emissions from flaring"
TOOL_VERSION = "04.0"

FlareType = Literal["open", "enclosed"]
FLARE_TYPES: tuple[str, ...] = ("open", "enclosed")
EfficiencyOption = Literal["default", "measured"]
EFFICIENCY_OPTIONS: tuple[str, ...] = ("default", "measured")

ETA_OPEN_DEFAULT = 0.5  # [fraction] open flare, flame detected
ETA_ENCLOSED_DEFAULT = 0.9  # [fraction] enclosed flare, Option A, operating conditions met
T_EG_MIN_DEGC = 500.0  # [°C] minimum exhaust gas temperature of an enclosed flare
LOW_HEIGHT_ADJUSTMENT = 0.1  # [fraction] subtracted for enclosed low height flares

CLAUSE_PE = "CDM TOOL06 v04.0 'Project emissions from flaring': PE_flare,y = GWP_CH4 × Σ_m F_CH4,RG,m × (1 − η_flare,m) / 1000"
CLAUSE_OPEN = (
    "CDM TOOL06 (open flares): default efficiency 50 % in minutes in which the flare is shown to operate by "
    "the flame detection system, 0 % otherwise (checked against TOOL06 v01 'Baseline methodology procedure')"
)
CLAUSE_ENCLOSED_DEFAULT = (
    "CDM TOOL06 (enclosed flares, Option A default value): 90 % in minutes with exhaust gas temperature ≥ 500 °C "
    "and operation within the manufacturer's specifications, 0 % otherwise"
)
CLAUSE_ENCLOSED_MEASURED = (
    "CDM TOOL06 (enclosed flares, Option B measured efficiency): η_flare,calc,y = 1 − (1/n) Σ_t F_CH4,EG,t / F_CH4,RG,t "
    "from the periodic exhaust-gas measurements, applied in minutes meeting the operating conditions, 0 % otherwise "
    "(checked against TOOL06 v02.0, EB 68 annex 15, Option B.1)"
)
CLAUSE_LOW_HEIGHT = (
    "CDM TOOL06: for enclosed flares that are low height flares, the efficiency from Option A or B is reduced "
    "by 0.1 (90 % -> 80 %; measured 99 % -> 89 %) (as quoted from the tool in UNFCCC registration check "
    "cdm.unfccc.int/IRCheck/reg_forms/NZ5QIGSRO31W4HF); the definition of a low height flare is a project fact "
    "(parameter low_height_flare)"
)
CLAUSE_SUB_MINUTE = (
    "CDM TOOL06 states the exhaust temperature condition within each minute; with one minute-average value per "
    "minute, a minute is accepted only when its average is ≥ 500 °C, and where the tool would grant an "
    "intermediate efficiency (temperature met, specifications not met) 0 % is used (conservative)"
)

Bools = npt.ArrayLike
Floats = npt.NDArray[np.float64]


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ParameterError(f"TOOL06: {name} must be one of {', '.join(choices)}, got {value!r}")


def eta_flare_calc_y(F_CH4_EG_t: npt.ArrayLike, F_CH4_RG_t: npt.ArrayLike) -> float:
    """η_flare,calc,y = 1 − (1/n) Σ_t F_CH4,EG,t / F_CH4,RG,t  [fraction] (Option B).

    ``F_CH4_EG_t``: methane mass flow in the exhaust gas during measurement t [kg];
    ``F_CH4_RG_t``: methane mass flow in the residual gas during the same measurement [kg].
    The result is clipped to [0, 1] only in the sense that a value outside it is refused.
    """
    eg = np.atleast_1d(np.asarray(F_CH4_EG_t, dtype=np.float64))
    rg = np.atleast_1d(np.asarray(F_CH4_RG_t, dtype=np.float64))
    if eg.shape != rg.shape or eg.size == 0:
        raise ParameterError("TOOL06: F_CH4_EG_t and F_CH4_RG_t need the same, non-zero number of measurements")
    if not (np.all(np.isfinite(eg)) and np.all(np.isfinite(rg))) or np.any(eg < 0) or np.any(rg <= 0):
        raise ParameterError("TOOL06: measured methane flows must be finite, F_CH4_EG_t ≥ 0 and F_CH4_RG_t > 0")
    eta = 1.0 - float(np.mean(eg / rg))
    if not 0.0 <= eta <= 1.0:
        raise ParameterError(f"TOOL06: η_flare,calc,y = {eta} lies outside [0, 1] (exhaust methane exceeds residual gas methane)")
    return eta


def eta_flare_m(
    flare_type: str,
    *,
    flame_detected: Bools,
    operating_conditions_met: Bools | None = None,
    option: str = "default",
    eta_flare_calc: float | None = None,
    low_height_flare: bool = False,
) -> Floats:
    """Flare efficiency η_flare,m [fraction] for each minute.

    ``flame_detected``: per minute, True only when the flame detection system shows the flame
    (False for "no flame" and for a missing signal). For an enclosed flare without a flame
    detector, pass True (the temperature condition then shows operation).
    ``operating_conditions_met``: per minute, exhaust gas temperature ≥ 500 °C and operation within
    the manufacturer's specifications (enclosed flares only; required for them).
    ``option``: ``"default"`` (Option A) or ``"measured"`` (Option B, needs ``eta_flare_calc``).
    ``low_height_flare``: the enclosed flare is a low height flare (efficiency − 0.1).
    """
    _check_choice("flare_type", flare_type, FLARE_TYPES)
    _check_choice("option", option, EFFICIENCY_OPTIONS)
    flame = np.asarray(flame_detected, dtype=bool)
    if flare_type == "open":
        if option != "default":
            raise ParameterError("TOOL06: the efficiency of an open flare cannot be measured; only the default value (Option A) applies")
        if low_height_flare:
            raise ParameterError("TOOL06: the low height flare adjustment applies to enclosed flares only")
        return np.where(flame, ETA_OPEN_DEFAULT, 0.0)
    if operating_conditions_met is None:
        raise ParameterError("TOOL06: an enclosed flare needs the per-minute operating conditions (exhaust temperature, manufacturer's specifications)")
    ok = np.asarray(operating_conditions_met, dtype=bool) & flame
    if option == "default":
        if eta_flare_calc is not None:
            raise ParameterError("TOOL06: eta_flare_calc is given but the default option (A) was chosen")
        eta = ETA_ENCLOSED_DEFAULT
    else:
        if eta_flare_calc is None:
            raise ParameterError("TOOL06: Option B (measured) needs eta_flare_calc (η_flare,calc,y from the exhaust-gas measurements)")
        eta = float(eta_flare_calc)
        if not 0.0 <= eta <= 1.0:
            raise ParameterError(f"TOOL06: eta_flare_calc must lie in [0, 1], got {eta}")
    if low_height_flare:
        eta = max(eta - LOW_HEIGHT_ADJUSTMENT, 0.0)
    return np.where(ok, eta, 0.0)


def pe_flare_y(F_CH4_RG_m_kg: npt.ArrayLike, eta_m: npt.ArrayLike, GWP_CH4: float) -> float:
    """PE_flare,y = GWP_CH4 × Σ_m F_CH4,RG,m × (1 − η_flare,m) / 1000  [tCO2e]; F in kg, η as fraction."""
    f = np.asarray(F_CH4_RG_m_kg, dtype=np.float64)
    eta = np.asarray(eta_m, dtype=np.float64)
    if f.shape != eta.shape:
        raise ParameterError("TOOL06: F_CH4_RG_m and η_flare,m differ in length")
    if np.any(f < 0) or np.any(~np.isfinite(f)):
        raise ParameterError("TOOL06: F_CH4_RG_m must be finite and non-negative")
    if np.any((eta < 0) | (eta > 1)):
        raise ParameterError("TOOL06: η_flare,m must lie in [0, 1]")
    return float(GWP_CH4) * float(np.sum(f * (1.0 - eta))) / 1000.0
