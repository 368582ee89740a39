"""Array processes, and the convention every process uses for the values it is handed.

Values inside callbacks come in three shapes, and every array process accepts all of them:

* a plain Python list, as in JSON (``mean([1, null, 3])``): ``None`` is no-data, ``NaN`` is just a
  number, and the answer is a plain Python value, ``None`` where the spec says null;
* an ``xarray.DataArray`` (usually dask-backed): ``reduce_dimension`` hands its reducer the cube
  with the reduced dimension moved last, so array processes work along the **last** dimension; NaN
  is no-data there, as everywhere in a cube;
* a list that mixes DataArrays and scalars (``sum([x, y])`` in an overlap resolver): the elements
  are stacked along a new last dimension first, then treated like a DataArray.

Nothing here computes a dask array: results stay lazy, shapes and labels are the only things read.
"""

from __future__ import annotations

import numbers
import operator
from typing import Any, Callable

import dask.array
import numpy as np
import xarray as xr

from terracube.errors import ProcessError
from terracube.processes.env import ProcessEnv
from terracube.processes.limits import check_array_length

# The dimension a list of arrays is stacked along; it has no labels, like a JSON array.
STACK_DIM = "__array__"


# --- the value convention -------------------------------------------------------------------


def is_array(value: Any) -> bool:
    """An element-wise operand: a DataArray, numpy or dask array (not a JSON list)."""
    return isinstance(value, (xr.DataArray, np.ndarray, dask.array.Array))


def python_scalar(value: Any) -> Any:
    """numpy scalars as Python ones, so results serialise to JSON and stay 'weak' in numpy promotion."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def is_number(value: Any) -> bool:
    """A JSON number: int or float, not a boolean."""
    return isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_))


def nodata_as_nan(value: Any) -> Any:
    """``None`` as NaN, for mixing a scalar into arrays, where NaN is the no-data value."""
    return np.nan if value is None else python_scalar(value)


def can_hold_nodata(value: Any) -> bool:
    """Whether an array can carry no-data (NaN); integer and boolean arrays cannot."""
    dtype = getattr(value, "dtype", None)
    return dtype is None or dtype.kind in "fcOmM"


def float_dtype_for(dtype: np.dtype) -> np.dtype:
    """The float type to compute in: float32 for float32 and small integers, so memory does not double."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return dtype
    if dtype.kind in "biu" and dtype.itemsize <= 2:
        return np.dtype("float32")
    return np.dtype("float64")


def select(data: xr.DataArray, dim: str, key: int | slice) -> xr.DataArray:
    """``data.isel({dim: key}, drop=True)``; on a dask array whose ``dim`` is one chunk (the bands of
    a loaded cube), a blockwise operation that dask fuses into the tasks around it, where slicing
    adds a task for every chunk (thousands for a band picked out of a year of scenes)."""
    array = data.data
    if not isinstance(array, dask.array.Array) or len(data.chunks[data.get_axis_num(dim)]) != 1:
        return data.isel({dim: key}, drop=True)
    axis = data.get_axis_num(dim)
    # the coordinates isel would give, from a stand-in that holds no data (a broadcast zero)
    stand_in = xr.DataArray(np.broadcast_to(np.zeros((), array.dtype), array.shape), dims=data.dims, coords=data.coords)
    coords = stand_in.isel({dim: key}, drop=True).coords
    index = (slice(None),) * axis + (key,)
    if isinstance(key, slice):
        chunks = array.chunks[:axis] + ((len(range(*key.indices(array.shape[axis]))),),) + array.chunks[axis + 1 :]
        picked = array.map_blocks(operator.getitem, index, chunks=chunks, dtype=array.dtype, meta=array._meta)
        dims = data.dims
    else:
        # blockwise over the other axes; ``dim`` (one chunk) is handed over as a list of that one block,
        # which map_blocks' drop_axis would concatenate, copying every block
        others = tuple(i for i in range(array.ndim) if i != axis)
        picked = dask.array.blockwise(
            _element, others, array, tuple(range(array.ndim)), index=index, concatenate=False, dtype=array.dtype, meta=array._meta.sum(axis=axis)
        )
        dims = tuple(d for d in data.dims if d != dim)
    return xr.DataArray(picked, dims=dims, coords=coords, attrs=data.attrs, name=data.name)


def _element(blocks: list[np.ndarray], index: tuple) -> np.ndarray:
    return blocks[0][index]


def is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def stack_last(items: list | tuple) -> xr.DataArray:
    """A list holding DataArrays (and maybe scalars) as one DataArray with the list as last dimension."""
    arrays = [item for item in items if isinstance(item, xr.DataArray)]
    template = xr.broadcast(*arrays)[0] if len(arrays) > 1 else arrays[0]
    members = []
    for item in items:
        if isinstance(item, xr.DataArray):
            members.append(item)
        else:
            value = nodata_as_nan(item)
            members.append(xr.full_like(template, value, dtype=np.result_type(template.dtype, value)))
    members = xr.broadcast(*members)
    return xr.concat(members, dim=STACK_DIM, coords="minimal", compat="override", join="outer").transpose(..., STACK_DIM)


