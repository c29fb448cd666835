"""Exact zonal statistics: hand-checkable cases, an exact double-precision reference (shapely
polygon ∩ pixel areas), exactextract on the same GeoTIFFs, every input kind, and clear errors.

Tolerances: against the shapely reference 1e-10 (both are float64 analytic areas). Against
exactextract 1e-7 (relative on count/sum, absolute on per-pixel fractions): exactextract keeps
coverage fractions in float32 (we see up to 2.4e-8 per pixel), so a tighter bound would test its
storage type, not our geometry. The mean, a ratio in which much of that rounding cancels,
is held to 2e-8. min and max must match exactly.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from mrv.errors import CRSMismatchError, GeometryError, MRVError, RasterError
from mrv.raster import Grid, coverage, zonal_stats

CRS = "EPSG:32643"
X0, Y0, RES = 500_000.0, 1_000_000.0, 10.0
T = Affine(RES, 0, X0, 0, -RES, Y0)
ROWS, COLS = 40, 50
NODATA = -9999.0


def write_tif(path: Path, data: np.ndarray, *, transform=T, crs=CRS, nodata=NODATA, tiled=True, block=16) -> Path:
    opts = {"tiled": True, "blockxsize": block, "blockysize": block} if tiled else {}
    with rasterio.open(
        path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1], count=1, dtype=data.dtype,
        crs=crs, transform=transform, nodata=nodata, compress="deflate", **opts,
    ) as ds:
        ds.write(data, 1)
    return path


def world(coords, *, res=RES, x0=X0, y0=Y0):
    """Pixel-unit offsets (x right, y up from the grid's top-left corner) to CRS coordinates."""
    return [(x0 + res * x, y0 + res * y) for x, y in coords]


def px_box(c0, r0, c1, r1):
    """Box from pixel (col, row) corners to CRS coordinates on grid ``T``."""
    return shapely.box(X0 + RES * c0, Y0 - RES * r1, X0 + RES * c1, Y0 - RES * r0)


def plots() -> list:
    """Irregular, holed, multipart, edge-crossing, grid-aligned and outside plots."""
    star = shapely.Polygon(
        [(X0 + RES * (20 + r * math.cos(a)), Y0 - RES * (15 + r * math.sin(a)))
         for a, r in zip(np.linspace(0, 2 * math.pi, 23, endpoint=False), [7.3, 4.1] * 11 + [6.6])]
    )
    holed = px_box(3.3, 20.2, 14.7, 33.9).difference(px_box(6.1, 24.4, 10.2, 29.95))
    holed2 = shapely.Point(X0 + RES * 35.5, Y0 - RES * 30.2).buffer(RES * 6.4).difference(
        shapely.Point(X0 + RES * 36.1, Y0 - RES * 29.7).buffer(RES * 2.2)
    )
    multi = shapely.MultiPolygon([px_box(40.25, 3.6, 44.8, 6.1), shapely.Polygon(world([(45, -10), (48.7, -8.2), (46.1, -14.9)]))])
    crossing_left_top = shapely.Polygon(world([(-3.2, 2.7), (6.4, 3.1), (5.2, -7.9), (-1.1, -6.3)]))
    crossing_right_bottom = px_box(46.5, 35.25, 53.0, 42.0)
    diamond_on_corners = shapely.Polygon(world([(27, -33), (31, -37), (27, -39), (23, -37)]))  # vertices on pixel corners
    tiny = px_box(12.2, 2.3, 12.35, 2.9)  # inside one pixel
    aligned = px_box(30, 2, 35, 6)  # exactly 20 whole pixels
    outside = px_box(60, 60, 64, 63)
    on_nodata = px_box(1.5, 36.5, 4.5, 39.5)  # over an all-nodata patch (see values())
    return [star, holed, holed2, multi, crossing_left_top, crossing_right_bottom, diamond_on_corners, tiny, aligned, outside, on_nodata]


def values(dates: int = 3) -> np.ndarray:
    rng = np.random.default_rng(42)
    v = rng.normal(0.5, 0.2, (dates, ROWS, COLS)).astype(np.float32)
    v[:, 36:40, 1:5] = NODATA
    v[0, 10:14, 15:22] = NODATA  # cloud under the star on date 0
    v[1, 22:30, 5:12] = np.nan  # NaN in the holed plot on date 1
    v[2, ::7, ::5] = np.nan
    return v


@pytest.fixture
def scenes(tmp_path: Path) -> list[Path]:
    return [write_tif(tmp_path / f"scene-{d}.tif", v) for d, v in enumerate(values())]


def cov_of(polys, *, transform=T, shape=(ROWS, COLS), crs=CRS, **kw):
    return coverage(polys, transform=transform, shape=shape, crs=crs, polygons_crs=crs, **kw)


def reference_fractions(poly, *, rows=ROWS, cols=COLS) -> np.ndarray:
    """Dense coverage by brute force: shapely area of polygon ∩ each pixel box, in coordinates
    shifted to the grid origin (so float64 keeps its digits for the small areas)."""
    local = shapely.affinity.translate(poly, -X0, -Y0)
    xs, ys = np.meshgrid(np.arange(cols), np.arange(rows))
    boxes = shapely.box(RES * xs, -RES * (ys + 1), RES * (xs + 1), -RES * ys)
    return shapely.area(shapely.intersection(boxes, local)) / RES**2


# --------------------------------------------------------------------------- hand-checkable


SMALL = Affine(1, 0, 0, 0, -1, 4)  # 4 x 4 grid of 1 m pixels, top-left corner at (0, 4)
V = np.array([[2, 4, 6, 8], [1, 3, 5, 7], [9, 9, 9, 9], [0, 1, 2, 3]], dtype=np.float64)


def small(polys, vals=V, **kw):
    cov = cov_of(polys, transform=SMALL, shape=(4, 4))
    return cov, zonal_stats(cov, vals, stats=("mean", "valid_fraction", "count", "sum", "min", "max"), scheduler="sync", **kw)


def test_rectangle_covering_one_and_a_half_pixels():
    cov, df = small([shapely.box(0, 3, 1.5, 4)])
    assert cov.to_dense(0)[0, :2].tolist() == [1.0, 0.5]
    assert cov.fraction.sum() == 1.5
    row = df.iloc[0]
    assert row["count"] == 1.5 and row["valid_fraction"] == 1.0
    assert row["mean"] == pytest.approx((2 * 1 + 4 * 0.5) / 1.5, rel=1e-15)
    assert (row["sum"], row["min"], row["max"]) == (4.0, 2.0, 4.0)


def test_unit_square_across_four_pixels_and_half_pixel_triangle():
    cov, df = small([shapely.box(0.5, 2.5, 1.5, 3.5), shapely.Polygon([(0, 4), (1, 4), (0, 3)])])
    assert np.array_equal(cov.to_dense(0)[:2, :2], np.full((2, 2), 0.25))
    assert df["count"].tolist() == [1.0, 0.5]
    assert df["mean"].iloc[0] == pytest.approx((2 + 4 + 1 + 3) / 4, rel=1e-15)
    assert df["mean"].iloc[1] == 2.0


def test_nodata_pixel_is_not_valid():
    vals = V.copy()
    vals[0, 1] = -1
    _, df = small([shapely.box(0, 3, 1.5, 4)], vals=vals, nodata=-1)
    row = df.iloc[0]
    assert (row["mean"], row["count"], row["max"]) == (2.0, 1.0, 2.0)
    assert row["valid_fraction"] == pytest.approx(1 / 1.5, rel=1e-15)


def test_part_outside_the_raster_counts_as_not_valid():
    cov, df = small([shapely.box(-1, 3, 1, 4)])  # 2 pixels of area, 1 on the raster
    assert cov.area.tolist() == [2.0] and cov.inside_fraction.tolist() == [0.5]
    row = df.iloc[0]
    assert (row["count"], row["valid_fraction"], row["mean"]) == (1.0, 0.5, 2.0)


def test_plot_entirely_outside_has_no_valid_pixels():
    cov, df = small([shapely.box(10, 10, 11, 11)])
    assert len(cov.fraction) == 0 and cov.inside_fraction.tolist() == [0.0]
    row = df.iloc[0]
    assert row["count"] == 0 and row["valid_fraction"] == 0
    assert all(math.isnan(row[s]) for s in ("mean", "min", "max"))


def test_hole_and_multipolygon():
    ring = shapely.box(0, 1, 3, 4).difference(shapely.box(1, 2, 2, 3))
    two = shapely.MultiPolygon([shapely.box(0, 3, 1, 4), shapely.box(3, 0, 4, 1)])
    _, df = small([ring, two])
    assert df["count"].tolist() == [8.0, 2.0]
    assert df["mean"].iloc[0] == pytest.approx((2 + 4 + 6 + 1 + 5 + 9 + 9 + 9) / 8, rel=1e-15)
    assert df["mean"].iloc[1] == (2 + 3) / 2


def test_all_nan_plot_has_nan_mean_and_zero_count():
    vals = V.copy()
    vals[2, :] = np.nan
    _, df = small([shapely.box(0.2, 1.2, 3.8, 1.8)], vals=vals)
    assert df["count"].iloc[0] == 0 and math.isnan(df["mean"].iloc[0])


@pytest.mark.parametrize(
    "transform",
    [
        Affine(2, 0, 0, 0, -0.5, 2),  # non-square pixels, north-up
        Affine(2, 0, 0, 0, 0.5, 0),  # south-up (positive y step)
        Affine(0, 0.5, 0, 2, 0, 0),  # rotated a quarter turn: rows run along x
    ],
)
def test_other_grid_orientations_and_pixel_shapes(transform):
    """Area ratios survive any affine grid: on the raster, a plot counts its area in pixels."""
    poly = shapely.box(0.3, 0.6, 1.7, 1.9)  # 1.82 m², inside all three grids
    cov = cov_of([poly], transform=transform, shape=(4, 4))
    assert cov.area[0] == pytest.approx(poly.area / abs(transform.determinant), rel=1e-14)
    assert cov.fraction.sum() == pytest.approx(cov.area[0], rel=1e-14)
    pixel_area = abs(transform.determinant)
    for r in range(4):
        for c in range(4):
            pixel = shapely.Polygon([transform @ (c, r), transform @ (c + 1, r), transform @ (c + 1, r + 1), transform @ (c, r + 1)])
            assert cov.to_dense(0)[r, c] == pytest.approx(poly.intersection(pixel).area / pixel_area, abs=1e-14)


# --------------------------------------------------------------------------- exact reference


def test_coverage_matches_double_precision_polygon_pixel_intersections():
    polys = plots()
    cov = cov_of(polys)
    for k, poly in enumerate(polys):
        ref = reference_fractions(poly)
        got = cov.to_dense(k)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10, err_msg=f"plot {k}")
        assert cov.area[k] == pytest.approx(poly.area / RES**2, rel=1e-12)
    # Interior pixels are exactly 1 (snapped), not 0.9999999999999998.
    assert (cov.fraction == 1.0).sum() > 300
    assert cov.fraction.min() > 0 and cov.fraction.max() == 1.0


