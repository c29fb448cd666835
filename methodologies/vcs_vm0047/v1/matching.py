"""VM0047 v1.0 Appendix 1, Steps 2-3: candidate control plots, Mahalanobis k-NN matching, weights and
the standardised-difference (balance) check. Pure functions on arrays and frames.

Symbols: x_p, x_c covariate vectors of project plot p and control plot c; S the covariance matrix of
the covariates; d_pc = sqrt((x_p − x_c)' S⁻¹ (x_p − x_c)) [dimensionless]; w_pj the weight of the
j-th matched control of p (Σ_j w_pj = 1). See :mod:`.clauses` for what each rule rests on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from methodologies.vcs_vm0047.v1 import clauses
from mrv.errors import MethodologyError

__all__ = [
    "BalanceError",
    "balance_table",
    "candidate_controls",
    "check_balance",
    "covariance",
    "inverse_distance_weights",
    "knn_match",
    "mahalanobis_matrix",
]


class BalanceError(MethodologyError):
    """Matched controls fail the standardised-difference check; the message names each failing
    covariate with its SDM and means. ``.table`` holds the whole balance table."""

    def __init__(self, message: str, table: pd.DataFrame) -> None:
        super().__init__(message)
        self.table = table


def covariance(X: np.ndarray) -> np.ndarray:
    """Sample covariance (ddof = 1) of the rows of ``X`` (n × m); needs n >= 2."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2:
        raise MethodologyError("VM0047 matching: the covariance needs at least two plots with complete covariates")
    return np.atleast_2d(np.cov(X, rowvar=False, ddof=1))


