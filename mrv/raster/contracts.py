"""Raster data contracts: YAML rules on scene metadata and per-plot-date statistics.

The contract (``data_contracts/raster_scenes.yaml``) is an ordered list of rules with the same
severity vocabulary as the sensor contracts (:class:`mrv.contracts.Severity`: ``block``,
``quarantine``, ``warn``) and the clause behind each. Unlike the Great Expectations rules on tidy
rows, a raster rule names a ``check`` from :data:`CHECKS`, which fixes what it judges:

=============================  ==========  ===================================================
check                          judges      fails when
=============================  ==========  ===================================================
``crs_present``                scene       an asset declares no CRS
``transform_present``          scene       an asset has no geotransform
``max_resolution``             scene       a band's pixel size (m, either side) exceeds ``max_resolution_m``
``resolution_within_tolerance`` scene      a band's pixel size (m) differs from ``resolution_m``
                                           by more than ``tolerance_m``
``acquired_in_period``         scene       acquisition time outside ``[period_start, period_end)``
``scene_covers_boundary``      scene       footprint ∩ boundary < ``min_fraction`` of the boundary
``scene_covers_plot``          plot-date   the date's scenes cover < ``min_fraction`` of the plot
``valid_pixels_per_plot``      plot-date   ``valid_fraction`` < ``min_valid_fraction``
``plot_date_not_empty``        plot-date   ``count`` is 0 or ``mean`` is NaN
``values_in_range``            plot-date   ``min``/``max`` (or ``mean``) outside ``ranges[variable]``
``plot_has_observations``      plot        no plot-date of the plot is left with a valid mean
=============================  ==========  ===================================================

Two stages, so the zonal statistics are computed only on scenes that passed:

1. :func:`validate_scenes` runs the scene rules and ``scene_covers_plot`` on the scene list (and
   the plot geometries of :class:`RasterContext`). Plots that overlap no scene at all are an
   input error (:class:`~mrv.errors.SceneError`, rule ``plots_within_scenes``).
2. :func:`validate_plot_stats` runs the plot-date and plot rules on the statistics table — one row
   per plot and date with columns ``plot_id, date, valid_fraction, count, mean`` and optionally
   ``min, max`` (checked by ``values_in_range``), ``variable`` (which range applies; default the
   rule's ``default_variable``) and ``scene_id``. :func:`stats_table_from_zonal` adapts the output
   of :func:`mrv.raster.zonal_stats`. Pass the first stage's result as ``prior``: its quarantined
   plot-dates stay quarantined, and rows of a date whose every scene was quarantined are
   quarantined under that scene's rule.

A scene or plot-date failing several rules is quarantined once, under the first failing rule in
contract order; ``block`` offenders are listed in the quarantine too (severity ``block``) and make
:attr:`RasterValidation.blocked` true. ``plot_has_observations`` looks at the plot-dates left after
every earlier rule. The result is JSON-native and deterministic (:meth:`RasterValidation.to_json`,
:meth:`RasterValidation.to_bytes`), ready to be stored as an artifact.
"""

from __future__ import annotations

import importlib
import importlib.resources
import json
import math
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import shapely
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mrv.contracts.model import ID_PATTERN, SEMVER_PATTERN, Severity
from mrv.errors import ContractBlocked, ContractError
from mrv.raster.scenes import (
    WGS84,
    Scene,
    check_plots_in_scenes,
    covered_fraction,
    equal_area_crs,
    format_date,
    scene_footprint,
    to_crs,
)

__all__ = [
    "CHECKS",
    "RasterContext",
    "RasterContract",
    "RasterRule",
    "RasterRuleResult",
    "RasterValidation",
    "STATS_COLUMNS",
    "load_raster_contract",
    "parse_raster_contract",
    "stats_table_from_zonal",
    "validate_plot_stats",
    "validate_raster",
    "validate_scenes",
]

