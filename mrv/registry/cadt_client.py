"""Publish issued projects, issuances and units to a Climate Action Data Trust (CADT) node, v1 REST API.

How a CADT node takes writes (from its public source, Chia-Network/cadt: ``src/middleware.js``,
``src/routes/v1/resources/{projects,units,staging}.js``, ``src/controllers/{project,units}.controller.js``):

- every route needs the ``x-api-key`` header when the node has an API key (else 403 "API key not found");
- ``POST /v1/projects`` / ``POST /v1/units`` stage a new record (the node assigns
  ``warehouseProjectId`` / ``warehouseUnitId`` and answers only ``{"message": ...}``, no id);
  ``PUT`` with the warehouse id stages an update of a committed record;
- nothing is visible in ``GET /v1/projects`` / ``/v1/units`` until ``POST /v1/staging/commit``;
- a nested child sent *with* an ``id`` must already exist on the node, so new children go without one;
- a unit links to its project only through its nested ``issuance`` (with that issuance's node ``id``).

So publishing is two staged batches: (1) the project with its nested locations, issuances, labels,
estimations and co-benefits, committed; then, once the node has given the issuances their ids,
(2) the units pointing at them, committed.

Idempotency: there is no client-side id a node keeps for us, so "already published?" is decided
by reading the node: the project is found with ``GET /v1/projects?search=<projectId>`` (matched
exactly on ``originProjectId`` + ``registryOfOrigin``), issuances by their monitoring period, units
by ``unitBlockStart`` (serials are unique). Found records are updated with ``PUT`` and their
warehouse ids; a re-publish therefore never creates a second project, issuance or unit. Records
already waiting in the node's staging table (a run killed between stage and commit) are not staged
again: the rerun just commits them.

Errors: a 4xx is final and raised as :class:`CadtError` with the node's ``message``/``errors``;
5xx, timeouts and connection errors are retried with backoff.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from mrv.errors import RegistryError
from mrv.registry import cadt

API_KEY_HEADER = "x-api-key"
_CHILD_KEYS: Mapping[str, type[cadt.CadtModel]] = {
    "projectLocations": cadt.ProjectLocation,
    "issuances": cadt.Issuance,
    "labels": cadt.Label,
    "estimations": cadt.Estimation,
    "coBenefits": cadt.CoBenefit,
}


class CadtError(RegistryError):
    """The CADT node refused a call (4xx, with its message) or stayed unreachable after retries."""

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


@dataclass(frozen=True)
class CadtRetry:
    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    timeout_s: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay_s, self.base_delay_s * (2**attempt))


@dataclass(frozen=True)
class PublishResult:
    """What the node holds after :meth:`CadtClient.publish` (all ids are the node's)."""

    warehouse_project_id: str
    project_action: str  # "created" | "updated"
    issuance_ids: dict[str, str]  # our issuance id -> node issuance id
    unit_ids: dict[str, str]  # unitBlockStart -> node warehouseUnitId
    unit_actions: dict[str, str] = field(default_factory=dict)  # unitBlockStart -> "created" | "updated"
    commits: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "warehouseProjectId": self.warehouse_project_id,
            "project_action": self.project_action,
            "issuance_ids": dict(self.issuance_ids),
            "unit_ids": dict(self.unit_ids),
            "unit_actions": dict(self.unit_actions),
            "commits": self.commits,
        }


def _message(body: Any) -> str:
    if not isinstance(body, dict):
        return str(body)[:500]
    parts = [str(body.get("message") or body.get("detail") or "")]
    if body.get("error"):
        parts.append(str(body["error"]))
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        parts.append("; ".join(str(e) for e in errors[:20]))
    return ": ".join(p for p in parts if p) or "no message"


def _items(body: Any) -> list[dict[str, Any]]:
    # CADT answers a bare list without page/limit and {"page","pageCount","data"} with them.
    if isinstance(body, list):
        return [x for x in body if isinstance(x, dict)]
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        return [x for x in body["data"] if isinstance(x, dict)]
    return []


def _only_fields(record: Mapping[str, Any], model: type[cadt.CadtModel]) -> dict[str, Any]:
    # A node adds bookkeeping columns (orgUid, timeStamp, createdAt, ...) that its own write
    # schemas reject; keep only the model's fields when echoing a node record back.
    return {k: v for k, v in record.items() if k in model.model_fields and v is not None}


