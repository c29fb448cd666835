"""Pipeline steps for area-based ARR projects (VCS VM0047): satellite scenes from a local STAC
catalog, the raster contract, per-plot stocking-index statistics, the field inventory and the
calculation.

Like :mod:`mrv.sources`, every step is memoised through the lineage store (:func:`mrv.pipeline.run_step`),
takes and returns digests, and hands its results on under the artifact roles the report, package
and replay expect (``validated``, ``quarantine``, ``validation_result``, ``calculation``)::

    ingest_scenes      raw/scenes/<item>/<asset>, raw/geo/*  ->  scenes (JSON), plot_geometry (JSON)
    validate_scenes    scenes, plot_geometry                 ->  scene_validation (raster contract, stage 1)
    plot_statistics    scenes, plot_geometry                 ->  validated, quarantine, validation_result
    ingest_inventory   raw/inventory/<file>, plot_geometry   ->  inventory, inventory_quarantine, inventory_validation
    calculate          validated, inventory, plot_geometry   ->  calculation

The transformations are pure functions of (project spec, bytes), shared with the verifier's replay
(:mod:`mrv.replay`), so a replay recomputes exactly the same artifacts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely

from mrv.artifacts import ArtifactRef
from mrv.errors import ContractBlocked, GeometryError, IngestError, ProjectSpecError
from mrv.project import ProjectSpec

if TYPE_CHECKING:
    from mrv.pipeline import RunContext
    from mrv.raster.contracts import RasterValidation
    from mrv.raster.scenes import Scene

STEP_INGEST_SCENES = "ingest_scenes"
STEP_VALIDATE_SCENES = "validate_scenes"
STEP_PLOT_STATISTICS = "plot_statistics"
STEP_INGEST_INVENTORY = "ingest_inventory"
PLOT_STATS_CONTRACT = "plot_statistics"
INVENTORY_CONTRACT = "tree_inventory"
GEOMETRY_CRS = "EPSG:4326"  # GeoJSON
STATS = ("mean", "valid_fraction", "count", "min", "max")
GEO_KEYS = ("boundary", "plots", "donor_pool", "control_candidates", "inventory_plots")
QUARANTINE_COLUMNS = ("kind", "contract", "rule_id", "severity", "scene_id", "plot_id", "ts", "reason")


def is_arr(spec: ProjectSpec) -> bool:
    """An area-based ARR project: it has a ``satellite:`` section."""
    return spec.satellite is not None


def _sat(spec: ProjectSpec) -> Any:
    if spec.satellite is None or spec.field_inventory is None:
        raise ProjectSpecError(f"{spec.project.id}: not a satellite (ARR) project: no satellite:/field_inventory: section")
    return spec.satellite


# --------------------------------------------------------------------------- pure: geometry


def geo_files(spec: ProjectSpec) -> dict[str, Path]:
    """The GeoJSON files of the project (key -> path), each checked to exist."""
    sat = _sat(spec)
    rel = {"plots": sat.plots, "donor_pool": sat.donor_pool, "control_candidates": sat.control_candidates,
           "inventory_plots": spec.field_inventory.plots}  # type: ignore[union-attr]
    if sat.boundary is not None:
        rel["boundary"] = sat.boundary
    out = {}
    for k, r in rel.items():
        p = spec.resolve(r)
        if not p.is_file():
            raise ProjectSpecError(f"{spec.project.id}: {k} GeoJSON {r} not found (looked in {spec.base_dir})")
        out[k] = p
    return out


def _features(doc: Mapping[str, Any], *, what: str, need_id: bool) -> dict[str, Any]:
    feats = doc.get("features") if doc.get("type") == "FeatureCollection" else [doc] if doc.get("type") == "Feature" else None
    if not feats:
        raise GeometryError(f"{what}: not a GeoJSON FeatureCollection with features")
    out: dict[str, Any] = {}
    for i, f in enumerate(feats):
        props = f.get("properties") or {}
        key = props.get("plot_id") if need_id else props.get("plot_id", props.get("name", str(i)))
        if key is None:
            raise GeometryError(f"{what}: feature {i} has no plot_id property")
        key = str(key)
        if key in out:
            raise GeometryError(f"{what}: plot_id {key} appears twice")
        try:
            geom = shapely.geometry.shape(f["geometry"])
        except Exception as exc:  # noqa: BLE001 - shapely raises several types
            raise GeometryError(f"{what}: feature {key}: not a GeoJSON geometry ({exc})") from None
        if geom.is_empty or not geom.is_valid:
            raise GeometryError(f"{what}: feature {key}: empty or invalid geometry")
        out[key] = geom
    return out


@dataclass(frozen=True)
class PlotGeometry:
    """Boundary, plots, donor pool, control candidates and inventory plot centres, in EPSG:4326."""

    boundary: Any
    plots: dict[str, Any]
    donor_pool: Any
    controls: dict[str, Any]
    inventory: dict[str, Any]
    inventory_radius_m: dict[str, float] = field(default_factory=dict)

    def all_plots(self) -> dict[str, Any]:
        """Project then control plots (the plots whose stocking index is monitored)."""
        overlap = sorted(set(self.plots) & set(self.controls))
        if overlap:
            raise GeometryError(f"plot id(s) used for both a project and a control plot: {', '.join(overlap[:10])}")
        return {**self.plots, **self.controls}


def plot_geometry(spec: ProjectSpec, docs: Mapping[str, Mapping[str, Any]]) -> PlotGeometry:
    """Pure: the project's geometries from the GeoJSON documents (``geo_files`` keys)."""
    fi = spec.field_inventory
    assert fi is not None
    if "boundary" in docs:
        boundary = shapely.union_all(list(_features(docs["boundary"], what="boundary", need_id=False).values()))
    else:
        boundary = shapely.geometry.shape(spec.boundary.geometry)
    donor = shapely.union_all(list(_features(docs["donor_pool"], what="donor_pool", need_id=False).values()))
    inv_feats = docs["inventory_plots"].get("features") or []
    radius = {str((f.get("properties") or {}).get("plot_id")): float((f.get("properties") or {}).get("radius_m") or fi.subplot_radius_m)
              for f in inv_feats}
    return PlotGeometry(
        boundary=boundary,
        plots=_features(docs["plots"], what="plots", need_id=True),
        donor_pool=donor,
        controls=_features(docs["control_candidates"], what="control_candidates", need_id=True),
        inventory=_features(docs["inventory_plots"], what="inventory_plots", need_id=True),
        inventory_radius_m=radius,
    )


