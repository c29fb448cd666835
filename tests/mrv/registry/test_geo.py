"""Boundary overlap in an equal-area projection: hand-checkable squares and a real-latitude case."""

from __future__ import annotations

import math

import pytest
from pyproj import Geod
from shapely.geometry import shape

from mrv.errors import GeometryError
from mrv.registry.geo import area_m2, format_percent, overlap, parse_geometry

GEOD = Geod(ellps="WGS84")


def rect(lon0: float, lat0: float, dlon: float, dlat: float) -> dict:
    ring = [[lon0, lat0], [lon0 + dlon, lat0], [lon0 + dlon, lat0 + dlat], [lon0, lat0 + dlat], [lon0, lat0]]
    return {"type": "Polygon", "coordinates": [ring]}


def km_square(lon0: float, lat0: float, km: float = 1.0) -> tuple[dict, float, float]:
    """A ~km x km lon/lat rectangle at (lon0, lat0), with its width and height in degrees."""
    dlat = km / 110.574  # length of a degree of latitude near the equator, km
    dlon = km / (111.320 * math.cos(math.radians(lat0)))
    return rect(lon0, lat0, dlon, dlat), dlon, dlat


def geodesic_area(geojson: dict) -> float:
    return abs(GEOD.geometry_area_perimeter(shape(geojson))[0])


def test_two_1km_squares_offset_by_half_overlap_50_percent():
    a, dlon, _ = km_square(0.0, 0.0)
    b, _, _ = km_square(dlon / 2, 0.0)
    ov = overlap(a, b)
    assert ov.fraction == pytest.approx(0.5, abs=1e-6)
    assert ov.area_a_m2 == pytest.approx(1e6, rel=2e-3)  # it is a 1 km square
    assert ov.overlap_area_m2 == pytest.approx(0.5e6, rel=2e-3)
    assert not ov.by_points


def test_disjoint_touching_and_identical_squares():
    a, dlon, dlat = km_square(0.0, 0.0)
    assert overlap(a, km_square(3 * dlon, 0.0)[0]).fraction == 0.0
    assert overlap(a, km_square(dlon, 0.0)[0]).fraction == pytest.approx(0.0, abs=1e-9)  # shares an edge only
    assert overlap(a, a).fraction == pytest.approx(1.0)


def test_fraction_is_of_the_smaller_polygon():
    big = rect(0.0, 0.0, 0.02, 0.02)
    small = rect(0.005, 0.005, 0.005, 0.005)  # fully inside: 100 % of the smaller one
    ov = overlap(big, small)
    assert ov.fraction == pytest.approx(1.0)
    assert ov.smaller_area_m2 == pytest.approx(ov.area_b_m2)
    assert overlap(small, big).fraction == pytest.approx(1.0)  # symmetric
    # a quarter of the small one sticks out of the big one's corner -> 75 %
    corner = rect(-0.0025, 0.005, 0.005, 0.005)
    assert overlap(big, corner).fraction == pytest.approx(0.5, abs=1e-4)
    corner2 = rect(-0.0025, -0.0025, 0.005, 0.005)
    assert overlap(big, corner2).fraction == pytest.approx(0.25, abs=1e-4)


def test_real_latitude_areas_are_true_areas():
    """At 60° N a degree of longitude is half as long as at the equator: areas in degrees would be
    wrong by a factor of two; the equal-area projection agrees with geodesic areas."""
    a, dlon, dlat = km_square(10.0, 60.0)
    assert dlon == pytest.approx(2 * (1 / 111.320), rel=1e-9)
    assert area_m2(a) == pytest.approx(geodesic_area(a), rel=1e-4)
    assert area_m2(a) == pytest.approx(1e6, rel=1e-2)
    # offset by a quarter northwards: 75 % overlap
    b = rect(10.0, 60.0 + dlat / 4, dlon, dlat)
    assert overlap(a, b).fraction == pytest.approx(0.75, abs=1e-3)


def test_mixed_latitude_fraction_uses_true_areas():
    """Near 60° N, with areas of both cells matching geodesic areas: half of the smaller cell lies
    inside the larger one."""
    south = rect(20.0, 59.9, 0.2, 0.1)
    north = rect(20.05, 59.95, 0.1, 0.1)  # half inside `south` (lat 59.95..60.0 of 59.95..60.05)
    ov = overlap(south, north)
    assert ov.fraction == pytest.approx(0.5, abs=2e-3)
    assert ov.area_a_m2 == pytest.approx(geodesic_area(south), rel=1e-4)
    assert ov.area_b_m2 == pytest.approx(geodesic_area(north), rel=1e-4)


def test_site_in_south_india_against_geodesic_reference():
    ring = [[77.0, 11.0], [77.06, 11.0], [77.06, 11.05], [77.0, 11.05], [77.0, 11.0]]
    a = {"type": "Polygon", "coordinates": [ring]}
    b = {"type": "Polygon", "coordinates": [[[x + 0.045, y] for x, y in ring]]}  # 0.015/0.06 = 25 % shared
    assert area_m2(a) == pytest.approx(geodesic_area(a), rel=1e-4)
    assert overlap(a, b).fraction == pytest.approx(0.25, abs=1e-3)


def test_points():
    sq, dlon, dlat = km_square(0.0, 0.0)
    inside = {"type": "Point", "coordinates": [dlon / 2, dlat / 2]}
    outside = {"type": "Point", "coordinates": [dlon * 3, dlat / 2]}
    on_edge = {"type": "Point", "coordinates": [0.0, dlat / 2]}
    assert overlap(inside, sq).fraction == 1.0 and overlap(inside, sq).by_points
    assert overlap(sq, inside).fraction == 1.0
    assert overlap(on_edge, sq).fraction == 1.0
    assert overlap(outside, sq).fraction == 0.0
    assert overlap(inside, dict(inside)).fraction == 1.0  # identical site points
    assert overlap(inside, {"type": "Point", "coordinates": [dlon / 2 + 1e-7, dlat / 2]}).fraction == 1.0  # ~1 cm apart
    assert overlap(inside, outside).fraction == 0.0


def test_multipolygon_and_self_intersecting_polygon():
    a, dlon, dlat = km_square(0.0, 0.0)
    far, _, _ = km_square(1.0, 1.0)
    multi = {"type": "MultiPolygon", "coordinates": [a["coordinates"], far["coordinates"]]}
    assert overlap(multi, a).fraction == pytest.approx(1.0)  # a is the smaller one, fully inside
    assert overlap(multi, far).fraction == pytest.approx(1.0)
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [dlon, dlat], [dlon, 0], [0, dlat], [0, 0]]]}
    assert overlap(bowtie, a).fraction == pytest.approx(1.0, abs=1e-6)  # repaired, not refused


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, "not supported"),
        ({"type": "Polygon", "coordinates": []}, "no coordinates"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1]]]}, "malformed"),
        ({"type": "Point", "coordinates": [200, 0]}, "outside longitude"),
        ("POLYGON((0 0, 1 0, 1 1, 0 0))", "GeoJSON object"),
    ],
)
def test_bad_geometries_are_refused_with_a_reason(geometry, message):
    with pytest.raises(GeometryError, match=message):
        parse_geometry(geometry)


def test_too_far_apart_for_one_projection():
    with pytest.raises(GeometryError, match="span"):
        overlap(rect(0, 0, 0.1, 0.1), rect(100, 0, 0.1, 0.1))


def test_format_percent():
    assert format_percent(0.375) == "37.5"
    assert format_percent(0.01) == "1"
    assert format_percent(0.5) == "50"
    assert format_percent(0.0) == "0"
    assert format_percent(0.00004) == "0.004"
