"""Building verification packages from a real pipeline run: contents, deterministic bytes,
signed documents, countersigning, atomic writes.

Signatures here use the stand-in Ed25519-over-JCS signer of ``conftest.py`` (not the project's
eddsa-jcs-2022 module, which is written separately and injected the same way).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile

import pytest

from mrv.artifacts import LocalArtifactStore
from mrv.errors import PackageError
from mrv.lineage import LineageStore
from mrv.lineage.openlineage import openlineage_run_id
from mrv.package import (
    FORMAT_ID,
    MERKLE_ALGORITHM,
    add_signed_document,
    build_package,
    inclusion_proof,
    merkle_root,
    plan_package,
    read_openlineage_events,
    verify_inclusion,
    verify_package,
    write_package,
)
from mrv.package.manifest import canonical_json_bytes


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_plan_holds_every_artifact_of_the_run(demo_run):
    plan = demo_run.plan()
    manifest = json.loads(plan.manifest_bytes)
    assert manifest["format"] == FORMAT_ID and manifest["format_version"] == "1.0"
    assert manifest["run_id"] == demo_run.run_id
    assert manifest["project_id"] == "DEMO-WIND-TN-001"
    assert manifest["methodology_id"] == "CDM:ACM0002:22.0"
    assert manifest["merkle_algorithm"] == dict(MERKLE_ALGORITHM)
    paths = [a["path"] for a in manifest["artifacts"]]
    assert paths == sorted(paths) and len(set(paths)) == len(paths)

    by_path = {a["path"]: a for a in manifest["artifacts"]}
    for expected in [
        "artifacts/raw/EXP-1/EXP-1_2023-01.csv",
        "artifacts/raw/EXP-2/EXP-2_2023-Q1.parquet",
        "artifacts/raw/cross_check/invoices.csv",
        "artifacts/readings/EXP-1.json",  # a derivation of the raw files (mrv.derived)
        "artifacts/validated.json",  # a row selection over the readings (mrv.selection)
        "artifacts/quarantine.parquet",
        "artifacts/validation_result.json",
        "artifacts/calculation.json",
        "artifacts/project.yaml",
        "lineage/graph.json",
        "lineage/openlineage.jsonl",
    ]:
        assert expected in by_path, expected
    assert by_path["artifacts/calculation.json"]["role"] == "calculation"
    assert by_path["artifacts/validated.json"]["media_type"] == "application/json"
    assert by_path["artifacts/quarantine.parquet"]["media_type"] == "application/vnd.apache.parquet"

    # every artifact the lineage store links to the run is in, with its lineage digest and size
    listed = {(a["sha256"], a["size"]) for a in manifest["artifacts"]}
    rows = demo_run.lineage.run_artifacts(demo_run.run_id)
    assert rows
    for row in rows:
        assert (row.digest, row.size) in listed, row.role
    # and the project file the run was registered with
    assert by_path["artifacts/project.yaml"]["sha256"] == sha(demo_run.project.read_bytes())

    # the root is the Merkle root of the listed digests, and is what the report must claim
    assert manifest["merkle_root"] == merkle_root(a["sha256"] for a in manifest["artifacts"]) == plan.merkle_root
    assert plan.manifest_sha256 == sha(plan.manifest_bytes)
    assert plan.claim == {"merkle_root": plan.merkle_root, "manifest_sha256": plan.manifest_sha256}

    # the calculation artifact carries the trace
    calc = json.loads(plan.file("artifacts/calculation.json").source.read_bytes())  # type: ignore[union-attr]
    assert calc["trace"] and calc["methodology_id"] == "CDM:ACM0002:22.0"


def test_lineage_files_are_the_graph_and_this_runs_events(demo_run):
    plan = demo_run.plan()
    graph = plan.file("lineage/graph.json").source
    assert graph == canonical_json_bytes(demo_run.lineage.run_graph(demo_run.run_id))

    steps = demo_run.lineage.get_run(demo_run.run_id).steps
    lines = plan.file("lineage/openlineage.jsonl").source.decode().splitlines()  # type: ignore[union-attr]
    events = [json.loads(ln) for ln in lines]
    assert len(events) == 2 * len(steps)  # START + COMPLETE per computed step
    step_run_ids = {openlineage_run_id(s.id) for s in steps}
    for e in events:
        assert e["run"]["runId"] in step_run_ids
        assert e["run"]["facets"]["parent"]["run"]["runId"] == openlineage_run_id(demo_run.run_id)
    # events of other runs in the same file are left out
    foreign = json.loads(lines[0])
    foreign["run"] = {"runId": openlineage_run_id("some-other-run"), "facets": {}}
    without = demo_run.plan(openlineage_events=None)
    assert "lineage/openlineage.jsonl" not in {f.path for f in without.files}
    mixed = plan_package(
        store=demo_run.store, lineage=demo_run.lineage, run_id=demo_run.run_id,
        openlineage_events=[foreign, *demo_run.events()],
    )
    assert mixed.file("lineage/openlineage.jsonl").source == plan.file("lineage/openlineage.jsonl").source


def test_inclusion_proof_checks_one_artifact_without_the_package(demo_run):
    plan = demo_run.plan()
    proof = inclusion_proof(plan.manifest, path="artifacts/calculation.json")
    blob = plan.file("artifacts/calculation.json").source.read_bytes()  # type: ignore[union-attr]
    assert verify_inclusion(digest=sha(blob), proof=proof, root=plan.merkle_root)
    assert not verify_inclusion(digest=sha(blob + b" "), proof=proof, root=plan.merkle_root)


def test_zip_layout_and_two_builds_are_byte_identical(demo_run, signer, helpers, tmp_path):
    plan = demo_run.plan()
    report = signer.sign(helpers.report_document(plan))
    one = write_package(plan, out=tmp_path / "one.zip", signed_documents={"report": report})
    two = write_package(demo_run.plan(), out=tmp_path / "two.zip", signed_documents={"report": report})
    assert one.path.read_bytes() == two.path.read_bytes()
    assert (one.merkle_root, one.manifest_digest, one.artifact_count) == (plan.merkle_root, plan.manifest_sha256, len(plan.files))
    assert one.signed_documents == ("report",)

    with zipfile.ZipFile(one.path) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names, key=str.encode)
        assert names[-1] == "signatures/report.json" and "manifest.json" in names
        assert not any(i.is_dir() for i in infos)
        assert zf.comment == b""
        for i in infos:
            assert i.date_time == (1980, 1, 1, 0, 0, 0)
            assert i.create_system == 3 and i.external_attr >> 16 == 0o100644
            assert i.extra == b""
            expected = zipfile.ZIP_STORED if i.filename.endswith(".parquet") else zipfile.ZIP_DEFLATED
            assert i.compress_type == expected, i.filename
        for f in plan.files:
            data = f.source if isinstance(f.source, bytes) else f.source.read_bytes()
            assert zf.read(f.path) == data
        assert zf.read("manifest.json") == plan.manifest_bytes
    assert os.stat(one.path).st_mode & 0o777 == 0o644


def test_rebuild_in_a_copied_workspace_is_byte_identical(demo_run, signer, helpers, tmp_path):
    plan = demo_run.plan()
    report = signer.sign(helpers.report_document(plan))
    original = write_package(plan, out=tmp_path / "a" / "pkg.zip", signed_documents={"report": report})

    moved = helpers.copy_workspace(demo_run, tmp_path / "elsewhere" / "ws")
    assert moved.workspace.root != demo_run.workspace.root
    plan2 = moved.plan()
    report2 = signer.sign(helpers.report_document(plan2))
    rebuilt = write_package(plan2, out=tmp_path / "b" / "pkg.zip", signed_documents={"report": report2})
    assert rebuilt.path.read_bytes() == original.path.read_bytes()


def test_fresh_pipeline_run_gives_the_same_artifacts(demo_run, helpers, tmp_path):
    """A new run of the same inputs elsewhere: the artifact bytes are the same (deterministic
    pipeline), only the lineage files (new run id, step ids, times) differ."""
    fresh = helpers.run_demo(tmp_path)
    assert fresh.run_id != demo_run.run_id
    a, b = demo_run.plan().manifest, fresh.plan().manifest
    arts = lambda m: [e for e in m.entries if e.path.startswith("artifacts/")]  # noqa: E731
    assert arts(a) == arts(b)
    assert a.merkle_root != b.merkle_root  # the lineage files are leaves too


def test_signed_package_verifies(demo_run, signer, helpers, tmp_path):
    plan = demo_run.plan()
    report = signer.sign(helpers.report_document(plan))
    info = build_package(
        store=demo_run.store, lineage=demo_run.lineage, run_id=demo_run.run_id, out=tmp_path / "pkg.zip",
        signed_documents={"report": report}, openlineage_events=demo_run.events(),
    )
    assert info.merkle_root == plan.merkle_root
    result = verify_package(info.path, verify_signature=signer.verify, required_signatures=["report"])
    assert result.ok and result.first_failure is None, result.first_failure
    assert result.fully_verified
    assert result.merkle_root == plan.merkle_root and result.manifest_sha256 == plan.manifest_sha256
    assert result.signed_documents == ("report",)
    assert {c.kind for c in result.checks} == {"archive", "manifest", "entry", "merkle", "claim", "signature"}

    unchecked = verify_package(info.path)  # no verifier: intact, but signatures not checked
    assert unchecked.ok and not unchecked.fully_verified
    assert [str(c) for c in unchecked.skipped] == ["signatures/report.json: signature not checked (no verify_signature given)"]


def test_countersigning_equals_writing_all_documents_at_once(demo_run, signer, vvb_signer, helpers, tmp_path):
    plan = demo_run.plan()
    report = signer.sign(helpers.report_document(plan))
    statement = vvb_signer.sign(helpers.statement_document(plan))
    pkg = write_package(plan, out=tmp_path / "pkg.zip", signed_documents={"report": report}).path

    info = add_signed_document(pkg, name="vvb-statement", document=statement)
    assert info.signed_documents == ("report", "vvb-statement")
    both = write_package(plan, out=tmp_path / "both.zip", signed_documents={"report": report, "vvb-statement": statement})
    assert pkg.read_bytes() == both.path.read_bytes()

    both_keys = helpers.verifier_for(signer, vvb_signer)
    result = verify_package(pkg, verify_signature=both_keys, required_signatures={"report", "vvb-statement"})
    assert result.ok, result.first_failure

    before = pkg.read_bytes()
    with pytest.raises(PackageError, match="already holds a signed document 'vvb-statement'"):
        add_signed_document(pkg, name="vvb-statement", document=statement)
    elsewhere = {"merkle_root": "sha256:" + "0" * 64, "manifest_sha256": plan.manifest_sha256}
    other = dict(statement, credentialSubject={"id": "x", "package": elsewhere})
    with pytest.raises(PackageError, match="does not sign this package: credentialSubject.package.merkle_root"):
        add_signed_document(pkg, name="other", document=other)
    assert pkg.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["both.zip", "pkg.zip"]  # no temp files left


def test_write_rejects_documents_that_do_not_name_the_package(demo_run, signer, helpers, tmp_path):
    plan = demo_run.plan()
    out = tmp_path / "pkg.zip"
    unbound = signer.sign({"type": ["VerifiableCredential"], "credentialSubject": {"id": "x"}})
    with pytest.raises(PackageError, match=r"does not name the package it signs \(no credentialSubject.package\)"):
        write_package(plan, out=out, signed_documents={"report": unbound})
    wrong = helpers.report_document(plan)
    wrong["credentialSubject"]["package"] = dict(plan.claim, manifest_sha256=sha(b"another manifest"))
    with pytest.raises(PackageError, match="manifest_sha256 .* does not match manifest.json"):
        write_package(plan, out=out, signed_documents={"report": signer.sign(wrong)})
    for bad in ["../report", "report.json", "", "a/b"]:
        with pytest.raises(PackageError, match="invalid signed document name"):
            write_package(plan, out=out, signed_documents={bad: signer.sign(helpers.report_document(plan))})
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_extra_files_are_manifest_entries_and_merkle_leaves(demo_run, tmp_path):
    html = b"<html><body>Monitoring report</body></html>\n"
    plan = demo_run.plan(extra={"report/report.html": (html, "report_html", "text/html")})
    entry = plan.manifest.entry("report/report.html")
    assert (entry.sha256, entry.size, entry.role, entry.media_type) == (sha(html), len(html), "report_html", "text/html")
    assert plan.merkle_root != demo_run.plan().merkle_root
    info = write_package(plan, out=tmp_path / "pkg.zip")
    assert verify_package(info.path).ok
    with zipfile.ZipFile(info.path) as zf:
        assert zf.getinfo("report/report.html").compress_type == zipfile.ZIP_DEFLATED

    for path, match in [
        ("artifacts/calculation.json", "collides with a file of the run"),
        ("manifest.json", "reserved"),
        ("signatures/report.json", "reserved"),
        ("../escape.txt", "invalid extra file path"),
        ("/abs.txt", "invalid extra file path"),
        ("a\\b.txt", "invalid extra file path"),
    ]:
        with pytest.raises(PackageError, match=match):
            demo_run.plan(extra={path: (b"x", "note", "text/plain")})
    with pytest.raises(PackageError, match=r"expected \(bytes, role, media_type\)"):
        demo_run.plan(extra={"notes.txt": ("text, not bytes", "note", "text/plain")})


def test_corrupt_store_fails_the_build_and_keeps_the_old_package(demo_run, helpers, tmp_path):
    moved = helpers.copy_workspace(demo_run, tmp_path / "ws")
    out_dir = tmp_path / "out"
    old = write_package(moved.plan(), out=out_dir / "pkg.zip").path.read_bytes()

    digest = moved.plan().manifest.entry("artifacts/calculation.json").sha256
    blob = moved.store.local_path(digest)
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[100] ^= 0x01
    blob.write_bytes(bytes(data))

    expected = r"artifacts/calculation.json: the bytes of .* hash to sha256:[0-9a-f]{64}, expected " + digest
    with pytest.raises(PackageError, match=expected):
        write_package(moved.plan(), out=out_dir / "pkg.zip")
    assert (out_dir / "pkg.zip").read_bytes() == old
    assert [p.name for p in out_dir.iterdir()] == ["pkg.zip"]

    # a blob that disappears between planning and writing is named too
    data[100] ^= 0x01
    blob.write_bytes(bytes(data))  # calculation repaired
    plan = moved.plan()
    lost = plan.manifest.entry("artifacts/quarantine.parquet").sha256
    moved.store.local_path(lost).unlink()
    with pytest.raises(PackageError, match=r"artifacts/quarantine.parquet: cannot read .*No such file"):
        write_package(plan, out=out_dir / "pkg.zip")
    with pytest.raises(PackageError, match=r"artifacts/quarantine.parquet: artifact sha256:\w+ is not in the store"):
        moved.plan()
    assert (out_dir / "pkg.zip").read_bytes() == old
    assert [p.name for p in out_dir.iterdir()] == ["pkg.zip"]


def test_incomplete_runs_and_artifacts_of_failed_steps(tmp_path):
    """A hand-made run in a real lineage store: a failed attempt's outputs are kept apart."""
    store = LocalArtifactStore(tmp_path / "artifacts")
    lineage = LineageStore(f"sqlite:///{tmp_path / 'lineage.db'}")
    lineage.migrate()
    run_id = lineage.start_run(project_id="P-1", methodology_id="CDM:ACM0002:22.0", parameters={}, run_id="run-1")
    raw = store.put_bytes(b"t,v\n1,2\n", media_type="text/csv", name="m.csv")

    failed = lineage.start_step(run_id, name="validate", parameters={}, cache_key="k1")
    lineage.record_artifact(failed, raw, role="raw/m.csv", direction="input")
    blocked = store.put_bytes(b'{"blocked": true}\n', media_type="application/json", name="v.json")
    lineage.record_artifact(failed, blocked, role="validation_result", direction="output")
    lineage.finish_step(failed, status="failed", error="ContractBlocked: ...")

    with pytest.raises(PackageError, match="run run-1 is running, not completed"):
        plan_package(store=store, lineage=lineage, run_id=run_id)
    assert plan_package(store=store, lineage=lineage, run_id=run_id, allow_incomplete=True).files

    ok = lineage.start_step(run_id, name="validate", parameters={}, cache_key="k2")
    lineage.record_artifact(ok, raw, role="raw/m.csv", direction="input")
    result = store.put_bytes(b'{"blocked": false}\n', media_type="application/json", name="v.json")
    lineage.record_artifact(ok, result, role="validation_result", direction="output")
    lineage.finish_step(ok, status="completed")
    lineage.finish_run(run_id, status="completed")

    plan = plan_package(store=store, lineage=lineage, run_id=run_id)
    paths = {f.path: f.sha256 for f in plan.files}
    assert paths == {
        "artifacts/raw/m.csv": raw.digest,  # input of both attempts: once, at its normal place
        "artifacts/validation_result.json": result.digest,
        f"artifacts/failed/{failed}/validation_result.json": blocked.digest,
        "lineage/graph.json": paths["lineage/graph.json"],
    }
    info = write_package(plan, out=tmp_path / "pkg.zip")
    assert verify_package(info.path).ok

    with pytest.raises(PackageError, match="unknown run id 'nope'"):
        plan_package(store=store, lineage=lineage, run_id="nope")


def test_read_openlineage_events_names_the_bad_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"eventType": "START"}\n\n{not json\n')
    with pytest.raises(PackageError, match=r"events.jsonl:3: not a JSON OpenLineage event"):
        read_openlineage_events(path)
    with pytest.raises(PackageError, match="cannot read OpenLineage events"):
        read_openlineage_events(tmp_path / "missing.jsonl")
