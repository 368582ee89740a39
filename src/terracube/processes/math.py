"""Element-wise math processes: the same function for a JSON number, a numpy array and a lazy cube.

The rules (see ``arrays`` for the whole value convention):

* A ``None`` (null) operand makes a scalar result ``None``; next to an array it is NaN, the cube's
  no-data value. NaN in gives NaN out, as IEEE 754 says.
* Scalars in, plain Python numbers out (JSON serialisable); arrays in, arrays out, lazily: nothing
  here computes a dask array.
* Scalars mixed into arrays are Python scalars, which numpy treats as "weak", so a float32 cube stays
  float32 (``cube * np.float64(2)`` would be float64 and double the memory).
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np
import xarray as xr

from terracube.errors import ProcessError, ProcessParameterInvalid
from terracube.processes.arrays import float_dtype_for, is_array, is_number, nodata_as_nan, python_scalar, reduce_array


def elementwise(function: Callable[..., Any], *operands: Any, names: tuple[str, ...] = ()) -> Any:
    """Apply a numpy-style function to scalars or arrays, with openEO's null handling."""
    operands = tuple(python_scalar(v) for v in operands)
    if any(is_array(v) for v in operands):
        operands = tuple(v if is_array(v) else nodata_as_nan(v) for v in operands)
        with np.errstate(all="ignore"):
            return function(*operands)
    if any(v is None for v in operands):
        return None
    for position, value in enumerate(operands):
        if not is_number(value):
            name = names[position] if position < len(names) else f"argument {position + 1}"
            raise ProcessParameterInvalid(f"'{name}' must be a number, got {type(value).__name__} {value!r}.")
    with np.errstate(all="ignore"):
        return python_scalar(function(*(np.asarray(v) for v in operands)))


def _as_float(value: Any) -> Any:
    """Integer arrays as floats before arithmetic that would overflow or truncate (uint16 - uint16)."""
    if is_array(value) and value.dtype.kind in "biu":
        return value.astype(float_dtype_for(value.dtype))
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biu":
        return value.astype("float64")
    return value


# --- arithmetic -----------------------------------------------------------------------------


def add(x: Any, y: Any) -> Any:
    return elementwise(operator.add, x, y, names=("x", "y"))


def subtract(x: Any, y: Any) -> Any:
    return elementwise(operator.sub, x, y, names=("x", "y"))


def multiply(x: Any, y: Any) -> Any:
    return elementwise(operator.mul, x, y, names=("x", "y"))


def divide(x: Any, y: Any) -> Any:
    # numpy semantics: 1/0 is inf, 0/0 is NaN, never an exception (the spec allows both).
    return elementwise(lambda a, b: np.true_divide(a, b), x, y, names=("x", "y"))


def absolute(x: Any) -> Any:
    return elementwise(np.abs, x, names=("x",))


def sgn(x: Any) -> Any:
    return elementwise(np.sign, x, names=("x",))


def sqrt(x: Any) -> Any:
    return elementwise(np.sqrt, x, names=("x",))


def power(base: Any, p: Any) -> Any:
    # Integers to negative powers fail in numpy: compute in floats when an integer array meets a power.
    return elementwise(lambda b, e: np.power(_as_float(b), e), base, p, names=("base", "p"))


def exp(p: Any) -> Any:
    return elementwise(np.exp, p, names=("p",))


def ln(x: Any) -> Any:
    return elementwise(np.log, x, names=("x",))


def log(x: Any, base: Any) -> Any:
    return elementwise(lambda a, b: np.log(_as_float(a)) / np.log(b), x, base, names=("x", "base"))


def floor(x: Any) -> Any:
    return elementwise(np.floor, x, names=("x",))


def ceil(x: Any) -> Any:
    return elementwise(np.ceil, x, names=("x",))


def int_(x: Any) -> Any:
    """openEO ``int``: the integer part, towards zero (named ``int_`` so the builtin survives).

    NaN has no integer part: a scalar NaN gives null (as the official cases say); in a cube NaN is
    the no-data value anyway.
    """
    result = elementwise(np.trunc, x, names=("x",))
    return None if isinstance(result, float) and result != result else result


def round_(x: Any, p: int = 0) -> Any:
    """openEO ``round``: to ``p`` decimals, halves to even (numpy's rule, as the spec asks)."""
    # DataArray.round, not np.round: numpy computes a dask-backed DataArray into memory.
    return elementwise(lambda a: a.round(int(p)) if isinstance(a, xr.DataArray) else np.round(a, int(p)), x, names=("x",))


def mod(x: Any, y: Any) -> Any:
    """Remainder with the sign of the divisor (numpy's rule).

    ``y = 0`` gives ±inf or NaN like a division; an infinite divisor leaves a finite ``x`` as it is
    (what the official cases expect for ``mod(2, ±inf)``).
    """

    def _mod(a: Any, b: Any) -> Any:
        where = xr.where if isinstance(a, xr.DataArray) or isinstance(b, xr.DataArray) else np.where
        remainder = where(b == 0, np.true_divide(a, b), np.mod(a, b))
        return where(np.isinf(b) & np.isfinite(a), a, remainder)

    return elementwise(_mod, x, y, names=("x", "y"))


def normalized_difference(x: Any, y: Any) -> Any:
    return elementwise(lambda a, b: (_as_float(a) - b) / (_as_float(a) + b), x, y, names=("x", "y"))