def test_stats_match_double_precision_reference(scenes):
    polys = plots()
    vals = values().astype(np.float64)
    df = zonal_stats(cov_of(polys), scenes, stats=("mean", "count", "valid_fraction", "sum"))
    for d in range(len(scenes)):
        valid = ~np.isnan(vals[d]) & (vals[d] != NODATA)
        for k, poly in enumerate(polys):
            w = reference_fractions(poly) * valid
            row = df[(df['date'] == d) & (df['plot'] == k)].iloc[0]
            assert row["count"] == pytest.approx(w.sum(), rel=1e-10, abs=1e-12)
            assert row["valid_fraction"] == pytest.approx(w.sum() / (poly.area / RES**2), rel=1e-10, abs=1e-12)
            if w.sum() > 0:
                assert row["mean"] == pytest.approx((w * np.where(valid, vals[d], 0)).sum() / w.sum(), rel=1e-10)
            else:
                assert math.isnan(row["mean"])


def test_batched_and_banded_coverage_is_identical(monkeypatch):
    """Coverage is computed over batches of plots, and a big plot in bands of rows, to bound
    memory: the entries are the same as in one go."""
    import mrv.raster._coverage as impl

    whole = cov_of(plots())
    monkeypatch.setattr(impl, "_BATCH_CELLS", 40)  # smaller than most plots' bounding boxes
    split = cov_of(plots())
    assert np.array_equal(whole.plot, split.plot) and np.array_equal(whole.index, split.index)
    np.testing.assert_allclose(whole.fraction, split.fraction, rtol=0, atol=1e-15)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-8, 48), st.integers(-8, 48)), min_size=3, max_size=12),
    st.sampled_from([1, 2, 4, 7]),
    st.floats(0.5, 3.0),
)
def test_random_polygons_match_the_reference(points, denominator, res):
    """Hull-like polygons with vertices on a 1/denominator pixel lattice — so edges often run
    along grid lines and through pixel corners — on grids of various resolutions."""
    poly = shapely.convex_hull(shapely.MultiPoint([(x / denominator * res, -y / denominator * res) for x, y in points]))
    hole = shapely.affinity.scale(poly, 0.4, 0.4)
    if poly.geom_type != "Polygon" or poly.area == 0:
        return
    transform = Affine(res, 0, 0, 0, -res, 0)
    for geom in (poly, poly.difference(hole)):
        cov = cov_of([geom], transform=transform, shape=(12, 12))
        xs, ys = np.meshgrid(np.arange(12), np.arange(12))
        boxes = shapely.box(res * xs, -res * (ys + 1), res * (xs + 1), -res * ys)
        ref = shapely.area(shapely.intersection(boxes, geom)) / res**2
        np.testing.assert_allclose(cov.to_dense(0), ref, rtol=0, atol=1e-12)
        assert cov.area[0] == pytest.approx(geom.area / res**2, rel=1e-12)


