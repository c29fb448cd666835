"""Spatial overlap of project boundaries, for the registry's double-issuance check.

``overlap(a, b)`` compares two GeoJSON geometries (WGS 84 longitude/latitude, RFC 7946) and
returns the area they share as a fraction of the *smaller* one's area, with areas in m².

How the area is computed:

* Both geometries are projected into one **Lambert azimuthal equal-area** projection centred on
  the middle of their joint bounding box (``+proj=laea`` on the WGS 84 ellipsoid, via pyproj).
  Being equal-area, planar areas there are true ellipsoidal areas; centring it on the pair keeps
  shape distortion small, so the intersection computed in the plane is faithful.
* RFC 7946 defines an edge between two positions as a straight line in longitude/latitude, so
  the edges are densified in longitude/latitude *before* projecting (a straight edge there is a
  curve in the projection). Areas agree with ``pyproj.Geod`` geodesic areas to well under 0.1 %
  for boundaries of project size (metres to hundreds of kilometres).
* Invalid polygons (self-intersections, wrong ring orientation) are repaired with
  ``shapely.make_valid`` rather than refused: a registry must still be able to compare them.

Points: a project boundary may be a ``Point`` (a site location). A point has no area, so the
"fraction of the smaller area" is defined as 1.0 (full overlap) when the point lies inside or on
the other geometry, or when two points coincide (within ``POINT_TOLERANCE_M`` metres), and 0.0
otherwise.

Limits: geometries crossing the antimeridian (±180°) or containing a pole are not supported (the
joint bounding box is taken naively) and raise :class:`GeometryError`; so do geometries spanning
more than ``MAX_SPAN_DEG`` degrees, for which a single local projection is not faithful.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import shapely
from pyproj import CRS, Transformer
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform

from mrv.errors import GeometryError

SUPPORTED_TYPES: Final = ("Point", "MultiPoint", "Polygon", "MultiPolygon")
POINT_TOLERANCE_M: Final = 1.0  # two site points closer than this are the same place
MAX_SPAN_DEG: Final = 20.0
_DENSIFY_STEPS: Final = 64  # segments per bounding-box extent when densifying in lon/lat


@dataclass(frozen=True, slots=True)
class Overlap:
    """``fraction`` = shared area / area of the smaller geometry (1.0 for a point inside the
    other geometry or on another point). Areas in m² (0 for points)."""

    fraction: float
    overlap_area_m2: float
    smaller_area_m2: float
    area_a_m2: float
    area_b_m2: float
    by_points: bool = False  # True when at least one side is a point (fraction is then 0 or 1)

    @property
    def percent(self) -> float:
        return 100.0 * self.fraction


def parse_geometry(geojson: Any) -> BaseGeometry:
    """A shapely geometry (lon/lat) from a GeoJSON geometry object, checked and repaired.

    Raises :class:`GeometryError` naming what is wrong."""
    if not isinstance(geojson, Mapping):
        raise GeometryError(f"geometry must be a GeoJSON object, got {type(geojson).__name__}")
    kind = geojson.get("type")
    if kind not in SUPPORTED_TYPES:
        raise GeometryError(f"geometry type {kind!r} is not supported (expected one of {', '.join(SUPPORTED_TYPES)})")
    try:
        geom = shape(dict(geojson))
    except Exception as exc:  # shapely raises a variety of errors for malformed coordinates
        raise GeometryError(f"malformed {kind} coordinates ({type(exc).__name__}: {exc})") from None
    if geom.is_empty:
        raise GeometryError(f"{kind} has no coordinates")
    coords = shapely.get_coordinates(geom)
    if not bool((abs(coords) < float("inf")).all()):
        raise GeometryError(f"{kind} has non-finite coordinates")
    lon, lat = coords[:, 0], coords[:, 1]
    if lon.min() < -180 or lon.max() > 180 or lat.min() < -90 or lat.max() > 90:
        raise GeometryError(f"{kind} has coordinates outside longitude [-180, 180] / latitude [-90, 90] (expected WGS 84 lon, lat)")
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
        if geom.geom_type == "GeometryCollection":  # keep the areal (or point) parts
            parts = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
            geom = shapely.union_all(parts) if parts else geom
    return geom


def _projection(a: BaseGeometry, b: BaseGeometry) -> Transformer:
    minx = min(a.bounds[0], b.bounds[0])
    miny = min(a.bounds[1], b.bounds[1])
    maxx = max(a.bounds[2], b.bounds[2])
    maxy = max(a.bounds[3], b.bounds[3])
    if maxx - minx > MAX_SPAN_DEG or maxy - miny > MAX_SPAN_DEG:
        raise GeometryError(
            f"geometries span {maxx - minx:.1f}° x {maxy - miny:.1f}° (lon x lat); at most {MAX_SPAN_DEG:g}° is supported"
        )
    lon0, lat0 = (minx + maxx) / 2, (miny + maxy) / 2
    crs = CRS.from_proj4(f"+proj=laea +lat_0={lat0!r} +lon_0={lon0!r} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs")
    return Transformer.from_crs(CRS.from_epsg(4326), crs, always_xy=True)


def _project(geom: BaseGeometry, transformer: Transformer) -> BaseGeometry:
    if geom.geom_type not in ("Point", "MultiPoint"):
        minx, miny, maxx, maxy = geom.bounds
        extent = max(maxx - minx, maxy - miny)
        if extent > 0:
            geom = shapely.segmentize(geom, extent / _DENSIFY_STEPS)
    projected = transform(transformer.transform, geom)
    if not projected.is_valid:  # densify + project can leave a sliver touching itself
        projected = shapely.make_valid(projected)
    return projected


def _is_points(geom: BaseGeometry) -> bool:
    return geom.geom_type in ("Point", "MultiPoint")


def overlap(a: Any, b: Any) -> Overlap:
    """How much two GeoJSON geometries overlap, as a fraction of the smaller one (see module doc)."""
    ga, gb = parse_geometry(a), parse_geometry(b)
    transformer = _projection(ga, gb)
    pa, pb = _project(ga, transformer), _project(gb, transformer)
    area_a, area_b = float(pa.area), float(pb.area)
    if _is_points(pa) or _is_points(pb):
        if _is_points(pa) and _is_points(pb):
            hit = pa.distance(pb) <= POINT_TOLERANCE_M
        else:
            point, other = (pa, pb) if _is_points(pa) else (pb, pa)
            hit = other.intersects(point)
        return Overlap(1.0 if hit else 0.0, 0.0, 0.0, area_a, area_b, by_points=True)
    smaller = min(area_a, area_b)
    shared = float(pa.intersection(pb).area) if pa.intersects(pb) else 0.0
    if smaller <= 0.0:
        raise GeometryError("a polygon has zero area; cannot express the overlap as a fraction of it")
    return Overlap(min(1.0, shared / smaller), shared, smaller, area_a, area_b)


def area_m2(geojson: Any) -> float:
    """The area of a GeoJSON geometry in m² (equal-area projection centred on it; 0 for points)."""
    g = parse_geometry(geojson)
    return float(_project(g, _projection(g, g)).area)


def format_percent(fraction: float) -> str:
    """``0.375 -> '37.5'``, ``0.01 -> '1'``, ``0.00004 -> '0.004'``: for reasons shown to people."""
    pct = 100.0 * fraction
    if pct != 0 and abs(pct) < 0.01:
        return f"{pct:.2g}"
    return f"{pct:.2f}".rstrip("0").rstrip(".")
