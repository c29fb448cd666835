"""eddsa-jcs-2022 proofs: round trip, every kind of tampering, purposes, trust, number handling."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mrv.errors import SigningError
from mrv.signing import didkey
from mrv.signing.dataintegrity import (
    CRYPTOSUITE,
    VerificationResult,
    add_proof,
    canonicalize,
    verify_proof,
)
from mrv.signing.keys import KeyPair, KeyRole, generate_key

SIG_MISMATCH = "signature does not match"


@pytest.fixture(scope="module")
def key() -> KeyPair:
    return generate_key(role=KeyRole.developer)


@pytest.fixture(scope="module")
def other() -> KeyPair:
    return generate_key(role=KeyRole.vvb)


def _doc() -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2", "https://open-dmrv.org/ns/credentials/v1"],
        "type": ["VerifiableCredential", "MonitoringReportCredential"],
        "credentialSubject": {
            "id": "urn:mrv:project:demo",
            "tCO2e": 1234.5,
            "readings": [0.1, 2, -3.25e-7],
            "label": "Ünïcödé ✓",
        },
    }


@pytest.fixture
def secured(key: KeyPair) -> dict[str, Any]:
    return add_proof(_doc(), key=key)


def _fails_with(result: VerificationResult, fragment: str) -> None:
    assert not result.verified
    assert not result
    assert any(fragment in e for e in result.errors), result.errors


def test_round_trip(key: KeyPair, secured: dict[str, Any]) -> None:
    proof = secured["proof"]
    assert proof["type"] == "DataIntegrityProof"
    assert proof["cryptosuite"] == CRYPTOSUITE
    assert proof["verificationMethod"] == key.verification_method
    assert proof["proofPurpose"] == "assertionMethod"
    assert proof["@context"] == secured["@context"]
    assert proof["proofValue"].startswith("z")
    assert len(didkey.multibase_decode(proof["proofValue"])) == 64
    result = verify_proof(secured)
    assert result == VerificationResult(True, key.did, [])
    assert result


def test_survives_json_serialisation(secured: dict[str, Any]) -> None:
    again = json.loads(json.dumps(secured, indent=3, ensure_ascii=True))
    assert verify_proof(again).verified


def test_add_proof_does_not_modify_its_input(key: KeyPair) -> None:
    doc = _doc()
    before = copy.deepcopy(doc)
    secured = add_proof(doc, key=key)
    assert doc == before
    secured["credentialSubject"]["readings"].append(9)
    assert doc == before


def test_deterministic_for_the_same_created(key: KeyPair) -> None:
    when = datetime(2025, 3, 1, 12, 0, 0, 999, tzinfo=UTC)
    a, b = add_proof(_doc(), key=key, created=when), add_proof(_doc(), key=key, created=when)
    assert a == b
    assert a["proof"]["created"] == "2025-03-01T12:00:00Z"


def test_created_is_converted_to_utc(key: KeyPair) -> None:
    from datetime import timezone

    when = datetime(2025, 3, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    assert add_proof(_doc(), key=key, created=when)["proof"]["created"] == "2025-03-01T12:30:00Z"


# --- tampering ----------------------------------------------------------------------------


def test_changed_subject_value_fails(secured: dict[str, Any]) -> None:
    secured["credentialSubject"]["id"] = "urn:mrv:project:other"
    _fails_with(verify_proof(secured), SIG_MISMATCH)


def test_changed_number_fails(secured: dict[str, Any]) -> None:
    secured["credentialSubject"]["tCO2e"] = 1234.6
    _fails_with(verify_proof(secured), SIG_MISMATCH)


def test_tiny_float_change_fails(secured: dict[str, Any]) -> None:
    import math

    secured["credentialSubject"]["readings"][2] = math.nextafter(-3.25e-7, 0)
    _fails_with(verify_proof(secured), SIG_MISMATCH)


def test_added_property_fails(secured: dict[str, Any]) -> None:
    secured["credentialSubject"]["extra"] = True
    _fails_with(verify_proof(secured), SIG_MISMATCH)


def test_changed_created_fails(secured: dict[str, Any]) -> None:
    secured["proof"]["created"] = "2020-01-01T00:00:00Z"
    _fails_with(verify_proof(secured), SIG_MISMATCH)


def test_invalid_created_fails(secured: dict[str, Any]) -> None:
    secured["proof"]["created"] = "yesterday"
    _fails_with(verify_proof(secured), "proof created: 'yesterday' is not an XML Schema dateTime")


def test_changed_proof_value_fails(secured: dict[str, Any]) -> None:
    sig = bytearray(didkey.multibase_decode(secured["proof"]["proofValue"]))
    sig[10] ^= 0x01
    secured["proof"]["proofValue"] = didkey.multibase_encode(bytes(sig))
    _fails_with(verify_proof(secured), SIG_MISMATCH)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("z3yTh", "decodes to"),
        ("u" + "A" * 86, "must start with 'z'"),
        ("z0OIl", "invalid base58btc character"),
        (None, "must start with 'z'"),
    ],
)
def test_malformed_proof_value_fails(secured: dict[str, Any], value: Any, message: str) -> None:
    secured["proof"]["proofValue"] = value
    _fails_with(verify_proof(secured), message)


def test_verification_method_swapped_to_another_key_fails(
    key: KeyPair, other: KeyPair, secured: dict[str, Any]
) -> None:
    secured["proof"]["verificationMethod"] = other.verification_method
    result = verify_proof(secured)
    _fails_with(result, f"or it was not signed by {other.verification_method}")
    assert result.did == other.did


def test_verification_method_with_foreign_fragment_fails(other: KeyPair, secured: dict[str, Any]) -> None:
    vm = secured["proof"]["verificationMethod"]
    secured["proof"]["verificationMethod"] = vm.split("#")[0] + "#" + other.public_multikey
    _fails_with(verify_proof(secured), "fragment")


def test_non_did_key_verification_method_fails(secured: dict[str, Any]) -> None:
    secured["proof"]["verificationMethod"] = "https://example.com/keys/1"
    result = verify_proof(secured)
    _fails_with(result, "not a usable Ed25519 did:key")
    assert result.did is None


def test_missing_verification_method_fails(secured: dict[str, Any]) -> None:
    del secured["proof"]["verificationMethod"]
    _fails_with(verify_proof(secured), "proof has no verificationMethod")


def test_changed_cryptosuite_fails(secured: dict[str, Any]) -> None:
    secured["proof"]["cryptosuite"] = "eddsa-rdfc-2022"
    _fails_with(verify_proof(secured), "cryptosuite is 'eddsa-rdfc-2022'")


def test_context_appended_after_signing_is_accepted_as_the_spec_says(secured: dict[str, Any]) -> None:
    # vc-di-eddsa "Verify Proof (eddsa-jcs-2022)" step 4: the document's @context must *start
    # with* the proof's, and the proof's is what gets hashed; appending is allowed (proof sets).
    # verify_credential applies a stricter policy (see test_credentials.py).
    secured["@context"].append("https://example.com/ctx")
    assert verify_proof(secured).verified


def test_context_not_starting_with_proof_context_fails(secured: dict[str, Any]) -> None:
    secured["@context"] = ["https://www.w3.org/ns/credentials/v2"]
    _fails_with(verify_proof(secured), "does not start with the proof's @context")


def test_context_changed_in_both_places_fails(secured: dict[str, Any]) -> None:
    secured["@context"][1] = "https://evil.example/ctx"
    secured["proof"]["@context"][1] = "https://evil.example/ctx"
    _fails_with(verify_proof(secured), SIG_MISMATCH)


def test_missing_or_list_proof(secured: dict[str, Any]) -> None:
    proof = secured.pop("proof")
    _fails_with(verify_proof(secured), "document has no proof")
    secured["proof"] = [proof]
    _fails_with(verify_proof(secured), "proof sets")
    _fails_with(verify_proof([]), "must be a JSON object")  # type: ignore[arg-type]


def test_expired_proof_fails(key: KeyPair) -> None:
    # a proof with `expires` is not something add_proof makes; build one by hand with the same steps
    from mrv.signing.dataintegrity import hash_data

    doc = _doc()
    options = {
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": "2020-01-01T00:00:00Z",
        "expires": "2021-01-01T00:00:00Z",
        "verificationMethod": key.verification_method,
        "proofPurpose": "assertionMethod",
        "@context": doc["@context"],
    }
    proof = {**options, "proofValue": didkey.multibase_encode(key.sign(hash_data(doc, options)))}
    _fails_with(verify_proof({**doc, "proof": proof}), "proof expired at 2021-01-01T00:00:00Z")


# --- purpose and trust --------------------------------------------------------------------


def test_wrong_proof_purpose(key: KeyPair) -> None:
    secured = add_proof(_doc(), key=key, proof_purpose="authentication")
    _fails_with(verify_proof(secured), "proofPurpose is 'authentication', expected 'assertionMethod'")
    assert verify_proof(secured, expected_purpose="authentication").verified
    assert verify_proof(secured, expected_purpose=None).verified


def test_purpose_changed_after_signing_fails(secured: dict[str, Any]) -> None:
    secured["proof"]["proofPurpose"] = "authentication"
    _fails_with(verify_proof(secured, expected_purpose="authentication"), SIG_MISMATCH)


def test_unknown_purpose_is_refused(key: KeyPair, secured: dict[str, Any]) -> None:
    with pytest.raises(SigningError, match="proof_purpose must be one of"):
        add_proof(_doc(), key=key, proof_purpose="capabilityInvocation")  # type: ignore[arg-type]
    secured["proof"]["proofPurpose"] = "capabilityInvocation"
    _fails_with(verify_proof(secured, expected_purpose=None), "is not one of")


def test_trusted_dids(key: KeyPair, other: KeyPair, secured: dict[str, Any]) -> None:
    assert verify_proof(secured, trusted_dids={key.did}).verified
    assert verify_proof(secured, trusted_dids=[other.did, key.did]).verified
    result = verify_proof(secured, trusted_dids={other.did})
    _fails_with(result, f"signer {key.did} is not a trusted DID")
    assert result.errors == [f"signer {key.did} is not a trusted DID"]  # the signature itself is fine
    _fails_with(verify_proof(secured, trusted_dids=()), "not a trusted DID")


# --- signing refusals and number canonicalisation ------------------------------------------


def test_add_proof_refusals(key: KeyPair, secured: dict[str, Any]) -> None:
    with pytest.raises(SigningError, match="already has a proof"):
        add_proof(secured, key=key)
    with pytest.raises(SigningError, match="timezone-aware"):
        add_proof(_doc(), key=key, created=datetime(2025, 1, 1))
    with pytest.raises(SigningError, match="JSON object"):
        add_proof([1, 2], key=key)  # type: ignore[arg-type]
    with pytest.raises(SigningError, match="KeyPair"):
        add_proof(_doc(), key=key.public)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2**53, "encode them as strings"),
        (-(2**60), "encode them as strings"),
        (float("nan"), "NaN and Infinity are not JSON"),
        (float("inf"), "NaN and Infinity are not JSON"),
        (b"bytes", "unsupported type"),
        (datetime(2025, 1, 1, tzinfo=UTC), "unsupported type"),
    ],
)
def test_unsignable_values(key: KeyPair, value: Any, message: str) -> None:
    doc = _doc()
    doc["credentialSubject"]["bad"] = value
    with pytest.raises(SigningError, match=message):
        add_proof(doc, key=key)


def test_decimal_is_refused(key: KeyPair) -> None:
    from decimal import Decimal

    doc = _doc()
    doc["credentialSubject"]["tCO2e"] = Decimal("1.10")
    with pytest.raises(SigningError, match="unsupported type"):
        add_proof(doc, key=key)


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        (1.0, b"1"),
        (-0.0, b"0"),
        (1e21, b"1e+21"),
        (1e20, b"100000000000000000000"),
        (1e-7, b"1e-7"),
        (0.000001, b"0.000001"),
        (0.1 + 0.2, b"0.30000000000000004"),
        (2**53 - 1, b"9007199254740991"),
        (123.456, b"123.456"),
    ],
)
def test_numbers_are_canonicalised_like_ecmascript(value: float, canonical: bytes) -> None:
    assert canonicalize(value) == canonical


def test_number_spelling_is_not_signed_only_its_value(key: KeyPair) -> None:
    # JCS signs the double value: 1234.5 written as 1.2345e3 or 1234.50 in the file still verifies.
    secured = add_proof(_doc(), key=key)
    text = json.dumps(secured).replace("1234.5", "1.2345e3")
    assert "1.2345e3" in text
    assert verify_proof(json.loads(text)).verified
    doc = _doc()
    doc["credentialSubject"]["tCO2e"] = 1234.0
    signed_float = add_proof(doc, key=key, created=datetime(2025, 1, 1, tzinfo=UTC))
    as_int = copy.deepcopy(signed_float)
    as_int["credentialSubject"]["tCO2e"] = 1234
    assert verify_proof(as_int).verified


def test_key_order_does_not_matter(secured: dict[str, Any]) -> None:
    reordered = {k: secured[k] for k in reversed(list(secured))}
    reordered["credentialSubject"] = dict(reversed(list(secured["credentialSubject"].items())))
    assert verify_proof(reordered).verified
