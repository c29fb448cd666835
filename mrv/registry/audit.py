"""Append-only, hash-chained audit log.

Entry ``n`` stores ``entry = {"seq": n, "created": "<UTC Z>", "event": {...}}`` and
``hash = sha256(prev_hash || JCS(entry))`` in hex, where ``prev_hash`` is the hex hash of entry
``n-1`` (64 zeros for the first) as ASCII and JCS is RFC 8785 canonical JSON. Altering, inserting
or deleting any entry except the newest breaks the chain at that entry, and
:func:`verify_chain` names it. Truncating the tail is only detectable against an earlier
published head hash: :class:`AuditVerification` returns the head so it can be anchored elsewhere.

Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by the
write lock of a write session. ``prev_hash`` is UNIQUE, so even a buggy concurrent writer cannot
fork the chain. Nothing in the library updates or deletes entries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import rfc8785
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from mrv.errors import AuditError
from mrv.signing import jcs  # RFC 8785 bytes, compiled fast path (one implementation for signatures and the audit chain)
from mrv.registry.models import GENESIS_HASH, AuditLog

if TYPE_CHECKING:
    from mrv.registry.db import RegistryStore

_TAIL_KEY = "mrv.audit.tail"  # session.info: (transaction, seq, hash) of this transaction's last append
_PG_AUDIT_LOCK = int.from_bytes(hashlib.sha256(b"open-dmrv registry audit chain").digest()[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    entry: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditVerification:
    ok: bool
    first_bad_seq: int | None  # the first entry that is altered, missing or out of place
    reason: str | None
    count: int  # entries checked
    head_hash: str  # hash of the last good entry (GENESIS_HASH when empty): publish it to anchor the log


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """``sha256(prev_hash || JCS(entry))`` as lowercase hex."""
    return hashlib.sha256(prev_hash.encode("ascii") + jcs.dumps(entry)).hexdigest()


def _entry_jcs(*, seq: int, created: str, event_jcs: bytes) -> bytes:
    """``JCS({"seq": seq, "created": created, "event": event})`` from the event's JCS: the keys
    sort as created < event < seq, and ``created`` is plain ASCII (no escapes)."""
    return b'{"created":"' + created.encode("ascii") + b'","event":' + event_jcs + b',"seq":' + str(seq).encode("ascii") + b"}"


def _plain_json(event: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The event as the database gives it back (plain JSON, no NaN, str keys) and its JCS."""
    if not isinstance(event, Mapping):
        raise AuditError(f"audit event must be a mapping, not {type(event).__name__}")
    try:
        # What is hashed is exactly what the database gives back: plain JSON, no NaN, str keys.
        plain = json.loads(json.dumps(dict(event), allow_nan=False))
        # integers beyond 2**53 and the like are refused here, not at verify time
        return plain, jcs.dumps(plain)
    except (TypeError, ValueError, rfc8785.CanonicalizationError) as exc:
        raise AuditError(f"audit event is not canonicalisable JSON: {exc}") from exc


def _plain_event(value: Any) -> bool:
    """True when ``value`` is already plain JSON without floats: only dicts with ``str`` keys,
    lists, ``str``, ``int`` (exact types, not subclasses), ``bool`` and None. Such a value is
    what the database gives back, as it is (``json.loads(json.dumps(value)) == value``)."""
    t = type(value)
    if t is dict:
        for k, v in value.items():
            if type(k) is not str:
                return False
            tv = type(v)
            if tv is str or tv is int or tv is bool or v is None:
                continue
            if not _plain_event(v):
                return False
        return True
    if t is list:
        return all(_plain_event(v) for v in value)
    return t is str or t is int or t is bool or value is None


