"""Scenes from a local static STAC catalog (pystac), hashed into the artifact store.

>>> scenes = scenes_from_catalog("data/stac/catalog.json", bands=["red", "nir"],
...                              mask=MaskSpec("cloud_mask", valid_values=(0,)), store=store)

Every item of the catalog (recursively, sorted by acquisition time then id) becomes a
:class:`~mrv.raster.scenes.Scene`. For each item, the declared band assets and the mask asset are
looked up by asset key, their hrefs resolved relative to the item (as STAC says), each file opened
and — by default — fully decoded once, so a corrupt or truncated GeoTIFF is refused up front.

Only when *every* scene passed are the files hashed into the artifact store
(``LocalArtifactStore.put_file``) together with each item's JSON; the returned assets then point
at the store's blobs, so a later read — and a verifier's replay — uses exactly the bytes whose
digests are recorded. A bad catalog therefore writes nothing to the store.

Errors (:class:`~mrv.errors.SceneError`) name the item, the asset and the rule:

- ``stac_catalog_readable``: the catalog (or an item) is not a readable STAC document;
- ``item_datetime_present``: an item has neither ``datetime`` nor ``start_datetime``;
- ``item_id_unique``: two items share an id;
- ``stac_asset_present``: an item lacks a declared asset key, or the asset's file does not exist;
- ``asset_local``: an asset href is remote (``http(s)://``, ``s3://`` ...) — runs have no network;
- ``asset_readable``: the asset is not a readable GeoTIFF/COG.

Scale, offset and nodata of a band, first match wins: the :class:`BandSpec` (project file), the
item's ``raster:bands`` (STAC raster extension) for that asset, the GeoTIFF's own tags, else
scale 1, offset 0, no nodata.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mrv.artifacts import ArtifactStore, guess_media_type, sha256_file
from mrv.errors import SceneError
from mrv.raster.scenes import Scene, SceneAsset, inspect_asset

__all__ = ["BandSpec", "MaskSpec", "load_catalog", "scenes_from_catalog"]

# Item properties kept on the Scene (JSON-native, small); others stay in the item JSON artifact.
_KEPT_PROPERTIES = ("eo:cloud_cover", "platform", "constellation", "instruments", "gsd", "proj:code", "proj:epsg")


@dataclass(frozen=True)
class BandSpec:
    """A band to read: ``name`` (the variable name), the item's ``asset`` key (default: ``name``),
    the 1-based ``band`` of that file, and optional overrides of its scale/offset/nodata."""

    name: str
    asset: str | None = None
    band: int = 1
    scale: float | None = None
    offset: float | None = None
    nodata: float | None = None

    @property
    def asset_key(self) -> str:
        return self.asset or self.name


@dataclass(frozen=True)
class MaskSpec:
    """The quality/cloud mask asset: stored values listed in ``valid_values`` mark usable pixels;
    every other value (cloud, shadow, snow, nodata ...) makes the pixel invalid."""

    asset: str
    valid_values: tuple[int, ...] = (0,)
    band: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "valid_values", tuple(int(v) for v in self.valid_values))
        if not self.valid_values:
            raise ValueError("MaskSpec.valid_values: list at least one stored value that means 'usable pixel'")


def load_catalog(path: str | Path) -> Any:
    """Open a local static STAC catalog (``catalog.json``) with pystac."""
    import pystac

    p = Path(path)
    if not p.is_file():
        raise SceneError(f"STAC catalog {p}: file not found (rule: stac_catalog_readable)")
    try:
        return pystac.Catalog.from_file(str(p.resolve()))
    except Exception as exc:  # noqa: BLE001 - pystac raises many types (JSON, STACTypeError, KeyError ...)
        raise SceneError(f"STAC catalog {p}: not a readable STAC catalog ({type(exc).__name__}: {exc}) (rule: stac_catalog_readable)") from None


def _local_path(href: str) -> Path | None:
    parsed = urlparse(href)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and href[1:3] in (":\\", ":/")):  # windows drive
        return Path(unquote(parsed.path) if parsed.scheme == "file" else href)
    return None


def _item_datetime(item: Any) -> datetime:
    dt = item.datetime
    if dt is None:
        start = item.properties.get("start_datetime")
        if start is None:
            raise SceneError(f"scene {item.id}: item has neither datetime nor start_datetime (rule: item_datetime_present)")
        from pystac.utils import str_to_datetime

        dt = str_to_datetime(start)
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _raster_band(asset: Any, band: int) -> dict[str, Any]:
    bands = asset.extra_fields.get("raster:bands") or []
    if 1 <= band <= len(bands) and isinstance(bands[band - 1], dict):
        return bands[band - 1]
    return {}


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def scenes_from_catalog(
    catalog: str | Path,
    *,
    bands: Sequence[BandSpec | str],
    mask: MaskSpec | str | None = None,
    store: ArtifactStore | None = None,
    verify: bool = True,
) -> list[Scene]:
    """Every item of the local STAC catalog at ``catalog`` as a :class:`Scene` (see the module
    docstring). ``bands``: asset keys or :class:`BandSpec`; ``mask``: asset key (valid value 0) or
    :class:`MaskSpec`. With a ``store``, assets and item JSONs are hashed into it and the scenes
    point at the stored blobs; without one, digests are computed and the scenes point at the
    catalog's files. ``verify``: decode every block of every asset up front (default)."""
    specs = [BandSpec(b) if isinstance(b, str) else b for b in bands]
    if not specs:
        raise SceneError("scenes_from_catalog: declare at least one band")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise SceneError(f"scenes_from_catalog: band names repeat: {names}")
    mask_spec = MaskSpec(mask) if isinstance(mask, str) else mask
    cat = load_catalog(catalog)
    try:
        items = list(cat.get_items(recursive=True))
    except Exception as exc:  # noqa: BLE001
        raise SceneError(f"STAC catalog {catalog}: an item cannot be read ({type(exc).__name__}: {exc}) (rule: stac_catalog_readable)") from None
    seen: dict[str, Any] = {}
    for item in items:
        if item.id in seen:
            raise SceneError(f"scene {item.id}: two items of catalog {catalog} share this id (rule: item_id_unique)")
        seen[item.id] = item
    items.sort(key=lambda it: (_item_datetime(it), it.id))

    # Pass 1: resolve and inspect everything; nothing is stored until every scene is usable.
    planned: list[tuple[Any, datetime, list[tuple[str, str, Path, str, dict[str, Any], Any]]]] = []
    for item in items:
        when = _item_datetime(item)
        wanted: list[tuple[str, str, int, Any]] = [(s.name, s.asset_key, s.band, s) for s in specs]
        if mask_spec is not None:
            wanted.append((mask_spec.asset, mask_spec.asset, mask_spec.band, mask_spec))
        resolved = []
        for name, key, band, spec in wanted:
            asset = item.assets.get(key)
            if asset is None:
                raise SceneError(
                    f"scene {item.id}: STAC item has no asset {key!r} (has: {', '.join(sorted(item.assets)) or 'none'}) (rule: stac_asset_present)"
                )
            href = asset.get_absolute_href() or asset.href
            path = _local_path(href)
            if path is None:
                raise SceneError(f"scene {item.id}, asset {key!r}: href {href} is not a local file; runs read local files only (rule: asset_local)")
            if not path.is_file():
                raise SceneError(f"scene {item.id}, asset {key!r}: file {path} does not exist (href {asset.href!r}) (rule: stac_asset_present)")
            meta = inspect_asset(path, scene_id=item.id, key=key, verify=verify)
            if not 1 <= band <= meta["count"]:
                raise SceneError(f"scene {item.id}, asset {key!r}: band {band} requested but the file has {meta['count']} (rule: asset_readable)")
            resolved.append((name, key, path, asset.href, meta, (band, spec, asset)))
        planned.append((item, when, resolved))

    # Pass 2: hash into the store (or just hash) and build the typed scenes.
    scenes: list[Scene] = []
    for item, when, resolved in planned:
        assets: dict[str, SceneAsset] = {}
        for name, key, path, href, meta, (band, spec, stac_asset) in resolved:
            if store is not None:
                ref = store.put_file(path)
                digest, size, media_type, read_path = ref.digest, ref.size, ref.media_type, Path(store.local_path(ref.digest))
            else:
                digest, size, media_type, read_path = sha256_file(path), path.stat().st_size, guess_media_type(path.name), path
            rb = _raster_band(stac_asset, band)
            file_nodata = meta["nodata"]
            if isinstance(spec, MaskSpec):
                assets[name] = SceneAsset(
                    key=key, role="mask", path=read_path, source_path=path.resolve(), href=href, digest=digest, size=size,
                    media_type=media_type, crs=meta["crs"], transform=meta["transform"], shape=meta["shape"],
                    dtype=meta["dtypes"][band - 1], nodata=_first(rb.get("nodata"), file_nodata), band_index=band,
                    valid_values=spec.valid_values,
                )
            else:
                scale = _first(spec.scale, rb.get("scale"), meta["scales"][band - 1], 1.0)
                offset = _first(spec.offset, rb.get("offset"), meta["offsets"][band - 1], 0.0)
                nodata = _first(spec.nodata, rb.get("nodata"), file_nodata)
                if isinstance(nodata, str):  # STAC allows "nan", "inf", "-inf"
                    nodata = float(nodata)
                if nodata is not None and isinstance(nodata, float) and math.isnan(nodata):
                    nodata = None  # NaN already means missing for float rasters
                assets[name] = SceneAsset(
                    key=key, role="band", path=read_path, source_path=path.resolve(), href=href, digest=digest, size=size,
                    media_type=media_type, crs=meta["crs"], transform=meta["transform"], shape=meta["shape"],
                    dtype=meta["dtypes"][band - 1], nodata=nodata, scale=float(scale), offset=float(offset), band_index=band,
                )
        item_digest = None
        self_href = item.get_self_href()
        item_path = _local_path(self_href) if self_href else None
        if item_path is not None and item_path.is_file():
            item_digest = store.put_file(item_path, media_type="application/geo+json").digest if store is not None else sha256_file(item_path)
        props = {k: item.properties[k] for k in _KEPT_PROPERTIES if k in item.properties}
        scenes.append(
            Scene(
                id=item.id, datetime=when, assets=assets, bands=tuple(names),
                mask=mask_spec.asset if mask_spec is not None else None, properties=props, item_digest=item_digest,
            )
        )
    return scenes


def with_paths(scene: Scene, paths: dict[str, Path]) -> Scene:
    """A copy of ``scene`` reading some assets from other files (e.g. blobs restored by a replay)."""
    assets = {k: (replace(a, path=Path(paths[k])) if k in paths else a) for k, a in scene.assets.items()}
    return replace(scene, assets=assets)
