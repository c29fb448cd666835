"""VM0047 v1.0 section 8.2/8.4: tree allometry -> plot carbon stocks -> per-hectare change, sampling
uncertainty and the uncertainty deduction, and the non-permanence buffer. Pure functions.

Units: D [cm], H [m], ρ [g/cm³], AGB and BGB [kg dry matter], CF [t C / t d.m.], stocks [tCO2e],
per-hectare stocks [tCO2e/ha]. See :mod:`.clauses`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from methodologies.vcs_vm0047.v1 import clauses
from mrv.errors import MethodologyError

__all__ = [
    "CO2_PER_C",
    "agb_chave2014_eq4",
    "agb_power_law",
    "buffer_withheld",
    "plot_stocks_per_ha",
    "sampling_statistics",
    "tree_co2e_t",
    "uncertainty_deduction_fraction",
]

CO2_PER_C = 44.0 / 12.0  # molar mass ratio CO2 / C [t CO2 / t C]
KG_PER_T = 1000.0


def agb_chave2014_eq4(rho: np.ndarray | float, D: np.ndarray | float, H: np.ndarray | float) -> np.ndarray:
    """Chave et al. (2014) eq. 4: AGB = 0.0673 × (ρ D² H)^0.976 [kg] (ρ g/cm³, D cm, H m)."""
    return 0.0673 * np.power(np.asarray(rho, dtype=np.float64) * np.asarray(D, dtype=np.float64) ** 2
                             * np.asarray(H, dtype=np.float64), 0.976)


def agb_power_law(D: np.ndarray | float, H: np.ndarray | float, rho: np.ndarray | float, *,
                  a: float, b: float, c: float, d: float) -> np.ndarray:
    """Generic allometry AGB = a × D^b × H^c × ρ^d [kg] (c = d = 0 gives the diameter-only form a × D^b)."""
    D = np.asarray(D, dtype=np.float64)
    out = a * D ** b
    if c:
        out = out * np.asarray(H, dtype=np.float64) ** c
    if d:
        out = out * np.asarray(rho, dtype=np.float64) ** d
    return out


def tree_co2e_t(agb_kg: np.ndarray | float, *, R: float, CF: float) -> np.ndarray:
    """C_tree = AGB × (1 + R) × CF × 44/12 / 1000 [tCO2e] (BGB = AGB × R)."""
    return np.asarray(agb_kg, dtype=np.float64) * (1.0 + R) * CF * CO2_PER_C / KG_PER_T


def plot_stocks_per_ha(tree_t: pd.Series, plot_of_tree: pd.Series, plot_area_ha: pd.Series) -> pd.Series:
    """c_p = Σ_{trees in p} C_tree / A_p [tCO2e/ha] for every plot of ``plot_area_ha`` (index
    plot_id); a plot without trees has c_p = 0."""
    total = pd.Series(np.asarray(tree_t, dtype=np.float64), index=np.asarray(plot_of_tree)).groupby(level=0).sum()
    total = total.reindex(plot_area_ha.index, fill_value=0.0)
    return total / plot_area_ha.astype(np.float64)


def sampling_statistics(x: np.ndarray, *, confidence: float = clauses.CONFIDENCE) -> dict[str, float]:
    """Mean, standard deviation (ddof 1), standard error, Student t (two-sided ``confidence``, n − 1
    df) and the confidence-interval half-width t × SE of a simple random sample ``x``."""
    from scipy.stats import t as student_t

    x = np.asarray(x, dtype=np.float64)
    n = int(x.size)
    if n < 2 or not np.all(np.isfinite(x)):
        raise MethodologyError(f"VM0047: sampling uncertainty needs at least 2 finite plot values, got {n}")
    sd = float(x.std(ddof=1))
    se = sd / math.sqrt(n)
    t = float(student_t.ppf(0.5 + confidence / 2.0, n - 1))
    return {"n": float(n), "mean": float(x.mean()), "sd": sd, "se": se, "t": t, "half_width": t * se}


def uncertainty_deduction_fraction(U: float, U_allow: float) -> float:
    """UNC_t [fraction of the net removals]: 0 when U <= U_allow, U − U_allow above it, and 1 (nothing
    credited) when U > 1 (the CI half-width exceeds 100 % of the estimate)."""
    if not (U >= 0) or not (0 <= U_allow <= 1):
        raise MethodologyError(f"VM0047: uncertainty U = {U!r} and allowable U_allow = {U_allow!r} must be >= 0 (U_allow <= 1)")
    if U > 1.0:
        return 1.0
    return max(0.0, U - U_allow)


def buffer_withheld(ER: float, buffer_pct: float) -> float:
    """buffer_y = max(0, ER_y) × buffer_pct [tCO2e]: nothing is withheld from a non-positive result."""
    if not (0 <= buffer_pct <= 1):
        raise MethodologyError(f"VM0047: buffer_pct must be a fraction in [0, 1], got {buffer_pct!r}")
    return max(0.0, ER) * buffer_pct
