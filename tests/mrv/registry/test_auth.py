"""API tokens: plaintext shown once and never stored; wrong, malformed and revoked tokens are
refused. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from mrv.errors import AuthError, RegistryError
from mrv.registry.audit import verify_chain
from mrv.registry.auth import authenticate, create_token, list_tokens, revoke
from mrv.registry.db import RegistryStore
from mrv.registry.models import Role


@pytest.fixture
def store(lineage_url: str) -> Iterator[RegistryStore]:
    s = RegistryStore(lineage_url)
    s.migrate()
    yield s
    s.dispose()


def test_roundtrip_and_plaintext_not_stored(store: RegistryStore) -> None:
    dev = create_token(store, role=Role.DEVELOPER, subject="did:key:z6MkDev")
    off = create_token(store, role="officer", subject="Officer Ada")
    assert dev.startswith("mrvt_") and dev != off
    p = authenticate(store, dev)
    assert (p.role, p.subject) == (Role.DEVELOPER, "did:key:z6MkDev")
    assert authenticate(store, off).role is Role.OFFICER
    with store.engine.connect() as conn:
        dump = repr(conn.execute(text("SELECT * FROM api_tokens")).all())
        dump += repr(conn.execute(text("SELECT * FROM audit_log")).all())
    for token in (dev, off):
        assert token not in dump and token[5:] not in dump
    assert verify_chain(store).count == 2  # creations are audited


def test_wrong_and_malformed_tokens(store: RegistryStore) -> None:
    token = create_token(store, role=Role.PUBLIC, subject="anyone")
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(AuthError, match="unknown"):
        authenticate(store, wrong)
    for bad in ("", "mrvt_short", token + "x", "Bearer " + token, None):
        with pytest.raises(AuthError, match="malformed") as info:
            authenticate(store, bad)  # type: ignore[arg-type]
        assert token not in str(info.value)


def test_revoked_token_rejected(store: RegistryStore) -> None:
    token = create_token(store, role=Role.DEVELOPER, subject="did:key:z6MkDev")
    token_id = authenticate(store, token).token_id
    revoke(store, token_id=token_id, actor="admin")
    revoke(store, token_id=token_id, actor="admin")  # idempotent
    with pytest.raises(AuthError, match="revoked"):
        authenticate(store, token)
    [info] = list_tokens(store)
    assert info.revoked_at is not None
    with pytest.raises(RegistryError):
        revoke(store, token_id="nope", actor="admin")


def test_bad_role_or_subject(store: RegistryStore) -> None:
    with pytest.raises(RegistryError, match="role"):
        create_token(store, role="admin", subject="x")
    with pytest.raises(RegistryError, match="subject"):
        create_token(store, role=Role.PUBLIC, subject=" ")
