"""The monitoring pipeline as plain functions: ingest -> validate -> calculate.

Each public step takes a :class:`RunContext` plus digests/paths and returns artifact references.
Steps are memoised through the lineage store: a step's cache key is the hash of its name, the code
version, its parameters and its input digests, so re-running after a crash reuses every step that
completed and recomputes only the rest. Outputs are deterministic bytes, so a resumed run produces
byte-identical results. Prefect flows in ``flows/`` only wire these functions together.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mrv.artifacts import ArtifactRef, LocalArtifactStore
from mrv.contracts import ContractContext, load_contract
from mrv.contracts import validate_readings as run_contract  # noqa: F401
from mrv.contracts.runner import SeriesPart, ValidRows, merge_series_parts, series_mergeable, series_plan, validate_series_frames, validate_series_part
from mrv.derived import INSTRUMENT_READINGS, METER_READINGS, check_derivation, derivation_document, is_derivation
from mrv.errors import ArtifactError, ContractBlocked, ContractError, IngestError, MRVError
from mrv.frames import FramePieces, _concat_columnwise, _utc_array, concat_readings  # noqa: F401  (re-exported)
from mrv.ingest.invoices import read_invoices
from mrv.ingest.meters import read_meter_files
from mrv.methodology import MonitoringInput
from mrv.methodology.registry import get as get_methodology
from mrv.lineage import LineageStore, code_version, make_emitter
from mrv.lineage.openlineage import build_run_event
from mrv.project import ProjectSpec, load_project, parse_project
from mrv.selection import is_selection, materialize, selection_document
from mrv.settings import MRVSettings
from mrv.workspace import Workspace

PARQUET = "application/vnd.apache.parquet"
JSON = "application/json"
METER_CONTRACT = "meter_readings"
_WORKERS = max(2, min(8, os.cpu_count() or 2))  # threads for per-series work inside one step

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
    step_id = ctx.lineage.start_step(ctx.run_id, name=name, parameters=dict(parameters), cache_key=key,
                                     inputs=[(ref, role) for role, ref in inputs.items()])
    job = f"{ctx.project_id}.{name}"
    emitter.emit(build_run_event(event_type="START", run_id=step_id, parent_run_id=ctx.run_id, parent_job_name=ctx.project_id, job_name=job, inputs=_io(inputs), outputs=[]))
    try:
        outputs = dict(compute())
    except Exception as exc:
        # A failing step may still have produced evidence (e.g. the validation result of a
        # blocked contract): link it so the user can inspect why the run stopped.
        evidence = [(ref, role) for role, ref in getattr(exc, "artifacts", {}).items()]
        ctx.lineage.finish_step(step_id, status="failed", error=_error_text(exc), outputs=evidence)
        emitter.emit(build_run_event(event_type="FAIL", run_id=step_id, parent_run_id=ctx.run_id, parent_job_name=ctx.project_id, job_name=job, inputs=_io(inputs), outputs=[], error_message=_error_text(exc)))
        raise
    ctx.lineage.finish_step(step_id, status="completed", outputs=[(ref, role) for role, ref in outputs.items()])
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
    """Deterministic Parquet bytes (same frame + same library versions -> same bytes).

    LZ4 (not zstd): these are derived artifacts, rewritten on every run, where write speed matters
    more than size. Dictionary encoding only for text/categorical columns; numeric columns of
    fleet-size frames (timestamps, values, row numbers) are near-unique, so trying a dictionary
    for them only costs time before Parquet falls back to plain encoding.
    """
    table = frame_to_table(df)
    buf = io.BytesIO()
    pq.write_table(table, buf, **_parquet_options(table.schema))
    return buf.getvalue()


def _parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """The writer options of every derived Parquet artifact (see :func:`frame_to_parquet_bytes`)."""
    dict_cols = [
        f.name
        for f in schema
        if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]
    # Integer and timestamp columns (interval starts, row numbers) are near-regular sequences:
    # delta encoding stores them in a few bits per row, 4x smaller and faster than plain + LZ4.
    delta = {
        f.name: "DELTA_BINARY_PACKED"
        for f in schema
        if f.name not in dict_cols and (pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type))
    }
    # Min/max statistics for the numeric and time columns (row-group pruning by time or value);
    # not for the dictionary-encoded text columns, where computing them costs more than writing
    # the column (~1.5 s on 52 M rows) and nothing prunes on them.
    stats = [f.name for f in schema if f.name not in dict_cols]
    return {"compression": "lz4", "use_dictionary": dict_cols, "column_encoding": delta or None, "write_statistics": stats}


def series_pieces(df: pd.DataFrame, key: str) -> list[pd.DataFrame]:
    """``df`` cut into its series: one slice (a view) per contiguous block of ``key`` when every
    series forms exactly one block (the usual, series-ordered frame), else ``[df]``. A pure
    function of the frame (the validate steps hand the valid rows on as these pieces)."""
    if key not in df.columns or len(df) == 0:
        return [df]
    s = df[key]
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
    else:
        codes = pd.factorize(s, use_na_sentinel=True)[0]
    starts = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1]
    if len(starts) < 2 or len(np.unique(codes[starts])) != len(starts):
        return [df]
    stops = np.r_[starts[1:], len(codes)]
    return [df.iloc[a:b] for a, b in zip(starts.tolist(), stops.tolist())]


def frame_to_table(df: pd.DataFrame) -> pa.Table:
    """``pa.Table.from_pandas(df, preserve_index=False)``, built column by column without copies
    for the dtypes of tidy frames (numbers, booleans, UTC datetimes, categoricals of text): the
    same schema (pandas metadata included) and values, so the same Parquet bytes. Other dtypes
    (e.g. text columns) go through ``from_pandas``."""
    if not isinstance(df.index, pd.RangeIndex) or df.columns.has_duplicates or not all(isinstance(c, str) for c in df.columns):
        return pa.Table.from_pandas(df, preserve_index=False)
    arrays = []
    for name in df.columns:
        arr = _column_to_arrow(df[name])
        if arr is None:
            return pa.Table.from_pandas(df, preserve_index=False)
        arrays.append(arr)
    schema = pa.Schema.from_pandas(df.iloc[:0], preserve_index=False)
    try:
        table = pa.Table.from_arrays(arrays, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):  # pragma: no cover - a dtype mapped otherwise
        return pa.Table.from_pandas(df, preserve_index=False)
    return table


def _validity(missing: np.ndarray) -> tuple[pa.Buffer | None, int]:
    n_missing = int(np.count_nonzero(missing))
    if n_missing == 0:
        return None, 0
    return pa.py_buffer(np.packbits(~missing, bitorder="little")), n_missing


def _column_to_arrow(s: pd.Series) -> pa.Array | None:
    """One column as Arrow the way ``from_pandas`` converts it (NaN/NaT/-1 code -> null), or None."""
    dtype = s.dtype
    n = len(s)
    if isinstance(dtype, np.dtype) and dtype.kind == "f" and dtype.itemsize == 8:
        values = np.ascontiguousarray(s.to_numpy())
        validity, nulls = _validity(np.isnan(values))
        return pa.Array.from_buffers(pa.float64(), n, [validity, pa.py_buffer(values)], null_count=nulls)
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return pa.array(np.ascontiguousarray(s.to_numpy()))
    if isinstance(dtype, pd.DatetimeTZDtype):
        raw = np.ascontiguousarray(s.array._ndarray).view(np.int64)
        validity, nulls = _validity(raw == np.iinfo(np.int64).min)
        return pa.Array.from_buffers(pa.timestamp(dtype.unit, tz=str(dtype.tz)), n, [validity, pa.py_buffer(raw)], null_count=nulls)
    if isinstance(dtype, pd.CategoricalDtype) and not dtype.ordered:
        cats = dtype.categories
        if len(cats) and not all(isinstance(c, str) for c in cats):
            return None
        codes = np.ascontiguousarray(s.cat.codes.to_numpy())
        validity, nulls = _validity(codes < 0)
        index_type = pa.from_numpy_dtype(codes.dtype)
        indices = pa.Array.from_buffers(index_type, n, [validity, pa.py_buffer(codes)], null_count=nulls)
        dictionary = pa.array(list(cats), type=pa.large_string())
        return pa.DictionaryArray.from_arrays(indices, dictionary)
    return None


class _FrameCache:
    """Decoded frames of Parquet artifacts written in this process, keyed by digest.

    Active only inside :func:`run_local` (reference-counted, cleared when the last run ends): a
    step that writes a frame leaves it here and the next step reads it without decoding the
    Parquet again. Content addressing makes this safe (same digest -> same bytes -> an equal
    frame) and pandas copy-on-write keeps a consumer from changing a cached frame. The artifacts
    are still written; a step reused from an earlier run simply misses the cache and reads them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._frames: dict[str, pd.DataFrame] = {}

    @contextmanager
    def activate(self) -> Iterator[None]:
        with self._lock:
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    self._frames.clear()

    def put(self, digest: str, df: pd.DataFrame) -> None:
        with self._lock:
            if self._active:
                self._frames[digest] = df

    def get(self, digest: str, *, pop: bool = False) -> pd.DataFrame | None:
        with self._lock:
            return self._frames.pop(digest, None) if pop else self._frames.get(digest)


