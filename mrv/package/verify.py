"""Verify a verification package offline: no database, no network, only the zip.

Checks, in this order (all are run; the first failure is reported as ``first_failure``):

1. ``archive``   the file is a readable zip; no entry name appears twice or is unsafe
2. ``manifest``  ``manifest.json`` is present and well-formed (format, version, Merkle algorithm,
                 entries sorted, unique, with valid digests and sizes)
3. ``entry``     every manifest entry is in the zip with the listed size and sha256
4. ``unlisted``  no file other than ``manifest.json`` and ``signatures/<name>.json`` is missing from
                 the manifest (an added file is tampering too)
5. ``merkle``    the Merkle root recomputed from the manifest's digests equals its ``merkle_root``
                 (with 3. this ties the root to the bytes of every file)
6. ``claim``     every signed document claims ``credentialSubject.package.merkle_root`` and
                 ``credentialSubject.package.manifest_sha256`` equal to the recomputed root and the
                 sha256 of the ``manifest.json`` bytes
7. ``signature`` every signed document's signature verifies through the injected
                 ``verify_signature`` callback; required documents are present

Without a ``verify_signature`` callback, step 7 is recorded as *skipped* (``Check.skipped``) and
does not make ``ok`` false: ``ok`` then means "intact and consistent", not "signed". Callers that
need signatures pass the callback (and ``required_signatures``) and may check ``fully_verified``.

Reading is bounded: an entry is only decompressed when its size in the zip matches the manifest.

The package is a path, the zip's bytes, or an open :class:`zipfile.ZipFile` (left open). Each
file is read once; what was read comes back with the result, so a caller that needs more of the
package (the registry's intake checks) does not read, inflate or parse it again: the parsed
manifest (``manifest``), every signed document (``documents``: parsed JSON objects,
``document_bytes``: their exact bytes) and the bytes of the manifest entries ``keep`` selects
whose size and sha256 matched (``files``).
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from mrv.errors import PackageError
from mrv.package.manifest import (
    ATTACHMENTS_DIR,
    RENDERINGS_FIELD,
    claimed_attachments,
    MANIFEST_PATH,
    SIGNATURES_DIR,
    Manifest,
    ManifestEntry,
    check_package_path,
    claim_problems,
    loads_json,
    signature_name,
    signature_path,
)

MAX_MANIFEST_BYTES: Final = 64 << 20
MAX_SIGNED_DOCUMENT_BYTES: Final = 16 << 20
_CHUNK: Final = 1 << 20

# A package to verify: a path, the zip's bytes, or an open ZipFile (not closed here).
PackageSource = Path | str | bytes | bytearray | memoryview | zipfile.ZipFile
# Which manifest entries' bytes to return (``PackageVerification.files``).
EntryFilter = Callable[[ManifestEntry], bool]
# What a signature verifier returns: a bool, or an object/mapping with a boolean ``ok`` (or
# ``verified``) and optionally ``detail``/``reason``/``error``/``errors``/``message``.
SignatureVerifier = Callable[[dict[str, Any]], Any]


class CheckKind(StrEnum):
    ARCHIVE = "archive"
    MANIFEST = "manifest"
    ENTRY = "entry"
    UNLISTED = "unlisted"
    MERKLE = "merkle"
    CLAIM = "claim"
    SIGNATURE = "signature"


@dataclass(frozen=True, slots=True)
class Check:
    """One check: ``name`` is what was checked (a path inside the package, or the package file)."""

    kind: CheckKind
    name: str
    ok: bool
    detail: str
    skipped: bool = False

    def __str__(self) -> str:
        return f"{self.name}: {self.detail}"


@dataclass(frozen=True, slots=True)
class PackageVerification:
    ok: bool
    merkle_root: str | None  # recomputed from the manifest's digests (None without a readable manifest)
    manifest_sha256: str | None
    checks: list[Check] = field(default_factory=list)
    first_failure: str | None = None
    signed_documents: tuple[str, ...] = ()
    # What was read (see the module doc): not part of the outcome, so not compared or shown.
    manifest: Manifest | None = field(default=None, compare=False, repr=False)
    documents: Mapping[str, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)  # (given to verify_signature)
    document_bytes: Mapping[str, bytes] = field(default_factory=dict, compare=False, repr=False)
    files: Mapping[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def skipped(self) -> list[Check]:
        return [c for c in self.checks if c.skipped]

    @property
    def fully_verified(self) -> bool:
        """ok, at least one signed document, and every signature actually checked."""
        return self.ok and bool(self.signed_documents) and not self.skipped


def verify_package(
    path: PackageSource,
    *,
    verify_signature: SignatureVerifier | None = None,
    required_signatures: Collection[str] = (),
    keep: EntryFilter | None = None,
    name: str | None = None,
) -> PackageVerification:
    """Check the package at ``path`` (or given as the zip's bytes, or as an open ZipFile); see the
    module doc. Never raises for a bad package: every problem is a failed :class:`Check` naming the
    file and what differs. ``keep`` selects manifest entries whose verified bytes to return in
    ``files``; ``name`` names the package in its archive check (default: the file name, else
    ``package.zip``)."""
    package = path
    if isinstance(package, zipfile.ZipFile):
        if name is None:
            name = Path(package.filename).name if package.filename else "package.zip"
        return _verify_zip(package, _Outcome(), name=name, verify_signature=verify_signature,
                           required_signatures=required_signatures, keep=keep)
    source: Path | io.BytesIO
    if isinstance(package, (bytes, bytearray, memoryview)):
        source, name = io.BytesIO(package), (name if name is not None else "package.zip")
    else:
        source = Path(package)
        name = name if name is not None else source.name
    out = _Outcome()
    try:
        zf = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        out.checks.append(Check(CheckKind.ARCHIVE, name, False, f"not a readable zip archive ({exc})"))
        return out.result()
    with zf:
        return _verify_zip(zf, out, name=name, verify_signature=verify_signature, required_signatures=required_signatures, keep=keep)


@dataclass(slots=True)
class _Outcome:
    """What :func:`verify_package` found and read so far."""

    checks: list[Check] = field(default_factory=list)
    manifest: Manifest | None = None
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    document_bytes: dict[str, bytes] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def result(self, *, root: str | None = None, manifest_sha256: str | None = None, signed: tuple[str, ...] = ()) -> PackageVerification:
        failed = next((c for c in self.checks if not c.ok), None)
        return PackageVerification(
            ok=failed is None,
            merkle_root=root,
            manifest_sha256=manifest_sha256,
            checks=self.checks,
            first_failure=None if failed is None else str(failed),
            signed_documents=signed,
            manifest=self.manifest,
            documents=self.documents,
            document_bytes=self.document_bytes,
            files=self.files,
        )


def _verify_zip(
    zf: zipfile.ZipFile,
    out: _Outcome,
    *,
    name: str,
    verify_signature: SignatureVerifier | None,
    required_signatures: Collection[str],
    keep: EntryFilter | None,
) -> PackageVerification:
    checks, result = out.checks, out.result
    reader = _Reader(zf)
    infos = [i for i in zf.infolist() if not i.is_dir()]
    by_name = {i.filename: i for i in infos}
    archive_ok = True
    for entry_name, count in sorted(Counter(i.filename for i in infos).items()):
        if count > 1:
            archive_ok = False
            checks.append(Check(CheckKind.ARCHIVE, entry_name, False, f"appears {count} times in the zip"))
    for entry_name in sorted(by_name):
        try:
            check_package_path(entry_name, what="zip entry name")
        except PackageError as exc:
            archive_ok = False
            checks.append(Check(CheckKind.ARCHIVE, entry_name, False, f"unsafe entry name ({exc})"))
    if archive_ok:
        checks.append(Check(CheckKind.ARCHIVE, name, True, f"readable zip, {len(infos)} files"))

    # ---- manifest
    if MANIFEST_PATH not in by_name:
        checks.append(Check(CheckKind.MANIFEST, MANIFEST_PATH, False, "missing from the package"))
        return result()
    try:
        manifest_bytes = _read(reader, by_name[MANIFEST_PATH], limit=MAX_MANIFEST_BYTES)
    except PackageError as exc:
        checks.append(Check(CheckKind.MANIFEST, MANIFEST_PATH, False, str(exc)))
        return result()
    manifest_sha256 = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    try:
        manifest = Manifest.from_bytes(manifest_bytes)
    except PackageError as exc:
        checks.append(Check(CheckKind.MANIFEST, MANIFEST_PATH, False, f"malformed: {exc}"))
        return result(manifest_sha256=manifest_sha256)
    out.manifest = manifest
    checks.append(
        Check(CheckKind.MANIFEST, MANIFEST_PATH, True, f"run {manifest.run_id}, {len(manifest.entries)} artifacts")
    )

    # ---- entries
    for entry in manifest.entries:
        info = by_name.get(entry.path)
        if info is None:
            checks.append(Check(CheckKind.ENTRY, entry.path, False, "missing from the package"))
            continue
        if info.file_size != entry.size:
            checks.append(
                Check(CheckKind.ENTRY, entry.path, False, f"size mismatch (manifest {entry.size}, file {info.file_size})")
            )
            continue
        kept = keep is not None and keep(entry)
        try:
            digest, size, data = _hash(reader, info, limit=entry.size, keep=kept)
        except PackageError as exc:
            checks.append(Check(CheckKind.ENTRY, entry.path, False, str(exc)))
            continue
        if size != entry.size:
            checks.append(Check(CheckKind.ENTRY, entry.path, False, f"size mismatch (manifest {entry.size}, file {size})"))
        elif digest != entry.sha256:
            checks.append(
                Check(CheckKind.ENTRY, entry.path, False, f"sha256 mismatch (manifest {entry.sha256}, file {digest})")
            )
        else:
            checks.append(Check(CheckKind.ENTRY, entry.path, True, f"{entry.sha256}, {entry.size} bytes"))
            if data is not None:
                out.files[entry.path] = data

    # ---- unlisted files
    listed = {e.path for e in manifest.entries}
    signatures: list[tuple[str, str]] = []  # (path, document name)
    attachments: list[str] = []
    for entry_name in sorted(by_name):
        if entry_name in listed or entry_name == MANIFEST_PATH:
            continue
        doc_name = signature_name(entry_name)
        if doc_name is not None:
            signatures.append((entry_name, doc_name))
        elif entry_name.startswith(ATTACHMENTS_DIR):
            attachments.append(entry_name)
        elif entry_name.startswith(SIGNATURES_DIR):
            checks.append(
                Check(CheckKind.UNLISTED, entry_name, False, f"not a signed document (expected {SIGNATURES_DIR}<name>.json)")
            )
        else:
            checks.append(Check(CheckKind.UNLISTED, entry_name, False, f"not listed in {MANIFEST_PATH}"))

    # ---- Merkle root
    root = manifest.recompute_root()
    if root == manifest.merkle_root:
        checks.append(Check(CheckKind.MERKLE, MANIFEST_PATH, True, f"merkle_root {root} matches artifacts"))
    else:
        checks.append(
            Check(
                CheckKind.MERKLE,
                MANIFEST_PATH,
                False,
                f"merkle_root does not match artifacts (manifest {manifest.merkle_root}, recomputed {root})",
            )
        )

    # ---- signed documents
    names: list[str] = []
    claimed: dict[str, tuple[str, str]] = {}  # attachment path -> (sha256, claiming document)
    for sig_path, doc_name in signatures:
        names.append(doc_name)
        try:
            raw = _read(reader, by_name[sig_path], limit=MAX_SIGNED_DOCUMENT_BYTES)
        except PackageError as exc:
            checks.append(Check(CheckKind.CLAIM, sig_path, False, str(exc)))
            continue
        out.document_bytes[sig_path] = raw
        try:
            document = loads_json(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            checks.append(Check(CheckKind.CLAIM, sig_path, False, f"not valid JSON ({exc})"))
            continue
        if not isinstance(document, dict):
            checks.append(Check(CheckKind.CLAIM, sig_path, False, "not a JSON object"))
            continue
        out.documents[sig_path] = document
        problems = claim_problems(document, merkle_root=root, manifest_sha256=manifest_sha256)
        if problems:
            checks.append(Check(CheckKind.CLAIM, sig_path, False, "; ".join(problems)))
        else:
            checks.append(Check(CheckKind.CLAIM, sig_path, True, "names this package (merkle_root, manifest_sha256)"))
        checks.append(_check_signature(sig_path, document, verify_signature))
        for apath, adigest in claimed_attachments(document).items():
            claimed[apath] = (adigest, sig_path)

    # ---- attachments (outside the tree, bound by a signed document's claim)
    for apath in attachments:
        if apath not in claimed:
            checks.append(Check(CheckKind.UNLISTED, apath, False, f"attachment not claimed by any signed document's {RENDERINGS_FIELD}"))
            continue
        try:
            digest, _, _ = _hash(reader, by_name[apath], limit=by_name[apath].file_size)
        except PackageError as exc:
            checks.append(Check(CheckKind.ENTRY, apath, False, str(exc)))
            continue
        want, doc = claimed[apath]
        ok = digest == want
        detail = f"matches {doc}" if ok else f"sha256 mismatch ({doc} claims {want}, file {digest})"
        checks.append(Check(CheckKind.ENTRY, apath, ok, detail))
    for apath in sorted(set(claimed) - set(attachments)):
        checks.append(Check(CheckKind.ENTRY, apath, False, f"missing (claimed by {claimed[apath][1]})"))
    for doc_name in sorted(set(required_signatures) - set(names)):
        try:
            where = signature_path(doc_name)
        except PackageError:
            where = f"{SIGNATURES_DIR}{doc_name}.json"
        checks.append(Check(CheckKind.SIGNATURE, where, False, "missing (required signed document)"))

    return result(root=root, manifest_sha256=manifest_sha256, signed=tuple(names))


def _check_signature(sig_path: str, document: dict[str, Any], verify_signature: SignatureVerifier | None) -> Check:
    if verify_signature is None:
        return Check(CheckKind.SIGNATURE, sig_path, True, "signature not checked (no verify_signature given)", skipped=True)
    try:
        outcome = verify_signature(document)
    except Exception as exc:  # a verifier that crashes has not verified anything
        return Check(CheckKind.SIGNATURE, sig_path, False, f"signature invalid (verifier raised {type(exc).__name__}: {exc})")
    ok, detail = _interpret(outcome)
    if ok:
        return Check(CheckKind.SIGNATURE, sig_path, True, "signature valid" + (f" ({detail})" if detail else ""))
    return Check(CheckKind.SIGNATURE, sig_path, False, "signature invalid" + (f" ({detail})" if detail else ""))


def _interpret(outcome: Any) -> tuple[bool, str | None]:
    if isinstance(outcome, bool):
        return outcome, None
    get: Callable[[str], Any]
    if isinstance(outcome, Mapping):
        get = outcome.get
    else:
        get = lambda key: getattr(outcome, key, None)  # noqa: E731
    ok = get("ok")
    if ok is None:
        ok = get("verified")
    if not isinstance(ok, bool):
        return False, f"verifier returned {type(outcome).__name__} without a boolean 'ok' or 'verified'"
    for key in ("detail", "reason", "error", "errors", "message"):
        value = get(key)
        if value:
            if isinstance(value, (list, tuple)):
                return ok, "; ".join(str(v) for v in value)
            return ok, str(value)
    return ok, None


_DIRECT_MAX: Final = 8 << 20  # entries up to this size (uncompressed) may be read by _Reader.direct
_LOCAL_HEADER: Final = struct.Struct("<4s2B4HL2L2H")  # zipfile.structFileHeader
_LOCAL_MAGIC: Final = b"PK\x03\x04"
_UNSUPPORTED_FLAGS: Final = 0x01 | 0x20 | 0x40  # encrypted, compressed patched data, strong encryption
_UTF8_NAME: Final = 0x800


class _Reader:
    """Reads entries of ``zf``. When the zip is in memory (a BytesIO), an entry of at most
    :data:`_DIRECT_MAX` bytes is read from those bytes in one step (:meth:`direct`) when that
    gives exactly what :mod:`zipfile` gives: anything zipfile would refuse or read differently
    (a damaged or unusual header, encryption, another compression method, a CRC mismatch,
    overlapping entries, a size that does not add up) is read through zipfile, with its errors."""

    __slots__ = ("zf", "data", "ends")

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        fp = getattr(zf, "fp", None)
        data = fp.getvalue() if type(fp) is io.BytesIO else None  # the very bytes object: no copy
        self.data: bytes | None = None
        self.ends: dict[int, int] = {}
        if data is not None:
            offsets = sorted(i.header_offset for i in zf.filelist)
            if len(set(offsets)) == len(offsets):  # else: entries share a header (zipfile decides)
                self.data = data
                self.ends = dict(zip(offsets, [*offsets[1:], zf.start_dir]))

    def direct(self, info: zipfile.ZipInfo) -> bytes | None:
        """The entry's bytes, or None: read it through zipfile."""
        data = self.data
        if (data is None or info.file_size > _DIRECT_MAX or info.flag_bits & _UNSUPPORTED_FLAGS
                or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)):
            return None
        off = info.header_offset
        header = data[off:off + _LOCAL_HEADER.size]
        if len(header) != _LOCAL_HEADER.size:
            return None
        fields = _LOCAL_HEADER.unpack(header)
        if fields[0] != _LOCAL_MAGIC:
            return None
        name_end = off + _LOCAL_HEADER.size + fields[10]
        try:
            name = data[off + _LOCAL_HEADER.size:name_end].decode(
                "utf-8" if fields[3] & _UTF8_NAME else (self.zf.metadata_encoding or "cp437"))
        except UnicodeDecodeError:
            return None
        start = name_end + fields[11]
        end = start + info.compress_size
        if name != info.orig_filename or end > self.ends.get(off, -1) or end > len(data):
            return None
        view = memoryview(data)[start:end]
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                return None
            out = bytes(view)
        else:
            inflate = zlib.decompressobj(-15)
            try:
                out = inflate.decompress(view, info.file_size + 1)
            except zlib.error:
                return None
            if not inflate.eof or inflate.unconsumed_tail or inflate.unused_data:
                return None
        if len(out) != info.file_size or zlib.crc32(out) != info.CRC:
            return None
        return out


