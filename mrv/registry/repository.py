"""Database queries of the intake service: what the intake checks need, CADT records from and to
rows, and unit issuance.

Every function takes the caller's ``Session`` (one transaction, see
:meth:`mrv.registry.db.RegistryStore.session`) and never commits.

Where a request keeps what the package said
    ``intake_requests.checks`` holds one ``{"passed", "reason"}`` entry per check name. The
    :class:`~mrv.registry.checks.IntakeFacts` of the package are columns of the request (project,
    methodology, digests, period and meter serials since 0001; the manifest digest, meters, the
    report's and statement's quantities, opinion, ids, country and the boundary as GeoJSON *text*
    since migration 0003, which moved them out of a ``_facts`` key of ``checks``), and so are the
    labels asked for at submission (``labels``). Approval builds the CADT project, issuance and
    units from them: the package itself is not kept.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import Select, String, bindparam, cast, func, literal, select, union_all
from sqlalchemy.orm import Session

from mrv.registry import cadt
from mrv.registry.checks import NON_COUNTING_STATUSES, CheckName, IntakeFacts, PriorRequest, RegisteredBoundary, RegistryPolicy, boundary_bounds, norm_serial
from mrv.registry.models import (
    BOUNDARIES_STATE,
    AcceptedMethodology,
    AccreditedVVB,
    ApiToken,
    Issuance,
    IntakeRequest,
    IntakeRequestMeter,
    Label,
    Project,
    ProjectDeveloper,
    ProjectLocation,
    RegistryState,
    Unit,
    UnitLabel,
)
from mrv.registry.serials import SerialBlock, allocate_block


# ISO 3166-1 alpha-2 -> CADT country picklist name, for the codes project files use. A code not
# here (and not already a picklist name) becomes "Not Specified"; extend as projects need.
ISO2_TO_CADT: Mapping[str, str] = {
    "IN": "India", "ID": "Indonesia", "BR": "Brazil", "CN": "China", "KE": "Kenya", "VN": "Viet Nam",
    "TH": "Thailand", "PH": "Philippines", "MX": "Mexico", "CL": "Chile", "CO": "Colombia", "PE": "Peru",
    "ZA": "South Africa", "NG": "Nigeria", "EG": "Egypt", "MA": "Morocco", "TR": "Türkiye", "PK": "Pakistan",
    "BD": "Bangladesh", "LK": "Sri Lanka", "NP": "Nepal", "KH": "Cambodia", "MY": "Malaysia", "US": "United States of America",
    "GB": "United Kingdom", "DE": "Germany", "FR": "France", "ES": "Spain", "IT": "Italy", "AU": "Australia",
    "CA": "Canada", "JP": "Japan", "KR": "Republic of Korea", "SG": "Singapore", "AE": "United Arab Emirates",
}


# --------------------------------------------------------------------------- labels

# Label names a request may ask for (``?label=``, matched case-insensitively, surrounding spaces
# ignored) -> (the CADT label text stored, its CADT labelType). The CADT labelType picklist has no
# Article 6 / Letter of Authorization value: a host-country authorization letter is stored as
# "Letter of Qualification", the closest value.
_ARTICLE6 = ("Article 6 authorization", cadt.LabelType.LETTER_OF_QUALIFICATION)
_CORSIA = ("CORSIA eligible", cadt.LabelType.CERTIFICATION)
KNOWN_LABELS: Mapping[str, tuple[str, cadt.LabelType]] = {
    "article6": _ARTICLE6,
    "article 6": _ARTICLE6,
    "article 6 authorization": _ARTICLE6,
    "article 6 authorized": _ARTICLE6,
    "corsia": _CORSIA,
    "corsia eligible": _CORSIA,
}


def resolve_label(name: str) -> tuple[str, cadt.LabelType] | None:
    """The CADT label text and labelType of a requested label name, or None if it is not known."""
    return KNOWN_LABELS.get(" ".join(name.split()).casefold())


def accepted_label_names() -> list[str]:
    return sorted(KNOWN_LABELS)


def cadt_country(value: str | None) -> str:
    if not value:
        return "Not Specified"
    if value in cadt.COUNTRIES:
        return value
    return ISO2_TO_CADT.get(value.strip().upper(), "Not Specified")


def utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=timezone.utc)


# --------------------------------------------------------------------------- intake check inputs


def load_policy(
    session: Session, *, boundary_overlap_tolerance: float = 0.01, project_id: str | None = None
) -> RegistryPolicy:
    """The registry's policy; with ``project_id``, ``project_developers`` holds that project's
    developers only (all the intake checks of a package for that project look at)."""
    developers: dict[str, set[str]] = {}
    dev_stmt = select(ProjectDeveloper.project_id, ProjectDeveloper.did)
    if project_id is not None:
        dev_stmt = dev_stmt.where(ProjectDeveloper.project_id == project_id)
    for project_id, did in session.execute(dev_stmt):
        developers.setdefault(project_id, set()).add(did)
    return RegistryPolicy(
        accredited_vvbs=frozenset(session.scalars(select(AccreditedVVB.did))),
        project_developers={k: frozenset(v) for k, v in developers.items()},
        accepted_methodologies=frozenset(session.scalars(select(AcceptedMethodology.id))),
        boundary_overlap_tolerance=boundary_overlap_tolerance,
    )


_POLICY_FOR = union_all(
    select(literal("vvb"), AccreditedVVB.did).where(AccreditedVVB.did == bindparam("vvb")),
    select(literal("methodology"), AcceptedMethodology.id).where(AcceptedMethodology.id == bindparam("methodology")),
    select(literal("developer"), ProjectDeveloper.did).where(ProjectDeveloper.project_id == bindparam("project_id")),
    select(literal("boundaries"), cast(RegistryState.version, String)).where(RegistryState.name == BOUNDARIES_STATE),
)


def load_policy_for(session: Session, facts: IntakeFacts, *, boundary_overlap_tolerance: float = 0.01) -> tuple[RegistryPolicy, int | None]:
    """The part of the policy the checks of ``facts`` look at (is its VVB accredited, its
    methodology accepted, who may submit for its project), and the ``boundaries`` version of
    :data:`~mrv.registry.models.RegistryState`: one query. The checks give the same results with
    this policy as with :func:`load_policy`'s whole one."""
    params = {"vvb": facts.vvb_did or "", "methodology": facts.methodology_id or "", "project_id": facts.project_id or ""}
    return policy_from_rows(session.connection().execute(_POLICY_FOR, params), facts,
                            boundary_overlap_tolerance=boundary_overlap_tolerance)


