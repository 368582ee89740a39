"""Raster processes driven by polygons: mask_polygon, filter_spatial, apply_polygon.

The geometries are rasterised once on the cube's grid (a small boolean array per geometry, see
``geometries``); the cube itself stays lazy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from terracube.errors import ProcessError
from terracube.processes.arrays import float_dtype_for
from terracube.processes.cubes import like_cube, replace_where, require_callback, require_cube
from terracube.processes.geometries import as_mask_array, geometries_from, masks_on, require_polygons


def _replace(data: xr.DataArray, keep: xr.DataArray, replacement: Any) -> xr.DataArray:
    """``data`` where ``keep``, else ``replacement`` (no-data when null); no-data stays no-data."""
    # No-data stays no-data, whatever the replacement (the spec leaves it untouched).
    return replace_where(data, ~keep & data.notnull(), replacement)


def mask_polygon(data: xr.DataArray, mask: Any, replacement: Any = None, inside: bool = False) -> xr.DataArray:
    require_cube(data)
    geometries = geometries_from(mask, "mask")
    require_polygons(geometries, "mask")
    y, x, masks = masks_on(data, geometries)
    covered = np.logical_or.reduce(masks) if masks else np.zeros((data.sizes[y], data.sizes[x]), dtype=bool)
    keep = ~covered if inside else covered
    return _replace(data, as_mask_array(keep, data, y, x), replacement)


def filter_spatial(data: xr.DataArray, geometries: Any) -> xr.DataArray:
    """Crop to the pixels of the geometries' bounding box, and set the pixels outside them to no-data."""
    require_cube(data)
    shapes = geometries_from(geometries)
    y, x, masks = masks_on(data, shapes)
    covered = np.logical_or.reduce(masks) if masks else np.zeros((data.sizes[y], data.sizes[x]), dtype=bool)
    rows, cols = np.nonzero(covered.any(axis=1))[0], np.nonzero(covered.any(axis=0))[0]
    if not len(rows):
        return data.isel({y: slice(0, 0), x: slice(0, 0)})
    window = {y: slice(rows[0], rows[-1] + 1), x: slice(cols[0], cols[-1] + 1)}
    cropped = data.isel(window)
    keep = as_mask_array(covered[window[y], window[x]], cropped, y, x)
    return _replace(cropped, keep, None)


def apply_polygon(data: xr.DataArray, geometries: Any, process: Any, mask_value: Any = None, context: Any = None) -> xr.DataArray:
    """Run ``process`` on each polygon's window (pixels outside it set to ``mask_value``), stitch the results.

    Pixels outside every polygon are no-data in the result; overlapping polygons are an error, as a
    pixel would be processed twice.
    """
    require_cube(data)
    require_callback(process, "process")
    shapes = geometries_from(geometries)
    require_polygons(shapes, "geometries")
    y, x, masks = masks_on(data, shapes)
    if masks and (np.sum(masks, axis=0) > 1).any():
        raise ProcessError("GeometriesOverlap", "The polygons overlap; a pixel may belong to one polygon only.")
    dtype = data.dtype if data.dtype.kind == "f" else float_dtype_for(data.dtype)
    result = xr.full_like(data, np.nan, dtype=dtype)
    for mask in masks:
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        if not len(rows):
            continue
        window = {y: slice(rows[0], rows[-1] + 1), x: slice(cols[0], cols[-1] + 1)}
        sub = data.isel(window)
        inside = as_mask_array(mask[window[y], window[x]], sub, y, x)
        answer = like_cube(process(data=_replace(sub, inside, mask_value), context=context), sub)
        placed = answer.where(inside).reindex_like(result)
        result = xr.where(as_mask_array(mask, data, y, x), placed, result)
    return like_cube(result.transpose(*data.dims).astype(dtype, copy=False), data)
