"""Read COGs that lie on the request's pixel grid straight into the cube's chunks.

The common request is Sentinel-2 in its own UTM zone: every asset's pixel is the cube's pixel (10 m
bands) or a whole block of them (20 and 60 m bands), on a grid shifted by whole pixels. odc-stac
reads that case correctly but generally (a reprojection plan per read, the output filled, nodata
masked and fused in several passes over float32, coarse bands in separate arrays to be repeated,
cropped and concatenated); this reads each chunk's window in the file's own type, converts it once
and repeats coarse pixels in the same task, so every band comes out as one array of chunks on the
request's grid. Anything else (another CRS, a pixel size that is not a whole multiple, a grid
shifted by a fraction of a pixel, no ``proj:`` metadata in the STAC item) goes through odc-stac.

The result is the same cube odc-stac gives: float32 with NaN for nodata, one label per solar day,
the scenes of a day mosaicked in the order given (newest first), the baseline offset removed
where the collection says so (see ``reader``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

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
from rasterio.windows import Window

from terracube.cube import DIM_BANDS, DIM_T
from terracube.data.reader import ArchiveDriver, read_failure

__all__ = ["load_aligned"]


@dataclass(frozen=True)
class AssetRead:
    """One asset of one scene, as the chunk reads it."""

    uri: str
    band: int
    nodata: float | None  # the collection's override, or the STAC item's (the file's own wins over that)
    nodata_override: bool
    offset: float


@dataclass(frozen=True)
class ChunkRead:
    """One dask task: a chunk of every band on one day, each from the scenes of that day, newest first."""

    driver: ArchiveDriver
    geobox: GeoBox
    bands: tuple[tuple[AssetRead, ...], ...]


def load_aligned(items, bands: dict[str, str], geobox: GeoBox, chunk_size: int, driver: ArchiveDriver,
                 parsed: list | None = None) -> xr.DataArray | None:
    """The cube ``(t, bands, y, x)`` read directly, or None when an asset is not on ``geobox``'s grid
    (``parsed``: the items as odc-stac parses them, when the caller has that already)."""
    parsed = parsed if parsed is not None else list(parse_items(items, md_plugin=driver.md_parser))
    # per scene and band name: how to read the asset, and where its pixels fall on the cube's grid
    placements: list[dict[str, tuple[AssetRead, Placement]]] = []
    for item in parsed:
        sources = {}
        for name, asset in bands.items():
            try:
                source = item[asset]
            except (KeyError, ValueError):
                continue  # a scene without this asset adds nothing to the band, as in odc-stac
            placement = _placement(getattr(source, "geobox", None), geobox)
            if placement is None:
                return None
            sources[name] = (_asset_read(source), placement)
        placements.append(sources)
    days = _solar_days(parsed, geobox)
    # what is read, from where and how (two loads of the same files on the same grid share their reads)
    name = "read-" + tokenize(geobox, chunk_size, list(bands), placements, list(days.values()), driver.gdal_options)
    height, width = geobox.shape.y, geobox.shape.x
    # All bands of a day and place in one chunk: a third of the tasks for three bands, and
    # processes over the bands dimension (NDVI, a cloud mask from SCL) need no rechunking.
    graph = {}
    for t, members in enumerate(days.values()):
        for i, row0 in enumerate(range(0, height, chunk_size)):
            for j, col0 in enumerate(range(0, width, chunk_size)):
                rows, cols = slice(row0, min(row0 + chunk_size, height)), slice(col0, min(col0 + chunk_size, width))
                sources = tuple(
                    tuple(
                        placements[index][band][0]
                        for index in members
                        if band in placements[index] and placements[index][band][1].overlaps(rows, cols)
                    )
                    for band in bands
                )
                graph[(name, t, 0, i, j)] = (read_chunk, ChunkRead(driver, geobox[rows, cols], sources))
    chunks = ((1,) * len(days), (len(bands),), _sizes(height, chunk_size), _sizes(width, chunk_size))
    array = da.Array(HighLevelGraph.from_collections(name, graph, dependencies=()), name, chunks, dtype=np.float32)
    # Labelled with the day at midnight UTC, as the loads label every cube (data/load.py).
    labels = np.array([np.datetime64(parsed[members[0]].nominal_datetime.replace(tzinfo=None), "D") for members in days.values()],
                      dtype="datetime64[ns]")
    coords = {DIM_T: labels, DIM_BANDS: list(bands), **xr_coords(geobox)}
    return xr.DataArray(array, dims=(DIM_T, DIM_BANDS, "y", "x"), coords=coords)


@dataclass(frozen=True)
class Placement:
    """Where a raster's pixels fall on a grid: each covers ``factor`` x ``factor`` of its pixels."""

    factor: int
    row: int  # the grid row of the raster's first row (negative when it starts above the grid)
    col: int
    height: int  # in the grid's pixels
    width: int

    def overlaps(self, rows: slice, cols: slice) -> bool:
        return self.row < rows.stop and rows.start < self.row + self.height and self.col < cols.stop and cols.start < self.col + self.width


