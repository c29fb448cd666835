"""Lineage: a SQL record of every step's inputs, outputs, code version and parameters, and its
export as OpenLineage RunEvents."""

from __future__ import annotations

from mrv.lineage.codeversion import CodeVersion, code_version
from mrv.lineage.models import Direction, RunStatus, StepStatus
from mrv.lineage.openlineage import Emitter, HttpEmitter, JsonLinesEmitter, build_run_event, make_emitter
from mrv.lineage.store import ArtifactRow, CachedStep, LineageStore, RunInfo, StepInfo

__all__ = [
    "ArtifactRow",
    "CachedStep",
    "CodeVersion",
    "Direction",
    "Emitter",
    "HttpEmitter",
    "JsonLinesEmitter",
    "LineageStore",
    "RunInfo",
    "RunStatus",
    "StepInfo",
    "StepStatus",
    "build_run_event",
    "code_version",
    "make_emitter",
]
