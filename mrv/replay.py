"""A verifier's replay: recompute a run from the raw inputs inside a verification package.

Offline and database-free: the package is checked (digests, Merkle root, signatures), its raw
inputs are re-read with the recorded project file, re-validated with the same data contract and
re-calculated with the same methodology version. Every derived artifact is compared byte for byte
with the one in the package; when the calculation differs, the trace is compared step by step and
the difference in the issuable quantity is held against the materiality threshold.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from mrv import __version__
from mrv.artifacts import ArtifactRef, sha256_bytes
from mrv.contracts import load_contract
from mrv.contracts import validate_readings as run_contract
from mrv.errors import ContractError, MethodologyError, ReplayError
from mrv.ingest.invoices import read_invoices
from mrv.ingest.meters import read_meter_files
from mrv.ingest.series import read_device_files, read_device_registry, read_instrument_files
from mrv.sources import dataset_context, instrument_unit, registry_from_records
from mrv.sources import registry_records as registry_records_of
from mrv.methodology.registry import get as get_methodology
from mrv.package import verify_package
from mrv.package.manifest import MANIFEST_PATH, PROJECT_FILE_PATH, Manifest
from mrv.pipeline import (
    calculation_document, concat_readings, frame_to_parquet_bytes, json_bytes, meter_readings_document, readings_document,
    selection_of, validation_document,
)
from mrv.derived import DEVICE_READINGS, INSTRUMENT_READINGS
from mrv.project import parse_project
from mrv.signing import verify_credential

REPORT_DOC = "signatures/report.json"

# CDM VVS-PA sets materiality by project size (0.5 % for the largest to 5 % for micro-scale);
# the threshold is the verifier's choice, recorded in the statement. Default: 1 %.
DEFAULT_MATERIALITY = 0.01


@dataclass(frozen=True)
class ReplayStep:
    name: str
    recorded: str
    replayed: str

    @property
    def matched(self) -> bool:
        return self.recorded == self.replayed


@dataclass(frozen=True)
class TraceDifference:
    symbol: str
    recorded: Any
    replayed: Any
    unit: str


@dataclass
class ReplayResult:
    package: Path
    materiality: float
    steps: list[ReplayStep] = field(default_factory=list)
    trace_differences: list[TraceDifference] = field(default_factory=list)
    issuable_recorded: int = 0
    issuable_replayed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return all(s.matched for s in self.steps)

    @property
    def relative_difference(self) -> float:
        if self.issuable_recorded == 0:
            return 0.0 if self.issuable_replayed == 0 else float("inf")
        return abs(self.issuable_replayed - self.issuable_recorded) / self.issuable_recorded

    @property
    def ok(self) -> bool:
        """Identical, or the issuable quantity differs by no more than the materiality threshold."""
        return self.identical or self.relative_difference <= self.materiality

    def to_dict(self) -> dict[str, Any]:
        return {
            "package": str(self.package),
            "ok": self.ok,
            "identical": self.identical,
            "materiality": self.materiality,
            "issuable_recorded": self.issuable_recorded,
            "issuable_replayed": self.issuable_replayed,
            "relative_difference": self.relative_difference,
            "steps": [{**asdict(s), "matched": s.matched} for s in self.steps],
            "trace_differences": [asdict(d) for d in self.trace_differences],
            "notes": self.notes,
        }


@dataclass(frozen=True)
class RecordedContract:
    """A data contract a packaged run used, as the package records it."""

    kind: str  # "tabular" (mrv.contracts) or "raster" (mrv.raster.contracts)
    id: str
    version: str
    recorded_in: str  # where the package says so


# Packaged JSON artifacts that record a contract they were produced with (role -> kind of the
# document's top-level ``contract``; None: decided by the document's ``engine``).
_CONTRACT_DOCUMENTS: dict[str, str | None] = {
    "validation_result": None,  # every run; ARR runs: the raster contract (engine "raster") + plot_statistics_contract
    "scene_validation": "raster",  # ARR, raster contract stage 1
    "inventory_validation": "tabular",  # ARR, tree_inventory
}


def recorded_contracts(replay_info: dict[str, Any], documents: dict[str, Any], *, raster: bool = False) -> list[RecordedContract]:
    """Every data contract (id, version) a run used: the one the signed report's replay section
    names, and those recorded by the packaged validation documents (``documents``: role -> parsed
    JSON) — the instrument/device contract of source-based runs, and for satellite (ARR) runs the
    raster contract, ``plot_statistics`` and ``tree_inventory``. Deduplicated, in that order."""
    out: dict[tuple[str, str, str], RecordedContract] = {}

    def add(kind: str, contract: Any, where: str) -> None:
        if isinstance(contract, dict) and contract.get("id"):
            key = (kind, str(contract["id"]), str(contract.get("version", "")))
            out.setdefault(key, RecordedContract(*key, recorded_in=where))

    add("raster" if raster else "tabular", {"id": replay_info.get("contract_id"), "version": replay_info.get("contract_version")}, "report replay section")
    for role, kind in _CONTRACT_DOCUMENTS.items():
        doc = documents.get(role)
        if not isinstance(doc, dict):
            continue
        add(kind or ("raster" if doc.get("engine") == "raster" else "tabular"), doc.get("contract"), role)
        add("tabular", (doc.get("plot_statistics_contract") or {}).get("contract"), f"{role}.plot_statistics_contract")
    return list(out.values())


def installed_contract_version(kind: str, contract_id: str) -> str:
    """The version of the installed data contract (``ContractError`` when it is not installed)."""
    if kind == "raster":
        from mrv.raster.contracts import load_raster_contract

        return load_raster_contract(contract_id).version
    return load_contract(contract_id).version


def _check_versions(replay_info: dict[str, Any], contracts: list[RecordedContract], *, use_installed: bool, notes: list[str]) -> None:
    """Refuse when the installed open-dmrv, methodology or any data contract the run used
    (``contracts``, see :func:`recorded_contracts`) differs from the record."""
    problems = []
    recorded_pkg = str(replay_info.get("code_version", "")).split("+")[0]
    if recorded_pkg != __version__:
        problems.append(f"open-dmrv {recorded_pkg} produced the report; {__version__} is installed")
    try:
        get_methodology(replay_info["methodology_id"])
    except MethodologyError:
        problems.append(f"methodology {replay_info['methodology_id']} is not installed")
    for c in contracts:
        what = "raster contract" if c.kind == "raster" else "data contract"
        try:
            installed = installed_contract_version(c.kind, c.id)
        except ContractError:
            problems.append(f"{what} {c.id} {c.version} was used; it is not installed")
            continue
        if installed != c.version:
            problems.append(f"{what} {c.id} {c.version} was used; {installed} is installed")
    if problems and not use_installed:
        raise ReplayError(
            "replay refused: " + "; ".join(problems) + ". Install the recorded versions, or pass --use-installed "
            "to replay with the installed code (every difference is then reported)."
        )
    notes.extend(f"replayed with installed code: {p}" for p in problems)


def _packaged_documents(zf: zipfile.ZipFile, by_role: dict[str, Any]) -> dict[str, Any]:
    """The packaged JSON documents that record contracts (:data:`_CONTRACT_DOCUMENTS`), by role."""
    out = {}
    for role in _CONTRACT_DOCUMENTS:
        entry = by_role.get(role)
        if entry is not None:
            try:
                out[role] = json.loads(zf.read(entry.path))
            except ValueError:
                raise ReplayError(f"{role} artifact {entry.path} is not JSON") from None
    return out


def replay_package(package: Path, *, materiality: float = DEFAULT_MATERIALITY, use_installed: bool = False) -> ReplayResult:
    """Recompute the run in ``package`` from its raw inputs and compare with what it records."""
    package = Path(package)
    check = verify_package(package, verify_signature=verify_credential, required_signatures=["report"])
    if not check.ok:
        raise ReplayError(f"{package}: the package does not verify, nothing to replay: {check.first_failure}")
    result = ReplayResult(package=package, materiality=materiality)
    with zipfile.ZipFile(package) as zf, tempfile.TemporaryDirectory(prefix="mrv-replay-") as tmp:
        report = json.loads(zf.read(REPORT_DOC))
        replay_info = report["credentialSubject"]["replay"]
        manifest = Manifest.from_bytes(zf.read(MANIFEST_PATH))
        by_role = {e.role: e for e in manifest.entries}
        spec = parse_project(zf.read(PROJECT_FILE_PATH).decode("utf-8"), source=f"{package.name}!{PROJECT_FILE_PATH}", base_dir=Path(tmp))
        is_arr = spec.satellite is not None
        contracts = recorded_contracts(replay_info, _packaged_documents(zf, by_role), raster=is_arr)
        _check_versions(replay_info, contracts, use_installed=use_installed, notes=result.notes)
        if is_arr:
            _replay_arr(zf, spec, manifest, by_role, Path(tmp), result, report)
            return result

        def extract(path: str, dest: Path) -> Path:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(zf.read(path))
            return dest

        root = Path(tmp)

        # 1. ingest: raw files -> normalised readings, per meter
        # Keyed by series id and concatenated in sorted key order, as the pipeline's validate step does.
        readings: dict[str, pd.DataFrame] = {}
        readings_digests: dict[str, str] = {}  # meter id -> sha256 of the replayed readings
        for meter in spec.data_sources.meters:
            raws = sorted((e for e in manifest.entries if e.role.startswith(f"raw/{meter.id}/")), key=lambda e: e.role)
            if not raws:
                raise ReplayError(f"{package}: no raw input files for meter {meter.id}")
            paths = [extract(e.path, root / "raw" / meter.id / f"{i:05d}" / PurePosixPath(e.role).name) for i, e in enumerate(raws)]
            df = read_meter_files(paths, meter=meter)
            readings[meter.id] = df
            # The readings artifact is the derivation of the reader over the raw files (mrv.derived).
            raw_refs = {e.role: ArtifactRef(e.sha256, e.size, e.media_type, PurePosixPath(e.role).name) for e in raws}
            replayed_bytes = json_bytes(meter_readings_document(meter, raw_refs, len(df)))
            readings_digests[meter.id] = sha256_bytes(replayed_bytes)
            _compare(result, f"ingest {meter.id}", by_role, f"readings/{meter.id}", replayed_bytes)

        # 1b. instruments and device fleets (mrv.sources), per the methodology's data source
        registry_records: list[dict[str, Any]] | None = None
        for inst in spec.data_sources.instruments:
            raws = sorted((e for e in manifest.entries if e.role.startswith(f"raw/{inst.id}/")), key=lambda e: e.role)
            if not raws:
                raise ReplayError(f"{package}: no raw input files for instrument {inst.id}")
            paths = [extract(e.path, root / "raw" / inst.id / f"{i:05d}" / PurePosixPath(e.role).name) for i, e in enumerate(raws)]
            unit = instrument_unit(spec, inst.id)
            df = read_instrument_files(paths, instrument=inst, unit=unit)
            readings[inst.id] = df
            raw_refs = {e.role: ArtifactRef(e.sha256, e.size, e.media_type, PurePosixPath(e.role).name) for e in raws}
            doc = readings_document(INSTRUMENT_READINGS, raw_refs, {"instrument": inst.model_dump(mode="json"), "unit": unit}, len(df))
            replayed_bytes = json_bytes(doc)
            readings_digests[inst.id] = sha256_bytes(replayed_bytes)
            _compare(result, f"ingest {inst.id}", by_role, f"readings/{inst.id}", replayed_bytes)
        if spec.data_sources.devices is not None:
            fleet = spec.data_sources.devices
            reg_entry = next((e for e in manifest.entries if e.role.startswith("raw/devices/registry/")), None)
            raws = sorted((e for e in manifest.entries if e.role.startswith("raw/devices/") and not e.role.startswith("raw/devices/registry/")), key=lambda e: e.role)
            if reg_entry is None or not raws:
                raise ReplayError(f"{package}: the device registry or the device readings files are missing")
            reg = read_device_registry(extract(reg_entry.path, root / "raw" / "devices-registry" / PurePosixPath(reg_entry.role).name))
            registry_records = registry_records_of(reg)
            paths = [extract(e.path, root / "raw" / "devices" / f"{i:05d}" / PurePosixPath(e.role).name) for i, e in enumerate(raws)]
            df = read_device_files(paths, fleet=fleet)
            readings["devices"] = df
            raw_refs = {e.role: ArtifactRef(e.sha256, e.size, e.media_type, PurePosixPath(e.role).name) for e in raws}
            doc = readings_document(DEVICE_READINGS, raw_refs, {"devices": fleet.model_dump(mode="json")}, len(df))
            replayed_bytes = json_bytes(doc)
            readings_digests["devices"] = sha256_bytes(replayed_bytes)
            _compare(result, "ingest devices", by_role, "readings/devices", replayed_bytes)
            _compare(result, "ingest device registry", by_role, "device_registry", json_bytes(registry_records))

        # 2. cross-checks
        invoices: list[pd.DataFrame] = []
        for i, xc in enumerate(spec.data_sources.cross_checks):
            raw = next((e for e in manifest.entries if e.role == f"raw/cross_check/{Path(xc.file).name}"), None)
            if raw is None:
                raise ReplayError(f"{package}: cross-check file {xc.file} is missing")
            p = extract(raw.path, root / "xc" / f"{i:03d}" / Path(xc.file).name)
            inv = read_invoices(p, cross_check=xc, timezone=spec.monitoring_period.timezone)
            invoices.append(inv)
            _compare(result, f"ingest cross-check {i}", by_role, f"cross_check/{i}", frame_to_parquet_bytes(inv))

        # 3. contract
        recorded_validation = json.loads(zf.read(by_role["validation_result"].path))
        outcome = run_contract(
            concat_readings([readings[k] for k in sorted(readings)]),
            contract=load_contract(replay_info["contract_id"]),
            context=dataset_context(spec, registry=None if registry_records is None else registry_from_records(registry_records)),
            engine=recorded_validation.get("engine", "native"),
        )
        _compare(result, "validate: result", by_role, "validation_result", json_bytes(validation_document(outcome)))
        # The valid rows are recorded as a row selection over the readings (mrv.selection).
        sources = [(f"readings/{k}", readings_digests[k], len(readings[k])) for k in sorted(readings)]
        replayed_valid = json_bytes(selection_of(outcome, sources))
        _compare(result, "validate: valid rows", by_role, "validated", replayed_valid)
        _compare(result, "validate: quarantine", by_role, "quarantine", frame_to_parquet_bytes(outcome.quarantine))

        # 4. calculation (from the replayed valid rows)
        recorded_calc = json.loads(zf.read(by_role["calculation"].path))
        doc = calculation_document(spec, outcome.valid, invoices, registry=registry_records)
        _compare(result, "calculate", by_role, "calculation", json_bytes(doc))
        result.issuable_recorded = int(report["credentialSubject"]["issuable_tCO2e"])
        result.issuable_replayed = int(doc["issuable_tCO2e"])
        if recorded_calc["issuable_tCO2e"] != result.issuable_recorded:
            result.notes.append("the signed report's issuable quantity differs from the packaged calculation")
        result.trace_differences = _trace_diff(recorded_calc["trace"], doc["trace"])
    return result


def _compare(result: ReplayResult, name: str, by_role: dict[str, Any], role: str, replayed: bytes) -> None:
    entry = by_role.get(role)
    if entry is None:
        raise ReplayError(f"{result.package}: the package has no {role} artifact to compare with")
    result.steps.append(ReplayStep(name, entry.sha256, sha256_bytes(replayed)))


def _trace_diff(recorded: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> list[TraceDifference]:
    """Differences by symbol, in trace order (a symbol missing on one side shows as None)."""
    rec = {s["symbol"]: s for s in recorded}
    rep = {s["symbol"]: s for s in replayed}
    order = [s["symbol"] for s in recorded] + [s["symbol"] for s in replayed if s["symbol"] not in rec]
    out = []
    for sym in order:
        a, b = rec.get(sym), rep.get(sym)
        va, vb = (a or {}).get("value"), (b or {}).get("value")
        if va != vb:
            out.append(TraceDifference(sym, va, vb, (a or b or {}).get("unit", "")))
    return out


# --------------------------------------------------------------------------- satellite (ARR) runs


class _Blobs:
    """Packaged raw assets by digest, extracted to files (what :func:`scene_from_json` reads)."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self._paths = paths

    def local_path(self, digest: str) -> Path:
        try:
            return self._paths[digest]
        except KeyError:
            raise ReplayError(f"scene asset {digest} is not among the packaged raw inputs") from None


