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
"""

from __future__ import annotations

import hashlib
import json
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
    check_package_path,
    claim_problems,
    signature_name,
    signature_path,
)

MAX_MANIFEST_BYTES: Final = 64 << 20
MAX_SIGNED_DOCUMENT_BYTES: Final = 16 << 20
_CHUNK: Final = 1 << 20

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
    path: Path,
    *,
    verify_signature: SignatureVerifier | None = None,
    required_signatures: Collection[str] = (),
) -> PackageVerification:
    """Check the package at ``path``; see the module docstring. Never raises for a bad package:
    every problem is a failed :class:`Check` naming the file and what differs."""
    path = Path(path)
    checks: list[Check] = []

    def result(
        *, root: str | None = None, manifest_sha256: str | None = None, signed: tuple[str, ...] = ()
    ) -> PackageVerification:
        failed = next((c for c in checks if not c.ok), None)
        return PackageVerification(
            ok=failed is None,
            merkle_root=root,
            manifest_sha256=manifest_sha256,
            checks=checks,
            first_failure=None if failed is None else str(failed),
            signed_documents=signed,
        )

    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        checks.append(Check(CheckKind.ARCHIVE, path.name, False, f"not a readable zip archive ({exc})"))
        return result()

    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        by_name = {i.filename: i for i in infos}
        archive_ok = True
        for name, count in sorted(Counter(i.filename for i in infos).items()):
            if count > 1:
                archive_ok = False
                checks.append(Check(CheckKind.ARCHIVE, name, False, f"appears {count} times in the zip"))
        for name in sorted(by_name):
            try:
                check_package_path(name, what="zip entry name")
            except PackageError as exc:
                archive_ok = False
                checks.append(Check(CheckKind.ARCHIVE, name, False, f"unsafe entry name ({exc})"))
        if archive_ok:
            checks.append(Check(CheckKind.ARCHIVE, path.name, True, f"readable zip, {len(infos)} files"))

        # ---- manifest
        if MANIFEST_PATH not in by_name:
            checks.append(Check(CheckKind.MANIFEST, MANIFEST_PATH, False, "missing from the package"))
            return result()
        try:
            manifest_bytes = _read(zf, by_name[MANIFEST_PATH], limit=MAX_MANIFEST_BYTES)
        except PackageError as exc:
            checks.append(Check(CheckKind.MANIFEST, MANIFEST_PATH, False, str(exc)))
            return result()
        manifest_sha256 = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
        try:
            manifest = Manifest.from_bytes(manifest_bytes)
        except PackageError as exc:
            checks.append(Check(CheckKind.MANIFEST, MANIFEST_PATH, False, f"malformed: {exc}"))
            return result(manifest_sha256=manifest_sha256)
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
            try:
                digest, size = _hash(zf, info, limit=entry.size)
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

        # ---- unlisted files
        listed = {e.path for e in manifest.entries}
        signatures: list[tuple[str, str]] = []  # (path, document name)
        attachments: list[str] = []
        for name in sorted(by_name):
            if name in listed or name == MANIFEST_PATH:
                continue
            doc_name = signature_name(name)
            if doc_name is not None:
                signatures.append((name, doc_name))
            elif name.startswith(ATTACHMENTS_DIR):
                attachments.append(name)
            elif name.startswith(SIGNATURES_DIR):
                checks.append(
                    Check(CheckKind.UNLISTED, name, False, f"not a signed document (expected {SIGNATURES_DIR}<name>.json)")
                )
            else:
                checks.append(Check(CheckKind.UNLISTED, name, False, f"not listed in {MANIFEST_PATH}"))

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
                document = json.loads(_read(zf, by_name[sig_path], limit=MAX_SIGNED_DOCUMENT_BYTES).decode("utf-8"))
            except PackageError as exc:
                checks.append(Check(CheckKind.CLAIM, sig_path, False, str(exc)))
                continue
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                checks.append(Check(CheckKind.CLAIM, sig_path, False, f"not valid JSON ({exc})"))
                continue
            if not isinstance(document, dict):
                checks.append(Check(CheckKind.CLAIM, sig_path, False, "not a JSON object"))
                continue
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
                digest, _ = _hash(zf, by_name[apath], limit=by_name[apath].file_size)
            except PackageError as exc:
                checks.append(Check(CheckKind.ENTRY, apath, False, str(exc)))
                continue
            want, doc = claimed[apath]
            ok = digest == want
            detail = f"matches {doc}" if ok else f"sha256 mismatch ({doc} claims {want}, file {digest})"
            checks.append(Check(CheckKind.ENTRY, apath, ok, detail))
        for apath in sorted(set(claimed) - set(attachments)):
            checks.append(Check(CheckKind.ENTRY, apath, False, f"missing (claimed by {claimed[apath][1]})"))
        for name in sorted(set(required_signatures) - set(names)):
            try:
                where = signature_path(name)
            except PackageError:
                where = f"{SIGNATURES_DIR}{name}.json"
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


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int) -> bytes:
    if info.file_size > limit:
        raise PackageError(f"too large ({info.file_size} bytes; at most {limit})")
    try:
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
        raise PackageError(f"unreadable ({exc})") from None
    if len(data) > limit:
        raise PackageError(f"too large (more than {limit} bytes)")
    return data


def _hash(zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(_CHUNK):
                n += len(chunk)
                if n > limit:
                    break
                h.update(chunk)
    except (zipfile.BadZipFile, zlib.error, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
        raise PackageError(f"unreadable ({exc})") from None
    return "sha256:" + h.hexdigest(), n
