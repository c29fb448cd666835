"""``verify_package`` reads each file of the package once and hands back what it read.

A package can be verified from its path, its bytes or an open ``ZipFile``, with the same outcome;
the result carries the parsed manifest, every signed document (parsed and as bytes) and the
verified bytes of the entries the caller asked to keep. An in-memory zip's small entries are read
straight from its bytes (not through ``zipfile``): on hundreds of damaged copies of a real package
that gives exactly what reading through ``zipfile`` gives, failures and their messages included.
The package's JSON reader (orjson where that is exact) gives ``json.loads``'s values and errors.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import mrv.package.verify as verify_module
from mrv.errors import PackageError
from mrv.package import verify_package, write_package
from mrv.package.manifest import MANIFEST_PATH, PROJECT_FILE_PATH, Manifest, check_package_path, loads_json

CALC = "artifacts/calculation.json"
REPORT = "signatures/report.json"
STATEMENT = "signatures/statement.json"


def keep(entry: Any) -> bool:
    return entry.path in (PROJECT_FILE_PATH, CALC)


@pytest.fixture(scope="module")
def package(demo_run, signer, vvb_signer, helpers, tmp_path_factory) -> Path:
    plan = demo_run.plan()
    docs = {"report": signer.sign(helpers.report_document(plan)), "statement": vvb_signer.sign(helpers.statement_document(plan))}
    info = write_package(plan, out=tmp_path_factory.mktemp("reads") / "package.zip", signed_documents=docs)
    return info.path


def outcome(result: Any) -> tuple[Any, ...]:
    return ([(c.kind, c.name, c.ok, c.detail, c.skipped) for c in result.checks], result.ok, result.merkle_root,
            result.manifest_sha256, result.first_failure, result.signed_documents)


def everything(result: Any) -> tuple[Any, ...]:
    return (*outcome(result), result.manifest, dict(result.documents), dict(result.document_bytes), dict(result.files))


def test_path_bytes_and_open_zip_give_the_same_outcome(package, signer, vvb_signer, helpers):
    verify = helpers.verifier_for(signer, vvb_signer)
    data = package.read_bytes()
    by_path = verify_package(package, verify_signature=verify, keep=keep)
    assert by_path.fully_verified
    by_bytes = verify_package(data, verify_signature=verify, keep=keep, name=package.name)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        by_zip = verify_package(zf, verify_signature=verify, keep=keep, name=package.name)
        assert zf.fp is not None  # the caller's zip is left open
        assert zf.read(MANIFEST_PATH)
    with zipfile.ZipFile(package) as zf:
        by_file_zip = verify_package(zf, verify_signature=verify, keep=keep)
    assert everything(by_path) == everything(by_bytes) == everything(by_zip) == everything(by_file_zip)
    assert by_path == by_bytes  # what was read is not part of the comparison
    assert verify_package(data).checks[0].name == "package.zip"
    assert verify_package(b"not a zip").first_failure == "package.zip: not a readable zip archive (File is not a zip file)"


def test_what_was_read_comes_back(package):
    result = verify_package(package, keep=keep)
    assert result.ok
    with zipfile.ZipFile(package) as zf:
        raw = {name: zf.read(name) for name in zf.namelist()}
    assert result.manifest == Manifest.from_bytes(raw[MANIFEST_PATH])
    assert result.manifest_sha256 == "sha256:" + hashlib.sha256(raw[MANIFEST_PATH]).hexdigest()
    assert dict(result.document_bytes) == {REPORT: raw[REPORT], STATEMENT: raw[STATEMENT]}
    assert dict(result.documents) == {REPORT: json.loads(raw[REPORT]), STATEMENT: json.loads(raw[STATEMENT])}
    assert dict(result.files) == {PROJECT_FILE_PATH: raw[PROJECT_FILE_PATH], CALC: raw[CALC]}
    assert dict(verify_package(package).files) == {}  # nothing kept unless asked


def test_a_kept_entry_that_does_not_match_its_digest_is_not_handed_back(package, tmp_path):
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(package) as zin, zipfile.ZipFile(tampered, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info, data.replace(b"project", b"PROJECT", 1) if info.filename == PROJECT_FILE_PATH else data)
    result = verify_package(tampered.read_bytes(), keep=keep)
    assert not result.ok
    assert result.first_failure.startswith(f"{PROJECT_FILE_PATH}: sha256 mismatch")
    assert set(result.files) == {CALC}


def _mutations(data: bytes, count: int, seed: int) -> list[bytes]:
    """Copies of ``data`` with a few bytes changed, mostly in zip headers (local and central)."""
    rng = random.Random(seed)
    headers = [i for i in range(len(data) - 4) if data[i:i + 4] in (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06")]
    out = []
    for _ in range(count):
        b = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 3))):
            if rng.random() < 0.7:
                k = min(len(b) - 1, rng.choice(headers) + rng.randrange(46))
            else:
                k = rng.randrange(len(b))
            b[k] = rng.randrange(256) if rng.random() < 0.5 else b[k] ^ (1 << rng.randrange(8))
        out.append(bytes(b))
    out.append(b"junk before the archive" + data)  # offsets shifted: zipfile finds the archive anyway
    out.append(data[: len(data) // 2])
    return out


def _verified(data: bytes) -> tuple[Any, ...]:
    try:
        return everything(verify_package(data, keep=keep))
    except Exception as exc:  # verify_package's safety net is the caller's: compare what escapes too
        return ("raised", type(exc).__name__, str(exc))


def test_reading_from_memory_gives_what_zipfile_gives_on_damaged_packages(package, monkeypatch):
    data = package.read_bytes()
    cases = _mutations(data, 400, seed=20240601)
    direct = [_verified(b) for b in cases]
    monkeypatch.setattr(verify_module, "_DIRECT_MAX", -1)  # every entry through zipfile
    through_zipfile = [_verified(b) for b in cases]
    assert direct == through_zipfile
    outcomes = {"raised" if r[0] == "raised" else "ok" if r[1] else r[4].split(":")[0] for r in direct}
    assert len(outcomes) > 5  # the mutations hit many different checks, not one
    assert "ok" in outcomes  # and some leave the package intact (e.g. a changed timestamp)


def test_reading_from_memory_is_used_for_the_entries_of_a_zip_in_memory(package, monkeypatch):
    data = package.read_bytes()
    calls = {"direct": 0, "zipfile": 0}
    original = verify_module._Reader.direct

    def counted(self: Any, info: zipfile.ZipInfo) -> bytes | None:
        got = original(self, info)
        calls["direct" if got is not None else "zipfile"] += 1
        return got

    monkeypatch.setattr(verify_module._Reader, "direct", counted)
    assert verify_package(data).ok
    with zipfile.ZipFile(package) as zf:
        assert calls == {"direct": len(zf.namelist()), "zipfile": 0}
    assert verify_package(package).ok  # a file on disk: read through zipfile
    assert calls["zipfile"] == len(zipfile.ZipFile(package).namelist())


# --------------------------------------------------------------------------- the JSON reader

_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


def _same(data: bytes) -> None:
    def read(f: Any) -> tuple[str, Any]:
        try:
            return "ok", repr(f(data))
        except Exception as exc:
            return type(exc).__name__, str(exc)

    assert read(loads_json) == read(lambda d: json.loads(d.decode("utf-8")))


@settings(max_examples=300, deadline=None)
@given(_json)
@example(12345678901234567890123)
@example([-18446744073709551616, 18446744073709551615, -9223372036854775809])
@example({"a": 1e300, "b": -0.0, "c": 5e-324})
def test_the_json_reader_gives_json_values(value: Any) -> None:
    _same(json.dumps(value).encode())
    _same(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("data", [
    b'{"a": NaN, "b": Infinity}', b'"\\ud800"', b"1e400", b'{"a": 1, "a": 2}', b"\xef\xbb\xbf{}", b"[1,]", b"",
    b'{"x": "\x01"}', b"\xff", b'{"sha": "sha256:1234567890123456789012345678901234567890123456789012345678901234"}',
    b'"12345678901234567890"', b"-12345678901234567890", b"0.12345678901234567890123",
])
def test_the_json_reader_gives_json_values_and_errors_on_edge_cases(data: bytes) -> None:
    _same(data)


# --------------------------------------------------------------------------- package paths


def _reference_check_package_path(path: object) -> str:
    """``check_package_path`` as first written (one character at a time)."""
    if not isinstance(path, str) or not path or len(path) > 512:
        raise PackageError("length")
    if path.startswith("/") or "\\" in path or any(ord(c) < 0x20 or c == "\x7f" for c in path):
        raise PackageError("character")
    if any(seg in ("", ".", "..") for seg in path.split("/")):
        raise PackageError("segment")
    return path


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(["a", "/", ".", "\\", "\x00", "\x1f", "\x7f", "\n", " ", "é", "x"]), max_size=12)
       | st.text(max_size=30))
@example("a/../b")
@example("a/./b")
@example("...")
@example("a//b")
@example("a/")
@example("a/.\n")
def test_package_paths_are_judged_as_before(path: str) -> None:
    def judged(check: Any) -> str:
        try:
            return "ok: " + check(path)
        except PackageError as exc:
            message = str(exc)
            for tag, words in (("length", "non-empty string"), ("character", "relative path"), ("segment", "segments are not allowed")):
                if tag == message or words in message:
                    return tag
            raise

    assert judged(check_package_path) == judged(_reference_check_package_path)
