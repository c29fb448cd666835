"""A seeded, synthetic afforestation/reforestation (ARR) project for VM0047's area-based approach.

:func:`generate_arr_project` writes, under ``out_dir``::

    project.yaml                      project sketch: `satellite:` and `field_inventory:` sections
    stac/catalog.json                 local static STAC catalog (self-contained, relative hrefs)
    stac/<item>/<item>.json           one item per scene: datetime, eo:cloud_cover, proj:*, assets
    stac/<item>/red.tif, nir.tif      surface reflectance, uint16 DN, scale 0.0001, nodata 0
    stac/<item>/cloud_mask.tif        uint8: 0 clear, 1 cloud, 2 cloud shadow; nodata 255
    geo/boundary.geojson              the project boundary (EPSG:4326, as GeoJSON requires)
    geo/project_plots.geojson         project plots (~50 m squares, rotated, not pixel-aligned)
    geo/donor_pool.geojson            the donor pool for control plots
    geo/control_candidates.geojson    candidate control plots inside the donor pool (same size)
    geo/inventory_plots.geojson       centres of the circular inventory subplots (plot_id P01-S, ...)
    field/inventory.csv               trees of the field inventory subplots of the project plots

Everything is synthetic and deterministic: the same seed, years and size give byte-identical
files. The scenes are tiled, deflate-compressed GeoTIFFs in WGS 84 / UTM 23S (EPSG:32723) over a
degraded-pasture landscape in eastern Minas Gerais, Brazil (illustrative location), ``size`` ×
``size`` pixels of 10 m, four acquisitions a year (mid-February, March, May and August, 13:10 UTC:
three in the wet-season window the yearly stocking index is taken from, one in the dry season),
from ten years before the project start (VM0047's first matching covariate year) to the end of
the monitoring period.

What the pixels do (NDVI; red and NIR are derived from it):

- a spatially smooth pasture baseline (NDVI ~0.25-0.45) everywhere;
- a seasonal cycle (amplitude 0.07, peak around 1 March: the wet season of the southern tropics);
- outside the project after its start, and everywhere before it, a slow, location-dependent trend
  (0-0.02 NDVI per year) — the control candidates in the donor pool see only this;
- inside the project boundary from ``project_start`` on, planting: a logistic rise towards closed
  canopy (NDVI ~0.8) whose speed varies with a smooth site-quality field;
- per-pixel noise (sd 0.02) and a per-scene offset (sd 0.01, atmosphere);
- clouds: 60 % of the scenes nearly clear, the others 5-40 % cloud in smooth blobs, with shadows
  offset from them; cloud pixels are bright in both bands and flagged 1 in the mask, shadows dark
  and flagged 2;
- one scheduled acquisition of the project years is missing altogether (no item).

The field inventory holds every tree of a 500 m² circular subplot (radius 12.62 m) at the centre of
each project plot (subplot id ``<plot>-S``), measured on ``inventory_date``: species group (pioneer,
early or late secondary), DBH, height and the group's wood density. The land was degraded pasture
without woody biomass at the project start, so there is no previous campaign
(``t0_no_woody_biomass: true``).

``project.yaml`` is a complete VCS VM0047 v1.0 project file: every required parameter with value,
unit and source (the project area ``A`` is the boundary's area in an equal-area CRS).
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from affine import Affine

__all__ = ["ARR_CRS", "PROJECT_ID", "generate_arr_project"]

PROJECT_ID = "DEMO-ARR-BR-001"
ARR_CRS = "EPSG:32723"  # WGS 84 / UTM zone 23S
X0, Y0 = 600_000.0, 7_800_000.0  # top-left corner of the scenes (eastern Minas Gerais, ~19.9 °S, 44.0 °W)
RES = 10.0
SCALE = 0.0001  # reflectance = DN * SCALE
ACQ_MONTH_DAYS = ((2, 15), (3, 15), (5, 15), (8, 15))
SEASON_MONTHS = (2, 5)  # wet-season window of the yearly stocking index composite
MIN_PLOT_SPACING_M = 80.0  # centre to centre: rotated 50 m squares never overlap (half-diagonal 35.4 m)
SUBPLOT_RADIUS_M = 12.62  # 500 m²
PLOT_SIDE_M = 50.0
GROUPS = (  # name, share, wood density (g/cm³), dbh mean and sd at age 3.5 y (cm), max height (m)
    ("pioneer", 0.5, 0.45, 9.0, 2.5, 14.0),
    ("early_secondary", 0.3, 0.58, 6.0, 2.0, 12.0),
    ("late_secondary", 0.2, 0.70, 4.0, 1.5, 10.0),
)


def generate_arr_project(
    out_dir: Path,
    *,
    seed: int = 47,
    years: tuple[int, int] = (2011, 2024),
    size: int = 200,
    project_start: date = date(2021, 1, 1),
    n_project_plots: int = 36,
    n_control_candidates: int = 80,
    inventory_date: date = date(2024, 6, 15),
) -> Path:
    """Write the sample ARR project into ``out_dir`` and return the path of its ``project.yaml``.

    ``years``: first and last calendar year of scenes (inclusive); ``project_start`` must fall after
    the first three years' first scenes so at least three pre-project time points exist (VM0047
    matching). ``size``: scene width and height in 10 m pixels (at least 120).
    """
    import rasterio
    from rasterio.features import rasterize

    first, last = years
    if last < first:
        raise ValueError("years: last before first")
    if size < 120:
        raise ValueError("size must be at least 120 pixels")
    if not (date(first, 1, 1) < project_start <= date(last, 12, 31)):
        raise ValueError("project_start must fall inside the years")
    out_dir = Path(out_dir).resolve()  # pystac makes hrefs relative only between absolute paths
    for sub in ("stac", "geo", "field"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    transform = Affine(RES, 0.0, X0, 0.0, -RES, Y0)
    W = H = size
    ext = size * RES

    # --- geometry (UTM): boundary in the west, donor pool in the east
    boundary = _wobbly_rect(rng, X0 + 0.06 * ext, Y0 - 0.94 * ext, X0 + 0.47 * ext, Y0 - 0.06 * ext, wobble=0.01 * ext)
    donor = _wobbly_rect(rng, X0 + 0.55 * ext, Y0 - 0.95 * ext, X0 + 0.94 * ext, Y0 - 0.05 * ext, wobble=0.01 * ext)
    plots = _place_plots(rng, boundary, n_project_plots, prefix="P")
    controls = _place_plots(rng, donor, n_control_candidates, prefix="C")

    # --- per-pixel fields
    base = 0.34 + 0.045 * _smooth(rng, (H, W), 6)
    slope = np.clip(0.010 + 0.006 * _smooth(rng, (H, W), 5), 0.0, 0.02)
    quality = np.clip(0.8 + 0.12 * _smooth(rng, (H, W), 4), 0.55, 1.0)
    # The donor pool (east half) repeats the pasture of the project side (west half): before the
    # project both see the same landscape, so matched controls can be balanced (VM0047 SDM <= 0.25).
    half = W // 2
    for f in (base, slope):
        f[:, half:] = f[:, : W - half]
    in_project = rasterize([(boundary, 1)], out_shape=(H, W), transform=transform, fill=0, dtype="uint8").astype(bool)
    t0 = _decimal_year(datetime(first, 1, 1, tzinfo=timezone.utc))
    t_start = _decimal_year(datetime(project_start.year, project_start.month, project_start.day, tzinfo=timezone.utc))

    # --- schedule, with one missing acquisition in the project years
    schedule = [datetime(y, m, d, 13, 10, tzinfo=timezone.utc) for y in range(first, last + 1) for m, d in ACQ_MONTH_DAYS]
    project_slots = [i for i, dt in enumerate(schedule) if dt.date() > project_start]
    missing = schedule[project_slots[int(rng.integers(len(project_slots)))]] if project_slots else None

    import pystac

    catalog = pystac.Catalog(
        id="arr-demo-scenes",
        description=f"Synthetic 10 m red/NIR scenes with cloud masks over {PROJECT_ID} (seed {seed})",
        title="open-dmrv synthetic ARR scenes",
    )
    footprint_ll = _to_wgs84(shapely.box(X0, Y0 - ext, X0 + ext, Y0))
    profile = {
        "driver": "GTiff", "height": H, "width": W, "count": 1, "crs": ARR_CRS, "transform": transform,
        "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
    }
    for when in schedule:
        # Draw every scene's randomness, even for the missing one, so the other scenes do not
        # depend on which one is missing.
        noise = rng.normal(0.0, 0.02, (H, W))
        offset = rng.normal(0.0, 0.01)
        cloudy = rng.random() < 0.4
        cover = rng.uniform(0.05, 0.40) if cloudy else rng.uniform(0.0, 0.02)
        cloud_field = _smooth(rng, (H, W), int(rng.integers(3, 8)))
        shift = (int(rng.integers(6, 15)), int(rng.integers(-10, 11)))
        cloud_noise = rng.normal(0.0, 0.015, (H, W))
        if when == missing:
            continue
        t = _decimal_year(when)
        doy = when.timetuple().tm_yday
        season = 0.07 * math.cos(2 * math.pi * (doy - 60) / 365.25)
        ndvi = base + slope * (t - t0) + season + offset + noise
        if t > t_start:
            tau = t - t_start
            grow = (_logistic(tau * quality) - _logistic(0.0)) / (1.0 - _logistic(0.0))
            planted = base + slope * (t_start - t0) + (0.84 - base) * grow + season * (1.0 - 0.5 * grow) + offset + noise
            ndvi = np.where(in_project, planted, ndvi)
        ndvi = np.clip(ndvi, -0.2, 0.95)
        f = np.clip((ndvi - 0.1) / 0.8, 0.0, 1.0)
        nir = 0.18 + 0.22 * f
        red = nir * (1.0 - ndvi) / (1.0 + ndvi)

        cloud = cloud_field > np.quantile(cloud_field, 1.0 - cover) if cover > 0 else np.zeros((H, W), bool)
        shadow = np.roll(cloud, shift, axis=(0, 1)) & ~cloud
        red = np.where(cloud, 0.32 + cloud_noise, np.where(shadow, red * 0.4, red))
        nir = np.where(cloud, 0.38 + cloud_noise, np.where(shadow, nir * 0.4, nir))
        mask = np.where(cloud, 1, np.where(shadow, 2, 0)).astype(np.uint8)

        item_id = f"S2SYN-{when:%Y%m%d}"
        item_dir = out_dir / "stac" / item_id
        item_dir.mkdir(parents=True, exist_ok=True)
        for name, refl in (("red", red), ("nir", nir)):
            dn = np.clip(np.rint(refl / SCALE), 1, 10_000).astype(np.uint16)
            with rasterio.open(item_dir / f"{name}.tif", "w", dtype="uint16", nodata=0, predictor=2, **profile) as ds:
                ds.write(dn, 1)
                ds.scales, ds.offsets = (SCALE,), (0.0,)
        with rasterio.open(item_dir / "cloud_mask.tif", "w", dtype="uint8", nodata=255, **profile) as ds:
            ds.write(mask, 1)

        item = pystac.Item(
            id=item_id,
            geometry=shapely.geometry.mapping(footprint_ll),
            bbox=[round(v, 8) for v in footprint_ll.bounds],
            datetime=when,
            properties={
                "platform": "synthetic-sentinel-2",
                "gsd": RES,
                "eo:cloud_cover": round(100.0 * float(cloud.mean()), 2),
                "proj:code": ARR_CRS,
                "proj:shape": [H, W],
                "proj:transform": [float(v) for v in tuple(transform)[:6]],
            },
            stac_extensions=[
                "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
                "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            ],
        )
        for name, common, title in (("red", "red", "B04 red"), ("nir", "nir", "B08 near infrared")):
            item.add_asset(name, pystac.Asset(
                href=str(item_dir / f"{name}.tif"), media_type=pystac.MediaType.GEOTIFF, roles=["data", "reflectance"], title=title,
                extra_fields={
                    "eo:bands": [{"name": title.split()[0], "common_name": common}],
                    "raster:bands": [{"data_type": "uint16", "nodata": 0, "scale": SCALE, "offset": 0.0, "spatial_resolution": RES}],
                },
            ))
        item.add_asset("cloud_mask", pystac.Asset(
            href=str(item_dir / "cloud_mask.tif"), media_type=pystac.MediaType.GEOTIFF, roles=["cloud", "data-mask"],
            title="cloud mask: 0 clear, 1 cloud, 2 cloud shadow",
            extra_fields={"raster:bands": [{"data_type": "uint8", "nodata": 255, "spatial_resolution": RES}]},
        ))
        catalog.add_item(item)
    catalog.normalize_hrefs(str(out_dir / "stac"))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)

    # --- vectors (GeoJSON in EPSG:4326)
    _write_geojson(out_dir / "geo" / "boundary.geojson", [({"name": "project boundary", "project_id": PROJECT_ID}, boundary)])
    _write_geojson(out_dir / "geo" / "donor_pool.geojson", [({"name": "donor pool"}, donor)])
    _write_geojson(out_dir / "geo" / "project_plots.geojson",
                   [({"plot_id": pid, "group": "project", "inventory_subplot_radius_m": SUBPLOT_RADIUS_M}, g) for pid, g in plots])
    _write_geojson(out_dir / "geo" / "control_candidates.geojson", [({"plot_id": pid, "group": "control_candidate"}, g) for pid, g in controls])

    # --- field inventory: a circular subplot at the centre of each project plot
    subplots = [(f"{pid}-S", shapely.Point(round(g.centroid.x, 3), round(g.centroid.y, 3))) for pid, g in plots]
    _write_geojson(out_dir / "geo" / "inventory_plots.geojson",
                   [({"plot_id": sid, "project_plot": pid, "radius_m": SUBPLOT_RADIUS_M}, c) for (pid, _), (sid, c) in zip(plots, subplots)])
    _write_inventory(out_dir / "field" / "inventory.csv", rng, subplots, quality, transform, project_start, inventory_date)

    # --- project sketch
    path = out_dir / "project.yaml"
    path.write_text(_project_yaml(boundary, first, last, project_start, inventory_date, missing), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- helpers


def _logistic(x: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-1.4 * (np.asarray(x) - 2.5)))


def _decimal_year(dt: datetime) -> float:
    start = datetime(dt.year, 1, 1, tzinfo=timezone.utc)
    end = datetime(dt.year + 1, 1, 1, tzinfo=timezone.utc)
    return dt.year + (dt - start).total_seconds() / (end - start).total_seconds()


def _smooth(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth noise of unit-ish amplitude: a (cells+1)² Gaussian lattice, bilinearly upsampled."""
    rows, cols = shape
    lattice = rng.standard_normal((cells + 1, cells + 1))
    yi = np.linspace(0, cells, rows)
    xi = np.linspace(0, cells, cols)
    y0 = np.minimum(yi.astype(int), cells - 1)
    x0 = np.minimum(xi.astype(int), cells - 1)
    wy = (yi - y0)[:, None]
    wx = (xi - x0)[None, :]
    a = lattice[y0][:, x0]
    b = lattice[y0][:, x0 + 1]
    c = lattice[y0 + 1][:, x0]
    d = lattice[y0 + 1][:, x0 + 1]
    return (1 - wy) * ((1 - wx) * a + wx * b) + wy * ((1 - wx) * c + wx * d)


