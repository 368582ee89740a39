"""Array processes over the elements: array_apply, array_filter, array_contains, array_find and
array_interpolate_linear.

On a DataArray a callback runs once, vectorised, with ``x`` the whole array and ``index``/``label``
as one-dimensional arrays along the last dimension (they broadcast against ``x``); on a plain list
it runs once per element, with ``label`` null as the spec says for arrays without labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from terracube.errors import ProcessError, ProcessParameterInvalid
from terracube.processes.arrays import as_labeled, float_dtype_for, is_array, is_true, python_scalar
from terracube.processes.arrays_labels import labels_of, values_of
from terracube.processes.comparison import _equal_scalars


def _positions(data: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """(index, label) of every element along the last dimension, as one-dimensional arrays."""
    dim = data.dims[-1]
    index = xr.DataArray(np.arange(data.sizes[dim]), dims=[dim])
    labels = labels_of(data)
    label = xr.DataArray(np.array(labels, dtype=object if any(isinstance(v, str) for v in labels) else None), dims=[dim])
    if dim in data.indexes:
        index, label = index.assign_coords({dim: data.indexes[dim]}), label.assign_coords({dim: data.indexes[dim]})
    return index, label


def _like(result: Any, data: xr.DataArray) -> xr.DataArray:
    """A callback's answer shaped like ``data`` (a constant or a lower-dimensional array broadcast)."""
    if not isinstance(result, xr.DataArray):
        if is_array(result):
            raise ProcessParameterInvalid("The process returned an array without dimension names.")
        value = python_scalar(result)
        return xr.full_like(data, np.nan if value is None else value, dtype=None if isinstance(value, (int, float)) else object)
    if set(result.dims) - set(data.dims):
        raise ProcessParameterInvalid(f"The process returned dimensions {list(result.dims)} that the array does not have.")
    return result.broadcast_like(data).transpose(*data.dims)


def array_apply(data: Any, process: Any, context: Any = None) -> Any:
    if not callable(process):
        raise ProcessParameterInvalid("'process' must be a process (a child process graph).")
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        index, label = _positions(labeled)
        return _like(process(x=labeled, index=index, label=label, context=context), labeled)
    return [python_scalar(process(x=value, index=i, label=None, context=context)) for i, value in enumerate(labeled)]


def array_filter(data: Any, condition: Any, context: Any = None) -> Any:
    if not callable(condition):
        raise ProcessParameterInvalid("'condition' must be a process (a child process graph).")
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        dim = labeled.dims[-1]
        index, label = _positions(labeled)
        keep = condition(x=labeled, index=index, label=label, context=context)
        if not isinstance(keep, xr.DataArray):
            return labeled if is_true(python_scalar(keep)) is True else labeled.isel({dim: slice(0, 0)})
        keep = is_true(keep)
        if keep.dims != (dim,):
            raise ProcessParameterInvalid(
                "array_filter on a data cube can only select by index or label (one selection for every pixel): "
                "a condition on the values would leave pixels with different numbers of elements. Use mask or if instead."
            )
        return labeled.isel({dim: np.nonzero(np.asarray(keep.values))[0]})
    values = list(labeled)
    kept = [v for i, v in enumerate(values) if is_true(condition(x=v, index=i, label=None, context=context)) is True]
    return [python_scalar(v) for v in kept]


# --- finding values -------------------------------------------------------------------------


def _searchable(value: Any) -> bool:
    """Only numbers, booleans and strings are ever found; null, arrays and objects never are."""
    return value is not None and not isinstance(value, (list, tuple, dict)) and not is_array(value)


def _matches_array(data: xr.DataArray, value: Any) -> xr.DataArray:
    if isinstance(value, str) != (data.dtype.kind in "OUS"):
        return xr.zeros_like(data, dtype=bool)
    if isinstance(value, bool) != (data.dtype.kind == "b"):
        return xr.zeros_like(data, dtype=bool)
    return data == value


