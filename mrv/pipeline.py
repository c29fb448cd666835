"""The monitoring pipeline as plain functions: ingest -> validate -> calculate.

Each public step takes a :class:`RunContext` plus digests/paths and returns artifact references.
Steps are memoised through the lineage store: a step's cache key is the hash of its name, the code
version, its parameters and its input digests, so re-running after a crash reuses every step that
completed and recomputes only the rest. Outputs are deterministic bytes, so a resumed run produces
byte-identical results. Prefect flows in ``flows/`` only wire these functions together.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mrv.artifacts import ArtifactRef, LocalArtifactStore
from mrv.contracts import ContractContext, load_contract
from mrv.contracts import validate_readings as run_contract
from mrv.errors import ContractBlocked, IngestError, MRVError
from mrv.ingest.invoices import read_invoices
from mrv.ingest.meters import read_meter_files
from mrv.methodology import MonitoringInput
from mrv.methodology.registry import get as get_methodology
from mrv.lineage import LineageStore, code_version, make_emitter
from mrv.lineage.openlineage import build_run_event
from mrv.project import ProjectSpec, load_project, parse_project
from mrv.settings import MRVSettings
from mrv.workspace import Workspace

PARQUET = "application/vnd.apache.parquet"
JSON = "application/json"
METER_CONTRACT = "meter_readings"

# Step names, recorded in lineage and shown by `mrv lineage show`.
STEP_PROJECT = "register_project"
STEP_INGEST = "ingest_meter"
STEP_INGEST_XCHECK = "ingest_cross_check"
STEP_VALIDATE = "validate_readings"
STEP_CALCULATE = "calculate"


@dataclass(frozen=True)
class RunContext:
    """Everything a step needs, rebuilt cheaply from (settings, run_id) inside any worker."""

    workspace: Workspace
    store: LocalArtifactStore
    lineage: LineageStore
    settings: MRVSettings
    run_id: str
    project_id: str

    @classmethod
    def open(cls, settings: MRVSettings, *, run_id: str) -> "RunContext":
        ws = Workspace.from_settings(settings).ensure()
        lineage = LineageStore(ws.lineage_url)
        info = lineage.get_run(run_id)
        return cls(ws, LocalArtifactStore(ws.artifacts_dir), lineage, settings, run_id, info.project_id)


def open_workspace(settings: MRVSettings) -> tuple[Workspace, LocalArtifactStore, LineageStore]:
    ws = Workspace.from_settings(settings).ensure()
    lineage = LineageStore(ws.lineage_url)
    lineage.migrate()
    return ws, LocalArtifactStore(ws.artifacts_dir), lineage


def start_run(settings: MRVSettings, project_path: Path) -> tuple[str, ArtifactRef]:
    """Register the project file as an artifact and open a run for it."""
    spec = load_project(project_path)
    _, store, lineage = open_workspace(settings)
    ref = store.put_file(Path(project_path), media_type="application/yaml")
    cv = code_version()
    run_id = lineage.start_run(
        project_id=spec.project.id,
        methodology_id=spec.methodology,
        parameters={
            "project_file": str(Path(project_path).resolve()),
            "period": [spec.monitoring_period.start.isoformat(), spec.monitoring_period.end.isoformat()],
            "code_version": cv.package_version,
        },
        project_file_digest=ref.digest,
    )
    return run_id, ref


# --------------------------------------------------------------------------- step machinery


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def _cache_key(name: str, parameters: Mapping[str, Any], inputs: Mapping[str, ArtifactRef]) -> str:
    cv = code_version()
    payload = {
        "step": name,
        "code": [cv.package_version, cv.git_commit],
        "parameters": parameters,
        "inputs": {role: ref.digest for role, ref in sorted(inputs.items())},
    }
    return hashlib.sha256(_canonical(payload)).hexdigest()


def run_step(
    ctx: RunContext,
    *,
    name: str,
    parameters: Mapping[str, Any],
    inputs: Mapping[str, ArtifactRef],
    compute: Callable[[], Mapping[str, ArtifactRef]],
) -> dict[str, ArtifactRef]:
    """Run ``compute`` as a lineage-recorded step, or reuse a completed step with the same key."""
    key = _cache_key(name, parameters, inputs)
    cached = ctx.lineage.find_cached_step(name=name, cache_key=key)
    if cached is not None and all(ctx.store.exists(r.digest) for r in cached.outputs.values()):
        ctx.lineage.record_cached_step(ctx.run_id, name=name, parameters=dict(parameters), cache_key=key, reused=cached)
        return dict(cached.outputs)

    emitter = make_emitter(path=ctx.workspace.openlineage_path, url=ctx.workspace.openlineage_url)
    step_id = ctx.lineage.start_step(ctx.run_id, name=name, parameters=dict(parameters), cache_key=key)
    for role, ref in inputs.items():
        ctx.lineage.record_artifact(step_id, ref, role=role, direction="input")
    job = f"{ctx.project_id}.{name}"
    emitter.emit(build_run_event(event_type="START", run_id=step_id, parent_run_id=ctx.run_id, parent_job_name=ctx.project_id, job_name=job, inputs=_io(inputs), outputs=[]))
    try:
        outputs = dict(compute())
    except Exception as exc:
        # A failing step may still have produced evidence (e.g. the validation result of a
        # blocked contract): link it so the user can inspect why the run stopped.
        for role, ref in getattr(exc, "artifacts", {}).items():
            ctx.lineage.record_artifact(step_id, ref, role=role, direction="output")
        ctx.lineage.finish_step(step_id, status="failed", error=_error_text(exc))
        emitter.emit(build_run_event(event_type="FAIL", run_id=step_id, parent_run_id=ctx.run_id, parent_job_name=ctx.project_id, job_name=job, inputs=_io(inputs), outputs=[], error_message=_error_text(exc)))
        raise
    for role, ref in outputs.items():
        ctx.lineage.record_artifact(step_id, ref, role=role, direction="output")
    ctx.lineage.finish_step(step_id, status="completed")
    emitter.emit(build_run_event(event_type="COMPLETE", run_id=step_id, parent_run_id=ctx.run_id, parent_job_name=ctx.project_id, job_name=job, inputs=_io(inputs), outputs=_io(outputs)))
    return outputs


def _io(refs: Mapping[str, ArtifactRef]) -> list[tuple[str, ArtifactRef]]:
    return sorted(refs.items())


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, MRVError):
        return f"{type(exc).__name__}: {exc}"
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


# --------------------------------------------------------------------------- serialisation


def frame_to_parquet_bytes(df: pd.DataFrame) -> bytes:
    """Deterministic Parquet bytes (same frame + same library versions -> same bytes)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_statistics=True)
    return buf.getvalue()


