"""Satellite scenes: their typed metadata, the project grid they are aligned to, equal-area
geometry helpers, and lazy (dask-chunked) reading into xarray.

A :class:`Scene` is one acquisition (a STAC item, see :mod:`mrv.raster.stac`): an id, a UTC
acquisition time and its assets — the band rasters (e.g. ``red``, ``nir`` or a provided stocking
index) and, optionally, a quality/cloud mask raster. Each asset records the bytes it was read from
(``path``, normally the content-addressed blob in the artifact store, and its ``digest``), its own
grid (CRS, transform, shape), data type, nodata and the declared scale/offset that turn stored
integers into physical values (reflectance = DN × scale + offset).

Reading (:func:`read_scene`, :func:`read_scenes`) aligns every asset to one
:class:`ProjectGrid` — a CRS, a resolution and bounds snapped outward to whole pixels (like
``gdalwarp -tap``) — and returns float32 physical values (NaN where missing) plus a boolean
``invalid`` mask, as dask-chunked xarray with the CRS and transform attached (rioxarray).
Nothing is read until computed; each chunk opens its own GDAL handle and reads only the source
window it needs, so memory is bounded by the chunk size.

Alignment and resampling (the documented choice):

- *Same CRS, same resolution, pixel edges on the same lattice* (the normal case: the project grid
  is the scenes' native grid or a window of it): pixels are copied, no resampling at all. Values
  and zonal statistics are then exactly those of the source bytes.
- *Otherwise* (another CRS, another resolution or a shifted lattice) the asset is warped with GDAL:
  bands with **bilinear** interpolation by default (reflectance and indices are continuous; a
  bilinear value is a convex combination of its four neighbours, so it never leaves the physical
  range of its inputs; source nodata is excluded from the weights). Pass
  ``resampling=Resampling.average`` when the grid is much coarser than the scene. The quality mask is
  first turned into *invalid = 1 / valid = 0* at its own resolution and then warped with **max**:
  a grid pixel is invalid if any source pixel contributing to it is cloudy, shadowed or missing.
  That is the conservative choice — a partly cloudy pixel is never interpolated into a clear one.
- A scene in a CRS other than the grid's is reprojected (``on_other_crs="reproject"``, default) or
  refused with :class:`~mrv.errors.CRSMismatchError` naming the scene, the asset and both CRSs
  (``on_other_crs="refuse"``), for runs that must never resample.

Areas: UTM and other conformal CRSs distort area (by up to ~0.1 % across a UTM zone, much more in
Web Mercator). Every area or coverage fraction computed here is computed in an equal-area CRS:
:func:`equal_area_crs` builds a Lambert azimuthal equal-area projection centred on the geometry
(rounded to 0.01°, so the same project always gets the same CRS); :data:`GLOBAL_EQUAL_AREA` is
EPSG:6933 (WGS 84 / NSIDC EASE-Grid 2.0 Global) for geometries spanning continents.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.enums import Resampling

from mrv.errors import CRSMismatchError, GeometryError, RasterError, SceneError
from mrv.raster._coverage import Grid, same_crs

__all__ = [
    "GLOBAL_EQUAL_AREA",
    "ProjectGrid",
    "Scene",
    "SceneAsset",
    "area_m2",
    "check_plots_in_scenes",
    "covered_fraction",
    "crs_label",
    "equal_area_crs",
    "inspect_asset",
    "ndvi",
    "plot_scene_coverage",
    "read_scene",
    "read_scenes",
    "scene_footprint",
    "scene_from_json",
    "to_crs",
]

GLOBAL_EQUAL_AREA = CRS.from_epsg(6933)
WGS84 = CRS.from_epsg(4326)
AssetRole = Literal["band", "mask"]


def crs_label(crs: CRS | None) -> str | None:
    """A stable text form of a CRS: ``EPSG:<code>`` when it is one, else its WKT2."""
    if crs is None:
        return None
    epsg = crs.to_epsg(min_confidence=90)
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()


# --------------------------------------------------------------------------- scene metadata


@dataclass(frozen=True)
class SceneAsset:
    """One raster file of a scene, as read (see the module docstring)."""

    key: str  # asset key in the STAC item (e.g. "red", "nir", "cloud_mask")
    role: AssetRole
    path: Path  # the file read: the artifact-store blob when hashed into a store
    source_path: Path  # where the catalog pointed
    href: str  # the href as written in the item
    digest: str  # sha256:<hex> of the bytes
    size: int
    media_type: str
    crs: CRS | None  # None when the file declares none
    transform: Affine | None  # None when the file has no geotransform
    shape: tuple[int, int]  # (rows, cols)
    dtype: str
    nodata: float | None
    scale: float = 1.0  # physical = stored * scale + offset (bands only)
    offset: float = 0.0
    band_index: int = 1  # 1-based band of the file
    valid_values: tuple[int, ...] = ()  # mask only: stored values that mean "usable pixel"

    @property
    def resolution(self) -> tuple[float, float] | None:
        """Pixel size (x, y) in CRS units; None without a transform."""
        if self.transform is None:
            return None
        t = self.transform
        return (math.hypot(t.a, t.d), math.hypot(t.b, t.e))

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "role": self.role,
            "href": self.href,
            "digest": self.digest,
            "size": self.size,
            "media_type": self.media_type,
            "crs": crs_label(self.crs),
            "transform": None if self.transform is None else [float(v) for v in tuple(self.transform)[:6]],
            "shape": list(self.shape),
            "dtype": self.dtype,
            "nodata": _json_float(self.nodata),
            "scale": float(self.scale),
            "offset": float(self.offset),
            "band_index": self.band_index,
            "valid_values": list(self.valid_values),
        }


@dataclass(frozen=True)
class Scene:
    """One acquisition: id, UTC time and assets (bands in declared order, then the mask)."""

    id: str
    datetime: datetime  # timezone-aware, UTC
    assets: Mapping[str, SceneAsset]
    bands: tuple[str, ...]  # asset keys of the bands, in declared order
    mask: str | None = None  # asset key of the quality/cloud mask
    properties: Mapping[str, Any] = field(default_factory=dict)  # JSON-native item properties kept
    item_digest: str | None = None  # sha256 of the STAC item JSON the scene came from

    @property
    def primary(self) -> SceneAsset:
        """The first band: its grid is the scene's grid."""
        return self.assets[self.bands[0]]

    @property
    def crs(self) -> CRS | None:
        return self.primary.crs

    @property
    def transform(self) -> Affine | None:
        return self.primary.transform

    @property
    def shape(self) -> tuple[int, int]:
        return self.primary.shape

    @property
    def resolution(self) -> tuple[float, float] | None:
        return self.primary.resolution

    @property
    def bounds(self) -> tuple[float, float, float, float] | None:
        """(minx, miny, maxx, maxy) of the primary band in its CRS; None without a transform."""
        if self.transform is None:
            return None
        rows, cols = self.shape
        xs, ys = zip(*(self.transform @ (c, r) for c, r in ((0, 0), (cols, 0), (0, rows), (cols, rows))))
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def date_label(self) -> str:
        """The acquisition time as ``YYYY-MM-DDTHH:MM:SSZ`` (the plot-date key used by contracts)."""
        return format_date(self.datetime)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "datetime": self.date_label,
            "crs": crs_label(self.crs),
            "transform": None if self.transform is None else [float(v) for v in tuple(self.transform)[:6]],
            "shape": list(self.shape),
            "resolution": None if self.resolution is None else [float(v) for v in self.resolution],
            "bands": list(self.bands),
            "mask": self.mask,
            "item_digest": self.item_digest,
            "assets": {k: a.to_json() for k, a in self.assets.items()},
            "properties": dict(self.properties),
        }


