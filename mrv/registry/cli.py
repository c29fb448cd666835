"""``mrv registry ...``: run the intake service, issue tokens, review requests, verify the audit log.

``registry_app`` is mounted by the main CLI (``app.add_typer(registry_app, name="registry")``).
Review commands talk to the HTTP API (``--registry URL --token TOKEN``, or ``$MRV_REGISTRY_URL`` /
``$MRV_REGISTRY_TOKEN``); the others open the store directly (``--db URL``, default
``sqlite:///registry.db``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

registry_app = typer.Typer(no_args_is_help=True, help="The registry intake service (CAD Trust-shaped records).")
token_app = typer.Typer(no_args_is_help=True, help="API tokens (stored hashed; shown once).")
review_app = typer.Typer(no_args_is_help=True, help="Review issuance requests through the API (officer token).")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")
setup_app = typer.Typer(no_args_is_help=True, help="Registry policy setup.")
cadt_app = typer.Typer(no_args_is_help=True, help="Publish issued projects and units to a CAD Trust (CADT) node.")
registry_app.add_typer(token_app, name="token")
registry_app.add_typer(cadt_app, name="cadt")
registry_app.add_typer(review_app, name="review")
registry_app.add_typer(audit_app, name="audit")
registry_app.add_typer(setup_app, name="setup")

DEFAULT_DB = "sqlite:///registry.db"
DEMO_METHODOLOGY = "CDM:ACM0002:22.0"
DEMO_PROJECT = "DEMO-WIND-TN-001"

Db = Annotated[str, typer.Option("--db", help="Registry store URL (SQLite file or PostgreSQL).", envvar="MRV_REGISTRY_DB")]
RegistryUrl = Annotated[str, typer.Option("--registry", help="Registry base URL.", envvar="MRV_REGISTRY_URL")]
Token = Annotated[str, typer.Option("--token", help="Officer API token (prefer $MRV_REGISTRY_TOKEN).", envvar="MRV_REGISTRY_TOKEN", show_default=False)]


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


def _store(db: str) -> Any:
    from mrv.registry.db import RegistryStore

    store = RegistryStore(db)
    store.migrate()
    return store


def _api(method: str, registry: str, token: str, path: str, **kw: Any) -> Any:
    import httpx

    try:
        resp = httpx.request(method, registry.rstrip("/") + path, headers={"Authorization": f"Bearer {token}"}, timeout=60.0, **kw)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the registry at {registry}: {type(exc).__name__}: {exc}")
    try:
        doc = resp.json()
    except ValueError:
        doc = {"error": "http_error", "detail": resp.text[:500]}
    if resp.status_code >= 400:
        _fail(f"{resp.status_code} {doc.get('error', '')}: {doc.get('detail', '')}", code=1)
    return doc


def _print_request(doc: dict[str, Any]) -> None:
    typer.echo(f"request {doc['id']}  status {doc['status']}  project {doc['project_id']}  quantity {doc['requested_quantity']}")
    for c in doc.get("checks", []):
        typer.echo(f"  [{'PASS' if c['passed'] else 'FAIL'}] {c['name']}: {c['reason']}")
    if doc.get("decision_reason"):
        typer.echo(f"  decision: {doc['decision_reason']}")


@registry_app.command("serve")
def serve(
    db: Db = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8765,
    registry_code: Annotated[str, typer.Option(help="Registry code in unit serials.")] = "ODMRV",
) -> None:
    """Run the intake service (OpenAPI at /openapi.json)."""
    import uvicorn

    from mrv.registry.service import create_app

    uvicorn.run(create_app(db_url=db, registry_code=registry_code, base_url=f"http://{host}:{port}"), host=host, port=port)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="developer, officer or public.")],
    subject: Annotated[str, typer.Option(help="Developer DID or officer name.")],
    db: Db = DEFAULT_DB,
) -> None:
    """Create a token and print it (once: only its hash is stored)."""
    from mrv.errors import RegistryError
    from mrv.registry.auth import create_token

    try:
        typer.echo(create_token(_store(db), role=role, subject=subject))
    except RegistryError as exc:
        _fail(str(exc))


@review_app.command("list")
def review_list(
    registry: RegistryUrl = "http://127.0.0.1:8765",
    token: Token = "",
    status: Annotated[Optional[str], typer.Option(help="Filter by status (default checks_passed).")] = "checks_passed",
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List requests (pending review by default)."""
    params = {"status": status} if status else {}
    doc = _api("GET", registry, token, "/v1/requests", params={**params, "limit": 1000})
    if json_out:
        typer.echo(json.dumps(doc, indent=2))
        return
    for item in doc["items"]:
        failed = sum(1 for c in item["checks"] if not c["passed"])
        typer.echo(f"{item['id']}  {item['status']:<13}  {item['project_id']}  {item['requested_quantity']} tCO2e  {failed} failed checks")
    typer.echo(f"{doc['total']} request(s)")


@review_app.command("show")
def review_show(request_id: str, registry: RegistryUrl = "http://127.0.0.1:8765", token: Token = "") -> None:
    """Show a request and its checks."""
    _print_request(_api("GET", registry, token, f"/v1/requests/{request_id}"))


