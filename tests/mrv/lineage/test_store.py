"""Lineage store against real databases: SQLite files and a fresh PostgreSQL schema per test."""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

import mrv
from mrv.artifacts import ArtifactRef, sha256_bytes
from mrv.errors import LineageError
from mrv.lineage import CachedStep, LineageStore, StepStatus, code_version
from mrv.lineage.codeversion import CodeVersion, git_state
from mrv.lineage.models import VERSION_TABLE, Artifact, Base, Step, StepIO
from mrv.lineage.store import REDACTED, alembic_config, head_revision


def ref(data: bytes, media_type: str = "application/octet-stream", name: str | None = None) -> ArtifactRef:
    return ArtifactRef(sha256_bytes(data), len(data), media_type, name)


RAW = ref(b"ts,kwh\n2024-01-01T00:00,1.5\n", "text/csv", "meter-1.csv")
READINGS = ref(b"PAR1 readings", "application/vnd.apache.parquet", "readings.parquet")
RESULT = ref(b'{"issuable_tCO2e": 12.5}\n', "application/json", "calculation.json")


@pytest.fixture
def store(lineage_url: str) -> Iterator[LineageStore]:
    s = LineageStore(lineage_url)
    s.migrate()
    yield s
    s.dispose()


def two_step_run(store: LineageStore, *, project_id: str = "PRJ-1") -> tuple[str, str, str]:
    run_id = store.start_run(
        project_id=project_id,
        methodology_id="CDM:ACM0002:22.0",
        parameters={"period": ["2024-01-01", "2024-02-01"]},
        project_file_digest=sha256_bytes(b"project"),
    )
    ingest = store.start_step(run_id, name="ingest_meter[M1]", parameters={"meter": "M1"}, cache_key="k-ingest")
    store.record_artifact(ingest, RAW, role="raw/M1/meter-1.csv", direction="input")
    store.record_artifact(ingest, READINGS, role="readings/M1", direction="output")
    store.finish_step(ingest, status="completed")
    calc = store.start_step(run_id, name="calculate", parameters={"methodology": "CDM:ACM0002:22.0"}, cache_key="k-calc")
    store.record_artifact(calc, READINGS, role="validated", direction="input")
    store.record_artifact(calc, RESULT, role="calculation", direction="output")
    store.finish_step(calc, status="completed")
    return run_id, ingest, calc


# --------------------------------------------------------------------------- schema


def test_migrate_creates_schema_and_is_idempotent(lineage_url: str) -> None:
    store = LineageStore(lineage_url)
    try:
        store.migrate()
        assert store.current_revision() == head_revision()
        run_id, _, _ = two_step_run(store)
        store.migrate()  # second time: nothing to do, nothing lost
        assert store.current_revision() == head_revision()
        assert store.get_run(run_id).project_id == "PRJ-1"
        tables = set(inspect(store.engine).get_table_names())
        assert {"runs", "steps", "artifacts", "step_io", VERSION_TABLE} <= tables
        assert "alembic_version" not in tables  # must not collide with Prefect's table
    finally:
        store.dispose()


def test_alembic_head_matches_orm_models(store: LineageStore) -> None:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"migrations and models disagree; add a migration: {diff}"


def test_downgrade_to_base_and_upgrade_again(store: LineageStore) -> None:
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "base")
    assert not {"runs", "steps", "artifacts", "step_io"} & set(inspect(store.engine).get_table_names())
    store.migrate()
    assert store.current_revision() == head_revision()


def test_unmigrated_store_refuses_to_work(lineage_url: str) -> None:
    store = LineageStore(lineage_url)
    try:
        with pytest.raises(LineageError, match=r"migrate\(\)"):
            store.start_run(project_id="p", methodology_id="m", parameters={})
    finally:
        store.dispose()


# --------------------------------------------------------------------------- lifecycle


