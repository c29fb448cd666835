"""TEMPLATE calculator (``TEMPLATE:EXAMPLE:1.0``): a small, complete example to copy.

Equations (symbols as in the methodology, units in brackets):

    EG_net_y = EG_y − EG_aux_y                                  [MWh]        eq. (1)
    EF_y     = min(EF_default, EF_measured)  (if measured)      [tCO2e/MWh]  para 12
    BE_y     = EG_net_y × EF_y                                  [tCO2e]      eq. (2)
    PE_y     = FC_y × EF_FC                                     [tCO2e]      eq. (3)
    ER_y     = BE_y − PE_y                                      [tCO2e]      eq. (4)

The base class rounds ER_y down to whole tCO2e (never negative); calculators never round.

TODO when copying: rename the class, fill ``info`` (id = "<program>:<code>:<version>"), declare
every parameter with its unit and the source of its default, every monitored value with the data
contract that applies, every equation and output, then write ``calculate`` (pure: parameters and
monitored values in, quantities out, every step recorded in the trace with its clause).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from methodologies._template import clauses
from mrv.errors import MethodologyError
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
from mrv.methodology.conservative import choose_lower

EF_UNIT = "tCO2e/MWh"


class TemplateMethodology(Methodology):
    """TODO: one line saying what this calculator covers (and what it does not)."""

    info = MethodologyInfo(
        id="TEMPLATE:EXAMPLE:1.0",  # TODO "<program>:<code>:<version>", e.g. "GS:MECD:2.0"
        title="Template example: grid electricity displaced by a small plant",  # TODO the document's title
        program="TEMPLATE",
        code="EXAMPLE",
        version="1.0",
        source_document=clauses.DOCUMENT,
        source_url=None,  # TODO the public URL of the methodology document
        tools=(),  # TODO ids of the tools it calls, e.g. ("CDM:TOOL07:7.0",)
        applicability=(
            Applicability("The project supplies electricity to a grid.", clause=clauses.APPLICABILITY_GRID),
        ),
    )

    parameters = (
        ParameterSpec("grid_connected", "The plant is connected to a grid (applicability)", kind="boolean"),
        ParameterSpec("EF_default", "Default grid emission factor", unit=EF_UNIT, required=False, default=0.8,
                      default_source="TEMPLATE v1.0, Table 3 (TODO: the real table)", minimum=0),
        ParameterSpec("EF_measured", "Project-specific grid emission factor, if determined", unit=EF_UNIT,
                      required=False, minimum=0),
        ParameterSpec("FC_y", "Backup fuel burnt in the period (energy), from the fuel purchase records", unit="GJ",
                      minimum=0),
        ParameterSpec("EF_FC", "CO2 emission factor of the backup fuel", unit="tCO2e/GJ", required=False,
                      default=0.0741, default_source="2006 IPCC Guidelines Vol. 2, Table 1.4, diesel (74,100 kg/TJ)",
                      minimum=0),
    )

    monitored = (
        MonitoredSpec("EG_y", "Electricity exported to the grid in the period", contract="meter_readings", unit="MWh"),
        MonitoredSpec("EG_aux_y", "Electricity imported from the grid in the period", contract="meter_readings", unit="MWh"),
    )

    equations = (
        EquationSpec("EG_net_y", "EG_y − EG_aux_y", "MWh", clauses.EG_NET),
        EquationSpec("EF_y", "min(EF_default, EF_measured)", EF_UNIT, clauses.EF),
        EquationSpec("BE_y", "EG_net_y × EF_y", "tCO2e", clauses.BE),
        EquationSpec("PE_y", "FC_y × EF_FC", "tCO2e", clauses.PE),
        EquationSpec("ER_y", "BE_y − PE_y", "tCO2e", clauses.ER),
    )

    outputs = (
        OutputSpec("EG_net_y", "Net electricity supplied to the grid", "MWh"),
        OutputSpec("EF_y", "Grid emission factor used", EF_UNIT),
        OutputSpec("BE_y", "Baseline emissions", "tCO2e"),
        OutputSpec("PE_y", "Project emissions", "tCO2e"),
        OutputSpec("ER_y", "Emission reductions (issuable = floor, never negative)", "tCO2e"),
    )

    def check_applicability(self, parameters: Mapping[str, ParameterValue]) -> None:
        # One check per condition of info.applicability that the parameters can decide.
        if parameters["grid_connected"].value is not True:
            raise self.not_applicable("the plant is not grid-connected", clause=clauses.APPLICABILITY_GRID)

    def aggregate(self, data: MonitoringInput, *, trace: Trace) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """Validated meter readings [kWh] -> EG_y, EG_aux_y [MWh].

        TODO: a real methodology applies its conservative treatment of imperfect data here (gaps,
        duplicates, lapsed calibration: see methodologies/common/metering.py and
        methodologies/cdm_acm0002/v22/monitoring.py) and returns each treatment it applied.
        This template only sums the rows the data contract let through.
        """
        frame = data.datasets.get("meter_readings")
        meters = {str(m["id"]): str(m["direction"]) for m in data.sources.get("meters", [])}
        if frame is None or not meters:
            raise MethodologyError(f"{self.id}: needs the 'meter_readings' dataset and sources['meters']")
        unknown = sorted(set(frame["meter_id"].astype(str)) - set(meters))
        if unknown:
            raise MethodologyError(f"{self.id}: readings of meters not in the project's meter list: {', '.join(unknown)}")
        direction = frame["meter_id"].astype(str).map(meters)
        out: dict[str, float] = {}
        for symbol, wanted in (("EG_y", "export"), ("EG_aux_y", "import")):
            kwh = float(frame.loc[direction == wanted, "value"].sum())
            out[symbol] = float(trace.record(symbol, kwh / 1000.0, "MWh", equation=f"Σ {wanted} readings [kWh] / 1000",
                                             clause=clauses.EG_NET, inputs={"kWh": kwh}))
        return out, []

    def calculate(
        self, *, parameters: Mapping[str, ParameterValue], monitored: Mapping[str, float], trace: Trace
    ) -> dict[str, tuple[float, str]]:
        p = {k: v.value for k, v in parameters.items()}
        EG_y, EG_aux_y, FC_y = float(monitored["EG_y"]), float(monitored["EG_aux_y"]), float(p["FC_y"])

        EG_net_y = float(trace.record("EG_net_y", EG_y - EG_aux_y, "MWh", equation="EG_y − EG_aux_y",
                                      clause=clauses.EG_NET, inputs={"EG_y": EG_y, "EG_aux_y": EG_aux_y}))
        candidates = {"EF_default": float(p["EF_default"])}
        if "EF_measured" in p:
            candidates["EF_measured"] = float(p["EF_measured"])
        # EF_y raises the result, so the conservative choice is the lower candidate (recorded in the trace).
        EF_y = choose_lower("EF_y", candidates, EF_UNIT, trace=trace, clause=clauses.EF)
        BE_y = float(trace.record("BE_y", EG_net_y * EF_y, "tCO2e", equation="EG_net_y × EF_y", clause=clauses.BE,
                                  inputs={"EG_net_y": EG_net_y, "EF_y": EF_y}))
        PE_y = float(trace.record("PE_y", FC_y * float(p["EF_FC"]), "tCO2e", equation="FC_y × EF_FC", clause=clauses.PE,
                                  inputs={"FC_y": FC_y, "EF_FC": p["EF_FC"]}))
        ER_y = float(trace.record("ER_y", BE_y - PE_y, "tCO2e", equation="BE_y − PE_y", clause=clauses.ER,
                                  inputs={"BE_y": BE_y, "PE_y": PE_y}))
        return {
            "EG_net_y": (EG_net_y, "MWh"),
            "EF_y": (EF_y, EF_UNIT),
            "BE_y": (BE_y, "tCO2e"),
            "PE_y": (PE_y, "tCO2e"),
            "ER_y": (ER_y, "tCO2e"),
        }
