"""``run_udf``: Python UDFs in the openEO UDF convention, each run in a sandboxed child process.

A UDF is source code that defines one of (the ``openeo.udf`` convention CDSE users write):

- ``apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray`` (or the older
  ``XarrayDataCube`` in, ``XarrayDataCube`` out). It gets the whole cube ``run_udf`` was given,
  computed, once; the cube may hold at most ``udf_max_values`` values.
- ``apply_timeseries(series: pandas.Series, context: dict) -> pandas.Series``, called once per
  pixel (and band) with the values along ``t``. It stays lazy: each dask chunk (``t`` whole) is
  one child process, started when the pixels are computed.

The UDF runs in ``udf_sandbox.py``, started by ``udf_runner.py`` (confined by bubblewrap where it
is present, setting ``udf_sandbox``) under a time limit and an address-space limit (settings
``udf_timeout`` and ``udf_memory_limit``); whatever it does, the server answers an openEO error.
docs/udf.md is the user's side of this.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import sys
import tempfile
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from terracube.cube import dimension_type
from terracube.errors import FileNotFound, ProcessError, ProcessParameterInvalid
from terracube.processes import udf_runner, udf_sandbox
from terracube.processes.arrays import float_dtype_for
from terracube.processes.env import ProcessEnv
from terracube.settings import Settings

RUNTIME = "Python"
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
# What /udf_runtimes advertises, when installed: the libraries a CDSE UDF typically imports.
LIBRARIES = ("numpy", "pandas", "xarray", "scipy", "dask", "openeo", "shapely", "pyproj", "geopandas", "scikit-learn", "rioxarray")
ENTRY_POINTS = ("apply_datacube", "apply_timeseries")
# Child processes at once: each may use udf_memory_limit, and dask may ask for many chunks together.
_SLOTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


def UdfError(message: str) -> ProcessError:
    """The one error code of a failing UDF; the message says what happened and where."""
    return ProcessError("UdfError", message)


def udf_runtimes() -> dict:
    """The ``GET /udf_runtimes`` document (openEO API 1.2): one runtime, the server's own Python."""
    libraries = {}
    for name in LIBRARIES:
        try:
            libraries[name] = {"version": metadata.version(name)}
        except metadata.PackageNotFoundError:
            continue
    version = {"libraries": libraries}
    return {
        RUNTIME: {
            "title": f"Python {PYTHON_VERSION}",
            "description": "Python UDFs in the openEO convention (apply_datacube, apply_timeseries), "
            "each run in a separate process with a time and memory limit.",
            "type": "language",
            "default": PYTHON_VERSION,
            "versions": {PYTHON_VERSION: version, "3": version},
            "links": [{"href": "https://open-eo.github.io/openeo-python-client/udf.html", "rel": "about", "title": "UDFs in the openEO Python client"}],
        }
    }


# --- checking the arguments -----------------------------------------------------------------


def _check_runtime(runtime: Any, version: Any) -> None:
    if not isinstance(runtime, str) or runtime.lower() != RUNTIME.lower():
        raise ProcessError("InvalidRuntime", f"The UDF runtime {runtime!r} is not supported; GET /udf_runtimes lists 'Python'.")
    if version is None:
        return
    # "3", "3.11" and "3.11.7" all name the server's Python; CDSE's clients send e.g. "3.8": refused.
    if not isinstance(version, str) or not (version == "3" or version == PYTHON_VERSION or version.startswith(PYTHON_VERSION + ".")):
        raise ProcessError("InvalidVersion", f"The Python version {version!r} is not available; this server runs Python {PYTHON_VERSION} (versions '3' and '{PYTHON_VERSION}').")


def _entry_point(udf: Any) -> str:
    """Which convention function the code defines, found by parsing (the server never runs UDF code)."""
    if not isinstance(udf, str) or not udf.strip():
        raise ProcessParameterInvalid("'udf' must be the UDF's Python source code.")
    if "\n" not in udf and "\r" not in udf:
        if re.match(r"^https?://", udf.strip()):
            raise ProcessParameterInvalid("'udf' is a URL; terracube runs UDF code given inline only: put the script's text in 'udf'.")
        raise FileNotFound(udf.strip(), "'udf' looks like a file path; terracube runs UDF code given inline only: put the UDF's source code in 'udf'.")
    try:
        tree = ast.parse(udf, filename=udf_sandbox.UDF_FILENAME)
    except SyntaxError as error:
        raise UdfError(f"The UDF is not valid Python: {error.msg} (line {error.lineno} of the UDF).") from None
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for name in ENTRY_POINTS:
        if name in defined:
            return name
    raise UdfError(f"The UDF defines none of {', '.join(ENTRY_POINTS)}; terracube calls one of these (see docs/udf.md).")


# --- the process ----------------------------------------------------------------------------


def run_udf(data: Any, udf: str, runtime: str, version: str | None = None, context: Any = None, *, env: ProcessEnv) -> xr.DataArray:
    _check_runtime(runtime, version)
    function = _entry_point(udf)
    if not isinstance(data, xr.DataArray):
        raise ProcessParameterInvalid(
            f"run_udf got {type(data).__name__} as 'data'; terracube hands UDFs data cubes only "
            "(directly, or as the cube inside apply, apply_dimension and reduce_dimension)."
        )
    settings = env.settings
    context = {} if context is None else context
    sandbox = _Sandbox(udf, function, context, settings, env.logger, env.node_id, env.udf_sandbox_required)
    if function == "apply_timeseries":
        return _timeseries(data, sandbox)
    if data.size > settings.udf_max_values:
        raise UdfError(
            f"apply_datacube gets the whole cube at once, and this one has {data.size:,} values, more than the "
            f"limit of {settings.udf_max_values:,} (setting udf_max_values): filter it smaller, or use apply_timeseries."
        )
    result = sandbox(data.compute(**env.compute), dtype=None)
    return _restore(result, data)