def test_full_lifecycle(store: LineageStore) -> None:
    run_id, ingest, calc = two_step_run(store)
    running = store.get_run(run_id)
    assert running.status == "running" and running.ended_at is None

    store.finish_run(run_id, status="completed")
    info = store.get_run(run_id)
    cv = code_version()
    assert info.id == run_id and len(run_id) == 32
    assert info.status == "completed"
    assert info.project_id == "PRJ-1" and info.methodology_id == "CDM:ACM0002:22.0"
    assert info.parameters == {"period": ["2024-01-01", "2024-02-01"]}
    assert info.project_file_digest == sha256_bytes(b"project")
    assert (info.code_version, info.git_commit, info.git_dirty) == (cv.label, cv.git_commit, cv.dirty)
    assert info.started_at.tzinfo == timezone.utc and info.ended_at is not None
    assert info.ended_at.tzinfo == timezone.utc and info.ended_at >= info.started_at
    assert [s.id for s in info.steps] == [ingest, calc]
    for step in info.steps:
        assert step.status == StepStatus.COMPLETED
        assert step.code_version == cv.label
        assert step.started_at.tzinfo == timezone.utc and step.ended_at is not None and step.ended_at >= step.started_at
        assert step.error is None and step.reused_from_step_id is None
    assert info.steps[0].parameters == {"meter": "M1"}
    assert store.list_steps(run_id) == list(info.steps)
    json.dumps(info.to_dict())  # JSON-ready for the CLI


def test_failed_step_keeps_error_and_is_never_reused(store: LineageStore) -> None:
    run_id = store.start_run(project_id="p", methodology_id="m", parameters={})
    step = store.start_step(run_id, name="validate_readings", parameters={}, cache_key="k-val")
    store.record_artifact(step, RESULT, role="validation_result", direction="output")
    store.finish_step(step, status="failed", error="ContractBlocked: rule R1 failed (postgresql://bob:hunter2@db/x)")
    store.finish_run(run_id, status="failed")
    info = store.get_run(run_id)
    assert info.status == "failed"
    assert info.steps[0].status == "failed"
    assert info.steps[0].error == f"ContractBlocked: rule R1 failed (postgresql://bob:{REDACTED}@db/x)"
    assert store.find_cached_step(name="validate_readings", cache_key="k-val") is None


def test_run_artifacts_lists_every_artifact_of_the_run(store: LineageStore) -> None:
    run_id, ingest, _ = two_step_run(store)
    rows = store.run_artifacts(run_id)
    got = [(r.step_name, r.direction, r.role, r.digest) for r in rows]
    assert got == [
        ("ingest_meter[M1]", "input", "raw/M1/meter-1.csv", RAW.digest),
        ("ingest_meter[M1]", "output", "readings/M1", READINGS.digest),
        ("calculate", "input", "validated", READINGS.digest),
        ("calculate", "output", "calculation", RESULT.digest),
    ]
    first = rows[0]
    assert (first.size, first.media_type, first.original_name) == (RAW.size, "text/csv", "meter-1.csv")
    assert first.step_id == ingest and first.step_status == "completed"
    assert first.code_version == code_version().label
    assert first.step_parameters == {"meter": "M1"}
    assert rows[3].ref == RESULT
    json.dumps([r.to_dict() for r in rows])


def test_run_graph_is_json_with_derived_edges(store: LineageStore) -> None:
    run_id, ingest, calc = two_step_run(store)
    graph = json.loads(json.dumps(store.run_graph(run_id)))
    kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
    assert kinds == {
        f"step:{ingest}": "step",
        f"step:{calc}": "step",
        f"artifact:{RAW.digest}": "artifact",
        f"artifact:{READINGS.digest}": "artifact",
        f"artifact:{RESULT.digest}": "artifact",
    }
    derived = [e for e in graph["edges"] if e["kind"] == "derived"]
    assert derived == [{"source": f"step:{ingest}", "target": f"step:{calc}", "kind": "derived", "digest": READINGS.digest}]
    edges = graph["edges"]
    raw_in = {"source": f"artifact:{RAW.digest}", "target": f"step:{ingest}", "kind": "input", "role": "raw/M1/meter-1.csv"}
    assert raw_in in edges
    assert {"source": f"step:{calc}", "target": f"artifact:{RESULT.digest}", "kind": "output", "role": "calculation"} in edges
    assert graph["run"]["id"] == run_id


