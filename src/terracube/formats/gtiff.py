"""GeoTIFF output: Cloud-Optimized, one raster band per label of the non-spatial dimensions.

Large cubes are computed and written strip by strip (one row of dask chunks at a time), so
memory stays bounded by the chunk size rather than the area; the tiled GeoTIFF is then copied
into a COG with overviews.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
import xarray as xr
from rasterio.windows import Window

from terracube.cube import DIM_T, DIM_X, DIM_Y, is_raster_cube
from terracube.errors import ProcessParameterInvalid

STRIP_ROWS = 1024


def _label(value) -> str:
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="D"))
    return str(value)


def _output_dtype(dtype: np.dtype) -> np.dtype:
    if dtype == np.float64:
        return np.dtype("float32")
    if dtype == bool:
        return np.dtype("uint8")
    return np.dtype(dtype)


def _strips(cube: xr.DataArray) -> list[tuple[int, int]]:
    """Row ranges that follow the dask chunks along y, so no chunk is read twice."""
    if cube.chunks is not None:
        sizes = cube.chunks[cube.get_axis_num(DIM_Y)]
    else:
        sizes = [STRIP_ROWS] * (cube.sizes[DIM_Y] // STRIP_ROWS) + ([cube.sizes[DIM_Y] % STRIP_ROWS] if cube.sizes[DIM_Y] % STRIP_ROWS else [])
    edges = np.cumsum([0, *sizes])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def write_gtiff(data, directory: Path, options: dict) -> list[Path]:
    if not is_raster_cube(data):
        raise ProcessParameterInvalid("GTiff needs a raster data cube with x and y dimensions; use JSON for other values.")
    cube: xr.DataArray = data
    geobox = cube.odc.geobox
    others = [dim for dim in cube.dims if dim not in (DIM_Y, DIM_X)]
    # t before bands, as CDSE orders raster bands of a multi-date GeoTIFF.
    others.sort(key=lambda dim: 0 if dim == DIM_T else 1)
    cube = cube.transpose(*others, DIM_Y, DIM_X)
    labels = [[_label(value) for value in cube[dim].values] for dim in others]
    descriptions = ["_".join(combo) for combo in itertools.product(*labels)] or ["band_1"]
    dtype = _output_dtype(cube.dtype)
    nodata = np.nan if np.issubdtype(dtype, np.floating) else cube.attrs.get("nodata")
    height, width = cube.sizes[DIM_Y], cube.sizes[DIM_X]
    profile = {
        "width": width,
        "height": height,
        "count": len(descriptions),
        "dtype": dtype.name,
        "crs": geobox.crs.to_wkt() if geobox.crs is not None else None,
        "transform": geobox.affine,
        "nodata": nodata,
    }
    path = directory / f"{options.get('filename_prefix', 'openEO')}.tif"
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        tiled = Path(scratch) / "tiled.tif"
        with rasterio.open(tiled, "w", driver="GTiff", tiled=True, blockxsize=512, blockysize=512, compress="zstd", **profile) as dst:
            for row0, row1 in _strips(cube):
                strip = np.asarray(cube.isel({DIM_Y: slice(row0, row1)}).values).astype(dtype, copy=False)
                dst.write(strip.reshape((-1, row1 - row0, width)), window=Window(0, row0, width, row1 - row0))
            for index, description in enumerate(descriptions, start=1):
                dst.set_band_description(index, description)
        rasterio.shutil.copy(tiled, path, driver="COG", compress="deflate", blocksize=512, overview_resampling="nearest")
    return [path]
