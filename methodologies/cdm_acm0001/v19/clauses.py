"""Where each rule of the ACM0001 v19.0 calculator comes from, cited once.

Version relied on: CDM ACM0001 "Flaring or use of landfill gas", **version 19.0** (the version
Verra lists as current for ACM0001, v15.0-19.0 being CCP-approved), with TOOL06 "Project emissions
from flaring" v04.0 and TOOL08 "Tool to determine the mass flow of a greenhouse gas in a gaseous
stream".

Honesty note. The v19.0 PDF could not be read through the search tool available when this package
was written. Sections are therefore cited **by name**, equation numbers are not given, and each
citation says what it was checked against where that was possible:

* BE_CH4,y = (1 − OX_top_layer) × (F_CH4,PJ,y − F_CH4,BL,y) × GWP_CH4 and its terms: the ACM0001
  baseline-emission structure as reproduced in India's BEE offset methodology WA03.001 (derived
  from ACM0001), ``ERy = ((F_CH4_PJ_y − F_CH4_BL_y) × GWP_CH4 × (1 − OX)) − PE_y − LE_y``;
* the adjustment-factor form of F_CH4,BL,y (MD_BL,y = MD_project,y × AF): ACM0001 v11 text;
* TOOL06 rules: see :mod:`methodologies.cdm_tool06.v4`;
* TOOL08 reference conditions (0 °C / 273.15 K, 101.325 kPa) and R_u = 8.314472 Pa·m³/(mol·K):
  TOOL06 v02.0 / TOOL08 constants tables (as transcribed in a public implementation of TOOL06 v2.0).
"""

from __future__ import annotations

METHODOLOGY = "CDM ACM0001 v19.0 'Flaring or use of landfill gas'"

# --- applicability -------------------------------------------------------------------------------
APPLICABILITY_ACTIVITY = (
    "ACM0001 v19.0, 'Applicability': project activities that capture landfill gas (LFG) at a solid waste "
    "disposal site (new capture system, or investment in an existing one) and destroy it by flaring and/or use it "
    "to generate electricity or heat, or supply it to consumers (natural gas network, dedicated pipeline, trucks)"
)
APPLICABILITY_USES = (
    "ACM0001 v19.0, 'Applicability' and 'Baseline emissions': of the LFG uses, this calculator implements flaring "
    "(F_CH4,flared,y, TOOL06) and electricity generation (F_CH4,EL,y, BE_EC,y); heat generation (F_CH4,HG,y, "
    "BE_HG,y) and supply through a natural gas network (F_CH4,NG,y, BE_NG,y) are not implemented"
)
APPLICABILITY_MANAGEMENT = (
    "ACM0001 v19.0, 'Applicability': the methodology is not applicable where the management of the solid waste "
    "disposal site is deliberately changed during the project activity to increase methane generation compared to "
    "the situation before it"
)
APPLICABILITY_ONE_FLARE = (
    "Calculator scope: one flare stream ('flare') and at most one electricity generation stream ('engine') per "
    "project file; several flares need one stream each (not implemented)"
)

# --- baseline emissions --------------------------------------------------------------------------
BE = "ACM0001 v19.0, 'Baseline emissions': BE_y = BE_CH4,y + BE_EC,y (+ BE_HG,y + BE_NG,y, not implemented)"
BE_CH4 = (
    "ACM0001 v19.0, 'Baseline emissions', methane destruction: BE_CH4,y = (1 − OX_top_layer) × (F_CH4,PJ,y − "
    "F_CH4,BL,y) × GWP_CH4 (structure checked against BEE WA03.001, derived from ACM0001)"
)
OX = (
    "ACM0001 v19.0, 'Data and parameters not monitored', OX_top_layer: fraction of the methane in the LFG that "
    "would be oxidized in the top layer of the SWDS in the baseline; default 0.1"
)
F_CH4_PJ = (
    "ACM0001 v19.0, 'Baseline emissions': F_CH4,PJ,y = F_CH4,flared,y + F_CH4,EL,y (+ F_CH4,HG,y + F_CH4,NG,y, "
    "not implemented) — methane destroyed or used by the project"
)
F_CH4_FLARED = (
    "ACM0001 v19.0, 'Baseline emissions', methane destroyed by flaring: F_CH4,flared,y = F_CH4,sent_flare,y − "
    "PE_flare,y / GWP_CH4 (F_CH4,sent_flare,y by TOOL08, PE_flare,y by TOOL06)"
)
F_CH4_EL = (
    "ACM0001 v19.0, 'Baseline emissions': F_CH4,EL,y, methane in the LFG used for electricity generation, "
    "determined with TOOL08; counted only in minutes in which the generator is shown to run (electricity "
    "generated > 0) — methane sent to an idle engine is not shown to be destroyed (conservative)"
)
F_CH4_BL = (
    "ACM0001 v19.0, 'Determination of F_CH4,BL,y' (methane that would be destroyed in the baseline, e.g. to meet "
    "a regulatory or contractual requirement): F_CH4,BL,y = max(AF × F_CH4,PJ,y, F_CH4,BL,R,y), i.e. the higher "
    "of a requirement stated as a fraction (adjustment factor AF, as in ACM0001 v11 'MD_BL,y = MD_project,y × AF') "
    "and one stated as an amount (F_CH4,BL,R,y); the higher baseline destruction is the conservative one"
)
BE_EC = (
    "ACM0001 v19.0, 'Baseline emissions', electricity generation: BE_EC,y = EG_PJ,y × EF_grid,y (TOOL05 baseline "
    "emissions from electricity generation; transmission and distribution losses TDL_y are not added, which can "
    "only lower BE_EC,y)"
)
MODEL_CORRECTION = (
    "ACM0001 v19.0: the model correction factor and TOOL04 first-order decay apply to the ex-ante estimate of "
    "methane generation only; ex-post emission reductions use the monitored methane (not used here)"
)

