"""Pipeline steps for monitored data other than electricity meters: measuring instruments and
device fleets (``docs/internal-interfaces.md``, "Generic monitored data").

The methodology says what it needs (``MonitoredSpec.source`` and ``.contract``); these steps
ingest it into the artifact store, apply that contract and hand the validated frame on under the
same artifact roles as the meter path (``validated``, ``quarantine``, ``validation_result``), so
calculation, report, package and replay work the same way for every methodology. Like
:mod:`mrv.pipeline`, each step is memoised through the lineage store and takes/returns digests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd

from mrv.artifacts import ArtifactRef
from mrv.contracts import ContractContext, load_contract
from mrv.contracts import validate_readings as run_contract
from mrv.errors import ContractBlocked, MethodologyError, ProjectSpecError
from mrv.ingest.series import read_device_files, read_device_registry, read_instrument_files
from mrv.methodology import Methodology, MonitoredSpec, SourceKind
from mrv.methodology.registry import get as get_methodology
from mrv.project import Calibration, ProjectSpec

if TYPE_CHECKING:
    from mrv.pipeline import RunContext

STEP_INGEST_INSTRUMENT = "ingest_instrument"
STEP_INGEST_DEVICES = "ingest_devices"


def primary_dataset(methodology: Methodology) -> MonitoredSpec:
    """The monitored dataset a run validates and calculates from.

    A run has one validated dataset (one contract); a methodology whose monitored values come from
    several source kinds is not supported yet, and says so here rather than half-running.
    """
    kinds = {m.source for m in methodology.monitored}
    if len(kinds) != 1:
        raise MethodologyError(
            f"{methodology.id}: monitored data comes from {sorted(kinds) or 'no'} source kinds; a run supports exactly one"
        )
    contracts = {m.contract for m in methodology.monitored}
    if len(contracts) != 1:
        raise MethodologyError(f"{methodology.id}: monitored data uses several contracts {sorted(contracts)}; a run supports one")
    return methodology.monitored[0]


def source_kind(spec: ProjectSpec) -> SourceKind:
    """The source kind the project's methodology reads, checked against the project file."""
    kind = primary_dataset(get_methodology(spec.methodology)).source
    ds = spec.data_sources
    present = {"meters": bool(ds.meters), "instruments": bool(ds.instruments), "devices": ds.devices is not None}
    if not present[kind]:
        raise ProjectSpecError(f"{spec.project.id}: methodology {spec.methodology} reads data_sources.{kind}, which the project file does not declare")
    return kind


def dataset_key(spec: ProjectSpec) -> str:
    """Key of the validated frame in ``MonitoringInput.datasets`` (meters keep their historical name)."""
    m = primary_dataset(get_methodology(spec.methodology))
    return m.contract if m.source == "meters" else m.name


def instrument_unit(spec: ProjectSpec, instrument_id: str) -> str:
    """The unit the methodology uses for the instrument's quantity (values are converted to it)."""
    methodology = get_methodology(spec.methodology)
    quantities: Mapping[str, str] = getattr(methodology, "instrument_quantities", {})
    inst = spec.instrument(instrument_id)
    if inst.quantity not in quantities:
        raise ProjectSpecError(
            f"instrument {inst.id}: quantity {inst.quantity!r} is not one {methodology.id} uses "
            f"(known: {', '.join(sorted(quantities)) or 'none'})"
        )
    return quantities[inst.quantity]


@dataclass(frozen=True)
class DeviceSource:
    """A registry row as a contract series source (id, interval, calibration windows)."""

    id: str
    interval_minutes: int
    calibrations: tuple[Calibration, ...]


def device_sources(spec: ProjectSpec, registry: pd.DataFrame) -> list[DeviceSource]:
    fleet = spec.data_sources.devices
    assert fleet is not None
    out = []
    for row in registry.itertuples(index=False):
        vf, vt = getattr(row, "calibration_valid_from"), getattr(row, "calibration_valid_to")
        cals = (Calibration(valid_from=vf, valid_to=vt),) if isinstance(vf, date) and isinstance(vt, date) else ()
        out.append(DeviceSource(str(row.device_id), fleet.interval_minutes, cals))
    return out


def registry_records(registry: pd.DataFrame) -> list[dict[str, Any]]:
    """Registry rows as plain JSON-able dicts (dates as ISO text), in registry order."""
    return json.loads(registry.to_json(orient="records", date_format="iso", default_handler=str))


