"""VCS VM0047 v1.0 (area-based): matching, benchmark, allometry, carbon, uncertainty, buffer.

No public worked example of VM0047's area-based calculation was available to the authors; every
number below is derived by hand in the docstring (and the published equation evaluated by hand for
the allometry). Sources of each rule: methodologies/vcs_vm0047/v1/clauses.py.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from methodologies.vcs_vm0047.v1 import benchmark, carbon, matching
from methodologies.vcs_vm0047.v1.calculator import VM0047
from mrv.errors import ApplicabilityError, MethodologyError, ParameterError
from mrv.methodology import Methodology, MethodologyInfo, OutputSpec, Trace
from mrv.methodology.describe import declaration_problems
from mrv.methodology.registry import get

sys.path.insert(0, str(Path(__file__).parent))
import vm0047_synthetic as synth  # noqa: E402

M = VM0047()


# --- 1. registration and declarations ------------------------------------------------------------

def test_registered_and_declarations_consistent():
    m = get("VCS:VM0047:1.0")
    assert isinstance(m, VM0047)
    assert declaration_problems(m) == []
    assert [s.source for s in m.monitored] == ["plots", "inventory"]
    assert [s.contract for s in m.monitored] == ["plot_statistics", "tree_inventory"]
    assert {"ER_y", "buffer_y", "ER_after_buffer_y"} <= {o.symbol for o in m.outputs}


def test_declared_outputs_and_equations_are_what_calculate_returns():
    res = M.run(raw_parameters=synth.parameters(), monitored=MONITORED)
    assert {o.symbol: o.unit for o in M.outputs} == {k: u for k, (_, u) in res.quantities.items()}
    traced = {s["symbol"]: s for s in res.trace}
    for eq in M.equations:
        assert traced[eq.symbol]["unit"] == eq.unit and traced[eq.symbol]["clause"] == eq.clause


# --- 2. Mahalanobis distance, weights, k-NN ----------------------------------------------------------

def test_mahalanobis_distances_by_hand():
    """S = diag(4, 1): S⁻¹ = diag(1/4, 1). From x_p = (0, 0):
    (2, 0): d² = 4/4 = 1 → d = 1;  (0, 2): d² = 4 → d = 2;  (2, 1): d² = 1 + 1 = 2 → d = √2.
    Correlated S = [[2, 1], [1, 2]]: S⁻¹ = (1/3)[[2, −1], [−1, 2]];
    diff (1, 1): d² = (2 − 1 − 1 + 2)/3 = 2/3 → d = 0.816497; diff (1, −1): d² = (2 + 1 + 1 + 2)/3 = 2 → d = √2."""
    d = matching.mahalanobis_matrix([[0, 0]], [[2, 0], [0, 2], [2, 1]], np.diag([4.0, 1.0]))
    np.testing.assert_allclose(d, [[1.0, 2.0, math.sqrt(2)]], rtol=1e-12)
    d = matching.mahalanobis_matrix([[0, 0]], [[1, 1], [1, -1]], [[2.0, 1.0], [1.0, 2.0]])
    np.testing.assert_allclose(d, [[math.sqrt(2 / 3), math.sqrt(2)]], rtol=1e-12)


def test_inverse_distance_weights_eq_a1():
    """d = (1, 2, 4): 1/d = (1, 0.5, 0.25), Σ = 1.75 → w = (4/7, 2/7, 1/7), Σ w = 1.
    Exact matches (d = 0, 0, 3) share the weight: (0.5, 0.5, 0)."""
    np.testing.assert_allclose(matching.inverse_distance_weights([1, 2, 4]), [4 / 7, 2 / 7, 1 / 7])
    np.testing.assert_allclose(matching.inverse_distance_weights([0, 0, 3]), [0.5, 0.5, 0.0])


def test_knn_without_replacement_is_optimal_not_greedy():
    """dist = [[1, 2, 9], [1.5, 9, 9]], k = 1. Greedy (P1 first) would give P1→C1 (1) and P2→C2 or C3 (9):
    total 10. Optimal without replacement: P1→C2 (2) + P2→C1 (1.5) = 3.5. With replacement both take C1."""
    dist = np.array([[1.0, 2.0, 9.0], [1.5, 9.0, 9.0]])
    m = matching.knn_match(dist, ["P1", "P2"], ["C1", "C2", "C3"], k=1, replacement=False)
    assert dict(zip(m["project_id"], m["control_id"])) == {"P1": "C2", "P2": "C1"}
    assert m["distance"].sum() == pytest.approx(3.5)
    m = matching.knn_match(dist, ["P1", "P2"], ["C1", "C2", "C3"], k=1, replacement=True)
    assert dict(zip(m["project_id"], m["control_id"])) == {"P1": "C1", "P2": "C1"}


def test_knn_k2_weights_and_pool_too_small():
    """One project plot, controls at d = (1, 3, 2), k = 2 → C1 (d 1) and C3 (d 2); weights
    (1/1, 1/2)/1.5 = (2/3, 1/3). Without replacement 2 plots × k 2 need 4 controls: 3 is an error."""
    m = matching.knn_match(np.array([[1.0, 3.0, 2.0]]), ["P"], ["C1", "C2", "C3"], k=2, replacement=False)
    assert m["control_id"].tolist() == ["C1", "C3"]
    np.testing.assert_allclose(m["weight"], [2 / 3, 1 / 3])
    with pytest.raises(MethodologyError, match="needs k × n_WP = 2 × 2 = 4"):
        matching.knn_match(np.ones((2, 3)), ["P1", "P2"], ["C1", "C2", "C3"], k=2, replacement=False)


def test_candidate_controls_size_distance_pool():
    """Mean project plot 1.0 ha: 1.2 ha (+20 %) is kept, 1.25 ha (+25 %) is not; 50 km <= d_max 50 kept."""
    plots = pd.DataFrame({"plot_id": ["a", "b", "c", "d", "e"], "area_ha": [1.2, 1.25, 0.8, 1.0, 1.0],
                          "distance_km": [10, 10, 50, 50.1, 1], "donor_pool_ok": [True, True, True, True, False]})
    kept, excl = matching.candidate_controls(plots, mean_project_area_ha=1.0, d_max_km=50)
    assert kept["plot_id"].tolist() == ["a", "c"]
    assert dict(zip(excl["plot_id"], excl["reason"])) == {
        "b": "area not within ±20 % of the mean project-plot area", "d": "farther than d_max_donor = 50 km",
        "e": "outside the donor pool (Table A1 criteria)"}


# --- 3. balance check ---------------------------------------------------------------------------------

def _balance(controls: list[float]) -> pd.DataFrame:
    X_p = pd.DataFrame({"x": [1.0, 3.0]}, index=["P1", "P2"])
    X_c = pd.DataFrame({"x": controls}, index=["C1", "C2"])
    matches = pd.DataFrame({"project_id": ["P1", "P2"], "control_id": ["C1", "C2"], "weight": [1.0, 1.0]})
    return matching.balance_table(X_p, X_c, matches)


def test_balance_pass():
    """Project x = (1, 3): mean 2, s² = 2. Controls (1.2, 3.2): weighted mean 2.2, variance
    ((−1)² + 1²)/2 = 1. SDM = 0.2 / sqrt((2 + 1)/2) = 0.2 / 1.224745 = 0.163299 <= 0.25: passes."""
    t = _balance([1.2, 3.2])
    assert t.loc[0, "SMD"] == pytest.approx(0.2 / math.sqrt(1.5))
    matching.check_balance(t)


def test_balance_fail_names_covariate_and_values():
    """Controls (3, 5): mean 4, variance 1 → SDM = 2 / sqrt(1.5) = 1.63299 > 0.25."""
    t = _balance([3.0, 5.0])
    with pytest.raises(matching.BalanceError, match=r"x: SMD = 1\.633 \(mean project 2, mean matched controls 4\)"):
        matching.check_balance(t)


# --- 4. trend comparison and performance benchmark ----------------------------------------------------

def test_yearly_composite_and_slopes():
    """Season 5..9: the January 9.9 is ignored; June/July medians: 2020 → median(0.2, 0.4) = 0.3,
    2023 → 0.6. Two-point slope (0.6 − 0.3)/3 = 0.1. Plot B has no 2023 value → NaN."""
    f = pd.DataFrame({"plot_id": ["A", "A", "A", "A", "B"],
                      "ts": pd.to_datetime(["2020-06-01", "2020-07-01", "2020-01-01", "2023-06-01", "2020-06-01"], utc=True),
                      "value": [0.2, 0.4, 9.9, 0.6, 0.5]})
    si = benchmark.yearly_si(f, season_start_month=5, season_end_month=9)
    assert si.loc["A", 2020] == pytest.approx(0.3) and si.loc["A", 2023] == pytest.approx(0.6)
    s = benchmark.plot_slopes(si, t0_year=2020, t_year=2023)
    assert s["A"] == pytest.approx(0.1) and math.isnan(s["B"])


def test_ols_slope_four_years():
    """SI 0.2, 0.35, 0.4, 0.55 at x = 0..3: x̄ = 1.5, ȳ = 0.375; Sxy = (−1.5)(−0.175) + (−0.5)(−0.025)
    + 0.5(0.025) + 1.5(0.175) = 0.55; Sxx = 5 → slope 0.11."""
    si = pd.DataFrame({2020: [0.2], 2021: [0.35], 2022: [0.4], 2023: [0.55]}, index=["A"])
    assert benchmark.plot_slopes(si, t0_year=2020, t_year=2023)["A"] == pytest.approx(0.11)


def test_trend_comparison_z_and_pb_by_hand():
    """Project slopes (0.10, 0.12, 0.08, 0.10): mean 0.10, s² = (0 + 0.0004 + 0.0004 + 0)/3, SE = 0.0163299/2 = 0.00816497.
    Matched controls (weight 1) (0.02, 0.03, 0.01, 0.02): mean 0.02, SE = 0.00408248.
    Z = 0.08 / sqrt(0.00816497² + 0.00408248²) = 0.08 / 0.00912871 = 8.76356 >= 1.96;
    control slope z = 0.02 / 0.00408248 = 4.899 >= 1.96 → PB = 0.02 / 0.10 = 0.2."""
    slopes = pd.Series({"P1": 0.10, "P2": 0.12, "P3": 0.08, "P4": 0.10, "C1": 0.02, "C2": 0.03, "C3": 0.01, "C4": 0.02})
    matches = pd.DataFrame({"project_id": ["P1", "P2", "P3", "P4"], "control_id": ["C1", "C2", "C3", "C4"], "weight": 1.0})
    tc = benchmark.trend_comparison(matches, slopes)
    assert tc["beta_WP"] == pytest.approx(0.10) and tc["beta_CP"] == pytest.approx(0.02)
    assert tc["SE_beta_WP"] == pytest.approx(0.0163299 / 2, rel=1e-5) and tc["SE_beta_CP"] == pytest.approx(0.00408248, rel=1e-5)
    PB, Z, used, case = benchmark.performance_benchmark(tc["beta_WP"], tc["SE_beta_WP"], tc["beta_CP"], tc["SE_beta_CP"])
    assert Z == pytest.approx(8.76356, rel=1e-5) and PB == pytest.approx(0.2) and case == "ratio"


@pytest.mark.parametrize("args, pb, case", [
    ((0.10, 0.05, 0.05, 0.05), 1.0, "not_different"),     # Z = 0.05 / 0.0707107 = 0.707 < 1.96
    ((0.10, 0.01, 0.02, 0.02), 0.0, "control_slope_zero"),  # Z = 0.08 / 0.02236 = 3.58; control z = 1 < 1.96
    ((0.10, 0.01, -0.05, 0.01), 0.0, "control_slope_zero"),  # negative control slope set to zero
    ((-0.10, 0.01, 0.05, 0.01), 1.0, "no_project_growth"),  # |Z| = 10.6 but β_WP <= 0
])
def test_performance_benchmark_cases(args, pb, case):
    PB, _, _, c = benchmark.performance_benchmark(*args)
    assert (PB, c) == (pb, case)


# --- 5. allometry and carbon conversion -------------------------------------------------------------

def test_chave_2014_eq4_by_hand():
    """Chave et al. 2014 eq. 4, ρ = 0.6 g/cm³, D = 20 cm, H = 15 m: ρD²H = 0.6 × 400 × 15 = 3600;
    ln 3600 = 8.188689; × 0.976 = 7.992161; e^7.992161 = 2957.68; × 0.0673 = 199.05 kg."""
    assert float(carbon.agb_chave2014_eq4(0.6, 20, 15)) == pytest.approx(199.05, abs=0.01)


def test_power_law_forms():
    """a D^b with a = 0.1, b = 2.5, D = 10: 0.1 × 10^2.5 = 0.1 × 316.228 = 31.6228 kg (c = d = 0).
    With c = 1, d = 1, H = 10, ρ = 0.5: 31.6228 × 10 × 0.5 = 158.114 kg."""
    assert float(carbon.agb_power_law(10, 99, 99, a=0.1, b=2.5, c=0, d=0)) == pytest.approx(31.6228, rel=1e-5)
    assert float(carbon.agb_power_law(10, 10, 0.5, a=0.1, b=2.5, c=1, d=1)) == pytest.approx(158.114, rel=1e-5)


def test_carbon_conversion_cf_rs_44_12():
    """AGB 1000 kg, R = 0.25 → AGB + BGB = 1250 kg = 1.25 t d.m.; × CF 0.47 = 0.5875 t C;
    × 44/12 = 2.154167 tCO2e."""
    assert float(carbon.tree_co2e_t(1000.0, R=0.25, CF=0.47)) == pytest.approx(2.1541667, rel=1e-7)


def test_plot_stocks_per_ha_includes_empty_plots():
    """Plot a (0.1 ha): trees 1 + 2 tCO2e → 30 tCO2e/ha; plot b (0.05 ha): 0.5 → 10; plot c: no trees → 0."""
    out = carbon.plot_stocks_per_ha(pd.Series([1.0, 2.0, 0.5]), pd.Series(["a", "a", "b"]),
                                    pd.Series({"a": 0.1, "b": 0.05, "c": 0.2}))
    assert out.to_dict() == pytest.approx({"a": 30.0, "b": 10.0, "c": 0.0})


# --- 6. sampling uncertainty, deduction, buffer --------------------------------------------------------

def test_sampling_statistics_by_hand():
    """x = (10, 12, 14, 16, 18): mean 14, s² = (16+4+0+4+16)/4 = 10, s = 3.162278, SE = s/√5 = 1.414214;
    t(0.95, 4) = 2.131847 (two-sided 90 %); half-width = 2.131847 × 1.414214 = 3.014887; U = 3.014887/14 = 0.215349."""
    s = carbon.sampling_statistics(np.array([10, 12, 14, 16, 18.0]))
    assert (s["mean"], s["se"]) == (pytest.approx(14), pytest.approx(math.sqrt(2)))
    assert s["t"] == pytest.approx(2.131847, rel=1e-6) and s["half_width"] == pytest.approx(3.014887, rel=1e-6)


@pytest.mark.parametrize("U, allow, expected", [(0.10, 0.15, 0.0), (0.15, 0.15, 0.0), (0.215349, 0.15, 0.065349),
                                                (1.0, 0.15, 0.85), (1.01, 0.15, 1.0)])
def test_uncertainty_deduction_fraction(U, allow, expected):
    assert carbon.uncertainty_deduction_fraction(U, allow) == pytest.approx(expected)


def test_buffer_withheld():
    """15 % of 1018.7 = 152.805; nothing withheld from a negative result."""
    assert carbon.buffer_withheld(1018.7, 0.15) == pytest.approx(152.805)
    assert carbon.buffer_withheld(-5.0, 0.15) == 0.0


# --- 7. the calculation end to end (pre-aggregated values, hand-checked) ------------------------------

MONITORED = {"beta_WP": 0.10, "SE_beta_WP": 0.0163299 / 2, "beta_CP": 0.02, "SE_beta_CP": 0.00408248, "n_WP": 30,
             "SMD_max": 0.1, "dC_WP_mean": 14.0, "dC_WP_SE": math.sqrt(2), "n_C": 5}


def test_calculation_by_hand():
    """PB = 0.2 (test above). A = 100 ha: ΔC_WP = 100 × 14 = 1400; ΔC_BSL = 1400 × 0.2 = 280;
    CR_pre = min(1400, 1120) − PE 10 − LK 20 = 1090. U = 2.131847 × 1.414214 / 14 = 0.215349;
    UNC = 0.215349 − 0.15 = 0.065349; deduction = 1090 × 0.065349 = 71.2305; ER_y = 1018.7695;
    buffer 15 % = 152.8154; issuable = floor(1018.7695 − 152.8154) = floor(865.954) = 865."""
    p = synth.parameters(PE_t={"value": 10, "unit": "tCO2e"}, LK_t={"value": 20000, "unit": "kgCO2e"},
                         buffer_pct={"value": 15, "unit": "percent"})
    res = M.run(raw_parameters=p, monitored=MONITORED)
    q = {k: v for k, (v, _) in res.quantities.items()}
    assert q["PB_t"] == pytest.approx(0.2) and q["dC_BSL_t"] == pytest.approx(280)
    assert q["CR_pre_t"] == pytest.approx(1090) and q["U_t"] == pytest.approx(0.215349, rel=1e-5)
    assert q["UNC_deduction_t"] == pytest.approx(71.2305, rel=1e-5) and q["ER_y"] == pytest.approx(1018.7695, rel=1e-6)
    assert q["buffer_y"] == pytest.approx(152.8154, rel=1e-6)
    assert res.issuable_tCO2e == 865
    last = res.trace[-1]
    assert (last["symbol"], last["equation"], last["value"]) == ("ER_issuable_y", "max(0, floor(ER_y − buffer_y))", 865)


def test_not_different_gives_no_credits():
    """β_CP = β_WP (Z = 0 < 1.96) → PB = 1 → ΔC_BSL = ΔC_WP → CR_pre = 0 − 0 = 0 → issuable 0."""
    res = M.run(raw_parameters=synth.parameters(), monitored={**MONITORED, "beta_CP": 0.10})
    assert res.quantities["PB_t"][0] == 1.0 and res.quantities["ER_y"][0] == 0.0 and res.issuable_tCO2e == 0


def test_uncertainty_above_100_percent_credits_nothing():
    """SE 10 with mean 14 and n 5: U = 2.131847 × 10 / 14 = 1.5227 > 1 → UNC = 1 → ER_y = 0."""
    res = M.run(raw_parameters=synth.parameters(), monitored={**MONITORED, "dC_WP_SE": 10.0})
    assert res.quantities["UNC_t"][0] == 1.0 and res.quantities["ER_y"][0] == 0.0 and res.issuable_tCO2e == 0


# --- 8. aggregation on the synthetic data set ----------------------------------------------------------

def test_aggregate_synthetic_end_to_end():
    """See vm0047_synthetic: β_WP = 0.054, β_CP = 0.011 (each plot matched to its +0.001 twin; CFAR, CBIG and
    CPOOL excluded, although they are exact twins of P00). PB = 0.011 / 0.054 = 0.203704.
    Inventory plot I0: previous tree ρ 0.6, D 10, H 8 → ρD²H = 480; ln 480 = 6.173786, × 0.976 = 6.025616,
    e^6.025616 = 413.896, × 0.0673 = 27.8552 kg; × 1.25 × 0.47 × 44/12 / 1000 = 0.0600048 tCO2e; / 0.1 ha = 0.600048.
    Current D 20, H 15 → 199.0519 kg (test above) × 2.1541667e-3 = 0.428791 tCO2e → 4.287909 tCO2e/ha; ΔC = 3.687861."""
    data, p = synth.build()
    res = M.run(raw_parameters=p, data=data)
    tr = {s["symbol"]: s for s in res.trace}
    assert res.quantities["PB_t"][0] == pytest.approx(0.011 / 0.054)
    assert tr["w[P00]"]["inputs"]["C00"]["w"] == 1.0  # k = 1: the one matched control carries all the weight
    assert all(list(tr[f"w[P{i:02d}]"]["inputs"]) == [f"C{2 * i:02d}"] for i in range(30))
    assert tr["n_control_candidates"]["value"] == 60
    kinds = {t["kind"]: t for t in res.treatments}
    assert sorted(p for t in res.treatments if t["kind"] == "control_not_candidate" for p in t["plot_ids"]) == ["CBIG", "CFAR", "CPOOL"]
    assert "project_plot_excluded" not in kinds
    assert tr["dC_plot[I0]"]["value"] == pytest.approx(3.687861, rel=1e-6)
    assert tr["dC_plot[I0]"]["inputs"]["c_p_prev"] == pytest.approx(0.600048, rel=1e-5)
    assert tr["dC_plot[I0]"]["inputs"]["c_p_t"] == pytest.approx(4.287909, rel=1e-6)
    assert max(tr[f"SMD[{c}]"]["value"] for c in ("SI_2011", "SI_2016", "SI_2020")) < 0.25
    assert res.issuable_tCO2e == math.floor(res.quantities["ER_y"][0] - res.quantities["buffer_y"][0])


def test_aggregate_fails_on_imbalance_naming_the_covariate():
    """Shift every control's 2016 SI by +0.5: the matched controls' mean 2016 SI is 0.5 above the project mean,
    SDM ≈ 0.5 / 0.088 ≫ 0.25 → BalanceError naming SI_2016."""
    data, p = synth.build()
    si = data.datasets["plot_statistics"].copy()
    ctrl = si["plot_id"].str.startswith("C") & (si["ts"].dt.year == 2016)
    si.loc[ctrl, "value"] += 0.5
    data = type(data)(start=data.start, end=data.end, datasets={**data.datasets, "plot_statistics": si}, sources=data.sources)
    with pytest.raises(matching.BalanceError, match=r"SI_2016: SMD = \d"):
        M.run(raw_parameters=p, data=data)


def test_fewer_than_30_project_plots_not_applicable():
    data, p = synth.build()
    reg = [r for r in data.sources["plots"] if r["plot_id"] != "P29"]
    data = type(data)(start=data.start, end=data.end, datasets=data.datasets, sources={"plots": reg})
    with pytest.raises(ApplicabilityError, match="29 project plots with complete SI; at least 30"):
        M.run(raw_parameters=p, data=data)


def test_missing_previous_campaign_needs_bare_t0():
    data, p = synth.build()
    trees = data.datasets["tree_inventory"]
    trees = trees[trees["ts"].dt.year == 2023]
    data = type(data)(start=data.start, end=data.end, datasets={**data.datasets, "tree_inventory": trees}, sources=data.sources)
    with pytest.raises(MethodologyError, match="no previous campaign"):
        M.run(raw_parameters=p, data=data)
    res = M.run(raw_parameters=synth.parameters(t0_no_woody_biomass=True), data=data)
    assert any(t["kind"] == "previous_stock_zero" for t in res.treatments)


# --- 9. units, applicability, parameter errors -----------------------------------------------------------

def test_units_converted_at_the_edge():
    """A = 1 km² = 100 ha; buffer 20 percent = 0.2; LK 20000 kgCO2e = 20 tCO2e."""
    params = M.resolve_parameters(synth.parameters(A={"value": 1, "unit": "km**2"}, LK_t={"value": 20000, "unit": "kgCO2e"}))
    assert params["A"].value == pytest.approx(100) and params["buffer_pct"].value == pytest.approx(0.2)
    assert params["LK_t"].value == pytest.approx(20)


@pytest.mark.parametrize("over, match", [
    ({"approach": "census_based"}, "census_based' is not implemented"),
    ({"SI_cov_year_1": 2013}, r"SI_cov_year_1 = 2013 is not in \[t0 − 10, t0 − 8\]"),
    ({"SI_cov_year_2": 2020}, r"SI_cov_year_2 = 2020 is not in \[t0 − 8, t0 − 1\]"),
])
def test_applicability_with_clause(over, match):
    with pytest.raises(ApplicabilityError, match=match) as exc:
        M.run(raw_parameters=synth.parameters(**over), monitored=MONITORED)
    assert exc.value.clause.startswith("VM0047 v1.0")


def test_parameter_errors_name_the_symbol():
    with pytest.raises(ParameterError, match="allometry 'power_law' needs allometry_a, allometry_b"):
        M.run(raw_parameters=synth.parameters(allometry="power_law", allometry_c=0, allometry_d=0), monitored=MONITORED)
    p = synth.parameters()
    del p["d_max_donor"]
    with pytest.raises(ParameterError, match="required parameter d_max_donor"):
        M.run(raw_parameters=p, monitored=MONITORED)
    with pytest.raises(ParameterError, match="buffer_pct=1.5"):
        M.run(raw_parameters=synth.parameters(buffer_pct=1.5), monitored=MONITORED)


# --- 10. framework: the buffer extension is backward compatible ------------------------------------------

class _Toy(Methodology):
    info = MethodologyInfo(id="TEST:BUF:1.0", title="t", program="TEST", code="BUF", version="1.0", source_document="none")
    outputs = (OutputSpec("ER_y", "er", "tCO2e"),)

    def __init__(self, er: float, buffer: float | None) -> None:
        self.er, self.buffer = er, buffer

    def aggregate(self, data, *, trace):  # pragma: no cover - not used
        raise NotImplementedError

    def calculate(self, *, parameters, monitored, trace: Trace):
        out = {"ER_y": (self.er, "tCO2e")}
        if self.buffer is not None:
            out["buffer_y"] = (self.buffer, "tCO2e")
        return out


def test_framework_buffer_floor_and_backward_compatibility():
    """ER 100.9, no buffer → floor 100 (as before). Buffer 10.09 → floor(90.81) = 90. Buffer above ER → 0."""
    assert _Toy(100.9, None).run(raw_parameters={}).issuable_tCO2e == 100
    assert _Toy(100.9, 10.09).run(raw_parameters={}).issuable_tCO2e == 90
    assert _Toy(5.0, 6.0).run(raw_parameters={}).issuable_tCO2e == 0
    with pytest.raises(ParameterError, match="buffer_y must be a finite, non-negative tCO2e"):
        _Toy(5.0, -1.0).run(raw_parameters={})


# --- 11. properties ----------------------------------------------------------------------------------------

_pos = st.floats(min_value=0.0, max_value=1e4, allow_nan=False)
_slope = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False)
_se = st.floats(min_value=1e-4, max_value=0.5, allow_nan=False)


def _run(mon: dict, **over: object):
    return M.run(raw_parameters=synth.parameters(**over), monitored={**MONITORED, **mon})


@settings(max_examples=60, deadline=None)
@given(mean=st.floats(min_value=-50, max_value=50, allow_nan=False), se=_pos, bwp=_slope, bcp=_slope, s1=_se, s2=_se,
       buf=st.floats(min_value=0, max_value=1), lk=_pos)
def test_issuable_never_negative_and_buffer_plus_issuable_within_removals(mean, se, bwp, bcp, s1, s2, buf, lk):
    res = _run({"dC_WP_mean": mean, "dC_WP_SE": se, "beta_WP": bwp, "beta_CP": bcp, "SE_beta_WP": s1, "SE_beta_CP": s2},
               buffer_pct=buf, LK_t={"value": lk, "unit": "tCO2e"})
    ER, B = res.quantities["ER_y"][0], res.quantities["buffer_y"][0]
    assert res.issuable_tCO2e >= 0 and B >= 0
    assert B + res.issuable_tCO2e <= max(ER, 0.0) + 1e-9


@settings(max_examples=60, deadline=None)
@given(mean=st.floats(min_value=-50, max_value=50, allow_nan=False), se1=_pos, se2=_pos)
def test_higher_uncertainty_never_raises_issuable(mean, se1, se2):
    lo, hi = sorted((se1, se2))
    assert _run({"dC_WP_mean": mean, "dC_WP_SE": hi}).issuable_tCO2e <= _run({"dC_WP_mean": mean, "dC_WP_SE": lo}).issuable_tCO2e


@settings(max_examples=60, deadline=None)
@given(m1=st.floats(min_value=-50, max_value=50, allow_nan=False), m2=st.floats(min_value=-50, max_value=50, allow_nan=False),
       se=_pos, bcp=_slope)
def test_more_project_stock_change_never_lowers_issuable(m1, m2, se, bcp):
    lo, hi = sorted((m1, m2))
    mon = {"dC_WP_SE": se, "beta_CP": bcp}
    assert _run({**mon, "dC_WP_mean": hi}).issuable_tCO2e >= _run({**mon, "dC_WP_mean": lo}).issuable_tCO2e


def test_clause_citations_use_the_documented_heading_structure():
    """Appendix 1 of VM0047 v1.0/v1.1 is "Performance Method" (A1.1-A1.5; A1.4 holds Steps 1-6 and
    Eq. A1, A7, A8): every clause citing it names the appendix so and a subsection that exists, and
    sections that exist only in v1.1 (Appendix 3, 8.5.x) are never cited as v1.0 sections."""
    import re

    from methodologies.vcs_vm0047.v1 import clauses

    texts = {k: v for k, v in vars(clauses).items() if k.isupper() and isinstance(v, str)}
    texts.update({f"NOT_IMPLEMENTED[{i}]": t for i, t in enumerate(clauses.NOT_IMPLEMENTED)})
    app1 = {k: t for k, t in texts.items() if "Appendix 1" in t}
    assert len(app1) >= 10
    for k, t in app1.items():
        assert "Appendix 1 (Performance Benchmark)" not in t, k
        for m in re.finditer(r"Appendix 1 \(([^)]*)\)(?:, (A1\.\d))?", t):
            assert m.group(1) == "Performance Method", (k, m.group(0))
            assert m.group(2) in ("A1.1", "A1.2", "A1.3", "A1.4", "A1.5"), (k, m.group(0))
    for k, t in texts.items():
        assert not re.search(r"v1\.0, (section 8\.5\.\d|Appendix 3)", t), k
        if "Appendix 3" in t or "8.5.2" in t:
            assert "v1.1" in t, k
