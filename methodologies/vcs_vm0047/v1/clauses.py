"""Where each rule of the VCS VM0047 v1.0 (area-based) calculator comes from, cited once.

Read this first — the state of the sources:

* The primary text, Verra "VM0047 Afforestation, Reforestation and Revegetation", v1.0
  (28 September 2023, Sectoral Scope 14; developed by Terra Carbon and Silvestrum), could NOT be
  read in full with the tools available when this package was written: only its table of contents
  (sections 1-10; 8.1 Baseline, 8.2 Project, 8.3 Leakage, 8.4 Uncertainty, 8.5 Estimated Carbon
  Dioxide Removals, 8.6 Ex-Ante Estimation; a public copy, scribd.com/document/722690266) was seen.
  The heading structure below that (9.1 Data and Parameters Available at Validation, 9.2 Data and
  Parameters Monitored, 9.3 Description of the Monitoring Plan; "Appendix 1: Performance Method"
  with A1.1 Applicability Conditions, A1.2 Baseline Scenario, A1.3 Performance Benchmark, A1.4
  Procedure to Define the Performance Benchmark, A1.5 Data and Parameters Monitored; Appendix 2
  Testing the Significance of Carbon Pools) is as the source-audited section digests of
  ``Fredilly/article6-methodologies`` give it (``.../VM0047/v1-0/sections.rich.json``, commit
  4bf89a7, and ``.../v1-1/sections.rich.json``). Clauses are therefore cited by section and
  appendix step, never by equation number except where two independent second-hand digests agree,
  and each clause says what evidence it rests on.
* Rules and thresholds are as paraphrased in the public machine-readable digests of
  ``Fredilly/article6-methodologies`` (``methodologies/Verra/AFOLU/VM0047/v1-0/rules.rich.json``,
  commit bdc0771, and ``.../v1-1/rules.rich.json``, commit 3de1d66, citing Appendix 1 Steps 1-6
  and Eq. A1, A7, A8 of v1.1 = the v1.0 Appendix 1 procedure with minor revisions). The v1.0
  digest gives the removal equation CR_t = MIN(ΔC_WP,t, ΔC_WP,t × (1 − PB_t)) − LK_t − UNC_t.
  Where the v1.1 digest gives a number for Appendix 1 (±20 % control size, SDM ≤ 0.25, three
  historic SI time points, |Z| ≥ 1.96, ≥ 30 project plots, 90 % confidence), it is used here as
  a constant and the clause says "per v1.1 digest; assumed unchanged from v1.0".
* Equation FORMS that the digests name but do not spell out (the Mahalanobis distance metric, the
  inverse-distance weights of Eq. A1, the Z statistic of Eq. A7, the ratio of Eq. A8, the
  standardised difference) are implemented in their standard statistical form and the clause says
  so ("implemented as"). Check them against the published PDF before issuance.
* Values the text leaves to the project, or that could not be confirmed (the donor-pool distance
  limit of Table A1, k, the allowable uncertainty, allometry, CF, R, leakage from VMD0054, the
  non-permanence buffer from the AFOLU Non-Permanence Risk Tool), are REQUIRED parameters: no
  defaults are invented.
* Not implemented (refused or out of scope) is listed in :data:`NOT_IMPLEMENTED`.
"""

from __future__ import annotations

METHODOLOGY = "Verra VCS VM0047 'Afforestation, Reforestation and Revegetation', v1.0 (28 September 2023)"
SOURCE_NOTE = (
    "VM0047 v1.0 primary text not read in full by the implementers; Appendix 1 procedure and thresholds as "
    "paraphrased in the Fredilly/article6-methodologies VM0047 v1.0/v1.1 digests; equation forms the digests only "
    "name are implemented in their standard statistical form (see methodologies/vcs_vm0047/v1/clauses.py)"
)
_APP1 = "VM0047 v1.0, Appendix 1 (Performance Method), A1.4 (Procedure to Define the Performance Benchmark)"
_DIGEST = "per the v1.1 digest (Fredilly/article6-methodologies); assumed unchanged from v1.0"