def registry_from_records(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(list(records))
    for col in ("commissioned", "calibration_valid_from", "calibration_valid_to"):
        if col in df:
            df[col] = pd.to_datetime(df[col], errors="coerce").dt.date
    return df


def contract_values(spec: ProjectSpec) -> dict[str, Any]:
    """``${values....}`` for contracts: the project's methodology parameters by symbol."""
    params: dict[str, Any] = {}
    for symbol, raw in spec.parameters.items():
        params[symbol] = raw.get("value") if isinstance(raw, Mapping) else raw
    return {"param": params}


def dataset_context(spec: ProjectSpec, *, registry: pd.DataFrame | None = None) -> ContractContext:
    """The contract context for the project's primary dataset."""
    kind = source_kind(spec)
    if kind == "meters":
        from mrv.pipeline import contract_context

        return contract_context(spec)
    sources: Sequence[Any]
    if kind == "instruments":
        sources = spec.data_sources.instruments
    else:
        if registry is None:
            raise ProjectSpecError("device fleet: the registry is needed to validate device readings")
        sources = device_sources(spec, registry)
    return ContractContext(
        period_start=spec.monitoring_period.start_utc,
        period_end=spec.monitoring_period.end_utc,
        sources=sources,
        capacity_kw=spec.capacity_kw,
        values=contract_values(spec),
    )


# --------------------------------------------------------------------------- steps


def ingest_instrument(ctx: "RunContext", *, project_digest: str, instrument_id: str) -> dict[str, ArtifactRef]:
    """Copy one instrument's raw files into the store and normalise them to tidy UTC readings."""
    from mrv.derived import INSTRUMENT_READINGS
    from mrv.pipeline import _named_view, load_spec, put_readings, readings_document, run_step

    spec = load_spec(ctx, project_digest)
    inst = spec.instrument(instrument_id)
    unit = instrument_unit(spec, instrument_id)
    raw: dict[str, ArtifactRef] = {}
    for f in spec.source_files(inst.files, what=f"instrument {inst.id}"):
        ref = ctx.store.put_file(f)
        raw[f"raw/{inst.id}/{f.name}"] = ArtifactRef(ref.digest, ref.size, ref.media_type, f.name)

    def compute() -> dict[str, ArtifactRef]:
        with _named_view(ctx.store, list(raw.values())) as paths:
            df = read_instrument_files(paths, instrument=inst, unit=unit)
        # A derivation of the raw files (mrv.derived), not a second copy of the readings.
        doc = readings_document(INSTRUMENT_READINGS, raw, params, len(df))
        return {f"readings/{inst.id}": put_readings(ctx.store, doc, df, name=f"readings-{inst.id}.json")}

    params = {"instrument": inst.model_dump(mode="json"), "unit": unit}
    return run_step(ctx, name=f"{STEP_INGEST_INSTRUMENT}[{inst.id}]", parameters=params, inputs=raw, compute=compute)


def ingest_devices(ctx: "RunContext", *, project_digest: str) -> dict[str, ArtifactRef]:
    """Copy the fleet's registry and readings files in; normalise readings and registry."""
    from mrv.derived import DEVICE_READINGS
    from mrv.pipeline import _named_view, load_spec, put_json, put_readings, readings_document, run_step

    spec = load_spec(ctx, project_digest)
    fleet = spec.data_sources.devices
    if fleet is None:
        raise ProjectSpecError(f"{spec.project.id}: no data_sources.devices in the project file")
    reg_path = spec.resolve(fleet.registry)
    if not reg_path.is_file():
        raise ProjectSpecError(f"device registry {fleet.registry} not found (looked in {spec.base_dir})")
    reg_ref = ctx.store.put_file(reg_path)
    raw: dict[str, ArtifactRef] = {"raw/devices/registry/" + reg_path.name: ArtifactRef(reg_ref.digest, reg_ref.size, reg_ref.media_type, reg_path.name)}
    files = spec.source_files(fleet.files, what="device fleet")
    for f in files:
        ref = ctx.store.put_file(f)
        raw[f"raw/devices/{f.name}"] = ArtifactRef(ref.digest, ref.size, ref.media_type, f.name)
    data_refs = [r for role, r in sorted(raw.items()) if not role.startswith("raw/devices/registry/")]
    reg_key = "raw/devices/registry/" + reg_path.name

    def compute() -> dict[str, ArtifactRef]:
        with _named_view(ctx.store, [raw[reg_key]]) as (reg_file,):
            registry = read_device_registry(reg_file)
        with _named_view(ctx.store, data_refs) as paths:
            df = read_device_files(paths, fleet=fleet)
        data_raw = {role: r for role, r in sorted(raw.items()) if not role.startswith("raw/devices/registry/")}
        doc = readings_document(DEVICE_READINGS, data_raw, {"devices": fleet.model_dump(mode="json")}, len(df))
        return {
            "readings/devices": put_readings(ctx.store, doc, df, name="readings-devices.json"),
            "device_registry": put_json(ctx.store, registry_records(registry), name="device-registry.json"),
        }

    return run_step(ctx, name=STEP_INGEST_DEVICES, parameters={"devices": fleet.model_dump(mode="json")}, inputs=raw, compute=compute)


def validate_dataset(
    ctx: "RunContext", *, project_digest: str, readings: Mapping[str, str], registry: str | None = None
) -> dict[str, ArtifactRef]:
    """Apply the methodology's contract to instrument or device readings (same roles as meters)."""
    from mrv.contracts.runner import validate_series_frames
    from mrv.pipeline import _WORKERS, STEP_VALIDATE, put_frame, put_json, read_parquet_artifact, run_step, series_pieces, validation_document

    spec = load_spec_for(ctx, project_digest)
    methodology = get_methodology(spec.methodology)
    dataset = primary_dataset(methodology)
    contract = load_contract(dataset.contract)
    inputs = {f"readings/{k}": ctx.store.ref(d) for k, d in sorted(readings.items())}
    reg_frame = None
    if registry is not None:
        inputs["device_registry"] = ctx.store.ref(registry)
        reg_frame = registry_from_records(json.loads(ctx.store.read_bytes(registry)))
    cctx = dataset_context(spec, registry=reg_frame)
    params = {
        "contract": {"id": contract.id, "version": contract.version},
        "dataset": dataset.name,
        "period": [cctx.period_start.isoformat(), cctx.period_end.isoformat()],
        "values": contract_values(spec),
        "instruments": [i.model_dump(mode="json") for i in spec.data_sources.instruments],
        "engine": ctx.settings.contract_engine,
    }

    def compute() -> dict[str, ArtifactRef]:
        frames = [read_parquet_artifact(ctx.store, d, consume=True) for k, d in sorted(readings.items())]
        sources = [(f"readings/{k}", d, len(f)) for (k, d), f in zip(sorted(readings.items()), frames)]
        # Series by series in threads, merged into the outcome of the whole frame (see
        # validate_series_frames; it validates the whole frame when the contract needs it): a
        # device fleet comes as one frame, cut into its series (views, no copy).
        whole = frames[0] if len(frames) == 1 else None
        if whole is not None:
            pieces = series_pieces(whole, contract.key)
            # Each series costs ~50 ms of fixed (pure Python) work in the contract: worth it for
            # long series only; a fleet of short ones (devices: ~32 k rows each) stays whole.
            if len(pieces) > 1 and len(whole) >= _MIN_ROWS_PER_SERIES * len(pieces):
                frames = pieces
            del pieces
        outcome = validate_series_frames(
            frames, contract=contract, context=cctx, engine=ctx.settings.contract_engine, gx_row_limit=ctx.settings.gx_row_limit,
            max_workers=_WORKERS, consume=True, whole_frame=whole,
        )
        del whole
        result = put_json(ctx.store, validation_document(outcome), name="validation-result.json")
        if outcome.blocked:
            try:
                outcome.raise_if_blocked()
            except ContractBlocked as exc:
                exc.artifacts = {"validation_result": result}  # type: ignore[attr-defined]
                raise
        return {
            "validated": _put_validated(ctx.store, outcome, sources),
            "quarantine": put_frame(ctx.store, outcome.quarantine, name="quarantine.parquet"),
            "validation_result": result,
        }

    return run_step(ctx, name=STEP_VALIDATE, parameters=params, inputs=inputs, compute=compute)


_MIN_ROWS_PER_SERIES = 200_000  # validate_dataset: series shorter than this on average are validated as one frame


def _put_validated(store: Any, outcome: Any, sources: Any) -> ArtifactRef:
    """The validated artifact, as on the meter path: a row selection over the readings artifacts
    (:func:`mrv.pipeline.selection_of`); the valid frame stays cached for calculate."""
    from mrv.pipeline import _FRAMES, put_json, selection_of

    ref = put_json(store, selection_of(outcome, sources), name="readings-validated.json")
    _FRAMES.put(ref.digest, outcome.valid)
    return ref


def load_spec_for(ctx: "RunContext", project_digest: str) -> ProjectSpec:
    from mrv.pipeline import load_spec

    return load_spec(ctx, project_digest)