def policy_from_rows(rows: Iterable[Any], facts: IntakeFacts, *, boundary_overlap_tolerance: float = 0.01) -> tuple[RegistryPolicy, int | None]:
    """:func:`load_policy_for` from the ``(kind, value)`` rows of its query."""
    vvbs: set[str] = set()
    methodologies: set[str] = set()
    developers: set[str] = set()
    version: int | None = None
    for kind, value in rows:
        if kind == "vvb":
            vvbs.add(value)
        elif kind == "methodology":
            methodologies.add(value)
        elif kind == "developer":
            developers.add(value)
        else:
            version = int(value)
    policy = RegistryPolicy(
        accredited_vvbs=frozenset(vvbs),
        project_developers={facts.project_id: frozenset(developers)} if facts.project_id and developers else {},
        accepted_methodologies=frozenset(methodologies),
        boundary_overlap_tolerance=boundary_overlap_tolerance,
    )
    return policy, version


def boundaries_version(session: Session) -> int | None:
    """The ``boundaries`` version: it moves whenever a project location changes (triggers)."""
    return session.scalar(select(RegistryState.version).where(RegistryState.name == BOUNDARIES_STATE))


_PRIOR_COLUMNS = (
    IntakeRequest.id,
    IntakeRequest.project_id,
    IntakeRequest.report_sha256,
    IntakeRequest.monitoring_period_start,
    IntakeRequest.monitoring_period_end,
    IntakeRequest.device_ids,
    IntakeRequest.status,
)


def load_prior_requests(session: Session) -> list[PriorRequest]:
    return _prior_requests(session.execute(select(*_PRIOR_COLUMNS)))


