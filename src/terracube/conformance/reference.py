"""The reference target: openeo-processes-dask, the openEO processes on xarray and dask that the
openEO project maintains, run through openeo-pg-parser-networkx as its documentation shows.

Each case is the same one-node process graph as for terracube. Datacube and labelled-array
arguments are passed as process parameters (``from_parameter``), decoded exactly as for terracube
(DataArrays with the case's labels; the CRS also in ``attrs["crs"]``, where openeo-processes-dask
looks for it). An exception counts as a throw with its class name as the code, which is how
openeo-processes-dask names the spec's exceptions.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from typing import Any

import xarray as xr

from terracube.conformance.run import CaseError
from terracube.conformance.suite import Case
from terracube.conformance.values import decode


def registry():
    """openeo-processes-dask's processes bound to their specs, as in its documentation."""
    from openeo_pg_parser_networkx import ProcessRegistry
    from openeo_pg_parser_networkx.process_registry import Process
    from openeo_processes_dask.process_implementations.core import process

    logging.getLogger("openeo_processes_dask").setLevel(logging.ERROR)
    implementations = importlib.import_module("openeo_processes_dask.process_implementations")
    specs = importlib.import_module("openeo_processes_dask.specs")
    reg = ProcessRegistry(wrap_funcs=[process])
    for name, function in inspect.getmembers(implementations, inspect.isfunction):
        if hasattr(specs, name):
            reg[name] = Process(spec=getattr(specs, name), implementation=function)
    return reg


def _plain(value: Any) -> Any:
    """Typed JSON5 values inside arguments as plain JSON (no-data as null, date-times as strings)."""
    if isinstance(value, dict):
        if value.get("type") == "nodata" and len(value) == 1:
            return None
        if value.get("type") == "datetime" and "value" in value:
            return value["value"]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Reference:
    name = "openeo-processes-dask"

    def __init__(self):
        self.registry = registry()

    def supports(self, process_id: str) -> bool:
        return process_id in self.registry

    def execute(self, case: Case) -> Any:
        from openeo_pg_parser_networkx import OpenEOProcessGraph

        arguments, parameters = {}, {}
        for name, value in case.arguments.items():
            if isinstance(value, dict) and value.get("type") in ("datacube", "labeled-array"):
                cube = decode(value)
                if value.get("type") == "datacube":
                    crs = next((d.get("reference_system") for d in _dimensions(value) if d.get("reference_system")), None)
                    if crs is not None:
                        cube.attrs["crs"] = crs
                parameters[f"case_{name}"] = cube
                arguments[name] = {"from_parameter": f"case_{name}"}
            else:
                arguments[name] = _plain(value)
        graph = {"process_graph": {"node": {"process_id": case.process_id, "arguments": arguments, "result": True}}}
        try:
            callable_graph = OpenEOProcessGraph(graph).to_callable(process_registry=self.registry)
            result = callable_graph(named_parameters=parameters)
            return result.compute() if isinstance(result, xr.DataArray) else result
        except CaseError:
            raise
        except Exception as error:  # noqa: BLE001 - its exceptions are named after the spec's
            raise CaseError(type(error).__name__, str(error)) from error


def _dimensions(document: dict) -> list[dict]:
    dims = document.get("dimensions") or {}
    return list(dims.values()) if isinstance(dims, dict) else list(dims)
