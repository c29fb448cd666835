"""VM0047 v1.0 aggregation: validated plot statistics, the plot registry and the tree inventory ->
the monitored values :class:`~methodologies.vcs_vm0047.v1.calculator.VM0047` reads.

Input (:class:`~mrv.methodology.MonitoringInput`):

* ``datasets["plot_statistics"]``: one row per plot and date, ``plot_id, ts, value`` (= si_mean, the
  plot's mean stocking index), ``valid_fraction, count`` (``date``/``si_mean`` accepted as names);
  project and control plots, from t0 − 10 years to the end of the monitoring period.
* ``datasets["tree_inventory"]``: one row per tree measurement, ``plot_id, ts`` (measurement date),
  ``value`` (= D, diameter at breast height [cm]), ``tree_id, species, height_m`` [m],
  ``wood_density`` [g/cm³]. Rows before the period start are the previous campaign (per plot, the
  latest previous measurement date), rows inside the period the current one.
* ``sources["plots"]``: the plot registry, dicts with ``plot_id``, ``role`` (``project`` | ``control``
  | ``inventory``), ``area_ha``; project plots ``inside_fraction``; control plots ``distance_km`` and
  optionally ``donor_pool_ok``; project and control plots optionally numeric ``cov_*`` covariates.

Output (monitored values): ``beta_WP, SE_beta_WP, beta_CP, SE_beta_CP`` [1/year], ``n_WP``,
``SMD_max``, ``dC_WP_mean, dC_WP_SE`` [tCO2e/ha], ``n_C``. Matching, weights and balance are
recorded in the trace; exclusions are returned as treatments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from methodologies.vcs_vm0047.v1 import benchmark, carbon, clauses, matching
from mrv.errors import ApplicabilityError, MethodologyError, ParameterError
from mrv.methodology import MonitoringInput, ParameterValue, Trace

SI_DATASET = "plot_statistics"
INVENTORY_DATASET = "tree_inventory"
METHODOLOGY_ID = "VCS:VM0047:1.0"
ROLES = ("project", "control", "inventory")


def not_applicable(message: str, clause: str) -> ApplicabilityError:
    exc = ApplicabilityError(f"{METHODOLOGY_ID}: {message}. {clause}")
    exc.clause = clause  # type: ignore[attr-defined]
    return exc


def plot_registry(rows: Any) -> pd.DataFrame:
    if not rows:
        raise MethodologyError(f"{METHODOLOGY_ID}: no plot registry (MonitoringInput.sources['plots'] is empty)")
    reg = pd.DataFrame(list(rows))
    for col in ("plot_id", "role", "area_ha"):
        if col not in reg.columns:
            raise MethodologyError(f"{METHODOLOGY_ID}: the plot registry has no column {col!r}")
    reg["plot_id"] = reg["plot_id"].astype(str)
    dup = reg["plot_id"][reg["plot_id"].duplicated()].unique().tolist()
    if dup:
        raise MethodologyError(f"{METHODOLOGY_ID}: plot(s) listed more than once in the registry: {', '.join(dup)}")
    bad = sorted(set(reg["role"].astype(str)) - set(ROLES))
    if bad:
        raise MethodologyError(f"{METHODOLOGY_ID}: unknown plot role(s) {bad}; expected one of {ROLES}")
    reg["area_ha"] = pd.to_numeric(reg["area_ha"], errors="coerce")
    return reg.set_index("plot_id", drop=False)


def _p(parameters: Mapping[str, ParameterValue], symbol: str) -> Any:
    if symbol not in parameters:
        raise ParameterError(f"{METHODOLOGY_ID}: parameter {symbol} is needed to aggregate the monitoring data")
    return parameters[symbol].value


def _year_end(data: MonitoringInput) -> int:
    return int((pd.Timestamp(data.end) - pd.Timedelta(microseconds=1)).year)


def aggregate_benchmark(data: MonitoringInput, parameters: Mapping[str, ParameterValue], reg: pd.DataFrame, *,
                        trace: Trace, treatments: list[dict[str, Any]]) -> dict[str, float]:
    """Appendix 1: control candidates, matching, balance, slopes -> β_WP, SE, β_CP, SE, n_WP, SMD_max."""
    if SI_DATASET not in data.datasets:
        raise MethodologyError(f"{METHODOLOGY_ID}: no {SI_DATASET!r} dataset in the monitoring input (have: {', '.join(data.datasets) or 'none'})")
    t0 = int(_p(parameters, "t0_year"))
    years = [int(_p(parameters, "SI_cov_year_1")), int(_p(parameters, "SI_cov_year_2")), t0]
    t_year = _year_end(data)
    si = benchmark.yearly_si(data.datasets[SI_DATASET], season_start_month=int(_p(parameters, "SI_season_start_month")),
                             season_end_month=int(_p(parameters, "SI_season_end_month")))

    project = reg[reg["role"] == "project"]
    controls = reg[reg["role"] == "control"]
    if project.empty or controls.empty:
        raise MethodologyError(f"{METHODOLOGY_ID}: the plot registry needs project and control plots (has {len(project)} and {len(controls)})")
    lo, hi = clauses.PROJECT_PLOT_AREA_HA
    area = project["area_ha"]
    if not area.between(lo, hi).all():
        bad = project.index[~area.between(lo, hi)].tolist()
        raise not_applicable(f"project plot(s) {', '.join(bad[:10])} are not 0.01-10 ha", clauses.PROJECT_PLOTS)
    inside = pd.to_numeric(project.get("inside_fraction", pd.Series(np.nan, index=project.index)), errors="coerce")
    if not (inside >= clauses.PROJECT_PLOT_INSIDE_MIN).all():
        bad = project.index[~(inside >= clauses.PROJECT_PLOT_INSIDE_MIN)].tolist()
        raise not_applicable(f"project plot(s) {', '.join(bad[:10])} are less than 75 % inside the project boundary (inside_fraction)",
                             clauses.PROJECT_PLOTS)
    mean_area = float(area.mean())

    cov_cols = [c for c in reg.columns if str(c).startswith("cov_")]
    names = [f"SI_{y}" for y in years] + cov_cols

    def covariates(ids: pd.Index) -> pd.DataFrame:
        X = pd.DataFrame(index=ids)
        for y in years:
            X[f"SI_{y}"] = si[y].reindex(ids) if y in si.columns else np.nan
        for c in cov_cols:
            X[c] = pd.to_numeric(reg.loc[ids, c], errors="coerce")
        return X.astype(np.float64)

    slopes = benchmark.plot_slopes(si, t0_year=t0, t_year=t_year)
    trace.record("t_year", t_year, "year", equation="calendar year of the monitoring period end", clause=clauses.SI_SLOPES)

    X_p = covariates(project.index)
    has_p = X_p.notna().all(axis=1) & np.isfinite(slopes.reindex(project.index)).to_numpy()
    if (~has_p).any():
        ids = project.index[~has_p].tolist()
        treatments.append({"kind": "project_plot_excluded", "plot_ids": ids, "clause": clauses.CONTROL_REPLACEMENT,
                           "detail": f"no yearly SI for a matching year {years} or for t0/t: matched set excluded"})
    X_p = X_p[has_p]

    cand, excluded = matching.candidate_controls(controls.reset_index(drop=True), mean_project_area_ha=mean_area,
                                                 d_max_km=float(_p(parameters, "d_max_donor")))
    if len(excluded):
        for reason, g in excluded.groupby("reason"):
            treatments.append({"kind": "control_not_candidate", "plot_ids": g["plot_id"].tolist(), "clause": clauses.DONOR_POOL
                               if "donor" in reason or "d_max" in reason else clauses.CONTROL_SIZE, "detail": reason})
    X_c = covariates(pd.Index(cand["plot_id"]))
    has_c = X_c.notna().all(axis=1) & np.isfinite(slopes.reindex(X_c.index)).to_numpy()
    if (~has_c).any():
        treatments.append({"kind": "control_not_candidate", "plot_ids": X_c.index[~has_c].tolist(), "clause": clauses.CONTROL_REPLACEMENT,
                           "detail": "no yearly SI for a matching year or for t0/t: not a valid control (replaced from the donor pool)"})
    X_c = X_c[has_c]
    trace.record("n_control_candidates", int(len(X_c)), "plots", equation="controls passing donor pool, size, distance and SI checks",
                 clause=clauses.DONOR_POOL, inputs={"d_max_donor": float(_p(parameters, "d_max_donor")), "mean_project_area_ha": mean_area})
    if len(X_p) < clauses.MIN_PROJECT_PLOTS:
        raise not_applicable(f"{len(X_p)} project plots with complete SI; at least {clauses.MIN_PROJECT_PLOTS} are required",
                             clauses.APPLICABILITY_MIN_PLOTS)

    S = matching.covariance(pd.concat([X_p, X_c]).to_numpy())
    dist = matching.mahalanobis_matrix(X_p.to_numpy(), X_c.to_numpy(), S)
    k = int(_p(parameters, "k_controls"))
    replacement = str(_p(parameters, "matching_replacement")) == "with"
    matches = matching.knn_match(dist, X_p.index.tolist(), X_c.index.tolist(), k=k, replacement=replacement)
    for pid, g in matches.groupby("project_id", sort=True):
        trace.record(f"w[{pid}]", float(g["weight"].sum()), "dimensionless", equation="Σ_j w_pj (inverse-distance weights of the k matched controls)",
                     clause=clauses.WEIGHTS, inputs={c: {"d": float(d), "w": float(w)} for c, d, w in zip(g["control_id"], g["distance"], g["weight"])})
    table = matching.balance_table(X_p[names], X_c[names], matches)
    for r in table.itertuples():
        trace.record(f"SMD[{r.covariate}]", float(r.SMD), "dimensionless", equation="|mean_WP − mean_CP,w| / sqrt((s²_WP + s²_CP,w) / 2)",
                     clause=clauses.BALANCE, inputs={"mean_WP": r.mean_WP, "mean_CP": r.mean_CP, "var_WP": r.var_WP, "var_CP": r.var_CP})
    matching.check_balance(table)

    tc = benchmark.trend_comparison(matches, slopes)
    if tc["n_WP"] < clauses.MIN_PROJECT_PLOTS:
        raise not_applicable(f"{int(tc['n_WP'])} complete matched sets; at least {clauses.MIN_PROJECT_PLOTS} are required",
                             clauses.APPLICABILITY_MIN_PLOTS)
    return {**tc, "SMD_max": float(table["SMD"].max())}


def tree_stocks(trees: pd.DataFrame, parameters: Mapping[str, ParameterValue]) -> np.ndarray:
    """C_tree [tCO2e] per row of the inventory frame, with the project's allometry, D_min, R and CF."""
    D = pd.to_numeric(trees["value"], errors="coerce").to_numpy(dtype=np.float64)
    H = pd.to_numeric(trees["height_m"], errors="coerce").to_numpy(dtype=np.float64) if "height_m" in trees else np.full(len(trees), np.nan)
    rho = pd.to_numeric(trees["wood_density"], errors="coerce").to_numpy(dtype=np.float64) if "wood_density" in trees else np.full(len(trees), np.nan)
    form = str(_p(parameters, "allometry"))
    if form == "chave2014_eq4":
        agb = carbon.agb_chave2014_eq4(rho, D, H)
    else:
        coef = {s: parameters[f"allometry_{s}"].value if f"allometry_{s}" in parameters else None for s in "abcd"}
        missing = [f"allometry_{s}" for s, v in coef.items() if v is None]
        if missing:
            raise ParameterError(f"{METHODOLOGY_ID}: allometry 'power_law' needs {', '.join(missing)}")
        agb = carbon.agb_power_law(D, H, rho, **{s: float(v) for s, v in coef.items()})  # type: ignore[arg-type]
    agb = np.where(D >= float(_p(parameters, "D_min")), agb, 0.0)
    bad = ~np.isfinite(agb) | (agb < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MethodologyError(f"{METHODOLOGY_ID}: tree {trees['tree_id'].iloc[i] if 'tree_id' in trees else i} in plot "
                               f"{trees['plot_id'].iloc[i]}: no valid biomass (D, height or wood density missing or invalid)")
    return carbon.tree_co2e_t(agb, R=float(_p(parameters, "R")), CF=float(_p(parameters, "CF")))


def aggregate_stocks(data: MonitoringInput, parameters: Mapping[str, ParameterValue], reg: pd.DataFrame, *,
                     trace: Trace, treatments: list[dict[str, Any]]) -> dict[str, float]:
    """Section 8.2/8.4: per-plot stock change [tCO2e/ha] -> mean, standard error, n."""
    if INVENTORY_DATASET not in data.datasets:
        raise MethodologyError(f"{METHODOLOGY_ID}: no {INVENTORY_DATASET!r} dataset in the monitoring input")
    inv = data.datasets[INVENTORY_DATASET].rename(columns={"date": "ts", "dbh_cm": "value"})
    for col in ("plot_id", "ts", "value"):
        if col not in inv.columns:
            raise MethodologyError(f"{METHODOLOGY_ID}: {INVENTORY_DATASET} has no column {col!r}")
    plots = reg[reg["role"] == "inventory"]
    if plots.empty:
        raise MethodologyError(f"{METHODOLOGY_ID}: the plot registry lists no inventory plots (role 'inventory')")
    area = plots["area_ha"]
    if not (area > 0).all():
        raise MethodologyError(f"{METHODOLOGY_ID}: inventory plot areas must be > 0 ha")
    inv = inv.assign(plot_id=inv["plot_id"].astype(str), ts=pd.to_datetime(inv["ts"], utc=True))
    unknown = ~inv["plot_id"].isin(plots.index)
    if unknown.any():
        treatments.append({"kind": "tree_in_unregistered_plot", "rows": int(unknown.sum()), "clause": clauses.PLOT_STOCK,
                           "detail": "trees of plots that are not registered inventory plots are not in the sample"})
        inv = inv[~unknown]
    start, end = pd.Timestamp(data.start), pd.Timestamp(data.end)
    after = inv["ts"] >= end
    if after.any():
        treatments.append({"kind": "measured_after_period", "rows": int(after.sum()), "clause": clauses.CAMPAIGNS,
                           "detail": "measurements after the monitoring period belong to a later one"})
    inv = inv[~after]
    inv = inv.assign(C_tree=tree_stocks(inv, parameters))

    def campaign(rows: pd.DataFrame) -> pd.Series:
        last = rows.groupby("plot_id")["ts"].transform(lambda s: s.dt.normalize().max())
        rows = rows[rows["ts"].dt.normalize() == last]
        return carbon.plot_stocks_per_ha(rows["C_tree"], rows["plot_id"], area)

    cur_rows, prev_rows = inv[inv["ts"] >= start], inv[inv["ts"] < start]
    c_cur = campaign(cur_rows)
    if prev_rows.empty:
        if not bool(_p(parameters, "t0_no_woody_biomass")):
            raise MethodologyError(f"{METHODOLOGY_ID}: the tree inventory has no previous campaign (measurements before "
                                   f"{start.date()}) and t0_no_woody_biomass is false. {clauses.BARE_T0}")
        c_prev = pd.Series(0.0, index=area.index)
        treatments.append({"kind": "previous_stock_zero", "plots": int(len(area)), "clause": clauses.BARE_T0,
                           "detail": "no previous inventory: previous stock is zero (no woody biomass >= D_min at t = 0, documented)"})
    else:
        c_prev = campaign(prev_rows)
    empty_cur = sorted(set(area.index) - set(cur_rows["plot_id"]))
    if empty_cur:
        treatments.append({"kind": "plot_without_trees_current", "plot_ids": empty_cur, "clause": clauses.CAMPAIGNS,
                           "detail": "no tree rows in the current campaign: zero current stock"})
    dC = c_cur - c_prev
    for pid in dC.index:
        trace.record(f"dC_plot[{pid}]", float(dC[pid]), "tCO2e/ha", equation="c_p,t − c_p,t−1", clause=clauses.PLOT_STOCK,
                     inputs={"c_p_t": float(c_cur[pid]), "c_p_prev": float(c_prev[pid]), "A_p_ha": float(area[pid])})
    st = carbon.sampling_statistics(dC.to_numpy())
    return {"dC_WP_mean": st["mean"], "dC_WP_SE": st["se"], "n_C": st["n"]}


def aggregate_vm0047(data: MonitoringInput, *, trace: Trace, parameters: Mapping[str, ParameterValue]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    reg = plot_registry(data.sources.get("plots"))
    treatments: list[dict[str, Any]] = []
    out = aggregate_benchmark(data, parameters, reg, trace=trace, treatments=treatments)
    out.update(aggregate_stocks(data, parameters, reg, trace=trace, treatments=treatments))
    return out, treatments