def read_parquet_artifact(store: LocalArtifactStore, digest: str) -> pd.DataFrame:
    return pq.read_table(store.local_path(digest)).to_pandas()


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False, default=str).encode() + b"\n"


def put_frame(store: LocalArtifactStore, df: pd.DataFrame, *, name: str) -> ArtifactRef:
    return store.put_bytes(frame_to_parquet_bytes(df), media_type=PARQUET, name=name)


def put_json(store: LocalArtifactStore, obj: Any, *, name: str) -> ArtifactRef:
    return store.put_bytes(json_bytes(obj), media_type=JSON, name=name)


def load_spec(ctx: RunContext, project_digest: str) -> ProjectSpec:
    """The project spec exactly as registered for this run: parsed from the stored bytes, with
    relative paths resolved against the directory the project file was registered from."""
    info = ctx.lineage.get_run(ctx.run_id)
    original = Path(info.parameters["project_file"])
    text = ctx.store.read_bytes(project_digest).decode("utf-8")
    return parse_project(text, source=f"{original} ({project_digest})", base_dir=original.parent)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- the steps


@contextmanager
def _named_view(store: LocalArtifactStore, refs: Sequence[ArtifactRef]) -> Iterator[list[Path]]:
    """Blobs seen under their original names (readers pick the format by suffix and name files in
    errors), without copying: a temporary directory of symlinks to the read-only blobs."""
    with tempfile.TemporaryDirectory(prefix="mrv-view-") as tmp:
        paths = []
        for i, ref in enumerate(refs):
            d = Path(tmp) / f"{i:05d}"
            d.mkdir()
            p = d / (ref.original_name or ref.digest.split(":")[1])
            p.symlink_to(store.local_path(ref.digest))
            paths.append(p)
        yield paths


def ingest_meter(ctx: RunContext, *, project_digest: str, meter_id: str) -> dict[str, ArtifactRef]:
    """Copy a meter's raw files into the store and normalise them to tidy UTC readings."""
    spec = load_spec(ctx, project_digest)
    meter = spec.meter(meter_id)
    files = spec.meter_files(meter)
    raw: dict[str, ArtifactRef] = {}
    for f in files:
        ref = ctx.store.put_file(f)
        raw[f"raw/{meter.id}/{f.name}"] = ArtifactRef(ref.digest, ref.size, ref.media_type, f.name)

    def compute() -> dict[str, ArtifactRef]:
        with _named_view(ctx.store, list(raw.values())) as paths:
            df = read_meter_files(paths, meter=meter)
        return {f"readings/{meter.id}": put_frame(ctx.store, df, name=f"readings-{meter.id}.parquet")}

    return run_step(ctx, name=f"{STEP_INGEST}[{meter.id}]", parameters={"meter": meter.model_dump(mode="json")}, inputs=raw, compute=compute)


