"""The HTML/PDF twin of the monitoring report, rendered from a real demo run.

``sample_report`` builds the report document the way the signed credential will carry it: one
real pipeline run of the demo project (``generate_demo_project`` + ``run_local``), the
calculation and validation JSON and the validated/quarantine Parquet read back from the artifact
store, the package digests from ``plan_package``, and a real ``eddsa-jcs-2022`` proof made with a
fixed test key (``mrv.signing``). The rendered files and page screenshots are written to
``test-artifacts/`` at the repository root (git-ignored) for a person to look at.

The HTML screenshot test needs Debian's ``chromium`` (``apt-get install -y chromium``); it fails
with that instruction when the browser is missing, unless ``MRV_TEST_NO_CHROMIUM=1``.
"""

from __future__ import annotations

import copy
import hashlib
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mrv.errors import ReportError
from mrv.report import render_html, render_pdf
from mrv.report.charts import boundary_map, daily_energy, series_chart

REPO_ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO_ROOT / "test-artifacts"
NO_CHROMIUM_ENV = "MRV_TEST_NO_CHROMIUM"
SIGNED_AT = datetime(2024, 2, 1, 9, 30, tzinfo=UTC)


# --------------------------------------------------------------------------- the sample report


@dataclass(frozen=True)
class Sample:
    report: dict[str, Any]  # signed
    series: pd.DataFrame
    quarantine: pd.DataFrame
    builder_report: dict[str, Any]  # the same run as mrv.report.build.report_subject shapes it

    def unsigned(self) -> dict[str, Any]:
        doc = copy.deepcopy(self.report)
        del doc["signature"]
        return doc


