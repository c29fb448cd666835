"""OpenLineage export: each pipeline step becomes a job run with START and COMPLETE/FAIL events.

Events follow OpenLineage spec 2-0-2. A step's run carries a ``parent`` facet pointing at the
pipeline run; datasets are artifacts, named by digest in the ``open-dmrv://artifacts`` namespace,
with the custom ``openDmrv_artifact`` facet (schema in :data:`ARTIFACT_FACET_SCHEMA`).

Events go to a JSON-lines file (default, under the workspace) or to an HTTP endpoint such as
Marquez (``.../api/v1/lineage``).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from mrv.artifacts import ArtifactRef
from mrv.errors import LineageError
from mrv.lineage.codeversion import CodeVersion, code_version
from mrv.lineage.store import redact

try:  # POSIX: serialises appends across processes too
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

SPEC_VERSION = "2-0-2"
SCHEMA_URL = f"https://openlineage.io/spec/{SPEC_VERSION}/OpenLineage.json#/$defs/RunEvent"
JOB_NAMESPACE = "open-dmrv"
DATASET_NAMESPACE = "open-dmrv://artifacts"
# Producer identity: the project repository at the running version's tag.
PRODUCER_REPOSITORY = "https://github.com/open-dmrv/open-dmrv"

PARENT_FACET_SCHEMA = "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet"
PROCESSING_ENGINE_FACET_SCHEMA = (
    "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet"
)
ERROR_MESSAGE_FACET_SCHEMA = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
JOB_TYPE_FACET_SCHEMA = "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"

# Custom facet: key `{prefix}_{name}`, class `{Prefix}{Name}{Entity}Facet` (spec naming rules).
ARTIFACT_FACET_KEY = "openDmrv_artifact"
ARTIFACT_FACET_NAME = "OpenDmrvArtifactDatasetFacet"
ARTIFACT_FACET_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        ARTIFACT_FACET_NAME: {
            "allOf": [
                {"$ref": f"https://openlineage.io/spec/{SPEC_VERSION}/OpenLineage.json#/$defs/DatasetFacet"},
                {
                    "type": "object",
                    "properties": {
                        "digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
                        "size": {"type": "integer", "minimum": 0, "description": "bytes"},
                        "mediaType": {"type": "string"},
                        "originalName": {"type": "string"},
                        "role": {"type": "string", "description": "the step's name for this input/output"},
                        "roles": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "every role these bytes fill in the step (usually one)",
                        },
                    },
                    "required": ["digest", "size", "mediaType", "role", "roles"],
                },
            ]
        }
    },
    "type": "object",
    "properties": {ARTIFACT_FACET_KEY: {"$ref": f"#/$defs/{ARTIFACT_FACET_NAME}"}},
}

EventType = Literal["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]
_EVENT_TYPES = frozenset(EventType.__args__)  # type: ignore[attr-defined]
# Fixed namespace for turning non-UUID ids into UUIDs: the same id always maps to the same runId.
_RUN_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://open-dmrv/lineage/run-id")

ArtifactIO = Mapping[str, ArtifactRef] | Iterable[tuple[str, ArtifactRef]]


def producer_url(cv: CodeVersion | None = None) -> str:
    cv = cv or code_version()
    return f"{PRODUCER_REPOSITORY}/tree/v{cv.package_version}"


def artifact_facet_schema_url(cv: CodeVersion | None = None) -> str:
    # Versioned (a tag, not a branch), as the spec requires for custom facet schema URLs.
    cv = cv or code_version()
    path = f"docs/openlineage/{ARTIFACT_FACET_NAME}.json"
    return f"{PRODUCER_REPOSITORY}/blob/v{cv.package_version}/{path}#/$defs/{ARTIFACT_FACET_NAME}"


def openlineage_run_id(run_id: str) -> str:
    """The OpenLineage ``runId`` (a UUID) of a lineage run or step id.

    Ids that already are UUIDs (the store's uuid4 hex ids) keep their value; any other id maps
    deterministically to a UUIDv5.
    """
    try:
        return str(uuid.UUID(run_id))
    except (ValueError, AttributeError, TypeError):
        return str(uuid.uuid5(_RUN_ID_NAMESPACE, str(run_id)))


def step_job_name(project_id: str, step_name: str) -> str:
    """``<project_id>.<step name>``: the job a step's events belong to."""
    return f"{project_id}.{step_name}"


def build_run_event(
    *,
    event_type: EventType,
    run_id: str,
    job_name: str,
    inputs: ArtifactIO = (),
    outputs: ArtifactIO = (),
    parent_run_id: str | None = None,
    parent_job_name: str | None = None,
    event_time: datetime | None = None,
    error_message: str | None = None,
    run_facets: Mapping[str, Mapping[str, Any]] | None = None,
    code: CodeVersion | None = None,
) -> dict[str, Any]:
    """One OpenLineage RunEvent as a plain dict.

    ``job_name`` is ``<project_id>.<step>`` for steps (see :func:`step_job_name`) or the project id
    for the pipeline run itself. ``parent_job_name`` defaults to ``job_name`` up to its first dot,
    i.e. the project id: pass it explicitly when project ids contain dots.
    ``inputs``/``outputs`` are ``role -> ArtifactRef`` (mapping or pairs).
    """
    if event_type not in _EVENT_TYPES:
        raise LineageError(f"unknown OpenLineage eventType {event_type!r}; expected one of {sorted(_EVENT_TYPES)}")
    if not job_name:
        raise LineageError("OpenLineage job name must not be empty")
    when = event_time or datetime.now(timezone.utc)
    if when.tzinfo is None:
        raise LineageError("OpenLineage eventTime must be timezone-aware")
    cv = code or code_version()
    producer = producer_url(cv)

    facets: dict[str, Any] = {
        "processing_engine": {
            "_producer": producer,
            "_schemaURL": PROCESSING_ENGINE_FACET_SCHEMA,
            "name": "open-dmrv",
            "version": cv.label,
            "openlineageAdapterVersion": cv.package_version,
        }
    }
    if parent_run_id is not None:
        facets["parent"] = {
            "_producer": producer,
            "_schemaURL": PARENT_FACET_SCHEMA,
            "run": {"runId": openlineage_run_id(parent_run_id)},
            "job": {"namespace": JOB_NAMESPACE, "name": parent_job_name or job_name.split(".", 1)[0]},
        }
    if error_message is not None:
        facets["errorMessage"] = {
            "_producer": producer,
            "_schemaURL": ERROR_MESSAGE_FACET_SCHEMA,
            "message": redact(error_message),
            "programmingLanguage": "PYTHON",
        }
    for key, facet in (run_facets or {}).items():
        if "_producer" not in facet or "_schemaURL" not in facet:
            raise LineageError(f"run facet {key!r} lacks _producer/_schemaURL (required of every facet)")
        facets[key] = dict(facet)

    return {
        "eventType": event_type,
        "eventTime": when.astimezone(timezone.utc).isoformat(),
        "run": {"runId": openlineage_run_id(run_id), "facets": facets},
        "job": {
            "namespace": JOB_NAMESPACE,
            "name": job_name,
            "facets": {
                "jobType": {
                    "_producer": producer,
                    "_schemaURL": JOB_TYPE_FACET_SCHEMA,
                    "processingType": "BATCH",
                    "integration": "OPEN-DMRV",
                    "jobType": "TASK" if parent_run_id is not None else "JOB",
                }
            },
        },
        "inputs": _datasets(inputs, cv),
        "outputs": _datasets(outputs, cv),
        "producer": producer,
        "schemaURL": SCHEMA_URL,
    }


def _datasets(io: ArtifactIO, cv: CodeVersion) -> list[dict[str, Any]]:
    pairs = list(io.items()) if isinstance(io, Mapping) else list(io)
    # One dataset per digest: the same bytes under two roles are still one dataset.
    by_digest: dict[str, tuple[ArtifactRef, list[str]]] = {}
    for role, ref in pairs:
        entry = by_digest.setdefault(ref.digest, (ref, []))
        entry[1].append(role)
    out = []
    for digest, (ref, roles) in sorted(by_digest.items()):
        roles = sorted(set(roles))
        facet: dict[str, Any] = {
            "_producer": producer_url(cv),
            "_schemaURL": artifact_facet_schema_url(cv),
            "digest": digest,
            "size": ref.size,
            "mediaType": ref.media_type,
            "role": roles[0],
            "roles": roles,
        }
        if ref.original_name is not None:
            facet["originalName"] = ref.original_name
        out.append({"namespace": DATASET_NAMESPACE, "name": digest, "facets": {ARTIFACT_FACET_KEY: facet}})
    return out


# --------------------------------------------------------------------------- emitters


@runtime_checkable
class Emitter(Protocol):
    def emit(self, event: Mapping[str, Any]) -> None: ...


_file_locks: dict[str, threading.Lock] = {}
_file_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    key = str(path)
    with _file_locks_guard:
        return _file_locks.setdefault(key, threading.Lock())


def _compact(event: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise LineageError(f"OpenLineage event is not JSON-serialisable: {exc}") from exc


class JsonLinesEmitter:
    """Appends one compact JSON event per line; each line is written whole (``O_APPEND``).

    Safe for concurrent appends from threads of one process (a lock per file) and, on POSIX,
    from several processes (``flock`` on the file while writing). Not fsynced, like the lineage
    store (``synchronous=NORMAL``): an application crash loses nothing written, a power loss at
    most the latest lines, and a fleet run emits two events per step.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser().absolute()

    def __repr__(self) -> str:
        return f"JsonLinesEmitter({str(self.path)!r})"

    def emit(self, event: Mapping[str, Any]) -> None:
        line = _compact(event) + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with _lock_for(self.path):
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    if fcntl is not None:
                        fcntl.flock(fd, fcntl.LOCK_EX)  # released by close
                    view = memoryview(line)
                    while view:
                        view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
        except OSError as exc:
            raise LineageError(f"cannot append OpenLineage event to {self.path}: {exc.strerror or exc}") from exc


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would re-send credentials to wherever it points (and turn POST into GET).
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HttpEmitter:
    """POSTs each event as JSON to an OpenLineage HTTP endpoint (e.g. Marquez ``/api/v1/lineage``).

    Credentials may be given as ``user:password@`` in the URL (sent as HTTP Basic) or as
    ``headers`` (e.g. ``{"Authorization": "Bearer ..."}``); neither ever appears in an error
    message or ``repr``. Any non-2xx answer, redirect or network failure raises
    :class:`~mrv.errors.LineageError`.
    """

    def __init__(self, url: str, *, timeout: float = 10.0, headers: Mapping[str, str] | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LineageError("OpenLineage URL must be an http(s) URL with a host")
        if timeout <= 0:
            raise LineageError(f"timeout must be positive, not {timeout!r}")
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        self._url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        # For messages: no credentials, no query string (tokens sometimes travel there).
        self.safe_url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))
        self.timeout = float(timeout)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        self._headers.update(headers or {})
        self._opener = urllib.request.build_opener(_RefuseRedirects())

    def __repr__(self) -> str:
        return f"HttpEmitter({self.safe_url!r}, timeout={self.timeout})"

    def emit(self, event: Mapping[str, Any]) -> None:
        request = urllib.request.Request(self._url, data=_compact(event), headers=self._headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raise LineageError(
                f"OpenLineage endpoint {self.safe_url} rejected the event: HTTP {exc.code} {exc.reason}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise LineageError(f"OpenLineage endpoint {self.safe_url} unreachable: {reason}") from None
        if not 200 <= status < 300:
            raise LineageError(f"OpenLineage endpoint {self.safe_url} answered HTTP {status}")


def make_emitter(*, path: Path, url: str | None, timeout: float = 10.0) -> Emitter:
    """HTTP when an endpoint is configured, else JSON lines at ``path``."""
    return HttpEmitter(url, timeout=timeout) if url else JsonLinesEmitter(path)