def ingest_cross_check(ctx: RunContext, *, project_digest: str, index: int) -> dict[str, ArtifactRef]:
    """Copy a cross-check file (e.g. sales invoices) in and normalise it."""
    spec = load_spec(ctx, project_digest)
    xc = spec.data_sources.cross_checks[index]
    path = spec.resolve(xc.file)
    if not path.is_file():
        raise IngestError(f"cross-check file {xc.file} not found (looked in {spec.base_dir})")
    ref = ctx.store.put_file(path)
    inputs = {f"raw/cross_check/{path.name}": ArtifactRef(ref.digest, ref.size, ref.media_type, path.name)}

    def compute() -> dict[str, ArtifactRef]:
        with _named_view(ctx.store, list(inputs.values())) as (p,):
            df = read_invoices(p, cross_check=xc, timezone=spec.monitoring_period.timezone)
        return {f"cross_check/{index}": put_frame(ctx.store, df, name=f"cross-check-{index}.parquet")}

    params = {"cross_check": xc.model_dump(mode="json"), "timezone": spec.monitoring_period.timezone}
    return run_step(ctx, name=f"{STEP_INGEST_XCHECK}[{index}]", parameters=params, inputs=inputs, compute=compute)


def contract_context(spec: ProjectSpec) -> ContractContext:
    return ContractContext(
        period_start=spec.monitoring_period.start_utc,
        period_end=spec.monitoring_period.end_utc,
        meters=spec.data_sources.meters,
        capacity_kw=spec.installed_capacity.kw,
    )


def validate_readings(ctx: RunContext, *, project_digest: str, readings: Mapping[str, str]) -> dict[str, ArtifactRef]:
    """Apply the meter-readings contract: valid rows, quarantine (with rule and reason), and the result."""
    spec = load_spec(ctx, project_digest)
    contract = load_contract(METER_CONTRACT)
    inputs = {f"readings/{m}": ctx.store.ref(d) for m, d in sorted(readings.items())}
    cctx = contract_context(spec)
    params = {
        "contract": {"id": contract.id, "version": contract.version},
        "period": [cctx.period_start.isoformat(), cctx.period_end.isoformat()],
        "capacity_kw": cctx.capacity_kw,
        "meters": [m.model_dump(mode="json") for m in spec.data_sources.meters],
        "engine": ctx.settings.contract_engine,
    }

    def compute() -> dict[str, ArtifactRef]:
        frames = [read_parquet_artifact(ctx.store, ref.digest) for _, ref in sorted(inputs.items())]
        df = concat_readings(frames)
        outcome = run_contract(
            df, contract=contract, context=cctx, engine=ctx.settings.contract_engine, gx_row_limit=ctx.settings.gx_row_limit
        )
        result = put_json(ctx.store, validation_document(outcome), name="validation-result.json")
        if outcome.blocked:
            try:
                outcome.raise_if_blocked()
            except ContractBlocked as exc:
                exc.artifacts = {"validation_result": result}  # type: ignore[attr-defined]
                raise
        return {
            "validated": put_frame(ctx.store, outcome.valid, name="readings-validated.parquet"),
            "quarantine": put_frame(ctx.store, outcome.quarantine, name="quarantine.parquet"),
            "validation_result": result,
        }

    return run_step(ctx, name=STEP_VALIDATE, parameters=params, inputs=inputs, compute=compute)


