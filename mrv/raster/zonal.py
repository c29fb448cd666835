"""Exact, area-weighted zonal statistics of plots over many dates: the satellite hot path.

Two steps, so the geometry work is done once and the per-date work is a gather and a few sums:

>>> grid = Grid.from_file(scenes[0])
>>> cov = coverage(plots, polygons_crs="EPSG:32643", transform=grid.transform, shape=grid.shape, crs=grid.crs)
>>> frame = zonal_stats(cov, scenes, dates=acquired)

Statistics per plot and date (``w`` = coverage fraction of a pixel, ``v`` its value; only *valid*
pixels enter any sum — a pixel is invalid if it is NaN, equals ``nodata``, or is set in ``mask``):

- ``count``: ``Σ w`` over valid pixels, in pixels (as exactextract's ``count``; multiply by
  ``cov.grid.cell_area`` for CRS units², e.g. m²);
- ``mean``: ``Σ w·v / Σ w`` over valid pixels, in the raster's unit (NaN if ``count`` is 0);
- ``valid_fraction``: ``count / area``, where ``area`` is the whole plot's area in pixels. The
  part of a plot outside the raster has no valid pixels, so it lowers ``valid_fraction``;
  ``mean`` and ``count`` are those of the part on the raster (exactextract's convention). A
  rounding excess above 1 (at most :data:`VALID_FRACTION_ROUNDING`) is set to 1, a larger one kept;
- ``sum``: ``Σ w·v``; ``min``/``max``: extreme values of valid pixels with ``w > 0``.

Parallel and memory-bounded (dask): the work is cut into tasks of (date, run of raster blocks)
run on dask's threaded scheduler (both cores by default; ``scheduler=None`` uses whatever dask
scheduler is active, e.g. a distributed client). A file task opens its own GDAL handle, reads
only the blocks that some plot touches (block-aligned windowed reads, so each block is decoded
once), gathers the covered pixels and keeps just those. Peak memory is about the coverage
(~20 bytes per covered pixel) plus one read window and one task's covered values per worker;
a task is capped at ``max_cells_per_task`` raster cells, which also bounds what GDAL's block
cache can hold for it (a handle's blocks are freed when the task closes it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, Literal

import dask
import numpy as np
import pandas as pd

from rasterio.errors import RasterioError
from rasterio.windows import Window

from mrv.errors import CRSMismatchError, RasterError
from mrv.raster._coverage import Coverage, Grid, coverage, same_crs
from mrv.raster.io import open_raster

__all__ = ["Coverage", "Grid", "STATS", "coverage", "zonal_stats"]

Stat = Literal["mean", "valid_fraction", "count", "sum", "min", "max"]
STATS: tuple[str, ...] = ("mean", "valid_fraction", "count", "sum", "min", "max")
_DEFAULT_STATS: tuple[Stat, ...] = ("mean", "valid_fraction", "count")
# Reads are block-aligned and at least this many rows/cols: a striped (untiled) GeoTIFF has
# one-row blocks, and one read per row would be all overhead.
_MIN_READ = 256


# count and the plot area are sums of the same fractions in different orders, so a fully valid
# plot can come out at 1 + a few ulps (1.0000000000000009; up to ~3e-14 measured for polygons of
# two million pixels), which the plot_statistics contract's ``valid_fraction <= 1`` rule would
# quarantine. Only such rounding excess is set to 1: anything larger can only be a defect (e.g. a
# pixel counted twice) and is kept, so the contract catches it instead of it being hidden.
VALID_FRACTION_ROUNDING = 1e-9


def _valid_fraction(count: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Valid-pixel area / plot area per (date, plot); rounding excess above 1 clipped to 1 (the
    one place this rule lives: :data:`VALID_FRACTION_ROUNDING`)."""
    vf = count / area[None, :]
    return np.where((vf > 1.0) & (vf <= 1.0 + VALID_FRACTION_ROUNDING), 1.0, vf)


