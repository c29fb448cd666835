"""CDM ACM0001 v19.0 "Flaring or use of landfill gas": flaring (TOOL06) and electricity generation.

Equations (symbols as in the methodology and its tools; units in brackets):

    GWP_CH4            dated GWP-100 for the programme and period (methodologies/common/gwp.py)   [tCO2e/tCH4]
    η_flare,m          TOOL06 per minute (open: 50 % with flame; enclosed: 90 % or η_flare,calc when
                       T_EG ≥ 500 °C and within specification; − 0.1 for low height flares; else 0)  [fraction]
    PE_flare,y         = GWP_CH4 × Σ_m F_CH4,RG,m × (1 − η_flare,m)                               [tCO2e]
    F_CH4,flared,y     = F_CH4,sent_flare,y − PE_flare,y / GWP_CH4                                 [tCH4]
    F_CH4,PJ,y         = F_CH4,flared,y + F_CH4,EL,y                                               [tCH4]
    F_CH4,BL,y         = max(AF × F_CH4,PJ,y, F_CH4,BL,R,y)                                        [tCH4]
    BE_CH4,y           = (1 − OX_top_layer) × (F_CH4,PJ,y − F_CH4,BL,y) × GWP_CH4                  [tCO2e]
    BE_EC,y            = EG_PJ,y × EF_grid,y                                                       [tCO2e]
    BE_y               = BE_CH4,y + BE_EC,y                                                        [tCO2e]
    PE_EC,y            = EC_PJ,y × EF_EC,y ;  PE_y = PE_EC,y + PE_FC,y                             [tCO2e]
    LE_y               = 0 ;  ER_y = BE_y − PE_y                                                   [tCO2e]

η_flare,m is constant within each class of minutes that :mod:`.monitoring` reports (flame detected;
enclosed-flare operating conditions met; neither), so Σ_m F_CH4,RG,m × η_flare,m is computed
exactly as Σ_class η_class × F_class, with η_class from :func:`methodologies.cdm_tool06.eta_flare_m`.

Not implemented: heat generation (BE_HG,y), supply to a natural gas network (BE_NG,y), more than
one flare stream, TOOL06 Option B with per-minute exhaust analysis (only the periodic-measurement
value η_flare,calc is taken), the ex-ante FOD estimate (TOOL04, model correction factor).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from methodologies.cdm_acm0001.v19 import clauses
from methodologies.cdm_acm0001.v19.monitoring import (
    AGGREGATED,
    AGGREGATED_NAMES,
    DATASET,
    INSTRUMENT_QUANTITIES,
    aggregate_flare_data,
)
from methodologies.cdm_tool06 import v4 as tool06
from methodologies.common import gwp as gwp_sets
from mrv.errors import ApplicabilityError, ParameterError
from mrv.methodology import (
    Applicability,
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

EF_UNIT = "tCO2e/MWh"
GWP_UNIT = "tCO2e/tCH4"


class ACM0001(Methodology):
    """ACM0001 v19.0 with TOOL06 v04.0 (flaring) and TOOL08 (methane mass flow), minute data."""

    info = MethodologyInfo(
        id="CDM:ACM0001:19.0",
        title="Flaring or use of landfill gas",
        program="CDM",
        code="ACM0001",
        version="19.0",
        source_document="CDM approved consolidated methodology ACM0001 'Flaring or use of landfill gas', version 19.0 "
                        "(UNFCCC CDM Executive Board), with TOOL06 v04.0, TOOL08 and TOOL05",
        source_url="https://cdm.unfccc.int/methodologies/PAmethodologies/approved",
        tools=(tool06.TOOL_ID, "CDM:TOOL08", "CDM:TOOL05"),
        sector="Waste handling and disposal",
        project_type="Landfill gas flaring and use",
        unit_type="Reduction - technical",
        applicability=(
            Applicability("Landfill gas is captured at a solid waste disposal site and flared and/or used to generate "
                          "electricity.", clause=clauses.APPLICABILITY_ACTIVITY),
            Applicability("Only flaring and electricity generation are implemented; heat generation and supply to a gas "
                          "network raise ApplicabilityError.", clause=clauses.APPLICABILITY_USES),
            Applicability("The management of the SWDS is not deliberately changed to increase methane generation "
                          "(parameter swds_management_changed must be false).", clause=clauses.APPLICABILITY_MANAGEMENT),
            Applicability("One flare stream and at most one electricity generation stream per project file.",
                          clause=clauses.APPLICABILITY_ONE_FLARE),
        ),
    )

    #: Quantity symbol -> unit the equations use; readers convert instrument values to these units.
    instrument_quantities = INSTRUMENT_QUANTITIES

    parameters = (
        ParameterSpec("swds_management_changed", "The SWDS management is deliberately changed to increase methane "
                      "generation (true makes the methodology inapplicable)", kind="boolean"),
        ParameterSpec("gwp_program", "Programme whose dated GWP rules apply", kind="choice",
                      choices=gwp_sets.PROGRAMS, required=False, default="CDM",
                      default_source="CDM (methodologies/common/gwp.py)"),
        ParameterSpec("flare_type", "TOOL06 flare type (required when methane is sent to a flare)", kind="choice",
                      choices=tool06.FLARE_TYPES, required=False),
        ParameterSpec("flare_efficiency_option", "TOOL06 option: default value (A) or measured efficiency (B)",
                      kind="choice", choices=tool06.EFFICIENCY_OPTIONS, required=False, default="default",
                      default_source="TOOL06 Option A (default value)"),
        ParameterSpec("eta_flare_calc_y", "TOOL06 Option B: flare efficiency from the periodic exhaust-gas measurements, "
                      "η_flare,calc,y = 1 − (1/n) Σ_t F_CH4,EG,t / F_CH4,RG,t", required=False, minimum=0, maximum=1),
        ParameterSpec("low_height_flare", "The enclosed flare is a low height flare as TOOL06 defines it (required for "
                      "enclosed flares; the definition is not encoded here)", kind="boolean", required=False),
        ParameterSpec("V_t_max", "Upper end of the measuring range of the LFG flow meters; the data contract "
                      "quarantines flows above it (${values.param.V_t_max} in flare_instruments.yaml)", unit="m3/h",
                      minimum=0),
        ParameterSpec("OX_top_layer", "Fraction of methane that would be oxidized in the top layer of the SWDS in the "
                      "baseline", required=False, default=0.1, default_source=clauses.OX, minimum=0, maximum=1),
        ParameterSpec("AF", "Adjustment factor: fraction of the project's methane destruction that would happen in the "
                      "baseline (regulatory/contractual requirement or historical practice); 0 if none", minimum=0, maximum=1),
        ParameterSpec("F_CH4_BL_R_y", "Methane the baseline would destroy to meet a requirement stated as an amount "
                      "for the period", unit="t", required=False, default=0.0,
                      default_source="no requirement stated as an amount", minimum=0),
        ParameterSpec("EF_grid_y", "Emission factor of the grid electricity displaced by LFG electricity (TOOL05/TOOL07); "
                      "required when electricity is generated", unit=EF_UNIT, required=False, minimum=0),
        ParameterSpec("EC_PJ_y", "Electricity consumed by the project (blowers, flare, auxiliaries) in the period",
                      unit="MWh", minimum=0),
        ParameterSpec("EF_EC_y", "Emission factor for the project's electricity consumption (TOOL05); required when "
                      "EC_PJ_y > 0", unit=EF_UNIT, required=False, minimum=0),
        ParameterSpec("PE_FC_y", "Project emissions from fossil fuel combustion (TOOL03)", unit="tCO2e", required=False,
                      default=0.0, default_source="no fossil fuel combustion in the project (supply PE_FC_y otherwise)",
                      minimum=0),
    )

    monitored = (
        MonitoredSpec(DATASET, "Minute readings of the LFG flow, methane fraction, gas temperature and pressure, flare "
                      "exhaust temperature, flame detection and electricity generation (one series per instrument)",
                      contract="flare_instruments", unit="per quantity (instrument_quantities)", source="instruments"),
    )

    #: The values :meth:`aggregate` hands to :meth:`calculate` (name, unit, description); the one
    #: MonitoredSpec above is a dataset. ``mrv calculate`` accepts these names as pre-aggregated input.
    aggregated = AGGREGATED

    equations = (
        EquationSpec("GWP_CH4", "dated GWP-100 of CH4 for gwp_program and the monitoring period", GWP_UNIT, clauses.GWP),
        EquationSpec("F_CH4_RG_m", "V_t,n,m / 60 × v_CH4,m × ρ_CH4,n (minute m; V_t,n = V_t × P_t/P_n × T_n/T_t)", "kg",
                     clauses.TOOL08_MASS_FLOW),
        EquationSpec("eta_flare_m", "open: 0.5 if flame else 0; enclosed: 0.9 (or η_flare,calc,y) if T_EG ≥ 500 °C and "
                     "within specification else 0; − 0.1 for low height flares", "dimensionless",
                     f"{tool06.CLAUSE_OPEN}; {tool06.CLAUSE_ENCLOSED_DEFAULT}; {tool06.CLAUSE_LOW_HEIGHT}"),
        EquationSpec("PE_flare_y", "GWP_CH4 × Σ_m F_CH4,RG,m × (1 − η_flare,m) / 1000", "tCO2e", tool06.CLAUSE_PE),
        EquationSpec("F_CH4_flared_y", "F_CH4,sent_flare,y − PE_flare,y / GWP_CH4", "t", clauses.F_CH4_FLARED),
        EquationSpec("F_CH4_PJ_y", "F_CH4,flared,y + F_CH4,EL,y", "t", clauses.F_CH4_PJ),
        EquationSpec("F_CH4_BL_y", "max(AF × F_CH4,PJ,y, F_CH4,BL,R,y)", "t", clauses.F_CH4_BL),
        EquationSpec("BE_CH4_y", "(1 − OX_top_layer) × (F_CH4,PJ,y − F_CH4,BL,y) × GWP_CH4", "tCO2e", clauses.BE_CH4),
        EquationSpec("BE_EC_y", "EG_PJ,y × EF_grid,y", "tCO2e", clauses.BE_EC),
        EquationSpec("BE_y", "BE_CH4,y + BE_EC,y", "tCO2e", clauses.BE),
        EquationSpec("PE_EC_y", "EC_PJ,y × EF_EC,y", "tCO2e", clauses.PE_EC),
        EquationSpec("PE_y", "PE_EC,y + PE_FC,y", "tCO2e", clauses.PE),
        EquationSpec("LE_y", "0", "tCO2e", clauses.LE),
        EquationSpec("ER_y", "BE_y − PE_y", "tCO2e", clauses.ER),
    )

    outputs = (
        OutputSpec("GWP_CH4", "Global warming potential of methane used", GWP_UNIT),
        OutputSpec("eta_flare_flame", "Flare efficiency in minutes with flame detected (open flare)", "dimensionless"),
        OutputSpec("eta_flare_ok", "Flare efficiency in minutes meeting the operating conditions (enclosed flare)", "dimensionless"),
        OutputSpec("F_CH4_sent_flare_y", "Methane sent to the flare", "t"),
        OutputSpec("PE_flare_y", "Project emissions from flaring (TOOL06)", "tCO2e"),
        OutputSpec("F_CH4_flared_y", "Methane destroyed by flaring", "t"),
        OutputSpec("F_CH4_EL_y", "Methane used for electricity generation", "t"),
        OutputSpec("F_CH4_PJ_y", "Methane destroyed or used by the project", "t"),
        OutputSpec("F_CH4_BL_y", "Methane that would be destroyed in the baseline", "t"),
        OutputSpec("BE_CH4_y", "Baseline emissions of methane", "tCO2e"),
        OutputSpec("EG_PJ_y", "Electricity generated with LFG", "MWh"),
        OutputSpec("BE_EC_y", "Baseline emissions of displaced electricity generation", "tCO2e"),
        OutputSpec("BE_y", "Baseline emissions", "tCO2e"),
        OutputSpec("PE_EC_y", "Project emissions from electricity consumption", "tCO2e"),
        OutputSpec("PE_y", "Project emissions", "tCO2e"),
        OutputSpec("LE_y", "Leakage emissions", "tCO2e"),
        OutputSpec("ER_y", "Emission reductions (before rounding; issuable = floor, never negative)", "tCO2e"),
    )

    # ---------------------------------------------------------------------------------------------

    def check_applicability(self, parameters: Mapping[str, ParameterValue]) -> None:
        if parameters["swds_management_changed"].value is True:
            raise ApplicabilityError(
                f"{self.id}: the SWDS management is deliberately changed to increase methane generation. "
                f"{clauses.APPLICABILITY_MANAGEMENT}"
            )

    def aggregate(self, data: MonitoringInput, *, trace: Trace) -> tuple[dict[str, float], list[dict[str, Any]]]:
        return aggregate_flare_data(data, trace=trace)

    def calculate(
        self, *, parameters: Mapping[str, ParameterValue], monitored: Mapping[str, float], trace: Trace
    ) -> dict[str, tuple[float, str]]:
        missing = [n for n in AGGREGATED_NAMES if n not in monitored]
        if missing:
            raise ParameterError(f"{self.id}: monitored value(s) missing: {', '.join(missing)}")
        m = {k: float(monitored[k]) for k in AGGREGATED_NAMES}
        for k, v in m.items():
            if not math.isfinite(v) or (v < 0 and k not in ("period_start_s", "period_end_s")):
                raise ParameterError(f"{self.id}: monitored {k} must be finite and non-negative, got {v}")
        if m["F_CH4_flare_flame_y"] > m["F_CH4_sent_flare_y"] * (1 + 1e-12) + 1e-12 or \
                m["F_CH4_flare_ok_y"] > m["F_CH4_sent_flare_y"] * (1 + 1e-12) + 1e-12:
            raise ParameterError(f"{self.id}: methane in a class of minutes exceeds F_CH4_sent_flare_y")
        p = {k: v.value for k, v in parameters.items()}

        # GWP_CH4: dated, sourced, by programme and period
        start = datetime.fromtimestamp(m["period_start_s"], tz=timezone.utc)
        end = datetime.fromtimestamp(m["period_end_s"], tz=timezone.utc)
        choice = gwp_sets.select_gwp("CH4", program=str(p["gwp_program"]), start=start, end=end)
        GWP = float(trace.record("GWP_CH4", choice.value, GWP_UNIT, equation=f"GWP-100 of CH4, {choice.set_id}",
                                 clause=choice.clause, inputs=choice.trace_inputs()))

        # TOOL06: η_flare,m per class of minutes
        F_sent = m["F_CH4_sent_flare_y"]
        eta_flame = eta_ok = 0.0
        destroyed = 0.0
        if F_sent > 0:
            flare_type = p.get("flare_type")
            if flare_type is None:
                raise ParameterError(f"{self.id}: flare_type (open | enclosed) is required when methane is sent to a flare")
            option = str(p["flare_efficiency_option"])
            eta_calc = p.get("eta_flare_calc_y")
            if flare_type == "enclosed" and "low_height_flare" not in p:
                raise ParameterError(f"{self.id}: low_height_flare (true | false) is required for an enclosed flare. {tool06.CLAUSE_LOW_HEIGHT}")
            if option == "measured" and eta_calc is None:
                raise ParameterError(f"{self.id}: flare_efficiency_option 'measured' needs eta_flare_calc_y. {tool06.CLAUSE_ENCLOSED_MEASURED}")
            if option == "default" and eta_calc is not None:
                raise ParameterError(f"{self.id}: eta_flare_calc_y is given but flare_efficiency_option is 'default'")
            low = bool(p.get("low_height_flare", False))
            if flare_type == "open":
                eta_flame = float(tool06.eta_flare_m("open", flame_detected=[True], option=option, low_height_flare=low)[0])
                destroyed = eta_flame * m["F_CH4_flare_flame_y"]
                trace.record("eta_flare_flame", eta_flame, "dimensionless", equation="open flare, flame detected",
                             clause=tool06.CLAUSE_OPEN, inputs={"minutes": m["N_min_flare_flame"],
                                                                "minutes_eta_0": m["N_min_flare_flow"] - m["N_min_flare_flame"]})
            else:
                eta_ok = float(tool06.eta_flare_m(
                    "enclosed", flame_detected=[True], operating_conditions_met=[True], option=option,
                    eta_flare_calc=None if eta_calc is None else float(eta_calc), low_height_flare=low)[0])
                destroyed = eta_ok * m["F_CH4_flare_ok_y"]
                clause = tool06.CLAUSE_ENCLOSED_DEFAULT if option == "default" else tool06.CLAUSE_ENCLOSED_MEASURED
                trace.record("eta_flare_ok", eta_ok, "dimensionless",
                             equation=("0.9" if option == "default" else "η_flare,calc,y") + (" − 0.1 (low height flare)" if low else ""),
                             clause=f"{clause}; {tool06.CLAUSE_LOW_HEIGHT}" if low else clause,
                             inputs={"option": option, "eta_flare_calc_y": eta_calc, "low_height_flare": low,
                                     "minutes": m["N_min_flare_ok"], "minutes_eta_0": m["N_min_flare_flow"] - m["N_min_flare_ok"]})
        unburnt = max(F_sent - destroyed, 0.0)
        PE_flare_y = trace.record("PE_flare_y", GWP * unburnt, "tCO2e",
                                  equation="GWP_CH4 × Σ_m F_CH4,RG,m × (1 − η_flare,m)", clause=tool06.CLAUSE_PE,
                                  inputs={"GWP_CH4": GWP, "F_CH4_sent_flare_y": F_sent, "Σ_m F_CH4,RG,m × η_flare,m": destroyed})
        F_flared = trace.record("F_CH4_flared_y", F_sent - float(PE_flare_y) / GWP, "t",
                                equation="F_CH4,sent_flare,y − PE_flare,y / GWP_CH4", clause=clauses.F_CH4_FLARED,
                                inputs={"F_CH4_sent_flare_y": F_sent, "PE_flare_y": PE_flare_y, "GWP_CH4": GWP})
        F_EL = trace.record("F_CH4_EL_y", m["F_CH4_EL_y"], "t", equation="monitored (TOOL08)", clause=clauses.F_CH4_EL)
        F_PJ = float(trace.record("F_CH4_PJ_y", float(F_flared) + float(F_EL), "t", equation="F_CH4,flared,y + F_CH4,EL,y",
                                  clause=clauses.F_CH4_PJ, inputs={"F_CH4_flared_y": F_flared, "F_CH4_EL_y": F_EL}))
        AF, F_BL_R = float(p["AF"]), float(p["F_CH4_BL_R_y"])
        F_BL = float(trace.record("F_CH4_BL_y", max(AF * F_PJ, F_BL_R), "t", equation="max(AF × F_CH4,PJ,y, F_CH4,BL,R,y)",
                                  clause=clauses.F_CH4_BL, inputs={"AF": AF, "F_CH4_PJ_y": F_PJ, "F_CH4_BL_R_y": F_BL_R,
                                                                  "source_AF": parameters["AF"].source}))
        OX = float(p["OX_top_layer"])
        BE_CH4 = float(trace.record("BE_CH4_y", (1.0 - OX) * (F_PJ - F_BL) * GWP, "tCO2e",
                                    equation="(1 − OX_top_layer) × (F_CH4,PJ,y − F_CH4,BL,y) × GWP_CH4", clause=clauses.BE_CH4,
                                    inputs={"OX_top_layer": OX, "F_CH4_PJ_y": F_PJ, "F_CH4_BL_y": F_BL, "GWP_CH4": GWP},
                                    note=clauses.MODEL_CORRECTION))

        EG = m["EG_PJ_y"]
        if EG > 0:
            if "EF_grid_y" not in p:
                raise ParameterError(f"{self.id}: EF_grid_y is required: {EG} MWh of LFG electricity were generated. {clauses.BE_EC}")
            EF = float(p["EF_grid_y"])
            BE_EC = float(trace.record("BE_EC_y", EG * EF, "tCO2e", equation="EG_PJ,y × EF_grid,y", clause=clauses.BE_EC,
                                       inputs={"EG_PJ_y": EG, "EF_grid_y": EF, "source": parameters["EF_grid_y"].source}))
        else:
            BE_EC = float(trace.record("BE_EC_y", 0.0, "tCO2e", equation="0 (no electricity generated)", clause=clauses.BE_EC))
        BE = float(trace.record("BE_y", BE_CH4 + BE_EC, "tCO2e", equation="BE_CH4,y + BE_EC,y", clause=clauses.BE,
                                inputs={"BE_CH4_y": BE_CH4, "BE_EC_y": BE_EC}))

        EC = float(p["EC_PJ_y"])
        if EC > 0:
            if "EF_EC_y" not in p:
                raise ParameterError(f"{self.id}: EF_EC_y is required when EC_PJ_y > 0. {clauses.PE_EC}")
            EF_EC = float(p["EF_EC_y"])
        else:
            EF_EC = float(p.get("EF_EC_y", 0.0))
        PE_EC = float(trace.record("PE_EC_y", EC * EF_EC, "tCO2e", equation="EC_PJ,y × EF_EC,y", clause=clauses.PE_EC,
                                   inputs={"EC_PJ_y": EC, "EF_EC_y": EF_EC}))
        PE_FC = float(p["PE_FC_y"])
        PE = float(trace.record("PE_y", PE_EC + PE_FC, "tCO2e", equation="PE_EC,y + PE_FC,y", clause=clauses.PE,
                                inputs={"PE_EC_y": PE_EC, "PE_FC_y": PE_FC, "source_PE_FC_y": parameters["PE_FC_y"].source}))
        LE = float(trace.record("LE_y", 0.0, "tCO2e", equation="0", clause=clauses.LE))
        ER = float(trace.record("ER_y", BE - PE - LE, "tCO2e", equation="BE_y − PE_y", clause=clauses.ER,
                                inputs={"BE_y": BE, "PE_y": PE, "LE_y": LE}))
        return {
            "GWP_CH4": (GWP, GWP_UNIT),
            "eta_flare_flame": (eta_flame, "dimensionless"),
            "eta_flare_ok": (eta_ok, "dimensionless"),
            "F_CH4_sent_flare_y": (F_sent, "t"),
            "PE_flare_y": (float(PE_flare_y), "tCO2e"),
            "F_CH4_flared_y": (float(F_flared), "t"),
            "F_CH4_EL_y": (float(F_EL), "t"),
            "F_CH4_PJ_y": (F_PJ, "t"),
            "F_CH4_BL_y": (F_BL, "t"),
            "BE_CH4_y": (BE_CH4, "tCO2e"),
            "EG_PJ_y": (EG, "MWh"),
            "BE_EC_y": (BE_EC, "tCO2e"),
            "BE_y": (BE, "tCO2e"),
            "PE_EC_y": (PE_EC, "tCO2e"),
            "PE_y": (PE, "tCO2e"),
            "LE_y": (LE, "tCO2e"),
            "ER_y": (ER, "tCO2e"),
        }
