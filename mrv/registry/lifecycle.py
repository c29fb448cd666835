"""The intake request state machine.

::

    received ──▶ checks_passed ──▶ approved ──▶ issued
        │              │
        ▼              ▼
    checks_failed ──▶ rejected

Every change of status (and the creation of a request) appends an audit entry in the same
transaction as the change, so the log and the table cannot disagree. The request row is locked
(``SELECT ... FOR UPDATE`` on PostgreSQL, the write lock on SQLite) before its status is read:
two officers approving at once get one approval and one :class:`IllegalTransition`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from mrv.errors import IllegalTransition, RegistryError
from mrv.registry import audit
from mrv.registry.checks import norm_serial
from mrv.registry.models import IntakeRequest, IntakeRequestMeter, RequestStatus

S = RequestStatus
ALLOWED: Mapping[RequestStatus, frozenset[RequestStatus]] = MappingProxyType(
    {
        S.RECEIVED: frozenset({S.CHECKS_PASSED, S.CHECKS_FAILED}),
        S.CHECKS_PASSED: frozenset({S.APPROVED, S.REJECTED}),
        S.CHECKS_FAILED: frozenset({S.REJECTED}),
        S.APPROVED: frozenset({S.ISSUED}),
        S.ISSUED: frozenset(),
        S.REJECTED: frozenset(),
    }
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def can_transition(current: RequestStatus | str, to: RequestStatus | str) -> bool:
    return RequestStatus(to) in ALLOWED[RequestStatus(current)]


def _utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise RegistryError(f"{what} must be a timezone-aware datetime")
    return value.astimezone(timezone.utc)


def _validate_new(*, report_sha256: str, merkle_root: str, request_digest: str, idempotency_key: str,
                  requested_quantity: int, device_ids: Sequence[str]) -> None:
    for name, value in (("report_sha256", report_sha256), ("merkle_root", merkle_root), ("request_digest", request_digest)):
        if not isinstance(value, str) or not _DIGEST.match(value):
            raise RegistryError(f"{name} must be 'sha256:' and 64 lowercase hex digits, not {value!r}")
    if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 255:
        raise RegistryError("idempotency key must be 1-255 characters")
    if not isinstance(requested_quantity, int) or isinstance(requested_quantity, bool) or requested_quantity < 1:
        raise RegistryError(f"requested quantity must be a positive integer, not {requested_quantity!r}")
    if isinstance(device_ids, str) or not all(isinstance(d, str) and d for d in device_ids):
        raise RegistryError("device ids must be a list of non-empty strings")


_FACT_COLUMNS = frozenset({"manifest_sha256", "period_timezone", "meters", "issuable_tco2e", "verified_tco2e", "opinion",
                           "report_id", "statement_id", "country", "boundary"})


# Core statements on the session's connection (no ORM bookkeeping: nothing here is read back).
_INSERT_REQUEST = insert(IntakeRequest.__table__)
_INSERT_METERS = insert(IntakeRequestMeter.__table__)


def _add_meters(session: Session, request_id: str, device_ids: Sequence[str]) -> None:
    """Index the request's meter serials as the period check compares them."""
    serials = sorted({norm_serial(d) for d in device_ids})
    if serials:
        session.connection().execute(_INSERT_METERS, [{"serial": x, "request_id": request_id} for x in serials])


