"""Tampering with a signed package: every change makes ``verify_package`` fail and name what changed.

The package is built once from the real demo run and signed with the stand-in Ed25519-over-JCS
signer of ``conftest.py`` (not the project's eddsa-jcs-2022 module, which is injected the same
way). Each test copies it, changes it with ``zipfile`` (so the result is a well-formed zip whose
CRCs match the new bytes: only the package's own checks can catch it) and verifies the copy.
"""

from __future__ import annotations

import hashlib
import json
import struct
import warnings
import zipfile
from pathlib import Path

import pytest

from mrv.errors import PackageError
from mrv.package import add_signed_document, merkle_root, verify_package, write_package
from mrv.package.manifest import canonical_json_bytes

RAW = "artifacts/raw/EXP-1/EXP-1_2023-01.csv"
CALC = "artifacts/calculation.json"
VALIDATED = "artifacts/validated.json"
QUARANTINE = "artifacts/quarantine.parquet"  # Parquet is stored in the zip as it is (ZIP_STORED)
REPORT = "signatures/report.json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def flip(data: bytes, offset: int) -> bytes:
    """One byte changed (lowest bit flipped: ASCII stays ASCII)."""
    out = bytearray(data)
    out[offset] ^= 0x01
    return bytes(out)


def one_hex_char_changed(digest: str) -> str:
    last = digest[-1]
    return digest[:-1] + ("0" if last != "0" else "1")


def rewrite(
    src: Path,
    dst: Path,
    *,
    replace: dict[str, bytes] | None = None,
    add: dict[str, bytes] | None = None,
    delete: tuple[str, ...] = (),
) -> Path:
    """A copy of the zip with entries replaced, added or deleted (metadata of kept entries unchanged)."""
    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in delete:
                continue
            data = replace.get(info.filename, zin.read(info))
            zout.writestr(info, data)
        for name, data in add.items():
            zout.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=zipfile.ZIP_DEFLATED)
    return dst


