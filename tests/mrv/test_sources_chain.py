"""Instrument (ACM0001 landfill flare) and device-fleet (GS MECD cooking) projects through the whole
chain: ingest -> contract -> calculate -> signed report + package -> VVB replay -> attest.

Real files, real signatures, small seeded samples (a week of minute data; a 40-device fleet for
three weeks), so the chain runs in seconds.
"""

from __future__ import annotations

import base64
import json
import re
import zipfile

import pytest

from mrv import pipeline
from mrv.attest import Opinion, attest
from mrv.errors import ProjectSpecError
from mrv.package import verify_package
from mrv.replay import replay_package
from mrv.report.build import build_report
from mrv.sample.cooking import generate_cooking_project
from mrv.sample.landfill import generate_landfill_project
from mrv.settings import MRVSettings
from mrv.signing import KeyRole, generate_key, verify_credential

pytestmark = pytest.mark.integration

SAMPLES = {
    "landfill": lambda d: generate_landfill_project(d, seed=5, days=7),
    "cooking": lambda d: generate_cooking_project(d, seed=5, devices=60, days=30),  # big enough that fleet-size trace cells must be cut to fit a PDF page
}


@pytest.fixture(scope="module", params=sorted(SAMPLES))
def chain(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    project = SAMPLES[request.param](root / "project")
    settings = MRVSettings(home=root / "ws")
    summary = pipeline.run_local(settings, project, max_workers=2)
    ws, store, lineage = pipeline.open_workspace(settings)
    dev = generate_key(role=KeyRole.developer)
    out = build_report(workspace=ws, store=store, lineage=lineage, run_id=summary["run_id"], key=dev, out_dir=root / "out")
    return {"kind": request.param, "root": root, "project": project, "settings": settings, "summary": summary, "lineage": lineage, "out": out}


def test_run_records_every_step_and_a_positive_result(chain):
    summary = chain["summary"]
    assert summary["issuable_tCO2e"] > 0
    steps = {s.name for s in chain["lineage"].list_steps(summary["run_id"])}
    if chain["kind"] == "landfill":
        assert any(n.startswith("ingest_instrument[") for n in steps)
        assert summary["methodology_id"] == "CDM:ACM0001:19.0"
    else:
        assert "ingest_devices" in steps
        assert summary["methodology_id"] == "GS:MECD:2.0"
    assert {"validate_readings", "calculate"} <= steps
    # The sample injects faults: the contract quarantined some rows, with reasons, and nothing was lost.
    rows = summary["contract"]["rows"]
    assert rows["quarantined"] > 0
    assert rows["input"] == rows["valid"] + rows["quarantined"]


def test_signed_report_package_and_twin(chain):
    out = chain["out"]
    assert verify_credential(out.report).verified
    subject = out.report["credentialSubject"]
    assert subject["issuable_tCO2e"] == chain["summary"]["issuable_tCO2e"]
    if chain["kind"] == "cooking":
        assert subject["project"]["installedCapacity"] is None  # a fleet states no installed capacity
    check = verify_package(out.package.path, verify_signature=verify_credential, required_signatures=["report"])
    assert check.ok, check.first_failure
    with zipfile.ZipFile(out.package.path) as zf:
        html = zf.read("report/report.html").decode()
        entries = {e["role"]: e for e in json.loads(zf.read("manifest.json"))["artifacts"]}
        roles = set(entries)
        # As on the meter path: readings are derivations of the raw files, the valid rows a row
        # selection over them (mrv.derived, mrv.selection), not copies of the data.
        selection = json.loads(zf.read(entries["validated"]["path"]))
        assert selection["format"] == "open-dmrv/row-selection"
        assert [i["role"] for i in selection["inputs"]] == sorted(r for r in roles if r.startswith("readings/"))
        for i in selection["inputs"]:
            doc = json.loads(zf.read(entries[i["role"]]["path"]))
            assert doc["format"] == "open-dmrv/derived-frame" and doc["rows"] == i["rows"]
            assert doc["inputs"] and all(x["role"].startswith("raw/") and x["role"] in roles for x in doc["inputs"])
    assert html.count("data:image/svg+xml;base64,") >= 2  # the monitored-series chart and the map were drawn
    assert {"validated", "quarantine", "validation_result", "calculation"} <= roles
    if chain["kind"] == "cooking":
        assert {"readings/devices", "device_registry"} <= roles
        assert "device fleet" in _svg_text(html)  # one fleet panel, not a panel per device
    else:
        assert any(r.startswith("readings/FT-") for r in roles)
        assert "(daily mean)" in _svg_text(html)  # instrument panels show daily means in their unit


def _svg_text(html: str) -> str:
    return " ".join(base64.b64decode(m).decode() for m in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", html))


def test_vvb_replay_reproduces_every_step_and_attests(chain, tmp_path):
    out = chain["out"]
    replay = replay_package(out.package.path)
    assert replay.ok, [s for s in replay.steps if not s.matched]
    assert replay.issuable_replayed == replay.issuable_recorded == chain["summary"]["issuable_tCO2e"]
    names = [s.name for s in replay.steps]
    assert "calculate" in names and any(n.startswith("ingest") for n in names)
    vvb = generate_key(role=KeyRole.vvb)
    _, info = attest(out.package.path, key=vvb, opinion=Opinion.positive, findings=[], replay=replay, materiality=replay.materiality)
    final = verify_package(info.path, verify_signature=verify_credential, required_signatures=["report", "statement"])
    assert final.ok, final.first_failure


def test_project_without_the_methodologys_data_source_is_refused(chain, tmp_path):
    # A landfill methodology with a device fleet section (or the reverse) must fail before any step runs.
    text = chain["project"].read_text()
    other = "GS:MECD:2.0" if chain["kind"] == "landfill" else "CDM:ACM0001:19.0"
    current = chain["summary"]["methodology_id"]
    bad = chain["project"].with_name("wrong.yaml")
    bad.write_text(text.replace(current, other))
    with pytest.raises(ProjectSpecError, match=r"reads data_sources\.(devices|instruments), which the project file does not declare"):
        pipeline.run_local(MRVSettings(home=tmp_path / "ws"), bad)