# --------------------------------------------------------------------------- exactextract


def _features(polys):
    return [{"type": "Feature", "id": k, "properties": {"k": k}, "geometry": shapely.geometry.mapping(p)} for k, p in enumerate(polys)]


def test_per_pixel_coverage_matches_exactextract(tmp_path):
    from exactextract import exact_extract

    polys = plots()
    cov = cov_of(polys)
    # A scene without nodata: exactextract lists only the cells with values.
    clear = write_tif(tmp_path / "clear.tif", np.ones((ROWS, COLS), dtype=np.float32))
    ee = exact_extract(str(clear), _features(polys), ["cell_id", "coverage"], output="pandas")
    checked = 0
    for k in range(len(polys)):
        ours = cov.to_dense(k).ravel()
        cells = np.asarray(ee["cell_id"][k], dtype=np.int64)
        np.testing.assert_allclose(ours[cells], np.asarray(ee["coverage"][k]), rtol=0, atol=1e-7, err_msg=f"plot {k}")
        # Every pixel we cover, exactextract covers too.
        assert set(np.flatnonzero(ours)) == set(cells.tolist()), f"plot {k}"
        checked += len(cells)
    assert checked > 500


@pytest.mark.parametrize("strategy", ["feature-sequential", "raster-sequential"])
def test_stats_match_exactextract(scenes, strategy):
    from exactextract import exact_extract

    polys = plots()
    ops = ["mean", "count", "sum", "min", "max"]
    df = zonal_stats(cov_of(polys), scenes, stats=(*ops, "valid_fraction"))
    for d, path in enumerate(scenes):
        ee = exact_extract(str(path), _features(polys), ops, strategy=strategy, output="pandas")
        ours = df[df["date"] == d].reset_index(drop=True)
        assert np.array_equal(np.isnan(ours["mean"]), np.isnan(ee["mean"])), f"date {d}: plots without valid pixels differ"
        np.testing.assert_allclose(ours["mean"], ee["mean"], rtol=2e-8, equal_nan=True, err_msg=f"date {d} mean")
        np.testing.assert_allclose(ours["count"], ee["count"], rtol=1e-7, atol=1e-12, err_msg=f"date {d} count")
        np.testing.assert_allclose(ours["sum"], ee["sum"], rtol=1e-7, atol=1e-9, err_msg=f"date {d} sum")
        np.testing.assert_array_equal(ours["min"], ee["min"])
        np.testing.assert_array_equal(ours["max"], ee["max"])
    # The fixture really exercises what it claims to.
    counts = df.pivot(index="plot", columns="date", values="count")
    assert counts.loc[9].eq(0).all()  # outside
    assert counts.loc[10].eq(0).all()  # all nodata
    assert (counts.loc[1] < counts.loc[1].max()).any()  # NaN pixels in the holed plot on one date
    assert df[df["plot"] == 4]["valid_fraction"].max() < 0.6  # about half outside the raster


