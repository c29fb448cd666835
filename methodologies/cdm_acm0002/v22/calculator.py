"""CDM ACM0002 v22.0 "Grid-connected electricity generation from renewable sources", greenfield case.

Equations (symbols as in the methodology, units in brackets):

    EG_facility_y = EG_export_y − EG_import_y                                       [MWh]
    EG_PJ_y       = EG_facility_y          (greenfield power plant)                 [MWh]
    EF_grid_CM_y  = EF_grid_OM_y × w_OM + EF_grid_BM_y × w_BM   (TOOL07 v07.0)      [tCO2e/MWh]
                    or a published EF_grid_CM_y
    BE_y          = EG_PJ_y × EF_grid_CM_y                                          [tCO2e]
    LE_y          = 0                                                               [tCO2e]
    ER_y          = BE_y − PE_y − LE_y                                              [tCO2e]

The base class :meth:`~mrv.methodology.Methodology.run` rounds ER_y down to whole tCO2e.
Monitored energy comes from :mod:`methodologies.cdm_acm0002.v22.monitoring` (conservative
treatment of imperfect meter data).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from methodologies.cdm_acm0002.v22 import clauses
from methodologies.cdm_acm0002.v22.monitoring import TreatedSeries, aggregate_meter_readings, treat_series
from methodologies.cdm_tool07 import v7 as tool07
from mrv.errors import ParameterError
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
PROJECT_ACTIVITIES: tuple[str, ...] = ("greenfield", "capacity_addition", "retrofit", "rehabilitation", "replacement")
SUPPORTED_ACTIVITIES: tuple[str, ...] = ("greenfield",)


class ACM0002(Methodology):
    """ACM0002 v22.0 with TOOL07 v07.0 combined margin, greenfield wind, solar and other renewables."""

    info = MethodologyInfo(
        id="CDM:ACM0002:22.0",
        title="Grid-connected electricity generation from renewable sources",
        program="CDM",
        code="ACM0002",
        version="22.0",
        source_document="CDM approved consolidated methodology ACM0002, version 22.0 (UNFCCC CDM Executive Board)",
        source_url="https://cdm.unfccc.int/methodologies/PAmethodologies/approved",
        tools=(tool07.TOOL_ID,),
        sector="Energy industries (renewable/non-renewable sources)",
        project_type="Grid-connected renewable electricity",
        unit_type="Avoidance",
        applicability=(
            Applicability(
                "Grid-connected renewable power generation: hydro, wind, geothermal, solar, wave or tidal "
                "(ACM0002 v22.0, 'Applicability').",
                clause="ACM0002 v22.0, 'Applicability'",
            ),
            Applicability(
                "Project activity is (a) construction and operation of a greenfield power plant; the methodology also "
                "covers (b) capacity addition, (c) retrofit, (d) rehabilitation/refurbishment and (e) replacement, "
                "which this calculator does not implement (ApplicabilityError).",
                clause=clauses.APPLICABILITY,
            ),
            Applicability(
                "Electricity is supplied to a grid; the grid emission factor follows TOOL07 (combined margin).",
                clause=tool07.CLAUSE_CM,
            ),
            Applicability(
                "EG_facility,y is the net electricity supplied to the grid, metered at the grid connection "
                "(export and import meters).",
                clause=clauses.EG_FACILITY,
            ),
        ),
    )

    parameters = (
        ParameterSpec("project_type", "Renewable technology, for the TOOL07 weights", kind="choice",
                      choices=tool07.PROJECT_TYPES),
        ParameterSpec("project_activity", "ACM0002 project activity type (only greenfield is implemented)",
                      kind="choice", choices=PROJECT_ACTIVITIES),
        ParameterSpec("crediting_period", "Crediting period number (1, 2 or 3), for the TOOL07 weights",
                      kind="integer", required=False, default=1, default_source="first crediting period",
                      minimum=1, maximum=3),
        ParameterSpec("EF_grid_OM_y", "Operating margin CO2 emission factor (TOOL07 Steps 3-4)", unit=EF_UNIT,
                      required=False, minimum=0),
        ParameterSpec("EF_grid_BM_y", "Build margin CO2 emission factor (TOOL07 Step 5)", unit=EF_UNIT,
                      required=False, minimum=0),
        ParameterSpec("EF_grid_CM_y", "Published combined margin CO2 emission factor (instead of OM and BM)",
                      unit=EF_UNIT, required=False, minimum=0),
        ParameterSpec("PE_y", "Project emissions in the period; 0 for wind/solar if not given, required otherwise",
                      unit="tCO2e", required=False, minimum=0),
    )

    # aggregate_meter_readings works per meter, so it takes the validated rows as per-meter pieces
    # (mrv.frames.FramePieces) and the pipeline never builds the fleet-size concatenation.
    accepts_frame_pieces = True

    monitored = (
        MonitoredSpec("EG_export_y", "Electricity exported to the grid in the period", contract="meter_readings", unit="MWh"),
        MonitoredSpec("EG_import_y", "Electricity imported from the grid in the period", contract="meter_readings", unit="MWh"),
    )

    equations = (
        EquationSpec("w_OM, w_BM", "default weights by project_type and crediting_period", "dimensionless",
                     tool07.CLAUSE_WEIGHTS),
        EquationSpec("EF_grid_CM_y", "EF_grid_OM_y × w_OM + EF_grid_BM_y × w_BM  (or a published EF_grid_CM_y)",
                     EF_UNIT, tool07.CLAUSE_CM),
        EquationSpec("EG_facility_y", "EG_export_y − EG_import_y", "MWh", clauses.EG_FACILITY),
        EquationSpec("EG_PJ_y", "EG_facility_y  (greenfield)", "MWh", clauses.EG_PJ_GREENFIELD),
        EquationSpec("BE_y", "EG_PJ_y × EF_grid_CM_y", "tCO2e", clauses.BE),
        EquationSpec("PE_y", "PE_y (parameter); 0 for wind and solar when not given", "tCO2e", clauses.PE),
        EquationSpec("LE_y", "0", "tCO2e", clauses.LE),
        EquationSpec("ER_y", "BE_y − PE_y − LE_y", "tCO2e", clauses.ER),
    )

    outputs = (
        OutputSpec("EF_grid_CM_y", "Combined margin CO2 emission factor of the grid", EF_UNIT),
        OutputSpec("EG_facility_y", "Net electricity supplied to the grid by the project plant", "MWh"),
        OutputSpec("EG_PJ_y", "Net electricity attributable to the project activity", "MWh"),
        OutputSpec("BE_y", "Baseline emissions", "tCO2e"),
        OutputSpec("PE_y", "Project emissions", "tCO2e"),
        OutputSpec("LE_y", "Leakage emissions", "tCO2e"),
        OutputSpec("ER_y", "Emission reductions (before rounding; issuable = floor, never negative)", "tCO2e"),
    )

    def check_applicability(self, parameters: Mapping[str, ParameterValue]) -> None:
        activity = str(parameters["project_activity"].value)
        if activity not in SUPPORTED_ACTIVITIES:
            raise self.not_applicable(f"project_activity {activity!r} is not supported", clause=clauses.APPLICABILITY)

    def aggregate(self, data: MonitoringInput, *, trace: Trace) -> tuple[dict[str, float], list[dict[str, Any]]]:
        return aggregate_meter_readings(data, trace=trace)

    def treat_series(self, piece: pd.DataFrame, *, sources: Mapping[str, Any], start: datetime, end: datetime, keep_tables: bool) -> TreatedSeries:
        return treat_series(piece, sources=sources["meters"], start=start, end=end, keep_tables=keep_tables)

    def combine_series(self, parts: list[Any]) -> TreatedSeries:
        return TreatedSeries.combine(parts)

    def calculate(
        self, *, parameters: Mapping[str, ParameterValue], monitored: Mapping[str, float], trace: Trace
    ) -> dict[str, tuple[float, str]]:
        p = {k: v.value for k, v in parameters.items()}
        project_type = str(p["project_type"])
        crediting_period = int(p.get("crediting_period", 1))

        # TOOL07 v07.0 Step 6: combined margin (or a published CM)
        cm = tool07.resolve_combined_margin(
            project_type, crediting_period,
            EF_grid_OM_y=_opt(p, "EF_grid_OM_y"), EF_grid_BM_y=_opt(p, "EF_grid_BM_y"), EF_grid_CM_y=_opt(p, "EF_grid_CM_y"),
        )
        if cm.path == "weighted_average":
            trace.record("w_OM", cm.w_OM, "dimensionless", equation=f"default weight ({project_type}, crediting period {crediting_period})",
                         clause=tool07.CLAUSE_WEIGHTS, inputs={"project_type": project_type, "crediting_period": crediting_period})
            trace.record("w_BM", cm.w_BM, "dimensionless", equation=f"default weight ({project_type}, crediting period {crediting_period})",
                         clause=tool07.CLAUSE_WEIGHTS, inputs={"project_type": project_type, "crediting_period": crediting_period})
            EF_grid_CM_y = trace.record(
                "EF_grid_CM_y", cm.EF_grid_CM_y, EF_UNIT, equation="EF_grid_OM_y × w_OM + EF_grid_BM_y × w_BM",
                clause=tool07.CLAUSE_CM, inputs={"EF_grid_OM_y": cm.EF_grid_OM_y, "EF_grid_BM_y": cm.EF_grid_BM_y,
                                                 "w_OM": cm.w_OM, "w_BM": cm.w_BM},
                note="path: weighted average CM computed from OM and BM",
            )
        else:
            EF_grid_CM_y = trace.record(
                "EF_grid_CM_y", cm.EF_grid_CM_y, EF_UNIT, equation="published EF_grid_CM_y (parameter)",
                clause=tool07.CLAUSE_CM, inputs={"EF_grid_CM_y": cm.EF_grid_CM_y, "source": parameters["EF_grid_CM_y"].source},
                note="path: published combined margin supplied as a parameter; OM, BM and weights not used",
            )

        EG_export_y, EG_import_y = float(monitored["EG_export_y"]), float(monitored["EG_import_y"])
        EG_facility_y = trace.record("EG_facility_y", EG_export_y - EG_import_y, "MWh",
                                     equation="EG_export_y − EG_import_y", clause=clauses.EG_FACILITY,
                                     inputs={"EG_export_y": EG_export_y, "EG_import_y": EG_import_y})
        EG_PJ_y = trace.record("EG_PJ_y", EG_facility_y, "MWh", equation="EG_facility_y (greenfield)",
                               clause=clauses.EG_PJ_GREENFIELD, inputs={"EG_facility_y": EG_facility_y})
        BE_y = trace.record("BE_y", float(EG_PJ_y) * float(EF_grid_CM_y), "tCO2e", equation="EG_PJ_y × EF_grid_CM_y",
                            clause=clauses.BE, inputs={"EG_PJ_y": EG_PJ_y, "EF_grid_CM_y": EF_grid_CM_y})

        if "PE_y" in parameters:
            PE_y = trace.record("PE_y", float(p["PE_y"]), "tCO2e", equation="PE_y (parameter)", clause=clauses.PE,
                                inputs={"PE_y": p["PE_y"], "source": parameters["PE_y"].source})
        elif project_type in ("wind", "solar"):
            PE_y = trace.record("PE_y", 0.0, "tCO2e", equation="0 (wind/solar, no PE_y supplied)", clause=clauses.PE,
                                note="assumes no fossil fuel is used on site; supply PE_y (PE_FF,y) otherwise")
        else:
            raise ParameterError(
                f"{self.id}: PE_y is required for project_type 'other' (geothermal and hydro reservoirs have project "
                f"emissions PE_GP,y / PE_HP,y; {clauses.PE}); it is not defaulted"
            )
        LE_y = trace.record("LE_y", 0.0, "tCO2e", equation="0", clause=clauses.LE)
        ER_y = trace.record("ER_y", float(BE_y) - float(PE_y) - float(LE_y), "tCO2e", equation="BE_y − PE_y − LE_y",
                            clause=clauses.ER, inputs={"BE_y": BE_y, "PE_y": PE_y, "LE_y": LE_y})
        return {
            "EF_grid_CM_y": (float(EF_grid_CM_y), EF_UNIT),
            "EG_facility_y": (float(EG_facility_y), "MWh"),
            "EG_PJ_y": (float(EG_PJ_y), "MWh"),
            "BE_y": (float(BE_y), "tCO2e"),
            "PE_y": (float(PE_y), "tCO2e"),
            "LE_y": (float(LE_y), "tCO2e"),
            "ER_y": (float(ER_y), "tCO2e"),
        }


def _opt(p: Mapping[str, Any], key: str) -> float | None:
    v = p.get(key)
    return None if v is None else float(v)
