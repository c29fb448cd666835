"""Intake-service benchmark: verified issuance requests per second, with p50/p99 latency, on
PostgreSQL with signature checks on, against baselines measured in the same run.

    .venv/bin/python bench/intake.py                      # 1000 requests, 8 connections, 2 workers
    .venv/bin/python bench/intake.py --requests 2000 --concurrency 32 --workers 1

What runs: the intake service in ``--workers`` uvicorn processes (app factory, loopback only), each
on its own ``SO_REUSEPORT`` socket so the kernel spreads connections over them (``--uvicorn-workers``
runs ``uvicorn --workers N`` instead), on a fresh PostgreSQL schema (dropped afterwards), and a load
generator in this process (a minimal asyncio HTTP/1.1 client, or ``--client httpx``; at most
``--concurrency`` connections, at most ``--requests`` requests and ``--max-seconds`` per phase).

CPU accounting: for each phase the CPU time of the server processes, of the PostgreSQL backends
serving them (found by ``application_name``) and of the load generator is divided by the requests
served. On a machine shared with other work, CPU per request is steadier than requests per second,
and it gives the ceiling: ``cores / CPU per request``. ``--py-spy DIR`` records every server
process during the verified phase (``py-spy record --gil``, collapsed stacks).

A *verified request* is ``POST /v1/requests`` of a distinct signed package (report and VVB
statement signatures verified, package digests and Merkle root checked, policy and double-issuance
checks): all twelve intake checks run and the request is stored as ``checks_passed``.

Packages: one tiny project (1 meter, 2 days of 15-minute data) is run through the real pipeline
and packaged once; that template is cached in ``bench/_data/intake/`` (git-ignored). Every run then
makes fresh developer and VVB keys (in memory only, never written) and derives N distinct
packages: project file with its own project id, meter serial and boundary point (1 degree apart),
a new manifest and Merkle root, the report re-signed by the developer, and the VVB statement added
with :func:`mrv.attest.attest`. The derivation is timed separately.

Baselines (same run, same machine): ``GET /v1/projects?limit=1`` with the same request count and
concurrency (the HTTP + auth-free + one-query floor), and ``run_intake_checks`` in-process per
package (the pure verification cost, one core). Also idempotent retries (the same key and body
re-sent: answered from the stored outcome).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DB_ENV = "MRV_BENCH_INTAKE_DB_URL"
LOOP_ENV, HTTP_ENV = "MRV_BENCH_INTAKE_LOOP", "MRV_BENCH_INTAKE_HTTP"
TEMPLATE_PROJECT = "BENCH-TPL"
METHODOLOGY = "CDM:ACM0002:22.0"


# --------------------------------------------------------------------------- server side


def server_app() -> Any:
    """uvicorn ``--factory`` entry point (each worker process calls it)."""
    from mrv.registry.service import create_app

    return create_app(db_url=os.environ[DB_ENV])


def serve_worker(port: int) -> None:
    """One server process on its own ``SO_REUSEPORT`` socket: the kernel spreads new connections
    over the workers. (``uvicorn --workers`` shares one listening socket, and an asyncio worker
    accepts every pending connection at once: a burst of connections, as from this load
    generator, all lands on one worker.)"""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    # loop/http "auto": uvloop and httptools when installed (they are dependencies), else asyncio/h11
    config = uvicorn.Config(server_app, factory=True, log_level="warning", access_log=False,
                            loop=os.environ.get(LOOP_ENV, "auto"), http=os.environ.get(HTTP_ENV, "auto"))
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT that stopped it, after a clean shutdown
        pass


# --------------------------------------------------------------------------- packages


def _template(cache: Path) -> bytes:
    """The tiny project's package (report signed by a throwaway key that is never stored)."""
    path = cache / "template.zip"
    if path.exists():
        return path.read_bytes()
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mrv import pipeline
    from mrv.report.build import build_report
    from mrv.settings import MRVSettings
    from mrv.signing import KeyRole, generate_key

    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mrv-bench-intake-") as tmp:
        proj = Path(tmp) / "project"
        proj.mkdir()
        n = 2 * 96
        ts = (np.datetime64("2023-03-01T00:00", "m") + np.arange(n).astype("timedelta64[m]") * 15).astype("datetime64[us]")
        kwh = np.clip(0.3 + np.random.default_rng(1).normal(0, 0.05, n), 0, 1) * 2000 * 0.25
        pq.write_table(pa.table({"timestamp": pa.array(ts, type=pa.timestamp("us", tz="UTC")), "value": pa.array(kwh.round(3))}),
                       proj / "m1.parquet")
        (proj / "project.yaml").write_text(f"""project: {{id: {TEMPLATE_PROJECT}, name: Intake benchmark template, type: wind}}
methodology: "{METHODOLOGY}"
boundary: {{country: IN, geometry: {{type: Point, coordinates: [77.5, 8.9]}}}}
monitoring_period: {{start: 2023-03-01, end: 2023-03-02, timezone: UTC}}
installed_capacity: {{value: 2, unit: MW}}
data_sources:
  meters:
    - {{id: M1, serial: SN-TPL-1, direction: export, accuracy_class: 0.5, files: "m1.parquet", interval_minutes: 15,
       calibrations: [{{valid_from: 2022-06-01, valid_to: 2024-06-01}}]}}
parameters:
  project_activity: {{value: greenfield}}
  EF_grid_CM_y: {{value: 0.7, unit: tCO2e/MWh, source: "benchmark value (not a published factor)"}}
""")
        settings = MRVSettings(home=Path(tmp) / "ws", contract_engine="native")
        summary = pipeline.run_local(settings, proj / "project.yaml")
        ws, store, lineage = pipeline.open_workspace(settings)
        out = build_report(workspace=ws, store=store, lineage=lineage, run_id=summary["run_id"],
                           key=generate_key(role=KeyRole.developer), out_dir=Path(tmp) / "r")
        data = out.package.path.read_bytes()
    tmp_path = path.with_suffix(".tmp")
    tmp_path.write_bytes(data)
    tmp_path.replace(path)
    return data