def scene_from_json(data: Mapping[str, Any], store: Any) -> Scene:
    """Rebuild a :class:`Scene` from :meth:`Scene.to_json` reading its assets from ``store`` by
    digest (a replay reads the very bytes the run recorded). A missing blob raises
    :class:`~mrv.errors.ArtifactNotFound`."""
    assets = {}
    for key, a in data["assets"].items():
        t = a.get("transform")
        nodata = a.get("nodata")
        assets[key] = SceneAsset(
            key=a["key"], role=a["role"], path=Path(store.local_path(a["digest"])), source_path=Path(a["href"]), href=a["href"],
            digest=a["digest"], size=int(a["size"]), media_type=a["media_type"],
            crs=CRS.from_user_input(a["crs"]) if a.get("crs") else None, transform=Affine(*t) if t else None,
            shape=(int(a["shape"][0]), int(a["shape"][1])), dtype=a["dtype"],
            nodata=float("nan") if nodata == "nan" else nodata, scale=float(a["scale"]), offset=float(a["offset"]),
            band_index=int(a["band_index"]), valid_values=tuple(int(v) for v in a.get("valid_values", ())),
        )
    when = pd.Timestamp(data["datetime"]).to_pydatetime()
    return Scene(
        id=data["id"], datetime=when, assets=assets, bands=tuple(data["bands"]), mask=data.get("mask"),
        properties=dict(data.get("properties") or {}), item_digest=data.get("item_digest"),
    )


