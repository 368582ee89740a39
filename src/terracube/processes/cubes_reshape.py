"""Processes that reshape a cube: flatten_dimensions, unflatten_dimension, reduce_spatial,
aggregate_spatial_window.

All of them stay lazy: reshaping is a dask reshape, windows are ``coarsen``, and reducers run on
the stacked pixels as a dimension of the cube (the last one, as reduce_dimension passes it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from terracube.errors import ProcessError, ProcessParameterInvalid
from terracube.processes.cubes import cube_attrs, like_cube, require_callback, require_cube, require_dimension
from terracube.processes.cubes_apply import spatial_dims
from terracube.processes.cubes_dimensions import dimension_types, label_text, with_types
from terracube.processes.env import ProcessEnv
from terracube.processes.limits import check_grown

_WORK_DIM = "__pixels__"


def _require_new(data: xr.DataArray, name: str) -> None:
    if name in data.dims:
        raise ProcessError("TargetDimensionExists", f"The cube has a dimension '{name}' already.")


def _labels(data: xr.DataArray, dim: str) -> list[str]:
    values = data.indexes[dim] if dim in data.indexes else range(data.sizes[dim])
    return [str(label_text(v)) for v in values]


def _drop_coords_on(data: xr.DataArray, dims: list[str]) -> xr.DataArray:
    """Without the coordinates that lie on ``dims`` (labels and auxiliary ones like spatial_ref's
    companions); a scalar coordinate such as ``spatial_ref`` stays."""
    stale = [name for name, coord in data.coords.items() if set(coord.dims) & set(dims)]
    return data.drop_vars(stale)


def flatten_dimensions(data: xr.DataArray, dimensions: list, target_dimension: str, label_separator: str = "~") -> xr.DataArray:
    """``dimensions`` become one dimension of type ``other``, labels joined in row-major order.

    The new dimension takes the place of the first flattened dimension in the cube's order.
    """
    require_cube(data)
    if not dimensions:
        raise ProcessParameterInvalid("'dimensions' must name at least one dimension.")
    for dim in dimensions:
        require_dimension(data, dim)
    if len(set(dimensions)) != len(dimensions):
        raise ProcessParameterInvalid(f"'dimensions' names a dimension twice: {dimensions}.")
    if target_dimension in data.dims and [target_dimension] != list(dimensions):
        _require_new(data, target_dimension)
    types = dimension_types(data)
    labels = [label_separator.join(parts) for parts in _product([_labels(data, d) for d in dimensions])]
    position = min(data.dims.index(d) for d in dimensions)
    others = [d for d in data.dims if d not in dimensions]
    moved = _drop_coords_on(data, list(dimensions)).transpose(*others, *dimensions)
    shape = [moved.sizes[d] for d in others] + [len(labels)]
    flat = xr.DataArray(moved.data.reshape(shape), dims=[*others, target_dimension], coords={**moved.coords, target_dimension: labels})
    order = list(others)
    order.insert(position, target_dimension)
    result = flat.transpose(*order)
    result.attrs = cube_attrs(data)
    return with_types(result, {**{d: t for d, t in types.items() if d not in dimensions}, target_dimension: "other"})


def _product(label_lists: list[list[str]]) -> list[tuple[str, ...]]:
    index = pd.MultiIndex.from_product(label_lists)
    return [tuple(item) if isinstance(item, tuple) else (item,) for item in index]


def unflatten_dimension(data: xr.DataArray, dimension: str, target_dimensions: list, label_separator: str = "~") -> xr.DataArray:
    """``dimension`` is split at ``label_separator`` into ``target_dimensions`` (type ``other``).

    The labels must form a full grid in row-major order (as flatten_dimensions makes them): the
    first target dimension varies slowest. The new dimensions take the split dimension's place.
    """
    require_cube(data)
    require_dimension(data, dimension)
    if not target_dimensions:
        raise ProcessParameterInvalid("'target_dimensions' must name at least one dimension.")
    if len(set(target_dimensions)) != len(target_dimensions):
        raise ProcessParameterInvalid(f"'target_dimensions' names a dimension twice: {target_dimensions}.")
    for name in target_dimensions:
        if name != dimension:
            _require_new(data, name)
    parts = [label.split(label_separator) for label in _labels(data, dimension)]
    if any(len(p) != len(target_dimensions) for p in parts):
        raise ProcessParameterInvalid(
            f"Every label of '{dimension}' must contain '{label_separator}' {len(target_dimensions) - 1} time(s) "
            f"to be split into {len(target_dimensions)} dimensions."
        )
    levels = [list(dict.fromkeys(p[i] for p in parts)) for i in range(len(target_dimensions))]
    if [tuple(p) for p in parts] != _product(levels):
        raise ProcessParameterInvalid(
            f"The labels of '{dimension}' are not a complete grid of {' x '.join(map(str, map(len, levels)))} labels in order; "
            "they can't be split into separate dimensions."
        )
    types = dimension_types(data)
    others = [d for d in data.dims if d != dimension]
    moved = _drop_coords_on(data, [dimension]).transpose(*others, dimension)
    shape = [moved.sizes[d] for d in others] + [len(level) for level in levels]
    coords = {**moved.coords, **{name: _typed(level) for name, level in zip(target_dimensions, levels)}}
    result = xr.DataArray(moved.data.reshape(shape), dims=[*others, *target_dimensions], coords=coords)
    position = data.dims.index(dimension)
    order = others[:position] + list(target_dimensions) + others[position:]
    result = result.transpose(*order)
    result.attrs = cube_attrs(data)
    new_types = {d: t for d, t in types.items() if d != dimension}
    return with_types(result, {**new_types, **{name: "other" for name in target_dimensions}})


def _typed(labels: list[str]) -> list:
    """Split labels as numbers when all of them are numbers (``2020`` was a number before flattening)."""
    try:
        numbers = [float(v) for v in labels]
    except ValueError:
        return labels
    return [int(n) if n.is_integer() and "." not in v and "e" not in v.lower() else n for n, v in zip(numbers, labels)]


def _stacked(data: xr.DataArray, dims: list[str]) -> xr.DataArray:
    """``dims`` stacked into one last dimension of pixels (a dask reshape, no index built)."""
    others = [d for d in data.dims if d not in dims]
    moved = _drop_coords_on(data, dims).transpose(*others, *dims)
    shape = [moved.sizes[d] for d in others] + [int(np.prod([moved.sizes[d] for d in dims]))]
    return xr.DataArray(moved.data.reshape(shape), dims=[*others, _WORK_DIM], coords=moved.coords, attrs=moved.attrs)


def reduce_spatial(data: xr.DataArray, reducer: Any, context: Any = None) -> xr.DataArray:
    """The reducer gets every pixel of an image (x and y together) as one array."""
    require_cube(data)
    require_callback(reducer, "reducer")
    y, x = spatial_dims(data)
    stacked = _stacked(data, [y, x])
    result = like_cube(reducer(data=stacked, context=context), stacked, dropped=_WORK_DIM)
    types = dimension_types(data)
    result.attrs = cube_attrs(data)
    return with_types(result, {d: t for d, t in types.items() if d not in (y, x)})


_ALIGNS = ("lower-left", "upper-left", "lower-right", "upper-right")


def aggregate_spatial_window(
    data: xr.DataArray,
    reducer: Any,
    size: list,
    boundary: str = "pad",
    align: str = "upper-left",
    context: Any = None,
    *,
    env: ProcessEnv | None = None,
) -> xr.DataArray:
    """Non-overlapping windows of ``size`` = [x, y] pixels, each reduced to one pixel whose label is
    the window's centre. ``boundary`` pads with no-data or trims the rest at the side opposite to
    ``align`` (upper-left: the rest is at the right and the bottom of the image)."""
    require_cube(data)
    require_callback(reducer, "reducer")
    if len(size) != 2 or any(not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 1 for s in size):
        raise ProcessParameterInvalid(f"'size' must be two whole numbers of pixels >= 1 (x, y), got {size!r}.")
    if boundary not in ("pad", "trim"):
        raise ProcessParameterInvalid(f"'boundary' must be 'pad' or 'trim', got {boundary!r}.")
    if align not in _ALIGNS:
        raise ProcessParameterInvalid(f"'align' must be one of {', '.join(_ALIGNS)}, got {align!r}.")
    y, x = spatial_dims(data)
    windows = {x: int(size[0]), y: int(size[1])}
    # Which end of each axis the rest goes to: an image's rows run from the top (upper) down.
    rest_at_end = {x: align.endswith("left"), y: align.startswith("upper") == _rows_go_down(data, y)}
    if boundary == "pad":  # padded up to a whole window: a huge 'size' must not pad a huge cube
        check_grown(env, data, {d: -(-data.sizes[d] // w) * w for d, w in windows.items()}, "The cube padded to whole windows")
    framed = data
    for dim, window in windows.items():
        framed = _fit(framed, dim, window, boundary, rest_at_end[dim])
    if any(framed.sizes[d] == 0 for d in windows):
        raise ProcessParameterInvalid(f"The window {size} is larger than the cube ({data.sizes[x]} x {data.sizes[y]} pixels) and 'boundary' is 'trim'.")
    blocks = framed.coarsen(windows).construct({x: (x, "__wx__"), y: (y, "__wy__")})
    centres = {d: framed[d].coarsen({d: windows[d]}).mean() for d in windows if d in framed.coords}
    blocks = blocks.drop_vars([d for d in windows if d in blocks.coords])
    stacked = _stacked(blocks, ["__wy__", "__wx__"])
    template = framed.isel({x: slice(None, None, windows[x]), y: slice(None, None, windows[y])}).drop_vars(list(windows), errors="ignore")
    template = template.assign_coords(centres)
    result = reducer(data=stacked, context=context)
    if isinstance(result, xr.DataArray):
        result = result.assign_coords({d: c for d, c in centres.items() if d in result.dims})
    shaped = like_cube(result, template.expand_dims({_WORK_DIM: 1}, axis=-1), dropped=_WORK_DIM)
    shaped = shaped.assign_coords(centres).transpose(*data.dims)
    shaped.attrs = cube_attrs(data)
    return shaped


def _rows_go_down(data: xr.DataArray, y: str) -> bool:
    if y in data.indexes and data.sizes[y] > 1:
        return bool(data.indexes[y][1] < data.indexes[y][0])
    return True


def _fit(data: xr.DataArray, dim: str, window: int, boundary: str, rest_at_end: bool) -> xr.DataArray:
    """``dim`` made a multiple of ``window``: trimmed, or padded with no-data and coordinates that
    continue the axis' step."""
    count = data.sizes[dim]
    rest = count % window
    if rest == 0:
        return data
    if boundary == "trim":
        keep = slice(0, count - rest) if rest_at_end else slice(rest, count)
        return data.isel({dim: keep})
    missing = window - rest
    values = data if data.dtype.kind in "fc" else data.astype("float64")
    pad = {dim: (0, missing) if rest_at_end else (missing, 0)}
    padded = values.pad(pad, constant_values=np.nan)
    if dim in data.indexes:
        coords = np.asarray(data.indexes[dim], dtype="float64")
        step = coords[1] - coords[0] if count > 1 else 1.0
        start = coords[0] - (0 if rest_at_end else missing) * step
        padded = padded.assign_coords({dim: start + step * np.arange(count + missing)})
    return padded
