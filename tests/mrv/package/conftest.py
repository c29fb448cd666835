"""Fixtures for the verification-package tests: one real pipeline run of the demo project, and a
stand-in signer.

The run is made once per session (``generate_demo_project`` + ``run_local``, a few seconds) with
the real SQLite lineage store and local artifact store; tests must not change that workspace
(tests that need to, copy it first with ``copy_workspace``).

The signer is a STAND-IN for the project's signing module (written separately; the package code
takes the verifier as an injected callback): a real Ed25519 signature (``cryptography``) over the
RFC 8785 canonical JSON (``rfc8785``) of the document without its ``proof``. It is not the
``eddsa-jcs-2022`` cryptosuite (no proof-configuration hash, no multibase), only the same idea.
"""

from __future__ import annotations

import base64
import shutil
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mrv.artifacts import LocalArtifactStore
from mrv.lineage import LineageStore
from mrv.package import plan_package, read_openlineage_events
from mrv.package.build import PackagePlan
from mrv.pipeline import run_local
from mrv.sample import generate_demo_project
from mrv.settings import MRVSettings
from mrv.workspace import Workspace


@dataclass(frozen=True)
class DemoRun:
    settings: MRVSettings
    workspace: Workspace
    store: LocalArtifactStore
    lineage: LineageStore
    run_id: str
    project: Path

    def events(self) -> list[dict[str, Any]]:
        return read_openlineage_events(self.workspace.openlineage_path)

    def plan(self, **kw: Any) -> PackagePlan:
        kw.setdefault("openlineage_events", self.events())
        return plan_package(store=self.store, lineage=self.lineage, run_id=self.run_id, **kw)


def open_demo_run(home: Path, *, run_id: str, project: Path) -> DemoRun:
    settings = MRVSettings(home=home)
    ws = Workspace.from_settings(settings)
    return DemoRun(settings, ws, LocalArtifactStore(ws.artifacts_dir), LineageStore(ws.lineage_url), run_id, project)


def run_demo(base: Path) -> DemoRun:
    project = generate_demo_project(base / "project", seed=7)
    settings = MRVSettings(home=base / "ws")
    summary = run_local(settings, project)
    return open_demo_run(settings.home, run_id=summary["run_id"], project=project)


def copy_workspace(run: DemoRun, dest: Path) -> DemoRun:
    """The same run data in another directory (lineage DB, artifact store, OpenLineage file)."""
    run.lineage.dispose()
    shutil.copytree(run.workspace.root, dest)
    return open_demo_run(dest, run_id=run.run_id, project=run.project)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    return run_demo(tmp_path_factory.mktemp("package-demo"))


# --------------------------------------------------------------------------- stand-in signer


@dataclass(frozen=True)
class SigResult:
    ok: bool
    detail: str | None = None


class StandInSigner:
    """Ed25519 over JCS(document minus proof); a fixed key, so signatures are deterministic."""

    def __init__(self, seed: bytes = bytes(range(32)), *, verification_method: str = "did:example:proponent#key-1") -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key: Ed25519PublicKey = self._key.public_key()
        self.verification_method = verification_method

    def sign(self, document: Mapping[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in document.items() if k != "proof"}
        signature = self._key.sign(rfc8785.dumps(body))
        proof = {
            "type": "DataIntegrityProof",
            "cryptosuite": "test-ed25519-jcs",
            "proofPurpose": "assertionMethod",
            "verificationMethod": self.verification_method,
            "proofValue": "u" + base64.urlsafe_b64encode(signature).decode().rstrip("="),
        }
        return {**body, "proof": proof}

    def verify(self, document: dict[str, Any]) -> SigResult:
        proof = document.get("proof")
        if not isinstance(proof, dict) or not isinstance(proof.get("proofValue"), str):
            return SigResult(False, "no proof")
        value = proof["proofValue"]
        if not value.startswith("u"):
            return SigResult(False, "proofValue is not base64url multibase")
        try:
            raw = base64.urlsafe_b64decode(value[1:] + "=" * (-len(value[1:]) % 4))
        except ValueError:
            return SigResult(False, "proofValue is not base64url")
        body = {k: v for k, v in document.items() if k != "proof"}
        try:
            self.public_key.verify(raw, rfc8785.dumps(body))
        except InvalidSignature:
            return SigResult(False, "Ed25519 signature does not match the document")
        return SigResult(True)


def report_document(plan: PackagePlan, *, issuable: int = 123_456) -> dict[str, Any]:
    """A minimal report credential naming the package (shape only; the real one is built elsewhere)."""
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential", "MonitoringReportCredential"],
        "issuer": "did:example:proponent",
        "validFrom": "2024-02-01T00:00:00Z",
        "credentialSubject": {
            "id": f"urn:open-dmrv:run:{plan.run_id}",
            "issuable_tCO2e": issuable,
            "package": plan.claim,
        },
    }


def statement_document(plan: PackagePlan) -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential", "VerificationStatementCredential"],
        "issuer": "did:example:vvb",
        "validFrom": "2024-03-01T00:00:00Z",
        "credentialSubject": {"id": f"urn:open-dmrv:run:{plan.run_id}", "opinion": "positive", "package": plan.claim},
    }


def verifier_for(*signers: StandInSigner):
    """A ``verify_signature`` callback that picks the signer by ``proof.verificationMethod``."""
    by_method = {s.verification_method: s for s in signers}

    def verify(document: dict[str, Any]) -> SigResult:
        proof = document.get("proof")
        method = proof.get("verificationMethod") if isinstance(proof, dict) else None
        known = by_method.get(method) if isinstance(method, str) else None
        return SigResult(False, f"unknown verification method {method!r}") if known is None else known.verify(document)

    return verify


@pytest.fixture(scope="session")
def signer() -> StandInSigner:
    return StandInSigner()


@pytest.fixture(scope="session")
def vvb_signer() -> StandInSigner:
    return StandInSigner(bytes(range(32, 64)), verification_method="did:example:vvb#key-1")


@pytest.fixture(scope="session")
def helpers() -> types.SimpleNamespace:
    """Helpers for test modules (they are not importable by name under --import-mode=importlib)."""
    return types.SimpleNamespace(
        copy_workspace=copy_workspace,
        run_demo=run_demo,
        report_document=report_document,
        statement_document=statement_document,
        SigResult=SigResult,
        StandInSigner=StandInSigner,
        verifier_for=verifier_for,
    )
