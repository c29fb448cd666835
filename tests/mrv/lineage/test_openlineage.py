"""OpenLineage RunEvents (spec 2-0-2, checked by hand: no network for the schema) and emitters
against a real file and a real HTTP server on loopback."""

from __future__ import annotations

import base64
import json
import multiprocessing
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from mrv.artifacts import ArtifactRef, sha256_bytes
from mrv.errors import LineageError
from mrv.lineage import HttpEmitter, JsonLinesEmitter, LineageStore, build_run_event, code_version, make_emitter
from mrv.lineage.openlineage import (
    ARTIFACT_FACET_KEY,
    ARTIFACT_FACET_NAME,
    ARTIFACT_FACET_SCHEMA,
    DATASET_NAMESPACE,
    JOB_NAMESPACE,
    SCHEMA_URL,
    openlineage_run_id,
    step_job_name,
)


def ref(data: bytes, media_type: str = "application/octet-stream", name: str | None = None) -> ArtifactRef:
    return ArtifactRef(sha256_bytes(data), len(data), media_type, name)


RAW = ref(b"raw meter csv", "text/csv", "meter-1.csv")
OUT = ref(b"parquet bytes", "application/vnd.apache.parquet", "readings.parquet")
RUN_ID = uuid.uuid4().hex
STEP_ID = uuid.uuid4().hex

# --------------------------------------------------------------------------- spec checks (2-0-2)

