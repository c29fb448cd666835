"""Fuzz the live service's OpenAPI spec with schemathesis (bounded): never a 5xx, every error a JSON
``{"error", "detail"}`` 4xx.

Each operation is fuzzed with a few examples, once without a token and once as an officer (so the
officer-only endpoints get past auth), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.integration

_spec = importlib.util.spec_from_file_location("_svc_helpers_st", Path(__file__).with_name("test_service.py"))
svc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(svc)  # type: ignore[union-attr]
registry_url = svc.registry_url

MAX_EXAMPLES = 15


@schemathesis.serializer("application/zip")
def _zip_body(ctx, value):  # the package upload: arbitrary bytes (never a valid package)
    from schemathesis.transport.serialization import serialize_binary

    return {"data": serialize_binary(value)}


def test_openapi_fuzz_gives_no_server_errors(registry_url):
    with svc.LiveServer(registry_url) as server:
        tokens = {
            "none": None,
            "officer": server.token("officer", "fuzz-officer"),
            "developer": server.token("developer", "did:key:z6MkFuzzDeveloper"),
        }
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 12
        problems: list[str] = []

        def fuzz(op, who: str, headers: dict[str, str]) -> None:
            @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy())
            def run(case) -> None:
                response = case.call(base_url=server.url, headers=headers, timeout=60)
                if response.status_code >= 500:
                    problems.append(f"{op.label} as {who}: {response.status_code} {response.text[:300]}")
                elif response.status_code >= 400:
                    body = response.json()
                    if not (isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("detail"), str)):
                        problems.append(f"{op.label} as {who}: {response.status_code} without error/detail: {response.text[:300]}")

            run()

        for op in operations:
            for who, token in tokens.items():
                fuzz(op, who, {"Authorization": f"Bearer {token}"} if token else {})
        assert not problems, "\n".join(problems[:20])