_FRAMES = _FrameCache()


def read_parquet_artifact(store: LocalArtifactStore, digest: str, *, consume: bool = False) -> pd.DataFrame:
    """The frame of a Parquet artifact (from the in-run cache when it was written in this run;
    ``consume`` drops it from the cache, for a reader known to be the last one)."""
    cached = _FRAMES.get(digest, pop=consume)
    if cached is not None:
        return cached
    if store.ref(digest).media_type.split(";")[0].strip() == JSON:
        return _derive(store, digest)
    return pq.read_table(store.local_path(digest)).to_pandas()


def _derive(store: LocalArtifactStore, digest: str) -> pd.DataFrame:
    """Recompute the frame a derivation artifact (:mod:`mrv.derived`) stands for, from its inputs."""
    from mrv.project import Meter

    doc = json.loads(store.read_bytes(digest))
    what = f"artifact {digest}"
    if not is_derivation(doc):
        raise ArtifactError(f"{what} is JSON but not a derived frame")
    check_derivation(doc, what=what)
    installed = code_version().package_version
    if doc.get("code_version") != installed:
        # Another reader version may cut or order the rows differently, and row selections over
        # this frame would then pick other rows: recompute only with the code that recorded it.
        raise ArtifactError(
            f"{what}: derived by open-dmrv {doc.get('code_version')}, this is {installed}; install that version to read it, "
            "or re-run the monitoring with this one"
        )
    params = doc["parameters"]
    if doc["function"] == METER_READINGS:
        paths = [store.local_path(i["sha256"]) for i in doc["inputs"]]
        df = read_meter_files(paths, meter=Meter.model_validate(params["meter"]), names=[i["name"] for i in doc["inputs"]])
    else:
        from mrv.ingest.series import read_device_files, read_instrument_files
        from mrv.project import DeviceFleet, Instrument

        refs = []
        for i in doc["inputs"]:
            stored = store.ref(i["sha256"])
            refs.append(ArtifactRef(stored.digest, stored.size, stored.media_type, i["name"]))
        with _named_view(store, refs) as paths:
            if doc["function"] == INSTRUMENT_READINGS:
                df = read_instrument_files(paths, instrument=Instrument.model_validate(params["instrument"]), unit=params["unit"])
            else:
                df = read_device_files(paths, fleet=DeviceFleet.model_validate(params["devices"]))
    if len(df) != doc["rows"]:
        raise ArtifactError(f"{what}: recomputing it gave {len(df)} rows, it records {doc['rows']} (other code, or other inputs?)")
    return df