def array_contains(data: Any, value: Any) -> Any:
    value = python_scalar(value)
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        dim = labeled.dims[-1]
        if not _searchable(value):
            return xr.zeros_like(labeled.isel({dim: 0}, drop=True), dtype=bool)
        return _matches_array(labeled, value).any(dim)
    if not _searchable(value):
        return False
    return any(_equal_scalars(python_scalar(v), value, None, True) for v in labeled if _searchable(python_scalar(v)))


def array_find(data: Any, value: Any, reverse: bool = False) -> Any:
    value = python_scalar(value)
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        dim = labeled.dims[-1]
        size = labeled.sizes[dim]
        if not _searchable(value) or size == 0:
            return xr.full_like(labeled.isel({dim: 0}, drop=True) if size else labeled.sum(dim), np.nan, dtype=float)
        matches = _matches_array(labeled, value).drop_vars(dim, errors="ignore")
        if reverse:
            position = (size - 1) - matches.isel({dim: slice(None, None, -1)}).argmax(dim)
        else:
            position = matches.argmax(dim)
        return position.where(matches.any(dim))
    if not _searchable(value):
        return None
    values = [python_scalar(v) for v in labeled]
    positions = range(len(values) - 1, -1, -1) if reverse else range(len(values))
    for i in positions:
        if _searchable(values[i]) and _equal_scalars(values[i], value, None, True):
            return i
    return None


# --- interpolation --------------------------------------------------------------------------


def _interpolate(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Linear interpolation of NaN along the last axis between the nearest values on both sides."""
    n = values.shape[-1]
    if n < 3:
        return values
    missing = np.isnan(values)
    idx = np.arange(n)
    previous = np.maximum.accumulate(np.where(missing, -1, idx), axis=-1)
    following = np.minimum.accumulate(np.where(missing, n, idx)[..., ::-1], axis=-1)[..., ::-1]
    inside = missing & (previous >= 0) & (following < n)
    p, q = np.clip(previous, 0, n - 1), np.clip(following, 0, n - 1)
    y0, y1 = np.take_along_axis(values, p, axis=-1), np.take_along_axis(values, q, axis=-1)
    x0, x1 = x[p], x[q]
    with np.errstate(all="ignore"):
        t = (x[idx] - x0) / (x1 - x0)
        line = y0 + (y1 - y0) * t
    line = np.where(np.isinf(y0) & ~np.isinf(y1), y0, line)  # from -inf: -inf, not -inf + inf
    line = np.where(y0 == y1, y0, line)
    return np.where(inside, line, values).astype(values.dtype, copy=False)


def _axis(labels: list) -> np.ndarray:
    """Interpolation positions: numeric or temporal labels as such, other labels by position."""
    array = np.asarray(labels)
    if array.dtype.kind == "M":
        return array.astype("datetime64[ns]").astype("int64").astype(float)
    if array.dtype.kind in "iuf" and len(array):
        return array.astype(float)
    return np.arange(len(labels), dtype=float)


def array_interpolate_linear(data: Any) -> Any:
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        dim = labeled.dims[-1]
        values = labeled if labeled.dtype.kind == "f" else labeled.astype(float_dtype_for(labeled.dtype))
        x = _axis(labels_of(labeled)) if dim in labeled.indexes else np.arange(labeled.sizes[dim], dtype=float)
        return xr.apply_ufunc(
            _interpolate, values, kwargs={"x": x}, input_core_dims=[[dim]], output_core_dims=[[dim]],
            dask="parallelized", output_dtypes=[values.dtype], dask_gufunc_kwargs={"allow_rechunk": True}, keep_attrs=True,
        ).transpose(*labeled.dims)
    items = values_of(labeled)
    nulls = [v is None for v in items]
    numbers = np.array([np.nan if v is None else float(v) for v in items], dtype=float)
    result = _interpolate(numbers, np.arange(len(items), dtype=float))
    return [None if nulls[i] and np.isnan(result[i]) else python_scalar(result[i]) for i in range(len(items))]


__all__ = ["array_apply", "array_filter", "array_contains", "array_find", "array_interpolate_linear", "ProcessError"]
