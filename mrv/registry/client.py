"""Client side of issuance: post a verified package to a registry, reliably and exactly once.

The request is written to a local **outbox** (SQLite under the workspace) before anything is
sent, keyed by the package digest and the registry URL, with a fixed ``Idempotency-Key``. Sending
retries with exponential backoff on timeouts, connection errors and 5xx. Killing the process at
any point and running ``mrv submit`` again resends with the same key, so the registry returns the
original outcome instead of creating a second request. 4xx answers are final and shown with the
registry's reasons. The API token is never written to the outbox.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import httpx

from mrv.errors import RegistryError


class RegistryClientError(RegistryError):
    """The registry refused the request (4xx) or could not be reached after every retry."""

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class OutboxStatus(str, Enum):
    pending = "pending"  # written, not yet acknowledged by the registry
    sent = "sent"  # the registry answered 2xx; its response is stored
    refused = "refused"  # the registry answered 4xx; final until the user changes something


@dataclass(frozen=True)
class OutboxEntry:
    idempotency_key: str
    package_sha256: str
    package_path: str
    registry_url: str
    quantity: int
    labels: tuple[str, ...]
    status: OutboxStatus
    attempts: int
    last_error: str | None
    response: dict[str, Any] | None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    timeout_s: float = 60.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay_s, self.base_delay_s * (2**attempt))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    idempotency_key TEXT PRIMARY KEY,
    package_sha256 TEXT NOT NULL,
    package_path TEXT NOT NULL,
    registry_url TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    labels TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    response TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (package_sha256, registry_url)
)
"""


