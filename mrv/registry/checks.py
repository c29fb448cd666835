"""The registry's intake checks, as pure functions of the package and the registry's state.

``run_intake_checks(request, policy=..., prior_requests=..., boundaries=...)`` reads one
verification package (a path or the zip's bytes), runs **every** check in :class:`CheckName` and
returns an :class:`IntakeOutcome`: one :class:`CheckResult` per check (name, pass/fail and a
specific reason), ``passed`` (all passed) and the :class:`IntakeFacts` read from the package, which
the registry stores with the request so later requests can be checked against it.

No database, no network: the registry's state comes in as plain data (:class:`RegistryPolicy`,
:class:`PriorRequest`, :class:`RegisteredBoundary`). Nothing here raises for a bad package; a
package that is not a readable zip makes every check fail, those that need its content with
"not checked: package unreadable (...)".

Where the facts come from
    The signed monitoring report (``signatures/report.json``, its ``credentialSubject``): project
    id, boundary, methodology id, monitoring period, issuable quantity; its issuer is the
    developer. The VVB statement (``signatures/statement.json``): its issuer is the VVB; its
    ``report.issuable_tCO2e`` is the verified quantity. The meters and devices come from the
    project file in the package (``artifacts/project.yaml``, a Merkle leaf of the package the
    report signs): ``data_sources.meters[].serial``, ``data_sources.instruments[].serial`` (the
    instrument's id when it has no serial) and, for a device fleet, the ``serial`` column (else
    ``device_id``) of the fleet's registry CSV, packaged under the role
    ``raw/devices/registry/<name>``. ``report_sha256`` is the sha256 of the exact
    bytes of ``signatures/report.json``.

Double issuance (``period_not_overlapping``, ``report_not_resubmitted``)
    Prior requests whose status is ``rejected`` or ``checks_failed`` do not count: nothing was or
    will be issued for them, and a developer must be able to resubmit after fixing what failed
    (e.g. after the registry registered their DID). Every other status, including unknown ones,
    counts. Periods are inclusive calendar dates compared as dates (a period ending 2023-12-31
    and one starting 2023-12-31 overlap; one starting 2024-01-01 does not). A meter is identified
    by its **serial number** (``IntakeFacts.meter_ids`` and ``PriorRequest.meter_ids`` hold
    serials of meters, instruments and devices; project-local ids such as ``EXP-1`` are not unique
    across projects); serials are compared after trimming and case-folding. Overlap with the same
    project counts whatever the meters; overlap with another project counts when they share a
    meter, instrument or device serial, and the reason names the serials.

Boundaries (``boundary_not_overlapping``)
    The report's boundary is compared with every registered boundary of *another* project; an
    overlap larger than ``policy.boundary_overlap_tolerance`` (a fraction of the smaller area,
    computed in an equal-area projection, see :mod:`mrv.registry.geo`) fails. A point inside a
    polygon, or two coincident points, is a full (100 %) overlap.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Final

from mrv.errors import GeometryError, PackageError
from mrv.package import PackageVerification, verify_package
from mrv.package.manifest import MANIFEST_PATH, PROJECT_FILE_PATH, Manifest, ManifestEntry, loads_json
from mrv.project import parse_project
from mrv.registry.geo import format_percent, overlap, parse_geometry
from mrv.signing import verify_credential

REPORT_PATH: Final = "signatures/report.json"
STATEMENT_PATH: Final = "signatures/statement.json"
REPORT_TYPE: Final = "MonitoringReportCredential"
STATEMENT_TYPE: Final = "VerificationStatementCredential"
# Statuses of earlier requests that do not count for double issuance (nothing issued, none will be).
NON_COUNTING_STATUSES: Final = frozenset({"rejected", "checks_failed"})
ACCEPTABLE_OPINIONS: Final = ("positive", "qualified")
MAX_DOCUMENT_BYTES: Final = 16 << 20
NOT_CHECKED: Final = "not checked"


class CheckName(str, Enum):
    report_signature = "report_signature"
    statement_signature = "statement_signature"
    vvb_accredited = "vvb_accredited"
    developer_registered = "developer_registered"
    statement_bound_to_report = "statement_bound_to_report"
    opinion_not_adverse = "opinion_not_adverse"
    quantity_within_verified = "quantity_within_verified"
    methodology_accepted = "methodology_accepted"
    period_not_overlapping = "period_not_overlapping"
    report_not_resubmitted = "report_not_resubmitted"
    boundary_not_overlapping = "boundary_not_overlapping"
    package_integrity = "package_integrity"


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: CheckName
    passed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name.value, "passed": self.passed, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.name.value}: {'PASS' if self.passed else 'FAIL'}: {self.reason}"


@dataclass(frozen=True)
class RegistryPolicy:
    """What the registry accepts. ``project_developers``: project id -> DIDs allowed to submit for
    it. ``boundary_overlap_tolerance``: largest accepted overlap with another project's boundary,
    as a fraction of the smaller area (0.01 = 1 %)."""

    accredited_vvbs: frozenset[str]
    project_developers: Mapping[str, frozenset[str]]
    accepted_methodologies: frozenset[str]
    boundary_overlap_tolerance: float = 0.01

    def __post_init__(self) -> None:
        for name in ("accredited_vvbs", "accepted_methodologies"):
            if isinstance(getattr(self, name), str):
                raise TypeError(f"RegistryPolicy.{name} must be a set of strings, not a single string")
        if not 0.0 <= self.boundary_overlap_tolerance <= 1.0:
            raise ValueError("boundary_overlap_tolerance must be a fraction between 0 and 1")


@dataclass(frozen=True)
class PriorRequest:
    """An earlier issuance request as the registry recorded it (from its :class:`IntakeFacts`).

    ``meter_ids`` are meter serial numbers (see the module doc). ``request_id`` is only used to
    name the request in reasons."""

    project_id: str
    report_sha256: str
    period_start: date
    period_end: date
    meter_ids: frozenset[str]
    status: str
    request_id: str | None = None

    def label(self) -> str:
        return f"request {self.request_id}" if self.request_id else "an earlier request"


@dataclass(frozen=True)
class RegisteredBoundary:
    project_id: str
    geometry: Mapping[str, Any]  # GeoJSON geometry (WGS 84 lon/lat)
    # lon/lat bounding box (min lon, min lat, max lon, max lat); None: computed when needed
    bounds: tuple[float, float, float, float] | None = field(default=None, compare=False)


def boundary_bounds(geometry: Any) -> tuple[float, float, float, float] | None:
    """The lon/lat bounding box of a GeoJSON geometry, or None when it cannot be read."""
    try:
        minx, miny, maxx, maxy = parse_geometry(geometry).bounds
    except GeometryError:
        return None
    return float(minx), float(miny), float(maxx), float(maxy)


@dataclass(frozen=True)
class IntakeRequest:
    requested_quantity: int  # whole tCO2e
    package: Path | bytes  # the verification package: a path to the zip, or its bytes


@dataclass(frozen=True)
class IntakeFacts:
    """What the package says, for the registry to store with the request (None when unreadable)."""

    project_id: str | None = None
    methodology_id: str | None = None
    report_sha256: str | None = None
    merkle_root: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    meter_ids: frozenset[str] = frozenset()  # meter serial numbers
    issuable_tCO2e: int | None = None  # from the signed report
    developer_did: str | None = None  # the report's issuer
    vvb_did: str | None = None  # the statement's issuer
    boundary: Mapping[str, Any] | None = None  # GeoJSON geometry
    # Further facts (not needed by the checks' callers, useful for the registry's records)
    country: str | None = None
    period_timezone: str | None = None
    meters: tuple[tuple[str, str], ...] = ()  # (meter id, serial) from the project file
    verified_tCO2e: int | None = None  # the statement's report.issuable_tCO2e
    opinion: str | None = None
    report_id: str | None = None
    statement_id: str | None = None
    manifest_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "methodology_id": self.methodology_id,
            "report_sha256": self.report_sha256,
            "merkle_root": self.merkle_root,
            "manifest_sha256": self.manifest_sha256,
            "period_start": self.period_start.isoformat() if self.period_start else None,
            "period_end": self.period_end.isoformat() if self.period_end else None,
            "period_timezone": self.period_timezone,
            "meter_ids": sorted(self.meter_ids),
            "meters": [{"id": i, "serial": s} for i, s in self.meters],
            "issuable_tCO2e": self.issuable_tCO2e,
            "verified_tCO2e": self.verified_tCO2e,
            "developer_did": self.developer_did,
            "vvb_did": self.vvb_did,
            "opinion": self.opinion,
            "report_id": self.report_id,
            "statement_id": self.statement_id,
            "country": self.country,
            "boundary": dict(self.boundary) if self.boundary is not None else None,
        }


@dataclass(frozen=True)
class IntakeOutcome:
    checks: list[CheckResult]
    passed: bool
    facts: IntakeFacts

    def check(self, name: CheckName | str) -> CheckResult:
        name = CheckName(name)
        return next(c for c in self.checks if c.name is name)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [c.to_dict() for c in self.checks], "facts": self.facts.to_dict()}


# --------------------------------------------------------------------------- reading the package


@dataclass
class _Package:
    """What could be read from the zip; ``*_error`` says why a part could not."""

    path: Path
    readable: bool = False
    unreadable_reason: str = ""
    report: dict[str, Any] | None = None
    report_bytes: bytes | None = None
    report_error: str = ""
    statement: dict[str, Any] | None = None
    statement_error: str = ""
    manifest: Manifest | None = None
    manifest_sha256: str | None = None
    meters: tuple[tuple[str, str], ...] | None = None  # (id, serial) of meters, instruments and devices
    serial_kinds: dict[str, str] = field(default_factory=dict)  # normalised serial -> meter / instrument / device
    project_file_id: str | None = None
    meters_error: str = ""
    notes: list[str] = field(default_factory=list)


def _read_member(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise PackageError(f"{name} is missing from the package") from None
    if info.file_size > MAX_DOCUMENT_BYTES:
        raise PackageError(f"{name} is too large ({info.file_size} bytes)")
    try:
        return zf.read(info)
    except Exception as exc:  # zip CRC errors, decompression errors
        raise PackageError(f"{name} is unreadable ({type(exc).__name__}: {exc})") from None


def _read_json_object(zf: zipfile.ZipFile, name: str, read: PackageVerification | None = None) -> tuple[dict[str, Any], bytes]:
    """The JSON object at ``name`` and its bytes: as :func:`verify_package` read them when it did
    (``read``), else from the zip."""
    if read is not None:
        doc, data = read.documents.get(name), read.document_bytes.get(name)
        if doc is not None and data is not None:
            return doc, data
    data = _read_member(zf, name)
    try:
        doc = loads_json(data)  # json's values and errors (orjson where that is the same)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(f"{name} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise PackageError(f"{name} is not a JSON object")
    return doc, data


def _member(zf: zipfile.ZipFile, name: str, read: PackageVerification | None) -> bytes:
    """The bytes of the manifest entry ``name``: as :func:`verify_package` read and verified them
    when it kept them, else from the zip (with :func:`_read_member`'s limits and errors)."""
    data = read.files.get(name) if read is not None else None
    return data if data is not None else _read_member(zf, name)


DEVICE_REGISTRY_ROLE: Final = "raw/devices/registry/"


def _keep(entry: ManifestEntry) -> bool:
    """The manifest entries the checks read (:func:`verify_package` hands back their bytes)."""
    return entry.size <= MAX_DOCUMENT_BYTES and (entry.path == PROJECT_FILE_PATH or entry.role.startswith(DEVICE_REGISTRY_ROLE))


def _read_package(zf: zipfile.ZipFile, read: PackageVerification | None, *, name: str, base_dir: Path) -> _Package:
    """What the checks need from the open zip ``zf``, reusing what :func:`verify_package` read
    (``read``; None: read everything here); ``name`` names the package in reasons, ``base_dir``
    is where the project file's globs would resolve."""
    pkg = _Package(path=Path(name), readable=True)
    try:
        pkg.report, pkg.report_bytes = _read_json_object(zf, REPORT_PATH, read)
    except PackageError as exc:
        pkg.report_error = str(exc)
    if STATEMENT_PATH not in zf.NameToInfo:
        pkg.statement_error = f"no VVB statement in the package ({STATEMENT_PATH} is missing)"
    else:
        try:
            pkg.statement, _ = _read_json_object(zf, STATEMENT_PATH, read)
        except PackageError as exc:
            pkg.statement_error = str(exc)
    if read is not None and read.manifest is not None:
        pkg.manifest, pkg.manifest_sha256 = read.manifest, read.manifest_sha256
    else:
        try:
            manifest_bytes = _read_member(zf, MANIFEST_PATH)
            pkg.manifest_sha256 = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
            pkg.manifest = Manifest.from_bytes(manifest_bytes)
        except PackageError as exc:
            pkg.notes.append(f"{MANIFEST_PATH}: {exc}")
    try:
        text = _member(zf, PROJECT_FILE_PATH, read).decode("utf-8")
        spec = parse_project(text, source=f"{name}!{PROJECT_FILE_PATH}", base_dir=base_dir)
        sources = spec.data_sources
        serials: list[tuple[str, str, str]] = [(m.id, m.serial, "meter") for m in sources.meters]
        serials += [(i.id, i.serial or i.id, "instrument") for i in sources.instruments]
        if sources.devices is not None:
            serials += [(d, sn, "device") for d, sn in _device_serials(zf, pkg.manifest, read)]
        pkg.meters = tuple((i, sn) for i, sn, _ in serials)
        pkg.serial_kinds = {norm_serial(sn): kind for _, sn, kind in reversed(serials)}
        pkg.project_file_id = spec.project.id
    except Exception as exc:  # PackageError, ProjectSpecError, UnicodeDecodeError, YAML errors
        pkg.meters_error = f"cannot read the meters from {PROJECT_FILE_PATH}: {exc}"
    return pkg


def _device_serials(zf: zipfile.ZipFile, manifest: Manifest | None, read: PackageVerification | None = None) -> list[tuple[str, str]]:
    """``(device id, serial)`` of every device in the fleet registry CSV the package carries (the
    manifest entry whose role is ``raw/devices/registry/<name>``); the serial is the ``serial``
    column, or the device id where it is empty."""
    if manifest is None:
        raise PackageError(f"the package has no readable {MANIFEST_PATH} to find the device registry in")
    entries = [e for e in manifest.entries if e.role.startswith(DEVICE_REGISTRY_ROLE)]
    if not entries:
        raise PackageError(f"the project has a device fleet but the package has no {DEVICE_REGISTRY_ROLE}<name> file")
    out: list[tuple[str, str]] = []
    for entry in entries:
        text = _member(zf, entry.path, read).decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "device_id" not in reader.fieldnames:
            raise PackageError(f"{entry.path}: the device registry has no device_id column")
        for row in reader:
            device = (row.get("device_id") or "").strip()
            if device:
                out.append((device, (row.get("serial") or "").strip() or device))
    return out


# Where a project file read from a package in memory would resolve its globs (the checks never
# resolve them: there are no files to resolve them against).
_NO_FILES: Final = Path("/nonexistent/mrv-intake-package")


# --------------------------------------------------------------------------- helpers


def _subject(doc: Mapping[str, Any] | None) -> Mapping[str, Any]:
    s = doc.get("credentialSubject") if isinstance(doc, Mapping) else None
    return s if isinstance(s, Mapping) else {}


def _get(obj: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(k)
    return obj


def _issuer(doc: Mapping[str, Any] | None) -> str | None:
    issuer = doc.get("issuer") if isinstance(doc, Mapping) else None
    if isinstance(issuer, Mapping):
        issuer = issuer.get("id")
    return issuer if isinstance(issuer, str) and issuer else None


def _whole(value: Any) -> int | None:
    """An integer quantity (int, or a float with no fractional part), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _date(value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def norm_serial(serial: str) -> str:
    """A meter serial as the period check compares it (trimmed, case-folded)."""
    return serial.strip().casefold()


_norm_serial = norm_serial


def _period(start: date | None, end: date | None) -> str:
    return f"{start.isoformat() if start else '?'}..{end.isoformat() if end else '?'}"


def _types(doc: Mapping[str, Any]) -> list[str]:
    t = doc.get("type")
    return [t] if isinstance(t, str) else [x for x in t if isinstance(x, str)] if isinstance(t, list) else []


def _short(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _facts(pkg: _Package) -> IntakeFacts:
    report, statement = _subject(pkg.report), _subject(pkg.statement)
    period = report.get("monitoring_period") if isinstance(report.get("monitoring_period"), Mapping) else {}
    project = report.get("project") if isinstance(report.get("project"), Mapping) else {}
    boundary = project.get("boundary")
    issuable = _whole(report.get("issuable_tCO2e"))
    meters = pkg.meters or ()
    return IntakeFacts(
        project_id=project.get("id") if isinstance(project.get("id"), str) else None,
        methodology_id=_get(report, "methodology", "id") if isinstance(_get(report, "methodology", "id"), str) else None,
        report_sha256=None if pkg.report_bytes is None else "sha256:" + hashlib.sha256(pkg.report_bytes).hexdigest(),
        merkle_root=_get(report, "package", "merkle_root") if isinstance(_get(report, "package", "merkle_root"), str) else None,
        manifest_sha256=pkg.manifest_sha256,
        period_start=_date(period.get("start")),
        period_end=_date(period.get("end")),
        period_timezone=period.get("timezone") if isinstance(period.get("timezone"), str) else None,
        meter_ids=frozenset(serial for _, serial in meters),
        meters=tuple(meters),
        issuable_tCO2e=issuable,
        verified_tCO2e=_whole(_get(statement, "report", "issuable_tCO2e")),
        developer_did=_issuer(pkg.report),
        vvb_did=_issuer(pkg.statement),
        opinion=statement.get("opinion") if isinstance(statement.get("opinion"), str) else None,
        report_id=pkg.report.get("id") if pkg.report and isinstance(pkg.report.get("id"), str) else None,
        statement_id=pkg.statement.get("id") if pkg.statement and isinstance(pkg.statement.get("id"), str) else None,
        country=project.get("country") if isinstance(project.get("country"), str) else None,
        boundary=dict(boundary) if isinstance(boundary, Mapping) else None,
    )


# --------------------------------------------------------------------------- the checks
# Each returns (passed, reason). They are called only when the package is a readable zip.


def _check_signature(doc: dict[str, Any] | None, error: str, *, what: str, expected_type: str, now: datetime | None) -> tuple[bool, str]:
    if doc is None:
        return False, error
    result = verify_credential(doc, now=now)
    problems = list(result.errors)
    if expected_type not in _types(doc):
        problems.append(f"type is {_types(doc)}, expected it to include {expected_type!r}")
    if problems:
        return False, f"{what} signature does not verify: " + "; ".join(problems)
    return True, f"{what} signature by {result.did} verifies (eddsa-jcs-2022)"


def _check_vvb(pkg: _Package, facts: IntakeFacts, policy: RegistryPolicy) -> tuple[bool, str]:
    if pkg.statement is None:
        return False, f"{NOT_CHECKED}: {pkg.statement_error}"
    if facts.vvb_did is None:
        return False, "the statement names no issuer (VVB DID)"
    if facts.vvb_did not in policy.accredited_vvbs:
        return False, f"VVB {facts.vvb_did} is not on the registry's accredited list"
    if facts.developer_did is not None and facts.vvb_did == facts.developer_did:
        return False, f"VVB {facts.vvb_did} also signed the report: a developer cannot verify its own report"
    return True, f"VVB {facts.vvb_did} is accredited"


def _check_developer(pkg: _Package, facts: IntakeFacts, policy: RegistryPolicy) -> tuple[bool, str]:
    if pkg.report is None:
        return False, f"{NOT_CHECKED}: {pkg.report_error}"
    if facts.project_id is None:
        return False, "the report names no project (credentialSubject.project.id)"
    if facts.developer_did is None:
        return False, "the report names no issuer (developer DID)"
    registered = policy.project_developers.get(facts.project_id)
    if not registered:
        return False, f"project {facts.project_id} has no registered developer; {facts.developer_did} cannot submit for it"
    if facts.developer_did not in registered:
        return False, f"developer {facts.developer_did} is not registered for project {facts.project_id}"
    return True, f"developer {facts.developer_did} is registered for project {facts.project_id}"


def _check_binding(pkg: _Package, facts: IntakeFacts) -> tuple[bool, str]:
    if pkg.report is None:
        return False, f"{NOT_CHECKED}: {pkg.report_error}"
    if pkg.statement is None:
        return False, f"{NOT_CHECKED}: {pkg.statement_error}"
    s = _subject(pkg.statement)
    problems = []
    claimed = _get(s, "report", "sha256")
    if claimed != facts.report_sha256:
        problems.append(f"the statement is bound to report {claimed}, but the package's report is {facts.report_sha256}")
    claimed_id = _get(s, "report", "id")
    if claimed_id != facts.report_id:
        problems.append(f"the statement names report {claimed_id!r}, the package's report is {facts.report_id!r}")
    report_claim, statement_claim = _get(_subject(pkg.report), "package"), _get(s, "package")
    for key in ("merkle_root", "manifest_sha256"):
        if _get(statement_claim, key) != _get(report_claim, key):
            problems.append(
                f"the statement's package {key} {_get(statement_claim, key)} differs from the report's {_get(report_claim, key)}"
            )
    if problems:
        return False, "; ".join(problems)
    return True, f"the statement is bound to report {facts.report_sha256} and the same package"


def _check_opinion(pkg: _Package, facts: IntakeFacts) -> tuple[bool, str]:
    if pkg.statement is None:
        return False, f"{NOT_CHECKED}: {pkg.statement_error}"
    findings = _subject(pkg.statement).get("findings")
    found = [f for f in findings if isinstance(f, str)] if isinstance(findings, list) else []
    tail = f" (findings: {_short(found, 3)})" if found else ""
    if facts.opinion == "adverse":
        return False, f"the VVB's opinion is adverse{tail}"
    if facts.opinion not in ACCEPTABLE_OPINIONS:
        return False, f"the statement's opinion {facts.opinion!r} is not one of {', '.join(ACCEPTABLE_OPINIONS)}"
    return True, f"the VVB's opinion is {facts.opinion}{tail}"


def _check_quantity(pkg: _Package, facts: IntakeFacts, requested: Any) -> tuple[bool, str]:
    if pkg.report is None:
        return False, f"{NOT_CHECKED}: {pkg.report_error}"
    if pkg.statement is None:
        return False, f"{NOT_CHECKED}: {pkg.statement_error}"
    if isinstance(requested, bool) or not isinstance(requested, int) or requested <= 0:
        return False, f"the requested quantity {requested!r} is not a positive whole number of tCO2e"
    if facts.verified_tCO2e is None:
        return False, "the statement states no verified issuable quantity (credentialSubject.report.issuable_tCO2e)"
    if facts.issuable_tCO2e is None:
        return False, "the report states no issuable quantity (credentialSubject.issuable_tCO2e)"
    verified = min(facts.verified_tCO2e, facts.issuable_tCO2e)
    note = (
        f" (the statement verifies {facts.verified_tCO2e} tCO2e, the report states {facts.issuable_tCO2e} tCO2e; the lower counts)"
        if facts.verified_tCO2e != facts.issuable_tCO2e
        else ""
    )
    if verified < 0:
        return False, f"the verified issuable quantity is negative ({verified} tCO2e)"
    if requested > verified:
        return False, f"requested {requested} tCO2e exceeds the verified issuable quantity {verified} tCO2e{note}"
    return True, f"requested {requested} tCO2e is within the verified issuable quantity {verified} tCO2e{note}"


def _check_methodology(pkg: _Package, facts: IntakeFacts, policy: RegistryPolicy) -> tuple[bool, str]:
    if pkg.report is None:
        return False, f"{NOT_CHECKED}: {pkg.report_error}"
    if facts.methodology_id is None:
        return False, "the report names no methodology (credentialSubject.methodology.id)"
    if pkg.manifest is not None and pkg.manifest.methodology_id != facts.methodology_id:
        return False, f"the report's methodology {facts.methodology_id} differs from the package manifest's {pkg.manifest.methodology_id}"
    if facts.methodology_id not in policy.accepted_methodologies:
        return False, f"methodology {facts.methodology_id} is not accepted by the registry"
    return True, f"methodology {facts.methodology_id} is accepted"


def _counting(prior_requests: Sequence[PriorRequest]) -> list[PriorRequest]:
    return [p for p in prior_requests if p.status not in NON_COUNTING_STATUSES]


def _check_period(pkg: _Package, facts: IntakeFacts, prior_requests: Sequence[PriorRequest]) -> tuple[bool, str]:
    if pkg.report is None:
        return False, f"{NOT_CHECKED}: {pkg.report_error}"
    if facts.project_id is None:
        return False, "the report names no project (credentialSubject.project.id)"
    if facts.period_start is None or facts.period_end is None:
        return False, "the report has no readable monitoring period (credentialSubject.monitoring_period.start/end)"
    if facts.period_end < facts.period_start:
        return False, f"the monitoring period {_period(facts.period_start, facts.period_end)} ends before it starts"
    if pkg.meters is None:
        return False, pkg.meters_error
    if pkg.project_file_id is not None and pkg.project_file_id != facts.project_id:
        return False, f"the project file in the package is for project {pkg.project_file_id}, the report for {facts.project_id}"
    mine = _period(facts.period_start, facts.period_end)
    serials = {_norm_serial(s): s for s in facts.meter_ids}
    conflicts = []
    for prior in _counting(prior_requests):
        if not (prior.period_start <= facts.period_end and facts.period_start <= prior.period_end):
            continue
        theirs = f"{prior.label()} of project {prior.project_id} ({_period(prior.period_start, prior.period_end)}, {prior.status})"
        if prior.project_id == facts.project_id:
            conflicts.append(f"monitoring period {mine} overlaps {theirs}")
            continue
        shared_keys = {_norm_serial(s) for s in prior.meter_ids} & set(serials)
        shared = sorted(serials[n] for n in shared_keys)
        if shared:
            kinds = {pkg.serial_kinds.get(n, "meter") for n in shared_keys}
            noun = f"{kinds.pop()} serial" if len(kinds) == 1 else "serial"
            noun += "" if len(shared) == 1 else "s"
            conflicts.append(f"{noun} {_short(shared, 20)} in monitoring period {mine} also in {theirs}")
    if conflicts:
        return False, "; ".join(conflicts)
    return True, (
        f"monitoring period {mine} overlaps no counted earlier request of project {facts.project_id} "
        f"or of its meters and devices ({_short(sorted(facts.meter_ids), 20) or 'none'})"
    )


def _check_resubmitted(pkg: _Package, facts: IntakeFacts, prior_requests: Sequence[PriorRequest]) -> tuple[bool, str]:
    if pkg.report is None or facts.report_sha256 is None:
        return False, f"{NOT_CHECKED}: {pkg.report_error}"
    same = [p for p in prior_requests if p.report_sha256 == facts.report_sha256]
    counted = [p for p in same if p.status not in NON_COUNTING_STATUSES]
    if counted:
        which = "; ".join(f"{p.label()} of project {p.project_id} ({p.status})" for p in counted)
        return False, f"report {facts.report_sha256} was already submitted in {which}"
    if same:
        which = ", ".join(f"{p.label()} ({p.status})" for p in same)
        return True, f"report {facts.report_sha256} was submitted before only in {which}, which does not count"
    return True, f"report {facts.report_sha256} has not been submitted before"


def _check_boundary(
    pkg: _Package, facts: IntakeFacts, boundaries: Sequence[RegisteredBoundary], tolerance: float
) -> tuple[bool, str]:
    if pkg.report is None:
        return False, f"{NOT_CHECKED}: {pkg.report_error}"
    if facts.boundary is None:
        return False, "the report has no boundary geometry (credentialSubject.project.boundary)"
    tol = format_percent(tolerance)
    problems: list[str] = []
    compared = 0
    mine = boundary_bounds(facts.boundary)
    for other in boundaries:
        if other.project_id == facts.project_id:
            continue
        compared += 1
        if mine is not None and _far_apart(mine, other.bounds if other.bounds is not None else boundary_bounds(other.geometry)):
            continue  # cannot overlap: not worth a projection
        try:
            ov = overlap(facts.boundary, other.geometry)
        except GeometryError as exc:
            problems.append(f"cannot compare with project {other.project_id}'s boundary: {exc}")
            continue
        if ov.fraction > tolerance:
            if ov.by_points:
                problems.append(f"boundary overlaps project {other.project_id} (a site point lies on the other boundary; tolerance {tol} %)")
            else:
                problems.append(
                    f"boundary overlaps project {other.project_id} by {format_percent(ov.fraction)} % of the smaller area "
                    f"({ov.overlap_area_m2 / 1e6:.4g} km² of {ov.smaller_area_m2 / 1e6:.4g} km²; tolerance {tol} %)"
                )
    if problems:
        return False, "; ".join(problems)
    return True, f"boundary overlaps none of {compared} other registered project boundaries beyond {tol} % of the smaller area"


_PREFILTER_MAX_LAT: Final = 80.0  # nearer the poles (and the antimeridian) every pair is compared exactly
_PREFILTER_MAX_LON: Final = 179.0


def _far_apart(a: tuple[float, float, float, float], b: tuple[float, float, float, float] | None) -> bool:
    """True when two lon/lat bounding boxes are so far apart that the geometries cannot overlap
    or touch. The margin (0.01° plus 1/32 of the larger extent) covers the difference between
    an edge straight in lon/lat and the same edge in the equal-area projection, and the point
    tolerance, many times over; near the poles or the antimeridian nothing is skipped."""
    if b is None:
        return False
    for minx, miny, maxx, maxy in (a, b):
        if minx < -_PREFILTER_MAX_LON or maxx > _PREFILTER_MAX_LON or miny < -_PREFILTER_MAX_LAT or maxy > _PREFILTER_MAX_LAT:
            return False
    margin = 0.01 + max(a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1]) / 32
    return a[2] + margin < b[0] or b[2] + margin < a[0] or a[3] + margin < b[1] or b[3] + margin < a[1]


def _verify(package: zipfile.ZipFile | Path | bytes | bytearray | memoryview, name: str) -> PackageVerification | Exception:
    """:func:`verify_package` of ``package`` (keeping the entries the checks read), or what it raised."""
    try:
        return verify_package(package, keep=_keep, name=name)
    except Exception as exc:  # verify_package reports problems as checks; this is a safety net
        return exc


def _check_integrity(result: PackageVerification | Exception) -> tuple[bool, str]:
    """Digests, unlisted files, Merkle root and every signed document's package claim (the
    signatures themselves are the two signature checks), from :func:`_verify`'s result."""
    if isinstance(result, Exception):
        return False, f"package could not be verified ({type(result).__name__}: {result})"
    if result.ok:
        entries = sum(1 for c in result.checks if c.kind.value == "entry")
        return True, f"{entries} file digests and Merkle root {result.merkle_root} match the manifest and the signed claims"
    failures = result.failures
    more = f" (and {len(failures) - 1} more problems)" if len(failures) > 1 else ""
    return False, f"{failures[0]}{more}"


# --------------------------------------------------------------------------- entry point


@dataclass(frozen=True)
class PreparedPackage:
    """The part of the intake checks that depends on the package alone (read once, reused).

    Reading the zip, the signatures, the statement binding, the opinion, the quantity and the
    package integrity do not depend on the registry's state; :func:`evaluate_intake_checks` adds
    the checks that do (policy, earlier requests, boundaries), so a registry can re-check a
    package against newer state without reading and verifying it again."""

    pkg: _Package
    facts: IntakeFacts
    fixed: Mapping[CheckName, tuple[bool, str]]


_STATE_FREE: Final = (
    CheckName.report_signature,
    CheckName.statement_signature,
    CheckName.statement_bound_to_report,
    CheckName.opinion_not_adverse,
    CheckName.quantity_within_verified,
)


def _guarded(run: Callable[[], tuple[bool, str]]) -> tuple[bool, str]:
    try:
        return run()
    except Exception as exc:  # a malformed document must fail its check, not the intake
        return False, f"check could not run on this package ({type(exc).__name__}: {exc})"


def _read_and_verify(package: Path | bytes | bytearray | memoryview | str) -> tuple[_Package, tuple[bool, str]]:
    """Open the zip once: :func:`verify_package` checks it (hashing every file) and hands back
    the manifest, signed documents and project files it read, which the checks then use."""
    source: Path | io.BytesIO
    if isinstance(package, (bytes, bytearray, memoryview)):
        source, name, base_dir = io.BytesIO(package), "package.zip", _NO_FILES
    else:
        source = Path(package)
        name, base_dir = source.name, source.parent
    try:
        zf = zipfile.ZipFile(source)
    except Exception as exc:
        pkg = _Package(path=Path(name), unreadable_reason=f"not a readable zip archive ({type(exc).__name__}: {exc})")
        return pkg, _check_integrity(_verify(package if isinstance(package, (bytes, bytearray, memoryview)) else source, name))
    with zf:
        read = _verify(zf, name)
        pkg = _read_package(zf, read if isinstance(read, PackageVerification) else None, name=name, base_dir=base_dir)
    return pkg, _check_integrity(read)


def prepare_package(request: IntakeRequest, *, now: datetime | None = None) -> PreparedPackage:
    """Read ``request.package`` and run the checks that need no registry state (see
    :class:`PreparedPackage`). ``now``: as for :func:`run_intake_checks`."""
    pkg, integrity = _read_and_verify(request.package)
    facts = _facts(pkg)
    fixed: dict[CheckName, tuple[bool, str]] = {CheckName.package_integrity: integrity}
    if not pkg.readable:
        for name in _STATE_FREE:
            fixed[name] = (False, f"{NOT_CHECKED}: package unreadable ({pkg.unreadable_reason})")
    else:
        runs: dict[CheckName, Callable[[], tuple[bool, str]]] = {
            CheckName.report_signature: lambda: _check_signature(
                pkg.report, pkg.report_error, what="report", expected_type=REPORT_TYPE, now=now
            ),
            CheckName.statement_signature: lambda: _check_signature(
                pkg.statement, pkg.statement_error, what="statement", expected_type=STATEMENT_TYPE, now=now
            ),
            CheckName.statement_bound_to_report: lambda: _check_binding(pkg, facts),
            CheckName.opinion_not_adverse: lambda: _check_opinion(pkg, facts),
            CheckName.quantity_within_verified: lambda: _check_quantity(pkg, facts, request.requested_quantity),
        }
        for name, run in runs.items():
            fixed[name] = _guarded(run)
    return PreparedPackage(pkg=pkg, facts=facts, fixed=fixed)


def evaluate_intake_checks(
    prepared: PreparedPackage,
    *,
    policy: RegistryPolicy,
    prior_requests: Sequence[PriorRequest],
    boundaries: Sequence[RegisteredBoundary],
) -> IntakeOutcome:
    """Every check of :func:`run_intake_checks`: the package's own (from ``prepared``) plus those
    against the registry's state, evaluated now. Cheap: nothing is read or verified again."""
    pkg, facts = prepared.pkg, prepared.facts
    results: dict[CheckName, tuple[bool, str]] = dict(prepared.fixed)
    if not pkg.readable:
        for name in CheckName:
            if name not in results:
                results[name] = (False, f"{NOT_CHECKED}: package unreadable ({pkg.unreadable_reason})")
    else:
        tol = policy.boundary_overlap_tolerance
        runs: dict[CheckName, Callable[[], tuple[bool, str]]] = {
            CheckName.vvb_accredited: lambda: _check_vvb(pkg, facts, policy),
            CheckName.developer_registered: lambda: _check_developer(pkg, facts, policy),
            CheckName.methodology_accepted: lambda: _check_methodology(pkg, facts, policy),
            CheckName.period_not_overlapping: lambda: _check_period(pkg, facts, prior_requests),
            CheckName.report_not_resubmitted: lambda: _check_resubmitted(pkg, facts, prior_requests),
            CheckName.boundary_not_overlapping: lambda: _check_boundary(pkg, facts, boundaries, tol),
        }
        for name, run in runs.items():
            results[name] = _guarded(run)
    checks = [CheckResult(name, *results[name]) for name in CheckName]
    return IntakeOutcome(checks=checks, passed=all(c.passed for c in checks), facts=facts)


def run_intake_checks(
    request: IntakeRequest,
    *,
    policy: RegistryPolicy,
    prior_requests: Sequence[PriorRequest],
    boundaries: Sequence[RegisteredBoundary],
    now: datetime | None = None,
) -> IntakeOutcome:
    """Run every intake check on ``request.package`` (see the module doc); never short-circuits.

    ``now`` (timezone-aware) is when credential validity periods are checked; default: the
    current time. ``prior_requests`` must not include this request itself.
    Same as :func:`prepare_package` then :func:`evaluate_intake_checks`."""
    return evaluate_intake_checks(
        prepare_package(request, now=now), policy=policy, prior_requests=prior_requests, boundaries=boundaries
    )
