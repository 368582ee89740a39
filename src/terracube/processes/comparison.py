"""Comparison processes, for JSON values and for cubes alike.

Scalars follow the spec and its test suite literally: null in gives null out, NaN compares as IEEE
754 says (``eq(NaN, NaN)`` is false), and comparing a number with a string or boolean is false.

In a cube NaN *is* the no-data value, so an element-wise comparison gives no-data (NaN) where an
operand is NaN. A boolean array cannot hold that, so comparisons of arrays that can carry no-data
answer float32 arrays of 1.0 (true), 0.0 (false) and NaN (no-data); arrays that cannot carry no-data
(integers, booleans) answer plain boolean arrays. ``logic``, ``mask`` and ``if`` read both.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np
import xarray as xr

from terracube.errors import ProcessParameterInvalid
from terracube.processes.arrays import can_hold_nodata, is_array, is_number, python_scalar
from terracube.processes.logic import or_


def missing_mask(operands: tuple[Any, ...]) -> Any:
    """Where any array operand is no-data (NaN); None when no operand can be no-data."""
    missing = None
    for value in operands:
        if is_array(value) and can_hold_nodata(value) and value.dtype.kind in "fc":
            isnan = value.isnull() if isinstance(value, xr.DataArray) else np.isnan(value)
            missing = isnan if missing is None else (missing | isnan)
    return missing


def with_nodata(result: Any, missing: Any) -> Any:
    """A boolean array as float32 1/0 with NaN where ``missing``; unchanged when nothing can be missing."""
    if missing is None:
        return result
    result = result.astype(np.float32)
    if isinstance(result, xr.DataArray):
        return result.where(~missing)
    return np.where(missing, np.float32(np.nan), result)


def compare_arrays(function: Callable[[Any, Any], Any], *operands: Any) -> Any:
    """An element-wise comparison where at least one operand is an array."""
    operands = tuple(python_scalar(v) for v in operands)
    if any(v is None for v in operands):
        template = next(v for v in operands if is_array(v))
        nodata = xr.full_like(template, np.nan, dtype=np.float32) if isinstance(template, xr.DataArray) else np.full(template.shape, np.nan, np.float32)
        return nodata
    for value in operands:
        if not is_array(value) and not is_number(value) and not isinstance(value, (bool, str)):
            raise ProcessParameterInvalid(f"Can't compare an array with {type(value).__name__} {value!r}.")
    with np.errstate(invalid="ignore"):
        result = function(*operands)
    return with_nodata(result, missing_mask(operands))


# --- equality -------------------------------------------------------------------------------


def _equal_scalars(x: Any, y: Any, delta: Any, case_sensitive: bool) -> bool:
    if is_number(x) and is_number(y):
        if delta:
            return bool(abs(x - y) <= delta)
        return bool(x == y)
    if isinstance(x, (bool, np.bool_)) or isinstance(y, (bool, np.bool_)):
        return isinstance(x, (bool, np.bool_)) and isinstance(y, (bool, np.bool_)) and bool(x) == bool(y)
    if isinstance(x, str) and isinstance(y, str):
        return x == y if case_sensitive else x.casefold() == y.casefold()
    if isinstance(x, str) or isinstance(y, str) or is_number(x) or is_number(y):
        return False
    return bool(x == y)


def _equal_arrays(x: Any, y: Any, delta: Any) -> Any:
    if delta:
        return compare_arrays(lambda a, b: np.abs(a - b) <= delta, x, y)
    return compare_arrays(operator.eq, x, y)


def eq(x: Any, y: Any, delta: Any = None, case_sensitive: bool = True) -> Any:
    x, y = python_scalar(x), python_scalar(y)
    if is_array(x) or is_array(y):
        return _equal_arrays(x, y, delta)
    if x is None or y is None:
        return None
    return _equal_scalars(x, y, delta, case_sensitive)


def neq(x: Any, y: Any, delta: Any = None, case_sensitive: bool = True) -> Any:
    x, y = python_scalar(x), python_scalar(y)
    if is_array(x) or is_array(y):
        if delta:
            return compare_arrays(lambda a, b: np.abs(a - b) > delta, x, y)
        return compare_arrays(operator.ne, x, y)
    if x is None or y is None:
        return None
    return not _equal_scalars(x, y, delta, case_sensitive)


# --- order ----------------------------------------------------------------------------------


def _order(function: Callable[[Any, Any], Any], or_equal: bool) -> Callable[[Any, Any], Any]:
    def compare(x: Any, y: Any) -> Any:
        x, y = python_scalar(x), python_scalar(y)
        if is_array(x) or is_array(y):
            return compare_arrays(function, x, y)
        if x is None or y is None:
            return None
        if is_number(x) and is_number(y):
            return bool(function(x, y))
        # Not numbers: only equal values are "less/greater than or equal"; strings are not ordered.
        return or_equal and _equal_scalars(x, y, None, True)

    return compare


_gt = _order(operator.gt, or_equal=False)
_gte = _order(operator.ge, or_equal=True)
_lt = _order(operator.lt, or_equal=False)
_lte = _order(operator.le, or_equal=True)


def gt(x: Any, y: Any) -> Any:
    return _gt(x, y)


def gte(x: Any, y: Any) -> Any:
    return _gte(x, y)


def lt(x: Any, y: Any) -> Any:
    return _lt(x, y)


def lte(x: Any, y: Any) -> Any:
    return _lte(x, y)


def between(x: Any, min: Any, max: Any, exclude_max: bool = False) -> Any:  # noqa: A002 - the spec's names
    x, low, high = python_scalar(x), python_scalar(min), python_scalar(max)
    upper = operator.lt if exclude_max else operator.le
    if is_array(x):
        if low is None or high is None or low > high:
            return _all_false(x)
        return compare_arrays(lambda a: (a >= low) & upper(a, high), x)
    if x is None:
        return None
    if not is_number(x) or not is_number(low) or not is_number(high) or low > high:
        return False
    return bool(x >= low and upper(x, high))


def _all_false(x: Any) -> Any:
    result = xr.zeros_like(x, dtype=bool) if isinstance(x, xr.DataArray) else np.zeros(np.shape(x), dtype=bool)
    return with_nodata(result, missing_mask((x,)))


# --- what a value is ------------------------------------------------------------------------


def _array_test(x: Any, function: Callable[[Any], Any], other_dtypes: bool) -> Any:
    if x.dtype.kind in "biufc":
        return function(x)
    if isinstance(x, xr.DataArray):
        return xr.full_like(x, other_dtypes, dtype=bool)
    return np.full(x.shape, other_dtypes, dtype=bool)


def is_nan(x: Any) -> Any:
    x = python_scalar(x)
    if is_array(x):
        return _array_test(x, np.isnan, False)
    return is_number(x) and x != x


def is_nodata(x: Any) -> Any:
    """Null; in a cube, NaN (the cube's no-data value)."""
    x = python_scalar(x)
    if is_array(x):
        return _array_test(x, np.isnan, False) if x.dtype.kind != "O" else (x.isnull() if isinstance(x, xr.DataArray) else np.equal(x, None))
    return x is None


def is_valid(x: Any) -> Any:
    """Not no-data and, for numbers, finite."""
    x = python_scalar(x)
    if is_array(x):
        return _array_test(x, np.isfinite, True) if x.dtype.kind != "O" else (x.notnull() if isinstance(x, xr.DataArray) else np.not_equal(x, None))
    if x is None:
        return False
    if is_number(x):
        return bool(np.isfinite(x))
    return True


def is_infinite(x: Any) -> Any:
    x = python_scalar(x)
    if is_array(x):
        return _array_test(x, np.isinf, False)
    return is_number(x) and bool(np.isinf(x))


__all__ = ["eq", "neq", "gt", "gte", "lt", "lte", "between", "is_nan", "is_nodata", "is_valid", "is_infinite"]


# --- planned -------------------------------------------------------------------------------


def _membership(x: np.ndarray, values: list, nodata: bool) -> np.ndarray:
    """Whether each element is one of ``values``; with ``nodata``, float32 1/0 and NaN where ``x`` is NaN.

    One pass per value: numpy's ``isin`` sorts or builds tables, three times slower for the handful
    of classes a mask tests (SCL's cloud and shadow classes).
    """
    if len(values) <= 16:
        member = x == values[0]
        for value in values[1:]:
            member |= x == value
    else:
        member = np.isin(x, values)
    if not nodata:
        return member
    result = member.astype(np.float32)
    np.copyto(result, np.float32(np.nan), where=np.isnan(x))
    return result


def is_one_of(x: Any, values: list) -> Any:
    """``or`` over ``eq(x, value)`` for every value, as one operation on the pixels.

    Not an openEO process: the planner (``graph.fuse``) puts it where a graph chains such tests, so
    it must answer exactly what the chain answers, no-data included.
    """
    x = python_scalar(x)
    if isinstance(x, (xr.DataArray, np.ndarray)) and x.dtype.kind in "biuf":
        can_be_missing = x.dtype.kind == "f" and can_hold_nodata(x)
        dtype = np.float32 if can_be_missing else bool
        if isinstance(x, xr.DataArray):
            return xr.apply_ufunc(_membership, x, kwargs={"values": values, "nodata": can_be_missing}, dask="parallelized", output_dtypes=[dtype])
        return _membership(x, values, can_be_missing)
    result = eq(x, values[0])
    for value in values[1:]:
        result = or_(result, eq(x, value))
    return result