def create_request(
    session: Session,
    *,
    token_id: str,
    idempotency_key: str,
    request_digest: str,
    project_id: str,
    methodology_id: str,
    developer_did: str,
    vvb_did: str,
    report_sha256: str,
    merkle_root: str,
    monitoring_period_start: datetime,
    monitoring_period_end: datetime,
    device_ids: Sequence[str],
    requested_quantity: int,
    vintage_year: int,
) -> IntakeRequest:
    """Insert a request in status ``received`` and audit it.

    A repeated (token, idempotency key) or report digest raises ``sqlalchemy.exc.IntegrityError``
    at flush: the caller looks up the original request (idempotent retry) or answers 409.
    """
    _validate_new(report_sha256=report_sha256, merkle_root=merkle_root, request_digest=request_digest,
                  idempotency_key=idempotency_key, requested_quantity=requested_quantity, device_ids=device_ids)
    start = _utc(monitoring_period_start, "monitoring period start")
    end = _utc(monitoring_period_end, "monitoring period end")
    if end < start:
        raise RegistryError("monitoring period ends before it starts")
    now = datetime.now(timezone.utc)
    req = IntakeRequest(
        id=uuid.uuid4().hex,
        token_id=token_id,
        idempotency_key=idempotency_key,
        request_digest=request_digest,
        project_id=project_id,
        methodology_id=methodology_id,
        developer_did=developer_did,
        vvb_did=vvb_did,
        report_sha256=report_sha256,
        merkle_root=merkle_root,
        monitoring_period_start=start,
        monitoring_period_end=end,
        device_ids=sorted(set(device_ids)),
        requested_quantity=requested_quantity,
        vintage_year=vintage_year,
        status=RequestStatus.RECEIVED,
        checks={},
        decision_reason=None,
        issuance_id=None,
        created_at=now,
        updated_at=now,
    )
    session.add(req)
    session.flush()  # uniqueness violations surface here, before the audit entry
    _add_meters(session, req.id, device_ids)
    audit.append(
        session,
        event={
            "type": "intake_request.received",
            "request_id": req.id,
            "token_id": token_id,
            "project_id": project_id,
            "report_sha256": report_sha256,
            "merkle_root": merkle_root,
            "requested_quantity": requested_quantity,
            "status": RequestStatus.RECEIVED.value,
        },
    )
    return req


def checked_request_rows(
    *,
    token_id: str,
    idempotency_key: str,
    request_digest: str,
    project_id: str,
    methodology_id: str,
    developer_did: str,
    vvb_did: str,
    report_sha256: str,
    merkle_root: str,
    monitoring_period_start: datetime,
    monitoring_period_end: datetime,
    device_ids: Sequence[str],
    requested_quantity: int,
    vintage_year: int,
    status: RequestStatus,
    checks: Mapping[str, Any],
    facts: Mapping[str, Any],
    labels: Sequence[str],
    audit_facts: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[dict[str, str]], list[dict[str, Any]]]:
    """What :func:`record_checked_request` writes, validated, without writing it: the
    ``intake_requests`` row, the ``intake_request_meters`` rows and the two audit events."""
    target = RequestStatus(status)
    if target not in ALLOWED[RequestStatus.RECEIVED]:
        raise IllegalTransition(f"a checked request is checks_passed or checks_failed, not {target.value}")
    _validate_new(report_sha256=report_sha256, merkle_root=merkle_root, request_digest=request_digest,
                  idempotency_key=idempotency_key, requested_quantity=requested_quantity, device_ids=device_ids)
    start = _utc(monitoring_period_start, "monitoring period start")
    end = _utc(monitoring_period_end, "monitoring period end")
    if end < start:
        raise RegistryError("monitoring period ends before it starts")
    unknown = set(facts) - _FACT_COLUMNS
    if unknown:
        raise RegistryError(f"unknown request fact columns: {', '.join(sorted(unknown))}")
    now = datetime.now(timezone.utc)
    request_id = uuid.uuid4().hex
    row = dict(
        id=request_id,
        token_id=token_id,
        idempotency_key=idempotency_key,
        request_digest=request_digest,
        project_id=project_id,
        methodology_id=methodology_id,
        developer_did=developer_did,
        vvb_did=vvb_did,
        report_sha256=report_sha256,
        merkle_root=merkle_root,
        monitoring_period_start=start,
        monitoring_period_end=end,
        device_ids=sorted(set(device_ids)),
        requested_quantity=requested_quantity,
        vintage_year=vintage_year,
        status=target,
        checks=dict(checks),
        decision_reason=None,
        issuance_id=None,
        created_at=now,
        updated_at=now,
        labels=list(labels),
        **{**dict.fromkeys(_FACT_COLUMNS), **facts},
    )
    meters = [{"serial": x, "request_id": request_id} for x in sorted({norm_serial(d) for d in device_ids})]
    events = [
        {
            "type": "intake_request.received",
            "request_id": request_id,
            "token_id": token_id,
            "project_id": project_id,
            "report_sha256": report_sha256,
            "merkle_root": merkle_root,
            "requested_quantity": requested_quantity,
            "status": RequestStatus.RECEIVED.value,
        },
        {
            "type": "intake_request.status",
            "request_id": request_id,
            "from": RequestStatus.RECEIVED.value,
            "to": target.value,
            "actor": "intake-checks",
            "checks": dict(checks),
            "facts": dict(audit_facts if audit_facts is not None else facts),
            "labels": list(labels),
        },
    ]
    return row, meters, events


