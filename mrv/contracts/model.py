"""The data-contract model: what a contract YAML in ``data_contracts/`` may say.

A contract is data: an id, a semver version (recorded in every result) and an ordered list of
rules. Each rule names one Great Expectations 1.x expectation with its kwargs, the severity of a
failure, and the methodology clause behind it. Kwargs may reference run context with
``${...}`` (resolved by :mod:`mrv.contracts.compile`); reasons may also reference row values
with ``{column}``.

Severities (closed set):

``block``
    The run stops (``ValidationOutcome.raise_if_blocked``). Offending rows, if the rule is
    row-level, are also kept out of the valid set and listed in the quarantine with severity
    ``block`` so the evidence is in one place.
``quarantine``
    Offending rows are moved to the quarantine with the rule and a reason; the run continues.
``warn``
    Offending rows stay valid; they are counted (and, for ``calibration_valid``, flagged).

Rules are evaluated on one of two frames (``evaluate_on``): the input ``readings``, or the
``valid`` readings left after every ``readings`` rule has removed its rows. Gaps, calibration
status and period coverage are properties of the data the methodology will use, so they are
checked on ``valid``; a rule on ``valid`` can block or warn but not quarantine.

A contract judges one kind of *keyed time series*: a tidy frame with one row per series per
interval. ``key`` names the series column (``meter_id`` by default; ``instrument_id``,
``device_id``, ...), ``ts`` is always the interval start and ``value`` the measured value. The
series themselves (:class:`SeriesSource`: id, declared interval, calibration windows) come from
the run context.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum
from numbers import Integral
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mrv.errors import ContractError
from mrv.project import Meter, MeterDirection

SEMVER_PATTERN = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
ID_PATTERN = r"^[a-z][a-z0-9_]*$"
COLUMN_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

# Columns every tidy frame has besides its key (see docs/internal-interfaces.md), and the columns
# the runner adds to its outputs: neither may be a contract's key.
CORE_COLUMNS: tuple[str, ...] = ("ts", "value", "source_file", "source_row")
OUTPUT_COLUMNS: tuple[str, ...] = ("calibration_valid", "rule_id", "severity", "reason")
# The tidy meter readings' other columns: what a contract keyed on meter_id reads by default.
METER_COLUMNS: tuple[str, ...] = ("unit", "register")

KeepSide = Literal["lowest", "highest"]


class CalibrationWindow(Protocol):
    """A calibration certificate's validity: calendar dates, both inclusive."""

    @property
    def valid_from(self) -> date: ...

    @property
    def valid_to(self) -> date: ...


class SeriesSource(Protocol):
    """What a contract needs to know about one declared series (a meter, instrument, device).

    :class:`mrv.project.Meter` and :class:`mrv.project.Instrument` satisfy it. Optional
    attributes, read when present:

    ``conservative_keep``: ``"lowest"`` | ``"highest"``
        Which of conflicting duplicate readings is kept (see :class:`KeepPolicy`). Default: a
        :class:`~mrv.project.Meter` keeps ``lowest`` for export and ``highest`` for import; any
        other source ``lowest``.
    ``timezone``: IANA name
        The clock the calibration certificate dates are read in (default UTC).
    ``reading``: :class:`~mrv.project.ReadingKind`
        For the ``meter_reading`` derivation (null for sources without it).
    """

    @property
    def id(self) -> str: ...

    @property
    def interval_minutes(self) -> int: ...

    @property
    def calibrations(self) -> Sequence[CalibrationWindow]: ...


def conservative_keep(source: Any) -> KeepSide:
    """Which copy of conflicting duplicates of ``source`` is conservative to keep.

    An explicit ``conservative_keep`` attribute wins. A meter's direction decides otherwise: the
    lowest export and the highest import never overstate net electricity supplied. Everything else
    keeps the lowest value, which is conservative for instruments and devices whose larger value
    would raise emission reductions (flow, energy delivered, operating hours).
    """
    side = getattr(source, "conservative_keep", None)
    if side is None:
        if isinstance(source, Meter):
            return "highest" if source.direction is MeterDirection.import_ else "lowest"
        return "lowest"
    if side not in ("lowest", "highest"):
        raise ContractError(f"series {getattr(source, 'id', '?')}: conservative_keep must be 'lowest' or 'highest', got {side!r}")
    return side


class Severity(str, Enum):
    block = "block"
    quarantine = "quarantine"
    warn = "warn"


class Stage(str, Enum):
    """Which frame a rule's expectation is evaluated on."""

    readings = "readings"  # the input frame, as ingested
    valid = "valid"  # the rows left after every `readings` rule removed its offenders


class KeepPolicy(str, Enum):
    """How a uniqueness rule resolves copies of one key (only for expect_compound_columns_to_be_unique)."""

    # Keep one copy per key: the one that does not overstate emission reductions, as the series'
    # source says (conservative_keep: lowest export meter, highest import meter, lowest by
    # default); quarantine the others.
    conservative = "conservative"


