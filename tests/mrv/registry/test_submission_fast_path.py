"""The submission fast path (``_SubmissionFastPath``): ``POST /v1/requests`` with plainly valid
parameters skips FastAPI's per-request parameter solving; everything else goes through the route.

Two real uvicorn servers on loopback, one with the fast path and one without, on two fresh
PostgreSQL schemas, get the same sequence of submissions (good, retried, conflicting, and
malformed in every parameter) and must answer each one the same way. Which requests take the fast
path is checked on the parser itself.
"""

from __future__ import annotations

import importlib.util
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mrv.registry.auth import create_token
from mrv.registry.serials import MAX_BLOCK
from mrv.registry.service import _plain_submission

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

_spec = importlib.util.spec_from_file_location("_svc_helpers_fast_path", Path(__file__).with_name("test_service.py"))
svc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(svc)  # type: ignore[union-attr]

chain = svc.chain


def _scope(headers: list[tuple[str, str]], query: str = "") -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/v1/requests", "root_path": "", "query_string": query.encode("latin-1"),
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]}


GOOD = [("Authorization", "Bearer mrvt_abc"), ("Idempotency-Key", "key-00000001"), ("Content-Type", "application/zip")]


@pytest.mark.parametrize(("headers", "query", "expected"), [
    (GOOD, "quantity=5", ("mrvt_abc", "key-00000001", 5, None)),
    (GOOD, "quantity=5&label=CORSIA&label=article6&other=x", ("mrvt_abc", "key-00000001", 5, ["CORSIA", "article6"])),
    (GOOD, "label=&quantity=1", ("mrvt_abc", "key-00000001", 1, [""])),  # a blank label: the route refuses it, on both paths
    ([("Authorization", "bearer   mrvt_abc  "), *GOOD[1:]], "quantity=1", ("mrvt_abc", "key-00000001", 1, None)),  # as HTTPBearer reads it
    ([*GOOD[:1], ("Idempotency-Key", "key\twith-tab")], "quantity=1", ("mrvt_abc", "key\twith-tab", 1, None)),  # the route refuses it
    (GOOD, f"quantity={MAX_BLOCK}", ("mrvt_abc", "key-00000001", MAX_BLOCK, None)),
    (GOOD, "quantity=%31%32", ("mrvt_abc", "key-00000001", 12, None)),  # percent-decoded as Starlette does
])
def test_plain_submissions_are_read_as_fastapi_reads_them(headers, query, expected):
    assert _plain_submission(_scope(headers, query)) == expected


@pytest.mark.parametrize(("headers", "query"), [
    (GOOD[1:], "quantity=1"),  # no Authorization
    ([("Authorization", "Basic abc"), *GOOD[1:]], "quantity=1"),
    ([("Authorization", "Bearer "), *GOOD[1:]], "quantity=1"),
    ([("Authorization", "Bearer a"), ("Authorization", "Bearer b"), *GOOD[1:]], "quantity=1"),
    ([GOOD[0], GOOD[2]], "quantity=1"),  # no Idempotency-Key
    ([GOOD[0], ("Idempotency-Key", "short"), GOOD[2]], "quantity=1"),
    ([GOOD[0], ("Idempotency-Key", "k" * 201), GOOD[2]], "quantity=1"),
    ([*GOOD, ("Idempotency-Key", "key-00000002")], "quantity=1"),
    (GOOD, ""), (GOOD, "quantity="), (GOOD, "quantity=0"), (GOOD, "quantity=-1"), (GOOD, "quantity=+1"), (GOOD, "quantity=01"),
    (GOOD, "quantity=1.0"), (GOOD, "quantity=1e3"), (GOOD, "quantity= 1"), (GOOD, "quantity=abc"), (GOOD, f"quantity={MAX_BLOCK + 1}"),
    (GOOD, "quantity=1&quantity=2"), (GOOD, "quantity=1" + "&label=CORSIA" * 21),
])
def test_everything_else_is_left_to_fastapi(headers, query):
    assert _plain_submission(_scope(headers, query)) is None


# --------------------------------------------------------------------------- the same answers


@pytest.fixture
def servers(postgres_url: str, chain: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    admin_url = os.environ.get("MRV_TEST_POSTGRES_URL") or make_url(postgres_url).difference_update_query(["options"]).render_as_string(hide_password=False)
    admin = create_engine(admin_url)
    schema = f"mrv_test_{uuid.uuid4().hex[:16]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    second = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    try:
        with svc.LiveServer(postgres_url, fast_path=True) as fast, svc.LiveServer(second, fast_path=False) as slow:
            out = []
            for server in (fast, slow):
                officer = create_token(server.store, role="officer", subject="officer-ana")
                tokens = {"officer": officer, "developer": create_token(server.store, role="developer", subject=chain["dev"].did)}
                with httpx.Client(base_url=server.url, timeout=120.0) as c:
                    h = {"Authorization": f"Bearer {officer}"}
                    assert c.post("/v1/admin/vvbs", json={"did": chain["vvb"].did}, headers=h).status_code == 201
                    assert c.post("/v1/admin/methodologies", json={"id": svc.METHODOLOGY}, headers=h).status_code == 201
                    assert c.post("/v1/admin/developers", json={"project_id": svc.PROJECT, "did": chain["dev"].did}, headers=h).status_code == 201
                out.append({"server": server, "tokens": tokens})
            yield out
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _answer(response: httpx.Response) -> tuple[int, Any, str]:
    """Status, JSON body without the ids one server made up, and content type."""
    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\b[0-9a-f]{32}\b", "<id>", value)  # request ids in reasons
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items() if k not in ("id", "request_id")}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return response.status_code, scrub(response.json()), response.headers.get("content-type", "")


