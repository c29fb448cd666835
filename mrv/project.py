"""The project file: one YAML describing a project, its methodology, period, data sources and parameters.

Loading validates everything up front and reports every problem with the file name and the field
path (``data_sources.meters[1].calibrations[0].valid_to``), so a run never starts on a bad spec.
"""

from __future__ import annotations

import glob
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from pathlib import Path
from collections.abc import Container
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mrv.errors import ProjectSpecError
from mrv.yamlload import CSafeLoader, load_yaml_c

METHODOLOGY_ID_PATTERN = r"^[A-Z]+:[A-Z0-9-]+:\d+(\.\d+)*$"


class ProjectType(str, Enum):
    wind = "wind"
    solar = "solar"
    other = "other"  # other grid-connected renewables (ACM0002: hydro, geothermal, ...)
    landfill_gas = "landfill_gas"
    clean_cooking = "clean_cooking"
    arr = "arr"  # afforestation, reforestation and revegetation (VCS VM0047)


class MeterDirection(str, Enum):
    export = "export"
    import_ = "import"


class ReadingKind(str, Enum):
    interval = "interval"  # energy per interval [kWh]
    cumulative = "cumulative"  # register reading [kWh], rolls over at register_max


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_tz(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA timezone {v!r}") from None
    return v


class Calibration(_Model):
    valid_from: date
    valid_to: date
    certificate: str | None = None

    @model_validator(mode="after")
    def _order(self) -> "Calibration":
        if self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self


class Meter(_Model):
    id: str = Field(min_length=1)
    serial: str = Field(min_length=1)
    direction: MeterDirection
    accuracy_class: float = Field(gt=0, le=5, description="Maximum permissible error [%] (IEC 62053 class)")
    files: str = Field(description="Glob, relative to the project file")
    reading: ReadingKind = ReadingKind.interval
    unit: Literal["Wh", "kWh", "MWh"] = "kWh"
    timezone: str = "UTC"
    interval_minutes: int = Field(default=15, gt=0, le=1440)
    timestamp_label: Literal["start", "end"] = Field(
        default="start", description="Whether a file timestamp marks the start or the end of its interval"
    )
    register_max: float | None = Field(default=None, gt=0, description="Register value at which a cumulative meter rolls over to 0")
    timestamp_column: str = "timestamp"
    value_column: str = "value"
    calibrations: tuple[Calibration, ...] = ()

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _check_tz(v)))

    @model_validator(mode="after")
    def _register(self) -> "Meter":
        if self.reading is ReadingKind.cumulative and self.register_max is None:
            raise ValueError("a cumulative meter needs register_max (the value at which the register rolls over)")
        return self


class CrossCheck(_Model):
    """Independent records of the same quantity (e.g. sales invoices), per billing period."""

    kind: Literal["invoices"] = "invoices"
    file: str
    direction: MeterDirection = MeterDirection.export
    unit: Literal["kWh", "MWh"] = "MWh"


class Instrument(_Model):
    """A measuring instrument (flow meter, gas analyser, thermocouple, flame detector): one time series.

    Several instruments may read from the same files, each from its own ``column``. Values are
    converted from ``unit`` to the unit the methodology declares for ``quantity`` at ingest.
    """

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    quantity: str = Field(min_length=1, description="A quantity symbol the methodology declares (instrument_quantities)")
    unit: str = Field(min_length=1, description="Unit of the values in the files (pint syntax)")
    files: str = Field(description="Glob, relative to the project file")
    column: str = Field(min_length=1)
    timestamp_column: str = "timestamp"
    timezone: str = "UTC"
    timestamp_label: Literal["start", "end"] = "start"
    interval_minutes: int = Field(default=1, gt=0, le=1440)
    accuracy: float | None = Field(default=None, gt=0, le=100, description="Maximum permissible error [%]")
    serial: str | None = None
    calibrations: tuple[Calibration, ...] = ()
    attributes: dict[str, str | int | float | bool] = Field(default_factory=dict)

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _check_tz(v)))