# --- applicability -------------------------------------------------------------------------------

APPLICABILITY_AREA_BASED = (
    "VM0047 v1.0, section 4 (Applicability conditions): the area-based approach (plot sampling scaled by project "
    "area, dynamic performance benchmark) is implemented; the census-based approach is NOT"
)
APPLICABILITY_POOLS = (
    "VM0047 v1.0, section 5 (Project boundary): above- and belowground woody biomass are mandatory pools; dead wood, "
    "litter, SOC and non-woody biomass are optional and may be excluded where Appendix 2 shows them insignificant. "
    "Only the two woody pools are implemented: projects must have excluded the optional pools"
)
MIN_PROJECT_PLOTS = 30
APPLICABILITY_MIN_PLOTS = (
    f"{_APP1}, Steps 1 and 5: at least {MIN_PROJECT_PLOTS} representative project plots with a complete matched "
    f"set ({_DIGEST})"
)

# --- Appendix 1: project plots, donor pool, matching -----------------------------------------------

PROJECT_PLOT_AREA_HA = (0.01, 10.0)  # [ha]
PROJECT_PLOT_INSIDE_MIN = 0.75  # [fraction of the plot inside the project boundary]
PROJECT_PLOTS = (
    f"{_APP1}, Step 1: project plots are equal-sized contiguous non-overlapping units of 0.01-10 ha, at least 75 % "
    f"inside the project boundary, randomly sampled ({_DIGEST})"
)
CONTROL_SIZE_TOLERANCE = 0.20  # [fraction of the mean project-plot area]
CONTROL_SIZE = (
    f"{_APP1}, Step 2 item 2: control units are non-overlapping, equal-sized and within ±20 % of the mean "
    f"project-plot size ({_DIGEST})"
)
DONOR_POOL = (
    f"{_APP1}, Step 2 item 1 and Table A1: the donor pool applies jurisdiction, ecoregion, policy-environment, "
    "land-tenure and distance criteria (registered AFOLU project areas optionally excluded). The spatial criteria are "
    "evaluated upstream (plot registry flag donor_pool_ok); the distance limit is the REQUIRED parameter d_max_donor "
    "(its value is not taken from the text here)"
)
MIN_SI_TIME_POINTS = 3
SI_COVARIATES = (
    f"{_APP1}, Step 2 item 2 and Table A2: matching covariates include the stocking index at >= 3 historic time "
    "points: one in [t-10, t-8], one in [t-8, t-1] and t = 0 (years relative to the project start), plus other "
    f"covariates the project lists ({_DIGEST}); here the SI composites of the years SI_cov_year_1, SI_cov_year_2 and "
    "t0_year, plus every numeric plot-registry column named cov_*"
)
SI_COMPOSITE = (
    "VM0047 v1.0, Appendix 1 (Performance Method), A1.5 (Data and Parameters Monitored, parameter SI: minimise "
    "seasonal variability, at least annual, same metric for project and control plots): yearly SI per plot = "
    "median of the plot's valid observations (si_mean) inside the project's growing-season months "
    "(SI_season_start_month..SI_season_end_month) of that calendar year"
)
MAHALANOBIS = (
    f"{_APP1}, Step 2 item 3: control plots with the lowest multivariate distance to each project plot are selected; "
    "implemented as the Mahalanobis distance d = sqrt((x_p - x_c)' S^-1 (x_p - x_c)) with S the sample covariance "
    "of the covariates over all project and candidate control plots (pseudo-inverse if singular)"
)
KNN = (
    f"{_APP1}, Step 2 item 3: k-nearest-neighbour matching, k chosen by the proponent and constant for the project "
    "lifetime; the digest states optimal matching WITHOUT replacement (here matching_replacement: without = optimal "
    "assignment minimising the total distance, each control used once; with = each project plot's own k nearest)"
)
WEIGHTS = (
    f"{_APP1}, Step 2 item 3, Eq. A1: the k matched controls of a project plot get inverse-distance relative weights "
    "that sum to 1, implemented as w_pj = (1/d_pj) / Σ_j' (1/d_pj'); controls at distance 0 share the weight equally"
)
SMD_MAX = 0.25
BALANCE = (
    f"{_APP1}, Step 3: matching is valid only where the standardised difference of means of EVERY matching covariate "
    f"is <= 0.25 ({_DIGEST}); implemented as SDM = |mean_WP - mean_CP,w| / sqrt((s²_WP + s²_CP,w) / 2) with the "
    "control mean and variance weighted by w_pj / n_WP; otherwise the donor-pool radius or k must be changed"
)
CONTROL_REPLACEMENT = (
    f"{_APP1}, Steps 4-5: controls that became invalid are removed and weights recalculated to sum to 1; matched sets "
    "whose SI at time t is missing are excluded from the benchmark"
)

