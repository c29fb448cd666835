"""The calculator interface every digitized methodology implements.

A methodology is a subclass of :class:`Methodology` living in ``methodologies/<program>_<code>/v<N>/``.
It declares metadata, parameters (with units and provenance), the monitored data it consumes (with
the data contract that applies), and two pure functions:

* :meth:`Methodology.aggregate` turns validated monitoring frames into monitored quantities for the
  period, applying the methodology's conservative treatment of imperfect data (recorded in the trace);
* :meth:`Methodology.calculate` turns parameters and monitored quantities into emission reductions.

Nothing here reads files or talks to a database.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, NamedTuple

import pandas as pd
import pint

from mrv.errors import ApplicabilityError, ParameterError
from mrv.methodology.conservative import ISSUANCE_ROUNDING_CLAUSE, round_down_issuable
from mrv.methodology.trace import Trace
from mrv.methodology.units import parse_quantity, to_unit

ParameterKind = Literal["quantity", "choice", "integer", "boolean"]

#: Optional quantity a calculator may return next to ``ER_y``: credits withheld for a non-permanence
#: buffer pool [tCO2e, >= 0]. When present, :meth:`Methodology.run` issues
#: ``max(0, floor(ER_y - buffer_y))``; ``ER_y`` stays the removals eligible before the buffer.
BUFFER_SYMBOL = "buffer_y"

__all__ = [
    "BUFFER_SYMBOL",
    "Applicability",
    "CalculationResult",
    "EquationSpec",
    "Methodology",
    "MethodologyInfo",
    "MonitoredSpec",
    "MonitoredValue",
    "MonitoringInput",
    "OutputSpec",
    "ParameterKind",
    "ParameterSpec",
    "ParameterValue",
    "SourceKind",
    "round_down_issuable",
]


class Applicability(str):
    """One applicability condition: the text of the condition (it *is* the ``str``) and the clause it
    comes from.

    A plain ``str`` subclass, so ``MethodologyInfo.applicability`` stays a tuple of strings for
    everything that already reads it; ``mrv methodologies show`` lists ``clause`` separately.
    Plain strings are still accepted there (their clause is shown as not stated).
    """

    clause: str | None

    def __new__(cls, condition: str, clause: str | None = None) -> "Applicability":
        obj = super().__new__(cls, condition)
        obj.clause = clause
        return obj

    def __reduce__(self) -> tuple[Any, ...]:  # copy/deepcopy/pickle keep the clause
        return (Applicability, (str(self), self.clause))

    @property
    def condition(self) -> str:
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        return {"condition": str(self), "clause": self.clause}


@dataclass(frozen=True, slots=True)
class MethodologyInfo:
    id: str  # "<program>:<code>:<version>", e.g. "CDM:ACM0002:22.0"
    title: str
    program: str
    code: str
    version: str
    source_document: str
    source_url: str | None = None
    tools: tuple[str, ...] = ()
    # Conditions as :class:`Applicability` (condition + clause) or plain strings. Declaring them is
    # documentation; enforcing them is :meth:`Methodology.check_applicability`.
    applicability: tuple[str, ...] = ()
    # How a registry files the credits (CAD Trust project sector, project type and unit type), so the
    # intake service needs no methodology-specific code.
    sector: str = "Not Specified"
    project_type: str = "Not Specified"
    unit_type: str = "Not Determined"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """A declared parameter. ``unit`` is the unit the equations use; inputs are converted to it."""

    symbol: str
    description: str
    kind: ParameterKind = "quantity"
    unit: str = "dimensionless"
    required: bool = True
    default: float | int | str | bool | None = None
    default_source: str | None = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# "plots" (per-plot remote-sensing statistics with a plot registry) and "inventory" (field tree
# inventory) feed area-based forestry methodologies (VCS VM0047); the pipeline wires them separately.
SourceKind = Literal["meters", "instruments", "devices", "plots", "inventory"]


@dataclass(frozen=True, slots=True)
class MonitoredSpec:
    """Monitored data a methodology consumes, and the contract (in ``data_contracts/``) that applies.

    ``source`` says which section of the project file's ``data_sources`` feeds it: electricity
    ``meters``, measuring ``instruments`` (flow, gas analysers, thermocouples; one time series per
    instrument), a ``devices`` fleet (one series per device, declared in a device registry file),
    ``plots`` (per-plot, per-date statistics of a remotely sensed index, with a plot registry) or a
    field ``inventory`` (one row per tree measurement).
    """

    # name/unit: the key and unit of the monitored value calculate() reads, unless the methodology
    # declares `aggregated` (then this spec is a dataset and its unit is descriptive).
    name: str
    description: str
    contract: str  # id of a contract in data_contracts/ (<contract>.yaml); checked by tests for every methodology
    unit: str
    source: SourceKind = "meters"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MonitoredValue(NamedTuple):
    """A value :meth:`Methodology.aggregate` returns and :meth:`Methodology.calculate` reads, when
    these are not one per :class:`MonitoredSpec` (e.g. one ``instruments`` dataset aggregated into
    several quantities). Declared in :attr:`Methodology.aggregated`; a plain ``(name, unit,
    description)`` tuple is accepted too."""

    name: str
    unit: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class EquationSpec:
    """One equation as the methodology writes it, for ``mrv methodologies show`` and the docs."""

    symbol: str
    expression: str
    unit: str
    clause: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """A named quantity :meth:`Methodology.calculate` returns."""

    symbol: str
    description: str
    unit: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ParameterValue:
    """A resolved parameter: value in the declared unit, plus where it came from."""

    symbol: str
    value: float | int | str | bool
    unit: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MonitoringInput:
    """Validated monitoring data for one period, as handed to :meth:`Methodology.aggregate`.

    ``datasets`` maps a :class:`MonitoredSpec` name to its validated frame; ``sources`` holds the
    source metadata the methodology needs (for meters: serial, direction, accuracy, calibration).
    The period is ``[start, end)`` in UTC.
    """

    start: datetime
    end: datetime
    datasets: Mapping[str, pd.DataFrame]
    sources: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CalculationResult:
    methodology_id: str
    quantities: dict[str, tuple[float, str]]
    issuable_tCO2e: int
    parameters: tuple[ParameterValue, ...]
    trace: tuple[dict[str, Any], ...]
    treatments: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "methodology_id": self.methodology_id,
            "quantities": {k: {"value": v, "unit": u} for k, (v, u) in self.quantities.items()},
            "issuable_tCO2e": self.issuable_tCO2e,
            "parameters": [p.to_dict() for p in self.parameters],
            "treatments": list(self.treatments),
            "trace": list(self.trace),
        }


class Methodology(ABC):
    """Base class of all calculators. Subclasses set ``info``, ``parameters`` and ``monitored``
    (and, for ``mrv methodologies show``, ``equations`` and ``outputs``), implement
    :meth:`aggregate` and :meth:`calculate`, and may override :meth:`check_applicability`.

    :meth:`run` is the only entry point the pipeline, replay and ``mrv calculate`` use:
    resolve parameters -> check applicability -> aggregate (if data) -> calculate -> round down
    (``ER_y`` minus the ``buffer_y`` a calculator may return, see :data:`BUFFER_SYMBOL`).
    """

    info: MethodologyInfo
    parameters: tuple[ParameterSpec, ...] = ()
    monitored: tuple[MonitoredSpec, ...] = ()
    #: The monitored values calculate() reads, if they differ from the MonitoredSpec names (a
    #: dataset spec aggregated into several values). Empty: one value per MonitoredSpec, in its unit.
    aggregated: ClassVar[tuple[MonitoredValue | tuple[str, str, str], ...]] = ()
    equations: tuple[EquationSpec, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    #: When True, :meth:`run` passes the resolved parameters to :meth:`aggregate` as the keyword
    #: ``parameters`` (for aggregations that depend on project choices, e.g. the number of matched
    #: control plots). Default False: ``aggregate(data, trace=...)`` as before.
    aggregate_uses_parameters: ClassVar[bool] = False

    @property
    def id(self) -> str:
        return self.info.id

    def parameter_spec(self, symbol: str) -> ParameterSpec:
        for p in self.parameters:
            if p.symbol == symbol:
                return p
        raise ParameterError(f"{self.id} has no parameter {symbol!r}")

    def resolve_parameters(self, raw: Mapping[str, Any]) -> dict[str, ParameterValue]:
        """Check and convert raw inputs ``{symbol: {value, unit, source}}`` (or bare values).

        Units are converted to the declared unit here, at the edge, so equations see plain floats.
        """
        known = {p.symbol for p in self.parameters}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ParameterError(f"{self.id}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        out: dict[str, ParameterValue] = {}
        for spec in self.parameters:
            item = raw.get(spec.symbol)
            if item is None:
                if spec.default is not None:
                    out[spec.symbol] = ParameterValue(spec.symbol, spec.default, spec.unit, spec.default_source or "methodology default")
                elif spec.required:
                    raise ParameterError(f"{self.id}: required parameter {spec.symbol} ({spec.description}) is missing")
                continue
            if not isinstance(item, Mapping):
                item = {"value": item}
            value, unit, source = item.get("value"), item.get("unit"), item.get("source") or "not stated"
            out[spec.symbol] = ParameterValue(spec.symbol, self._coerce(spec, value, unit), spec.unit, str(source))
        return out

    def monitored_values(self) -> tuple[MonitoredValue, ...]:
        """The values calculate() reads, in order: :attr:`aggregated` if declared, else one per
        :class:`MonitoredSpec` (name, unit, description)."""
        if self.aggregated:
            return tuple(MonitoredValue(*v) for v in self.aggregated)
        return tuple(MonitoredValue(m.name, m.unit, m.description) for m in self.monitored)

    def resolve_monitored(self, raw: Mapping[str, Any]) -> dict[str, float]:
        """Check and convert pre-aggregated monitored values ``{name: {value, unit} | bare value}``.

        Names and units are those of :meth:`monitored_values` (the :class:`MonitoredSpec` names,
        or :attr:`aggregated`). A bare value is taken to be in the declared unit; a value with a
        ``unit`` is converted to it (pint), so ``{"value": 1500, "unit": "kWh"}`` for an ``MWh``
        spec becomes ``1.5``. Errors name the monitored value. Missing values are not an error
        here (:meth:`run` reports them, after ``aggregate`` may have supplied them).
        """
        if not isinstance(raw, Mapping):
            raise ParameterError(f"{self.id}: monitored values must be a mapping of name -> value, got {type(raw).__name__}")
        known = {v.name: v for v in self.monitored_values()}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ParameterError(
                f"{self.id}: unknown monitored value(s) {', '.join(map(str, unknown))}; known: {', '.join(sorted(known)) or 'none'}"
            )
        out: dict[str, float] = {}
        for name, item in raw.items():
            spec = known[name]
            if isinstance(item, Mapping):
                extra = sorted(set(item) - {"value", "unit", "source", "note"})
                if extra:
                    raise ParameterError(f"{self.id}: monitored {name}: unexpected key(s) {', '.join(map(str, extra))} (use value, unit, source)")
                if "value" not in item:
                    raise ParameterError(f"{self.id}: monitored {name} has no value")
                value, unit = item.get("value"), item.get("unit") or spec.unit
            else:
                value, unit = item, spec.unit
            if isinstance(value, bool):
                raise ParameterError(f"{self.id}: monitored {name} must be a number, got {value!r}")
            try:
                fvalue = float(value)
            except (TypeError, ValueError):
                raise ParameterError(f"{self.id}: monitored {name} must be a number, got {value!r}") from None
            if not math.isfinite(fvalue):
                raise ParameterError(f"{self.id}: monitored {name} must be finite, got {value!r}")
            q = parse_quantity(fvalue, str(unit), symbol=f"monitored {name}")
            out[name] = to_unit(q, spec.unit, symbol=f"monitored {name}")
        return out

    def check_applicability(self, parameters: Mapping[str, ParameterValue]) -> None:
        """Applicability hook, called by :meth:`run` after the parameters are resolved and before
        any data is aggregated. Raise :meth:`not_applicable` (an :class:`ApplicabilityError` citing
        the clause) when a condition of ``info.applicability`` is not met. The default accepts all.

        Conditions that depend on the monitored data (e.g. a minimum reporting coverage) are
        checked where that data is seen, in :meth:`aggregate` or :meth:`calculate`, with the same
        helper.
        """

    def not_applicable(self, message: str, *, clause: str) -> ApplicabilityError:
        """An :class:`ApplicabilityError` reading ``"<id>: <message>. <clause>"``; ``.clause`` holds
        the clause. Use as ``raise self.not_applicable("...", clause=...)``."""
        exc = ApplicabilityError(f"{self.id}: {message}. {clause}")
        exc.clause = clause  # type: ignore[attr-defined]
        return exc

    def _coerce(self, spec: ParameterSpec, value: Any, unit: str | None) -> float | int | str | bool:
        s = spec.symbol
        if spec.kind == "choice":
            if str(value) not in spec.choices:
                raise ParameterError(f"{self.id}: {s} must be one of {', '.join(spec.choices)}, got {value!r}")
            return str(value)
        if spec.kind == "boolean":
            if not isinstance(value, bool):
                raise ParameterError(f"{self.id}: {s} must be true or false, got {value!r}")
            return value
        if spec.kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ParameterError(f"{self.id}: {s} must be an integer, got {value!r}")
            v: float | int = value
        else:
            try:
                fvalue = float(value)
            except (TypeError, ValueError):
                raise ParameterError(f"{self.id}: {s} must be a number, got {value!r}") from None
            if unit is None and spec.unit != "dimensionless":
                raise ParameterError(f"{self.id}: {s} needs a unit (expected something convertible to {spec.unit})")
            q: pint.Quantity = parse_quantity(fvalue, unit or "dimensionless", symbol=s)
            v = to_unit(q, spec.unit, symbol=s)
        if spec.minimum is not None and v < spec.minimum:
            raise ParameterError(f"{self.id}: {s}={v} {spec.unit} is below the minimum {spec.minimum}")
        if spec.maximum is not None and v > spec.maximum:
            raise ParameterError(f"{self.id}: {s}={v} {spec.unit} is above the maximum {spec.maximum}")
        return v

    @abstractmethod
    def aggregate(self, data: MonitoringInput, *, trace: Trace) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """Validated frames -> monitored values (in the declared units) and the treatments applied."""

    def treat_series(self, piece: pd.DataFrame, *, sources: Mapping[str, Any], start: datetime, end: datetime, keep_tables: bool) -> Any:
        """Optional first stage of :meth:`aggregate`, one series at a time: the per-series
        treatments of the valid rows in ``piece``, as an object that stands for them in a
        :class:`MonitoringInput` (the pipeline treats each series as it is validated, then lets its
        rows go). ``None`` (the default): :meth:`aggregate` needs the rows themselves.
        ``keep_tables``: the aggregation will also cross-check invoices."""
        return None

    def combine_series(self, parts: list[Any]) -> Any:
        """The :meth:`treat_series` results of consecutive pieces as one (what stands for the
        whole dataset in a :class:`MonitoringInput`)."""
        raise NotImplementedError(f"{self.id} does not treat series one at a time")

    @abstractmethod
    def calculate(
        self, *, parameters: Mapping[str, ParameterValue], monitored: Mapping[str, float], trace: Trace
    ) -> dict[str, tuple[float, str]]:
        """Parameters + monitored values -> named quantities; must include ``ER_y`` in tCO2e."""

    def run(
        self,
        *,
        raw_parameters: Mapping[str, Any],
        monitored: Mapping[str, float] | None = None,
        data: MonitoringInput | None = None,
    ) -> CalculationResult:
        """Resolve parameters, check applicability, aggregate (if ``data`` is given) and calculate,
        with a full trace. ``monitored`` values are floats in the declared units (see
        :meth:`resolve_monitored` for raw values with units)."""
        params = self.resolve_parameters(raw_parameters)
        self.check_applicability(params)
        trace = Trace()
        treatments: list[dict[str, Any]] = []
        values: dict[str, float] = dict(monitored or {})
        if data is not None:
            if self.aggregate_uses_parameters:
                agg, treatments = self.aggregate(data, trace=trace, parameters=params)  # type: ignore[call-arg]
            else:
                agg, treatments = self.aggregate(data, trace=trace)
            values.update(agg)
        missing = [v.name for v in self.monitored_values() if v.name not in values]
        if missing:
            raise ParameterError(f"{self.id}: monitored value(s) missing: {', '.join(missing)}")
        quantities = self.calculate(parameters=params, monitored=values, trace=trace)
        if "ER_y" not in quantities:
            raise ParameterError(f"{self.id}: calculator returned no ER_y")
        er, unit = quantities["ER_y"]
        if BUFFER_SYMBOL in quantities:
            # Non-permanence buffer (AFOLU): the calculator returns the withheld buffer credits
            # buffer_y [tCO2e, >= 0]; issuable = floor(ER_y - buffer_y), never negative.
            buffer, buffer_unit = quantities[BUFFER_SYMBOL]
            if buffer_unit != "tCO2e" or not math.isfinite(float(buffer)) or float(buffer) < 0:
                raise ParameterError(f"{self.id}: {BUFFER_SYMBOL} must be a finite, non-negative tCO2e quantity, got {buffer!r} {buffer_unit}")
            issuable = round_down_issuable(er - float(buffer))
            trace.record(
                "ER_issuable_y", issuable, "tCO2e", equation=f"max(0, floor(ER_y − {BUFFER_SYMBOL}))",
                clause=f"{ISSUANCE_ROUNDING_CLAUSE}, after the non-permanence buffer is withheld",
                inputs={"ER_y": er, BUFFER_SYMBOL: float(buffer)},
            )
        else:
            issuable = round_down_issuable(er)
            trace.record(
                "ER_issuable_y", issuable, "tCO2e", equation="floor(ER_y)",
                clause=ISSUANCE_ROUNDING_CLAUSE, inputs={"ER_y": er},
            )
        return CalculationResult(
            methodology_id=self.id,
            quantities=quantities,
            issuable_tCO2e=issuable,
            parameters=tuple(params.values()),
            trace=tuple(trace.to_list()),
            treatments=tuple(treatments),
        )
