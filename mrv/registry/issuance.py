"""Issuance with lineage: submit a verification package, follow its status, publish to CADT, and
record every request and response as artifacts of the monitoring run they came from.

These are the plain functions behind the Prefect ``issuance`` flow (:mod:`flows.issuance`); they
take and return strings and digests so a task can call them from any worker.

Lineage steps added to the run (each a completed step with its artifacts):

- ``registry-submit``: input ``package``; outputs ``registry/request`` (what was posted: registry
  URL, Idempotency-Key, package digest, quantity, labels; never the token) and
  ``registry/response`` (the registry's answer, refusals included);
- ``registry-status``: output ``registry/status`` (the request as last polled);
- ``cadt-publish``: outputs ``cadt/request`` (node URL, project and units sent) and
  ``cadt/response`` (the node's warehouse ids).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from mrv.artifacts import ArtifactRef, LocalArtifactStore
from mrv.lineage import LineageStore
from mrv.registry.cadt_client import CadtClient, CadtRetry, read_issued
from mrv.registry.client import Outbox, RegistryClientError, RetryPolicy, request_status, submit
from mrv.settings import MRVSettings

# Statuses a poll stops at. After submission the checks have run synchronously, so the request is
# already checks_passed/checks_failed; DECIDED waits for the officer's decision instead.
SETTLED = frozenset({"checks_passed", "checks_failed", "issued", "rejected"})
DECIDED = frozenset({"checks_failed", "issued", "rejected"})

ROLE_REQUEST = "registry/request"
ROLE_RESPONSE = "registry/response"
ROLE_STATUS = "registry/status"
ROLE_CADT_REQUEST = "cadt/request"
ROLE_CADT_RESPONSE = "cadt/response"


class IssuanceTimeout(RegistryClientError):
    """The request did not reach an awaited status in time (it is still at the registry)."""


def _open(settings: MRVSettings) -> tuple[LocalArtifactStore, LineageStore]:
    from mrv.pipeline import open_workspace

    _, store, lineage = open_workspace(settings)
    return store, lineage


def _json_ref(store: LocalArtifactStore, doc: Any, *, name: str) -> ArtifactRef:
    data = json.dumps(doc, indent=1, sort_keys=True, default=str).encode() + b"\n"
    return store.put_bytes(data, media_type="application/json", name=name)


def _record(
    lineage: LineageStore,
    *,
    run_id: str,
    step: str,
    parameters: Mapping[str, Any],
    inputs: Mapping[str, ArtifactRef] = {},
    outputs: Mapping[str, ArtifactRef],
    error: str | None = None,
) -> None:
    # The cache key names what happened, so a repeated step (a resumed submit) is its own row.
    key = "sha256:" + hashlib.sha256(json.dumps([step, parameters, {r: x.digest for r, x in outputs.items()}, time.time_ns()],
                                                 sort_keys=True, default=str).encode()).hexdigest()
    step_id = lineage.start_step(run_id, name=step, parameters=parameters, cache_key=key)
    for role, ref in inputs.items():
        lineage.record_artifact(step_id, ref, role=role, direction="input")
    for role, ref in outputs.items():
        lineage.record_artifact(step_id, ref, role=role, direction="output")
    lineage.finish_step(step_id, status="failed" if error else "completed", error=error)


def submit_and_record(
    *,
    settings: MRVSettings,
    run_id: str,
    package: Path,
    registry_url: str,
    token: str,
    labels: Sequence[str] = (),
    quantity: int | None = None,
    retry: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    outbox_path: Path | None = None,
) -> dict[str, Any]:
    """Submit ``package`` through the outbox (exactly once, see :mod:`mrv.registry.client`) and record
    the request and the response in the run's lineage. Returns ``request_id``, ``status`` and the
    artifact digests; a refusal (4xx) is recorded and then raised."""
    store, lineage = _open(settings)
    lineage.get_run(run_id)  # fail before sending if the run is unknown
    package = Path(package)
    pkg_ref = store.put_file(package, media_type="application/zip")
    # The same outbox as `mrv submit`, so the CLI and the flow never submit one package twice.
    outbox = Outbox(outbox_path or settings.home.expanduser().resolve() / "outbox.db")
    error: RegistryClientError | None = None
    try:
        entry = submit(package, registry_url=registry_url, token=token, outbox=outbox, labels=labels, quantity=quantity,
                       retry=retry, sleep=sleep)
        response: Any = entry.response
        key, qty, sent_labels, attempts = entry.idempotency_key, entry.quantity, list(entry.labels), entry.attempts
    except RegistryClientError as exc:
        if exc.status_code is None:
            raise  # never answered: nothing to record yet, the outbox keeps the request for a rerun
        error = exc
        found = outbox.find(package_sha256=pkg_ref.digest, registry_url=registry_url.rstrip("/"))
        response = exc.body
        key, qty, sent_labels, attempts = (found.idempotency_key, found.quantity, list(found.labels), found.attempts) if found else ("", quantity, list(labels), 0)
    request_doc = {
        "method": "POST",
        "url": f"{registry_url.rstrip('/')}/v1/requests",
        "idempotency_key": key,
        "package_sha256": pkg_ref.digest,
        "quantity": qty,
        "labels": sent_labels,
        "attempts": attempts,
    }
    req_ref = _json_ref(store, request_doc, name="registry-request.json")
    resp_ref = _json_ref(store, {"status_code": error.status_code if error else None, "body": response}, name="registry-response.json")
    _record(lineage, run_id=run_id, step="registry-submit",
            parameters={"registry_url": registry_url.rstrip("/"), "idempotency_key": key},
            inputs={"package": pkg_ref}, outputs={ROLE_REQUEST: req_ref, ROLE_RESPONSE: resp_ref},
            error=str(error) if error else None)
    if error is not None:
        raise error
    assert isinstance(response, dict)
    return {"request_id": response["id"], "status": response["status"], "idempotency_key": key,
            "request": req_ref.digest, "response": resp_ref.digest}


def poll_status(
    *,
    registry_url: str,
    token: str,
    request_id: str,
    until: Collection[str] = SETTLED,
    timeout_s: float = 300.0,
    interval_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """The request once its status is in ``until``; :class:`IssuanceTimeout` after ``timeout_s``."""
    deadline = clock() + timeout_s
    while True:
        doc = request_status(registry_url=registry_url, token=token, request_id=request_id)
        if doc.get("status") in until:
            return doc
        if clock() >= deadline:
            raise IssuanceTimeout(f"request {request_id} is still {doc.get('status')} after {timeout_s:g}s "
                                  f"(waiting for {', '.join(sorted(until))}); poll again later with `mrv submit --status {request_id}`")
        sleep(min(interval_s, max(0.0, deadline - clock())))


def record_status(*, settings: MRVSettings, run_id: str, registry_url: str, status: Mapping[str, Any]) -> str:
    """Record a polled request as ``registry/status`` of the run; returns its digest."""
    store, lineage = _open(settings)
    ref = _json_ref(store, dict(status), name="registry-status.json")
    _record(lineage, run_id=run_id, step="registry-status",
            parameters={"registry_url": registry_url.rstrip("/"), "request_id": status.get("id"), "status": status.get("status")},
            outputs={ROLE_STATUS: ref})
    return ref.digest


def publish_and_record(
    *,
    settings: MRVSettings,
    run_id: str,
    registry_url: str,
    project_id: str,
    issuance_id: str,
    cadt_url: str,
    cadt_api_key: str,
    retry: CadtRetry = CadtRetry(),
) -> dict[str, Any]:
    """Publish the issuance's project and units to a CADT node and record what was sent and the
    node's ids in the run's lineage."""
    store, lineage = _open(settings)
    project, units = read_issued(registry_url=registry_url, project_id=project_id)
    units = [u for u in units if u["issuance"]["id"] == issuance_id]
    with CadtClient(base_url=cadt_url, api_key=cadt_api_key, retry=retry) as client:
        result = client.publish(project=project, units=units)
    req_ref = _json_ref(store, {"url": cadt_url.rstrip("/"), "project": project, "units": units}, name="cadt-request.json")
    resp_ref = _json_ref(store, result.to_dict(), name="cadt-response.json")
    _record(lineage, run_id=run_id, step="cadt-publish",
            parameters={"cadt_url": cadt_url.rstrip("/"), "project_id": project_id, "issuance_id": issuance_id},
            outputs={ROLE_CADT_REQUEST: req_ref, ROLE_CADT_RESPONSE: resp_ref})
    return {**result.to_dict(), "request": req_ref.digest, "response": resp_ref.digest}


__all__ = [
    "DECIDED",
    "IssuanceTimeout",
    "SETTLED",
    "poll_status",
    "publish_and_record",
    "record_status",
    "submit_and_record",
]
