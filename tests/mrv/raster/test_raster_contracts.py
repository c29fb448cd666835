"""Raster data contract (data_contracts/raster_scenes.yaml + mrv/raster/contracts.py): every rule
passing and failing, the first-failing-rule-wins quarantine, parameters from the run context,
deterministic JSON results stored as artifacts, and the whole chain on real GeoTIFFs with the
zonal statistics engine's output fed in."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from pyproj import CRS

from mrv.artifacts import LocalArtifactStore
from mrv.errors import ContractBlocked, ContractError, SceneError
from mrv.raster import coverage, zonal_stats
from mrv.raster.contracts import (
    RasterContext,
    load_raster_contract,
    parse_raster_contract,
    stats_table_from_zonal,
    validate_plot_stats,
    validate_raster,
    validate_scenes,
)
from mrv.raster.scenes import ProjectGrid, Scene, SceneAsset, ndvi, read_scenes, to_crs

UTM = "EPSG:32723"
X0, Y0, RES = 600_000.0, 7_800_000.0, 10.0
ROWS, COLS = 100, 100  # 1 km x 1 km scenes
VALUES = {"resolution_m": 10, "resolution_tolerance_m": 0.5, "min_boundary_coverage": 0.95, "min_plot_coverage": 1.0, "min_valid_fraction": 0.8}


def when(month: int, day: int = 1, year: int = 2020) -> datetime:
    return datetime(year, month, day, 13, 10, tzinfo=timezone.utc)


def asset(key: str, role: str = "band", *, crs=UTM, transform=None, res=RES, x0=X0, y0=Y0) -> SceneAsset:
    t = Affine(res, 0, x0, 0, -res, y0) if transform is None else transform
    return SceneAsset(
        key=key, role=role, path=Path(f"/nonexistent/{key}.tif"), source_path=Path(f"/nonexistent/{key}.tif"), href=f"./{key}.tif",
        digest="sha256:" + "0" * 64, size=1, media_type="image/tiff", crs=CRS.from_user_input(crs) if crs else None,
        transform=t if transform != "none" else None, shape=(ROWS, COLS), dtype="uint16", nodata=0, scale=1e-4,
        valid_values=(0,) if role == "mask" else (),
    )


def scene(sid: str, dt: datetime, **kw) -> Scene:
    mask_kw = {k: v for k, v in kw.items() if k in ("x0", "y0", "crs")}
    return Scene(id=sid, datetime=dt, bands=("red", "nir"), mask="cloud_mask",
                 assets={"red": asset("red", **kw), "nir": asset("nir", **kw), "cloud_mask": asset("cloud_mask", "mask", **mask_kw)})


def ll(g):
    return to_crs(g, UTM, "EPSG:4326")


BOUNDARY = ll(shapely.box(X0 + 100, Y0 - 900, X0 + 900, Y0 - 100))
PLOTS = {
    "P1": ll(shapely.box(X0 + 200, Y0 - 300, X0 + 250, Y0 - 250)),
    "P2": ll(shapely.box(X0 + 700, Y0 - 800, X0 + 750, Y0 - 750)),
}


def ctx(**kw) -> RasterContext:
    base = dict(period_start="2020-01-01", period_end="2021-01-01", boundary=BOUNDARY, plots=PLOTS, values=VALUES)
    return RasterContext(**{**base, **kw})


@pytest.fixture(scope="module")
def contract():
    return load_raster_contract()


def stats(rows: list[tuple], extra: dict | None = None) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["plot_id", "date", "valid_fraction", "count", "mean"])
    for k, v in (extra or {}).items():
        df[k] = v
    return df


GOOD = [scene("S1", when(2)), scene("S2", when(5))]
D1, D2 = "2020-02-01T13:10:00Z", "2020-05-01T13:10:00Z"


def rule_row(result, rule_id):
    return next(r for r in result.to_json()["rules"] if r["rule_id"] == rule_id)


# --------------------------------------------------------------------------- the contract file


def test_contract_file_loads_with_rules_severities_and_clauses(contract) -> None:
    ids = [r.id for r in contract.rules]
    assert ids == ["crs_present", "transform_present", "max_resolution", "resolution_within_tolerance", "acquired_in_period", "scene_covers_boundary",
                   "scene_covers_plot", "valid_pixels_per_plot", "no_all_nan_plot_date", "values_in_physical_range", "plot_has_observations"]
    sev = {r.id: r.severity.value for r in contract.rules}
    assert sev["crs_present"] == sev["transform_present"] == sev["max_resolution"] == sev["resolution_within_tolerance"] == "block"
    # the methodology's 30 m limit is a constant of the contract, not a project value, and cites VM0047 v1.1
    maxres = next(r for r in contract.rules if r.id == "max_resolution")
    assert maxres.params == {"max_resolution_m": 30} and maxres.clause.startswith("VCS VM0047 v1.1, Appendix 1") and "30 m x 30 m" in maxres.clause
    assert sev["acquired_in_period"] == sev["valid_pixels_per_plot"] == sev["scene_covers_plot"] == "quarantine"
    assert all(r.clause for r in contract.rules)


def test_contract_model_rejects_unknown_checks_and_missing_params() -> None:
    with pytest.raises(ContractError, match="unknown check 'sharpness'"):
        parse_raster_contract("id: x\nversion: 1.0.0\ndescription: d\nrules:\n- {id: a, check: sharpness, severity: warn, description: d, clause: c}")
    with pytest.raises(ContractError, match=r"needs params \['min_valid_fraction'\]"):
        parse_raster_contract("id: x\nversion: 1.0.0\ndescription: d\nrules:\n- {id: a, check: valid_pixels_per_plot, severity: warn, description: d, clause: c}")
    with pytest.raises(ContractError, match=r"needs params \['max_resolution_m'\]"):
        parse_raster_contract("id: x\nversion: 1.0.0\ndescription: d\nrules:\n- {id: a, check: max_resolution, severity: block, description: d, clause: c}")
    with pytest.raises(ContractError, match="severity"):
        parse_raster_contract("id: x\nversion: 1.0.0\ndescription: d\nrules:\n- {id: a, check: crs_present, severity: fatal, description: d, clause: c}")


def test_missing_context_value_is_an_error_naming_the_rule(contract) -> None:
    values = dict(VALUES)
    del values["min_valid_fraction"]
    with pytest.raises(ContractError, match=r"rule valid_pixels_per_plot: \$\{values.min_valid_fraction\} is not in the run context"):
        validate_scenes(contract, GOOD, ctx(values=values))


# --------------------------------------------------------------------------- scene rules


def test_all_scene_rules_pass_on_good_scenes(contract) -> None:
    r = validate_scenes(contract, GOOD, ctx())
    for rid in ("crs_present", "transform_present", "max_resolution", "resolution_within_tolerance", "acquired_in_period", "scene_covers_boundary",
                "scene_covers_plot"):
        row = rule_row(r, rid)
        assert row["evaluated"] and row["success"] and row["failed"] == 0, rid
    assert rule_row(r, "scene_covers_plot")["checked"] == 4  # 2 plots x 2 dates
    assert not rule_row(r, "valid_pixels_per_plot")["evaluated"]  # stage 2
    assert r.valid_scene_ids == ["S1", "S2"] and not r.blocked
    r.raise_if_blocked()


def test_crs_present_fails_and_blocks(contract) -> None:
    bad = scene("S3", when(7), crs=None)
    r = validate_scenes(contract, [*GOOD, bad], ctx())
    row = rule_row(r, "crs_present")
    assert (row["success"], row["failed"], row["quarantined"]) == (False, 1, 1)
    assert row["findings"][0]["scene_id"] == "S3" and "asset red has no CRS" in row["findings"][0]["reason"]
    assert r.blocked and r.quarantined_scenes[0]["severity"] == "block" and r.valid_scene_ids == ["S1", "S2"]
    with pytest.raises(ContractBlocked, match=f"raster contract raster_scenes {contract.version} blocked the run: crs_present") as info:
        r.raise_if_blocked()
    assert "first: scene S3 (2020-07-01T13:10:00Z): asset red has no CRS" in str(info.value)  # the offending scene is named
    assert info.value.rule_ids[0] == "crs_present"


def test_transform_present_fails_and_blocks(contract) -> None:
    bad = scene("S3", when(7), transform="none")
    r = validate_scenes(contract, [*GOOD, bad], ctx())
    assert rule_row(r, "transform_present")["failed"] == 1 and r.blocked
    assert rule_row(r, "crs_present")["success"]


def test_resolution_within_tolerance(contract) -> None:
    coarse = scene("S3", when(7), res=20.0)
    r = validate_scenes(contract, [*GOOD, coarse], ctx())
    row = rule_row(r, "resolution_within_tolerance")
    assert row["failed"] == 1 and r.blocked
    assert "pixel size (20, 20) m, expected 10 ± 0.5 m" in row["findings"][0]["reason"]
    near = scene("S4", when(7), res=10.4)
    assert rule_row(validate_scenes(contract, [*GOOD, near], ctx()), "resolution_within_tolerance")["success"]
    # a geographic CRS: 0.00009° of longitude at 19.9 °S is 0.00009·111.195 km·cos(19.9°) ≈ 9.413 m,
    # of latitude 10.01 m -> outside 10 ± 0.5 in x
    geo = scene("S5", when(7), crs="EPSG:4326", res=0.00009, x0=-44.0, y0=-19.85)
    row = rule_row(validate_scenes(contract, [*GOOD, geo], ctx()), "resolution_within_tolerance")
    assert row["failed"] == 1 and "asset red: pixel size (9.413, 10.01) m" in row["findings"][0]["reason"]


def test_max_resolution_blocks_pixels_coarser_than_30_m(contract) -> None:
    """VM0047 v1.1: imagery no coarser than 30 m x 30 m, whatever resolution the project declares."""
    at_limit = validate_scenes(contract, [scene("S1", when(2), res=30.0)], ctx(values={**VALUES, "resolution_m": 30}))
    assert rule_row(at_limit, "max_resolution")["success"] and not at_limit.blocked  # 30 m itself is allowed
    coarse = validate_scenes(contract, [scene("S1", when(2), res=30.5)], ctx(values={**VALUES, "resolution_m": 30.5}))
    row = rule_row(coarse, "max_resolution")
    assert (row["checked"], row["failed"]) == (1, 1) and coarse.blocked
    assert rule_row(coarse, "resolution_within_tolerance")["success"]  # the project's own declaration is met: only the limit fails
    assert row["findings"][0]["reason"] == "asset red: pixel size (30.5, 30.5) m, coarser than the 30 m maximum; " \
                                           "asset nir: pixel size (30.5, 30.5) m, coarser than the 30 m maximum"
    # a geographic CRS, in metres at the scene centre (19.9 °S): 0.0003° -> (31.37, 33.36) m fails, 0.00025° -> (26.14, 27.8) m passes
    geo = scene("S5", when(7), crs="EPSG:4326", res=0.0003, x0=-44.0, y0=-19.85)
    row = rule_row(validate_scenes(contract, [*GOOD, geo], ctx()), "max_resolution")
    assert row["failed"] == 1 and "asset red: pixel size (31.37, 33.36) m, coarser than the 30 m maximum" in row["findings"][0]["reason"]
    fine = scene("S6", when(7), crs="EPSG:4326", res=0.00025, x0=-44.0, y0=-19.85)
    assert rule_row(validate_scenes(contract, [*GOOD, fine], ctx()), "max_resolution")["success"]


def _write_stac(root: Path, scenes: list[tuple[str, datetime, float]]) -> Path:
    """A STAC catalog of GeoTIFF scenes (red, nir, cloud mask) over the test plots, each at its own pixel size."""
    import pystac
    import rasterio

    cat = pystac.Catalog(id="t", description="t")
    for sid, dt, res in scenes:
        n = int(np.ceil(ROWS * RES / res))  # at least the 1 km of the 10 m scenes
        d = root / sid
        d.mkdir(parents=True)
        arrays = {"red": np.full((n, n), 500, np.uint16), "nir": np.full((n, n), 2500, np.uint16), "cloud_mask": np.zeros((n, n), np.uint8)}
        for name, arr in arrays.items():
            with rasterio.open(d / f"{name}.tif", "w", driver="GTiff", height=n, width=n, count=1, dtype=arr.dtype, crs=UTM,
                               transform=Affine(res, 0, X0, 0, -res, Y0), nodata=255 if name == "cloud_mask" else 0) as ds:
                ds.write(arr, 1)
        item = pystac.Item(id=sid, geometry=None, bbox=None, datetime=dt, properties={})
        for name in arrays:
            item.add_asset(name, pystac.Asset(href=str(d / f"{name}.tif")))
        cat.add_item(item)
    cat.normalize_hrefs(str(root))
    cat.make_all_asset_hrefs_relative()
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def _read_stac(catalog: Path, store_dir: Path) -> list[Scene]:
    from mrv.raster.stac import BandSpec, MaskSpec, scenes_from_catalog

    return scenes_from_catalog(catalog, bands=[BandSpec("red", scale=1e-4), BandSpec("nir", scale=1e-4)], mask=MaskSpec("cloud_mask"),
                               store=LocalArtifactStore(store_dir))


def test_max_resolution_passes_30_m_geotiffs(contract, tmp_path: Path) -> None:
    scenes = _read_stac(_write_stac(tmp_path / "stac", [("S1", when(2), 30.0), ("S2", when(5), 30.0)]), tmp_path / "store")
    assert [s.assets["red"].resolution for s in scenes] == [(30.0, 30.0), (30.0, 30.0)]  # read from the files
    r = validate_scenes(contract, scenes, ctx(values={**VALUES, "resolution_m": 30}))
    row = rule_row(r, "max_resolution")
    assert (row["evaluated"], row["checked"], row["failed"], row["findings"]) == (True, 2, 0, [])
    assert not r.blocked and r.valid_scene_ids == ["S1", "S2"]
    r.raise_if_blocked()


def test_a_60_m_geotiff_stops_the_run_naming_the_scene_and_the_rule(contract, tmp_path: Path) -> None:
    """A 60 m scene (Sentinel-2's coarsest bands) among 30 m ones: blocked even though the project
    declares 60 m with a tolerance that admits both, with an error naming the scene and the rule."""
    scenes = _read_stac(_write_stac(tmp_path / "stac", [("S1", when(2), 30.0), ("S60", when(5), 60.0)]), tmp_path / "store")
    values = {**VALUES, "resolution_m": 45, "resolution_tolerance_m": 15}  # the project's own resolution rule passes both
    r = validate_scenes(contract, scenes, ctx(values=values))
    assert rule_row(r, "resolution_within_tolerance")["success"]
    row = rule_row(r, "max_resolution")
    assert (row["checked"], row["failed"], row["quarantined"]) == (2, 1, 1)
    assert row["findings"][0]["scene_id"] == "S60"
    assert r.blocked and r.valid_scene_ids == ["S1"]
    assert [(q["scene_id"], q["rule_id"], q["severity"]) for q in r.quarantined_scenes] == [("S60", "max_resolution", "block")]
    with pytest.raises(ContractBlocked) as info:
        r.raise_if_blocked()
    msg = str(info.value)
    assert msg.startswith(f"raster contract raster_scenes {contract.version} blocked the run: max_resolution (1 failure(s); first: scene S60 ")
    assert "asset red: pixel size (60, 60) m, coarser than the 30 m maximum" in msg
    assert info.value.rule_ids == ["max_resolution"]


def test_acquired_in_period_quarantines_the_scene(contract) -> None:
    late = scene("S3", when(1, 1, 2021))  # == period end: outside (half-open)
    first = scene("S0", datetime(2020, 1, 1, tzinfo=timezone.utc))  # == period start: inside
    r = validate_scenes(contract, [*GOOD, late, first], ctx())
    row = rule_row(r, "acquired_in_period")
    assert (row["failed"], row["quarantined"]) == (1, 1)
    assert r.quarantined_scenes == [{"scene_id": "S3", "datetime": "2021-01-01T13:10:00Z", "rule_id": "acquired_in_period", "severity": "quarantine",
                                     "reason": "acquired 2021-01-01T13:10:00Z, outside [2020-01-01T00:00:00Z, 2021-01-01T00:00:00Z)"}]
    assert not r.blocked and r.valid_scene_ids == ["S0", "S1", "S2"]


def test_scene_covers_boundary(contract) -> None:
    # shifted 500 m east: covers the boundary's x in [600500, 600900] of [600100, 600900] -> half
    # of it in UTM, 0.5 ± 1e-4 in the equal-area CRS the fraction is computed in
    shifted = scene("S3", when(7), x0=X0 + 500)
    r = validate_scenes(contract, [*GOOD, shifted], ctx(plots={"P2": PLOTS["P2"]}))
    row = rule_row(r, "scene_covers_boundary")
    assert row["failed"] == 1 and "covers 0.5 of the project boundary, below 0.95" in row["findings"][0]["reason"]
    assert [q["scene_id"] for q in r.quarantined_scenes] == ["S3"]
    ok = validate_scenes(contract, [*GOOD, shifted], ctx(plots={"P2": PLOTS["P2"]}, values={**VALUES, "min_boundary_coverage": 0.499}))
    assert rule_row(ok, "scene_covers_boundary")["success"]


def test_scene_covers_plot_quarantines_plot_dates_and_unions_same_date_tiles(contract) -> None:
    # Two tiles on one date with their common edge through the middle of P2 (x = 600725): each
    # tile alone covers half of P2, together all of it. P1 lies in the west tile.
    west = scene("W", when(7), x0=X0 - 275)  # x in [599725, 600725]
    east = scene("E", when(7), x0=X0 + 725)
    vals = {**VALUES, "min_boundary_coverage": 0.0}
    both = validate_scenes(contract, [west, east], ctx(values=vals))
    assert rule_row(both, "scene_covers_plot")["success"]
    only_west = validate_scenes(contract, [west], ctx(values=vals))
    row = rule_row(only_west, "scene_covers_plot")
    assert (row["failed"], row["quarantined"]) == (1, 1)
    q = only_west.quarantined_plot_dates
    assert q == [{"plot_id": "P2", "date": "2020-07-01T13:10:00Z", "scene_id": "W", "rule_id": "scene_covers_plot", "severity": "quarantine",
                  "reason": "scenes of this date cover 0.5 of the plot, below 1"}]


def test_plots_outside_every_scene_is_an_error(contract) -> None:
    far = {**PLOTS, "PFAR": ll(shapely.box(X0 + 5000, Y0 - 5000, X0 + 5050, Y0 - 4950))}
    with pytest.raises(SceneError, match=r"PFAR \(rule: plots_within_scenes\)"):
        validate_scenes(contract, GOOD, ctx(plots=far))


# --------------------------------------------------------------------------- plot-date rules


def test_valid_pixels_per_plot(contract) -> None:
    table = stats([("P1", D1, 0.9, 18.0, 0.5), ("P2", D1, 0.79, 15.8, 0.5), ("P1", D2, 0.8, 16.0, 0.5), ("P2", D2, 1.0, 20.0, 0.5)])
    r = validate_plot_stats(contract, table, ctx(), prior=validate_scenes(contract, GOOD, ctx()))
    row = rule_row(r, "valid_pixels_per_plot")
    assert (row["checked"], row["failed"], row["quarantined"]) == (4, 1, 1)  # 0.8 == threshold passes
    assert r.quarantined_plot_dates == [{"plot_id": "P2", "date": D1, "rule_id": "valid_pixels_per_plot", "severity": "quarantine",
                                         "reason": "valid fraction 0.79 below 0.8"}]
    kept = r.valid_plot_dates(table)
    assert list(zip(kept["plot_id"], kept["date"])) == [("P1", D1), ("P1", D2), ("P2", D2)]
    assert not r.blocked


def test_no_all_nan_plot_date(contract) -> None:
    table = stats([("P1", D1, 0.0, 0.0, np.nan), ("P1", D2, 0.9, 18.0, 0.5), ("P2", D1, 0.9, 18.0, 0.5), ("P2", D2, 0.9, 18.0, 0.5)])
    r = validate_plot_stats(contract, table, ctx())
    # the empty plot-date fails both valid_pixels_per_plot (first: it is quarantined there) and this rule
    assert rule_row(r, "no_all_nan_plot_date")["failed"] == 1 and rule_row(r, "no_all_nan_plot_date")["quarantined"] == 0
    relaxed = validate_plot_stats(contract, table, ctx(values={**VALUES, "min_valid_fraction": 0.0}))
    row = rule_row(relaxed, "no_all_nan_plot_date")
    assert (row["failed"], row["quarantined"]) == (1, 1)
    assert relaxed.quarantined_plot_dates[0]["reason"] == "no valid pixel (count 0, mean nan)"
    ok = stats([("P1", D1, 0.9, 18.0, 0.5), ("P2", D1, 0.9, 18.0, 0.5)])
    assert rule_row(validate_plot_stats(contract, ok, ctx()), "no_all_nan_plot_date")["success"]


def test_values_in_physical_range(contract) -> None:
    table = stats([("P1", D1, 0.9, 18.0, 0.5), ("P2", D1, 0.9, 18.0, 0.7)], extra={"min": [0.1, 0.2], "max": [0.9, 1.2]})
    r = validate_plot_stats(contract, table, ctx())
    row = rule_row(r, "values_in_physical_range")
    assert (row["failed"], row["quarantined"]) == (1, 1)
    assert row["findings"][0]["reason"] == "ndvi max 1.2 outside [-1, 1]"  # default_variable: ndvi
    # per-variable ranges; without min/max the mean is checked
    refl = stats([("P1", D1, 0.9, 18.0, 0.3), ("P1", D1, 0.9, 18.0, 1.5), ("P2", D1, 0.9, 18.0, 0.2)], extra={"variable": ["red", "nir", "nir"]})
    r = validate_plot_stats(contract, refl, ctx())
    row = rule_row(r, "values_in_physical_range")
    assert (row["checked"], row["failed"]) == (2, 1)  # plot-dates, not rows
    assert row["findings"][0] == {"plot_id": "P1", "date": D1, "reason": "nir mean 1.5 outside [0, 1]"}
    ok = stats([("P1", D1, 0.9, 18.0, -0.2), ("P2", D1, 0.9, 18.0, 1.0)])
    assert rule_row(validate_plot_stats(contract, ok, ctx()), "values_in_physical_range")["success"]
    with pytest.raises(ContractError, match="no physical range for variable 'swir'"):
        validate_plot_stats(contract, stats([("P1", D1, 0.9, 18.0, 0.2)], extra={"variable": ["swir"]}), ctx())


def test_plot_has_observations_blocks_an_all_nan_plot(contract) -> None:
    table = stats([("P1", D1, 0.0, 0.0, np.nan), ("P1", D2, 0.1, 2.0, np.nan), ("P2", D1, 0.9, 18.0, 0.5), ("P2", D2, 0.9, 18.0, 0.5)])
    r = validate_plot_stats(contract, table, ctx())
    row = rule_row(r, "plot_has_observations")
    assert (row["checked"], row["failed"]) == (2, 1) and row["findings"] == [{"plot_id": "P1", "reason": "plot has no valid observation on any of 2 date(s)"}]
    assert r.blocked
    # also when the observations exist but every one was quarantined by an earlier rule
    cloudy = stats([("P1", D1, 0.5, 10.0, 0.4), ("P1", D2, 0.6, 12.0, 0.4), ("P2", D1, 0.9, 18.0, 0.5), ("P2", D2, 0.9, 18.0, 0.5)])
    assert validate_plot_stats(contract, cloudy, ctx()).blocked
    # a declared plot missing from the table has no observation either
    only_p2 = stats([("P2", D1, 0.9, 18.0, 0.5)])
    assert rule_row(validate_plot_stats(contract, only_p2, ctx()), "plot_has_observations")["failed"] == 1
    good = stats([("P1", D1, 0.0, 0.0, np.nan), ("P1", D2, 0.9, 18.0, 0.5), ("P2", D1, 0.9, 18.0, 0.5)])
    assert rule_row(validate_plot_stats(contract, good, ctx()), "plot_has_observations")["success"]


def test_rows_of_a_quarantined_scene_keep_the_scene_rule(contract) -> None:
    late = scene("S3", when(1, 1, 2021))
    prior = validate_scenes(contract, [*GOOD, late], ctx())
    d3 = "2021-01-01T13:10:00Z"
    table = stats([(p, d, 0.9, 18.0, 0.5) for d in (D1, D2, d3) for p in ("P1", "P2")])
    r = validate_plot_stats(contract, table, ctx(), prior=prior)
    q = [x for x in r.quarantined_plot_dates if x["date"] == d3]
    assert len(q) == 2 and all(x["rule_id"] == "acquired_in_period" and x["reason"].startswith("scene S3 quarantined: acquired") for x in q)
    assert len(r.valid_plot_dates(table)) == 4


def test_result_is_deterministic_json_and_stored_as_an_artifact(contract, tmp_path: Path) -> None:
    def run():
        scenes = [scene("S2", when(5)), scene("S1", when(2)), scene("S3", when(1, 1, 2021))]  # order of input does not matter
        table = stats([("P2", D1, 0.5, 10.0, 0.5), ("P1", D1, 0.9, 18.0, 0.5), ("P1", D2, 0.9, 18.0, np.nan), ("P2", D2, 0.9, 18.0, 0.5)])
        return validate_raster(contract, scenes, table, ctx())

    a, b = run(), run()
    assert a.to_bytes() == b.to_bytes()
    doc = json.loads(a.to_bytes())
    assert doc["contract"] == {"id": "raster_scenes", "version": contract.version} and doc["blocked"] is False
    assert [q["date"] for q in doc["quarantined_plot_dates"]] == sorted(q["date"] for q in doc["quarantined_plot_dates"])
    assert doc["valid_scenes"] == ["S1", "S2"]
    store = LocalArtifactStore(tmp_path / "store")
    ref1 = store.put_bytes(a.to_bytes(), media_type="application/json", name="raster_validation.json")
    ref2 = store.put_bytes(b.to_bytes(), media_type="application/json", name="raster_validation.json")
    assert ref1.digest == ref2.digest and json.loads(store.read_bytes(ref1.digest)) == doc


# --------------------------------------------------------------------------- on real rasters with zonal statistics


def test_contract_on_real_geotiffs_with_zonal_statistics(contract, tmp_path: Path) -> None:
    """Two 1 km scenes on disk; one has a cloud over P1. The zonal engine's output, adapted with
    stats_table_from_zonal, is judged: P1 on the cloudy date is quarantined, nothing else."""
    import pystac
    import rasterio

    from mrv.raster.stac import MaskSpec, scenes_from_catalog

    cat = pystac.Catalog(id="t", description="t")
    t = Affine(RES, 0, X0, 0, -RES, Y0)
    for sid, dt, cloudy in (("S1", when(2), False), ("S2", when(5), True)):
        d = tmp_path / "stac" / sid
        d.mkdir(parents=True)
        red = np.full((ROWS, COLS), 500, np.uint16)
        nir = np.full((ROWS, COLS), 2500, np.uint16)
        mask = np.zeros((ROWS, COLS), np.uint8)
        if cloudy:
            mask[25:31, 20:23] = 1  # over most of P1 (rows 25-30, cols 20-25)
        for name, arr, nd in (("red", red, 0), ("nir", nir, 0), ("cloud_mask", mask, 255)):
            with rasterio.open(d / f"{name}.tif", "w", driver="GTiff", height=ROWS, width=COLS, count=1, dtype=arr.dtype, crs=UTM,
                               transform=t, nodata=nd, tiled=True, blockxsize=32, blockysize=32) as ds:
                ds.write(arr, 1)
        item = pystac.Item(id=sid, geometry=None, bbox=None, datetime=dt, properties={})
        for name in ("red", "nir", "cloud_mask"):
            item.add_asset(name, pystac.Asset(href=str(d / f"{name}.tif")))
        cat.add_item(item)
    cat.normalize_hrefs(str(tmp_path / "stac"))
    cat.make_all_asset_hrefs_relative()
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)

    from mrv.raster.stac import BandSpec

    scenes = scenes_from_catalog(tmp_path / "stac" / "catalog.json", bands=[BandSpec("red", scale=1e-4), BandSpec("nir", scale=1e-4)],
                                 mask=MaskSpec("cloud_mask"), store=LocalArtifactStore(tmp_path / "store"))
    context = ctx()
    prior = validate_scenes(contract, scenes, context)
    assert prior.valid_scene_ids == ["S1", "S2"]
    grid = ProjectGrid.of_scene(scenes[0])
    ds = read_scenes([s for s in scenes if s.id in prior.valid_scene_ids], grid, chunks=64)
    ids = list(context.plots)
    cov = coverage([to_crs(context.plots[i], "EPSG:4326", UTM) for i in ids], polygons_crs=UTM, transform=grid.transform,
                   shape=grid.shape, crs=grid.crs, ids=ids)
    frame = zonal_stats(cov, ndvi(ds).data, mask=ds["invalid"].data, dates=[s.date_label for s in scenes], stats=("mean", "valid_fraction", "count", "min", "max"))
    table = stats_table_from_zonal(frame, variable="ndvi", scene_ids=[s.id for s in scenes])
    r = validate_plot_stats(contract, table, context, prior=prior)
    assert not r.blocked
    assert [(q["plot_id"], q["date"], q["rule_id"], q["scene_id"]) for q in r.quarantined_plot_dates] == [("P1", D2, "valid_pixels_per_plot", "S2")]
    kept = r.valid_plot_dates(table)
    np.testing.assert_allclose(kept["mean"], (0.25 - 0.05) / (0.25 + 0.05), rtol=1e-6)
    assert len(kept) == 3
