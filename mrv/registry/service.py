"""The registry intake service (FastAPI): verified issuance requests in, CADT units out.

``create_app(db_url=..., registry_code=...)`` builds the app; it migrates the store on startup.
Endpoints (OpenAPI at ``/openapi.json``):

- ``POST /v1/requests`` (developer): the verification package as the ``application/zip`` body,
  ``quantity`` and repeatable ``label`` in the query, an ``Idempotency-Key`` header. The intake
  checks run synchronously; the request is stored as ``checks_passed`` or ``checks_failed``
  (201). A retry with the same token, key and body answers 200 with the original response; the
  same key with another body answers 409 ``idempotency_conflict``. (Submissions with plainly valid
  parameters skip FastAPI's parameter solving, with the same answers: ``_SubmissionFastPath``.)
- ``GET /v1/requests[/{id}]`` (developer: its own; officer: all), ``POST /v1/requests/{id}/approve``
  and ``/reject`` (officer). Approval issues units in the same transaction.
- ``GET /v1/projects[/{id}]``, ``/v1/issuances``, ``/v1/units``: public, CADT-shaped, paginated.
- ``POST /v1/admin/vvbs|developers|methodologies`` and ``GET /v1/audit/verify`` (officer).

Every error is JSON ``{"error": "<code>", "detail": "<message>", ...}``. Tokens are only read from
``Authorization: Bearer``; they are never logged.
"""

# No `from __future__ import annotations`: FastAPI resolves the route annotations (local aliases) at runtime.

import asyncio
import contextvars
import functools
import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mrv.errors import AuthError, IllegalTransition, RegistryError, SerialAllocationError
from mrv.registry import audit, repository
from mrv.registry.auth import Principal, authenticate, authenticate_in
from mrv.registry.cadt import UnitStatus
from mrv.registry.checks import (
    NON_COUNTING_STATUSES,
    IntakeRequest as CheckRequest,
    PreparedPackage,
    RegisteredBoundary,
    evaluate_intake_checks,
    norm_serial,
    prepare_package,
)
from mrv.registry.db import RegistryStore
from mrv.registry.lifecycle import checked_request_rows, record_checked_request, transition
from mrv.registry.models import (
    AcceptedMethodology,
    AccreditedVVB,
    IntakeRequest,
    ProjectDeveloper,
    RequestStatus,
    Role,
)
from mrv.registry.serials import DEFAULT_REGISTRY_CODE, MAX_BLOCK, _CODE
from mrv.signing import jcs

log = logging.getLogger("mrv.registry.service")

