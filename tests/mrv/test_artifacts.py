import os
import stat

import pytest

from mrv.artifacts import LocalArtifactStore, sha256_bytes, sha256_file
from mrv.errors import ArtifactError, ArtifactNotFound


def test_put_file_is_content_addressed_and_immutable(tmp_path):
    src = tmp_path / "readings.csv"
    src.write_bytes(b"timestamp,value\n2023-01-01T00:00,1.5\n")
    store = LocalArtifactStore(tmp_path / "store")
    ref = store.put_file(src)
    assert ref.digest == sha256_file(src)
    assert ref.size == src.stat().st_size
    assert ref.media_type == "text/csv"
    assert ref.original_name == "readings.csv"
    blob = store.local_path(ref.digest)
    assert blob.read_bytes() == src.read_bytes()
    assert not (stat.S_IMODE(blob.stat().st_mode) & 0o222), "blobs must be read-only"


def test_reingesting_same_bytes_stores_nothing_new(tmp_path):
    store = LocalArtifactStore(tmp_path / "store")
    a = tmp_path / "a.csv"
    b = tmp_path / "copy-of-a.csv"
    a.write_bytes(b"x,y\n1,2\n")
    b.write_bytes(a.read_bytes())
    r1 = store.put_file(a)
    before = sorted(p for p in (tmp_path / "store").rglob("*") if p.is_file())
    r2 = store.put_file(b)
    after = sorted(p for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert r1.digest == r2.digest
    assert before == after  # same blob and sidecar, no new files
    meta = store._read_meta(r1.digest)
    assert meta["original_names"] == ["a.csv", "copy-of-a.csv"]


def test_put_bytes_and_verify_detects_corruption(tmp_path):
    store = LocalArtifactStore(tmp_path / "store")
    ref = store.put_bytes(b'{"a": 1}', media_type="application/json", name="x.json")
    assert ref.digest == sha256_bytes(b'{"a": 1}')
    store.verify(ref.digest)
    blob = store.local_path(ref.digest)
    os.chmod(blob, 0o644)
    blob.write_bytes(b'{"a": 2}')
    with pytest.raises(ArtifactError, match="corrupt"):
        store.verify(ref.digest)


def test_missing_and_malformed_digests(tmp_path):
    store = LocalArtifactStore(tmp_path)
    with pytest.raises(ArtifactNotFound):
        store.local_path("sha256:" + "0" * 64)
    with pytest.raises(ArtifactError, match="not a sha256 digest"):
        store.exists("md5:abc")
    with pytest.raises(ArtifactError, match="not a file"):
        store.put_file(tmp_path / "nope.csv")


def test_no_partial_blob_left_after_failed_copy(tmp_path):
    store = LocalArtifactStore(tmp_path / "store")
    d = tmp_path / "a-directory.csv"
    d.mkdir()
    with pytest.raises(ArtifactError):
        store.put_file(d)
    leftovers = list((tmp_path / "store").rglob("*")) if (tmp_path / "store").exists() else []
    assert leftovers == []


def test_streaming_writer_hashes_while_writing_and_stores_nothing_on_error(tmp_path):
    """LocalArtifactStore.writer: the blob is committed under the digest of what was written; an
    exception inside the block leaves no blob and no temporary file behind."""
    import hashlib

    import pytest

    from mrv.artifacts import LocalArtifactStore

    store = LocalArtifactStore(tmp_path / "store")
    chunks = [b"ts,kwh\n", b"2024-01-01T00:00Z,1.5\n" * 1000]
    with store.writer(media_type="text/csv", name="streamed.csv") as out:
        for c in chunks:
            out.write(c)
    assert out.ref is not None and out.ref.digest == "sha256:" + hashlib.sha256(b"".join(chunks)).hexdigest()
    assert store.read_bytes(out.ref.digest) == b"".join(chunks) and out.ref.size == sum(map(len, chunks))
    store.verify(out.ref.digest)

    with pytest.raises(RuntimeError):
        with store.writer(media_type="text/csv", name="broken.csv") as bad:
            bad.write(b"partial")
            raise RuntimeError("the producer failed half-way")
    assert bad.ref is None
    blobs = [p for p in (tmp_path / "store").rglob("*") if p.is_file() and not p.name.endswith(".json")]
    assert len([p for p in blobs if not p.name.startswith(".")]) == 1  # only the first blob
    assert not list((tmp_path / "store").glob(".incoming-*"))