# --- project emissions, leakage, ER --------------------------------------------------------------
PE = (
    "ACM0001 v19.0, 'Project emissions': PE_y = PE_EC,y + PE_FC,y (electricity consumption per TOOL05, fossil "
    "fuel per TOOL03); flaring emissions are accounted in F_CH4,flared,y, not added again"
)
PE_EC = "TOOL05 (as used by ACM0001 v19.0): PE_EC,y = EC_PJ,y × EF_EC,y"
PE_FC = "TOOL03 (as used by ACM0001 v19.0): PE_FC,y, project emissions from fossil fuel combustion (parameter)"
LE = "ACM0001 v19.0, 'Leakage': no leakage emissions are considered (LE_y = 0)"
ER = "ACM0001 v19.0, 'Emission reductions': ER_y = BE_y − PE_y"

GWP = "Dated GWP parameter set (methodologies/common/gwp.py)"

# --- monitoring (TOOL08 / TOOL06 monitoring tables) ----------------------------------------------
TOOL08_MASS_FLOW = (
    "CDM TOOL08 'Tool to determine the mass flow of a greenhouse gas in a gaseous stream': F_CH4,t = V_t,n × "
    "v_CH4,t × ρ_CH4,n, with the flow and the volumetric fraction on the same (wet or dry) basis"
)
TOOL08_DENSITY = (
    "CDM TOOL08: ρ_CH4,n = P_n × MM_CH4 / (R_u × T_n), reference conditions T_n = 273.15 K (0 °C), P_n = "
    "101,325 Pa; MM_CH4 = 16.04 kg/kmol; R_u = 8,314.472 Pa·m³/(kmol·K)"
)
TOOL08_NORMALISE = (
    "CDM TOOL08: a volumetric flow measured at the gas temperature T_t and absolute pressure P_t is brought to "
    "reference conditions, V_t,n = V_t × (P_t / P_n) × (T_n / T_t)"
)
TOOL08_BASIS = (
    "CDM TOOL08: the volumetric flow and the methane fraction must be on the same basis (both wet or both dry); "
    "a wet flow with a dry fraction needs the moisture content, which this calculator does not take"
)
MISSING_FLOW = (
    "Conservativeness (no TOOL06/TOOL08 clause on sub-hour gaps was found): a minute without a valid LFG flow "
    "reading counts as no methane sent to the flare or engine, hence none destroyed"
)
MISSING_CH4 = (
    "Conservativeness: a minute without a valid methane fraction counts as no methane (not the last or average "
    "value): no evidence, no destruction credited"
)
MISSING_TP = (
    "Conservativeness: a minute without a valid gas temperature (pressure) is normalised with the highest "
    "temperature (lowest pressure) observed in the period, which gives the lowest normal volume the data allow; "
    "with no valid reading at all, the flow cannot be normalised and counts as zero"
)
MISSING_FLAME = (
    "CDM TOOL06: operation of the flare must be shown by the flame detection system; a minute with no flame "
    "signal, or a flame signal of 0, has η_flare,m = 0"
)
MISSING_T_EG = (
    "CDM TOOL06 (enclosed flares): a minute without a valid exhaust gas temperature cannot show T_EG ≥ 500 °C, so "
    "η_flare,m = 0"
)
SPEC = (
    "CDM TOOL06 (enclosed flares): operation within the manufacturer's specifications, shown per minute as the "
    "normalised LFG flow to the flare lying within the manufacturer's operating range (flow meter attributes "
    "flow_min_m3h / flow_max_m3h); without a stated range the specification cannot be shown (η_flare,m = 0)"
)
CALIBRATION = (
    "CDM validation and verification standard for project activities (VVS-PA) v03.0, paras 366-368 (delayed "
    "calibration): readings taken while the instrument's calibration had lapsed are used with its maximum "
    "permissible error applied in the conservative direction; without a stated accuracy they are not used"
)
DUPLICATES = "Conservativeness: a minute delivered twice counts once, at the value that gives the lower emission reductions"
OUTSIDE_PERIOD = "Monitoring period [start, end): readings outside it belong to another period"
NON_FINITE = "Conservativeness: a reading without a finite value is treated as missing"
OFF_GRID = "TOOL06 calculates per minute m: a reading whose time is not an interval start of the instrument's grid is not used"
OUT_OF_RANGE = "Conservativeness: a physically impossible reading (negative flow, methane fraction outside 0..1, T ≤ 0 K, P ≤ 0) is treated as missing"
EG = (
    "TOOL05 (monitoring of electricity generation), as used by ACM0001 v19.0: EG_PJ,y is the net electricity "
    "generated with LFG and supplied, metered; a missing interval contributes 0"
)
