"""VM0047 v1.0 Appendix 1, Steps 5-6: yearly stocking index, trend comparison of project and matched
control plots, the Z test and the dynamic performance benchmark PB_t.

Symbols: SI_i,y yearly stocking index of plot i [SI units]; b_i OLS slope of SI_i,y over the years
t0..t [SI units / yr]; β_WP = mean_p b_p; β_CP = mean_p Σ_j w_pj b_j; SE = sd / sqrt(n_WP);
Z = (β_WP − β_CP) / sqrt(SE_WP² + SE_CP²); PB_t [dimensionless]. See :mod:`.clauses`.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd

from methodologies.vcs_vm0047.v1 import clauses
from mrv.errors import MethodologyError

__all__ = ["performance_benchmark", "plot_slopes", "trend_comparison", "yearly_si", "z_statistic"]


def yearly_si(frame: pd.DataFrame, *, season_start_month: int, season_end_month: int) -> pd.DataFrame:
    """Per plot and calendar year, the median of the valid observations inside the season.

    ``frame``: ``plot_id, ts, value`` (``value`` = si_mean; ``date``/``si_mean`` are accepted as
    the column names too). Months ``season_start_month..season_end_month`` inclusive; a season that
    wraps the year end (e.g. 11..2) is not supported (it would mix two calendar years). Rows with a
    missing value are ignored. Returns a wide frame: index plot_id, one column per year.
    """
    f = frame.rename(columns={"date": "ts", "si_mean": "value"})
    for col in ("plot_id", "ts", "value"):
        if col not in f.columns:
            raise MethodologyError(f"VM0047: the plot statistics frame has no column {col!r}")
    if not (1 <= season_start_month <= season_end_month <= 12):
        raise MethodologyError(f"VM0047: growing season months {season_start_month}..{season_end_month} must satisfy 1 <= start <= end <= 12")
    ts = pd.to_datetime(f["ts"], utc=True)
    v = pd.to_numeric(f["value"], errors="coerce")
    keep = v.notna() & ts.notna() & ts.dt.month.between(season_start_month, season_end_month)
    d = pd.DataFrame({"plot_id": f["plot_id"].astype(str)[keep], "year": ts.dt.year[keep], "SI": v[keep]})
    return d.groupby(["plot_id", "year"])["SI"].median().unstack("year").sort_index(axis=1)


def plot_slopes(si: pd.DataFrame, *, t0_year: int, t_year: int) -> pd.Series:
    """OLS slope [SI units / yr] of each plot's yearly SI over the years t0_year..t_year that it has.

    A plot without SI at t0_year or at t_year gets NaN (Step 5: its matched set is excluded).
    With only those two years the slope is (SI_t − SI_t0) / (t − t0).
    """
    if t_year <= t0_year:
        raise MethodologyError(f"VM0047: monitoring year t = {t_year} must be after t0 = {t0_year}")
    years = [y for y in si.columns if t0_year <= int(y) <= t_year]
    if t0_year not in years or t_year not in years:
        return pd.Series(np.nan, index=si.index, name="slope")
    Y = si[years].to_numpy(dtype=np.float64)
    x = np.asarray(years, dtype=np.float64)
    ok = np.isfinite(Y)
    n = ok.sum(axis=1)
    xw = np.where(ok, x[None, :], 0.0)
    yw = np.where(ok, Y, 0.0)
    xm = xw.sum(axis=1) / np.maximum(n, 1)
    ym = yw.sum(axis=1) / np.maximum(n, 1)
    sxx = np.where(ok, (x[None, :] - xm[:, None]) ** 2, 0.0).sum(axis=1)
    sxy = np.where(ok, (x[None, :] - xm[:, None]) * (Y - ym[:, None]), 0.0).sum(axis=1)
    slope = np.where(sxx > 0, sxy / np.where(sxx > 0, sxx, 1.0), np.nan)
    complete = ok[:, years.index(t0_year)] & ok[:, years.index(t_year)]
    return pd.Series(np.where(complete, slope, np.nan), index=si.index, name="slope")


def trend_comparison(matches: pd.DataFrame, slopes: pd.Series) -> dict[str, float]:
    """β_WP, SE_WP, β_CP, SE_CP and n_WP from the matched sets (``project_id, control_id, weight``)
    and per-plot slopes. Matched sets whose project plot or any control lacks a slope are dropped
    and the remaining control weights are renormalised to sum to 1 (Steps 4-5)."""
    m = matches.assign(b_c=slopes.reindex(matches["control_id"]).to_numpy())
    m = m[np.isfinite(m["b_c"])]
    w_sum = m.groupby("project_id")["weight"].transform("sum")
    m = m.assign(w=m["weight"] / w_sum)
    b_cp = (m["w"] * m["b_c"]).groupby(m["project_id"]).sum()
    b_wp = slopes.reindex(b_cp.index)
    ok = np.isfinite(b_wp.to_numpy()) & np.isfinite(b_cp.to_numpy())
    b_wp, b_cp = b_wp[ok], b_cp[ok]
    n = int(len(b_wp))
    if n < 2:
        raise MethodologyError(f"VM0047: {n} matched set(s) with SI at t0 and t; the trend comparison needs at least 2")
    return {
        "beta_WP": float(b_wp.mean()), "SE_beta_WP": float(b_wp.std(ddof=1) / math.sqrt(n)),
        "beta_CP": float(b_cp.mean()), "SE_beta_CP": float(b_cp.std(ddof=1) / math.sqrt(n)),
        "n_WP": float(n),
    }


def z_statistic(beta_WP: float, SE_WP: float, beta_CP: float, SE_CP: float) -> float:
    """Eq. A7 as implemented: Z = (β_WP − β_CP) / sqrt(SE_WP² + SE_CP²). When both SE are 0 the
    difference is certain: ±sys.float_info.max (finite, so the trace stays valid JSON), 0 if equal."""
    den = math.sqrt(SE_WP ** 2 + SE_CP ** 2)
    diff = beta_WP - beta_CP
    if den == 0:
        return 0.0 if diff == 0 else math.copysign(sys.float_info.max, diff)
    return diff / den


def performance_benchmark(beta_WP: float, SE_WP: float, beta_CP: float, SE_CP: float) -> tuple[float, float, float, str]:
    """Step 6: ``(PB_t, Z, β_CP_used, case)``.

    |Z| < 1.96 → PB_t = 1 ("not_different"). Otherwise the control slope is set to 0 when it is
    negative or not significant (|β_CP / SE_CP| < 1.96), and PB_t = β_CP_used / β_WP; where
    β_WP <= 0 there is no project growth to credit and PB_t = 1 ("no_project_growth").
    """
    Z = z_statistic(beta_WP, SE_WP, beta_CP, SE_CP)
    if not abs(Z) >= clauses.Z_CRIT:
        return 1.0, Z, beta_CP, "not_different"
    if beta_WP <= 0:
        return 1.0, Z, beta_CP, "no_project_growth"
    z_cp = beta_CP / SE_CP if SE_CP > 0 else (sys.float_info.max if beta_CP > 0 else 0.0)
    if beta_CP <= 0 or abs(z_cp) < clauses.Z_CRIT:
        return 0.0, Z, 0.0, "control_slope_zero"
    return beta_CP / beta_WP, Z, beta_CP, "ratio"