def _validated(model: type[cadt.CadtModel], payload: dict[str, Any], what: str) -> dict[str, Any]:
    # Validate locally first: a bad record is named here instead of as a node's 400.
    try:
        return model.from_cadt(payload).to_cadt()
    except ValidationError as exc:
        raise CadtError(f"{what} is not a valid CADT record: {exc}") from None


def _period(issuance: Mapping[str, Any]) -> tuple[str, str]:
    iss = cadt.Issuance.from_cadt(_only_fields({**issuance, "id": None}, cadt.Issuance))
    return iss.startDate.isoformat(), iss.endDate.isoformat()


def _child_key(key: str, child: Mapping[str, Any]) -> tuple[Any, ...]:
    """How a child of ours is recognised among the node's children (they have other ids)."""
    if key == "issuances":
        return _period(child)
    if key == "projectLocations":
        return (child.get("country"), child.get("geographicIdentifier"))
    if key == "labels":
        return (child.get("label"), child.get("labelType"))
    if key == "coBenefits":
        return (child.get("cobenefit"),)
    if key == "estimations":
        model = cadt.Estimation.from_cadt(_only_fields({**child, "id": None}, cadt.Estimation))
        return (model.creditingPeriodStart.isoformat(), model.creditingPeriodEnd.isoformat())
    return (json.dumps(child, sort_keys=True),)


