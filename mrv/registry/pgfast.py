"""The intake hot path on PostgreSQL in plain psycopg: the same statements the ORM path sends
(:mod:`mrv.registry.repository`, :mod:`mrv.registry.lifecycle`, :mod:`mrv.registry.audit`), as
SQL text on a :meth:`~mrv.registry.db.RegistryStore.pg_connection` (autocommit, explicit
``BEGIN``/``COMMIT``), pipelined so a submission makes three round trips to the database:

1. :func:`submitter`: the token and any earlier request with the Idempotency-Key (one SELECT);
2. :func:`begin_and_read`: ``BEGIN``, the submission's advisory locks, then one SELECT of the
   policy rows it needs and the earlier requests it can conflict with;
3. :func:`write_and_commit`: the request row with its meter serials, then the audit chain lock
   (one statement), the audit entries (one INSERT, hashed in the database, see
   :func:`mrv.registry.audit.pg_append_statements`) and ``COMMIT``.

The checks in between run in Python on the rows read, with the functions the ORM path uses.
Anything unusual (a unique violation, a lost connection, a duplicate report, facts the checks
cannot narrow by) is left to the ORM path, which handles it as before; nothing here is committed
unless the whole submission is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg.rows import namedtuple_row

from mrv.errors import AuthError
from mrv.registry import audit
from mrv.registry.auth import Principal, _check_shape, hash_token
from mrv.registry.models import BOUNDARIES_STATE, Role

_AUTH = """
SELECT t.id, t.token_hash, t.role, t.subject, t.revoked_at,
       r.id AS r_id, r.status AS r_status, r.checks AS r_checks, r.project_id AS r_project_id,
       r.requested_quantity AS r_requested_quantity, r.report_sha256 AS r_report_sha256, r.request_digest AS r_request_digest
FROM api_tokens AS t
LEFT JOIN intake_requests AS r ON r.token_id = t.id AND r.idempotency_key = %(key)s AND t.role = 'developer'
WHERE t.token_hash = %(digest)s
"""
_LOCK_KEYS = "SELECT pg_advisory_xact_lock(k) FROM unnest(%(keys)s::bigint[]) AS k ORDER BY k"
_NO_PRIOR = "NULL::varchar, NULL::varchar, NULL::varchar, NULL::timestamptz, NULL::timestamptz, NULL::jsonb, NULL::varchar"
_PRIOR_COLUMNS = "r.id, r.project_id, r.report_sha256, r.monitoring_period_start, r.monitoring_period_end, r.device_ids, r.status"
# The policy rows the checks need (repository.load_policy_for) and the earlier requests they can
# fail on (repository.load_relevant_prior_requests), as one statement: kind 'prior' rows are requests.
_READ = f"""
SELECT 'vvb' AS kind, did AS value, NULL::varchar AS id, NULL::varchar AS project_id, NULL::varchar AS report_sha256,
  NULL::timestamptz AS monitoring_period_start, NULL::timestamptz AS monitoring_period_end, NULL::jsonb AS device_ids,
  NULL::varchar AS status FROM accredited_vvbs WHERE did = %(vvb)s
UNION ALL SELECT 'methodology', id, {_NO_PRIOR} FROM accepted_methodologies WHERE id = %(methodology)s
UNION ALL SELECT 'developer', did, {_NO_PRIOR} FROM project_developers WHERE project_id = %(project_id)s
UNION ALL SELECT 'boundaries', CAST(version AS VARCHAR), {_NO_PRIOR} FROM registry_state WHERE name = '{BOUNDARIES_STATE}'
UNION ALL SELECT 'prior', NULL, {_PRIOR_COLUMNS} FROM intake_requests AS r WHERE r.project_id = %(project_id)s
UNION ALL SELECT 'prior', NULL, {_PRIOR_COLUMNS} FROM intake_requests AS r WHERE r.report_sha256 = %(report_sha256)s
UNION ALL SELECT 'prior', NULL, {_PRIOR_COLUMNS} FROM intake_requests AS r JOIN intake_request_meters AS m ON m.request_id = r.id
  WHERE m.serial = ANY(%(serials)s::text[]) AND r.monitoring_period_start < %(hi)s AND r.monitoring_period_end >= %(lo)s
