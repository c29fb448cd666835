"""Build a verification package: one zip a VVB checks offline, with no database and no network.

Order of work (the signed report signs the package, so it cannot be inside the Merkle tree)::

    plan = plan_package(store=..., lineage=..., run_id=..., openlineage_events=...)  # nothing written
    report = sign(make_report(..., package=plan.claim))      # claims plan.merkle_root + manifest digest
    info = write_package(plan, out=path, signed_documents={"report": report})
    ...
    add_signed_document(path, name="vvb-statement", document=statement)  # VVB countersigns later

What goes in: every artifact the lineage store links to the run (raw inputs, normalised readings,
validated data, quarantine, validation result, calculation with its trace), the project file the
run was registered with, the lineage graph, the run's OpenLineage events and any ``extra`` files.

Artifact paths: ``artifacts/<role>`` for artifacts of completed (or cached) steps, with an
extension from the media type when the role has none (``validated`` ->
``artifacts/validated.parquet``; ``raw/EXP-1/EXP-1_2023-01.csv`` stays as it is). Artifacts of
steps that did not complete (e.g. the validation result of a blocked attempt before a resumed run
succeeded) go under ``artifacts/<step status>/<step id>/<role>``.

Deterministic bytes: the same run data gives the same zip, byte for byte, wherever and whenever it
is built. Entries are sorted by path (UTF-8 bytes); every entry has the timestamp
1980-01-01 00:00:00 (the zip epoch: the package's only time is the run's, recorded inside the
lineage files), Unix ``create_system`` and mode ``0644``, no directory entries, no comment and no
extra fields (zip64 only above 4 GiB, decided from the known size). Already-compressed media
(Parquet, zip, gzip, PDF, PNG, JPEG...) are STORED, everything else DEFLATED at level 9; deflated
bytes can differ between zlib builds (the verification never depends on them: it hashes the
uncompressed content). JSON is written by :func:`~mrv.package.manifest.canonical_json_bytes`.
The zip is written to a temporary file next to ``out``, fsynced and renamed into place: a failure
never leaves a half-written package, and a package being replaced stays intact until the new one
is complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import IO, Any, Final

from mrv.artifacts import DIGEST_PREFIX, LocalArtifactStore, guess_media_type
from mrv.errors import ArtifactError, LineageError, PackageError
from mrv.lineage import LineageStore, RunStatus, StepStatus
from mrv.lineage.openlineage import openlineage_run_id
from mrv.package.manifest import (
    ATTACHMENTS_DIR,
    RENDERINGS_FIELD,
    claimed_attachments,
    ARTIFACTS_DIR,
    LINEAGE_GRAPH_PATH,
    MANIFEST_PATH,
    OPENLINEAGE_EVENTS_PATH,
    PROJECT_FILE_PATH,
    SIGNATURES_DIR,
    Manifest,
    ManifestEntry,
    canonical_json_bytes,
    check_package_path,
    claim_problems,
    package_claim,
    signature_name,
    signature_path,
)

ZIP_EPOCH: Final = (1980, 1, 1, 0, 0, 0)
FILE_MODE: Final = 0o100644  # regular file, rw-r--r--
PACKAGE_FILE_MODE: Final = 0o644
DEFLATE_LEVEL: Final = 9
JSON_MEDIA_TYPE: Final = "application/json"
NDJSON_MEDIA_TYPE: Final = "application/x-ndjson"
YAML_MEDIA_TYPE: Final = "application/yaml"

ROLE_PROJECT_FILE: Final = "project_file"
ROLE_LINEAGE_GRAPH: Final = "lineage_graph"
ROLE_OPENLINEAGE_EVENTS: Final = "openlineage_events"

# Media types whose bytes are already compressed: deflating them again only costs time.
STORED_MEDIA_TYPES: Final = frozenset(
    {
        "application/vnd.apache.parquet",
        "application/zip",
        "application/gzip",
        "application/zstd",
        "application/x-xz",
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/webp",
    }
)

_EXTENSIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "text/csv": ".csv",
        "application/vnd.apache.parquet": ".parquet",
        "application/json": ".json",
        "application/ld+json": ".jsonld",
        "application/vc+ld+json": ".jsonld",
        "application/x-ndjson": ".jsonl",
        "application/yaml": ".yaml",
        "image/tiff": ".tif",
        "text/html": ".html",
        "application/pdf": ".pdf",
        "application/zip": ".zip",
        "text/plain": ".txt",
    }
)
_SUCCESSFUL_STEPS: Final = frozenset({StepStatus.COMPLETED, StepStatus.CACHED})
_EVENT_ORDER: Final[Mapping[str, int]] = MappingProxyType(
    {"START": 0, "RUNNING": 1, "COMPLETE": 2, "ABORT": 3, "FAIL": 4, "OTHER": 5}
)
_CHUNK: Final = 1 << 20
_EMPTY: Final[Mapping[Any, Any]] = MappingProxyType({})


# --------------------------------------------------------------------------- value objects


@dataclass(frozen=True, slots=True)
class PackageFile:
    """One manifest entry and where its bytes come from (a store blob or bytes made here)."""

    path: str
    role: str
    media_type: str
    sha256: str
    size: int
    source: Path | bytes

    @property
    def entry(self) -> ManifestEntry:
        return ManifestEntry(self.path, self.role, self.media_type, self.sha256, self.size)

    def __repr__(self) -> str:
        src = f"<{len(self.source)} bytes>" if isinstance(self.source, bytes) else str(self.source)
        return f"PackageFile({self.path!r}, {self.sha256}, {self.size} bytes, from {src})"


@dataclass(frozen=True, slots=True)
class PackagePlan:
    """Everything a package holds except its signed documents. Nothing is written yet."""

    manifest: Manifest
    manifest_bytes: bytes
    manifest_sha256: str
    files: tuple[PackageFile, ...]

    @property
    def merkle_root(self) -> str:
        return self.manifest.merkle_root

    @property
    def run_id(self) -> str:
        return self.manifest.run_id

    @property
    def claim(self) -> dict[str, str]:
        """What a signed document puts at ``credentialSubject.package`` to sign this package."""
        return package_claim(merkle_root=self.merkle_root, manifest_sha256=self.manifest_sha256)

    def file(self, path: str) -> PackageFile:
        for f in self.files:
            if f.path == path:
                return f
        raise PackageError(f"{path} is not in the package plan")


@dataclass(frozen=True, slots=True)
class PackageInfo:
    path: Path
    merkle_root: str
    manifest_digest: str
    artifact_count: int
    signed_documents: tuple[str, ...] = ()


# --------------------------------------------------------------------------- planning


POST_RUN_STEPS: Final = frozenset({"report", "attest"})


def plan_package(
    *,
    store: LocalArtifactStore,
    lineage: LineageStore,
    run_id: str,
    extra: Mapping[str, tuple[bytes, str, str]] = _EMPTY,
    openlineage_events: Iterable[Mapping[str, Any]] | None = None,
    allow_incomplete: bool = False,
) -> PackagePlan:
    """Collect the run's files and compute the manifest and its Merkle root (nothing is written).

    ``extra``: ``path -> (bytes, role, media_type)`` for further files (HTML/PDF report,
    parameters); they are manifest entries and Merkle leaves like the artifacts, so they must not
    contain the root. ``openlineage_events``: any iterable of RunEvents (e.g.
    :func:`read_openlineage_events` of the workspace's ``events.jsonl``); those of this run and
    its steps are kept. When None, the package has no ``lineage/openlineage.jsonl``.
    Only completed runs are packaged unless ``allow_incomplete``.
    """
    try:
        info = lineage.get_run(run_id)
        rows = lineage.run_artifacts(run_id)
        graph = lineage.run_graph(run_id)
    except LineageError as exc:
        raise PackageError(f"cannot package run {run_id}: {exc}") from exc
    # Steps that package or sign the run (report, attest) come after it and are not part of it:
    # leaving them out keeps a rebuilt package byte-identical (and never nests a package in itself).
    post = {s.id for s in info.steps if s.name in POST_RUN_STEPS}
    rows = [r for r in rows if r.step_id not in post]
    post_nodes = {f"step:{i}" for i in post}
    post_artifacts = {f"artifact:{r.digest}" for r in lineage.run_artifacts(run_id) if r.step_id in post and r.direction == "output"}
    post_artifacts -= {f"artifact:{r.digest}" for r in rows}
    graph = {
        **graph,
        "nodes": [n for n in graph["nodes"] if n["id"] not in post_nodes | post_artifacts],
        "edges": [e for e in graph["edges"] if not ({e["source"], e["target"]} & (post_nodes | post_artifacts))],
    }
    if info.status != RunStatus.COMPLETED and not allow_incomplete:
        raise PackageError(f"run {run_id} is {info.status.value}, not completed: only completed runs are packaged")

    files: dict[str, PackageFile] = {}

    def add(f: PackageFile) -> None:
        check_package_path(f.path)
        if f.path == MANIFEST_PATH or f.path.startswith(SIGNATURES_DIR):
            raise PackageError(f"package path {f.path!r} is reserved for the manifest and signed documents")
        old = files.get(f.path)
        if old is not None:
            if old.sha256 == f.sha256:
                return
            raise PackageError(f"{f.path}: two different artifacts ({old.sha256} and {f.sha256}) would share this path")
        files[f.path] = f

    def blob(digest: str, *, what: str) -> Path:
        try:
            return store.local_path(digest)
        except ArtifactError as exc:
            raise PackageError(f"{what}: {exc}") from exc

    done: set[tuple[str, str]] = set()
    for row in sorted(rows, key=lambda r: r.step_status not in _SUCCESSFUL_STEPS):  # successful steps first (stable)
        if row.step_status in _SUCCESSFUL_STEPS:
            path = ARTIFACTS_DIR + _role_path(row.role, row.media_type)
        elif (row.role, row.digest) in done:
            continue  # same bytes, same role as a successful step: already in
        else:
            path = f"{ARTIFACTS_DIR}{row.step_status.value}/{row.step_id}/{_role_path(row.role, row.media_type)}"
        done.add((row.role, row.digest))
        add(PackageFile(path, row.role, row.media_type, row.digest, row.size, blob(row.digest, what=path)))

    if info.project_file_digest is not None:
        src = blob(info.project_file_digest, what=PROJECT_FILE_PATH)
        add(PackageFile(PROJECT_FILE_PATH, ROLE_PROJECT_FILE, YAML_MEDIA_TYPE, info.project_file_digest, src.stat().st_size, src))

    add(_bytes_file(LINEAGE_GRAPH_PATH, ROLE_LINEAGE_GRAPH, JSON_MEDIA_TYPE, canonical_json_bytes(graph)))
    if openlineage_events is not None:
        step_ids = [s.id for s in info.steps if s.id not in post]
        data = openlineage_events_bytes(openlineage_events, run_id=run_id, step_ids=step_ids)
        add(_bytes_file(OPENLINEAGE_EVENTS_PATH, ROLE_OPENLINEAGE_EVENTS, NDJSON_MEDIA_TYPE, data))

    for path, spec in sorted(extra.items()):
        check_package_path(path, what="extra file path")
        if path in files:
            raise PackageError(f"extra file {path!r} collides with a file of the run")
        try:
            data, role, media_type = spec
        except (TypeError, ValueError):
            raise PackageError(f"extra file {path!r}: expected (bytes, role, media_type)") from None
        if not (isinstance(data, bytes) and isinstance(role, str) and role and isinstance(media_type, str) and media_type):
            raise PackageError(f"extra file {path!r}: expected (bytes, role, media_type) with non-empty role and media type")
        add(_bytes_file(path, role, media_type, data))

    ordered = tuple(sorted(files.values(), key=lambda f: f.path.encode("utf-8")))
    manifest = Manifest.create(
        run_id=info.id,
        project_id=info.project_id,
        methodology_id=info.methodology_id,
        code_version=info.code_version,
        git_commit=info.git_commit,
        entries=[f.entry for f in ordered],
    )
    manifest_bytes = manifest.to_bytes()
    return PackagePlan(manifest, manifest_bytes, _sha256(manifest_bytes), ordered)


def _bytes_file(path: str, role: str, media_type: str, data: bytes) -> PackageFile:
    return PackageFile(path, role, media_type, _sha256(data), len(data), data)


def _sha256(data: bytes) -> str:
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


def _role_path(role: str, media_type: str) -> str:
    """``role`` as a relative path, plus an extension for its media type when it has none."""
    check_package_path(role, what="artifact role")
    if guess_media_type(PurePosixPath(role).name) != "application/octet-stream":
        return role
    return role + _EXTENSIONS.get(_base_media_type(media_type), "")


def _base_media_type(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()


def read_openlineage_events(path: Path) -> list[dict[str, Any]]:
    """The RunEvents of a JSON-lines file (e.g. ``Workspace.openlineage_path``)."""
    events = []
    try:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise PackageError(f"{path}:{n}: not a JSON OpenLineage event ({exc.msg})") from None
                if not isinstance(event, dict):
                    raise PackageError(f"{path}:{n}: an OpenLineage event must be a JSON object")
                events.append(event)
    except OSError as exc:
        raise PackageError(f"cannot read OpenLineage events from {path}: {exc}") from exc
    return events


def openlineage_events_bytes(events: Iterable[Mapping[str, Any]], *, run_id: str, step_ids: Sequence[str] = ()) -> bytes:
    """The events of this run as JSON lines: those whose ``run.runId`` is the run's or one of its
    steps', or whose parent run is the run. Deduplicated and sorted (event time, run id, event
    type, content), one canonical compact JSON object per line."""
    wanted = {openlineage_run_id(run_id), *(openlineage_run_id(s) for s in step_ids)}
    parent = openlineage_run_id(run_id)
    lines: dict[str, tuple[Any, ...]] = {}
    for event in events:
        run = event.get("run") if isinstance(event, Mapping) else None
        if not isinstance(run, Mapping):
            continue
        facets = run.get("facets")
        parent_facet = facets.get("parent") if isinstance(facets, Mapping) else None
        parent_run = parent_facet.get("run") if isinstance(parent_facet, Mapping) else None
        parent_id = parent_run.get("runId") if isinstance(parent_run, Mapping) else None
        if run.get("runId") not in wanted and parent_id != parent:
            continue
        try:
            line = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise PackageError(f"OpenLineage event of run {run.get('runId')} is not JSON-serialisable: {exc}") from exc
        key = (str(event.get("eventTime", "")), str(run.get("runId")), _EVENT_ORDER.get(str(event.get("eventType")), 9), line)
        lines[line] = key
    ordered = sorted(lines, key=lambda ln: lines[ln])
    return "".join(ln + "\n" for ln in ordered).encode("utf-8")


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True, slots=True)
class _Member:
    path: str
    media_type: str
    size: int
    sha256: str | None  # checked while writing when known
    open: Callable[[], IO[bytes]]
    origin: str


def _file_member(f: PackageFile) -> _Member:
    source = f.source
    if isinstance(source, bytes):
        return _Member(f.path, f.media_type, f.size, f.sha256, lambda: io.BytesIO(source), "memory")
    return _Member(f.path, f.media_type, f.size, f.sha256, lambda: open(source, "rb"), str(source))


def _bytes_member(path: str, data: bytes, *, media_type: str = JSON_MEDIA_TYPE) -> _Member:
    return _Member(path, media_type, len(data), _sha256(data), lambda: io.BytesIO(data), "memory")


def _signed_document_bytes(name: str, document: Mapping[str, Any], *, merkle_root: str, manifest_sha256: str) -> bytes:
    if not isinstance(document, Mapping):
        raise PackageError(f"signed document {name!r} must be a JSON object, not {type(document).__name__}")
    problems = claim_problems(document, merkle_root=merkle_root, manifest_sha256=manifest_sha256)
    if problems:
        raise PackageError(f"signed document {name!r} does not sign this package: {'; '.join(problems)}")
    return canonical_json_bytes(document)


def write_package(
    plan: PackagePlan,
    *,
    out: Path,
    signed_documents: Mapping[str, Mapping[str, Any]] = _EMPTY,
    attachments: Mapping[str, bytes] = _EMPTY,
) -> PackageInfo:
    """Write the zip for ``plan`` with ``signed_documents`` (``name -> document``, stored as
    ``signatures/<name>.json``). Each document must claim this plan's root and manifest digest.
    ``attachments`` (``report/<name> -> bytes``) are files outside the Merkle tree whose sha256 a
    signed document claims in ``credentialSubject.renderings`` (the report's HTML/PDF twin).

    Store blobs are re-hashed while being written: a corrupt store fails the build (the message
    names the file) and leaves nothing at ``out``.
    """
    members = [_file_member(f) for f in plan.files]
    members.append(_bytes_member(MANIFEST_PATH, plan.manifest_bytes))
    for name, doc in sorted(signed_documents.items()):
        data = _signed_document_bytes(name, doc, merkle_root=plan.merkle_root, manifest_sha256=plan.manifest_sha256)
        members.append(_bytes_member(signature_path(name), data))
    claims: dict[str, str] = {}
    for doc in signed_documents.values():
        claims.update(claimed_attachments(doc))
    for apath, data in sorted(attachments.items()):
        check_package_path(apath, what="attachment path")
        if not apath.startswith(ATTACHMENTS_DIR):
            raise PackageError(f"attachment {apath} must be under {ATTACHMENTS_DIR}")
        if claims.get(apath) != _sha256(data):
            raise PackageError(f"attachment {apath} is not claimed with this sha256 by any signed document's {RENDERINGS_FIELD}")
        members.append(_bytes_member(apath, data, media_type=guess_media_type(apath)))
    out = Path(out)
    tmp = _write_zip_temp(out, members)
    _commit(tmp, out)
    return PackageInfo(
        path=out,
        merkle_root=plan.merkle_root,
        manifest_digest=plan.manifest_sha256,
        artifact_count=len(plan.files),
        signed_documents=tuple(sorted(signed_documents)),
    )


def build_package(
    *,
    store: LocalArtifactStore,
    lineage: LineageStore,
    run_id: str,
    out: Path,
    extra: Mapping[str, tuple[bytes, str, str]] = _EMPTY,
    signed_documents: Mapping[str, Mapping[str, Any]] = _EMPTY,
    openlineage_events: Iterable[Mapping[str, Any]] | None = None,
    allow_incomplete: bool = False,
) -> PackageInfo:
    """:func:`plan_package` then :func:`write_package` in one call (for packages whose signed
    documents are added later, or were made from an earlier plan of the same run)."""
    plan = plan_package(
        store=store,
        lineage=lineage,
        run_id=run_id,
        extra=extra,
        openlineage_events=openlineage_events,
        allow_incomplete=allow_incomplete,
    )
    return write_package(plan, out=out, signed_documents=signed_documents)


def add_signed_document(package: Path, *, name: str, document: Mapping[str, Any]) -> PackageInfo:
    """Rewrite ``package`` with one more signed document (e.g. the VVB's countersigned statement).

    The package must verify (digests, Merkle root, claims; signatures are not checked here) and
    must not already hold a document called ``name``. The result is byte-identical to writing the
    plan with all the documents at once.
    """
    from mrv.package.verify import verify_package  # verify does not import build: no cycle

    package = Path(package)
    new_path = signature_path(name)
    result = verify_package(package)
    if not result.ok:
        raise PackageError(f"{package}: will not add a signed document to a package that does not verify: {result.first_failure}")
    with zipfile.ZipFile(package) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        names = {i.filename for i in infos}
        if new_path in names:
            raise PackageError(f"{package}: already holds a signed document {name!r} ({new_path})")
        manifest_bytes = zf.read(MANIFEST_PATH)
        manifest = Manifest.from_bytes(manifest_bytes)
        entries = {e.path: e for e in manifest.entries}
        data = _signed_document_bytes(name, document, merkle_root=manifest.merkle_root, manifest_sha256=_sha256(manifest_bytes))

        def opener(n: str) -> Callable[[], IO[bytes]]:
            return lambda: zf.open(n)

        members = [_bytes_member(MANIFEST_PATH, manifest_bytes), _bytes_member(new_path, data)]
        for i in infos:
            if i.filename == MANIFEST_PATH:
                continue
            e = entries.get(i.filename)
            if e is not None:
                members.append(_Member(e.path, e.media_type, e.size, e.sha256, opener(e.path), f"{package}!{e.path}"))
            elif signature_name(i.filename) is not None:
                origin = f"{package}!{i.filename}"
                members.append(_Member(i.filename, JSON_MEDIA_TYPE, i.file_size, None, opener(i.filename), origin))
            elif i.filename.startswith(ATTACHMENTS_DIR):  # claimed by a signed document (verified above)
                origin = f"{package}!{i.filename}"
                members.append(_Member(i.filename, guess_media_type(i.filename), i.file_size, None, opener(i.filename), origin))
            else:  # verify_package rejects unlisted files: unreachable unless the file changed meanwhile
                raise PackageError(f"{package}: {i.filename} is not listed in {MANIFEST_PATH}")
        tmp = _write_zip_temp(package, members)
    _commit(tmp, package)
    signed = sorted(n for n in (signature_name(m.path) for m in members) if n is not None)
    return PackageInfo(
        path=package,
        merkle_root=manifest.merkle_root,
        manifest_digest=_sha256(manifest_bytes),
        artifact_count=len(manifest.entries),
        signed_documents=tuple(signed),
    )


def _zipinfo(member: _Member) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(member.path, date_time=ZIP_EPOCH)
    zi.create_system = 3  # Unix, so external_attr carries the mode
    zi.external_attr = (FILE_MODE & 0xFFFF) << 16
    zi.file_size = member.size
    if _base_media_type(member.media_type) in STORED_MEDIA_TYPES:
        zi.compress_type = zipfile.ZIP_STORED
    else:
        zi.compress_type = zipfile.ZIP_DEFLATED
        zi._compresslevel = DEFLATE_LEVEL  # type: ignore[attr-defined]  # read by ZipFile.open(mode="w")
    return zi


def _write_zip_temp(dest: Path, members: Sequence[_Member]) -> Path:
    """Write the members, sorted by path, into a temporary file next to ``dest``; return its path."""
    paths = [m.path for m in members]
    if len(set(paths)) != len(paths):
        raise PackageError(f"{dest}: duplicate paths in the package")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    except OSError as exc:
        raise PackageError(f"cannot write {dest}: {exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as fh:
            with zipfile.ZipFile(fh, "w", allowZip64=True) as zf:
                for m in sorted(members, key=lambda m: m.path.encode("utf-8")):
                    _write_member(zf, m)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, PACKAGE_FILE_MODE)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise PackageError(f"cannot write {dest}: {exc}") from exc
        raise
    return tmp


def _write_member(zf: zipfile.ZipFile, m: _Member) -> None:
    h = hashlib.sha256()
    n = 0
    try:
        src_cm = m.open()
    except OSError as exc:
        raise PackageError(f"{m.path}: cannot read {m.origin}: {exc}") from exc
    with src_cm as src, zf.open(_zipinfo(m), "w") as dst:
        while chunk := src.read(_CHUNK):
            h.update(chunk)
            n += len(chunk)
            if n > m.size:
                break
            dst.write(chunk)
        if n != m.size:
            raise PackageError(f"{m.path}: {m.origin} has {'more than ' if n > m.size else ''}{n} bytes, expected {m.size}")
    digest = DIGEST_PREFIX + h.hexdigest()
    if m.sha256 is not None and digest != m.sha256:
        raise PackageError(f"{m.path}: the bytes of {m.origin} hash to {digest}, expected {m.sha256} (corrupt artifact store?)")


def _commit(tmp: Path, dest: Path) -> None:
    try:
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PackageError(f"cannot write {dest}: {exc}") from exc