def _placement(box, grid: GeoBox) -> Placement | None:
    """How ``box`` lies on ``grid``, if its pixels are whole blocks of the grid's pixels on the grid's lines."""
    if not isinstance(box, GeoBox) or box.crs is None or grid.crs is None or box.crs != grid.crs:
        return None
    a, b, c, d, e, f = box.affine[:6]
    ga, gb, gc, gd, ge, gf = grid.affine[:6]
    if b or d or gb or gd:
        return None
    factor = a / ga
    if round(factor) < 1 or abs(factor - round(factor)) > 1e-9 or abs(e / ge - factor) > 1e-9:
        return None
    col, row = (c - gc) / ga, (f - gf) / ge
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    factor = round(factor)
    return Placement(factor, round(row), round(col), box.shape.y * factor, box.shape.x * factor)


def _solar_days(parsed, geobox: GeoBox) -> dict[dt.date, list[int]]:
    """Scene indices per solar day at the request's centre, days in order, scenes in the given order
    (odc-stac's ``groupby="solar_day"`` with ``preserve_original_order``)."""
    ((lon, _),) = geobox.extent.centroid.to_crs("epsg:4326").points
    days: dict[dt.date, list[int]] = {}
    for index, item in enumerate(parsed):
        days.setdefault(item.solar_date_at(lon).date(), []).append(index)
    return dict(sorted(days.items()))


def _asset_read(source) -> AssetRead:
    extra = source.driver_data if isinstance(source.driver_data, dict) else {}
    override = extra.get("nodata")
    fallback = source.meta.nodata if source.meta is not None else None
    return AssetRead(
        uri=source.uri,
        band=source.band,
        nodata=override if override is not None else fallback,
        nodata_override=override is not None,
        offset=float(extra.get("offset", 0.0)),
    )


def _sizes(length: int, chunk: int) -> tuple[int, ...]:
    return tuple(min(chunk, length - start) for start in range(0, length, chunk))


def read_chunk(read: ChunkRead) -> np.ndarray:
    chunk = np.empty((1, len(read.bands), *read.geobox.shape.yx), dtype=np.float32)
    with read.driver.environment():
        for plane, sources in zip(chunk[0], read.bands):
            _mosaic(read.driver, sources, read.geobox, plane)
    return chunk


def _mosaic(driver: ArchiveDriver, sources: tuple[AssetRead, ...], box: GeoBox, plane: np.ndarray) -> None:
    """Fill ``plane`` from the scenes of one day, newest first: each later (older) scene only fills
    what the newer ones left empty, and what none covers is NaN."""
    empty = True
    for source in sources:
        part = _read_asset(driver, source, box, plane if empty else None)
        if part is None:
            continue
        region, values = part
        if empty:
            if values is not plane:
                plane.fill(np.nan)
                plane[region] = values
            empty = False
        else:
            target = plane[region]
            np.copyto(target, values, where=np.isnan(target))
    if empty:
        plane.fill(np.nan)


