"""The test suite's values (JSON5 with ``nodata``, ``datetime``, ``labeled-array`` and ``datacube``
objects) as xarray values, and the comparison of a result with the expected value.

The comparison follows the suite's README: numbers to 10 decimals unless the case gives a ``delta``,
NaN equals NaN, ``nodata`` is null (NaN inside arrays that come from a cube or labelled array, where
NaN is the no-data value), date-times compared as instants, booleans only equal booleans.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import numpy as np
import pandas as pd
import xarray as xr

LABELS_DIM = "labels"
_TIME_ONLY = re.compile(r"^\d{2}:\d{2}(:\d{2})?")


def instant(value: Any) -> pd.Timestamp | None:
    """A date(-time) string or datetime64 as a UTC instant (naive), or None when it is not one."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if stamp is pd.NaT:
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def _is_nodata(value: Any, nodata: list) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return not isinstance(value, bool) and any(n is not None and n == value for n in nodata)


def datacube(document: dict, chunked: bool = False) -> xr.DataArray:
    """A ``{"type": "datacube"}`` document as a cube: float64 values with NaN for its no-data value.

    Dimension types travel in ``attrs["dimension_types"]``, the CRS as odc-geo's ``spatial_ref``.
    """
    import odc.geo.xr  # noqa: F401 - the .odc accessor

    dimensions = document.get("dimensions") or {}
    if isinstance(dimensions, list):  # the older form: a list of dimensions with a "name" each
        dimensions = {info["name"]: info for info in dimensions}
    dims = list(document.get("order") or dimensions)
    coords, types = {}, {}
    crs = None
    for dim in dims:
        info = dimensions[dim]
        types[dim] = info.get("type", "other")
        values = info.get("values", [])
        stamps = [instant(v) for v in values] if types[dim] == "temporal" else None
        if stamps is not None and all(s is not None for s in stamps) and not any(_TIME_ONLY.match(str(v)) for v in values):
            values = np.array([s.to_datetime64() for s in stamps], dtype="datetime64[ns]")
        elif values and all(isinstance(v, str) for v in values):
            values = np.array(values, dtype=object)
        coords[dim] = values
        crs = crs or info.get("reference_system")
    shape = [len(coords[d]) for d in dims]
    data = document.get("data")
    nodata = document.get("nodata")
    nodata = nodata if isinstance(nodata, list) else [nodata] if nodata is not None else []
    values = np.full(shape, np.nan)
    if data is not None and not (shape == [] and data == []):
        raw = np.array(data, dtype=object).reshape(shape)
        for index, value in np.ndenumerate(raw):
            if not _is_nodata(value, nodata):
                values[index] = float(value)
    cube = xr.DataArray(values, dims=dims, coords=coords, attrs={"dimension_types": types})
    if crs is not None and "x" in dims and "y" in dims:
        cube = cube.odc.assign_crs(str(crs) if not isinstance(crs, int) else f"EPSG:{crs}")
    return cube.chunk() if chunked else cube


def labeled_array(document: dict, decode_item: Callable[[Any], Any] = lambda v: v) -> xr.DataArray:
    """A ``{"type": "labeled-array"}`` as a one-dimensional DataArray labelled along ``labels``."""
    items = document["data"]
    values = [decode_item(item["value"]) for item in items]
    values = [np.nan if v is None else v for v in values]
    dtype = object if any(isinstance(v, (str, bool)) for v in values) else float
    return xr.DataArray(np.array(values, dtype=dtype), dims=[LABELS_DIM], coords={LABELS_DIM: [item["key"] for item in items]})


def decode(value: Any, callback: Callable[[dict], Any] | None = None, chunked: bool = True) -> Any:
    """JSON5 test values as xarray values; ``{"process_graph": ...}`` through ``callback`` (when given)."""
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "nodata" and len(value) == 1:
            return None
        if kind == "datetime" and "value" in value:
            return value["value"]
        if kind == "labeled-array":
            return labeled_array(value, lambda v: decode(v, callback, chunked))
        if kind == "datacube":
            return datacube(value, chunked)
        if set(value) == {"process_graph"} and callback is not None:
            return callback(value)
        return {k: decode(v, callback, chunked) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, callback, chunked) for v in value]
    return value


# --- comparison -----------------------------------------------------------------------------


class Mismatch(AssertionError):
    pass


def _scalar(value: Any) -> Any:
    if isinstance(value, xr.DataArray) and value.ndim == 0:
        value = value.values
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _same_number(actual: Any, expected: Any, delta: float, booleans_as_numbers: bool = False) -> bool:
    if booleans_as_numbers and isinstance(expected, bool) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return actual == float(expected)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if not isinstance(actual, (int, float)):
        return False
    if math.isnan(expected) or math.isnan(actual):
        return math.isnan(expected) and math.isnan(actual)
    if math.isinf(expected) or math.isinf(actual):
        return actual == expected
    return abs(actual - expected) <= delta * (1 + 1e-9) + 1e-12 * abs(expected)