def mahalanobis_matrix(X_p: np.ndarray, X_c: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Mahalanobis distances d[p, c] = sqrt((x_p − x_c)' S⁻¹ (x_p − x_c)) between every project plot
    (rows of ``X_p``) and control plot (rows of ``X_c``). A singular S (a constant covariate, or
    collinear covariates) uses the Moore-Penrose pseudo-inverse."""
    X_p = np.atleast_2d(np.asarray(X_p, dtype=np.float64))
    X_c = np.atleast_2d(np.asarray(X_c, dtype=np.float64))
    S = np.atleast_2d(np.asarray(S, dtype=np.float64))
    if X_p.shape[1] != X_c.shape[1] or S.shape != (X_p.shape[1], X_p.shape[1]):
        raise MethodologyError("VM0047 matching: covariate dimensions of project plots, controls and S disagree")
    S_inv = np.linalg.pinv(S, hermitian=True)
    diff = X_p[:, None, :] - X_c[None, :, :]
    d2 = np.einsum("pci,ij,pcj->pc", diff, S_inv, diff)
    return np.sqrt(np.maximum(d2, 0.0))


def candidate_controls(
    plots: pd.DataFrame, *, mean_project_area_ha: float, d_max_km: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Controls of the donor pool that may be matched, and those excluded with the rule.

    ``plots``: the control rows of the plot registry, columns ``plot_id, area_ha, distance_km`` and
    optionally ``donor_pool_ok`` (Table A1 spatial criteria evaluated upstream; missing = True).
    Kept: ``donor_pool_ok``, ``|area_ha / mean_project_area − 1| <= 0.20`` (Step 2 item 2) and
    ``distance_km <= d_max_km`` (Table A1 distance criterion, project parameter).
    """
    for col in ("plot_id", "area_ha", "distance_km"):
        if col not in plots.columns:
            raise MethodologyError(f"VM0047: the plot registry has no column {col!r} for control plots")
    area = pd.to_numeric(plots["area_ha"], errors="coerce").to_numpy(dtype=np.float64)
    dist = pd.to_numeric(plots["distance_km"], errors="coerce").to_numpy(dtype=np.float64)
    ok_pool = plots["donor_pool_ok"].fillna(False).astype(bool).to_numpy() if "donor_pool_ok" in plots else np.ones(len(plots), bool)
    rel = np.abs(area / mean_project_area_ha - 1.0)
    size_ok = rel <= clauses.CONTROL_SIZE_TOLERANCE + 1e-12
    dist_ok = dist <= d_max_km
    reason = np.where(~ok_pool, "outside the donor pool (Table A1 criteria)",
                      np.where(~np.isfinite(area) | ~size_ok,
                               "area not within ±20 % of the mean project-plot area",
                               np.where(~np.isfinite(dist) | ~dist_ok, f"farther than d_max_donor = {d_max_km} km", "")))
    keep = reason == ""
    excluded = plots.loc[~keep, ["plot_id"]].assign(reason=reason[~keep])
    return plots.loc[keep].reset_index(drop=True), excluded.reset_index(drop=True)


def inverse_distance_weights(distances: Sequence[float] | np.ndarray) -> np.ndarray:
    """Eq. A1 as implemented: w_j = (1/d_j) / Σ (1/d_j'). Controls at distance 0 (exact matches)
    share the whole weight equally (the limit of the formula)."""
    d = np.asarray(distances, dtype=np.float64)
    if d.size == 0 or np.any(~np.isfinite(d)) or np.any(d < 0):
        raise MethodologyError(f"VM0047 weights: distances must be finite and non-negative, got {d.tolist()}")
    zero = d <= 0.0
    if zero.any():
        return zero / zero.sum()
    inv = 1.0 / d
    return inv / inv.sum()


def knn_match(
    dist: np.ndarray, project_ids: Sequence[str], control_ids: Sequence[str], *, k: int, replacement: bool,
) -> pd.DataFrame:
    """k nearest controls per project plot: ``project_id, control_id, distance, rank, weight``.

    ``replacement=False`` (the methodology's optimal matching without replacement): the assignment of
    k distinct controls to every project plot that minimises the total distance (Hungarian algorithm
    on the project plots repeated k times); needs at least k × n_WP candidate controls.
    ``replacement=True``: each project plot takes its own k nearest (ties: registry order).
    Weights by Eq. A1 within each matched set.
    """
    dist = np.asarray(dist, dtype=np.float64)
    n_p, n_c = dist.shape
    if k < 1:
        raise MethodologyError(f"VM0047 matching: k must be >= 1, got {k}")
    if replacement:
        if n_c < k:
            raise MethodologyError(f"VM0047 matching: {n_c} candidate control(s) for k = {k}")
        order = np.argsort(dist, axis=1, kind="stable")[:, :k]
        rows = np.repeat(np.arange(n_p), k)
        cols = order.ravel()
    else:
        if n_c < k * n_p:
            raise MethodologyError(
                f"VM0047 matching without replacement needs k × n_WP = {k} × {n_p} = {k * n_p} candidate controls; "
                f"the donor pool has {n_c}. {clauses.KNN}")
        from scipy.optimize import linear_sum_assignment

        r, c = linear_sum_assignment(np.repeat(dist, k, axis=0))
        rows, cols = r // k, c
    out = pd.DataFrame({"project_id": np.asarray(project_ids, dtype=object)[rows],
                        "control_id": np.asarray(control_ids, dtype=object)[cols],
                        "distance": dist[rows, cols]})
    out = out.sort_values(["project_id", "distance", "control_id"], kind="stable").reset_index(drop=True)
    out["rank"] = out.groupby("project_id", sort=False).cumcount() + 1
    out["weight"] = np.concatenate([inverse_distance_weights(g.to_numpy()) for _, g in
                                    out.groupby("project_id", sort=False)["distance"]])
    return out


def balance_table(
    X_p: pd.DataFrame, X_c: pd.DataFrame, matches: pd.DataFrame,
) -> pd.DataFrame:
    """Standardised difference of means per covariate after matching.

    ``X_p``/``X_c``: covariates indexed by plot id (project, candidate controls); ``matches`` from
    :func:`knn_match`. Each matched control carries the weight w_pj / n_WP, so the weighted control
    sample stands for the project sample. SDM = |mean_WP − mean_CP,w| / sqrt((s²_WP + s²_CP,w) / 2)
    (s² with ddof = 1 for the project plots; the weighted control variance Σ v (x − x̄)² / Σ v).
    """
    n_wp = matches["project_id"].nunique()
    v = matches["weight"].to_numpy(dtype=np.float64) / n_wp
    rows = []
    for cov in X_p.columns:
        xp = X_p.loc[matches["project_id"].unique(), cov].to_numpy(dtype=np.float64)
        xc = X_c.loc[matches["control_id"], cov].to_numpy(dtype=np.float64)
        m_p, m_c = float(xp.mean()), float(np.sum(v * xc) / np.sum(v))
        s2_p = float(xp.var(ddof=1)) if len(xp) > 1 else 0.0
        s2_c = float(np.sum(v * (xc - m_c) ** 2) / np.sum(v))
        pooled = np.sqrt((s2_p + s2_c) / 2.0)
        diff = abs(m_p - m_c)
        smd = diff / pooled if pooled > 0 else (0.0 if diff == 0 else float("inf"))
        rows.append({"covariate": cov, "mean_WP": m_p, "mean_CP": m_c, "var_WP": s2_p, "var_CP": s2_c, "SMD": float(smd)})
    return pd.DataFrame(rows)


def check_balance(table: pd.DataFrame, *, smd_max: float = clauses.SMD_MAX) -> None:
    """Raise :class:`BalanceError` naming every covariate whose SDM exceeds ``smd_max`` (Step 3)."""
    bad = table[~(table["SMD"] <= smd_max)]
    if len(bad):
        detail = "; ".join(f"{r.covariate}: SMD = {r.SMD:.4g} (mean project {r.mean_WP:.6g}, mean matched controls {r.mean_CP:.6g})"
                           for r in bad.itertuples())
        raise BalanceError(f"VM0047: matched controls are not balanced (SMD > {smd_max}): {detail}. {clauses.BALANCE}", table)
