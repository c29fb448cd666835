"""run_local validates and treats each meter as soon as it is read (mrv.pipeline._SeriesAhead):
the run's artifacts are exactly those of the steps run one after the other."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mrv import pipeline
from mrv.errors import ContractBlocked
from mrv.sample import generate_demo_project
from mrv.settings import MRVSettings


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory) -> Path:
    # Three meters with the sample's faults (a gap, a duplicated hour, a lapsed calibration, a
    # register rollover) and an invoice cross-check.
    return generate_demo_project(tmp_path_factory.mktemp("demo") / "project", seed=11)


def _run(tmp_path: Path, template: Path, name: str, *, engine: str, ahead: bool, monkeypatch) -> tuple[dict, dict[str, str]]:
    project_dir = tmp_path / f"project-{name}"
    shutil.copytree(template.parent, project_dir)
    settings = MRVSettings(home=tmp_path / f"ws-{name}", contract_engine=engine)
    with monkeypatch.context() as m:
        calls: list[str] = []
        real = pipeline._series_plan_for

        def plan(*args, **kwargs):
            calls.append("plan")
            return real(*args, **kwargs) if ahead else None

        m.setattr(pipeline, "_series_plan_for", plan)
        summary = pipeline.run_local(settings, project_dir / template.name, max_workers=2)
        assert calls == ["plan"]
    rows = pipeline.RunContext.open(settings, run_id=summary["run_id"]).lineage.run_artifacts(summary["run_id"])
    return summary, {f"{r.step_name}:{r.direction}:{r.role}": r.digest for r in rows}


@pytest.mark.parametrize("engine", ["native", "auto"])
def test_artifacts_equal_the_steps_run_one_after_the_other(tmp_path, demo_template, monkeypatch, engine):
    # "auto" on the small sample resolves to GX: the per-meter work is computed, then not used.
    ahead, ahead_arts = _run(tmp_path, demo_template, "ahead", engine=engine, ahead=True, monkeypatch=monkeypatch)
    plain, plain_arts = _run(tmp_path, demo_template, "plain", engine=engine, ahead=False, monkeypatch=monkeypatch)
    assert ahead_arts == plain_arts
    for key in ("quantities", "issuable_tCO2e", "treatments", "contract", "artifacts"):
        assert ahead[key] == plain[key], key
    assert ahead["contract"]["engine"] == ("native" if engine == "native" else "gx")
    # The faults are there to be handled (a run without them would prove little).
    assert ahead["contract"]["rows"]["quarantined"] > 0
    kinds = {t["kind"] for t in ahead["treatments"]}
    assert {"missing_intervals", "delayed_calibration_mpe", "invoice_cross_check"} <= kinds


def test_the_per_meter_work_is_what_the_validate_and_calculate_steps_use(tmp_path, demo_template, monkeypatch):
    used: dict[str, object] = {}
    real_merge = pipeline._merge_ahead

    def merge(*args, **kwargs):
        got = real_merge(*args, **kwargs)
        used["merged"] = got
        return got

    monkeypatch.setattr(pipeline, "_merge_ahead", merge)
    _run(tmp_path, demo_template, "used", engine="native", ahead=True, monkeypatch=monkeypatch)
    outcome, treated = used["merged"]  # type: ignore[misc]
    from methodologies.cdm_acm0002.v22.monitoring import TreatedSeries
    from mrv.contracts.runner import ValidRows

    assert isinstance(outcome.valid, ValidRows)  # the rows themselves were let go per meter
    assert isinstance(treated, TreatedSeries) and len(treated) == 3
    assert all(t.table is not None for t in treated.values())  # kept for the invoice cross-check


def test_a_blocked_contract_reports_as_without_the_per_meter_work(tmp_path, demo_template, monkeypatch):
    # A declared meter whose readings are all outside the period: coverage (block) fails. The
    # per-meter outcomes cannot decide that, so the readings are validated together as usual.
    project = demo_template.parent
    text = (project / demo_template.name).read_text()
    assert "monitoring_period" in text
    messages = []
    for ahead in (True, False):
        d = tmp_path / f"blocked-{ahead}"
        shutil.copytree(project, d)
        p = d / demo_template.name
        p.write_text(text.replace("start: 2023-01-01", "start: 2021-01-01").replace("end: 2023-12-31", "end: 2021-12-31"))
        settings = MRVSettings(home=tmp_path / f"ws-blocked-{ahead}", contract_engine="native")
        with monkeypatch.context() as m:
            if not ahead:
                m.setattr(pipeline, "_series_plan_for", lambda *a, **k: None)
            with pytest.raises(ContractBlocked) as info:
                pipeline.run_local(settings, p, max_workers=2)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "period_covered" in messages[0] or "in_period" in messages[0]
