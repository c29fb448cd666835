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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mrv.errors import ContractError
from mrv.project import Meter

SEMVER_PATTERN = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
ID_PATTERN = r"^[a-z][a-z0-9_]*$"


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

    # Keep one copy per key: the one that does not overstate emission reductions (lowest value
    # for export meters, highest for import meters); quarantine the others.
    conservative = "conservative"


ConditionOperator = Literal["==", "!=", "<", "<=", ">", ">=", "IN", "NOT_IN"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RowCondition(_Model):
    """Restricts a rule to rows where ``column <operator> parameter`` (a GX ComparisonCondition)."""

    column: str = Field(min_length=1)
    operator: ConditionOperator
    parameter: str | int | float | bool | list[str | int | float]


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
    rules: tuple[Rule, ...] = Field(min_length=1)

    # Where the contract was read from (for error messages); not part of the YAML.
    source: str = Field(default="<memory>", exclude=True)

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise ContractError(f"{self.source}: contract {self.id} has no rule {rule_id!r}")


@dataclass(frozen=True)
class ContractContext:
    """Run facts a contract's kwargs may reference: the monitoring period, meters and capacity."""

    period_start: datetime  # inclusive, timezone-aware
    period_end: datetime  # exclusive, timezone-aware
    meters: Sequence[Meter]
    capacity_kw: float

    def __post_init__(self) -> None:
        if self.period_start.tzinfo is None or self.period_end.tzinfo is None:
            raise ContractError("contract context: period_start and period_end must be timezone-aware")
        if self.period_end <= self.period_start:
            raise ContractError(f"contract context: period_end {self.period_end} is not after period_start {self.period_start}")
        if not self.capacity_kw > 0:
            raise ContractError(f"contract context: capacity_kw must be > 0, got {self.capacity_kw}")
        ids = [m.id for m in self.meters]
        if len(set(ids)) != len(ids):
            raise ContractError(f"contract context: duplicate meter ids {sorted({i for i in ids if ids.count(i) > 1})}")

    @property
    def meter_ids(self) -> list[str]:
        return [m.id for m in self.meters]

    @property
    def period_label(self) -> str:
        """``2023-01-01..2023-12-31`` (inclusive dates) when both ends are midnight, else ISO instants."""
        start, end = self.period_start, self.period_end
        if start.timetz().replace(tzinfo=None) == end.timetz().replace(tzinfo=None) == datetime.min.time():
            return f"{start.date().isoformat()}..{(end - timedelta(days=1)).date().isoformat()}"
        return f"[{start.isoformat()}, {end.isoformat()})"
