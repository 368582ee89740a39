"""Processes that run a callback or a kernel along dimensions or over neighbourhoods:
apply_dimension, apply_kernel, apply_neighborhood.

All stay lazy. apply_dimension calls its process once, vectorised, with the dimension moved last
(the array processes work along the last dimension). apply_kernel is a dask ``map_overlap`` of a
correlation over the border-padded cube. apply_neighborhood calls its process once per window,
each window a lazy sub-cube padded with no-data at the cube's borders, and stitches the cores.
"""

from __future__ import annotations

import itertools
from typing import Any

import dask.array
import numpy as np
import xarray as xr
from scipy import ndimage

from terracube.cube import dimension_type
from terracube.errors import ProcessError, ProcessParameterInvalid
from terracube.processes.arrays import float_dtype_for, is_array, python_scalar
from terracube.processes.cubes import cube_attrs, like_cube, require_callback, require_cube, require_dimension
from terracube.processes.cubes_dimensions import dimension_types, with_types
from terracube.processes.env import ProcessEnv
from terracube.processes.limits import check_grown

# --- apply_dimension ------------------------------------------------------------------------


def _as_dimension_result(result: Any, moved: xr.DataArray, dimension: str) -> xr.DataArray:
    """The process's answer as an array with ``dimension`` last, over all other dimensions of the cube."""
    others = moved.isel({dimension: 0}, drop=True)
    if not isinstance(result, xr.DataArray):
        if is_array(result):
            raise ProcessParameterInvalid("The process returned an array without dimension names.")
        if isinstance(result, (list, tuple)):
            values = [np.nan if v is None else python_scalar(v) for v in result]
            if any(isinstance(v, xr.DataArray) for v in values):
                result = xr.concat([v if isinstance(v, xr.DataArray) else xr.full_like(others, v) for v in values], dim=dimension)
            else:
                result = xr.DataArray(np.asarray(values), dims=[dimension])
        else:
            value = python_scalar(result)
            result = xr.DataArray([np.nan if value is None else value], dims=[dimension])
    if dimension not in result.dims:
        result = result.expand_dims({dimension: 1}, axis=-1)  # a single value: an array of one
    unknown = [d for d in result.dims if d not in moved.dims]
    if unknown:
        raise ProcessParameterInvalid(f"The process returned dimensions {unknown} that the cube does not have.")
    missing = [d for d in moved.dims if d not in result.dims]
    if missing:
        result = result.expand_dims({d: moved.sizes[d] for d in missing})
    return result.transpose(*moved.dims)


def apply_dimension(data: xr.DataArray, process: Any, dimension: str, target_dimension: str | None = None, context: Any = None) -> xr.DataArray:
    require_cube(data)
    require_dimension(data, dimension)
    require_callback(process, "process")
    moved = data.transpose(..., dimension)
    result = _as_dimension_result(process(data=moved, context=context), moved, dimension)
    count = result.sizes[dimension]
    types = dimension_types(data)
    same_labels = count == data.sizes[dimension] and target_dimension in (None, dimension)
    coords: dict[str, Any] = {d: data.indexes[d] for d in result.dims if d != dimension and d in data.indexes}
    for name, coord in data.coords.items():
        if name in result.dims:
            continue
        if dimension not in coord.dims or (same_labels and coord.dims == (dimension,)):
            coords[name] = coord.variable
    coords[dimension] = data.indexes[dimension] if same_labels and dimension in data.indexes else np.arange(count)
    result = xr.DataArray(result.data, dims=result.dims, coords=coords)
    order = list(data.dims)
    if target_dimension not in (None, dimension):
        if target_dimension in result.dims:
            if result.sizes[target_dimension] != 1:
                raise ProcessError(
                    "DimensionExists", f"The target dimension '{target_dimension}' exists with {result.sizes[target_dimension]} labels; it can't take the values."
                )
            result = result.isel({target_dimension: 0}, drop=True)
            order.remove(target_dimension)
        result = result.rename({dimension: target_dimension})
        types = {(target_dimension if d == dimension else d): ("other" if d == dimension else t) for d, t in types.items() if d != target_dimension}
        order = [target_dimension if d == dimension else d for d in order]
    result = result.transpose(*order)
    result.attrs = cube_attrs(data)
    return with_types(result, types)


