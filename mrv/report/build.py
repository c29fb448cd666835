"""Build the signed monitoring report of a finished run, its HTML/PDF twin, and the verification package.

Order (the report signs the package, so it cannot be inside the package's Merkle tree):

1. plan the package: every artifact of the run, the project file, the lineage graph and the run's
   OpenLineage events -> manifest + Merkle root (nothing written yet);
2. the report subject: ids, period, quantities with units, parameters with sources, the contract
   summary, the code/contract versions a replay needs, and the package claim (Merkle root and
   manifest digest);
3. render the HTML and PDF twin from that same subject (so they cannot drift), record their digests
   in the subject, and sign it as a W3C VC 2.0 (``MonitoringReportCredential``, eddsa-jcs-2022);
4. write the package zip with the signed report and the twin.

Signing is deterministic for a run: the credential id comes from the manifest digest and the
``validFrom``/``created`` time is the run's end, so building twice gives identical bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mrv import __version__
from mrv.artifacts import LocalArtifactStore
from mrv.errors import ReportError
from mrv.lineage import LineageStore
from mrv.methodology.registry import get as get_methodology
from mrv.package import PackageInfo, plan_package, read_openlineage_events, write_package
from mrv.project import ProjectSpec, parse_project
from mrv.signing import KeyPair, issue_credential
from mrv.workspace import Workspace

REPORT_TYPE = "MonitoringReportCredential"
REPORT_NAME = "report"  # signatures/report.json
HTML_PATH = "report/report.html"
PDF_PATH = "report/report.pdf"


@dataclass(frozen=True)
class ReportOutputs:
    report: dict[str, Any]
    report_path: Path
    html_path: Path
    pdf_path: Path
    package: PackageInfo


def run_outputs(lineage: LineageStore, run_id: str) -> dict[str, str]:
    """role -> digest of the outputs of completed/cached steps of the run."""
    out: dict[str, str] = {}
    for row in lineage.run_artifacts(run_id):
        status = getattr(row.step_status, "value", row.step_status)
        if row.direction == "output" and status in ("completed", "cached"):
            out[row.role] = row.digest
    return out


_TREATMENT_FIELDS = (
    "kind", "meter_id", "kWh_adjusted", "effect_on_net_kWh", "flagged", "detail", "clause",
    "first_ts", "last_ts", "period_start", "period_end", "intervals", "rows",
)


def report_subject(
    *,
    spec: ProjectSpec,
    calculation: Mapping[str, Any],
    validation: Mapping[str, Any],
    run_id: str,
    code_version: str,
    package_claim: Mapping[str, str],
    calculation_digest: str,
) -> dict[str, Any]:
    """The credentialSubject of the monitoring report (pure)."""
    methodology = get_methodology(spec.methodology)
    q = calculation["quantities"]
    summary = validation["summary"]
    return {
        "type": "MonitoringReport",
        "run": run_id,
        "project": {
            "id": spec.project.id,
            "name": spec.project.name,
            "type": spec.project.type.value,
            "country": spec.boundary.country,
            "boundary": spec.boundary.geometry,
            "installedCapacity": None if spec.installed_capacity is None else {"value": spec.installed_capacity.value, "unit": spec.installed_capacity.unit},
        },
        "methodology": {
            "id": methodology.id,
            "title": methodology.info.title,
            "source_document": methodology.info.source_document,
            "tools": list(methodology.info.tools),
        },
        "monitoring_period": calculation["monitoring_period"],
        # Emissions and reductions with units; the issuable quantity is whole tCO2e, rounded down.
        "quantities": {k: {"value": v["value"], "unit": v["unit"]} for k, v in sorted(q.items())},
        "issuable_tCO2e": calculation["issuable_tCO2e"],
        "parameters": calculation["parameters"],
        "treatments": [
            {k: t.get(k) for k in _TREATMENT_FIELDS if k in t} for t in calculation.get("treatments", [])
        ],
        # Every equation step, so the report (and its twin) carry the full derivation.
        "trace": calculation["trace"],
        "contract": {
            "id": validation["contract"]["id"],
            "version": validation["contract"]["version"],
            "engine": validation.get("engine"),
            "rows": summary.get("rows"),
            "rules": [
                {k: r.get(k) for k in ("rule_id", "severity", "description", "success", "unexpected_count", "quarantined_count", "clause", "details")}
                for r in summary.get("rules", [])
            ],
            "gap_hours_per_meter": summary.get("gap_hours_per_meter", {}),
            "quarantined_kwh_per_meter": summary.get("quarantined_kwh_per_meter", {}),
        },
        "replay": {
            "code_version": code_version,
            "methodology_id": methodology.id,
            "contract_id": validation["contract"]["id"],
            "contract_version": validation["contract"]["version"],
            "calculation_sha256": calculation_digest,
        },
        "package": dict(package_claim),
    }


def matched_controls(calculation: Mapping[str, Any]) -> dict[str, list[str]]:
    """VM0047 runs: project plot -> its matched control plots, from the trace (``w[<plot>]`` steps)."""
    out: dict[str, list[str]] = {}
    for step in calculation.get("trace", []):
        sym = str(step.get("symbol", ""))
        if sym.startswith("w[") and sym.endswith("]") and isinstance(step.get("inputs"), Mapping):
            out[sym[2:-1]] = sorted(step["inputs"])
    return out


def arr_chart_frames(validated: pd.DataFrame, calculation: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Satellite (VM0047) runs: the stocking-index series per plot group — the median over the
    project plots and over their matched control plots of each date's valid plot means (pure)."""
    matches = matched_controls(calculation)
    controls = {c for cs in matches.values() for c in cs}
    projects = set(matches)
    ids = validated["plot_id"].astype(str)
    frames = []
    for label, members in (("project plots (median SI)", projects), ("matched controls (median SI)", controls)):
        sel = validated[ids.isin(members)] if members else validated.iloc[:0]
        g = sel.groupby("ts", sort=True)["value"].median()
        frames.append(pd.DataFrame({"meter_id": label, "ts": pd.to_datetime(g.index, utc=True), "value": g.to_numpy(dtype="float64")}))
    series = pd.concat(frames, ignore_index=True)
    empty = series.iloc[:0]
    units = {"project plots (median SI)": "SI", "matched controls (median SI)": "SI"}
    return series, empty, {"how": "mean", "units": units, "gaps": False}