# --- Appendix 1: trend comparison and performance benchmark ---------------------------------------

SI_SLOPES = (
    f"{_APP1}, Step 5: the benchmark time series includes t = 0 and t (and prior verifications); implemented as the "
    "OLS slope b_i of each plot's yearly SI over the years t0..t, β_WP = mean_p b_p, β_CP = mean_p Σ_j w_pj b_j "
    "(matched-set weighted), with standard errors SE = sd / sqrt(n_WP) over the n_WP matched sets"
)
Z_CRIT = 1.96
Z_TEST = (
    f"{_APP1}, Step 6, Eq. A7: |Z| >= 1.96 means the project and control SI slopes differ significantly; implemented as "
    "Z = (β_WP - β_CP) / sqrt(SE_WP² + SE_CP²)"
)
PERFORMANCE_BENCHMARK = (
    f"{_APP1}, Step 6, Eq. A8: if |Z| < 1.96, PB_t = 1; otherwise PB_t = β_CP / β_WP, with a control slope that is "
    "negative or not significant (|β_CP / SE_CP| < 1.96) set to zero; implemented as stated, and PB_t = 1 where "
    "β_WP <= 0 (no demonstrable project growth)"
)
BASELINE = (
    "VM0047 v1.0, section 8.1 (Baseline, area-based): baseline removals apply the performance benchmark to the "
    "project's stock change, ΔC_BSL,t = ΔC_WP,t × PB_t"
)

# --- Section 8.2: project carbon stocks ----------------------------------------------------------------

CHAVE_2014 = (
    "Chave et al. 2014, Glob. Change Biol. 20:3177-3190, eq. 4: AGB_est = 0.0673 × (ρ D² H)^0.976 "
    "[kg; ρ g/cm³, D cm, H m] (VM0047 v1.0, section 9.2 parameter C_WP-woody-AB: appropriately selected allometry)"
)
POWER_LAW = (
    "VM0047 v1.0, section 9.2 (allometric equations appropriate to the species and region, from the project "
    "description): generic power law AGB = a × D^b × H^c × ρ^d [kg], with a, b, c, d project parameters"
)
SIZE_THRESHOLD = (
    "VM0047 v1.0, section 9.2 (fixed minimum size threshold for measured trees): trees with D < D_min count "
    "zero biomass"
)
ROOT_SHOOT = (
    "VM0047 v1.0, section 9.1 parameter R (root-to-shoot ratio; hierarchy of sources, e.g. IPCC 2019 Refinement "
    "Vol. 4 Ch. 4 Table 4.4): BGB = AGB × R"
)
CARBON_FRACTION = (
    "VM0047 v1.0, section 9.1 parameter CF (carbon fraction of dry biomass, e.g. IPCC 2006 Vol. 4 Ch. 4 Table 4.3: "
    "0.47 tC/t d.m.): C = (AGB + BGB) × CF × 44/12 [tCO2e]"
)
PLOT_STOCK = (
    "VM0047 v1.0, section 8.2 (area-based: plot-based sampling scaled to the project by area): plot stock per hectare "
    "c_p = Σ_trees C_tree / plot area; ΔC_WP,t = A × mean_p (c_p,t - c_p,t-1) over re-measured permanent plots"
)
CAMPAIGNS = (
    "VM0047 v1.0, section 8.2: stock change between the current inventory (measured in the monitoring period) and the "
    "previous one (measured before it, or t = 0); a registered inventory plot without trees >= D_min in a campaign "
    "has zero stock in that campaign"
)
BARE_T0 = (
    "VM0047 v1.0, section 8.2.1 (pre-existing woody biomass at t = 0): without a previous inventory the previous "
    "stock is zero ONLY where the project documents that no woody biomass >= D_min existed at t = 0 "
    "(parameter t0_no_woody_biomass)"
)