def plot_registry(geo: PlotGeometry) -> list[dict[str, Any]]:
    """Pure: VM0047's plot registry (``sources["plots"]``) from the geometries, in an equal-area
    CRS (LAEA centred on all plots): project plots ``area_ha, inside_fraction`` (share inside the
    boundary); controls ``area_ha, distance_km`` (to the boundary), ``donor_pool_ok`` (wholly inside
    the donor pool and outside the boundary); inventory plots ``area_ha`` = π r²."""
    from mrv.raster.scenes import equal_area_crs, to_crs

    everything = shapely.union_all([geo.boundary, geo.donor_pool, *geo.plots.values(), *geo.controls.values()])
    ea = equal_area_crs(everything, GEOMETRY_CRS)
    b = to_crs(geo.boundary, GEOMETRY_CRS, ea)
    d = to_crs(geo.donor_pool, GEOMETRY_CRS, ea)
    rows: list[dict[str, Any]] = []
    for pid in sorted(geo.plots):
        g = to_crs(geo.plots[pid], GEOMETRY_CRS, ea)
        rows.append({"plot_id": pid, "role": "project", "area_ha": round(g.area / 1e4, 6),
                     "inside_fraction": round(float(g.intersection(b).area / g.area), 6)})
    for pid in sorted(geo.controls):
        g = to_crs(geo.controls[pid], GEOMETRY_CRS, ea)
        in_pool = g.intersection(d).area / g.area
        rows.append({"plot_id": pid, "role": "control", "area_ha": round(g.area / 1e4, 6),
                     "distance_km": round(float(g.distance(b)) / 1000.0, 6),
                     "donor_pool_ok": bool(in_pool >= 1.0 - 1e-6 and not g.intersects(b))})
    for pid in sorted(geo.inventory):
        r = geo.inventory_radius_m.get(pid)
        if r is None or not r > 0:
            raise GeometryError(f"inventory plot {pid}: no radius")
        rows.append({"plot_id": pid, "role": "inventory", "area_ha": round(math.pi * r * r / 1e4, 6)})
    return rows


