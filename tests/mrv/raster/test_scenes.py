"""Scene access: local STAC catalogs, hashing into the artifact store, typed scene metadata,
alignment/reprojection to a project grid on hand-checkable grids, equal-area helpers, and the
bad-input errors (each names the scene, the asset where one is involved, and the rule)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import CRS, Geod, Transformer

from mrv.artifacts import LocalArtifactStore, sha256_file
from mrv.errors import CRSMismatchError, MRVError, RasterError, SceneError
from mrv.raster.scenes import (
    GLOBAL_EQUAL_AREA,
    ProjectGrid,
    area_m2,
    check_plots_in_scenes,
    equal_area_crs,
    ndvi,
    plot_scene_coverage,
    read_scene,
    read_scenes,
    scene_from_json,
    to_crs,
)
from mrv.raster.stac import BandSpec, MaskSpec, scenes_from_catalog

UTM = "EPSG:32723"
X0, Y0, RES = 600_000.0, 7_800_000.0, 10.0
T = Affine(RES, 0, X0, 0, -RES, Y0)
ROWS, COLS = 20, 30


def write_tif(path: Path, data: np.ndarray, *, crs=UTM, transform=T, nodata=0, scale=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    kw = {"crs": crs} if crs is not None else {}
    if transform is not None:
        kw["transform"] = transform
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1], count=1, dtype=data.dtype,
                       nodata=nodata, tiled=True, blockxsize=16, blockysize=16, compress="deflate", **kw) as ds:
        ds.write(data, 1)
        if scale is not None:
            ds.scales = (scale,)
    return path


def ramp(rows=ROWS, cols=COLS) -> np.ndarray:
    """DN = 1000 + 10·col + row: hand-checkable values (scale 1e-4 -> reflectance 0.1 + ...)."""
    r, c = np.mgrid[0:rows, 0:cols]
    return (1000 + 10 * c + r).astype(np.uint16)


def make_catalog(root: Path, items: list[dict]) -> Path:
    """items: {id, datetime, assets: {key: path or href str}, raster_bands: {key: [...]}}."""
    cat = pystac.Catalog(id="test", description="test scenes")
    for spec in items:
        item = pystac.Item(id=spec["id"], geometry=None, bbox=None, datetime=spec["datetime"], properties={"eo:cloud_cover": 5.0})
        for key, href in spec["assets"].items():
            extra = {"raster:bands": spec["raster_bands"][key]} if key in spec.get("raster_bands", {}) else {}
            item.add_asset(key, pystac.Asset(href=str(href), media_type=pystac.MediaType.GEOTIFF, extra_fields=extra))
        cat.add_item(item)
    cat.normalize_hrefs(str(root.resolve()))
    cat.make_all_asset_hrefs_relative()
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def standard_scene(root: Path, item_id: str, when: datetime, *, red=None, nir=None, mask=None, crs=UTM, transform=T) -> dict:
    d = (root / item_id).resolve()
    red = ramp() if red is None else red
    nir = (ramp() * 3).astype(np.uint16) if nir is None else nir
    mask = np.zeros((ROWS, COLS), np.uint8) if mask is None else mask
    write_tif(d / "red.tif", red, crs=crs, transform=transform)
    write_tif(d / "nir.tif", nir, crs=crs, transform=transform)
    write_tif(d / "cloud_mask.tif", mask, crs=crs, transform=transform, nodata=255)
    rb = [{"data_type": "uint16", "nodata": 0, "scale": 0.0001, "offset": 0.0}]
    return {"id": item_id, "datetime": when, "assets": {"red": d / "red.tif", "nir": d / "nir.tif", "cloud_mask": d / "cloud_mask.tif"},
            "raster_bands": {"red": rb, "nir": rb}}


D1 = datetime(2020, 5, 1, 13, 10, tzinfo=timezone.utc)
D2 = datetime(2020, 2, 1, 13, 10, tzinfo=timezone.utc)


@pytest.fixture
def two_scenes(tmp_path: Path) -> Path:
    root = tmp_path / "stac"
    return make_catalog(root, [standard_scene(root, "S-B", D1), standard_scene(root, "S-A", D2)])


def blobs(store_root: Path) -> list[Path]:
    return [p for p in (store_root / "sha256").rglob("*") if p.is_file()] if (store_root / "sha256").exists() else []


# --------------------------------------------------------------------------- catalog and hashing


def test_catalog_gives_typed_scenes_hashed_into_the_store(two_scenes: Path, tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    scenes = scenes_from_catalog(two_scenes, bands=["red", "nir"], mask=MaskSpec("cloud_mask", (0,)), store=store)
    assert [s.id for s in scenes] == ["S-A", "S-B"]  # time order, not catalog order
    s = scenes[0]
    assert s.datetime == D2 and s.date_label == "2020-02-01T13:10:00Z"
    assert s.crs == CRS.from_epsg(32723) and s.to_json()["crs"] == "EPSG:32723"
    assert tuple(s.transform)[:6] == tuple(T)[:6]
    assert s.shape == (ROWS, COLS) and s.resolution == (10.0, 10.0)
    assert s.bounds == (X0, Y0 - ROWS * RES, X0 + COLS * RES, Y0)
    assert s.bands == ("red", "nir") and s.mask == "cloud_mask"
    red = s.assets["red"]
    src = (two_scenes.parent / "S-A" / "red.tif").resolve()
    assert red.source_path == src and red.href == "./red.tif"
    assert red.digest == sha256_file(src)
    assert store.exists(red.digest) and red.path == store.local_path(red.digest)
    assert red.path.read_bytes() == src.read_bytes()
    assert (red.scale, red.offset, red.nodata, red.dtype) == (0.0001, 0.0, 0, "uint16")  # from raster:bands
    assert s.assets["cloud_mask"].role == "mask" and s.assets["cloud_mask"].valid_values == (0,)
    assert s.item_digest is not None and store.exists(s.item_digest)
    assert s.properties == {"eo:cloud_cover": 5.0}
    json.dumps([sc.to_json() for sc in scenes])  # JSON-native
    # 2 scenes x 3 assets + 2 item JSONs; identical files would share one blob
    assert len({a.digest for sc in scenes for a in sc.assets.values()}) == 3  # the two scenes have the same bytes
    # re-ingesting stores nothing new
    before = sorted(blobs(tmp_path / "store"))
    scenes_from_catalog(two_scenes, bands=["red", "nir"], mask="cloud_mask", store=store)
    assert sorted(blobs(tmp_path / "store")) == before


def test_without_store_digests_are_computed_and_files_read_in_place(two_scenes: Path) -> None:
    scenes = scenes_from_catalog(two_scenes, bands=[BandSpec("red", scale=0.001)])
    red = scenes[0].assets["red"]
    assert red.path == red.source_path and red.digest == sha256_file(red.path)
    assert red.scale == 0.001  # the project's BandSpec wins over raster:bands
    assert scenes[0].mask is None


def test_scene_json_round_trip_reads_the_stored_bytes(two_scenes: Path, tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    scenes = scenes_from_catalog(two_scenes, bands=["red", "nir"], mask="cloud_mask", store=store)
    back = scene_from_json(json.loads(json.dumps(scenes[1].to_json())), store)
    assert back.to_json() == scenes[1].to_json()
    grid = ProjectGrid(crs=UTM, resolution=RES, bounds=(X0, Y0 - ROWS * RES, X0 + COLS * RES, Y0))
    a, b = read_scene(scenes[1], grid), read_scene(back, grid)
    np.testing.assert_array_equal(a["red"].values, b["red"].values)


def test_missing_asset_key_names_item_asset_and_rule(tmp_path: Path) -> None:
    root = tmp_path / "stac"
    spec = standard_scene(root, "S-1", D1)
    del spec["assets"]["nir"]
    cat = make_catalog(root, [spec])
    with pytest.raises(SceneError, match=r"scene S-1: STAC item has no asset 'nir'.*rule: stac_asset_present"):
        scenes_from_catalog(cat, bands=["red", "nir"])


def test_missing_asset_file_names_item_asset_and_writes_nothing(two_scenes: Path, tmp_path: Path) -> None:
    (two_scenes.parent / "S-B" / "nir.tif").unlink()
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(SceneError, match=r"scene S-B, asset 'nir': file .*nir.tif does not exist.*rule: stac_asset_present"):
        scenes_from_catalog(two_scenes, bands=["red", "nir"], mask="cloud_mask", store=store)
    assert blobs(tmp_path / "store") == []  # the good scene S-A was not stored either


def test_remote_asset_href_is_refused_offline(tmp_path: Path) -> None:
    root = tmp_path / "stac"
    spec = standard_scene(root, "S-1", D1)
    spec["assets"]["red"] = "https://example.org/red.tif"
    cat = make_catalog(root, [spec])
    with pytest.raises(SceneError, match=r"scene S-1, asset 'red': href https://example.org/red.tif is not a local file.*rule: asset_local"):
        scenes_from_catalog(cat, bands=["red"])


@pytest.mark.parametrize("damage", ["truncate", "garble", "not_a_tiff"])
def test_corrupt_geotiff_names_scene_asset_and_rule_and_writes_nothing(two_scenes: Path, tmp_path: Path, damage: str) -> None:
    bad = two_scenes.parent / "S-B" / "red.tif"
    data = bad.read_bytes()
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "garble":
        mid = len(data) // 2
        bad.write_bytes(data[:mid] + bytes(200) + data[mid + 200:])
    else:
        bad.write_bytes(b"this is not a GeoTIFF")
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(SceneError, match=r"scene S-B, asset 'red': .*red.tif is not a readable GeoTIFF.*rule: asset_readable") as err:
        scenes_from_catalog(two_scenes, bands=["red", "nir"], store=store)
    assert isinstance(err.value, RasterError) and isinstance(err.value, MRVError)
    assert blobs(tmp_path / "store") == []


def test_unreadable_catalog(tmp_path: Path) -> None:
    with pytest.raises(SceneError, match="rule: stac_catalog_readable"):
        scenes_from_catalog(tmp_path / "nope.json", bands=["red"])
    (tmp_path / "catalog.json").write_text("{not json")
    with pytest.raises(SceneError, match="not a readable STAC catalog.*rule: stac_catalog_readable"):
        scenes_from_catalog(tmp_path / "catalog.json", bands=["red"])


def test_missing_crs_loads_as_metadata_but_cannot_be_read(tmp_path: Path) -> None:
    root = tmp_path / "stac"
    cat = make_catalog(root, [standard_scene(root, "S-NOCRS", D1, crs=None)])
    (scene,) = scenes_from_catalog(cat, bands=["red", "nir"], mask="cloud_mask")
    assert scene.crs is None  # the contract's crs_present rule judges it (block)
    grid = ProjectGrid(crs=UTM, resolution=RES, bounds=(X0, Y0 - 100, X0 + 100, Y0))
    with pytest.raises(SceneError, match=r"scene S-NOCRS, asset 'red': no CRS.*rule: crs_present"):
        read_scene(scene, grid)


def test_missing_transform_cannot_be_read(tmp_path: Path) -> None:
    root = tmp_path / "stac"
    cat = make_catalog(root, [standard_scene(root, "S-NOGEO", D1, crs=None, transform=None)])
    (scene,) = scenes_from_catalog(cat, bands=["red"])
    assert scene.transform is None and scene.bounds is None
    grid = ProjectGrid(crs=UTM, resolution=RES, bounds=(X0, Y0 - 100, X0 + 100, Y0))
    with pytest.raises(SceneError, match=r"scene S-NOGEO.*rule: (crs|transform)_present"):
        read_scene(scene, grid)


# --------------------------------------------------------------------------- grid and reading


def test_project_grid_snaps_outward_to_whole_pixels() -> None:
    g = ProjectGrid(crs=UTM, resolution=10, bounds=(600_003, 7_799_001, 600_047, 7_799_049))
    assert g.bounds == (600_000, 7_799_000, 600_050, 7_799_050)
    assert g.shape == (5, 5)
    assert tuple(g.transform)[:6] == (10, 0, 600_000, 0, -10, 7_799_050)
    y, x = g.coords()
    assert x[0] == 600_005 and y[0] == 7_799_045
    assert g.grid.shape == (5, 5) and g.grid.cell_area == 100
    with pytest.raises(RasterError):
        ProjectGrid(crs=UTM, resolution=0, bounds=(0, 0, 1, 1))
    # another lattice: pixel corners at 15 m offsets (Landsat-like 30 m)
    g = ProjectGrid(crs=UTM, resolution=30, bounds=(600_020, 7_799_000, 600_100, 7_799_050), origin=(15, 15))
    assert g.bounds == (600_015, 7_798_995, 600_105, 7_799_055) and g.origin == (15, 15)


def test_grid_of_scene_copies_without_resampling(two_scenes: Path) -> None:
    (scene, _) = scenes_from_catalog(two_scenes, bands=["red"])
    g = ProjectGrid.of_scene(scene)
    assert g.shape == scene.shape and tuple(g.transform)[:6] == tuple(scene.transform)[:6]
    np.testing.assert_array_equal(read_scene(scene, g)["red"].values, ramp().astype(np.float32) * np.float32(1e-4))


def test_aligned_window_is_copied_exactly_with_nodata_mask_and_off_scene(two_scenes: Path, tmp_path: Path) -> None:
    root = tmp_path / "stac2"
    red = ramp()
    red[2, 3] = 0  # nodata
    mask = np.zeros((ROWS, COLS), np.uint8)
    mask[4, 5] = 1  # cloud
    mask[6, 7] = 2  # shadow
    cat = make_catalog(root, [standard_scene(root, "S-1", D1, red=red, mask=mask)])
    (scene,) = scenes_from_catalog(cat, bands=["red", "nir"], mask=MaskSpec("cloud_mask", (0,)))
    # Grid: starts 1 pixel left of the scene (off-scene column) and 2 rows down; 8 x 12 pixels.
    grid = ProjectGrid(crs=UTM, resolution=RES, bounds=(X0 - 10, Y0 - 100, X0 + 110, Y0 - 20))
    ds = read_scene(scene, grid, chunks=5)
    assert ds["red"].chunks == ((5, 3), (5, 5, 2))
    assert ds.rio.crs.to_epsg() == 32723 and tuple(ds.rio.transform())[:6] == tuple(grid.transform)[:6]
    got = ds["red"].values
    expected = np.full((8, 12), np.nan, np.float32)
    expected[:, 1:] = (red[2:10, 0:11].astype(np.float32)) * np.float32(1e-4)
    expected[0, 4] = np.nan  # source (2, 3) nodata
    np.testing.assert_array_equal(got, expected)
    inv = ds["invalid"].values
    assert inv[:, 0].all()  # off scene
    assert inv[0, 4] and inv[2, 6] and inv[4, 8]  # nodata, cloud (4, 5), shadow (6, 7)
    assert inv.sum() == 8 + 3
    nd = ndvi(ds).values
    r, n = expected, (ramp()[2:10, 0:11].astype(np.float32) * 3 * np.float32(1e-4))
    np.testing.assert_allclose(nd[:, 1:], ((n - r[:, 1:]) / (n + r[:, 1:])), rtol=1e-6)


@pytest.mark.parametrize(("crs", "resolution", "origin"), [("EPSG:31983", 5.0, (0.0, 0.0)), (UTM, 20.0, (5.0, 5.0)), (UTM, 10.0, (3.0, 7.0))])
def test_other_crs_or_other_lattice_is_resampled_bilinearly_on_a_ramp(two_scenes: Path, crs: str, resolution: float, origin) -> None:
    """Source DN = 1000 + 10·col + row is linear in x and y, so bilinear resampling must return
    exactly the ramp at each target pixel centre (pixel (r, c) of the source has its centre at
    x = X0 + 10·(c + 0.5), y = Y0 − 10·(r + 0.5)). Targets: EPSG:31983 (SIRGAS 2000 / UTM 23S:
    the same coordinates as WGS 84 / UTM 23S for PROJ, but another CRS) at 5 m; 20 m pixels whose
    edges are shifted 5 m off the source's; 10 m pixels shifted by (3 m, 7 m)."""
    (scene, _) = scenes_from_catalog(two_scenes, bands=["red", "nir"], mask="cloud_mask")
    grid = ProjectGrid(crs=crs, resolution=resolution, bounds=(X0 + 40, Y0 - 160, X0 + 200, Y0 - 40), origin=origin)
    assert (grid.bounds[0] - origin[0]) % resolution == 0
    ds = read_scene(scene, grid, chunks=7)
    y, x = grid.coords()
    col = (x[None, :] - X0) / RES - 0.5
    row = (Y0 - y[:, None]) / RES - 0.5
    expected = (1000 + 10 * col + row) * 1e-4
    np.testing.assert_allclose(ds["red"].values, expected, rtol=0, atol=2e-6)
    assert not ds["invalid"].values.any()