def _wobbly_rect(rng: np.random.Generator, minx: float, miny: float, maxx: float, maxy: float, *, wobble: float) -> Any:
    """A rectangle with a few jittered vertices per side (a field boundary, not a bbox)."""
    pts = []
    for (xa, ya), (xb, yb) in (((minx, maxy), (maxx, maxy)), ((maxx, maxy), (maxx, miny)), ((maxx, miny), (minx, miny)), ((minx, miny), (minx, maxy))):
        for k in range(4):
            s = k / 4
            jx, jy = rng.uniform(-wobble, wobble, 2) if k else (0.0, 0.0)
            pts.append((round(xa + (xb - xa) * s + jx, 2), round(ya + (yb - ya) * s + jy, 2)))
    return shapely.Polygon(pts)


def _place_plots(rng: np.random.Generator, area: Any, n: int, *, prefix: str) -> list[tuple[str, Any]]:
    """``n`` rotated ~50 m squares inside ``area``, at least MIN_PLOT_SPACING_M apart (centre to centre)."""
    minx, miny, maxx, maxy = area.bounds
    inner = area.buffer(-PLOT_SIDE_M)
    centres: list[tuple[float, float]] = []
    out = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 20_000:
            raise ValueError(f"cannot place {n} plots of {PLOT_SIDE_M} m in the area; use a larger size or fewer plots")
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if not inner.contains(shapely.Point(x, y)) or any(math.hypot(x - a, y - b) < MIN_PLOT_SPACING_M for a, b in centres):
            continue
        angle = math.radians(rng.uniform(0.0, 30.0))
        h = PLOT_SIDE_M / 2
        ca, sa = math.cos(angle), math.sin(angle)
        corners = [(x + ca * dx - sa * dy, y + sa * dx + ca * dy) for dx, dy in ((-h, -h), (h, -h), (h, h), (-h, h))]
        centres.append((x, y))
        out.append((f"{prefix}{len(out) + 1:02d}", shapely.Polygon([(round(a, 3), round(b, 3)) for a, b in corners])))
    return out