EVENT_TYPES = {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return bool(parts.scheme) and bool(parts.netloc or parts.path)


def _is_uuid(value: object) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def check_base_facet(facet: object, where: str) -> None:
    # BaseFacet: required _producer and _schemaURL, both URIs.
    assert isinstance(facet, dict), where
    assert _is_uri(facet.get("_producer")), f"{where}: _producer"
    assert _is_uri(facet.get("_schemaURL")), f"{where}: _schemaURL"
    assert "#/$defs/" in facet["_schemaURL"] or facet["_schemaURL"].endswith(".json"), f"{where}: schema pointer"


def check_facets(facets: object, where: str) -> None:
    assert isinstance(facets, dict), where
    for key, facet in facets.items():
        check_base_facet(facet, f"{where}.{key}")
        # Non-standard facet keys must carry a project prefix: `{prefix}_{name}`.
        if key not in {"parent", "processing_engine", "errorMessage", "jobType"}:
            assert "_" in key and key.split("_", 1)[0], f"{where}.{key}: custom facet without prefix"


def check_dataset(ds: object, where: str) -> None:
    assert isinstance(ds, dict), where
    assert isinstance(ds.get("namespace"), str) and ds["namespace"], f"{where}.namespace"
    assert isinstance(ds.get("name"), str) and ds["name"], f"{where}.name"
    if "facets" in ds:
        check_facets(ds["facets"], f"{where}.facets")
        for facet in ds["facets"].values():
            if "_deleted" in facet:
                assert isinstance(facet["_deleted"], bool)


def check_run_event(event: Mapping[str, Any]) -> None:
    """Required structure of an OpenLineage 2-0-2 RunEvent."""
    # BaseEvent
    for key in ("eventTime", "producer", "schemaURL"):
        assert key in event, key
    when = datetime.fromisoformat(event["eventTime"])
    assert when.tzinfo is not None
    assert _is_uri(event["producer"]) and event["schemaURL"] == SCHEMA_URL
    # RunEvent
    assert "run" in event and "job" in event
    assert event.get("eventType", "OTHER") in EVENT_TYPES
    run = event["run"]
    assert _is_uuid(run.get("runId"))
    if "facets" in run:
        check_facets(run["facets"], "run.facets")
    job = event["job"]
    assert isinstance(job.get("namespace"), str) and isinstance(job.get("name"), str)
    if "facets" in job:
        check_facets(job["facets"], "job.facets")
    for key in ("inputs", "outputs"):
        assert isinstance(event.get(key, []), list)
        for i, ds in enumerate(event.get(key, [])):
            check_dataset(ds, f"{key}[{i}]")
    facets = run.get("facets", {})
    if "parent" in facets:  # ParentRunFacet: run.runId, job.namespace, job.name
        assert _is_uuid(facets["parent"]["run"]["runId"])
        assert facets["parent"]["job"]["namespace"] and facets["parent"]["job"]["name"]
    if "errorMessage" in facets:  # ErrorMessageRunFacet
        assert isinstance(facets["errorMessage"]["message"], str)
        assert isinstance(facets["errorMessage"]["programmingLanguage"], str)
    if "processing_engine" in facets:
        assert isinstance(facets["processing_engine"]["version"], str)
    if "jobType" in job.get("facets", {}):
        assert job["facets"]["jobType"]["processingType"] and job["facets"]["jobType"]["integration"]
    json.dumps(event, allow_nan=False)


def check_artifact_facet(facet: Mapping[str, Any]) -> None:
    # The facet's own fields against the schema we publish (its BaseFacet part is a remote $ref,
    # checked by check_base_facet instead).
    own = ARTIFACT_FACET_SCHEMA["$defs"][ARTIFACT_FACET_NAME]["allOf"][1]
    jsonschema.validate(dict(facet), own)
    check_base_facet(facet, ARTIFACT_FACET_KEY)


# --------------------------------------------------------------------------- events


def test_step_events_follow_the_spec() -> None:
    job = step_job_name("PRJ-1", "ingest_meter[M1]")
    common = {"run_id": STEP_ID, "parent_run_id": RUN_ID, "job_name": job}
    start = build_run_event(event_type="START", inputs=[("raw", RAW)], outputs=[], **common)
    done = build_run_event(event_type="COMPLETE", inputs={"raw": RAW}, outputs={"readings": OUT}, **common)
    for event in (start, done):
        check_run_event(event)
        assert event["run"]["runId"] == str(uuid.UUID(STEP_ID))
        assert event["job"] == {**event["job"], "namespace": JOB_NAMESPACE, "name": "PRJ-1.ingest_meter[M1]"}
        parent = event["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == str(uuid.UUID(RUN_ID))
        assert parent["job"] == {"namespace": JOB_NAMESPACE, "name": "PRJ-1"}
        assert event["run"]["facets"]["processing_engine"]["version"] == code_version().label
    assert (start["eventType"], done["eventType"]) == ("START", "COMPLETE")
    assert start["outputs"] == []
    (out,) = done["outputs"]
    assert out["namespace"] == DATASET_NAMESPACE and out["name"] == OUT.digest
    facet = out["facets"][ARTIFACT_FACET_KEY]
    check_artifact_facet(facet)
    assert facet == {
        **facet,
        "digest": OUT.digest,
        "size": OUT.size,
        "mediaType": "application/vnd.apache.parquet",
        "role": "readings",
        "roles": ["readings"],
        "originalName": "readings.parquet",
    }
    assert f"v{code_version().package_version}" in facet["_schemaURL"]  # versioned, not a branch


def test_fail_event_carries_a_redacted_error() -> None:
    event = build_run_event(
        event_type="FAIL",
        run_id=STEP_ID,
        job_name="PRJ-1.validate_readings",
        parent_run_id=RUN_ID,
        parent_job_name="PRJ-1",
        error_message="cannot reach postgresql://svc:hunter2@db/x",
        event_time=datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))),
    )
    check_run_event(event)
    assert event["eventType"] == "FAIL"
    assert event["eventTime"] == "2024-01-01T10:00:00+00:00"
    err = event["run"]["facets"]["errorMessage"]
    assert err["programmingLanguage"] == "PYTHON" and "hunter2" not in err["message"]


def test_pipeline_run_event_has_no_parent() -> None:
    event = build_run_event(event_type="START", run_id=RUN_ID, job_name="PRJ-1")
    check_run_event(event)
    assert "parent" not in event["run"]["facets"]
    assert event["job"]["facets"]["jobType"]["jobType"] == "JOB"


def test_same_bytes_in_two_roles_are_one_dataset() -> None:
    inputs = [("b", RAW), ("a", RAW), ("c", OUT)]
    event = build_run_event(event_type="COMPLETE", run_id=STEP_ID, job_name="p.s", inputs=inputs)
    check_run_event(event)
    names = [d["name"] for d in event["inputs"]]
    assert sorted(names) == sorted({RAW.digest, OUT.digest}) and len(names) == 2
    raw = next(d for d in event["inputs"] if d["name"] == RAW.digest)["facets"][ARTIFACT_FACET_KEY]
    check_artifact_facet(raw)
    assert raw["role"] == "a" and raw["roles"] == ["a", "b"]