# --- apply_kernel ---------------------------------------------------------------------------

_PAD_MODES = {"replicate": "edge", "reflect": "symmetric", "reflect_pixel": "reflect", "wrap": "wrap"}


def spatial_dims(data: xr.DataArray) -> tuple[str, str]:
    """(y, x): the horizontal spatial dimensions."""
    spatial = [d for d in data.dims if dimension_type(data, d) == "spatial"]
    y = "y" if "y" in data.dims else next((d for d in spatial if d != "x"), None)
    x = "x" if "x" in data.dims else next((d for d in spatial if d != y), None)
    if x is None or y is None:
        raise ProcessError("DimensionNotAvailable", f"The cube has no horizontal spatial dimensions (x, y); its dimensions are {list(data.dims)}.")
    return y, x


def apply_kernel(data: xr.DataArray, kernel: list, factor: Any = 1, border: Any = 0, replace_invalid: Any = 0) -> xr.DataArray:
    require_cube(data)
    weights = np.asarray(kernel, dtype=float)
    if weights.ndim != 2 or weights.shape[0] % 2 == 0 or weights.shape[1] % 2 == 0:
        raise ProcessError("KernelDimensionsUneven", f"Each level of the kernel must have an uneven number of elements, got the shape {list(weights.shape)}.")
    if not (isinstance(border, str) and border in _PAD_MODES) and not isinstance(python_scalar(border), (int, float)):
        raise ProcessParameterInvalid(f"'border' must be a number or one of {', '.join(_PAD_MODES)}, got {border!r}.")
    y, x = spatial_dims(data)
    moved = data.transpose(..., y, x)
    dtype = float_dtype_for(moved.dtype) if moved.dtype.kind != "f" else moved.dtype
    values = moved.astype(dtype) if moved.dtype != dtype else moved
    values = values.where(np.isfinite(values), python_scalar(replace_invalid))
    ky, kx = weights.shape[0] // 2, weights.shape[1] // 2
    pad = [(0, 0)] * (values.ndim - 2) + [(ky, ky), (kx, kx)]
    array = values.data if isinstance(values.data, dask.array.Array) else dask.array.from_array(values.values, chunks=-1)
    if isinstance(border, str):
        padded = dask.array.pad(array, pad, mode=_PAD_MODES[border])
    else:
        padded = dask.array.pad(array, pad, mode="constant", constant_values=python_scalar(border))
    full_kernel = weights.reshape((1,) * (values.ndim - 2) + weights.shape) * float(python_scalar(factor))

    def correlate(block: np.ndarray) -> np.ndarray:
        return ndimage.correlate(block, full_kernel, mode="constant", cval=0.0).astype(dtype, copy=False)

    depth = {values.ndim - 2: ky, values.ndim - 1: kx}
    filtered = padded.map_overlap(correlate, depth=depth, boundary="none", dtype=dtype)
    core = filtered[(Ellipsis, slice(ky, ky + values.sizes[y]), slice(kx, kx + values.sizes[x]))]
    if not isinstance(moved.data, dask.array.Array):
        core = core.compute()  # small in-memory cubes (tests, JSON) stay in memory
    result = values.copy(data=core)
    return like_cube(result.transpose(*data.dims), data)


# --- apply_neighborhood ---------------------------------------------------------------------


