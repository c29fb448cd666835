"""Verification packages: one deterministic zip per run that a VVB checks offline.

``plan_package`` -> sign a report claiming ``plan.claim`` -> ``write_package`` ->
(VVB) ``verify_package`` -> ``add_signed_document``. Layout and claim fields: :mod:`mrv.package.manifest`;
Merkle construction: :mod:`mrv.package.merkle`.
"""

from __future__ import annotations

from mrv.package.build import (
    PackageFile,
    PackageInfo,
    PackagePlan,
    add_signed_document,
    build_package,
    openlineage_events_bytes,
    plan_package,
    read_openlineage_events,
    write_package,
)
from mrv.package.manifest import (
    FORMAT_ID,
    FORMAT_VERSION,
    MANIFEST_SHA256_CLAIM,
    MANIFEST_SHA256_FIELD,
    MERKLE_ALGORITHM,
    MERKLE_ROOT_CLAIM,
    MERKLE_ROOT_FIELD,
    PACKAGE_CLAIM_FIELD,
    Manifest,
    ManifestEntry,
    inclusion_proof,
    package_claim,
)
from mrv.package.merkle import MerkleProof, merkle_proof, merkle_root, proof_for_digest, verify_inclusion
from mrv.package.verify import Check, CheckKind, PackageVerification, SignatureVerifier, verify_package

__all__ = [
    "FORMAT_ID",
    "FORMAT_VERSION",
    "MANIFEST_SHA256_CLAIM",
    "MANIFEST_SHA256_FIELD",
    "MERKLE_ALGORITHM",
    "MERKLE_ROOT_CLAIM",
    "MERKLE_ROOT_FIELD",
    "PACKAGE_CLAIM_FIELD",
    "Check",
    "CheckKind",
    "Manifest",
    "ManifestEntry",
    "MerkleProof",
    "PackageFile",
    "PackageInfo",
    "PackagePlan",
    "PackageVerification",
    "SignatureVerifier",
    "add_signed_document",
    "build_package",
    "inclusion_proof",
    "merkle_proof",
    "merkle_root",
    "openlineage_events_bytes",
    "package_claim",
    "plan_package",
    "proof_for_digest",
    "read_openlineage_events",
    "verify_inclusion",
    "verify_package",
    "write_package",
]