def test_list_runs_newest_first_filtered_and_limited(store: LineageStore) -> None:
    a = store.start_run(project_id="A", methodology_id="m", parameters={})
    b = store.start_run(project_id="B", methodology_id="m", parameters={})
    c = store.start_run(project_id="A", methodology_id="m", parameters={})
    assert [r.id for r in store.list_runs()] == [c, b, a]
    assert [r.id for r in store.list_runs(project_id="A")] == [c, a]
    assert [r.id for r in store.list_runs(limit=1)] == [c]
    assert store.list_runs(project_id="nobody") == []
    with pytest.raises(LineageError, match="limit"):
        store.list_runs(limit=0)


# --------------------------------------------------------------------------- caching / resume


def test_resume_after_crash_reuses_completed_steps_only(store: LineageStore, lineage_url: str) -> None:
    # First attempt: ingest completes, then the process dies in the middle of `calculate`.
    run1 = store.start_run(project_id="p", methodology_id="m", parameters={})
    ingest = store.start_step(run1, name="ingest", parameters={"meter": "M1"}, cache_key="k-ingest")
    store.record_artifact(ingest, RAW, role="raw", direction="input")
    store.record_artifact(ingest, READINGS, role="readings", direction="output")
    store.finish_step(ingest, status="completed")
    crashed = store.start_step(run1, name="calculate", parameters={}, cache_key="k-calc")
    store.record_artifact(crashed, READINGS, role="validated", direction="input")
    store.dispose()

    # A new process (new engine) resumes.
    resumed = LineageStore(lineage_url)
    try:
        assert resumed.find_cached_step(name="calculate", cache_key="k-calc") is None  # never finished
        assert resumed.find_cached_step(name="ingest", cache_key="other-key") is None
        assert resumed.find_cached_step(name="other-name", cache_key="k-ingest") is None
        cached = resumed.find_cached_step(name="ingest", cache_key="k-ingest")
        assert isinstance(cached, CachedStep)
        assert cached.step_id == ingest and cached.run_id == run1
        assert cached.outputs == {"readings": READINGS}
        assert cached.inputs == {"raw": RAW}
        assert cached.parameters == {"meter": "M1"}

        run2 = resumed.start_run(project_id="p", methodology_id="m", parameters={})
        reused = resumed.record_cached_step(run2, name="ingest", parameters={"meter": "M1"}, cache_key="k-ingest", reused=cached)
        step = resumed.get_run(run2).steps[0]
        assert step.id == reused and step.status == StepStatus.CACHED
        assert step.reused_from_step_id == ingest
        assert step.code_version == cached.code_version
        assert step.ended_at == step.started_at
        rows = resumed.run_artifacts(run2)
        assert [(r.direction, r.role, r.digest, r.step_status) for r in rows] == [
            ("input", "raw", RAW.digest, "cached"),
            ("output", "readings", READINGS.digest, "cached"),
        ]
        # The cached row never shadows the step that really computed the outputs.
        again = resumed.find_cached_step(name="ingest", cache_key="k-ingest")
        assert again is not None and again.step_id == ingest

        # A later real recomputation becomes the newest completed match.
        newer = resumed.start_step(run2, name="ingest", parameters={"meter": "M1"}, cache_key="k-ingest")
        resumed.record_artifact(newer, READINGS, role="readings", direction="output")
        resumed.finish_step(newer, status="completed")
        latest = resumed.find_cached_step(name="ingest", cache_key="k-ingest")
        assert latest is not None and latest.step_id == newer and latest.inputs == {}
    finally:
        resumed.dispose()


def test_record_cached_step_checks_what_it_reuses(store: LineageStore) -> None:
    run_id, _, _ = two_step_run(store)
    cached = store.find_cached_step(name="ingest_meter[M1]", cache_key="k-ingest")
    assert cached is not None
    with pytest.raises(LineageError, match="cannot stand in"):
        store.record_cached_step(run_id, name="calculate", parameters={}, cache_key="k-ingest", reused=cached)
    with pytest.raises(LineageError, match="cannot stand in"):
        store.record_cached_step(run_id, name="ingest_meter[M1]", parameters={}, cache_key="k-other", reused=cached)
    ghost = CachedStep(
        step_id="0" * 32, run_id=run_id, name="x", cache_key="k", code_version="0", parameters={},
        ended_at=cached.ended_at, inputs={}, outputs={},
    )
    with pytest.raises(LineageError, match="missing"):
        store.record_cached_step(run_id, name="x", parameters={}, cache_key="k", reused=ghost)