def sample_report(base: Path, *, seed: int = 7) -> Sample:
    """One real demo run turned into a report document (credentialSubject + signature details)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from mrv.artifacts import LocalArtifactStore
    from mrv.lineage import LineageStore
    from mrv.methodology.registry import get as get_methodology
    from mrv.package import plan_package, read_openlineage_events
    from mrv.frames import FramePieces
    from mrv.pipeline import read_parquet_artifact, read_validated, run_local
    from mrv.project import load_project
    from mrv.sample import generate_demo_project
    from mrv.settings import MRVSettings
    from mrv.signing import MRV_CONTEXT_URL, VC_V2_CONTEXT, add_proof, canonicalize
    from mrv.signing.keys import KeyPair, KeyRole
    from mrv.workspace import Workspace

    project_file = generate_demo_project(base / "project", seed=seed)
    settings = MRVSettings(home=base / "ws")
    summary = run_local(settings, project_file)
    run_id = summary["run_id"]
    ws = Workspace.from_settings(settings)
    store = LocalArtifactStore(ws.artifacts_dir)
    lineage = LineageStore(ws.lineage_url)
    outputs = {r.role: r.digest for r in lineage.run_artifacts(run_id) if r.direction == "output"}
    calc = json.loads(store.read_bytes(outputs["calculation"]))
    validation = json.loads(store.read_bytes(outputs["validation_result"]))
    validated = read_validated(store, outputs["validated"])
    validated = validated.concat() if isinstance(validated, FramePieces) else validated
    quarantine = read_parquet_artifact(store, outputs["quarantine"])
    plan = plan_package(store=store, lineage=lineage, run_id=run_id, openlineage_events=read_openlineage_events(ws.openlineage_path))
    lineage.dispose()

    spec = load_project(project_file)
    methodology = get_methodology(calc["methodology_id"]).info
    subject = {
        "id": f"urn:open-dmrv:run:{run_id}",
        "project": {
            "id": spec.project.id,
            "name": spec.project.name,
            "type": spec.project.type.value,
            "country": spec.boundary.country,
            "boundary": spec.boundary.geometry,
        },
        "methodology": {"id": methodology.id, "title": methodology.title, "source_document": methodology.source_document},
        "monitoring_period": calc["monitoring_period"],
        "quantities": calc["quantities"],
        "issuable_tCO2e": calc["issuable_tCO2e"],
        "parameters": calc["parameters"],
        "treatments": calc["treatments"],
        "trace": calc["trace"],
        "contract": validation["summary"],
        "gaps": validation["gaps"],
        "package": dict(plan.claim),
    }
    subject = json.loads(json.dumps(subject))  # exactly what a JSON reader of the VC would see

    key = KeyPair.from_private_key(Ed25519PrivateKey.from_private_bytes(bytes(range(32))), role=KeyRole.developer)
    vc = {
        "@context": [VC_V2_CONTEXT, MRV_CONTEXT_URL],
        "id": f"urn:open-dmrv:report:{run_id}",
        "type": ["VerifiableCredential", "MonitoringReportCredential"],
        "issuer": key.did,
        "validFrom": SIGNED_AT.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "credentialSubject": subject,
    }
    signed = add_proof(vc, key=key, proof_purpose="assertionMethod", created=SIGNED_AT)
    proof = signed["proof"]
    report = {
        **subject,
        "signature": {
            "issuer_did": signed["issuer"],
            "verification_method": proof["verificationMethod"],
            "cryptosuite": proof["cryptosuite"],
            "created": proof["created"],
            "proof_value": proof["proofValue"],
            "report_sha256": "sha256:" + hashlib.sha256(canonicalize(signed)).hexdigest(),
        },
    }
    series = validated[["meter_id", "ts", "value", "calibration_valid"]].copy()

    # The shape the report builder signs (fewer fields; signature details known before the proof).
    from mrv.report.build import report_subject

    builder = report_subject(
        spec=spec,
        calculation=calc,
        validation=validation,
        run_id=run_id,
        code_version="test",
        package_claim=plan.claim,
        calculation_digest=outputs["calculation"],
    )
    builder_report = json.loads(json.dumps({**builder, "gaps": validation["gaps"], "signature": {k: v for k, v in report["signature"].items() if k in ("issuer_did", "verification_method", "cryptosuite", "created")}}))
    return Sample(report=report, series=series, quarantine=quarantine[["meter_id", "ts", "rule_id"]].copy(), builder_report=builder_report)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return sample_report(tmp_path_factory.mktemp("report-demo"))


@pytest.fixture(scope="module")
def signed_html(sample: Sample) -> bytes:
    return render_html(sample.report, series=sample.series, quarantine=sample.quarantine)


@pytest.fixture(scope="module")
def signed_pdf(sample: Sample) -> bytes:
    return render_pdf(sample.report, series=sample.series, quarantine=sample.quarantine)


@pytest.fixture(scope="module")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# --------------------------------------------------------------------------- helpers


def pdf_text(data: bytes) -> str:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(data)
    try:
        parts = []
        for i in range(len(doc)):
            page = doc[i]
            tp = page.get_textpage()
            parts.append(tp.get_text_range())
            tp.close()
            page.close()
        return "\n".join(parts)
    finally:
        doc.close()


def squash(text: str) -> str:
    """Text without whitespace: a PDF wraps long tokens (digests, trace symbols) across lines."""
    return re.sub(r"\s+", "", text)


def html_text(data: bytes) -> str:
    return html.unescape(data.decode("utf-8"))


def key_facts(report: dict[str, Any]) -> list[str]:
    er = report["quantities"]["ER_y"]["value"]
    facts = [
        f"{report['issuable_tCO2e']:,}",
        f"{er:,.3f}",  # ER_y as displayed: thousands separators, 3 decimals
        report["package"]["merkle_root"],
        report["package"]["manifest_sha256"],
        report["project"]["name"],
        report["methodology"]["id"],
        report["methodology"]["title"],
    ]
    facts += [t["symbol"] for t in report["trace"]]
    facts += [r["rule_id"] for r in report["contract"]["rules"]]
    facts += [p["source"] for p in report["parameters"]]
    facts += [g["meter_id"] for g in report["gaps"]]
    return facts


def signature_facts(report: dict[str, Any]) -> list[str]:
    s = report["signature"]
    return [s["issuer_did"], s["verification_method"], s["cryptosuite"], s["proof_value"], s["report_sha256"]]


def nonwhite_fraction(png: bytes) -> float:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        gray = im.convert("L")
        hist = gray.histogram()
    return 1.0 - sum(hist[250:]) / sum(hist)


# --------------------------------------------------------------------------- content


def test_sample_report_is_a_real_signed_run(sample: Sample) -> None:
    r = sample.report
    assert r["issuable_tCO2e"] == int(r["quantities"]["ER_y"]["value"])
    assert r["signature"]["issuer_did"].startswith("did:key:z6Mk")
    assert r["signature"]["cryptosuite"] == "eddsa-jcs-2022"
    assert r["package"]["merkle_root"] and r["package"]["manifest_sha256"]
    assert r["gaps"] and r["gaps"][0]["meter_id"] == "EXP-1"
    assert len(sample.quarantine) == 4 and set(sample.series["meter_id"].astype(str)) == {"EXP-1", "EXP-2", "IMP-1"}


def test_html_shows_every_key_fact(sample: Sample, signed_html: bytes) -> None:
    text = html_text(signed_html)
    for fact in key_facts(sample.report) + signature_facts(sample.report):
        assert fact in text, f"HTML lacks {fact!r}"
    assert "UNSIGNED DRAFT" not in text
    # both charts are in the page
    assert text.count('src="data:image/svg+xml;base64,') == 2


def test_pdf_shows_every_key_fact(sample: Sample, signed_pdf: bytes) -> None:
    assert signed_pdf.startswith(b"%PDF-")
    text = squash(pdf_text(signed_pdf))
    for fact in key_facts(sample.report) + signature_facts(sample.report):
        assert squash(fact) in text, f"PDF lacks {fact!r}"
    assert "UNSIGNEDDRAFT" not in text
    assert b"/CreationDate (D:20240201093000Z)" in signed_pdf, "the PDF date comes from signature.created"


def test_html_and_pdf_say_the_same_things(sample: Sample, signed_html: bytes, signed_pdf: bytes) -> None:
    """Every cell and key/value of the shared document appears in both renderings."""
    from mrv.report import build_document
    from mrv.report.render import KVList, Para, Table

    doc = build_document(sample.report, has_series=True)
    h, p = squash(html_text(signed_html)), squash(pdf_text(signed_pdf))
    texts = [doc.status, doc.headline_value, doc.headline_note]
    for s in doc.sections:
        texts.append(s.title)
        for b in s.blocks:
            if isinstance(b, Para):
                texts.append(b.text)
            elif isinstance(b, KVList):
                texts += [x for label, value, _ in b.items for x in (label, value)]
            elif isinstance(b, Table):
                texts += [c.header for c in b.cols] + [cell for r in b.rows for cell in r.cells] + [d for r in b.rows for d in r.detail]
    missing_html = [t for t in texts if squash(t) not in h]
    missing_pdf = [t for t in texts if squash(t) not in p]
    assert not missing_html and not missing_pdf, (missing_html[:3], missing_pdf[:3])


def test_unsigned_draft_is_labelled(sample: Sample) -> None:
    draft = sample.unsigned()
    text = html_text(render_html(draft, series=sample.series, quarantine=sample.quarantine))
    assert "UNSIGNED DRAFT" in text
    assert sample.report["signature"]["issuer_did"] not in text
    assert sample.report["package"]["merkle_root"] in text  # the package is still named
    pdf = render_pdf(draft)
    ptext = pdf_text(pdf)
    assert "UNSIGNED DRAFT" in ptext
    assert sample.report["signature"]["issuer_did"] not in squash(ptext)
    # No signature time: the PDF is dated the day after the monitoring period (never "now").
    assert b"/CreationDate (D:20240101000000Z)" in pdf


def test_text_from_the_report_is_escaped(sample: Sample) -> None:
    doc = copy.deepcopy(sample.report)
    evil = "<script>alert('x')</script> & <b>Co</b>"
    doc["project"]["name"] = evil
    doc["trace"][0]["note"] = "<img src=x onerror=alert(1)>"
    doc["contract"]["rules"][0]["rule_id"] = 'rule"><svg onload=alert(1)>'
    out = render_html(doc).decode("utf-8")
    assert "<script" not in out and "<img src=x" not in out and "<svg onload" not in out
    assert "&lt;script&gt;alert(" in out and "&amp; &lt;b&gt;Co&lt;/b&gt;" in out
    assert evil in html.unescape(out)
    assert "UNSIGNED" not in out  # still signed
    assert evil in pdf_text(render_pdf(doc))  # the PDF shows the text as it is


def test_html_is_self_contained(signed_html: bytes) -> None:
    text = signed_html.decode("utf-8")
    refs = re.findall(r"""\b(?:src|href|action|poster|srcset)\s*=\s*["']?([^"'\s>]*)""", text, flags=re.I)
    assert refs, "expected internal links and data: images"
    external = [r for r in refs if not (r.startswith("#") or r.startswith("data:"))]
    assert not external, f"external references: {external[:5]}"
    for forbidden in ("<script", "<link", "<iframe", "@import", "url("):
        assert forbidden not in text.lower(), forbidden
    # URLs may appear only as text (e.g. inside clauses): never in an attribute
    for m in re.finditer(r"https?://", text):
        before = text[max(0, m.start() - 12) : m.start()]
        assert not re.search(r"""(src|href)\s*=\s*["']?$""", before, flags=re.I)


# --------------------------------------------------------------------------- determinism


def test_rendering_is_deterministic(sample: Sample, signed_html: bytes, signed_pdf: bytes) -> None:
    again = copy.deepcopy(sample.report)
    assert render_html(again, series=sample.series.copy(), quarantine=sample.quarantine.copy()) == signed_html
    assert render_pdf(again, series=sample.series.copy(), quarantine=sample.quarantine.copy()) == signed_pdf


@pytest.mark.integration
def test_rendering_is_deterministic_across_processes(sample: Sample, signed_html: bytes, signed_pdf: bytes, tmp_path: Path) -> None:
    """A fresh interpreter with another hash seed and a user matplotlibrc gives the same bytes."""
    (tmp_path / "report.json").write_text(json.dumps(sample.report), encoding="utf-8")
    sample.series.to_parquet(tmp_path / "series.parquet")
    sample.quarantine.to_parquet(tmp_path / "quarantine.parquet")
    mplconfig = tmp_path / "mplconfig"
    mplconfig.mkdir()
    (mplconfig / "matplotlibrc").write_text("lines.linewidth: 5\nfont.size: 20\naxes.facecolor: yellow\n", encoding="utf-8")
    script = (
        "import json, sys, pandas as pd\n"
        "from pathlib import Path\n"
        "from mrv.report import render_html, render_pdf\n"
        "d = Path(sys.argv[1])\n"
        "r = json.loads((d / 'report.json').read_text())\n"
        "s, q = pd.read_parquet(d / 'series.parquet'), pd.read_parquet(d / 'quarantine.parquet')\n"
        "(d / 'out.html').write_bytes(render_html(r, series=s, quarantine=q))\n"
        "(d / 'out.pdf').write_bytes(render_pdf(r, series=s, quarantine=q))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "MPLCONFIGDIR": str(mplconfig), "TZ": "America/Los_Angeles"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, env=env, timeout=300)
    assert (tmp_path / "out.html").read_bytes() == signed_html
    assert (tmp_path / "out.pdf").read_bytes() == signed_pdf


# --------------------------------------------------------------------------- files to look at


def test_write_artifacts_and_pdf_page_screenshots(signed_html: bytes, signed_pdf: bytes, artifacts_dir: Path) -> None:
    import pypdfium2 as pdfium

    (artifacts_dir / "report.html").write_bytes(signed_html)
    (artifacts_dir / "report.pdf").write_bytes(signed_pdf)
    doc = pdfium.PdfDocument(signed_pdf)
    try:
        pages = len(doc)
        assert pages >= 3
        shots = []
        for i in range(min(pages, 4)):
            page = doc[i]
            w, h = page.get_size()
            assert (round(w), round(h)) == (595, 842), "A4 portrait"
            image = page.render(scale=1.5).to_pil()
            path = artifacts_dir / f"report-pdf-page-{i + 1}.png"
            image.save(path, format="PNG")
            shots.append(path)
            page.close()
    finally:
        doc.close()
    for path in shots:
        assert path.is_file()
        assert nonwhite_fraction(path.read_bytes()) > 0.02, f"{path.name} is blank"


@pytest.mark.integration
def test_html_screenshot_in_chromium(signed_html: bytes, artifacts_dir: Path, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get(NO_CHROMIUM_ENV) == "1":
            pytest.skip(f"{NO_CHROMIUM_ENV}=1: no Chromium on this machine")
        pytest.fail(f"chromium not found: `apt-get install -y chromium`, or set {NO_CHROMIUM_ENV}=1 to skip", pytrace=False)
    page = artifacts_dir / "report.html"
    page.write_bytes(signed_html)
    shot = artifacts_dir / "report-html.png"
    shot.unlink(missing_ok=True)
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,2400",
        f"--screenshot={shot}",
        page.as_uri(),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    assert shot.is_file()
    assert nonwhite_fraction(shot.read_bytes()) > 0.02


# --------------------------------------------------------------------------- charts and inputs


def test_daily_energy_uses_local_days() -> None:
    series = pd.DataFrame(
        {
            "meter_id": ["M", "M", "M", "N"],
            "ts": pd.to_datetime(["2023-01-01T18:15Z", "2023-01-01T18:30Z", "2023-01-02T00:00Z", "2023-01-01T00:00Z"], utc=True),
            "value": [1.0, 2.0, 4.0, 8.0],
        }
    )
    d = daily_energy(series, timezone="Asia/Kolkata")
    got = {(m, str(day)): kwh for m, day, kwh in zip(d["meter_id"], d["day"], d["kwh"], strict=True)}
    # 18:15 UTC is 23:45 on 1 Jan in Kolkata; 18:30 UTC is midnight starting 2 Jan.
    assert got == {("M", "2023-01-01"): 1.0, ("M", "2023-01-02"): 6.0, ("N", "2023-01-01"): 8.0}


def test_boundary_map_draws_points_and_multipolygons_deterministically() -> None:
    point = {"type": "Point", "coordinates": [77.55, 8.265]}
    multi = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[10.0, 50.0], [10.2, 50.0], [10.2, 50.1], [10.0, 50.1], [10.0, 50.0]], [[10.05, 50.02], [10.1, 50.02], [10.1, 50.05], [10.05, 50.02]]],
            [[[10.3, 50.05], [10.4, 50.05], [10.35, 50.12], [10.3, 50.05]]],
        ],
    }
    for geometry in (point, multi):
        svg = boundary_map(geometry, fmt="svg")
        assert svg.startswith(b"<?xml") and b"<svg" in svg
        assert b"<dc:date>" not in svg and b"matplotlib.org" not in svg
        assert boundary_map(geometry, fmt="svg") == svg
        png = boundary_map(geometry, fmt="png")
        assert png.startswith(b"\x89PNG") and nonwhite_fraction(png) > 0.02
    with pytest.raises(ReportError, match="LineString"):
        boundary_map({"type": "LineString", "coordinates": [[0, 0], [1, 1]]})
    with pytest.raises(ReportError, match="outside"):
        boundary_map({"type": "Point", "coordinates": [200, 0]})


