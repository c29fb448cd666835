"""Where each rule of the ACM0002 v22.0 calculator comes from, cited once.

Sections are cited by name; equation and paragraph numbers are given only where they were confirmed
against public text (see the module docstrings and the tests for the sources consulted).
"""

from __future__ import annotations

METHODOLOGY = "CDM ACM0002 v22.0 'Grid-connected electricity generation from renewable sources'"

APPLICABILITY = (
    "ACM0002 v22.0, 'Applicability': the methodology covers (a) greenfield power plants and (b) capacity "
    "addition, (c) retrofit, (d) rehabilitation/refurbishment or (e) replacement of existing plants; only (a) "
    "greenfield is implemented here (the other cases need the historical-generation baseline EG_historical,y "
    "of section 'Baseline emissions')"
)
EG_FACILITY = (
    "ACM0002 v22.0, 'Data and parameters monitored', EG_facility,y: net quantity of electricity generated and "
    "supplied to the grid by the project plant (metered export minus metered import at the grid connection)"
)
EG_PJ_GREENFIELD = "ACM0002 v22.0, 'Baseline emissions', greenfield renewable energy power plants: EG_PJ,y = EG_facility,y"
BE = "ACM0002 v22.0, 'Baseline emissions': BE_y = EG_PJ,y × EF_grid,CM,y (EF_grid,CM,y per TOOL07)"
PE = (
    "ACM0002 v22.0, 'Project emissions': PE_y = PE_FF,y + PE_GP,y + PE_HP,y (+ storage terms); wind and solar "
    "plants have no geothermal or reservoir terms, and PE_FF,y is zero where no fossil fuel is used on site"
)
LE = "ACM0002 v22.0, 'Leakage': no leakage emissions are considered (LE_y = 0)"
ER = "ACM0002 v22.0, 'Emission reductions': ER_y = BE_y − PE_y − LE_y"

CALIBRATION = (
    "CDM validation and verification standard for project activities (VVS-PA) v03.0, paras 366-368 (delayed "
    "calibration): emission reductions are calculated applying the maximum permissible error of the instrument "
    "in the conservative direction, as the UNFCCC secretariat requires in issuance request checks "
    "(cdm.unfccc.int/IRCheck/iss_forms/L9MSXVQNE4AOH25)"
)
GAPS = (
    "Conservativeness (no CDM clause specific to interval gaps was found): a missing export interval is "
    "credited nothing; a missing import interval is charged the meter's largest observed interval in the "
    "period, because an import gap filled with zero would raise the net export EG_facility,y"
)
DUPLICATES = "Conservativeness: an interval delivered twice counts once, at its lower (export) or higher (import) value"
OUTSIDE_PERIOD = "Monitoring period [start, end): readings outside it belong to another period"
NON_FINITE = "Conservativeness: a reading without a finite value is treated as a missing interval"
INVOICES = (
    "ACM0002 v22.0 monitoring of EG_facility,y with QA/QC cross-check of metered data against records of "
    "electricity sold/purchased (invoices), as written in registered monitoring plans and checked by the "
    "secretariat (cdm.unfccc.int/IRCheck/iss_forms/1C7MJILH4KFX0A5); conservativeness: per invoice period the "
    "lower of the metered and invoiced net export is used"
)
