"""GeoTIFF output: Cloud-Optimized, one raster band per label of the non-spatial dimensions."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr

from terracube.cube import DIM_T, DIM_X, DIM_Y, is_raster_cube
from terracube.errors import ProcessParameterInvalid


def _label(value) -> str:
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="D"))
    return str(value)


def write_gtiff(data, directory: Path, options: dict) -> list[Path]:
    if not is_raster_cube(data):
        raise ProcessParameterInvalid("GTiff needs a raster data cube with x and y dimensions; use JSON for other values.")
    cube: xr.DataArray = data
    geobox = cube.odc.geobox
    others = [dim for dim in cube.dims if dim not in (DIM_Y, DIM_X)]
    # t before bands, as CDSE orders raster bands of a multi-date GeoTIFF.
    others.sort(key=lambda dim: 0 if dim == DIM_T else 1)
    cube = cube.transpose(*others, DIM_Y, DIM_X)
    values = np.asarray(cube.compute().values)
    if values.dtype == np.float64:
        values = values.astype(np.float32)
    elif values.dtype == bool:
        values = values.astype(np.uint8)
    stacked = values.reshape((-1,) + values.shape[-2:])
    labels = [[_label(value) for value in cube[dim].values] for dim in others]
    descriptions = ["_".join(combo) for combo in itertools.product(*labels)] or ["band_1"]
    nodata = np.nan if np.issubdtype(stacked.dtype, np.floating) else cube.attrs.get("nodata")
    path = directory / f"{options.get('filename_prefix', 'openEO')}.tif"
    profile = {
        "driver": "COG",
        "width": stacked.shape[2],
        "height": stacked.shape[1],
        "count": stacked.shape[0],
        "dtype": stacked.dtype.name,
        "crs": geobox.crs.to_wkt() if geobox.crs is not None else None,
        "transform": geobox.affine,
        "nodata": nodata,
        "compress": "deflate",
        "blocksize": 512,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(stacked)
        for index, description in enumerate(descriptions, start=1):
            dst.set_band_description(index, description)
    return [path]
