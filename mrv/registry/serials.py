"""Unit serial numbers: blocks allocated inside the caller's transaction, never overlapping.

Serials are numbered per (registry code, vintage year) from 1 upwards, across all projects of the
registry, so two blocks of the same vintage can never share a number even if their projects
differ. A block is written the way CADT carries it, as ``unitBlockStart``/``unitBlockEnd``
strings: ``<REGISTRY>-<PROJECT>-<VINTAGE>-<n>`` (e.g. ``ODMRV-PRJ-1-2024-101``).

Concurrency: the next free number lives in one ``serial_counters`` row per (registry, vintage).
On PostgreSQL the row is read with ``SELECT ... FOR UPDATE``: a concurrent approval of the same
vintage waits until this transaction commits or rolls back, then reads the moved counter. A
rollback returns the numbers (no gaps from failed approvals). On SQLite the session must be a
write session (``RegistryStore.session(write=True)``, ``BEGIN IMMEDIATE``): the database write lock
serialises allocators. Under PostgreSQL SERIALIZABLE isolation a loser gets a serialization
failure instead of waiting; the caller retries the whole transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mrv.errors import SerialAllocationError
from mrv.registry.models import SerialCounter

DEFAULT_REGISTRY_CODE = "ODMRV"
MAX_BLOCK = 1_000_000_000  # one request never issues more units than this
_CODE = re.compile(r"^[A-Z0-9]{2,32}$")
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True, slots=True)
class SerialBlock:
    """An allocated block. Unpacks as ``start, end`` (the CADT unitBlockStart/unitBlockEnd)."""

    start: str
    end: str
    registry_code: str
    project_id: str
    vintage_year: int
    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def __iter__(self) -> Iterator[str]:
        yield self.start
        yield self.end


def serial_string(*, registry_code: str, project_id: str, vintage_year: int, n: int) -> str:
    return f"{registry_code}-{project_id}-{vintage_year}-{n}"


def allocate_block(
    session: Session,
    *,
    project_id: str,
    vintage_year: int,
    count: int,
    registry_code: str = DEFAULT_REGISTRY_CODE,
) -> SerialBlock:
    """Reserve ``count`` consecutive serials of ``vintage_year`` for ``project_id``.

    Runs in ``session``'s transaction: the numbers are only taken if that transaction commits,
    so write the units in the same transaction.
    """
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_BLOCK:
        raise SerialAllocationError(f"unit count must be an integer between 1 and {MAX_BLOCK}, not {count!r}")
    if not isinstance(vintage_year, int) or isinstance(vintage_year, bool) or not 1900 <= vintage_year <= 3000:
        raise SerialAllocationError(f"vintage year must be an integer between 1900 and 3000, not {vintage_year!r}")
    if not isinstance(project_id, str) or not _PROJECT.match(project_id):
        raise SerialAllocationError(f"project id {project_id!r} cannot go into a serial: expected [A-Za-z0-9._-]")
    if not isinstance(registry_code, str) or not _CODE.match(registry_code):
        raise SerialAllocationError(f"registry code {registry_code!r}: expected 2-32 characters of [A-Z0-9]")

    dialect = session.get_bind().dialect.name
    key = (SerialCounter.registry_code == registry_code) & (SerialCounter.vintage_year == vintage_year)
    # First allocation of a vintage creates its counter; racing creators all end up at one row.
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(SerialCounter)
        .values(registry_code=registry_code, vintage_year=vintage_year, next_serial=1)
        .on_conflict_do_nothing(index_elements=["registry_code", "vintage_year"])
    )
    # The row lock (PostgreSQL) is held until the caller's transaction ends.
    first = session.execute(select(SerialCounter.next_serial).where(key).with_for_update()).scalar_one()
    last = first + count - 1
    session.execute(
        update(SerialCounter).where(key).values(next_serial=last + 1).execution_options(synchronize_session=False)
    )
    return SerialBlock(
        start=serial_string(registry_code=registry_code, project_id=project_id, vintage_year=vintage_year, n=first),
        end=serial_string(registry_code=registry_code, project_id=project_id, vintage_year=vintage_year, n=last),
        registry_code=registry_code,
        project_id=project_id,
        vintage_year=vintage_year,
        first=first,
        last=last,
    )


__all__ = ["DEFAULT_REGISTRY_CODE", "SerialBlock", "allocate_block", "serial_string"]
