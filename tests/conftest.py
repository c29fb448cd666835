"""Shared fixtures.

``lineage_url`` runs a test once on SQLite (a file under ``tmp_path``) and once on the local
PostgreSQL (a fresh schema in database ``test``, dropped afterwards). The PostgreSQL case fails
when the server is unreachable -- a silent skip would hide that half the suite did not run --
unless ``MRV_TEST_NO_POSTGRES=1`` says the machine has no PostgreSQL on purpose.
``MRV_TEST_POSTGRES_URL`` points the PostgreSQL tests at another server/database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_URL_ENV = "MRV_TEST_POSTGRES_URL"  # another server for the PostgreSQL tests (optional)
NO_POSTGRES_ENV = "MRV_TEST_NO_POSTGRES"


def _pg_schema_url(admin_url: str, schema: str) -> str:
    from sqlalchemy.engine import make_url

    # libpq `options` puts the schema first on the search path of every connection, so the
    # code under test needs no schema awareness at all.
    url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty PostgreSQL schema (dropped after the test)."""
    if os.environ.get(NO_POSTGRES_ENV) == "1":
        pytest.skip(f"{NO_POSTGRES_ENV}=1: PostgreSQL tests disabled on this machine")
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin_url = os.environ.get(PG_URL_ENV) or DEFAULT_PG_URL
    admin = create_engine(admin_url, connect_args={"connect_timeout": 5})
    schema = f"mrv_test_{uuid.uuid4().hex[:16]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        shown = admin.url.render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL at {shown} is unreachable ({exc.orig}). Start it, or set "
            f"{NO_POSTGRES_ENV}=1 to skip the PostgreSQL tests on purpose.",
            pytrace=False,
        )
    try:
        yield _pg_schema_url(admin_url, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=[pytest.mark.postgres, pytest.mark.integration]),
    ]
)
def lineage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A lineage store URL with nothing in it yet: SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lineage.db'}"
    return request.getfixturevalue("postgres_url")
