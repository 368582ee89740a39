"""The HTTP target: every case as a process graph POSTed to ``/result`` of a live server.

The case's node is sent as a user would send it: JSON arguments as they are (NaN and infinities as
the ``NaN``/``Infinity`` tokens the official Python client writes too), no-data as null,
date-times as strings. What JSON can't carry arrives through processes: a labelled array through
``array_create_labeled``, a datacube through ``load_url`` from a small file server the runner
starts, as a netCDF file with the case's labels, CRS and dimension types.

The answer is the JSON result or an openEO error, which counts as a throw with its code. Where the
case expects a datacube, the graph ends in ``save_result`` as netCDF, the format a user keeps a cube
in, and the file is read back as ``load_url`` reads it: labels, dimension order, values and the
CRS are compared, which a JSON cube (``{"dims", "coords", "data"}``, no CRS) can't carry. The
same graph's JSON answer must be the same cube (else the case fails with ``FormatsDisagree``). JSON
results turn NaN and infinities into null; where the case expects such a number and got null, a
second request asks the server what the value was (``is_nan``, ``is_infinite``, ``gt``), so the
comparison stays exact.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from terracube.conformance.run import CaseError
from terracube.conformance.suite import Case
from terracube.conformance.values import Mismatch, compare_cube, datacube


class FileServer:
    """Serves registered bytes at ``http://127.0.0.1:PORT/<name>`` from a daemon thread."""

    def __init__(self):
        files: dict[str, bytes] = {}
        self.files = files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                body = files.get(self.path.lstrip("/"))
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, name: str, body: bytes) -> str:
        self.files[name] = body
        return f"{self.url}/{name}"


def netcdf_bytes(document: dict) -> bytes:
    """A test-suite datacube as a netCDF file (one variable; dimension types as a JSON attribute)."""
    cube = datacube(document)
    types = cube.attrs.get("dimension_types", {})
    cube.attrs = {"openeo:dimension_types": json.dumps(types)}
    if "spatial_ref" in cube.coords:
        cube.encoding.pop("grid_mapping", None)  # odc-geo puts it in the encoding; xarray refuses it twice
        cube.attrs["grid_mapping"] = "spatial_ref"
    for dim in cube.dims:
        if dim in cube.indexes and cube.indexes[dim].dtype == object:
            cube = cube.assign_coords({dim: cube.indexes[dim].astype(str)})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cube.nc"
        cube.to_dataset(name="data").to_netcdf(path, engine="h5netcdf")
        return path.read_bytes()


def from_json(value: Any) -> Any:
    """A JSON result: cubes (``{"dims", "coords", "data"}``) as DataArrays, the rest as it is."""
    if isinstance(value, dict) and set(value) == {"dims", "coords", "data"}:
        data = np.array(value["data"], dtype=object)
        try:
            values = np.where(data == None, np.nan, data).astype(float)  # noqa: E711 - element-wise
        except (TypeError, ValueError):
            values = data
        if any(isinstance(v, bool) for v in data.ravel()):
            values = data
        coords = {dim: np.array(labels, dtype=object if labels and isinstance(labels[0], str) else None) for dim, labels in value["coords"].items()}
        # An empty cube's data is [], whatever its dimensions: the shape is in the labels.
        shape = data.shape if data.size else tuple(len(coords.get(d, ())) for d in value["dims"])
        return xr.DataArray(values.reshape(shape), dims=value["dims"], coords=coords)
    return value


def from_netcdf(body: bytes) -> xr.DataArray:
    """A netCDF result as a DataArray, read the way ``load_url`` reads one (bands, types, CRS)."""
    from terracube.formats.netcdf import read_netcdf

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "result.nc"
        path.write_bytes(body)
        return read_netcdf(path).compute()


class FormatsDisagree(Exception):
    """The JSON and the netCDF answer of the same graph are not the same cube."""


def _same_cube(from_json_answer: Any, from_netcdf_answer: xr.DataArray) -> None:
    """The JSON cube has the netCDF cube's dimensions, labels and values (null where NaN)."""
    if any(dim not in from_netcdf_answer.indexes for dim in from_netcdf_answer.dims):
        return  # unlabelled dimensions: nothing to compare the labels with
    if from_netcdf_answer.ndim == 0:  # a cube without dimensions is its value in JSON (null for NaN)
        value = from_netcdf_answer.item()
        if not (from_json_answer == value or (from_json_answer is None and isinstance(value, float) and math.isnan(value))):
            raise FormatsDisagree(f"JSON answer {from_json_answer!r}, the netCDF answer {value!r}")
        return
    try:
        compare_cube(from_json_answer, from_netcdf_answer, 1e-9, "JSON answer", check_crs=False)
    except Mismatch as mismatch:
        raise FormatsDisagree(f"{mismatch} (the netCDF answer)") from None


def _is_cube(expected: Any) -> bool:
    return isinstance(expected, dict) and expected.get("type") == "datacube"


def _non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