# --------------------------------------------------------------------------- input kinds


def _expected(scenes):
    return zonal_stats(cov_of(plots()), scenes, stats=("mean", "count", "valid_fraction", "min", "max"), scheduler="sync")


def _same(a, b):
    for col in ("mean", "count", "valid_fraction", "min", "max"):
        np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-13, atol=1e-13, equal_nan=True, err_msg=col)


@pytest.mark.parametrize("max_cells", [1, 300, 2**23])
def test_file_tasks_of_any_size_agree(scenes, max_cells):
    """One block per task, a few, or a whole date per task: same numbers (plots spanning blocks
    within one task accumulate correctly)."""
    cov = cov_of(plots())
    df = zonal_stats(cov, scenes, stats=("mean", "count", "valid_fraction", "min", "max"), max_cells_per_task=max_cells, num_workers=2)
    _same(df, _expected(scenes))


def test_untiled_geotiff(scenes, tmp_path):
    striped = [write_tif(tmp_path / f"striped-{d}.tif", v, tiled=False) for d, v in enumerate(values())]
    with rasterio.open(striped[0]) as ds:
        assert ds.block_shapes[0][1] == COLS  # really striped
    _same(zonal_stats(cov_of(plots()), striped, stats=("mean", "count", "valid_fraction", "min", "max")), _expected(scenes))


