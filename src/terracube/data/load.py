"""Read STAC items into a lazy data cube: directly when the assets lie on the request's grid
(``aligned``, the usual Sentinel-2 case), with odc-stac otherwise.

The geobox is decided by the caller (see ``grid``), so only the requested window is read; chunks
follow the configured size so a dask task reads a handful of COG tiles. How each asset is read
(GDAL environment, credentials, URL signing, the Sentinel-2 baseline offset, nodata) is the
collection's business and travels with the dask graph in an ``ArchiveDriver`` (see ``reader``).

Values are digital numbers in float32 with NaN for nodata, as CDSE serves ``SENTINEL2_L2A``:
``raster:bands`` ``scale``/``offset`` are not applied (only the baseline-04.00 offset is removed,
so that scenes before and after compare).
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import odc.stac
import pandas as pd
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox

from terracube.cube import DIM_BANDS, DIM_T
from terracube.data.aligned import load_aligned
from terracube.data.collections_file import CollectionConfig
from terracube.data.fetch_guard import FetchGuard
from terracube.data.reader import BASELINE_OFFSET, ArchiveDriver, SourceParser, gdal_environment, needs_baseline_offset
from terracube.settings import Settings

__all__ = ["ReadOptions", "read_options", "load_items", "BASELINE_OFFSET", "needs_baseline_offset"]


@dataclass(frozen=True)
class ReadOptions:
    """How one source's assets are read."""

    gdal: dict[str, str] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)
    sign: str | None = None
    harmonize_assets: frozenset[str] = frozenset()  # asset keys whose baseline-04.00 offset is removed
    nodata: dict[str, float] = field(default_factory=dict)  # asset key -> nodata, over the items' own
    label: str = ""
    guard: FetchGuard | None = None  # the items are a user's (load_stac): their assets are read through the fetch guard


def read_options(config: CollectionConfig | None, settings: Settings, label: str = "", harmonize_assets=frozenset(), nodata=None,
                 guard: FetchGuard | None = None) -> ReadOptions:
    """The read options of a collection (``CollectionConfig`` or None) under the server's settings;
    ``guard`` for the items of a user's URL."""
    timeout = float(settings.cog_timeout)
    retries = int(settings.cog_retries)
    options = dict(config.gdal_options) if config is not None else {}
    credentials = {}
    for gdal_name, variable in (config.credentials if config is not None else {}).items():
        if os.environ.get(variable):
            credentials[gdal_name] = os.environ[variable]
    return ReadOptions(
        gdal=gdal_environment(options, timeout, retries),
        credentials=credentials,
        sign=config.sign if config is not None else None,
        harmonize_assets=frozenset(harmonize_assets),
        nodata=dict(nodata or {}),
        label=label,
        guard=guard,
    )


def load_items(
    items: list[pystac.Item],
    bands: dict[str, str],
    geobox: GeoBox,
    chunk_size: int,
    options: ReadOptions,
    resolutions: dict[str, float] | None = None,
    warp: bool = False,
    eager: bool = False,
) -> xr.DataArray:
    """``bands`` maps openEO band names to asset keys (``asset.N`` for band N of a multi-band asset);
    ``resolutions`` gives each band's native pixel size, so coarser bands can be read natively.
    ``warp``: the grid is a map tile's, whose scenes are warped onto it directly when they do not lie on it;
    ``eager``: a tile being drawn, whose warped pixels of one day are read at once (numpy, no dask graph).

    The scenes of one day are mosaicked into one time label, newest on top (CDSE's "most recent
    first"); adjacent tiles of one pass hold the same pixels where they overlap.
    """
    driver = _driver(options)
    newest_first = sorted(items, key=lambda item: _timestamp(item), reverse=True)
    # Every tile of a map layer, and every request of a tutorial, loads the same few scenes: their
    # parse is kept (``parsed_items``).
    parsed = parsed_items(newest_first, options, driver)
    # Assets on the request's own grid are read directly (the fast, common case); others through odc-stac.
    cube = load_aligned(newest_first, bands, geobox, chunk_size, driver, parsed=parsed)
    if cube is None and warp:
        # A map tile (``warp``: a grid of a tile's size): warped directly, one task per day (``warped``).
        from terracube.data.warped import load_warped

        cube = load_warped(newest_first, bands, geobox, driver, parsed=parsed, eager=eager)
    if cube is None:
        cube = _load_by_resolution(newest_first, bands, geobox, chunk_size, driver, resolutions or {})
    # Day labels at midnight UTC, as CDSE labels its Sentinel-2 cubes (the direct and warped reads give them so already).
    labels = cube[DIM_T].values
    days = labels.astype("datetime64[D]").astype("datetime64[ns]")
    if not np.array_equal(days, labels):
        cube = cube.assign_coords({DIM_T: days})
    cube.attrs = {"nodata": np.nan}
    cube.name = None
    return cube


