"""Signing and verification of W3C Verifiable Credentials 2.0 with Data Integrity
``eddsa-jcs-2022`` proofs, keys as ``did:key`` Ed25519 Multikeys."""

from mrv.signing.credentials import (
    MRV_CONTEXT_URL,
    MRV_VOCAB,
    VC_V2_CONTEXT,
    issue_credential,
    mrv_context_document,
    verify_credential,
)
from mrv.signing.dataintegrity import CRYPTOSUITE, VerificationResult, add_proof, canonicalize, verify_proof
from mrv.signing.didkey import resolve_did_document, resolve_did_key
from mrv.signing.keys import KeyPair, KeyRole, PublicKey, generate_key, load_key, load_public, write_key

__all__ = [
    "CRYPTOSUITE",
    "MRV_CONTEXT_URL",
    "MRV_VOCAB",
    "VC_V2_CONTEXT",
    "KeyPair",
    "KeyRole",
    "PublicKey",
    "VerificationResult",
    "add_proof",
    "canonicalize",
    "generate_key",
    "issue_credential",
    "mrv_context_document",
    "load_key",
    "load_public",
    "resolve_did_document",
    "resolve_did_key",
    "verify_credential",
    "verify_proof",
    "write_key",
]