def test_run_ids_become_uuids_deterministically() -> None:
    hex_id = uuid.uuid4().hex
    assert openlineage_run_id(hex_id) == str(uuid.UUID(hex_id))
    assert openlineage_run_id(str(uuid.UUID(hex_id))) == str(uuid.UUID(hex_id))
    derived = openlineage_run_id("2024-Q1.run-1")
    assert _is_uuid(derived) and uuid.UUID(derived).version == 5
    assert derived == openlineage_run_id("2024-Q1.run-1")
    assert derived != openlineage_run_id("2024-Q1.run-2")


def test_bad_event_inputs_are_refused() -> None:
    with pytest.raises(LineageError, match="eventType"):
        build_run_event(event_type="DONE", run_id=STEP_ID, job_name="p.s")  # type: ignore[arg-type]
    with pytest.raises(LineageError, match="timezone-aware"):
        build_run_event(event_type="START", run_id=STEP_ID, job_name="p.s", event_time=datetime(2024, 1, 1))
    with pytest.raises(LineageError, match="_producer"):
        build_run_event(event_type="START", run_id=STEP_ID, job_name="p.s", run_facets={"openDmrv_x": {"a": 1}})
    with pytest.raises(LineageError, match="empty"):
        build_run_event(event_type="START", run_id=STEP_ID, job_name="")


def test_events_from_a_recorded_run(tmp_path: Path) -> None:
    """What the store recorded converts to valid events: one START/COMPLETE pair per step."""
    store = LineageStore(f"sqlite:///{tmp_path / 'l.db'}")
    store.migrate()
    try:
        run_id = store.start_run(project_id="PRJ-1", methodology_id="m", parameters={})
        step = store.start_step(run_id, name="ingest", parameters={}, cache_key="k")
        store.record_artifact(step, RAW, role="raw", direction="input")
        store.record_artifact(step, OUT, role="readings", direction="output")
        store.finish_step(step, status="completed")
        rows = store.run_artifacts(run_id)
    finally:
        store.dispose()
    inputs = [(r.role, r.ref) for r in rows if r.direction == "input"]
    outputs = [(r.role, r.ref) for r in rows if r.direction == "output"]
    event = build_run_event(
        event_type="COMPLETE", run_id=step, parent_run_id=run_id, job_name="PRJ-1.ingest", inputs=inputs, outputs=outputs
    )
    check_run_event(event)
    assert [d["name"] for d in event["inputs"]] == [RAW.digest]
    assert [d["name"] for d in event["outputs"]] == [OUT.digest]


# --------------------------------------------------------------------------- JSON lines


def _event(i: int, *, pad: int = 0) -> dict[str, Any]:
    facet = {"_producer": "https://example.org/p", "_schemaURL": "https://example.org/s.json", "pad": "x" * pad, "i": i}
    facets = {"openDmrv_test": facet}
    return build_run_event(event_type="OTHER", run_id=uuid.uuid4().hex, job_name=f"p.s{i}", run_facets=facets)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def test_jsonl_emitter_appends_compact_lines(tmp_path: Path) -> None:
    path = tmp_path / "openlineage" / "events.jsonl"  # parent created on demand
    emitter = JsonLinesEmitter(path)
    events = [_event(i) for i in range(3)]
    for e in events:
        emitter.emit(e)
    JsonLinesEmitter(path).emit(events[0])  # a second emitter appends, never truncates
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [*events, events[0]]
    assert all(", " not in line[:200] and ": " not in line[:200] for line in lines)  # compact
    for e in _read_lines(path):
        check_run_event(e)


