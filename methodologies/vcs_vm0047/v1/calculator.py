"""VCS VM0047 v1.0 "Afforestation, Reforestation and Revegetation", area-based approach.

Equations (symbols as in the methodology where known, units in brackets; :mod:`.clauses` says what
each rests on). From the monitored values (aggregated by :mod:`.monitoring`)::

    Z          = (β_WP − β_CP) / sqrt(SE_WP² + SE_CP²)                              [-]   (App. 1, Eq. A7)
    PB_t       = 1 if |Z| < 1.96; else β_CP' / β_WP, β_CP' = 0 if β_CP <= 0 or insignificant   (Eq. A8)
    ΔC_WP,t    = A × mean_p(c_p,t − c_p,t−1)                                        [tCO2e]
    U_t        = t(0.95, n_C − 1) × SE / |mean|                                     [-]   (90 % CI half-width)
    ΔC_BSL,t   = ΔC_WP,t × PB_t                                                     [tCO2e]
    CR_pre,t   = MIN(ΔC_WP,t, ΔC_WP,t − ΔC_BSL,t) − PE_t − LK_t                      [tCO2e]
    UNC_t      = 0 if U_t <= UNC_allow; U_t − UNC_allow; 1 if U_t > 1                [-]
    CR_t       = CR_pre,t − max(0, CR_pre,t) × UNC_t                                [tCO2e]
    ER_y       = CR_t (removals eligible, before the buffer)                        [tCO2e]
    buffer_y   = max(0, ER_y) × buffer_pct                                          [tCO2e]
    issuable   = max(0, floor(ER_y − buffer_y))   (framework, Methodology.run)      [tCO2e]
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

from methodologies.vcs_vm0047.v1 import benchmark, carbon, clauses
from methodologies.vcs_vm0047.v1.monitoring import aggregate_vm0047
from mrv.errors import ParameterError
from mrv.methodology import (
    EquationSpec,
    Methodology,
    MethodologyInfo,
    MonitoredSpec,
    MonitoringInput,
    OutputSpec,
    ParameterSpec,
    ParameterValue,
    Trace,
)
from mrv.methodology.base import Applicability, MonitoredValue

SLOPE_UNIT = "1/year"
STOCK_HA = "tCO2e/ha"

AGGREGATED = (
    MonitoredValue("beta_WP", SLOPE_UNIT, "β_WP: mean SI slope of the project plots over t0..t"),
    MonitoredValue("SE_beta_WP", SLOPE_UNIT, "Standard error of β_WP"),
    MonitoredValue("beta_CP", SLOPE_UNIT, "β_CP: mean weighted SI slope of the matched control sets over t0..t"),
    MonitoredValue("SE_beta_CP", SLOPE_UNIT, "Standard error of β_CP"),
    MonitoredValue("n_WP", "dimensionless", "Project plots with a complete matched set"),
    MonitoredValue("SMD_max", "dimensionless", "Largest standardised difference of means after matching (<= 0.25)"),
    MonitoredValue("dC_WP_mean", STOCK_HA, "Mean per-plot woody carbon stock change since the previous inventory"),
    MonitoredValue("dC_WP_SE", STOCK_HA, "Standard error of dC_WP_mean"),
    MonitoredValue("n_C", "dimensionless", "Re-measured inventory plots"),
)


class VM0047(Methodology):
    """VCS VM0047 v1.0, area-based approach: dynamic performance benchmark from matched control plots,
    woody carbon stocks from field plots, uncertainty deduction and non-permanence buffer."""

    info = MethodologyInfo(
        id="VCS:VM0047:1.0",
        title="Afforestation, Reforestation and Revegetation (area-based approach)",
        program="VCS",
        code="VM0047",
        version="1.0",
        source_document=f"{clauses.METHODOLOGY}. {clauses.SOURCE_NOTE}",
        source_url="https://verra.org/methodologies/vm0047-afforestation-reforestation-and-revegetation-v1-0/",
        tools=("VCS:VMD0054", "VCS:AFOLU-NPRT"),
        sector="Agriculture Forestry and Other Land Use",  # VCS sectoral scope 14 (VM0047 v1.0 cover page)
        project_type="Afforestation, reforestation and revegetation",
        unit_type="Removal - nature",
        applicability=(
            Applicability("Area-based approach (plot sampling, dynamic performance benchmark); the census-based approach is "
                          "not implemented and is refused", clauses.APPLICABILITY_AREA_BASED),
            Applicability("Carbon pools: above- and belowground woody biomass only; optional pools excluded per Appendix 2",
                          clauses.APPLICABILITY_POOLS),
            Applicability("At least 30 project plots with a complete matched set of control plots", clauses.APPLICABILITY_MIN_PLOTS),
            Applicability("Project plots 0.01-10 ha, at least 75 % inside the project boundary", clauses.PROJECT_PLOTS),
            Applicability("Matched controls balanced: SDM <= 0.25 for every matching covariate", clauses.BALANCE),
        ),
    )

    parameters = (
        ParameterSpec("approach", "Quantification approach (only area_based is implemented)", kind="choice",
                      choices=("area_based", "census_based")),
        ParameterSpec("A", "A: project area (GIS, section 9.1)", unit="ha", minimum=0.0),
        # Appendix 1: stocking index, matching
        ParameterSpec("t0_year", "Calendar year of the project start (t = 0)", kind="integer"),
        ParameterSpec("SI_cov_year_1", "Matching covariate year in [t0 − 10, t0 − 8] (Table A2)", kind="integer"),
        ParameterSpec("SI_cov_year_2", "Matching covariate year in [t0 − 8, t0 − 1] (Table A2)", kind="integer"),
        ParameterSpec("SI_season_start_month", "First month (1-12) of the season whose valid SI observations make the yearly "
                      "composite (monitoring plan: stocking-index derivation)", kind="integer", minimum=1, maximum=12),
        ParameterSpec("SI_season_end_month", "Last month (1-12) of that season (same calendar year)", kind="integer", minimum=1, maximum=12),
        ParameterSpec("f_valid_min", "Minimum valid-pixel fraction of a plot-date (plot_statistics contract)", unit="dimensionless",
                      minimum=0.0, maximum=1.0),
        ParameterSpec("d_max_donor", "Donor-pool distance limit of Table A1 for control plots", unit="km", minimum=0.0),
        ParameterSpec("k_controls", "k: matched control plots per project plot (proponent's choice, constant)", kind="integer",
                      minimum=1),
        ParameterSpec("matching_replacement", "k-NN matching without replacement (optimal; the methodology's) or with "
                      "replacement", kind="choice", choices=("without", "with")),
        # Section 8.2: allometry and conversion
        ParameterSpec("allometry", "Aboveground biomass equation: chave2014_eq4 (0.0673 (ρD²H)^0.976) or power_law "
                      "(a D^b H^c ρ^d)", kind="choice", choices=("chave2014_eq4", "power_law")),
        ParameterSpec("allometry_a", "a of the power-law allometry [kg, D in cm, H in m, ρ in g/cm3]", required=False),
        ParameterSpec("allometry_b", "b (exponent of D) of the power-law allometry", required=False),
        ParameterSpec("allometry_c", "c (exponent of H; 0 if unused) of the power-law allometry", required=False),
        ParameterSpec("allometry_d", "d (exponent of ρ; 0 if unused) of the power-law allometry", required=False),
        ParameterSpec("D_min", "Minimum DBH of measured trees (fixed size threshold)", unit="cm", minimum=0.0),
        ParameterSpec("R", "R: root-to-shoot ratio (section 9.1 hierarchy, e.g. IPCC 2019 Table 4.4)", unit="dimensionless",
                      minimum=0.0),
        ParameterSpec("CF", "CF: carbon fraction of dry biomass (e.g. IPCC 2006 V4 Table 4.3: 0.47)", unit="dimensionless",
                      minimum=0.0, maximum=1.0),
        ParameterSpec("t0_no_woody_biomass", "The project documents no woody biomass >= D_min at t = 0 (allows a zero "
                      "previous stock when the inventory has no previous campaign)", kind="boolean"),
        ParameterSpec("D_max_qaqc", "QA/QC: largest plausible DBH (tree_inventory contract)", unit="cm", minimum=0.0),
        ParameterSpec("H_max_qaqc", "QA/QC: largest plausible tree height (tree_inventory contract)", unit="m", minimum=0.0),
        # Sections 8.2-8.4 and buffer
        ParameterSpec("PE_t", "PE_t: project emissions (biomass burning, N fertiliser) in the period", unit="tCO2e", minimum=0.0),
        ParameterSpec("LK_t", "LK_t: leakage in the period from VMD0054", unit="tCO2e", minimum=0.0),
        ParameterSpec("UNC_allow", "Allowable sampling uncertainty (90 % CI half-width / estimate) before a deduction "
                      "(section 8.4; take the value from the published text)", unit="dimensionless", minimum=0.0, maximum=1.0),
        ParameterSpec("buffer_pct", "Non-permanence buffer withholding (AFOLU Non-Permanence Risk Tool rating)",
                      unit="dimensionless", minimum=0.0, maximum=1.0),
    )

    monitored = (
        MonitoredSpec("plot_statistics", "Per-plot, per-date stocking index of project and control plots (plot_id, ts, "
                      "value = si_mean, valid_fraction, count), with the plot registry", contract="plot_statistics",
                      unit="dimensionless", source="plots"),
        MonitoredSpec("tree_inventory", "Field inventory of the permanent plots, one row per tree measurement (plot_id, ts, "
                      "value = DBH [cm], tree_id, species, height_m, wood_density)", contract="tree_inventory",
                      unit="cm", source="inventory"),
    )
    aggregated = AGGREGATED
    aggregate_uses_parameters = True

    equations = (
        EquationSpec("Z", "(β_WP − β_CP) / sqrt(SE_WP² + SE_CP²)", "dimensionless", clauses.Z_TEST),
        EquationSpec("PB_t", "1 if |Z| < 1.96, else β_CP' / β_WP (β_CP' = 0 if negative or insignificant)", "dimensionless",
                     clauses.PERFORMANCE_BENCHMARK),
        EquationSpec("dC_WP_t", "A × mean_p(c_p,t − c_p,t−1)", "tCO2e", clauses.PLOT_STOCK),
        EquationSpec("U_t", "t(0.95, n_C − 1) × SE / |mean|", "dimensionless", clauses.UNCERTAINTY),
        EquationSpec("dC_BSL_t", "ΔC_WP,t × PB_t", "tCO2e", clauses.BASELINE),
        EquationSpec("CR_pre_t", "MIN(ΔC_WP,t, ΔC_WP,t − ΔC_BSL,t) − PE_t − LK_t", "tCO2e", clauses.REMOVALS),
        EquationSpec("UNC_t", "0 if U_t <= UNC_allow; U_t − UNC_allow; 1 if U_t > 1", "dimensionless", clauses.UNCERTAINTY_DEDUCTION),
        EquationSpec("UNC_deduction_t", "max(0, CR_pre,t) × UNC_t", "tCO2e", clauses.UNCERTAINTY_DEDUCTION),
        EquationSpec("ER_y", "CR_pre,t − UNC_deduction_t", "tCO2e", clauses.REMOVALS),
        EquationSpec("buffer_y", "max(0, ER_y) × buffer_pct", "tCO2e", clauses.BUFFER),
        EquationSpec("ER_after_buffer_y", "ER_y − buffer_y", "tCO2e", clauses.BUFFER),
    )

    outputs = (
        OutputSpec("Z", "Z statistic of the project vs control SI slopes", "dimensionless"),
        OutputSpec("PB_t", "Performance benchmark", "dimensionless"),
        OutputSpec("dC_WP_t", "Project woody carbon stock change", "tCO2e"),
        OutputSpec("U_t", "Relative sampling uncertainty (90 % CI half-width)", "dimensionless"),
        OutputSpec("dC_BSL_t", "Baseline removals from the performance benchmark", "tCO2e"),
        OutputSpec("CR_pre_t", "Removals before the uncertainty deduction", "tCO2e"),
        OutputSpec("UNC_t", "Uncertainty deduction fraction", "dimensionless"),
        OutputSpec("UNC_deduction_t", "Uncertainty deduction", "tCO2e"),
        OutputSpec("ER_y", "Net removals eligible for crediting, before the buffer", "tCO2e"),
        OutputSpec("buffer_y", "Credits withheld for the AFOLU pooled buffer", "tCO2e"),
        OutputSpec("ER_after_buffer_y", "Net removals after the buffer (issuable before rounding down)", "tCO2e"),
    )

    def check_applicability(self, parameters: Mapping[str, ParameterValue]) -> None:
        if parameters["approach"].value != "area_based":
            raise self.not_applicable("approach 'census_based' is not implemented (area-based only)",
                                      clause=clauses.APPLICABILITY_AREA_BASED)
        t0 = int(parameters["t0_year"].value)
        y1, y2 = int(parameters["SI_cov_year_1"].value), int(parameters["SI_cov_year_2"].value)
        if not (t0 - 10 <= y1 <= t0 - 8):
            raise self.not_applicable(f"SI_cov_year_1 = {y1} is not in [t0 − 10, t0 − 8] = [{t0 - 10}, {t0 - 8}]", clause=clauses.SI_COVARIATES)
        if not (t0 - 8 <= y2 <= t0 - 1) or y2 == y1:
            raise self.not_applicable(f"SI_cov_year_2 = {y2} is not in [t0 − 8, t0 − 1] = [{t0 - 8}, {t0 - 1}] (and distinct "
                                      f"from SI_cov_year_1)", clause=clauses.SI_COVARIATES)
        if int(parameters["SI_season_start_month"].value) > int(parameters["SI_season_end_month"].value):
            raise ParameterError(f"{self.id}: SI_season_start_month must not be after SI_season_end_month (one calendar year)")
        if parameters["allometry"].value == "power_law":
            missing = [s for s in ("allometry_a", "allometry_b", "allometry_c", "allometry_d") if s not in parameters]
            if missing:
                raise ParameterError(f"{self.id}: allometry 'power_law' needs {', '.join(missing)}")

    def aggregate(self, data: MonitoringInput, *, trace: Trace,  # type: ignore[override]
                  parameters: Mapping[str, ParameterValue] | None = None) -> tuple[dict[str, float], list[dict[str, Any]]]:
        if parameters is None:
            raise ParameterError(f"{self.id}: aggregate needs the resolved parameters (Methodology.run passes them)")
        return aggregate_vm0047(data, trace=trace, parameters=parameters)

    def calculate(self, *, parameters: Mapping[str, ParameterValue], monitored: Mapping[str, float],
                  trace: Trace) -> dict[str, tuple[float, str]]:
        m = {v.name: float(monitored[v.name]) for v in AGGREGATED}
        for k, v in m.items():
            if not math.isfinite(v):
                raise ParameterError(f"{self.id}: monitored {k} must be finite, got {v}")
        for k in ("SE_beta_WP", "SE_beta_CP", "dC_WP_SE", "SMD_max"):
            if m[k] < 0:
                raise ParameterError(f"{self.id}: monitored {k} must be >= 0, got {m[k]}")
        if m["n_C"] < 2 or m["n_WP"] < 2:
            raise ParameterError(f"{self.id}: n_C and n_WP must be >= 2 (got {m['n_C']:g}, {m['n_WP']:g})")
        if m["n_WP"] < clauses.MIN_PROJECT_PLOTS:
            raise self.not_applicable(f"n_WP = {m['n_WP']:g} matched project plots; at least {clauses.MIN_PROJECT_PLOTS} are required",
                                      clause=clauses.APPLICABILITY_MIN_PLOTS)
        if m["SMD_max"] > clauses.SMD_MAX:
            raise self.not_applicable(f"SMD_max = {m['SMD_max']:g} exceeds {clauses.SMD_MAX}", clause=clauses.BALANCE)
        p = {k: v.value for k, v in parameters.items()}
        A, PE, LK = float(p["A"]), float(p["PE_t"]), float(p["LK_t"])

        PB, Z, beta_cp_used, case = benchmark.performance_benchmark(m["beta_WP"], m["SE_beta_WP"], m["beta_CP"], m["SE_beta_CP"])
        trace.record("Z", Z, "dimensionless", equation="(β_WP − β_CP) / sqrt(SE_WP² + SE_CP²)", clause=clauses.Z_TEST,
                     inputs={k: m[k] for k in ("beta_WP", "SE_beta_WP", "beta_CP", "SE_beta_CP")})
        trace.record("PB_t", PB, "dimensionless", equation="1 if |Z| < 1.96 else β_CP' / β_WP", clause=clauses.PERFORMANCE_BENCHMARK,
                     inputs={"Z": Z, "beta_WP": m["beta_WP"], "beta_CP_used": beta_cp_used}, note=case)

        from scipy.stats import t as student_t

        n_C = int(round(m["n_C"]))
        t_crit = float(student_t.ppf(0.5 + clauses.CONFIDENCE / 2.0, n_C - 1))
        dC_WP = float(trace.record("dC_WP_t", A * m["dC_WP_mean"], "tCO2e", equation="A × dC_WP_mean", clause=clauses.PLOT_STOCK,
                                   inputs={"A": A, "dC_WP_mean": m["dC_WP_mean"]}))
        half = t_crit * m["dC_WP_SE"]
        mean_abs = abs(m["dC_WP_mean"])
        # A zero mean change with a non-zero half-width: relative uncertainty unbounded (finite max keeps JSON valid).
        U = half / mean_abs if mean_abs > 0 else (0.0 if half == 0 else sys.float_info.max)
        trace.record("U_t", U, "dimensionless", equation="t(0.95, n_C − 1) × dC_WP_SE / |dC_WP_mean|", clause=clauses.UNCERTAINTY,
                     inputs={"t": t_crit, "n_C": n_C, "dC_WP_SE": m["dC_WP_SE"], "dC_WP_mean": m["dC_WP_mean"],
                             "half_width": half})
        dC_BSL = float(trace.record("dC_BSL_t", dC_WP * PB, "tCO2e", equation="ΔC_WP,t × PB_t", clause=clauses.BASELINE,
                                    inputs={"dC_WP_t": dC_WP, "PB_t": PB}))
        CR_pre = float(trace.record("CR_pre_t", min(dC_WP, dC_WP - dC_BSL) - PE - LK, "tCO2e",
                                    equation="MIN(ΔC_WP,t, ΔC_WP,t − ΔC_BSL,t) − PE_t − LK_t", clause=clauses.REMOVALS,
                                    inputs={"dC_WP_t": dC_WP, "dC_BSL_t": dC_BSL, "PE_t": PE, "LK_t": LK}))
        UNC = float(trace.record("UNC_t", carbon.uncertainty_deduction_fraction(U, float(p["UNC_allow"])), "dimensionless",
                                 equation="0 if U_t <= UNC_allow; U_t − UNC_allow; 1 if U_t > 1", clause=clauses.UNCERTAINTY_DEDUCTION,
                                 inputs={"U_t": U, "UNC_allow": float(p["UNC_allow"])}))
        ded = float(trace.record("UNC_deduction_t", max(0.0, CR_pre) * UNC, "tCO2e", equation="max(0, CR_pre,t) × UNC_t",
                                 clause=clauses.UNCERTAINTY_DEDUCTION, inputs={"CR_pre_t": CR_pre, "UNC_t": UNC}))
        ER = float(trace.record("ER_y", CR_pre - ded, "tCO2e", equation="CR_pre,t − UNC_deduction_t", clause=clauses.REMOVALS,
                                inputs={"CR_pre_t": CR_pre, "UNC_deduction_t": ded}))
        buf = float(trace.record("buffer_y", carbon.buffer_withheld(ER, float(p["buffer_pct"])), "tCO2e",
                                 equation="max(0, ER_y) × buffer_pct", clause=clauses.BUFFER,
                                 inputs={"ER_y": ER, "buffer_pct": float(p["buffer_pct"])}))
        after = float(trace.record("ER_after_buffer_y", ER - buf, "tCO2e", equation="ER_y − buffer_y", clause=clauses.BUFFER,
                                   inputs={"ER_y": ER, "buffer_y": buf}))
        return {
            "Z": (Z, "dimensionless"), "PB_t": (PB, "dimensionless"), "dC_WP_t": (dC_WP, "tCO2e"), "U_t": (U, "dimensionless"),
            "dC_BSL_t": (dC_BSL, "tCO2e"), "CR_pre_t": (CR_pre, "tCO2e"), "UNC_t": (UNC, "dimensionless"),
            "UNC_deduction_t": (ded, "tCO2e"), "ER_y": (ER, "tCO2e"), "buffer_y": (buf, "tCO2e"),
            "ER_after_buffer_y": (after, "tCO2e"),
        }