def as_labeled(data: Any) -> Any:
    """DataArray for anything holding arrays; lists of plain values stay lists; numpy/dask arrays get dims."""
    if isinstance(data, xr.DataArray):
        return data
    if isinstance(data, (np.ndarray, dask.array.Array)):
        return xr.DataArray(data, dims=[f"dim_{i}" for i in range(data.ndim - 1)] + [STACK_DIM])
    if is_list(data) and any(is_array(item) for item in data):
        return stack_last([xr.DataArray(item) if not isinstance(item, xr.DataArray) and is_array(item) else item for item in data])
    return data


def _unwrap(result: Any, original: Any) -> Any:
    """Results for numpy/dask input are returned as the same kind of array, not as DataArrays."""
    if isinstance(original, (np.ndarray, dask.array.Array)) and isinstance(result, xr.DataArray):
        data = result.data
        return python_scalar(data) if isinstance(data, np.ndarray) and data.ndim == 0 else data
    return result


def reduce_array(
    data: Any,
    ignore_nodata: bool,
    on_xarray: Callable[[xr.DataArray, str, bool], xr.DataArray],
    on_values: Callable[[np.ndarray], Any],
) -> Any:
    """Run a reducer over the last dimension, in the spirit of the value convention above.

    ``on_xarray(array, dim, skipna)`` reduces a DataArray; ``on_values(np_array)`` reduces the
    non-no-data values of a plain list (never empty). Plain lists answer None for no values at all.
    """
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        if labeled.ndim == 0:
            raise ProcessError("ArrayExpected", "Expected an array, got a single value.")
        return _unwrap(on_xarray(labeled, labeled.dims[-1], bool(ignore_nodata)), data)
    values = list(labeled)
    if any(v is None for v in values):
        if not ignore_nodata:
            return None
        values = [v for v in values if v is not None]
    if not values:
        return None
    with np.errstate(all="ignore"):
        return python_scalar(on_values(np.asarray(values)))


def full_without_last(data: xr.DataArray, value: Any, dtype: Any = None) -> xr.DataArray:
    """A lazy array shaped like ``data`` without its last dimension, filled with ``value``."""
    template = data.isel({data.dims[-1]: 0}, drop=True)
    return xr.full_like(template, value, dtype=dtype if dtype is not None else np.result_type(template.dtype, value))


def is_true(value: Any) -> Any:
    """openEO truthiness of a condition's result: True only for true (or non-zero, valid numbers)."""
    if isinstance(value, xr.DataArray) or is_array(value):
        if getattr(value, "dtype", np.dtype(bool)).kind == "b":
            return value
        with np.errstate(invalid="ignore"):
            return (value == value) & (value != 0)  # NaN (no-data) is not true
    return python_scalar(value) is True


# --- array processes ------------------------------------------------------------------------


def array_element(data: Any, index: int | None = None, label: Any = None, return_nodata: bool = False) -> Any:
    if index is None and label is None:
        raise ProcessError("ArrayElementParameterMissing", "array_element needs either 'index' or 'label'.")
    if index is not None and label is not None:
        raise ProcessError("ArrayElementParameterConflict", "array_element accepts either 'index' or 'label', not both.")
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        return _unwrap(_element_of_array(labeled, index, label, return_nodata), data)
    if label is not None:
        raise ProcessError("ArrayNotLabeled", f"The array is not labeled, so label {label!r} can't be used; use 'index'.")
    values = list(labeled)
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool) or not 0 <= index < len(values):
        if return_nodata:
            return None
        raise ProcessError("ArrayElementNotAvailable", f"The array has no element at index {index} (it has {len(values)}).")
    return python_scalar(values[index])


def _element_of_array(data: xr.DataArray, index: int | None, label: Any, return_nodata: bool) -> xr.DataArray:
    if data.ndim == 0:
        raise ProcessError("ArrayElementNotAvailable", "Expected an array, got a single value.")
    dim = data.dims[-1]
    size = data.sizes[dim]
    if label is not None:
        if dim not in data.indexes:
            raise ProcessError("ArrayNotLabeled", f"The array is not labeled, so label {label!r} can't be used; use 'index'.")
        position = _label_position(data.indexes[dim], label)
        if position is None:
            if return_nodata:
                return _nodata_like(data)
            labels = ", ".join(str(v) for v in list(data.indexes[dim])[:20])
            raise ProcessError("ArrayElementNotAvailable", f"No element with label {label!r} along '{dim}' (labels: {labels}).")
        index = position
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < size:
        if return_nodata:
            return _nodata_like(data)
        raise ProcessError("ArrayElementNotAvailable", f"No element at index {index} along '{dim}' (it has {size}).")
    return select(data, dim, int(index))