def read(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


@pytest.fixture(scope="module")
def package(demo_run, signer, helpers, tmp_path_factory) -> Path:
    plan = demo_run.plan()
    report = signer.sign(helpers.report_document(plan))
    info = write_package(plan, out=tmp_path_factory.mktemp("signed") / "package.zip", signed_documents={"report": report})
    assert verify_package(info.path, verify_signature=signer.verify).ok
    return info.path


@pytest.fixture
def verify(signer):
    def run(path: Path, **kw):
        return verify_package(path, verify_signature=signer.verify, **kw)

    return run


def failures(result) -> list[str]:
    return [str(c) for c in result.failures]


# --------------------------------------------------------------------------- (a), (b): artifact bytes


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(RAW, id="raw-input"),
        pytest.param("artifacts/raw/EXP-2/EXP-2_2023-Q1.parquet", id="raw-parquet"),
        pytest.param(CALC, id="derived-calculation"),
        pytest.param(VALIDATED, id="derived-validated"),
        pytest.param("artifacts/quarantine.parquet", id="derived-quarantine"),
        pytest.param("lineage/graph.json", id="lineage-graph"),
        pytest.param("lineage/openlineage.jsonl", id="openlineage-events"),
    ],
)
def test_one_changed_byte_in_a_file_is_named(package, verify, tmp_path, target):
    original = read(package, target)
    changed = flip(original, len(original) // 2)
    result = verify(rewrite(package, tmp_path / "t.zip", replace={target: changed}))
    assert not result.ok
    expected = f"{target}: sha256 mismatch (manifest {sha(original)}, file {sha(changed)})"
    assert result.first_failure == expected
    assert failures(result) == [expected]  # root, claims and signature still hold for the manifest


# --------------------------------------------------------------------------- (c): manifest.json


def test_changed_digest_in_manifest(package, verify, tmp_path):
    manifest = read(package, "manifest.json")
    real = sha(read(package, CALC))
    forged = one_hex_char_changed(real)
    tampered = manifest.replace(real.encode(), forged.encode())
    assert len(tampered) == len(manifest) and tampered != manifest
    result = verify(rewrite(package, tmp_path / "t.zip", replace={"manifest.json": tampered}))
    assert result.first_failure == f"{CALC}: sha256 mismatch (manifest {forged}, file {real})"
    got = failures(result)
    assert got[1].startswith("manifest.json: merkle_root does not match artifacts (manifest sha256:")
    assert got[2].startswith(f"{REPORT}: credentialSubject.package.merkle_root ")
    assert "credentialSubject.package.manifest_sha256" in got[2] and "does not match manifest.json" in got[2]
    assert len(got) == 3


def test_changed_size_in_manifest(package, verify, tmp_path):
    doc = json.loads(read(package, "manifest.json"))
    entry = next(a for a in doc["artifacts"] if a["path"] == RAW)
    size = entry["size"]
    entry["size"] = size + 1
    result = verify(rewrite(package, tmp_path / "t.zip", replace={"manifest.json": canonical_json_bytes(doc)}))
    assert result.first_failure == f"{RAW}: size mismatch (manifest {size + 1}, file {size})"
    assert failures(result)[1].startswith(f"{REPORT}: credentialSubject.package.manifest_sha256 ")


def test_changed_root_in_manifest(package, verify, tmp_path):
    manifest = read(package, "manifest.json")
    root = json.loads(manifest)["merkle_root"]
    forged = one_hex_char_changed(root)
    tampered = manifest.replace(root.encode(), forged.encode())
    result = verify(rewrite(package, tmp_path / "t.zip", replace={"manifest.json": tampered}))
    assert result.first_failure == f"manifest.json: merkle_root does not match artifacts (manifest {forged}, recomputed {root})"
    # the report signed the real root: only its manifest digest claim no longer holds
    assert [c.kind for c in result.failures] == ["merkle", "claim"]
    assert "credentialSubject.package.manifest_sha256" in failures(result)[1]
    assert result.merkle_root == root


def test_consistent_forgery_is_caught_by_the_signed_report(package, verify, signer, helpers, tmp_path):
    """File, its manifest digest and the root all changed together: only the signature binds."""
    original = read(package, CALC)
    changed = flip(original, 200)
    doc = json.loads(read(package, "manifest.json"))
    for a in doc["artifacts"]:
        if a["path"] == CALC:
            a["sha256"] = sha(changed)
    doc["merkle_root"] = merkle_root(a["sha256"] for a in doc["artifacts"])
    forged = rewrite(package, tmp_path / "t.zip", replace={CALC: changed, "manifest.json": canonical_json_bytes(doc)})
    result = verify(forged)
    assert [c.kind for c in result.failures] == ["claim"]
    assert result.first_failure.startswith(f"{REPORT}: credentialSubject.package.merkle_root ")
    assert f"does not match the package (recomputed {doc['merkle_root']})" in result.first_failure

    # ... and re-pointing the report at the forged package breaks its signature
    report = json.loads(read(package, REPORT))
    claim = {"merkle_root": doc["merkle_root"], "manifest_sha256": sha(canonical_json_bytes(doc))}
    report["credentialSubject"]["package"] = claim
    repointed = rewrite(forged, tmp_path / "t2.zip", replace={REPORT: canonical_json_bytes(report)})
    result = verify(repointed)
    assert result.first_failure == f"{REPORT}: signature invalid (Ed25519 signature does not match the document)"
    assert len(result.failures) == 1
    # re-signing with another key does not help either
    attacker = helpers.StandInSigner(bytes(32), verification_method="did:example:proponent#key-1")
    resigned = rewrite(forged, tmp_path / "t3.zip", replace={REPORT: canonical_json_bytes(attacker.sign(report))})
    assert verify(resigned).first_failure == f"{REPORT}: signature invalid (Ed25519 signature does not match the document)"


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"{not json", "manifest.json: malformed: not valid JSON"),
        (b"[]", "manifest.json: malformed: not a JSON object"),
        (canonical_json_bytes({"format": "something-else"}), "manifest.json: malformed: format is 'something-else'"),
    ],
)
def test_malformed_manifest(package, verify, tmp_path, content, detail):
    result = verify(rewrite(package, tmp_path / "t.zip", replace={"manifest.json": content}))
    assert result.first_failure.startswith(detail)


