"""The registry's intake checks on a real signed package and VVB statement: for every check, a
passing case and a failing case with its reason.

One demo run, one signed report (and a second report of the same run signed by another
developer key), statements by a generated VVB key: built once per module; each test works on its
own copy of the zip.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from mrv import pipeline
from mrv.attest import Opinion, attest
from mrv.registry.checks import (
    CheckName,
    IntakeOutcome,
    IntakeRequest,
    PriorRequest,
    RegisteredBoundary,
    RegistryPolicy,
    run_intake_checks,
)
from mrv.report.build import build_report
from mrv.sample import generate_demo_project
from mrv.settings import MRVSettings
from mrv.signing import KeyRole, generate_key

PROJECT = "DEMO-WIND-TN-001"
METHODOLOGY = "CDM:ACM0002:22.0"
SERIALS = {"EM-22A-104173", "EM-22B-104188", "EM-22X-104201"}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("intake")
    project = generate_demo_project(root / "project", seed=7)
    settings = MRVSettings(home=root / "ws")
    summary = pipeline.run_local(settings, project)
    ws, store, lineage = pipeline.open_workspace(settings)
    dev, dev2, vvb = generate_key(role=KeyRole.developer), generate_key(role=KeyRole.developer), generate_key(role=KeyRole.vvb)
    out = build_report(workspace=ws, store=store, lineage=lineage, run_id=summary["run_id"], key=dev, out_dir=root / "r1")
    # The same run reported again under another developer key: same package contents, another report.
    other = build_report(workspace=ws, store=store, lineage=lineage, run_id=summary["run_id"], key=dev2, out_dir=root / "r2")

    def attested(src: Path, name: str, opinion: Opinion, findings=()) -> Path:
        pkg = root / "attested" / name
        pkg.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, pkg)
        attest(pkg, key=vvb, opinion=opinion, findings=list(findings), replay=None, materiality=0.01)
        return pkg

    positive = attested(out.package.path, "positive.zip", Opinion.positive)
    adverse = attested(out.package.path, "adverse.zip", Opinion.adverse, ["data gaps not justified"])
    other_positive = attested(other.package.path, "other.zip", Opinion.positive)
    with zipfile.ZipFile(other_positive) as zf:
        other_statement = zf.read("signatures/statement.json")
    policy = RegistryPolicy(
        accredited_vvbs=frozenset({vvb.did}),
        project_developers={PROJECT: frozenset({dev.did})},
        accepted_methodologies=frozenset({METHODOLOGY, "GS:MECD:2.0"}),
    )
    return {
        "summary": summary, "dev": dev, "dev2": dev2, "vvb": vvb, "policy": policy,
        "report_only": out.package.path, "positive": positive, "adverse": adverse, "other_statement": other_statement,
        "issuable": summary["issuable_tCO2e"],
    }


def _copy(src: Path, tmp_path: Path, name: str = "p.zip") -> Path:
    dest = tmp_path / name
    shutil.copyfile(src, dest)
    return dest


def _rewrite(pkg: Path, changes: dict[str, bytes]) -> Path:
    """Replace members of the zip."""
    changes = dict(changes)
    with zipfile.ZipFile(pkg) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(pkg, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, changes.pop(info.filename, data))
    assert not changes, f"not in the zip: {sorted(changes)}"
    return pkg


def _member(pkg: Path, name: str) -> dict:
    with zipfile.ZipFile(pkg) as zf:
        return json.loads(zf.read(name))


def _run(chain, pkg, *, quantity=None, policy=None, prior=(), boundaries=()) -> IntakeOutcome:
    return run_intake_checks(
        IntakeRequest(requested_quantity=chain["issuable"] if quantity is None else quantity, package=pkg),
        policy=policy or chain["policy"],
        prior_requests=list(prior),
        boundaries=list(boundaries),
    )


def _failed(outcome: IntakeOutcome) -> set[CheckName]:
    return {c.name for c in outcome.failures}


def _prior(chain, **kw) -> PriorRequest:
    base = dict(
        project_id=PROJECT, report_sha256="sha256:" + "0" * 64, period_start=date(2022, 1, 1),
        period_end=date(2022, 12, 31), meter_ids=frozenset(SERIALS), status="issued", request_id="R-1",
    )
    return PriorRequest(**{**base, **kw})


def _demo_ring(dlon: float = 0.0, dlat: float = 0.0) -> dict:
    d, lon, lat = 0.02, 77.55, 8.265
    corners = [(-d, -d), (d, -d), (d, d), (-d, d), (-d, -d)]
    return {"type": "Polygon", "coordinates": [[[round(lon + x, 4) + dlon, round(lat + y, 4) + dlat] for x, y in corners]]}


# --------------------------------------------------------------------------- all pass


def test_every_check_passes_on_a_good_package(chain, tmp_path):
    pkg = _copy(chain["positive"], tmp_path)
    prior = [_prior(chain)]  # the year before: no overlap
    neighbour = RegisteredBoundary("OTHER-1", _demo_ring(dlon=0.1))
    outcome = _run(chain, pkg, prior=prior, boundaries=[neighbour, RegisteredBoundary(PROJECT, _demo_ring())])
    assert outcome.passed, [str(c) for c in outcome.failures]
    assert [c.name for c in outcome.checks] == list(CheckName)  # every check, in a fixed order
    f = outcome.facts
    assert f.project_id == PROJECT and f.methodology_id == METHODOLOGY
    assert (f.period_start, f.period_end) == (date(2023, 1, 1), date(2023, 12, 31))
    assert f.meter_ids == SERIALS and {m for m, _ in f.meters} == {"EXP-1", "EXP-2", "IMP-1"}
    assert f.issuable_tCO2e == f.verified_tCO2e == chain["issuable"]
    assert f.developer_did == chain["dev"].did and f.vvb_did == chain["vvb"].did
    assert f.report_sha256.startswith("sha256:") and f.merkle_root.startswith("sha256:")
    assert f.boundary["type"] == "Polygon" and f.country == "IN" and f.opinion == "positive"
    doc = json.loads(json.dumps(outcome.to_dict()))
    assert doc["passed"] is True and len(doc["checks"]) == len(CheckName)
    assert doc["facts"]["period_start"] == "2023-01-01"
    assert "verifies" in outcome.check("report_signature").reason


def test_package_as_bytes_gives_the_same_outcome(chain, tmp_path):
    pkg = _copy(chain["positive"], tmp_path)
    from_path = _run(chain, pkg)
    from_bytes = _run(chain, pkg.read_bytes())
    assert from_bytes.passed and from_bytes.facts == from_path.facts
    assert [c.passed for c in from_bytes.checks] == [c.passed for c in from_path.checks]


# --------------------------------------------------------------------------- signatures


def test_report_signature_fails_when_the_report_is_edited(chain, tmp_path):
    pkg = _copy(chain["positive"], tmp_path)
    report = _member(pkg, "signatures/report.json")
    report["credentialSubject"]["issuable_tCO2e"] += 50_000
    _rewrite(pkg, {"signatures/report.json": json.dumps(report).encode()})
    outcome = _run(chain, pkg, quantity=chain["issuable"] + 50_000)
    check = outcome.check(CheckName.report_signature)
    assert not check.passed and check.reason.startswith("report signature does not verify")
    # the edited report is no longer the one the VVB signed for, and the statement's quantity caps the request
    assert _failed(outcome) == {
        CheckName.report_signature, CheckName.statement_bound_to_report, CheckName.quantity_within_verified,
    }
    assert f"verified issuable quantity {chain['issuable']} tCO2e" in outcome.check("quantity_within_verified").reason


def test_statement_signature_fails_when_the_opinion_is_edited(chain, tmp_path):
    pkg = _copy(chain["adverse"], tmp_path)
    statement = _member(pkg, "signatures/statement.json")
    statement["credentialSubject"]["opinion"] = "positive"
    _rewrite(pkg, {"signatures/statement.json": json.dumps(statement).encode()})
    outcome = _run(chain, pkg)
    check = outcome.check(CheckName.statement_signature)
    assert not check.passed and check.reason.startswith("statement signature does not verify")
    assert not outcome.passed and _failed(outcome) == {CheckName.statement_signature}


def test_package_without_a_statement(chain, tmp_path):
    outcome = _run(chain, _copy(chain["report_only"], tmp_path))
    assert outcome.check("report_signature").passed and outcome.check("package_integrity").passed
    for name in ("statement_signature", "vvb_accredited", "statement_bound_to_report", "opinion_not_adverse", "quantity_within_verified"):
        check = outcome.check(name)
        assert not check.passed and "no VVB statement in the package" in check.reason, check


# --------------------------------------------------------------------------- who signed


def test_vvb_not_accredited(chain, tmp_path):
    policy = replace(chain["policy"], accredited_vvbs=frozenset({generate_key(role=KeyRole.vvb).did}))
    outcome = _run(chain, _copy(chain["positive"], tmp_path), policy=policy)
    assert _failed(outcome) == {CheckName.vvb_accredited}
    assert outcome.check("vvb_accredited").reason == f"VVB {chain['vvb'].did} is not on the registry's accredited list"


def test_vvb_cannot_be_the_developer(chain, tmp_path):
    dev = chain["dev"]
    pkg = _copy(chain["report_only"], tmp_path)
    attest(pkg, key=dev, opinion=Opinion.positive, replay=None, materiality=0.01)
    policy = replace(chain["policy"], accredited_vvbs=frozenset({dev.did}))
    outcome = _run(chain, pkg, policy=policy)
    assert _failed(outcome) == {CheckName.vvb_accredited}
    assert "cannot verify its own report" in outcome.check("vvb_accredited").reason


def test_developer_not_registered(chain, tmp_path):
    pkg = _copy(chain["positive"], tmp_path)
    policy = replace(chain["policy"], project_developers={PROJECT: frozenset({chain["dev2"].did})})
    outcome = _run(chain, pkg, policy=policy)
    assert _failed(outcome) == {CheckName.developer_registered}
    assert outcome.check("developer_registered").reason == (
        f"developer {chain['dev'].did} is not registered for project {PROJECT}"
    )
    unknown = _run(chain, pkg, policy=replace(chain["policy"], project_developers={}))
    assert f"project {PROJECT} has no registered developer" in unknown.check("developer_registered").reason


# --------------------------------------------------------------------------- the statement


def test_statement_for_another_report_is_not_bound(chain, tmp_path):
    """The statement of a second report of the same run (same package contents, so the package
    claims still match) spliced in: only the report binding catches it."""
    pkg = _rewrite(_copy(chain["positive"], tmp_path), {"signatures/statement.json": chain["other_statement"]})
    outcome = _run(chain, pkg)
    assert _failed(outcome) == {CheckName.statement_bound_to_report}
    reason = outcome.check("statement_bound_to_report").reason
    assert f"but the package's report is {outcome.facts.report_sha256}" in reason
    assert reason.startswith("the statement is bound to report sha256:")


def test_adverse_opinion(chain, tmp_path):
    outcome = _run(chain, _copy(chain["adverse"], tmp_path))
    assert _failed(outcome) == {CheckName.opinion_not_adverse}
    assert outcome.check("opinion_not_adverse").reason == "the VVB's opinion is adverse (findings: data gaps not justified)"


def test_qualified_opinion_passes(chain, tmp_path):
    pkg = _copy(chain["report_only"], tmp_path)
    attest(pkg, key=chain["vvb"], opinion=Opinion.qualified, findings=["CAR-1 open"], replay=None, materiality=0.01)
    outcome = _run(chain, pkg)
    assert outcome.passed and outcome.check("opinion_not_adverse").reason == "the VVB's opinion is qualified (findings: CAR-1 open)"


def test_quantity_within_and_above_the_verified_quantity(chain, tmp_path):
    pkg = _copy(chain["positive"], tmp_path)
    n = chain["issuable"]
    assert _run(chain, pkg, quantity=n).check("quantity_within_verified").passed
    assert _run(chain, pkg, quantity=1).check("quantity_within_verified").passed
    too_much = _run(chain, pkg, quantity=n + 1)
    assert _failed(too_much) == {CheckName.quantity_within_verified}
    assert too_much.check("quantity_within_verified").reason == (
        f"requested {n + 1} tCO2e exceeds the verified issuable quantity {n} tCO2e"
    )
    for bad in (0, -5, 1.5, True):
        assert "not a positive whole number" in _run(chain, pkg, quantity=bad).check("quantity_within_verified").reason


# --------------------------------------------------------------------------- methodology


def test_methodology_not_accepted(chain, tmp_path):
    policy = replace(chain["policy"], accepted_methodologies=frozenset({"VCS:VM0047:1.1"}))
    outcome = _run(chain, _copy(chain["positive"], tmp_path), policy=policy)
    assert _failed(outcome) == {CheckName.methodology_accepted}
    assert outcome.check("methodology_accepted").reason == f"methodology {METHODOLOGY} is not accepted by the registry"


# --------------------------------------------------------------------------- double issuance


def test_period_overlapping_an_earlier_request_of_the_same_project(chain, tmp_path):
    pkg = _copy(chain["positive"], tmp_path)
    prior = _prior(chain, period_start=date(2023, 6, 1), period_end=date(2024, 5, 31), meter_ids=frozenset(), status="approved")
    outcome = _run(chain, pkg, prior=[prior])
    assert _failed(outcome) == {CheckName.period_not_overlapping}
    assert outcome.check("period_not_overlapping").reason == (
        f"monitoring period 2023-01-01..2023-12-31 overlaps request R-1 of project {PROJECT} (2023-06-01..2024-05-31, approved)"
    )
    # inclusive dates: sharing only the last day overlaps; starting the day after does not
    last_day = _prior(chain, period_start=date(2023, 12, 31), period_end=date(2024, 12, 30))
    assert not _run(chain, pkg, prior=[last_day]).check("period_not_overlapping").passed
    next_day = _prior(chain, period_start=date(2024, 1, 1), period_end=date(2024, 12, 31))
    assert _run(chain, pkg, prior=[next_day]).check("period_not_overlapping").passed


@pytest.mark.parametrize("status", ["rejected", "checks_failed"])
def test_rejected_and_failed_requests_do_not_count(chain, tmp_path, status):
    pkg = _copy(chain["positive"], tmp_path)
    prior = _prior(chain, period_start=date(2023, 1, 1), period_end=date(2023, 12, 31), status=status)
    outcome = _run(chain, pkg, prior=[prior])
    assert outcome.check("period_not_overlapping").passed


def test_same_meter_serial_in_another_project(chain, tmp_path):
    pkg = _copy(chain["positive"], tmp_path)
    # serials compare trimmed and case-insensitively
    prior = _prior(chain, project_id="OTHER-7", period_start=date(2023, 3, 1), period_end=date(2023, 3, 31),
                   meter_ids=frozenset({" em-22b-104188", "XYZ-1"}), status="issued", request_id="R-9")
    outcome = _run(chain, pkg, prior=[prior])
    assert _failed(outcome) == {CheckName.period_not_overlapping}
    assert outcome.check("period_not_overlapping").reason == (
        "meter serial EM-22B-104188 in monitoring period 2023-01-01..2023-12-31 also in "
        "request R-9 of project OTHER-7 (2023-03-01..2023-03-31, issued)"
    )
    # another project, overlapping period, no shared meter: fine
    unrelated = replace(prior, meter_ids=frozenset({"XYZ-1"}))
    assert _run(chain, pkg, prior=[unrelated]).check("period_not_overlapping").passed


def test_same_report_resubmitted(chain, tmp_path):
    pkg = _copy(chain["positive"], tmp_path)
    digest = _run(chain, pkg).facts.report_sha256
    # an earlier request with the same report digest but another period, so only this check fails
    prior = _prior(chain, report_sha256=digest, status="received", request_id="R-3")
    outcome = _run(chain, pkg, prior=[prior])
    assert _failed(outcome) == {CheckName.report_not_resubmitted}
    assert outcome.check("report_not_resubmitted").reason == (
        f"report {digest} was already submitted in request R-3 of project {PROJECT} (received)"
    )
    retried = _run(chain, pkg, prior=[replace(prior, status="checks_failed")])
    assert retried.passed and "does not count" in retried.check("report_not_resubmitted").reason


def test_boundary_overlapping_another_project(chain, tmp_path):
    pkg = _copy(chain["positive"], tmp_path)
    # the demo boundary is a 0.04° square; shifted east by 0.01° the two share 75 %
    outcome = _run(chain, pkg, boundaries=[RegisteredBoundary("WIND-X", _demo_ring(dlon=0.01))])
    assert _failed(outcome) == {CheckName.boundary_not_overlapping}
    reason = outcome.check("boundary_not_overlapping").reason
    assert reason.startswith("boundary overlaps project WIND-X by 75 % of the smaller area (")
    assert reason.endswith("tolerance 1 %)")
    # a sliver within the tolerance (0.0002° of 0.04° = 0.5 %) passes; the project's own boundary is ignored
    ok = _run(chain, pkg, boundaries=[RegisteredBoundary("WIND-Y", _demo_ring(dlon=0.0398)), RegisteredBoundary(PROJECT, _demo_ring())])
    assert ok.check("boundary_not_overlapping").passed, ok.check("boundary_not_overlapping")
    strict = _run(chain, pkg, policy=replace(chain["policy"], boundary_overlap_tolerance=0.001),
                  boundaries=[RegisteredBoundary("WIND-Y", _demo_ring(dlon=0.0398))])
    assert "by 0.5 % of the smaller area" in strict.check("boundary_not_overlapping").reason
    site = {"type": "Point", "coordinates": [77.55, 8.265]}
    point = _run(chain, pkg, boundaries=[RegisteredBoundary("SITE-Z", site)])
    assert "overlaps project SITE-Z" in point.check("boundary_not_overlapping").reason
    broken = _run(chain, pkg, boundaries=[RegisteredBoundary("BAD", {"type": "LineString", "coordinates": [[0, 0], [1, 1]]})])
    assert "cannot compare with project BAD's boundary" in broken.check("boundary_not_overlapping").reason


# --------------------------------------------------------------------------- package integrity


def test_tampered_artifact_fails_integrity(chain, tmp_path):
    pkg = _copy(chain["positive"], tmp_path)
    with zipfile.ZipFile(pkg) as zf:
        raw = sorted(n for n in zf.namelist() if n.startswith("artifacts/") and n.endswith(".csv"))[0]
        data = zf.read(raw)
    _rewrite(pkg, {raw: data.replace(b"1", b"2", 1)})
    outcome = _run(chain, pkg)
    assert _failed(outcome) == {CheckName.package_integrity}
    reason = outcome.check("package_integrity").reason
    assert reason.startswith(f"{raw}: sha256 mismatch")


def test_unreadable_package_fails_every_check(chain, tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not a zip")
    outcome = _run(chain, junk)
    assert not outcome.passed and len(outcome.failures) == len(CheckName)
    for check in outcome.checks:
        if check.name is CheckName.package_integrity:
            assert "not a readable zip archive" in check.reason
        else:
            assert check.reason.startswith("not checked: package unreadable"), check
    assert outcome.facts.project_id is None
    assert not _run(chain, b"").passed


def test_malformed_report_fails_its_checks_without_crashing(chain, tmp_path):
    pkg = _rewrite(_copy(chain["positive"], tmp_path), {"signatures/report.json": b'{"credentialSubject": {"project": 5}}'})
    outcome = _run(chain, pkg)
    assert [c.name for c in outcome.checks] == list(CheckName)
    assert {CheckName.report_signature, CheckName.developer_registered, CheckName.methodology_accepted,
            CheckName.period_not_overlapping, CheckName.boundary_not_overlapping, CheckName.package_integrity} <= _failed(outcome)


def _damaged_variants(chain, tmp_path: Path) -> dict[str, Path]:
    """Packages whose parts the checks must read themselves (verify_package did not read or
    did not verify them): a tampered project file, no manifest, a broken manifest, a report that
    is not JSON, a statement that is not an object."""
    out = {}
    with zipfile.ZipFile(chain["positive"]) as zf:
        yaml_text = zf.read("artifacts/project.yaml")
    for name, changes in {
        "project_file_tampered": {"artifacts/project.yaml": yaml_text.replace(b"EM-22A-104173", b"EM-TAMPERED-1")},
        "manifest_broken": {"manifest.json": b"{not json"},
        "report_not_json": {"signatures/report.json": b"\xff not json"},
        "statement_not_an_object": {"signatures/statement.json": b"[1, 2]"},
    }.items():
        out[name] = _rewrite(_copy(chain["positive"], tmp_path, f"{name}.zip"), changes)
    no_manifest = tmp_path / "no_manifest.zip"
    with zipfile.ZipFile(chain["positive"]) as zin, zipfile.ZipFile(no_manifest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename != "manifest.json":
                zout.writestr(info, zin.read(info))
    out["no_manifest"] = no_manifest
    return out


def test_damaged_packages_are_read_the_same_from_a_path_and_from_bytes(chain, tmp_path):
    variants = _damaged_variants(chain, tmp_path)
    for name, pkg in variants.items():
        from_path, from_bytes = _run(chain, pkg), _run(chain, pkg.read_bytes())
        assert [str(c) for c in from_bytes.checks] == [str(c).replace(pkg.name, "package.zip") for c in from_path.checks], name
        assert from_bytes.facts == from_path.facts, name
        assert not from_bytes.passed, name
    # What the checks read themselves, where verify_package read nothing they could use:
    tampered = _run(chain, variants["project_file_tampered"].read_bytes())
    assert "EM-TAMPERED-1" in tampered.facts.meter_ids  # the project file as it is (its digest is the integrity check's)
    assert _failed(tampered) == {CheckName.package_integrity}
    for name in ("no_manifest", "manifest_broken"):
        outcome = _run(chain, variants[name].read_bytes())
        assert outcome.check("report_signature").passed and outcome.check("statement_signature").passed, name
        assert outcome.facts.meter_ids == SERIALS
        assert outcome.facts.manifest_sha256 == (None if name == "no_manifest" else "sha256:" + hashlib.sha256(b"{not json").hexdigest())
        assert _failed(outcome) == {CheckName.package_integrity}, name
    report = _run(chain, variants["report_not_json"].read_bytes()).check("report_signature")
    assert not report.passed and report.reason.startswith("signatures/report.json is not valid JSON")
    statement = _run(chain, variants["statement_not_an_object"].read_bytes()).check("statement_signature")
    assert not statement.passed and statement.reason == "signatures/statement.json is not a JSON object"


def test_far_away_boundaries_are_skipped_not_failed(chain, tmp_path):
    # Projects on other continents cannot overlap: they are skipped by their bounding boxes (an
    # exact comparison of geometries more than 20° apart is refused by the equal-area projection).
    pkg = _copy(chain["positive"], tmp_path)
    far = [RegisteredBoundary(f"FAR-{i}", {"type": "Point", "coordinates": [-120.0 + i, 40.0]}) for i in range(50)]
    outcome = _run(chain, pkg, boundaries=[*far, RegisteredBoundary("WIND-X", _demo_ring(dlon=0.01))])
    assert _failed(outcome) == {CheckName.boundary_not_overlapping}
    reason = outcome.check("boundary_not_overlapping").reason
    assert reason.startswith("boundary overlaps project WIND-X by 75 %") and "FAR-" not in reason
    clear = _run(chain, pkg, boundaries=far)
    assert clear.check("boundary_not_overlapping").passed
    assert "none of 50 other registered project boundaries" in clear.check("boundary_not_overlapping").reason
    # a neighbour 0.005° away is within the bounding-box margin: compared exactly, and it passes
    near = _run(chain, pkg, boundaries=[RegisteredBoundary("NEAR", _demo_ring(dlon=0.045))])
    assert near.check("boundary_not_overlapping").passed


# --------------------------------------------------------------------------- reading the project file

_YAML_CASES = [
    "", "a: 1", "- 1\n- 2", "a: &x {b: 1}\nc: *x", "a: &x [1, *x]", "<<: {a: 1}\nb: 2", "a: !!int abc", "a: !!int abc\nb: !!float xyz",
    "= : 1", "? [1, 2]\n: x", "? {a: 1}\n: x", "a: 2023-03-01\nb: 2023-03-01T10:00:00Z", "a: !!binary aGVsbG8=", "a: !!set {x, y}",
    "a: yes\nb: 0x1F\nc: 1_000\nd: .inf\ne: ~\nf: 0o17\ng: 1:30\nh: -.5e3", "a: !!omap [{a: 1}]", "---\na: 1\n---\nb: 2", "a: [1, 2",
    "a: 1\na: 2", "a: !custom x", "a: !!str 5", "1: a\n1.5: b\nnull: c\ntrue: d", "a: &s x\nb: *s", "a: 'it''s'\nb: \"\\u00e9\\n\"",
    "- - - 1", "a: 12345678901234567890123", "a: !!timestamp 2023-13-45",
]


def _yaml_outcome(load, text: str) -> tuple[str, ...]:
    try:
        return "ok", repr(load(text))
    except Exception as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("text", _YAML_CASES)
def test_project_yaml_is_read_as_yaml_load_reads_it(text):
    import yaml

    from mrv.yamlload import load_yaml_c as _load_yaml

    assert _yaml_outcome(_load_yaml, text) == _yaml_outcome(lambda t: yaml.load(t, Loader=yaml.CSafeLoader), text)


def test_project_yaml_of_packages_is_read_as_yaml_load_reads_it(chain):
    import yaml
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from mrv.yamlload import load_yaml_c as _load_yaml

    with zipfile.ZipFile(chain["positive"]) as zf:
        real = zf.read("artifacts/project.yaml").decode()
    assert _load_yaml(real) == yaml.load(real, Loader=yaml.CSafeLoader) and isinstance(_load_yaml(real), dict)

    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8) | st.dates() | st.datetimes()
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=3),
                          max_leaves=15)

    @settings(max_examples=300, deadline=None)
    @given(values, st.sampled_from([None, True, False]))
    def same(value, flow):
        text = yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True)
        assert _yaml_outcome(_load_yaml, text) == _yaml_outcome(lambda t: yaml.load(t, Loader=yaml.CSafeLoader), text)

    same()