def _relevant_prior_statement() -> Any:
    cols = _PRIOR_COLUMNS
    by_meter = (
        select(*cols)
        .join(IntakeRequestMeter, IntakeRequestMeter.request_id == IntakeRequest.id)
        .where(
            IntakeRequestMeter.serial.in_(bindparam("serials", expanding=True)),
            IntakeRequest.monitoring_period_start < bindparam("hi"),
            IntakeRequest.monitoring_period_end >= bindparam("lo"),
        )
    )
    # Three indexed lookups (project, report digest, meter serial), not one scan of every request.
    return union_all(
        select(*cols).where(IntakeRequest.project_id == bindparam("project_id")),
        select(*cols).where(IntakeRequest.report_sha256 == bindparam("report_sha256")),
        by_meter,
    )


_RELEVANT_PRIOR = _relevant_prior_statement()


def load_relevant_prior_requests(session: Session, facts: IntakeFacts) -> list[PriorRequest]:
    """The earlier requests the double-issuance checks of ``facts`` can fail on: same project, same
    report digest, or an overlapping monitoring period sharing a meter serial. Evaluating the checks
    against these gives the same results as against :func:`load_prior_requests` (all requests).
    Falls back to all requests when the facts lack the project, digest or period."""
    if not (facts.project_id and facts.report_sha256 and facts.period_start and facts.period_end):
        return load_prior_requests(session)
    rows = session.connection().execute(_RELEVANT_PRIOR, relevant_prior_params(facts))
    return relevant_prior_from_rows(rows, facts)


def relevant_prior_params(facts: IntakeFacts) -> dict[str, Any]:
    """Parameters of the relevant-prior-requests query (facts with project, digest and period)."""
    assert facts.period_start is not None and facts.period_end is not None
    # SQL narrows with a day of slack either side (stored periods are UTC midnights; the exact
    # comparison on dates, as the checks do it, follows in Python).
    return {
        "project_id": facts.project_id, "report_sha256": facts.report_sha256, "serials": sorted({norm_serial(m) for m in facts.meter_ids}),
        "lo": utc_midnight(facts.period_start) - timedelta(days=1), "hi": utc_midnight(facts.period_end) + timedelta(days=2),
    }


def relevant_prior_from_rows(rows: Iterable[Any], facts: IntakeFacts) -> list[PriorRequest]:
    """:func:`load_relevant_prior_requests` from the rows of its query."""
    assert facts.period_start is not None and facts.period_end is not None
    start, end = facts.period_start, facts.period_end
    serials = {norm_serial(m) for m in facts.meter_ids}
    out, seen = [], set()
    for p in _prior_requests(rows):
        if p.request_id in seen:
            continue
        seen.add(p.request_id)
        if p.project_id == facts.project_id or p.report_sha256 == facts.report_sha256:
            out.append(p)
        elif p.period_start <= end and start <= p.period_end and serials & {norm_serial(m) for m in p.meter_ids}:
            out.append(p)
    return out


def _utc_date(value: datetime) -> date:
    return (value.astimezone(timezone.utc) if value.tzinfo is not None else value).date()


def _prior_requests(rows: Iterable[Any]) -> list[PriorRequest]:
    return [
        PriorRequest(
            project_id=r.project_id,
            report_sha256=r.report_sha256,
            period_start=_utc_date(r.monitoring_period_start),
            period_end=_utc_date(r.monitoring_period_end),
            meter_ids=frozenset(r.device_ids or ()),
            status=str(getattr(r.status, "value", r.status)),
            request_id=r.id,
        )
        for r in rows
    ]


def load_boundaries(session: Session) -> list[RegisteredBoundary]:
    """Registered project boundaries: the GeoJSON geometries in project locations' geographicIdentifier
    (identifiers that are not GeoJSON, e.g. imported free text, are skipped)."""
    rows = session.execute(
        select(Project.project_id, ProjectLocation.geographic_identifier).join(
            ProjectLocation, ProjectLocation.warehouse_project_id == Project.warehouse_project_id
        )
    )
    return boundaries_from_rows(rows)