def readings_document(function: str, raw: Mapping[str, ArtifactRef], parameters: Mapping[str, Any], rows: int) -> dict[str, Any]:
    """A readings artifact: the derivation of a reader (``function``, :mod:`mrv.derived`) over
    raw files (``role -> ref``, read in that order) with ``parameters`` (JSON form). Pure; replay
    rebuilds it from the package."""
    return derivation_document(
        function=function, code_version=code_version().package_version, inputs=raw_inputs(raw), parameters=parameters, rows=rows
    )


def raw_inputs(raw: Mapping[str, ArtifactRef]) -> list[tuple[str, str, str]]:
    """``(role, digest, file name)`` of raw inputs, in order: the name a reader sees for each blob
    (its original name, else the last part of its role), as a derivation records it."""
    return [(role, ref.digest, ref.original_name or role.rsplit("/", 1)[-1]) for role, ref in raw.items()]


def meter_readings_document(meter: Any, raw: Mapping[str, ArtifactRef], rows: int) -> dict[str, Any]:
    """The readings artifact of a meter (:func:`readings_document` of :func:`read_meter_files`)."""
    return readings_document(METER_READINGS, raw, {"meter": meter.model_dump(mode="json")}, rows)


def put_readings(store: LocalArtifactStore, doc: Mapping[str, Any], df: pd.DataFrame, *, name: str) -> ArtifactRef:
    """Store a readings derivation; the frame it stands for stays cached in this process."""
    ref = put_json(store, doc, name=name)
    _FRAMES.put(ref.digest, df)
    return ref


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False, default=str).encode() + b"\n"


def put_frame(store: LocalArtifactStore, df: pd.DataFrame, *, name: str) -> ArtifactRef:
    ref = store.put_bytes(frame_to_parquet_bytes(df), media_type=PARQUET, name=name)
    _FRAMES.put(ref.digest, df)
    return ref


def put_json(store: LocalArtifactStore, obj: Any, *, name: str) -> ArtifactRef:
    return store.put_bytes(json_bytes(obj), media_type=JSON, name=name)


def load_spec(ctx: RunContext, project_digest: str) -> ProjectSpec:
    """The project spec exactly as registered for this run: parsed from the stored bytes, with
    relative paths resolved against the directory the project file was registered from."""
    lookup = (ctx.lineage.url, ctx.run_id)
    with _SPECS_LOCK:
        original = _PROJECT_FILES.get(lookup)
    if original is None:  # a run's parameters never change: read them once per process
        original = Path(ctx.lineage.get_run(ctx.run_id).parameters["project_file"])
        with _SPECS_LOCK:
            _PROJECT_FILES[lookup] = original
            while len(_PROJECT_FILES) > 256:
                _PROJECT_FILES.pop(next(iter(_PROJECT_FILES)))
    key = (project_digest, str(original))
    with _SPECS_LOCK:
        spec = _SPECS.get(key)
    if spec is None:
        # Parsed once per process: every per-meter step used to re-parse (and re-validate) the
        # whole project file, O(meters^2) pure Python on a fleet. The bytes are content-addressed,
        # so the parse of the same digest from the same location is the same spec.
        text = ctx.store.read_bytes(project_digest).decode("utf-8")
        spec = parse_project(text, source=f"{original} ({project_digest})", base_dir=original.parent)
        with _SPECS_LOCK:
            _SPECS[key] = spec
            while len(_SPECS) > 32:
                _SPECS.pop(next(iter(_SPECS)))
    return spec