def _replay_arr(zf: zipfile.ZipFile, spec: Any, manifest: Manifest, by_role: dict[str, Any], root: Path, result: ReplayResult,
                report: dict[str, Any]) -> None:
    """Recompute a satellite (VM0047) run from its packaged raw inputs: scene assets, GeoJSON files
    and the field inventory, through the same pure functions as :mod:`mrv.arr`."""
    from mrv import arr
    from mrv.raster.scenes import scene_from_json

    def extract(entry: Any, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(zf.read(entry.path))
        return dest

    # 1. ingest: scene assets (by digest, from the raw inputs) and the GeoJSON files
    raws = [e for e in manifest.entries if e.role.startswith("raw/scenes/")]
    if not raws:
        raise ReplayError(f"{result.package}: no raw scene assets in the package")
    blobs = {e.sha256: extract(e, root / "raw" / "scenes" / f"{i:05d}" / PurePosixPath(e.role).name) for i, e in enumerate(sorted(raws, key=lambda e: e.role))}
    if "scenes" not in by_role:
        raise ReplayError(f"{result.package}: the package has no scenes artifact")
    recorded_scenes = json.loads(zf.read(by_role["scenes"].path))
    scenes = [scene_from_json(d, _Blobs(blobs)) for d in recorded_scenes]
    _compare(result, "ingest scenes", by_role, "scenes", json_bytes(arr.scenes_document(scenes)))
    docs: dict[str, Any] = {}
    for key in arr.GEO_KEYS:
        entry = by_role.get(f"raw/geo/{key}.geojson")
        if entry is not None:
            docs[key] = json.loads(zf.read(entry.path))
    missing = [k for k in arr.GEO_KEYS if k not in docs and k != "boundary"]
    if missing:
        raise ReplayError(f"{result.package}: GeoJSON input(s) missing: {', '.join(missing)}")
    _compare(result, "ingest scenes: plot geometry", by_role, "plot_geometry", json_bytes(docs))
    geo = arr.plot_geometry(spec, docs)

    # 2. raster contract, stage 1
    stage1 = arr.scene_stage(spec, scenes, geo)
    _compare(result, "validate scenes", by_role, "scene_validation", stage1.to_bytes())

    # 3. plot statistics + stage 2 + plot_statistics contract (on the stage-1 result just replayed)
    recorded_validation = json.loads(zf.read(by_role["validation_result"].path))
    engine = (recorded_validation.get("plot_statistics_contract") or {}).get("engine", "native")
    stats = arr.compute_plot_statistics(spec, scenes, geo, engine=engine, prior=stage1)
    _compare(result, "plot statistics: result", by_role, "validation_result", json_bytes(stats.document))
    _compare(result, "plot statistics: valid plot-dates", by_role, "validated", frame_to_parquet_bytes(stats.validated))
    _compare(result, "plot statistics: quarantine", by_role, "quarantine", frame_to_parquet_bytes(stats.quarantine))

    # 4. field inventory
    inv_entry = next((e for e in manifest.entries if e.role.startswith("raw/inventory/")), None)
    if inv_entry is None:
        raise ReplayError(f"{result.package}: the field inventory file is missing")
    trees = arr.read_inventory(extract(inv_entry, root / "raw" / "inventory" / PurePosixPath(inv_entry.role).name), spec)
    outcome = arr.validate_inventory(spec, trees, geo, engine=engine)
    _compare(result, "ingest inventory: result", by_role, "inventory_validation", json_bytes(validation_document(outcome)))
    inventory = outcome.valid.reset_index(drop=True)
    _compare(result, "ingest inventory: trees", by_role, "inventory", frame_to_parquet_bytes(inventory))

    # 5. calculation
    recorded_calc = json.loads(zf.read(by_role["calculation"].path))
    doc = arr.calculation_document(spec, stats.validated, inventory, arr.plot_registry(geo))
    _compare(result, "calculate", by_role, "calculation", json_bytes(doc))
    result.issuable_recorded = int(report["credentialSubject"]["issuable_tCO2e"])
    result.issuable_replayed = int(doc["issuable_tCO2e"])
    if recorded_calc["issuable_tCO2e"] != result.issuable_recorded:
        result.notes.append("the signed report's issuable quantity differs from the packaged calculation")
    result.trace_differences = _trace_diff(recorded_calc["trace"], doc["trace"])