def boundaries_from_rows(rows: Iterable[Any]) -> list[RegisteredBoundary]:
    """:func:`load_boundaries` from ``(project_id, geographic_identifier)`` rows."""
    out: list[RegisteredBoundary] = []
    for project_id, ident in rows:
        try:
            geometry = json.loads(ident)
        except (TypeError, ValueError):
            continue
        if isinstance(geometry, dict) and isinstance(geometry.get("type"), str):
            out.append(RegisteredBoundary(project_id=project_id, geometry=geometry, bounds=boundary_bounds(geometry)))
    return out


_BY_KEY = select(IntakeRequest).where(IntakeRequest.token_id == bindparam("token_id"), IntakeRequest.idempotency_key == bindparam("key"))


def find_by_idempotency_key(session: Session, *, token_id: str, key: str) -> IntakeRequest | None:
    return session.scalars(_BY_KEY, {"token_id": token_id, "key": key}).one_or_none()


def find_by_report(session: Session, *, report_sha256: str) -> IntakeRequest | None:
    """The request of ``report_sha256`` that counts for double issuance (any status but
    ``checks_failed`` and ``rejected``), if any: there is at most one (partial unique index)."""
    return session.scalars(
        select(IntakeRequest).where(
            IntakeRequest.report_sha256 == report_sha256,
            IntakeRequest.status.not_in(sorted(NON_COUNTING_STATUSES)),
        )
    ).one_or_none()


def token_ids_of_subject(subject: str) -> Select[tuple[str]]:
    """Ids of the developer tokens of ``subject``: a developer owns the requests of all its tokens."""
    return select(ApiToken.id).where(ApiToken.subject == subject, ApiToken.role == "developer")


# --------------------------------------------------------------------------- stored checks


def checks_json(*, checks: Iterable[Any]) -> dict[str, Any]:
    """The ``intake_requests.checks`` value: ``{check name: {"passed", "reason"}}``."""
    return {c.name.value: {"passed": bool(c.passed), "reason": _json_safe(c.reason)} for c in checks}


def fact_columns(facts: IntakeFacts) -> dict[str, Any]:
    """The package-fact columns of a request (see the module doc); strings the database and the
    audit chain accept, no floats (the boundary is GeoJSON text)."""
    boundary = json.dumps(dict(facts.boundary), separators=(",", ":")) if facts.boundary is not None else None
    return {
        "manifest_sha256": facts.manifest_sha256 if facts.manifest_sha256 and len(facts.manifest_sha256) <= 71 else None,
        "period_timezone": _json_safe(facts.period_timezone[:64]) if facts.period_timezone else None,
        "meters": [{"id": _json_safe(i), "serial": _json_safe(sn)} for i, sn in facts.meters],
        "issuable_tco2e": _bigint(facts.issuable_tCO2e),
        "verified_tco2e": _bigint(facts.verified_tCO2e),
        "opinion": _json_safe(facts.opinion[:32]) if facts.opinion else None,
        "report_id": _json_safe(facts.report_id) if facts.report_id else None,
        "statement_id": _json_safe(facts.statement_id) if facts.statement_id else None,
        "country": _json_safe(facts.country[:100]) if facts.country else None,
        "boundary": _json_safe(boundary),
    }


def facts_document(facts: IntakeFacts) -> dict[str, Any]:
    """All the facts as one plain JSON document for the audit entry (boundary as GeoJSON text)."""
    doc = facts.to_dict()
    boundary = doc.get("boundary")
    doc["boundary"] = json.dumps(boundary, separators=(",", ":")) if boundary is not None else None
    for key in ("issuable_tCO2e", "verified_tCO2e"):
        doc[key] = _bigint(doc[key])
    return _json_safe(doc)


def _bigint(value: int | None) -> int | None:
    # BIGINT range, and within JSON's exact integers (the audit entry repeats it)
    return value if value is not None and -(2**53 - 1) <= value <= 2**53 - 1 else None