def zonal_stats(
    coverage: Coverage,
    values: Any,
    *,
    nodata: float | None | Literal["source"] = "source",
    mask: Any = None,
    stats: Sequence[Stat] = _DEFAULT_STATS,
    dates: Sequence[Any] | None = None,
    band: int = 1,
    scheduler: str | None = "threads",
    num_workers: int | None = None,
    max_cells_per_task: int = 2**23,
) -> pd.DataFrame:
    """Per plot and date statistics of ``values`` weighted by the exact ``coverage``.

    ``values``, on exactly the coverage's grid:

    - a GeoTIFF path, or a sequence of paths (one date each; ``band`` is read from each). Each
      file's CRS, transform and shape are checked against the coverage grid
      (:class:`CRSMismatchError` / :class:`RasterError` naming the file);
    - a numpy array ``(rows, cols)`` or ``(dates, rows, cols)``; a masked array's mask marks
      invalid pixels;
    - a dask array (or an xarray ``DataArray`` wrapping one) of the same shapes: its chunks are the
      blocks, and only the chunks some plot touches are computed.

    ``nodata``: the value marking missing pixels; ``"source"`` (default) takes each file's declared
    nodata (none for arrays); ``None`` means only NaN is missing. ``mask``: invalid-pixel mask of the
    same kind and shape as ``values`` (paths or array; nonzero/True = invalid, e.g. cloud).
    ``dates``: labels for the date column (default ``0 .. n-1``).

    Returns a DataFrame with one row per (date, plot), date-major: columns ``date``, ``plot`` (the
    coverage ids), then ``stats`` in the order given.
    """
    stats = tuple(stats)
    bad = [s for s in stats if s not in STATS]
    if bad or not stats:
        raise ValueError(f"unknown stats {bad}; choose from {STATS}")
    minmax = "min" in stats or "max" in stats
    source = _make_source(coverage, values, mask=mask, nodata=nodata, band=band)
    if dates is None:
        dates = list(range(source.n_dates))
    elif len(dates) != source.n_dates:
        raise ValueError(f"{len(dates)} date labels for {source.n_dates} dates")

    workers = num_workers or os.cpu_count() or 1
    # A few tasks per worker, so a slow block or a busy core does not leave the others idle.
    tasks = source.tasks(coverage, minmax=minmax, max_cells=max_cells_per_task, min_tasks=4 * workers)

    results = dask.compute(*tasks, scheduler=scheduler, num_workers=workers) if scheduler else dask.compute(*tasks)

    n, nd = coverage.n_plots, source.n_dates
    count = np.zeros((nd, n))
    wsum = np.zeros((nd, n))
    vmin = np.full((nd, n), np.inf)
    vmax = np.full((nd, n), -np.inf)
    for part in results:
        for d, seg_plot, c, s, lo, hi in part:
            # A plot has one segment per block, so it can repeat within a multi-block part:
            # unbuffered ufunc.at, not fancy-index +=.
            np.add.at(count[d], seg_plot, c)
            np.add.at(wsum[d], seg_plot, s)
            if minmax:
                np.minimum.at(vmin[d], seg_plot, lo)
                np.maximum.at(vmax[d], seg_plot, hi)

    has = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        columns: dict[str, np.ndarray] = {
            "mean": np.where(has, wsum / np.where(has, count, 1.0), np.nan),
            "valid_fraction": _valid_fraction(count, coverage.area),
            "count": count,
            "sum": wsum,
            "min": np.where(has, vmin, np.nan),
            "max": np.where(has, vmax, np.nan),
        }
    frame = pd.DataFrame(
        {
            "date": np.repeat(_objects(dates), n),
            "plot": np.tile(_objects(coverage.ids), nd),
            **{s: columns[s].ravel() for s in stats},
        }
    )
    # Keep natural dtypes for the label columns (ints stay ints, timestamps become datetimes).
    frame["date"] = frame["date"].infer_objects()
    frame["plot"] = frame["plot"].infer_objects()
    return frame


def _objects(labels: Sequence[Any]) -> np.ndarray:
    """1-d object array of labels (``np.asarray`` would make tuples into a 2-d array)."""
    out = np.empty(len(labels), dtype=object)
    out[:] = list(labels)
    return out


# --------------------------------------------------------------------------- plans


