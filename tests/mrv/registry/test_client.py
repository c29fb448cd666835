"""The submission client against the real intake service on loopback.

Faults (5xx, a connection that dies after the registry accepted the request) are injected by a
small real HTTP proxy on loopback between the client and the real service; nothing is mocked.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from mrv.registry.client import Outbox, OutboxStatus, RegistryClientError, request_status, submit

pytestmark = pytest.mark.integration

_spec = importlib.util.spec_from_file_location("_svc_helpers_client", Path(__file__).with_name("test_service.py"))
svc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(svc)  # type: ignore[union-attr]
chain = svc.chain  # module-scoped real signed package + VVB statement


class FaultProxy:
    """Forwards to ``target``; ``mode``: pass | fail503 (first ``n`` POSTs) | hang (forward, never answer)."""

    def __init__(self, target: str) -> None:
        self.target, self.mode, self.n, self.posts = target, "pass", 0, 0
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if method == "POST":
                    proxy.posts += 1
                    if proxy.mode == "fail503" and proxy.posts <= proxy.n:
                        self.send_response(503)
                        self.send_header("Content-Type", "application/json")
                        self.end_headers()
                        self.wfile.write(b'{"error":"unavailable","detail":"injected 503"}')
                        return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                resp = httpx.request(method, proxy.target + self.path, content=body, headers=headers, timeout=120)
                if method == "POST" and proxy.mode == "hang":
                    proxy.release.wait(120)  # the registry has the request; the client never hears back
                    return
                self.send_response(resp.status_code)
                self.send_header("Content-Type", resp.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            def do_POST(self) -> None:
                self._forward("POST")

            def do_GET(self) -> None:
                self._forward("GET")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()


@pytest.fixture
def registry(tmp_path, chain):
    with svc.LiveServer(f"sqlite:///{tmp_path / 'registry.db'}") as server:
        officer = server.token("officer", "officer-ana")
        with httpx.Client(base_url=server.url, timeout=120) as client:
            svc.setup_policy(client, officer, vvb=chain["vvb"].did, developer=chain["dev"].did)
        pkg = tmp_path / "package.zip"
        pkg.write_bytes(chain["package"])
        yield {"server": server, "package": pkg, "token": server.token("developer", chain["dev"].did), "officer": officer}


def _requests(server) -> int:
    with server.store.engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM intake_requests")).scalar_one()


def test_submit_status_and_rerun_never_double_submits(registry, tmp_path):
    outbox = Outbox(tmp_path / "outbox.db")
    entry = submit(registry["package"], registry_url=registry["server"].url, token=registry["token"], outbox=outbox)
    assert entry.status is OutboxStatus.sent and entry.response["status"] == "checks_passed"
    again = submit(registry["package"], registry_url=registry["server"].url, token=registry["token"], outbox=outbox)
    assert again.idempotency_key == entry.idempotency_key
    assert _requests(registry["server"]) == 1
    status = request_status(registry_url=registry["server"].url, token=registry["token"], request_id=entry.response["id"])
    assert status["status"] == "checks_passed"
    assert registry["token"] not in (tmp_path / "outbox.db").read_bytes().decode("latin-1")


def test_retries_through_5xx_with_backoff(registry, tmp_path):
    proxy = FaultProxy(registry["server"].url)
    proxy.mode, proxy.n = "fail503", 2
    delays: list[float] = []
    try:
        entry = submit(registry["package"], registry_url=proxy.url, token=registry["token"], outbox=Outbox(tmp_path / "o.db"), sleep=delays.append)
    finally:
        proxy.close()
    assert entry.status is OutboxStatus.sent and entry.attempts == 3
    assert delays == [0.5, 1.0]
    assert _requests(registry["server"]) == 1


def test_4xx_is_final_and_shows_the_registrys_reason(registry, tmp_path):
    outbox = Outbox(tmp_path / "o.db")
    public = registry["server"].token("public", "someone")
    with pytest.raises(RegistryClientError) as info:
        submit(registry["package"], registry_url=registry["server"].url, token=public, outbox=outbox)
    assert info.value.status_code == 403 and "HTTP 403" in str(info.value)
    assert outbox.all()[0].status is OutboxStatus.refused
    assert _requests(registry["server"]) == 0


def test_unreachable_registry_keeps_the_request_in_the_outbox(registry, tmp_path):
    outbox = Outbox(tmp_path / "o.db")
    with pytest.raises(RegistryClientError, match="outbox"):
        submit(registry["package"], registry_url="http://127.0.0.1:9", token=registry["token"], outbox=outbox, sleep=lambda s: None)
    (entry,) = outbox.all()
    assert entry.status is OutboxStatus.pending and entry.attempts == 6


def test_killed_after_the_registry_accepted_then_rerun_gets_the_original(registry, tmp_path):
    """Kill `mrv submit` while the registry has the request but the answer never arrived; the
    re-run resends with the same Idempotency-Key and gets the original outcome: one request."""
    proxy = FaultProxy(registry["server"].url)
    proxy.mode = "hang"
    home = tmp_path / "ws"
    env = {**os.environ, "MRV_REGISTRY_TOKEN": registry["token"], "MRV_HOME": str(home)}
    cmd = [sys.executable, "-m", "mrv.cli", "submit", str(registry["package"]), "--registry", proxy.url]
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while _requests(registry["server"]) == 0:
            assert time.monotonic() < deadline and proc.poll() is None, "registry never received the request"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        (entry,) = Outbox(home / "outbox.db").all()
        assert entry.status is OutboxStatus.pending
        proxy.mode = "pass"
        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    finally:
        proxy.close()
    assert rerun.returncode == 0, rerun.stderr
    assert "checks_passed" in rerun.stdout
    assert _requests(registry["server"]) == 1
    (done,) = Outbox(home / "outbox.db").all()
    assert done.status is OutboxStatus.sent and done.idempotency_key == entry.idempotency_key
