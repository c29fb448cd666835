"""Units for methodology parameters (pint), with carbon-accounting units defined once."""

from __future__ import annotations

from functools import lru_cache

import pint

from mrv.errors import ParameterError


@lru_cache(maxsize=1)
def ureg() -> pint.UnitRegistry:
    """The shared unit registry. Built lazily (pint is slow to build) and cached."""
    reg = pint.UnitRegistry(cache_folder=None)
    # Mass of CO2-equivalent is tracked as its own dimension so that tCO2e can never be
    # silently added to a plain tonne of biomass.
    reg.define("gram_CO2e = [co2e_mass] = gCO2e")
    reg.define("tonne_CO2e = 1e6 * gram_CO2e = tCO2e")
    reg.define("kilogram_CO2e = 1e3 * gram_CO2e = kgCO2e")
    # Methodologies and instrument data sheets write cubic metres as "m3" (m3/h, m3/min); pint's
    # own spelling is m**3. Normal cubic metres (Nm3) are NOT aliased: they mean reference
    # conditions, which the methodology converts to explicitly.
    reg.define("m3 = meter ** 3")
    return reg


def Q(value: float, unit: str) -> pint.Quantity:
    """A quantity in the shared registry."""
    return ureg().Quantity(value, unit)


def to_unit(q: pint.Quantity, unit: str, *, symbol: str = "?") -> float:
    """Convert to ``unit`` and return the magnitude; a dimension mismatch names the symbol."""
    try:
        return float(q.to(unit).magnitude)
    except pint.errors.DimensionalityError as exc:
        raise ParameterError(f"{symbol}: {q.units:~} cannot be converted to {unit} ({exc})") from exc
    except pint.errors.UndefinedUnitError as exc:
        raise ParameterError(f"{symbol}: unknown unit ({exc})") from exc


def parse_quantity(value: float, unit: str, *, symbol: str = "?") -> pint.Quantity:
    try:
        return Q(float(value), unit)
    except pint.errors.UndefinedUnitError as exc:
        raise ParameterError(f"{symbol}: unknown unit {unit!r}") from exc