# --------------------------------------------------------------------------- pure: scenes and statistics


def band_specs(spec: ProjectSpec) -> tuple[list[Any], Any]:
    from mrv.raster.stac import BandSpec, MaskSpec

    sat = _sat(spec)
    bands = [BandSpec(name, asset=b.asset, band=b.band, scale=b.scale, offset=b.offset, nodata=b.nodata) for name, b in sat.bands.items()]
    mask = None if sat.mask is None else MaskSpec(sat.mask.asset, tuple(sat.mask.valid_values), band=sat.mask.band)
    return bands, mask


def scenes_document(scenes: Sequence["Scene"]) -> list[dict[str, Any]]:
    return [s.to_json() for s in scenes]


def raster_context(spec: ProjectSpec, geo: PlotGeometry) -> Any:
    from mrv.raster.contracts import RasterContext

    sat = _sat(spec)
    return RasterContext(period_start=sat.analysis_period.start, period_end=sat.analysis_period.end, boundary=geo.boundary,
                         plots=geo.all_plots(), geometry_crs=GEOMETRY_CRS, values=dict(sat.qa))


def scene_stage(spec: ProjectSpec, scenes: Sequence["Scene"], geo: PlotGeometry) -> "RasterValidation":
    """Pure: stage 1 of the raster contract (scene rules and plot coverage)."""
    from mrv.raster.contracts import load_raster_contract, validate_scenes

    return validate_scenes(load_raster_contract(_sat(spec).contract), scenes, raster_context(spec, geo))


def stocking_index(spec: ProjectSpec, ds: Any) -> Any:
    from mrv.raster.scenes import ndvi

    name = _sat(spec).stocking_index
    return ndvi(ds) if name == "ndvi" else ds[name]


def zonal_table(spec: ProjectSpec, scenes: Sequence["Scene"], geo: PlotGeometry) -> pd.DataFrame:
    """Pure: exact area-weighted statistics of the stocking index per plot and scene date (the
    project grid around the project and control plots; coverage computed once, reused per date)."""
    from mrv.raster import coverage, zonal_stats
    from mrv.raster.contracts import stats_table_from_zonal
    from mrv.raster.scenes import ProjectGrid, read_scenes, to_crs

    sat = _sat(spec)
    plots = geo.all_plots()
    ids = list(plots)
    grid = ProjectGrid.around(list(plots.values()), GEOMETRY_CRS, crs=sat.grid.crs, resolution=sat.grid.resolution,
                              buffer=2 * sat.grid.resolution)
    ds = read_scenes(list(scenes), grid, chunks=256)
    cov = coverage([to_crs(plots[i], GEOMETRY_CRS, grid.crs) for i in ids], polygons_crs=grid.crs, transform=grid.transform,
                   shape=grid.shape, crs=grid.crs, ids=ids)
    si = stocking_index(spec, ds)
    frame = zonal_stats(cov, si.data, mask=ds["invalid"].data, dates=[s.date_label for s in scenes], stats=STATS)
    variable = "ndvi" if sat.stocking_index == "ndvi" else "stocking_index"
    return stats_table_from_zonal(frame, variable=variable, scene_ids=[s.id for s in scenes])


@dataclass(frozen=True)
class _PlotSource:
    """A plot as a contract series source (plots have no interval or calibration)."""

    id: str
    interval_minutes: int = 1440
    calibrations: tuple = ()


def contract_values(spec: ProjectSpec) -> dict[str, Any]:
    from mrv.sources import contract_values as values

    return values(spec)