def format_date(value: Any) -> str:
    """Any datetime-like (aware, naive = UTC, ISO text) as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_float(v: float | None) -> float | str | None:
    if v is None:
        return None
    v = float(v)
    if math.isnan(v):
        return "nan"
    return v


def inspect_asset(path: Path, *, scene_id: str, key: str, verify: bool = True) -> dict[str, Any]:
    """Open one asset with rasterio and return its grid and data description.

    ``verify`` decodes every block once, so a truncated or corrupted GeoTIFF is caught here — before
    anything of the run is stored — rather than half-way through a computation. Raises
    :class:`SceneError` naming the scene, the asset and the rule ``asset_readable``.
    """
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                if ds.driver not in ("GTiff", "COG"):
                    raise SceneError(
                        f"scene {scene_id}, asset {key!r}: {path} is a {ds.driver} raster, not a GeoTIFF/COG (rule: asset_readable)"
                    )
                meta = {
                    "crs": CRS.from_wkt(ds.crs.to_wkt()) if ds.crs is not None else None,
                    # GDAL reports the identity for a file without georeferencing
                    "transform": None if ds.transform.is_identity else Affine(*tuple(ds.transform)[:6]),
                    "shape": (ds.height, ds.width),
                    "count": ds.count,
                    "dtypes": tuple(ds.dtypes),
                    "nodata": ds.nodata,
                    "scales": tuple(ds.scales),
                    "offsets": tuple(ds.offsets),
                }
                if verify:
                    for bidx in range(1, ds.count + 1):
                        for _, window in ds.block_windows(bidx):
                            ds.read(bidx, window=window)
    except SceneError:
        raise
    except (RasterioError, OSError) as exc:
        raise SceneError(
            f"scene {scene_id}, asset {key!r}: {path} is not a readable GeoTIFF ({exc}) (rule: asset_readable)"
        ) from None
    return meta


# --------------------------------------------------------------------------- geometry helpers


def equal_area_crs(geometry: Any, crs: Any = WGS84) -> CRS:
    """A Lambert azimuthal equal-area CRS centred on ``geometry`` (given in ``crs``).

    The centre is rounded to 0.01° so one project always gets the same CRS. Within a few hundred
    kilometres of the centre, LAEA's distortion of shape is negligible and area is exact by
    construction. For continent-wide extents use :data:`GLOBAL_EQUAL_AREA`.
    """
    geom = _as_geometry(geometry)
    if geom.is_empty:
        raise GeometryError("equal_area_crs: the geometry is empty")
    centre = to_crs(shapely.centroid(geom), crs, WGS84)
    lon, lat = round(centre.x, 2), round(centre.y, 2)
    return CRS.from_dict({"proj": "laea", "lat_0": lat, "lon_0": lon, "x_0": 0, "y_0": 0, "datum": "WGS84", "units": "m", "no_defs": True})


def to_crs(geometry: Any, src: Any, dst: Any, *, densify: bool = True) -> Any:
    """``geometry`` reprojected from ``src`` to ``dst``. Edges are first split into 64 pieces per
    bounding-box side length so straight lines stay faithful after projection."""
    geom = _as_geometry(geometry)
    src_crs, dst_crs = CRS.from_user_input(src), CRS.from_user_input(dst)
    if _same_crs(src_crs, dst_crs):
        return geom
    if densify and not geom.is_empty and geom.geom_type not in ("Point", "MultiPoint"):
        minx, miny, maxx, maxy = geom.bounds
        step = max(maxx - minx, maxy - miny) / 64.0
        if step > 0:
            geom = shapely.segmentize(geom, step)
    tr = _transformer(src_crs, dst_crs)

    def _apply(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    out = shapely.transform(geom, _apply)
    if not np.all(np.isfinite(shapely.get_coordinates(out))):
        raise GeometryError(f"geometry cannot be projected from {crs_label(src_crs)} to {crs_label(dst_crs)}")
    return out


@lru_cache(maxsize=256)
def _same_crs(a: CRS, b: CRS) -> bool:
    # same_crs may search the EPSG database (milliseconds per call); geometries repeat few CRS pairs.
    return same_crs(a, b)


@lru_cache(maxsize=64)
def _transformer(src: CRS, dst: CRS) -> Transformer:
    # Building a pyproj Transformer costs tens of milliseconds; plots and scenes share a few CRSs.
    return Transformer.from_crs(src, dst, always_xy=True)


def area_m2(geometry: Any, crs: Any = WGS84, *, equal_area: CRS | None = None) -> float:
    """Area of ``geometry`` (in ``crs``) in m², computed in ``equal_area`` (default: the LAEA of
    :func:`equal_area_crs` centred on the geometry)."""
    ea = equal_area or equal_area_crs(geometry, crs)
    return float(to_crs(geometry, crs, ea).area)


def _as_geometry(g: Any) -> Any:
    if isinstance(g, shapely.Geometry):
        return g
    if isinstance(g, Mapping):
        try:
            return shapely.geometry.shape(g)
        except Exception as exc:  # noqa: BLE001 - shapely raises several types for bad GeoJSON
            raise GeometryError(f"not a GeoJSON geometry: {exc}") from None
    raise GeometryError(f"not a geometry: {type(g).__name__}")


def scene_footprint(scene: Scene) -> Any:
    """The scene's extent (its primary band's grid) as a polygon in the scene's CRS."""
    if scene.crs is None:
        raise SceneError(f"scene {scene.id}: no CRS, so its footprint is unknown (rule: crs_present)")
    if scene.transform is None:
        raise SceneError(f"scene {scene.id}: no geotransform, so its footprint is unknown (rule: transform_present)")
    rows, cols = scene.shape
    t = scene.transform
    return shapely.Polygon([t @ (0, 0), t @ (cols, 0), t @ (cols, rows), t @ (0, rows)])