_SPECS: dict[tuple[str, str], ProjectSpec] = {}
_PROJECT_FILES: dict[tuple[str, str], Path] = {}
_SPECS_LOCK = threading.Lock()


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- the steps


@contextmanager
def _named_view(store: LocalArtifactStore, refs: Sequence[ArtifactRef]) -> Iterator[list[Path]]:
    """Blobs seen under their original names (readers pick the format by suffix and name files in
    errors), without copying: a temporary directory of symlinks to the read-only blobs."""
    tmp = Path(tempfile.mkdtemp(prefix="mrv-view-"))
    made: list[Path] = []
    try:
        for i, ref in enumerate(refs):
            d = tmp / f"{i:05d}"
            d.mkdir()
            made.append(d)
            p = d / (ref.original_name or ref.digest.split(":")[1])
            p.symlink_to(store.local_path(ref.digest))
            made.append(p)
        yield [p for p in made if p.parent != tmp]
    finally:
        # Only what was made here: symlinks and their directories (cheaper than a tree walk).
        for p in reversed(made):
            try:
                p.rmdir() if p.parent == tmp else p.unlink()
            except OSError:
                pass
        try:
            tmp.rmdir()
        except OSError:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


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
        inputs = raw_inputs(raw)  # read under the names the derivation records
        df = read_meter_files([ctx.store.local_path(d) for _, d, _ in inputs], meter=meter, names=[n for _, _, n in inputs])
        # The readings are a derivation of the raw files (mrv.derived), not a second copy: the
        # frame stays cached for the validate step and is recomputed from the raw files elsewhere.
        ref = put_readings(ctx.store, meter_readings_document(meter, raw, len(df)), df, name=f"readings-{meter.id}.json")
        return {f"readings/{meter.id}": ref}

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
    """The meter-readings contract's run facts: the period, the meters as series, the capacity."""
    return ContractContext(
        period_start=spec.monitoring_period.start_utc,
        period_end=spec.monitoring_period.end_utc,
        sources=spec.data_sources.meters,
        capacity_kw=spec.capacity_kw,  # None when the project states none: only rules using it then fail
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
        ordered = sorted(inputs.items())
        ahead = _SERIES.take(ctx.run_id, project_digest, [ref.digest for _, ref in ordered])
        merged = _merge_ahead(ctx, contract, cctx, get_methodology(spec.methodology), ahead) if ahead is not None else None
        if merged is not None:  # each meter validated (and treated) as it was read: run_local
            outcome, valid_rows = merged
            sources = [(role, ref.digest, a.part.outcome.input_rows) for (role, ref), a in zip(ordered, ahead)]  # type: ignore[union-attr, arg-type]
        else:
            frames = [read_parquet_artifact(ctx.store, ref.digest, consume=True) for _, ref in ordered]
            sources = [(role, ref.digest, len(f)) for (role, ref), f in zip(ordered, frames)]
            # One frame per meter: validated meter by meter in threads and merged (the same outcome as
            # the contract on their concatenation, without building it: see validate_series_frames).
            outcome = validate_series_frames(
                frames, contract=contract, context=cctx, engine=ctx.settings.contract_engine, gx_row_limit=ctx.settings.gx_row_limit,
                max_workers=_WORKERS, consume=True, concat_valid=False,
            )
            valid_rows = None
        del ahead
        if outcome.blocked:
            result = put_json(ctx.store, validation_document(outcome), name="validation-result.json")
            try:
                outcome.raise_if_blocked()
            except ContractBlocked as exc:
                exc.artifacts = {"validation_result": result}  # type: ignore[attr-defined]
                raise
        # The valid rows are the readings the contract kept, plus calibration_valid: stored as a
        # row selection over the readings artifacts (mrv.selection), not as a second copy.
        if valid_rows is None:
            valid_rows = outcome.valid
            if isinstance(valid_rows, ValidRows):
                valid_rows = None  # the rows were let go: calculate reads them from the selection
            elif not isinstance(valid_rows, FramePieces):
                pieces = series_pieces(valid_rows, outcome.key)
                valid_rows = FramePieces(pieces) if len(pieces) > 1 else valid_rows
        # Inside run_local the calculation that follows is a pure function of the valid rows held
        # here (or of their per-series treatments): start it now, so it overlaps the writing of the quarantine.
        ahead = _calculate_ahead(ctx, project_digest, valid_rows) if valid_rows is not None else None
        with ThreadPoolExecutor(max_workers=1) as pool:
            quarantine = pool.submit(put_frame, ctx.store, outcome.quarantine, name="quarantine.parquet")
            selection = selection_of(outcome, sources)
            valid = put_json(ctx.store, selection, name="readings-validated.json")
            result = put_json(ctx.store, validation_document(outcome), name="validation-result.json")
            out = {"validated": valid, "quarantine": quarantine.result(), "validation_result": result}
        if ahead is not None:
            _AHEAD.put(ctx.run_id, project_digest, out["validated"].digest, *ahead)
        return out

    return run_step(ctx, name=STEP_VALIDATE, parameters=params, inputs=inputs, compute=compute)


def selection_of(outcome: Any, sources: Sequence[tuple[str, str, int]]) -> dict[str, Any]:
    """The validated artifact of a contract outcome over ``sources`` (``(role, digest, rows)`` of
    each input, in the order validated): a row selection (:mod:`mrv.selection`). Pure; replay
    recomputes it from its own outcome."""
    if outcome.kept is None:
        raise ContractError("the contract outcome does not say which input rows it kept")
    valid, kept = outcome.valid, outcome.kept
    if isinstance(kept, tuple) and isinstance(valid, ValidRows) and len(kept) == len(valid.calibration_valid) == len(sources):
        # Per input already (merged per-series outcomes): no fleet-size concatenation and split.
        return selection_document(key=outcome.key, inputs=sources, kept=kept, calibration_valid=list(valid.calibration_valid))
    if isinstance(valid, ValidRows):
        flags = valid.flags
    else:
        parts = list(valid) if isinstance(valid, FramePieces) else [valid]
        flags = np.concatenate([p["calibration_valid"].to_numpy(dtype=bool) for p in parts]) if parts else np.zeros(0, bool)
    kept = np.concatenate(kept) if isinstance(kept, tuple) else kept
    offsets = np.cumsum([0] + [n for _, _, n in sources])
    counts = [int(np.count_nonzero(kept[a:b])) for a, b in zip(offsets[:-1], offsets[1:])]
    per_input = np.split(flags, np.cumsum(counts)[:-1]) if sources else []
    return selection_document(key=outcome.key, inputs=sources, kept=kept, calibration_valid=per_input)


def read_validated(store: LocalArtifactStore, digest: str) -> pd.DataFrame | FramePieces:
    """The valid rows of a validated artifact: a row selection over readings artifacts (the meter
    path; also instruments and device fleets), materialised per input, or a Parquet file."""
    cached = _FRAMES.get(digest)  # the valid rows the validate step of this process held
    if cached is not None:
        return cached
    if store.ref(digest).media_type.split(";")[0].strip() != JSON:
        return read_parquet_artifact(store, digest)
    doc = json.loads(store.read_bytes(digest))
    if not is_selection(doc):  # e.g. a readings derivation
        return read_parquet_artifact(store, digest)
    pieces = materialize(doc, lambda d: read_parquet_artifact(store, d))
    return FramePieces(pieces) if len(pieces) != 1 else pieces[0]


@dataclass
class _SeriesWork:
    """One meter's readings as :func:`_ingest_validate_treat` left them: its contract outcome
    (``None``: it must be validated with the others) and its methodology treatment (``None``: the
    calculation needs its rows)."""

    part: SeriesPart | None
    treated: Any = None


class _SeriesAhead:
    """Per-meter contract outcomes and treatments computed inside :func:`run_local` as each meter
    is read, keyed by (run, project, readings digest).

    ``validate_readings`` merges them when every input has one and the merge decides the
    outcome, exactly as :func:`validate_series_frames` would (same compiled contract, same
    per-series function, same merge); anything else validates the readings as usual. So the
    fleet's rows are never held together: each meter's frame is read, judged, treated and let go
    while it is in cache, and the memory is reused by the next one instead of being fresh pages.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str, str], _SeriesWork] = {}

    def put(self, run_id: str, project_digest: str, readings: str, work: _SeriesWork) -> None:
        with self._lock:
            self._items[(run_id, project_digest, readings)] = work

    def take(self, run_id: str, project_digest: str, readings: Sequence[str]) -> list[_SeriesWork] | None:
        """The work for each of ``readings`` (in order), or ``None`` if any is missing (all are dropped)."""
        with self._lock:
            got = [self._items.pop((run_id, project_digest, d), None) for d in readings]
        return None if any(w is None for w in got) else got  # type: ignore[return-value]

    def forget(self, run_id: str) -> None:
        with self._lock:
            for k in [k for k in self._items if k[0] == run_id]:
                self._items.pop(k)


_SERIES = _SeriesAhead()


@dataclass
class _SeriesPlan:
    """What :func:`_ingest_validate_treat` needs, shared by the meters of one run."""

    contract: Any
    context: ContractContext
    compiled: Any
    methodology: Any
    sources: dict[str, Any]
    keep_tables: bool  # an invoice cross-check follows: keep each meter's interval table
    keep_frames_up_to: int  # rows: below the GX row limit the validate step may use GX on the frames
    rows_seen: int = 0
    lock: threading.Lock = dataclass_field(default_factory=threading.Lock)


def _series_plan_for(ctx: RunContext, spec: ProjectSpec, *, cross_checks: Sequence[str]) -> _SeriesPlan | None:
    engine = ctx.settings.contract_engine
    meters = spec.data_sources.meters
    if engine == "gx" or len(meters) < 2:
        return None  # validated as a whole (validate_series_frames)
    contract = load_contract(METER_CONTRACT)
    cctx = contract_context(spec)
    # Rows are not known yet: plan as for native; the validate step checks the engine on the total.
    compiled = series_plan(contract, context=cctx, engine="native", rows=0, gx_row_limit=0, frames=len(meters))
    if compiled is None:
        return None
    return _SeriesPlan(
        contract=contract, context=cctx, compiled=compiled, methodology=get_methodology(spec.methodology),
        sources=calculation_sources(spec), keep_tables=bool(cross_checks),
        keep_frames_up_to=ctx.settings.gx_row_limit if engine == "auto" else -1,
    )


def _ingest_validate_treat(ctx: RunContext, project_digest: str, meter_id: str, plan: _SeriesPlan | None) -> dict[str, ArtifactRef]:
    """:func:`ingest_meter`, then (inside run_local) the meter's contract outcome and treatment
    while its frame is at hand (:class:`_SeriesAhead`)."""
    out = ingest_meter(ctx, project_digest=project_digest, meter_id=meter_id)
    if plan is None:
        return out
    digest = out[f"readings/{meter_id}"].digest
    frame = _FRAMES.get(digest)
    if frame is None:  # a step reused from an earlier run: the validate step reads the readings
        return out
    with plan.lock:
        plan.rows_seen += len(frame)
        keep = plan.rows_seen <= plan.keep_frames_up_to
    if not keep:
        _FRAMES.get(digest, pop=True)
    spec = load_spec(ctx, project_digest)
    try:
        part = validate_series_part(frame, contract=plan.contract, context=plan.context, compiled=plan.compiled)
    except MRVError:
        part = None  # the validate step validates all readings together and reports it
    del frame
    work = _SeriesWork(part)
    if part is not None and part.valid_rows:
        try:
            work.treated = plan.methodology.treat_series(
                part.outcome.valid, sources=plan.sources, start=spec.monitoring_period.start_utc,
                end=spec.monitoring_period.end_utc, keep_tables=plan.keep_tables,
            )
        except MRVError:
            work.treated = None  # calculate computes it from the valid rows and reports it
        if work.treated is not None:
            work.part = part.released()
    _SERIES.put(ctx.run_id, project_digest, digest, work)
    return out


def _merge_ahead(
    ctx: RunContext, contract: Any, cctx: ContractContext, methodology: Any, ahead: list[_SeriesWork]
) -> tuple[Any, Any] | None:
    """The validate step's outcome from the per-meter work of run_local, and what the calculation
    reads (the combined treatments, or the valid frames); ``None`` when validate_series_frames
    would not have merged per-series outcomes (then the readings are validated as usual)."""
    parts = [w.part for w in ahead]
    if any(p is None for p in parts):
        return None
    rows = sum(p.outcome.input_rows for p in parts)  # type: ignore[union-attr]
    compiled = series_plan(contract, context=cctx, engine=ctx.settings.contract_engine, rows=rows,
                           gx_row_limit=ctx.settings.gx_row_limit, frames=len(parts))
    if compiled is None or not series_mergeable(parts, cctx):  # type: ignore[arg-type]
        return None
    treated = [w.treated for w in ahead]
    outcome = merge_series_parts(parts, contract=contract, context=cctx, compiled=compiled, concat_valid=False)  # type: ignore[arg-type]
    if all(t is not None for t in treated):
        return outcome, methodology.combine_series(treated)
    return outcome, None


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
    ctx: RunContext, *, project_digest: str, validated: str, cross_checks: Sequence[str] = (), registry: str | None = None
) -> dict[str, ArtifactRef]:
    """Run the project's methodology on validated data; the output holds results and the full trace.

    ``registry``: the device-registry artifact, for methodologies reading a device fleet.
    """
    spec = load_spec(ctx, project_digest)
    methodology = get_methodology(spec.methodology)
    inputs = {"validated": ctx.store.ref(validated)}
    inputs.update({f"cross_check/{i}": ctx.store.ref(d) for i, d in enumerate(cross_checks)})
    if registry is not None:
        inputs["device_registry"] = ctx.store.ref(registry)
    params = {
        "methodology": methodology.id,
        "parameters": methodology_parameters(spec),
        "period": [spec.monitoring_period.start_utc.isoformat(), spec.monitoring_period.end_utc.isoformat()],
        "meters": [m.model_dump(mode="json") for m in spec.data_sources.meters],
        "capacity_kw": spec.capacity_kw,
    }
    if spec.data_sources.instruments:
        params["instruments"] = [i.model_dump(mode="json") for i in spec.data_sources.instruments]

    ahead = _AHEAD.take(ctx.run_id, project_digest, validated, tuple(cross_checks))

    def compute() -> dict[str, ArtifactRef]:
        if ahead is not None:  # started by validate_readings on the same frame and inputs
            doc = ahead.result()
        else:
            invoices = [read_parquet_artifact(ctx.store, d) for d in cross_checks]
            records = None if registry is None else json.loads(ctx.store.read_bytes(registry))
            doc = calculation_document(spec, read_validated(ctx.store, validated), invoices, registry=records)
        return {"calculation": put_json(ctx.store, doc, name="calculation.json")}

    return run_step(ctx, name=STEP_CALCULATE, parameters=params, inputs=inputs, compute=compute)


class _CalculateAhead:
    """Calculations started early, inside :func:`run_local` only.

    ``run_local`` announces (per run) the cross-check artifacts its calculate step will get;
    ``validate_readings`` then starts :func:`calculation_document` on its in-memory valid frame
    and files the future under (run, project, validated digest, cross-checks). ``calculate`` uses
    it only when all four match its own inputs, so the document is exactly the one it would have
    computed (same pure function, same spec, an equal frame); otherwise it computes as usual. An
    error in the early computation surfaces from ``calculate``, as it would have.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._planned: dict[str, tuple[str, ...]] = {}
        self._futures: dict[tuple[str, str, str, tuple[str, ...]], Future[dict[str, Any]]] = {}

    def plan(self, run_id: str, cross_checks: Sequence[str]) -> None:
        with self._lock:
            self._planned[run_id] = tuple(cross_checks)

    def planned(self, run_id: str) -> tuple[str, ...] | None:
        with self._lock:
            return self._planned.get(run_id)

    def put(self, run_id: str, project_digest: str, validated: str, cross_checks: tuple[str, ...], fut: Future[dict[str, Any]]) -> None:
        with self._lock:
            self._futures[(run_id, project_digest, validated, cross_checks)] = fut

    def take(self, run_id: str, project_digest: str, validated: str, cross_checks: tuple[str, ...]) -> Future[dict[str, Any]] | None:
        with self._lock:
            return self._futures.pop((run_id, project_digest, validated, cross_checks), None)

    def forget(self, run_id: str) -> None:
        with self._lock:
            self._planned.pop(run_id, None)
            for k in [k for k in self._futures if k[0] == run_id]:
                self._futures.pop(k)


_AHEAD = _CalculateAhead()


def _calculate_ahead(ctx: RunContext, project_digest: str, valid: pd.DataFrame | FramePieces) -> tuple[tuple[str, ...], Future[dict[str, Any]]] | None:
    cross_checks = _AHEAD.planned(ctx.run_id)
    if cross_checks is None:
        return None
    spec = load_spec(ctx, project_digest)
    invoices = [read_parquet_artifact(ctx.store, d) for d in cross_checks]
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mrv-calculate-ahead")
    fut = pool.submit(calculation_document, spec, valid, invoices)
    pool.shutdown(wait=False)
    return cross_checks, fut


def methodology_parameters(spec: ProjectSpec) -> dict[str, Any]:
    """The project's raw parameters for its methodology (``project_type`` only where declared)."""
    methodology = get_methodology(spec.methodology)
    return spec.methodology_parameters(accepts={p.symbol for p in methodology.parameters})


def calculation_document(
    spec: ProjectSpec,
    validated: pd.DataFrame | FramePieces,
    invoices: Sequence[pd.DataFrame] = (),
    *,
    registry: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Pure: the calculation artifact (results, parameters, treatments, trace) from validated data.

    Shared by the pipeline and by a verifier's replay, so both compute exactly the same thing.
    ``registry``: device-registry records (JSON form) for methodologies reading a device fleet.
    ``validated`` may be :class:`FramePieces` (the valid rows per series): methodologies that
    aggregate per series take them as they are (ACM0002); others get their concatenation.
    """
    from mrv.sources import dataset_key

    methodology = get_methodology(spec.methodology)
    if isinstance(validated, FramePieces) and not _takes_pieces(methodology):
        validated = validated.concat()
    datasets: dict[str, pd.DataFrame] = {dataset_key(spec): validated}
    if invoices:
        datasets["invoices"] = pd.concat(list(invoices), ignore_index=True)
    sources = calculation_sources(spec)
    if registry is not None:
        sources["devices"] = list(registry)
    data = MonitoringInput(
        start=spec.monitoring_period.start_utc,
        end=spec.monitoring_period.end_utc,
        datasets=datasets,
        sources=sources,
    )
    result = methodology.run(raw_parameters=methodology_parameters(spec), data=data)
    period = spec.monitoring_period
    return {
        "project_id": spec.project.id,
        "monitoring_period": {"start": period.start.isoformat(), "end": period.end.isoformat(), "timezone": period.timezone},
        **result.to_dict(),
    }


def calculation_sources(spec: ProjectSpec) -> dict[str, Any]:
    """The source metadata a methodology reads (:attr:`MonitoringInput.sources`), but the device registry."""
    sources: dict[str, Any] = {"meters": [m.model_dump(mode="json") for m in spec.data_sources.meters], "capacity_kw": spec.capacity_kw}
    if spec.data_sources.instruments:
        sources["instruments"] = [i.model_dump(mode="json") for i in spec.data_sources.instruments]
    if spec.data_sources.devices is not None:
        sources["device_interval_minutes"] = spec.data_sources.devices.interval_minutes
    return sources


def _takes_pieces(methodology: Any) -> bool:
    """Whether a methodology's aggregation accepts :class:`FramePieces` for its dataset."""
    return bool(getattr(methodology, "accepts_frame_pieces", False))


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


def _warm_units() -> None:
    try:
        from mrv.methodology.units import ureg

        ureg()
    except Exception:  # pragma: no cover - only a warm-up; calculate builds it (and reports) anyway
        pass


def run_local(settings: MRVSettings, project_path: Path, *, run_id: str | None = None, max_workers: int = 1) -> dict[str, Any]:
    """Run the same steps as the Prefect flow, in this process, without Prefect.

    For tests, benchmarks and embedding. ``max_workers > 1`` ingests meters in a thread pool.
    """
    if run_id is None:
        run_id, _ = start_run(settings, project_path)
    ctx = RunContext.open(settings, run_id=run_id)
    digest = ctx.lineage.get_run(run_id).project_file_digest
    spec = load_spec(ctx, digest)
    # pint's unit registry takes ~0.5 s of pure Python to build; build it while ingest (mostly
    # GIL-free Arrow/NumPy work) runs, instead of at the start of calculate.
    warm = threading.Thread(target=_warm_units, name="mrv-warm-units", daemon=True)
    warm.start()
    # The objects alive before the run (modules, caches: hundreds of thousands) are left out of
    # the collector's full passes for its duration; they cost ~5 % of a fleet run's CPU otherwise.
    gc.freeze()
    try:
        # Frames written by one step are handed to the next in memory (the artifacts are still written).
        with _FRAMES.activate():
            from mrv.sources import source_kind

            if spec.satellite is not None:  # area-based ARR (satellite scenes + field inventory): mrv.arr
                from mrv.arr import run_local_arr

                return run_local_arr(ctx, digest, spec)
            if source_kind(spec) != "meters":
                return _run_local_sources(ctx, digest, spec, max_workers=max_workers)
            xcs = [ingest_cross_check(ctx, project_digest=digest, index=i)[f"cross_check/{i}"].digest for i in range(len(spec.data_sources.cross_checks))]
            _AHEAD.plan(run_id, xcs)
            # Each meter is read, validated and treated in one go while its frame is at hand
            # (_SeriesAhead); the steps and artifacts are the same as one step after the other.
            plan = _series_plan_for(ctx, spec, cross_checks=xcs)
            with ThreadPoolExecutor(max_workers=max_workers) as pool:
                futs = {m.id: pool.submit(_ingest_validate_treat, ctx, digest, m.id, plan) for m in spec.data_sources.meters}
                readings = {m: f.result()[f"readings/{m}"].digest for m, f in futs.items()}
            warm.join()
            v = validate_readings(ctx, project_digest=digest, readings=readings)
            c = calculate(ctx, project_digest=digest, validated=v["validated"].digest, cross_checks=xcs)
            return finish_run(ctx, calculation=c["calculation"].digest, validation_result=v["validation_result"].digest, quarantine=v["quarantine"].digest)
    except BaseException:
        ctx.lineage.finish_run(run_id, status="failed")
        raise
    finally:
        _AHEAD.forget(run_id)
        _SERIES.forget(run_id)
        gc.unfreeze()


def _run_local_sources(ctx: RunContext, digest: str, spec: ProjectSpec, *, max_workers: int) -> dict[str, Any]:
    """:func:`run_local` for instrument and device-fleet projects (:mod:`mrv.sources`)."""
    from mrv import sources

    registry: str | None = None
    if sources.source_kind(spec) == "instruments":
        with ThreadPoolExecutor(max_workers=max_workers) as pool:
            futs = {i.id: pool.submit(sources.ingest_instrument, ctx, project_digest=digest, instrument_id=i.id) for i in spec.data_sources.instruments}
            readings = {k: f.result()[f"readings/{k}"].digest for k, f in futs.items()}
    else:
        out = sources.ingest_devices(ctx, project_digest=digest)
        readings = {"devices": out["readings/devices"].digest}
        registry = out["device_registry"].digest
    v = sources.validate_dataset(ctx, project_digest=digest, readings=readings, registry=registry)
    c = calculate(ctx, project_digest=digest, validated=v["validated"].digest, registry=registry)
    return finish_run(ctx, calculation=c["calculation"].digest, validation_result=v["validation_result"].digest, quarantine=v["quarantine"].digest)
