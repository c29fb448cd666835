"""API tokens with roles, stored hashed.

A token is ``mrvt_`` + 43 characters of ``secrets.token_urlsafe(32)`` (256 random bits). It is
shown once by :func:`create_token`; the database keeps only ``sha256(token)`` in hex. A plain
fast hash is enough *because* the secret is high-entropy: there is no password to guess, so
salting or a slow KDF would add nothing an attacker with the table could be slowed by. The hash
column is unique and indexed, so lookup is by hash; the final comparison is constant-time.
Token creation and revocation go into the audit log (never the token itself).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from mrv.errors import AuthError, RegistryError
from mrv.registry import audit
from mrv.registry.db import RegistryStore
from mrv.registry.models import ApiToken, Role

TOKEN_PREFIX = "mrvt_"
_TOKEN = re.compile(r"^mrvt_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as."""

    token_id: str
    role: Role
    subject: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str
    role: Role
    subject: str
    created_at: datetime
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(store: RegistryStore, *, role: Role | str, subject: str) -> str:
    """Issue a token for ``subject`` (developer DID, officer name) and return it in plaintext, once."""
    try:
        role_ = Role(role)
    except ValueError:
        raise RegistryError(f"role must be one of {[r.value for r in Role]}, not {role!r}") from None
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 500:
        raise RegistryError("token subject must be a non-empty string of at most 500 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = uuid.uuid4().hex
    with store.session(write=True) as s:
        s.add(
            ApiToken(
                id=token_id,
                token_hash=hash_token(token),
                role=role_,
                subject=subject,
                created_at=datetime.now(timezone.utc),
                revoked_at=None,
            )
        )
        audit.append(s, event={"type": "token.created", "token_id": token_id, "role": role_.value, "subject": subject})
    return token


def authenticate(store: RegistryStore, token: str) -> Principal:
    """The principal of ``token``; raises :class:`AuthError` if it is malformed, unknown or revoked."""
    _check_shape(token)
    with store.session(write=False) as s:
        return authenticate_in(s, token)


def _check_shape(token: object) -> None:
    # Shape check first: garbage never reaches the database, and the message never echoes it.
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise AuthError("malformed API token")


_BY_HASH = select(ApiToken.id, ApiToken.token_hash, ApiToken.role, ApiToken.subject, ApiToken.revoked_at).where(
    ApiToken.token_hash == bindparam("digest")
)


def authenticate_in(session: Session, token: str) -> Principal:
    """:func:`authenticate` inside the caller's transaction (one query), so a request can
    authenticate and read what it needs in one round of database work."""
    _check_shape(token)
    digest = hash_token(token)
    row = session.connection().execute(_BY_HASH, {"digest": digest}).one_or_none()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise AuthError("unknown API token")
    if row.revoked_at is not None:
        raise AuthError(f"API token {row.id} was revoked")
    return Principal(token_id=row.id, role=Role(row.role), subject=row.subject)


def revoke(store: RegistryStore, *, token_id: str, actor: str) -> None:
    """Revoke a token for good (idempotent: revoking twice keeps the first time)."""
    with store.session(write=True) as s:
        row = s.get(ApiToken, token_id, with_for_update=True)
        if row is None:
            raise RegistryError(f"unknown token id {token_id!r}")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(timezone.utc)
            audit.append(s, event={"type": "token.revoked", "token_id": token_id, "actor": actor})


def list_tokens(store: RegistryStore) -> list[TokenInfo]:
    """All tokens, oldest first (no secrets: only ids, roles and subjects)."""
    with store.session(write=False) as s:
        rows = s.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)).all()
        return [TokenInfo(r.id, Role(r.role), r.subject, r.created_at, r.revoked_at) for r in rows]


__all__ = ["TOKEN_PREFIX", "Principal", "TokenInfo", "authenticate", "authenticate_in", "create_token", "hash_token", "list_tokens", "revoke"]