ConditionOperator = Literal["==", "!=", "<", "<=", ">", ">=", "IN", "NOT_IN"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RowCondition(_Model):
    """Restricts a rule to rows where ``column <operator> parameter`` (a GX ComparisonCondition)."""

    column: str = Field(min_length=1)
    operator: ConditionOperator
    parameter: str | int | float | bool | list[str | int | float]


_COLUMN_RE = re.compile(COLUMN_PATTERN)


class Rule(_Model):
    id: str = Field(pattern=ID_PATTERN)
    severity: Severity
    description: str = Field(min_length=1)
    clause: str = Field(min_length=1, description="The methodology/standard clause behind the rule")
    expectation: str = Field(pattern=r"^expect_[a-z0-9_]+$", description="GX 1.x expectation type")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    row_condition: RowCondition | None = None
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    derive: tuple[str, ...] = Field(default=(), description="Derived columns this rule needs (see compile.DERIVATIONS)")
    evaluate_on: Stage = Stage.readings
    keep: KeepPolicy | None = None
    reason: str | None = Field(
        default=None,
        description="Quarantine/block reason; ${name} = context, {column} = row value ({missing} for set rules)",
    )


class Contract(_Model):
    id: str = Field(pattern=ID_PATTERN)
    version: str = Field(pattern=SEMVER_PATTERN)
    description: str = Field(min_length=1)
    key: str = Field(default="meter_id", pattern=COLUMN_PATTERN, description="Series key column (one time series per value)")
    columns: tuple[str, ...] | None = Field(
        default=None,
        description="Other input columns the frame must have besides key, ts, value, source_file, source_row "
        "(default: unit, register for key meter_id, else none)",
    )
    rules: tuple[Rule, ...] = Field(min_length=1)

    # Where the contract was read from (for error messages); not part of the YAML.
    source: str = Field(default="<memory>", exclude=True)

    @model_validator(mode="after")
    def _check_columns(self) -> "Contract":
        reserved = set(CORE_COLUMNS) | set(OUTPUT_COLUMNS)
        if self.key in reserved:
            raise ValueError(f"key: {self.key!r} is a column every frame has or the runner adds ({', '.join(sorted(reserved))}); name the series column")
        for c in self.columns or ():
            if c in reserved or c == self.key or not _COLUMN_RE.fullmatch(c):
                raise ValueError(f"columns: {c!r} is not an extra input column (not the key, {', '.join(sorted(reserved))}; letters, digits, _)")
        if self.columns is not None and len(set(self.columns)) != len(self.columns):
            raise ValueError("columns: listed more than once")
        return self

    @property
    def extra_columns(self) -> tuple[str, ...]:
        if self.columns is not None:
            return self.columns
        return METER_COLUMNS if self.key == "meter_id" else ()

    @property
    def input_columns(self) -> tuple[str, ...]:
        """Columns the input frame must have, in tidy order (key, ts, value, extras, source_file, source_row)."""
        return (self.key, "ts", "value", *self.extra_columns, "source_file", "source_row")

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise ContractError(f"{self.source}: contract {self.id} has no rule {rule_id!r}")


@dataclass(frozen=True, kw_only=True)
class ContractContext:
    """Run facts a contract may reference: the monitoring period, the declared series, the
    installed capacity (only rules that need it require it) and named values (``${values.<name>}``)."""

    period_start: datetime  # inclusive, timezone-aware
    period_end: datetime  # exclusive, timezone-aware
    sources: Sequence[SeriesSource]
    capacity_kw: float | None = None
    values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.period_start.tzinfo is None or self.period_end.tzinfo is None:
            raise ContractError("contract context: period_start and period_end must be timezone-aware")
        if self.period_end <= self.period_start:
            raise ContractError(f"contract context: period_end {self.period_end} is not after period_start {self.period_start}")
        if self.capacity_kw is not None and not self.capacity_kw > 0:
            raise ContractError(f"contract context: capacity_kw must be > 0, got {self.capacity_kw}")
        ids = [s.id for s in self.sources]
        if len(set(ids)) != len(ids):
            dup = sorted(i for i, n in Counter(ids).items() if n > 1)
            raise ContractError(f"contract context: duplicate series ids {dup}")
        for s in self.sources:
            if not (isinstance(s.interval_minutes, Integral) and s.interval_minutes > 0):
                raise ContractError(f"contract context: series {s.id}: interval_minutes must be a positive integer, got {s.interval_minutes!r}")
            conservative_keep(s)  # fail here, not half-way through a validation

    @property
    def source_ids(self) -> list[str]:
        return [s.id for s in self.sources]

    @property
    def period_label(self) -> str:
        """``2023-01-01..2023-12-31`` (inclusive dates) when both ends are midnight, else ISO instants."""
        start, end = self.period_start, self.period_end
        if start.timetz().replace(tzinfo=None) == end.timetz().replace(tzinfo=None) == datetime.min.time():
            return f"{start.date().isoformat()}..{(end - timedelta(days=1)).date().isoformat()}"
        return f"[{start.isoformat()}, {end.isoformat()})"