class DeviceFleet(_Model):
    """A fleet of metered devices: a registry file (one row per device) and long-format readings."""

    registry: str = Field(description="CSV, relative to the project file: device_id, serial, commissioned, accuracy_class, calibration_valid_from, calibration_valid_to, ...")
    files: str = Field(description="Glob of long-format readings files (.csv or .parquet)")
    id_column: str = "device_id"
    timestamp_column: str = "timestamp"
    value_column: str = "value"
    unit: Literal["Wh", "kWh", "MWh"] = "kWh"
    timezone: str = "UTC"
    timestamp_label: Literal["start", "end"] = "start"
    interval_minutes: int = Field(default=15, gt=0, le=1440)

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _check_tz(v)))


class DataSources(_Model):
    """Where monitored data comes from. Which sections a project needs depends on its methodology
    (``MonitoredSpec.source``); at least one must be present."""

    meters: tuple[Meter, ...] = ()
    instruments: tuple[Instrument, ...] = ()
    devices: DeviceFleet | None = None
    cross_checks: tuple[CrossCheck, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> "DataSources":
        # (an empty section is allowed here; ProjectSpec requires a source unless the project has
        # a `satellite:` section)
        ids = [m.id for m in self.meters] + [i.id for i in self.instruments]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate meter/instrument id(s): {', '.join(dup)}")
        return self


class Boundary(_Model):
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    geometry: dict[str, Any]

    @field_validator("geometry")
    @classmethod
    def _geojson(cls, g: dict[str, Any]) -> dict[str, Any]:
        kind = g.get("type")
        coords = g.get("coordinates")
        if kind not in ("Point", "Polygon", "MultiPolygon"):
            raise ValueError("geometry must be a GeoJSON Point, Polygon or MultiPolygon")
        if not isinstance(coords, list) or not coords:
            raise ValueError("geometry has no coordinates")
        if kind == "Polygon":
            for ring in coords:
                if len(ring) < 4 or ring[0] != ring[-1]:
                    raise ValueError("each polygon ring needs >= 4 positions and must be closed")
        return g


class MonitoringPeriod(_Model):
    """Inclusive calendar dates in ``timezone``; converted to a half-open UTC interval."""

    start: date
    end: date
    timezone: str = "UTC"

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _check_tz(v)))

    @model_validator(mode="after")
    def _order(self) -> "MonitoringPeriod":
        if self.end < self.start:
            raise ValueError("end is before start")
        return self

    @property
    def start_utc(self) -> datetime:
        return datetime.combine(self.start, time(0), ZoneInfo(self.timezone)).astimezone(timezone.utc)

    @property
    def end_utc(self) -> datetime:
        """Exclusive end: midnight after the last day."""
        return datetime.combine(self.end + timedelta(days=1), time(0), ZoneInfo(self.timezone)).astimezone(timezone.utc)


class Capacity(_Model):
    value: float = Field(gt=0)
    unit: Literal["kW", "MW"] = "MW"

    @property
    def kw(self) -> float:
        return self.value * (1000.0 if self.unit == "MW" else 1.0)


class RegistryTarget(_Model):
    name: str
    url: str | None = None
    program: str | None = None


class SatelliteBand(_Model):
    """A band read from each STAC item: its asset key, 1-based band, optional overrides of the
    item's scale/offset/nodata (otherwise from ``raster:bands`` or the GeoTIFF)."""

    asset: str = Field(min_length=1)
    band: int = Field(default=1, ge=1)
    scale: float | None = None
    offset: float | None = None
    nodata: float | None = None


class SatelliteMask(_Model):
    asset: str = Field(min_length=1)
    valid_values: tuple[int, ...] = Field(min_length=1, description="Stored mask values meaning 'usable pixel'")
    band: int = Field(default=1, ge=1)


class SatelliteGrid(_Model):
    crs: str = Field(min_length=1, description="CRS of the analysis grid (projected, metres)")
    resolution: float = Field(gt=0, description="Pixel size in CRS units")

    @field_validator("crs")
    @classmethod
    def _crs(cls, v: str) -> str:
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            CRS.from_user_input(v)
        except CRSError:
            raise ValueError(f"unknown CRS {v!r}") from None
        return v


