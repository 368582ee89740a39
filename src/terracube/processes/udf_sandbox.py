"""The child side of ``run_udf``: runs one Python UDF in a process of its own.

The server starts ``python -I udf_sandbox.py WORKDIR MEMORY_BYTES`` (a fresh interpreter, not a
fork of the server's threads), so a UDF that crashes, loops or eats memory takes only this
process with it. The array travels through files in WORKDIR as ``.npz`` plus JSON, never as a
pickle: the server reads the UDF's answer with ``allow_pickle=False``, so a UDF cannot run code
inside the server by crafting its output.

This file imports nothing from terracube, so that the child starts with numpy, pandas and xarray
only; the server imports ``save_array``/``load_array`` from here to speak the same format.
"""

from __future__ import annotations

import inspect
import json
import linecache
import sys
import traceback
from pathlib import Path

import numpy as np

UDF_FILENAME = "<udf>"


# --- the exchange format (server and child) ------------------------------------------------


def _json_safe(attrs: dict) -> dict:
    """The attributes JSON can carry; others (CRS objects, functions) stay behind."""
    safe = {}
    for key, value in attrs.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, np.ndarray):
            value = value.tolist()
        try:
            json.dumps(value, allow_nan=True)
        except (TypeError, ValueError):
            continue
        safe[str(key)] = value
    return safe


def _plain(values: np.ndarray, what: str) -> np.ndarray:
    if values.dtype == object:
        # Band names and other labels are object arrays of str in xarray; numpy's unicode is plain.
        try:
            return values.astype(str) if all(isinstance(v, str) for v in values.ravel()) else values.astype(float)
        except (TypeError, ValueError):
            raise ValueError(f"{what} holds Python objects; a UDF must return numbers (and text labels only).") from None
    return values


def save_array(array, directory: Path, stem: str) -> None:
    """Write an ``xarray.DataArray`` as ``STEM.npz`` (values and coordinates) and ``STEM.json``."""
    arrays = {"values": _plain(np.asarray(array.values), "The UDF's result")}
    coords = []
    for index, (name, coord) in enumerate(array.coords.items()):
        arrays[f"coord{index}"] = _plain(np.asarray(coord.values), f"Coordinate '{name}'")
        coords.append({"name": str(name), "dims": [str(d) for d in coord.dims], "attrs": _json_safe(coord.attrs)})
    np.savez(directory / f"{stem}.npz", **arrays)
    meta = {"dims": [str(d) for d in array.dims], "coords": coords, "attrs": _json_safe(array.attrs),
            "name": array.name if isinstance(array.name, str) else None}
    (directory / f"{stem}.json").write_text(json.dumps(meta), encoding="utf-8")


def _labels(values: np.ndarray) -> np.ndarray:
    # Text labels back as Python str (object), as xarray and the rest of terracube keep them.
    return values.astype(object) if values.dtype.kind == "U" else values


def load_array(directory: Path, stem: str):
    import xarray as xr

    meta = json.loads((directory / f"{stem}.json").read_text(encoding="utf-8"))
    with np.load(directory / f"{stem}.npz", allow_pickle=False) as stored:
        coords = {c["name"]: xr.Variable(c["dims"], _labels(stored[f"coord{i}"]), attrs=c["attrs"]) for i, c in enumerate(meta["coords"])}
        return xr.DataArray(stored["values"], dims=meta["dims"], coords=coords, attrs=meta["attrs"], name=meta["name"])


# --- running the UDF (child only) -----------------------------------------------------------


def _wants_dataarray(function) -> bool:
    """``apply_datacube(cube: xarray.DataArray, ...)`` gets the array; older UDFs get an ``XarrayDataCube``."""
    import xarray as xr

    parameters = list(inspect.signature(function).parameters.values())
    annotation = parameters[0].annotation if parameters else inspect.Parameter.empty
    if isinstance(annotation, str):  # ``from __future__ import annotations`` in the UDF
        return annotation.rsplit(".", 1)[-1] == "DataArray"
    return annotation is xr.DataArray


def _call(function, value, context):
    # ``context`` is optional in the convention: pass it only to functions that take two arguments.
    takes = len(inspect.signature(function).parameters)
    return function(value, context) if takes >= 2 else function(value)


def _apply_datacube(function, cube, context):
    import xarray as xr

    if _wants_dataarray(function):
        result = _call(function, cube, context)
    else:
        from openeo.udf import XarrayDataCube

        result = _call(function, XarrayDataCube(cube), context)
    if hasattr(result, "get_array"):
        result = result.get_array()
    if not isinstance(result, xr.DataArray):
        raise TypeError(f"apply_datacube must return an xarray.DataArray (or XarrayDataCube), not {type(result).__name__}.")
    return result


def _apply_timeseries(function, cube, context, dtype: str):
    """Call the UDF once per pixel with a ``pandas.Series`` over ``t`` (labels: the dates)."""
    import pandas as pd

    moved = cube.transpose(..., "t")
    index = pd.Index(moved.indexes["t"]) if "t" in moved.indexes else pd.RangeIndex(moved.sizes["t"])
    rows = moved.values.reshape(-1, moved.sizes["t"])
    out = np.empty(rows.shape, dtype=dtype)
    for i, row in enumerate(rows):
        answer = _call(function, pd.Series(row, index=index, name="values", copy=False), context)
        values = np.asarray(answer.values if hasattr(answer, "values") else answer, dtype=dtype).ravel()
        if values.shape != (len(index),):
            raise ValueError(f"apply_timeseries returned {values.size} values for a series of {len(index)}; it must keep the length.")
        out[i] = values
    return moved.copy(data=out.reshape(moved.shape)).transpose(*cube.dims)


def _udf_line(error: BaseException, code: str) -> dict:
    """Where in the UDF the error happened: line number and text, for the user's message."""
    line = getattr(error, "lineno", None) if isinstance(error, SyntaxError) else None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == UDF_FILENAME:
            line = frame.lineno
    if not line:
        return {}
    lines = code.splitlines()
    return {"line": line, "source": lines[line - 1].strip() if 0 < line <= len(lines) else ""}


def run(directory: Path) -> dict:
    request = json.loads((directory / "request.json").read_text(encoding="utf-8"))
    code = request["code"]
    try:
        # A linecache entry lets tracebacks printed by the UDF itself show its own lines.
        linecache.cache[UDF_FILENAME] = (len(code), None, code.splitlines(True), UDF_FILENAME)
        namespace = {"__name__": "__udf__"}
        exec(compile(code, UDF_FILENAME, "exec"), namespace)  # noqa: S102 - running the UDF is what this process is for
        function = namespace[request["function"]]
        cube = load_array(directory, "input")
        if request["function"] == "apply_timeseries":
            result = _apply_timeseries(function, cube, request["context"], request["dtype"])
        else:
            result = _apply_datacube(function, cube, request["context"])
        save_array(result, directory, "output")
        return {"ok": True}
    except MemoryError:
        return {"ok": False, "kind": "memory"}
    except BaseException as error:  # noqa: BLE001 - the UDF's own errors (even SystemExit) go back as data
        return {"ok": False, "kind": "error", "type": type(error).__name__, "message": str(error), **_udf_line(error, code)}


def main(argv: list[str]) -> int:
    directory, memory = Path(argv[1]), int(argv[2])
    # The libraries a UDF uses are imported before the limit, so the limit is the UDF's own budget.
    import pandas  # noqa: F401
    import xarray  # noqa: F401

    if memory > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    status = run(directory)
    (directory / "status.json").write_text(json.dumps(status), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