def tidy_plot_statistics(table: pd.DataFrame) -> pd.DataFrame:
    """The raster statistics table in the ``plot_statistics`` contract shape: ``plot_id, ts,
    value, valid_fraction, count, source_file, source_row`` (source_file = the scene id)."""
    t = table.reset_index(drop=True)
    # valid_fraction as the zonal statistics computed it (rounding excess above 1 is clipped there,
    # mrv.raster.zonal.VALID_FRACTION_ROUNDING, and nowhere else).
    out = pd.DataFrame({
        "plot_id": t["plot_id"].astype(str).to_numpy(),
        "ts": pd.to_datetime(t["date"], utc=True).astype("datetime64[us, UTC]").to_numpy(),
        "value": t["mean"].astype("float64").to_numpy(),
        "valid_fraction": t["valid_fraction"].astype("float64").to_numpy(),
        "count": t["count"].astype("float64").to_numpy(),
        "source_file": t["scene_id"].astype(str).to_numpy() if "scene_id" in t else "",
        "source_row": np.arange(1, len(t) + 1, dtype=np.int64),
    })
    out["ts"] = pd.to_datetime(out["ts"], utc=True).astype("datetime64[us, UTC]")
    return out


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in QUARANTINE_COLUMNS})


def quarantine_frame(raster: "RasterValidation", gx_quarantine: pd.DataFrame | None, *, contract_id: str) -> pd.DataFrame:
    """Pure: scenes and plot-dates set aside by the raster contract, then rows the plot_statistics
    contract quarantined, one row each with the rule and the reason."""
    rows: list[dict[str, Any]] = []
    for q in sorted(raster.quarantined_scenes, key=lambda q: (q["datetime"], q["scene_id"])):
        rows.append({"kind": "scene", "contract": raster.contract_id, "rule_id": q["rule_id"], "severity": q["severity"],
                     "scene_id": q["scene_id"], "plot_id": None, "ts": q["datetime"], "reason": q["reason"]})
    for q in sorted(raster.quarantined_plot_dates, key=lambda q: (q["date"], str(q["plot_id"]))):
        rows.append({"kind": "plot_date", "contract": raster.contract_id, "rule_id": q["rule_id"], "severity": q["severity"],
                     "scene_id": q.get("scene_id"), "plot_id": str(q["plot_id"]), "ts": q["date"], "reason": q["reason"]})
    if gx_quarantine is not None and len(gx_quarantine):
        for r in gx_quarantine.itertuples(index=False):
            rows.append({"kind": "plot_date", "contract": contract_id, "rule_id": str(r.rule_id), "severity": str(r.severity),
                         "scene_id": str(r.source_file), "plot_id": str(r.plot_id),
                         "ts": pd.Timestamp(r.ts).strftime("%Y-%m-%dT%H:%M:%SZ"), "reason": str(r.reason)})
    if not rows:
        return _empty_quarantine()
    return pd.DataFrame(rows, columns=list(QUARANTINE_COLUMNS)).astype("object")


def validation_document(raster: "RasterValidation", gx: Any, *, rows_input: int, rows_valid: int) -> dict[str, Any]:
    """The ``validation_result`` artifact: the raster contract's JSON, the plot_statistics contract
    result, and a summary in the shape the report reads (rows, rules)."""
    from mrv.pipeline import validation_document as gx_document

    rules = [
        {"rule_id": r["rule_id"], "severity": r["severity"], "description": r["description"], "success": r["success"],
         "unexpected_count": r["failed"], "quarantined_count": r["quarantined"], "clause": r["clause"],
         "details": {"applies_to": r["applies_to"], "checked": r["checked"]}}
        for r in raster.to_json()["rules"]
    ]
    gx_doc = gx_document(gx)
    for r in gx_doc["summary"].get("rules", []):
        rules.append({**{k: r.get(k) for k in ("rule_id", "severity", "description", "success", "unexpected_count", "quarantined_count", "clause", "details")},
                      "rule_id": f"{PLOT_STATS_CONTRACT}.{r.get('rule_id')}"})
    raster_json = raster.to_json()
    return {
        "contract": {"id": raster.contract_id, "version": raster.contract_version},
        "engine": "raster",
        "summary": {
            "rows": {"input": rows_input, "valid": rows_valid, "quarantined": rows_input - rows_valid},
            "rules": rules,
            "scenes": {"checked": raster_json["scenes_checked"], "valid": len(raster_json["valid_scenes"]),
                       "quarantined": len(raster_json["quarantined_scenes"])},
        },
        "raster": raster_json,
        "plot_statistics_contract": gx_doc,
        "gaps": [],
    }


