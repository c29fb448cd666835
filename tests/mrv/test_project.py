import textwrap
from datetime import datetime, timezone

import pytest

from mrv.errors import ProjectSpecError
from mrv.project import load_project

VALID = """
project: {id: P-1, name: Test wind, type: wind}
methodology: "CDM:ACM0002:22.0"
boundary:
  country: IN
  geometry: {type: Point, coordinates: [77.5, 8.9]}
monitoring_period: {start: 2023-01-01, end: 2023-12-31, timezone: Asia/Kolkata}
installed_capacity: {value: 50, unit: MW}
data_sources:
  meters:
    - id: EXP-1
      serial: S1
      direction: export
      accuracy_class: 0.2
      files: "data/*.csv"
      calibrations: [{valid_from: 2022-01-01, valid_to: 2024-01-01}]
parameters:
  EF_grid_CM_y: {value: 0.7, unit: tCO2e/MWh, source: test}
"""


def write(tmp_path, text):
    p = tmp_path / "project.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_valid_project_and_period_in_utc(tmp_path):
    spec = load_project(write(tmp_path, VALID))
    assert spec.project.id == "P-1"
    # Midnight in Asia/Kolkata (+05:30) is 18:30 UTC the previous day; the end is exclusive.
    assert spec.monitoring_period.start_utc == datetime(2022, 12, 31, 18, 30, tzinfo=timezone.utc)
    assert spec.monitoring_period.end_utc == datetime(2023, 12, 31, 18, 30, tzinfo=timezone.utc)
    assert spec.installed_capacity.kw == 50_000
    assert spec.methodology_parameters()["project_type"]["value"] == "wind"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("methodology: \"CDM:ACM0002:22.0\"", "methodology: ACM0002"), "methodology"),
        (("timezone: Asia/Kolkata", "timezone: Mars/Olympus"), "monitoring_period.timezone"),
        (("direction: export", "direction: sideways"), "data_sources.meters[0].direction"),
        (("valid_to: 2024-01-01", "valid_to: 2021-01-01"), "data_sources.meters[0].calibrations[0]"),
        (("country: IN", "country: India"), "boundary.country"),
        (("type: wind", "type: tidal"), "project.type"),
    ],
)
def test_invalid_fields_are_named(tmp_path, edit, expected):
    path = write(tmp_path, VALID.replace(*edit))
    with pytest.raises(ProjectSpecError) as info:
        load_project(path)
    msg = str(info.value)
    assert str(path) in msg
    assert expected in msg


def test_cumulative_meter_needs_register_max(tmp_path):
    path = write(tmp_path, VALID.replace("files: \"data/*.csv\"", "files: \"data/*.csv\"\n      reading: cumulative"))
    with pytest.raises(ProjectSpecError, match="register_max"):
        load_project(path)


def test_unknown_field_and_bad_yaml(tmp_path):
    with pytest.raises(ProjectSpecError, match="extra_field"):
        load_project(write(tmp_path, VALID + "extra_field: 1\n"))
    with pytest.raises(ProjectSpecError, match="not valid YAML"):
        load_project(write(tmp_path, "project: [unclosed\n"))
    with pytest.raises(ProjectSpecError, match="not found"):
        load_project(tmp_path / "missing.yaml")


def test_meter_files_glob_must_match(tmp_path):
    spec = load_project(write(tmp_path, VALID))
    with pytest.raises(ProjectSpecError, match="EXP-1: no files match"):
        spec.meter_files(spec.data_sources.meters[0])
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "b.csv").write_text("x")
    (tmp_path / "data" / "a.csv").write_text("x")
    assert [p.name for p in spec.meter_files(spec.data_sources.meters[0])] == ["a.csv", "b.csv"]


GENERIC = """
project: {id: LFG-1, name: Landfill, type: landfill_gas}
methodology: "CDM:ACM0001:19.0"
boundary: {country: BR, geometry: {type: Point, coordinates: [-46.6, -23.5]}}
monitoring_period: {start: 2023-01-01, end: 2023-12-31}
data_sources:
  instruments:
    - {id: FT-1, quantity: V_t_wb, unit: m3/h, files: "flare*.csv", column: flow,
       calibrations: [{valid_from: 2023-01-01, valid_to: 2023-12-31}], attributes: {flare_id: FL-1}}
    - {id: TT-1, quantity: T_flare, unit: degC, files: "flare*.csv", column: t}
"""


def test_instrument_project_needs_no_capacity_or_meters(tmp_path):
    spec = load_project(write(tmp_path, GENERIC))
    assert spec.installed_capacity is None and spec.capacity_kw is None
    assert [i.id for i in spec.data_sources.instruments] == ["FT-1", "TT-1"]
    assert spec.instrument("FT-1").attributes == {"flare_id": "FL-1"}
    assert spec.data_sources.meters == ()
    # project_type is only passed to methodologies that declare it
    assert "project_type" not in spec.methodology_parameters(accepts={"GWP_CH4"})
    with pytest.raises(ProjectSpecError, match="no instrument 'XX'"):
        spec.instrument("XX")
    with pytest.raises(ProjectSpecError, match=r"instrument FT-1: no files match 'flare\*.csv'"):
        spec.source_files(spec.instrument("FT-1").files, what="instrument FT-1")


def test_data_sources_must_name_something_and_ids_are_unique(tmp_path):
    empty = GENERIC.split("data_sources:")[0] + "data_sources: {}\n"
    with pytest.raises(ProjectSpecError, match="no data sources: declare meters, instruments or devices"):
        load_project(write(tmp_path, empty))
    dup = GENERIC.replace("id: TT-1", "id: FT-1")
    with pytest.raises(ProjectSpecError, match=r"duplicate meter/instrument id\(s\): FT-1"):
        load_project(write(tmp_path, dup))


def test_device_fleet_section(tmp_path):
    text = GENERIC.split("data_sources:")[0].replace("landfill_gas", "clean_cooking") + (
        "data_sources:\n  devices: {registry: devices.csv, files: 'data/*.parquet', interval_minutes: 15, timezone: Africa/Nairobi}\n"
    )
    spec = load_project(write(tmp_path, text))
    assert spec.data_sources.devices is not None and spec.data_sources.devices.timezone == "Africa/Nairobi"
    bad = text.replace("Africa/Nairobi", "Mars/Olympus")
    with pytest.raises(ProjectSpecError, match=r"data_sources.devices.timezone: .*unknown IANA timezone"):
        load_project(write(tmp_path, bad))


@pytest.mark.parametrize(
    "text",
    [
        VALID,
        VALID + "extra_field: 1\n",  # refused by the model
        "project: [unclosed\n",  # not YAML
        VALID.replace("accuracy_class: 0.2", "accuracy_class: &a 0.2\n      interval_minutes: *a"),  # an alias: the C path hands over
        "- just\n- a list\n",  # not a mapping
    ],
)
def test_the_c_loader_path_gives_what_safe_load_gives(tmp_path, monkeypatch, text):
    """parse_project reads YAML with LibYAML when it can; the spec, or the error, is the same as
    with the pure-Python loader."""
    import mrv.project as project

    assert project.CSafeLoader is not None, "PyYAML here is built with LibYAML (the fast path under test)"
    path = write(tmp_path, text)

    def outcome():
        try:
            return "ok", load_project(path).model_dump(mode="json")
        except ProjectSpecError as exc:
            return "error", str(exc)

    fast = outcome()
    monkeypatch.setattr(project, "CSafeLoader", None)
    assert outcome() == fast