def _timeseries(data: xr.DataArray, sandbox: _Sandbox) -> xr.DataArray:
    temporal = [d for d in data.dims if dimension_type(data, d) == "temporal"]
    if "t" not in data.dims and len(temporal) != 1:
        raise UdfError("apply_timeseries needs a cube with a temporal dimension 't'.")
    dim = "t" if "t" in data.dims else temporal[0]
    moved = data.rename({dim: "t"}) if dim != "t" else data
    dtype = moved.dtype if moved.dtype.kind == "f" else np.dtype(float_dtype_for(moved.dtype))
    if moved.chunks is None:
        result = sandbox(moved, dtype=dtype)
    else:
        # One child per chunk, each with whole series: the UDF runs when the chunk is computed.
        whole = moved.chunk({"t": -1})
        result = xr.map_blocks(lambda block: sandbox(block, dtype=dtype), whole, template=whole.astype(dtype))
    result = result.rename({"t": dim}) if dim != "t" else result
    return result.assign_attrs(data.attrs)


def _restore(result: xr.DataArray, data: xr.DataArray) -> xr.DataArray:
    """Give the UDF's answer back what the exchange dropped: the cube's attrs and its CRS coordinate."""
    attrs = {**data.attrs, **result.attrs}
    for name, coord in data.coords.items():
        if name not in result.coords and not coord.dims:
            result = result.assign_coords({name: coord})
    return result.assign_attrs(attrs)


class _Sandbox:
    """Runs the UDF on one in-memory array in a fresh process (udf_runner.py), under the configured limits."""

    def __init__(self, code: str, function: str, context: Any, settings: Settings, logger: Any, node_id: str | None, sandbox_required: bool = False):
        self.code, self.function, self.context = code, function, context
        self.node_id = node_id
        self.settings = settings
        self.timeout = float(settings.udf_timeout)
        self.memory = int(settings.udf_memory_limit)
        self.logger = logger
        # Decided before any data is read, so a server that may not run UDFs says so at once. A server
        # with accounts sets ``udf_sandbox_required`` on the ProcessEnv: bubblewrap, or no UDF at all.
        self.how = udf_runner.confinement(settings.udf_sandbox, bool(sandbox_required))

    def __call__(self, array: xr.DataArray, dtype: Any) -> xr.DataArray:
        request = {"code": self.code, "function": self.function, "context": self.context, "dtype": None if dtype is None else np.dtype(dtype).str}
        try:
            json.dumps(request)
        except (TypeError, ValueError) as error:
            raise ProcessParameterInvalid(f"run_udf's 'context' must be JSON data: {error}.") from None
        with _SLOTS, tempfile.TemporaryDirectory(prefix="terracube-udf-") as tmp:
            directory = Path(tmp)
            udf_sandbox.save_array(array, directory, "input")
            outcome = udf_runner.run(directory, request, self.how, self.settings, self.timeout)
            self._log_output(outcome.log)
            result = self._result(directory / "answer", outcome)
        if dtype is not None:
            result = result.astype(dtype, copy=False)
        return result

    def _log_output(self, output: bytes) -> None:
        """What the UDF printed goes to the job's or request's log, as CDSE shows it."""
        text = output.decode("utf-8", "replace").strip()
        if text and self.logger is not None:
            self.logger.info("UDF output:\n%s", text, extra={"node_id": self.node_id})

    def _result(self, answer: Path, outcome: udf_runner.Outcome) -> xr.DataArray:
        if outcome.timed_out:
            raise UdfError(f"The UDF ran longer than the time limit of {self.timeout:g} s and was stopped (setting udf_timeout).")
        try:
            status, result = udf_sandbox.read_answer(answer)
        except (OSError, ValueError, TypeError, KeyError, IndexError) as error:
            raise UdfError(f"The UDF's answer could not be read: {error}.") from None
        limit = f"{self.memory / 2**30:.3g} GiB"
        if status is None:
            code = outcome.returncode
            tail = outcome.log[-2000:].decode("utf-8", "replace").strip()
            if code == -signal.SIGXCPU:
                raise UdfError(f"The UDF used more than {udf_runner.cpu_seconds(self.timeout)} s of CPU time and was stopped (setting udf_timeout).")
            if code < 0:
                name = signal.Signals(-code).name
                raise UdfError(f"The UDF process ended with signal {name}; a common cause is the memory limit of {limit} (setting udf_memory_limit).")
            if outcome.confinement == "bubblewrap" and code == 1 and tail.startswith("bwrap:"):
                raise udf_runner.SandboxUnavailable(f"The UDF sandbox (bubblewrap) did not start: {tail}")
            raise UdfError(f"The UDF process ended (exit code {code}) without an answer: {tail or 'no output'}")
        if status.get("ok"):
            return result
        if status.get("kind") == "memory":
            raise UdfError(f"The UDF ran out of memory: it may use {limit} (setting udf_memory_limit).")
        if status.get("kind") == "size":
            raise UdfError(f"The UDF's result is larger than its output limit of {limit} plus metadata (setting udf_memory_limit).")
        where = f" (line {status['line']} of the UDF: {status['source']})" if status.get("line") else ""
        raise UdfError(f"The UDF raised {status.get('type')}: {status.get('message')}{where}")
