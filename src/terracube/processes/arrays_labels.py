"""Array processes about labels and structure: array_labels, array_append, array_concat,
array_modify, array_create_labeled, array_find_label.

A labelled array is a DataArray whose last dimension has an index (its labels); a plain list has
none, its "labels" are its indices. The spec's rules on when labels survive (both arrays labelled,
no label in both) are checked here and raise its exceptions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from terracube.errors import ProcessError, ProcessParameterInvalid
from terracube.processes.arrays import as_labeled, is_array, is_list, nodata_as_nan, python_scalar


def is_labeled(value: Any) -> bool:
    return isinstance(value, xr.DataArray) and value.ndim >= 1 and value.dims[-1] in value.indexes


def labels_of(value: xr.DataArray) -> list:
    dim = value.dims[-1]
    return value.indexes[dim].tolist() if dim in value.indexes else list(range(value.sizes[dim]))


def values_of(value: Any) -> list:
    """A one-dimensional array's values as a plain list (NaN, the no-data value, as None)."""
    if isinstance(value, xr.DataArray):
        return [None if isinstance(v, float) and v != v else v for v in value.values.tolist()]
    return [python_scalar(v) for v in value]


def _index(labels: list) -> pd.Index:
    """Labels as an index: numbers, strings, or mixed (object), never coerced into each other."""
    if labels and all(isinstance(v, str) for v in labels):
        return pd.Index(labels, dtype=object)
    if labels and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in labels):
        return pd.Index(labels)
    return pd.Index(labels, dtype=object)


def labeled_array(values: list, labels: list, dim: str = "labels") -> xr.DataArray:
    """A one-dimensional labelled array; None (no-data) as NaN where the values are numbers."""
    numbers = all(v is None or (isinstance(v, (int, float, np.number)) and not isinstance(v, bool)) for v in values)
    data = np.array([nodata_as_nan(v) for v in values], dtype=float) if numbers and values else np.array(values, dtype=object)
    return xr.DataArray(data, dims=[dim], coords={dim: _index(labels)})


def array_labels(data: Any) -> list:
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        return [python_scalar(v) for v in labels_of(labeled)]
    return list(range(len(labeled)))


# --- appending and concatenating -------------------------------------------------------------


def _one_element(data: xr.DataArray, value: Any, label: Any) -> xr.DataArray:
    """``value`` shaped as one element along the last dimension of ``data``."""
    dim = data.dims[-1]
    template = data.isel({dim: [0]}, drop=False) if data.sizes[dim] else None
    if isinstance(value, xr.DataArray):
        element = value.expand_dims({dim: 1})
    elif template is not None:
        scalar = nodata_as_nan(value)
        element = xr.full_like(template, scalar, dtype=np.result_type(template.dtype, scalar) if not isinstance(scalar, str) else object)
    else:
        element = xr.DataArray([nodata_as_nan(value)], dims=[dim])
    element = element.drop_vars([dim], errors="ignore")
    if dim in data.indexes:
        element = element.assign_coords({dim: [label]})
    return element.transpose(*[d for d in data.dims if d in element.dims])


def _concat(first: xr.DataArray, second: xr.DataArray) -> xr.DataArray:
    dim = first.dims[-1]
    if dim in first.indexes and dim in second.indexes:
        labels = labels_of(first) + labels_of(second)
        first, second = first.drop_vars(dim), second.drop_vars(dim)
        result = xr.concat([first, second], dim=dim, coords="minimal", compat="override", join="outer")
        return result.assign_coords({dim: _index(labels)}).transpose(..., dim)
    first, second = first.drop_vars(dim, errors="ignore"), second.drop_vars(dim, errors="ignore")
    return xr.concat([first, second], dim=dim, coords="minimal", compat="override", join="outer").transpose(..., dim)


def array_append(data: Any, value: Any, label: Any = None) -> Any:
    labeled = as_labeled(data)
    if not is_labeled(labeled):
        if label is not None:
            raise ProcessError("ArrayNotLabeled", "The array is not labeled, so 'label' can't be used.")
        if isinstance(labeled, xr.DataArray):
            return _concat(labeled, _one_element(labeled, value, None))
        return [python_scalar(v) for v in labeled] + [python_scalar(value)]
    labels = labels_of(labeled)
    if label is None:
        label = len(labels)
    if label in labels:
        raise ProcessError("LabelExists", f"The label {label!r} exists already in the array.")
    return _concat(labeled, _one_element(labeled, value, label))