def _checked_event(event: Mapping[str, Any]) -> tuple[dict[str, Any] | Mapping[str, Any], bytes]:
    """``_plain_json(event)``, refusing floats (see :func:`append`). An event that is plain JSON
    already (:func:`_plain_event`, the usual case) is canonicalised as it is: the JSON round trip
    would give an equal value and the same JCS."""
    if type(event) is dict and _plain_event(event):
        try:
            return event, jcs.dumps(event)
        except (TypeError, ValueError, rfc8785.CanonicalizationError) as exc:  # e.g. an integer beyond 2**53
            raise AuditError(f"audit event is not canonicalisable JSON: {exc}") from exc
    plain, event_jcs = _plain_json(event)
    if _has_float(plain):
        raise AuditError("audit events must not contain floats: use integers or decimal strings")
    return plain, event_jcs


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def append(session: Session, *, event: Mapping[str, Any]) -> AuditEntry:
    """Append ``event`` to the chain inside ``session``'s transaction (use a write session).

    Floats are refused: JSON number round trips differ between backends (JSONB keeps the
    decimal text), and an audit chain must re-hash identically forever. Use integers or strings.
    """
    return append_many(session, events=[event])[0]


def append_many(session: Session, *, events: Sequence[Mapping[str, Any]]) -> list[AuditEntry]:
    """Append ``events`` in order, as :func:`append` would one by one, with one lock, one read
    of the chain's head and one INSERT: the chain is serialised, so the less time each writer
    holds it the more writers it serves."""
    # Everything but the head-dependent hash is done before the lock: canonical JSON included.
    plains = []
    for event in events:
        plain, event_jcs = _plain_json(event)
        if _has_float(plain):
            raise AuditError("audit events must not contain floats: use integers or decimal strings")
        plains.append((plain, event_jcs))
    if not plains:
        return []
    now = datetime.now(timezone.utc)
    created = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # A second append in the same transaction (lock already held, nothing else can append) follows
    # on from the first without asking the database again.
    txn = session.get_transaction()
    tail = session.info.get(_TAIL_KEY)
    if tail is not None and txn is not None and tail[0] is txn and not session.in_nested_transaction():
        seq, prev = tail[1], tail[2]
    else:
        session.info.pop(_TAIL_KEY, None)  # e.g. inside a savepoint: ask the database
        if session.get_bind().dialect.name == "postgresql":
            session.connection().execute(_LOCK, {"key": _PG_AUDIT_LOCK})
        last = session.connection().execute(_HEAD).first()
        seq, prev = (0, GENESIS_HASH) if last is None else (last.seq, last.hash)
    out: list[AuditEntry] = []
    for plain, event_jcs in plains:
        seq += 1
        entry = {"seq": seq, "created": created, "event": plain}
        digest = hashlib.sha256(prev.encode("ascii") + _entry_jcs(seq=seq, created=created, event_jcs=event_jcs)).hexdigest()
        out.append(AuditEntry(seq=seq, entry=entry, prev_hash=prev, hash=digest))
        prev = digest
    session.connection().execute(
        _INSERT,
        [{"seq": e.seq, "entry": e.entry, "prev_hash": e.prev_hash, "hash": e.hash, "created_at": now} for e in out],
    )
    if not session.in_nested_transaction():
        session.info[_TAIL_KEY] = (session.get_transaction(), out[-1].seq, out[-1].hash)
    return out


PG_LOCK_KEY = _PG_AUDIT_LOCK  # the chain's transaction-scoped advisory lock on PostgreSQL


