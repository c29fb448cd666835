"""W3C Verifiable Credentials Data Model 2.0 credentials secured with ``eddsa-jcs-2022``.

``issue_credential`` builds::

    {
      "@context": ["https://www.w3.org/ns/credentials/v2", MRV_CONTEXT_URL, *extra_contexts],
      "id": "urn:uuid:...",
      "type": ["VerifiableCredential", *types],
      "issuer": "<did:key of the issuer key>",
      "validFrom": "YYYY-MM-DDTHH:MM:SSZ",
      "credentialSubject": {...},
      "proof": {... DataIntegrityProof, eddsa-jcs-2022 ...}
    }

JSON-LD. The signature needs no JSON-LD processing (JCS signs the JSON as it is), but a
verifier that does process JSON-LD (safe-mode expansion) rejects any term no context defines,
and the final VC 2.0 context ``https://www.w3.org/ns/credentials/v2`` no longer carries an
``@vocab``. So every credential also names :data:`MRV_CONTEXT_URL`, whose document
:func:`mrv_context_document` is ``{"@vocab": "https://open-dmrv.org/vocab#"}``: custom types and
properties (``MonitoringReportCredential``, ``credentialSubject.tCO2e``) map to IRIs under that
vocabulary, while the terms of the VC v2 context are protected and keep their meaning.

Why a URL and not an inline context object: ``@digitalbazaar/eddsa-jcs-2022-cryptosuite``
1.0.0 checks "document @context starts with proof @context" with JavaScript ``!==``, which is
never true for two parsed JSON objects, so an inline context makes every credential fail there
(``tests/mrv/signing/test_interop_node.py`` shows it). Our own verifier compares by value and
accepts inline contexts passed in ``extra_contexts``; avoid them for credentials leaving the
system. The context document is immutable once credentials cite it: a change means a new URL,
and a JSON-LD verifier must be given the document (bundled, as verifiers bundle the W3C
contexts, or served at the URL).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from mrv.errors import SigningError
from mrv.signing.dataintegrity import (
    VerificationResult,
    add_proof,
    format_datetime,
    parse_datetime,
    verify_proof,
)
from mrv.signing.keys import KeyPair

VC_V2_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
MRV_VOCAB: Final = "https://open-dmrv.org/vocab#"
MRV_CONTEXT_URL: Final = "https://open-dmrv.org/ns/credentials/v1"


def mrv_context_document() -> dict[str, Any]:
    """The JSON-LD context document for :data:`MRV_CONTEXT_URL` (a fresh copy on each call).

    Frozen: signed credentials refer to it by URL, so changing it needs a new URL.
    """
    return {"@context": {"@vocab": MRV_VOCAB}}


VC_TYPE: Final = "VerifiableCredential"


def issue_credential(
    *,
    subject: Mapping[str, Any],
    types: Sequence[str],
    issuer_key: KeyPair,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    credential_id: str | None = None,
    extra_contexts: Sequence[str | Mapping[str, Any]] = (),
    created: datetime | None = None,
) -> dict[str, Any]:
    """Issue a VC 2.0 credential signed by ``issuer_key`` (``proofPurpose: assertionMethod``).

    ``created`` (the proof's time) defaults to now; a caller that needs a reproducible credential
    (the monitoring report is rebuilt byte for byte from a run) passes a fixed time.

    ``credential_id`` defaults to a fresh ``urn:uuid:``; ``valid_from`` to now (UTC, whole
    seconds). ``types`` are added after ``VerifiableCredential``. The subject is deep-copied.
    """
    if not isinstance(subject, Mapping):
        raise SigningError(f"subject must be a JSON object, got {type(subject).__name__}")
    if isinstance(types, str):
        raise SigningError("types must be a sequence of type names, not a single string")
    type_list = [VC_TYPE]
    for t in types:
        if not isinstance(t, str) or not t:
            raise SigningError(f"credential type names must be non-empty strings, got {t!r}")
        if t not in type_list:
            type_list.append(t)
    issued_from = valid_from if valid_from is not None else datetime.now(UTC)
    contexts = [c if isinstance(c, str) else copy.deepcopy(dict(c)) for c in extra_contexts]
    vc: dict[str, Any] = {
        "@context": [VC_V2_CONTEXT, MRV_CONTEXT_URL, *contexts],
        "id": credential_id if credential_id is not None else f"urn:uuid:{uuid.uuid4()}",
        "type": type_list,
        "issuer": issuer_key.did,
        "validFrom": format_datetime(issued_from),
    }
    if valid_until is not None:
        if valid_until <= issued_from:
            raise SigningError("valid_until must be later than valid_from")
        vc["validUntil"] = format_datetime(valid_until)
    vc["credentialSubject"] = copy.deepcopy(dict(subject))
    return add_proof(vc, key=issuer_key, proof_purpose="assertionMethod", created=created)


def _issuer_id(issuer: Any) -> str | None:
    if isinstance(issuer, str):
        return issuer
    if isinstance(issuer, Mapping):
        issuer_id = issuer.get("id")
        if isinstance(issuer_id, str):
            return issuer_id
    return None


def verify_credential(
    vc: Mapping[str, Any],
    *,
    trusted_issuers: Collection[str] | None = None,
    now: datetime | None = None,
) -> VerificationResult:
    """Verify a VC 2.0 credential: its shape, validity period (at ``now``, default the current
    time), that the issuer is the DID that signed it, the ``eddsa-jcs-2022`` proof with purpose
    ``assertionMethod``, and, when given, that the issuer is one of ``trusted_issuers``.

    Stricter than the bare proof check in one respect: the credential's ``@context`` must equal
    the one in the proof (no contexts appended after signing)."""
    if isinstance(trusted_issuers, str):
        raise SigningError("trusted_issuers must be a collection of DIDs, not a single string")
    if not isinstance(vc, Mapping):
        return VerificationResult(False, None, [f"credential must be a JSON object, got {type(vc).__name__}"])
    errors: list[str] = []
    ctx = vc.get("@context")
    if not isinstance(ctx, list) or not ctx or ctx[0] != VC_V2_CONTEXT:
        errors.append(f"@context must be a list starting with {VC_V2_CONTEXT!r}")
    types = vc.get("type")
    if not (types == VC_TYPE or (isinstance(types, list) and VC_TYPE in types)):
        errors.append(f"type must be {VC_TYPE!r} or a list containing it")
    if not isinstance(vc.get("credentialSubject"), (Mapping, list)) or not vc.get("credentialSubject"):
        errors.append("credentialSubject is missing")
    issuer = _issuer_id(vc.get("issuer"))
    if issuer is None:
        errors.append("issuer is missing (must be a URL or an object with an id)")

    at = now if now is not None else datetime.now(UTC)
    if at.tzinfo is None:
        raise SigningError("now must be timezone-aware")
    for name in ("validFrom", "validUntil"):
        if name not in vc:
            continue
        try:
            moment = parse_datetime(vc[name])
        except ValueError as exc:
            errors.append(f"{name}: {exc}")
            continue
        if name == "validFrom" and at < moment:
            errors.append(f"credential is not valid before {vc[name]}")
        if name == "validUntil" and at > moment:
            errors.append(f"credential expired at {vc[name]}")

    proof = vc.get("proof")
    if isinstance(proof, Mapping) and "@context" in proof and proof["@context"] != ctx:
        # Data Integrity lets a holder append contexts after signing (the proof covers only the
        # prefix); an appended context could redefine unprotected terms for JSON-LD readers.
        errors.append("@context differs from the @context the issuer signed (entries added after signing)")
    proof_result = verify_proof(vc, expected_purpose="assertionMethod", trusted_dids=None)
    errors.extend(proof_result.errors)
    signer = proof_result.did
    if issuer is not None and signer is not None and issuer != signer:
        errors.append(f"issuer {issuer} did not sign this credential (signed by {signer})")
    if trusted_issuers is not None and issuer is not None and issuer not in trusted_issuers:
        errors.append(f"issuer {issuer} is not a trusted issuer")
    return VerificationResult(not errors, signer, errors)
