"""JSON output for scalars, arrays and small cubes; nodata and NaN become null.

A vector cube's ``geometry`` labels (shapely shapes, aggregate_spatial's result) are written as
GeoJSON geometry objects, in the cube's CRS as they were given.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr


def to_jsonable(value: Any, compute: dict | None = None) -> Any:
    """``value`` as JSON values; ``compute``: the keyword arguments of ``dask.compute`` for lazy cubes in it."""
    if isinstance(value, xr.DataArray):
        value = value.compute(**(compute or {}))
        if value.ndim == 0:
            return to_jsonable(value.values)
        return {
            "dims": list(value.dims),
            "coords": {dim: to_jsonable(value[dim].values) for dim in value.dims if dim in value.coords},
            "data": to_jsonable(value.values),
        }
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.datetime64):
            return [str(np.datetime_as_string(v, unit="s")) + "Z" for v in value.ravel()]
        return [to_jsonable(v) for v in value.tolist()] if value.ndim else to_jsonable(value.item())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if hasattr(value, "__geo_interface__"):
        return to_jsonable(value.__geo_interface__)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, compute) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, compute) for k, v in value.items()}
    return value


def write_json(data: Any, directory: Path, options: dict, compute: dict | None = None) -> list[Path]:
    path = directory / f"{options.get('filename_prefix', 'openEO')}.json"
    path.write_text(json.dumps(to_jsonable(data, compute)), encoding="utf-8")
    return [path]