# --------------------------------------------------------------------------- errors and rules


def test_unknown_ids_give_clear_errors(store: LineageStore) -> None:
    msg = r"unknown run id 'no-such-run'"
    with pytest.raises(LineageError, match=msg):
        store.get_run("no-such-run")
    with pytest.raises(LineageError, match=msg):
        store.finish_run("no-such-run", status="completed")
    with pytest.raises(LineageError, match=msg):
        store.start_step("no-such-run", name="s", parameters={}, cache_key="k")
    with pytest.raises(LineageError, match=msg):
        store.run_artifacts("no-such-run")
    with pytest.raises(LineageError, match=msg):
        store.run_graph("no-such-run")
    with pytest.raises(LineageError, match=msg):
        store.list_steps("no-such-run")
    two_step_run(store)
    cached = store.find_cached_step(name="calculate", cache_key="k-calc")
    assert cached is not None
    with pytest.raises(LineageError, match=msg):
        store.record_cached_step("no-such-run", name="calculate", parameters={}, cache_key="k-calc", reused=cached)
    with pytest.raises(LineageError, match=r"unknown step id 'no-such-step'"):
        store.finish_step("no-such-step", status="completed")
    with pytest.raises(LineageError, match=r"unknown step id 'no-such-step'"):
        store.record_artifact("no-such-step", RAW, role="raw", direction="input")


def test_step_and_artifact_rules(store: LineageStore) -> None:
    run_id = store.start_run(project_id="p", methodology_id="m", parameters={})
    step = store.start_step(run_id, name="s", parameters={}, cache_key="k")
    store.record_artifact(step, RAW, role="raw", direction="input")
    store.record_artifact(step, RAW, role="raw", direction="input")  # idempotent
    store.record_artifact(step, RAW, role="also-raw", direction="input")  # same bytes, second role
    with pytest.raises(LineageError, match="already has input 'raw'"):
        store.record_artifact(step, READINGS, role="raw", direction="input")
    with pytest.raises(LineageError, match="different bytes"):
        store.record_artifact(step, ArtifactRef(RAW.digest, RAW.size + 1, "text/csv"), role="x", direction="input")
    with pytest.raises(LineageError, match="invalid artifact digest"):
        store.record_artifact(step, ArtifactRef("md5:abc", 1, "text/plain"), role="x", direction="input")
    with pytest.raises(LineageError, match="direction"):
        store.record_artifact(step, RAW, role="x", direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(LineageError, match="'completed' or 'failed'"):
        store.finish_step(step, status="cached")  # type: ignore[arg-type]
    store.finish_step(step, status="completed")
    with pytest.raises(LineageError, match="already completed"):
        store.finish_step(step, status="failed")
    with pytest.raises(LineageError, match="can no longer change"):
        store.record_artifact(step, READINGS, role="late", direction="output")
    with pytest.raises(LineageError, match="'completed' or 'failed'"):
        store.finish_run(run_id, status="running")  # type: ignore[arg-type]

    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Artifact)) == 1
        roles = conn.scalars(select(StepIO.role).where(StepIO.step_id == step).order_by(StepIO.role)).all()
    assert roles == ["also-raw", "raw"]


def test_run_ids_explicit_and_unique(store: LineageStore) -> None:
    assert store.start_run(project_id="p", methodology_id="m", parameters={}, run_id="2024-Q1.run-1") == "2024-Q1.run-1"
    with pytest.raises(LineageError, match="already exists"):
        store.start_run(project_id="p", methodology_id="m", parameters={}, run_id="2024-Q1.run-1")
    with pytest.raises(LineageError, match="invalid run id"):
        store.start_run(project_id="p", methodology_id="m", parameters={}, run_id="has space")
    with pytest.raises(LineageError, match="digest"):
        store.start_run(project_id="p", methodology_id="m", parameters={}, project_file_digest="nope")