@dataclass(frozen=True)
class PlotStatistics:
    validated: pd.DataFrame
    quarantine: pd.DataFrame
    document: dict[str, Any]
    blocked: bool
    raster: Any


def compute_plot_statistics(spec: ProjectSpec, scenes: Sequence["Scene"], geo: PlotGeometry, *, engine: str = "native",
                            prior: "RasterValidation | None" = None) -> PlotStatistics:
    """Pure: stage 1 (scenes), stocking-index zonal statistics on the valid scenes, stage 2 (plot
    dates), then the methodology's ``plot_statistics`` contract on the remaining plot-dates.

    ``prior``: the stage-1 result :func:`scene_stage` already gave for the same spec, scenes and
    geometry (not recomputed then; stage 2 copies it, never changes it)."""
    from mrv.contracts import ContractContext, load_contract
    from mrv.contracts import validate_readings as run_contract
    from mrv.raster.contracts import load_raster_contract, validate_plot_stats

    contract = load_raster_contract(_sat(spec).contract)
    ctx = raster_context(spec, geo)
    if prior is None:
        prior = scene_stage(spec, scenes, geo)
    elif ((prior.contract_id, prior.contract_version) != (contract.id, contract.version)
          or prior.scene_ids != [s.id for s in sorted(scenes, key=lambda s: (s.datetime, s.id))]):
        raise ValueError("prior is the stage-1 result of other scenes or another contract")
    if prior.blocked:
        return PlotStatistics(pd.DataFrame(), _empty_quarantine(), {"contract": {"id": prior.contract_id, "version": prior.contract_version},
                                                                    "engine": "raster", "summary": {}, "raster": prior.to_json(), "gaps": []},
                              True, prior)
    valid_ids = set(prior.valid_scene_ids)
    valid = [s for s in scenes if s.id in valid_ids]
    table = zonal_table(spec, valid, geo)
    result = validate_plot_stats(contract, table, ctx, prior=prior)
    kept = result.valid_plot_dates(table)
    tidy = tidy_plot_statistics(kept)
    cctx = ContractContext(period_start=ctx.period()[0].to_pydatetime(), period_end=ctx.period()[1].to_pydatetime(),
                           sources=[_PlotSource(p) for p in geo.all_plots()], values=contract_values(spec))
    outcome = run_contract(tidy, contract=load_contract(PLOT_STATS_CONTRACT), context=cctx, engine=engine)
    doc = validation_document(result, outcome, rows_input=len(table), rows_valid=len(outcome.valid))
    quarantine = quarantine_frame(result, outcome.quarantine, contract_id=PLOT_STATS_CONTRACT)
    validated = outcome.valid.reset_index(drop=True)
    return PlotStatistics(validated, quarantine, doc, result.blocked or outcome.blocked, result)


# --------------------------------------------------------------------------- pure: inventory