def test_series_chart_without_quarantine_or_gaps() -> None:
    series = pd.DataFrame(
        {"meter_id": ["A"] * 96, "ts": pd.date_range("2023-06-01", periods=96, freq="15min", tz="UTC"), "value": [1.5] * 96}
    )
    png = series_chart(series=series, fmt="png")
    assert png.startswith(b"\x89PNG") and nonwhite_fraction(png) > 0.02


def test_report_without_series_says_so(sample: Sample) -> None:
    text = html_text(render_html(sample.report))
    assert "monitored series was not supplied" in text
    assert text.count("data:image/svg+xml") == 1  # the map only


def test_bad_input_is_a_report_error(sample: Sample) -> None:
    doc = copy.deepcopy(sample.report)
    del doc["methodology"]["id"]
    with pytest.raises(ReportError, match="methodology.id"):
        render_html(doc)
    doc = copy.deepcopy(sample.report)
    doc["issuable_tCO2e"] = "114974"
    with pytest.raises(ReportError, match="issuable_tCO2e"):
        render_pdf(doc)
    naive = sample.series.head(10).assign(ts=lambda d: d["ts"].dt.tz_localize(None))
    with pytest.raises(ReportError, match="timezone-aware"):
        render_html(sample.report, series=naive)
    with pytest.raises(ReportError, match="value"):
        render_html(sample.report, series=sample.series[["meter_id", "ts"]])


