"""GS MECD v2.0 "Methodology for Metered & Measured Energy Cooking Devices", electric cooking devices.

Equations (symbols as in the methodology, units in brackets; see :mod:`.clauses` for the sources):

Metered energy (aggregated per device by :mod:`methodologies.gs_mecd.v2.aggregation`)::

    EG_p_y     = Σ_d EG_p,d,y × (1 − MPE_d)     metered electricity, for BE                 [MWh]
    EG_p_PE_y  = Σ_d EG_p,d,y × (1 + MPE_d)     metered electricity, for PE                 [MWh]
    EC_p_y     = EG_p_y × 0.0036                project energy                              [TJ]

Baseline fuel mix (fuels i ∈ {wood, charcoal, kerosene, lpg, natural_gas, coal})::

    EF_b_i     = EF_b_CO2_i × fNRB_i_y + EF_b_nonCO2_i   (fNRB only for wood, charcoal)     [tCO2e/TJ]
    Σ_i Prop_i = 1

Method 1 (efficiencies, WBT; useful-energy basis)::

    EG_p_useful_y = EC_p_y × eta_p                                                           [TJ]
    EF_b_useful   = Σ_i Prop_i × EF_b_i / eta_b_i      (or the ex-ante EF_b_useful)         [tCO2e/TJ]
    BE_y          = EG_p_useful_y × EF_b_useful                                              [tCO2e]

Method 2 (specific energy consumption, CCT)::

    SC_b_i     = SC_b_i [MJ]  or  SC_b_mass_i [kg] × NCV_b_i [TJ/t] × 1000                   [MJ/task]
    SC_b       = Σ_i Prop_i × SC_b_i                    (or the ex-ante SC_b)               [MJ/task]
    R_SC       = SC_b / SC_p                            specific energy consumption ratio    [-]
    EC_b_y     = EC_p_y × R_SC                          baseline fuel energy displaced       [TJ]
    EF_b_input = Σ_i Prop_i × EF_b_i                    (or the ex-ante EF_b_input)         [tCO2e/TJ]
    BE_y       = EC_b_y × EF_b_input                                                         [tCO2e]

Project emissions, leakage, emission reductions::

    PE_y = EG_p_PE_y × EF_el_y × (1 + TDL_y)                                                 [tCO2e]
    LE_y = f_LE × BE_y                                                                       [tCO2e]
    ER_y = BE_y − PE_y − LE_y                                                                [tCO2e]

Applicability: only electric project devices (``project_fuel: electricity``); fuel-metered devices
and Method 3 (KPT) raise :class:`~mrv.errors.ApplicabilityError` citing the clause. The fleet must
meet the continuous-tracking threshold: N_p_rep_y / N_p_y ≥ 0.95.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from methodologies.gs_mecd.v2 import clauses
from methodologies.gs_mecd.v2.aggregation import aggregate_device_energy
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

EF_UNIT = "tCO2e/TJ"
MWH_TO_TJ = 0.0036  # [TJ/MWh]
TJ_PER_T_TO_MJ_PER_KG = 1000.0  # 1 TJ/t = 1e6 MJ / 1e3 kg

PROJECT_FUELS: tuple[str, ...] = ("electricity", "lpg", "ethanol", "biogas", "other_metered_fuel")
METHODS: tuple[str, ...] = ("M1_efficiency", "M2_specific_consumption", "M3_KPT")
IMPLEMENTED_METHODS: tuple[str, ...] = ("M1_efficiency", "M2_specific_consumption")
FUELS: tuple[str, ...] = ("wood", "charcoal", "kerosene", "lpg", "natural_gas", "coal")
WOODY: frozenset[str] = frozenset({"wood", "charcoal"})
PROP_TOLERANCE = 1e-6


def _fuel_parameters(fuel: str) -> tuple[ParameterSpec, ...]:
    specs = [
        ParameterSpec(f"Prop_{fuel}", f"Prop_i: share of {fuel} in the baseline fuel mix (omit if not used)",
                      unit="dimensionless", required=False, minimum=0.0, maximum=1.0),
        ParameterSpec(f"EF_b_CO2_{fuel}", f"EF_b,CO2,i: CO2 emission factor of {fuel} per TJ of fuel energy",
                      unit=EF_UNIT, required=False, minimum=0.0),
        ParameterSpec(f"EF_b_nonCO2_{fuel}", f"EF_b,nonCO2,i: CH4 + N2O emission factor of {fuel} (CO2e) per TJ",
                      unit=EF_UNIT, required=False, minimum=0.0),
        ParameterSpec(f"eta_b_{fuel}", f"eta_b,i: efficiency of the baseline {fuel} device (WBT), Method 1",
                      unit="dimensionless", required=False, minimum=0.0, maximum=1.0),
        ParameterSpec(f"SC_b_{fuel}", f"SC_b,i: baseline specific energy consumption with {fuel} per standard task (CCT), Method 2",
                      unit="MJ", required=False, minimum=0.0),
        ParameterSpec(f"SC_b_mass_{fuel}", f"SC_b,i as fuel mass of {fuel} per standard task (CCT), Method 2; needs NCV_b_{fuel}",
                      unit="kg", required=False, minimum=0.0),
        ParameterSpec(f"NCV_b_{fuel}", f"NCV_b,i: net calorific value of {fuel}", unit="TJ/t", required=False, minimum=0.0),
    ]
    if fuel in WOODY:
        specs.append(ParameterSpec(f"fNRB_{fuel}_y", f"fNRB_i,y: fraction of non-renewable biomass of {fuel}",
                                   unit="dimensionless", required=False, minimum=0.0, maximum=1.0))
    return tuple(specs)


class MECD(Methodology):
    """GS MECD v2.0 for electric cooking devices (Methods 1 and 2), metered per device."""

    info = MethodologyInfo(
        id="GS:MECD:2.0",
        title="Methodology for Metered & Measured Energy Cooking Devices (electric cooking devices)",
        program="GS",
        code="MECD",
        version="2.0",
        source_document=(
            "Gold Standard for the Global Goals, 'Methodology for Metered & Measured Energy Cooking Devices', "
            f"version 2.0 (GS 431). {clauses.SOURCE_NOTE}"
        ),
        source_url="https://globalgoals.goldstandard.org/431_ee_ics_methodology-for-metered-measured-energy-cooking-devices/",
        sector="Energy demand",
        project_type="Metered electric cooking",
        unit_type="Avoidance",
        tools=(),  # PE follows the CDM TOOL05 form EG × EF × (1 + TDL); TOOL05 itself is not digitised here
        applicability=(
            Applicability("Project devices are cooking devices that meter the energy they use, each identified in a device registry",
                          clauses.APPLICABILITY_METERED),
            Applicability("Project devices are ELECTRIC (grid electricity); fuel-metered devices (LPG, ethanol, biogas) are "
                          "not implemented and are refused", clauses.APPLICABILITY_ELECTRIC_ONLY),
            Applicability("Baseline quantified with Method 1 (efficiencies) or Method 2 (specific energy consumption); "
                          "Method 3 (KPT) is not implemented and is refused", clauses.APPLICABILITY_METHOD),
            Applicability("At least 95 % of the devices in service report data in the monitoring period (CTEC)",
                          clauses.APPLICABILITY_CTEC),
        ),
    )

    parameters = (
        ParameterSpec("project_fuel", "Energy the project devices use (only electricity is implemented)", kind="choice",
                      choices=PROJECT_FUELS),
        ParameterSpec("quantification_method", "Baseline method: M1_efficiency (WBT), M2_specific_consumption (CCT); "
                      "M3_KPT is not implemented", kind="choice", choices=METHODS),
        ParameterSpec("eta_p", "eta_p: efficiency of the project device (WBT), Method 1", unit="dimensionless",
                      required=False, minimum=0.0, maximum=1.0),
        ParameterSpec("SC_p", "SC_p: project device specific energy consumption per standard task (CCT), Method 2",
                      unit="MJ", required=False, minimum=0.0),
        ParameterSpec("SC_b", "SC_b: fleet baseline specific energy consumption per standard task fixed ex ante "
                      "(instead of, or checked against, the per-fuel SC_b_i)", unit="MJ", required=False, minimum=0.0),
        ParameterSpec("EF_b_input", "EF_b,input: baseline emission factor per TJ of baseline fuel energy fixed ex ante "
                      "in the validated PDD (Method 2)", unit=EF_UNIT, required=False, minimum=0.0),
        ParameterSpec("EF_b_useful", "EF_b,useful: baseline emission factor per TJ of useful energy fixed ex ante in "
                      "the validated PDD (Method 1)", unit=EF_UNIT, required=False, minimum=0.0),
        *(p for fuel in FUELS for p in _fuel_parameters(fuel)),
        ParameterSpec("EF_el_y", "EF_el,y: emission factor of the grid electricity the devices use", unit="tCO2e/MWh",
                      minimum=0.0),
        ParameterSpec("TDL_y", "TDL_y: average technical transmission and distribution losses of the grid (fraction)",
                      unit="dimensionless", minimum=0.0, maximum=1.0),
        ParameterSpec("f_LE", "f_LE: leakage as a fraction of BE_y, per the leakage option of the registered PDD",
                      unit="dimensionless", minimum=0.0, maximum=1.0),
        ParameterSpec("EG_max_d", "QA/QC: plausible maximum electricity one device uses in a day (device_energy "
                      "contract, rule daily_energy_plausible)", unit="kWh/day", minimum=0.0),
    )

    monitored = (
        MonitoredSpec("device_energy", "Electricity per 15-min (or declared) interval of every metered project device "
                      "(tidy long frame device_id, ts, value [kWh], unit) with the device registry", contract="device_energy",
                      unit="kWh per interval", source="devices"),
    )

    #: What :meth:`aggregate` derives from the ``device_energy`` dataset and :meth:`calculate` reads;
    #: ``mrv calculate`` accepts these names as pre-aggregated input.
    aggregated = (
        MonitoredValue("EG_p_y", "MWh", "Metered electricity of the reporting devices, lowered by each meter's MPE (for BE)"),
        MonitoredValue("EG_p_PE_y", "MWh", "Metered electricity of the reporting devices, raised by each meter's MPE (for PE)"),
        MonitoredValue("N_p_y", "dimensionless", "Project devices in service in the period (registry, commissioned before the end)"),
        MonitoredValue("N_p_rep_y", "dimensionless", "Devices meeting the minimum reporting coverage (counted in EG_p_y)"),
    )

    equations = (
        EquationSpec("EC_p_y", "EG_p_y × 0.0036", "TJ", clauses.EC_P),
        EquationSpec("EF_b_i", "EF_b_CO2_i × fNRB_i_y + EF_b_nonCO2_i (fNRB only for woody biomass)", EF_UNIT, clauses.EF_B_FUEL),
        EquationSpec("EF_b_useful", "Σ_i Prop_i × EF_b_i / eta_b_i (Method 1)", EF_UNIT, clauses.EF_B_USEFUL),
        EquationSpec("EG_p_useful_y", "EC_p_y × eta_p (Method 1)", "TJ", clauses.R_ETA),
        EquationSpec("SC_b", "Σ_i Prop_i × SC_b_i; SC_b_i = SC_b_mass_i × NCV_b_i × 1000 when given as mass (Method 2)", "MJ", clauses.SC_B),
        EquationSpec("R_SC", "SC_b / SC_p (Method 2)", "dimensionless", clauses.R_SC),
        EquationSpec("EC_b_y", "EC_p_y × R_SC (Method 2)", "TJ", clauses.R_SC),
        EquationSpec("EF_b_input", "Σ_i Prop_i × EF_b_i (Method 2)", EF_UNIT, clauses.EF_B_INPUT),
        EquationSpec("BE_y", "EG_p_useful_y × EF_b_useful (M1) | EC_b_y × EF_b_input (M2)", "tCO2e", clauses.BE),
        EquationSpec("PE_y", "EG_p_PE_y × EF_el_y × (1 + TDL_y)", "tCO2e", clauses.PE),
        EquationSpec("LE_y", "f_LE × BE_y", "tCO2e", clauses.LE),
        EquationSpec("ER_y", "BE_y − PE_y − LE_y", "tCO2e", clauses.ER),
    )

    outputs = (
        OutputSpec("CTEC_y", "Share of devices in service that meet the reporting coverage", "dimensionless"),
        OutputSpec("EC_p_y", "Metered project electricity as energy (BE side)", "TJ"),
        OutputSpec("EF_b_useful", "Baseline emission factor per TJ of useful energy (Method 1)", EF_UNIT),
        OutputSpec("EF_b_input", "Baseline emission factor per TJ of baseline fuel energy (Method 2)", EF_UNIT),
        OutputSpec("R_SC", "Specific energy consumption ratio SC_b / SC_p (Method 2)", "dimensionless"),
        OutputSpec("BE_y", "Baseline emissions", "tCO2e"),
        OutputSpec("PE_y", "Project emissions from grid electricity", "tCO2e"),
        OutputSpec("LE_y", "Leakage emissions", "tCO2e"),
        OutputSpec("ER_y", "Emission reductions", "tCO2e"),
    )

    # ------------------------------------------------------------------------------- applicability

    def check_applicability(self, parameters: Mapping[str, ParameterValue]) -> None:
        fuel = str(parameters["project_fuel"].value)
        if fuel != "electricity":
            raise self.not_applicable(
                f"project_fuel {fuel!r}: fuel-metered project devices are not implemented (electric devices only)",
                clause=clauses.APPLICABILITY_ELECTRIC_ONLY,
            )
        method = str(parameters["quantification_method"].value)
        if method not in IMPLEMENTED_METHODS:
            raise self.not_applicable(f"quantification_method {method!r} is not implemented", clause=clauses.APPLICABILITY_METHOD)

    # ------------------------------------------------------------------------------- aggregate

    def aggregate(self, data: MonitoringInput, *, trace: Trace) -> tuple[dict[str, float], list[dict[str, Any]]]:
        return aggregate_device_energy(data, trace=trace)

    # ------------------------------------------------------------------------------- calculate

    def calculate(
        self, *, parameters: Mapping[str, ParameterValue], monitored: Mapping[str, float], trace: Trace
    ) -> dict[str, tuple[float, str]]:
        self.check_applicability(parameters)  # also when calculate() is called directly
        p = {k: v.value for k, v in parameters.items()}
        method = str(p["quantification_method"])

        # Continuous tracking (CTEC): share of devices in service that report enough data.
        N_p_y, N_p_rep_y = float(monitored["N_p_y"]), float(monitored["N_p_rep_y"])
        if not (N_p_y > 0 and 0 <= N_p_rep_y <= N_p_y):
            raise ParameterError(f"{self.id}: need N_p_y > 0 and 0 <= N_p_rep_y <= N_p_y, got N_p_y={N_p_y}, N_p_rep_y={N_p_rep_y}")
        CTEC_y = trace.record("CTEC_y", N_p_rep_y / N_p_y, "dimensionless", equation="N_p_rep_y / N_p_y",
                              clause=clauses.APPLICABILITY_CTEC,
                              inputs={"N_p_y": N_p_y, "N_p_rep_y": N_p_rep_y, "minimum": clauses.CTEC_MIN_FLEET_COVERAGE})
        if float(CTEC_y) < clauses.CTEC_MIN_FLEET_COVERAGE:
            raise self.not_applicable(
                f"only {N_p_rep_y:.0f} of {N_p_y:.0f} devices in service ({float(CTEC_y):.1%}) met the reporting coverage; "
                f"at least {clauses.CTEC_MIN_FLEET_COVERAGE:.0%} must report", clause=clauses.APPLICABILITY_CTEC)

        EG_p_y, EG_p_PE_y = float(monitored["EG_p_y"]), float(monitored["EG_p_PE_y"])
        for name, v in (("EG_p_y", EG_p_y), ("EG_p_PE_y", EG_p_PE_y)):
            if not (math.isfinite(v) and v >= 0):
                raise ParameterError(f"{self.id}: monitored {name} must be a finite non-negative energy, got {v}")
        if EG_p_PE_y < EG_p_y:
            raise ParameterError(f"{self.id}: EG_p_PE_y ({EG_p_PE_y} MWh) is below EG_p_y ({EG_p_y} MWh); the PE side "
                                 "carries the meter error upwards, the BE side downwards")
        EC_p_y = trace.record("EC_p_y", EG_p_y * MWH_TO_TJ, "TJ", equation="EG_p_y × 0.0036", clause=clauses.EC_P,
                              inputs={"EG_p_y": EG_p_y})

        mix = self._fuel_mix(p, trace)
        out: dict[str, tuple[float, str]] = {"CTEC_y": (float(CTEC_y), "dimensionless"), "EC_p_y": (float(EC_p_y), "TJ")}
        if method == "M1_efficiency":
            BE_y = self._baseline_m1(p, parameters, mix, float(EC_p_y), trace, out)
        else:
            BE_y = self._baseline_m2(p, parameters, mix, float(EC_p_y), trace, out)

        EF_el_y, TDL_y = float(p["EF_el_y"]), float(p["TDL_y"])
        PE_y = trace.record("PE_y", EG_p_PE_y * EF_el_y * (1.0 + TDL_y), "tCO2e", equation="EG_p_PE_y × EF_el_y × (1 + TDL_y)",
                            clause=clauses.PE, inputs={"EG_p_PE_y": EG_p_PE_y, "EF_el_y": EF_el_y, "TDL_y": TDL_y,
                                                       "source_EF_el_y": parameters["EF_el_y"].source,
                                                       "source_TDL_y": parameters["TDL_y"].source})
        f_LE = float(p["f_LE"])
        LE_y = trace.record("LE_y", f_LE * BE_y, "tCO2e", equation="f_LE × BE_y", clause=clauses.LE,
                            inputs={"f_LE": f_LE, "BE_y": BE_y, "source": parameters["f_LE"].source})
        ER_y = trace.record("ER_y", BE_y - float(PE_y) - float(LE_y), "tCO2e", equation="BE_y − PE_y − LE_y", clause=clauses.ER,
                            inputs={"BE_y": BE_y, "PE_y": PE_y, "LE_y": LE_y})
        trace.record("EG_max_d", float(p["EG_max_d"]), "kWh/day", equation="EG_max_d (parameter)", clause=clauses.QA_MAX_DAILY,
                     inputs={"source": parameters["EG_max_d"].source}, note="QA/QC threshold used by the device_energy contract; not in the ER equations")
        out.update({"BE_y": (BE_y, "tCO2e"), "PE_y": (float(PE_y), "tCO2e"), "LE_y": (float(LE_y), "tCO2e"), "ER_y": (float(ER_y), "tCO2e")})
        return out

    # ------------------------------------------------------------------------------- helpers

    def _fuel_mix(self, p: Mapping[str, Any], trace: Trace) -> dict[str, dict[str, float]]:
        """Fuels with Prop_i given: their shares and EF_b_i [tCO2e/TJ]. Empty if no Prop_i is given."""
        used = [f for f in FUELS if f"Prop_{f}" in p]
        if not used:
            return {}
        total = sum(float(p[f"Prop_{f}"]) for f in used)
        if abs(total - 1.0) > PROP_TOLERANCE:
            shares = ", ".join(f"Prop_{f}={float(p['Prop_' + f])}" for f in used)
            raise ParameterError(f"{self.id}: the baseline fuel shares Prop_i must sum to 1, got {total} ({shares})")
        mix: dict[str, dict[str, float]] = {}
        for f in used:
            prop = float(p[f"Prop_{f}"])
            if prop == 0.0:
                continue
            need = [f"EF_b_CO2_{f}", f"EF_b_nonCO2_{f}"] + ([f"fNRB_{f}_y"] if f in WOODY else [])
            missing = [s for s in need if s not in p]
            if missing:
                raise ParameterError(f"{self.id}: baseline fuel {f} (Prop_{f}={prop}) needs {', '.join(missing)}")
            fnrb = float(p[f"fNRB_{f}_y"]) if f in WOODY else 1.0
            co2, non = float(p[f"EF_b_CO2_{f}"]), float(p[f"EF_b_nonCO2_{f}"])
            ef = trace.record(f"EF_b_{f}", co2 * fnrb + non, EF_UNIT,
                              equation=f"EF_b_CO2_{f} × fNRB_{f}_y + EF_b_nonCO2_{f}" if f in WOODY else f"EF_b_CO2_{f} + EF_b_nonCO2_{f}",
                              clause=clauses.EF_B_FUEL,
                              inputs={f"EF_b_CO2_{f}": co2, f"EF_b_nonCO2_{f}": non, **({f"fNRB_{f}_y": fnrb} if f in WOODY else {}),
                                      f"Prop_{f}": prop})
            mix[f] = {"Prop": prop, "EF": float(ef)}
        return mix

    def _exante_or_mix(self, symbol: str, from_mix: float | None, parameters: Mapping[str, ParameterValue],
                       equation: str, clause: str, inputs: dict[str, Any], trace: Trace, unit: str) -> float:
        """The factor from the fuel mix, the ex-ante value, or the lower of both (conservative)."""
        exante = parameters.get(symbol)
        if from_mix is None and exante is None:
            raise ParameterError(f"{self.id}: {symbol} needs either the baseline fuel mix (Prop_i with its factors) or an ex-ante {symbol}")
        if exante is None:
            assert from_mix is not None
            return float(trace.record(symbol, from_mix, unit, equation=equation, clause=clause, inputs=inputs))
        if from_mix is None:
            return float(trace.record(symbol, float(exante.value), unit, equation=f"{symbol} (ex-ante parameter)", clause=clause,
                                      inputs={"source": exante.source}))
        value = min(from_mix, float(exante.value))
        return float(trace.record(symbol, value, unit, equation=f"min({equation}, ex-ante {symbol})", clause=clauses.CONSERVATIVE_PAIR,
                                  inputs={**inputs, "from_fuel_mix": from_mix, "ex_ante": float(exante.value), "source": exante.source},
                                  note="both given: the lower is used"))

    def _baseline_m1(self, p: Mapping[str, Any], parameters: Mapping[str, ParameterValue], mix: dict[str, dict[str, float]],
                     EC_p_y: float, trace: Trace, out: dict[str, tuple[float, str]]) -> float:
        if "eta_p" not in p or float(p["eta_p"]) <= 0:
            raise ParameterError(f"{self.id}: Method 1 needs eta_p (project device efficiency, WBT) > 0")
        eta_p = float(p["eta_p"])
        from_mix = None
        inputs: dict[str, Any] = {}
        if mix:
            total = 0.0
            for f, m in mix.items():
                if f"eta_b_{f}" not in p or float(p[f"eta_b_{f}"]) <= 0:
                    raise ParameterError(f"{self.id}: Method 1 needs eta_b_{f} > 0 for baseline fuel {f}")
                eta_b = float(p[f"eta_b_{f}"])
                trace.record(f"R_eta_{f}", eta_p / eta_b, "dimensionless", equation=f"eta_p / eta_b_{f}", clause=clauses.R_ETA,
                             inputs={"eta_p": eta_p, f"eta_b_{f}": eta_b})
                total += m["Prop"] * m["EF"] / eta_b
                inputs[f] = {"Prop": m["Prop"], "EF_b": m["EF"], "eta_b": eta_b}
            from_mix = total
        EF_b_useful = self._exante_or_mix("EF_b_useful", from_mix, parameters, "Σ_i Prop_i × EF_b_i / eta_b_i",
                                          clauses.EF_B_USEFUL, inputs, trace, EF_UNIT)
        EG_useful = float(trace.record("EG_p_useful_y", EC_p_y * eta_p, "TJ", equation="EC_p_y × eta_p", clause=clauses.R_ETA,
                                       inputs={"EC_p_y": EC_p_y, "eta_p": eta_p}))
        BE_y = float(trace.record("BE_y", EG_useful * EF_b_useful, "tCO2e", equation="EG_p_useful_y × EF_b_useful", clause=clauses.BE,
                                  inputs={"EG_p_useful_y": EG_useful, "EF_b_useful": EF_b_useful}))
        out["EF_b_useful"] = (EF_b_useful, EF_UNIT)
        return BE_y

    def _baseline_m2(self, p: Mapping[str, Any], parameters: Mapping[str, ParameterValue], mix: dict[str, dict[str, float]],
                     EC_p_y: float, trace: Trace, out: dict[str, tuple[float, str]]) -> float:
        if "SC_p" not in p or float(p["SC_p"]) <= 0:
            raise ParameterError(f"{self.id}: Method 2 needs SC_p (project specific energy consumption, CCT) > 0")
        SC_p = float(p["SC_p"])
        sc_from_mix = None
        sc_inputs: dict[str, Any] = {}
        if mix and any(f"SC_b_{f}" in p or f"SC_b_mass_{f}" in p for f in mix):
            total = 0.0
            for f, m in mix.items():
                if f"SC_b_{f}" in p:
                    sc = float(p[f"SC_b_{f}"])
                elif f"SC_b_mass_{f}" in p:
                    if f"NCV_b_{f}" not in p:
                        raise ParameterError(f"{self.id}: SC_b_mass_{f} needs NCV_b_{f} to convert fuel mass to energy")
                    mass, ncv = float(p[f"SC_b_mass_{f}"]), float(p[f"NCV_b_{f}"])
                    sc = float(trace.record(f"SC_b_{f}", mass * ncv * TJ_PER_T_TO_MJ_PER_KG, "MJ",
                                            equation=f"SC_b_mass_{f} × NCV_b_{f} × 1000", clause=clauses.SC_B,
                                            inputs={f"SC_b_mass_{f}": mass, f"NCV_b_{f}": ncv}))
                else:
                    raise ParameterError(f"{self.id}: Method 2 needs SC_b_{f} (or SC_b_mass_{f} with NCV_b_{f}) for baseline fuel {f}")
                total += m["Prop"] * sc
                sc_inputs[f] = {"Prop": m["Prop"], "SC_b": sc}
            sc_from_mix = total
        SC_b = self._exante_or_mix("SC_b", sc_from_mix, parameters, "Σ_i Prop_i × SC_b_i", clauses.SC_B, sc_inputs, trace, "MJ")
        R_SC = float(trace.record("R_SC", SC_b / SC_p, "dimensionless", equation="SC_b / SC_p", clause=clauses.R_SC,
                                  inputs={"SC_b": SC_b, "SC_p": SC_p}))
        EC_b_y = float(trace.record("EC_b_y", EC_p_y * R_SC, "TJ", equation="EC_p_y × R_SC", clause=clauses.R_SC,
                                    inputs={"EC_p_y": EC_p_y, "R_SC": R_SC}))
        ef_from_mix = sum(m["Prop"] * m["EF"] for m in mix.values()) if mix else None
        EF_b_input = self._exante_or_mix("EF_b_input", ef_from_mix, parameters, "Σ_i Prop_i × EF_b_i", clauses.EF_B_INPUT,
                                         {f: {"Prop": m["Prop"], "EF_b": m["EF"]} for f, m in mix.items()}, trace, EF_UNIT)
        BE_y = float(trace.record("BE_y", EC_b_y * EF_b_input, "tCO2e", equation="EC_b_y × EF_b_input", clause=clauses.BE,
                                  inputs={"EC_b_y": EC_b_y, "EF_b_input": EF_b_input}))
        out["R_SC"] = (R_SC, "dimensionless")
        out["EF_b_input"] = (EF_b_input, EF_UNIT)
        return BE_y
