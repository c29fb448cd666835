"""Dated GWP selection (methodologies/common/gwp.py).

Sources of the numbers:

* IPCC GWP-100 of CH4: SAR 21, AR4 25, AR5 28 (IPCC SAR WG1 Table 2.9; AR4 WG1 Table 2.14;
  AR5 WG1 Table 8.A.1).
* CDM, reductions from 1 January 2021: CDM EB 108 report paras 7-8 and the UNFCCC reference note
  "Global warming potential values under the temporary measures"
  (https://cdm.unfccc.int/Reference/CDM_note.html): "the lowest value from the IPCC assessment
  reports for each GHG for a 100-year time horizon" -> CH4 min(21, 25, 28) = 21, N2O min(310, 298, 265) = 265.
* CDM second commitment period (2013-2020): decision 4/CMP.7 (AR4) -> CH4 25.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from methodologies.common.gwp import GWP_SETS, select_gwp
from mrv.errors import MethodologyError


@pytest.mark.parametrize(
    ("program", "start", "end", "gas", "value", "set_id"),
    [
        ("CDM", "2011-01-01", "2012-01-01", "CH4", 21, "IPCC-SAR-100"),
        ("CDM", "2015-01-01", "2016-01-01", "CH4", 25, "IPCC-AR4-100"),
        ("CDM", "2020-01-01", "2021-01-01", "CH4", 25, "IPCC-AR4-100"),  # end exclusive: last day 2020-12-31
        ("CDM", "2023-01-01", "2024-01-01", "CH4", 21, "CDM-LOWEST-SAR-AR4-AR5-100"),
        ("CDM", "2023-01-01", "2024-01-01", "N2O", 265, "CDM-LOWEST-SAR-AR4-AR5-100"),
        ("A6.4", "2023-01-01", "2024-01-01", "CH4", 28, "IPCC-AR5-100"),
    ],
)
def test_selection_by_program_and_period(program, start, end, gas, value, set_id):
    choice = select_gwp(gas, program=program, start=start, end=end)
    assert choice.value == value and choice.set_id == set_id
    assert choice.trace_inputs()["program"] == program


def test_lowest_set_is_the_minimum_of_the_three_reports():
    """The temporary-measures set is derived, not typed: it must equal min(SAR, AR4, AR5) per gas."""
    lowest = GWP_SETS["CDM-LOWEST-SAR-AR4-AR5-100"]
    for gas in ("CO2", "CH4", "N2O"):
        assert lowest.value(gas) == min(GWP_SETS[s].value(gas) for s in ("IPCC-SAR-100", "IPCC-AR4-100", "IPCC-AR5-100"))


def test_post_2020_cdm_clause_is_cited():
    choice = select_gwp("CH4", program="CDM", start=date(2021, 1, 1), end=date(2021, 7, 1))
    assert "EB 108" in choice.clause and "lowest" in choice.clause
    assert choice.period_end == date(2021, 6, 30)


def test_instants_are_read_in_utc():
    start = datetime(2021, 1, 1, tzinfo=timezone.utc)
    end = datetime(2022, 1, 1, tzinfo=timezone.utc)
    assert select_gwp("CH4", program="CDM", start=start, end=end).value == 21


def test_straddling_period_is_refused_and_names_the_boundary():
    with pytest.raises(MethodologyError, match=r"straddles .* 2021-01-01.*split the period at 2021-01-01"):
        select_gwp("CH4", program="CDM", start="2020-07-01", end="2021-07-01")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"program": "VCS", "start": "2023-01-01", "end": "2024-01-01"}, "unknown programme"),
        ({"program": "A6.4", "start": "2019-01-01", "end": "2020-01-01"}, "no A6.4 GWP rule covers"),
        ({"program": "CDM", "start": "2023-01-02", "end": "2023-01-01"}, "empty period"),
    ],
)
def test_errors(kwargs, match):
    with pytest.raises(MethodologyError, match=match):
        select_gwp("CH4", **kwargs)