Applies = Literal["scene", "plot_date", "plot"]
# check -> (what it judges, required params, optional params)
CHECKS: dict[str, tuple[Applies, frozenset[str], frozenset[str]]] = {
    "crs_present": ("scene", frozenset(), frozenset()),
    "transform_present": ("scene", frozenset(), frozenset()),
    "max_resolution": ("scene", frozenset({"max_resolution_m"}), frozenset()),
    "resolution_within_tolerance": ("scene", frozenset({"resolution_m", "tolerance_m"}), frozenset()),
    "acquired_in_period": ("scene", frozenset(), frozenset()),
    "scene_covers_boundary": ("scene", frozenset({"min_fraction"}), frozenset()),
    "scene_covers_plot": ("plot_date", frozenset({"min_fraction"}), frozenset()),
    "valid_pixels_per_plot": ("plot_date", frozenset({"min_valid_fraction"}), frozenset()),
    "plot_date_not_empty": ("plot_date", frozenset(), frozenset()),
    "values_in_range": ("plot_date", frozenset({"ranges"}), frozenset({"default_variable"})),
    "plot_has_observations": ("plot", frozenset(), frozenset()),
}
# Checks evaluated in the scene stage (on the scene list and plot geometries).
_SCENE_STAGE = ("crs_present", "transform_present", "max_resolution", "resolution_within_tolerance", "acquired_in_period", "scene_covers_boundary", "scene_covers_plot")
STATS_COLUMNS: tuple[str, ...] = ("plot_id", "date", "valid_fraction", "count", "mean")
CONTRACTS_PACKAGE = "data_contracts"
# Findings listed per rule in the result (every quarantined item is listed in full elsewhere).
MAX_FINDINGS = 50
_EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), for pixel sizes of geographic CRSs
_TEMPLATE = re.compile(r"^\$\{values\.([A-Za-z_][A-Za-z0-9_.]*)\}$")


# --------------------------------------------------------------------------- model


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RasterRule(_Model):
    id: str = Field(pattern=ID_PATTERN)
    check: str
    severity: Severity
    description: str = Field(min_length=1)
    clause: str = Field(min_length=1, description="The methodology clause behind the rule, or 'project QA rule'")
    params: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = Field(default=None, description="Reason template; {name} = a value of the finding")

    @model_validator(mode="after")
    def _check_params(self) -> RasterRule:
        if self.check not in CHECKS:
            raise ValueError(f"rule {self.id}: unknown check {self.check!r} (choose from {', '.join(CHECKS)})")
        _, required, optional = CHECKS[self.check]
        missing = sorted(required - set(self.params))
        unknown = sorted(set(self.params) - required - optional)
        if missing:
            raise ValueError(f"rule {self.id}: check {self.check} needs params {missing}")
        if unknown:
            raise ValueError(f"rule {self.id}: check {self.check} takes no params {unknown}")
        return self

    @property
    def applies_to(self) -> Applies:
        return CHECKS[self.check][0]


class RasterContract(_Model):
    id: str = Field(pattern=ID_PATTERN)
    version: str = Field(pattern=SEMVER_PATTERN)
    description: str = Field(min_length=1)
    rules: tuple[RasterRule, ...] = Field(min_length=1)
    source: str = Field(default="<memory>", exclude=True)

    @model_validator(mode="after")
    def _unique(self) -> RasterContract:
        ids = [r.id for r in self.rules]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"rule ids repeat: {dup}")
        return self


def parse_raster_contract(text: str, *, source: str = "<memory>") -> RasterContract:
    """A raster contract from YAML text; :class:`ContractError` names the source and the field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(f"{source}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ContractError(f"{source}: a raster contract is a mapping with id, version, description, rules")
    try:
        return RasterContract(**data, source=source)
    except ValidationError as exc:
        problems = [f"  - {'.'.join(map(str, e['loc'])) or '(contract)'}: {e['msg']}" for e in exc.errors()]
        raise ContractError("\n".join([f"{source}: invalid raster contract ({len(problems)} problem(s))", *problems])) from None


def load_raster_contract(contract_id: str = "raster_scenes", *, directory: Path | None = None) -> RasterContract:
    """Read ``<contract_id>.yaml`` from ``directory`` (default: the ``data_contracts`` package)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", contract_id):
        raise ContractError(f"invalid contract id {contract_id!r} (lowercase letters, digits and _)")
    name = f"{contract_id}.yaml"
    if directory is not None:
        resource: Any = Path(directory) / name
    else:
        try:
            resource = importlib.resources.files(CONTRACTS_PACKAGE) / name
        except (NotADirectoryError, TypeError):
            package = importlib.import_module(CONTRACTS_PACKAGE)
            resource = next((Path(p) / name for p in package.__path__ if (Path(p) / name).exists()), Path(name))
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractError(f"{resource}: raster contract {contract_id!r} not found") from None
    contract = parse_raster_contract(text, source=str(resource))
    if contract.id != contract_id:
        raise ContractError(f"{resource}: id: is {contract.id!r} but the file is named for {contract_id!r}")
    return contract


