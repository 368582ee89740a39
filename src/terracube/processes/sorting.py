"""Sorting: order, sort and rearrange.

Plain lists follow the spec literally: ``nodata=null`` removes no-data values, ``true`` puts them
last, ``false`` first; date(-time) strings are ordered as instants, never as text. Ties keep their
original order in both directions (a stable sort), which is what the official cases expect.

On a DataArray the sort runs along the last dimension for every other position at once. A cube
can't hold rows of different lengths, so there ``nodata=null`` keeps no-data values (NaN) at the
end instead of removing them, and the sorted dimension loses its labels (they no longer belong to
the values); ``rearrange`` with a plain list of positions keeps the labels it picks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from terracube.errors import ProcessParameterInvalid
from terracube.processes.arrays import as_labeled, python_scalar


def _key(value: Any) -> float:
    """A number, or a date(-time) string as nanoseconds since the epoch."""
    if isinstance(value, str):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return float(stamp.value)
    return float(value)


def _is_nodata(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _order_list(values: list, asc: bool, nodata: bool | None) -> list[int]:
    present = [i for i, v in enumerate(values) if not _is_nodata(v)]
    missing = [i for i, v in enumerate(values) if _is_nodata(v)]
    keys = {i: _key(values[i]) for i in present}
    # Stable in both directions: sort by the (possibly negated) key, ties by position.
    ranked = sorted(present, key=lambda i: keys[i] if asc else -keys[i])
    if nodata is None:
        return ranked
    return ranked + missing if nodata else missing + ranked


def _order_array(data: xr.DataArray, asc: bool, nodata: bool | None) -> xr.DataArray:
    dim = data.dims[-1]

    def order_rows(values: np.ndarray) -> np.ndarray:
        numbers = values.astype("datetime64[ns]").astype("int64").astype(float) if values.dtype.kind == "M" else values.astype(float)
        missing = np.isnan(numbers)
        keys = np.where(missing, 0.0, numbers if asc else -numbers)
        # lexsort: the last key is the primary one; no-data goes last unless nodata is false.
        return np.lexsort((keys, ~missing if nodata is False else missing), axis=-1)

    return xr.apply_ufunc(
        order_rows, data, input_core_dims=[[dim]], output_core_dims=[[dim]], exclude_dims={dim},
        dask="parallelized", output_dtypes=[np.int64], dask_gufunc_kwargs={"allow_rechunk": True, "output_sizes": {dim: data.sizes[dim]}},
    ).transpose(*data.dims)


def order(data: Any, asc: bool = True, nodata: bool | None = None) -> Any:
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        return _order_array(labeled, bool(asc), nodata)
    return _order_list(list(labeled), bool(asc), nodata)


def sort(data: Any, asc: bool = True, nodata: bool | None = None) -> Any:
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        return _take(labeled, _order_array(labeled, bool(asc), nodata))
    values = list(labeled)
    return [python_scalar(values[i]) for i in _order_list(values, bool(asc), nodata)]


def _take(data: xr.DataArray, positions: xr.DataArray) -> xr.DataArray:
    """Elements of ``data`` at per-row ``positions`` along the last dimension (labels dropped)."""
    dim = data.dims[-1]
    plain = data.drop_vars([dim], errors="ignore")
    return xr.apply_ufunc(
        lambda values, index: np.take_along_axis(values, index, axis=-1),
        plain, positions.drop_vars([dim], errors="ignore"),
        input_core_dims=[[dim], [dim]], output_core_dims=[[dim]], exclude_dims={dim},
        dask="parallelized", output_dtypes=[data.dtype],
        dask_gufunc_kwargs={"allow_rechunk": True, "output_sizes": {dim: positions.sizes[dim]}},
        keep_attrs=True,
    ).transpose(*data.dims)


def rearrange(data: Any, order: Any) -> Any:
    labeled = as_labeled(data)
    if isinstance(order, xr.DataArray) and isinstance(labeled, xr.DataArray):
        return _take(labeled, order)
    positions = [int(python_scalar(i)) for i in order]
    if isinstance(labeled, xr.DataArray):
        size = labeled.sizes[labeled.dims[-1]]
        if any(not 0 <= i < size for i in positions):
            raise ProcessParameterInvalid(f"'order' has positions outside the array of {size} elements.")
        return labeled.isel({labeled.dims[-1]: positions})
    values = list(labeled)
    if any(not 0 <= i < len(values) for i in positions):
        raise ProcessParameterInvalid(f"'order' has positions outside the array of {len(values)} elements.")
    return [python_scalar(values[i]) for i in positions]