def _read(reader: _Reader, info: zipfile.ZipInfo, *, limit: int) -> bytes:
    if info.file_size > limit:
        raise PackageError(f"too large ({info.file_size} bytes; at most {limit})")
    data = reader.direct(info)
    if data is not None:
        return data
    try:
        with reader.zf.open(info) as fh:
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
        raise PackageError(f"unreadable ({exc})") from None
    if len(data) > limit:
        raise PackageError(f"too large (more than {limit} bytes)")
    return data


def _hash(reader: _Reader, info: zipfile.ZipInfo, *, limit: int, keep: bool = False) -> tuple[str, int, bytes | None]:
    """sha256 and size of an entry (reading at most one chunk past ``limit``), and with ``keep``
    its bytes (None when it holds more than ``limit`` bytes)."""
    if info.file_size <= limit:
        data = reader.direct(info)
        if data is not None:
            return "sha256:" + hashlib.sha256(data).hexdigest(), len(data), data if keep else None
    h = hashlib.sha256()
    n = 0
    parts: list[bytes] | None = [] if keep else None
    try:
        with reader.zf.open(info) as fh:
            while chunk := fh.read(_CHUNK):
                n += len(chunk)
                if n > limit:
                    parts = None
                    break
                h.update(chunk)
                if parts is not None:
                    parts.append(chunk)
    except (zipfile.BadZipFile, zlib.error, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
        raise PackageError(f"unreadable ({exc})") from None
    data = None if parts is None else parts[0] if len(parts) == 1 else b"".join(parts)
    return "sha256:" + h.hexdigest(), n, data