def covered_fraction(plots: np.ndarray, areas: np.ndarray, cover: Any) -> np.ndarray:
    """Share of each plot's area (``plots``: geometries, ``areas``: their areas, same CRS) inside
    ``cover``. Plots the cover contains get exactly 1 without an intersection (usually nearly all
    plots lie well inside a scene, and intersecting densified polygons is the costly part); the
    others get area(plot ∩ cover) / area. Zero-area plots get 0."""
    frac = np.zeros(len(plots))
    if len(plots) == 0 or cover is None or cover.is_empty:
        return frac
    shapely.prepare(cover)
    inside = shapely.contains_properly(cover, plots) & (areas > 0)
    frac[inside] = 1.0
    rest = ~inside & (areas > 0)
    if rest.any():
        frac[rest] = shapely.area(shapely.intersection(plots[rest], cover)) / areas[rest]
    return frac


def plot_scene_coverage(
    scenes: Sequence[Scene],
    plots: Mapping[str, Any],
    plots_crs: Any = WGS84,
    *,
    equal_area: CRS | None = None,
) -> pd.DataFrame:
    """Fraction of each plot's area inside each scene's footprint, computed in an equal-area CRS.

    Scenes without CRS or transform are skipped (the contract's ``crs_present`` /
    ``transform_present`` rules report them). Returns ``plot_id, scene_id, date, fraction`` (one
    row per plot and scene, plots in the given order, scenes in the given order).
    """
    ids = list(plots)
    geoms = [_as_geometry(plots[i]) for i in ids]
    if not ids:
        return pd.DataFrame({"plot_id": [], "scene_id": [], "date": [], "fraction": []})
    ea = equal_area or equal_area_crs(shapely.union_all(geoms), plots_crs)
    plots_ea = [to_crs(g, plots_crs, ea) for g in geoms]
    areas = np.array([g.area for g in plots_ea])
    rows = []
    plots_arr = np.array(plots_ea, dtype=object)
    for scene in scenes:
        if scene.crs is None or scene.transform is None:
            continue
        fp = to_crs(scene_footprint(scene), scene.crs, ea)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = covered_fraction(plots_arr, areas, fp)
        label = scene.date_label
        rows.extend((pid, scene.id, label, float(min(max(f, 0.0), 1.0))) for pid, f in zip(ids, frac))
    return pd.DataFrame(rows, columns=["plot_id", "scene_id", "date", "fraction"])


