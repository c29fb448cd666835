"""HTML and PDF renderings of one monitoring report document, for a VVB to read.

Both formats are drawn from ONE intermediate document (:class:`Document`: sections of
paragraphs, key/value lists, tables and figures, every value already formatted as text) built by
:func:`build_document` from the report JSON, so the HTML and the PDF cannot say different things:
they differ only in typography. Charts come from :mod:`mrv.report.charts` (SVG for HTML, PNG for
PDF, drawn by the same code).

Determinism: nothing reads the clock, the environment or a random source. The HTML is a single
self-contained file (inline CSS, charts as ``data:`` SVG images, no external URL). The PDF's
creation date is taken from the report (``signature.created``, else the day after the monitoring
period ends, 00:00 UTC), fonts are the DejaVu faces shipped inside matplotlib (subset, embedded),
and the file id is derived from the content, so the same report gives the same PDF bytes with the
same library versions.

Input: the report document (the signed credential's subject plus ``signature`` details), see
``mrv/report/__init__.py``; the monitored series and the quarantine frame are passed separately
(they are artifacts, not part of the signed JSON).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

import pandas as pd

from mrv.errors import ReportError
from mrv.report import charts

__all__ = ["Document", "build_document", "render_html", "render_pdf"]

REPORT_TITLE = "Monitoring report"
UNSIGNED_LABEL = "UNSIGNED DRAFT"
DASH = "\u2014"

# --------------------------------------------------------------------------- document model


@dataclass(frozen=True)
class Para:
    kind: ClassVar[str] = "para"
    text: str
    style: Literal["", "muted", "warning", "ok"] = ""


@dataclass(frozen=True)
class KVList:
    kind: ClassVar[str] = "kv"
    items: tuple[tuple[str, str, bool], ...]  # (label, value, monospace)


@dataclass(frozen=True)
class Col:
    header: str
    width: float  # share of the text width (a table's widths add up to 1)
    align: Literal["left", "right", "center"] = "left"
    mono: bool = False


@dataclass(frozen=True)
class Row:
    cells: tuple[str, ...]
    detail: tuple[str, ...] = ()  # smaller lines shown under the row, across all columns
    status: Literal["", "pass", "fail", "warn"] = ""


@dataclass(frozen=True)
class Table:
    kind: ClassVar[str] = "table"
    cols: tuple[Col, ...]
    rows: tuple[Row, ...]
    caption: str = ""
    font: Literal["normal", "small"] = "normal"


@dataclass(frozen=True)
class Figure:
    kind: ClassVar[str] = "figure"
    key: Literal["series", "map"]
    caption: str
    alt: str
    width: float  # share of the text width


Block = Para | KVList | Table | Figure


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Document:
    title: str
    project_name: str
    header: KVList
    signed: bool
    status: str
    headline_value: str  # the issuable quantity, formatted
    headline_unit: str
    headline_note: str
    sections: tuple[Section, ...]
    running_head: str
    created: datetime  # document date for the PDF metadata (from the report, never "now")
    keywords: str = ""
    figures: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------- formatting


def fmt_number(value: Any) -> str:
    """Numbers for people: thousands separators; 3 decimals from 1,000 up, up to 4 between 1 and
    1,000, 6 significant digits below 1; whole floats without decimals. Text passes through."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0:
            return "0"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        a = abs(value)
        if a >= 1000:
            return f"{value:,.3f}"
        if a >= 1:
            return f"{value:,.4f}".rstrip("0").rstrip(".")
        return f"{value:.6g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return str(value)


def fmt_time(value: Any) -> str:
    """An instant as ``YYYY-MM-DD HH:MM[:SS] UTC``; text that is not a timestamp passes through."""
    if value is None or value == "":
        return DASH
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return str(value)
    if ts.tzinfo is None:
        return str(value)
    ts = ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC" if ts.second else "%Y-%m-%d %H:%M UTC")


def _text(value: Any) -> str:
    return DASH if value is None or value == "" else str(value)


# --------------------------------------------------------------------------- input checks


def _need(report: Mapping[str, Any], path: str, kind: type | tuple[type, ...] = object) -> Any:
    cur: Any = report
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            raise ReportError(f"report: missing field {path!r}")
        cur = cur[part]
    if not isinstance(cur, kind) or (isinstance(cur, bool) and kind is int):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ReportError(f"report: field {path!r} must be {name}, got {type(cur).__name__}")
    return cur


