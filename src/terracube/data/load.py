"""Read STAC items into a lazy data cube with odc-stac.

The geobox is decided by the caller (see ``grid``), so only the requested window is read; chunks
follow the configured size so a dask task reads a handful of COG tiles.
"""

from __future__ import annotations

import numpy as np
import odc.stac
import pandas as pd
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox

from terracube.cube import DIM_BANDS, DIM_T


def load_items(items: list[pystac.Item], bands: list[str], geobox: GeoBox, chunk_size: int) -> xr.DataArray:
    dataset = odc.stac.load(
        items,
        bands=bands,
        geobox=geobox,
        chunks={"x": chunk_size, "y": chunk_size},
        dtype="float32",
        resampling="nearest",
        # One label per day, as CDSE does: adjacent tiles of one pass are mosaicked.
        groupby="solar_day",
        fail_on_error=True,
    )
    cube = dataset.to_array(dim=DIM_BANDS).rename({"time": DIM_T}).transpose(DIM_T, DIM_BANDS, "y", "x")
    # Day labels at midnight UTC, as CDSE labels its Sentinel-2 cubes.
    days = pd.DatetimeIndex(cube[DIM_T].values).floor("D")
    cube = cube.assign_coords({DIM_T: days.values.astype("datetime64[ns]")})
    cube.attrs = {"nodata": np.nan}
    cube.name = None
    return cube
