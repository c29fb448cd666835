"""Conservative rules, made explicit: what a calculator does when the methodology leaves a choice.

The principle (CDM and Gold Standard alike): where data or a choice is uncertain, take the option
that gives the *lower* emission reductions. Three rules live here, each recorded in the trace:

1. **Issuance rounding** (applied by :meth:`mrv.methodology.Methodology.run`, never by calculators):
   the issuable quantity is ``ER_y`` rounded *down* to whole tCO2e and never negative
   (:func:`round_down_issuable`). ``ER_y`` itself is kept unrounded in the trace; intermediate
   values are never rounded.
2. **Choose lower / choose higher** between candidate values of one quantity (two data sources,
   a measured and a default value, metered vs invoiced): :func:`choose_lower` for a quantity that
   raises the result (baseline terms), :func:`choose_higher` for one that lowers it (project
   emissions, leakage). :func:`choose_conservative` picks by the quantity's effect.
3. **Accuracy / uncertainty** applied in the conservative direction: :func:`apply_uncertainty`
   (``× (1 − u)`` for a quantity that raises the result, ``× (1 + u)`` for one that lowers it).

Series-level treatments of metered data (gaps, duplicates, lapsed calibration, invoice cross-checks)
are vectorised in :mod:`methodologies.common.metering`; they follow the same principle.

Every function takes the :class:`~mrv.methodology.trace.Trace` and records one step with the
clause, so a verifier sees which option was taken and why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from mrv.errors import MethodologyError, ParameterError
from mrv.methodology.trace import Trace

Effect = Literal["raises_result", "lowers_result"]

ISSUANCE_ROUNDING_CLAUSE = "Conservative rounding: issuance is in whole tCO2e, rounded down"
CONSERVATIVENESS = "Conservativeness: where a choice is left open, the option giving lower emission reductions is used"


def round_down_issuable(value_tCO2e: float) -> int:
    """Issuable quantities are whole tCO2e rounded down, never up, and never negative."""
    if math.isnan(value_tCO2e):
        raise ParameterError("issuable quantity is NaN")
    # A tiny epsilon keeps 1234.0000000001-style float noise from losing a whole unit.
    return max(0, math.floor(value_tCO2e + 1e-9))


def _candidates(symbol: str, candidates: Mapping[str, float]) -> dict[str, float]:
    if not candidates:
        raise MethodologyError(f"{symbol}: no candidate values to choose from")
    out: dict[str, float] = {}
    for label, value in candidates.items():
        v = float(value)
        if math.isnan(v):
            raise MethodologyError(f"{symbol}: candidate {label!r} is NaN")
        out[str(label)] = v
    return out


def _choose(
    pick: Literal["lower", "higher"], symbol: str, candidates: Mapping[str, float], unit: str, *,
    trace: Trace, clause: str, note: str | None,
) -> float:
    c = _candidates(symbol, candidates)
    # Ties go to the first candidate listed, so the trace names a stable choice.
    label = (min if pick == "lower" else max)(c, key=lambda k: c[k])
    fn = "min" if pick == "lower" else "max"
    chosen = f"{pick} value: {label}"
    trace.record(symbol, c[label], unit, equation=f"{fn}({', '.join(c)})", clause=clause, inputs=c,
                 note=f"{chosen}; {note}" if note else chosen)
    return c[label]


def choose_lower(
    symbol: str, candidates: Mapping[str, float], unit: str, *, trace: Trace, clause: str = CONSERVATIVENESS,
    note: str | None = None,
) -> float:
    """The lowest candidate (for a quantity that raises the result), recorded as ``symbol``.

    ``candidates`` maps a label (``"metered"``, ``"invoiced"``, ``"default"``) to a value in ``unit``.
    """
    return _choose("lower", symbol, candidates, unit, trace=trace, clause=clause, note=note)


def choose_higher(
    symbol: str, candidates: Mapping[str, float], unit: str, *, trace: Trace, clause: str = CONSERVATIVENESS,
    note: str | None = None,
) -> float:
    """The highest candidate (for a quantity that lowers the result), recorded as ``symbol``."""
    return _choose("higher", symbol, candidates, unit, trace=trace, clause=clause, note=note)


def choose_conservative(
    symbol: str, candidates: Mapping[str, float], unit: str, *, effect: Effect, trace: Trace,
    clause: str = CONSERVATIVENESS, note: str | None = None,
) -> float:
    """:func:`choose_lower` if the quantity ``raises_result``, :func:`choose_higher` if it ``lowers_result``."""
    if effect == "raises_result":
        return choose_lower(symbol, candidates, unit, trace=trace, clause=clause, note=note)
    if effect == "lowers_result":
        return choose_higher(symbol, candidates, unit, trace=trace, clause=clause, note=note)
    raise MethodologyError(f"{symbol}: effect must be 'raises_result' or 'lowers_result', got {effect!r}")


def apply_uncertainty(
    symbol: str, value: float, uncertainty: float, unit: str, *, effect: Effect, trace: Trace, clause: str,
    note: str | None = None,
) -> float:
    """``value × (1 − u)`` if the quantity raises the result, ``value × (1 + u)`` if it lowers it.

    ``uncertainty`` is a fraction (0.02 = 2 %), e.g. a meter's maximum permissible error. The
    adjustment is applied to the magnitude, so it is conservative for negative values too.
    """
    u = float(uncertainty)
    if not (0.0 <= u < 1.0) or math.isnan(u):
        raise MethodologyError(f"{symbol}: uncertainty must be a fraction in [0, 1), got {uncertainty!r}")
    v = float(value)
    if effect == "raises_result":
        factor, eq = (1.0 - u, "× (1 − u)") if v >= 0 else (1.0 + u, "× (1 + u)")
    elif effect == "lowers_result":
        factor, eq = (1.0 + u, "× (1 + u)") if v >= 0 else (1.0 - u, "× (1 − u)")
    else:
        raise MethodologyError(f"{symbol}: effect must be 'raises_result' or 'lowers_result', got {effect!r}")
    out = v * factor
    trace.record(symbol, out, unit, equation=f"{symbol}_raw {eq}", clause=clause,
                 inputs={f"{symbol}_raw": v, "u": u}, note=note)
    return out
