"""Configuration via pydantic-settings. Always constructed explicitly and passed down; never read at import."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MRVSettings(BaseSettings):
    """Settings for one workspace. Environment variables use the ``MRV_`` prefix (``MRV_HOME``...)."""

    model_config = SettingsConfigDict(env_prefix="MRV_", extra="ignore")

    home: Path = Field(default=Path(".mrv"), description="Workspace data directory (like MLflow's ./mlruns).")
    lineage_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the lineage store; default: SQLite under `home`."
    )
    openlineage_url: str | None = Field(
        default=None, description="OpenLineage HTTP endpoint; default: JSON lines under `home`."
    )
    contract_engine: Literal["auto", "gx", "native"] = Field(
        default="auto",
        description="Evaluator for compiled contract suites: Great Expectations, the vectorised native "
        "evaluator, or auto (GX up to `gx_row_limit` rows).",
    )
    gx_row_limit: int = Field(default=2_000_000, ge=0)