MAX_PACKAGE_BYTES = 256 << 20
ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed", "application/octet-stream"})
MAX_LABELS = 20
_RETRIES = 5
_REPORT_INDEX = "uq_intake_requests_report_sha256_counted"  # partial unique index (migration 0002)
_DID = re.compile(r"^did:[a-z0-9]+:[A-Za-z0-9._:%-]+$")
_PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ApiError(Exception):
    """An error answer: ``{"error": code, "detail": detail, **extra}`` with ``status``."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse({"error": self.code, "detail": self.detail, **self.extra}, status_code=self.status, headers=headers)


# --------------------------------------------------------------------------- request/response models


def _plain_text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _did(value: str) -> str:
    if not _DID.match(value):
        raise ValueError("must be a DID such as did:key:z6Mk...")
    return value


def _project_id(value: str) -> str:
    if not _PROJECT_ID.match(value):
        raise ValueError("must be 1-200 characters of [A-Za-z0-9._-], starting with a letter or digit")
    return value


DID = Annotated[str, Field(min_length=8, max_length=500), AfterValidator(_did)]
ProjectIdStr = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_project_id)]
Text = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_plain_text)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VVBIn(_Body):
    did: DID
    name: Annotated[str, Field(max_length=500), AfterValidator(_plain_text)] | None = None


class DeveloperIn(_Body):
    project_id: ProjectIdStr
    did: DID


class MethodologyIn(_Body):
    id: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_plain_text)]


class RejectIn(_Body):
    reason: Text


class CheckOut(BaseModel):
    name: str
    passed: bool
    reason: str


class RequestOut(BaseModel):
    id: str
    status: str
    checks: list[CheckOut]
    project_id: str
    requested_quantity: int
    report_sha256: str
    methodology_id: str | None = None
    developer_did: str | None = None
    vvb_did: str | None = None
    merkle_root: str | None = None
    monitoring_period_start: str | None = None
    monitoring_period_end: str | None = None
    vintage_year: int | None = None
    labels: list[str] = []
    decision_reason: str | None = None
    issuance_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class RequestPage(BaseModel):
    items: list[RequestOut]
    page: int
    limit: int
    total: int


class CadtPage(BaseModel):
    items: list[dict[str, Any]]
    page: int
    limit: int
    total: int


class ApprovalOut(BaseModel):
    request: RequestOut
    project: dict[str, Any]
    issuance: dict[str, Any]
    units: list[dict[str, Any]]


class ErrorOut(BaseModel):
    error: str
    detail: str


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def request_json(req: IntakeRequest, *, original: bool = False) -> dict[str, Any]:
    """A request as the API shows it. ``original``: as the submission answered it (the status the
    checks gave), for idempotent retries."""
    checks = repository.check_list(req.checks)
    status = RequestStatus(req.status).value
    if original:
        status = (RequestStatus.CHECKS_PASSED if checks and all(c["passed"] for c in checks) else RequestStatus.CHECKS_FAILED).value
    body: dict[str, Any] = {
        "id": req.id,
        "status": status,
        "checks": checks,
        "project_id": req.project_id,
        "requested_quantity": req.requested_quantity,
        "report_sha256": req.report_sha256,
    }
    if original:
        return body
    body.update(
        methodology_id=req.methodology_id or None,
        developer_did=req.developer_did or None,
        vvb_did=req.vvb_did or None,
        merkle_root=req.merkle_root,
        monitoring_period_start=_iso(req.monitoring_period_start),
        monitoring_period_end=_iso(req.monitoring_period_end),
        vintage_year=req.vintage_year,
        labels=repository.stored_labels(req),
        decision_reason=req.decision_reason,
        issuance_id=req.issuance_id,
        created_at=_iso(req.created_at),
        updated_at=_iso(req.updated_at),
    )
    return body


def request_digest(*, body: bytes, quantity: int, labels: list[str]) -> str:
    doc = {"package_sha256": hashlib.sha256(body).hexdigest(), "quantity": quantity, "labels": labels}
    return "sha256:" + hashlib.sha256(jcs.dumps(doc)).hexdigest()  # jcs.dumps: the bytes of rfc8785.dumps


def _lock_key(kind: str, value: str) -> int:
    return int.from_bytes(hashlib.sha256(f"open-dmrv intake {kind}:{value}".encode("utf-8", "replace")).digest()[:8], "big", signed=True)


def _lock_keys(facts: Any) -> list[int]:
    """Advisory-lock keys of a submission: its project and each of its meter serials (as the
    period check compares them: trimmed, case-folded)."""
    keys = set()
    if facts.project_id:
        keys.add(_lock_key("project", facts.project_id))
    for serial in facts.meter_ids:
        keys.add(_lock_key("meter", norm_serial(serial)))
    return sorted(keys)


# Taken in key order (volatile functions in the select list run after the ORDER BY sort), so two
# submissions that share keys can never deadlock on them.
_LOCK_KEYS = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k")


def _is_retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40001", "40P01") or "database is locked" in str(exc.orig)


def _require_storable(f: Any, checks: list[dict[str, Any]]) -> None:
    """ApiError 422 when the package lacks or garbles what a stored request must say."""
    missing = [n for n, v in (("project id", f.project_id), ("report digest", f.report_sha256), ("Merkle root", f.merkle_root),
                               ("monitoring period", f.period_start and f.period_end)) if not v]
    if missing:
        raise ApiError(422, "unreadable_package",
                       f"the package does not say its {', '.join(missing)}: nothing was stored", checks=checks)
    assert f.project_id and f.report_sha256 and f.merkle_root and f.period_start and f.period_end
    if len(f.project_id) > 200 or _CONTROL.search(f.project_id) or len(f.developer_did or "") > 500 or len(f.vvb_did or "") > 500 \
            or len(f.methodology_id or "") > 100 or f.period_end < f.period_start or not 1900 <= f.period_end.year <= 3000:
        raise ApiError(422, "unreadable_package", "the package's project id, DIDs, methodology or period are malformed", checks=checks)


def _record_fields(*, principal: Principal, key: str, digest: str, quantity: int, labels: list[str], facts: Any,
                   outcome: Any) -> tuple[dict[str, Any], RequestStatus, dict[str, Any]]:
    """The stored checks, the status and the keyword arguments of
    :func:`~mrv.registry.lifecycle.checked_request_rows` for a checked submission."""
    f = facts
    stored = repository.checks_json(checks=outcome.checks)
    status = RequestStatus.CHECKS_PASSED if outcome.passed else RequestStatus.CHECKS_FAILED
    fields = dict(
        token_id=principal.token_id,
        idempotency_key=key,
        request_digest=digest,
        project_id=f.project_id,
        methodology_id=f.methodology_id or "",
        developer_did=f.developer_did or "",
        vvb_did=f.vvb_did or "",
        report_sha256=f.report_sha256,
        merkle_root=f.merkle_root,
        monitoring_period_start=repository.utc_midnight(f.period_start),
        monitoring_period_end=repository.utc_midnight(f.period_end),
        device_ids=sorted(f.meter_ids),
        requested_quantity=quantity,
        vintage_year=f.period_end.year,
        status=status,
        checks=stored,
        facts=repository.fact_columns(f),
        labels=labels,
        audit_facts=repository.facts_document(f),
    )
    return stored, status, fields


# --------------------------------------------------------------------------- the service


class IntakeService:
    """The operations behind the endpoints (synchronous; the app runs them in its thread pool)."""

    def __init__(self, *, store: RegistryStore, registry_code: str, base_url: str = "") -> None:
        self.store = store
        self.registry_code = registry_code
        self.base_url = base_url
        self._boundaries: tuple[int, list[RegisteredBoundary]] | None = None  # (version, boundaries)

    @contextmanager
    def _write(self) -> Iterator[Any]:
        with self.store.session(write=True) as s:
            yield s

    # ---- auth

    def principal(self, token: str | None) -> Principal | None:
        if token is None:
            return None
        try:
            return authenticate(self.store, token)
        except AuthError as exc:
            raise ApiError(401, "unauthorized", str(exc)) from None

    # ---- submit

    def submitter(self, *, token: str | None, key: str | None) -> tuple[Principal, IntakeRequest | None]:
        """Who submits (a developer token) and the request it already made with ``key``, if any:
        one read transaction, before the package is even read (a retry costs one query more than
        authentication)."""
        if token is None:
            raise ApiError(401, "unauthorized", "an API token is required: Authorization: Bearer <token>")
        if self.store.backend == "postgresql":
            import psycopg  # PostgreSQL stores only (the postgres extra)

            from mrv.registry import pgfast

            try:
                with self.store.pg_connection() as conn:
                    principal, found = pgfast.submitter(conn, token=token, key=key)
            except AuthError as exc:
                raise ApiError(401, "unauthorized", str(exc)) from None
            except (psycopg.Error, RegistryError):
                pass  # e.g. a connection that died while pooled: the ORM path below (it pings first)
            else:
                if principal.role != Role.DEVELOPER:
                    raise ApiError(403, "forbidden", f"role {principal.role.value} may not do this (needs {Role.DEVELOPER.value})")
                return principal, found
        with self.store.session(write=False) as s:
            try:
                principal = authenticate_in(s, token)
            except AuthError as exc:
                raise ApiError(401, "unauthorized", str(exc)) from None
            if principal.role != Role.DEVELOPER:
                raise ApiError(403, "forbidden", f"role {principal.role.value} may not do this (needs {Role.DEVELOPER.value})")
            existing = None
            if key is not None and 8 <= len(key) <= 200:
                existing = repository.find_by_idempotency_key(s, token_id=principal.token_id, key=key)
        return principal, existing

    def _boundaries_at(self, s: Any, version: int | None) -> list[RegisteredBoundary]:
        """Registered boundaries, cached per process by the ``boundaries`` version (triggers move it
        whenever a project location changes, so a cached list is never stale)."""
        cached = self._boundaries
        if version is not None and cached is not None and cached[0] == version:
            return cached[1]
        loaded = repository.load_boundaries(s)  # read after the version: never older than it
        if version is not None:
            self._boundaries = (version, loaded)
        return loaded

    def _replay(self, existing: IntakeRequest, digest: str) -> tuple[int, dict[str, Any]]:
        if existing.request_digest != digest:
            raise ApiError(
                409,
                "idempotency_conflict",
                "this Idempotency-Key was already used with another package, quantity or labels; use a new key for a new request",
                request_id=existing.id,
            )
        return 200, request_json(existing, original=True)

    def submit(self, *, principal: Principal, key: str, body: bytes, quantity: int, labels: list[str],
               existing: IntakeRequest | None = None) -> tuple[int, dict[str, Any]]:
        """Check and store a submission. ``existing``: the request :meth:`submitter` found for
        ``key`` (replayed without reading the package)."""
        digest = request_digest(body=body, quantity=quantity, labels=labels)
        if existing is not None:
            return self._replay(existing, digest)
        # The package is read and its signatures, digests and Merkle root verified once, before
        # any database work: the CPU-heavy part never holds a lock or a connection.
        prepared = prepare_package(CheckRequest(requested_quantity=quantity, package=body))
        recheck = False
        if self.store.backend == "postgresql":
            import psycopg

            try:
                fast = self._store_request_pg(principal=principal, key=key, quantity=quantity, labels=labels, digest=digest,
                                              prepared=prepared)
            except (psycopg.Error, RegistryError, TypeError, ValueError) as exc:
                log.debug("intake fast path: %s: %s; the ORM path decides", type(exc).__name__, exc)
                # A concurrent request with this key or report committed first (unique violation),
                # a lost connection, a value psycopg cannot send: nothing was committed, and the
                # ORM path below decides, re-reading the key as after any unique violation.
                fast, recheck = None, True
            if fast is not None:
                return fast
        for attempt in range(_RETRIES):
            try:
                return self._store_request(principal=principal, key=key, quantity=quantity, labels=labels, digest=digest,
                                           prepared=prepared, recheck_key=recheck or attempt > 0)
            except IntegrityError as exc:
                # A concurrent submission of the same report (or key) committed first: the retry
                # finds it and answers as for any duplicate (replay or 409 report_already_submitted).
                if attempt == _RETRIES - 1:
                    if _REPORT_INDEX in str(exc.orig) or "report_sha256" in str(exc.orig):
                        raise ApiError(409, "report_already_submitted",
                                       "this report was submitted concurrently by another request; a report counts once") from None
                    raise
            except DBAPIError as exc:
                if not _is_retryable(exc) or attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _store_request(self, *, principal: Principal, key: str, quantity: int, labels: list[str], digest: str,
                       prepared: PreparedPackage, recheck_key: bool) -> tuple[int, dict[str, Any]]:
        f = prepared.facts
        with self._write() as s:
            if s.get_bind().dialect.name == "postgresql":
                # Only submissions that could conflict wait for each other: those of the same
                # project (period overlap, and the same report, which names its project) and those
                # sharing a meter serial. The unique indexes on (token, Idempotency-Key) and on
                # the counting report digest back this up. (SQLite: the write lock serialises.)
                keys = _lock_keys(f)
                if keys:
                    s.connection().execute(_LOCK_KEYS, {"keys": keys})
            if recheck_key:  # after a unique violation: a concurrent request with this key may have won
                existing = repository.find_by_idempotency_key(s, token_id=principal.token_id, key=key)
                if existing is not None:
                    return self._replay(existing, digest)
            # Under the locks, against committed state: every request the checks can fail on.
            policy, version = repository.load_policy_for(s, f)
            prior = repository.load_relevant_prior_requests(s, f)
            outcome = evaluate_intake_checks(prepared, policy=policy, prior_requests=prior, boundaries=self._boundaries_at(s, version))
            checks = [c.to_dict() for c in outcome.checks]
            _require_storable(f, checks)
            if any(p.report_sha256 == f.report_sha256 and p.status not in NON_COUNTING_STATUSES for p in prior):
                dup = repository.find_by_report(s, report_sha256=f.report_sha256)
                if dup is not None and dup.token_id == principal.token_id and dup.idempotency_key == key:
                    return self._replay(dup, digest)  # this very request, sent twice at once: the original answer
                if dup is not None:
                    extra = {"request_id": dup.id} if dup.token_id == principal.token_id else {}
                    raise ApiError(409, "report_already_submitted",
                                   f"report {f.report_sha256} was already submitted (request status {RequestStatus(dup.status).value}); "
                                   "a report can be submitted again only after every earlier request with it was "
                                   "checks_failed or rejected", checks=checks, **extra)
            stored, status, fields = _record_fields(principal=principal, key=key, digest=digest, quantity=quantity, labels=labels,
                                                    facts=f, outcome=outcome)
            request_id = record_checked_request(s, **fields)
            return 201, {"id": request_id, "status": status.value, "checks": repository.check_list(stored), "project_id": f.project_id,
                         "requested_quantity": quantity, "report_sha256": f.report_sha256}

    def _store_request_pg(self, *, principal: Principal, key: str, quantity: int, labels: list[str], digest: str,
                          prepared: PreparedPackage) -> tuple[int, dict[str, Any]] | None:
        """:meth:`_store_request` in plain psycopg (:mod:`mrv.registry.pgfast`): the same locks,
        reads, checks, rows and audit entries in three round trips. None: a case for the ORM
        path (facts the reads cannot narrow by, a counting request of the same report); psycopg
        errors propagate (nothing committed)."""
        from mrv.registry import pgfast

        f = prepared.facts
        if not (f.project_id and f.report_sha256 and f.period_start and f.period_end):
            return None
        with self.store.pg_connection() as conn:
            policy_params = {"vvb": f.vvb_did or "", "methodology": f.methodology_id or "", "project_id": f.project_id}
            rows = pgfast.begin_and_read(conn, keys=_lock_keys(f), policy_params=policy_params,
                                         prior_params=repository.relevant_prior_params(f))
            policy, version = repository.policy_from_rows(rows.policy, f)
            prior = repository.relevant_prior_from_rows(rows.prior, f)
            boundaries = self._boundaries_pg(conn, version)
            outcome = evaluate_intake_checks(prepared, policy=policy, prior_requests=prior, boundaries=boundaries)
            _require_storable(f, [c.to_dict() for c in outcome.checks])  # ApiError: rolled back as the connection returns
            if any(p.report_sha256 == f.report_sha256 and p.status not in NON_COUNTING_STATUSES for p in prior):
                return None  # replay or 409 report_already_submitted: the ORM path answers
            stored, status, fields = _record_fields(principal=principal, key=key, digest=digest, quantity=quantity, labels=labels,
                                                    facts=f, outcome=outcome)
            row, meters, events = checked_request_rows(**fields)
            pgfast.write_and_commit(conn, row=row, meters=meters, events=events)
        return 201, {"id": row["id"], "status": status.value, "checks": repository.check_list(stored), "project_id": f.project_id,
                     "requested_quantity": quantity, "report_sha256": f.report_sha256}

    def _boundaries_pg(self, conn: Any, version: int | None) -> list[RegisteredBoundary]:
        """:meth:`_boundaries_at` on a plain psycopg connection."""
        cached = self._boundaries
        if version is not None and cached is not None and cached[0] == version:
            return cached[1]
        from mrv.registry import pgfast

        loaded = repository.boundaries_from_rows(pgfast.load_boundaries_rows(conn))
        if version is not None:
            self._boundaries = (version, loaded)
        return loaded

    # ---- reads

    def _own(self, principal: Principal, req: IntakeRequest | None, s: Any) -> IntakeRequest:
        if req is None:
            raise ApiError(404, "not_found", "no such request")
        if principal.role == Role.DEVELOPER:
            ids = set(s.scalars(repository.token_ids_of_subject(principal.subject)))
            if req.token_id not in ids:
                raise ApiError(404, "not_found", "no such request")  # not 403: do not reveal that it exists
        return req

    def get_request(self, *, principal: Principal, request_id: str) -> dict[str, Any]:
        with self.store.session(write=False) as s:
            return request_json(self._own(principal, s.get(IntakeRequest, request_id), s))

    def list_requests(self, *, principal: Principal, status: RequestStatus | None, project_id: str | None, page: int, limit: int) -> dict[str, Any]:
        with self.store.session(write=False) as s:
            stmt = select(IntakeRequest)
            if principal.role == Role.DEVELOPER:
                stmt = stmt.where(IntakeRequest.token_id.in_(repository.token_ids_of_subject(principal.subject)))
            if status is not None:
                stmt = stmt.where(IntakeRequest.status == status)
            if project_id is not None:
                stmt = stmt.where(IntakeRequest.project_id == project_id)
            total = s.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
            rows = s.scalars(stmt.order_by(IntakeRequest.created_at, IntakeRequest.id).offset((page - 1) * limit).limit(limit))
            return {"items": [request_json(r) for r in rows], "page": page, "limit": limit, "total": int(total)}

    # ---- decisions

    def _retrying(self, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        for attempt in range(_RETRIES):
            try:
                return fn()
            except IntegrityError:
                if attempt == _RETRIES - 1:
                    raise
            except DBAPIError as exc:
                if not _is_retryable(exc) or attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def approve(self, *, principal: Principal, request_id: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            with self._write() as s:
                if s.get(IntakeRequest, request_id) is None:
                    raise ApiError(404, "not_found", "no such request")
                try:
                    transition(s, request_id=request_id, to=RequestStatus.APPROVED, actor=principal.subject)
                except IllegalTransition as exc:
                    raise ApiError(409, "illegal_transition", str(exc)) from None
                req = s.get(IntakeRequest, request_id)
                assert req is not None
                try:
                    issued = repository.issue_units(s, req=req, registry_code=self.registry_code, base_url=self.base_url)
                except SerialAllocationError as exc:
                    raise ApiError(422, "cannot_issue", str(exc)) from None
                audit.append(s, event={
                    "type": "issuance.created", "request_id": request_id, "issuance_id": issued.issuance["id"],
                    "blocks": [{"start": b.start, "end": b.end, "count": b.count, "vintage": b.vintage_year} for b in issued.blocks],
                })
                req = transition(s, request_id=request_id, to=RequestStatus.ISSUED, actor=principal.subject, issuance_id=issued.issuance["id"])
                return {"request": request_json(req), "project": issued.project, "issuance": issued.issuance, "units": issued.units}

        return self._retrying(run)

    def reject(self, *, principal: Principal, request_id: str, reason: str) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            with self._write() as s:
                if s.get(IntakeRequest, request_id) is None:
                    raise ApiError(404, "not_found", "no such request")
                try:
                    req = transition(s, request_id=request_id, to=RequestStatus.REJECTED, actor=principal.subject, reason=reason)
                except IllegalTransition as exc:
                    raise ApiError(409, "illegal_transition", str(exc)) from None
                return request_json(req)

        return self._retrying(run)

    # ---- admin

    def _admin_add(self, *, principal: Principal, row: Any, key: tuple[Any, ...], event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        def run() -> dict[str, Any]:
            with self._write() as s:
                if s.get(type(row), key) is not None:
                    return {"created": False}
                s.add(row)
                s.flush()
                audit.append(s, event={**event, "actor": principal.subject})
                return {"created": True}

        created = self._retrying(run)["created"]
        return (201 if created else 200), {k: v for k, v in event.items() if k != "type"}

    def add_vvb(self, *, principal: Principal, did: str, name: str | None) -> tuple[int, dict[str, Any]]:
        now = datetime.now(timezone.utc)
        return self._admin_add(principal=principal, row=AccreditedVVB(did=did, name=name, created_at=now), key=(did,),
                               event={"type": "policy.vvb_accredited", "did": did})

    def add_developer(self, *, principal: Principal, project_id: str, did: str) -> tuple[int, dict[str, Any]]:
        now = datetime.now(timezone.utc)
        return self._admin_add(principal=principal, row=ProjectDeveloper(project_id=project_id, did=did, created_at=now),
                               key=(project_id, did), event={"type": "policy.developer_registered", "project_id": project_id, "did": did})

    def add_methodology(self, *, principal: Principal, methodology_id: str) -> tuple[int, dict[str, Any]]:
        now = datetime.now(timezone.utc)
        return self._admin_add(principal=principal, row=AcceptedMethodology(id=methodology_id, created_at=now), key=(methodology_id,),
                               event={"type": "policy.methodology_accepted", "id": methodology_id})

    def verify_audit(self) -> dict[str, Any]:
        v = audit.verify_chain(self.store)
        return {"ok": v.ok, "first_bad_seq": v.first_bad_seq, "reason": v.reason, "count": v.count, "head_hash": v.head_hash}


# --------------------------------------------------------------------------- the app


_ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                406: "not_acceptable", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": name.replace("_", " ")} for code, name in _ERROR_CODES.items() if code not in (405, 406)
}
_bearer = HTTPBearer(auto_error=False, description="API token: `Authorization: Bearer mrvt_...`")
_NUL = "\x00"


INTAKE_THREADS = 32  # threads per process for the submission route (its own pool, see create_app)


def _json_response(doc: dict[str, Any], status: int) -> Response:
    """``JSONResponse(doc, status_code=status)``, serialised by orjson: the same JSON (compact,
    UTF-8, nothing but strings, integers, booleans and None in these documents); anything orjson
    will not write goes to JSONResponse, which answers as before."""
    try:
        body = orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):
        return JSONResponse(doc, status_code=status)
    return Response(body, status_code=status, media_type="application/json")


def _no_nul(value: str | None, what: str) -> str | None:
    if value is not None and (_NUL in value or len(value) > 500):
        raise ApiError(422, "invalid_request", f"{what} must be at most 500 characters without NUL")
    return value


_QUANTITY = re.compile(r"[1-9][0-9]{0,17}")


def _plain_submission(scope: Any) -> tuple[str, str, int, list[str] | None] | None:
    """The bearer token, Idempotency-Key, quantity and labels of ``POST /v1/requests`` when FastAPI
    would accept them exactly as they are written here, as what it would pass to the route (the
    token as HTTPBearer reads it, the key and labels as Starlette decodes them, the quantity a
    plain decimal within range); None for anything else, which FastAPI then handles itself
    (a missing or repeated header, another scheme, a quantity such as ``01`` or ``+1``, too many
    labels, ...). The checks on values (control characters, label names, content type and size)
    are the route's own and run on both paths."""
    auth = key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if auth is not None:
                return None
            auth = value
        elif name == b"idempotency-key":
            if key is not None:
                return None
            key = value
    if auth is None or key is None:
        return None
    scheme, _, credentials = auth.decode("latin-1").partition(" ")
    credentials = credentials.strip()
    if not scheme or not credentials or scheme.lower() != "bearer":
        return None
    idempotency_key = key.decode("latin-1")
    if not 8 <= len(idempotency_key) <= 200:
        return None
    quantity: str | None = None
    labels: list[str] = []
    for name_, value_ in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if name_ == "quantity":
            if quantity is not None:
                return None
            quantity = value_
        elif name_ == "label":
            labels.append(value_)
    if quantity is None or not _QUANTITY.fullmatch(quantity) or int(quantity) > MAX_BLOCK or len(labels) > MAX_LABELS:
        return None
    return credentials, idempotency_key, int(quantity), labels or None


