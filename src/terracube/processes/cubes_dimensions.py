"""Processes on a cube's dimensions and labels: add_dimension, drop_dimension, rename_dimension,
dimension_labels, filter_labels, trim_cube, create_data_cube.

A dimension's openEO type lives in ``attrs["dimension_types"]`` (``cube.dimension_type`` falls back
to the names ``t``, ``bands``, ``y``, ``x``), so a renamed ``t`` stays temporal and an added
``bands`` dimension is of type bands whatever its name.
"""

from __future__ import annotations

from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from terracube.cube import dimension_type, with_types
from terracube.errors import ProcessError, ProcessParameterInvalid
from terracube.processes.arrays import is_true, python_scalar
from terracube.processes.cubes import cube_attrs, require_callback, require_cube, require_dimension
from terracube.processes.env import ProcessEnv

DIMENSION_TYPES = ("bands", "geometry", "spatial", "temporal", "other")


def dimension_types(data: xr.DataArray) -> dict[str, str]:
    """Every dimension's openEO type, as stored in attrs (with the naming fallback filled in)."""
    return {str(dim): dimension_type(data, dim) for dim in data.dims}


def temporal_label(label: Any) -> Any:
    """A date(-time) label as datetime64 (UTC, naive), other labels unchanged."""
    if isinstance(label, str):
        try:
            stamp = pd.Timestamp(label)
        except ValueError:
            return label
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return stamp.to_datetime64().astype("datetime64[ns]")
    return label


def label_text(value: Any) -> Any:
    """A label as openEO shows it: date-times as RFC 3339 strings, numbers and strings as they are."""
    if isinstance(value, (np.datetime64, pd.Timestamp)):
        stamp = pd.Timestamp(value)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ") if not stamp.microsecond else stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return python_scalar(value)


# --- adding, dropping, renaming --------------------------------------------------------------


def add_dimension(data: xr.DataArray, name: str, label: Any, type: str = "other") -> xr.DataArray:  # noqa: A002 - the spec's name
    require_cube(data)
    if name in data.dims:
        raise ProcessError("DimensionExists", f"The cube has a dimension '{name}' already.")
    if type not in DIMENSION_TYPES:
        raise ProcessParameterInvalid(f"'type' must be one of {', '.join(DIMENSION_TYPES)}, got {type!r}.")
    label = temporal_label(label) if type == "temporal" else python_scalar(label)
    types = {name: type, **dimension_types(data)}
    result = data.expand_dims({name: [label]}, axis=0)
    result.attrs = cube_attrs(data)
    return with_types(result, types)


def drop_dimension(data: xr.DataArray, name: str) -> xr.DataArray:
    require_cube(data)
    require_dimension(data, name)
    if data.sizes[name] > 1:
        raise ProcessError(
            "DimensionLabelCountMismatch",
            f"Dimension '{name}' has {data.sizes[name]} labels; only a dimension with a single label can be dropped "
            "(reduce it with reduce_dimension first).",
        )
    result = data.isel({name: 0}, drop=True)
    result.attrs = cube_attrs(data, dropped=name)
    return result


def rename_dimension(data: xr.DataArray, source: str, target: str) -> xr.DataArray:
    require_cube(data)
    require_dimension(data, source)
    if target in data.dims:
        raise ProcessError("DimensionExists", f"The cube has a dimension '{target}' already.")
    types = dimension_types(data)
    result = data.rename({source: target})
    result.attrs = cube_attrs(data)
    return with_types(result, {(target if d == source else d): t for d, t in types.items()})


def dimension_labels(data: xr.DataArray, dimension: str) -> list:
    require_cube(data)
    require_dimension(data, dimension)
    if dimension not in data.indexes:
        return list(range(data.sizes[dimension]))
    return [label_text(v) for v in data.indexes[dimension]]


def create_data_cube() -> xr.DataArray:
    """A cube without dimensions: one no-data value, to which add_dimension adds dimensions."""
    return xr.DataArray(np.float32(np.nan), attrs={"dimension_types": {}})


# --- labels by condition or content ---------------------------------------------------------


def filter_labels(data: xr.DataArray, condition: Any, dimension: str, context: Any = None) -> xr.DataArray:
    """Keep the labels for which ``condition(value=label)`` is true; dates are given as RFC 3339 text."""
    require_cube(data)
    require_dimension(data, dimension)
    require_callback(condition, "condition")
    labels = data.indexes[dimension] if dimension in data.indexes else pd.RangeIndex(data.sizes[dimension])
    keep = [i for i, label in enumerate(labels) if is_true(python_scalar(condition(value=label_text(label), context=context))) is True]
    return data.isel({dimension: keep})


def trim_cube(data: xr.DataArray, *, env: ProcessEnv | None = None) -> xr.DataArray:
    """Drop labels (on every dimension) where the cube holds only no-data.

    Which labels those are depends on the pixel values, so this process reads the data once (a
    single pass for all dimensions, computed as the run computes: ``ProcessEnv.compute``); the
    cube it returns is lazy again.
    """
    require_cube(data)
    if data.ndim == 0:
        return data
    valid = data.notnull()
    keeps = dask.compute(*[valid.any([d for d in data.dims if d != dim]) for dim in data.dims], **(env.compute if env else {}))
    selection = {dim: np.nonzero(np.asarray(keep.values if isinstance(keep, xr.DataArray) else keep))[0] for dim, keep in zip(data.dims, keeps)}
    if any(len(positions) == 0 for positions in selection.values()):
        selection = {dim: [] for dim in data.dims}  # nothing but no-data: every label goes
    return data.isel(selection)
