"""Reading the official openEO process test cases (JSON5) into terracube's values, and comparing.

The cases live in the openeo-processes repository (``tests/<process>.json5``, see its README). CI
clones this repository with ``shared/`` beside it; set ``TERRACUBE_OPENEO_PROCESSES`` to point
elsewhere.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import odc.geo.xr  # noqa: F401 - the .odc accessor
import pandas as pd
import xarray as xr

from terracube.errors import OpenEOError
from terracube.graph import Callback, parse_process_graph
from terracube.graph.evaluate import Evaluator

OFFICIAL = Path(os.environ.get("TERRACUBE_OPENEO_PROCESSES") or Path(__file__).parents[3] / "shared" / "openeo-processes")
CASES = OFFICIAL / "tests"
LABELS_DIM = "labels"


class MissingAsset(Exception):
    """A case refers to a file the suite does not ship."""


def load_json5(path: Path) -> Any:
    import json5

    return json5.loads(path.read_text(encoding="utf-8"))


def resolve_refs(value: Any, base: Path = CASES) -> Any:
    """Inline ``{"$ref": "assets/..."}``: JSON5 documents as values, other files (WKT2) as text."""
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            path = base / value["$ref"]
            if not path.is_file():
                raise MissingAsset(value["$ref"])
            return resolve_refs(load_json5(path)) if path.suffix in (".json5", ".json") else path.read_text(encoding="utf-8")
        return {k: resolve_refs(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_refs(v, base) for v in value]
    return value


def _instant(value: str) -> np.datetime64:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_datetime64().astype("datetime64[ns]")


def _is_nodata(value: Any, nodata: list) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return not isinstance(value, bool) and any(n is not None and n == value for n in nodata)


def datacube(document: dict, chunked: bool) -> xr.DataArray:
    """A ``{"type": "datacube"}`` document as a cube: float64 values with NaN for its no-data value."""
    dims = list(document["order"])
    coords, types = {}, {}
    crs = None
    for dim in dims:
        info = document["dimensions"][dim]
        types[dim] = info.get("type", "other")
        values = info.get("values", [])
        if types[dim] == "temporal":
            values = np.array([_instant(v) for v in values], dtype="datetime64[ns]")
        elif values and all(isinstance(v, str) for v in values):
            values = np.array(values, dtype=object)
        coords[dim] = values
        crs = crs or info.get("reference_system")
    shape = [len(coords[d]) for d in dims]
    data = document.get("data")
    nodata = document.get("nodata")
    nodata = nodata if isinstance(nodata, list) else [nodata] if nodata is not None else []
    if data is None:
        values = np.full(shape, np.nan)
    else:
        raw = np.array(data, dtype=object).reshape(shape)
        values = np.full(shape, np.nan)
        for index, value in np.ndenumerate(raw):
            if _is_nodata(value, nodata):
                continue
            values[index] = float(value)
    cube = xr.DataArray(values, dims=dims, coords=coords, attrs={"dimension_types": types})
    if crs is not None and "x" in dims and "y" in dims:
        cube = cube.odc.assign_crs(str(crs) if not isinstance(crs, int) else f"EPSG:{crs}")
    return cube.chunk() if chunked else cube


def decode(value: Any, evaluator: Evaluator, chunked: bool = True) -> Any:
    """JSON5 test values as terracube values; process graphs as callbacks."""
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "nodata" and len(value) == 1:
            return None
        if kind == "datetime" and "value" in value:
            return value["value"]
        if kind == "labeled-array":
            items = value["data"]
            values = [decode(item["value"], evaluator) for item in items]
            values = [np.nan if v is None else v for v in values]
            return xr.DataArray(np.array(values, dtype=object if any(isinstance(v, str) for v in values) else float), dims=[LABELS_DIM], coords={LABELS_DIM: [item["key"] for item in items]})
        if kind == "datacube":
            return datacube(value, chunked)
        if set(value) == {"process_graph"}:
            return Callback(parse_process_graph({"process_graph": value["process_graph"]}), evaluator, {})
        return {k: decode(v, evaluator, chunked) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, evaluator, chunked) for v in value]
    return value


def _same_number(actual: Any, expected: Any, delta: float) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if not isinstance(actual, (int, float)):
        return False
    if math.isnan(expected) or math.isnan(actual):
        return math.isnan(expected) and math.isnan(actual)
    if math.isinf(expected) or math.isinf(actual):
        return actual == expected
    return abs(actual - expected) <= delta


def assert_same(actual: Any, expected: Any, delta: float, path: str = "result") -> None:
    """Compare a result with a decoded expected value (10 decimals, NaN equals NaN, None for no-data)."""
    if isinstance(expected, xr.DataArray):
        assert_same_cube(actual, expected, delta, path)
        return
    if isinstance(actual, xr.DataArray) and actual.ndim == 0:
        actual = actual.values.item()
        if expected is None and isinstance(actual, float) and math.isnan(actual):
            return  # a labeled array's no-data element is NaN
    if isinstance(actual, np.generic):
        actual = actual.item()
    if expected is None:
        assert actual is None, f"{path}: expected no-data (None), got {actual!r}"
    elif isinstance(expected, (bool, int, float)):
        assert _same_number(actual, expected, delta), f"{path}: expected {expected!r}, got {actual!r}"
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: expected {expected!r}, got {actual!r}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, delta, f"{path}[{i}]")
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), f"{path}: expected {expected!r}, got {actual!r}"
        for key in expected:
            assert_same(actual[key], expected[key], delta, f"{path}.{key}")
    else:
        assert actual == expected, f"{path}: expected {expected!r}, got {actual!r}"


def assert_same_cube(actual: Any, expected: xr.DataArray, delta: float, path: str) -> None:
    assert isinstance(actual, xr.DataArray), f"{path}: expected a data cube, got {type(actual).__name__}"
    assert set(actual.dims) == set(expected.dims), f"{path}: dimensions {actual.dims} instead of {expected.dims}"
    actual = actual.transpose(*expected.dims)
    for dim in expected.dims:
        got, want = list(actual.indexes[dim]) if dim in actual.indexes else None, list(expected.indexes[dim])
        if got is not None and want and isinstance(want[0], float):
            assert len(got) == len(want) and np.allclose(got, want), f"{path}: labels of {dim}: {got} instead of {want}"
        else:
            assert got == want, f"{path}: labels of {dim}: {got} instead of {want}"
    if expected.odc.crs is not None:
        assert actual.odc.crs == expected.odc.crs, f"{path}: CRS {actual.odc.crs} instead of {expected.odc.crs}"
    if expected.attrs.get("_values_given", True) and expected.size:
        got = np.asarray(actual.values, dtype=float)
        np.testing.assert_allclose(got, expected.values, atol=delta, rtol=0, equal_nan=True, err_msg=path)


def run_case(function, case: dict, evaluator: Evaluator) -> None:
    """Call the process with the case's arguments and check "returns" or "throws"."""
    arguments = {name: decode(value, evaluator) for name, value in resolve_refs(case["arguments"]).items()}
    delta = case.get("delta", 1e-10)
    throws = case.get("throws")
    if throws and "returns" not in case:
        try:
            function(**arguments)
        except OpenEOError as error:
            assert throws is True or error.code == throws, f"raised {error.code} ({error.message}) instead of {throws}"
            return
        except Exception as error:  # noqa: BLE001 - the case only says "some exception"
            assert throws is True, f"raised {type(error).__name__}: {error} instead of {throws}"
            return
        raise AssertionError(f"expected the exception {throws}, but the process returned")
    returns = resolve_refs(case["returns"])
    expected = decode(returns, evaluator, chunked=False)
    if isinstance(returns, dict) and returns.get("type") == "datacube" and returns.get("data") is None:
        expected.attrs["_values_given"] = False
    try:
        actual = function(**arguments)
    except OpenEOError as error:
        if throws in (True, error.code):
            return
        raise
    assert_same(actual, expected, delta)
