"""Alembic environment of the registry store (shared logic in :mod:`mrv.migrations_env`)."""

from mrv.registry.models import VERSION_TABLE, Base
from mrv.migrations_env import run_migrations

run_migrations(target_metadata=Base.metadata, version_table=VERSION_TABLE)