def _to_wgs84(geom: Any) -> Any:
    from mrv.raster.scenes import to_crs

    g = to_crs(geom, ARR_CRS, "EPSG:4326", densify=False)
    return shapely.transform(g, lambda xy: np.round(xy, 8))


def _write_geojson(path: Path, features: list[tuple[dict[str, Any], Any]]) -> None:
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(_to_wgs84(g))} for props, g in features
        ],
    }
    path.write_text(json.dumps(fc, indent=1) + "\n", encoding="utf-8")


def _write_inventory(path: Path, rng: np.random.Generator, plots: list[tuple[str, Any]], quality: np.ndarray, transform: Affine,
                     start: date, when: date) -> None:
    age = max((when - start).days / 365.25, 0.5)
    shares = np.array([g[1] for g in GROUPS])
    lines = ["plot_id,tree_id,species_group,dbh_cm,height_m,wood_density_g_cm3"]
    for pid, geom in plots:
        c = geom.centroid if geom.geom_type != "Point" else geom
        col, row = ~transform @ (c.x, c.y)
        q = float(quality[int(row), int(col)])
        n_trees = int(rng.poisson(1100 * 0.05 * (0.7 + 0.3 * q)))  # ~1,100 surviving trees/ha × 0.05 ha
        kinds = rng.choice(len(GROUPS), size=n_trees, p=shares / shares.sum())
        for k, g in enumerate(kinds, start=1):
            name, _, wd, mu, sd, hmax = GROUPS[g]
            dbh = max(1.0, rng.normal(mu * q * age / 3.5, sd))
            height = 1.3 + hmax * (1 - math.exp(-0.12 * dbh)) + rng.normal(0.0, 0.6)
            density = wd + rng.normal(0.0, 0.03)
            lines.append(f"{pid},{pid}-T{k:03d},{name},{dbh:.1f},{max(height, 1.5):.1f},{density:.3f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _param(value: Any, unit: str, source: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "source": source}


def _project_yaml(boundary: Any, first: int, last: int, start: date, inventory: date, missing: datetime | None) -> str:
    import yaml

    from mrv.raster.scenes import area_m2

    ll = _to_wgs84(boundary)
    t0 = start.year
    area_ha = round(area_m2(ll) / 10_000.0, 4)  # equal-area (LAEA centred on the boundary)
    y1 = max(t0 - 9, first)  # VM0047 Table A2: a year in [t0 - 10, t0 - 8] ...
    y2 = t0 - 4  # ... and one in [t0 - 8, t0 - 1]
    demo = "synthetic demo value (mrv.sample.arr); a real project cites its own source"
    doc = {
        "project": {"id": PROJECT_ID, "name": "Synthetic Atlantic Forest restoration (ARR demo)", "type": "arr"},
        "methodology": "VCS:VM0047:1.0",
        "boundary": {"country": "BR", "geometry": shapely.geometry.mapping(ll)},
        "monitoring_period": {"start": start.isoformat(), "end": date(last, 12, 31).isoformat(), "timezone": "UTC"},
        "satellite": {
            "stac_catalog": "stac/catalog.json",
            "bands": {"red": {"asset": "red"}, "nir": {"asset": "nir"}},  # scale/offset/nodata from the items' raster:bands
            "mask": {"asset": "cloud_mask", "valid_values": [0]},
            "stocking_index": "ndvi",
            "grid": {"crs": ARR_CRS, "resolution": RES},
            "analysis_period": {"start": date(first, 1, 1).isoformat(), "end": date(last + 1, 1, 1).isoformat()},
            "project_start": start.isoformat(),
            "boundary": "geo/boundary.geojson",
            "plots": "geo/project_plots.geojson",
            "donor_pool": "geo/donor_pool.geojson",
            "control_candidates": "geo/control_candidates.geojson",
            "contract": "raster_scenes",
            "qa": {
                "resolution_m": RES,
                "resolution_tolerance_m": 0.5,
                "min_boundary_coverage": 0.95,
                "min_plot_coverage": 1.0,
                "min_valid_fraction": 0.8,
            },
        },
        "field_inventory": {
            "file": "field/inventory.csv",
            "measured": inventory.isoformat(),
            "plots": "geo/inventory_plots.geojson",
            "subplot_radius_m": SUBPLOT_RADIUS_M,
            "columns": {"plot_id": "plot_id", "tree_id": "tree_id", "species": "species_group", "dbh": "dbh_cm", "height": "height_m",
                        "wood_density": "wood_density_g_cm3"},
        },
        "parameters": {
            "approach": _param("area_based", "dimensionless", "VM0047 v1.0 area-based approach (project description)"),
            "A": _param(area_ha, "ha", "project boundary (geo/boundary.geojson), area in an equal-area CRS"),
            "t0_year": _param(t0, "year", "project start date (satellite.project_start)"),
            "SI_cov_year_1": _param(y1, "year", "VM0047 Table A2: matching covariate year in [t0 - 10, t0 - 8]"),
            "SI_cov_year_2": _param(y2, "year", "VM0047 Table A2: matching covariate year in [t0 - 8, t0 - 1]"),
            "SI_season_start_month": _param(SEASON_MONTHS[0], "month", "monitoring plan: wet-season NDVI composite (southern tropics)"),
            "SI_season_end_month": _param(SEASON_MONTHS[1], "month", "monitoring plan: wet-season NDVI composite (southern tropics)"),
            "f_valid_min": _param(0.8, "dimensionless", "monitoring plan: minimum valid-pixel fraction of a plot-date"),
            "d_max_donor": _param(10.0, "km", demo),
            "k_controls": _param(1, "dimensionless", "monitoring plan: one matched control per project plot"),
            "matching_replacement": _param("without", "dimensionless", "VM0047 Appendix 1: matching without replacement"),
            "allometry": _param("chave2014_eq4", "dimensionless", "Chave et al. (2014) Glob. Change Biol. 20:3177, eq. 4"),
            "D_min": _param(1.0, "cm", "field protocol: every tree with DBH >= 1 cm is measured"),
            "R": _param(0.24, "dimensionless", demo),
            "CF": _param(0.47, "dimensionless", "IPCC 2006 Guidelines, Vol. 4, Table 4.3"),
            "t0_no_woody_biomass": _param(True, "dimensionless", "baseline survey: degraded pasture without trees at the project start"),
            "D_max_qaqc": _param(100.0, "cm", "field QA/QC protocol"),
            "H_max_qaqc": _param(40.0, "m", "field QA/QC protocol"),
            "PE_t": _param(0.0, "tCO2e", "no biomass burning or N fertiliser in the period (monitoring report)"),
            "LK_t": _param(0.0, "tCO2e", "VMD0054 assessment: no activity shifting (pasture was abandoned)"),
            "UNC_allow": _param(0.10, "dimensionless", demo),
            "buffer_pct": _param(0.20, "dimensionless", "AFOLU Non-Permanence Risk Tool rating (synthetic)"),
        },
    }
    header = (
        f"# Synthetic ARR project (VCS VM0047 v1.0, area-based), generated by mrv.sample.arr.\n"
        f"# Scenes {first}-{last}, four a year; the acquisition of {missing:%Y-%m-%d} is missing on purpose.\n"
        if missing is not None else "# Synthetic ARR project (VCS VM0047 v1.0, area-based), generated by mrv.sample.arr.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)