def _timestamp(item: pystac.Item) -> pd.Timestamp:
    from terracube.data.catalog import item_sort_key

    return pd.Timestamp(item_sort_key(item))


class _ParsedItems:
    """odc-stac's parse of the scenes a load reads, kept for the next load of the same scenes.

    A layer's tiles, and a tutorial's requests, load the same few scenes again and again (a catalog
    keeps its items in memory, so they are the same objects), and parsing them was about a tenth of
    a tile's time and a fifth of a small load's. A parse
    depends on the items in their order (odc-stac gathers the collection's metadata over them) and
    on the parser's settings, so that is the key: the items' identities and the read options'
    nodata and baseline settings. An entry refers to its items weakly and counts only while they
    live, so an id reused by a later object never meets an old parse, and the items of a STAC API's
    search (new objects every time) are not kept alive by it. Nor are their parses: an entry whose
    items are gone is dropped with the next one stored (a busy server's STAC API searches, of
    thousands of scenes each, would otherwise hold ``size`` parses nobody can use); beyond ``size``
    the least recently used entries go.
    """

    def __init__(self, size: int = 512):
        self.size = size
        self._entries: OrderedDict[tuple, tuple[tuple, list]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, items: list, options: ReadOptions, driver: ArchiveDriver) -> list:
        key = (tuple(map(id, items)), options.harmonize_assets, tuple(sorted(options.nodata.items())))
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and all(ref() is item for ref, item in zip(entry[0], items)):
                self._entries.move_to_end(key)
                return entry[1]
        parsed = list(odc.stac.parse_items(items, md_plugin=driver.md_parser))
        with self._lock:
            # The items of one search live and die together: the first one's ref tells.
            for stale in [k for k, (refs, _) in self._entries.items() if refs and refs[0]() is None]:
                del self._entries[stale]
            self._entries[key] = (tuple(weakref.ref(item) for item in items), parsed)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return parsed


parsed_items = _ParsedItems().get


def _driver(options: ReadOptions) -> ArchiveDriver:
    assets: dict[str, Any] = {asset: {"nodata": value} for asset, value in options.nodata.items()}
    parser = SourceParser({"*": {"assets": assets}} if assets else {}, options.harmonize_assets, options.nodata)
    return ArchiveDriver(options.gdal, options.credentials, options.sign, md_parser=parser, label=options.label, guard=options.guard)


def _load_by_resolution(items, bands: dict[str, str], geobox: GeoBox, chunk_size: int, driver, resolutions) -> xr.DataArray:
    """Bands whose native grid is an aligned whole multiple of the target's (20 and 60 m Sentinel-2
    bands on a 10 m request) are read at their own resolution and repeated into the target pixels:
    the same nearest-neighbour values as a warp, several times faster."""
    target = abs(geobox.resolution.x)
    groups: dict[int, dict[str, str]] = {}
    for name, asset in bands.items():
        factor = resolutions.get(name, target) / target
        groups.setdefault(int(round(factor)) if _aligned_multiple(geobox, factor) else 1, {})[name] = asset
    step = math.lcm(*groups)
    if step > 1 and chunk_size % step == 0:
        # Read every band on a grid that the coarsest pixels tile exactly, widened around the
        # request, and crop once at the end: the bands then share their chunk boundaries, where
        # a coarse band cropped on its own would need rechunking into thousands of small copies.
        read_box = _widened(geobox, step)
    else:
        read_box = geobox
    parts = []
    for factor, group in groups.items():
        if factor == 1:
            parts.append(_load(items, group, read_box, chunk_size, driver))
        else:
            parts.append(_load_coarse(items, group, read_box, factor, chunk_size, driver))
    cube = parts[0] if len(parts) == 1 else xr.concat(parts, dim=DIM_BANDS, join="exact")
    if read_box is not geobox:
        row0 = round((read_box.affine.f - geobox.affine.f) / abs(geobox.affine.e))
        col0 = round((geobox.affine.c - read_box.affine.c) / geobox.affine.a)
        cube = cube.isel(y=slice(row0, row0 + geobox.shape.y), x=slice(col0, col0 + geobox.shape.x))
    if list(cube[DIM_BANDS].values) == list(bands):
        return cube  # already in the asked order: a selection by list would add a task per chunk
    return cube.sel({DIM_BANDS: list(bands)})


