"""Exact pixel coverage fractions of polygons on a raster grid.

For every plot polygon and every pixel of a raster grid, the *coverage fraction* is the area of
``polygon ∩ pixel`` divided by the pixel's area (a number in ``[0, 1]``, dimensionless). It is
computed analytically — no supersampling — once per (grid, plots) and reused for every date.

How (the "signed-area accumulation" of analytic scan converters):

1. Polygons are mapped into *pixel space* by the inverse of the grid's affine transform: pixel
   ``(row, col)`` becomes the unit square ``[col, col+1) × [row, row+1)``. Affine maps preserve
   area ratios, so fractions computed there are the true fractions for any (even rotated) grid.
2. Every ring edge is split at every integer row and column line it crosses, so each piece lies
   inside one pixel. A piece falling by ``dy`` rows adds ``dy · (col + 1 - x_mid)`` to its pixel
   (the trapezoid between the piece and the pixel's right side) and ``dy · (x_mid - col)`` to the
   next pixel on the right.
3. A running sum along each row turns these increments into the winding-number integral over each
   pixel, which for a valid polygon (holes inside, parts disjoint, rings oriented consistently)
   is exactly the covered area. Pixels with no increments of their own take the running value
   of the row (1 inside, 0 outside, a constant fraction along a horizontal edge), so they are
   filled as runs; values within 1e-12 of 0 or 1 are snapped, so interior pixels are exactly 1.

All of this is vectorised numpy over all plots at once; the cost is proportional to the number
of boundary pieces plus the number of covered pixels, and memory to the covered pixels
(16 bytes each: a flat ``int64`` pixel index and a ``float64`` fraction, plus a 4-byte plot id).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS

from mrv.errors import CRSMismatchError, GeometryError, RasterError
from mrv.raster.io import open_raster

__all__ = ["Grid", "Coverage", "coverage", "same_crs"]

# Fractions within this distance of 0 or 1 are snapped: they are rounding noise from the running
# sums (each step adds ~1e-16), far below any physical meaning (1e-12 of a 10 m pixel is 1e-10 m²).
_SNAP = 1e-12
# Coverage is computed over batches of plots holding at most this many pixels of bounding box:
# the vectorised computation needs ~100 bytes of temporaries per pixel of a batch.
_BATCH_CELLS = 2**21


@dataclass(frozen=True)
class Grid:
    """A raster grid: affine ``transform`` (pixel ``(col, row)`` → CRS ``(x, y)``), ``shape`` as
    ``(rows, cols)`` and the ``crs``."""

    transform: Affine
    shape: tuple[int, int]
    crs: CRS

    def __post_init__(self) -> None:
        object.__setattr__(self, "transform", Affine(*tuple(self.transform)[:6]))
        rows, cols = (int(v) for v in self.shape)
        if rows <= 0 or cols <= 0:
            raise RasterError(f"grid shape must be positive (rows, cols), got {self.shape}")
        object.__setattr__(self, "shape", (rows, cols))
        if self.crs is None:
            raise RasterError("grid has no CRS")
        object.__setattr__(self, "crs", CRS.from_user_input(self.crs))
        if self.transform.determinant == 0:
            raise RasterError(f"grid transform is singular: {tuple(self.transform)[:6]}")

    @property
    def cell_area(self) -> float:
        """Area of one pixel in CRS units squared (m² for a metre-based projected CRS)."""
        return abs(self.transform.determinant)

    @classmethod
    def from_file(cls, path: Any) -> Grid:
        """The grid of a GeoTIFF (or any GDAL raster). Raises :class:`RasterError` naming the file
        if it cannot be opened or has no CRS."""
        with open_raster(path) as ds:
            return cls(transform=ds.transform, shape=(ds.height, ds.width), crs=_crs_of(ds, path))


def _crs_of(ds: Any, path: Any) -> CRS:
    if ds.crs is None:
        raise RasterError(f"raster {path}: no CRS (rule: a scene must declare its CRS)")
    return CRS.from_wkt(ds.crs.to_wkt())


def same_crs(a: Any, b: Any) -> bool:
    """Whether two CRS descriptions (EPSG code, WKT, pyproj/rasterio CRS) denote the same CRS.

    pyproj's equality is strict about metadata that GeoTIFF round trips change (names, axis order
    in the WKT), so two descriptions that resolve to the same EPSG code also count as equal."""
    ca, cb = CRS.from_user_input(a), CRS.from_user_input(b)
    if ca.equals(cb, ignore_axis_order=True):
        return True
    ea, eb = ca.to_epsg(min_confidence=90), cb.to_epsg(min_confidence=90)
    return ea is not None and ea == eb


@dataclass(frozen=True, eq=False)
class Coverage:
    """Sparse coverage of a raster grid by plots, computed once and reused across dates.

    Entries are sorted by plot, then by flat pixel index (``row * cols + col``):

    - ``plot``: ``int32`` plot position (0-based, into ``ids``) of each entry;
    - ``index``: ``int64`` flat pixel index of each entry (pixels inside the raster only);
    - ``fraction``: ``float64`` covered fraction of the pixel, in ``(0, 1]``;
    - ``area``: per plot, the polygon's whole area in pixels (including any part outside the
      raster) — the denominator of ``valid_fraction``;
    - ``ids``: plot identifiers, in input order.
    """

    grid: Grid
    ids: tuple[Any, ...]
    plot: np.ndarray
    index: np.ndarray
    fraction: np.ndarray
    area: np.ndarray
    _plans: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def n_plots(self) -> int:
        return len(self.ids)

    @property
    def inside_area(self) -> np.ndarray:
        """Per plot, the covered area inside the raster, in pixels."""
        return np.bincount(self.plot, weights=self.fraction, minlength=self.n_plots)

    @property
    def inside_fraction(self) -> np.ndarray:
        """Per plot, the share of its area that lies on the raster (0 to 1)."""
        return self.inside_area / self.area

    @property
    def rows(self) -> np.ndarray:
        return self.index // self.grid.shape[1]

    @property
    def cols(self) -> np.ndarray:
        return self.index % self.grid.shape[1]

    def to_dense(self, plot: int) -> np.ndarray:
        """The coverage of one plot as a full ``(rows, cols)`` float64 array (for tests and
        inspection; allocates the whole grid)."""
        out = np.zeros(self.grid.shape, dtype=np.float64)
        sel = self.plot == plot
        out.ravel()[self.index[sel]] = self.fraction[sel]
        return out


def coverage(
    polygons: Iterable[Any],
    *,
    transform: Affine | Sequence[float],
    shape: tuple[int, int],
    crs: Any,
    polygons_crs: Any,
    ids: Sequence[Any] | None = None,
) -> Coverage:
    """Exact coverage fractions of each polygon on the grid ``(transform, shape, crs)``.

    ``polygons``: shapely (Multi)Polygons or GeoJSON-like mappings, valid and non-empty, with
    coordinates in ``polygons_crs``, which must be the raster ``crs`` (:class:`CRSMismatchError`
    otherwise — reproject the plots first; nothing is reprojected here). ``transform`` maps pixel
    ``(col, row)`` to CRS ``(x, y)`` (rasterio/GDAL convention); ``shape`` is ``(rows, cols)``.
    ``ids`` labels the plots in the output (default ``0 .. n-1``).

    Parts of a plot outside the raster have no pixels and get no entries; they still count in
    ``Coverage.area``, so they end up as *not valid* in :func:`zonal_stats`'s ``valid_fraction``.
    """
    grid = Grid(transform=transform, shape=shape, crs=crs)
    if polygons_crs is None:
        raise CRSMismatchError("polygons_crs is required: state the CRS the plot coordinates are in")
    if not same_crs(polygons_crs, grid.crs):
        raise CRSMismatchError(
            f"plots are in {CRS.from_user_input(polygons_crs).to_string()} but the raster grid is in "
            f"{grid.crs.to_string()}: reproject the plots to the raster CRS first"
        )
    geoms = _as_polygons(polygons)
    n = len(geoms)
    if ids is None:
        ids = tuple(range(n))
    else:
        ids = tuple(ids)
        if len(ids) != n:
            raise GeometryError(f"{len(ids)} ids for {n} polygons")
        if len(set(ids)) != n:
            raise GeometryError("plot ids must be unique")

    rows, cols = grid.shape
    t = grid.transform
    inv = ~Affine(t.a, t.b, 0.0, t.d, t.e, 0.0)
    # Pixel space: x = column, y = row (both continuous). Subtracting the origin first keeps the
    # digits: with UTM coordinates (~1e6 m) `x / a - c / a` would cancel ~1e-11 pixel away,
    # `(x - c) / a` is exact for coordinates near the grid (Sterbenz).

    def to_pixels(xy: np.ndarray) -> np.ndarray:
        dx, dy = xy[:, 0] - t.c, xy[:, 1] - t.f
        return np.column_stack((inv.a * dx + inv.b * dy, inv.d * dx + inv.e * dy))

    pix = shapely.transform(geoms, to_pixels)
    area = shapely.area(pix)
    # Only the part over the raster (plus a margin) matters; clipping bounds the work for plots
    # that extend far beyond it. Exact: the clip lines lie outside the raster.
    bounds = shapely.bounds(pix)
    outside = (bounds[:, 0] < -1) | (bounds[:, 1] < -1) | (bounds[:, 2] > cols + 1) | (bounds[:, 3] > rows + 1)
    if outside.any():
        pix[outside] = shapely.intersection(pix[outside], shapely.box(-2, -2, cols + 2, rows + 2))
    # In pixel space (y pointing down the rows) interior pixels come out +1 with exteriors
    # clockwise in shapely's (x, y) sense and holes counter-clockwise.
    pix = shapely.orient_polygons(pix, exterior_cw=True)

    plot, index, fraction = _rasterize_batched(pix, rows=rows, cols=cols, budget=_BATCH_CELLS)
    return Coverage(grid=grid, ids=ids, plot=plot, index=index, fraction=fraction, area=area)


def _as_polygons(polygons: Iterable[Any]) -> np.ndarray:
    out = []
    for i, g in enumerate(polygons):
        if not isinstance(g, shapely.Geometry):
            try:
                g = shapely.geometry.shape(g)
            except Exception as exc:  # shapely raises several types for malformed GeoJSON
                raise GeometryError(f"plot {i}: not a geometry ({type(exc).__name__}: {exc})") from None
        if g.geom_type not in ("Polygon", "MultiPolygon"):
            raise GeometryError(f"plot {i}: {g.geom_type} is not a Polygon or MultiPolygon")
        if g.is_empty:
            raise GeometryError(f"plot {i}: empty geometry")
        if not shapely.is_valid(g):
            raise GeometryError(
                f"plot {i}: invalid polygon ({shapely.is_valid_reason(g)}); repair it (e.g. shapely.make_valid) first"
            )
        if g.has_z:
            g = shapely.force_2d(g)
        out.append(g)
    return np.asarray(out, dtype=object)


def _rasterize_batched(
    pix: np.ndarray, *, rows: int, cols: int, budget: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_rasterize_exact` over batches of consecutive plots whose bounding boxes (on the
    raster) hold at most ``budget`` pixels; a plot larger than that alone, in bands of rows.
    Memory stays ~100 bytes per pixel of one batch, plus 20 bytes per covered pixel kept."""
    b = np.nan_to_num(shapely.bounds(pix), nan=0.0)  # NaN: nothing left near the raster
    r0 = np.clip(np.floor(b[:, 1]), 0, rows).astype(np.int64)
    r1 = np.clip(np.ceil(b[:, 3]), 0, rows).astype(np.int64)
    width = np.clip(np.ceil(b[:, 2]), 0, cols) - np.clip(np.floor(b[:, 0]), 0, cols) + 2
    cells = (r1 - r0) * width
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    start = 0
    while start < len(pix):
        stop, acc = start + 1, cells[start]
        while stop < len(pix) and acc + cells[stop] <= budget:
            acc += cells[stop]
            stop += 1
        if stop == start + 1 and cells[start] > budget:
            step = max(1, int(budget // width[start]))
            bands = [(lo, min(lo + step, int(r1[start]))) for lo in range(int(r0[start]), int(r1[start]), step)]
        else:
            bands = [(0, rows)]
        for lo, hi in bands:
            plot, index, fraction = _rasterize_exact(pix[start:stop], rows=rows, cols=cols, row_lo=lo, row_hi=hi)
            parts.append((plot + np.int32(start), index, fraction))
        start = stop
    if not parts:
        return np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.float64)
    # Batches are consecutive plots and bands consecutive rows: concatenation keeps the order.
    return tuple(np.concatenate(arrays) for arrays in zip(*parts))  # type: ignore[return-value]


def _rasterize_exact(
    pix: np.ndarray, *, rows: int, cols: int, row_lo: int = 0, row_hi: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coverage entries (plot, flat index, fraction) of pixel-space polygons ``pix`` in raster
    rows ``row_lo .. row_hi-1``, sorted by plot then flat index."""
    row_hi = rows if row_hi is None else row_hi
    empty = (np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.float64))
    parts, part_plot = shapely.get_parts(pix, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, ring_of_pt = shapely.get_coordinates(rings, return_index=True)
    if len(xy) == 0:
        return empty
    # Edges join consecutive vertices of the same (closed) ring.
    same = ring_of_pt[:-1] == ring_of_pt[1:]
    x0, y0 = xy[:-1, 0][same], xy[:-1, 1][same]
    x1, y1 = xy[1:, 0][same], xy[1:, 1][same]
    edge_plot = part_plot[ring_part[ring_of_pt[:-1][same]]]
    # Horizontal edges add nothing (dy = 0); edges entirely above or below the rows wanted
    # neither (rows are independent).
    keep = (y0 != y1) & (np.maximum(y0, y1) > row_lo) & (np.minimum(y0, y1) < row_hi)
    x0, y0, x1, y1, edge_plot = x0[keep], y0[keep], x1[keep], y1[keep], edge_plot[keep]
    n_edges = len(x0)
    if n_edges == 0:
        return empty

    # --- split every edge at the integer column and row lines it crosses (strictly inside) ---
    def crossings(a0: np.ndarray, a1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = np.floor(np.minimum(a0, a1)) + 1
        hi = np.ceil(np.maximum(a0, a1)) - 1
        count = np.maximum(hi - lo + 1, 0).astype(np.int64)
        edge = np.repeat(np.arange(n_edges), count)
        first = np.repeat(np.cumsum(count) - count, count)
        k = lo[edge] + (np.arange(len(edge)) - first)
        return edge, k

    ex, kx = crossings(x0, x1)
    ey, ky = crossings(y0, y1)
    tx = (kx - x0[ex]) / (x1[ex] - x0[ex])
    ty = (ky - y0[ey]) / (y1[ey] - y0[ey])
    ends = np.arange(n_edges)
    edge = np.concatenate((ex, ey, ends, ends))
    t = np.concatenate((tx, ty, np.zeros(n_edges), np.ones(n_edges)))
    # Crossing points get their grid coordinate exactly (not x0 + t·dx), so pieces meet the grid
    # lines without rounding and each piece's midpoint falls in the right pixel.
    px = np.concatenate((kx, x0[ey] + ty * (x1[ey] - x0[ey]), x0, x1))
    py = np.concatenate((y0[ex] + tx * (y1[ex] - y0[ex]), ky, y0, y1))
    order = np.lexsort((t, edge))
    edge, px, py = edge[order], px[order], py[order]
    same_edge = edge[:-1] == edge[1:]
    xa, ya, xb, yb = px[:-1][same_edge], py[:-1][same_edge], px[1:][same_edge], py[1:][same_edge]
    piece_plot = edge_plot[edge[:-1][same_edge]]
    dy = yb - ya
    xm = 0.5 * (xa + xb)
    r = np.floor(0.5 * (ya + yb)).astype(np.int64)
    c = np.floor(xm).astype(np.int64)
    on_raster = (dy != 0) & (r >= row_lo) & (r < row_hi)
    dy, xm, r, c, piece_plot = dy[on_raster], xm[on_raster], r[on_raster], c[on_raster], piece_plot[on_raster]

    # --- increments: own pixel gets the trapezoid right of the piece, the next pixel the rest ---
    inc_c = np.concatenate((c, c + 1))
    inc_v = np.concatenate((dy * ((c + 1) - xm), dy * (xm - c)))
    inc_r = np.concatenate((r, r))
    inc_p = np.concatenate((piece_plot, piece_plot)).astype(np.int64)
    # Columns left of the raster only matter through what they carry to the right, and columns
    # right of it not at all: clamp both to one sentinel column each (-1 and cols) so each row's
    # increments still sum to ~0 and running sums do not drift.
    np.clip(inc_c, -1, cols, out=inc_c)
    width = cols + 2
    if len(pix) * rows * width >= 2**62:
        raise RasterError(f"{len(pix)} plots on a {rows} x {cols} grid exceed the coverage index range")
    key = (inc_p * rows + inc_r) * width + (inc_c + 1)
    ukey, inverse = np.unique(key, return_inverse=True)
    val = np.bincount(inverse, weights=inc_v, minlength=len(ukey))

    # --- running sum along each (plot, row) ---
    group = ukey // width
    col = ukey % width - 1
    csum = np.cumsum(val)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    base = np.repeat(csum[starts] - val[starts], np.diff(np.r_[starts, len(ukey)]))
    cov = csum - base  # coverage of pixel `col`, and of every pixel up to the next key in the row
    plot_of = (group // rows).astype(np.int64)
    row_of = group % rows

    # Each key is its own pixel (a boundary pixel, if on the raster and covered) followed by a run
    # of pixels up to the next key of the row that no sloped piece touches: these share the
    # running value — 1 inside, 0 outside, a constant fraction in a row a horizontal edge cuts
    # (horizontal edges add no increments). Emitting, per key, its pixel then its run yields the
    # entries already sorted by (plot, row, col): no sort needed.
    cov = np.where(np.abs(cov) < _SNAP, 0.0, np.where(np.abs(cov - 1) < _SNAP, 1.0, cov))
    np.minimum(cov, 1.0, out=cov)
    covered = cov > 0
    own = ((col >= 0) & (col < cols) & covered).astype(np.int64)
    nxt_same = np.r_[group[1:] == group[:-1], False]
    run_lo = np.maximum(col + 1, 0)
    run_hi = np.minimum(np.r_[col[1:], 0], cols)  # exclusive
    run_len = np.where(nxt_same & covered, np.maximum(run_hi - run_lo, 0), 0)
    count = own + run_len
    owner = np.repeat(np.arange(len(ukey)), count)
    offset = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    # offset 0 of a key with its own pixel is that pixel; the rest walk the run from run_lo.
    pixel_col = np.where(offset < own[owner], col[owner], run_lo[owner] + offset - own[owner])
    plot = plot_of[owner].astype(np.int32)
    index = row_of[owner] * cols + pixel_col
    fraction = cov[owner]
    return plot, index.astype(np.int64, copy=False), fraction

