"""CAD Trust v1 model: picklists, unknown keys refused, ISO-8601 with Z, and a project with
nested records plus its units survives export -> JSON -> import unchanged."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from mrv.registry.cadt import (
    CorrespondingAdjustmentDeclaration,
    LabelType,
    Project,
    ProjectStatus,
    Unit,
    UnitStatus,
    UnitType,
)

ISSUANCE = {
    "id": "iss-1", "warehouseProjectId": "wp-1", "startDate": "2024-01-01T00:00:00.000Z",
    "endDate": "2024-12-31T23:59:59.000Z", "verificationApproach": "Desk review",
    "verificationBody": "Example VVB", "verificationReportDate": "2025-02-01T00:00:00.000Z",
}


def project_json() -> dict[str, Any]:
    return {
        "warehouseProjectId": "wp-1", "currentRegistry": "open-dmrv", "projectId": "PRJ-1",
        "originProjectId": "PRJ-1", "registryOfOrigin": "open-dmrv", "program": "CDM",
        "projectName": "Solar PV", "projectLink": "https://example.org/prj-1", "projectDeveloper": "did:key:z6Mk",
        "sector": "Energy industries (renewable/non-renewable sources)", "projectType": "Renewable Energy Installation",
        "coveredByNDC": "Inside NDC", "projectStatus": "Registered", "projectStatusDate": "2023-05-01T00:00:00.000Z",
        "unitMetric": "tCO2e", "methodology": "CDM - ACM0002", "methodology2": "CDM:ACM0002:22.0",
        "projectLocations": [{"id": "loc-1", "country": "Kenya", "inCountryRegion": "Nakuru",
                              "geographicIdentifier": '{"type":"Point","coordinates":[36.07,-0.30]}'}],
        "issuances": [copy.deepcopy(ISSUANCE)],
        "labels": [{"id": "lab-1", "label": "Article 6.2 authorization", "labelType": "Letter of Qualification",
                    "creditingPeriodStartDate": "2024-01-01T00:00:00.000Z", "creditingPeriodEndDate": "2030-12-31T00:00:00.000Z",
                    "validityPeriodStartDate": "2024-01-01T00:00:00.000Z", "validityPeriodEndDate": "2030-12-31T00:00:00.000Z",
                    "unitQuantity": 1000, "labelLink": "https://example.org/loa"}],
        "estimations": [{"id": "est-1", "creditingPeriodStart": "2024-01-01T00:00:00.000Z",
                         "creditingPeriodEnd": "2024-12-31T00:00:00.000Z", "unitCount": 1200}],
        "coBenefits": [{"id": "cb-1", "cobenefit": "SDG 7 - Affordable and clean energy"}],
    }


def unit_json() -> dict[str, Any]:
    return {
        "warehouseUnitId": "u-1", "countryJurisdictionOfOwner": "Kenya", "unitBlockStart": "ODMRV-PRJ-1-2024-1",
        "unitBlockEnd": "ODMRV-PRJ-1-2024-100", "unitCount": 100, "vintageYear": 2024,
        "unitType": "Reduction - technical", "unitStatus": "Held", "unitRegistryLink": "https://example.org/units/u-1",
        "correspondingAdjustmentDeclaration": "Committed", "correspondingAdjustmentStatus": "Pending",
        "issuance": copy.deepcopy(ISSUANCE), "labels": project_json()["labels"],
    }


def test_round_trip_project_and_units() -> None:
    p = Project.from_cadt(project_json())
    u = Unit.from_cadt(unit_json())
    assert p.projectStatus is ProjectStatus.REGISTERED and p.labels[0].labelType is LabelType.LETTER_OF_QUALIFICATION
    assert u.unitType is UnitType.REDUCTION_TECHNICAL
    assert u.issuance.id == p.issuances[0].id  # the unit's only link to the project
    wire = json.loads(json.dumps({"project": p.to_cadt(), "units": [u.to_cadt()]}))
    assert wire["project"] == project_json()  # exactly the CADT payload we started from
    assert wire["units"][0] == unit_json()
    assert Project.from_cadt(wire["project"]) == p and Unit.from_cadt(wire["units"][0]) == u


def test_datetimes_need_time_and_zone_and_come_back_with_z() -> None:
    data = project_json() | {"projectStatusDate": "2023-05-01T02:00:00+02:00"}
    p = Project.from_cadt(data)
    assert p.projectStatusDate == datetime(2023, 5, 1, tzinfo=timezone.utc)
    assert p.to_cadt()["projectStatusDate"] == "2023-05-01T00:00:00.000Z"
    for bad in ("2023-05-01", "2023-05-01T00:00:00", "01/05/2023", 1682899200):
        with pytest.raises(ValidationError, match="projectStatusDate"):
            Project.from_cadt(project_json() | {"projectStatusDate": bad})


@pytest.mark.parametrize(
    ("field", "value"),
    [("coveredByNDC", "Maybe"), ("projectStatus", "registered"), ("unitMetric", "tCO2"), ("projectName", "")],
)
def test_project_picklists(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Project.from_cadt(project_json() | {field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [("unitType", "Removal"), ("unitStatus", "Issued"), ("correspondingAdjustmentDeclaration", "Yes"),
     ("correspondingAdjustmentStatus", "Done"), ("countryJurisdictionOfOwner", "Atlantis"), ("vintageYear", 1800),
     ("unitCount", 0)],
)
def test_unit_picklists(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        Unit.from_cadt(unit_json() | {field: value})


def test_nested_picklists_and_country() -> None:
    data = project_json()
    data["labels"][0]["labelType"] = "Authorization"
    with pytest.raises(ValidationError, match="labelType"):
        Project.from_cadt(data)
    data = project_json()
    data["projectLocations"][0]["country"] = "Narnia"
    with pytest.raises(ValidationError, match="country"):
        Project.from_cadt(data)


def test_unknown_keys_rejected_at_every_level() -> None:
    with pytest.raises(ValidationError, match="projectColour"):
        Project.from_cadt(project_json() | {"projectColour": "green"})
    data = project_json()
    data["issuances"][0]["extra"] = 1
    with pytest.raises(ValidationError, match="extra"):
        Project.from_cadt(data)
    with pytest.raises(ValidationError, match="serialNumber"):
        Unit.from_cadt(unit_json() | {"serialNumber": "x"})


def test_unit_rules() -> None:
    no_id = unit_json()
    del no_id["issuance"]["id"]
    with pytest.raises(ValidationError, match="issuance must carry its id"):
        Unit.from_cadt(no_id)
    with pytest.raises(ValidationError, match="unitStatusReason"):
        Unit.from_cadt(unit_json() | {"unitStatus": "Retired"})
    u = Unit.from_cadt(unit_json() | {"unitStatus": "Retired", "unitStatusReason": "offsetting 2024"})
    assert u.unitStatus is UnitStatus.RETIRED
    assert CorrespondingAdjustmentDeclaration("Not Required")


def test_periods_ordered_and_empty_child_lists_refused() -> None:
    data = project_json()
    data["issuances"][0]["endDate"] = "2023-01-01T00:00:00.000Z"
    with pytest.raises(ValidationError, match="before start"):
        Project.from_cadt(data)
    with pytest.raises(ValidationError, match="issuances"):
        Project.from_cadt(project_json() | {"issuances": []})
