"""Resampling: resample_spatial, resample_cube_spatial, resample_cube_temporal.

Spatial resampling warps with odc-geo (GDAL's resampling kernels through rasterio), lazily for dask
cubes; the target grid is a ``GeoBox``, so the result carries its CRS like every cube. Temporal
resampling picks, per target label, the nearest source label (ties: the earlier one), or with
``valid_within`` the nearest *valid* value per pixel within that many days.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox

from terracube.cube import crs_of, dimension_type
from terracube.errors import ProcessError, ProcessParameterInvalid
from terracube.processes.arrays import python_scalar
from terracube.processes.cubes import cube_attrs, require_cube
from terracube.processes.cubes_apply import spatial_dims
from terracube.processes.env import ProcessEnv
from terracube.processes.limits import check_values

METHODS = {
    "near": "nearest", "bilinear": "bilinear", "cubic": "cubic", "cubicspline": "cubic_spline", "lanczos": "lanczos",
    "average": "average", "mode": "mode", "max": "max", "min": "min", "med": "med", "q1": "q1", "q3": "q3",
    "sum": "sum", "rms": "rms",
}


def _resampling(method: str) -> str:
    if method not in METHODS:
        raise ProcessParameterInvalid(f"'method' must be one of {', '.join(METHODS)}, got {method!r}.")
    return METHODS[method]


def _geobox(data: xr.DataArray):
    if crs_of(data) is None:
        raise ProcessParameterInvalid("The cube has no spatial reference system, so it can't be resampled spatially.")
    return data.odc.geobox


def _warp(data: xr.DataArray, geobox: GeoBox, method: str, env: ProcessEnv | None = None) -> xr.DataArray:
    y, x = spatial_dims(data)
    # The output grid's size is known now: a small read resampled to centimetres must not be built.
    others = data.size // max(1, data.sizes[y] * data.sizes[x])
    check_values(env, float(others) * geobox.shape[0] * geobox.shape[1], f"The resampled cube ({geobox.shape[1]} x {geobox.shape[0]} pixels)")
    moved = data.transpose(..., y, x)
    values = moved if moved.dtype.kind == "f" else moved.astype("float32")
    warped = values.odc.reproject(geobox, resampling=_resampling(method), dst_nodata=np.nan)
    warped = warped.rename({d: n for d, n in zip(warped.odc.spatial_dims, (y, x)) if d != n})
    order = [d for d in data.dims]
    result = warped.transpose(*order)
    result.attrs = cube_attrs(data)
    return result


def _aligned(geobox: GeoBox, resolution: tuple[float, float], align: str) -> GeoBox:
    """A grid of ``resolution`` over the extent of ``geobox``, anchored at the corner ``align`` names."""
    left, bottom, right, top = geobox.extent.boundingbox
    rx, ry = resolution
    columns, rows = (right - left) / rx, (top - bottom) / ry
    if not (math.isfinite(columns) and math.isfinite(rows)):
        raise ProcessParameterInvalid(f"'resolution' {rx} x {ry} is too fine for a grid over this cube.")
    width, height = max(1, math.ceil(columns - 1e-9)), max(1, math.ceil(rows - 1e-9))
    x0 = left if align.endswith("left") else right - width * rx
    y0 = top if align.startswith("upper") else bottom + height * ry
    return GeoBox((height, width), Affine(rx, 0, x0, 0, -ry, y0), geobox.crs)


def resample_spatial(
    data: xr.DataArray, resolution: Any = 0, projection: Any = None, method: str = "near", align: str = "upper-left", *, env: ProcessEnv | None = None
) -> xr.DataArray:
    require_cube(data)
    geobox = _geobox(data)
    if projection is not None:
        crs = f"EPSG:{projection}" if isinstance(projection, int) else projection
        try:
            geobox = geobox.to_crs(crs)
        except Exception as error:  # noqa: BLE001 - pyproj's many errors: the user gave a CRS it can't use
            raise ProcessParameterInvalid(f"'projection' {projection!r} is not a usable CRS: {error}") from error
    values = resolution if isinstance(resolution, (list, tuple)) else [resolution, resolution]
    rx, ry = (float(python_scalar(v) or 0) for v in values)
    if rx < 0 or ry < 0:
        raise ProcessParameterInvalid(f"'resolution' must be positive, got {resolution!r}.")
    if rx or ry:
        native = geobox.resolution
        geobox = _aligned(geobox, (rx or abs(native.x), ry or abs(native.y)), align)
    return _warp(data, geobox, method, env)


def resample_cube_spatial(data: xr.DataArray, target: xr.DataArray, method: str = "near", *, env: ProcessEnv | None = None) -> xr.DataArray:
    require_cube(data)
    require_cube(target, "target")
    geobox = _geobox(target)
    result = _warp(data, geobox, method, env)
    y, x = spatial_dims(data)
    ty, tx = spatial_dims(target)
    return result.assign_coords({y: target.indexes[ty].values, x: target.indexes[tx].values})


# --- resample_cube_temporal -----------------------------------------------------------------


def _temporal_dims(data: xr.DataArray, target: xr.DataArray, dimension: str | None) -> list[str]:
    if dimension is not None:
        if dimension not in data.dims or dimension not in target.dims:
            raise ProcessError("DimensionNotAvailable", f"The dimension '{dimension}' must exist in both cubes.")
        if dimension_type(data, dimension) != "temporal" or dimension_type(target, dimension) != "temporal":
            raise ProcessError("DimensionMismatch", f"The dimension '{dimension}' is not temporal in both cubes.")
        return [dimension]
    shared = [d for d in data.dims if dimension_type(data, d) == "temporal" and d in target.dims and dimension_type(target, d) == "temporal"]
    if not shared:
        raise ProcessError("DimensionMismatch", "The cubes have no temporal dimension of the same name.")
    return shared


def _instants(index: pd.Index) -> np.ndarray:
    stamps = pd.DatetimeIndex(index) if not isinstance(index, pd.DatetimeIndex) else index
    return stamps.tz_localize(None).values.astype("datetime64[ns]") if stamps.tz is not None else stamps.values.astype("datetime64[ns]")


def resample_cube_temporal(data: xr.DataArray, target: xr.DataArray, dimension: str | None = None, valid_within: Any = None) -> xr.DataArray:
    require_cube(data)
    require_cube(target, "target")
    result = data
    for dim in _temporal_dims(data, target, dimension):
        source = _instants(data.indexes[dim]).astype("int64")
        wanted = _instants(target.indexes[dim]).astype("int64")
        distance = np.abs(wanted[:, None] - source[None, :])  # target x source
        # Ties go to the earlier timestamp: a stable sort of the distances, sources in time order.
        ranking = np.argsort(distance, axis=1, kind="stable")
        labels = {dim: target.indexes[dim]}
        if valid_within is None:
            picked = result.isel({dim: ranking[:, 0]}).drop_vars(dim).assign_coords(labels)
        else:
            limit = float(python_scalar(valid_within)) * 86400e9
            picked = None
            for rank in range(len(source)):
                candidate = result.isel({dim: ranking[:, rank]}).drop_vars(dim).assign_coords(labels)
                allowed = xr.DataArray(distance[np.arange(len(wanted)), ranking[:, rank]] <= limit, dims=[dim], coords=labels)
                candidate = candidate.where(allowed)
                picked = candidate if picked is None else picked.fillna(candidate)
        result = picked.transpose(*data.dims)
        result.attrs = cube_attrs(data)
    return result
