"""The registry is not ACM0002-specific: CAD Trust sector, project type and unit type come from the
methodology's declared metadata, and the double-issuance check covers instruments and device
fleets as well as meters (a serial counted in another project's overlapping request fails it)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mrv import pipeline
from mrv.attest import Opinion, attest
from mrv.registry import cadt
from mrv.registry.checks import CheckName, IntakeRequest, PriorRequest, RegistryPolicy, prepare_package, run_intake_checks
from mrv.registry.repository import _sector_and_types
from mrv.report.build import build_report
from mrv.sample.cooking import PROJECT_ID as COOKING_ID, generate_cooking_project
from mrv.sample.landfill import PROJECT_ID as LANDFILL_ID, generate_landfill_project
from mrv.settings import MRVSettings
from mrv.signing import KeyRole, generate_key

pytestmark = pytest.mark.integration


# --------------------------------------------------------------------------- (a) CAD Trust metadata


@pytest.mark.parametrize(
    "methodology, sector, project_type, unit_type",
    [
        ("CDM:ACM0002:22.0", "Energy industries (renewable/non-renewable sources)", "Grid-connected renewable electricity", cadt.UnitType.AVOIDANCE),
        ("CDM:ACM0001:19.0", "Waste handling and disposal", "Landfill gas flaring and use", cadt.UnitType.REDUCTION_TECHNICAL),
        ("GS:MECD:2.0", "Energy demand", "Metered electric cooking", cadt.UnitType.AVOIDANCE),
        ("VCS:VM0047:1.0", "Agriculture Forestry and Other Land Use", "Afforestation, reforestation and revegetation", cadt.UnitType.REMOVAL_NATURE),
    ],
)
def test_sector_and_types_come_from_the_methodology(methodology: str, sector: str, project_type: str, unit_type: cadt.UnitType) -> None:
    from mrv.methodology import registry

    info = registry.get(methodology).info
    assert _sector_and_types(methodology) == (info.sector, info.project_type, cadt.UnitType(info.unit_type))
    assert _sector_and_types(methodology) == (sector, project_type, unit_type)


def test_a_methodology_not_installed_at_the_registry_is_not_specified() -> None:
    assert _sector_and_types("XYZ:NOT-INSTALLED:1.0") == ("Not Specified", "Not Specified", cadt.UnitType.NOT_DETERMINED)
    assert _sector_and_types("") == ("Not Specified", "Not Specified", cadt.UnitType.NOT_DETERMINED)


# --------------------------------------------------------------------------- (b) instruments and devices


def _package(root: Path, project: Path, *, new_id: str | None, dev: Any, vvb: Any, name: str) -> Path:
    """Run ``project`` (renamed to ``new_id``), build the signed package and attest it."""
    if new_id is not None:
        text = project.read_text()
        old_id = COOKING_ID if COOKING_ID in text else LANDFILL_ID
        project.write_text(text.replace(old_id, new_id))
    settings = MRVSettings(home=root / f"ws-{name}", contract_engine="native")
    summary = pipeline.run_local(settings, project)
    ws, store, lineage = pipeline.open_workspace(settings)
    out = build_report(workspace=ws, store=store, lineage=lineage, run_id=summary["run_id"], key=dev, out_dir=root / f"r-{name}")
    pkg = root / f"{name}.zip"
    shutil.copyfile(out.package.path, pkg)
    attest(pkg, key=vvb, opinion=Opinion.positive, findings=[], replay=None, materiality=0.01)
    return pkg


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("generic")
    dev, vvb = generate_key(role=KeyRole.developer), generate_key(role=KeyRole.vvb)
    out: dict[str, Any] = {"dev": dev, "vvb": vvb}
    start = date(2024, 1, 1)
    # Two cooking programmes generated with the same seed share the device serials of their registry.
    out["cook_a"] = _package(root, generate_cooking_project(root / "cook-a", seed=5, devices=20, days=14, start=start),
                             new_id=None, dev=dev, vvb=vvb, name="cook-a")
    out["cook_b"] = _package(root, generate_cooking_project(root / "cook-b", seed=5, devices=20, days=14, start=start),
                             new_id="DEMO-ECOOK-BD-002", dev=dev, vvb=vvb, name="cook-b")
    out["cook_c"] = _package(root, generate_cooking_project(root / "cook-c", seed=6, devices=20, days=14, start=start),
                             new_id="DEMO-ECOOK-BD-003", dev=dev, vvb=vvb, name="cook-c")
    out["lfg_a"] = _package(root, generate_landfill_project(root / "lfg-a", days=2), new_id=None, dev=dev, vvb=vvb, name="lfg-a")
    out["lfg_b"] = _package(root, generate_landfill_project(root / "lfg-b", days=2), new_id="DEMO-LFG-BR-002", dev=dev, vvb=vvb,
                            name="lfg-b")
    return out


def _prior(pkg: Path, *, request_id: str, status: str = "checks_passed") -> PriorRequest:
    f = prepare_package(IntakeRequest(requested_quantity=1, package=pkg)).facts
    assert f.project_id and f.report_sha256 and f.period_start and f.period_end
    return PriorRequest(project_id=f.project_id, report_sha256=f.report_sha256, period_start=f.period_start, period_end=f.period_end,
                        meter_ids=f.meter_ids, status=status, request_id=request_id)


def _period_check(packages: dict[str, Any], pkg: Path, prior: list[PriorRequest]) -> Any:
    f = prepare_package(IntakeRequest(requested_quantity=1, package=pkg)).facts
    policy = RegistryPolicy(accredited_vvbs=frozenset({packages["vvb"].did}),
                            project_developers={f.project_id: frozenset({packages["dev"].did})},
                            accepted_methodologies=frozenset({"GS:MECD:2.0", "CDM:ACM0001:19.0"}))
    return run_intake_checks(IntakeRequest(requested_quantity=1, package=pkg), policy=policy, prior_requests=prior,
                             boundaries=[]).check(CheckName.period_not_overlapping)


def test_device_serials_come_from_the_packaged_registry(packages: dict[str, Any]) -> None:
    f = prepare_package(IntakeRequest(requested_quantity=1, package=packages["cook_a"])).facts
    assert f.project_id == COOKING_ID
    assert len(f.meter_ids) == 20 and all(s.startswith("SN05") for s in f.meter_ids), f.meter_ids
    assert {sn for _, sn in f.meters} == f.meter_ids
    g = prepare_package(IntakeRequest(requested_quantity=1, package=packages["lfg_a"])).facts
    assert g.meter_ids and g.meter_ids == {i for i, _ in g.meters}  # instruments without a serial: their ids


def test_a_device_serial_of_another_projects_overlapping_request_fails(packages: dict[str, Any]) -> None:
    prior = [_prior(packages["cook_a"], request_id="r-cook-a")]
    check = _period_check(packages, packages["cook_b"], prior)
    assert not check.passed
    assert "device serials SN05" in check.reason and f"request r-cook-a of project {COOKING_ID}" in check.reason, check.reason
    # Another fleet (other serials) over the same period passes; so does the same fleet after a rejection.
    assert _period_check(packages, packages["cook_c"], prior).passed
    assert _period_check(packages, packages["cook_b"], [_prior(packages["cook_a"], request_id="r", status="rejected")]).passed


def test_an_instrument_of_another_projects_overlapping_request_fails(packages: dict[str, Any]) -> None:
    prior = [_prior(packages["lfg_a"], request_id="r-lfg-a")]
    check = _period_check(packages, packages["lfg_b"], prior)
    assert not check.passed
    assert "instrument serial" in check.reason and f"request r-lfg-a of project {LANDFILL_ID}" in check.reason, check.reason
    # Periods that do not overlap: no conflict.
    a = prior[0]
    later = PriorRequest(project_id=a.project_id, report_sha256=a.report_sha256, period_start=date(2030, 1, 1),
                         period_end=date(2030, 12, 31), meter_ids=a.meter_ids, status="checks_passed", request_id="r-later")
    assert _period_check(packages, packages["lfg_b"], [later]).passed