def _pixels(data: xr.DataArray, entry: dict, what: str) -> tuple[str, int | None]:
    dim, value, unit = entry.get("dimension"), entry.get("value"), entry.get("unit")
    if dim not in data.dims:
        raise ProcessError("DimensionNotAvailable", f"'{what}' names the dimension '{dim}', which the cube does not have.")
    if value is None:
        return dim, None
    if isinstance(value, str):
        raise ProcessParameterInvalid(f"'{what}' for '{dim}': durations ({value}) are not supported yet; give a number of labels (unit 'px').")
    if unit == "m":
        if dimension_type(data, dim) != "spatial" or dim not in data.indexes or data.sizes[dim] < 2:
            raise ProcessParameterInvalid(f"'{what}' for '{dim}' in metres needs a spatial dimension with a resolution.")
        step = abs(float(data.indexes[dim][1] - data.indexes[dim][0]))
        return dim, max(int(round(float(value) / step)), 0)
    return dim, int(value)


def _pad_with_nodata(data: xr.DataArray, overlaps: dict[str, int], env: ProcessEnv | None = None) -> xr.DataArray:
    """The cube with ``overlap`` no-data labels added on both ends of each dimension (coordinates extrapolated)."""
    widths = {d: (n, n) for d, n in overlaps.items() if n}
    if not widths:
        return data
    check_grown(env, data, {d: data.sizes[d] + 2 * n for d, (n, _) in widths.items()}, "The cube with its 'overlap'")
    values = data if data.dtype.kind == "f" else data.astype(float_dtype_for(data.dtype))
    padded = values.pad(widths, mode="constant", constant_values=np.nan)
    for dim, (before, after) in widths.items():
        if dim in data.indexes and np.issubdtype(data.indexes[dim].dtype, np.number) and data.sizes[dim] > 1:
            labels = data.indexes[dim].values.astype(float)
            step = labels[1] - labels[0]
            padded = padded.assign_coords({dim: np.concatenate([labels[0] - step * np.arange(before, 0, -1), labels, labels[-1] + step * np.arange(1, after + 1)])})
    return padded


def apply_neighborhood(
    data: xr.DataArray, process: Any, size: list, overlap: list | None = None, context: Any = None, *, env: ProcessEnv | None = None
) -> xr.DataArray:
    require_cube(data)
    require_callback(process, "process")
    sizes = dict(_pixels(data, entry, "size") for entry in size or [])
    overlaps = {d: n or 0 for d, n in (_pixels(data, entry, "overlap") for entry in overlap or [])}
    split = {d: n for d, n in sizes.items() if n and n < data.sizes[d]}
    padded = _pad_with_nodata(data, {d: overlaps.get(d, 0) for d in split}, env)
    starts = {d: range(0, data.sizes[d], n) for d, n in split.items()}
    pieces = {}
    for corner in itertools.product(*starts.values()):
        window, core = {}, {}
        for (dim, n), start in zip(split.items(), corner):
            ov = overlaps.get(dim, 0)
            stop = min(start + n, data.sizes[dim])
            window[dim] = slice(start, stop + 2 * ov)  # in padded positions: the core starts at start + ov
            core[dim] = slice(ov, ov + stop - start)
        sub = padded.isel(window)
        answer = like_cube(process(data=sub, context=context), sub)
        for dim in sub.dims:
            if dim in sub.indexes and (dim not in answer.indexes or not sub.indexes[dim].equals(answer.indexes[dim])):
                raise ProcessError("DataCubePropertiesImmutable", f"The process changed the labels of dimension '{dim}'.")
        pieces[corner] = answer.isel(core)
    if not split:
        return like_cube(pieces[()], data)
    dims = list(split)
    nested = _nest(pieces, [list(r) for r in starts.values()])
    result = xr.combine_nested(nested, concat_dim=dims, coords="minimal", compat="override", combine_attrs="override")
    return like_cube(result.transpose(*data.dims), data)


def _nest(pieces: dict, axes: list[list[int]], prefix: tuple = ()) -> Any:
    if len(prefix) == len(axes):
        return pieces[prefix]
    return [_nest(pieces, axes, prefix + (start,)) for start in axes[len(prefix)]]
