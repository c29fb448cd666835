"""Prefect flow for issuance: submit a verified package, follow it, and optionally publish the
issued units to a CAD Trust node. Every task calls one function in :mod:`mrv.registry.issuance`
and passes strings; the request and each response become artifacts of the monitoring run.

Secrets are never flow parameters (Prefect stores parameters with the flow run): the registry
token and the CADT API key are read from environment variables named by the parameters.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import flow, task

from mrv.registry import issuance as iss
from mrv.settings import MRVSettings

TOKEN_ENV = "MRV_REGISTRY_TOKEN"
CADT_KEY_ENV = "MRV_CADT_API_KEY"


def _secret(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set")
    return value


def _settings(settings: dict[str, Any]) -> MRVSettings:
    return MRVSettings.model_validate(settings)


# No task retries: the submit function retries itself and is exactly-once through its outbox.
@task(name="submit-request")
def submit_request(settings: dict[str, Any], run_id: str, package: str, registry_url: str, token_env: str,
                   labels: list[str], quantity: int | None, outbox_path: str | None) -> dict[str, Any]:
    return iss.submit_and_record(settings=_settings(settings), run_id=run_id, package=Path(package), registry_url=registry_url,
                                 token=_secret(token_env), labels=labels, quantity=quantity,
                                 outbox_path=Path(outbox_path) if outbox_path else None)


@task(name="poll-status")
def poll_status(settings: dict[str, Any], run_id: str, registry_url: str, token_env: str, request_id: str,
                wait_for_decision: bool, timeout_s: float, interval_s: float) -> dict[str, Any]:
    until = iss.DECIDED if wait_for_decision else iss.SETTLED
    doc = iss.poll_status(registry_url=registry_url, token=_secret(token_env), request_id=request_id, until=until,
                          timeout_s=timeout_s, interval_s=interval_s)
    digest = iss.record_status(settings=_settings(settings), run_id=run_id, registry_url=registry_url, status=doc)
    return {"status": doc["status"], "issuance_id": doc.get("issuance_id"), "project_id": doc["project_id"], "digest": digest}


@task(name="publish-cadt")
def publish_cadt(settings: dict[str, Any], run_id: str, registry_url: str, project_id: str, issuance_id: str,
                 cadt_url: str, cadt_key_env: str) -> dict[str, Any]:
    return iss.publish_and_record(settings=_settings(settings), run_id=run_id, registry_url=registry_url, project_id=project_id,
                                  issuance_id=issuance_id, cadt_url=cadt_url, cadt_api_key=_secret(cadt_key_env))


@flow(name="issuance", flow_run_name="issuance-{run_id}", log_prints=True)
def issuance(
    settings: dict[str, Any],
    run_id: str,
    package: str,
    registry_url: str,
    labels: list[str] | None = None,
    quantity: int | None = None,
    wait_for_decision: bool = False,
    timeout_s: float = 300.0,
    interval_s: float = 2.0,
    cadt_url: str | None = None,
    token_env: str = TOKEN_ENV,
    cadt_key_env: str = CADT_KEY_ENV,
    outbox_path: str | None = None,
) -> dict[str, Any]:
    """submit -> poll (bounded) -> on issued, publish to CADT when ``cadt_url`` is given."""
    submitted = submit_request(settings, run_id, package, registry_url, token_env, labels or [], quantity, outbox_path)
    polled = poll_status(settings, run_id, registry_url, token_env, submitted["request_id"], wait_for_decision, timeout_s, interval_s)
    out: dict[str, Any] = {"submitted": submitted, "status": polled["status"], "issuance_id": polled["issuance_id"], "cadt": None}
    if polled["status"] == "issued" and cadt_url:
        out["cadt"] = publish_cadt(settings, run_id, registry_url, polled["project_id"], polled["issuance_id"], cadt_url, cadt_key_env)
    print(f"issuance request {submitted['request_id']}: {polled['status']}")
    return out
