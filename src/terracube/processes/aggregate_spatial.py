"""aggregate_spatial: zonal statistics, a raster cube in, a vector cube out.

For each geometry, the pixels it covers (``geometries.pixel_mask``) are gathered lazily into one
dimension and reduced with ``reduce_dimension`` (so ``mean`` and friends take xarray's reductions).
The result replaces ``y`` and ``x`` by a ``geometry`` dimension whose labels are the given
geometries, unchanged and in their CRS, indexed with xvec so that ``.xvec`` and geopandas work on
it; the features' properties travel in ``attrs["properties"]``. ``target_dimension`` adds the
labels ``value``, ``total_count`` and ``valid_count``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from terracube.errors import ProcessError
from terracube.processes.arrays import float_dtype_for
from terracube.processes.cubes import cube_attrs, reduce_dimension, require_callback, require_cube
from terracube.processes.cubes_dimensions import dimension_types, with_types
from terracube.processes.geometries import GEOMETRY_DIM, Geometries, geometries_from, masks_on

PIXELS = "__pixels__"


def _pixels_of(data: xr.DataArray, y: str, x: str, mask: np.ndarray) -> xr.DataArray:
    """The cube's values at the masked pixels, along one last dimension (no labels)."""
    rows, cols = np.nonzero(mask)
    window = data.isel({y: slice(rows.min(), rows.max() + 1), x: slice(cols.min(), cols.max() + 1)})
    stacked = window.stack({PIXELS: (y, x)})
    stacked = stacked.drop_vars([c for c in stacked.coords if PIXELS in stacked.coords[c].dims])
    flat = np.nonzero(mask[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1].ravel())[0]
    return stacked.isel({PIXELS: flat}).transpose(..., PIXELS)


def vector_cube(values: xr.DataArray, geometries: Geometries) -> xr.DataArray:
    """``values`` (geometry first) with the geometries as an xvec-indexed coordinate."""
    import xvec  # noqa: F401 - registers the .xvec accessor

    labels = np.empty(len(geometries), dtype=object)
    labels[:] = geometries.shapes
    cube = values.assign_coords({GEOMETRY_DIM: labels})
    cube = cube.xvec.set_geom_indexes(GEOMETRY_DIM, crs=geometries.crs)
    cube.attrs["properties"] = geometries.properties
    return cube


def aggregate_spatial(data: xr.DataArray, geometries: Any, reducer: Any, target_dimension: str | None = None, context: Any = None) -> xr.DataArray:
    require_cube(data)
    require_callback(reducer, "reducer")
    shapes = geometries_from(geometries)
    y, x, masks = masks_on(data, shapes)
    if target_dimension is not None and target_dimension in data.dims:
        raise ProcessError("TargetDimensionExists", f"The cube has a dimension '{target_dimension}' already.")
    template = data.isel({y: 0, x: 0}, drop=True)
    dtype = data.dtype if data.dtype.kind == "f" else float_dtype_for(data.dtype)
    pieces = []
    for mask in masks:
        if not mask.any():
            value = xr.full_like(template, np.nan, dtype=dtype)
            total = xr.full_like(template, 0, dtype=dtype)
            valid = total
        else:
            pixels = _pixels_of(data, y, x, mask)
            pixels.attrs = {**cube_attrs(data), "dimension_types": {**dimension_types(data), PIXELS: "other"}}
            value = reduce_dimension(pixels, reducer, PIXELS, context)
            total = xr.full_like(template, int(mask.sum()), dtype=dtype)
            valid = pixels.notnull().sum(PIXELS).astype(dtype)
        if target_dimension is not None:
            value = xr.concat([value.astype(dtype), total, valid], dim=target_dimension, coords="minimal", compat="override")
            value = value.assign_coords({target_dimension: ["value", "total_count", "valid_count"]})
        pieces.append(value.drop_vars([c for c in value.coords if c not in value.dims]))
    if pieces:
        stacked = xr.concat(pieces, dim=GEOMETRY_DIM, coords="minimal", compat="override")
    else:
        stacked = template.expand_dims({GEOMETRY_DIM: 0}).astype(dtype)
    others = [d for d in data.dims if d not in (y, x)]
    stacked = stacked.transpose(GEOMETRY_DIM, *others, *([target_dimension] if target_dimension else []))
    types = {GEOMETRY_DIM: "geometry", **{d: t for d, t in dimension_types(data).items() if d not in (y, x)}}
    if target_dimension:
        types[target_dimension] = "other"
    stacked.attrs = {k: v for k, v in data.attrs.items() if k not in ("dimension_types",)}
    return vector_cube(with_types(stacked, types), shapes)