"""
_BOUNDARIES = """
SELECT p.project_id, l.geographic_identifier FROM projects AS p
JOIN project_locations AS l ON l.warehouse_project_id = p.warehouse_project_id
"""
_JSON_COLUMNS = frozenset({"device_ids", "checks", "meters", "labels"})


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """What an idempotent retry needs of the original request (the attributes
    :func:`mrv.registry.service.request_json` reads with ``original=True``)."""

    id: str
    status: str
    checks: Mapping[str, Any] | None
    project_id: str
    requested_quantity: int
    report_sha256: str
    request_digest: str


def submitter(conn: psycopg.Connection[Any], *, token: str, key: str | None) -> tuple[Principal, StoredRequest | None]:
    """:func:`mrv.registry.auth.authenticate_in` and, for a developer, the request it made with
    ``key`` (when 8-200 characters), in one statement. Raises :class:`AuthError` as it does."""
    import hmac

    _check_shape(token)
    digest = hash_token(token)
    lookup = key if key is not None and 8 <= len(key) <= 200 else None
    with conn.cursor(row_factory=namedtuple_row) as cur:
        row = cur.execute(_AUTH, {"key": lookup, "digest": digest}, prepare=True).fetchone()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise AuthError("unknown API token")
    if row.revoked_at is not None:
        raise AuthError(f"API token {row.id} was revoked")
    principal = Principal(token_id=row.id, role=Role(row.role), subject=row.subject)
    existing = None
    if row.r_id is not None:
        existing = StoredRequest(id=row.r_id, status=row.r_status, checks=row.r_checks, project_id=row.r_project_id,
                                 requested_quantity=row.r_requested_quantity, report_sha256=row.r_report_sha256,
                                 request_digest=row.r_request_digest)
    return principal, existing


@dataclass(frozen=True, slots=True)
class ReadRows:
    policy: list[tuple[str, str]]
    prior: list[Any]


def begin_and_read(conn: psycopg.Connection[Any], *, keys: Sequence[int], policy_params: Mapping[str, Any],
                   prior_params: Mapping[str, Any]) -> ReadRows:
    """``BEGIN``, the advisory locks ``keys`` (in key order), then, under them (a later statement:
    a newer snapshot), the policy rows and the relevant earlier requests: one round trip."""
    with conn.pipeline():
        conn.execute("BEGIN")
        if keys:
            conn.execute(_LOCK_KEYS, {"keys": list(keys)}, prepare=True)
        cur = conn.cursor(row_factory=namedtuple_row)
        cur.execute(_READ, {**policy_params, **prior_params}, prepare=True)
    policy, prior = [], []
    for r in cur.fetchall():
        if r.kind == "prior":
            prior.append(r)
        else:
            policy.append((r.kind, r.value))
    return ReadRows(policy=policy, prior=prior)


def load_boundaries_rows(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    return conn.execute(_BOUNDARIES).fetchall()


def _json(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


def _insert_request_sql(columns: Sequence[str]) -> str:
    """The request row and its meter serials (``%(_serials)s``), then the audit chain's lock
    (``%(_audit_lock)s``), in one statement. The lock is taken only after both INSERTs are done (it
    is evaluated on the row that joins their results): a request that waits on a unique index
    (the same key or report in a concurrent transaction) never does so holding the chain."""
    values = ", ".join(f"%({c})s::jsonb" if c in _JSON_COLUMNS else f"%({c})s" for c in columns)
    return (f"WITH r AS (INSERT INTO intake_requests ({', '.join(columns)}) VALUES ({values}) RETURNING id), "
            "m AS (INSERT INTO intake_request_meters (serial, request_id) SELECT s, r.id FROM r, unnest(%(_serials)s::text[]) AS s "
            "RETURNING 1) "
            "SELECT pg_advisory_xact_lock(%(_audit_lock)s) FROM r, (SELECT count(*) FROM m) AS inserted")


_INSERT_SQL: dict[tuple[str, ...], str] = {}


def write_and_commit(conn: psycopg.Connection[Any], *, row: Mapping[str, Any], meters: Sequence[Mapping[str, str]],
                     events: Sequence[Mapping[str, Any]]) -> None:
    """The request row, its meter rows, the audit chain's lock, the audit entries of ``events``
    and ``COMMIT``, in one round trip of three statements (the transaction of
    :func:`begin_and_read`). A failing statement (e.g. a unique violation) skips the rest, COMMIT
    included: the caller rolls back."""
    columns = tuple(row)
    sql = _INSERT_SQL.get(columns)
    if sql is None:
        sql = _INSERT_SQL.setdefault(columns, _insert_request_sql(columns))
    params = {c: (_json(v) if c in _JSON_COLUMNS and v is not None else getattr(v, "value", v)) for c, v in row.items()}
    params["_serials"] = [m["serial"] for m in meters]
    params["_audit_lock"] = audit.PG_LOCK_KEY
    statements = audit.pg_append_statements(events, lock=False)  # the lock: in the request's statement
    with conn.pipeline():
        conn.execute(sql, params, prepare=True)
        for stmt, stmt_params in statements:
            conn.execute(stmt, stmt_params, prepare=True)
        conn.execute("COMMIT")


__all__ = ["ReadRows", "StoredRequest", "begin_and_read", "load_boundaries_rows", "submitter", "write_and_commit"]