def test_parameters_are_json_and_secrets_are_redacted(store: LineageStore) -> None:
    run_id = store.start_run(
        project_id="p",
        methodology_id="m",
        parameters={
            "period": ["2024-01-01"],
            "file": Path("/data/project.yaml"),
            "db": {"url": "postgresql://svc:s3cret@db:5432/x", "password": "s3cret", "api_key": "abc"},
            "Authorization": "Bearer xyz",
        },
    )
    params = store.get_run(run_id).parameters
    assert params == {
        "period": ["2024-01-01"],
        "file": "/data/project.yaml",
        "db": {"url": f"postgresql://svc:{REDACTED}@db:5432/x", "password": REDACTED, "api_key": REDACTED},
        "Authorization": REDACTED,
    }
    assert "s3cret" not in json.dumps(store.run_graph(run_id))
    with pytest.raises(LineageError, match="JSON"):
        store.start_run(project_id="p", methodology_id="m", parameters={"x": float("nan")})
    with pytest.raises(LineageError, match="JSON"):
        store.start_run(project_id="p", methodology_id="m", parameters={"x": object()})


def test_concurrent_writers(lineage_url: str, store: LineageStore) -> None:
    """Several writers (own engines, like worker processes) share one run and one input artifact."""
    run_id = store.start_run(project_id="p", methodology_id="m", parameters={})
    n = 8
    barrier = threading.Barrier(n)

    def worker(i: int) -> str:
        s = LineageStore(lineage_url)
        try:
            barrier.wait()
            step = s.start_step(run_id, name=f"ingest_meter[M{i}]", parameters={"i": i}, cache_key=f"k{i}")
            s.record_artifact(step, RAW, role="raw", direction="input")  # every worker upserts the same row
            s.record_artifact(step, ref(f"out-{i}".encode()), role="readings", direction="output")
            s.finish_step(step, status="completed")
            return step
        finally:
            s.dispose()

    with ThreadPoolExecutor(max_workers=n) as pool:
        steps = list(pool.map(worker, range(n)))
    assert len(set(steps)) == n
    info = store.get_run(run_id)
    assert sorted(s.id for s in info.steps) == sorted(steps)
    assert all(s.status == "completed" for s in info.steps)
    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Artifact)) == n + 1
        assert conn.scalar(select(func.count()).select_from(StepIO)) == 2 * n
        assert conn.scalar(select(func.count()).select_from(Step)) == n


def test_concurrent_migrate(lineage_url: str) -> None:
    n = 4
    barrier = threading.Barrier(n)

    def migrate(_: int) -> str | None:
        s = LineageStore(lineage_url)
        try:
            barrier.wait()
            s.migrate()
            return s.current_revision()
        finally:
            s.dispose()

    with ThreadPoolExecutor(max_workers=n) as pool:
        assert set(pool.map(migrate, range(n))) == {head_revision()}


# --------------------------------------------------------------------------- plumbing


