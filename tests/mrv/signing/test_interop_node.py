"""Interoperability with an independent implementation: Digital Bazaar's ``@digitalbazaar/vc`` +
``@digitalbazaar/eddsa-jcs-2022-cryptosuite`` (Node.js), pinned in tests/interop/node/.

Both directions: credentials we sign verify there (and tampered ones do not), and credentials
signed there verify here. The Node packages are installed with ``npm ci`` into
tests/interop/node/node_modules on first use (re-installed when package-lock.json changes).

Without ``node``/``npm`` on PATH these tests FAIL, since a silent skip would hide that the
third-party check did not run; ``MRV_TEST_NO_NODE=1`` skips them on purpose.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mrv.signing import (
    MRV_CONTEXT_URL,
    MRV_VOCAB,
    VC_V2_CONTEXT,
    KeyPair,
    KeyRole,
    add_proof,
    generate_key,
    issue_credential,
    mrv_context_document,
    verify_credential,
)

pytestmark = pytest.mark.integration

NODE_DIR = Path(__file__).resolve().parents[2] / "interop" / "node"
NO_NODE_ENV = "MRV_TEST_NO_NODE"
STAMP = NODE_DIR / "node_modules" / ".mrv-installed"
MIN_NODE_MAJOR = 18

SUBJECT: dict[str, Any] = {
    "id": "urn:mrv:project:demo-solar-1",
    "methodology": "CDM:ACM0002:22.0",
    "emissionReductions": {"value": 1234.567, "unit": "t CO2e"},
    "numbers": [0.1 + 0.2, 1e21, 1e-7, 5e-324, -0.0, 2**53 - 1, -(2**53 - 1), 1.5e300, 100, 12.0],
    "text": 'Ünïcödé ✓ 🌍 "quoted" \\ back\u2028line\u0001ctl\t',
    "nested": {"b": [True, False, None], "a": {"z": 1, "A": 2, "é": 3, "\u20ac": 4}},
}


def _lock_digest() -> str:
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        h.update((NODE_DIR / name).read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def node() -> str:
    if os.environ.get(NO_NODE_ENV) == "1":
        pytest.skip(f"{NO_NODE_ENV}=1: Node.js interoperability tests disabled on this machine")
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        pytest.fail(
            f"Node.js interoperability tests need `node` (>= {MIN_NODE_MAJOR}) and `npm` on PATH "
            f"(found node={node_bin}, npm={npm_bin}). Install them (e.g. `apt-get install nodejs npm`), "
            f"or set {NO_NODE_ENV}=1 to skip these tests on purpose.",
            pytrace=False,
        )
    version = subprocess.run([node_bin, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < MIN_NODE_MAJOR:
        pytest.fail(f"Node.js {version} is too old; need >= {MIN_NODE_MAJOR}", pytrace=False)
    digest = _lock_digest()
    if not STAMP.exists() or STAMP.read_text().strip() != digest:
        proc = subprocess.run(
            [npm_bin, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if proc.returncode != 0:
            pytest.fail(f"`npm ci` in {NODE_DIR} failed ({proc.returncode}):\n{proc.stderr[-3000:]}", pytrace=False)
        STAMP.write_text(digest + "\n")
    return node_bin


@pytest.fixture(scope="module")
def contexts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our JSON-LD context, handed to the Node document loader (Python stays its source)."""
    path = tmp_path_factory.mktemp("ctx") / "contexts.json"
    path.write_text(json.dumps({MRV_CONTEXT_URL: mrv_context_document()}))
    return path


