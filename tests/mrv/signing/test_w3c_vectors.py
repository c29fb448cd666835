"""The W3C Data Integrity EdDSA specification's ``eddsa-jcs-2022`` test vectors, reproduced
step by step and byte for byte (Ed25519 is deterministic). Source: see vectors/README.md."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mrv.signing import didkey
from mrv.signing.credentials import verify_credential
from mrv.signing.dataintegrity import add_proof, canonicalize, hash_data, verify_proof
from mrv.signing.keys import KeyPair, KeyRole

VECTORS = Path(__file__).parent / "vectors"
JCS = VECTORS / "eddsa-jcs-2022"
CREATED = datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC)  # proofConfigJCS.json "created"


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _text(name: str) -> str:
    return (JCS / name).read_text(encoding="utf-8").strip()


@pytest.fixture(scope="module")
def spec_key() -> KeyPair:
    pair = _json(VECTORS / "keyPair.json")
    seed = didkey.decode_secret_multikey(pair["privateKeyMultibase"])
    key = KeyPair.from_private_key(Ed25519PrivateKey.from_private_bytes(seed), role=KeyRole.developer)
    assert key.public_multikey == pair["publicKeyMultibase"]
    return key


def test_key_pair_derivation(spec_key: KeyPair) -> None:
    proof_config = _json(JCS / "proofConfigJCS.json")
    assert spec_key.verification_method == proof_config["verificationMethod"]


def test_canonical_document_and_its_hash() -> None:
    unsigned = _json(VECTORS / "unsigned.json")
    canonical = canonicalize(unsigned)
    assert canonical == (JCS / "canonDocJCS.txt").read_bytes()
    assert hashlib.sha256(canonical).hexdigest() == _text("docHashJCS.txt")


def test_canonical_proof_config_and_its_hash() -> None:
    proof_config = _json(JCS / "proofConfigJCS.json")
    canonical = canonicalize(proof_config)
    assert canonical.decode() == _text("proofCanonJCS.txt")
    assert hashlib.sha256(canonical).hexdigest() == _text("proofHashJCS.txt")


def test_combined_hash() -> None:
    unsigned = _json(VECTORS / "unsigned.json")
    proof_config = _json(JCS / "proofConfigJCS.json")
    assert hash_data(unsigned, proof_config).hex() == _text("combinedHashJCS.txt")


def test_signature_bytes_and_proof_value(spec_key: KeyPair) -> None:
    combined = bytes.fromhex(_text("combinedHashJCS.txt"))
    signature = spec_key.sign(combined)
    assert signature.hex() == _text("sigHexJCS.txt")
    assert didkey.multibase_encode(signature) == _text("sigBTC58JCS.txt")


def test_add_proof_reproduces_the_signed_credential_exactly(spec_key: KeyPair) -> None:
    unsigned = _json(VECTORS / "unsigned.json")
    before = copy.deepcopy(unsigned)
    secured = add_proof(unsigned, key=spec_key, proof_purpose="assertionMethod", created=CREATED)
    assert unsigned == before  # input untouched
    expected = _json(JCS / "signedJCS.json")
    assert secured == expected
    assert secured["proof"]["proofValue"] == _text("sigBTC58JCS.txt")


def test_verify_the_specs_signed_credential() -> None:
    signed = _json(JCS / "signedJCS.json")
    result = verify_proof(signed)
    assert result.verified, result.errors
    assert result.did == "did:key:" + _json(VECTORS / "keyPair.json")["publicKeyMultibase"]


def test_the_specs_signed_credential_fails_when_changed() -> None:
    signed = _json(JCS / "signedJCS.json")
    signed["credentialSubject"]["alumniOf"] = "The School of Counterexamples"
    result = verify_proof(signed)
    assert not result.verified
    assert any("signature does not match" in e for e in result.errors)


def test_verify_credential_requires_issuer_to_be_the_signer() -> None:
    # The spec's example issuer is an https URL while the key is a did:key: the proof is valid,
    # but as a credential it is not signed by its issuer.
    result = verify_credential(_json(JCS / "signedJCS.json"))
    assert not result.verified
    assert result.errors == [
        f"issuer https://vc.example/issuers/5678 did not sign this credential (signed by {result.did})"
    ]
