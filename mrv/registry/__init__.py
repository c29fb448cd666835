"""Registry-side data layer: CAD Trust records, intake requests, serial numbers, tokens and the
hash-chained audit log, on SQLite or PostgreSQL (Alembic-migrated).

The intake service (FastAPI) and the intake checks are built on top of this package.
"""

from __future__ import annotations

from mrv.registry.audit import AuditEntry, AuditVerification, append, verify_chain
from mrv.registry.auth import Principal, authenticate, create_token, revoke
from mrv.registry.db import RegistryStore, head_revision
from mrv.registry.lifecycle import ALLOWED, can_transition, create_request, transition
from mrv.registry.models import RequestStatus, Role
from mrv.registry.serials import SerialBlock, allocate_block

__all__ = [
    "ALLOWED",
    "AuditEntry",
    "AuditVerification",
    "Principal",
    "RegistryStore",
    "RequestStatus",
    "Role",
    "SerialBlock",
    "allocate_block",
    "append",
    "authenticate",
    "can_transition",
    "create_request",
    "create_token",
    "head_revision",
    "revoke",
    "transition",
    "verify_chain",
]