def _run(node: str, script: str, doc: Any, *, contexts: Path | None = None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "MRV_EXTRA_CONTEXTS"}
    if contexts is not None:
        env["MRV_EXTRA_CONTEXTS"] = str(contexts)
    proc = subprocess.run(
        [node, script],
        cwd=NODE_DIR,
        input=json.dumps(doc),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    lines = [ln for ln in proc.stdout.split("\n") if ln.strip()]  # not splitlines(): U+2028 is data
    if not lines:
        raise AssertionError(f"node {script} printed nothing (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def _db_verify(node: str, vc: dict[str, Any]) -> dict[str, Any]:
    return _run(node, "verify.mjs", vc)


@pytest.fixture(scope="module")
def key() -> KeyPair:
    return generate_key(role=KeyRole.developer)


@pytest.fixture
def vc(key: KeyPair) -> dict[str, Any]:
    return issue_credential(subject=SUBJECT, types=["MonitoringReportCredential"], issuer_key=key)


# --- our credentials, their verifier ------------------------------------------------------


def test_our_credential_verifies_there(node: str, vc: dict[str, Any]) -> None:
    assert verify_credential(vc).verified
    assert _db_verify(node, vc) == {"verified": True, "error": None}


def test_our_credential_tampered_fails_there(node: str, vc: dict[str, Any]) -> None:
    changed_number = copy.deepcopy(vc)
    changed_number["credentialSubject"]["emissionReductions"]["value"] = 1234.568
    changed_text = copy.deepcopy(vc)
    changed_text["credentialSubject"]["methodology"] = "CDM:ACM0002:21.0"
    changed_created = copy.deepcopy(vc)
    changed_created["proof"]["created"] = "2020-01-01T00:00:00Z"
    for tampered in (changed_number, changed_text, changed_created):
        out = _db_verify(node, tampered)
        assert out["verified"] is False
        assert out["error"]


def test_our_credential_with_swapped_key_fails_there(node: str, vc: dict[str, Any]) -> None:
    other = generate_key(role=KeyRole.developer)
    vc["issuer"] = other.did
    vc["proof"]["verificationMethod"] = other.verification_method
    out = _db_verify(node, vc)
    assert out["verified"] is False and out["error"]


def test_our_authentication_proof_is_not_a_credential_there(node: str, key: KeyPair) -> None:
    unsigned = {
        "@context": [VC_V2_CONTEXT, MRV_CONTEXT_URL],
        "type": ["VerifiableCredential"],
        "issuer": key.did,
        "credentialSubject": {"id": "urn:x"},
    }
    out = _db_verify(node, add_proof(unsigned, key=key, proof_purpose="authentication"))
    assert out["verified"] is False


# --- JSON-LD: why credentials carry MRV_CONTEXT_URL and not an inline context ---------------


def test_our_credential_expands_in_json_ld_safe_mode(node: str, vc: dict[str, Any], contexts_file: Path) -> None:
    out = _run(node, "expand.mjs", vc, contexts=contexts_file)
    assert out["ok"], out["error"]
    text = json.dumps(out["expanded"])
    assert f"{MRV_VOCAB}emissionReductions" in text
    assert f"{MRV_VOCAB}MonitoringReportCredential" in text


def test_without_a_context_for_our_terms_safe_mode_rejects(node: str, key: KeyPair) -> None:
    # The final VC 2.0 context has no @vocab: custom terms are undefined without our context.
    bare = {
        "@context": [VC_V2_CONTEXT],
        "type": ["VerifiableCredential"],
        "issuer": key.did,
        "credentialSubject": {"id": "urn:x", "emissionReductions": 1.0},
    }
    out = _run(node, "expand.mjs", bare)
    assert out["ok"] is False
    assert "Safe mode validation error" in out["error"]


def test_known_incompatibility_inline_context_fails_there(node: str, key: KeyPair) -> None:
    """@digitalbazaar/eddsa-jcs-2022-cryptosuite 1.0.0 compares @context entries with `!==`, so an
    inline context object never matches its copy in the proof: valid credentials fail there.
    This is why issue_credential cites MRV_CONTEXT_URL. If this test starts failing after an
    upgrade of the pinned package, the incompatibility is gone."""
    vc = issue_credential(
        subject={"id": "urn:x", "emissionReductions": 1.0},
        types=[],
        issuer_key=key,
        extra_contexts=[{"local": "https://example.com/local#"}],
    )
    assert verify_credential(json.loads(json.dumps(vc))).verified  # spec: compare by value
    out = _db_verify(node, vc)
    assert out["verified"] is False
    assert "document.@context does not start with proof.@context" in out["error"]


# --- their credentials, our verifier ------------------------------------------------------


def test_credential_signed_there_verifies_here(node: str) -> None:
    unsigned = {
        "@context": [VC_V2_CONTEXT, MRV_CONTEXT_URL],
        "id": "urn:uuid:00000000-0000-4000-8000-000000000002",
        "type": ["VerifiableCredential", "MonitoringReportCredential"],
        "validFrom": "2025-01-01T00:00:00Z",
        "credentialSubject": SUBJECT,
    }
    out = _run(node, "sign.mjs", unsigned)
    did, signed = out["did"], out["credential"]
    assert did.startswith("did:key:z6Mk")
    assert signed["issuer"] == did
    assert signed["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    assert signed["credentialSubject"] == json.loads(json.dumps(SUBJECT))

    result = verify_credential(signed, trusted_issuers={did})
    assert result.verified, result.errors
    assert result.did == did

    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["numbers"][0] = 0.3
    result = verify_credential(tampered, trusted_issuers={did})
    assert not result.verified
    assert any("signature does not match" in e for e in result.errors)
