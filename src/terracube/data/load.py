"""Read STAC items into a lazy data cube with odc-stac.

The geobox is decided by the caller (see ``grid``), so only the requested window is read; chunks
follow the configured size so a dask task reads a handful of COG tiles.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import odc.stac
import pandas as pd
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox

from terracube.cube import DIM_BANDS, DIM_T

# Sentinel-2 processing baseline 04.00 (from 25 January 2022) adds 1000 to every reflectance
# (BOA_ADD_OFFSET = -1000). CDSE's SENTINEL2_L2A removes it so old and new scenes compare.
BASELINE_OFFSET = 1000.0


def needs_baseline_offset(item: pystac.Item) -> bool:
    if item.properties.get("earthsearch:boa_offset_applied") is True:
        return False  # Earth Search already harmonised it
    baseline = item.properties.get("s2:processing_baseline")
    if baseline is not None:
        try:
            return float(baseline) >= 4.0
        except ValueError:
            return False
    return False


def gdal_environment(options: dict[str, str], credentials: dict[str, str]) -> dict[str, str]:
    """GDAL settings for reading COGs over HTTP/S3: fail fast, retry, read only what is needed."""
    env = {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "GDAL_HTTP_MAX_RETRY": "3",
        "GDAL_HTTP_RETRY_DELAY": "0.5",
        "GDAL_HTTP_TIMEOUT": "30",
        "GDAL_HTTP_CONNECTTIMEOUT": "10",
        "GDAL_HTTP_MULTIRANGE": "YES",
        "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.jp2,.JP2",
        "VSI_CACHE": "TRUE",
        **options,
    }
    for gdal_name, variable in credentials.items():
        if variable in os.environ:
            env[gdal_name] = os.environ[variable]
    return env


def load_items(
    items: list[pystac.Item],
    bands: dict[str, str],
    geobox: GeoBox,
    chunk_size: int,
    harmonize: set[str] | None = None,
    patch_url: Callable[[str], str] | None = None,
) -> xr.DataArray:
    """``bands`` maps openEO band names to asset keys; ``harmonize`` names reflectance bands to offset."""
    harmonize = harmonize or set()
    offset_items = [item for item in items if harmonize and needs_baseline_offset(item)]
    plain_items = [item for item in items if item not in offset_items]
    parts = []
    for group, offset in ((plain_items, False), (offset_items, True)):
        if not group:
            continue
        cube = _load(group, bands, geobox, chunk_size, patch_url)
        if offset:
            shift = xr.DataArray(
                [BASELINE_OFFSET if band in harmonize else 0.0 for band in cube[DIM_BANDS].values],
                dims=[DIM_BANDS],
                coords={DIM_BANDS: cube[DIM_BANDS].values},
            ).astype("float32")
            cube = (cube - shift).clip(min=0).where(cube.notnull())
        parts.append(cube)
    cube = parts[0] if len(parts) == 1 else xr.concat(parts, dim=DIM_T).sortby(DIM_T)
    cube.attrs = {"nodata": np.nan}
    cube.name = None
    return cube


def _load(items, bands: dict[str, str], geobox: GeoBox, chunk_size: int, patch_url) -> xr.DataArray:
    dataset = odc.stac.load(
        items,
        bands=list(bands.values()),
        geobox=geobox,
        chunks={"x": chunk_size, "y": chunk_size},
        dtype="float32",
        resampling="nearest",
        # One label per day, as CDSE does: adjacent tiles of one pass are mosaicked.
        groupby="solar_day",
        fail_on_error=True,
        patch_url=patch_url,
    )
    dataset = dataset.rename({asset: name for name, asset in bands.items() if asset != name})
    cube = dataset[list(bands)].to_array(dim=DIM_BANDS).rename({"time": DIM_T}).transpose(DIM_T, DIM_BANDS, "y", "x")
    # Day labels at midnight UTC, as CDSE labels its Sentinel-2 cubes.
    days = pd.DatetimeIndex(cube[DIM_T].values).floor("D")
    return cube.assign_coords({DIM_T: days.values.astype("datetime64[ns]")})