class _Plan:
    """Coverage entries regrouped by raster block for one block layout.

    Blocks are the cells of ``row_edges × col_edges``; only blocks some plot touches are listed,
    in row-major order. Entries are sorted by (block, plot); ``local`` is each entry's offset in
    its block read as a row-major array; a *segment* is the run of one plot's entries within one
    block. Built once per (coverage, layout) and cached on the coverage.
    """

    __slots__ = ("row_edges", "col_edges", "block_r", "block_c", "block_ptr", "seg_ptr", "seg_start", "seg_plot", "local", "frac")

    def __init__(self, cov: Coverage, row_edges: np.ndarray, col_edges: np.ndarray) -> None:
        self.row_edges, self.col_edges = row_edges, col_edges
        rows, cols = cov.rows, cov.cols
        br = np.searchsorted(row_edges, rows, side="right") - 1
        bc = np.searchsorted(col_edges, cols, side="right") - 1
        block = br * (len(col_edges) - 1) + bc
        order = np.lexsort((cov.plot, block))  # stable: keeps pixel order within a plot
        block, plot = block[order], cov.plot[order]
        width = (col_edges[bc + 1] - col_edges[bc])[order]
        self.local = (rows[order] - row_edges[br[order]]) * width + (cols[order] - col_edges[bc[order]])
        self.frac = cov.fraction[order]
        new_block = np.r_[True, block[1:] != block[:-1]] if len(block) else np.zeros(0, bool)
        new_seg = new_block | np.r_[True, plot[1:] != plot[:-1]] if len(block) else new_block
        starts = np.flatnonzero(new_block)
        self.block_ptr = np.r_[starts, len(block)]
        self.block_r = br[order][starts]
        self.block_c = bc[order][starts]
        self.seg_start = np.flatnonzero(new_seg)
        self.seg_plot = plot[self.seg_start]
        self.seg_ptr = np.searchsorted(self.seg_start, self.block_ptr)

    @property
    def n_blocks(self) -> int:
        return len(self.block_r)

    def window(self, b: int) -> tuple[int, int, int, int]:
        """(row0, col0, height, width) of touched block ``b``."""
        r, c = self.block_r[b], self.block_c[b]
        r0, c0 = int(self.row_edges[r]), int(self.col_edges[c])
        return r0, c0, int(self.row_edges[r + 1]) - r0, int(self.col_edges[c + 1]) - c0

    def cells(self, b: int) -> int:
        _, _, h, w = self.window(b)
        return h * w

    def groups(self, max_cells: int, min_groups: int) -> list[tuple[int, int]]:
        """Consecutive runs of touched blocks, each at most ``max_cells`` raster cells and at
        least ``min_groups`` runs when there are enough blocks (so small jobs still use every
        worker)."""
        if self.n_blocks == 0:
            return []
        sizes = np.array([self.cells(b) for b in range(self.n_blocks)])
        cap = max(1, min(max_cells, math.ceil(sizes.sum() / max(1, min_groups))))
        out, start, acc = [], 0, 0
        for b, s in enumerate(sizes):
            if acc and acc + s > cap:
                out.append((start, b))
                start, acc = b, 0
            acc += s
        out.append((start, self.n_blocks))
        return out


def _plan(cov: Coverage, row_edges: np.ndarray, col_edges: np.ndarray) -> _Plan:
    key = (row_edges.tobytes(), col_edges.tobytes())
    plan = cov._plans.get(key)
    if plan is None:
        plan = cov._plans[key] = _Plan(cov, row_edges, col_edges)
    return plan


def _edges(n: int, step: int) -> np.ndarray:
    return np.r_[np.arange(0, n, step), n].astype(np.int64)


# --------------------------------------------------------------------------- per-task reduction