def derive_packages(template: bytes, *, count: int, dev: Any, vvb: Any, tag: str) -> list[tuple[str, bytes]]:
    """``count`` distinct signed packages ``(project_id, zip bytes)`` from the template."""
    import io

    from mrv.attest import Opinion, attest
    from mrv.package import PackageFile, PackagePlan, write_package
    from mrv.package.manifest import MANIFEST_PATH, PROJECT_FILE_PATH, Manifest, ManifestEntry
    from mrv.report.build import REPORT_NAME, REPORT_TYPE, plain_json
    from mrv.signing import issue_credential

    import hashlib

    with zipfile.ZipFile(io.BytesIO(template)) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    manifest = Manifest.from_bytes(members[MANIFEST_PATH])
    report = json.loads(members["signatures/report.json"])
    attachments = {p: b for p, b in members.items() if p.startswith("report/")}
    yaml_text = members[PROJECT_FILE_PATH].decode()
    out: list[tuple[str, bytes]] = []
    with tempfile.TemporaryDirectory(prefix="mrv-bench-intake-") as tmp:
        for i in range(count):
            pid = f"BENCH-{tag}-{i:05d}"
            lon, lat = -179.0 + (i % 350), -60.0 + (i // 350)  # 1 degree apart: no boundary overlaps
            text = yaml_text.replace(TEMPLATE_PROJECT, pid).replace("SN-TPL-1", f"SN-{tag}-{i:05d}")
            text = re.sub(r"coordinates: \[[^\]]*\]", f"coordinates: [{lon:.1f}, {lat:.1f}]", text)
            ybytes = text.encode()
            files = []
            for e in manifest.entries:
                data = ybytes if e.path == PROJECT_FILE_PATH else members[e.path]
                sha = "sha256:" + hashlib.sha256(data).hexdigest()
                files.append(PackageFile(e.path, e.role, e.media_type, sha, len(data), data))
            m = Manifest.create(run_id=manifest.run_id, project_id=pid, methodology_id=manifest.methodology_id,
                                code_version=manifest.code_version, git_commit=manifest.git_commit,
                                entries=[ManifestEntry(f.path, f.role, f.media_type, f.sha256, f.size) for f in files])
            mbytes = m.to_bytes()
            msha = "sha256:" + hashlib.sha256(mbytes).hexdigest()
            plan = PackagePlan(m, mbytes, msha, tuple(sorted(files, key=lambda f: f.path.encode())))
            subject = json.loads(json.dumps(report["credentialSubject"]))
            subject["project"]["id"] = pid
            subject["project"]["boundary"] = {"type": "Point", "coordinates": [lon, lat]}
            subject["package"] = plan.claim
            vc = issue_credential(subject=plain_json(subject), types=[REPORT_TYPE], issuer_key=dev,
                                  credential_id=f"urn:mrv:report:{msha.split(':', 1)[1]}")
            path = Path(tmp) / f"{i}.zip"
            write_package(plan, out=path, signed_documents={REPORT_NAME: vc}, attachments=attachments)
            attest(path, key=vvb, opinion=Opinion.positive, findings=[], replay=None, materiality=0.01)
            out.append((pid, path.read_bytes()))
            path.unlink()
    return out


# --------------------------------------------------------------------------- load


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


class _Response:
    """What the checks of a job look at (the httpx names)."""

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code, self.content = status_code, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class _RawConnection:
    """A minimal HTTP/1.1 keep-alive client connection (asyncio streams): the load generator
    shares the machine's cores with the server and PostgreSQL, so it should cost as little CPU as
    possible. Sends Content-Length bodies; reads Content-Length or chunked responses."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, *, params: Any = None, content: bytes | None = None,
                      headers: dict[str, str] | None = None) -> _Response:
        from urllib.parse import urlencode

        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        target = path + ("?" + urlencode(params, doseq=True) if params else "")
        body = content or b""
        head = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            parts = []
            while (size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)) > 0:
                parts.append(await self.reader.readexactly(size + 2))
            await self.reader.readuntil(b"\r\n")
            data = b"".join(x[:-2] for x in parts)
        else:
            data = await self.reader.readexactly(length)
        if close:
            await self.aclose()
        return _Response(status, data)

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


async def _load(url: str, jobs: list[dict[str, Any]], *, concurrency: int, max_seconds: float, client: str = "raw") -> dict[str, Any]:
    lat: list[float] = []
    statuses: dict[int, int] = {}
    bad: list[str] = []
    queue = iter(jobs)
    deadline = time.monotonic() + max_seconds
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)

    async def worker(send: Any) -> None:
        for job in queue:
            if time.monotonic() > deadline:
                return
            t0 = time.perf_counter()
            r = await send(job["method"], job["path"], params=job.get("params"), content=job.get("content"), headers=job.get("headers"))
            lat.append(time.perf_counter() - t0)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            check = job.get("expect")
            if check is not None and not check(r) and len(bad) < 5:
                bad.append(f"{r.status_code} {r.text[:300]}")

    t0 = time.perf_counter()
    if client == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as hc:
            await asyncio.gather(*(worker(hc.request) for _ in range(concurrency)))
    else:
        conns = [_RawConnection(host, int(port)) for _ in range(concurrency)]
        try:
            await asyncio.gather(*(worker(c.request) for c in conns))
        finally:
            for c in conns:
                await c.aclose()
    wall = time.perf_counter() - t0
    n = len(lat)
    return {"n": n, "wall": wall, "rps": n / wall if wall else 0.0, "p50": _pct(lat, 0.50) * 1e3, "p99": _pct(lat, 0.99) * 1e3,
            "mean": statistics.fmean(lat) * 1e3 if lat else float("nan"), "statuses": statuses, "bad": bad}


# --------------------------------------------------------------------------- CPU accounting

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> float:
    """utime + stime of a process in seconds (0 when it is gone)."""
    return sum(_proc_times(pid))


def _proc_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process in seconds ((0, 0) when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*") if Path(f"/proc/{p}/task").exists() else []:
            try:
                todo += [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


class _CpuMeter:
    """CPU seconds used by the server processes, the PostgreSQL backends serving them (found by
    their application_name) and this load generator, between two snapshots."""

    def __init__(self, *, server_pids: list[int], admin: Any, app_name: str) -> None:
        self.server_pids, self.admin, self.app_name = server_pids, admin, app_name

    def snapshot(self) -> dict[str, Any]:
        from sqlalchemy import text

        with self.admin.connect() as conn:
            backends = [r[0] for r in conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :a"), {"a": self.app_name})]
        t = os.times()
        server = {p: _proc_times(p) for root in self.server_pids for p in _descendants(root)}
        return {"server": {p: u + s for p, (u, s) in server.items()}, "server_sys": {p: s for p, (_, s) in server.items()},
                "postgres": {p: _proc_cpu(p) for p in backends}, "loadgen": t.user + t.system}

    @staticmethod
    def diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
        def d(key: str) -> float:
            return sum(v - a[key].get(p, 0.0) for p, v in b[key].items())

        return {"server": d("server"), "postgres": d("postgres"), "loadgen": b["loadgen"] - a["loadgen"], "server_sys": d("server_sys")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_py_spy(out: Path, server_pid: int) -> list[subprocess.Popen[bytes]]:
    """py-spy recorders attached to the server's worker processes (or the server itself with one worker)."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children")
    pids = [int(x) for x in children.read_text().split()] if children.exists() else []
    # uvicorn --workers N: a supervisor plus N spawned workers (the multiprocessing resource tracker is no worker)
    workers = [p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()] or [server_pid]
    out.mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen([exe, "record", "--pid", str(p), "--format", "raw", "--rate", "200", "--nonblocking", "--gil",
                              "-o", str(out / f"worker-{p}.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in workers]


def _submit_job(token: str, key: str, body: bytes, expect_status: int) -> dict[str, Any]:
    def ok(r: Any) -> bool:
        return r.status_code == expect_status and r.json().get("status") == "checks_passed"

    return {"method": "POST", "path": "/v1/requests", "params": {"quantity": 1}, "content": body,
            "headers": {"Authorization": f"Bearer {token}", "Idempotency-Key": key, "Content-Type": "application/zip"}, "expect": ok}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000, help="verified requests (= distinct packages) per phase")
    ap.add_argument("--concurrency", type=int, default=8,
                    help="concurrent connections of the load generator (8 keeps both cores busy; more connections only queue: "
                         "at 16 the throughput is the same and p99 roughly doubles)")
    ap.add_argument("--workers", type=int, default=2, help="server processes (uvicorn, one SO_REUSEPORT socket each)")
    ap.add_argument("--uvicorn-workers", action="store_true",
                    help="run `uvicorn --workers N` instead (one shared socket: connections opened together land on one worker)")
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw",
                    help="load generator: a minimal asyncio HTTP/1.1 client (default, least CPU) or httpx")
    ap.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                    help="server event loop (uvicorn --loop; auto: uvloop when installed)")
    ap.add_argument("--http", choices=("auto", "h11", "httptools"), default="auto",
                    help="server HTTP parser (uvicorn --http; auto: httptools when installed)")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="time cap per phase")
    ap.add_argument("--inproc", type=int, default=100, help="packages for the in-process run_intake_checks baseline")
    ap.add_argument("--db", default=os.environ.get("MRV_TEST_POSTGRES_URL", DEFAULT_PG), help="PostgreSQL admin URL")
    ap.add_argument("--data", type=Path, default=HERE / "_data" / "intake")
    ap.add_argument("--profile", type=Path, default=None, help="write a cProfile of the server (needs --workers 1) here")
    ap.add_argument("--py-spy", dest="py_spy", type=Path, default=None,
                    help="record every server worker with py-spy during the verified phase (collapsed stacks, DIR/worker-PID.txt); "
                         "py-spy must be installed (pip install py-spy: profiling only, not a dependency)")
    args = ap.parse_args(argv)

    import httpx
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from mrv.signing import KeyRole, generate_key

    t0 = time.perf_counter()
    template = _template(args.data)
    t_template = time.perf_counter() - t0
    dev, vvb = generate_key(role=KeyRole.developer), generate_key(role=KeyRole.vvb)  # in memory only
    tag = uuid.uuid4().hex[:6].upper()
    warm = 2 * args.concurrency
    total = args.requests + warm + args.inproc
    t0 = time.perf_counter()
    packages = derive_packages(template, count=total, dev=dev, vvb=vvb, tag=tag)
    t_derive = time.perf_counter() - t0
    size = statistics.fmean(len(b) for _, b in packages)
    print(f"template: {args.data / 'template.zip'} ({t_template:.1f}s)   packages: {total} derived and signed in {t_derive:.1f}s "
          f"({t_derive / total * 1e3:.1f} ms each, {size / 1024:.0f} KiB each)")

    # ---- in-process baseline: the verification work alone
    from mrv.registry.checks import IntakeRequest as CheckRequest, RegistryPolicy, run_intake_checks

    inproc = packages[args.requests + warm:]
    policy = RegistryPolicy(accredited_vvbs=frozenset({vvb.did}), project_developers={p: frozenset({dev.did}) for p, _ in inproc},
                            accepted_methodologies=frozenset({METHODOLOGY}))
    t_in = []
    for _, body in inproc:
        t1 = time.perf_counter()
        outcome = run_intake_checks(CheckRequest(requested_quantity=1, package=body), policy=policy, prior_requests=[], boundaries=[])
        t_in.append(time.perf_counter() - t1)
        assert outcome.passed, [str(c) for c in outcome.failures]
    inproc_ms = statistics.fmean(t_in) * 1e3

    # ---- fresh schema, real server
    admin = create_engine(args.db)
    schema = f"mrv_bench_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    app_name = f"mrv-bench-{schema}"
    db_url = make_url(args.db).update_query_dict({"options": f"-csearch_path={schema}", "application_name": app_name}) \
        .render_as_string(hide_password=False)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, DB_ENV: db_url, LOOP_ENV: args.loop, HTTP_ENV: args.http}
    if args.profile and args.workers != 1:
        ap.error("--profile needs --workers 1")
    profile = [sys.executable, "-m", "cProfile", "-o", str(args.profile)] if args.profile else [sys.executable]
    if args.uvicorn_workers:
        uv = ["-m", "uvicorn", "--factory", "intake:server_app", "--app-dir", str(HERE), "--loop", args.loop, "--http", args.http,
              "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(args.workers)]
        cmds = [[*profile, *uv]]
    else:
        cmds = [[*profile, str(HERE / "intake.py"), "--serve-worker", str(port)] for _ in range(args.workers)]
    servers = [subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True) for cmd in cmds]
    results: dict[str, dict[str, Any]] = {}
    cpu: dict[str, dict[str, float]] = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if any(x.poll() is not None for x in servers) or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.2)
        meter = _CpuMeter(server_pids=[x.pid for x in servers], admin=admin, app_name=app_name)

        def phase(name: str, jobs: list[dict[str, Any]], **kw: Any) -> None:
            before = meter.snapshot()
            results[name] = asyncio.run(_load(url, jobs, client=args.client, **kw))
            cpu[name] = _CpuMeter.diff(before, meter.snapshot())
        from mrv.registry.auth import create_token
        from mrv.registry.db import RegistryStore

        store = RegistryStore(db_url)
        officer = create_token(store, role="officer", subject="bench-officer")
        developer = create_token(store, role="developer", subject=dev.did)
        store.dispose()
        h = {"Authorization": f"Bearer {officer}"}
        with httpx.Client(base_url=url, timeout=60) as c:
            assert c.post("/v1/admin/vvbs", json={"did": vvb.did}, headers=h).status_code == 201
            assert c.post("/v1/admin/methodologies", json={"id": METHODOLOGY}, headers=h).status_code == 201
        policy_jobs = [{"method": "POST", "path": "/v1/admin/developers", "content": json.dumps({"project_id": p, "did": dev.did}).encode(),
                        "headers": {**h, "Content-Type": "application/json"}, "expect": lambda r: r.status_code == 201}
                       for p, _ in packages[: args.requests + warm]]
        r = asyncio.run(_load(url, policy_jobs, concurrency=8, max_seconds=600, client=args.client))
        assert not r["bad"], r["bad"]

        # warm-up (workers import lazily, pools fill): distinct packages, not counted
        warm_pk, bench_pk = packages[:warm], packages[warm: warm + args.requests]
        get_job = {"method": "GET", "path": "/v1/projects", "params": {"limit": 1}, "expect": lambda r: r.status_code == 200}
        asyncio.run(_load(url, [get_job] * warm, concurrency=args.concurrency, max_seconds=60, client=args.client))
        asyncio.run(_load(url, [_submit_job(developer, f"bench-warm-{i:06d}", b, 201) for i, (_, b) in enumerate(warm_pk)],
                          concurrency=args.concurrency, max_seconds=120, client=args.client))

        kw = {"concurrency": args.concurrency, "max_seconds": args.max_seconds}
        phase("GET /v1/projects?limit=1 (baseline)", [get_job] * args.requests, **kw)
        verified_jobs = [_submit_job(developer, f"bench-{i:06d}", b, 201) for i, (_, b) in enumerate(bench_pk)]
        spies = [spy for x in servers for spy in _start_py_spy(args.py_spy, x.pid)] if args.py_spy else []
        phase("POST /v1/requests verified", verified_jobs, **kw)
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(timeout=60)
        done = results["POST /v1/requests verified"]["n"]
        retry_jobs = [_submit_job(developer, f"bench-{i:06d}", b, 200) for i, (_, b) in enumerate(bench_pk[:done])]
        phase("POST /v1/requests idempotent retry", retry_jobs, **kw)
        with admin.connect() as conn:
            stored = conn.execute(text(f'SELECT status, count(*) FROM "{schema}".intake_requests GROUP BY status')).all()
    finally:
        for x in servers:
            os.killpg(x.pid, signal.SIGINT)
        for x in servers:
            try:
                x.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(x.pid, signal.SIGKILL)
                x.wait()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    layout = "uvicorn --workers (shared socket)" if args.uvicorn_workers else "uvicorn processes on SO_REUSEPORT sockets"
    layout += f" (loop {args.loop}, http {args.http})"
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"server: {args.workers} {layout}, PostgreSQL schema {schema} (dropped); load: {args.client} client, "
          f"{args.concurrency} connections, {os.cpu_count()} cores shared; load average {load[0]} {load[1]} {load[2]} at the end")
    print(f"{'phase':<38}{'n':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}   CPU ms/request: server  postgres  client  = total"
          f"  statuses")
    for name, r in results.items():
        c = {k: v / max(1, r["n"]) * 1e3 for k, v in cpu[name].items()}
        total = c["server"] + c["postgres"] + c["loadgen"]
        print(f"{name:<38}{r['n']:>6}{r['rps']:>9.1f}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['mean']:>9.1f}   "
              f"{'':>14}{c['server']:>6.2f}{c['postgres']:>10.2f}{c['loadgen']:>8.2f}{total:>9.2f}  {r['statuses']}")
        for b in r["bad"]:
            print(f"    unexpected: {b}")
    print(f"{'run_intake_checks in-process (1 core)':<38}{len(t_in):>6}{1e3 / inproc_ms:>9.1f}{_pct(t_in, .5) * 1e3:>9.1f}"
          f"{_pct(t_in, .99) * 1e3:>9.1f}{inproc_ms:>9.1f}")
    print(f"stored requests: {dict((str(s), n) for s, n in stored)}")
    v, g, rt = (results[k] for k in ("POST /v1/requests verified", "GET /v1/projects?limit=1 (baseline)", "POST /v1/requests idempotent retry"))
    print(f"ratios: verified/GET throughput {v['rps'] / g['rps']:.2f}x, p50 {v['p50'] / g['p50']:.1f}x;  "
          f"verified p50 / in-process checks {v['p50'] / inproc_ms:.1f}x;  "
          f"verified req/s / ({args.workers} x in-process rate) {v['rps'] / (args.workers * 1e3 / inproc_ms):.2f};  "
          f"retry/verified throughput {rt['rps'] / v['rps']:.2f}x")
    vc = cpu["POST /v1/requests verified"]
    per = (vc["server"] + vc["postgres"] + vc["loadgen"]) / max(1, v["n"])
    ncpu = os.cpu_count() or 1
    print(f"CPU per verified request: {per * 1e3:.2f} ms (server {vc['server'] / max(1, v['n']) * 1e3:.2f}, "
          f"of it in the kernel {vc['server_sys'] / max(1, v['n']) * 1e3:.2f}; "
          f"PostgreSQL {vc['postgres'] / max(1, v['n']) * 1e3:.2f}, load generator {vc['loadgen'] / max(1, v['n']) * 1e3:.2f}): "
          f"{ncpu} cores can do at most {ncpu / per:.0f} verified req/s of this whole set-up, "
          f"{ncpu / ((vc['server'] + vc['postgres']) / max(1, v['n'])):.0f} with the load generator elsewhere")
    met = v["rps"] >= 200 and v["p99"] < 100 and not v["bad"]
    print(f"target 200+ verified req/s with p99 < 100 ms: {'MET' if met else 'NOT MET'} "
          f"({v['rps']:.0f} req/s, p99 {v['p99']:.0f} ms)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-worker":
        serve_worker(int(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())