class HttpTarget:
    name = "terracube-http"

    def __init__(self, url: str, timeout: float = 120):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.files = FileServer()
        self._published: dict[str, str] = {}
        listing = self._request("GET", "/processes")
        self.processes = {p["id"] for p in listing.get("processes", [])}

    def supports(self, process_id: str) -> bool:
        return process_id in self.processes

    # --- HTTP ---------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None, raw_answer: bool = False) -> Any:
        data = json.dumps(body, allow_nan=True).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - the configured server
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                document = json.loads(raw)
            except ValueError:
                raise CaseError(f"HTTP{error.code}", raw[:200].decode(errors="replace")) from None
            raise CaseError(str(document.get("code", f"HTTP{error.code}")), str(document.get("message", ""))) from None
        if raw_answer:
            return raw
        return json.loads(raw) if raw else None

    def run_graph(self, nodes: dict, raw: bool = False) -> Any:
        return self._request("POST", "/result", {"process": {"process_graph": nodes}}, raw)

    # --- encoding the case ---------------------------------------------------------------------

    def _encode(self, value: Any, nodes: dict) -> Any:
        if isinstance(value, dict):
            kind = value.get("type")
            if kind == "nodata" and len(value) == 1:
                return None
            if kind == "datetime" and "value" in value:
                return value["value"]
            if kind == "labeled-array":
                node_id = f"labeled{len(nodes)}"
                items = value["data"]
                nodes[node_id] = {
                    "process_id": "array_create_labeled",
                    "arguments": {"data": [self._encode(i["value"], nodes) for i in items], "labels": [i["key"] for i in items]},
                }
                return {"from_node": node_id}
            if kind == "datacube":
                key = json.dumps(value, sort_keys=True, allow_nan=True)
                if key not in self._published:
                    self._published[key] = self.files.publish(f"cube{len(self._published)}.nc", netcdf_bytes(value))
                node_id = f"cube{len(nodes)}"
                nodes[node_id] = {"process_id": "load_url", "arguments": {"url": self._published[key], "format": "netCDF"}}
                return {"from_node": node_id}
            if set(value) == {"process_graph"}:
                return value  # a callback: sent as written
            return {k: self._encode(v, nodes) for k, v in value.items()}
        if isinstance(value, list):
            return [self._encode(v, nodes) for v in value]
        return value

    def execute(self, case: Case) -> Any:
        nodes: dict = {}
        arguments = {name: self._encode(value, nodes) for name, value in case.arguments.items()}
        if case.expects_return and _is_cube(case.returns):
            # A cube comes back as a user keeps one: a netCDF file, with its labels, types and CRS.
            nodes["case"] = {"process_id": case.process_id, "arguments": arguments}
            nodes["save"] = {"process_id": "save_result", "arguments": {"data": {"from_node": "case"}, "format": "netCDF"}, "result": True}
            cube = from_netcdf(self.run_graph(nodes, raw=True))
            nodes["save"]["arguments"]["format"] = "JSON"
            _same_cube(from_json(self.run_graph(nodes)), cube)
            return cube
        nodes["case"] = {"process_id": case.process_id, "arguments": arguments, "result": True}
        result = from_json(self.run_graph(nodes))
        if case.expects_return:
            result = self._restore_non_finite(nodes, result, case.returns)
        return result

    # --- NaN and infinities, which JSON answers as null -----------------------------------------

    def _restore_non_finite(self, nodes: dict, result: Any, expected: Any) -> Any:
        if result is None and _non_finite(expected):
            return self._probe(nodes, [None])[0]
        if isinstance(result, list) and isinstance(expected, list) and len(result) == len(expected):
            positions = [i for i, (r, e) in enumerate(zip(result, expected)) if r is None and _non_finite(e)]
            if positions:
                restored = self._probe(nodes, positions)
                result = list(result)
                for i, value in zip(positions, restored):
                    result[i] = value
        return result

    def _probe(self, nodes: dict, positions: list) -> list:
        """What the result (or its elements at ``positions``) is: NaN, +inf, -inf or really null."""
        probe = {k: {kk: vv for kk, vv in v.items() if kk != "result"} for k, v in nodes.items()}
        flags = []
        for n, position in enumerate(positions):
            value = {"from_node": "case"}
            if position is not None:
                probe[f"element{n}"] = {"process_id": "array_element", "arguments": {"data": value, "index": position}}
                value = {"from_node": f"element{n}"}
            for check, arguments in (("is_nan", {"x": value}), ("is_infinite", {"x": value}), ("gt", {"x": value, "y": 0})):
                probe[f"{check}{n}"] = {"process_id": check, "arguments": arguments}
                flags.append({"from_node": f"{check}{n}"})
        probe["flags"] = {"process_id": "array_create", "arguments": {"data": flags}, "result": True}
        answer = self.run_graph(probe)
        values = []
        for n in range(len(positions)):
            is_nan, is_inf, positive = answer[3 * n: 3 * n + 3]
            values.append(math.nan if is_nan is True else (math.inf if positive else -math.inf) if is_inf is True else None)
        return values


# --- a local server for the run -------------------------------------------------------------


class LocalServer:
    """``python -m uvicorn terracube.api.app:create_app --factory`` on a free port, in a subprocess."""

    def __init__(self, timeout: float = 60):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.data_dir = tempfile.mkdtemp(prefix="terracube-conformance-")
        # The runner's FileServer (load_url inputs) is on 127.0.0.1, which users' URLs may not reach unless allowed.
        env = {**os.environ, "TERRACUBE_DATA_DIR": self.data_dir, "TERRACUBE_ALLOWED_FETCH_HOSTS": '["127.0.0.1"]'}
        # The server's log goes to a file: a pipe nobody reads fills up and blocks the server.
        self.log_path = os.path.join(self.data_dir, "server.log")
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - open for the server's lifetime
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "terracube.api.app:create_app", "--factory", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                with open(self.log_path, "rb") as log:
                    raise RuntimeError(f"the server exited: {log.read().decode(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1):  # noqa: S310 - our own server
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not answer in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def local_server() -> LocalServer:
    return LocalServer()
