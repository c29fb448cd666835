"""Content-addressed, immutable artifact store.

Blobs are named ``sha256:<hex>`` after their bytes. The local implementation keeps them under
``<root>/sha256/<2 hex>/<hex>`` (read-only), with a JSON sidecar holding media type and the
original names seen. Writes go to a temporary file and are renamed into place, so a crash never
leaves a half-written blob under a valid name. Another backend (an object store) implements
:class:`ArtifactStore`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from mrv.errors import ArtifactError, ArtifactNotFound

_CHUNK = 1 << 20
DIGEST_PREFIX = "sha256:"


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """What a task passes around instead of data: the digest plus enough to interpret the bytes."""

    digest: str
    size: int
    media_type: str
    original_name: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return DIGEST_PREFIX + h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


def _hex(digest: str) -> str:
    if not digest.startswith(DIGEST_PREFIX) or len(digest) != len(DIGEST_PREFIX) + 64:
        raise ArtifactError(f"not a sha256 digest: {digest!r}")
    return digest[len(DIGEST_PREFIX):]


_MEDIA_TYPES = {
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".tif": "image/tiff; application=geotiff",
    ".tiff": "image/tiff; application=geotiff",
    ".html": "text/html",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
}


def guess_media_type(name: str) -> str:
    return _MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


@runtime_checkable
class ArtifactStore(Protocol):
    def put_file(self, path: Path, *, media_type: str | None = None) -> ArtifactRef: ...
    def put_bytes(self, data: bytes, *, media_type: str, name: str | None = None) -> ArtifactRef: ...
    def exists(self, digest: str) -> bool: ...
    def open(self, digest: str) -> BinaryIO: ...
    def local_path(self, digest: str) -> Path: ...
    def ref(self, digest: str) -> ArtifactRef: ...


class LocalArtifactStore:
    """Artifact store on the local filesystem (the default)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _blob(self, digest: str) -> Path:
        hx = _hex(digest)
        return self.root / "sha256" / hx[:2] / hx

    def _meta_path(self, digest: str) -> Path:
        return self._blob(digest).with_suffix(".json")

    def exists(self, digest: str) -> bool:
        return self._blob(digest).exists()

    def local_path(self, digest: str) -> Path:
        p = self._blob(digest)
        if not p.exists():
            raise ArtifactNotFound(f"artifact {digest} is not in the store at {self.root}")
        return p

    def open(self, digest: str) -> BinaryIO:
        return open(self.local_path(digest), "rb")

    def read_bytes(self, digest: str) -> bytes:
        return self.local_path(digest).read_bytes()

    def ref(self, digest: str) -> ArtifactRef:
        p = self.local_path(digest)
        meta = self._read_meta(digest)
        names = meta.get("original_names") or [None]
        return ArtifactRef(digest, p.stat().st_size, meta.get("media_type", "application/octet-stream"), names[0])

    def verify(self, digest: str) -> None:
        """Re-hash a blob; raises if its bytes no longer match its name."""
        actual = sha256_file(self.local_path(digest))
        if actual != digest:
            raise ArtifactError(f"artifact {digest} is corrupt: its bytes hash to {actual}")

    def _read_meta(self, digest: str) -> dict:
        mp = self._meta_path(digest)
        return json.loads(mp.read_text()) if mp.exists() else {}

    def _write_meta(self, digest: str, media_type: str, name: str | None) -> None:
        meta = self._read_meta(digest)
        meta.setdefault("media_type", media_type)
        names = meta.setdefault("original_names", [])
        if name and name not in names:
            names.append(name)
            names.sort()
        _atomic_write(self._meta_path(digest), json.dumps(meta, indent=1, sort_keys=True).encode())

    def put_file(self, path: Path, *, media_type: str | None = None) -> ArtifactRef:
        """Copy a file in, hashing while copying. Re-ingesting the same bytes stores nothing new."""
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"cannot ingest {path}: not a file")
        media_type = media_type or guess_media_type(path.name)
        self.root.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                while chunk := src.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
            digest = DIGEST_PREFIX + h.hexdigest()
            self._commit(Path(tmp), digest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._write_meta(digest, media_type, path.name)
        return self.ref(digest)

    def put_bytes(self, data: bytes, *, media_type: str, name: str | None = None) -> ArtifactRef:
        digest = sha256_bytes(data)
        if not self.exists(digest):
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                self._commit(Path(tmp), digest)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        self._write_meta(digest, media_type, name)
        return self.ref(digest)

    def writer(self, *, media_type: str, name: str | None = None) -> "_HashingWriter":
        """A binary file to write an artifact into, hashed while written (no second pass over the
        bytes, none held in memory). Use as a context manager: on a clean exit the blob is committed
        under its digest and ``.ref`` is set; on an exception nothing is stored."""
        self.root.mkdir(parents=True, exist_ok=True)
        return _HashingWriter(self, media_type, name)

    def _commit(self, tmp: Path, digest: str) -> None:
        dest = self._blob(digest)
        if dest.exists():
            return  # same bytes already stored: content addressing makes this a no-op
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, dest)


class _HashingWriter(io.RawIOBase):
    """See :meth:`LocalArtifactStore.writer`."""

    def __init__(self, store: LocalArtifactStore, media_type: str, name: str | None) -> None:
        super().__init__()
        self._store, self._media_type, self._name = store, media_type, name
        fd, self._tmp = tempfile.mkstemp(dir=store.root, prefix=".incoming-")
        self._fh = os.fdopen(fd, "wb", buffering=_CHUNK)
        self._hash = hashlib.sha256()
        self._pos = 0
        self.ref: ArtifactRef | None = None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        mv = memoryview(data)
        self._hash.update(mv)  # releases the GIL on large buffers
        self._fh.write(mv)
        self._pos += mv.nbytes
        return mv.nbytes

    def tell(self) -> int:
        return self._pos

    def __enter__(self) -> "_HashingWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[override]
        try:
            if not self._fh.closed:
                self._fh.close()
            if exc_type is None:
                digest = DIGEST_PREFIX + self._hash.hexdigest()
                self._store._commit(Path(self._tmp), digest)
                self._store._write_meta(digest, self._media_type, self._name)
                self.ref = self._store.ref(digest)
        finally:
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)
            super().close()

    def close(self) -> None:  # pyarrow closes its sink when the Parquet file is done: keep ours open for __exit__
        pass


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
