"""Data Integrity proofs with the ``eddsa-jcs-2022`` cryptosuite (W3C VC Data Integrity EdDSA
Cryptosuites v1.0, https://www.w3.org/TR/vc-di-eddsa/#eddsa-jcs-2022).

Create proof (spec section 3.3.1), as implemented by :func:`add_proof`:

1. proof options = ``type: DataIntegrityProof``, ``cryptosuite: eddsa-jcs-2022``, ``created``,
   ``verificationMethod``, ``proofPurpose``; the document's ``@context`` is copied into them
2. proof config  = JCS (RFC 8785) of the proof options
3. transformed   = JCS of the unsecured document (everything but ``proof``)
4. hashData      = SHA-256(proof config) || SHA-256(transformed)  (64 bytes)
5. proofValue    = multibase base58btc (``z...``) of Ed25519(hashData), 64 signature bytes

Verification (3.3.2) reverses it; the document's ``@context`` must start with the proof's.

Numbers. JCS serialises every number the way ECMAScript does (``Number.prototype.toString`` on
an IEEE-754 double): ``1.0`` becomes ``1``, ``1e21`` becomes ``1e+21``, ``-0.0`` becomes ``0``,
and a float is written with the fewest digits that read back to the same double. So the signature
covers the *double value* of each number, not its spelling in a file: re-serialising the signed
JSON with any conforming tool keeps it valid. Consequences, enforced by ``rfc8785`` and reported
as :class:`~mrv.errors.SigningError` when signing:

* integers beyond +/-(2**53 - 1) are refused: they do not survive a double; put them in strings;
* NaN and +/-Infinity are refused (JSON has no spelling for them);
* ``Decimal``, ``datetime``, bytes and other non-JSON types are refused: convert them first.
  Quantities whose exact decimal spelling matters (e.g. tCO2e to a fixed number of places)
  belong in strings, or as a scaled integer with the unit and scale stated.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import rfc8785
from cryptography.exceptions import InvalidSignature

from mrv.errors import DIDKeyError, SigningError
from mrv.signing import didkey, jcs
from mrv.signing.keys import KeyPair

PROOF_TYPE: Final = "DataIntegrityProof"
CRYPTOSUITE: Final = "eddsa-jcs-2022"
ProofPurpose = Literal["assertionMethod", "authentication"]
PROOF_PURPOSES: Final[tuple[str, ...]] = ("assertionMethod", "authentication")

# XML Schema 1.1 dateTime (the form the spec requires for `created` / `expires`).
_XSD_DATETIME = re.compile(r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?\Z")


@dataclass(frozen=True)
class VerificationResult:
    """Outcome of a verification. ``bool(result)`` is ``result.verified``.

    ``did`` is the signer's DID when the proof named a usable did:key verification method
    (also when verification failed for another reason), else ``None``. ``errors`` lists every
    reason for failure; it is empty exactly when ``verified`` is true.
    """

    verified: bool
    did: str | None
    errors: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.verified


def canonicalize(value: Any) -> bytes:
    """RFC 8785 (JCS) canonical UTF-8 bytes of a JSON value; see the module notes on numbers.
    Exactly ``rfc8785.dumps`` (:mod:`mrv.signing.jcs` takes a compiled path when it provably
    gives the same bytes)."""
    try:
        return jcs.dumps(value)
    except rfc8785.IntegerDomainError as exc:
        raise SigningError(
            f"cannot canonicalise: {exc}; integers beyond 2**53-1 lose precision in JSON numbers, "
            "encode them as strings"
        ) from None
    except rfc8785.FloatDomainError as exc:
        raise SigningError(f"cannot canonicalise: {exc} (NaN and Infinity are not JSON)") from None
    except rfc8785.CanonicalizationError as exc:
        raise SigningError(f"cannot canonicalise: {exc}") from None


def format_datetime(moment: datetime) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SSZ`` (microseconds dropped). Naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SigningError("datetime must be timezone-aware (e.g. datetime.now(UTC))")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(value: Any) -> datetime:
    """Parse an XML Schema dateTime as used in VCs; a value without offset is taken as UTC."""
    if not isinstance(value, str) or not _XSD_DATETIME.match(value):
        raise ValueError(f"{value!r:.60} is not an XML Schema dateTime")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _check_suite(options: Mapping[str, Any]) -> None:
    if options.get("type") != PROOF_TYPE or options.get("cryptosuite") != CRYPTOSUITE:
        raise SigningError(
            f"proof type/cryptosuite must be {PROOF_TYPE}/{CRYPTOSUITE}, got "
            f"{options.get('type')!r}/{options.get('cryptosuite')!r}"
        )
    if "created" in options:
        try:
            parse_datetime(options["created"])
        except ValueError as exc:
            raise SigningError(f"proof created: {exc}") from None


def hash_data(unsecured_document: Mapping[str, Any], proof_options: Mapping[str, Any]) -> bytes:
    """``SHA-256(JCS(proof config)) || SHA-256(JCS(document))``, the 64 bytes that get signed.

    ``proof_options`` must not contain ``proofValue``; ``unsecured_document`` must not contain
    ``proof``. Both are used exactly as given (the ``@context`` copy is the caller's job).
    """
    _check_suite(proof_options)
    if "proofValue" in proof_options:
        raise SigningError("proof options must not contain proofValue")
    if "proof" in unsecured_document:
        raise SigningError("the unsecured document must not contain proof")
    proof_hash = hashlib.sha256(canonicalize(dict(proof_options))).digest()
    doc_hash = hashlib.sha256(canonicalize(dict(unsecured_document))).digest()
    return proof_hash + doc_hash


def add_proof(
    document: dict[str, Any],
    *,
    key: KeyPair,
    proof_purpose: ProofPurpose = "assertionMethod",
    created: datetime | None = None,
) -> dict[str, Any]:
    """Return a deep copy of ``document`` with an ``eddsa-jcs-2022`` ``proof`` added.

    The input is not modified. A document that already carries a ``proof`` is refused (proof
    sets and chains are out of scope: countersign with a separate credential instead).
    """
    if not isinstance(document, Mapping):
        raise SigningError(f"document must be a JSON object, got {type(document).__name__}")
    if "proof" in document:
        raise SigningError("document already has a proof; proof sets/chains are not supported")
    if proof_purpose not in PROOF_PURPOSES:
        raise SigningError(f"proof_purpose must be one of {PROOF_PURPOSES}, got {proof_purpose!r}")
    if not isinstance(key, KeyPair):
        raise SigningError(f"key must be a KeyPair, got {type(key).__name__}")
    unsecured = copy.deepcopy(dict(document))
    proof: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": format_datetime(created if created is not None else datetime.now(UTC)),
        "verificationMethod": key.verification_method,
        "proofPurpose": proof_purpose,
    }
    if "@context" in unsecured:
        proof["@context"] = copy.deepcopy(unsecured["@context"])
    signature = key.sign(hash_data(unsecured, proof))
    proof["proofValue"] = didkey.multibase_encode(signature)
    return {**unsecured, "proof": proof}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def verify_proof(
    secured: Mapping[str, Any],
    *,
    expected_purpose: str | None = "assertionMethod",
    trusted_dids: Collection[str] | None = None,
) -> VerificationResult:
    """Check the ``eddsa-jcs-2022`` proof of ``secured``. Never raises for a bad document (only
    for a programming error such as a bare string for ``trusted_dids``).

    ``expected_purpose=None`` accepts any purpose; ``trusted_dids=None`` accepts any signer
    (the signature is still checked against the did:key in ``verificationMethod``).
    """
    if isinstance(trusted_dids, str):
        raise SigningError("trusted_dids must be a collection of DIDs, not a single string")
    errors: list[str] = []
    if not isinstance(secured, Mapping):
        return VerificationResult(False, None, [f"document must be a JSON object, got {type(secured).__name__}"])
    proof = secured.get("proof")
    if proof is None:
        return VerificationResult(False, None, ["document has no proof"])
    if isinstance(proof, list):
        return VerificationResult(False, None, ["proof sets (a list of proofs) are not supported"])
    if not isinstance(proof, Mapping):
        return VerificationResult(False, None, ["proof must be a JSON object"])

    if proof.get("type") != PROOF_TYPE:
        errors.append(f"proof type is {proof.get('type')!r}, expected {PROOF_TYPE!r}")
    if proof.get("cryptosuite") != CRYPTOSUITE:
        errors.append(f"proof cryptosuite is {proof.get('cryptosuite')!r}, expected {CRYPTOSUITE!r}")

    did: str | None = None
    public_key = None
    vm = proof.get("verificationMethod")
    if not isinstance(vm, str):
        errors.append("proof has no verificationMethod (a did:key URL string)")
    else:
        try:
            did, public_key = didkey.parse_verification_method(vm)
        except DIDKeyError as exc:
            errors.append(f"verificationMethod is not a usable Ed25519 did:key: {exc}")

    purpose = proof.get("proofPurpose")
    if purpose not in PROOF_PURPOSES:
        errors.append(f"proofPurpose {purpose!r} is not one of {PROOF_PURPOSES}")
    elif expected_purpose is not None and purpose != expected_purpose:
        errors.append(f"proofPurpose is {purpose!r}, expected {expected_purpose!r}")

    for name in ("created", "expires"):
        if name in proof:
            try:
                moment = parse_datetime(proof[name])
            except ValueError as exc:
                errors.append(f"proof {name}: {exc}")
                continue
            if name == "expires" and moment <= datetime.now(UTC):
                errors.append(f"proof expired at {proof[name]}")

    signature: bytes | None = None
    try:
        signature = didkey.multibase_decode(proof.get("proofValue"))  # type: ignore[arg-type]
        if len(signature) != 64:
            errors.append(f"proofValue decodes to {len(signature)} bytes; an Ed25519 signature has 64")
            signature = None
    except DIDKeyError as exc:
        errors.append(f"proofValue: {exc}")

    unsecured = {k: v for k, v in secured.items() if k != "proof"}
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    if "@context" in options:
        proof_ctx = _as_list(options["@context"])
        doc_ctx = _as_list(unsecured.get("@context", []))
        if doc_ctx[: len(proof_ctx)] != proof_ctx:
            errors.append("document @context does not start with the proof's @context")
        else:
            unsecured["@context"] = options["@context"]

    if not errors and public_key is not None and signature is not None:
        try:
            data = hash_data(unsecured, options)
        except SigningError as exc:
            errors.append(f"cannot recompute the signed data: {exc}")
        else:
            try:
                public_key.verify(signature, data)
            except InvalidSignature:
                errors.append(
                    "signature does not match: the document or its proof options changed after signing, "
                    f"or it was not signed by {vm}"
                )

    if did is not None and trusted_dids is not None and did not in trusted_dids:
        errors.append(f"signer {did} is not a trusted DID")
    return VerificationResult(not errors, did, errors)
