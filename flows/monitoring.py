"""Prefect flow for a sensor monitoring run. It only wires: every task calls one function in
:mod:`mrv.pipeline` and passes digests (strings), never frames.

Runs on Prefect's ephemeral local server by default. On a cluster, the same flow runs from a
deployment (``prefect.yaml``) against a Prefect server on PostgreSQL, with per-meter ingestion
fanned out by the configured task runner.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task, unmapped

from mrv import arr, pipeline, sources
from mrv.settings import MRVSettings


def _ctx(settings: dict[str, Any], run_id: str) -> pipeline.RunContext:
    return pipeline.RunContext.open(MRVSettings.model_validate(settings), run_id=run_id)


def _digests(refs: dict) -> dict[str, str]:
    return {role: ref.digest for role, ref in refs.items()}


@task(name="ingest-meter", task_run_name="ingest-{meter_id}")
def ingest_meter(settings: dict[str, Any], run_id: str, project_digest: str, meter_id: str) -> dict[str, str]:
    return _digests(pipeline.ingest_meter(_ctx(settings, run_id), project_digest=project_digest, meter_id=meter_id))


@task(name="ingest-cross-check")
def ingest_cross_check(settings: dict[str, Any], run_id: str, project_digest: str, index: int) -> dict[str, str]:
    return _digests(pipeline.ingest_cross_check(_ctx(settings, run_id), project_digest=project_digest, index=index))


@task(name="validate-readings")
def validate_readings(settings: dict[str, Any], run_id: str, project_digest: str, readings: dict[str, str]) -> dict[str, str]:
    return _digests(pipeline.validate_readings(_ctx(settings, run_id), project_digest=project_digest, readings=readings))


@task(name="calculate")
def calculate(settings: dict[str, Any], run_id: str, project_digest: str, validated: str, cross_checks: list[str]) -> dict[str, str]:
    ctx = _ctx(settings, run_id)
    return _digests(pipeline.calculate(ctx, project_digest=project_digest, validated=validated, cross_checks=cross_checks))


@task(name="ingest-instrument", task_run_name="ingest-{instrument_id}")
def ingest_instrument(settings: dict[str, Any], run_id: str, project_digest: str, instrument_id: str) -> dict[str, str]:
    return _digests(sources.ingest_instrument(_ctx(settings, run_id), project_digest=project_digest, instrument_id=instrument_id))


@task(name="ingest-devices")
def ingest_devices(settings: dict[str, Any], run_id: str, project_digest: str) -> dict[str, str]:
    return _digests(sources.ingest_devices(_ctx(settings, run_id), project_digest=project_digest))


@task(name="validate-dataset")
def validate_dataset(settings: dict[str, Any], run_id: str, project_digest: str, readings: dict[str, str], registry: str | None) -> dict[str, str]:
    ctx = _ctx(settings, run_id)
    return _digests(sources.validate_dataset(ctx, project_digest=project_digest, readings=readings, registry=registry))


@task(name="calculate-dataset")
def calculate_dataset(settings: dict[str, Any], run_id: str, project_digest: str, validated: str, registry: str | None) -> dict[str, str]:
    ctx = _ctx(settings, run_id)
    return _digests(pipeline.calculate(ctx, project_digest=project_digest, validated=validated, registry=registry))


@task(name="finish-run")
def finish_run(settings: dict[str, Any], run_id: str, calculation: str, validation_result: str, quarantine: str) -> dict[str, Any]:
    return pipeline.finish_run(_ctx(settings, run_id), calculation=calculation, validation_result=validation_result, quarantine=quarantine)


@flow(name="sensor-monitoring", flow_run_name="monitoring-{run_id}", log_prints=True)
def sensor_monitoring(settings: dict[str, Any], run_id: str, project_digest: str, meter_ids: list[str], n_cross_checks: int) -> dict[str, Any]:
    """ingest (per meter, in parallel) -> validate -> calculate -> summary."""
    ingested = ingest_meter.map(unmapped(settings), unmapped(run_id), unmapped(project_digest), meter_ids)
    xcs = [ingest_cross_check.submit(settings, run_id, project_digest, i) for i in range(n_cross_checks)]
    readings = {m: f.result()[f"readings/{m}"] for m, f in zip(meter_ids, ingested)}
    validated = validate_readings(settings, run_id, project_digest, readings)
    xc_digests = [f.result()[f"cross_check/{i}"] for i, f in enumerate(xcs)]
    calc = calculate(settings, run_id, project_digest, validated["validated"], xc_digests)
    return finish_run(settings, run_id, calc["calculation"], validated["validation_result"], validated["quarantine"])


@flow(name="source-monitoring", flow_run_name="monitoring-{run_id}", log_prints=True)
def source_monitoring(settings: dict[str, Any], run_id: str, project_digest: str, kind: str, instrument_ids: list[str]) -> dict[str, Any]:
    """Instruments (per instrument, in parallel) or a device fleet: ingest -> validate -> calculate -> summary."""
    registry: str | None = None
    if kind == "instruments":
        ingested = ingest_instrument.map(unmapped(settings), unmapped(run_id), unmapped(project_digest), instrument_ids)
        readings = {i: f.result()[f"readings/{i}"] for i, f in zip(instrument_ids, ingested)}
    else:
        out = ingest_devices(settings, run_id, project_digest)
        readings, registry = {"devices": out["readings/devices"]}, out["device_registry"]
    validated = validate_dataset(settings, run_id, project_digest, readings, registry)
    calc = calculate_dataset(settings, run_id, project_digest, validated["validated"], registry)
    return finish_run(settings, run_id, calc["calculation"], validated["validation_result"], validated["quarantine"])


@task(name="ingest-scenes")
def ingest_scenes(settings: dict[str, Any], run_id: str, project_digest: str) -> dict[str, str]:
    return _digests(arr.ingest_scenes(_ctx(settings, run_id), project_digest=project_digest))


@task(name="validate-scenes")
def validate_scenes(settings: dict[str, Any], run_id: str, project_digest: str, scenes: str, geometry: str) -> dict[str, str]:
    return _digests(arr.validate_scenes_step(_ctx(settings, run_id), project_digest=project_digest, scenes=scenes, geometry=geometry))


@task(name="plot-statistics")
def plot_statistics(settings: dict[str, Any], run_id: str, project_digest: str, scenes: str, geometry: str) -> dict[str, str]:
    return _digests(arr.plot_statistics(_ctx(settings, run_id), project_digest=project_digest, scenes=scenes, geometry=geometry))


@task(name="ingest-inventory")
def ingest_inventory(settings: dict[str, Any], run_id: str, project_digest: str, geometry: str) -> dict[str, str]:
    return _digests(arr.ingest_inventory(_ctx(settings, run_id), project_digest=project_digest, geometry=geometry))


@task(name="calculate-arr")
def calculate_arr(settings: dict[str, Any], run_id: str, project_digest: str, validated: str, inventory: str, geometry: str) -> dict[str, str]:
    ctx = _ctx(settings, run_id)
    return _digests(arr.calculate(ctx, project_digest=project_digest, validated=validated, inventory=inventory, geometry=geometry))


@flow(name="arr-monitoring", flow_run_name="monitoring-{run_id}", log_prints=True)
def arr_monitoring(settings: dict[str, Any], run_id: str, project_digest: str) -> dict[str, Any]:
    """Satellite ARR (VM0047): scenes -> raster contract -> plot statistics; field inventory ->
    tree contract; both -> calculate -> summary."""
    ing = ingest_scenes(settings, run_id, project_digest)
    scenes, geometry = ing["scenes"], ing["plot_geometry"]
    inv = ingest_inventory.submit(settings, run_id, project_digest, geometry)
    validate_scenes(settings, run_id, project_digest, scenes, geometry)
    stats = plot_statistics(settings, run_id, project_digest, scenes, geometry)
    calc = calculate_arr(settings, run_id, project_digest, stats["validated"], inv.result()["inventory"], geometry)
    return finish_run(settings, run_id, calc["calculation"], stats["validation_result"], stats["quarantine"])


def run_project_flow(settings: MRVSettings, *, run_id: str) -> dict[str, Any]:
    """Run :func:`sensor_monitoring` for a registered run (its project file as registered, not as it
    may have changed on disk since); marks the run failed if the flow fails."""
    ctx = pipeline.RunContext.open(settings, run_id=run_id)
    digest = ctx.lineage.get_run(run_id).project_file_digest
    spec = pipeline.load_spec(ctx, digest)
    try:
        if spec.satellite is not None:
            return arr_monitoring(settings.model_dump(mode="json"), run_id, digest)
        kind = sources.source_kind(spec)
        if kind != "meters":
            return source_monitoring(
                settings.model_dump(mode="json"), run_id, digest, kind, [i.id for i in spec.data_sources.instruments]
            )
        return sensor_monitoring(
            settings.model_dump(mode="json"),
            run_id,
            digest,
            [m.id for m in spec.data_sources.meters],
            len(spec.data_sources.cross_checks),
        )
    except BaseException:
        ctx.lineage.finish_run(run_id, status="failed")
        raise
