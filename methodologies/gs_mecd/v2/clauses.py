"""Where each rule of the GS MECD v2.0 calculator comes from, cited once.

Read this first — the state of the sources:

* The primary text, Gold Standard "Methodology for Metered & Measured Energy Cooking Devices"
  version 2.0 (GS document 431), could **not** be retrieved with the tools available when this
  package was written. Clauses are therefore cited by the methodology's section names
  ("Applicability", "Baseline emissions", "Project emissions", "Leakage", "Monitoring"), never by
  paragraph or equation number, and each clause says what evidence the rule rests on.
* The equations (fuel-mix baseline emission factor with fNRB and non-CO2 factors; efficiency ratio
  or specific-energy-consumption ratio; grid electricity with T&D losses) are the MECD equations as
  applied in the VVB-verified ER calculation tool of ATEC's "Electric Cooking Program in Bangladesh"
  (PoA GS11815, VPA02 GS11817, MECD 431 v1.x, Method 2), tabulated publicly in the Hedera Guardian
  methodology library (``hashgraph/guardian``, "Methodology Library/Gold Standard/Metered Energy
  Cooking/MECD v2.0/test-fixtures/parameter-map.md", commit 44f960d78b907d3ac6a4266719245df39a502251).
  The per-device numbers of that tool are reproduced by the tests.
* The v2.0 monitoring rules implemented in :mod:`methodologies.gs_mecd.v2.aggregation` (continuous
  device-level tracking with a >= 95 % reporting threshold, device data gaps, meter maximum
  permissible error) are as described second-hand in the same library's MECD v2.0 policy
  documentation ("MECD v2.0/readme.md" and "migration-from-v1.2.md", same repository). Where that
  description leaves a choice, the calculator takes the conservative option and says so.
* v2.0 features reported there but not confirmed against the primary text are NOT implemented
  (listed in :data:`NOT_IMPLEMENTED`). Check them against the official PDF before using this
  calculator for an issuance.
"""

from __future__ import annotations

METHODOLOGY = "Gold Standard 'Methodology for Metered & Measured Energy Cooking Devices' (MECD), version 2.0"
SOURCE_NOTE = (
    "GS MECD v2.0 primary text not available to the implementers; equations as applied in the verified "
    "ATEC GS11817 MECD ER tool (hashgraph/guardian parameter-map.md), v2.0 monitoring rules as described "
    "in the Guardian MECD v2.0 policy documentation"
)

# --- applicability -------------------------------------------------------------------------------

APPLICABILITY_METERED = (
    "GS MECD v2.0, 'Applicability': project devices are modern energy cooking devices that directly measure "
    "(meter) the energy or fuel they use in the project scenario; every device is identified and metered"
)
APPLICABILITY_ELECTRIC_ONLY = (
    "GS MECD v2.0, 'Applicability' (project device fuels: electricity, or metered fuels such as LPG, ethanol "
    "and biogas): this digitisation implements electric cooking devices only; fuel-metered devices (project "
    "emissions from metered fuel mass x NCV x emission factor) are NOT implemented"
)
APPLICABILITY_METHOD = (
    "GS MECD v2.0, 'Baseline emissions': the baseline is quantified with Method 1 (baseline and project device "
    "efficiencies from the Water Boiling Test, useful-energy basis), Method 2 (specific energy consumption from "
    "the Controlled Cooking Test) or Method 3 (Kitchen Performance Test); Methods 1 and 2 are implemented, "
    "Method 3 (KPT) is NOT"
)
APPLICABILITY_CTEC = (
    "GS MECD v2.0, 'Monitoring' (continuous tracking of energy consumption, CTEC): at least 95 % of the project "
    "devices in service in the monitoring period must report data; below that the period is not credited "
    "(as described in the Guardian MECD v2.0 policy documentation, 'ctec_integrity_summary')"
)

# --- baseline ------------------------------------------------------------------------------------

BASELINE_FUEL_MIX = (
    "GS MECD v2.0, 'Baseline emissions': the baseline fuel mix, Prop_i = share of baseline fuel i (the shares "
    "sum to 1), each fuel with its CO2 and non-CO2 emission factors per TJ; fNRB_i,y applies to the CO2 of woody "
    "biomass (wood, charcoal) only"
)
EF_B_FUEL = (
    "GS MECD v2.0, 'Baseline emissions': emission factor of baseline fuel i per TJ of fuel energy, "
    "EF_b,i = EF_b,CO2,i x fNRB_i,y + EF_b,nonCO2,i (fossil fuels: fNRB not applied)"
)
EF_B_INPUT = (
    "GS MECD v2.0, 'Baseline emissions', Method 2: EF_b,input = sum_i Prop_i x EF_b,i [tCO2e/TJ of baseline fuel "
    "energy] (ATEC GS11817 ER tool, BE F12 ~ 93.74 tCO2e/TJ); may be fixed ex ante in the validated PDD"
)
EF_B_USEFUL = (
    "GS MECD v2.0, 'Baseline emissions', Method 1: EF_b,useful = sum_i Prop_i x EF_b,i / eta_b,i [tCO2e/TJ of "
    "useful cooking energy]; may be fixed ex ante in the validated PDD"
)
SC_B = (
    "GS MECD v2.0, 'Baseline emissions', Method 2: SC_b = sum_i Prop_i x SC_b,i, the baseline specific energy "
    "consumption per standard cooking task from the Controlled Cooking Test (ATEC GS11817 ER tool, BE F61 = "
    "0.8 x 2.83 + 0.11 x 0.69 + 0.09 x 0.69 = 2.402 MJ); a mass per task is converted with NCV_b,i"
)
R_SC = (
    "GS MECD v2.0, 'Baseline emissions', Method 2: baseline fuel energy that the metered project energy "
    "displaces, EC_b,y = EC_p,y x SC_b / SC_p (specific energy consumption ratio, ATEC GS11817 ER tool)"
)
R_ETA = (
    "GS MECD v2.0, 'Baseline emissions', Method 1: useful energy delivered by the project devices, "
    "EG_p,useful,y = EC_p,y x eta_p, credited at the baseline fuels' useful-energy emission factor "
    "(efficiency ratio eta_p / eta_b,i per fuel)"
)
EC_P = "Unit conversion: EC_p,y [TJ] = EG_p,y [MWh] x 0.0036 TJ/MWh (ATEC GS11817 ER tool, PE F17)"
BE = "GS MECD v2.0, 'Baseline emissions': BE_y = EC_b,y x EF_b,input (Method 2) or EG_p,useful,y x EF_b,useful (Method 1)"
CONSERVATIVE_PAIR = (
    "Conservativeness: a baseline factor given both ex ante (validated PDD) and from the fuel mix is used at the "
    "lower of the two values"
)

