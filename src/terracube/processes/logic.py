"""Logical processes with openEO's three-valued logic (true, false, no-data).

Scalars follow the spec's truth tables. Arrays are read the way ``comparison`` writes them: a boolean
array is true/false everywhere; a float array is true where non-zero, false where 0 and no-data where
NaN. Results that can be no-data are float32 1/0/NaN arrays, those that cannot are boolean arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from terracube.processes.arrays import is_array, is_true, nodata_as_nan, python_scalar


def _truth(value: Any) -> tuple[Any, Any, bool]:
    """(is true, is valid, may be no-data) for a boolean scalar, None or an array."""
    value = python_scalar(value)
    if value is None:
        return False, False, True
    if not is_array(value):
        return bool(value), True, False
    if value.dtype.kind == "b":
        return value, True, False
    if value.dtype.kind in "fc":
        valid = value == value  # NaN is no-data
        return valid & (value != 0), valid, True
    return value != 0, True, False


def _negate(value: Any) -> Any:
    return (not value) if isinstance(value, bool) else ~value


def _result(true: Any, valid: Any, nullable: bool) -> Any:
    """Scalars as True/False/None; arrays as bool, or float32 1/0/NaN when no-data is possible."""
    if not is_array(true) and not is_array(valid):
        return bool(true) if valid else None
    if not nullable or valid is True:
        return true
    if not is_array(true):
        true = xr.zeros_like(valid, dtype=bool) | true if isinstance(valid, xr.DataArray) else np.logical_or(np.zeros(np.shape(valid), bool), true)
    values = true.astype(np.float32)
    if isinstance(values, xr.DataArray):
        return values.where(valid)
    return np.where(valid, values, np.float32(np.nan))


def and_(x: Any, y: Any) -> Any:
    """openEO ``and``: false wins over no-data; true needs both."""
    x_true, x_valid, x_null = _truth(x)
    y_true, y_valid, y_null = _truth(y)
    false = (x_valid & _negate(x_true)) | (y_valid & _negate(y_true))
    true = x_true & y_true
    return _result(true, true | false, x_null or y_null)


def or_(x: Any, y: Any) -> Any:
    """openEO ``or``: true wins over no-data; false needs both."""
    x_true, x_valid, x_null = _truth(x)
    y_true, y_valid, y_null = _truth(y)
    true = x_true | y_true
    false = (x_valid & _negate(x_true)) & (y_valid & _negate(y_true))
    return _result(true, true | false, x_null or y_null)


def xor(x: Any, y: Any) -> Any:
    x_true, x_valid, x_null = _truth(x)
    y_true, y_valid, y_null = _truth(y)
    return _result(x_true ^ y_true, x_valid & y_valid, x_null or y_null)


def not_(x: Any) -> Any:
    x_true, x_valid, x_null = _truth(x)
    return _result(_negate(x_true), x_valid, x_null)


def if_(value: Any, accept: Any, reject: Any = None) -> Any:
    """Accept where ``value`` is true, reject elsewhere (also where it is no-data)."""
    value = python_scalar(value)
    if not is_array(value):
        return accept if value is True else reject
    condition = is_true(value)
    accept = accept if is_array(accept) else nodata_as_nan(accept)
    reject = reject if is_array(reject) else nodata_as_nan(reject)
    if isinstance(condition, xr.DataArray) or isinstance(accept, xr.DataArray) or isinstance(reject, xr.DataArray):
        return xr.where(condition, accept, reject, keep_attrs=True)
    return np.where(condition, accept, reject)


# --- reducers: all and any -------------------------------------------------------------------


def _reduce_truth(data: Any, ignore_nodata: bool, want_all: bool) -> Any:
    """``all``/``any`` over a list (None is no-data) or along the last dimension of an array."""
    from terracube.processes.arrays import as_labeled

    labeled = as_labeled(data)
    if isinstance(labeled, xr.DataArray):
        dim = labeled.dims[-1]
        true, valid, nullable = _truth(labeled)
        false = valid & ~true
        decided = false.any(dim) if want_all else true.any(dim)
        if ignore_nodata or not nullable:
            return ~decided if want_all else decided
        unknown = (~valid).any(dim)
        result = (~decided if want_all else decided).astype(np.float32)
        return result.where(decided | ~unknown)
    values = [python_scalar(v) for v in labeled]
    known = [bool(v) for v in values if v is not None]
    decisive = (False in known) if want_all else (True in known)
    if decisive:
        return not want_all
    if not ignore_nodata and len(known) < len(values):
        return None
    return want_all


def all_(data: Any, ignore_nodata: bool = True) -> Any:
    """openEO ``all`` (named ``all_`` so the builtin survives); an empty array is true."""
    return _reduce_truth(data, ignore_nodata, want_all=True)


def any_(data: Any, ignore_nodata: bool = True) -> Any:
    """openEO ``any`` (named ``any_`` so the builtin survives); an empty array is false."""
    return _reduce_truth(data, ignore_nodata, want_all=False)
