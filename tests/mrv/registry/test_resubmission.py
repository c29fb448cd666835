"""Re-submitting a report after its earlier request failed or was rejected, and label mapping to
CADT label types. Server helpers and fixtures come from test_service.py (loaded by path)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

_spec = importlib.util.spec_from_file_location("_svc_helpers_resubmission", Path(__file__).with_name("test_service.py"))
svc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(svc)  # type: ignore[union-attr]

registry_url = svc.registry_url
chain = svc.chain
live = svc.live
auth, submit, setup_policy = svc.auth, svc.submit, svc.setup_policy


def test_resubmission_after_rejection_is_accepted_but_not_while_one_counts(live):
    client, tokens, chain, server = live["client"], live["tokens"], live["chain"], live["server"]
    setup_policy(client, tokens["officer"], vvb=chain["vvb"].did, developer=chain["dev"].did)
    first = submit(client, tokens["developer"], chain["package"], quantity=100, key="resubmit-key-1")
    assert first.status_code == 201 and first.json()["status"] == "checks_passed", first.text
    # while the first one counts (checks_passed): refused
    dup = submit(client, tokens["developer"], chain["package"], quantity=100, key="resubmit-key-2")
    assert dup.status_code == 409 and dup.json()["error"] == "report_already_submitted"
    assert dup.json()["request_id"] == first.json()["id"]
    rejected = client.post(f"/v1/requests/{first.json()['id']}/reject", json={"reason": "fix quantity"}, headers=auth(tokens["officer"]))
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    # after the rejection: accepted under a new key, and its checks pass (the rejected one does not count)
    second = submit(client, tokens["developer"], chain["package"], quantity=90, key="resubmit-key-3")
    assert second.status_code == 201 and second.json()["status"] == "checks_passed", second.text
    assert second.json()["id"] != first.json()["id"]
    # the old key still replays the original
    assert submit(client, tokens["developer"], chain["package"], quantity=100, key="resubmit-key-1").json() == first.json()
    # while the second one is checks_passed: a third is refused, nothing stored
    third = submit(client, tokens["developer"], chain["package"], quantity=80, key="resubmit-key-4")
    assert third.status_code == 409 and third.json()["error"] == "report_already_submitted"
    assert third.json()["request_id"] == second.json()["id"]
    assert svc._count(server.store, "intake_requests") == 2


def test_resubmission_after_checks_failed_is_accepted(live):
    client, tokens, chain, server = live["client"], live["tokens"], live["chain"], live["server"]
    # the developer is not registered for the project yet: checks_failed
    setup_policy(client, tokens["officer"], vvb=chain["vvb"].did, developer=chain["dev2"].did)
    failed = submit(client, tokens["developer"], chain["package"], quantity=10, key="failed-key-1")
    assert failed.status_code == 201 and failed.json()["status"] == "checks_failed"
    h = auth(tokens["officer"])
    assert client.post("/v1/admin/developers", json={"project_id": svc.PROJECT, "did": chain["dev"].did}, headers=h).status_code == 201
    again = submit(client, tokens["developer"], chain["package"], quantity=10, key="failed-key-2")
    assert again.status_code == 201 and again.json()["status"] == "checks_passed", again.text
    assert svc._count(server.store, "intake_requests") == 2


def test_labels_map_to_cadt_label_types(live):
    client, tokens, chain = live["client"], live["tokens"], live["chain"]
    setup_policy(client, tokens["officer"], vvb=chain["vvb"].did, developer=chain["dev"].did)
    r = submit(client, tokens["developer"], chain["package"], quantity=50, key="labels-key-1", labels=("article6", "CORSIA"))
    assert r.status_code == 201, r.text
    shown = client.get(f"/v1/requests/{r.json()['id']}", headers=auth(tokens["developer"])).json()
    assert shown["labels"] == ["Article 6 authorization", "CORSIA eligible"]
    approved = client.post(f"/v1/requests/{r.json()['id']}/approve", headers=auth(tokens["officer"]))
    assert approved.status_code == 200, approved.text
    project = client.get(f"/v1/projects/{svc.PROJECT}").json()
    assert sorted((x["label"], x["labelType"]) for x in project["labels"]) == [
        ("Article 6 authorization", "Letter of Qualification"),
        ("CORSIA eligible", "Certification"),
    ]
    unit = client.get("/v1/units", params={"projectId": svc.PROJECT}).json()["items"][0]
    assert sorted(x["labelType"] for x in unit["labels"]) == ["Certification", "Letter of Qualification"]


def test_unknown_label_is_422_listing_the_accepted_names(live):
    client, tokens, chain, server = live["client"], live["tokens"], live["chain"], live["server"]
    setup_policy(client, tokens["officer"], vvb=chain["vvb"].did, developer=chain["dev"].did)
    r = submit(client, tokens["developer"], chain["package"], quantity=50, key="labels-key-2", labels=("CORSIA", "Gold Star"))
    assert r.status_code == 422 and r.json()["error"] == "unknown_label", r.text
    assert "Gold Star" in r.json()["detail"] and "article6" in r.json()["detail"] and "corsia" in r.json()["detail"]
    assert "article6" in r.json()["accepted_labels"]
    assert svc._count(server.store, "intake_requests") == 0
