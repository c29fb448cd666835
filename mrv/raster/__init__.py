"""Rasters: exact plot coverage of a raster grid and zonal statistics over many dates."""

from mrv.raster.zonal import STATS, Coverage, Grid, coverage, zonal_stats

__all__ = ["STATS", "Coverage", "Grid", "coverage", "zonal_stats"]