def pg_append_statements(events: Sequence[Mapping[str, Any]], *, now: datetime | None = None,
                         lock: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """:func:`append_many` for PostgreSQL as plain SQL ``(statement, parameters)`` pairs, for a
    caller that runs them itself (e.g. pipelined with its other writes and the COMMIT): the chain
    lock, then one INSERT that reads the chain's head and computes each entry's hash in the
    database, ``sha256(prev_hash || JCS(entry))`` over the same bytes as :func:`append_many`
    (``JCS(entry)`` is built around the event's JCS, computed here). Nothing waits for the client
    between taking the lock and inserting, so the chain is held only as long as the database
    needs. ``lock=False``: without the lock statement, for a caller that takes
    ``pg_advisory_xact_lock(PG_LOCK_KEY)`` itself in an earlier statement of the transaction (the
    INSERT must be a later statement: it reads the head with a snapshot taken after the lock).
    Raises :class:`AuditError` as :func:`append_many` does."""
    if not events:
        return []
    plains = [_checked_event(event) for event in events]
    now = now if now is not None else datetime.now(timezone.utc)
    created = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    params: dict[str, Any] = {"created": created, "now": now, "genesis": GENESIS_HASH}
    ctes = [
        "head AS (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1)",
        "e0 AS (SELECT COALESCE((SELECT seq FROM head), 0) AS seq, COALESCE((SELECT hash FROM head), %(genesis)s) AS hash)",
    ]
    selects = []
    for i, (plain, event_jcs) in enumerate(plains, start=1):
        # JCS(entry) = {"created":"...","event":<JCS(event)>,"seq":N} (see _entry_jcs)
        params[f"pre{i}"] = b'{"created":"' + created.encode("ascii") + b'","event":' + event_jcs + b',"seq":'
        params[f"ev{i}"] = event_jcs.decode("utf-8")  # the JSONB value: same JSON as plain
        ctes.append(
            f"e{i} AS (SELECT p.seq + 1 AS seq, p.hash AS prev, encode(sha256(convert_to(p.hash, 'UTF8') || %(pre{i})s::bytea"
            f" || convert_to((p.seq + 1)::text, 'UTF8') || '\\x7d'::bytea), 'hex') AS hash FROM e{i - 1} AS p)"
        )
        selects.append(
            f"SELECT seq, jsonb_build_object('seq', seq, 'created', %(created)s::text, 'event', %(ev{i})s::jsonb), prev, hash, "
            f"%(now)s::timestamptz FROM e{i}"
        )
    insert = (
        "WITH " + ", ".join(ctes) + " INSERT INTO audit_log (seq, entry, prev_hash, hash, created_at) " + " UNION ALL ".join(selects)
    )
    if not lock:
        return [(insert, params)]
    return [("SELECT pg_advisory_xact_lock(%(key)s)", {"key": _PG_AUDIT_LOCK}), (insert, params)]


_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_INSERT = insert(AuditLog.__table__)
_HEAD = select(AuditLog.seq, AuditLog.hash).order_by(AuditLog.seq.desc()).limit(1)


def verify_chain(store: RegistryStore, *, batch_size: int = 1000) -> AuditVerification:
    """Re-hash the whole log in ``seq`` order and report the first entry that does not fit."""
    expected_seq, prev, count = 1, GENESIS_HASH, 0

    def bad(seq: int, reason: str) -> AuditVerification:
        return AuditVerification(ok=False, first_bad_seq=seq, reason=reason, count=count, head_hash=prev)

    with store.session(write=False) as s:
        rows = s.execute(
            select(AuditLog.seq, AuditLog.entry, AuditLog.prev_hash, AuditLog.hash)
            .order_by(AuditLog.seq)
            .execution_options(yield_per=batch_size)
        )
        for seq, entry, prev_hash, stored_hash in rows:
            if seq != expected_seq:
                return bad(expected_seq, f"entry {expected_seq} is missing (the next entry is {seq})")
            if prev_hash != prev:
                return bad(seq, f"entry {seq}: prev_hash does not match the hash of entry {seq - 1}")
            if not isinstance(entry, dict) or entry.get("seq") != seq:
                return bad(seq, f"entry {seq}: the hashed entry does not carry seq {seq}")
            try:
                recomputed = entry_hash(prev_hash, entry)
            except rfc8785.CanonicalizationError as exc:
                return bad(seq, f"entry {seq}: cannot be canonicalised ({exc})")
            if recomputed != stored_hash:
                return bad(seq, f"entry {seq}: content does not match its hash (altered)")
            prev, expected_seq, count = stored_hash, seq + 1, count + 1
    return AuditVerification(ok=True, first_bad_seq=None, reason=None, count=count, head_hash=prev)


__all__ = ["AuditEntry", "AuditVerification", "append", "append_many", "entry_hash", "pg_append_statements", "verify_chain"]
