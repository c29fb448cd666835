"""Pure pieces of the ARR chain (mrv.arr) and the project file's satellite/field_inventory sections."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import yaml

from mrv.arr import PlotGeometry, plot_registry, read_inventory, tidy_plot_statistics
from mrv.errors import ProjectSpecError
from mrv.project import parse_project
from mrv.raster.scenes import to_crs

UTM = "EPSG:32723"
SAT = {
    "stac_catalog": "stac/catalog.json",
    "bands": {"red": {"asset": "red"}, "nir": {"asset": "nir"}},
    "mask": {"asset": "cloud_mask", "valid_values": [0]},
    "grid": {"crs": UTM, "resolution": 10},
    "analysis_period": {"start": "2011-01-01", "end": "2025-01-01"},
    "project_start": "2021-01-01",
    "plots": "p.geojson", "donor_pool": "d.geojson", "control_candidates": "c.geojson",
}
INV = {"file": "inv.csv", "measured": "2024-06-15", "plots": "i.geojson", "subplot_radius_m": 12.62}
BASE = {
    "project": {"id": "ARR-1", "name": "x", "type": "arr"},
    "methodology": "VCS:VM0047:1.0",
    "boundary": {"country": "BR", "geometry": {"type": "Point", "coordinates": [-44.0, -19.9]}},
    "monitoring_period": {"start": "2021-01-01", "end": "2024-12-31"},
}


def parse(doc: dict) -> object:
    return parse_project(yaml.safe_dump(doc), source="p.yaml", base_dir=Path("."))


def test_arr_project_needs_no_data_sources():
    spec = parse({**BASE, "satellite": SAT, "field_inventory": INV})
    assert spec.project.type.value == "arr" and spec.satellite.grid.resolution == 10.0
    assert spec.field_inventory.columns.dbh == "dbh_cm"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"satellite": {**SAT, "colour": 1}}, r"satellite\.colour: Extra inputs are not permitted"),
        ({"satellite": {**SAT, "stocking_index": "evi"}}, r"satellite: .*stocking_index 'evi' is neither 'ndvi' nor a declared band"),
        ({"satellite": {**SAT, "bands": {"red": {"asset": "red"}}}}, r"stocking_index 'ndvi' needs bands red and nir \(missing: nir\)"),
        ({"satellite": {**SAT, "grid": {"crs": "EPSG:999999", "resolution": 10}}}, r"satellite\.grid\.crs: .*unknown CRS"),
        ({"satellite": {**SAT, "analysis_period": {"start": "2025-01-01", "end": "2011-01-01"}}}, r"satellite\.analysis_period: .*end must be after start"),
        ({"satellite": {**SAT, "mask": {"asset": "cloud_mask", "valid_values": []}}}, r"satellite\.mask\.valid_values"),
        ({"field_inventory": {**INV, "measured": None}}, r"field_inventory: .*give the measurement date"),
        ({"field_inventory": {**INV, "subplot_radius_m": 0}}, r"field_inventory\.subplot_radius_m"),
        ({"field_inventory": None}, r"needs its field_inventory: section"),
        ({"satellite": None, "field_inventory": None}, r"no data sources: declare meters, instruments or devices"),
    ],
)
def test_section_errors_name_the_field(change, message):
    doc = {**BASE, "satellite": SAT, "field_inventory": INV, **change}
    doc = {k: v for k, v in doc.items() if v is not None}
    with pytest.raises(ProjectSpecError, match=message):
        parse(doc)


def _square(x: float, y: float, side: float) -> shapely.Polygon:
    return shapely.box(x, y, x + side, y + side)


def _ll(g):
    return to_crs(g, UTM, "EPSG:4326")


def test_plot_registry_in_equal_area():
    boundary = _square(600_000, 7_790_000, 1000)
    donor = _square(602_000, 7_790_000, 1000)
    geo = PlotGeometry(
        boundary=_ll(boundary),
        plots={"P1": _ll(_square(600_100, 7_790_100, 100)), "P2": _ll(_square(600_950, 7_790_500, 100))},  # P2 half outside
        donor_pool=_ll(donor),
        controls={"C1": _ll(_square(602_500, 7_790_500, 100)), "C2": _ll(_square(601_950, 7_790_500, 100))},  # C2 straddles the pool edge
        inventory={"P1-S": _ll(shapely.Point(600_150, 7_790_150))},
        inventory_radius_m={"P1-S": 12.62},
    )
    reg = {r["plot_id"]: r for r in plot_registry(geo)}
    assert reg["P1"]["role"] == "project" and reg["P1"]["area_ha"] == pytest.approx(1.0, rel=2e-3)
    assert reg["P1"]["inside_fraction"] == pytest.approx(1.0, abs=1e-6)
    assert reg["P2"]["inside_fraction"] == pytest.approx(0.5, abs=5e-3)
    assert reg["C1"]["donor_pool_ok"] is True and reg["C1"]["distance_km"] == pytest.approx(1.5, rel=5e-3)
    assert reg["C2"]["donor_pool_ok"] is False and reg["C2"]["distance_km"] == pytest.approx(0.95, rel=5e-3)
    assert reg["P1-S"] == {"plot_id": "P1-S", "role": "inventory", "area_ha": pytest.approx(math.pi * 12.62**2 / 1e4, abs=1e-6)}


def test_tidy_plot_statistics_shape_and_values_as_computed():
    table = pd.DataFrame({
        "date": ["2021-02-15T13:10:00Z", "2021-02-15T13:10:00Z"], "plot_id": ["P1", "C1"],
        "mean": [0.5, np.nan], "valid_fraction": [0.75, 1.2], "count": [25.0, 0.0], "scene_id": ["S1", "S1"],
    })
    t = tidy_plot_statistics(table)
    assert list(t.columns) == ["plot_id", "ts", "value", "valid_fraction", "count", "source_file", "source_row"]
    assert str(t["ts"].dtype) == "datetime64[us, UTC]"
    # valid_fraction passes through unchanged: the rounding clip lives only in the zonal statistics
    # (tests/mrv/raster/test_zonal.py), and an excess above 1 reaches the contract.
    assert t["valid_fraction"].tolist() == [0.75, 1.2]
    assert t["value"].iloc[0] == 0.5 and np.isnan(t["value"].iloc[1])
    assert t["source_file"].tolist() == ["S1", "S1"] and t["source_row"].tolist() == [1, 2]


def test_read_inventory_tidy_frame(tmp_path):
    (tmp_path / "inv.csv").write_text("plot_id,tree_id,species_group,dbh_cm,height_m,wood_density_g_cm3\nP1-S,T1,pioneer,8.5,9.1,0.45\nP1-S,T2,late,,3,0.7\n")
    spec = parse({**BASE, "satellite": SAT, "field_inventory": {**INV, "columns": {"species": "species_group"}}})
    trees = read_inventory(tmp_path / "inv.csv", spec)
    assert list(trees.columns) == ["plot_id", "ts", "value", "tree_id", "species", "height_m", "wood_density", "source_file", "source_row"]
    assert trees["value"].iloc[0] == 8.5 and np.isnan(trees["value"].iloc[1])  # the contract blocks a missing DBH
    assert trees["ts"].iloc[0] == pd.Timestamp("2024-06-15", tz="UTC") and trees["source_row"].tolist() == [2, 3]
