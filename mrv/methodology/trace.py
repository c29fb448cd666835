"""The equation trace: every intermediate value a calculator computes, with its unit and clause."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One evaluated equation.

    ``symbol`` uses the methodology's own notation (``EF_grid_CM_y``); ``clause`` cites where the
    rule comes from (document, section/paragraph, equation number).
    """

    symbol: str
    value: float | int | str
    unit: str
    equation: str
    clause: str
    inputs: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Trace:
    """Append-only list of :class:`TraceStep`; also used as a symbol table for later steps."""

    def __init__(self) -> None:
        self._steps: list[TraceStep] = []

    def record(
        self,
        symbol: str,
        value: float | int | str,
        unit: str,
        *,
        equation: str,
        clause: str,
        inputs: dict[str, Any] | None = None,
        note: str | None = None,
    ) -> float | int | str:
        self._steps.append(TraceStep(symbol, value, unit, equation, clause, dict(inputs or {}), note))
        return value

    @property
    def steps(self) -> tuple[TraceStep, ...]:
        return tuple(self._steps)

    def value(self, symbol: str) -> float | int | str:
        """The last recorded value of ``symbol``."""
        for step in reversed(self._steps):
            if step.symbol == symbol:
                return step.value
        raise KeyError(symbol)

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self._steps]

    def __len__(self) -> int:
        return len(self._steps)