def _opt_list(report: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = report.get(key)
    if value is None:
        return []
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise ReportError(f"report: field {key!r} must be a list, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ReportError(f"report: {key}[{i}] must be an object, got {type(item).__name__}")
    return list(value)


def _period(report: Mapping[str, Any]) -> tuple[date, date, str]:
    mp = _need(report, "monitoring_period", Mapping)
    try:
        start = date.fromisoformat(str(_need(report, "monitoring_period.start")))
        end = date.fromisoformat(str(_need(report, "monitoring_period.end")))
    except ValueError as exc:
        raise ReportError(f"report: monitoring_period dates must be YYYY-MM-DD ({exc})") from None
    return start, end, str(mp.get("timezone") or "UTC")


def _document_date(report: Mapping[str, Any], period_end: date) -> datetime:
    sig = report.get("signature")
    if isinstance(sig, Mapping) and sig.get("created"):
        try:
            created = datetime.fromisoformat(str(sig["created"]).replace("Z", "+00:00"))
        except ValueError:
            raise ReportError(f"report: signature.created {sig['created']!r} is not an ISO 8601 date-time") from None
        return created if created.tzinfo else created.replace(tzinfo=timezone.utc)
    return datetime.combine(period_end + timedelta(days=1), time(0), timezone.utc)


# --------------------------------------------------------------------------- building the document


class _Clauses:
    """Clauses cited by trace rows, treatments and rules, numbered C1, C2... in order of first use."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}

    def ref(self, clause: Any) -> str:
        if not clause:
            return DASH
        text = str(clause)
        if text not in self._ids:
            self._ids[text] = f"C{len(self._ids) + 1}"
        return self._ids[text]

    def items(self) -> list[tuple[str, str]]:
        return [(ref, text) for text, ref in self._ids.items()]


def _quantity_order(quantities: Mapping[str, Any], trace: Sequence[Mapping[str, Any]]) -> list[str]:
    pos: dict[str, int] = {}
    for i, t in enumerate(trace):
        pos.setdefault(str(t.get("symbol")), i)
    return sorted(quantities, key=lambda s: (pos.get(s, len(trace)), s))


def _inputs_text(inputs: Any) -> str:
    if not inputs:
        return ""
    if isinstance(inputs, Mapping):
        return "; ".join(f"{k} = {fmt_number(v)}" for k, v in sorted(inputs.items()))
    if isinstance(inputs, Sequence) and not isinstance(inputs, str):
        return "; ".join(fmt_number(v) for v in inputs)
    return fmt_number(inputs)


_PER_METER_LABELS = {
    "gap_hours_per_meter": "Gap hours",
    "quarantined_rows_per_meter": "Quarantined rows",
    "quarantined_kwh_per_meter": "Quarantined kWh",
    "calibration_lapsed_rows_per_meter": "Rows outside calibration",
    "calibration_lapsed_kwh_per_meter": "kWh outside calibration",
}


def _geometry_facts(geometry: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    kind = str(geometry.get("type"))
    coords: Any = geometry.get("coordinates")
    facts: list[tuple[str, str, bool]] = [("Geometry", f"GeoJSON {kind} (WGS 84 lon/lat)", False)]
    pts: list[tuple[float, float]] = []
    try:
        if kind == "Point":
            pts = [(float(coords[0]), float(coords[1]))]
        elif kind == "Polygon":
            pts = [(float(p[0]), float(p[1])) for ring in coords for p in ring]
        elif kind == "MultiPolygon":
            pts = [(float(p[0]), float(p[1])) for poly in coords for ring in poly for p in ring]
    except (TypeError, ValueError, IndexError):
        raise ReportError(f"report: project.boundary {kind} coordinates are malformed") from None
    if not pts:
        return facts
    lons, lats = [p[0] for p in pts], [p[1] for p in pts]
    if kind == "Point":
        facts.append(("Position (lon, lat)", f"{lons[0]:.5f}, {lats[0]:.5f}", True))
    else:
        facts.append(("Longitude range", f"{min(lons):.5f} to {max(lons):.5f}", True))
        facts.append(("Latitude range", f"{min(lats):.5f} to {max(lats):.5f}", True))
        rings = 0
        if kind == "Polygon":
            rings = len(coords)
        elif kind == "MultiPolygon":
            rings = sum(len(poly) for poly in coords)
        facts.append(("Rings / positions", f"{rings} / {len(pts)}", False))
        facts.append(("Approx. extent", _extent_text(min(lons), max(lons), min(lats), max(lats)), False))
    return facts


def _extent_text(lon0: float, lon1: float, lat0: float, lat1: float) -> str:
    coslat = math.cos(math.radians((lat0 + lat1) / 2))
    return f"{(lon1 - lon0) * 111.320 * coslat:.2f} km east-west × {(lat1 - lat0) * 110.574:.2f} km north-south"


def _treatment_cols(*, has_when: bool, has_count: bool) -> tuple[Col, ...]:
    cols = [Col("Treatment", 0.21, mono=True), Col("Meter", 0.08)]
    if has_when:
        cols.append(Col("Period", 0.33))
    if has_count:
        cols.append(Col("Intervals", 0.10, "right"))
    cols += [Col("Effect on net export [kWh]", 0.18, "right"), Col("Clause", 0.10, "center")]
    total = sum(c.width for c in cols)
    return tuple(Col(c.header, c.width / total, c.align, c.mono) for c in cols)


def build_document(report: Mapping[str, Any], *, has_series: bool = False) -> Document:
    """The format-neutral document both renderers draw. Raises :class:`ReportError` naming the
    first missing or malformed field."""
    if not isinstance(report, Mapping):
        raise ReportError(f"report must be a JSON object (mapping), got {type(report).__name__}")
    project = _need(report, "project", Mapping)
    project_name = str(_need(report, "project.name", str))
    project_id = str(_need(report, "project.id", str))
    methodology = _need(report, "methodology", Mapping)
    methodology_id = str(_need(report, "methodology.id", str))
    start, end, tz = _period(report)
    quantities = _need(report, "quantities", Mapping)
    issuable = _need(report, "issuable_tCO2e", int)
    parameters = _opt_list(report, "parameters")
    treatments = _opt_list(report, "treatments")
    trace = _opt_list(report, "trace")
    gaps = _opt_list(report, "gaps")
    contract = report.get("contract") or {}
    if not isinstance(contract, Mapping):
        raise ReportError("report: field 'contract' must be an object")
    signature = report.get("signature")
    if signature is not None and not isinstance(signature, Mapping):
        raise ReportError("report: field 'signature' must be an object when present")
    package = report.get("package") or {}
    if not isinstance(package, Mapping):
        raise ReportError("report: field 'package' must be an object when present")
    replay_raw = report.get("replay")
    replay: Mapping[str, Any] = replay_raw if isinstance(replay_raw, Mapping) else {}
    signed = bool(signature)
    for sym, q in quantities.items():
        if not isinstance(q, Mapping) or "value" not in q:
            raise ReportError(f"report: quantities[{sym!r}] must be an object with value and unit")

    clauses = _Clauses()
    period_text = f"{start.isoformat()} to {end.isoformat()} ({tz}), both days included"

    # Header and status
    header_items = [
        ("Project", f"{project_name} ({project_id})", False),
        ("Project type / country", f"{_text(project.get('type'))} / {_text(project.get('country'))}", False),
    ]
    capacity = project.get("installedCapacity", project.get("installed_capacity"))
    if isinstance(capacity, Mapping) and capacity.get("value") is not None:
        header_items.append(("Installed capacity", f"{fmt_number(capacity.get('value'))} {_text(capacity.get('unit'))}", False))
    header_items.append(("Methodology", f"{methodology_id} {DASH} {_text(methodology.get('title'))}", False))
    if methodology.get("tools"):
        header_items.append(("Tools", ", ".join(str(t) for t in methodology["tools"]), False))
    header_items.append(("Source document", _text(methodology.get("source_document")), False))
    header_items.append(("Monitoring period", period_text, False))
    run_id = report.get("run")
    if run_id:
        header_items.append(("Run", str(run_id), True))
    header = KVList(items=tuple(header_items))
    if signed:
        assert signature is not None
        status = f"Signed by {_text(signature.get('issuer_did'))} on {fmt_time(signature.get('created'))} ({_text(signature.get('cryptosuite'))})"
    else:
        status = f"{UNSIGNED_LABEL}: this report carries no signature. It is not a monitoring report a VVB can rely on until it is signed."

    er = quantities.get("ER_y")
    er_value = er.get("value") if isinstance(er, Mapping) else None
    if isinstance(er_value, (int, float)) and not isinstance(er_value, bool):
        headline_note = f"ER_y = {fmt_number(er_value)} {_text(er.get('unit'))}, rounded down to whole tCO2e"  # type: ignore[union-attr]
    else:
        headline_note = "issuable emission reductions, whole tCO2e (rounded down)"

    sections: list[Section] = []

    # 1. Summary
    q_rows = tuple(
        Row((sym, fmt_number(quantities[sym].get("value")), _text(quantities[sym].get("unit"))))
        for sym in _quantity_order(quantities, trace)
    )
    q_rows += (Row(("Issuable (ER_y rounded down)", f"{issuable:,}", "tCO2e"), status="pass"),)
    sections.append(
        Section(
            "summary",
            "1. Summary of quantities",
            (
                Table((Col("Symbol", 0.40, mono=True), Col("Value", 0.35, "right"), Col("Unit", 0.25)), q_rows),
            ),
        )
    )

    # 2. Parameters
    p_rows = tuple(
        Row((_text(p.get("symbol")), fmt_number(p.get("value")), _text(p.get("unit")), _text(p.get("source"))))
        for p in parameters
    )
    sections.append(
        Section(
            "parameters",
            "2. Parameters and their sources",
            (
                Table((Col("Symbol", 0.20, mono=True), Col("Value", 0.13, "right"), Col("Unit", 0.15), Col("Source", 0.52)), p_rows)
                if p_rows
                else Para("The report lists no parameters.", "muted"),
            ),
        )
    )

    # 3. Trace
    t_rows = []
    for t in trace:
        detail = []
        if t.get("note"):
            detail.append(f"Note: {t['note']}")
        inputs = _inputs_text(t.get("inputs"))
        if inputs:
            detail.append(f"Inputs: {inputs}")
        t_rows.append(
            Row(
                (_text(t.get("symbol")), _text(t.get("equation")), fmt_number(t.get("value")), _text(t.get("unit")), clauses.ref(t.get("clause"))),
                detail=tuple(detail),
            )
        )
    sections.append(
        Section(
            "trace",
            "3. Calculation trace",
            (
                Para("Every equation in the order it was evaluated. Clauses are cited by number (see section 9)."),
                Table(
                    (Col("Symbol", 0.25, mono=True), Col("Equation", 0.36), Col("Value", 0.17, "right"), Col("Unit", 0.12), Col("Clause", 0.10, "center")),
                    tuple(t_rows),
                    font="small",
                ),
            )
            if t_rows
            else (Para("The report has no calculation trace: the equations behind the quantities cannot be checked from it.", "warning"),),
        )
    )

    # 4. Treatments
    tr_rows = []
    has_when = any(t.get(k) for t in treatments for k in ("first_ts", "last_ts", "period_start", "period_end"))
    has_count = any(t.get("intervals", t.get("rows")) is not None for t in treatments)
    for t in treatments:
        first = t.get("first_ts", t.get("period_start"))
        last = t.get("last_ts", t.get("period_end"))
        when = f"{fmt_time(first)} to {fmt_time(last)}" if first or last else DASH
        count = t.get("intervals", t.get("rows"))
        effect = t.get("effect_on_net_kWh", t.get("kWh_adjusted"))
        tr_rows.append(
            Row(
                (_text(t.get("kind")), _text(t.get("meter_id")) if t.get("meter_id") else "all")
                + ((when,) if has_when else ())
                + ((fmt_number(count) if count is not None else DASH,) if has_count else ())
                + (fmt_number(effect), clauses.ref(t.get("clause"))),
                detail=(str(t["detail"]),) if t.get("detail") else (),
                status="warn" if t.get("flagged") else "",
            )
        )
    sections.append(
        Section(
            "treatments",
            "4. Data treatments",
            (
                Table(
                    _treatment_cols(has_when=has_when, has_count=has_count),
                    tuple(tr_rows),
                    font="small",
                )
                if tr_rows
                else Para("No treatment was applied to the monitored data.", "muted"),
            ),
        )
    )

    # 5. Monitored data
    series_blocks: tuple[Block, ...]
    if has_series:
        series_blocks = (
            Figure(
                "series",
                f"Daily energy per meter (local days, {tz}). Red bands: gaps (no readings); orange triangles: days with quarantined readings; purple bands: readings outside a valid calibration (maximum permissible error applied).",
                "Daily energy per meter with gaps, quarantined readings and calibration lapses marked",
                1.0,
            ),
        )
    else:
        series_blocks = (Para("The monitored series was not supplied to the renderer: no chart.", "muted"),)
    sections.append(Section("series", "5. Monitored data", series_blocks))

    # 6. Contract
    c_blocks: list[Block] = []
    rows_info = contract.get("rows") if isinstance(contract.get("rows"), Mapping) else {}
    c_items = [
        ("Contract", f"{_text(contract.get('contract_id', contract.get('id')))} v{_text(contract.get('contract_version', contract.get('version')))}", False),
        ("Engine", _text(contract.get("engine")), False),
    ]
    if rows_info:
        c_items.append(("Rows (input / valid / quarantined)", " / ".join(fmt_number(rows_info.get(k)) for k in ("input", "valid", "quarantined")), False))
    if "blocked" in contract:
        c_items.append(("Blocked", fmt_number(bool(contract.get("blocked"))), False))
    c_blocks.append(KVList(tuple(c_items)))
    r_rows = []
    for i, r in enumerate(contract.get("rules") or []):
        if not isinstance(r, Mapping):
            raise ReportError(f"report: contract.rules[{i}] must be an object")
        ok = bool(r.get("success"))
        severity = _text(r.get("severity"))
        result = "pass" if ok else "fail"
        detail = [str(r["description"])] if r.get("description") else []
        findings = (r.get("details") or {}).get("findings") if isinstance(r.get("details"), Mapping) else None
        for f in findings or []:
            detail.append(f"· {f}")
        r_rows.append(
            Row(
                (_text(r.get("rule_id")), severity, result, fmt_number(r.get("unexpected_count")), fmt_number(r.get("quarantined_count")), clauses.ref(r.get("clause"))),
                detail=tuple(detail),
                status="" if ok else ("fail" if severity == "block" else "warn"),
            )
        )
    if r_rows:
        c_blocks.append(
            Table(
                (Col("Rule", 0.27, mono=True), Col("Severity", 0.14), Col("Result", 0.10, "center"), Col("Failing rows", 0.17, "right"), Col("Quarantined", 0.17, "right"), Col("Clause", 0.15, "center")),
                tuple(r_rows),
                caption="Rules of the data contract",
                font="small",
            )
        )
    else:
        c_blocks.append(Para("The report lists no contract rules.", "warning"))
    per_meter_keys = sorted(k for k, v in contract.items() if k.endswith("_per_meter") and isinstance(v, Mapping))
    per_meter_keys.sort(key=lambda k: (list(_PER_METER_LABELS).index(k) if k in _PER_METER_LABELS else len(_PER_METER_LABELS), k))
    if per_meter_keys:
        meters = sorted({str(m) for k in per_meter_keys for m in contract[k]})
        width = 0.8 / len(per_meter_keys)
        cols = (Col("Meter", 0.2),) + tuple(Col(_PER_METER_LABELS.get(k, k.removesuffix("_per_meter").replace("_", " ")), width, "right") for k in per_meter_keys)
        pm_rows = tuple(Row((m,) + tuple(fmt_number(contract[k].get(m)) for k in per_meter_keys)) for m in meters)
        c_blocks.append(Table(cols, pm_rows, caption="Per meter", font="small"))
    g_rows = tuple(
        Row((_text(g.get("meter_id", g.get("instrument_id", g.get("device_id")))), fmt_time(g.get("gap_start")), fmt_time(g.get("gap_end")), fmt_number(g.get("hours")), fmt_number(g.get("missing_intervals")), _text(g.get("position"))))
        for g in gaps
    )
    if g_rows:
        c_blocks.append(
            Table(
                (Col("Meter", 0.12), Col("Gap start", 0.24), Col("Gap end", 0.24), Col("Hours", 0.12, "right"), Col("Missing intervals", 0.16, "right"), Col("Position", 0.12)),
                g_rows,
                caption="Gaps in the monitored series",
                font="small",
            )
        )
    else:
        c_blocks.append(Para("No gaps were found in the monitored series.", "muted"))
    sections.append(Section("contract", "6. Data contract results", tuple(c_blocks)))

    # 7. Boundary
    boundary = project.get("boundary")
    if isinstance(boundary, Mapping) and boundary.get("type"):
        b_blocks: tuple[Block, ...] = (
            Figure("map", "Project boundary (no base map; WGS 84 degrees).", f"Map of the project boundary ({boundary.get('type')})", 0.55),
            KVList(tuple(_geometry_facts(boundary)) + (("Country", _text(project.get("country")), False),)),
        )
    else:
        b_blocks = (Para("The report has no boundary geometry.", "warning"),)
    sections.append(Section("boundary", "7. Project boundary", b_blocks))

    # 8. Signature and digests
    sig = signature or {}
    pkg_items = (
        ("Package Merkle root", _text(package.get("merkle_root", sig.get("merkle_root"))), True),
        ("Package manifest sha256", _text(package.get("manifest_sha256", sig.get("manifest_sha256"))), True),
    )
    replay_items = tuple(
        (label, _text(replay[key]), True)
        for label, key in (("Code version", "code_version"), ("Calculation sha256", "calculation_sha256"))
        if replay.get(key)
    )
    if signed:
        sig_fields = (
            ("Issuer DID", "issuer_did"),
            ("Verification method", "verification_method"),
            ("Cryptosuite", "cryptosuite"),
            ("Created", "created"),
            ("Proof value", "proof_value"),
            ("Report sha256", "report_sha256"),
        )
        notes: list[Block] = [Para("Signed. Check the signature on the signed credential (signatures/ in the verification package), not on this rendering.", "ok")]
        if not sig.get("proof_value"):
            notes.append(
                Para(
                    "This rendering was made before the proof was computed: the proof value is in the signed credential, "
                    "which covers this rendering through its sha256 digest.",
                    "muted",
                )
            )
        s_blocks: tuple[Block, ...] = (
            *notes,
            KVList(tuple((label, _text(sig[key]), True) for label, key in sig_fields if sig.get(key)) + pkg_items + replay_items),
        )
    else:
        s_blocks = (
            Para(f"{UNSIGNED_LABEL}: no signature. The digests below name the package this draft describes.", "warning"),
            KVList(pkg_items + replay_items),
        )
    sections.append(Section("signature", "8. Signature and digests", s_blocks))

    # 9. Clauses
    cl = clauses.items()
    sections.append(
        Section(
            "clauses",
            "9. Clauses cited",
            (Table((Col("Ref", 0.07, "center"), Col("Clause", 0.93)), tuple(Row((ref, text)) for ref, text in cl), font="small"),)
            if cl
            else (Para("No clause is cited.", "muted"),),
        )
    )

    running = f"{REPORT_TITLE} · {project_id} · {start.isoformat()} to {end.isoformat()}"
    figures = tuple(b.key for s in sections for b in s.blocks if isinstance(b, Figure))
    return Document(
        title=REPORT_TITLE,
        project_name=project_name,
        header=header,
        signed=signed,
        status=status,
        headline_value=f"{issuable:,}",
        headline_unit="tCO2e issuable",
        headline_note=headline_note,
        sections=tuple(sections),
        running_head=running,
        created=_document_date(report, end),
        keywords=f"{project_id} {methodology_id}",
        figures=figures,
    )


# --------------------------------------------------------------------------- charts


def _images(
    report: Mapping[str, Any], doc: Document, *, series: pd.DataFrame | None, quarantine: pd.DataFrame | None, fmt: charts.ImageFormat
) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    start, end, tz = _period(report)
    if "series" in doc.figures and series is not None:
        # Non-meter runs (instruments, device fleets) pass chart hints next to the subject (mrv.report.build).
        hint = report.get("series_chart") or {}
        gaps = _opt_list(report, "gaps") if hint.get("gaps", True) else []
        out["series"] = charts.series_chart(
            series=series, quarantine=quarantine, gaps=gaps, timezone=tz, period=(start, end), fmt=fmt,
            how=hint.get("how", "sum"), units=hint.get("units"),
        )
    if "map" in doc.figures:
        out["map"] = charts.boundary_map(report["project"]["boundary"], fmt=fmt, layers=report.get("map_layers") or ())
    return out


def _check_frames(series: pd.DataFrame | None, quarantine: pd.DataFrame | None) -> None:
    if series is not None and not isinstance(series, pd.DataFrame):
        raise ReportError(f"series must be a pandas DataFrame, got {type(series).__name__}")
    if quarantine is not None and not isinstance(quarantine, pd.DataFrame):
        raise ReportError(f"quarantine must be a pandas DataFrame, got {type(quarantine).__name__}")


# --------------------------------------------------------------------------- HTML


def _templates_dir() -> Path:
    return Path(str(resources.files("mrv.report") / "templates"))


def render_html(report: Mapping[str, Any], *, series: pd.DataFrame | None = None, quarantine: pd.DataFrame | None = None) -> bytes:
    """One self-contained UTF-8 HTML file: inline CSS, charts as ``data:`` SVG images, no
    external URL, no script. Same inputs give the same bytes."""
    import jinja2
    from markupsafe import Markup

    _check_frames(series, quarantine)
    doc = build_document(report, has_series=series is not None)
    images = _images(report, doc, series=series, quarantine=quarantine, fmt="svg")
    tdir = _templates_dir()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(tdir)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    css = (tdir / "report.css").read_text(encoding="utf-8")
    data_uris = {k: "data:image/svg+xml;base64," + base64.b64encode(v).decode("ascii") for k, v in images.items()}
    html = env.get_template("report.html.j2").render(doc=doc, css=Markup(css), images=data_uris, unsigned_label=UNSIGNED_LABEL)
    return html.encode("utf-8")


# --------------------------------------------------------------------------- PDF

# Layout (mm, pt) and colours shared by the PDF drawing code.
_MARGIN = 15.0
_INK = (33, 37, 41)
_MUTED = (98, 106, 115)
_RULE = (206, 212, 218)
_HEAD_FILL = (233, 236, 239)
_STATUS_FILL = {"pass": (230, 244, 234), "fail": (253, 226, 226), "warn": (255, 243, 205), "": None}
_PARA_COLOUR = {"": _INK, "muted": _MUTED, "warning": (176, 42, 55), "ok": (25, 111, 61)}
_ALIGN = {"left": "LEFT", "right": "RIGHT", "center": "CENTER"}


def _font_files() -> dict[tuple[str, str], Path]:
    """DejaVu fonts shipped inside matplotlib (a dependency already): Unicode coverage for
    ×, −, Σ, ≤ and the like, identical on every machine."""
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    files = {
        ("dv", ""): ttf / "DejaVuSans.ttf",
        ("dv", "B"): ttf / "DejaVuSans-Bold.ttf",
        ("dv", "I"): ttf / "DejaVuSans-Oblique.ttf",
        ("dvmono", ""): ttf / "DejaVuSansMono.ttf",
        ("dvmono", "B"): ttf / "DejaVuSansMono-Bold.ttf",
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ReportError(f"PDF fonts not found: {', '.join(missing)} (matplotlib's bundled DejaVu fonts)")
    return files


def render_pdf(report: Mapping[str, Any], *, series: pd.DataFrame | None = None, quarantine: pd.DataFrame | None = None) -> bytes:
    """A4 PDF of the same document as :func:`render_html` (charts as 200 dpi PNG). Same inputs
    give the same bytes (creation date from the report, content-derived file id)."""
    from fpdf import FPDF

    _check_frames(series, quarantine)
    doc = build_document(report, has_series=series is not None)
    images = _images(report, doc, series=series, quarantine=quarantine, fmt="png")
    fonts = _font_files()

    class _ReportPDF(FPDF):
        def header(self) -> None:
            if self.page_no() == 1:
                return
            self.set_font("dv", "", 7)
            self.set_text_color(*_MUTED)
            self.cell(self.epw * 0.7, 5, doc.running_head, align="L")
            if doc.signed:
                self.cell(self.epw * 0.3, 5, "signed", align="R", new_x="LMARGIN", new_y="NEXT")
            else:
                self.set_text_color(176, 42, 55)
                self.set_font("dv", "B", 7)
                self.cell(self.epw * 0.3, 5, UNSIGNED_LABEL, align="R", new_x="LMARGIN", new_y="NEXT")
            self.set_draw_color(*_RULE)
            self.line(self.l_margin, self.get_y(), self.l_margin + self.epw, self.get_y())
            self.ln(3)
            self.set_text_color(*_INK)

        def footer(self) -> None:
            self.set_y(-11)
            self.set_font("dv", "", 7)
            self.set_text_color(*_MUTED)
            self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="C")

    pdf = _ReportPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(auto=True, margin=16)
    for (family, style), path in fonts.items():
        pdf.add_font(family, style, str(path))
    pdf.set_creation_date(doc.created)
    pdf.set_title(f"{doc.title}: {doc.project_name}")
    pdf.set_subject(doc.running_head)
    pdf.set_keywords(doc.keywords)
    pdf.set_creator("open-dmrv")
    pdf.set_producer("open-dmrv (fpdf2)")
    pdf.set_lang("en")
    pdf.alias_nb_pages()
    pdf.add_page()
    _pdf_title(pdf, doc)
    for section in doc.sections:
        _pdf_section(pdf, section, images)
    return bytes(pdf.output())


def _pdf_title(pdf: Any, doc: Document) -> None:
    pdf.set_text_color(*_MUTED)
    pdf.set_font("dv", "B", 9)
    pdf.cell(0, 5, doc.title.upper(), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*_INK)
    pdf.set_font("dv", "B", 17)
    pdf.multi_cell(0, 8, doc.project_name, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    _pdf_kv(pdf, doc.header)
    pdf.ln(2)
    # Status banner
    fill, ink = ((230, 244, 234), (25, 111, 61)) if doc.signed else ((253, 226, 226), (176, 42, 55))
    pdf.set_fill_color(*fill)
    pdf.set_text_color(*ink)
    pdf.set_font("dv", "B", 9)
    pdf.multi_cell(0, 5, doc.status, fill=True, padding=(2, 3), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    # Headline: the issuable quantity
    pdf.set_text_color(*_INK)
    y = pdf.get_y()
    pdf.set_draw_color(*_RULE)
    pdf.set_fill_color(248, 249, 250)
    pdf.rect(pdf.l_margin, y, pdf.epw, 19, style="DF")
    pdf.set_xy(pdf.l_margin + 4, y + 2)
    pdf.set_font("dv", "B", 22)
    w = pdf.get_string_width(doc.headline_value) + 2
    pdf.cell(w, 10, doc.headline_value)
    pdf.set_font("dv", "", 11)
    pdf.cell(0, 11, doc.headline_unit, new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(pdf.l_margin + 4)
    pdf.set_font("dv", "", 8)
    pdf.set_text_color(*_MUTED)
    pdf.cell(0, 5, doc.headline_note)
    pdf.set_y(y + 19 + 4)
    pdf.set_text_color(*_INK)


def _pdf_section(pdf: Any, section: Section, images: Mapping[str, bytes]) -> None:
    # Keep the heading with its first block (a whole figure, or some lines of anything else).
    needed = 12 + (_pdf_figure_height(pdf, section.blocks[0], images) if section.blocks and isinstance(section.blocks[0], Figure) else 30)
    if pdf.get_y() + needed > pdf.h - pdf.b_margin:
        pdf.add_page()
    pdf.ln(2)
    pdf.set_font("dv", "B", 12)
    pdf.set_text_color(*_INK)
    pdf.start_section(section.title, level=0)
    pdf.cell(0, 7, section.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(*_RULE)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.ln(2)
    for block in section.blocks:
        if isinstance(block, Para):
            pdf.set_font("dv", "B" if block.style in ("warning", "ok") else "", 8.5)
            pdf.set_text_color(*_PARA_COLOUR[block.style])
            pdf.multi_cell(0, 4.4, block.text, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.set_text_color(*_INK)
            pdf.ln(1.5)
        elif isinstance(block, KVList):
            _pdf_kv(pdf, block)
            pdf.ln(2)
        elif isinstance(block, Table):
            _pdf_table(pdf, block)
            pdf.ln(3)
        elif isinstance(block, Figure):
            _pdf_figure(pdf, block, images)
    pdf.ln(1)


def _pdf_kv(pdf: Any, kv: KVList) -> None:
    from fpdf.enums import WrapMode

    label_w, lh = 50.0, 4.3
    for label, value, mono in kv.items:
        value_font = ("dvmono", 7.6) if mono else ("dv", 8.5)
        wrap = WrapMode.CHAR if mono else WrapMode.WORD
        pdf.set_font("dv", "B", 8)
        label_lines = len(pdf.multi_cell(label_w, lh, label, dry_run=True, output="LINES"))
        pdf.set_font(value_font[0], "", value_font[1])
        value_lines = len(pdf.multi_cell(pdf.epw - label_w, lh, value, dry_run=True, output="LINES", wrapmode=wrap))
        height = lh * max(label_lines, value_lines)
        if pdf.get_y() + height > pdf.h - pdf.b_margin:
            pdf.add_page()
        y = pdf.get_y()
        pdf.set_font("dv", "B", 8)
        pdf.set_text_color(*_MUTED)
        pdf.multi_cell(label_w, lh, label, align="L", new_x="RIGHT", new_y="TOP")
        pdf.set_text_color(*_INK)
        pdf.set_font(value_font[0], "", value_font[1])
        pdf.multi_cell(pdf.epw - label_w, lh, value, align="L", new_x="LMARGIN", new_y="NEXT", wrapmode=wrap)
        pdf.set_y(y + height + 0.6)


# A PDF table row must fit on one page (fpdf2 refuses otherwise). Fleet-size values (a trace input
# listing 1,500 devices, a rule finding naming hundreds of series) are cut here, in the PDF only,
# with a pointer to where the full text is; the HTML twin and the signed JSON keep everything.
_PDF_CELL_MAX_CHARS = 1200
_PDF_CELL_MAX_LINES = 24
# Fleet-size tables (a trace step per device, a gap per device) would make a PDF of thousands of
# pages and take fpdf2 minutes; the PDF shows the first rows and says where the rest is.
_PDF_TABLE_MAX_ROWS = 400


def _pdf_fit(text: str) -> str:
    lines = text.split("\n")
    cut = len(text) > _PDF_CELL_MAX_CHARS or len(lines) > _PDF_CELL_MAX_LINES
    if not cut:
        return text
    kept = "\n".join(lines[:_PDF_CELL_MAX_LINES])[:_PDF_CELL_MAX_CHARS]
    return f"{kept} … [{len(text) - len(kept):,} more characters: see the HTML report or calculation.json]"


def _pdf_table(pdf: Any, table: Table) -> None:
    from fpdf.enums import CellBordersLayout, TableBordersLayout, WrapMode
    from fpdf.fonts import FontFace

    size = 7.2 if table.font == "small" else 8.2
    if table.caption:
        pdf.set_font("dv", "B", 8.5)
        pdf.set_text_color(*_INK)
        pdf.cell(0, 5.5, table.caption, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("dv", "", size)
    pdf.set_text_color(*_INK)
    pdf.set_draw_color(*_RULE)
    pdf.set_line_width(0.2)
    mono = FontFace(family="dvmono", size_pt=size - 0.4)
    detail_style = FontFace(family="dv", size_pt=size - 1.0, color=_MUTED)
    with pdf.table(
        col_widths=tuple(c.width for c in table.cols),
        text_align=tuple(_ALIGN[c.align] for c in table.cols),
        width=pdf.epw,
        borders_layout=TableBordersLayout.NONE,
        headings_style=FontFace(family="dv", emphasis="B", size_pt=size, fill_color=_HEAD_FILL),
        line_height=size * 0.5,
        padding=(0.9, 1.2),
        v_align="TOP",
        wrapmode=WrapMode.WORD,
        repeat_headings=1,
        first_row_as_headings=True,
    ) as t:
        head = t.row()
        for c in table.cols:
            head.cell(c.header, border=CellBordersLayout.BOTTOM)
        rows = table.rows
        if len(rows) > _PDF_TABLE_MAX_ROWS:
            rows = rows[:_PDF_TABLE_MAX_ROWS] + (
                Row((f"… {len(table.rows) - _PDF_TABLE_MAX_ROWS:,} more rows: see the HTML report or the packaged JSON",) + ("",) * (len(table.cols) - 1)),
            )
        for r in rows:
            fill = _STATUS_FILL[r.status]
            # A row with detail lines is two table rows; the first cell spans both, which also
            # keeps them on one page (fpdf2 never breaks a page inside a rowspan).
            split = bool(r.detail) and len(table.cols) > 1
            row = t.row()
            for i, (c, text) in enumerate(zip(table.cols, r.cells, strict=True)):
                style = mono if c.mono else FontFace(family="dv", size_pt=size)
                if fill is not None:
                    style = style.replace(fill_color=fill)
                row.cell(_pdf_fit(text), style=style, border=CellBordersLayout.TOP, rowspan=2 if split and i == 0 else 1)
            if r.detail:
                drow = t.row()
                drow.cell(
                    _pdf_fit("\n".join(r.detail)),
                    colspan=len(table.cols) - 1 if split else len(table.cols),
                    style=detail_style if fill is None else detail_style.replace(fill_color=fill),
                    border=CellBordersLayout.NONE,
                    align="LEFT",
                )


def _png_size(data: bytes) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ReportError("chart image is not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _pdf_figure_height(pdf: Any, fig: Figure, images: Mapping[str, bytes]) -> float:
    data = images.get(fig.key)
    if data is None:
        return 0.0
    px_w, px_h = _png_size(data)
    return pdf.epw * fig.width * px_h / px_w + 12


def _pdf_figure(pdf: Any, fig: Figure, images: Mapping[str, bytes]) -> None:
    import io

    data = images.get(fig.key)
    if data is None:
        return
    px_w, px_h = _png_size(data)
    w = pdf.epw * fig.width
    h = w * px_h / px_w
    if pdf.get_y() + h + 12 > pdf.h - pdf.b_margin:
        pdf.add_page()
    x = pdf.l_margin + (pdf.epw - w) / 2
    pdf.image(io.BytesIO(data), x=x, y=pdf.get_y(), w=w, h=h, alt_text=fig.alt)
    pdf.set_y(pdf.get_y() + h + 1.5)
    pdf.set_font("dv", "I", 7.5)
    pdf.set_text_color(*_MUTED)
    pdf.multi_cell(0, 3.8, fig.caption, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*_INK)
    pdf.ln(2)