def test_scene_in_another_crs_is_refused_on_request(two_scenes: Path) -> None:
    (scene, _) = scenes_from_catalog(two_scenes, bands=["red"])
    grid = ProjectGrid(crs="EPSG:31983", resolution=10, bounds=(X0, Y0 - 100, X0 + 100, Y0))
    with pytest.raises(CRSMismatchError, match=r"scene S-A, asset 'red': CRS EPSG:32723 differs from the project grid's EPSG:31983.*refused"):
        read_scene(scene, grid, on_other_crs="refuse")


def test_reprojection_to_geographic_matches_the_ramp_at_transformed_centres(two_scenes: Path) -> None:
    (scene, _) = scenes_from_catalog(two_scenes, bands=["red"])
    to_ll = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    lon0, lat0 = to_ll.transform(X0 + 60, Y0 - 140)
    lon1, lat1 = to_ll.transform(X0 + 240, Y0 - 40)
    grid = ProjectGrid(crs="EPSG:4326", resolution=0.00005, bounds=(lon0, lat0, lon1, lat1))
    ds = read_scene(scene, grid)
    y, x = grid.coords()
    xx, yy = np.meshgrid(x, y)
    ux, uy = Transformer.from_crs("EPSG:4326", UTM, always_xy=True).transform(xx, yy)
    expected = (1000 + 10 * ((ux - X0) / RES - 0.5) + ((Y0 - uy) / RES - 0.5)) * 1e-4
    np.testing.assert_allclose(ds["red"].values, expected, atol=5e-6)


