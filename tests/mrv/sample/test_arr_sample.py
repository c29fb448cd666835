"""The synthetic ARR sample: deterministic bytes, a readable STAC catalog with one missing
acquisition, consistent vectors and field inventory, and the intended signal (growth on project
plots, a slower trend on control candidates, seasonality, clouds) through the raster contract and
the zonal statistics engine."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import yaml

from mrv.artifacts import LocalArtifactStore
from mrv.raster import coverage, zonal_stats
from mrv.raster.contracts import RasterContext, load_raster_contract, stats_table_from_zonal, validate_plot_stats, validate_scenes
from mrv.raster.scenes import ProjectGrid, ndvi, read_scenes, to_crs
from mrv.raster.stac import MaskSpec, scenes_from_catalog
from mrv.sample.arr import ARR_CRS, generate_arr_project


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def features(path: Path) -> dict[str, shapely.Geometry]:
    fc = json.loads(path.read_text())
    return {f["properties"].get("plot_id", f["properties"].get("name")): shapely.geometry.shape(f["geometry"]) for f in fc["features"]}


def test_same_seed_same_bytes_other_seed_other_scenes(tmp_path: Path) -> None:
    kw = dict(years=(2018, 2021), size=160, project_start=date(2020, 1, 1), n_project_plots=4, n_control_candidates=8)
    a = files(generate_arr_project(tmp_path / "a", seed=5, **kw).parent)
    b = files(generate_arr_project(tmp_path / "b", seed=5, **kw).parent)
    c = files(generate_arr_project(tmp_path / "c", seed=6, **kw).parent)
    assert a == b  # byte-identical, wherever it is written
    assert any(name.endswith(".tif") for name in a) and len(a) > 40
    assert any(a[k] != c.get(k) for k in a if k.endswith("red.tif"))


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return generate_arr_project(tmp_path_factory.mktemp("arr"), seed=47)


def test_sample_layout_catalog_vectors_inventory_and_project_sketch(sample: Path, tmp_path: Path) -> None:
    root = sample.parent
    doc = yaml.safe_load(sample.read_text())
    sat, inv = doc["satellite"], doc["field_inventory"]
    for key in ("stac_catalog", "boundary", "plots", "donor_pool", "control_candidates"):
        assert (root / sat[key]).is_file(), key
    assert (root / inv["file"]).is_file()
    assert sat["bands"] == {"red": {"asset": "red"}, "nir": {"asset": "nir"}} and sat["mask"] == {"asset": "cloud_mask", "valid_values": [0]}
    assert sat["grid"] == {"crs": ARR_CRS, "resolution": 10.0}
    assert doc["methodology"] == "VCS:VM0047:1.0"
    assert {"A", "t0_year", "SI_cov_year_1", "buffer_pct", "t0_no_woody_biomass"} <= set(doc["parameters"])
    assert all({"value", "unit", "source"} <= set(v) for v in doc["parameters"].values())

    scenes = scenes_from_catalog(root / sat["stac_catalog"], bands=["red", "nir"], mask=MaskSpec("cloud_mask", (0,)),
                                 store=LocalArtifactStore(tmp_path / "store"))
    dates = [s.datetime.date() for s in scenes]
    assert len(scenes) == 14 * 4 - 1  # 2011-2024 (t0 - 10 onwards), one scheduled acquisition missing
    scheduled = {date(y, m, 15) for y in range(2011, 2025) for m in (2, 3, 5, 8)}
    (missing,) = scheduled - set(dates)
    assert missing > date(2021, 1, 1) and f"acquisition of {missing:%Y-%m-%d} is missing" in sample.read_text()
    s = scenes[0]
    assert s.shape == (200, 200) and s.resolution == (10.0, 10.0) and s.to_json()["crs"] == ARR_CRS
    assert s.assets["red"].scale == 0.0001 and s.assets["red"].nodata == 0 and s.assets["cloud_mask"].nodata == 255
    assert {sc.properties["eo:cloud_cover"] > 5 for sc in scenes} == {True, False}  # clear and cloudy scenes

    boundary = next(iter(features(root / sat["boundary"]).values()))
    donor = next(iter(features(root / sat["donor_pool"]).values()))
    plots = features(root / sat["plots"])
    controls = features(root / sat["control_candidates"])
    assert len(plots) == 36 and len(controls) == 80  # VM0047: >= 30 project plots, a donor pool to match from
    assert all(boundary.contains(g) for g in plots.values()) and all(donor.contains(g) for g in controls.values())
    assert not boundary.intersects(donor)
    areas = [to_crs(g, "EPSG:4326", ARR_CRS).area for g in plots.values()]
    assert np.allclose(areas, 2500.0, rtol=1e-4)  # 50 m squares (rotated; vertices rounded to 1e-8°)

    with open(root / inv["file"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["plot_id", "tree_id", "species_group", "dbh_cm", "height_m", "wood_density_g_cm3"]
    assert {r["plot_id"] for r in rows} == {f"{p}-S" for p in plots}  # one inventory subplot per project plot
    assert len({r["tree_id"] for r in rows}) == len(rows)
    assert {r["species_group"] for r in rows} == {"pioneer", "early_secondary", "late_secondary"}
    dbh = np.array([float(r["dbh_cm"]) for r in rows])
    h = np.array([float(r["height_m"]) for r in rows])
    wd = np.array([float(r["wood_density_g_cm3"]) for r in rows])
    assert dbh.min() >= 1.0 and dbh.max() < 30 and 1.5 <= h.min() and h.max() < 25 and 0.3 < wd.min() and wd.max() < 0.9
    per_plot = pd.Series([r["plot_id"] for r in rows]).value_counts()
    assert per_plot.min() >= 25 and per_plot.max() <= 90  # ~1,100 trees/ha on 0.05 ha subplots


def test_sample_signal_through_contract_and_zonal_statistics(sample: Path, tmp_path: Path) -> None:
    root = sample.parent
    doc = yaml.safe_load(sample.read_text())
    sat = doc["satellite"]
    scenes = scenes_from_catalog(root / sat["stac_catalog"], bands=["red", "nir"], mask=MaskSpec("cloud_mask", (0,)))
    boundary = next(iter(features(root / sat["boundary"]).values()))
    plots = {**features(root / sat["plots"]), **features(root / sat["control_candidates"])}
    context = RasterContext(period_start=sat["analysis_period"]["start"], period_end=sat["analysis_period"]["end"],
                            boundary=boundary, plots=plots, values=sat["qa"])
    contract = load_raster_contract(sat["contract"])
    prior = validate_scenes(contract, scenes, context)
    assert prior.valid_scene_ids == [s.id for s in scenes] and not prior.blocked

    grid = ProjectGrid(crs=sat["grid"]["crs"], resolution=sat["grid"]["resolution"], bounds=scenes[0].bounds)
    ds = read_scenes(scenes, grid, chunks=128)
    ids = list(plots)
    cov = coverage([to_crs(plots[i], "EPSG:4326", ARR_CRS) for i in ids], polygons_crs=ARR_CRS, transform=grid.transform,
                   shape=grid.shape, crs=grid.crs, ids=ids)
    frame = zonal_stats(cov, ndvi(ds).data, mask=ds["invalid"].data, dates=[s.date_label for s in scenes], stats=("mean", "valid_fraction", "count", "min", "max"))
    table = stats_table_from_zonal(frame, variable="ndvi", scene_ids=[s.id for s in scenes])
    result = validate_plot_stats(contract, table, context, prior=prior)
    assert not result.blocked
    cloud_rule = result.rule("valid_pixels_per_plot")
    assert cloud_rule.quarantined > 0  # clouds take some plot-dates out ...
    assert cloud_rule.quarantined < 0.5 * len(table)  # ... but not most
    assert result.rule("values_in_physical_range").success

    kept = result.valid_plot_dates(table).copy()
    t = pd.to_datetime(kept["date"])
    kept["year"], kept["month"] = t.dt.year, t.dt.month
    kept["group"] = np.where(kept["plot_id"].str.startswith("P"), "project", "control")
    yearly = kept.groupby(["group", "year"])["mean"].median().unstack()
    pre = yearly.loc[:, 2018:2020].mean(axis=1)
    gain = yearly[2024] - pre
    assert 0.2 < yearly.loc["project", 2018] < 0.5 and 0.2 < yearly.loc["control", 2018] < 0.5  # degraded pasture
    assert gain["project"] > 0.15  # planting
    assert 0.0 < gain["control"] < 0.08  # a slow trend
    season = kept[kept["group"] == "control"].groupby("month")["mean"].median()
    assert season[2] > season[8]  # wet-season peak (southern tropics)