def check_list(stored: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The check results in :class:`CheckName` order (JSONB does not keep key order)."""
    stored = stored or {}
    order = {name.value: i for i, name in enumerate(CheckName)}
    names = sorted((k for k in stored if not k.startswith("_")), key=lambda k: (order.get(k, len(order)), k))
    return [{"name": k, "passed": bool(stored[k].get("passed")), "reason": str(stored[k].get("reason", ""))} for k in names]


def stored_facts(req: IntakeRequest) -> dict[str, Any]:
    """The package facts stored with ``req`` (the fact columns; ``boundary`` as GeoJSON text)."""
    return {
        "manifest_sha256": req.manifest_sha256,
        "period_timezone": req.period_timezone,
        "meters": list(req.meters or []),
        "issuable_tCO2e": req.issuable_tco2e,
        "verified_tCO2e": req.verified_tco2e,
        "opinion": req.opinion,
        "report_id": req.report_id,
        "statement_id": req.statement_id,
        "country": req.country,
        "boundary": req.boundary,
    }


def stored_labels(req: IntakeRequest) -> list[str]:
    return [str(x) for x in req.labels] if isinstance(req.labels, list) else []


def _json_safe(value: Any) -> Any:
    """Strings the database and the audit chain accept: no NUL, no lone surrogates."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_json_safe(str(k)): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float):
        return str(value)
    return value


# --------------------------------------------------------------------------- CADT <-> rows


def _location_cadt(row: ProjectLocation) -> cadt.ProjectLocation:
    return cadt.ProjectLocation(
        id=row.id, country=row.country, inCountryRegion=row.in_country_region, geographicIdentifier=row.geographic_identifier
    )


def issuance_cadt(row: Issuance) -> cadt.Issuance:
    return cadt.Issuance(
        id=row.id,
        warehouseProjectId=row.warehouse_project_id,
        startDate=row.start_date,
        endDate=row.end_date,
        verificationApproach=row.verification_approach,
        verificationBody=row.verification_body,
        verificationReportDate=row.verification_report_date,
    )


def label_cadt(row: Label) -> cadt.Label:
    return cadt.Label(
        id=row.id,
        warehouseProjectId=row.warehouse_project_id,
        label=row.label,
        labelType=row.label_type,
        creditingPeriodStartDate=row.crediting_period_start_date,
        creditingPeriodEndDate=row.crediting_period_end_date,
        validityPeriodStartDate=row.validity_period_start_date,
        validityPeriodEndDate=row.validity_period_end_date,
        unitQuantity=row.unit_quantity,
        labelLink=row.label_link,
    )


def _by_project(session: Session, model: Any, ids: Sequence[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {i: [] for i in ids}
    if ids:
        for row in session.scalars(select(model).where(model.warehouse_project_id.in_(ids)).order_by(model.id)):
            out[row.warehouse_project_id].append(row)
    return out


def projects_cadt(session: Session, rows: Sequence[Project]) -> list[dict[str, Any]]:
    """CADT projects with their nested locations, issuances and labels (children loaded in batches)."""
    ids = [r.warehouse_project_id for r in rows]
    locations = _by_project(session, ProjectLocation, ids)
    issuances = _by_project(session, Issuance, ids)
    labels = _by_project(session, Label, ids)
    out = []
    for r in rows:
        project = cadt.Project(
            warehouseProjectId=r.warehouse_project_id,
            currentRegistry=r.current_registry,
            projectId=r.project_id,
            originProjectId=r.origin_project_id,
            registryOfOrigin=r.registry_of_origin,
            program=r.program,
            projectName=r.project_name,
            projectLink=r.project_link,
            projectDeveloper=r.project_developer,
            sector=r.sector,
            projectType=r.project_type,
            projectTags=r.project_tags,
            coveredByNDC=r.covered_by_ndc,
            ndcInformation=r.ndc_information,
            projectStatus=r.project_status,
            projectStatusDate=r.project_status_date,
            unitMetric=r.unit_metric,
            methodology=r.methodology,
            methodology2=r.methodology2,
            validationBody=r.validation_body,
            validationDate=r.validation_date,
            description=r.description,
            projectLocations=[_location_cadt(x) for x in locations[r.warehouse_project_id]] or None,
            issuances=[issuance_cadt(x) for x in issuances[r.warehouse_project_id]] or None,
            labels=[label_cadt(x) for x in labels[r.warehouse_project_id]] or None,
        )
        out.append(project.to_cadt())
    return out


def units_cadt(session: Session, rows: Sequence[Unit]) -> list[dict[str, Any]]:
    """CADT units, each with its nested issuance (its only link to the project) and labels."""
    issuance_ids = sorted({r.issuance_id for r in rows})
    issuances = {i.id: i for i in session.scalars(select(Issuance).where(Issuance.id.in_(issuance_ids)))} if rows else {}
    unit_ids = [r.warehouse_unit_id for r in rows]
    labels: dict[str, list[Label]] = {u: [] for u in unit_ids}
    if unit_ids:
        for unit_id, label in session.execute(
            select(UnitLabel.warehouse_unit_id, Label).join(Label, Label.id == UnitLabel.label_id).where(
                UnitLabel.warehouse_unit_id.in_(unit_ids)
            ).order_by(Label.id)
        ):
            labels[unit_id].append(label)
    out = []
    for r in rows:
        unit = cadt.Unit(
            warehouseUnitId=r.warehouse_unit_id,
            projectLocationId=r.project_location_id,
            unitOwner=r.unit_owner,
            countryJurisdictionOfOwner=r.country_jurisdiction_of_owner,
            inCountryJurisdictionOfOwner=r.in_country_jurisdiction_of_owner,
            unitBlockStart=r.unit_block_start,
            unitBlockEnd=r.unit_block_end,
            unitCount=r.unit_count,
            vintageYear=r.vintage_year,
            unitType=r.unit_type,
            marketplace=r.marketplace,
            marketplaceLink=r.marketplace_link,
            marketplaceIdentifier=r.marketplace_identifier,
            unitTags=r.unit_tags,
            unitStatus=r.unit_status,
            unitStatusReason=r.unit_status_reason,
            unitRegistryLink=r.unit_registry_link,
            correspondingAdjustmentDeclaration=r.corresponding_adjustment_declaration,
            correspondingAdjustmentStatus=r.corresponding_adjustment_status,
            issuance=issuance_cadt(issuances[r.issuance_id]),
            labels=[label_cadt(x) for x in labels[r.warehouse_unit_id]] or None,
        )
        out.append(unit.to_cadt())
    return out


# --------------------------------------------------------------------------- public reads


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    page: int
    limit: int
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "page": self.page, "limit": self.limit, "total": self.total}


def _paged(session: Session, stmt: Select[Any], *, page: int, limit: int, order: Sequence[Any]) -> tuple[list[Any], int]:
    total = session.execute(select(func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
    rows = list(session.scalars(stmt.order_by(*order).offset((page - 1) * limit).limit(limit)))
    return rows, int(total)


def _project_match(project_id: str) -> Any:
    return (Project.project_id == project_id) | (Project.warehouse_project_id == project_id)


def list_projects(session: Session, *, project_id: str | None, page: int, limit: int) -> Page:
    stmt = select(Project)
    if project_id is not None:
        stmt = stmt.where(_project_match(project_id))
    rows, total = _paged(session, stmt, page=page, limit=limit, order=[Project.created_at, Project.warehouse_project_id])
    return Page(projects_cadt(session, rows), page, limit, total)


def get_project(session: Session, project_id: str) -> dict[str, Any] | None:
    row = session.scalars(select(Project).where(_project_match(project_id))).first()
    return projects_cadt(session, [row])[0] if row is not None else None


def list_issuances(session: Session, *, project_id: str | None, vintage_year: int | None, page: int, limit: int) -> Page:
    stmt = select(Issuance)
    if project_id is not None:
        stmt = stmt.join(Project, Project.warehouse_project_id == Issuance.warehouse_project_id).where(_project_match(project_id))
    if vintage_year is not None:
        stmt = stmt.where(Issuance.id.in_(select(Unit.issuance_id).where(Unit.vintage_year == vintage_year)))
    rows, total = _paged(session, stmt, page=page, limit=limit, order=[Issuance.start_date, Issuance.id])
    return Page([issuance_cadt(r).to_cadt() for r in rows], page, limit, total)


def list_units(
    session: Session, *, project_id: str | None, vintage_year: int | None, unit_status: str | None, page: int, limit: int
) -> Page:
    stmt = select(Unit)
    if project_id is not None:
        stmt = (
            stmt.join(Issuance, Issuance.id == Unit.issuance_id)
            .join(Project, Project.warehouse_project_id == Issuance.warehouse_project_id)
            .where(_project_match(project_id))
        )
    if vintage_year is not None:
        stmt = stmt.where(Unit.vintage_year == vintage_year)
    if unit_status is not None:
        stmt = stmt.where(Unit.unit_status == unit_status)
    rows, total = _paged(
        session, stmt, page=page, limit=limit, order=[Unit.serial_registry, Unit.vintage_year, Unit.serial_first]
    )
    return Page(units_cadt(session, rows), page, limit, total)


# --------------------------------------------------------------------------- issuance


@dataclass(frozen=True, slots=True)
class IssuanceResult:
    project: dict[str, Any]
    issuance: dict[str, Any]
    units: list[dict[str, Any]]
    blocks: list[SerialBlock]


def _sector_and_types(methodology: str) -> tuple[str, str, cadt.UnitType]:
    """The CAD Trust sector, project type and unit type the methodology declares
    (``MethodologyInfo.sector / project_type / unit_type``); "Not Specified" / "Not Determined"
    when the methodology is not installed at the registry or declares no picklist unit type."""
    from mrv.errors import MethodologyError
    from mrv.methodology import registry as methodologies

    try:
        info = methodologies.get(methodology).info
    except (MethodologyError, ImportError):
        return "Not Specified", "Not Specified", cadt.UnitType.NOT_DETERMINED
    try:
        unit_type = cadt.UnitType(info.unit_type)
    except ValueError:
        unit_type = cadt.UnitType.NOT_DETERMINED
    return info.sector or "Not Specified", info.project_type or "Not Specified", unit_type


def get_or_create_project(session: Session, *, req: IntakeRequest, registry_code: str, base_url: str) -> Project:
    """The registered project of ``req``, created from the request's stored facts on first issuance
    (with one project location: the report's boundary as GeoJSON text and its country)."""
    existing = session.scalars(select(Project).where(Project.project_id == req.project_id)).one_or_none()
    if existing is not None:
        return existing
    facts = stored_facts(req)
    now = datetime.now(timezone.utc)
    sector, project_type, _ = _sector_and_types(req.methodology_id)
    wid = uuid.uuid4().hex
    project = Project(
        warehouse_project_id=wid,
        current_registry=registry_code,
        project_id=req.project_id,
        origin_project_id=req.project_id,
        registry_of_origin=registry_code,
        program=None,
        project_name=req.project_id,
        project_link=f"{base_url}/v1/projects/{wid}",
        project_developer=req.developer_did or "Not Specified",
        sector=sector,
        project_type=project_type,
        project_tags=None,
        covered_by_ndc=cadt.CoveredByNDC.UNKNOWN,
        ndc_information=None,
        project_status=cadt.ProjectStatus.REGISTERED,
        project_status_date=now,
        unit_metric=cadt.UnitMetric.TCO2E,
        methodology=req.methodology_id or "Not Specified",
        methodology2=None,
        validation_body=req.vvb_did or None,
        validation_date=None,
        description="Registered on first issuance from a signed monitoring report (open-dmrv intake).",
        created_at=now,
        updated_at=now,
    )
    session.add(project)
    session.flush()  # a concurrent creator of the same project id fails here (unique project_id)
    boundary = facts.get("boundary")
    session.add(
        ProjectLocation(
            id=uuid.uuid4().hex,
            warehouse_project_id=wid,
            country=cadt_country(facts.get("country")),
            in_country_region=None,
            geographic_identifier=boundary if isinstance(boundary, str) and boundary else "Not Specified",
        )
    )
    session.flush()
    return project


def issue_units(session: Session, *, req: IntakeRequest, registry_code: str, base_url: str) -> IssuanceResult:
    """Create the CADT issuance, its labels and one unit block for an approved request, in
    ``session``'s transaction. Order matters for lock ordering: project first, then the serial
    counter (see :mod:`mrv.registry.serials`)."""
    project = get_or_create_project(session, req=req, registry_code=registry_code, base_url=base_url)
    location = session.scalars(
        select(ProjectLocation).where(ProjectLocation.warehouse_project_id == project.warehouse_project_id).order_by(ProjectLocation.id)
    ).first()
    now = datetime.now(timezone.utc)
    start = req.monitoring_period_start
    end = req.monitoring_period_end
    issuance = Issuance(
        id=uuid.uuid4().hex,
        warehouse_project_id=project.warehouse_project_id,
        start_date=start,
        end_date=end,
        verification_approach="Third-party verification (signed VVB statement) of a signed monitoring report; registry intake checks passed",
        verification_body=req.vvb_did or "Not Specified",
        verification_report_date=req.created_at,
    )
    session.add(issuance)
    session.flush()
    label_rows = []
    for text in stored_labels(req):
        # Requests stored before labels were checked may hold free text: kept as "Certification".
        resolved = resolve_label(text)
        label_text, label_type = resolved if resolved is not None else (text, cadt.LabelType.CERTIFICATION)
        label = Label(
            id=uuid.uuid4().hex,
            warehouse_project_id=project.warehouse_project_id,
            label=label_text,
            label_type=label_type,
            crediting_period_start_date=start,
            crediting_period_end_date=end,
            validity_period_start_date=start,
            validity_period_end_date=end,
            unit_quantity=req.requested_quantity,
            label_link=f"{base_url}/v1/issuances?projectId={project.warehouse_project_id}",
        )
        session.add(label)
        label_rows.append(label)
    session.flush()
    block = allocate_block(
        session, project_id=req.project_id, vintage_year=req.vintage_year, count=req.requested_quantity, registry_code=registry_code
    )
    _, _, unit_type = _sector_and_types(req.methodology_id)
    unit = Unit(
        warehouse_unit_id=uuid.uuid4().hex,
        issuance_id=issuance.id,
        project_location_id=location.id if location is not None else None,
        unit_owner=req.developer_did or None,
        country_jurisdiction_of_owner=location.country if location is not None else "Not Specified",
        in_country_jurisdiction_of_owner=None,
        unit_block_start=block.start,
        unit_block_end=block.end,
        unit_count=block.count,
        vintage_year=req.vintage_year,
        unit_type=unit_type,
        marketplace=None,
        marketplace_link=None,
        marketplace_identifier=None,
        unit_tags=None,
        unit_status=cadt.UnitStatus.HELD,
        unit_status_reason=None,
        unit_registry_link=f"{base_url}/v1/units?projectId={project.warehouse_project_id}",
        corresponding_adjustment_declaration=cadt.CorrespondingAdjustmentDeclaration.UNKNOWN,
        corresponding_adjustment_status=cadt.CorrespondingAdjustmentStatus.NOT_STARTED,
        serial_registry=block.registry_code,
        serial_first=block.first,
        serial_last=block.last,
        created_at=now,
    )
    session.add(unit)
    session.flush()
    for label in label_rows:
        session.add(UnitLabel(warehouse_unit_id=unit.warehouse_unit_id, label_id=label.id))
    session.flush()
    return IssuanceResult(
        project=projects_cadt(session, [project])[0],
        issuance=issuance_cadt(issuance).to_cadt(),
        units=units_cadt(session, [unit]),
        blocks=[block],
    )


__all__ = [
    "KNOWN_LABELS",
    "IssuanceResult",
    "Page",
    "accepted_label_names",
    "cadt_country",
    "check_list",
    "boundaries_version",
    "checks_json",
    "fact_columns",
    "facts_document",
    "find_by_idempotency_key",
    "find_by_report",
    "get_or_create_project",
    "get_project",
    "issue_units",
    "list_issuances",
    "list_projects",
    "list_units",
    "load_boundaries",
    "load_policy",
    "load_policy_for",
    "load_prior_requests",
    "load_relevant_prior_requests",
    "resolve_label",
    "stored_facts",
    "stored_labels",
    "token_ids_of_subject",
]