# --------------------------------------------------------------------------- context and results


@dataclass(frozen=True, kw_only=True)
class RasterContext:
    """What the rules are judged against.

    ``period_start``/``period_end``: the analysis window, half-open (dates mean 00:00 UTC).
    ``boundary``: the project boundary and ``plots``: ``{plot_id: geometry}`` (project and control
    plots), both in ``geometry_crs`` (GeoJSON: EPSG:4326). ``values``: ``${values.<name>}``
    parameters (nested mappings are walked by dotted name).
    """

    period_start: date | datetime
    period_end: date | datetime
    boundary: Any = None
    plots: Mapping[Any, Any] | None = None
    geometry_crs: Any = "EPSG:4326"
    values: Mapping[str, Any] = field(default_factory=dict)

    def period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return _utc(self.period_start), _utc(self.period_end)

    def period_label(self) -> str:
        s, e = self.period()
        return f"[{format_date(s)}, {format_date(e)})"


def _utc(v: Any) -> pd.Timestamp:
    ts = pd.Timestamp(v)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


@dataclass
class RasterRuleResult:
    rule_id: str
    check: str
    severity: Severity
    description: str
    clause: str
    applies_to: Applies
    params: dict[str, Any]
    evaluated: bool = False  # False until its stage ran
    checked: int = 0  # scenes / plot-dates / plots judged
    failed: int = 0  # of those, how many failed
    quarantined: int = 0  # newly set aside under this rule (first failing rule wins)
    findings: list[dict[str, Any]] = field(default_factory=list)  # the first MAX_FINDINGS failures

    @property
    def success(self) -> bool:
        return self.failed == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "check": self.check,
            "severity": self.severity.value,
            "description": self.description,
            "clause": self.clause,
            "applies_to": self.applies_to,
            "params": _jsonable(self.params),
            "evaluated": self.evaluated,
            "success": self.success,
            "checked": self.checked,
            "failed": self.failed,
            "quarantined": self.quarantined,
            "findings": _jsonable(self.findings),
            "findings_truncated": max(self.failed - len(self.findings), 0),
        }


