"""Helpers for the process tests: small labelled cubes as load_collection makes them, real callbacks."""

from __future__ import annotations

import numpy as np
import odc.geo.xr  # noqa: F401 - the .odc accessor
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox


def make_cube(
    values: np.ndarray | None = None,
    *,
    times=("2021-07-01", "2021-07-06", "2021-07-11"),
    bands=("B04", "B08", "SCL"),
    shape=(4, 5),
    origin=(362150.0, 5601190.0),
    resolution=10.0,
    crs="EPSG:32632",
    dtype="float32",
    chunks: dict | None = None,
    attrs: dict | None = None,
) -> xr.DataArray:
    """A cube as ``load_collection`` makes it: dims t, bands, y, x, pixel-centre coords, spatial_ref."""
    geobox = GeoBox(shape, Affine(resolution, 0, origin[0], 0, -resolution, origin[1]), crs)
    full_shape = (len(times), len(bands), *shape)
    if values is None:
        values = np.arange(np.prod(full_shape), dtype="float64").reshape(full_shape) + 1
    template = odc.geo.xr.xr_zeros(geobox, dtype=dtype)
    cube = xr.DataArray(
        np.asarray(values, dtype=dtype).reshape(full_shape),
        dims=("t", "bands", "y", "x"),
        coords={"t": np.array(times, dtype="datetime64[ns]"), "bands": list(bands), "y": template.y, "x": template.x},
        attrs=dict(attrs or {}),
    ).odc.assign_crs(crs)
    return cube.chunk(chunks) if chunks is not None else cube




def callback(nodes: dict, result: str | None = None):
    """A real callback (as the evaluator builds it) from a child process graph's nodes."""
    from terracube.graph.evaluate import Callback
    from terracube.graph.model import parse_process_graph
    from terracube.graph.evaluate import Evaluator

    nodes = {k: dict(v) for k, v in nodes.items()}
    nodes[result or list(nodes)[-1]]["result"] = True
    return Callback(parse_process_graph({"process_graph": nodes}), Evaluator(), {})


def single(process_id: str, parameter: str = "data", **arguments):
    """A one-node callback, e.g. ``single("mean")`` for ``reducer=mean``."""
    return callback({process_id: {"process_id": process_id, "arguments": {parameter: {"from_parameter": parameter}, **arguments}}})