def check_plots_in_scenes(
    scenes: Sequence[Scene], plots: Mapping[str, Any], plots_crs: Any = WGS84, *, coverage: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Raise :class:`SceneError` (rule ``plots_within_scenes``) naming every plot that overlaps no
    scene at all; return the coverage table (:func:`plot_scene_coverage`) otherwise."""
    cov = plot_scene_coverage(scenes, plots, plots_crs) if coverage is None else coverage
    best = cov.groupby("plot_id", sort=False)["fraction"].max() if len(cov) else pd.Series(dtype=float)
    outside = [p for p in plots if not (best.get(p, 0.0) > 0.0)]
    if outside:
        shown = ", ".join(map(str, outside[:20])) + (f" and {len(outside) - 20} more" if len(outside) > 20 else "")
        raise SceneError(
            f"{len(outside)} plot(s) lie outside every scene ({len(scenes)} scene(s): "
            f"{', '.join(s.id for s in scenes[:5])}{' ...' if len(scenes) > 5 else ''}): {shown} (rule: plots_within_scenes)"
        )
    return cov


# --------------------------------------------------------------------------- project grid


@dataclass(frozen=True)
class ProjectGrid:
    """The grid every scene is aligned to: ``crs``, square ``resolution`` (CRS units) and
    ``bounds`` (minx, miny, maxx, maxy), north-up. Bounds are snapped outward to whole pixels of
    the lattice through ``origin`` (default (0, 0), i.e. multiples of the resolution, like
    ``gdalwarp -tap``), so grids built from overlapping extents share pixel edges. Give the scenes'
    own pixel corner as ``origin`` (or use :meth:`of_scene`) when their lattice is offset (e.g.
    Landsat's 15 m offsets): then reading is a plain copy, with no resampling."""

    crs: CRS
    resolution: float
    bounds: tuple[float, float, float, float]
    origin: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "crs", CRS.from_user_input(self.crs))
        res = float(self.resolution)
        if not (res > 0 and math.isfinite(res)):
            raise RasterError(f"project grid resolution must be positive, got {self.resolution}")
        object.__setattr__(self, "resolution", res)
        ox, oy = (float(v) for v in self.origin)
        ox, oy = ox - math.floor(ox / res) * res, oy - math.floor(oy / res) * res  # reduce into one pixel
        object.__setattr__(self, "origin", (ox, oy))
        minx, miny, maxx, maxy = (float(v) for v in self.bounds)
        if not (maxx > minx and maxy > miny):
            raise RasterError(f"project grid bounds are empty: {self.bounds}")
        snapped = (
            ox + math.floor((minx - ox) / res + 1e-9) * res,
            oy + math.floor((miny - oy) / res + 1e-9) * res,
            ox + math.ceil((maxx - ox) / res - 1e-9) * res,
            oy + math.ceil((maxy - oy) / res - 1e-9) * res,
        )
        object.__setattr__(self, "bounds", snapped)

    @classmethod
    def of_scene(cls, scene: Scene, bounds: tuple[float, float, float, float] | None = None) -> ProjectGrid:
        """The scene's own lattice (CRS, pixel size, pixel corners) over ``bounds`` (default: the
        whole scene): reading scenes on this lattice copies pixels without resampling."""
        if scene.crs is None or scene.transform is None:
            raise SceneError(f"scene {scene.id}: no CRS or geotransform, it defines no grid (rule: crs_present)")
        t = scene.transform
        if t.b != 0 or t.d != 0 or abs(abs(t.a) - abs(t.e)) > 1e-9 * abs(t.a):
            raise SceneError(f"scene {scene.id}: rotated or non-square pixels; give the project grid explicitly")
        return cls(crs=scene.crs, resolution=abs(t.a), bounds=bounds or scene.bounds, origin=(t.c, t.f))  # type: ignore[arg-type]

    @classmethod
    def around(
        cls, geometries: Iterable[Any], geometries_crs: Any, *, crs: Any, resolution: float, buffer: float = 0.0, origin: tuple[float, float] = (0.0, 0.0)
    ) -> ProjectGrid:
        """The grid in ``crs`` covering ``geometries`` (given in ``geometries_crs``) plus ``buffer``
        CRS units."""
        merged = shapely.union_all([_as_geometry(g) for g in geometries])
        if merged.is_empty:
            raise GeometryError("ProjectGrid.around: no geometry")
        minx, miny, maxx, maxy = to_crs(merged, geometries_crs, crs).bounds
        return cls(crs=CRS.from_user_input(crs), resolution=resolution, bounds=(minx - buffer, miny - buffer, maxx + buffer, maxy + buffer), origin=origin)

    @property
    def transform(self) -> Affine:
        return Affine(self.resolution, 0.0, self.bounds[0], 0.0, -self.resolution, self.bounds[3])

    @property
    def shape(self) -> tuple[int, int]:
        minx, miny, maxx, maxy = self.bounds
        return (int(round((maxy - miny) / self.resolution)), int(round((maxx - minx) / self.resolution)))

    @property
    def grid(self) -> Grid:
        """The same grid as :class:`mrv.raster.Grid` (for ``mrv.raster.coverage``/``zonal_stats``)."""
        return Grid(transform=self.transform, shape=self.shape, crs=self.crs)

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``(y, x)``."""
        rows, cols = self.shape
        minx, _, _, maxy = self.bounds
        x = minx + (np.arange(cols) + 0.5) * self.resolution
        y = maxy - (np.arange(rows) + 0.5) * self.resolution
        return y, x

    def to_json(self) -> dict[str, Any]:
        return {"crs": crs_label(self.crs), "resolution": self.resolution, "bounds": list(self.bounds), "origin": list(self.origin), "shape": list(self.shape)}


# --------------------------------------------------------------------------- reading


def _aligned_offset(src_t: Affine, src_crs: CRS, dst_t: Affine, dst_crs: CRS) -> tuple[int, int] | None:
    """(row, col) of the destination's top-left pixel in the source grid when both grids share CRS,
    pixel size and pixel edges (a plain copy suffices); None when resampling is needed."""
    if not _same_crs(src_crs, dst_crs):
        return None
    tol = 1e-9 * max(abs(src_t.a), abs(src_t.e))
    if any(abs(a - b) > tol for a, b in ((src_t.a, dst_t.a), (src_t.b, dst_t.b), (src_t.d, dst_t.d), (src_t.e, dst_t.e))):
        return None
    col, row = ~src_t @ (dst_t.c, dst_t.f)
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return int(round(row)), int(round(col))


def _read_block(
    asset: SceneAsset,
    scene_id: str,
    kind: Literal["band", "mask"],
    dst_crs_wkt: str,
    dst_transform: tuple[float, ...],
    block: tuple[int, int, int, int],
    resampling: Resampling,
    grid_offset: tuple[int, int] | None,
) -> np.ndarray:
    """One chunk of one asset on the destination grid. ``block`` = (row0, row1, col0, col1);
    ``grid_offset``: the grid's top-left pixel in the asset's pixel grid when both share CRS, pixel
    size and edges (copy), else None (warp).

    Band: float32 physical values, NaN where missing. Mask: uint8, 1 = invalid, 0 = valid."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError
    from rasterio.warp import reproject, transform_bounds
    from rasterio.crs import CRS as RioCRS
    from rasterio.windows import Window, from_bounds

    r0, r1, c0, c1 = block
    h, w = r1 - r0, c1 - c0
    dst_crs = CRS.from_wkt(dst_crs_wkt)
    grid_t = Affine(*dst_transform)
    block_t = grid_t @ Affine.translation(c0, r0)
    src_t, src_crs = asset.transform, asset.crs
    fill = np.float32(np.nan) if kind == "band" else np.uint8(1)

    def convert(raw: np.ndarray) -> np.ndarray:
        if kind == "band":
            out = raw.astype(np.float32)
            if asset.nodata is not None:
                out[raw == asset.nodata] = np.nan
            if asset.scale != 1.0 or asset.offset != 0.0:
                out = out * np.float32(asset.scale) + np.float32(asset.offset)
            return out
        invalid = ~np.isin(raw, np.asarray(asset.valid_values, dtype=raw.dtype))
        if asset.nodata is not None:
            invalid |= raw == asset.nodata
        return invalid.astype(np.uint8)

    try:
        with rasterio.open(asset.path) as ds:
            if grid_offset is not None:
                out = np.full((h, w), fill)
                row, col = grid_offset[0] + r0, grid_offset[1] + c0
                rs, re_ = max(row, 0), min(row + h, ds.height)
                cs, ce = max(col, 0), min(col + w, ds.width)
                if rs < re_ and cs < ce:
                    raw = ds.read(asset.band_index, window=Window(cs, rs, ce - cs, re_ - rs))
                    out[rs - row : re_ - row, cs - col : ce - col] = convert(raw)
                return out
            # Warp: read the source window under this block (plus a margin for the kernel).
            minx, miny = block_t @ (0, h)
            maxx, maxy = block_t @ (w, 0)
            sb = transform_bounds(dst_crs, src_crs, minx, miny, maxx, maxy, densify_pts=21)
            win = from_bounds(*sb, transform=src_t)
            pad = 3
            cs = max(int(math.floor(win.col_off)) - pad, 0)
            rs = max(int(math.floor(win.row_off)) - pad, 0)
            ce = min(int(math.ceil(win.col_off + win.width)) + pad, ds.width)
            re_ = min(int(math.ceil(win.row_off + win.height)) + pad, ds.height)
            if cs >= ce or rs >= re_:
                return np.full((h, w), fill)
            src = convert(ds.read(asset.band_index, window=Window(cs, rs, ce - cs, re_ - rs)))
            src_win_t = src_t @ Affine.translation(cs, rs)
            # rasterio's own CRS objects: pyproj ones are accepted too but round-trip less cleanly
            r_src, r_dst = RioCRS.from_wkt(src_crs.to_wkt()), RioCRS.from_wkt(dst_crs_wkt)
            # rasterio's temporary in-memory datasets for small edge chunks can emit a spurious
            # NotGeoreferencedWarning although both transforms are given; the result is correct.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                if kind == "band":
                    out = np.full((h, w), np.nan, dtype=np.float32)
                    reproject(src, out, src_transform=src_win_t, src_crs=r_src, src_nodata=np.nan,
                              dst_transform=block_t, dst_crs=r_dst, dst_nodata=np.nan, resampling=resampling)
                    return out
                out = np.full((h, w), 255, dtype=np.uint8)
                reproject(src, out, src_transform=src_win_t, src_crs=r_src, src_nodata=255,
                          dst_transform=block_t, dst_crs=r_dst, dst_nodata=255, resampling=Resampling.max)
                return (out != 0).astype(np.uint8)
    except (RasterioError, OSError) as exc:
        raise SceneError(f"scene {scene_id}, asset {asset.key!r}: read failed at rows {r0}-{r1}, cols {c0}-{c1} ({exc}) (rule: asset_readable)") from None


def _check_readable(scene: Scene, grid: ProjectGrid, on_other_crs: str) -> None:
    for asset in scene.assets.values():
        if asset.crs is None:
            raise SceneError(f"scene {scene.id}, asset {asset.key!r}: no CRS, cannot be placed on the project grid (rule: crs_present)")
        if asset.transform is None:
            raise SceneError(f"scene {scene.id}, asset {asset.key!r}: no geotransform, cannot be placed on the project grid (rule: transform_present)")
        if on_other_crs == "refuse" and not same_crs(asset.crs, grid.crs):
            raise CRSMismatchError(
                f"scene {scene.id}, asset {asset.key!r}: CRS {crs_label(asset.crs)} differs from the project grid's "
                f"{crs_label(grid.crs)}; refused (on_other_crs='refuse', rule: scene_crs_matches_grid)"
            )


def read_scene(
    scene: Scene,
    grid: ProjectGrid,
    *,
    chunks: int = 512,
    resampling: Resampling = Resampling.bilinear,
    on_other_crs: Literal["reproject", "refuse"] = "reproject",
) -> Any:
    """The scene on ``grid`` as a lazy ``xarray.Dataset`` with dims ``(y, x)``.

    Variables: one float32 variable per band (physical values, NaN where missing or off-scene) and
    ``invalid`` (bool): True where the mask marks the pixel unusable, any band is NaN, or the pixel
    is off the scene. Chunks are ``chunks`` × ``chunks`` pixels. Attributes: ``scene_id``,
    ``datetime``; the CRS and transform are written with rioxarray (``ds.rio.crs``).
    """
    import dask.array as da
    import rioxarray  # noqa: F401 - registers the .rio accessor
    import xarray as xr
    from dask.base import tokenize

    if on_other_crs not in ("reproject", "refuse"):
        raise ValueError(f"on_other_crs must be 'reproject' or 'refuse', got {on_other_crs!r}")
    _check_readable(scene, grid, on_other_crs)
    rows, cols = grid.shape
    chunk_spec = (_split(rows, chunks), _split(cols, chunks))
    crs_wkt = grid.crs.to_wkt()
    t = tuple(grid.transform)[:6]

    def lazy(asset: SceneAsset, kind: str, dtype: Any) -> Any:
        offset = _aligned_offset(asset.transform, asset.crs, grid.transform, grid.crs)  # type: ignore[arg-type]

        def block(block_info: Any = None) -> np.ndarray:
            (r0, r1), (c0, c1) = block_info[None]["array-location"]
            return _read_block(asset, scene.id, kind, crs_wkt, t, (r0, r1, c0, c1), resampling, offset)  # type: ignore[arg-type]

        name = f"scene-{kind}-" + tokenize(asset.digest, asset.key, kind, crs_wkt, t, chunk_spec, resampling.name)
        return da.map_blocks(block, chunks=chunk_spec, dtype=dtype, name=name, meta=np.empty((0, 0), dtype=dtype))

    y, x = grid.coords()
    data: dict[str, Any] = {}
    invalid = None
    for key in scene.bands:
        arr = lazy(scene.assets[key], "band", np.float32)
        data[key] = (("y", "x"), arr)
        invalid = da.isnan(arr) if invalid is None else invalid | da.isnan(arr)
    if scene.mask is not None:
        m = lazy(scene.assets[scene.mask], "mask", np.uint8).astype(bool)
        invalid = m if invalid is None else invalid | m
    data["invalid"] = (("y", "x"), invalid)
    ds = xr.Dataset(data, coords={"y": y, "x": x}, attrs={"scene_id": scene.id, "datetime": scene.date_label})
    ds = ds.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    return ds


def read_scenes(scenes: Sequence[Scene], grid: ProjectGrid, **kwargs: Any) -> Any:
    """Several scenes on one grid, stacked along ``time`` (naive UTC datetime64), lazily. All
    scenes must have the same band keys. A ``scene_id`` coordinate names each time step."""
    import xarray as xr

    if not scenes:
        raise SceneError("read_scenes: no scenes to read")
    keys = scenes[0].bands
    for s in scenes:
        if s.bands != keys:
            raise SceneError(f"scene {s.id}: bands {list(s.bands)} differ from {list(keys)} of scene {scenes[0].id}")
    parts = [read_scene(s, grid, **kwargs) for s in scenes]
    times = [np.datetime64(s.datetime.astimezone(timezone.utc).replace(tzinfo=None), "ns") for s in scenes]
    stacked = xr.concat(parts, dim="time", combine_attrs="drop")
    stacked = stacked.assign_coords(time=("time", times), scene_id=("time", [s.id for s in scenes]))
    return stacked.rio.write_crs(grid.crs).rio.write_transform(grid.transform)


def ndvi(ds: Any, *, red: str = "red", nir: str = "nir") -> Any:
    """NDVI = (nir − red) / (nir + red), NaN where either band is NaN or the sum is 0."""
    r, n = ds[red], ds[nir]
    s = n + r
    return ((n - r) / s.where(s != 0)).rename("ndvi")


def _split(n: int, size: int) -> tuple[int, ...]:
    if size <= 0:
        raise ValueError("chunks must be positive")
    full, rest = divmod(n, size)
    return (size,) * full + ((rest,) if rest else ())

