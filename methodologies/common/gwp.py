"""Global warming potentials as dated, sourced parameter sets, selected by programme and period.

A GWP is not a constant: which IPCC assessment report applies depends on the crediting programme
and on *when* the emission reductions were achieved. :func:`select_gwp` returns the value for one
gas, programme and monitoring period, with the rule (decision and dates) behind it, so the choice
can go into the calculation trace.

Rules encoded (100-year time horizon):

``CDM``
    * up to 31 Dec 2012 (first commitment period of the Kyoto Protocol): IPCC Second Assessment
      Report (SAR/AR2) values, CH4 = 21 (decision 2/CP.3, para 3, carried into the Kyoto Protocol
      accounting; used by every CDM methodology version of that time);
    * 1 Jan 2013 – 31 Dec 2020 (second commitment period): IPCC Fourth Assessment Report (AR4)
      values, CH4 = 25 (decision 4/CMP.7, GWPs for the second commitment period);
    * from 1 Jan 2021 (CDM "temporary measures"): the *lowest* 100-year GWP of the IPCC second,
      fourth and fifth assessment reports for each gas, i.e. CH4 = 21 (AR2) and N2O = 265 (AR5).
      Source: CDM Executive Board, 108th meeting, report paras 7-8, and the UNFCCC reference note
      "Global warming potential values under the temporary measures"
      (https://cdm.unfccc.int/Reference/CDM_note.html): "in converting emission reductions achieved
      on or after 1 January 2021 to carbon dioxide equivalents ... they shall apply ... the lowest
      value from the IPCC assessment reports for each greenhouse gas for a 100-year time horizon".
      Note: this is *not* AR5's CH4 = 28; the lowest of 21/25/28 is 21.

``A6.4`` (Article 6.4 mechanism, including transitioned CDM activities)
    * from 1 Jan 2021: IPCC Fifth Assessment Report (AR5) values, CH4 = 28, as the Paris Agreement
      modalities, procedures and guidelines require (decision 18/CMA.1, annex, para 37). Included so
      that a transitioned activity can be calculated; the A6.4 Supervisory Body standard itself was
      not read for this module.

A monitoring period that straddles a rule boundary (e.g. 2020-07-01 to 2021-06-30) is **refused**
(:class:`~mrv.errors.MethodologyError`): the period must be split at the boundary and each part
calculated with its own GWP. Silently using one value for both parts would over- or under-credit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pandas as pd

from mrv.errors import MethodologyError

__all__ = ["GWPChoice", "GWPRule", "GWPSet", "GWP_SETS", "PROGRAMS", "RULES", "select_gwp"]


@dataclass(frozen=True)
class GWPSet:
    """100-year GWPs of one IPCC assessment report (or a derived set), in tCO2e per t of gas."""

    id: str
    title: str
    values: MappingProxyType  # gas -> GWP-100 [tCO2e/t]
    source: str

    def value(self, gas: str) -> float:
        try:
            return float(self.values[gas])
        except KeyError:
            raise MethodologyError(f"GWP set {self.id} has no value for {gas!r} (has: {', '.join(self.values)})") from None


def _set(id_: str, title: str, source: str, **values: float) -> GWPSet:
    return GWPSet(id_, title, MappingProxyType(dict(values)), source)


GWP_SETS: dict[str, GWPSet] = {
    s.id: s
    for s in (
        _set("IPCC-SAR-100", "IPCC Second Assessment Report (1995), 100-year GWP",
             "IPCC SAR WG1 (1995), Table 2.9; as listed in decision 2/CP.3", CO2=1, CH4=21, N2O=310),
        _set("IPCC-AR4-100", "IPCC Fourth Assessment Report (2007), 100-year GWP",
             "IPCC AR4 WG1 (2007), Table 2.14", CO2=1, CH4=25, N2O=298),
        _set("IPCC-AR5-100", "IPCC Fifth Assessment Report (2013), 100-year GWP",
             "IPCC AR5 WG1 (2013), Table 8.A.1 (without climate-carbon feedbacks)", CO2=1, CH4=28, N2O=265),
        _set("CDM-LOWEST-SAR-AR4-AR5-100", "Lowest 100-year GWP of IPCC SAR, AR4 and AR5 (CDM temporary measures)",
             "CDM EB 108 report paras 7-8; UNFCCC reference note 'Global warming potential values under the "
             "temporary measures' (cdm.unfccc.int/Reference/CDM_note.html)", CO2=1, CH4=21, N2O=265),
    )
}


@dataclass(frozen=True)
class GWPRule:
    """Which GWP set a programme uses for reductions achieved in ``[valid_from, valid_to]`` (inclusive dates)."""

    program: str
    valid_from: date
    valid_to: date | None  # None = open-ended
    set_id: str
    decision: str

    def covers(self, d: date) -> bool:
        return self.valid_from <= d and (self.valid_to is None or d <= self.valid_to)


RULES: tuple[GWPRule, ...] = (
    GWPRule("CDM", date(2000, 1, 1), date(2012, 12, 31), "IPCC-SAR-100",
            "Kyoto Protocol first commitment period: decision 2/CP.3 para 3 (IPCC SAR GWP-100)"),
    GWPRule("CDM", date(2013, 1, 1), date(2020, 12, 31), "IPCC-AR4-100",
            "Kyoto Protocol second commitment period: decision 4/CMP.7 (IPCC AR4 GWP-100 from 1 January 2013)"),
    GWPRule("CDM", date(2021, 1, 1), None, "CDM-LOWEST-SAR-AR4-AR5-100",
            "CDM temporary measures for emission reductions achieved on or after 1 January 2021: CDM EB 108 "
            "report paras 7-8 and reference note 'Global warming potential values under the temporary "
            "measures' (lowest of IPCC SAR/AR4/AR5 GWP-100 per gas)"),
    GWPRule("A6.4", date(2021, 1, 1), None, "IPCC-AR5-100",
            "Paris Agreement MPGs, decision 18/CMA.1 annex para 37 (IPCC AR5 GWP-100), applied to the Article 6.4 "
            "mechanism"),
)

PROGRAMS: tuple[str, ...] = tuple(dict.fromkeys(r.program for r in RULES))


@dataclass(frozen=True)
class GWPChoice:
    """The GWP selected for one gas, programme and period, with everything a trace needs."""

    gas: str
    value: float  # [tCO2e/t gas]
    program: str
    set_id: str
    set_title: str
    set_source: str
    decision: str
    period_start: date  # first day of the period
    period_end: date  # last day of the period (inclusive)
    rule_from: date
    rule_to: date | None
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def clause(self) -> str:
        return f"{self.decision}; {self.set_title} ({self.set_source})"

    def trace_inputs(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "gas": self.gas,
            "period": f"{self.period_start.isoformat()}..{self.period_end.isoformat()}",
            "gwp_set": self.set_id,
            "rule_valid": f"{self.rule_from.isoformat()}..{self.rule_to.isoformat() if self.rule_to else 'open'}",
        }


def _as_date(t: date | datetime | pd.Timestamp | str) -> date:
    if isinstance(t, datetime):
        ts = pd.Timestamp(t)
        return (ts.tz_convert("UTC") if ts.tzinfo else ts).date()
    if isinstance(t, date):
        return t
    ts = pd.Timestamp(t)
    return (ts.tz_convert("UTC") if ts.tzinfo else ts).date()


def select_gwp(
    gas: str,
    *,
    program: str,
    start: date | datetime | pd.Timestamp | str,
    end: date | datetime | pd.Timestamp | str,
    end_exclusive: bool = True,
) -> GWPChoice:
    """The GWP-100 of ``gas`` for ``program`` and the monitoring period ``[start, end)``.

    ``start``/``end`` are dates or instants (instants are read in UTC). With ``end_exclusive`` (the
    default, as :class:`~mrv.methodology.MonitoringInput` periods are half-open) the last day of the
    period is the day before ``end`` when ``end`` is a midnight; otherwise ``end`` itself is the
    last day. A period not wholly inside one rule's dates is refused: split it at the boundary.
    """
    rules = [r for r in RULES if r.program == program]
    if not rules:
        raise MethodologyError(f"GWP: unknown programme {program!r} (known: {', '.join(PROGRAMS)})")
    first = _as_date(start)
    if end_exclusive:
        end_ts = pd.Timestamp(end)
        if end_ts.tzinfo is not None:
            end_ts = end_ts.tz_convert("UTC")
        is_midnight = end_ts == end_ts.normalize()
        last = (end_ts - pd.Timedelta(days=1)).date() if is_midnight else end_ts.date()
    else:
        last = _as_date(end)
    if last < first:
        raise MethodologyError(f"GWP: empty period {first.isoformat()}..{last.isoformat()}")
    at_start = [r for r in rules if r.covers(first)]
    if not at_start:
        raise MethodologyError(
            f"GWP: no {program} GWP rule covers {first.isoformat()} (rules start {min(r.valid_from for r in rules).isoformat()})"
        )
    rule = at_start[0]
    if not rule.covers(last):
        boundary = (rule.valid_to + timedelta(days=1)).isoformat() if rule.valid_to else "?"
        raise MethodologyError(
            f"GWP: the monitoring period {first.isoformat()}..{last.isoformat()} straddles a change of the {program} "
            f"GWP rule on {boundary} ({rule.set_id} before, another set from then on); split the period at {boundary} "
            "and calculate each part with its own GWP"
        )
    s = GWP_SETS[rule.set_id]
    return GWPChoice(
        gas=gas, value=s.value(gas), program=program, set_id=s.id, set_title=s.title, set_source=s.source,
        decision=rule.decision, period_start=first, period_end=last, rule_from=rule.valid_from, rule_to=rule.valid_to,
    )