def test_unsorted_or_duplicated_manifest_entries(package, verify, tmp_path):
    doc = json.loads(read(package, "manifest.json"))
    doc["artifacts"].reverse()
    result = verify(rewrite(package, tmp_path / "t.zip", replace={"manifest.json": canonical_json_bytes(doc)}))
    assert result.first_failure == "manifest.json: malformed: artifacts are not sorted by path"
    doc["artifacts"].reverse()
    doc["artifacts"].insert(0, doc["artifacts"][0])
    result = verify(rewrite(package, tmp_path / "t2.zip", replace={"manifest.json": canonical_json_bytes(doc)}))
    assert result.first_failure == f"manifest.json: malformed: artifacts path {CALC!r} appears twice"


# --------------------------------------------------------------------------- (d), (e): the signed report


def test_changed_report_content(package, verify, tmp_path):
    report = read(package, REPORT)
    tampered = report.replace(b'"issuable_tCO2e": 123456', b'"issuable_tCO2e": 923456')
    assert tampered != report and len(tampered) == len(report)
    result = verify(rewrite(package, tmp_path / "t.zip", replace={REPORT: tampered}))
    assert failures(result) == [f"{REPORT}: signature invalid (Ed25519 signature does not match the document)"]


def test_changed_proof_value(package, verify, tmp_path):
    report = json.loads(read(package, REPORT))
    value = report["proof"]["proofValue"]
    report["proof"]["proofValue"] = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
    result = verify(rewrite(package, tmp_path / "t.zip", replace={REPORT: canonical_json_bytes(report)}))
    assert failures(result) == [f"{REPORT}: signature invalid (Ed25519 signature does not match the document)"]


def test_report_json_garbled(package, verify, tmp_path):
    report = read(package, REPORT)
    result = verify(rewrite(package, tmp_path / "t.zip", replace={REPORT: report[:-10]}))
    assert result.first_failure.startswith(f"{REPORT}: not valid JSON")


def test_crashing_or_odd_verifiers_fail_closed(package):
    def boom(doc):
        raise ValueError("key not resolvable offline")

    result = verify_package(package, verify_signature=boom)
    assert result.first_failure == f"{REPORT}: signature invalid (verifier raised ValueError: key not resolvable offline)"
    result = verify_package(package, verify_signature=lambda doc: "yes")
    assert result.first_failure == f"{REPORT}: signature invalid (verifier returned str without a boolean 'ok' or 'verified')"
    assert verify_package(package, verify_signature=lambda doc: {"verified": True}).ok
    assert not verify_package(package, verify_signature=lambda doc: False).ok


# --------------------------------------------------------------------------- (f): added files


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("artifacts/raw/EXP-1/EXP-1_2023-13.csv", "not listed in manifest.json"),
        ("lineage/notes.txt", "not listed in manifest.json"),
        ("README.txt", "not listed in manifest.json"),
        ("signatures/evil.txt", "not a signed document (expected signatures/<name>.json)"),
    ],
)
def test_added_file(package, verify, tmp_path, name, detail):
    result = verify(rewrite(package, tmp_path / "t.zip", add={name: b"t,v\n2023-01-01,1\n"}))
    assert failures(result) == [f"{name}: {detail}"]


def test_added_signed_document_that_does_not_name_the_package(package, verify, signer, tmp_path):
    doc = signer.sign({"type": ["VerifiableCredential"], "credentialSubject": {"id": "urn:x"}})
    result = verify(rewrite(package, tmp_path / "t.zip", add={"signatures/extra.json": canonical_json_bytes(doc)}))
    assert failures(result) == ["signatures/extra.json: does not name the package it signs (no credentialSubject.package)"]