def test_jsonl_emitter_concurrent_threads(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    emitter = JsonLinesEmitter(path)
    threads, per_thread = 8, 25

    def work(t: int) -> None:
        for k in range(per_thread):
            emitter.emit(_event(t * 1000 + k, pad=70_000))  # larger than a pipe buffer/page

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    got = sorted(e["run"]["facets"]["openDmrv_test"]["i"] for e in _read_lines(path))
    assert got == sorted(t * 1000 + k for t in range(threads) for k in range(per_thread))


def _emit_from_process(path: str, base: int, n: int) -> None:
    emitter = JsonLinesEmitter(Path(path))
    for k in range(n):
        emitter.emit(_event(base + k, pad=100_000))


def test_jsonl_emitter_concurrent_processes(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    procs = [ctx.Process(target=_emit_from_process, args=(str(path), p * 1000, 10)) for p in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    got = sorted(e["run"]["facets"]["openDmrv_test"]["i"] for e in _read_lines(path))
    assert got == sorted(p * 1000 + k for p in range(4) for k in range(10))


def test_jsonl_emitter_errors_are_lineage_errors(tmp_path: Path) -> None:
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(LineageError, match="cannot append"):
        JsonLinesEmitter(tmp_path / "dir.jsonl").emit(_event(1))
    with pytest.raises(LineageError, match="JSON"):
        JsonLinesEmitter(tmp_path / "x.jsonl").emit({"bad": float("nan")})


# --------------------------------------------------------------------------- HTTP


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LineageServer:
    """A real HTTP server on loopback that records what it receives."""

    url: str
    received: list[Received] = field(default_factory=list)
    status: int = 201
    delay: float = 0.0
    location: str | None = None


@pytest.fixture
def server() -> Iterator[LineageServer]:
    state = LineageServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if state.delay:
                time.sleep(state.delay)
            self.send_response(state.status)
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            state.received.append(Received(self.path, {}, b"GET"))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_http_emitter_posts_events(server: LineageServer) -> None:
    emitter = HttpEmitter(f"{server.url}/api/v1/lineage", timeout=5)
    events = [_event(1), _event(2)]
    for e in events:
        emitter.emit(e)
    assert [r.path for r in server.received] == ["/api/v1/lineage"] * 2
    assert [json.loads(r.body) for r in server.received] == events
    assert server.received[0].headers["content-type"] == "application/json"
    assert "authorization" not in server.received[0].headers
    for r in server.received:
        check_run_event(json.loads(r.body))


def test_http_emitter_credentials_are_sent_but_never_shown(server: LineageServer) -> None:
    host = server.url.removeprefix("http://")
    emitter = HttpEmitter(f"http://ol-user:p%40ss-hunter2@{host}/api/v1/lineage?token=qs-secret", timeout=5)
    assert "hunter2" not in repr(emitter) and "qs-secret" not in repr(emitter)
    emitter.emit(_event(1))
    (got,) = server.received
    assert got.headers["authorization"] == "Basic " + base64.b64encode(b"ol-user:p@ss-hunter2").decode()
    assert got.path == "/api/v1/lineage?token=qs-secret"

    server.status = 500
    with pytest.raises(LineageError, match="HTTP 500") as exc:
        emitter.emit(_event(2))
    assert "hunter2" not in str(exc.value) and "qs-secret" not in str(exc.value)
    assert exc.value.__cause__ is None and exc.value.__suppress_context__

    bearer = HttpEmitter(f"{server.url}/api/v1/lineage", headers={"Authorization": "Bearer tok-123"})
    server.status = 200
    bearer.emit(_event(3))
    assert server.received[-1].headers["authorization"] == "Bearer tok-123"
    assert "tok-123" not in repr(bearer)


def test_http_emitter_does_not_follow_redirects(server: LineageServer) -> None:
    server.status = 307
    server.location = f"{server.url}/elsewhere"
    with pytest.raises(LineageError, match="HTTP 307"):
        HttpEmitter(f"http://u:pw@{server.url.removeprefix('http://')}/api/v1/lineage", timeout=5).emit(_event(1))
    assert [r.path for r in server.received] == ["/api/v1/lineage"]  # credentials went nowhere else


def test_http_emitter_timeout_and_unreachable(server: LineageServer) -> None:
    server.delay = 2.0
    with pytest.raises(LineageError, match="unreachable"):
        HttpEmitter(f"{server.url}/api/v1/lineage", timeout=0.3).emit(_event(1))
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(LineageError, match="unreachable"):
        HttpEmitter(f"http://127.0.0.1:{port}/api/v1/lineage", timeout=2).emit(_event(1))


def test_http_emitter_rejects_bad_urls() -> None:
    with pytest.raises(LineageError, match="http"):
        HttpEmitter("ftp://example.org/x")
    with pytest.raises(LineageError, match="timeout"):
        HttpEmitter("http://127.0.0.1/x", timeout=0)


def test_make_emitter(tmp_path: Path, server: LineageServer) -> None:
    path = tmp_path / "events.jsonl"
    assert isinstance(make_emitter(path=path, url=None), JsonLinesEmitter)
    http = make_emitter(path=path, url=f"{server.url}/api/v1/lineage")
    assert isinstance(http, HttpEmitter)
    http.emit(_event(1))
    assert len(server.received) == 1 and not path.exists()
