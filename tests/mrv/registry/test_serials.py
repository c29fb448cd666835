"""Serial allocation: blocks never overlap and are contiguous per vintage, also when 8 threads
(each with its own connection) allocate at once. Real SQLite and real PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from mrv.errors import SerialAllocationError
from mrv.registry.db import RegistryStore
from mrv.registry.models import SerialCounter
from mrv.registry.serials import allocate_block


@pytest.fixture
def store(lineage_url: str) -> Iterator[RegistryStore]:
    s = RegistryStore(lineage_url)
    s.migrate()
    yield s
    s.dispose()


def test_blocks_follow_each_other_and_format(store: RegistryStore) -> None:
    with store.session() as s:
        a = allocate_block(s, project_id="PRJ-1", vintage_year=2024, count=100)
        b = allocate_block(s, project_id="PRJ-2", vintage_year=2024, count=5)
        c = allocate_block(s, project_id="PRJ-1", vintage_year=2025, count=1)
    start, end = a
    assert (start, end) == ("ODMRV-PRJ-1-2024-1", "ODMRV-PRJ-1-2024-100")
    assert (b.first, b.last, b.count) == (101, 105, 5)  # numbering is per vintage, across projects
    assert (c.start, c.end) == ("ODMRV-PRJ-1-2025-1", "ODMRV-PRJ-1-2025-1")


def test_rollback_returns_the_numbers(store: RegistryStore) -> None:
    with pytest.raises(RuntimeError):
        with store.session() as s:
            allocate_block(s, project_id="PRJ-1", vintage_year=2024, count=10)
            raise RuntimeError("approval failed after allocation")
    with store.session() as s:
        assert allocate_block(s, project_id="PRJ-1", vintage_year=2024, count=1).first == 1


@pytest.mark.parametrize("kwargs", [
    {"count": 0}, {"count": -3}, {"count": True}, {"vintage_year": 1800}, {"project_id": "bad id"},
    {"registry_code": "lower"},
])
def test_invalid_arguments(store: RegistryStore, kwargs: dict) -> None:
    args = {"project_id": "PRJ-1", "vintage_year": 2024, "count": 1} | kwargs
    with pytest.raises(SerialAllocationError):
        with store.session() as s:
            allocate_block(s, **args)


def test_concurrent_allocations_never_overlap(store: RegistryStore) -> None:
    rng = random.Random(7)
    jobs = [(f"PRJ-{rng.randint(1, 4)}", rng.choice((2023, 2024)), rng.randint(1, 50)) for _ in range(8 * 25)]

    def work(chunk: list[tuple[str, int, int]]) -> list[tuple[int, int, int]]:
        out = []
        for project, vintage, count in chunk:
            with store.session() as s:  # one transaction, own pooled connection per thread
                block = allocate_block(s, project_id=project, vintage_year=vintage, count=count)
            assert block.count == count
            out.append((vintage, block.first, block.last))
        return out

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [r for part in pool.map(work, [jobs[i::8] for i in range(8)]) for r in part]

    assert len(results) == 200
    for vintage in (2023, 2024):
        blocks = sorted((f, l) for v, f, l in results if v == vintage)
        expected_next = 1
        for first, last in blocks:  # contiguous from 1, no gap, no overlap
            assert first == expected_next, f"vintage {vintage}: block {first}-{last} after {expected_next - 1}"
            expected_next = last + 1
        assert expected_next - 1 == sum(c for _, v, c in jobs if v == vintage)
        with store.session(write=False) as s:
            assert s.get(SerialCounter, ("ODMRV", vintage)).next_serial == expected_next