def _reduce(
    d: int,
    plan: _Plan,
    b0: int,
    b1: int,
    vals: np.ndarray,
    invalid: np.ndarray | None,
    nodata: float | None,
    minmax: bool,
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Per-segment sums for the entries of touched blocks ``b0 .. b1-1`` (values ``vals``, float64)."""
    e0, e1 = plan.block_ptr[b0], plan.block_ptr[b1]
    s0, s1 = plan.seg_ptr[b0], plan.seg_ptr[b1]
    bad = np.isnan(vals)
    if nodata is not None and not np.isnan(nodata):
        bad |= vals == nodata
    if invalid is not None:
        bad |= invalid
    w = np.where(bad, 0.0, plan.frac[e0:e1])
    wv = w * np.where(bad, 0.0, vals)
    starts = plan.seg_start[s0:s1] - e0
    count = np.add.reduceat(w, starts)
    wsum = np.add.reduceat(wv, starts)
    lo = hi = None
    if minmax:
        lo = np.minimum.reduceat(np.where(bad, np.inf, vals), starts)
        hi = np.maximum.reduceat(np.where(bad, -np.inf, vals), starts)
    return d, plan.seg_plot[s0:s1], count, wsum, lo, hi


def _file_task(
    path: str, mask_path: str | None, band: int, nodata: float | None, d: int, plan: _Plan, b0: int, b1: int, minmax: bool
) -> list[tuple]:
    """Read touched blocks ``b0 .. b1-1`` of one date's file (and mask) and reduce them."""
    e0, e1 = plan.block_ptr[b0], plan.block_ptr[b1]
    vals = np.empty(e1 - e0, dtype=np.float64)
    invalid = np.empty(e1 - e0, dtype=bool) if mask_path is not None else None
    # One read buffer per window shape, reused: a fresh 1 MiB array per block would be mmapped
    # and page-faulted every time.
    bufs: dict[tuple[str, int, int], np.ndarray] = {}
    current = path
    try:
        with open_raster(path) as ds:
            mds = open_raster(mask_path) if mask_path is not None else None
            try:
                for b in range(b0, b1):
                    r0, c0, h, w = plan.window(b)
                    win = Window(c0, r0, w, h)
                    s, e = plan.block_ptr[b] - e0, plan.block_ptr[b + 1] - e0
                    idx = plan.local[e0 + s : e0 + e]
                    current = path
                    buf = _buffer(bufs, ds.dtypes[band - 1], h, w)
                    ds.read(band, window=win, out=buf)
                    vals[s:e] = buf.ravel()[idx]
                    if mds is not None:
                        current = mask_path
                        mbuf = _buffer(bufs, mds.dtypes[0], h, w)
                        mds.read(1, window=win, out=mbuf)
                        invalid[s:e] = mbuf.ravel()[idx] != 0
            finally:
                if mds is not None:
                    mds.close()
    except RasterioError as exc:  # e.g. a corrupt or truncated block
        raise RasterError(f"raster {current}: cannot be read ({exc})") from None
    return [_reduce(d, plan, b0, b1, vals, invalid, nodata, minmax)]


def _buffer(bufs: dict[tuple[str, int, int], np.ndarray], dtype: str, h: int, w: int) -> np.ndarray:
    key = (dtype, h, w)
    buf = bufs.get(key)
    if buf is None:
        buf = bufs[key] = np.empty((h, w), dtype=dtype)
    return buf


def _array_task(
    arr: np.ndarray, inv: np.ndarray | None, d0: int, plan: _Plan, b: int, nodata: float | None, minmax: bool
) -> list[tuple]:
    """Reduce one block ``arr`` (``(dates, h, w)``, dates starting at ``d0``) of an array source."""
    e0, e1 = plan.block_ptr[b], plan.block_ptr[b + 1]
    idx = plan.local[e0:e1]
    out = []
    for k in range(arr.shape[0]):
        vals = np.asarray(arr[k]).ravel()[idx].astype(np.float64, copy=False)
        invalid = None if inv is None else np.asarray(inv[k]).ravel()[idx].astype(bool, copy=False)
        out.append(_reduce(d0 + k, plan, b, b + 1, vals, invalid, nodata, minmax))
    return out


# --------------------------------------------------------------------------- sources


class _Files:
    def __init__(self, cov: Coverage, paths: Sequence[Any], masks: Sequence[Any] | None, nodata: Any, band: int):
        self.paths = [os.fspath(p) for p in paths]
        self.masks = None if masks is None else [os.fspath(p) for p in masks]
        if self.masks is not None and len(self.masks) != len(self.paths):
            raise ValueError(f"{len(self.masks)} mask files for {len(self.paths)} rasters")
        self.band = band
        self.n_dates = len(self.paths)
        self.nodata: list[float | None] = []
        self.layout: list[tuple[int, int]] = []
        # Check every file up front, so a bad scene fails before any work starts.
        for i, p in enumerate(self.paths):
            with open_raster(p) as ds:
                _check_grid(cov, p, ds)
                if not 1 <= band <= ds.count:
                    raise RasterError(f"raster {p}: has {ds.count} band(s), band {band} requested")
                if np.dtype(ds.dtypes[band - 1]).kind not in "biuf":
                    raise RasterError(f"raster {p}: values of type {ds.dtypes[band - 1]} are not real numbers")
                bh, bw = ds.block_shapes[band - 1]
                self.layout.append((bh * math.ceil(_MIN_READ / bh), bw * math.ceil(_MIN_READ / bw)))
                self.nodata.append(ds.nodata if nodata == "source" else nodata)
            if self.masks is not None:
                with open_raster(self.masks[i]) as mds:
                    _check_grid(cov, self.masks[i], mds)

    def tasks(self, cov: Coverage, *, minmax: bool, max_cells: int, min_tasks: int) -> list[Any]:
        rows, cols = cov.grid.shape
        per_date = max(1, math.ceil(min_tasks / self.n_dates))
        out = []
        for d, path in enumerate(self.paths):
            rh, cw = self.layout[d]
            plan = _plan(cov, _edges(rows, rh), _edges(cols, cw))
            mask = None if self.masks is None else self.masks[d]
            for b0, b1 in plan.groups(max_cells, per_date):
                out.append(
                    dask.delayed(_file_task, pure=False)(path, mask, self.band, self.nodata[d], d, plan, b0, b1, minmax)
                )
        return out


class _Arrays:
    def __init__(self, cov: Coverage, values: Any, mask: Any, nodata: Any):
        if hasattr(values, "dims") and hasattr(values, "data"):  # xarray.DataArray
            values = values.data
        if mask is not None and hasattr(mask, "dims") and hasattr(mask, "data"):
            mask = mask.data
        self.lazy = type(values).__module__.startswith("dask")
        if not self.lazy:
            if np.ma.isMaskedArray(values):
                m = np.ma.getmaskarray(values)
                mask = m if mask is None else (m | np.asarray(mask, dtype=bool))
                values = values.data
            values = np.asarray(values)
        if values.ndim == 2:
            values = values[None]
            mask = None if mask is None else mask[None]
        if values.ndim != 3 or tuple(values.shape[1:]) != cov.grid.shape:
            raise RasterError(
                f"array of shape {tuple(values.shape)} is not on the coverage grid "
                f"({cov.grid.shape[0]} rows x {cov.grid.shape[1]} cols, optionally preceded by dates)"
            )
        if np.dtype(values.dtype).kind not in "biuf":
            raise RasterError(f"array values of type {values.dtype} are not real numbers")
        if mask is not None and tuple(mask.shape) != tuple(values.shape):
            raise RasterError(f"mask of shape {tuple(mask.shape)} does not match values {tuple(values.shape)}")
        self.values, self.mask = values, mask
        self.nodata = None if nodata == "source" else nodata
        self.n_dates = values.shape[0]

    def tasks(self, cov: Coverage, *, minmax: bool, max_cells: int, min_tasks: int) -> list[Any]:
        rows, cols = cov.grid.shape
        if not self.lazy:
            # In memory already: one block, one task per date (the gather is the whole job).
            plan = _plan(cov, _edges(rows, rows), _edges(cols, cols))
            if plan.n_blocks == 0:
                return []
            m = self.mask
            return [
                dask.delayed(_array_task, pure=False)(
                    self.values[d : d + 1], None if m is None else m[d : d + 1], d, plan, 0, self.nodata, minmax
                )
                for d in range(self.n_dates)
            ]
        import dask.array as da

        vals = self.values
        row_edges = np.r_[0, np.cumsum(vals.chunks[1])].astype(np.int64)
        col_edges = np.r_[0, np.cumsum(vals.chunks[2])].astype(np.int64)
        plan = _plan(cov, row_edges, col_edges)
        blocks = vals.to_delayed()
        mblocks = None if self.mask is None else da.asarray(self.mask).rechunk(vals.chunks).to_delayed()
        d_edges = np.r_[0, np.cumsum(vals.chunks[0])]
        out = []
        for k in range(len(vals.chunks[0])):
            for b in range(plan.n_blocks):
                r, c = plan.block_r[b], plan.block_c[b]
                mb = None if mblocks is None else mblocks[k, r, c]
                out.append(
                    dask.delayed(_array_task, pure=False)(blocks[k, r, c], mb, int(d_edges[k]), plan, b, self.nodata, minmax)
                )
        return out


def _make_source(cov: Coverage, values: Any, *, mask: Any, nodata: Any, band: int) -> _Files | _Arrays:
    if isinstance(values, (str, os.PathLike)):
        values = [values]
        if isinstance(mask, (str, os.PathLike)):
            mask = [mask]
    if isinstance(values, (list, tuple)) and all(isinstance(v, (str, os.PathLike)) for v in values):
        if not values:
            raise ValueError("no rasters given")
        return _Files(cov, values, mask, nodata, band)
    return _Arrays(cov, values, mask, nodata)


def _check_grid(cov: Coverage, path: str, ds: Any) -> None:
    grid = cov.grid
    if ds.crs is None:
        raise RasterError(f"raster {path}: no CRS (rule: a scene must declare its CRS)")
    if not same_crs(ds.crs.to_wkt(), grid.crs):
        raise CRSMismatchError(
            f"raster {path}: CRS {ds.crs.to_string()} differs from the plots' grid CRS {grid.crs.to_string()}"
        )
    if (ds.height, ds.width) != grid.shape:
        raise RasterError(
            f"raster {path}: shape {ds.height} x {ds.width} differs from the coverage grid {grid.shape[0]} x {grid.shape[1]}"
        )
    # Tolerance: a millionth of a pixel, so float noise in stored transforms passes but any real
    # shift (which would change every coverage fraction) does not.
    tol = 1e-6 * min(abs(grid.transform.a) or 1, abs(grid.transform.e) or 1)
    if not ds.transform.almost_equals(grid.transform, precision=tol):
        raise RasterError(
            f"raster {path}: transform {tuple(ds.transform)[:6]} differs from the coverage grid {tuple(grid.transform)[:6]}"
        )