class CadtClient:
    """A CADT node's v1 API. ``transport`` lets tests route through an in-process ASGI app."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        retry: CadtRetry = CadtRetry(),
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry
        self._sleep = sleep
        headers = {API_KEY_HEADER: api_key} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=retry.timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CadtClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transport

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        already_done: Callable[[], bool] | None = None,
    ) -> Any:
        """One call with retries on 5xx/transport errors. ``already_done`` is asked before each
        retry of a write: a request that timed out may still have been staged by the node."""
        last = "not sent"
        for attempt in range(self.retry.attempts):
            if attempt and already_done is not None and already_done():
                return {"message": "already staged"}
            try:
                resp = self._http.request(method, path, json=json_body, params=params)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                try:
                    body = resp.json()
                except ValueError:
                    body = {"message": resp.text[:500]}
                if resp.status_code < 300:
                    return body
                if resp.status_code < 500:
                    hint = " (check the x-api-key)" if resp.status_code in (401, 403) else ""
                    raise CadtError(
                        f"CADT node refused {method} {path} (HTTP {resp.status_code}){hint}: {_message(body)}",
                        status_code=resp.status_code, body=body,
                    )
                last = f"HTTP {resp.status_code}: {_message(body)}"
            if attempt + 1 < self.retry.attempts:
                self._sleep(self.retry.delay(attempt))
        raise CadtError(f"CADT node at {self.base_url} not reached for {method} {path} after {self.retry.attempts} attempts ({last})")

    # ---- reads

    def list_projects(self, *, search: str | None = None) -> list[dict[str, Any]]:
        return _items(self._request("GET", "/v1/projects", params={"search": search} if search else None))

    def list_units(self, *, search: str | None = None) -> list[dict[str, Any]]:
        return _items(self._request("GET", "/v1/units", params={"search": search} if search else None))

    def staging(self) -> list[dict[str, Any]]:
        return _items(self._request("GET", "/v1/staging"))

    def find_project(self, *, project_id: str, registry_of_origin: str) -> dict[str, Any] | None:
        """The committed project with this origin id and registry (search is full-text; match exactly)."""
        for p in self.list_projects(search=project_id):
            if p.get("originProjectId") == project_id and p.get("registryOfOrigin") == registry_of_origin:
                return p
        return None

    def find_unit(self, *, unit_block_start: str) -> dict[str, Any] | None:
        for u in self.list_units(search=unit_block_start):
            if u.get("unitBlockStart") == unit_block_start:
                return u
        return None

    def _staged(self, table: str, match: Callable[[Mapping[str, Any]], bool]) -> bool:
        """Whether a record matching ``match`` is waiting in the node's staging table."""
        for entry in self.staging():
            if str(entry.get("table", "")).lower() != table.lower():
                continue
            data = entry.get("data")
            if data is None and isinstance(entry.get("diff"), dict):
                data = entry["diff"].get("change")
            if isinstance(data, str):
                try:
                    data = json.loads(data)
                except ValueError:
                    continue
            records = data if isinstance(data, list) else [data]
            if any(isinstance(r, Mapping) and match(r) for r in records):
                return True
        return False

    # ---- writes

    def commit(self) -> None:
        self._request("POST", "/v1/staging/commit")

    def _stage(self, method: str, path: str, payload: dict[str, Any], *, table: str, match: Callable[[Mapping[str, Any]], bool]) -> None:
        # PUT upserts the staged entry by warehouse id on the node, so only POST needs the guard.
        guard = (lambda: self._staged(table, match)) if method == "POST" else None
        self._request(method, path, json_body=payload, already_done=guard)

    def publish(self, *, project: Mapping[str, Any], units: Sequence[Mapping[str, Any]]) -> PublishResult:
        """Publish one CADT project (with nested children) and its units; idempotent (module doc)."""
        ours = cadt.Project.from_cadt(dict(project)).to_cadt()
        origin, registry = ours["originProjectId"], ours["registryOfOrigin"]
        our_issuances = {i["id"]: _period(i) for i in ours.get("issuances") or [] if i.get("id")}
        commits = 0

        def is_ours(r: Mapping[str, Any]) -> bool:
            return r.get("originProjectId") == origin and r.get("registryOfOrigin") == registry

        existing = self.find_project(project_id=origin, registry_of_origin=registry)
        if existing is None:
            payload = _validated(cadt.Project, self._project_create(ours), f"project {origin}")
            if not self._staged("projects", is_ours):
                self._stage("POST", "/v1/projects", payload, table="projects", match=is_ours)
            action = "created"
        else:
            payload = _validated(cadt.Project, self._project_update(ours, existing), f"project {origin}")
            self._stage("PUT", "/v1/projects", payload, table="projects", match=is_ours)
            action = "updated"
        self.commit()
        commits += 1

        committed = self.find_project(project_id=origin, registry_of_origin=registry)
        if committed is None:
            raise CadtError(f"project {origin} is not on the node after commit (a real node confirms commits on chain; retry later)")
        wpid = str(committed["warehouseProjectId"])
        node_by_period = {_period(i): str(i["id"]) for i in committed.get("issuances") or []}
        issuance_ids = {ours_id: node_by_period[p] for ours_id, p in our_issuances.items() if p in node_by_period}
        locations = {(x.get("country"), x.get("geographicIdentifier")): x.get("id") for x in committed.get("projectLocations") or []}
        our_locations = {x.get("id"): (x.get("country"), x.get("geographicIdentifier")) for x in ours.get("projectLocations") or []}

        unit_ids: dict[str, str] = {}
        unit_actions: dict[str, str] = {}
        staged_any = False
        for unit in units:
            ours_unit = cadt.Unit.from_cadt(dict(unit)).to_cadt()
            start = ours_unit["unitBlockStart"]
            node_issuance = node_by_period.get(_period(ours_unit["issuance"]))
            if node_issuance is None:
                raise CadtError(f"unit block {start}: its issuance ({ours_unit['issuance']['id']}) is not on project {origin} at the node")
            payload = self._unit_payload(ours_unit, wpid=wpid, issuance=committed_issuance(committed, node_issuance),
                                         location=locations.get(our_locations.get(ours_unit.get("projectLocationId"))))
            found = self.find_unit(unit_block_start=start)

            def same_block(r: Mapping[str, Any], start: str = start) -> bool:
                return r.get("unitBlockStart") == start

            if found is None:
                payload = _validated(cadt.Unit, payload, f"unit block {start}")
                if not self._staged("units", same_block):
                    self._stage("POST", "/v1/units", payload, table="units", match=same_block)
                unit_actions[start] = "created"
            else:
                payload = _validated(cadt.Unit, {**payload, "warehouseUnitId": found["warehouseUnitId"]}, f"unit block {start}")
                self._stage("PUT", "/v1/units", payload, table="units", match=same_block)
                unit_actions[start] = "updated"
            staged_any = True
        if staged_any:
            self.commit()
            commits += 1
            for start in unit_actions:
                found = self.find_unit(unit_block_start=start)
                if found is None:
                    raise CadtError(f"unit block {start} is not on the node after commit")
                unit_ids[start] = str(found["warehouseUnitId"])
        return PublishResult(wpid, action, issuance_ids, unit_ids, unit_actions, commits)

    # ---- payloads

    @staticmethod
    def _project_create(ours: dict[str, Any]) -> dict[str, Any]:
        # New project: the node assigns every id, and refuses child ids it does not know.
        payload = {k: v for k, v in ours.items() if k not in _CHILD_KEYS and k != "warehouseProjectId"}
        for key in _CHILD_KEYS:
            if ours.get(key):
                payload[key] = [{k: v for k, v in c.items() if k not in ("id", "warehouseProjectId")} for c in ours[key]]
        return payload

    @staticmethod
    def _project_update(ours: dict[str, Any], existing: Mapping[str, Any]) -> dict[str, Any]:
        wpid = str(existing["warehouseProjectId"])
        payload = {k: v for k, v in ours.items() if k not in _CHILD_KEYS}
        payload["warehouseProjectId"] = wpid
        for key, model in _CHILD_KEYS.items():
            node_children = [_only_fields(c, model) for c in existing.get(key) or [] if isinstance(c, Mapping)]
            by_key = {_child_key(key, c): c for c in node_children}
            merged: list[dict[str, Any]] = []
            used: set[tuple[Any, ...]] = set()
            for child in ours.get(key) or []:
                k = _child_key(key, child)
                fresh = {n: v for n, v in child.items() if n not in ("id", "warehouseProjectId")}
                if k in by_key:  # ours, already on the node: keep the node's id
                    fresh["id"] = by_key[k]["id"]
                    used.add(k)
                if "warehouseProjectId" in model.model_fields:
                    fresh["warehouseProjectId"] = wpid
                merged.append(fresh)
            # Children someone else added on the node are carried over, not deleted by our update.
            merged += [c for k, c in by_key.items() if k not in used]
            if merged:
                payload[key] = merged
        return payload

    @staticmethod
    def _unit_payload(ours: dict[str, Any], *, wpid: str, issuance: dict[str, Any], location: str | None) -> dict[str, Any]:
        payload = {k: v for k, v in ours.items() if k not in ("warehouseUnitId", "projectLocationId", "issuance", "labels")}
        payload["issuance"] = issuance
        if location:
            payload["projectLocationId"] = location
        if ours.get("labels"):
            # The node gives unit labels their own ids on create.
            payload["labels"] = [{**{k: v for k, v in lab.items() if k not in ("id", "warehouseProjectId")}, "warehouseProjectId": wpid}
                                 for lab in ours["labels"]]
        return payload