class DateRange(_Model):
    """Half-open ``[start, end)`` in UTC."""

    start: date
    end: date

    @model_validator(mode="after")
    def _order(self) -> "DateRange":
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Satellite(_Model):
    """Remote sensing for an area-based ARR project (VM0047): a local STAC catalog of scenes, the
    plot geometries (GeoJSON, relative to the project file) and the raster contract's thresholds."""

    stac_catalog: str = Field(min_length=1, description="Local static STAC catalog.json, relative to the project file")
    bands: dict[str, SatelliteBand] = Field(min_length=1, description="band name -> asset (e.g. red, nir)")
    mask: SatelliteMask | None = None
    stocking_index: str = Field(default="ndvi", min_length=1, description="'ndvi' (from red and nir) or the name of a provided band")
    grid: SatelliteGrid
    analysis_period: DateRange = Field(description="Scenes judged: the pre-project reference years plus the monitoring period")
    project_start: date
    boundary: str | None = Field(default=None, description="GeoJSON of the boundary (default: the project file's boundary)")
    plots: str = Field(min_length=1, description="GeoJSON of the project plots (property plot_id)")
    donor_pool: str = Field(min_length=1, description="GeoJSON of the donor pool for control plots")
    control_candidates: str = Field(min_length=1, description="GeoJSON of the control plot candidates (property plot_id)")
    contract: str = "raster_scenes"
    qa: dict[str, float] = Field(default_factory=dict, description="${values.*} of the raster contract (resolution_m, ...)")

    @model_validator(mode="after")
    def _index(self) -> "Satellite":
        if self.stocking_index == "ndvi":
            missing = [b for b in ("red", "nir") if b not in self.bands]
            if missing:
                raise ValueError(f"stocking_index 'ndvi' needs bands red and nir (missing: {', '.join(missing)})")
        elif self.stocking_index not in self.bands:
            raise ValueError(f"stocking_index {self.stocking_index!r} is neither 'ndvi' nor a declared band ({', '.join(self.bands)})")
        if self.mask is not None and self.mask.asset in self.bands:
            raise ValueError(f"mask asset {self.mask.asset!r} is also declared as a band")
        return self


class InventoryColumns(_Model):
    """Column names of the inventory CSV."""

    plot_id: str = "plot_id"
    tree_id: str = "tree_id"
    species: str = "species"
    dbh: str = Field(default="dbh_cm", description="DBH [cm]")
    height: str = Field(default="height_m", description="Height [m]")
    wood_density: str = Field(default="wood_density_g_cm3", description="Wood density [g/cm3]")
    date: str | None = Field(default=None, description="Measurement date column (else field_inventory.measured)")


class FieldInventory(_Model):
    """The field inventory: one CSV row per tree measurement, and the registered inventory
    (sub)plots as GeoJSON points with ``plot_id`` (and optionally ``radius_m``)."""

    file: str = Field(min_length=1)
    measured: date | None = Field(default=None, description="Measurement date when the CSV has no date column")
    plots: str = Field(min_length=1, description="GeoJSON of the inventory plot centres (property plot_id)")
    subplot_radius_m: float = Field(gt=0, description="Radius of the circular inventory plots [m]")
    columns: InventoryColumns = Field(default_factory=InventoryColumns)

    @model_validator(mode="after")
    def _date(self) -> "FieldInventory":
        if self.measured is None and self.columns.date is None:
            raise ValueError("give the measurement date: field_inventory.measured or columns.date")
        return self


class ProjectInfo(_Model):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name: str
    type: ProjectType