def test_numpy_masked_and_dask_inputs(scenes):
    import dask.array as da

    cov = cov_of(plots())
    stats = ("mean", "count", "valid_fraction", "min", "max")
    expected = _expected(scenes)
    vals = values()
    _same(zonal_stats(cov, vals, nodata=NODATA, stats=stats), expected)
    _same(zonal_stats(cov, np.ma.masked_equal(vals, NODATA), stats=stats), expected)
    _same(zonal_stats(cov, da.from_array(vals, chunks=(2, 16, 20)), nodata=NODATA, stats=stats), expected)

    class DataArrayLike:  # the two attributes zonal_stats uses from an xarray.DataArray
        dims = ("time", "y", "x")
        data = da.from_array(vals, chunks=(1, 40, 25))

    _same(zonal_stats(cov, DataArrayLike(), nodata=NODATA, stats=stats), expected)


def test_mask_marks_invalid_pixels(tmp_path, scenes):
    cov = cov_of(plots())
    vals = values()
    clouds = np.zeros(vals.shape, dtype=np.uint8)
    clouds[:, 5:25, 10:30] = 1
    mask_paths = [write_tif(tmp_path / f"mask-{d}.tif", m, nodata=None) for d, m in enumerate(clouds)]
    expected = zonal_stats(cov, np.where(clouds == 1, np.nan, vals), nodata=NODATA, stats=("mean", "count", "valid_fraction", "min", "max"))
    _same(zonal_stats(cov, scenes, mask=mask_paths, stats=("mean", "count", "valid_fraction", "min", "max")), expected)
    _same(zonal_stats(cov, vals, mask=clouds.astype(bool), nodata=NODATA, stats=("mean", "count", "valid_fraction", "min", "max")), expected)


