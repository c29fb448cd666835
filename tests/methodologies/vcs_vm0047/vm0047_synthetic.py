"""A small, hand-checkable VM0047 data set (no randomness): 30 project plots, 60 near-twin control
plots plus three that must be excluded, and 5 re-measured inventory plots.

Project plot i (i = 0..29): base b_i = 0.20 + 0.01 i; SI at 2011 = b_i, 2016 = b_i + 0.02 + 0.003 (i mod 3),
2020 (t0) = b_i + 0.04 + 0.002 (i mod 4); from 2020 to 2023 SI grows linearly with slope
0.05 + 0.002 (i mod 5) per year → β_WP = 0.05 + 0.002 × mean(i mod 5) = 0.05 + 0.002 × 2 = 0.054.
Control twins C(2i) and C(2i+1) copy plot i's covariates + 0.001 and + 0.003; control j grows with slope
0.01 + 0.001 (j mod 3). Matching k = 1 without replacement picks C(2i) for plot i (distance of an offset
of 0.001 in every covariate is smaller than 0.003), so β_CP = 0.01 + 0.001 × mean((2i) mod 3) = 0.011.
Excluded controls: CFAR (distance 80 km > d_max 50 km), CBIG (1.5 ha, +50 % > ±20 %), CPOOL (donor_pool_ok false).
Inventory plots I0..I4 (0.1 ha): one tree (ρ 0.6 g/cm3) measured 2020-06-01 (D 10 cm, H 8 m) and
2023-06-01 (D 20 + i cm, H 15 m).
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

from mrv.methodology import MonitoringInput

T0, Y1, Y2, T = 2020, 2011, 2016, 2023
N_PROJECT = 30


def project_covariates(i: int) -> tuple[float, float, float]:
    b = 0.20 + 0.01 * i
    return b, b + 0.02 + 0.003 * (i % 3), b + 0.04 + 0.002 * (i % 4)


def si_rows(plot_id: str, cov: tuple[float, float, float], slope: float) -> list[dict]:
    rows = [{"plot_id": plot_id, "ts": pd.Timestamp(f"{y}-06-15", tz="UTC"), "value": v, "valid_fraction": 1.0, "count": 100}
            for y, v in zip((Y1, Y2, T0), cov)]
    for y in range(T0 + 1, T + 1):
        rows.append({"plot_id": plot_id, "ts": pd.Timestamp(f"{y}-06-15", tz="UTC"), "value": cov[2] + slope * (y - T0),
                     "valid_fraction": 1.0, "count": 100})
    # an off-season observation that the growing-season composite (months 5..9) must ignore
    rows.append({"plot_id": plot_id, "ts": pd.Timestamp(f"{T}-01-15", tz="UTC"), "value": 9.9, "valid_fraction": 1.0, "count": 100})
    return rows


def build() -> tuple[MonitoringInput, dict]:
    registry, si = [], []
    for i in range(N_PROJECT):
        pid = f"P{i:02d}"
        registry.append({"plot_id": pid, "role": "project", "area_ha": 1.0, "inside_fraction": 1.0})
        si += si_rows(pid, project_covariates(i), 0.05 + 0.002 * (i % 5))
    for j in range(2 * N_PROJECT):
        cid = f"C{j:02d}"
        off = 0.001 if j % 2 == 0 else 0.003
        cov = tuple(v + off for v in project_covariates(j // 2))
        registry.append({"plot_id": cid, "role": "control", "area_ha": 1.0, "distance_km": 5.0, "donor_pool_ok": True})
        si += si_rows(cid, cov, 0.01 + 0.001 * (j % 3))  # type: ignore[arg-type]
    for cid, extra in (("CFAR", {"distance_km": 80.0}), ("CBIG", {"area_ha": 1.5}), ("CPOOL", {"donor_pool_ok": False})):
        registry.append({"plot_id": cid, "role": "control", "area_ha": 1.0, "distance_km": 5.0, "donor_pool_ok": True, **extra})
        si += si_rows(cid, project_covariates(0), 0.0)  # exact twins of P00: they would be matched if not excluded
    trees = []
    for i in range(5):
        registry.append({"plot_id": f"I{i}", "role": "inventory", "area_ha": 0.1})
        trees.append({"plot_id": f"I{i}", "ts": pd.Timestamp("2020-06-01", tz="UTC"), "value": 10.0, "tree_id": "t1",
                      "species": "Tectona grandis", "height_m": 8.0, "wood_density": 0.6})
        trees.append({"plot_id": f"I{i}", "ts": pd.Timestamp("2023-06-01", tz="UTC"), "value": 20.0 + i, "tree_id": "t1",
                      "species": "Tectona grandis", "height_m": 15.0, "wood_density": 0.6})
    data = MonitoringInput(
        start=datetime(2023, 1, 1, tzinfo=timezone.utc), end=datetime(2024, 1, 1, tzinfo=timezone.utc),
        datasets={"plot_statistics": pd.DataFrame(si), "tree_inventory": pd.DataFrame(trees)},
        sources={"plots": registry},
    )
    return data, parameters()


def parameters(**over: object) -> dict:
    p: dict = {
        "approach": "area_based",
        "A": {"value": 100, "unit": "ha", "source": "project GIS"},
        "t0_year": T0, "SI_cov_year_1": Y1, "SI_cov_year_2": Y2,
        "SI_season_start_month": 5, "SI_season_end_month": 9,
        "f_valid_min": 0.8,
        "d_max_donor": {"value": 50, "unit": "km", "source": "test"},
        "k_controls": 1, "matching_replacement": "without",
        "allometry": "chave2014_eq4",
        "D_min": {"value": 5, "unit": "cm"},
        "R": 0.25, "CF": 0.47,
        "t0_no_woody_biomass": False,
        "D_max_qaqc": {"value": 300, "unit": "cm"}, "H_max_qaqc": {"value": 70, "unit": "m"},
        "PE_t": {"value": 0, "unit": "tCO2e"}, "LK_t": {"value": 0, "unit": "tCO2e"},
        "UNC_allow": 0.15, "buffer_pct": {"value": 20, "unit": "percent"},
    }
    p.update(over)
    return p