def linear_scale_range(x: Any, inputMin: Any, inputMax: Any, outputMin: Any = 0, outputMax: Any = 1) -> Any:  # noqa: N803
    """Scale ``x`` from the input range to the output range; ``x`` is clipped to the input range first."""
    in_min, in_max, out_min, out_max = (python_scalar(v) for v in (inputMin, inputMax, outputMin, outputMax))
    low, high = min(in_min, in_max), max(in_min, in_max)

    def scale(value: Any) -> Any:
        value = np.minimum(np.maximum(value, low), high)
        return ((value - in_min) / (in_max - in_min)) * (out_max - out_min) + out_min

    return elementwise(scale, x, names=("x",))


def clip(x: Any, min: Any, max: Any) -> Any:  # noqa: A002 - the spec's parameter names
    low, high = python_scalar(min), python_scalar(max)
    if is_number(low) and is_number(high) and high < low:
        raise ProcessError("MinMaxSwapped", f"clip: 'max' ({high}) is smaller than 'min' ({low}).")
    return elementwise(lambda v: np.minimum(np.maximum(v, low), high), x, names=("x",))


def constant(x: Any) -> Any:
    return x


def pi() -> float:
    return float(np.pi)


def e() -> float:
    return float(np.e)


# --- statistics over an array (reducers) -----------------------------------------------------
# Over the last dimension of a DataArray with xarray's own reductions (skipna = ignore_nodata, so
# float32 stays float32); over the non-null values of a plain list with numpy.


def _stat(xarray_method: str, numpy_function: Callable[[np.ndarray], Any], **xarray_kwargs: Any):
    def on_xarray(data: xr.DataArray, dim: str, skipna: bool) -> xr.DataArray:
        return getattr(data, xarray_method)(dim, skipna=skipna, keep_attrs=True, **xarray_kwargs)

    return on_xarray, numpy_function


def _nanmedian_last_axis(values: np.ndarray) -> np.ndarray:
    """The median of the non-NaN values along the last axis, by one sort.

    numpy's ``nanmedian`` goes through masked arrays for short axes (a time series of a few dozen
    dates), four times slower than sorting: NaN sorts last, so the middle of the first ``valid``
    elements is the median.
    """
    ordered = np.sort(values, axis=-1)
    valid = np.count_nonzero(~np.isnan(ordered), axis=-1)[..., None]
    low = np.take_along_axis(ordered, np.maximum(valid - 1, 0) // 2, axis=-1)[..., 0]
    high = np.take_along_axis(ordered, valid // 2, axis=-1)[..., 0]
    with np.errstate(invalid="ignore"):
        median = (low + high) / 2
    return np.where(valid[..., 0] > 0, median, np.nan).astype(values.dtype, copy=False)


def _median_on_xarray(data: xr.DataArray, dim: str, skipna: bool) -> xr.DataArray:
    if not skipna or data.dtype.kind != "f" or data.sizes[dim] == 0:
        return data.median(dim, skipna=skipna, keep_attrs=True)
    if data.chunks is not None:
        data = data.chunk({dim: -1})
    return xr.apply_ufunc(
        _nanmedian_last_axis, data, input_core_dims=[[dim]], dask="parallelized", output_dtypes=[data.dtype], keep_attrs=True
    )


_MEAN = _stat("mean", np.mean)
_MEDIAN = (_median_on_xarray, np.median)
_MIN = _stat("min", np.min)
_MAX = _stat("max", np.max)
_SUM = _stat("sum", np.sum, min_count=1)
_PRODUCT = _stat("prod", np.prod, min_count=1)
_SD = _stat("std", lambda v: np.std(v, ddof=1), ddof=1)
_VARIANCE = _stat("var", lambda v: np.var(v, ddof=1), ddof=1)


def mean(data: Any, ignore_nodata: bool = True) -> Any:
    return reduce_array(data, ignore_nodata, *_MEAN)


def median(data: Any, ignore_nodata: bool = True) -> Any:
    return reduce_array(data, ignore_nodata, *_MEDIAN)


def min_(data: Any, ignore_nodata: bool = True) -> Any:
    """openEO ``min`` (named ``min_`` so the builtin survives)."""
    return reduce_array(data, ignore_nodata, *_MIN)


def max_(data: Any, ignore_nodata: bool = True) -> Any:
    """openEO ``max`` (named ``max_`` so the builtin survives)."""
    return reduce_array(data, ignore_nodata, *_MAX)


def sum_(data: Any, ignore_nodata: bool = True) -> Any:
    """openEO ``sum``; all no-data gives no-data, not 0."""
    return reduce_array(data, ignore_nodata, *_SUM)


def product(data: Any, ignore_nodata: bool = True) -> Any:
    return reduce_array(data, ignore_nodata, *_PRODUCT)


def sd(data: Any, ignore_nodata: bool = True) -> Any:
    """Sample standard deviation (ddof = 1)."""
    return reduce_array(data, ignore_nodata, *_SD)


def variance(data: Any, ignore_nodata: bool = True) -> Any:
    """Sample variance (ddof = 1)."""
    return reduce_array(data, ignore_nodata, *_VARIANCE)


# The xarray reduction behind each reducer process, for ``reduce_dimension``'s fast path.
XARRAY_REDUCERS = {
    "mean": _MEAN[0],
    "median": _MEDIAN[0],
    "min": _MIN[0],
    "max": _MAX[0],
    "sum": _SUM[0],
    "product": _PRODUCT[0],
    "sd": _SD[0],
    "variance": _VARIANCE[0],
}


def nan() -> float:
    """openEO ``nan`` (a proposal): not a number, as a JSON value can't be."""
    return float("nan")
