"""The VVB's verification statement: a VC signed by the verifier, bound to the report's digest."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from mrv.errors import ReplayError
from mrv.package import PackageInfo, add_signed_document, verify_package
from mrv.package.manifest import MANIFEST_PATH, Manifest
from mrv.replay import REPORT_DOC, ReplayResult
from mrv.signing import KeyPair, issue_credential, verify_credential

STATEMENT_TYPE = "VerificationStatementCredential"
STATEMENT_NAME = "statement"  # signatures/statement.json


class Opinion(str, Enum):
    positive = "positive"
    qualified = "qualified"
    adverse = "adverse"


def attest(
    package: Path,
    *,
    key: KeyPair,
    opinion: Opinion,
    findings: Sequence[str] = (),
    replay: ReplayResult | None = None,
    materiality: float,
    now: datetime | None = None,
) -> tuple[dict[str, Any], PackageInfo]:
    """Sign a verification statement for the report in ``package`` and add it to the package."""
    package = Path(package)
    check = verify_package(package, verify_signature=verify_credential, required_signatures=["report"])
    if not check.ok:
        raise ReplayError(f"{package}: will not attest a package that does not verify: {check.first_failure}")
    if opinion is Opinion.positive and replay is not None and not replay.ok:
        raise ReplayError("a positive opinion needs a replay within the materiality threshold; it differs (use qualified or adverse)")
    with zipfile.ZipFile(package) as zf:
        report_bytes = zf.read(REPORT_DOC)
        manifest_bytes = zf.read(MANIFEST_PATH)
    report = json.loads(report_bytes)
    manifest = Manifest.from_bytes(manifest_bytes)
    subject = {
        "type": "VerificationStatement",
        "opinion": opinion.value,
        "findings": list(findings),
        "materiality_threshold": materiality,
        "report": {
            "id": report.get("id"),
            "issuer": report.get("issuer"),
            "sha256": "sha256:" + hashlib.sha256(report_bytes).hexdigest(),
            "issuable_tCO2e": report["credentialSubject"]["issuable_tCO2e"],
        },
        "replay": (
            {"performed": False}
            if replay is None
            else {
                "performed": True,
                "ok": replay.ok,
                "identical": replay.identical,
                "issuable_replayed": replay.issuable_replayed,
                "relative_difference": replay.relative_difference,
                "steps_matched": sum(s.matched for s in replay.steps),
                "steps_total": len(replay.steps),
            }
        ),
        "package": {"merkle_root": manifest.merkle_root, "manifest_sha256": "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()},
    }
    vc = issue_credential(
        subject=json.loads(json.dumps(subject, allow_nan=False)),
        types=[STATEMENT_TYPE],
        issuer_key=key,
        valid_from=(now or datetime.now(UTC)).replace(microsecond=0),
    )
    info = add_signed_document(package, name=STATEMENT_NAME, document=vc)
    return vc, info


def statement_problems(package: Path) -> list[str]:
    """Binding checks a registry runs on a statement: same report digest, not adverse."""
    with zipfile.ZipFile(package) as zf:
        report_bytes = zf.read(REPORT_DOC)
        statement = json.loads(zf.read(f"signatures/{STATEMENT_NAME}.json"))
    problems = []
    claimed = statement["credentialSubject"]["report"]["sha256"]
    if claimed != "sha256:" + hashlib.sha256(report_bytes).hexdigest():
        problems.append("the statement is bound to a different report")
    if statement["credentialSubject"]["opinion"] == Opinion.adverse.value:
        problems.append("the opinion is adverse")
    return problems