# --- Sections 8.3-8.5 and buffer -----------------------------------------------------------------------

PROJECT_EMISSIONS = (
    "VM0047 v1.0, section 8.2 (project emissions from biomass burning and N fertiliser, where significant): PE_t "
    "[tCO2e] computed outside this calculator and supplied as a parameter"
)
LEAKAGE = (
    "VM0047 v1.0, section 8.3 (Leakage): area-based leakage from module VMD0054 (most recent version), supplied as "
    "parameter LK_t [tCO2e]"
)
CONFIDENCE = 0.90
UNCERTAINTY = (
    "VM0047 v1.0, section 8.4 (Uncertainty): sampling uncertainty of the stock change as the half-width of the "
    "two-sided 90 % confidence interval relative to the estimate, U_t = t(0.95, n-1) × SE / |mean| (Student t, "
    "which is wider, hence conservative, than z for small samples)"
)
UNCERTAINTY_DEDUCTION = (
    "VM0047 v1.0, section 8.4 (Uncertainty): where U_t exceeds the allowable uncertainty UNC_allow (REQUIRED "
    "parameter: the v1.0 digest reports 15 % at 90 % confidence, not confirmed against the text), the excess is "
    "deducted proportionally, UNC_t = U_t - UNC_allow; where U_t > 100 % no removals are credited (v1.1 digest: "
    "final paragraph of section 8.5.2, stated there for either approach; not confirmed for v1.0)"
)
REMOVALS = (
    "VM0047 v1.0, section 8.5 (Estimated carbon dioxide removals), area-based: CR_t = MIN(ΔC_WP,t, ΔC_WP,t - "
    "ΔC_BSL,t) - PE_t - LK_t - UNC deduction (v1.0 digest: CR_t = MIN(ΔC_WP,t, ΔC_WP,t × (1 - PB_t)) - LK_t - UNC_t)"
)
BUFFER = (
    "VCS Standard / AFOLU Non-Permanence Risk Tool: a share of the net removals (the project's non-permanence risk "
    "rating, REQUIRED parameter buffer_pct) is withheld into the AFOLU pooled buffer account; buffer_y = max(0, ER_y) "
    "× buffer_pct, issuable = floor(ER_y - buffer_y)"
)

NOT_IMPLEMENTED: tuple[str, ...] = (
    "census-based approach (sections 6.2, 8.1.2, 8.3 of v1.1): refused with ApplicabilityError",
    "optional carbon pools (dead wood, litter, SOC, non-woody biomass) and the Appendix 2 significance test",
    "project emissions from biomass burning and fertiliser (section 8.2.2): supplied as the total PE_t",
    "leakage module VMD0054: supplied as LK_t",
    "ex-ante estimation (section 8.6/8.7) and the ex-ante performance benchmark forecast",
    "annualisation of CR_t over the monitoring interval: the period total is reported",
    "stratification (per-stratum means and areas): one stratum, simple random sampling of plots",
    "the donor-pool spatial criteria of Table A1 (jurisdiction, ecoregion, tenure, policy): expected as the plot "
    "registry flag donor_pool_ok, computed upstream",
    "grouped projects: one performance benchmark per project area (not per annual cohort)",
    "the long-term average cap for harvesting projects (VCS Standard)",
    "changes of inventory approach (v1.1 Appendix 3 uncertainty equations; v1.0 has no Appendix 3)",
)
