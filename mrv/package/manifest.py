"""The package manifest (``manifest.json`` at the zip root) and the claims signed documents make.

Layout of a verification package::

    manifest.json                      this manifest (not in the Merkle tree: it holds the root)
    artifacts/...                      every artifact of the run (raw inputs, derived data, results)
    lineage/graph.json                 the run's lineage graph (LineageStore.run_graph)
    lineage/openlineage.jsonl          the run's OpenLineage RunEvents (when given)
    <other paths>                      extra files given by the builder (reports, parameters)
    signatures/<name>.json             signed documents (report VC, VVB statement): NOT in the
                                       manifest; each names the package it signs by claiming
                                       ``credentialSubject.package.merkle_root`` and
                                       ``credentialSubject.package.manifest_sha256``

Every file except ``manifest.json`` and ``signatures/*`` is a manifest entry, and every manifest
entry is a Merkle leaf (see :mod:`mrv.package.merkle`). ``manifest_sha256`` is the sha256 of the
exact bytes of ``manifest.json`` inside the zip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from mrv.errors import PackageError
from mrv.package.merkle import (
    LEAF_PREFIX,
    MERKLE_ALGORITHM_ID,
    NODE_PREFIX,
    MerkleProof,
    merkle_proof,
    merkle_root,
    sorted_digests,
)

FORMAT_ID: Final = "open-dmrv/verification-package"
FORMAT_VERSION: Final = "1.0"
_FORMAT_MAJOR: Final = "1"

MANIFEST_PATH: Final = "manifest.json"
ARTIFACTS_DIR: Final = "artifacts/"
LINEAGE_DIR: Final = "lineage/"
SIGNATURES_DIR: Final = "signatures/"
LINEAGE_GRAPH_PATH: Final = "lineage/graph.json"
OPENLINEAGE_EVENTS_PATH: Final = "lineage/openlineage.jsonl"
PROJECT_FILE_PATH: Final = "artifacts/project.yaml"

# Where a signed document names the package it signs: credentialSubject.package.{merkle_root,manifest_sha256}.
SUBJECT_FIELD: Final = "credentialSubject"
PACKAGE_CLAIM_FIELD: Final = "package"
MERKLE_ROOT_FIELD: Final = "merkle_root"
MANIFEST_SHA256_FIELD: Final = "manifest_sha256"
MERKLE_ROOT_CLAIM: Final = f"{SUBJECT_FIELD}.{PACKAGE_CLAIM_FIELD}.{MERKLE_ROOT_FIELD}"
MANIFEST_SHA256_CLAIM: Final = f"{SUBJECT_FIELD}.{PACKAGE_CLAIM_FIELD}.{MANIFEST_SHA256_FIELD}"

MERKLE_ALGORITHM: Final[Mapping[str, str]] = {
    "id": MERKLE_ALGORITHM_ID,
    "hash": "sha-256",
    "leaves": "the sha256 digest of every manifest artifact (one leaf per entry, duplicates kept), "
    "as 32 raw bytes, sorted ascending",
    "leaf_hash": f"SHA-256(0x{LEAF_PREFIX.hex()} || digest)",
    "node_hash": f"SHA-256(0x{NODE_PREFIX.hex()} || left || right)",
    "odd_node": "pair left to right; an unpaired last node is promoted unchanged to the next level",
    "empty_root": "SHA-256 of the empty string",
    "equivalent_to": "RFC 6962 Merkle Tree Hash over the sorted raw digests; inclusion proofs are RFC 9162 audit paths",
}

_SIGNATURE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_MAX_PATH = 512
_UNSAFE_CHAR = re.compile(r"[\x00-\x1f\x7f\\]")  # control characters and '\'
_BAD_SEGMENT = re.compile(r"(?:^|/)\.{0,2}(?:/|$)")  # an empty, '.' or '..' segment
# Integers beyond 64 bits: orjson reads them as floats, json as exact ints. A document with a run
# of 19 or more digits that does not continue a word (a JSON number starts after ':', '[', ',',
# '-' or white space) is read by json. The run is found on a copy with every digit mapped to '0',
# every ASCII letter to 'a' and everything else to ' ' (a regex scan is ten times slower).
_DIGIT_CLASSES: Final = bytes(
    ord("0") if chr(c).isdigit() and c < 128 else ord("a") if chr(c).isascii() and chr(c).isalpha() else ord(" ") for c in range(256)
)
_LONG_RUN: Final = b"0" * 19


def _may_hold_long_integer(data: bytes) -> bool:
    classes = data.translate(_DIGIT_CLASSES)
    return b" " + _LONG_RUN in classes or classes.startswith(_LONG_RUN)


def loads_json(data: bytes) -> Any:
    """``json.loads(data.decode("utf-8"))``: the same values or the same exception (the package's
    JSON reader). orjson reads what it reads to the same values; anything it refuses (NaN, lone
    surrogates, a BOM, invalid JSON or UTF-8), and any document that may hold an integer beyond 64
    bits, which orjson would read as a float, is read by json."""
    if not _may_hold_long_integer(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data.decode("utf-8"))


def canonical_json_bytes(obj: Any) -> bytes:
    """The one JSON writer of the package: sorted keys, fixed separators and indent, UTF-8, LF."""
    try:
        text = json.dumps(obj, sort_keys=True, indent=1, separators=(",", ": "), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PackageError(f"cannot write JSON: {exc}") from exc
    return text.encode("utf-8") + b"\n"


def check_package_path(path: object, *, what: str = "package path") -> str:
    """A safe relative POSIX path: no leading '/', no '\\', no empty, '.' or '..' segments, no control chars."""
    if not isinstance(path, str) or not path or len(path) > _MAX_PATH:
        raise PackageError(f"invalid {what} {path!r}: expected a non-empty string of at most {_MAX_PATH} characters")
    if path.startswith("/") or _UNSAFE_CHAR.search(path):
        raise PackageError(f"invalid {what} {path!r}: must be a relative path with '/' separators and no control characters")
    if _BAD_SEGMENT.search(path):
        raise PackageError(f"invalid {what} {path!r}: empty, '.' and '..' segments are not allowed")
    return path


def signature_path(name: str) -> str:
    """``signatures/<name>.json`` for a signed document called ``name``."""
    if not isinstance(name, str) or not _SIGNATURE_NAME.match(name) or name.endswith(".json"):
        raise PackageError(
            f"invalid signed document name {name!r}: 1-64 characters of [A-Za-z0-9._-], not ending in '.json'"
        )
    return f"{SIGNATURES_DIR}{name}.json"


def signature_name(path: str) -> str | None:
    """The document name of a ``signatures/<name>.json`` path, or None if the path is not one."""
    if not path.startswith(SIGNATURES_DIR) or not path.endswith(".json"):
        return None
    name = path[len(SIGNATURES_DIR): -len(".json")]
    return name if _SIGNATURE_NAME.match(name) and "/" not in name else None


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    path: str
    role: str
    media_type: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "role": self.role, "media_type": self.media_type, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True, slots=True)
class Manifest:
    run_id: str
    project_id: str
    methodology_id: str
    code_version: str
    git_commit: str | None
    entries: tuple[ManifestEntry, ...]
    merkle_root: str
    format_version: str = FORMAT_VERSION

    @classmethod
    def create(
        cls,
        *,
        run_id: str,
        project_id: str,
        methodology_id: str,
        code_version: str,
        git_commit: str | None,
        entries: Sequence[ManifestEntry],
    ) -> Manifest:
        """A manifest over ``entries`` (sorted by path here), with its Merkle root computed."""
        ordered = tuple(sorted(entries, key=lambda e: e.path.encode("utf-8")))
        _check_entries(ordered, where="manifest")
        return cls(
            run_id=run_id,
            project_id=project_id,
            methodology_id=methodology_id,
            code_version=code_version,
            git_commit=git_commit,
            entries=ordered,
            merkle_root=merkle_root(e.sha256 for e in ordered),
        )

    @property
    def digests(self) -> list[str]:
        return [e.sha256 for e in self.entries]

    def entry(self, path: str) -> ManifestEntry:
        for e in self.entries:
            if e.path == path:
                return e
        raise PackageError(f"{path} is not in the manifest")

    def recompute_root(self) -> str:
        return merkle_root(self.digests)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_ID,
            "format_version": self.format_version,
            "run_id": self.run_id,
            "project_id": self.project_id,
            "methodology_id": self.methodology_id,
            "code_version": self.code_version,
            "git_commit": self.git_commit,
            "artifacts": [e.to_dict() for e in self.entries],
            "merkle_algorithm": dict(MERKLE_ALGORITHM),
            "merkle_root": self.merkle_root,
        }

    def to_bytes(self) -> bytes:
        return canonical_json_bytes(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse and check the shape of ``manifest.json`` (not the Merkle root: that is a verify check).

        Raises :class:`PackageError` whose message says what is wrong (without the file name).
        """
        try:
            doc = loads_json(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PackageError(f"not valid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise PackageError("not a JSON object")
        if doc.get("format") != FORMAT_ID:
            raise PackageError(f"format is {doc.get('format')!r}, expected {FORMAT_ID!r}")
        version = doc.get("format_version")
        if not isinstance(version, str) or version.split(".")[0] != _FORMAT_MAJOR:
            raise PackageError(f"unsupported format_version {version!r}; this code reads {_FORMAT_MAJOR}.x")
        if doc.get("merkle_algorithm") != dict(MERKLE_ALGORITHM):
            got = doc.get("merkle_algorithm")
            got_id = got.get("id") if isinstance(got, dict) else got
            raise PackageError(f"unsupported merkle_algorithm {got_id!r}; expected {MERKLE_ALGORITHM_ID!r} as specified")
        for key in ("run_id", "project_id", "methodology_id", "code_version"):
            if not isinstance(doc.get(key), str) or not doc[key]:
                raise PackageError(f"field {key!r} must be a non-empty string")
        if doc.get("git_commit") is not None and not isinstance(doc["git_commit"], str):
            raise PackageError("field 'git_commit' must be a string or null")
        root = doc.get("merkle_root")
        if not isinstance(root, str) or not _DIGEST.match(root):
            raise PackageError(f"merkle_root {root!r} is not 'sha256:' and 64 lowercase hex digits")
        raw = doc.get("artifacts")
        if not isinstance(raw, list):
            raise PackageError("field 'artifacts' must be a list")
        entries = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict) or set(item) != {"path", "role", "media_type", "sha256", "size"}:
                raise PackageError(f"artifacts[{i}] must have exactly path, role, media_type, sha256 and size")
            size = item["size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise PackageError(f"artifacts[{i}] ({item.get('path')!r}): size {size!r} is not a non-negative integer")
            for key in ("role", "media_type"):
                if not isinstance(item[key], str) or not item[key]:
                    raise PackageError(f"artifacts[{i}] ({item.get('path')!r}): {key} must be a non-empty string")
            if not isinstance(item["sha256"], str) or not _DIGEST.match(item["sha256"]):
                raise PackageError(f"artifacts[{i}] ({item.get('path')!r}): sha256 {item['sha256']!r} is malformed")
            entries.append(ManifestEntry(item["path"], item["role"], item["media_type"], item["sha256"], size))
        _check_entries(entries, where="artifacts")
        if [e.path.encode() for e in entries] != sorted(e.path.encode() for e in entries):
            raise PackageError("artifacts are not sorted by path")
        return cls(
            run_id=doc["run_id"],
            project_id=doc["project_id"],
            methodology_id=doc["methodology_id"],
            code_version=doc["code_version"],
            git_commit=doc.get("git_commit"),
            entries=tuple(entries),
            merkle_root=root,
            format_version=version,
        )


def _check_entries(entries: Sequence[ManifestEntry], *, where: str) -> None:
    seen: set[str] = set()
    for e in entries:
        check_package_path(e.path, what=f"{where} path")
        if e.path == MANIFEST_PATH or e.path.startswith(SIGNATURES_DIR):
            raise PackageError(f"{where} path {e.path!r} is reserved ({MANIFEST_PATH}, {SIGNATURES_DIR}...)")
        if e.path in seen:
            raise PackageError(f"{where} path {e.path!r} appears twice")
        seen.add(e.path)
        sorted_digests([e.sha256])  # validates the digest


def inclusion_proof(manifest: Manifest, *, path: str) -> MerkleProof:
    """The Merkle inclusion proof of the artifact at ``path``, for a registry to check one file.

    Check it with ``verify_inclusion(digest=<sha256 of the file>, proof=..., root=manifest.merkle_root)``.
    """
    entry = manifest.entry(path)
    ordered = sorted_digests(manifest.digests)
    return merkle_proof(ordered, ordered.index(entry.sha256))


# --------------------------------------------------------------------------- claims of signed documents


def package_claim(*, merkle_root: str, manifest_sha256: str) -> dict[str, str]:
    """What a signed document puts at ``credentialSubject.package`` to name the package it signs."""
    return {MERKLE_ROOT_FIELD: merkle_root, MANIFEST_SHA256_FIELD: manifest_sha256}


def claimed_packages(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every ``credentialSubject.package`` object of a document (a VC may have several subjects)."""
    subject = document.get(SUBJECT_FIELD)
    subjects = subject if isinstance(subject, list) else [subject]
    return [
        s[PACKAGE_CLAIM_FIELD]
        for s in subjects
        if isinstance(s, Mapping) and isinstance(s.get(PACKAGE_CLAIM_FIELD), Mapping)
    ]


def claim_problems(document: Mapping[str, Any], *, merkle_root: str, manifest_sha256: str) -> list[str]:
    """Why ``document`` does not name this package (empty when it does)."""
    claims = claimed_packages(document)
    if not claims:
        return [f"does not name the package it signs (no {SUBJECT_FIELD}.{PACKAGE_CLAIM_FIELD})"]
    problems = []
    for claim in claims:
        got_root = claim.get(MERKLE_ROOT_FIELD)
        if got_root != merkle_root:
            problems.append(f"{MERKLE_ROOT_CLAIM} {got_root!r} does not match the package (recomputed {merkle_root})")
        got_manifest = claim.get(MANIFEST_SHA256_FIELD)
        if got_manifest != manifest_sha256:
            problems.append(
                f"{MANIFEST_SHA256_CLAIM} {got_manifest!r} does not match {MANIFEST_PATH} (recomputed {manifest_sha256})"
            )
    return problems


# Attachments: files outside the Merkle tree whose digests a signed document claims in
# ``credentialSubject.renderings`` (the HTML/PDF twin of the report shows the Merkle root, so it
# cannot be a leaf of the tree it displays). An attachment no signed document claims is tampering.
ATTACHMENTS_DIR = "report/"
RENDERINGS_FIELD = "renderings"


def claimed_attachments(document: Mapping[str, Any]) -> dict[str, str]:
    """``path -> sha256`` of the attachments a signed document claims."""
    subject = document.get("credentialSubject")
    items = subject.get(RENDERINGS_FIELD) if isinstance(subject, Mapping) else None
    out: dict[str, str] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("path"), str) and isinstance(item.get("sha256"), str):
            out[item["path"]] = item["sha256"]
    return out