class ProjectSpec(_Model):
    project: ProjectInfo
    methodology: str = Field(pattern=METHODOLOGY_ID_PATTERN)
    boundary: Boundary
    monitoring_period: MonitoringPeriod
    installed_capacity: Capacity | None = None
    data_sources: DataSources = Field(default_factory=DataSources)
    satellite: Satellite | None = None
    field_inventory: FieldInventory | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    registry: RegistryTarget | None = None

    @model_validator(mode="after")
    def _sources(self) -> "ProjectSpec":
        ds = self.data_sources
        if self.satellite is None:
            if not ds.meters and not ds.instruments and ds.devices is None:
                raise ValueError("no data sources: declare meters, instruments or devices under data_sources (or a satellite: section)")
            if self.field_inventory is not None:
                raise ValueError("field_inventory needs a satellite: section (area-based ARR projects)")
        elif self.field_inventory is None:
            raise ValueError("a satellite: project needs its field_inventory: section (trees of the inventory plots)")
        return self

    # Set by load_project: the directory globs are relative to. Not part of the YAML.
    base_dir: Path = Field(default=Path("."), exclude=True)

    def meter_files(self, meter: Meter) -> list[Path]:
        """Files for a meter, sorted; a glob matching nothing is an error naming the meter."""
        pattern = str(self.base_dir / meter.files)
        files = sorted(Path(p) for p in glob.glob(pattern))
        if not files:
            raise ProjectSpecError(f"meter {meter.id}: no files match {meter.files!r} (looked in {self.base_dir})")
        return files

    def source_files(self, pattern: str, *, what: str) -> list[Path]:
        """Files matching a glob relative to the project file, sorted; none is an error naming ``what``."""
        files = sorted(Path(p) for p in glob.glob(str(self.base_dir / pattern)))
        if not files:
            raise ProjectSpecError(f"{what}: no files match {pattern!r} (looked in {self.base_dir})")
        return files

    def instrument(self, instrument_id: str) -> Instrument:
        for i in self.data_sources.instruments:
            if i.id == instrument_id:
                return i
        have = ", ".join(i.id for i in self.data_sources.instruments) or "none"
        raise ProjectSpecError(f"no instrument {instrument_id!r} in the project (have: {have})")

    @property
    def capacity_kw(self) -> float | None:
        return None if self.installed_capacity is None else self.installed_capacity.kw

    def meter(self, meter_id: str) -> Meter:
        for m in self.data_sources.meters:
            if m.id == meter_id:
                return m
        raise ProjectSpecError(f"no meter {meter_id!r} in the project (have: {', '.join(m.id for m in self.data_sources.meters)})")

    def resolve(self, rel: str) -> Path:
        return (self.base_dir / rel).resolve()

    def methodology_parameters(self, *, accepts: Container[str] = ("project_type",)) -> dict[str, Any]:
        """Parameters from the YAML, plus ``project_type`` from the project section when the
        methodology declares such a parameter (``accepts``: the methodology's parameter symbols)."""
        params = dict(self.parameters)
        if "project_type" in accepts:
            params.setdefault("project_type", {"value": self.project.type.value, "source": "project file: project.type"})
        return params


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = [f"{source}: invalid project file ({exc.error_count()} problem(s))"]
    for err in exc.errors():
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        lines.append(f"  - {loc or '(top level)'}: {err['msg']}")
    return "\n".join(lines)


def parse_project(text: str, *, source: str, base_dir: Path) -> ProjectSpec:
    """Validate project YAML text. ``source`` names it in errors; globs resolve against ``base_dir``.

    The YAML is read by LibYAML's C loader when it is available (about 8x faster; a fleet's meter
    list is long): anything that path does not accept goes through ``yaml.safe_load`` and the
    checks below, so failures carry exactly their messages."""
    if CSafeLoader is not None:
        try:
            fast = load_yaml_c(text)
        except yaml.YAMLError:
            fast = None
        if isinstance(fast, dict):
            try:
                return ProjectSpec.model_validate({**fast, "base_dir": base_dir})
            except ValidationError:
                pass
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProjectSpecError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ProjectSpecError(f"{source}: expected a mapping at the top level")
    try:
        return ProjectSpec.model_validate({**raw, "base_dir": base_dir})
    except ValidationError as exc:
        raise ProjectSpecError(_format_errors(source, exc)) from None


def load_project(path: Path | str) -> ProjectSpec:
    """Read and validate a project YAML. Raises :class:`ProjectSpecError` naming the file and fields."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectSpecError(f"{path}: project file not found") from None
    except UnicodeDecodeError as exc:
        raise ProjectSpecError(f"{path}: not UTF-8 text ({exc})") from None
    return parse_project(text, source=str(path), base_dir=path.resolve().parent)