def committed_issuance(project: Mapping[str, Any], issuance_id: str) -> dict[str, Any]:
    """The node's issuance ``issuance_id`` of ``project``, in write shape (for a unit's nested issuance)."""
    for i in project.get("issuances") or []:
        if str(i.get("id")) == issuance_id:
            return _only_fields(i, cadt.Issuance)
    raise CadtError(f"issuance {issuance_id} is not on project {project.get('warehouseProjectId')}")


def read_issued(*, registry_url: str, project_id: str, timeout_s: float = 30.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The CADT project and all its units from our intake service's public reads."""
    base = registry_url.rstrip("/")
    with httpx.Client(base_url=base, timeout=timeout_s) as http:
        resp = http.get(f"/v1/projects/{project_id}")
        if resp.status_code != 200:
            raise CadtError(f"registry {base} has no project {project_id} (HTTP {resp.status_code}): {resp.text[:300]}",
                            status_code=resp.status_code)
        project = resp.json()
        units: list[dict[str, Any]] = []
        page = 1
        while True:
            r = http.get("/v1/units", params={"projectId": project_id, "page": page, "limit": 1000})
            r.raise_for_status()
            doc = r.json()
            units += doc["items"]
            if len(units) >= doc["total"] or not doc["items"]:
                break
            page += 1
    return project, units


def publish_from_registry(*, registry_url: str, project_id: str, client: CadtClient, issuance_ids: Iterable[str] | None = None) -> PublishResult:
    """Publish a project issued by our intake service (and its units, optionally only those of
    ``issuance_ids``) to the CADT node behind ``client``."""
    project, units = read_issued(registry_url=registry_url, project_id=project_id)
    if issuance_ids is not None:
        wanted = set(issuance_ids)
        units = [u for u in units if u["issuance"]["id"] in wanted]
    return client.publish(project=project, units=units)


__all__ = ["API_KEY_HEADER", "CadtClient", "CadtError", "CadtRetry", "PublishResult", "committed_issuance", "publish_from_registry", "read_issued"]