def _read_asset(driver: ArchiveDriver, source: AssetRead, chunk: GeoBox, out: np.ndarray | None):
    """The asset's pixels in ``chunk`` as float32 with NaN for nodata, and where they go in it;
    straight into ``out`` (then the returned values are ``out``) when they fill all of it.

    The window comes from the file's own grid, not the STAC item's: an item whose ``proj:``
    fields are wrong still reads right (a file off the chunk's grid is warped, as odc-stac would).
    """
    try:
        # DatasetReader rather than rasterio.open: the collection's environment is already entered,
        # and open's own environment handling costs as much as the open itself.
        with driver.gdal_path(source.uri) as path, DatasetReader(path, sharing=False) as dataset:
            nodata = source.nodata
            if not source.nodata_override and dataset.nodatavals[source.band - 1] is not None:
                nodata = dataset.nodatavals[source.band - 1]
            placement = _placement(GeoBox(dataset.shape, dataset.transform, dataset.crs), chunk)
            if placement is None:
                region, values = (slice(None), slice(None)), _warped(dataset, source.band, nodata, chunk)
            else:
                part = _window(dataset, source.band, nodata, placement, chunk, out)
                if part is None:
                    return None
                region, values = part
    except rasterio.errors.RasterioError as error:
        raise read_failure(error, source.uri, driver.label) from None
    if source.offset:
        # NaN stays NaN through both: only valid digital numbers lose the offset.
        np.subtract(values, source.offset, out=values)
        np.maximum(values, 0, out=values)
    return region, values


# Types whose every value float32 holds exactly: GDAL may convert them while it decodes.
_EXACT_IN_FLOAT32 = {"uint8", "int8", "uint16", "int16", "float32"}


def _window(dataset, band: int, nodata: float | None, placement: Placement, chunk: GeoBox, out: np.ndarray | None):
    """Read the raster's pixels under ``chunk``; coarse pixels are converted, then repeated."""
    k = placement.factor
    top, left = max(placement.row, 0), max(placement.col, 0)
    bottom = min(placement.row + placement.height, chunk.shape.y)
    right = min(placement.col + placement.width, chunk.shape.x)
    if bottom <= top or right <= left:
        return None
    region = (slice(top, bottom), slice(left, right))
    # the raster's pixels that cover chunk rows top..bottom and columns left..right
    row0, col0 = (top - placement.row) // k, (left - placement.col) // k
    row1, col1 = -(-(bottom - placement.row) // k), -(-(right - placement.col) // k)
    window = Window(col0, row0, col1 - col0, row1 - row0)
    whole = (bottom - top, right - left) == chunk.shape.yx
    if k == 1 and whole and out is not None and dataset.dtypes[band - 1] in _EXACT_IN_FLOAT32:
        dataset.read(band, window=window, out=out)
        if nodata is not None and not np.isnan(nodata):
            np.copyto(out, np.float32(np.nan), where=out == np.float32(nodata))
        return region, out
    pixels = dataset.read(band, window=window)
    values = pixels.astype(np.float32)
    if nodata is not None and not np.isnan(nodata):
        np.copyto(values, np.float32(np.nan), where=pixels == nodata)
    if k > 1:
        # each coarse pixel becomes a k x k block (nearest neighbour, as a warp would give)
        h, w = values.shape
        dy, dx = top - placement.row - row0 * k, left - placement.col - col0 * k
        if whole and out is not None and (dy, dx) == (0, 0) and (h * k, w * k) == out.shape:
            out.reshape(h, k, w, k)[...] = values[:, None, :, None]  # one pass, straight into the chunk
            return region, out
        values = np.broadcast_to(values[:, None, :, None], (h, k, w, k)).reshape(h * k, w * k)
        values = values[dy : dy + bottom - top, dx : dx + right - left]  # cut to the chunk's pixels
    return region, values


def _warped(dataset, band: int, nodata: float | None, chunk: GeoBox) -> np.ndarray:
    values = np.full(chunk.shape.yx, np.nan, dtype=np.float32)
    rasterio.warp.reproject(
        rasterio.band(dataset, band),
        values,
        src_nodata=nodata,
        dst_transform=chunk.transform,
        dst_crs=chunk.crs.to_wkt(),
        dst_nodata=np.nan,
        resampling=Resampling.nearest,
    )
    return values
