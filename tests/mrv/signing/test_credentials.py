"""VC Data Model 2.0 credentials: issue, verify, issuer binding, trust, validity period."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mrv.errors import SigningError
from mrv.signing import (
    MRV_CONTEXT_URL,
    VC_V2_CONTEXT,
    KeyPair,
    KeyRole,
    add_proof,
    canonicalize,
    generate_key,
    issue_credential,
    load_key,
    mrv_context_document,
    verify_credential,
    verify_proof,
    write_key,
)

SUBJECT = {
    "id": "urn:mrv:project:demo-solar-1",
    "methodology": "CDM:ACM0002:22.0",
    "monitoringPeriod": {"start": "2024-01-01", "end": "2024-12-31"},
    "emissionReductions": {"value": 1234.567, "unit": "t CO2e"},
    "artifacts": ["sha256:" + "ab" * 32],
}
VALID_FROM = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def developer() -> KeyPair:
    return generate_key(role=KeyRole.developer)


@pytest.fixture(scope="module")
def vvb() -> KeyPair:
    return generate_key(role=KeyRole.vvb)


@pytest.fixture
def vc(developer: KeyPair) -> dict[str, Any]:
    return issue_credential(
        subject=SUBJECT,
        types=["MonitoringReportCredential"],
        issuer_key=developer,
        valid_from=VALID_FROM,
        credential_id="urn:uuid:00000000-0000-4000-8000-000000000001",
    )


def test_shape(developer: KeyPair, vc: dict[str, Any]) -> None:
    assert list(vc) == ["@context", "id", "type", "issuer", "validFrom", "credentialSubject", "proof"]
    assert vc["@context"] == [VC_V2_CONTEXT, MRV_CONTEXT_URL]
    assert vc["type"] == ["VerifiableCredential", "MonitoringReportCredential"]
    assert vc["issuer"] == developer.did
    assert vc["validFrom"] == "2025-01-01T00:00:00Z"
    assert vc["credentialSubject"] == SUBJECT
    assert vc["proof"]["proofPurpose"] == "assertionMethod"
    assert vc["proof"]["verificationMethod"] == developer.verification_method


def test_defaults(developer: KeyPair) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    vc = issue_credential(subject={"id": "urn:x"}, types=[], issuer_key=developer)
    assert vc["type"] == ["VerifiableCredential"]
    assert vc["id"].startswith("urn:uuid:")
    assert before <= datetime.fromisoformat(vc["validFrom"]) <= datetime.now(UTC)
    assert verify_credential(vc).verified


def test_round_trip_and_json(developer: KeyPair, vc: dict[str, Any]) -> None:
    result = verify_credential(vc)
    assert result.verified, result.errors
    assert result.did == developer.did
    assert verify_credential(json.loads(json.dumps(vc))).verified


def test_round_trip_through_key_files(tmp_path: Path) -> None:
    key = generate_key(role=KeyRole.registry)
    priv, _ = write_key(key, out_dir=tmp_path)
    vc = issue_credential(subject=SUBJECT, types=["IssuanceRecord"], issuer_key=load_key(priv))
    assert verify_credential(vc, trusted_issuers={key.did}).verified


def test_subject_is_copied(developer: KeyPair) -> None:
    subject = {"id": "urn:x", "list": [1, 2]}
    vc = issue_credential(subject=subject, types=[], issuer_key=developer)
    subject["list"].append(3)
    assert vc["credentialSubject"]["list"] == [1, 2]


def test_changed_subject_fails(vc: dict[str, Any]) -> None:
    vc["credentialSubject"]["emissionReductions"]["value"] = 1234.568
    result = verify_credential(vc)
    assert not result.verified
    assert any("signature does not match" in e for e in result.errors)


def test_changed_issuer_fails(vc: dict[str, Any], vvb: KeyPair) -> None:
    vc["issuer"] = vvb.did
    result = verify_credential(vc)
    assert not result.verified
    assert f"issuer {vvb.did} did not sign this credential (signed by {result.did})" in result.errors


def test_resigned_by_another_key_is_not_the_issuers(vc: dict[str, Any], vvb: KeyPair, developer: KeyPair) -> None:
    # Someone strips the proof and signs the developer's credential with their own key.
    unsigned = {k: v for k, v in vc.items() if k != "proof"}
    forged = add_proof(unsigned, key=vvb)
    assert verify_proof(forged).verified  # a valid signature ...
    result = verify_credential(forged)  # ... but not by the issuer
    assert not result.verified
    assert result.errors == [f"issuer {developer.did} did not sign this credential (signed by {vvb.did})"]


def test_issuer_object_form(developer: KeyPair) -> None:
    unsigned = {
        "@context": [VC_V2_CONTEXT, MRV_CONTEXT_URL],
        "type": ["VerifiableCredential"],
        "issuer": {"id": developer.did, "name": "Demo developer"},
        "credentialSubject": {"id": "urn:x"},
    }
    assert verify_credential(add_proof(unsigned, key=developer)).verified


def test_trusted_issuers(vc: dict[str, Any], developer: KeyPair, vvb: KeyPair) -> None:
    assert verify_credential(vc, trusted_issuers={developer.did}).verified
    result = verify_credential(vc, trusted_issuers={vvb.did})
    assert not result.verified
    assert result.errors == [f"issuer {developer.did} is not a trusted issuer"]


def test_a_single_string_is_not_a_trust_list(vc: dict[str, Any], developer: KeyPair) -> None:
    # `did in "did:key:..."` would be a substring test: refuse it rather than half-work.
    with pytest.raises(SigningError, match="not a single string"):
        verify_credential(vc, trusted_issuers=developer.did)
    with pytest.raises(SigningError, match="not a single string"):
        verify_proof(vc, trusted_dids=developer.did)


def test_authentication_proof_is_not_a_credential(developer: KeyPair) -> None:
    unsigned = {
        "@context": [VC_V2_CONTEXT],
        "type": ["VerifiableCredential"],
        "issuer": developer.did,
        "credentialSubject": {"id": "urn:x"},
    }
    result = verify_credential(add_proof(unsigned, key=developer, proof_purpose="authentication"))
    assert not result.verified
    assert "proofPurpose is 'authentication', expected 'assertionMethod'" in result.errors


def test_validity_period(developer: KeyPair) -> None:
    vc = issue_credential(
        subject={"id": "urn:x"},
        types=[],
        issuer_key=developer,
        valid_from=VALID_FROM,
        valid_until=VALID_FROM + timedelta(days=365),
    )
    assert vc["validUntil"] == "2026-01-01T00:00:00Z"
    assert verify_credential(vc, now=VALID_FROM + timedelta(days=1)).verified
    early = verify_credential(vc, now=VALID_FROM - timedelta(seconds=1))
    assert early.errors == ["credential is not valid before 2025-01-01T00:00:00Z"]
    late = verify_credential(vc, now=VALID_FROM + timedelta(days=366))
    assert late.errors == ["credential expired at 2026-01-01T00:00:00Z"]
    with pytest.raises(SigningError, match="later than valid_from"):
        issue_credential(subject={}, types=[], issuer_key=developer, valid_from=VALID_FROM, valid_until=VALID_FROM)


def test_context_appended_after_signing_is_refused(vc: dict[str, Any]) -> None:
    vc["@context"].append({"emissionReductions": "https://evil.example/somethingElse"})
    assert verify_proof(vc).verified  # the bare Data Integrity check allows appending
    result = verify_credential(vc)
    assert not result.verified
    assert result.errors == ["@context differs from the @context the issuer signed (entries added after signing)"]


def test_shape_errors(developer: KeyPair) -> None:
    result = verify_credential({"@context": ["https://www.w3.org/2018/credentials/v1"], "type": "X"})
    assert not result.verified
    assert "@context must be a list starting with 'https://www.w3.org/ns/credentials/v2'" in result.errors
    assert "type must be 'VerifiableCredential' or a list containing it" in result.errors
    assert "credentialSubject is missing" in result.errors
    assert "issuer is missing (must be a URL or an object with an id)" in result.errors
    assert "document has no proof" in result.errors
    assert not verify_credential("not a dict")  # type: ignore[arg-type]


def test_issue_refusals(developer: KeyPair) -> None:
    with pytest.raises(SigningError, match="subject must be a JSON object"):
        issue_credential(subject=[1], types=[], issuer_key=developer)  # type: ignore[arg-type]
    with pytest.raises(SigningError, match="not a single string"):
        issue_credential(subject={}, types="MonitoringReportCredential", issuer_key=developer)
    with pytest.raises(SigningError, match="non-empty strings"):
        issue_credential(subject={}, types=[""], issuer_key=developer)
    with pytest.raises(SigningError, match="timezone-aware"):
        issue_credential(subject={}, types=[], issuer_key=developer, valid_from=datetime(2025, 1, 1))


def test_types_are_deduplicated(developer: KeyPair) -> None:
    vc = issue_credential(subject={}, types=["VerifiableCredential", "A", "A"], issuer_key=developer)
    assert vc["type"] == ["VerifiableCredential", "A"]


def test_extra_contexts_including_inline_objects_verify_here(developer: KeyPair) -> None:
    vc = issue_credential(
        subject={"id": "urn:x"},
        types=[],
        issuer_key=developer,
        extra_contexts=["https://example.com/ctx/v1", {"local": "https://example.com/local#"}],
    )
    assert vc["@context"][2:] == ["https://example.com/ctx/v1", {"local": "https://example.com/local#"}]
    assert verify_credential(json.loads(json.dumps(vc))).verified


def test_mrv_context_document_is_frozen() -> None:
    # Signed credentials cite MRV_CONTEXT_URL: its document must never change under that URL.
    doc = mrv_context_document()
    assert doc == {"@context": {"@vocab": "https://open-dmrv.org/vocab#"}}
    assert canonicalize(doc) == b'{"@context":{"@vocab":"https://open-dmrv.org/vocab#"}}'
    doc["@context"]["@vocab"] = "changed"
    assert mrv_context_document()["@context"]["@vocab"] == "https://open-dmrv.org/vocab#"
