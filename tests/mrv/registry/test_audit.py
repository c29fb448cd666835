"""Hash-chained audit log: verification passes on an intact chain and names the first bad entry
after tampering directly in SQL (altered entry, deleted middle row). SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import rfc8785
from sqlalchemy import text

from mrv.errors import AuditError
from mrv.registry.audit import append, verify_chain
from mrv.registry.db import RegistryStore
from mrv.registry.models import GENESIS_HASH


@pytest.fixture
def store(lineage_url: str) -> Iterator[RegistryStore]:
    s = RegistryStore(lineage_url)
    s.migrate()
    yield s
    s.dispose()


def _fill(store: RegistryStore, n: int = 5) -> list:
    out = []
    for i in range(n):
        with store.session() as s:
            out.append(append(s, event={"type": "test", "i": i, "note": f"entry {i}", "nested": {"b": [1, 2], "a": None}}))
    return out


def test_empty_chain_is_ok(store: RegistryStore) -> None:
    v = verify_chain(store)
    assert (v.ok, v.count, v.head_hash) == (True, 0, GENESIS_HASH)


def test_chain_links_and_hash_definition(store: RegistryStore) -> None:
    entries = _fill(store)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    for prev, cur in zip(entries, entries[1:]):
        assert cur.prev_hash == prev.hash
    # The documented formula, recomputed independently: sha256(prev_hash || JCS(entry)).
    e = entries[2]
    assert e.hash == hashlib.sha256(e.prev_hash.encode() + rfc8785.dumps(e.entry)).hexdigest()
    v = verify_chain(store)
    assert v.ok and v.count == 5 and v.head_hash == entries[-1].hash and v.first_bad_seq is None


def test_altered_entry_is_named(store: RegistryStore) -> None:
    _fill(store)
    forged = '{"seq": 3, "created": "2024-01-01T00:00:00.000000Z", "event": {"type": "test", "i": 999}}'
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET entry = :e WHERE seq = 3"), {"e": forged})
    v = verify_chain(store)
    assert not v.ok and v.first_bad_seq == 3 and "altered" in v.reason
    assert v.count == 2


def test_rehashed_forgery_breaks_the_next_link(store: RegistryStore) -> None:
    entries = _fill(store)
    forged = dict(entries[2].entry, event={"type": "test", "i": 999})
    new_hash = hashlib.sha256(entries[2].prev_hash.encode() + rfc8785.dumps(forged)).hexdigest()
    value = "CAST(:e AS JSONB)" if store.backend == "postgresql" else ":e"
    with store.engine.begin() as conn:  # replace entry 3 by a forgery with a correct own hash
        conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
        conn.execute(
            text(f"INSERT INTO audit_log (seq, entry, prev_hash, hash, created_at) "
                 f"SELECT 3, {value}, :p, :h, created_at FROM audit_log WHERE seq = 2"),
            {"e": rfc8785.dumps(forged).decode(), "p": entries[2].prev_hash, "h": new_hash},
        )
    v = verify_chain(store)
    assert not v.ok and v.first_bad_seq == 4 and "prev_hash" in v.reason


def test_deleted_middle_entry_is_named(store: RegistryStore) -> None:
    _fill(store)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    v = verify_chain(store)
    assert not v.ok and v.first_bad_seq == 2 and "missing" in v.reason


def test_append_refuses_non_json_and_floats(store: RegistryStore) -> None:
    with pytest.raises(AuditError):
        with store.session() as s:
            append(s, event={"when": object()})
    with pytest.raises(AuditError, match="float"):
        with store.session() as s:
            append(s, event={"quantity": 1.5})
    assert verify_chain(store).count == 0  # nothing half-written


@pytest.mark.parametrize("event", [
    {"type": "x", "n": 1, "checks": [{"name": "a", "passed": True, "reason": "é \u2028 \ue000 \U0001f600"}], "none": None},
    {"type": "x", "nested": {"b": [1, 2, {"c": "d"}], "a": {}}, "list": []},
    {"type": "x", "t": (1, 2)},  # a tuple: JSON makes it a list
    {"type": "x", 5: "int key"},  # JSON makes the key a string
    {"type": "x", "big": 2**60},  # beyond 2**53: not canonicalisable
    {"type": "x", "f": 1.5},
    {"type": "x", "deep": [{"f": 0.0}]},
    {"type": "x", "o": object()},
])
def test_pg_append_statements_hash_what_append_many_hashes(event) -> None:
    """The PostgreSQL statements canonicalise an event as the ORM path does (same JCS bytes in the
    hashed prefix), and refuse what it refuses, with the same error."""
    from mrv.registry.audit import _has_float, _plain_json, pg_append_statements

    try:
        plain, event_jcs = _plain_json(event)
        expected: Any = ("audit events must not contain floats: use integers or decimal strings",) if _has_float(plain) else event_jcs
    except AuditError as exc:
        expected = (str(exc),)
    try:
        insert, params = pg_append_statements([event])[-1]
        got: Any = params["ev1"].encode("utf-8")
        assert params["pre1"].endswith(b',"event":' + got + b',"seq":') and "INSERT INTO audit_log" in insert
    except AuditError as exc:
        got = (str(exc),)
    assert got == expected
    if isinstance(expected, bytes):
        with_lock, without = pg_append_statements([event]), pg_append_statements([event], lock=False)
        assert [s for s, _ in with_lock][1:] == [s for s, _ in without] and "pg_advisory_xact_lock" in with_lock[0][0]