def test_duplicate_entry_name(package, verify, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate name
        dup = rewrite(package, tmp_path / "t.zip", add={RAW: b"other bytes"})
    result = verify(dup)
    assert result.first_failure == f"{RAW}: appears 2 times in the zip"


# --------------------------------------------------------------------------- (g): deleted files


def test_deleted_file(package, verify, tmp_path):
    result = verify(rewrite(package, tmp_path / "t.zip", delete=(RAW,)))
    assert failures(result) == [f"{RAW}: missing from the package"]


def test_deleted_manifest(package, verify, tmp_path):
    result = verify(rewrite(package, tmp_path / "t.zip", delete=("manifest.json",)))
    assert result.first_failure == "manifest.json: missing from the package"
    assert result.merkle_root is None


def test_stripped_signature_fails_only_when_required(package, verify, tmp_path):
    stripped = rewrite(package, tmp_path / "t.zip", delete=(REPORT,))
    result = verify(stripped, required_signatures=["report"])
    assert failures(result) == [f"{REPORT}: missing (required signed document)"]
    lenient = verify(stripped)
    assert lenient.ok and not lenient.fully_verified and lenient.signed_documents == ()


# --------------------------------------------------------------------------- the zip itself


def test_corrupted_zip_bytes_are_named(package, verify, tmp_path):
    """A byte changed in the raw zip (not via zipfile): the entry's CRC no longer matches."""
    data = bytearray(package.read_bytes())
    with zipfile.ZipFile(package) as zf:
        info = zf.getinfo(QUARANTINE)
        assert info.compress_type == zipfile.ZIP_STORED
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.file_size // 2] ^= 0x01
    bad = tmp_path / "t.zip"
    bad.write_bytes(bytes(data))
    result = verify(bad)
    assert result.first_failure == f"{QUARANTINE}: unreadable (Bad CRC-32 for file '{QUARANTINE}')"


def test_not_a_zip(verify, tmp_path):
    path = tmp_path / "package.zip"
    path.write_bytes(b"PK\x03\x04 definitely not a zip")
    result = verify(path)
    assert not result.ok and result.first_failure.startswith("package.zip: not a readable zip archive")
    assert verify(tmp_path / "absent.zip").first_failure.startswith("absent.zip: not a readable zip archive")


def test_countersigning_refuses_a_tampered_package(package, vvb_signer, helpers, demo_run, tmp_path):
    tampered = rewrite(package, tmp_path / "t.zip", replace={RAW: flip(read(package, RAW), 10)})
    before = tampered.read_bytes()
    statement = vvb_signer.sign(helpers.statement_document(demo_run.plan()))
    with pytest.raises(PackageError, match=f"does not verify: {RAW}: sha256 mismatch"):
        add_signed_document(tampered, name="vvb-statement", document=statement)
    assert tampered.read_bytes() == before


def test_the_projects_eddsa_jcs_2022_module_plugs_in(demo_run, tmp_path):
    """The real signing module (mrv.signing) through the same injected callback: its
    VerificationResult (``verified`` + ``errors``) is understood, and tampering is named."""
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from mrv.signing import KeyPair, KeyRole, issue_credential, verify_credential

    key = KeyPair.from_private_key(Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))), role=KeyRole.developer)
    plan = demo_run.plan()
    report = issue_credential(
        subject={"id": f"urn:open-dmrv:run:{plan.run_id}", "issuable_tCO2e": 123456, "package": plan.claim},
        types=["MonitoringReportCredential"],
        issuer_key=key,
        valid_from=datetime(2024, 2, 1, tzinfo=UTC),
        credential_id="urn:uuid:00000000-0000-4000-8000-000000000001",
    )
    pkg = write_package(plan, out=tmp_path / "pkg.zip", signed_documents={"report": report}).path

    def check(doc):
        return verify_credential(doc, trusted_issuers={key.did})

    result = verify_package(pkg, verify_signature=check, required_signatures=["report"])
    assert result.ok and result.fully_verified, result.first_failure

    tampered = read(pkg, REPORT).replace(b'"issuable_tCO2e": 123456', b'"issuable_tCO2e": 923456')
    result = verify_package(rewrite(pkg, tmp_path / "t.zip", replace={REPORT: tampered}), verify_signature=check)
    assert [c.kind for c in result.failures] == ["signature"]
    assert result.first_failure.startswith(f"{REPORT}: signature invalid (signature does not match")
