"""Read scenes onto a small grid in another CRS: a map tile (EPSG:3857) over Sentinel-2 in UTM.

odc-stac reads this case correctly, but a tile is a few dozen milliseconds of pixels behind a
fixed cost several times that (a load plan per call, a dask graph of several tasks per band and
day, fusing). Here one dask task per day warps every band of the day's scenes straight onto the
grid with GDAL (nearest neighbour, from the overview closest to the grid's resolution, as odc-stac
picks it), newest scene first, each older one filling only what the newer left empty.

The cube is the one odc-stac gives: float32, NaN for nodata, one label per solar day, the baseline
offset removed where the collection says so (``reader``); ``tests/data/test_warped.py`` compares them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import dask.array as da
import numpy as np
import rasterio
import rasterio.warp
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords
from odc.stac import parse_items
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.warp import transform_bounds

from terracube.cube import DIM_BANDS, DIM_T
from terracube.data.aligned import AssetRead, _asset_read, _solar_days
from terracube.data.reader import ArchiveDriver, read_failure

__all__ = ["load_warped"]


@dataclass(frozen=True)
class DayRead:
    """One dask task: every band of one day on the whole grid, each from that day's scenes, newest first."""

    driver: ArchiveDriver
    geobox: GeoBox
    bands: tuple[tuple[AssetRead, ...], ...]


def load_warped(items, bands: dict[str, str], geobox: GeoBox, driver: ArchiveDriver, parsed: list | None = None,
                eager: bool = False) -> xr.DataArray:
    """The cube ``(t, bands, y, x)`` on ``geobox``, one chunk per day (meant for grids of a tile's size).

    ``parsed``: the items as odc-stac parses them, when the caller has that already. ``eager``: a
    cube of one day is read now and held in numpy (a tile being drawn: its pixels are computed right
    after, and a dask graph costs more than they do). Several days stay lazy even then: a tile may
    draw only one of them (the latest, or WMTS's TIME), and a lazy cube reads that one alone.
    """
    parsed = parsed if parsed is not None else list(parse_items(items, md_plugin=driver.md_parser))
    days = _solar_days(parsed, geobox)
    reads = []
    for members in days.values():
        sources = []
        for asset in bands.values():
            found = []
            for index in members:
                try:
                    found.append(_asset_read(parsed[index][asset]))
                except (KeyError, ValueError):
                    continue  # a scene without this asset adds nothing to the band
            sources.append(tuple(found))
        reads.append(tuple(sources))
    if eager and len(reads) == 1:
        array = read_day(DayRead(driver, geobox, reads[0]))
    else:
        name = "warp-" + tokenize(geobox, list(bands), reads, driver.gdal_options)
        graph = {(name, t, 0, 0, 0): (read_day, DayRead(driver, geobox, sources)) for t, sources in enumerate(reads)}
        height, width = geobox.shape.y, geobox.shape.x
        chunks = ((1,) * len(reads), (len(bands),), (height,), (width,))
        array = da.Array(HighLevelGraph.from_collections(name, graph, dependencies=()), name, chunks, dtype=np.float32)
    # Each day at midnight UTC, as load_items labels every cube.
    labels = np.array([np.datetime64(parsed[members[0]].nominal_datetime.replace(tzinfo=None), "D")
                       for members in days.values()]).astype("datetime64[ns]")
    coords = {DIM_T: labels, DIM_BANDS: list(bands), **xr_coords(geobox)}
    return xr.DataArray(array, dims=(DIM_T, DIM_BANDS, "y", "x"), coords=coords)


def read_day(read: DayRead) -> np.ndarray:
    chunk = np.full((1, len(read.bands), *read.geobox.shape.yx), np.nan, dtype=np.float32)
    levels: dict = {}  # the overview level of each raster grid: the same for a scene's bands of one resolution
    with read.driver.environment():
        for plane, sources in zip(chunk[0], read.bands):
            for source in sources:
                values = _warp(read.driver, source, read.geobox, levels)
                empty = np.isnan(plane)
                if empty.all():
                    plane[...] = values
                else:
                    np.copyto(plane, values, where=empty)
                if not np.isnan(plane).any():
                    break  # the newer scenes cover the grid: older ones would change nothing
    return chunk


def _warp(driver: ArchiveDriver, source: AssetRead, grid: GeoBox, levels: dict) -> np.ndarray:
    values = np.full(grid.shape.yx, np.nan, dtype=np.float32)
    try:
        # gdal_path: a user's asset (load_stac) is read through the fetch guard, never by GDAL's own HTTP.
        # DatasetReader rather than rasterio.open: the collection's environment is already entered.
        with driver.gdal_path(source.uri) as uri, DatasetReader(uri, sharing=False) as dataset:
            nodata = source.nodata
            if not source.nodata_override and dataset.nodatavals[source.band - 1] is not None:
                nodata = dataset.nodatavals[source.band - 1]
            level = _overview_level(dataset, source.band, grid, levels)
            if level is None:
                _reproject(dataset, source.band, nodata, grid, values)
            else:
                with DatasetReader(uri, sharing=False, overview_level=level) as overview:
                    _reproject(overview, source.band, nodata, grid, values)
    except rasterio.errors.RasterioError as error:
        raise read_failure(error, source.uri, driver.label) from None
    if source.offset:
        np.subtract(values, source.offset, out=values)
        np.maximum(values, 0, out=values)
    return values


def _raster_key(dataset) -> tuple:
    """What decides how a raster lies under a grid: its CRS, pixel grid and size."""
    return (dataset.crs.to_wkt() if dataset.crs is not None else None, tuple(dataset.transform)[:6], dataset.width, dataset.height)


@lru_cache(maxsize=16)
def _wkt(crs) -> str:
    return crs.to_wkt()


def _reproject(dataset, band: int, nodata, grid: GeoBox, values: np.ndarray) -> None:
    rasterio.warp.reproject(
        rasterio.band(dataset, band),
        values,
        src_nodata=nodata,
        dst_transform=grid.transform,
        dst_crs=_wkt(grid.crs),
        dst_nodata=np.nan,
        resampling=Resampling.nearest,
    )


def _overview_level(dataset, band: int, grid: GeoBox, levels: dict | None = None) -> int | None:
    """The coarsest overview still at least as fine as the grid (GDAL's OVERVIEW_LEVEL), None for the full resolution."""
    factors = dataset.overviews(band)
    if not factors:
        return None
    key = (_raster_key(dataset), tuple(factors))
    if levels is not None and key in levels:
        return levels[key]  # the scene's other bands on the same pixel grid
    level = _finest_overview(dataset, factors, grid)
    if levels is not None:
        levels[key] = level
    return level


def _finest_overview(dataset, factors, grid: GeoBox) -> int | None:
    west, south, east, north = transform_bounds(_wkt(grid.crs), dataset.crs, *grid.boundingbox, densify_pts=5)
    shrink = min((east - west) / grid.shape.x / abs(dataset.res[0]), (north - south) / grid.shape.y / abs(dataset.res[1]))
    level = None
    for index, factor in enumerate(factors):
        if factor <= shrink:
            level = index
    return level
