"""Opening rasters with errors that name the file (corrupt GeoTIFF, missing file)."""

from __future__ import annotations

import os
from typing import Any

import rasterio
from rasterio.errors import RasterioError

from mrv.errors import RasterError

__all__ = ["open_raster"]


def open_raster(path: str | os.PathLike[str]) -> Any:
    """``rasterio.open(path)`` for reading; any GDAL failure becomes a :class:`RasterError` that
    names the file."""
    try:
        return rasterio.open(path)
    except (RasterioError, OSError) as exc:
        raise RasterError(f"raster {os.fspath(path)}: cannot be opened ({exc})") from None