def test_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    store = LineageStore(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        store.migrate()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.dispose()


def test_sqlite_missing_directory_is_a_lineage_error(tmp_path: Path) -> None:
    with pytest.raises(LineageError, match="does not exist"):
        LineageStore(f"sqlite:///{tmp_path / 'absent' / 'l.db'}").migrate()


def test_bad_urls_never_echo_passwords() -> None:
    with pytest.raises(LineageError, match="unsupported") as exc:
        LineageStore("mysql://root:topsecret@localhost/x")
    assert "topsecret" not in str(exc.value)
    with pytest.raises(LineageError) as exc:
        LineageStore("::not a url:topsecret")
    assert "topsecret" not in str(exc.value)
    store = LineageStore("postgresql+psycopg://u:topsecret@127.0.0.1:1/x?connect_timeout=2")
    assert "topsecret" not in repr(store)
    with pytest.raises(LineageError) as exc:
        store.migrate()  # nothing listens on port 1
    assert "topsecret" not in str(exc.value)


def test_store_pickles_as_its_url(store: LineageStore) -> None:
    run_id, _, _ = two_step_run(store)
    clone = pickle.loads(pickle.dumps(store))
    try:
        assert clone.get_run(run_id).id == run_id
    finally:
        clone.dispose()


def test_pg_schema_isolation(lineage_url: str, store: LineageStore) -> None:
    """The fixture's database is fresh: nothing from other tests leaks in."""
    assert store.list_runs() == []
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            assert conn.execute(text("select current_schema()")).scalar().startswith("mrv_test_")


# --------------------------------------------------------------------------- code version


def test_code_version_of_this_checkout() -> None:
    cv = code_version()
    assert cv is code_version()  # cached
    assert cv.package_version == mrv.__version__
    commit, dirty = git_state(Path(mrv.__file__).resolve().parent)
    assert (cv.git_commit, cv.dirty) == (commit, dirty)
    if commit is not None:
        assert len(commit) in (40, 64) and isinstance(dirty, bool)
        assert cv.label.startswith(f"{mrv.__version__}+g{commit[:12]}")


def test_git_state_outside_git_and_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "__init__.py").write_text("")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_state(tmp_path) == (None, None)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no git executable at all
    assert git_state(Path(mrv.__file__).resolve().parent) == (None, None)


def test_code_version_labels() -> None:
    assert CodeVersion("0.1.0", None, None).label == "0.1.0"
    assert CodeVersion("0.1.0", "a" * 40, False).label == "0.1.0+gaaaaaaaaaaaa"
    assert CodeVersion("0.1.0", "a" * 40, True).label == "0.1.0+gaaaaaaaaaaaa.dirty"


def test_database_from_newer_code_is_refused(store: LineageStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    fresh = LineageStore(store.url)
    try:
        with pytest.raises(LineageError, match="revision 9999"):
            fresh.get_run("x")
        with pytest.raises(LineageError, match="newer open-dmrv"):
            fresh.migrate()
    finally:
        fresh.dispose()


# --------------------------------------------------------------------------- batched links


def test_step_links_recorded_with_start_and_finish_in_one_transaction(store: LineageStore) -> None:
    run_id = store.start_run(project_id="PRJ-B", methodology_id="CDM:ACM0002:22.0", parameters={},
                             project_file_digest=sha256_bytes(b"project"))
    step = store.start_step(run_id, name="ingest_meter[M1]", parameters={}, cache_key="k-b", inputs=[(RAW, "raw/M1/meter-1.csv")])
    store.finish_step(step, status="completed", outputs=[(READINGS, "readings/M1")])
    links = {(r.direction, r.role, r.digest) for r in store.run_artifacts(run_id)}
    assert links == {("input", "raw/M1/meter-1.csv", RAW.digest), ("output", "readings/M1", READINGS.digest)}
    cached = store.find_cached_step(name="ingest_meter[M1]", cache_key="k-b")
    assert cached is not None and cached.outputs == {"readings/M1": READINGS}


def test_record_artifacts_is_all_or_nothing(store: LineageStore) -> None:
    run_id = store.start_run(project_id="PRJ-B", methodology_id="CDM:ACM0002:22.0", parameters={},
                             project_file_digest=sha256_bytes(b"project"))
    step = store.start_step(run_id, name="validate", parameters={}, cache_key="k-v")
    store.record_artifact(step, READINGS, role="validated", direction="output")
    # The second item claims the same output role for other bytes: the whole batch is refused.
    with pytest.raises(LineageError, match="already has output 'validated'"):
        store.record_artifacts(step, [(RESULT, "calculation", "output"), (RAW, "validated", "output")])
    roles = {r.role for r in store.run_artifacts(run_id)}
    assert roles == {"validated"}, "nothing of the refused batch is linked"
    # A failing step keeps its evidence, linked as it closes.
    store.finish_step(step, status="failed", error="blocked", outputs=[(RESULT, "validation_result")])
    assert {r.role for r in store.run_artifacts(run_id)} == {"validated", "validation_result"}
    with pytest.raises(LineageError, match="already failed"):
        store.finish_step(step, status="completed", outputs=[(RAW, "late")])