def test_mask_is_warped_conservatively_with_max(tmp_path: Path) -> None:
    root = tmp_path / "stac"
    mask = np.zeros((ROWS, COLS), np.uint8)
    mask[3, 5] = 1
    cat = make_catalog(root, [standard_scene(root, "S-1", D1, mask=mask)])
    (scene,) = scenes_from_catalog(cat, bands=["red"], mask="cloud_mask")
    # 20 m grid on the same lattice: each target pixel covers 2x2 source pixels; the cloud at
    # source (3, 5) falls in target (1, 2) only. Not an aligned copy (resolution differs) -> warp.
    grid = ProjectGrid(crs=UTM, resolution=20, bounds=(X0, Y0 - ROWS * RES, X0 + COLS * RES, Y0))
    inv = read_scene(scene, grid)["invalid"].values
    assert inv.shape == (10, 15)
    assert inv[1, 2] and inv.sum() == 1


def test_read_scenes_stacks_time(two_scenes: Path) -> None:
    scenes = scenes_from_catalog(two_scenes, bands=["red", "nir"], mask="cloud_mask")
    grid = ProjectGrid(crs=UTM, resolution=RES, bounds=(X0, Y0 - 50, X0 + 50, Y0))
    ds = read_scenes(scenes, grid, chunks=4)
    assert ds["red"].dims == ("time", "y", "x") and ds.sizes["time"] == 2
    assert list(ds["scene_id"].values) == ["S-A", "S-B"]
    assert str(ds["time"].values[0]) == "2020-02-01T13:10:00.000000000"
    assert ds["red"].data.__class__.__module__.startswith("dask")