@review_app.command("approve")
def review_approve(request_id: str, registry: RegistryUrl = "http://127.0.0.1:8765", token: Token = "") -> None:
    """Approve a request and issue its units."""
    doc = _api("POST", registry, token, f"/v1/requests/{request_id}/approve")
    _print_request(doc["request"])
    for u in doc["units"]:
        typer.echo(f"  units {u['unitBlockStart']} .. {u['unitBlockEnd']} ({u['unitCount']}, vintage {u['vintageYear']}, {u['unitStatus']})")


@review_app.command("reject")
def review_reject(
    request_id: str,
    reason: Annotated[str, typer.Option(help="Why (shown to the developer).")],
    registry: RegistryUrl = "http://127.0.0.1:8765",
    token: Token = "",
) -> None:
    """Reject a request with a reason."""
    _print_request(_api("POST", registry, token, f"/v1/requests/{request_id}/reject", json={"reason": reason}))


@audit_app.command("verify")
def audit_verify(db: Db = DEFAULT_DB) -> None:
    """Re-hash the audit chain; exit 1 naming the first bad entry if it was altered."""
    from mrv.registry.audit import verify_chain

    result = verify_chain(_store(db))
    if result.ok:
        typer.echo(f"audit chain ok: {result.count} entries, head {result.head_hash}")
        return
    typer.echo(f"audit chain BROKEN at entry {result.first_bad_seq}: {result.reason}", err=True)
    raise typer.Exit(code=1)


@cadt_app.command("publish")
def cadt_publish(
    project_id: Annotated[str, typer.Argument(help="Our project id (as in /v1/projects/{id}), e.g. DEMO-WIND-TN-001.")],
    cadt: Annotated[str, typer.Option("--cadt", help="Base URL of the CADT node (v1 API).", envvar="MRV_CADT_URL")],
    registry: RegistryUrl = "http://127.0.0.1:8765",
    api_key: Annotated[str, typer.Option("--api-key", help="The node's API key (x-api-key; prefer $MRV_CADT_API_KEY).",
                                         envvar="MRV_CADT_API_KEY", show_default=False)] = "",
    issuance: Annotated[Optional[list[str]], typer.Option("--issuance", help="Only the units of this issuance id (repeatable).")] = None,
    attempts: Annotated[int, typer.Option(min=1, max=20, help="Tries per call on timeouts and 5xx.")] = 5,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Publish a project issued by our registry, with its issuances and units, to a CADT node.

    Reads the project and its units from the registry's public API, stages them on the node and
    commits (project first, then the units pointing at the node's issuance ids). Safe to re-run:
    records already on the node are updated in place, never created twice."""
    from mrv.registry.cadt_client import CadtClient, CadtError, CadtRetry, publish_from_registry

    try:
        with CadtClient(base_url=cadt, api_key=api_key or None, retry=CadtRetry(attempts=attempts)) as client:
            result = publish_from_registry(registry_url=registry, project_id=project_id, client=client, issuance_ids=issuance or None)
    except CadtError as exc:
        _fail(str(exc), code=1)
    except Exception as exc:  # noqa: BLE001 - the registry unreachable, a record the CADT model refuses
        _fail(f"{type(exc).__name__}: {exc}", code=1)
    doc = result.to_dict()
    if json_out:
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(f"project {project_id} -> CADT warehouseProjectId {doc['warehouseProjectId']} ({doc['project_action']})")
    for ours, theirs in doc["issuance_ids"].items():
        typer.echo(f"  issuance {ours} -> {theirs}")
    for block, unit_id in doc["unit_ids"].items():
        typer.echo(f"  units {block} -> {unit_id} ({doc['unit_actions'].get(block, 'unchanged')})")
    typer.echo(f"committed {doc['commits']} staging batch(es) on {cadt.rstrip('/')}")


@setup_app.command("demo")
def setup_demo(
    vvb_did: Annotated[str, typer.Option("--vvb-did", help="The VVB DID to accredit.")],
    developer_did: Annotated[str, typer.Option("--developer-did", help="The developer DID to register.")],
    db: Db = DEFAULT_DB,
    project_id: Annotated[str, typer.Option("--project-id")] = DEMO_PROJECT,
    methodology: Annotated[str, typer.Option("--methodology")] = DEMO_METHODOLOGY,
) -> None:
    """Accredit a VVB, register a developer for a project and accept a methodology (idempotent)."""
    from datetime import datetime, timezone

    from mrv.registry import audit
    from mrv.registry.models import AcceptedMethodology, AccreditedVVB, ProjectDeveloper

    store = _store(db)
    now = datetime.now(timezone.utc)
    with store.session(write=True) as s:
        for row, key, event in (
            (AccreditedVVB(did=vvb_did, name=None, created_at=now), (vvb_did,), {"type": "policy.vvb_accredited", "did": vvb_did}),
            (ProjectDeveloper(project_id=project_id, did=developer_did, created_at=now), (project_id, developer_did),
             {"type": "policy.developer_registered", "project_id": project_id, "did": developer_did}),
            (AcceptedMethodology(id=methodology, created_at=now), (methodology,), {"type": "policy.methodology_accepted", "id": methodology}),
        ):
            if s.get(type(row), key) is None:
                s.add(row)
                s.flush()
                audit.append(s, event={**event, "actor": "mrv registry setup demo"})
    typer.echo(f"accredited {vvb_did}; registered {developer_did} for {project_id}; accepted {methodology}")


__all__ = ["registry_app"]