def array_concat(array1: Any, array2: Any) -> Any:
    first, second = as_labeled(array1), as_labeled(array2)
    if is_labeled(first) and is_labeled(second):
        shared = set(map(repr, labels_of(first))) & set(map(repr, labels_of(second)))
        if shared:
            raise ProcessError("ArrayLabelConflict", f"Both arrays have the label(s) {', '.join(sorted(shared))}.")
        return _concat(first, second)
    if isinstance(first, xr.DataArray) and first.ndim > 1 or isinstance(second, xr.DataArray) and second.ndim > 1:
        first = first if isinstance(first, xr.DataArray) else _from_list(first, second)
        second = second if isinstance(second, xr.DataArray) else _from_list(second, first)
        return _concat(first, second)
    return values_of(first) + values_of(second)


def _from_list(values: list, like: xr.DataArray) -> xr.DataArray:
    """A plain list as elements along the last dimension of ``like`` (broadcast over the others)."""
    dim = like.dims[-1]
    parts = [_one_element(like.drop_vars(dim, errors="ignore"), v, None) for v in values]
    if not parts:
        return like.drop_vars(dim, errors="ignore").isel({dim: slice(0, 0)})
    return xr.concat(parts, dim=dim)


def array_modify(data: Any, values: Any, index: int, length: int = 0) -> Any:
    target, inserted = as_labeled(data), as_labeled(values)
    size = target.sizes[target.dims[-1]] if isinstance(target, xr.DataArray) else len(target)
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool) or index < 0 or index > size:
        raise ProcessError("ArrayElementNotAvailable", f"The array has no position {index} (it has {size} elements).")
    if not isinstance(length, (int, np.integer)) or length < 0:
        raise ProcessParameterInvalid(f"'length' must be an integer >= 0, got {length!r}.")
    if isinstance(target, xr.DataArray) and target.ndim > 1:
        dim = target.dims[-1]
        head, tail = target.isel({dim: slice(0, index)}), target.isel({dim: slice(index + length, None)})
        middle = inserted if isinstance(inserted, xr.DataArray) else _from_list(list(inserted), target)
        return _concat(_concat(head, middle), tail)
    old_values, new_values = values_of(target), values_of(inserted)
    result = old_values[:index] + new_values + old_values[index + length:]
    keep_labels = (is_labeled(target) or not old_values) and (is_labeled(inserted) or not new_values) and (is_labeled(target) or is_labeled(inserted))
    if not keep_labels:
        return result
    old_labels = labels_of(target) if is_labeled(target) else []
    new_labels = labels_of(inserted) if is_labeled(inserted) else []
    remaining = old_labels[:index] + old_labels[index + length:]
    conflict = set(map(repr, remaining)) & set(map(repr, new_labels))
    if conflict:
        raise ProcessError("ArrayLabelConflict", f"The label(s) {', '.join(sorted(conflict))} are in both arrays.")
    return labeled_array(result, old_labels[:index] + new_labels + old_labels[index + length:])


# --- labelled arrays ------------------------------------------------------------------------


def array_create_labeled(data: Any, labels: list) -> xr.DataArray:
    values = values_of(as_labeled(data)) if not is_list(data) else [python_scalar(v) for v in data]
    if len(values) != len(labels):
        raise ProcessError("ArrayLengthMismatch", f"{len(values)} values but {len(labels)} labels; they must match.")
    return labeled_array(values, list(labels))


def array_find_label(data: Any, label: Any) -> Any:
    labeled = as_labeled(data)
    if not is_labeled(labeled):
        return None
    for position, candidate in enumerate(labels_of(labeled)):
        if type(candidate) is type(label) or (not isinstance(label, (str, bool)) and not isinstance(candidate, (str, bool))):
            if candidate == label:
                return position
    return None


__all__ = ["array_labels", "array_append", "array_concat", "array_modify", "array_create_labeled", "array_find_label", "is_array"]