# --------------------------------------------------------------------------- geometry


def test_plot_coverage_and_plots_outside_every_scene(two_scenes: Path) -> None:
    scenes = scenes_from_catalog(two_scenes, bands=["red"])
    inside = shapely.box(X0 + 50, Y0 - 150, X0 + 100, Y0 - 100)
    half = shapely.box(X0 - 50, Y0 - 100, X0 + 50, Y0 - 50)  # half west of the scene
    far = shapely.box(X0 + 5000, Y0 - 5000, X0 + 5050, Y0 - 4950)
    plots = {"in": to_crs(inside, UTM, "EPSG:4326"), "half": to_crs(half, UTM, "EPSG:4326")}
    cov = plot_scene_coverage(scenes, plots)
    assert list(cov.columns) == ["plot_id", "scene_id", "date", "fraction"]
    f = cov.set_index(["plot_id", "scene_id"])["fraction"]
    assert f["in", "S-A"] == pytest.approx(1.0, abs=1e-9)
    assert f["half", "S-B"] == pytest.approx(0.5, abs=1e-4)
    plots["P-far"] = to_crs(far, UTM, "EPSG:4326")
    with pytest.raises(SceneError, match=r"1 plot\(s\) lie outside every scene .*S-A, S-B.*: P-far \(rule: plots_within_scenes\)"):
        check_plots_in_scenes(scenes, plots)