def read_inventory(path: Path, spec: ProjectSpec) -> pd.DataFrame:
    """Pure: the inventory CSV as the tidy ``tree_inventory`` frame: ``plot_id, ts, value`` (DBH
    [cm]), ``tree_id, species, height_m, wood_density, source_file, source_row``."""
    fi = spec.field_inventory
    assert fi is not None
    c = fi.columns
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=True)
    except Exception as exc:  # noqa: BLE001 - pandas raises several types for bad CSV
        raise IngestError(f"field inventory {path.name}: not a readable CSV ({exc})") from None
    need = [c.plot_id, c.tree_id, c.species, c.dbh, c.height, c.wood_density] + ([c.date] if c.date else [])
    missing = [n for n in need if n not in raw.columns]
    if missing:
        raise IngestError(f"field inventory {path.name}: missing column(s) {', '.join(missing)} (has: {', '.join(raw.columns)})")

    def num(col: str) -> np.ndarray:
        return pd.to_numeric(raw[col], errors="coerce").astype("float64").to_numpy()

    if c.date:
        ts = pd.to_datetime(raw[c.date], utc=True, errors="coerce")
    else:
        ts = pd.Series(pd.Timestamp(fi.measured, tz="UTC"), index=raw.index)  # type: ignore[arg-type]
    out = pd.DataFrame({
        "plot_id": raw[c.plot_id].astype(str).to_numpy(),
        "ts": ts.to_numpy(),
        "value": num(c.dbh),
        "tree_id": raw[c.tree_id].astype(str).to_numpy(),
        "species": raw[c.species].astype(str).to_numpy(),
        "height_m": num(c.height),
        "wood_density": num(c.wood_density),
        "source_file": path.name,
        "source_row": np.arange(2, len(raw) + 2, dtype=np.int64),
    })
    out["ts"] = pd.to_datetime(out["ts"], utc=True).astype("datetime64[us, UTC]")
    return out


def validate_inventory(spec: ProjectSpec, trees: pd.DataFrame, geo: PlotGeometry, *, engine: str = "native") -> Any:
    from mrv.contracts import ContractContext, load_contract
    from mrv.contracts import validate_readings as run_contract

    cctx = ContractContext(period_start=spec.monitoring_period.start_utc, period_end=spec.monitoring_period.end_utc,
                           sources=[_PlotSource(p) for p in sorted(geo.inventory)], values=contract_values(spec))
    return run_contract(trees, contract=load_contract(INVENTORY_CONTRACT), context=cctx, engine=engine)


# --------------------------------------------------------------------------- pure: calculation