def _label_position(index, label: Any) -> int | None:
    """Position of a label in a dimension's index: exact match, or a date(-time) string on a time axis."""
    for candidate in (label, python_scalar(label)):
        try:
            position = index.get_loc(candidate)
        except (KeyError, TypeError, ValueError):
            continue
        if isinstance(position, (int, np.integer)):
            return int(position)
    if np.issubdtype(index.dtype, np.datetime64) and isinstance(label, str):
        try:
            stamp = np.datetime64(label.replace("Z", "").split("+")[0], "ns")
        except ValueError:
            return None
        matches = np.nonzero(index.values == stamp)[0]
        return int(matches[0]) if len(matches) else None
    return None


def _nodata_like(data: xr.DataArray) -> xr.DataArray:
    dtype = data.dtype if can_hold_nodata(data) and data.dtype.kind == "f" else float_dtype_for(data.dtype)
    return full_without_last(data, np.nan, dtype=dtype)


def array_create(data: list | None = None, repeat: int = 1, *, env: ProcessEnv | None = None) -> list:
    if data is None:
        data = []
    if not isinstance(repeat, (int, np.integer)) or repeat < 1:
        raise ProcessError("RepeatInvalid", f"'repeat' must be an integer of at least 1, got {repeat!r}.")
    # A list is made at once: a 150-byte request with a large 'repeat' must not allocate gigabytes.
    length = len(data)
    each = getattr(data, "size", length) / length if length and hasattr(data, "shape") else 1
    check_array_length(env, length * int(repeat), f"array_create's array ({length} x repeat {int(repeat)})", each)
    return list(data) * int(repeat)


def first(data: Any, ignore_nodata: bool = True) -> Any:
    return _first_or_last(data, ignore_nodata, last=False)


def last(data: Any, ignore_nodata: bool = True) -> Any:
    return _first_or_last(data, ignore_nodata, last=True)


def _first_or_last(data: Any, ignore_nodata: bool, last: bool) -> Any:
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        return _unwrap(_first_or_last_array(labeled, ignore_nodata, last), data)
    values = list(labeled)[::-1] if last else list(labeled)
    if ignore_nodata:
        values = [v for v in values if v is not None]
    return python_scalar(values[0]) if values else None


def _np_pick(values: np.ndarray, last: bool, skipna: bool) -> np.ndarray:
    """First (or last) value along the last axis, skipping NaN when asked; NaN when there is none."""
    if values.shape[-1] == 0:
        return np.full(values.shape[:-1], np.nan, dtype=float_dtype_for(values.dtype))
    if last:
        values = values[..., ::-1]
    if not skipna or values.dtype.kind not in "fc":
        return values[..., 0]
    valid = ~np.isnan(values)
    position = np.argmax(valid, axis=-1)
    picked = np.take_along_axis(values, position[..., None], axis=-1)[..., 0]
    return np.where(valid.any(axis=-1), picked, np.nan).astype(values.dtype, copy=False)


def _first_or_last_array(data: xr.DataArray, ignore_nodata: bool, last: bool) -> xr.DataArray:
    dim = data.dims[-1]
    if not ignore_nodata or data.dtype.kind not in "fc":
        return data.isel({dim: -1 if last else 0}, drop=True)
    return xr.apply_ufunc(
        _np_pick,
        data,
        kwargs={"last": last, "skipna": True},
        input_core_dims=[[dim]],
        dask="parallelized",
        output_dtypes=[data.dtype],
        dask_gufunc_kwargs={"allow_rechunk": True},
        keep_attrs=True,
    )


def count(data: Any, condition: Any = None, context: Any = None) -> Any:
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        return _unwrap(_count_array(labeled, condition, context), data)
    values = list(labeled)
    if condition is None:
        return sum(1 for v in values if _is_valid_scalar(v))
    if condition is True:
        return len(values)
    if not callable(condition):
        raise ProcessError("ConditionInvalid", "'condition' must be null, true or a process (callback).")
    return sum(1 for v in values if is_true(condition(x=v, context=context)) is True)


def _count_array(data: xr.DataArray, condition: Any, context: Any) -> xr.DataArray:
    dim = data.dims[-1]
    if condition is None:
        valid = np.isfinite(data) if data.dtype.kind in "biufc" else data.notnull()
        return valid.sum(dim)
    if condition is True:
        return full_without_last(data, data.sizes[dim], dtype="int64")
    if not callable(condition):
        raise ProcessError("ConditionInvalid", "'condition' must be null, true or a process (callback).")
    result = condition(x=data, context=context)
    if not isinstance(result, xr.DataArray):
        return full_without_last(data, data.sizes[dim] if is_true(python_scalar(result)) is True else 0, dtype="int64")
    return is_true(result).sum(dim)


def _is_valid_scalar(value: Any) -> bool:
    if value is None:
        return False
    if is_number(value):
        return bool(np.isfinite(value))
    return True
