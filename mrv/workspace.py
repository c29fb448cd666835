"""The workspace data directory: everything a run produces lives under one root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mrv.errors import ConfigError
from mrv.settings import MRVSettings


@dataclass(frozen=True, slots=True)
class Workspace:
    """Layout of a workspace directory (default ``./.mrv``).

    ``artifacts/``            content-addressed blobs
    ``lineage.db``            SQLite lineage store (unless ``lineage_url`` points elsewhere)
    ``openlineage/events.jsonl``  OpenLineage RunEvents
    ``runs/<run_id>/``        human-facing run outputs (summary JSON)
    """

    root: Path
    lineage_url: str
    openlineage_url: str | None = None

    @classmethod
    def from_settings(cls, settings: MRVSettings) -> "Workspace":
        root = settings.home.expanduser().resolve()
        url = settings.lineage_url or f"sqlite:///{root / 'lineage.db'}"
        return cls(root=root, lineage_url=url, openlineage_url=settings.openlineage_url)

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"

    @property
    def openlineage_path(self) -> Path:
        return self.root / "openlineage" / "events.jsonl"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def ensure(self) -> "Workspace":
        try:
            for d in (self.root, self.artifacts_dir, self.openlineage_path.parent, self.runs_dir):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create workspace directory {self.root}: {exc}") from exc
        return self