def test_coverage_is_reused_and_labels(scenes):
    cov = cov_of(plots(), ids=[f"P{k}" for k in range(len(plots()))])
    df = zonal_stats(cov, scenes, dates=["2024-01", "2024-02", "2024-03"])
    assert list(df.columns) == ["date", "plot", "mean", "valid_fraction", "count"]
    assert df["plot"].tolist()[:2] == ["P0", "P1"] and df["date"].iloc[-1] == "2024-03"
    assert len(df) == 3 * len(plots())
    assert len(cov._plans) == 1  # one block plan for the three scenes: geometry work done once
    zonal_stats(cov, scenes[:1])
    assert len(cov._plans) == 1


def test_grid_from_file(scenes):
    grid = Grid.from_file(scenes[0])
    assert grid.shape == (ROWS, COLS) and grid.transform == T and grid.cell_area == RES**2
    assert grid.crs.to_epsg() == 32643


# --------------------------------------------------------------------------- errors


def test_plots_in_another_crs_are_refused():
    with pytest.raises(CRSMismatchError, match="EPSG:4326.*EPSG:32643"):
        coverage([shapely.box(0, 0, 1, 1)], transform=T, shape=(ROWS, COLS), crs=CRS, polygons_crs="EPSG:4326")
    with pytest.raises(CRSMismatchError, match="polygons_crs is required"):
        coverage([shapely.box(0, 0, 1, 1)], transform=T, shape=(ROWS, COLS), crs=CRS, polygons_crs=None)


def test_scene_in_another_crs_is_refused(tmp_path, scenes):
    other = write_tif(tmp_path / "utm44.tif", values()[0], crs="EPSG:32644")
    with pytest.raises(CRSMismatchError, match="utm44.tif.*EPSG:32644"):
        zonal_stats(cov_of(plots()), [scenes[0], other])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"crs": None}, "no CRS"),
        ({"transform": Affine(RES, 0, X0 + RES / 2, 0, -RES, Y0)}, "transform"),
    ],
)
def test_scene_without_crs_or_on_another_grid_is_refused(tmp_path, kwargs, match):
    bad = write_tif(tmp_path / "bad.tif", values()[0], **kwargs)
    with pytest.raises(RasterError, match=f"bad.tif.*{match}"):
        zonal_stats(cov_of(plots()), bad)


def test_scene_of_another_shape_is_refused(tmp_path):
    bad = write_tif(tmp_path / "bad.tif", values()[0][:, :-1])
    with pytest.raises(RasterError, match="bad.tif.*shape"):
        zonal_stats(cov_of(plots()), bad)


def test_corrupt_geotiffs_are_named(tmp_path, scenes):
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"II*\x00 not really a tiff" * 10)
    with pytest.raises(RasterError, match="garbage.tif"):
        zonal_stats(cov_of(plots()), [scenes[0], garbage])
    # Valid header, damaged compressed tiles: fails while reading blocks.
    damaged = tmp_path / "damaged.tif"
    data = bytearray(scenes[1].read_bytes())
    with rasterio.open(scenes[1]) as ds:
        offsets = [int(ds.get_tag_item(f"BLOCK_OFFSET_{j}_{i}", "TIFF", bidx=1)) for i in range(3) for j in range(4)]
    for off in offsets:
        data[off : off + 64] = b"\xff" * 64
    damaged.write_bytes(bytes(data))
    with pytest.raises(RasterError, match="damaged.tif.*cannot be read"):
        zonal_stats(cov_of(plots()), [scenes[0], damaged])


def test_bad_geometries_are_refused():
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 50, Y0 - 50), (X0 + 50, Y0), (X0, Y0 - 50)])
    with pytest.raises(GeometryError, match="plot 1: invalid polygon"):
        cov_of([px_box(1, 1, 2, 2), bowtie])
    with pytest.raises(GeometryError, match="plot 0: Point"):
        cov_of([shapely.Point(X0, Y0)])
    with pytest.raises(GeometryError, match="unique"):
        cov_of([px_box(1, 1, 2, 2)] * 2, ids=["a", "a"])


def test_geojson_mappings_are_accepted():
    poly = px_box(1.5, 2.5, 4, 6)
    cov = cov_of([shapely.geometry.mapping(poly)])
    assert cov.fraction.sum() == pytest.approx(2.5 * 3.5, rel=1e-14)