class Outbox:
    """A small SQLite outbox. Every write commits before the network is touched."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._conn() as c:
            c.execute(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # an acknowledged outbox write survives a crash
        return conn

    def _row(self, r: tuple) -> OutboxEntry:
        return OutboxEntry(
            r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5])), OutboxStatus(r[6]), r[7], r[8], json.loads(r[9]) if r[9] else None
        )

    _COLS = "idempotency_key, package_sha256, package_path, registry_url, quantity, labels, status, attempts, last_error, response"

    def find(self, *, package_sha256: str, registry_url: str) -> OutboxEntry | None:
        with self._conn() as c:
            r = c.execute(f"SELECT {self._COLS} FROM outbox WHERE package_sha256=? AND registry_url=?", (package_sha256, registry_url)).fetchone()
        return self._row(r) if r else None

    def get(self, key: str) -> OutboxEntry | None:
        with self._conn() as c:
            r = c.execute(f"SELECT {self._COLS} FROM outbox WHERE idempotency_key=?", (key,)).fetchone()
        return self._row(r) if r else None

    def all(self) -> list[OutboxEntry]:
        with self._conn() as c:
            rows = c.execute(f"SELECT {self._COLS} FROM outbox ORDER BY created_at").fetchall()
        return [self._row(r) for r in rows]

    def add(self, *, package_sha256: str, package_path: str, registry_url: str, quantity: int, labels: Sequence[str]) -> OutboxEntry:
        now = datetime.now(UTC).isoformat()
        key = f"mrv-{uuid.uuid4().hex}"
        with self._conn() as c:
            c.execute(
                "INSERT INTO outbox VALUES (?,?,?,?,?,?,?,0,NULL,NULL,?,?)",
                (key, package_sha256, package_path, registry_url, quantity, json.dumps(list(labels)), OutboxStatus.pending.value, now, now),
            )
        entry = self.get(key)
        assert entry is not None
        return entry

    def update(self, key: str, *, status: OutboxStatus, attempts: int, last_error: str | None, response: dict | None) -> None:
        with self._conn() as c:
            c.execute(
                "UPDATE outbox SET status=?, attempts=?, last_error=?, response=?, updated_at=? WHERE idempotency_key=?",
                (status.value, attempts, last_error, json.dumps(response) if response is not None else None, datetime.now(UTC).isoformat(), key),
            )


def package_facts(package: Path) -> tuple[str, int]:
    """(sha256 of the package file, verified issuable quantity from the signed report)."""
    data = Path(package).read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    try:
        with zipfile.ZipFile(package) as zf:
            report = json.loads(zf.read("signatures/report.json"))
        quantity = int(report["credentialSubject"]["issuable_tCO2e"])
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise RegistryClientError(f"{package}: not a signed verification package ({exc})") from None
    return digest, quantity


def _reasons(body: Any) -> str:
    if not isinstance(body, dict):
        return str(body)[:500]
    parts = [str(body.get("detail") or body.get("error") or "")]
    for c in body.get("checks") or []:
        if isinstance(c, dict) and not c.get("passed"):
            parts.append(f"{c.get('name')}: {c.get('reason')}")
    return "; ".join(p for p in parts if p)


def submit(
    package: Path,
    *,
    registry_url: str,
    token: str,
    outbox: Outbox,
    labels: Sequence[str] = (),
    quantity: int | None = None,
    retry: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    on_attempt: Callable[[int, str], None] | None = None,
) -> OutboxEntry:
    """Post ``package`` as an issuance request; safe to kill and re-run (see module docstring)."""
    package = Path(package)
    digest, issuable = package_facts(package)
    registry_url = registry_url.rstrip("/")
    entry = outbox.find(package_sha256=digest, registry_url=registry_url)
    if entry is None:
        entry = outbox.add(package_sha256=digest, package_path=str(package.resolve()), registry_url=registry_url,
                           quantity=quantity if quantity is not None else issuable, labels=labels)
    elif entry.status is OutboxStatus.sent:
        return entry  # already acknowledged: never send twice
    body = package.read_bytes()
    headers = {
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": entry.idempotency_key,
        "Content-Type": "application/zip",
    }
    params: list[tuple[str, str | int]] = [("quantity", entry.quantity), *[("label", lab) for lab in entry.labels]]
    last_error = "not sent"
    attempts = entry.attempts
    for attempt in range(retry.attempts):
        attempts += 1
        try:
            resp = httpx.post(f"{registry_url}/v1/requests", params=params, content=body, headers=headers, timeout=retry.timeout_s)
        except httpx.TransportError as exc:  # timeouts, refused connections, resets
            last_error = f"{type(exc).__name__}: {exc}"
        else:
            try:
                payload = resp.json()
            except ValueError:
                payload = {"detail": resp.text[:500]}
            if resp.status_code < 300:
                outbox.update(entry.idempotency_key, status=OutboxStatus.sent, attempts=attempts, last_error=None, response=payload)
                return outbox.get(entry.idempotency_key)  # type: ignore[return-value]
            if resp.status_code < 500:
                reason = _reasons(payload)
                outbox.update(entry.idempotency_key, status=OutboxStatus.refused, attempts=attempts, last_error=reason, response=payload)
                raise RegistryClientError(f"registry refused the request (HTTP {resp.status_code}): {reason}", status_code=resp.status_code, body=payload)
            last_error = f"HTTP {resp.status_code}: {_reasons(payload)}"
        outbox.update(entry.idempotency_key, status=OutboxStatus.pending, attempts=attempts, last_error=last_error, response=None)
        if on_attempt is not None:
            on_attempt(attempts, last_error)
        if attempt + 1 < retry.attempts:
            sleep(retry.delay(attempt))
    raise RegistryClientError(
        f"registry at {registry_url} not reached after {retry.attempts} attempts ({last_error}); the request stays in the "
        f"outbox as {entry.idempotency_key}: run the same command again to resume"
    )


def request_status(*, registry_url: str, token: str, request_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
    resp = httpx.get(f"{registry_url.rstrip('/')}/v1/requests/{request_id}", headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s)
    try:
        payload = resp.json()
    except ValueError:
        payload = {"detail": resp.text[:500]}
    if resp.status_code >= 400:
        raise RegistryClientError(f"HTTP {resp.status_code}: {_reasons(payload)}", status_code=resp.status_code, body=payload)
    return payload