class _SubmissionFastPath:
    """ASGI middleware: ``POST /v1/requests`` with plainly valid parameters (:func:`_plain_submission`)
    goes straight to ``handle``, the route's own steps, without FastAPI's per-request dependency
    and parameter solving (more than half of the event loop's time per submission); every other
    request, and every submission it cannot read that way, goes to the app as before."""

    def __init__(self, app: Any, *, handle: Callable[..., Any]) -> None:
        self.app, self.handle = app, handle

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/v1/requests" and not scope.get("root_path"):
            plain = _plain_submission(scope)
            if plain is not None:
                await self.handle(scope, receive, send, plain)
                return
        await self.app(scope, receive, send)


def create_app(*, db_url: str, registry_code: str = DEFAULT_REGISTRY_CODE, base_url: str = "", fast_path: bool = True) -> FastAPI:
    """The intake service on the registry store at ``db_url`` (migrated on startup).

    ``fast_path``: submissions whose parameters are plainly valid skip FastAPI's per-request
    parameter machinery (:class:`_SubmissionFastPath`; same answers). False: every submission
    goes through the route (for comparing the two)."""
    if not _CODE.match(registry_code):
        raise RegistryError(f"registry code {registry_code!r}: expected 2-32 characters of [A-Z0-9]")
    store = RegistryStore(db_url)
    service = IntakeService(store=store, registry_code=registry_code, base_url=base_url.rstrip("/"))
    # The submission route's blocking work (token and key lookup; checks and storage) runs on this
    # pool through the event loop's executor interface: the same thread hand-off as
    # run_in_threadpool (the context copied along), at less than half its per-call cost.
    # (Made on first use, on the event loop's thread; shut down with the app, made again if the app
    # is started again.)
    intake_pool: list[ThreadPoolExecutor] = []

    async def in_intake_pool(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        if not intake_pool:
            intake_pool.append(ThreadPoolExecutor(max_workers=INTAKE_THREADS, thread_name_prefix="mrv-intake"))
        call = functools.partial(contextvars.copy_context().run, fn, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(intake_pool[0], call)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        await run_in_threadpool(store.migrate)
        yield
        if intake_pool:
            intake_pool.pop().shutdown(wait=False)  # idle by now: uvicorn lets requests finish first
        store.dispose()  # the engine and the plain psycopg connections of the hot path

    app = FastAPI(
        title="open-dmrv registry intake",
        version="1",
        description="Verified issuance requests in, CAD Trust-shaped projects, issuances and units out.",
        lifespan=lifespan,
    )
    app.state.service = service

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _ERROR_CODES.get(exc.status_code, "error")
        return JSONResponse({"error": code, "detail": str(exc.detail)}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
        return JSONResponse({"error": "invalid_request", "detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(RegistryError)
    async def _registry_error(_: Request, exc: RegistryError) -> JSONResponse:
        log.error("registry store error: %s", exc)
        return JSONResponse({"error": "registry_unavailable", "detail": "the registry store failed; try again later"}, status_code=503)

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error: %s", type(exc).__name__)
        return JSONResponse({"error": "internal_error", "detail": "internal error"}, status_code=500)

    # ---- auth dependencies

    async def _principal(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal | None:
        return await run_in_threadpool(service.principal, creds.credentials if creds is not None else None)

    def require(*roles: Role) -> Callable[..., Any]:
        async def dep(principal: Annotated[Principal | None, Depends(_principal)]) -> Principal:
            if principal is None:
                raise ApiError(401, "unauthorized", "an API token is required: Authorization: Bearer <token>")
            if principal.role not in roles:
                raise ApiError(403, "forbidden", f"role {principal.role.value} may not do this (needs {' or '.join(r.value for r in roles)})")
            return principal

        return dep

    async def _submitter(
        request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> tuple[Principal, IntakeRequest | None]:
        # The developer role check of require(Role.DEVELOPER), and the lookup of an earlier request
        # with this Idempotency-Key, in one database transaction.
        return await in_intake_pool(service.submitter, token=creds.credentials if creds is not None else None,
                                    key=request.headers.get("idempotency-key"))

    Submitter = Annotated[tuple[Principal, IntakeRequest | None], Depends(_submitter)]
    Officer = Annotated[Principal, Depends(require(Role.OFFICER))]
    Reader = Annotated[Principal, Depends(require(Role.DEVELOPER, Role.OFFICER))]
    PageQ = Annotated[int, Query(ge=1, le=1_000_000)]
    LimitQ = Annotated[int, Query(ge=1, le=1000)]
    ProjectQ = Annotated[str | None, Query(alias="projectId", max_length=200)]
    VintageQ = Annotated[int | None, Query(alias="vintageYear", ge=1900, le=3000)]

    # ---- requests

    async def submission(request: Request, principal: Principal, existing: IntakeRequest | None, *, quantity: int,
                         idempotency_key: str, label: list[str] | None) -> Response:
        """``POST /v1/requests`` once the submitter is known and the parameters are valid: the body
        of :func:`submit_request` (and of the fast path, :class:`_SubmissionFastPath`)."""
        if _CONTROL.search(idempotency_key):
            raise ApiError(422, "invalid_request", "Idempotency-Key must not contain control characters")
        labels = []
        for x in (label or []):
            resolved = repository.resolve_label(x)
            if resolved is None:
                accepted = repository.accepted_label_names()
                raise ApiError(422, "unknown_label",
                               f"unknown label {x.strip()[:200]!r}; accepted label names (case-insensitive): {', '.join(accepted)}",
                               accepted_labels=accepted)
            if resolved[0] not in labels:
                labels.append(resolved[0])  # stored as the CADT label text
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ZIP_TYPES:
            raise ApiError(415, "unsupported_media_type", "send the verification package as Content-Type: application/zip")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_PACKAGE_BYTES:
            raise ApiError(413, "payload_too_large", f"the package is larger than {MAX_PACKAGE_BYTES} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_PACKAGE_BYTES:
                raise ApiError(413, "payload_too_large", f"the package is larger than {MAX_PACKAGE_BYTES} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        if not body:
            raise ApiError(422, "invalid_request", "the request body (the package zip) is empty")
        status, doc = await in_intake_pool(
            service.submit, principal=principal, key=idempotency_key, body=body, quantity=quantity, labels=labels, existing=existing
        )
        return _json_response(doc, status)

    async def fast_submission(scope: Any, receive: Any, send: Any, plain: tuple[str, str, int, list[str] | None]) -> None:
        """What FastAPI does for a submission whose parameters :func:`_plain_submission` read
        (it would accept them as they are): the submitter (the dependency), then
        :func:`submission`, ApiError and RegistryError answered by the app's handlers (any other
        exception goes on to the app's server-error handler, as from the route)."""
        token, key, quantity, label = plain
        request = Request(scope, receive, send)
        try:
            principal, existing = await in_intake_pool(service.submitter, token=token, key=key)
            response = await submission(request, principal, existing, quantity=quantity, idempotency_key=key, label=label)
        except ApiError as exc:
            response = await _api_error(request, exc)
        except RegistryError as exc:
            response = await _registry_error(request, exc)
        await response(scope, receive, send)

    if fast_path:
        app.add_middleware(_SubmissionFastPath, handle=fast_submission)

    @app.post(
        "/v1/requests",
        status_code=201,
        response_model=RequestOut,
        responses={**_ERRORS, 200: {"model": RequestOut, "description": "idempotent retry: the original response"}},
        openapi_extra={"requestBody": {"required": True, "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}},
        tags=["requests"],
    )
    async def submit_request(
        request: Request,
        submitter: Submitter,
        quantity: Annotated[int, Query(ge=1, le=MAX_BLOCK, description="Units requested (whole tCO2e)")],
        idempotency_key: Annotated[str, Header(alias="Idempotency-Key", min_length=8, max_length=200)],
        label: Annotated[list[str] | None, Query(max_length=MAX_LABELS, description="A label for the units (repeatable): article6 / Article 6 authorization, CORSIA / CORSIA eligible")] = None,
    ) -> Response:
        """Submit a verification package (with its VVB statement) for issuance."""
        principal, existing = submitter
        return await submission(request, principal, existing, quantity=quantity, idempotency_key=idempotency_key, label=label)

    @app.get("/v1/requests", response_model=RequestPage, responses=_ERRORS, tags=["requests"])
    def list_requests(
        principal: Reader,
        status: RequestStatus | None = None,
        project_id: Annotated[str | None, Query(max_length=200)] = None,
        page: PageQ = 1,
        limit: LimitQ = 100,
    ) -> dict[str, Any]:
        """Requests: an officer sees all, a developer its own."""
        return service.list_requests(principal=principal, status=status, project_id=_no_nul(project_id, "project_id"), page=page, limit=limit)

    @app.get("/v1/requests/{request_id}", response_model=RequestOut, responses=_ERRORS, tags=["requests"])
    def get_request(principal: Reader, request_id: str) -> dict[str, Any]:
        if _NUL in request_id or len(request_id) > 64:
            raise ApiError(404, "not_found", "no such request")
        return service.get_request(principal=principal, request_id=request_id)

    @app.post("/v1/requests/{request_id}/approve", response_model=ApprovalOut, responses=_ERRORS, tags=["review"])
    def approve_request(principal: Officer, request_id: str) -> dict[str, Any]:
        """Approve a request whose checks passed and issue its units (one transaction)."""
        if _NUL in request_id or len(request_id) > 64:
            raise ApiError(404, "not_found", "no such request")
        return service.approve(principal=principal, request_id=request_id)

    @app.post("/v1/requests/{request_id}/reject", response_model=RequestOut, responses=_ERRORS, tags=["review"])
    def reject_request(principal: Officer, request_id: str, body: RejectIn) -> dict[str, Any]:
        if _NUL in request_id or len(request_id) > 64:
            raise ApiError(404, "not_found", "no such request")
        return service.reject(principal=principal, request_id=request_id, reason=body.reason)

    # ---- public reads

    @app.get("/v1/projects", response_model=CadtPage, responses=_ERRORS, tags=["public"])
    def list_projects(project_id: ProjectQ = None, page: PageQ = 1, limit: LimitQ = 100) -> dict[str, Any]:
        with store.session(write=False) as s:
            return repository.list_projects(s, project_id=_no_nul(project_id, "projectId"), page=page, limit=limit).to_dict()

    @app.get("/v1/projects/{project_id}", response_model=dict[str, Any], responses=_ERRORS, tags=["public"])
    def get_project(project_id: str) -> dict[str, Any]:
        if _NUL in project_id or len(project_id) > 200:
            raise ApiError(404, "not_found", "no such project")
        with store.session(write=False) as s:
            doc = repository.get_project(s, project_id)
        if doc is None:
            raise ApiError(404, "not_found", "no such project")
        return doc

    @app.get("/v1/issuances", response_model=CadtPage, responses=_ERRORS, tags=["public"])
    def list_issuances(project_id: ProjectQ = None, vintage_year: VintageQ = None, page: PageQ = 1, limit: LimitQ = 100) -> dict[str, Any]:
        with store.session(write=False) as s:
            return repository.list_issuances(s, project_id=_no_nul(project_id, "projectId"), vintage_year=vintage_year, page=page, limit=limit).to_dict()

    @app.get("/v1/units", response_model=CadtPage, responses=_ERRORS, tags=["public"])
    def list_units(
        project_id: ProjectQ = None,
        vintage_year: VintageQ = None,
        unit_status: Annotated[UnitStatus | None, Query(alias="unitStatus")] = None,
        page: PageQ = 1,
        limit: LimitQ = 100,
    ) -> dict[str, Any]:
        with store.session(write=False) as s:
            return repository.list_units(
                s, project_id=_no_nul(project_id, "projectId"), vintage_year=vintage_year,
                unit_status=unit_status.value if unit_status else None, page=page, limit=limit,
            ).to_dict()

    # ---- admin

    @app.post("/v1/admin/vvbs", status_code=201, responses=_ERRORS, tags=["admin"])
    def add_vvb(principal: Officer, body: VVBIn) -> JSONResponse:
        status, doc = service.add_vvb(principal=principal, did=body.did, name=body.name)
        return JSONResponse(doc, status_code=status)

    @app.post("/v1/admin/developers", status_code=201, responses=_ERRORS, tags=["admin"])
    def add_developer(principal: Officer, body: DeveloperIn) -> JSONResponse:
        status, doc = service.add_developer(principal=principal, project_id=body.project_id, did=body.did)
        return JSONResponse(doc, status_code=status)

    @app.post("/v1/admin/methodologies", status_code=201, responses=_ERRORS, tags=["admin"])
    def add_methodology(principal: Officer, body: MethodologyIn) -> JSONResponse:
        status, doc = service.add_methodology(principal=principal, methodology_id=body.id)
        return JSONResponse(doc, status_code=status)

    @app.get("/v1/audit/verify", responses=_ERRORS, tags=["admin"])
    def verify_audit(principal: Officer) -> dict[str, Any]:
        """Re-hash the audit chain; ``first_bad_seq`` names the first altered entry."""
        return service.verify_audit()

    return app


__all__ = ["ApiError", "IntakeService", "MAX_PACKAGE_BYTES", "create_app", "request_digest", "request_json"]