def test_bad_arguments():
    cov = cov_of(plots())
    with pytest.raises(RasterError, match="not on the coverage grid"):
        zonal_stats(cov, np.zeros((ROWS + 1, COLS)))
    with pytest.raises(ValueError, match="unknown stats"):
        zonal_stats(cov, values(), stats=("median",))
    with pytest.raises(ValueError, match="date labels"):
        zonal_stats(cov, values(), dates=["only-one"])
    assert issubclass(RasterError, MRVError) and issubclass(CRSMismatchError, RasterError)


def test_valid_fraction_never_exceeds_one_for_fully_valid_plots():
    """Regression: count and area summed in different orders gave 1.0000000000000009."""
    import numpy as np
    from affine import Affine
    from shapely.geometry import Polygon

    from mrv.raster.zonal import coverage, zonal_stats

    rng = np.random.default_rng(0)
    polys = []
    for _ in range(200):
        x, y = rng.uniform(1, 80, 2)
        w, h = rng.uniform(0.3, 9.7, 2)
        polys.append(Polygon([(x, y), (x + w, y + 0.1 * h), (x + w, y + h), (x + 0.2 * w, y + h)]))
    transform = Affine(1.0, 0.0, 0.0, 0.0, -1.0, 100.0)
    cov = coverage(polys, transform=transform, shape=(100, 100), crs="EPSG:32633", polygons_crs="EPSG:32633")
    frame = zonal_stats(cov, np.ones((100, 100), dtype=np.float32))
    assert (frame["valid_fraction"] <= 1.0).all()
    assert np.allclose(frame["valid_fraction"], 1.0)


def test_valid_fraction_clips_only_rounding_excess():
    """The one place valid_fraction is clipped: an excess within VALID_FRACTION_ROUNDING is set to 1,
    a larger one (only a defect can produce it) is kept so the plot_statistics contract catches it."""
    import dataclasses

    import numpy as np
    from affine import Affine
    from shapely.geometry import box

    from mrv.raster.zonal import VALID_FRACTION_ROUNDING, coverage, zonal_stats

    transform = Affine(1.0, 0.0, 0.0, 0.0, -1.0, 20.0)
    polys = [box(2.3, 3.1, 9.7, 8.4), box(11.2, 10.5, 17.9, 16.6), box(1.5, 12.25, 6.5, 18.75)]
    cov = coverage(polys, transform=transform, shape=(20, 20), crs="EPSG:32633", polygons_crs="EPSG:32633")
    values = np.ones((20, 20), dtype=np.float32)
    count = zonal_stats(cov, values, stats=("count",), scheduler="sync")["count"].to_numpy()
    assert np.allclose(count, cov.area, rtol=1e-12)
    # Same coverage, plot areas shrunk so count / area is 1 + (half the tolerance, twice it, 0.2).
    excess = np.array([VALID_FRACTION_ROUNDING / 2, 2 * VALID_FRACTION_ROUNDING, 0.2])
    shrunk = dataclasses.replace(cov, area=count / (1.0 + excess))
    vf = zonal_stats(shrunk, values, stats=("valid_fraction",), scheduler="sync")["valid_fraction"].to_numpy()
    assert vf[0] == 1.0
    assert vf[1] == pytest.approx(1.0 + 2 * VALID_FRACTION_ROUNDING, rel=1e-13) and vf[1] > 1.0
    assert vf[2] == pytest.approx(1.2, rel=1e-13)
    # and a fraction at or below 1 is exactly count / area (the left half valid: plots 0 and 2 in it, plot 1 not)
    half = np.where(np.arange(20)[None, :] < 10, 1.0, np.nan).repeat(20, axis=0).astype(np.float32)
    got = zonal_stats(cov, half, stats=("count", "valid_fraction"), scheduler="sync")
    assert (got["valid_fraction"].to_numpy() == got["count"].to_numpy() / cov.area).all()
    assert got["valid_fraction"].iloc[1] == 0.0 and got["valid_fraction"].iloc[0] == pytest.approx(1.0, abs=1e-12)
