"""The same process graph on openeo-processes-dask, the reference xarray implementation.

Its processes run through openeo-pg-parser-networkx as its documentation shows. openEO leaves
``load_collection`` and ``save_result`` to each backend, so both contenders share terracube's
(odc-stac over the same STAC items, the same GeoTIFF writer): the comparison is of the process
engines, not of the I/O.
"""

from __future__ import annotations

import importlib
from pathlib import Path


def registry(catalog, settings, out: Path, saved: list):
    from openeo_pg_parser_networkx.process_registry import Process

    from terracube.conformance.reference import registry as reference_registry
    from terracube.formats import write_result
    from terracube.processes.env import ProcessEnv
    from terracube.processes.load import load_collection as terracube_load

    specs = importlib.import_module("openeo_processes_dask.specs")
    reg = reference_registry()

    def load_collection(id, spatial_extent=None, temporal_extent=None, bands=None, properties=None, **kwargs):
        extent = spatial_extent.model_dump() if hasattr(spatial_extent, "model_dump") else spatial_extent
        period = [str(value.root if hasattr(value, "root") else value) for value in temporal_extent] if temporal_extent else None
        return terracube_load(id, extent, period, list(bands) if bands else None, env=ProcessEnv(catalog=catalog, settings=settings))

    def save_result(data, format="GTiff", options=None, **kwargs):
        saved.extend(write_result(data, "GTiff", {}, out))
        return True

    reg["load_collection"] = Process(spec=specs.load_collection, implementation=load_collection)
    reg["save_result"] = Process(spec=specs.save_result, implementation=save_result)
    return reg


def run_reference(graph: dict, catalog, settings, out: Path) -> Path:
    from openeo_pg_parser_networkx import OpenEOProcessGraph

    saved: list = []
    callable_graph = OpenEOProcessGraph(graph).to_callable(process_registry=registry(catalog, settings, out, saved))
    callable_graph()
    return saved[-1]
