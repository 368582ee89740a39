"""Statistics that answer an array rather than one value: extrema, quantiles and the cumulative
processes (cummax, cummin, cumsum, cumproduct).

Like every array process (see ``arrays``) they take a plain list (``None`` is no-data, NaN a number)
or a DataArray, worked on along its last dimension without computing anything. For a DataArray the
answer keeps that dimension's name: the cumulative processes keep its labels (one value per
element); extrema and quantiles drop them (their elements are not the input's), so that
``apply_dimension`` numbers the new labels 0, 1, 2, ...
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import xarray as xr

from terracube.errors import ProcessError
from terracube.processes.arrays import as_labeled, float_dtype_for, python_scalar

# --- extrema --------------------------------------------------------------------------------


def extrema(data: Any, ignore_nodata: bool = True) -> Any:
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        dim = labeled.dims[-1]
        low = labeled.min(dim, skipna=bool(ignore_nodata))
        high = labeled.max(dim, skipna=bool(ignore_nodata))
        return xr.concat([low, high], dim=dim, coords="minimal", compat="override").transpose(..., dim)
    values = list(labeled)
    if any(v is None for v in values):
        if not ignore_nodata:
            return [None, None]
        values = [v for v in values if v is not None]
    if not values:
        return [None, None]
    if any(isinstance(v, float) and math.isnan(v) for v in values):
        return [math.nan, math.nan]
    return [python_scalar(min(values)), python_scalar(max(values))]


# --- quantiles ------------------------------------------------------------------------------


def _probabilities(probabilities: Any, q: Any) -> list[float]:
    if probabilities is None and q is None:
        raise ProcessError("QuantilesParameterMissing", "quantiles needs 'probabilities' (or the deprecated 'q').")
    if probabilities is not None and q is not None:
        raise ProcessError("QuantilesParameterConflict", "Give either 'probabilities' or 'q', not both.")
    if probabilities is None:
        probabilities = q
    if isinstance(probabilities, (int, np.integer)) and not isinstance(probabilities, bool):
        count = int(probabilities)
        return [i / count for i in range(1, count)]
    values = [float(p) for p in probabilities]
    if any(b < a for a, b in zip(values, values[1:])):
        raise ProcessError("AscendingProbabilitiesRequired", f"The probabilities must be sorted in ascending order, got {values}.")
    return values


def _type7(sorted_values: list[float], p: float) -> float:
    """Hyndman & Fan type 7 on sorted values; infinities stay infinite (no inf - inf)."""
    position = (len(sorted_values) - 1) * p
    below = int(math.floor(position))
    fraction = position - below
    low = sorted_values[below]
    if fraction == 0 or below + 1 >= len(sorted_values):
        return low
    high = sorted_values[below + 1]
    if low == high or math.isinf(low):
        return low
    if math.isinf(high):
        return high
    return low + (high - low) * fraction


def quantiles(data: Any, probabilities: Any = None, q: Any = None, ignore_nodata: bool = True) -> Any:
    wanted = _probabilities(probabilities, q)
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        dim = labeled.dims[-1]
        values = labeled if labeled.dtype.kind == "f" else labeled.astype(float_dtype_for(labeled.dtype))
        if values.chunks is not None:
            values = values.chunk({dim: -1})
        result = values.quantile(wanted, dim=dim, skipna=bool(ignore_nodata), method="linear", keep_attrs=True)
        return result.rename({"quantile": dim}).drop_vars(dim).transpose(..., dim).astype(values.dtype)
    values = list(labeled)
    if any(v is None for v in values):
        if not ignore_nodata:
            return [None] * len(wanted)
        values = [v for v in values if v is not None]
    if not values:
        return [None] * len(wanted)
    if any(isinstance(v, float) and math.isnan(v) for v in values):
        return [math.nan] * len(wanted)
    ordered = sorted(float(v) for v in values)
    return [python_scalar(_type7(ordered, p)) for p in wanted]


# --- cumulative -----------------------------------------------------------------------------


def _accumulate_array(data: xr.DataArray, ufunc: np.ufunc, ignore_nodata: bool, neutral: float) -> xr.DataArray:
    dim = data.dims[-1]
    values = data if data.dtype.kind == "f" else data.astype(float_dtype_for(data.dtype))

    def accumulate(array: np.ndarray) -> np.ndarray:
        missing = np.isnan(array)
        if ignore_nodata:
            result = ufunc.accumulate(np.where(missing, neutral, array), axis=-1)
            return np.where(missing, np.nan, result).astype(array.dtype, copy=False)
        return ufunc.accumulate(array, axis=-1).astype(array.dtype, copy=False)  # NaN propagates

    return xr.apply_ufunc(
        accumulate,
        values,
        input_core_dims=[[dim]],
        output_core_dims=[[dim]],
        dask="parallelized",
        output_dtypes=[values.dtype],
        dask_gufunc_kwargs={"allow_rechunk": True},
        keep_attrs=True,
    ).transpose(*data.dims)


def _accumulate(data: Any, ignore_nodata: bool, combine: Callable[[Any, Any], Any], ufunc: np.ufunc, neutral: float) -> Any:
    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        return _accumulate_array(labeled, ufunc, bool(ignore_nodata), neutral)
    result: list = []
    running: Any = None
    broken = False
    for value in labeled:
        if value is None or broken:
            result.append(None)
            broken = broken or not ignore_nodata
            continue
        running = value if running is None else combine(running, value)
        result.append(python_scalar(running))
    return result


def _nan_max(a: Any, b: Any) -> Any:
    return a if (isinstance(a, float) and math.isnan(a)) or a >= b else b


def _nan_min(a: Any, b: Any) -> Any:
    return a if (isinstance(a, float) and math.isnan(a)) or a <= b else b


def cummax(data: Any, ignore_nodata: bool = True) -> Any:
    return _accumulate(data, ignore_nodata, _nan_max, np.maximum, -np.inf)


def cummin(data: Any, ignore_nodata: bool = True) -> Any:
    return _accumulate(data, ignore_nodata, _nan_min, np.minimum, np.inf)


def cumsum(data: Any, ignore_nodata: bool = True) -> Any:
    return _accumulate(data, ignore_nodata, lambda a, b: a + b, np.add, 0.0)


def cumproduct(data: Any, ignore_nodata: bool = True) -> Any:
    return _accumulate(data, ignore_nodata, lambda a, b: a * b, np.multiply, 1.0)