# --- project, leakage, ER ------------------------------------------------------------------------

PE = (
    "GS MECD v2.0, 'Project emissions' (electricity): PE_y = EG_p,y x EF_el,y x (1 + TDL_y), grid electricity "
    "consumed by the project devices including technical transmission and distribution losses (as in CDM TOOL05); "
    "reproduces ATEC GS11817 ER tool PE F4 = 0.3285 MWh x 0.412 x 1.1041 = 0.1494 tCO2e/device/year"
)
LE = (
    "GS MECD v2.0, 'Leakage': LE_y = f_LE x BE_y, with f_LE the leakage fraction of the option the registered "
    "PDD applies (a required parameter: ATEC under v1.x applied Option 1, f_LE = 0; the Guardian v2.0 policy "
    "uses a 2 % default). Taken on BE_y, not on BE_y - PE_y, which is the conservative reading"
)
ER = "GS MECD v2.0, 'Emission reductions': ER_y = BE_y - PE_y - LE_y"

# --- monitoring / aggregation --------------------------------------------------------------------

EG_P = (
    "GS MECD v2.0, 'Monitoring', EG_p,d,y: electricity consumed by each project device d in the monitoring period, "
    "from its own meter (sum of the validated interval readings)"
)
DEVICE_REGISTRY = (
    "GS MECD v2.0, 'Monitoring': every credited device is identified in the project database (device registry); "
    "readings of devices not in the registry are not credited"
)
COMMISSIONING = (
    "GS MECD v2.0, 'Monitoring': a device contributes from its commissioning date; readings before it are not "
    "credited and its expected reporting intervals are counted from commissioning"
)
MIN_DEVICE_COVERAGE = 0.5  # [fraction of expected intervals]
DEVICE_COVERAGE = (
    "GS MECD v2.0, 'Monitoring', device data gaps (as described in the Guardian MECD v2.0 'data_gap_summary': "
    "devices with gaps of 50 % or more of the period are excluded): a device whose valid readings cover less than "
    "50 % of its expected intervals is excluded (neither credited nor charged); for the devices kept, missing "
    "intervals are NOT filled (more conservative than the 25th-percentile fill described there)"
)
CTEC_MIN_FLEET_COVERAGE = 0.95  # [fraction of devices in service]
MPE = (
    "GS MECD v2.0, 'Monitoring', meter accuracy: metered energy is adjusted by the meter's maximum permissible "
    "error (registry accuracy_class, %) in the conservative direction, EG x (1 - MPE) for baseline emissions and "
    "EG x (1 + MPE) for project emissions; applied to every meter (the Guardian v2.0 description applies it to "
    "meters worse than +/-2.5 %; applying it to all is more conservative)"
)
CALIBRATION = (
    "GS MECD v2.0, 'Monitoring' / QA-QC: readings taken outside the meter's calibration validity are not credited "
    "(treated as missing intervals)"
)
DUPLICATES = "Conservativeness: an interval delivered twice counts once, at its lower value"
OUTSIDE_PERIOD = "Monitoring period [start, end): readings outside it belong to another period"
INVALID_VALUE = "Conservativeness: a reading without a finite, non-negative value is treated as a missing interval"
INTERVAL = (
    "Reading interval of the device meters: from the device registry (interval_minutes) or the project "
    "(MonitoringInput.sources['device_interval_minutes']), otherwise the most frequent step between consecutive "
    "readings of a device"
)
QA_MAX_DAILY = (
    "GS MECD v2.0, 'Monitoring' QA/QC: daily energy per device above a plausible maximum (EG_max_d, project "
    "parameter, e.g. rated power x plausible cooking hours) is implausible; checked by the device_energy contract"
)

NOT_IMPLEMENTED: tuple[str, ...] = (
    "fuel-metered project devices (LPG, ethanol, biogas, other metered fuels): refused with ApplicabilityError",
    "Method 3 (Kitchen Performance Test) baseline: refused with ApplicabilityError",
    "v2.0 items described second-hand but not confirmed against the primary text: upstream emission factors "
    "(UEF) of baseline fuels, the 90/10 precision rule (upper-bound efficiencies), the per-capita consumption cap "
    "(PCAP), a downward adjustment factor (DAF), the NDC business-as-usual ceiling, embodied leakage of devices, "
    "the biennial performance retest and the baseline-consistency (10 % drift) check",
    "sampling-based monitoring (a full census of metered devices is assumed)",
)