def _widened(geobox: GeoBox, step: int) -> GeoBox:
    """``geobox`` grown outward to whole pixels of ``step`` times its resolution."""
    from affine import Affine

    from terracube.data.grid import snap_outward

    fine = abs(geobox.resolution.x)
    west, south, east, north = snap_outward(tuple(geobox.boundingbox), fine * step)
    shape = (round((north - south) / fine), round((east - west) / fine))
    return GeoBox(shape, Affine(fine, 0, west, 0, -fine, north), geobox.crs)


def _aligned_multiple(geobox: GeoBox, factor: float) -> bool:
    if factor <= 1 or abs(factor - round(factor)) > 1e-9 or geobox.crs is None or not geobox.crs.units[0].startswith("m"):
        return False
    affine = geobox.affine
    return affine.b == 0 and affine.d == 0 and affine.a == -affine.e


def _load_coarse(items, bands: dict[str, str], geobox: GeoBox, factor: int, chunk_size: int, driver) -> xr.DataArray:
    from affine import Affine
    from odc.geo.xr import xr_coords

    from terracube.data.grid import snap_outward

    fine = abs(geobox.resolution.x)
    coarse = fine * factor
    west, south, east, north = geobox.boundingbox
    c_west, c_south, c_east, c_north = snap_outward((west, south, east, north), coarse)
    shape = (round((c_north - c_south) / coarse), round((c_east - c_west) / coarse))
    coarse_box = GeoBox(shape, Affine(coarse, 0, c_west, 0, -coarse, c_north), geobox.crs)
    cube = _load(items, bands, coarse_box, max(1, chunk_size // factor), driver)
    data = cube.data.repeat(factor, axis=-2).repeat(factor, axis=-1)
    row0, col0 = round((c_north - north) / fine), round((west - c_west) / fine)
    height, width = geobox.shape.y, geobox.shape.x
    data = data[..., row0 : row0 + height, col0 : col0 + width]
    coords = {**{k: v for k, v in cube.coords.items() if k not in ("y", "x", "spatial_ref")}, **xr_coords(geobox)}
    fine_cube = xr.DataArray(data, dims=cube.dims, coords=coords)
    return fine_cube.chunk({"y": chunk_size, "x": chunk_size})


def _load(items, bands: dict[str, str], geobox: GeoBox, chunk_size: int, driver) -> xr.DataArray:
    assets = list(dict.fromkeys(bands.values()))
    dataset = odc.stac.load(
        items,
        bands=assets,
        geobox=geobox,
        chunks={"x": chunk_size, "y": chunk_size},
        dtype="float32",
        nodata=np.nan,  # missing pixels are NaN in every cube, whatever the files use
        resampling="nearest",
        # One label per day, as CDSE does: adjacent tiles of one pass are mosaicked, and within a
        # day the items' order (newest first) decides which pixel is on top.
        groupby="solar_day",
        preserve_original_order=True,
        fail_on_error=True,
        driver=driver,
    )
    parts = []
    for name, asset in bands.items():
        part = dataset[asset].expand_dims({DIM_BANDS: [name]})
        part.attrs, part.encoding = {}, {}  # odc-stac's per-variable grid_mapping would clash with the writers'
        parts.append(part)
    cube = xr.concat(parts, dim=DIM_BANDS)
    return cube.rename({"time": DIM_T}).transpose(DIM_T, DIM_BANDS, "y", "x")
