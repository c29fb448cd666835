"""A small in-repo fake of a CAD Trust (CADT) node's v1 REST API, for the adapter tests.

A real CADT node cannot run here: it needs a Chia full node, wallet and DataLayer (and its home
organisation registered on chain) before it answers a single request. This fake follows the node's
documented payloads and the behaviour of its public source (Chia-Network/cadt), read at:

- ``src/middleware.js``: the ``x-api-key`` check on every route (403 ``{"message": "API key not
  found"}``) and the Joi error format (400 ``{"message": "Data Validation error", "errors": [...]}``);
- ``src/routes/v1/resources/projects.js``, ``units.js``, ``staging.js``: ``GET|POST|PUT /v1/projects``,
  ``GET|POST|PUT /v1/units``, ``GET /v1/staging``, ``POST /v1/staging/commit``;
- ``src/controllers/project.controller.js``, ``units.controller.js``: writes go to the staging
  table; create assigns ``warehouseProjectId``/``warehouseUnitId`` and child ids and answers only a
  message; a child sent with an ``id`` must already exist; update needs an existing warehouse id;
  list answers a bare array, or ``{"page", "pageCount", "data"}`` with ``page`` and ``limit``;
- ``src/validations/*.js``: the write schemas, here enforced by our own :mod:`mrv.registry.cadt`
  models (unknown keys and picklist values rejected the same way).

Simplifications, all on purpose: one home organisation; ``search`` is a case-insensitive substring
match over a few identifying columns instead of SQLite FTS; commit applies at once (a real node
confirms it on chain later); ``fail_next`` injects 503s to exercise the client's retries.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from mrv.registry import cadt

ORG_UID = "fake-home-org"
_CHILDREN = ("projectLocations", "issuances", "labels", "estimations", "coBenefits")
_PROJECT_SEARCH = ("warehouseProjectId", "projectId", "originProjectId", "projectName", "projectDeveloper")
_UNIT_SEARCH = ("warehouseUnitId", "unitBlockStart", "unitBlockEnd", "unitOwner", "marketplaceIdentifier")


@dataclass
class FakeCadtState:
    api_key: str
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)  # committed, by warehouseProjectId
    units: dict[str, dict[str, Any]] = field(default_factory=dict)  # committed, by warehouseUnitId
    staging: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0  # answer the next N calls with 503
    calls: list[tuple[str, str]] = field(default_factory=list)

    def issuance(self, issuance_id: str) -> dict[str, Any] | None:
        for p in self.projects.values():
            for i in p.get("issuances") or []:
                if i["id"] == issuance_id:
                    return i
        return None

    def child_exists(self, key: str, child_id: str) -> bool:
        return any(c.get("id") == child_id for p in self.projects.values() for c in p.get(key) or [])


class _Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body


def _validate(model: type[cadt.CadtModel], body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Refused(400, {"message": "Data Validation error", "errors": ["body must be an object"]})
    try:
        return model.from_cadt(body).to_cadt()
    except ValidationError as exc:
        errors = [f"\"{'.'.join(str(x) for x in e['loc'])}\" {e['msg']}" for e in exc.errors()]
        raise _Refused(400, {"message": "Data Validation error", "errors": errors}) from None


def _listed(records: list[dict[str, Any]], request: Request, columns: tuple[str, ...]) -> Any:
    search = request.query_params.get("search")
    if search:
        needle = search.lower()
        records = [r for r in records if any(needle in str(r.get(c, "")).lower() for c in columns)]
    page, limit = request.query_params.get("page"), request.query_params.get("limit")
    if page and limit:
        p, n = int(page), int(limit)
        return {"page": p, "pageCount": max(1, -(-len(records) // n)), "data": records[(p - 1) * n : p * n]}
    return records


def create_fake_cadt(*, api_key: str) -> FastAPI:
    state = FakeCadtState(api_key=api_key)
    app = FastAPI(title="fake CADT node (tests only)")
    app.state.cadt = state

    @app.middleware("http")
    async def _gate(request: Request, call_next: Any) -> Any:
        state.calls.append((request.method, request.url.path))
        if state.fail_next > 0:
            state.fail_next -= 1
            return JSONResponse({"message": "injected failure"}, status_code=503)
        if request.headers.get("x-api-key") != state.api_key:
            return JSONResponse({"message": "API key not found"}, status_code=403)
        return await call_next(request)

    @app.exception_handler(_Refused)
    async def _refused(_: Request, exc: _Refused) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    async def _body(request: Request) -> Any:
        try:
            return json.loads(await request.body() or b"null")
        except ValueError:
            raise _Refused(400, {"message": "Data Validation error", "errors": ["body is not JSON"]}) from None

    def _stage(*, uuid_: str, action: str, table: str, record: dict[str, Any]) -> None:
        # Staging.upsert on the node: one pending entry per record uuid.
        state.staging = [s for s in state.staging if not (s["uuid"] == uuid_ and s["table"] == table)]
        state.staging.append({"uuid": uuid_, "action": action, "table": table, "commited": False, "data": json.dumps([record])})

    # ---- projects

    @app.get("/v1/projects")
    async def list_projects(request: Request) -> Any:
        return _listed(list(state.projects.values()), request, _PROJECT_SEARCH)

    def _children(record: dict[str, Any], wpid: str, *, creating: bool) -> None:
        for key in _CHILDREN:
            for child in record.get(key) or []:
                if child.get("id"):
                    if creating and not state.child_exists(key, child["id"]):
                        raise _Refused(400, {"message": "Error creating new project", "error": f"Record {child['id']} does not exist"})
                else:
                    child["id"] = str(uuid.uuid4())
                if key != "coBenefits" and key != "estimations" and key != "projectLocations":
                    child["warehouseProjectId"] = wpid
                child["orgUid"] = ORG_UID

    @app.post("/v1/projects")
    async def create_project(request: Request) -> Any:
        record = _validate(cadt.Project, await _body(request))
        wpid = str(uuid.uuid4())
        record["warehouseProjectId"], record["orgUid"] = wpid, ORG_UID
        _children(record, wpid, creating=True)
        _stage(uuid_=wpid, action="INSERT", table="Projects", record=record)
        return {"message": "Project staged successfully"}

    @app.put("/v1/projects")
    async def update_project(request: Request) -> Any:
        record = _validate(cadt.Project, await _body(request))
        wpid = record.get("warehouseProjectId")
        if not wpid or wpid not in state.projects:
            raise _Refused(400, {"message": "Error adding update to stage", "error": f"The project record {wpid} does not exist"})
        merged = {**state.projects[wpid], **record}
        _children(merged, wpid, creating=False)
        _stage(uuid_=wpid, action="UPDATE", table="Projects", record=merged)
        return {"message": "Project update added to staging"}

    # ---- units

    @app.get("/v1/units")
    async def list_units(request: Request) -> Any:
        return _listed(list(state.units.values()), request, _UNIT_SEARCH)

    def _unit_links(record: dict[str, Any]) -> None:
        issuance_id = record["issuance"]["id"]
        if state.issuance(issuance_id) is None:
            raise _Refused(400, {"message": "Batch Upload Failed.", "error": f"issuance {issuance_id} does not exist"})
        record["issuanceId"] = issuance_id
        for label in record.get("labels") or []:
            label.setdefault("id", str(uuid.uuid4()))

    @app.post("/v1/units")
    async def create_unit(request: Request) -> Any:
        record = _validate(cadt.Unit, await _body(request))
        _unit_links(record)
        wuid = str(uuid.uuid4())
        record["warehouseUnitId"], record["orgUid"] = wuid, ORG_UID
        _stage(uuid_=wuid, action="INSERT", table="Units", record=record)
        return {"message": "Unit staged successfully"}

    @app.put("/v1/units")
    async def update_unit(request: Request) -> Any:
        record = _validate(cadt.Unit, await _body(request))
        wuid = record.get("warehouseUnitId")
        if not wuid or wuid not in state.units:
            raise _Refused(400, {"message": "Error updating new unit", "error": f"The unit record {wuid} does not exist"})
        _unit_links(record)
        _stage(uuid_=wuid, action="UPDATE", table="Units", record={**state.units[wuid], **record})
        return {"message": "Unit updated successfully"}

    # ---- staging

    @app.get("/v1/staging")
    async def list_staging() -> Any:
        return state.staging

    @app.post("/v1/staging/commit")
    async def commit() -> Any:
        for entry in state.staging:
            (record,) = json.loads(entry["data"])
            target = state.projects if entry["table"] == "Projects" else state.units
            key = "warehouseProjectId" if entry["table"] == "Projects" else "warehouseUnitId"
            target[record[key]] = record
        state.staging = []
        return {"message": "Staging Table committed to full node"}

    return app


__all__ = ["FakeCadtServer", "FakeCadtState", "create_fake_cadt"]


class FakeCadtServer:
    """The fake node on a real uvicorn server on loopback (``with FakeCadtServer(api_key=...) as node``)."""

    def __init__(self, *, api_key: str) -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.app = create_fake_cadt(api_key=api_key)
        self.state: FakeCadtState = self.app.state.cadt
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "FakeCadtServer":
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake CADT node did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