def test_equal_area_helpers_against_geodesic_area() -> None:
    cell = shapely.box(-44.05, -19.95, -44.0, -19.9)
    geod_area = abs(Geod(ellps="WGS84").geometry_area_perimeter(cell)[0])
    assert area_m2(cell) == pytest.approx(geod_area, rel=1e-6)
    assert area_m2(cell, equal_area=GLOBAL_EQUAL_AREA) == pytest.approx(geod_area, rel=1e-6)
    ea = equal_area_crs(cell)
    assert "+proj=laea" in ea.srs and "+lat_0=-19.92" in ea.srs and "+lon_0=-44.02" in ea.srs
    # UTM is conformal, not equal-area: a 1 km UTM square far from the central meridian is not 1 km²
    sq = shapely.box(X0, Y0 - 1000, X0 + 1000, Y0)
    true = area_m2(sq, UTM)
    assert true != pytest.approx(1e6, rel=1e-5) and true == pytest.approx(1e6, rel=2e-3)


def test_covered_fraction_equals_the_intersection_share() -> None:
    """The containment shortcut (contained plots -> exactly 1, no intersection) agrees with
    area(plot ∩ cover) / area(plot) for plots inside, crossing the edge, outside, on the edge only,
    and of zero area; it is what plot_scene_coverage and the scene_covers_plot rule use."""
    from mrv.raster.scenes import covered_fraction

    cover = shapely.segmentize(shapely.box(0, 0, 100, 60), 1.5)  # densified, as a reprojected footprint is
    rng = np.random.default_rng(3)
    plots = [shapely.Point(x, y).buffer(r, 16) for x, y, r in zip(rng.uniform(-20, 120, 300), rng.uniform(-20, 80, 300), rng.uniform(0.5, 12, 300))]
    plots += [shapely.box(100, 10, 110, 20), shapely.box(0, 0, 100, 60), shapely.Polygon([(5, 5), (6, 6), (7, 7)])]
    geoms = np.array(plots, dtype=object)
    areas = shapely.area(geoms)
    got = covered_fraction(geoms, areas, cover)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.where(areas > 0, shapely.area(shapely.intersection(geoms, cover)) / np.where(areas > 0, areas, 1), 0.0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    inside = shapely.contains_properly(cover, geoms) & (areas > 0)
    assert inside.sum() > 50 and (got[inside] == 1.0).all()  # the shortcut was taken, and gives exactly 1
    partial = (got > 0) & (got < 1)
    assert partial.sum() > 20 and ((got == 0) & (areas > 0)).sum() > 20  # every branch is exercised
    assert got[-3] == 0.0  # shares only an edge with the cover
    assert got[-2] == pytest.approx(1.0, abs=1e-12) and got[-1] == 0.0  # the cover itself; zero area
    assert (covered_fraction(geoms, areas, shapely.Polygon()) == 0).all()