def arr_map_layers(geo_docs: Mapping[str, Any], calculation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Satellite runs: the donor pool, the project plots and the matched control plots for the map."""
    matches = matched_controls(calculation)
    controls = {c for cs in matches.values() for c in cs}

    def geoms(key: str, keep: Any = None) -> list[dict[str, Any]]:
        feats = (geo_docs.get(key) or {}).get("features") or []
        return [f["geometry"] for f in feats if keep is None or str((f.get("properties") or {}).get("plot_id")) in keep]

    return [
        {"label": "donor pool", "color": "#c7e9c0", "geometries": geoms("donor_pool")},
        {"label": "project plots", "color": "#1b7837", "geometries": geoms("plots")},
        {"label": "matched controls", "color": "#d95f02", "geometries": geoms("control_candidates", controls)},
    ]


def chart_frames(
    spec: ProjectSpec, validated: pd.DataFrame, quarantine: pd.DataFrame, gaps: list[dict[str, Any]],
    calculation: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The validated and quarantined rows shaped for the monitored-series chart (pure).

    Meters chart as they are (daily energy per meter). A device fleet charts as one panel of daily
    fleet energy (thousands of per-device panels or gap marks would say nothing). Instruments chart
    one panel per instrument with the daily mean in the methodology's unit. Gap rows get a
    ``meter_id`` label so the chart can mark them.
    """
    from mrv.sources import source_kind

    if spec.satellite is not None:
        return arr_chart_frames(validated, calculation or {})
    kind = source_kind(spec)
    if kind == "meters":
        return validated, quarantine, {}

    def relabel(df: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
        out = pd.DataFrame({"meter_id": labels.to_numpy(), "ts": df["ts"].to_numpy(), "value": df["value"].to_numpy()})
        if "calibration_valid" in df:
            out["calibration_valid"] = df["calibration_valid"].to_numpy()
        out["ts"] = pd.to_datetime(out["ts"], utc=True)
        return out

    if kind == "devices":
        label = f"device fleet ({validated['device_id'].nunique()} devices reporting)"
        return (
            fleet_daily_totals(validated, label=label, timezone=spec.monitoring_period.timezone),
            relabel(quarantine, pd.Series(pd.Categorical.from_codes(np.zeros(len(quarantine), dtype=np.int8), categories=[label]))),
            {"gaps": False},
        )
    units = {f"{i.id} · {i.quantity}": str(validated.loc[validated["instrument_id"] == i.id, "unit"].iloc[0]) if (validated["instrument_id"] == i.id).any() else "" for i in spec.data_sources.instruments}
    names = {i.id: f"{i.id} · {i.quantity}" for i in spec.data_sources.instruments}
    for g in gaps:
        if "instrument_id" in g:
            g["meter_id"] = names.get(str(g["instrument_id"]), str(g["instrument_id"]))
    return (
        relabel(validated, validated["instrument_id"].astype(str).map(names)),
        relabel(quarantine, quarantine["instrument_id"].astype(str).map(lambda x: names.get(x, x))),
        {"how": "mean", "units": units},
    )


def fleet_daily_totals(validated: pd.DataFrame, *, label: str, timezone: str) -> pd.DataFrame:
    """Fleet energy per local day as one chart series (pure, vectorised).

    A year of a 1,500-device fleet is ~48 M rows; the chart needs one number per day, so the sum is
    taken here with numpy, and each day's row is stamped at local noon (unambiguous across DST).
    """
    ts = validated["ts"]
    if len(ts) == 0:
        return pd.DataFrame({"meter_id": pd.Series(dtype=str), "ts": pd.Series(dtype="datetime64[us, UTC]"), "value": pd.Series(dtype=float)})
    local_days = ts.dt.tz_convert(timezone).dt.tz_localize(None).to_numpy().astype("datetime64[D]")
    days, inverse = np.unique(local_days, return_inverse=True)
    totals = np.bincount(inverse, weights=validated["value"].to_numpy(dtype=np.float64), minlength=len(days))
    noon = pd.DatetimeIndex(days.astype("datetime64[us]")) + pd.Timedelta(hours=12)
    return pd.DataFrame({"meter_id": [label] * len(days), "ts": noon.tz_localize(timezone).tz_convert("UTC"), "value": totals})


def plain_json(obj: Any) -> Any:
    """JSON round trip: the signer accepts plain JSON types only (and refuses NaN)."""
    return json.loads(json.dumps(obj, default=str, allow_nan=False))


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_report(
    *,
    workspace: Workspace,
    store: LocalArtifactStore,
    lineage: LineageStore,
    run_id: str,
    key: KeyPair,
    out_dir: Path | None = None,
) -> ReportOutputs:
    """Sign the report of a completed run and write it, its HTML/PDF twin and the package."""
    from mrv.frames import FramePieces
    from mrv.pipeline import read_parquet_artifact, read_validated
    from mrv.report.render import render_html, render_pdf

    run = lineage.get_run(run_id)
    status = getattr(run.status, "value", run.status)
    if status != "completed":
        raise ReportError(f"run {run_id} is {status}; only completed runs can be reported")
    outputs = run_outputs(lineage, run_id)
    for role in ("calculation", "validation_result", "validated", "quarantine"):
        if role not in outputs:
            raise ReportError(f"run {run_id} has no {role} artifact; re-run it with `mrv run`")
    project_file = Path(run.parameters["project_file"])
    spec = parse_project(store.read_bytes(run.project_file_digest).decode(), source=str(project_file), base_dir=project_file.parent)
    calculation = json.loads(store.read_bytes(outputs["calculation"]))
    validation = json.loads(store.read_bytes(outputs["validation_result"]))

    plan = plan_package(store=store, lineage=lineage, run_id=run_id, openlineage_events=read_openlineage_events(workspace.openlineage_path))
    subject = report_subject(
        spec=spec,
        calculation=calculation,
        validation=validation,
        run_id=run_id,
        code_version=run.code_version or __version__,
        package_claim=plan.claim,
        calculation_digest=outputs["calculation"],
    )
    created = (run.ended_at or run.started_at).astimezone(UTC).replace(microsecond=0)
    signature_preview = {
        "issuer_did": key.did,
        "verification_method": key.verification_method,
        "cryptosuite": "eddsa-jcs-2022",
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "merkle_root": plan.merkle_root,
        "manifest_sha256": plan.manifest_sha256,
    }
    # The twin is rendered from the subject that gets signed, with the signature details known in
    # advance (all but the proof value); its digests go into the subject, so the signature covers it.
    doc = {**plain_json(subject), "gaps": plain_json(validation.get("gaps", [])), "signature": signature_preview}
    valid = read_validated(store, outputs["validated"])
    series, quarantine, hint = chart_frames(
        spec, valid.concat() if isinstance(valid, FramePieces) else valid, read_parquet_artifact(store, outputs["quarantine"]), doc["gaps"],
        calculation=calculation,
    )
    if hint:
        doc["series_chart"] = hint
    if spec.satellite is not None and "plot_geometry" in outputs:
        doc["map_layers"] = arr_map_layers(json.loads(store.read_bytes(outputs["plot_geometry"])), calculation)
    html = render_html(doc, series=series, quarantine=quarantine)
    pdf = render_pdf(doc, series=series, quarantine=quarantine)
    subject["renderings"] = [
        {"path": HTML_PATH, "media_type": "text/html", "sha256": sha256(html)},
        {"path": PDF_PATH, "media_type": "application/pdf", "sha256": sha256(pdf)},
    ]
    vc = issue_credential(
        subject=plain_json(subject),
        types=[REPORT_TYPE],
        issuer_key=key,
        valid_from=created,
        # The report is dated by the run it reports on (its end), not by when it was rebuilt:
        # Ed25519 is deterministic, so rebuilding a package gives identical bytes.
        created=created,
        credential_id=f"urn:mrv:report:{plan.manifest_sha256.split(':', 1)[1]}",
    )

    out_dir = out_dir or workspace.run_dir(run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = write_package(
        plan,
        out=out_dir / f"{spec.project.id}-{run_id}.zip",
        signed_documents={REPORT_NAME: vc},
        attachments={HTML_PATH: html, PDF_PATH: pdf},
    )
    report_path, html_path, pdf_path = out_dir / "report.json", out_dir / "report.html", out_dir / "report.pdf"
    for path, data in ((report_path, json.dumps(vc, indent=1, sort_keys=True).encode() + b"\n"), (html_path, html), (pdf_path, pdf)):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    record_outputs(lineage, store, run_id=run_id, step="report", parameters={"signer": key.did},
                   files={"report": report_path, "report_html": html_path, "report_pdf": pdf_path, "package": info.path})
    return ReportOutputs(vc, report_path, html_path, pdf_path, info)


def record_outputs(
    lineage: LineageStore, store: LocalArtifactStore, *, run_id: str, step: str, parameters: Mapping[str, Any], files: Mapping[str, Path]
) -> None:
    """Files produced after the run (report, package, statement) become artifacts of the run."""
    refs = {role: store.put_file(p) for role, p in files.items()}
    params = {**parameters, "files": {r: ref.digest for r, ref in refs.items()}}
    key = sha256(json.dumps([step, params], sort_keys=True).encode())
    step_id = lineage.start_step(run_id, name=step, parameters=params, cache_key=key)
    for role, ref in refs.items():
        lineage.record_artifact(step_id, ref, role=role, direction="output")
    lineage.finish_step(step_id, status="completed")