def test_renders_the_report_builder_shape(sample: Sample) -> None:
    """``mrv.report.build.report_subject``'s document (contract id/version, no proof value yet)."""
    doc = sample.builder_report
    html_out = html_text(render_html(doc, series=sample.series, quarantine=sample.quarantine))
    pdf_out = squash(pdf_text(render_pdf(doc, series=sample.series, quarantine=sample.quarantine)))
    facts = [f"{doc['issuable_tCO2e']:,}", doc["package"]["merkle_root"], doc["signature"]["issuer_did"], f"{doc['contract']['id']} v{doc['contract']['version']}"]
    facts += [r["rule_id"] for r in doc["contract"]["rules"]]
    for fact in facts:
        assert fact in html_out, fact
        assert squash(fact) in pdf_out, fact
    assert "proof value is in the signed credential" in html_out
    assert "UNSIGNED DRAFT" not in html_out


def test_pdf_cells_too_tall_for_a_page_are_cut_with_a_pointer():
    from mrv.report.render import _PDF_CELL_MAX_CHARS, _pdf_fit

    short = "EG_d = 1.5 kWh"
    assert _pdf_fit(short) == short
    huge = "\n".join(f"D{i:04d}: {i * 0.1:.1f} kWh" for i in range(1500))
    cut = _pdf_fit(huge)
    assert len(cut) < _PDF_CELL_MAX_CHARS + 200
    assert cut.startswith("D0000: 0.0 kWh") and "more characters: see the HTML report or calculation.json" in cut



def test_fleet_size_trace_is_capped_in_the_pdf_and_complete_in_the_html(sample: Sample) -> None:
    from mrv.report.render import _PDF_TABLE_MAX_ROWS

    doc = copy.deepcopy(sample.report)
    extra = _PDF_TABLE_MAX_ROWS + 75
    doc["trace"] = list(doc["trace"]) + [
        {"symbol": f"EG_d[D{i:04d}]", "value": float(i), "unit": "kWh", "equation": "sum of valid readings", "clause": "test", "inputs": {}, "note": None}
        for i in range(extra)
    ]
    ptext = squash(pdf_text(render_pdf(doc)))
    assert squash("more rows: see the HTML report or the packaged JSON") in ptext
    assert f"EG_d[D{extra - 1:04d}]" not in ptext
    htext = html_text(render_html(doc))
    assert f"EG_d[D{extra - 1:04d}]" in htext  # the HTML twin keeps every row