def test_both_paths_answer_every_submission_the_same(servers, chain):
    package = chain["package"]
    quantity = str(chain["issuable"])

    def requests(tokens: dict[str, str]) -> list[tuple[list[tuple[str, str]], str, bytes]]:
        dev, officer = f"Bearer {tokens['developer']}", f"Bearer {tokens['officer']}"
        dev_lower_scheme = f"bearer {tokens['developer']}"
        zip_headers = [("Content-Type", "application/zip")]
        return [
            ([("Idempotency-Key", "key-00000001"), *zip_headers], f"quantity={quantity}", package),  # no token
            ([("Authorization", "Basic abc"), ("Idempotency-Key", "key-00000001"), *zip_headers], f"quantity={quantity}", package),
            ([("Authorization", "Bearer mrvt_unknown"), ("Idempotency-Key", "key-00000001"), *zip_headers], f"quantity={quantity}", package),
            ([("Authorization", officer), ("Idempotency-Key", "key-00000001"), *zip_headers], f"quantity={quantity}", package),
            ([("Authorization", dev), *zip_headers], f"quantity={quantity}", package),  # no key
            ([("Authorization", dev), ("Idempotency-Key", "short"), *zip_headers], f"quantity={quantity}", package),
            ([("Authorization", dev), ("Idempotency-Key", "key\twith-tab"), *zip_headers], f"quantity={quantity}", package),
            ([("Authorization", dev), ("Idempotency-Key", "key-00000001"), *zip_headers], "quantity=0", package),
            ([("Authorization", dev), ("Idempotency-Key", "key-00000001"), *zip_headers], "quantity=abc", package),
            ([("Authorization", dev), ("Idempotency-Key", "key-00000001"), *zip_headers], f"quantity={MAX_BLOCK + 1}", package),
            ([("Authorization", dev), ("Idempotency-Key", "key-00000001"), *zip_headers], "", package),
            ([("Authorization", dev), ("Idempotency-Key", "key-00000001"), *zip_headers], f"quantity={quantity}&label=nonsense", package),
            ([("Authorization", dev), ("Idempotency-Key", "key-00000001"), *zip_headers], f"quantity={quantity}" + "&label=CORSIA" * 21, package),
            ([("Authorization", dev), ("Idempotency-Key", "key-00000001"), ("Content-Type", "text/plain")], f"quantity={quantity}", package),
            ([("Authorization", dev), ("Idempotency-Key", "key-00000001"), *zip_headers], f"quantity={quantity}", b""),
            ([("Authorization", dev), ("Idempotency-Key", "key-00000009"), *zip_headers], f"quantity={quantity}", b"not a zip"),
            ([("Authorization", dev), ("Idempotency-Key", "key-00000001"), *zip_headers], f"quantity={int(quantity) + 1}", package),  # too many
            ([("Authorization", dev_lower_scheme), ("Idempotency-Key", "key-00000002"), *zip_headers],
             f"quantity={quantity}&label=CORSIA&label=article6", package),  # accepted
            ([("Authorization", dev), ("Idempotency-Key", "key-00000002"), *zip_headers], f"quantity={quantity}&label=CORSIA&label=article6",
             package),  # the same again: the original answer
            ([("Authorization", dev), ("Idempotency-Key", "key-00000002"), *zip_headers], f"quantity={quantity}", package),  # key reused
            ([("Authorization", dev), ("Idempotency-Key", "key-00000003"), *zip_headers], f"quantity={quantity}", package),  # report again
            ([("Authorization", dev), ("Authorization", dev), ("Idempotency-Key", "key-00000004"), *zip_headers], f"quantity={quantity}", package),
            ([("Authorization", dev), ("Idempotency-Key", "key-00000005"), *zip_headers], "quantity=01", package),  # FastAPI reads it: 1
        ]

    answers: list[list[tuple[int, Any, str]]] = []
    for side in servers:
        with httpx.Client(base_url=side["server"].url, timeout=120.0) as c:
            answers.append([_answer(c.post(f"/v1/requests?{query}" if query else "/v1/requests", headers=headers, content=body))
                            for headers, query, body in requests(side["tokens"])])
    fast, slow = answers
    for i, (a, b) in enumerate(zip(fast, slow)):
        assert a == b, (i, a, b)
    statuses = [a[0] for a in fast]
    assert statuses[:4] == [401, 401, 401, 403] and 201 in statuses and 200 in statuses and statuses.count(409) == 4 and statuses.count(201) == 2
    assert {422, 415} <= set(statuses)
    stored = []
    for side in servers:
        with side["server"].store.connection(write=False) as conn:
            stored.append(sorted(tuple(r) for r in conn.execute(text("SELECT idempotency_key, status, requested_quantity, labels::text "
                                                                      "FROM intake_requests"))))
    assert stored[0] == stored[1] and len(stored[0]) >= 2