def compare(actual: Any, expected: Any, delta: float = 1e-10, path: str = "result", in_array: bool = False, booleans_as_numbers: bool = False) -> None:
    """Raise ``Mismatch`` when ``actual`` is not the raw (JSON5) ``expected`` value.

    ``booleans_as_numbers`` also accepts 1/0 for true/false (only for the reference's second figure).
    """
    if isinstance(expected, dict) and expected.get("type") == "datacube":
        compare_cube(actual, datacube(expected), delta, path, values_given=expected.get("data") is not None)
        return
    if isinstance(expected, dict) and expected.get("type") == "labeled-array":
        compare_labeled_array(actual, expected, delta, path, booleans_as_numbers)
        return
    if isinstance(expected, dict) and expected.get("type") == "datetime":
        got, want = instant(_scalar(actual)), instant(expected["value"])
        if got is None or got != want:
            raise Mismatch(f"{path}: expected the instant {expected['value']}, got {actual!r}")
        return
    if isinstance(expected, dict) and expected == {"type": "nodata"}:
        expected = None
    if isinstance(actual, (xr.DataArray, np.ndarray)) and getattr(actual, "ndim", 0) >= 1 and isinstance(expected, list):
        actual, in_array = np.asarray(actual.values if isinstance(actual, xr.DataArray) else actual).tolist(), True
    if isinstance(actual, xr.DataArray):
        in_array = True  # a value taken from a cube or labelled array, where NaN is no-data
    actual = _scalar(actual)
    if expected is None:
        if actual is None or (in_array and isinstance(actual, float) and math.isnan(actual)):
            return
        raise Mismatch(f"{path}: expected no-data (null), got {actual!r}")
    if isinstance(expected, (bool, int, float)):
        if not _same_number(actual, expected, delta, booleans_as_numbers):
            raise Mismatch(f"{path}: expected {expected!r}, got {actual!r}")
    elif isinstance(expected, list):
        if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
            raise Mismatch(f"{path}: expected {_short(expected)}, got {_short(actual)}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            compare(a, e, delta, f"{path}[{i}]", in_array, booleans_as_numbers)
    elif isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            raise Mismatch(f"{path}: expected {_short(expected)}, got {_short(actual)}")
        for key in expected:
            compare(actual[key], expected[key], delta, f"{path}.{key}", in_array, booleans_as_numbers)
    elif actual != expected:
        raise Mismatch(f"{path}: expected {expected!r}, got {_short(actual)}")


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def compare_labeled_array(actual: Any, expected: dict, delta: float, path: str, booleans_as_numbers: bool = False) -> None:
    keys = [item["key"] for item in expected["data"]]
    values = [item["value"] for item in expected["data"]]
    if isinstance(actual, dict):  # e.g. a JSON object from a server
        got_keys, got_values = list(actual), list(actual.values())
    elif isinstance(actual, xr.DataArray) and actual.ndim == 1:
        dim = actual.dims[0]
        got_keys = actual.indexes[dim].tolist() if dim in actual.indexes else None
        got_values = actual.values.tolist()
    else:
        raise Mismatch(f"{path}: expected a labeled array, got {_short(actual)}")
    if got_keys is None or [str(k) for k in got_keys] != [str(k) for k in keys]:
        raise Mismatch(f"{path}: labels {got_keys} instead of {keys}")
    for i, (a, e) in enumerate(zip(got_values, values)):
        compare(a, e, delta, f"{path}[{keys[i]!r}]", in_array=True, booleans_as_numbers=booleans_as_numbers)


def _labels_equal(got: list, want: list, temporal: bool) -> bool:
    if len(got) != len(want):
        return False
    if temporal:
        return all(_same_instant(g, w) for g, w in zip(got, want))
    if want and all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in want):
        try:
            return bool(np.allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=0, atol=1e-6))
        except (TypeError, ValueError):
            return False
    return [str(g) for g in got] == [str(w) for w in want]


def _same_instant(got: Any, want: Any) -> bool:
    """Temporal labels: equal as text (``2020-djf``), else as instants (``2020-01-01`` = ``...T00:00:00Z``)."""
    if _text_label(got) == _text_label(want):
        return True
    a, b = instant(got), instant(want)
    return a is not None and b is not None and a == b


def _text_label(value: Any) -> str:
    if isinstance(value, (np.datetime64, pd.Timestamp)):
        return pd.Timestamp(value).isoformat()
    return str(value)


def compare_cube(actual: Any, expected: xr.DataArray, delta: float, path: str = "result", values_given: bool = True, check_crs: bool = True) -> None:
    if not isinstance(actual, xr.DataArray):
        raise Mismatch(f"{path}: expected a data cube, got {type(actual).__name__}")
    if set(actual.dims) != set(expected.dims):
        raise Mismatch(f"{path}: dimensions {list(actual.dims)} instead of {list(expected.dims)}")
    actual = actual.transpose(*expected.dims)
    types = expected.attrs.get("dimension_types", {})
    for dim in expected.dims:
        want = expected.indexes[dim].tolist()
        got = actual.indexes[dim].tolist() if dim in actual.indexes else (list(range(actual.sizes[dim])) if not want else None)
        if got is None or not _labels_equal(got, want, types.get(dim) == "temporal"):
            raise Mismatch(f"{path}: labels of {dim}: {_short(got)} instead of {_short(want)}")
    if check_crs:
        want_crs = _crs(expected)
        if want_crs is not None and _crs(actual) != want_crs:
            raise Mismatch(f"{path}: CRS {_crs(actual)} instead of {want_crs}")
    if values_given and expected.size:
        got_values = np.asarray(actual.values)
        try:
            got_values = got_values.astype(float)
        except (TypeError, ValueError):
            got_values = np.vectorize(lambda v: np.nan if v is None else float(v), otypes=[float])(got_values)
        want_values = expected.values
        close = np.isclose(got_values, want_values, atol=delta * (1 + 1e-9), rtol=0, equal_nan=True)
        if not close.all():
            where = tuple(int(i[0]) for i in np.nonzero(~close))
            raise Mismatch(
                f"{path}: {int((~close).sum())} of {close.size} values differ, first at {dict(zip(expected.dims, where))}: "
                f"expected {want_values[where]!r}, got {got_values[where]!r}"
            )


def _crs(cube: xr.DataArray):
    try:
        crs = cube.odc.crs
    except Exception:  # noqa: BLE001 - no spatial reference at all
        return None
    return None if crs is None else crs.epsg or crs.to_wkt()