def calculation_document(spec: ProjectSpec, validated: pd.DataFrame, inventory: pd.DataFrame, registry: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Pure: the VM0047 calculation artifact (results, parameters, treatments, trace)."""
    from mrv.methodology import MonitoringInput
    from mrv.methodology.registry import get as get_methodology
    from mrv.pipeline import methodology_parameters

    methodology = get_methodology(spec.methodology)
    data = MonitoringInput(
        start=spec.monitoring_period.start_utc,
        end=spec.monitoring_period.end_utc,
        datasets={"plot_statistics": validated, "tree_inventory": inventory},
        sources={"plots": [dict(r) for r in registry]},
    )
    result = methodology.run(raw_parameters=methodology_parameters(spec), data=data)
    period = spec.monitoring_period
    return {
        "project_id": spec.project.id,
        "monitoring_period": {"start": period.start.isoformat(), "end": period.end.isoformat(), "timezone": period.timezone},
        **result.to_dict(),
    }


# --------------------------------------------------------------------------- steps


def _geo_docs(ctx: "RunContext", digest: str) -> dict[str, Any]:
    return json.loads(ctx.store.read_bytes(digest))


def _geometry(ctx: "RunContext", spec: ProjectSpec, digest: str) -> PlotGeometry:
    return plot_geometry(spec, _geo_docs(ctx, digest))


def _scenes(ctx: "RunContext", digest: str) -> list["Scene"]:
    from mrv.raster.scenes import scene_from_json

    return [scene_from_json(d, ctx.store) for d in json.loads(ctx.store.read_bytes(digest))]


def ingest_scenes(ctx: "RunContext", *, project_digest: str) -> dict[str, ArtifactRef]:
    """Hash every scene asset (and item JSON) and the project's GeoJSON files into the store.
    Outputs ``scenes`` (the typed scene list as JSON, assets by digest) and ``plot_geometry``."""
    from mrv.pipeline import load_spec, put_json, run_step
    from mrv.raster.stac import scenes_from_catalog

    spec = load_spec(ctx, project_digest)
    sat = _sat(spec)
    bands, mask = band_specs(spec)
    scenes = scenes_from_catalog(spec.resolve(sat.stac_catalog), bands=bands, mask=mask, store=ctx.store)
    raw: dict[str, ArtifactRef] = {}
    for s in scenes:
        for key, a in s.assets.items():
            raw[f"raw/scenes/{s.id}/{key}"] = ArtifactRef(a.digest, a.size, a.media_type, Path(a.href).name)
        if s.item_digest is not None:
            raw[f"raw/scenes/{s.id}/item.json"] = ctx.store.ref(s.item_digest)
    files = geo_files(spec)
    for k, p in sorted(files.items()):
        ref = ctx.store.put_file(p, media_type="application/geo+json")
        raw[f"raw/geo/{k}.geojson"] = ArtifactRef(ref.digest, ref.size, ref.media_type, p.name)

    def compute() -> dict[str, ArtifactRef]:
        docs = {k: json.loads(ctx.store.read_bytes(raw[f"raw/geo/{k}.geojson"].digest)) for k in sorted(files)}
        plot_geometry(spec, docs)  # refuse bad GeoJSON here, naming the file
        return {
            "scenes": put_json(ctx.store, scenes_document(scenes), name="scenes.json"),
            "plot_geometry": put_json(ctx.store, docs, name="plot-geometry.json"),
        }

    params = {"satellite": sat.model_dump(mode="json")}
    return run_step(ctx, name=STEP_INGEST_SCENES, parameters=params, inputs=raw, compute=compute)


def validate_scenes_step(ctx: "RunContext", *, project_digest: str, scenes: str, geometry: str) -> dict[str, ArtifactRef]:
    """Stage 1 of the raster contract; a blocking rule stops the run (the result is still linked)."""
    from mrv.pipeline import JSON, load_spec, run_step

    spec = load_spec(ctx, project_digest)
    inputs = {"scenes": ctx.store.ref(scenes), "plot_geometry": ctx.store.ref(geometry)}

    def compute() -> dict[str, ArtifactRef]:
        result = scene_stage(spec, _scenes(ctx, scenes), _geometry(ctx, spec, geometry))
        ref = ctx.store.put_bytes(result.to_bytes(), media_type=JSON, name="scene-validation.json")
        if result.blocked:
            try:
                result.raise_if_blocked()
            except ContractBlocked as exc:
                exc.artifacts = {"scene_validation": ref}  # type: ignore[attr-defined]
                raise
        return {"scene_validation": ref}

    params = {"contract": _sat(spec).contract, "qa": dict(_sat(spec).qa), "period": _sat(spec).analysis_period.model_dump(mode="json")}
    return run_step(ctx, name=STEP_VALIDATE_SCENES, parameters=params, inputs=inputs, compute=compute)


def plot_statistics(ctx: "RunContext", *, project_digest: str, scenes: str, geometry: str) -> dict[str, ArtifactRef]:
    """Zonal statistics of the stocking index on the valid scenes, then the plot-date rules."""
    from mrv.pipeline import load_spec, put_frame, put_json, run_step

    spec = load_spec(ctx, project_digest)
    inputs = {"scenes": ctx.store.ref(scenes), "plot_geometry": ctx.store.ref(geometry)}

    def compute() -> dict[str, ArtifactRef]:
        out = compute_plot_statistics(spec, _scenes(ctx, scenes), _geometry(ctx, spec, geometry), engine=ctx.settings.contract_engine)
        result = put_json(ctx.store, out.document, name="validation-result.json")
        if out.blocked:
            try:
                out.raster.raise_if_blocked()
                raise ContractBlocked(f"contract {PLOT_STATS_CONTRACT} blocked the run (see validation_result)")
            except ContractBlocked as exc:
                exc.artifacts = {"validation_result": result}  # type: ignore[attr-defined]
                raise
        return {
            "validated": put_frame(ctx.store, out.validated, name="plot-statistics.parquet"),
            "quarantine": put_frame(ctx.store, out.quarantine, name="quarantine.parquet"),
            "validation_result": result,
        }

    sat = _sat(spec)
    params = {"satellite": sat.model_dump(mode="json"), "values": contract_values(spec), "engine": ctx.settings.contract_engine, "stats": list(STATS)}
    return run_step(ctx, name=STEP_PLOT_STATISTICS, parameters=params, inputs=inputs, compute=compute)


def ingest_inventory(ctx: "RunContext", *, project_digest: str, geometry: str) -> dict[str, ArtifactRef]:
    """The field inventory CSV -> tidy tree frame -> the tree_inventory contract."""
    from mrv.pipeline import _named_view, load_spec, put_frame, put_json, run_step, validation_document as gx_document

    spec = load_spec(ctx, project_digest)
    fi = spec.field_inventory
    assert fi is not None
    path = spec.resolve(fi.file)
    if not path.is_file():
        raise ProjectSpecError(f"field inventory {fi.file} not found (looked in {spec.base_dir})")
    ref = ctx.store.put_file(path)
    raw = {f"raw/inventory/{path.name}": ArtifactRef(ref.digest, ref.size, ref.media_type, path.name)}
    inputs = {**raw, "plot_geometry": ctx.store.ref(geometry)}

    def compute() -> dict[str, ArtifactRef]:
        with _named_view(ctx.store, list(raw.values())) as (p,):
            trees = read_inventory(Path(p), spec)
        outcome = validate_inventory(spec, trees, _geometry(ctx, spec, geometry), engine=ctx.settings.contract_engine)
        doc = put_json(ctx.store, gx_document(outcome), name="inventory-validation.json")
        if outcome.blocked:
            try:
                outcome.raise_if_blocked()
            except ContractBlocked as exc:
                exc.artifacts = {"inventory_validation": doc}  # type: ignore[attr-defined]
                raise
        return {
            "inventory": put_frame(ctx.store, outcome.valid.reset_index(drop=True), name="tree-inventory.parquet"),
            "inventory_quarantine": put_frame(ctx.store, outcome.quarantine.reset_index(drop=True), name="inventory-quarantine.parquet"),
            "inventory_validation": doc,
        }

    params = {"field_inventory": fi.model_dump(mode="json"), "values": contract_values(spec), "engine": ctx.settings.contract_engine}
    return run_step(ctx, name=STEP_INGEST_INVENTORY, parameters=params, inputs=inputs, compute=compute)


def calculate(ctx: "RunContext", *, project_digest: str, validated: str, inventory: str, geometry: str) -> dict[str, ArtifactRef]:
    """VM0047 on the validated plot statistics, the validated inventory and the plot registry."""
    from mrv.pipeline import STEP_CALCULATE, load_spec, methodology_parameters, put_json, read_parquet_artifact, run_step

    spec = load_spec(ctx, project_digest)
    inputs = {"validated": ctx.store.ref(validated), "inventory": ctx.store.ref(inventory), "plot_geometry": ctx.store.ref(geometry)}
    params = {
        "methodology": spec.methodology,
        "parameters": methodology_parameters(spec),
        "period": [spec.monitoring_period.start_utc.isoformat(), spec.monitoring_period.end_utc.isoformat()],
    }

    def compute() -> dict[str, ArtifactRef]:
        registry = plot_registry(_geometry(ctx, spec, geometry))
        doc = calculation_document(spec, read_parquet_artifact(ctx.store, validated), read_parquet_artifact(ctx.store, inventory), registry)
        return {"calculation": put_json(ctx.store, doc, name="calculation.json")}

    return run_step(ctx, name=STEP_CALCULATE, parameters=params, inputs=inputs, compute=compute)


def run_local_arr(ctx: "RunContext", digest: str, spec: ProjectSpec) -> dict[str, Any]:
    """:func:`mrv.pipeline.run_local` for satellite (ARR) projects."""
    from mrv.pipeline import finish_run

    ing = ingest_scenes(ctx, project_digest=digest)
    scenes, geometry = ing["scenes"].digest, ing["plot_geometry"].digest
    validate_scenes_step(ctx, project_digest=digest, scenes=scenes, geometry=geometry)
    v = plot_statistics(ctx, project_digest=digest, scenes=scenes, geometry=geometry)
    inv = ingest_inventory(ctx, project_digest=digest, geometry=geometry)
    c = calculate(ctx, project_digest=digest, validated=v["validated"].digest, inventory=inv["inventory"].digest, geometry=geometry)
    return finish_run(ctx, calculation=c["calculation"].digest, validation_result=v["validation_result"].digest, quarantine=v["quarantine"].digest)
