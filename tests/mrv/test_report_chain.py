"""Report -> package -> VVB replay -> attest, with real keys, real signatures and real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mrv import pipeline
from mrv.attest import Opinion, attest, statement_problems
from mrv.errors import ReplayError
from mrv.package import verify_package
from mrv.replay import replay_package
from mrv.report.build import build_report
from mrv.sample import generate_demo_project
from mrv.settings import MRVSettings
from mrv.signing import KeyRole, generate_key, verify_credential


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    project = generate_demo_project(root / "project", seed=7)
    settings = MRVSettings(home=root / "ws")
    summary = pipeline.run_local(settings, project)
    ws, store, lineage = pipeline.open_workspace(settings)
    dev = generate_key(role=KeyRole.developer)
    out = build_report(workspace=ws, store=store, lineage=lineage, run_id=summary["run_id"], key=dev, out_dir=root / "out1")
    return {"root": root, "summary": summary, "ws": ws, "store": store, "lineage": lineage, "dev": dev, "out": out}


def _copy(pkg: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pkg, dest)
    return dest


def test_signed_report_and_package_verify(chain):
    out, summary = chain["out"], chain["summary"]
    vc = out.report
    assert verify_credential(vc).verified
    subject = vc["credentialSubject"]
    assert subject["issuable_tCO2e"] == summary["issuable_tCO2e"]
    assert subject["quantities"]["ER_y"]["unit"] == "tCO2e"
    assert {p["symbol"] for p in subject["parameters"]} >= {"EF_grid_OM_y", "EF_grid_BM_y"}
    assert all(p["source"] for p in subject["parameters"])
    assert any(r["rule_id"] == "unique_reading" and r["quarantined_count"] == 4 for r in subject["contract"]["rules"])
    result = verify_package(out.package.path, verify_signature=verify_credential, required_signatures=["report"])
    assert result.ok, result.first_failure
    assert subject["package"]["merkle_root"] == result.merkle_root == out.package.merkle_root
    # The HTML/PDF twin is in the package and its digests are signed.
    with zipfile.ZipFile(out.package.path) as zf:
        names = set(zf.namelist())
    assert {"report/report.html", "report/report.pdf"} <= names
    roles = {r.role for r in chain["lineage"].run_artifacts(summary["run_id"])}
    assert {"report", "report_html", "report_pdf", "package"} <= roles


def test_building_twice_gives_identical_bytes(chain):
    again = build_report(
        workspace=chain["ws"], store=chain["store"], lineage=chain["lineage"], run_id=chain["summary"]["run_id"],
        key=chain["dev"], out_dir=chain["root"] / "out2",
    )
    assert again.package.path.read_bytes() == chain["out"].package.path.read_bytes()
    assert again.report == chain["out"].report


def test_tampered_twin_fails_verification(chain, tmp_path):
    pkg = _copy(chain["out"].package.path, tmp_path / "p.zip")
    with zipfile.ZipFile(pkg) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["report/report.html"] = members["report/report.html"].replace(b"</body>", b"<p>edited</p></body>")
    with zipfile.ZipFile(pkg, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    result = verify_package(pkg, verify_signature=verify_credential, required_signatures=["report"])
    assert not result.ok
    assert "report/report.html" in result.first_failure and "sha256 mismatch" in result.first_failure


def test_replay_reproduces_every_step(chain, tmp_path):
    pkg = _copy(chain["out"].package.path, tmp_path / "p.zip")
    result = replay_package(pkg)
    assert result.identical, [s for s in result.steps if not s.matched]
    names = [s.name for s in result.steps]
    assert "calculate" in names and "validate: quarantine" in names and any(n.startswith("ingest EXP-2") for n in names)
    assert result.issuable_replayed == result.issuable_recorded == chain["summary"]["issuable_tCO2e"]
    assert result.trace_differences == []


def test_replay_that_differs_is_shown_step_by_step(chain, tmp_path, monkeypatch):
    """A changed calculator (simulated by patching TOOL07's wind weights to 0.5/0.5 in this
    process) must show the differing trace steps and fail beyond the materiality threshold."""
    from methodologies.cdm_tool07 import v7

    monkeypatch.setattr(v7, "cm_weights", lambda project_type, crediting_period: v7.CMWeights(0.5, 0.5))
    pkg = _copy(chain["out"].package.path, tmp_path / "p.zip")
    result = replay_package(pkg, materiality=0.01)
    assert not result.identical and not result.ok
    assert [s.name for s in result.steps if not s.matched] == ["calculate"]
    symbols = {d.symbol for d in result.trace_differences}
    assert {"w_OM", "EF_grid_CM_y", "BE_y", "ER_y"} <= symbols
    assert result.relative_difference > 0.01
    loose = replay_package(pkg, materiality=0.5)
    assert loose.ok and not loose.identical


def test_replay_refuses_other_code_version_unless_told(chain, tmp_path, monkeypatch):
    import mrv.replay

    monkeypatch.setattr(mrv.replay, "__version__", "9.9.9")
    pkg = _copy(chain["out"].package.path, tmp_path / "p.zip")
    with pytest.raises(ReplayError, match="replay refused.*9.9.9"):
        replay_package(pkg)
    result = replay_package(pkg, use_installed=True)
    assert result.identical and any("9.9.9" in n for n in result.notes)


def test_attest_positive_and_adverse(chain, tmp_path):
    vvb = generate_key(role=KeyRole.vvb)
    pkg = _copy(chain["out"].package.path, tmp_path / "p.zip")
    replay = replay_package(pkg)
    statement, info = attest(pkg, key=vvb, opinion=Opinion.positive, findings=["CL-01 closed"], replay=replay, materiality=0.01)
    assert statement["issuer"] == vvb.did
    s = statement["credentialSubject"]
    assert s["opinion"] == "positive" and s["materiality_threshold"] == 0.01 and s["replay"]["identical"] is True
    result = verify_package(pkg, verify_signature=verify_credential, required_signatures=["report", "statement"])
    assert result.ok, result.first_failure
    assert statement_problems(pkg) == []

    adverse_pkg = _copy(chain["out"].package.path, tmp_path / "a.zip")
    attest(adverse_pkg, key=vvb, opinion=Opinion.adverse, findings=["data gaps not justified"], replay=None, materiality=0.01)
    assert statement_problems(adverse_pkg) == ["the opinion is adverse"]


def test_positive_opinion_needs_a_matching_replay(chain, tmp_path, monkeypatch):
    from methodologies.cdm_tool07 import v7

    pkg = _copy(chain["out"].package.path, tmp_path / "p.zip")
    monkeypatch.setattr(v7, "cm_weights", lambda project_type, crediting_period: v7.CMWeights(0.5, 0.5))
    differing = replay_package(pkg)
    with pytest.raises(ReplayError, match="positive opinion"):
        attest(pkg, key=generate_key(role=KeyRole.vvb), opinion=Opinion.positive, replay=differing, materiality=0.01)


@pytest.mark.integration
def test_cli_keys_report_verify_attest(chain, tmp_path):
    mrv = [sys.executable, "-m", "mrv.cli"]
    keys = tmp_path / "keys"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*mrv, *args], capture_output=True, text=True, timeout=300)

    made = run("keys", "new", "--role", "vvb", "--out", str(keys))
    assert made.returncode == 0, made.stderr
    priv = next(keys.glob("*.key.json"))
    assert (priv.stat().st_mode & 0o777) == 0o600
    assert "secretKeyMultibase" not in made.stdout and json.loads(priv.read_text())["secretKeyMultibase"] not in made.stdout

    pkg = _copy(chain["out"].package.path, tmp_path / "p.zip")
    ok = run("verify", str(pkg), "--replay")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASS" in ok.stdout and "identical" in ok.stdout
    att = run("attest", str(pkg), "--key", str(priv), "--opinion", "positive", "--finding", "none")
    assert att.returncode == 0, att.stderr
    assert "statement" in run("package", "verify", str(pkg)).stdout

    bad = _copy(pkg, tmp_path / "bad.zip")
    data = bytearray(bad.read_bytes())
    with zipfile.ZipFile(bad) as zf:
        info = zf.getinfo("artifacts/project.yaml")
    # flip a byte inside the stored/deflated data of one member: the zip CRC or the digest must fail
    data[info.header_offset + 30 + len(info.filename) + 2] ^= 0x01
    bad.write_bytes(bytes(data))
    failed = run("package", "verify", str(bad))
    assert failed.returncode == 1
    assert "artifacts/project.yaml" in failed.stderr + failed.stdout