def record_checked_request(session: Session, **fields: Any) -> str:
    """A request whose intake checks already ran: :func:`create_request` then :func:`transition`
    to ``status`` (``checks_passed`` or ``checks_failed``) in one INSERT, with the same two audit
    entries (``received``, then the status change with the checks), appended together. Returns the
    request id. Takes the keyword arguments of :func:`checked_request_rows`.

    ``facts``: the package-fact columns of the request (``manifest_sha256``, ``meters``, ...);
    ``audit_facts``: what the audit entry records of them (default: ``facts``). A repeated (token,
    idempotency key) or a second counting request for the report raises ``IntegrityError``.
    """
    row, meters, events = checked_request_rows(**fields)
    # Values as execution parameters, not .values(...): the statement stays one cached compiled
    # INSERT and the JSON values are not walked by SQL expression coercion.
    session.connection().execute(_INSERT_REQUEST, row)  # uniqueness violations surface here, before the audit entries
    if meters:
        session.connection().execute(_INSERT_METERS, meters)
    audit.append_many(session, events=events)
    return row["id"]


def transition(
    session: Session,
    *,
    request_id: str,
    to: RequestStatus | str,
    actor: str,
    reason: str | None = None,
    checks: Mapping[str, Any] | None = None,
    issuance_id: str | None = None,
) -> IntakeRequest:
    """Move a request to ``to`` and audit it, in ``session``'s transaction.

    ``checks`` (the intake check results) is only accepted when leaving ``received``;
    ``issuance_id`` only when moving to ``issued``. Raises :class:`IllegalTransition`.
    """
    try:
        target = RequestStatus(to)
    except ValueError:
        raise IllegalTransition(f"unknown request status {to!r}") from None
    if not isinstance(actor, str) or not actor.strip():
        raise RegistryError("a transition needs an actor (officer name, 'intake-checks', ...)")
    req = session.get(IntakeRequest, request_id, with_for_update=True, populate_existing=True)
    if req is None:
        raise RegistryError(f"unknown intake request {request_id!r}")
    current = RequestStatus(req.status)
    if target not in ALLOWED[current]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED[current])) or "none: it is final"
        raise IllegalTransition(f"request {request_id}: {current.value} -> {target.value} is not allowed (allowed: {allowed})")
    if checks is not None and current != RequestStatus.RECEIVED:
        raise RegistryError("check results can only be recorded when leaving 'received'")
    if issuance_id is not None and target != RequestStatus.ISSUED:
        raise RegistryError("an issuance id can only be recorded with the move to 'issued'")
    if target == RequestStatus.REJECTED and not reason:
        raise RegistryError("a rejection needs a reason")
    if checks is not None:
        req.checks = dict(checks)
    if reason is not None:
        req.decision_reason = reason
    if issuance_id is not None:
        req.issuance_id = issuance_id
    req.status = target
    req.updated_at = datetime.now(timezone.utc)
    session.flush()
    event: dict[str, Any] = {
        "type": "intake_request.status",
        "request_id": request_id,
        "from": current.value,
        "to": target.value,
        "actor": actor,
    }
    if reason is not None:
        event["reason"] = reason
    if checks is not None:
        event["checks"] = dict(checks)
    if issuance_id is not None:
        event["issuance_id"] = issuance_id
    audit.append(session, event=event)
    return req


__all__ = ["ALLOWED", "can_transition", "checked_request_rows", "create_request", "record_checked_request", "transition"]