def concat_readings(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate per-meter frames keeping categorical columns categorical (plain ``pd.concat``
    falls back to per-row objects when the categories differ)."""
    if len(frames) == 1:
        return frames[0]
    cat_cols = [c for c in frames[0].columns if isinstance(frames[0][c].dtype, pd.CategoricalDtype)]
    for c in cat_cols:
        cats = sorted(set().union(*(f[c].cat.categories for f in frames)))
        frames = [f.assign(**{c: f[c].cat.set_categories(cats)}) for f in frames]
    return pd.concat(frames, ignore_index=True)


def validation_document(outcome: Any) -> dict[str, Any]:
    """The validation result artifact: contract id/version, engine, per-rule results, gaps, suite."""
    return {
        "contract": {"id": outcome.contract_id, "version": outcome.contract_version},
        "engine": outcome.engine,
        "summary": outcome.to_summary(),
        "gaps": outcome.gaps.to_dict(orient="records"),
        "expectation_suite": outcome.suite,
    }


def calculate(
    ctx: RunContext, *, project_digest: str, validated: str, cross_checks: Sequence[str] = ()
) -> dict[str, ArtifactRef]:
    """Run the project's methodology on validated data; the output holds results and the full trace."""
    spec = load_spec(ctx, project_digest)
    methodology = get_methodology(spec.methodology)
    inputs = {"validated": ctx.store.ref(validated)}
    inputs.update({f"cross_check/{i}": ctx.store.ref(d) for i, d in enumerate(cross_checks)})
    params = {
        "methodology": methodology.id,
        "parameters": spec.methodology_parameters(),
        "period": [spec.monitoring_period.start_utc.isoformat(), spec.monitoring_period.end_utc.isoformat()],
        "meters": [m.model_dump(mode="json") for m in spec.data_sources.meters],
        "capacity_kw": spec.installed_capacity.kw,
    }

    def compute() -> dict[str, ArtifactRef]:
        invoices = [read_parquet_artifact(ctx.store, d) for d in cross_checks]
        doc = calculation_document(spec, read_parquet_artifact(ctx.store, validated), invoices)
        return {"calculation": put_json(ctx.store, doc, name="calculation.json")}

    return run_step(ctx, name=STEP_CALCULATE, parameters=params, inputs=inputs, compute=compute)


def calculation_document(spec: ProjectSpec, validated: pd.DataFrame, invoices: Sequence[pd.DataFrame] = ()) -> dict[str, Any]:
    """Pure: the calculation artifact (results, parameters, treatments, trace) from validated data.

    Shared by the pipeline and by a verifier's replay, so both compute exactly the same thing.
    """
    methodology = get_methodology(spec.methodology)
    datasets: dict[str, pd.DataFrame] = {"meter_readings": validated}
    if invoices:
        datasets["invoices"] = pd.concat(list(invoices), ignore_index=True)
    data = MonitoringInput(
        start=spec.monitoring_period.start_utc,
        end=spec.monitoring_period.end_utc,
        datasets=datasets,
        sources={"meters": [m.model_dump(mode="json") for m in spec.data_sources.meters], "capacity_kw": spec.installed_capacity.kw},
    )
    result = methodology.run(raw_parameters=spec.methodology_parameters(), data=data)
    period = spec.monitoring_period
    return {
        "project_id": spec.project.id,
        "monitoring_period": {"start": period.start.isoformat(), "end": period.end.isoformat(), "timezone": period.timezone},
        **result.to_dict(),
    }


def finish_run(ctx: RunContext, *, calculation: str, validation_result: str, quarantine: str) -> dict[str, Any]:
    """Write the human-facing run summary under ``runs/<run_id>/`` and close the run."""
    calc = json.loads(ctx.store.read_bytes(calculation))
    validation = json.loads(ctx.store.read_bytes(validation_result))
    q = read_parquet_artifact(ctx.store, quarantine)
    out = ctx.workspace.run_dir(ctx.run_id)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "run_id": ctx.run_id,
        "project_id": ctx.project_id,
        "methodology_id": calc["methodology_id"],
        "monitoring_period": calc["monitoring_period"],
        "quantities": calc["quantities"],
        "issuable_tCO2e": calc["issuable_tCO2e"],
        "treatments": calc["treatments"],
        "contract": validation.get("summary", {}),
        "artifacts": {"calculation": calculation, "validation_result": validation_result, "quarantine": quarantine},
        "workspace": str(ctx.workspace.root),
    }
    _write_atomic(out / "summary.json", json_bytes(summary))
    _write_atomic(out / "calculation.json", ctx.store.read_bytes(calculation))
    _write_atomic(out / "quarantine.csv", q.to_csv(index=False).encode())
    ctx.lineage.finish_run(ctx.run_id, status="completed")
    return summary


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def run_local(settings: MRVSettings, project_path: Path, *, run_id: str | None = None, max_workers: int = 1) -> dict[str, Any]:
    """Run the same steps as the Prefect flow, in this process, without Prefect.

    For tests, benchmarks and embedding. ``max_workers > 1`` ingests meters in a thread pool.
    """
    from concurrent.futures import ThreadPoolExecutor

    if run_id is None:
        run_id, _ = start_run(settings, project_path)
    ctx = RunContext.open(settings, run_id=run_id)
    digest = ctx.lineage.get_run(run_id).project_file_digest
    spec = load_spec(ctx, digest)
    try:
        with ThreadPoolExecutor(max_workers=max_workers) as pool:
            futs = {m.id: pool.submit(ingest_meter, ctx, project_digest=digest, meter_id=m.id) for m in spec.data_sources.meters}
            readings = {m: f.result()[f"readings/{m}"].digest for m, f in futs.items()}
        xcs = [ingest_cross_check(ctx, project_digest=digest, index=i)[f"cross_check/{i}"].digest for i in range(len(spec.data_sources.cross_checks))]
        v = validate_readings(ctx, project_digest=digest, readings=readings)
        c = calculate(ctx, project_digest=digest, validated=v["validated"].digest, cross_checks=xcs)
        return finish_run(ctx, calculation=c["calculation"].digest, validation_result=v["validation_result"].digest, quarantine=v["quarantine"].digest)
    except BaseException:
        ctx.lineage.finish_run(run_id, status="failed")
        raise