@dataclass
class RasterValidation:
    """The outcome of a raster contract: per rule results and what was quarantined, with why."""

    contract_id: str
    contract_version: str
    period: str
    rules: list[RasterRuleResult]
    scene_ids: list[str] = field(default_factory=list)  # scenes judged, in time order
    scene_dates: dict[str, str] = field(default_factory=dict)  # scene id -> date label
    quarantined_scenes: list[dict[str, Any]] = field(default_factory=list)
    quarantined_plot_dates: list[dict[str, Any]] = field(default_factory=list)
    plot_dates_checked: int = 0

    @property
    def blocked(self) -> bool:
        return any(r.evaluated and r.severity is Severity.block and not r.success for r in self.rules)

    @property
    def valid_scene_ids(self) -> list[str]:
        """Scenes not set aside (``warn`` failures stay valid), in time order."""
        out = {q["scene_id"] for q in self.quarantined_scenes}
        return [s for s in self.scene_ids if s not in out]

    def rule(self, rule_id: str) -> RasterRuleResult:
        return next(r for r in self.rules if r.rule_id == rule_id)

    def raise_if_blocked(self) -> None:
        failed = [r for r in self.rules if r.evaluated and r.severity is Severity.block and not r.success]
        if failed:
            parts = [f"{r.rule_id} ({r.failed} failure(s); first: {_where(r.findings[0]) + r.findings[0]['reason'] if r.findings else '-'})"
                     for r in failed]
            exc = ContractBlocked(f"raster contract {self.contract_id} {self.contract_version} blocked the run: " + "; ".join(parts))
            exc.rule_ids = [r.rule_id for r in failed]  # type: ignore[attr-defined]
            raise exc

    def quarantined_keys(self) -> set[tuple[str, str]]:
        return {(str(q["plot_id"]), q["date"]) for q in self.quarantined_plot_dates}

    def valid_plot_dates(self, stats: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``stats`` whose plot-date is not quarantined (any severity but warn)."""
        table = _normalise_stats(stats)
        keys = self.quarantined_keys()
        keep = [(str(p), d) not in keys for p, d in zip(table["plot_id"], table["date"])]
        return stats.loc[np.asarray(keep, dtype=bool)]

    def to_json(self) -> dict[str, Any]:
        return {
            "contract": {"id": self.contract_id, "version": self.contract_version},
            "period": self.period,
            "blocked": self.blocked,
            "scenes_checked": len(self.scene_ids),
            "plot_dates_checked": self.plot_dates_checked,
            "rules": [r.to_json() for r in self.rules],
            "valid_scenes": self.valid_scene_ids,
            "quarantined_scenes": _jsonable(sorted(self.quarantined_scenes, key=lambda q: (q["datetime"], q["scene_id"]))),
            "quarantined_plot_dates": _jsonable(sorted(self.quarantined_plot_dates, key=lambda q: (q["date"], str(q["plot_id"])))),
        }

    def to_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, no NaN): the same inputs always give the same bytes."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _where(finding: Mapping[str, Any]) -> str:
    """What a finding is about, as a message prefix: the plot (and date) or the scene (and date)."""
    if finding.get("plot_id") is not None:
        return f"plot {finding['plot_id']}" + (f" on {finding['date']}" if finding.get("date") else "") + ": "
    if finding.get("scene_id") is not None:
        return f"scene {finding['scene_id']}" + (f" ({finding['datetime']})" if finding.get("datetime") else "") + ": "
    return ""


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return None if not math.isfinite(f) else f
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, (pd.Timestamp, datetime, date)):
        return format_date(v)
    return v


class _Reason(string.Formatter):
    def get_value(self, key: Any, args: Any, kwargs: Any) -> Any:
        return kwargs.get(key, "{" + str(key) + "}")


def _reason(rule: RasterRule, default: str, **facts: Any) -> str:
    shown = {k: _fmt(v) for k, v in facts.items()}
    try:
        return _Reason().format(rule.reason or default, **shown)
    except (ValueError, IndexError):
        return default.format(**shown)


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return "nan" if math.isnan(v) else f"{float(v):.4g}"
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return str(v)


# --------------------------------------------------------------------------- parameters


def _resolve(value: Any, ctx: RasterContext, rule: RasterRule) -> Any:
    if isinstance(value, str):
        m = _TEMPLATE.match(value.strip())
        if m:
            cur: Any = ctx.values
            for part in m.group(1).split("."):
                if not isinstance(cur, Mapping) or part not in cur:
                    raise ContractError(f"rule {rule.id}: {value} is not in the run context values (give values.{m.group(1)})")
                cur = cur[part]
            if isinstance(cur, Mapping) and "value" in cur:  # {value:, unit:, source:} parameter blocks
                cur = cur["value"]
            return cur
        if "${" in value:
            raise ContractError(f"rule {rule.id}: only ${{values.<name>}} templates are supported, got {value!r}")
    if isinstance(value, Mapping):
        return {k: _resolve(v, ctx, rule) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_resolve(v, ctx, rule) for v in value]
    return value


def _number(params: Mapping[str, Any], name: str, rule: RasterRule, *, lo: float | None = None, hi: float | None = None) -> float:
    v = params[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise ContractError(f"rule {rule.id}: param {name} must be a number, got {v!r}")
    v = float(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ContractError(f"rule {rule.id}: param {name} = {v} outside [{lo}, {hi}]")
    return v


def _params(rule: RasterRule, ctx: RasterContext) -> dict[str, Any]:
    p = {k: _resolve(v, ctx, rule) for k, v in rule.params.items()}
    if rule.check == "resolution_within_tolerance":
        _number(p, "resolution_m", rule, lo=1e-9)
        _number(p, "tolerance_m", rule, lo=0.0)
    elif rule.check == "max_resolution":
        _number(p, "max_resolution_m", rule, lo=1e-9)
    elif rule.check in ("scene_covers_boundary", "scene_covers_plot"):
        _number(p, "min_fraction", rule, lo=0.0, hi=1.0)
    elif rule.check == "valid_pixels_per_plot":
        _number(p, "min_valid_fraction", rule, lo=0.0, hi=1.0)
    elif rule.check == "values_in_range":
        ranges = p["ranges"]
        if not isinstance(ranges, Mapping) or not ranges:
            raise ContractError(f"rule {rule.id}: ranges must map variable names to [min, max]")
        for var, rng in ranges.items():
            if not (isinstance(rng, (list, tuple)) and len(rng) == 2 and all(isinstance(x, (int, float)) for x in rng) and rng[0] <= rng[1]):
                raise ContractError(f"rule {rule.id}: ranges.{var} must be [min, max] with min <= max, got {rng!r}")
    return p


def _new_results(contract: RasterContract, ctx: RasterContext) -> list[RasterRuleResult]:
    return [
        RasterRuleResult(
            rule_id=r.id, check=r.check, severity=r.severity, description=r.description, clause=r.clause,
            applies_to=r.applies_to, params=_params(r, ctx),
        )
        for r in contract.rules
    ]


# --------------------------------------------------------------------------- stage 1: scenes


def _pixel_size_m(asset: Any) -> tuple[float, float] | None:
    res = asset.resolution
    if res is None or asset.crs is None:
        return None
    crs = asset.crs
    if crs.is_geographic:
        t, (rows, cols) = asset.transform, asset.shape
        _, lat = t @ (cols / 2, rows / 2)
        k = math.pi / 180 * _EARTH_RADIUS_M
        return (res[0] * k * math.cos(math.radians(lat)), res[1] * k)
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return (res[0] * factor, res[1] * factor)


def validate_scenes(contract: RasterContract, scenes: Sequence[Scene], context: RasterContext) -> RasterValidation:
    """Stage 1: the scene rules (and ``scene_covers_plot``) on ``scenes``. Raises
    :class:`~mrv.errors.SceneError` if ``context.plots`` has plots overlapping no scene at all."""
    results = _new_results(contract, context)
    order = sorted(scenes, key=lambda s: (s.datetime, s.id))
    out = RasterValidation(
        contract_id=contract.id, contract_version=contract.version, period=context.period_label(), rules=results,
        scene_ids=[s.id for s in order], scene_dates={s.id: s.date_label for s in order},
    )
    plots = dict(context.plots or {})
    geo_crs = context.geometry_crs or WGS84
    georeferenced = [s for s in order if all(a.crs is not None and a.transform is not None for a in s.assets.values())]
    if plots:
        check_plots_in_scenes(georeferenced, plots, geo_crs)
    shapes = [*plots.values()] + ([context.boundary] if context.boundary is not None else [])
    ea = equal_area_crs(shapely.union_all([shapely.geometry.shape(g) if isinstance(g, Mapping) else g for g in shapes]), geo_crs) if shapes else None
    footprints: dict[str, Any] = {}
    quarantined: dict[str, dict[str, Any]] = {}
    start, end = context.period()

    for rule, res in zip(contract.rules, results):
        if rule.check not in _SCENE_STAGE:
            continue
        res.evaluated = True
        if rule.check == "scene_covers_plot":
            _covers_plot(rule, res, order, quarantined, plots, geo_crs, ea, footprints, out)
            continue
        for s in order:
            res.checked += 1
            failures = _scene_failures(rule, res.params, s, context, start, end, ea, footprints)
            if not failures:
                continue
            res.failed += 1
            reason = "; ".join(failures)
            if len(res.findings) < MAX_FINDINGS:
                res.findings.append({"scene_id": s.id, "datetime": s.date_label, "reason": reason})
            if rule.severity is not Severity.warn and s.id not in quarantined:
                quarantined[s.id] = {"scene_id": s.id, "datetime": s.date_label, "rule_id": rule.id, "severity": rule.severity.value, "reason": reason}
                res.quarantined += 1
    out.quarantined_scenes = list(quarantined.values())
    return out


def _pixel_size_failures(rule: RasterRule, s: Scene, bad: Callable[[Any], bool], message: str, **fields: Any) -> list[str]:
    """One reason per band asset whose pixel size (metres) is unknown or ``bad``, in asset order."""
    out = []
    for a in s.assets.values():
        if a.role != "band":
            continue
        size = _pixel_size_m(a)
        if size is None:
            out.append(_reason(rule, "asset {asset}: pixel size unknown (no CRS or transform)", asset=a.key))
        elif bad(size):
            out.append(_reason(rule, message, asset=a.key, resolution=size, **fields))
    return out


def _scene_failures(
    rule: RasterRule, p: Mapping[str, Any], s: Scene, ctx: RasterContext, start: pd.Timestamp, end: pd.Timestamp, ea: Any, footprints: dict[str, Any]
) -> list[str]:
    check = rule.check
    if check == "crs_present":
        return [_reason(rule, "asset {asset} has no CRS", asset=a.key) for a in s.assets.values() if a.crs is None]
    if check == "transform_present":
        return [_reason(rule, "asset {asset} has no geotransform", asset=a.key) for a in s.assets.values() if a.transform is None]
    if check == "max_resolution":
        limit = float(p["max_resolution_m"])
        return _pixel_size_failures(rule, s, lambda size: any(v > limit * (1 + 1e-9) for v in size),
                                    "asset {asset}: pixel size {resolution} m, coarser than the {max_resolution} m maximum",
                                    max_resolution=limit)
    if check == "resolution_within_tolerance":
        want, tol = float(p["resolution_m"]), float(p["tolerance_m"])
        return _pixel_size_failures(rule, s, lambda size: any(abs(v - want) > tol + 1e-9 * want for v in size),
                                    "asset {asset}: pixel size {resolution} m, expected {expected} ± {tolerance} m",
                                    expected=want, tolerance=tol)
    if check == "acquired_in_period":
        when = pd.Timestamp(s.datetime)
        if start <= when < end:
            return []
        return [_reason(rule, "acquired {datetime}, outside {period}", datetime=s.date_label, period=ctx.period_label())]
    if check == "scene_covers_boundary":
        if ctx.boundary is None:
            raise ContractError(f"rule {rule.id}: the run context has no project boundary")
        fp = _footprint_ea(s, ea, footprints)
        boundary = to_crs(ctx.boundary if not isinstance(ctx.boundary, Mapping) else shapely.geometry.shape(ctx.boundary), ctx.geometry_crs or WGS84, ea)
        min_f = float(p["min_fraction"])
        frac = 0.0 if fp is None or boundary.area == 0 else float(shapely.intersection(boundary, fp).area / boundary.area)
        if fp is not None and frac + 1e-12 >= min_f:
            return []
        return [_reason(rule, "covers {fraction} of the project boundary, below {min_fraction}", fraction=frac, min_fraction=min_f)]
    raise AssertionError(check)  # pragma: no cover


def _footprint_ea(s: Scene, ea: Any, cache: dict[str, Any]) -> Any:
    if s.id not in cache:
        if s.crs is None or s.transform is None or any(a.crs is None or a.transform is None for a in s.assets.values()):
            cache[s.id] = None
        else:
            cache[s.id] = to_crs(scene_footprint(s), s.crs, ea)
    return cache[s.id]


def _covers_plot(
    rule: RasterRule, res: RasterRuleResult, order: Sequence[Scene], quarantined_scenes: Mapping[str, Any],
    plots: Mapping[Any, Any], geo_crs: Any, ea: Any, footprints: dict[str, Any], out: RasterValidation,
) -> None:
    if not plots:
        raise ContractError(f"rule {rule.id}: the run context has no plots")
    min_f = float(res.params["min_fraction"])
    ids = list(plots)
    plots_ea = np.array([to_crs(shapely.geometry.shape(g) if isinstance(g, Mapping) else g, geo_crs, ea) for g in (plots[i] for i in ids)], dtype=object)
    areas = shapely.area(plots_ea)
    by_date: dict[str, list[Scene]] = {}
    for s in order:
        if s.id not in quarantined_scenes:
            by_date.setdefault(s.date_label, []).append(s)
    already = out.quarantined_keys()
    for label, day in by_date.items():
        fps = [f for f in (_footprint_ea(s, ea, footprints) for s in day) if f is not None]
        union = shapely.union_all(fps) if fps else shapely.Polygon()
        frac = covered_fraction(plots_ea, areas, union)
        for pid, f in zip(ids, frac):
            res.checked += 1
            if f + 1e-12 >= min_f:
                continue
            res.failed += 1
            reason = _reason(rule, "scenes of this date cover {fraction} of the plot, below {min_fraction}", fraction=float(f), min_fraction=min_f)
            finding = {"plot_id": pid, "date": label, "scene_id": ",".join(s.id for s in day), "reason": reason}
            if len(res.findings) < MAX_FINDINGS:
                res.findings.append(finding)
            if rule.severity is not Severity.warn and (str(pid), label) not in already:
                out.quarantined_plot_dates.append({**finding, "rule_id": rule.id, "severity": rule.severity.value})
                already.add((str(pid), label))
                res.quarantined += 1
    out.plot_dates_checked = max(out.plot_dates_checked, res.checked)


# --------------------------------------------------------------------------- stage 2: plot statistics


def stats_table_from_zonal(frame: pd.DataFrame, *, variable: str | None = None, scene_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """The output of :func:`mrv.raster.zonal_stats` (``date, plot, mean, valid_fraction, count
    [, min, max ...]``) as the statistics table of :func:`validate_plot_stats`: ``plot`` becomes
    ``plot_id``; ``variable`` and ``scene_id`` (one id per date label, in date order) are added when
    given."""
    out = frame.rename(columns={"plot": "plot_id"}).copy()
    if variable is not None:
        out["variable"] = variable
    if scene_ids is not None:
        dates = list(dict.fromkeys(out["date"]))
        if len(dates) != len(scene_ids):
            raise ValueError(f"{len(scene_ids)} scene ids for {len(dates)} dates")
        out["scene_id"] = out["date"].map(dict(zip(dates, scene_ids)))
    return out


def _normalise_stats(stats: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in STATS_COLUMNS if c not in stats.columns]
    if missing:
        raise ContractError(f"plot statistics table lacks columns {missing} (needs {list(STATS_COLUMNS)})")
    t = stats.reset_index(drop=True).copy()
    t["date"] = [format_date(d) for d in t["date"]]
    return t


def validate_plot_stats(
    contract: RasterContract, stats: pd.DataFrame, context: RasterContext, *, prior: RasterValidation | None = None
) -> RasterValidation:
    """Stage 2: the plot-date and plot rules on the statistics table (see the module docstring).
    Returns a new result holding both stages when ``prior`` is given."""
    table = _normalise_stats(stats)
    if prior is not None:
        if (prior.contract_id, prior.contract_version) != (contract.id, contract.version):
            raise ContractError(f"prior result is from contract {prior.contract_id} {prior.contract_version}, not {contract.id} {contract.version}")
        results = [RasterRuleResult(**{**r.__dict__, "findings": list(r.findings)}) for r in prior.rules]
        out = RasterValidation(
            contract_id=contract.id, contract_version=contract.version, period=prior.period, rules=results,
            scene_ids=list(prior.scene_ids), scene_dates=dict(prior.scene_dates),
            quarantined_scenes=list(prior.quarantined_scenes), quarantined_plot_dates=list(prior.quarantined_plot_dates),
            plot_dates_checked=prior.plot_dates_checked,
        )
    else:
        results = _new_results(contract, context)
        out = RasterValidation(contract_id=contract.id, contract_version=contract.version, period=context.period_label(), rules=results)

    # One key per plot-date; a table may hold several variables (rows) per plot-date.
    keys = list(zip(table["plot_id"].astype(str), table["date"]))
    first_row: dict[tuple[str, str], int] = {}
    for i, k in enumerate(keys):
        first_row.setdefault(k, i)
    out.plot_dates_checked = max(out.plot_dates_checked, len(first_row))
    quarantined = out.quarantined_keys()

    # Rows of a date whose every scene was quarantined carry that scene's rule.
    if prior is not None and prior.quarantined_scenes:
        valid_dates = {prior.scene_dates[s] for s in prior.valid_scene_ids}
        by_date = {}
        for q in sorted(prior.quarantined_scenes, key=lambda q: (q["datetime"], q["scene_id"])):
            by_date.setdefault(q["datetime"], q)
        for k, i in first_row.items():
            if k[1] in by_date and k[1] not in valid_dates and k not in quarantined:
                q = by_date[k[1]]
                out.quarantined_plot_dates.append({
                    "plot_id": table["plot_id"].iat[i], "date": k[1], "scene_id": q["scene_id"], "rule_id": q["rule_id"],
                    "severity": q["severity"], "reason": f"scene {q['scene_id']} quarantined: {q['reason']}",
                })
                quarantined.add(k)

    for rule, res in zip(contract.rules, results):
        if rule.check in _SCENE_STAGE:
            continue
        res.evaluated = True
        if rule.applies_to == "plot":
            _plot_rule(rule, res, table, keys, quarantined, context, out)
            continue
        failing = _plot_date_failures(rule, res.params, table)
        seen_keys: set[tuple[str, str]] = set()
        res.checked = len(first_row)
        for i, reason in failing:
            k = keys[i]
            if k in seen_keys:
                continue  # one failure per plot-date, even with several variables
            seen_keys.add(k)
            res.failed += 1
            finding = {"plot_id": table["plot_id"].iat[i], "date": k[1], "reason": reason}
            if "scene_id" in table.columns:
                finding["scene_id"] = table["scene_id"].iat[i]
            if len(res.findings) < MAX_FINDINGS:
                res.findings.append(finding)
            if rule.severity is not Severity.warn and k not in quarantined:
                out.quarantined_plot_dates.append({**finding, "rule_id": rule.id, "severity": rule.severity.value})
                quarantined.add(k)
                res.quarantined += 1
    return out


def _plot_date_failures(rule: RasterRule, p: Mapping[str, Any], t: pd.DataFrame) -> list[tuple[int, str]]:
    n = len(t)
    if rule.check == "valid_pixels_per_plot":
        min_v = float(p["min_valid_fraction"])
        vf = pd.to_numeric(t["valid_fraction"], errors="coerce").to_numpy(dtype=float)
        bad = ~(vf + 1e-12 >= min_v)  # NaN fails
        return [(i, _reason(rule, "valid fraction {valid_fraction} below {min_valid_fraction}", valid_fraction=vf[i], min_valid_fraction=min_v)) for i in np.flatnonzero(bad)]
    if rule.check == "plot_date_not_empty":
        cnt = pd.to_numeric(t["count"], errors="coerce").to_numpy(dtype=float)
        mean = pd.to_numeric(t["mean"], errors="coerce").to_numpy(dtype=float)
        bad = ~(cnt > 0) | ~np.isfinite(mean)
        return [(i, _reason(rule, "no valid pixel (count {count}, mean {mean})", count=cnt[i], mean=mean[i])) for i in np.flatnonzero(bad)]
    if rule.check == "values_in_range":
        ranges = p["ranges"]
        default_var = p.get("default_variable")
        variables = t["variable"].astype(str).to_numpy() if "variable" in t.columns else np.full(n, default_var, dtype=object)
        cols = [c for c in ("min", "max") if c in t.columns] or ["mean"]
        out: list[tuple[int, str]] = []
        for i in range(n):
            var = variables[i]
            if var is None or var not in ranges:
                raise ContractError(f"rule {rule.id}: no physical range for variable {var!r} (ranges: {sorted(ranges)}); add it or set default_variable")
            lo, hi = float(ranges[var][0]), float(ranges[var][1])
            for c in cols:
                v = t[c].iat[i]
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    continue  # an empty plot-date is the job of plot_date_not_empty
                v = float(v)
                if v < lo or v > hi:
                    out.append((i, _reason(rule, "{variable} {column} {value} outside [{min}, {max}]", variable=var, column=c, value=v, min=lo, max=hi)))
                    break
        return out
    raise AssertionError(rule.check)  # pragma: no cover


def _plot_rule(
    rule: RasterRule, res: RasterRuleResult, t: pd.DataFrame, keys: list[tuple[str, str]], quarantined: set[tuple[str, str]],
    ctx: RasterContext, out: RasterValidation,
) -> None:
    declared = [str(p) for p in ctx.plots] if ctx.plots else list(dict.fromkeys(t["plot_id"].astype(str)))
    cnt = pd.to_numeric(t["count"], errors="coerce").to_numpy(dtype=float)
    mean = pd.to_numeric(t["mean"], errors="coerce").to_numpy(dtype=float)
    good: dict[str, int] = {}
    dates: dict[str, set[str]] = {}
    for i, k in enumerate(keys):
        dates.setdefault(k[0], set()).add(k[1])
        if k not in quarantined and cnt[i] > 0 and np.isfinite(mean[i]):
            good[k[0]] = good.get(k[0], 0) + 1
    for pid in declared:
        res.checked += 1
        if good.get(pid, 0) > 0:
            continue
        res.failed += 1
        n_dates = len(dates.get(pid, ()))
        reason = _reason(rule, "plot has no valid observation on any of {dates} date(s)", dates=n_dates)
        if len(res.findings) < MAX_FINDINGS:
            res.findings.append({"plot_id": pid, "reason": reason})
        if rule.severity is Severity.warn:
            continue
        for i, k in enumerate(keys):
            if k[0] == pid and k not in quarantined:
                out.quarantined_plot_dates.append({"plot_id": t["plot_id"].iat[i], "date": k[1], "rule_id": rule.id, "severity": rule.severity.value, "reason": reason})
                quarantined.add(k)
                res.quarantined += 1


def validate_raster(contract: RasterContract, scenes: Sequence[Scene], stats: pd.DataFrame, context: RasterContext) -> RasterValidation:
    """Both stages at once (when the statistics table already exists)."""
    return validate_plot_stats(contract, stats, context, prior=validate_scenes(contract, scenes, context))

