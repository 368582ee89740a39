"""Processes build dask graphs and never read pixels: only save_result and the job runner compute.

Twice: on a cube whose every read fails, and over the embedded archive served over HTTP with range
requests, where "no pixel read" is measured as GeoTIFF bytes sent.
"""

from __future__ import annotations

import dask.array
import numpy as np
import pytest
import xarray as xr
from dask.callbacks import Callback as DaskCallback

from terracube.data.catalog import Catalog, CollectionSource
from terracube.graph.evaluate import evaluate_process_graph
from terracube.graph.model import parse_process_graph
from terracube.processes.env import ProcessEnv
from terracube.processes.implementations import IMPLEMENTATIONS
from terracube.processes.registry import ProcessRegistry
from terracube.settings import Settings

from tests.conftest import TUTORIAL_AOI
from tests.http_server import StaticServer
from tests.processes.helpers import make_cube


class PixelsRead(Exception):
    pass


class Unreadable:
    """An array whose every read fails: a cube built on it proves that nothing was computed."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), len(shape)

    def __getitem__(self, key):
        raise PixelsRead(f"pixels were read: {key}")


def unreadable_cube():
    template = make_cube(None, bands=("B04", "B08", "SCL"), shape=(60, 60))
    source = dask.array.from_array(Unreadable(template.shape, "float32"), chunks=(1, 1, 30, 30), meta=np.empty((0, 0, 0, 0), "float32"))
    return template.copy(data=source)


def node(process_id, **arguments):
    return {"process_id": process_id, "arguments": arguments}


def ref(node_id):
    return {"from_node": node_id}


def param(name):
    return {"from_parameter": name}


def graph(*, result):
    nodes = {
        "load": node("load_collection", id="SENTINEL2_L2A", spatial_extent=None, temporal_extent=None),
        "bbox": node("filter_bbox", data=ref("load"), extent={"west": 362200, "south": 5600700, "east": 362600, "north": 5601100, "crs": 32632}),
        "dates": node("filter_temporal", data=ref("bbox"), extent=["2021-07-01", "2021-07-10"]),
        "bands": node("filter_bands", data=ref("dates"), bands=["B04", "B08", "SCL"]),
        "ndvi": node("ndvi", data=ref("bands"), nir="B08", red="B04", target_band="NDVI"),
        "scl": node("filter_bands", data=ref("dates"), bands=["SCL"]),
        "cloudy": node(
            "reduce_dimension",
            data=ref("scl"),
            dimension="bands",
            reducer={"process_graph": {"e": node("array_element", data=param("data"), index=0), "gt": {**node("gt", x={"from_node": "e"}, y=0.5), "result": True}}},
        ),
        "masked": node("mask", data=ref("ndvi"), mask=ref("cloudy")),
        "scaled": node("apply", data=ref("masked"), process={"process_graph": {"s": {**node("linear_scale_range", x=param("x"), inputMin=-1, inputMax=1, outputMax=255), "result": True}}}),
        "renamed": node("rename_labels", data=ref("scaled"), dimension="bands", target=["red", "nir"], source=["B04", "B08"]),
        "other": node("filter_bands", data=ref("dates"), bands=["SCL"]),
        "other_renamed": node("rename_labels", data=ref("other"), dimension="bands", target=["scene"], source=["SCL"]),
        "merged": node("merge_cubes", cube1=ref("renamed"), cube2=ref("other_renamed")),
        "mean": node("reduce_dimension", data=ref("merged"), dimension="t", reducer={"process_graph": {"m": {**node("mean", data=param("data")), "result": True}}}),
        "ratio": node(
            "reduce_dimension",
            data=ref("mean"),
            dimension="bands",
            reducer={
                "process_graph": {
                    "n": node("array_element", data=param("data"), label="nir"),
                    "r": node("array_element", data=param("data"), label="red"),
                    "d": {**node("divide", x={"from_node": "n"}, y={"from_node": "r"}), "result": True},
                }
            },
        ),
    }
    nodes[result]["result"] = True
    return parse_process_graph({"process_graph": nodes})


class TaskCounter(DaskCallback):
    def __init__(self):
        super().__init__()
        self.tasks = 0

    def _pretask(self, key, dask, state):
        self.tasks += 1


@pytest.mark.parametrize("result", ["masked", "merged", "ratio"])
def test_a_chain_of_processes_computes_nothing(result):
    registry = ProcessRegistry({**IMPLEMENTATIONS, "load_collection": lambda **_: unreadable_cube()})
    with TaskCounter() as counter:
        value = evaluate_process_graph(graph(result=result), registry=registry)
    assert counter.tasks == 0
    assert isinstance(value.data, dask.array.Array)
    assert value.odc.crs.epsg == 32632 and value.dtype == np.float32
    assert value.sizes["x"] == 40 and value.sizes["y"] == 40
    with pytest.raises(PixelsRead):
        value.compute()  # the source really is unreadable: the graph above never touched it


# --- over the embedded archive -------------------------------------------------------------

def _node(process_id: str, **arguments) -> dict:
    return {"process_id": process_id, "arguments": arguments}


def _callback(process_id: str, **arguments) -> dict:
    return {"process_graph": {"f": {**_node(process_id, **arguments), "result": True}}}


def twenty_process_graph() -> dict:
    """load → filters → band math → masks → temporal and spatial steps: 20 nodes, no save_result."""
    x = {"from_parameter": "x"}
    data = {"from_parameter": "data"}
    nodes = {
        "load": _node("load_collection", id="SENTINEL2_L2A", spatial_extent=None, temporal_extent=["2021-06-01", "2021-08-31"],
                      bands=["B04", "B08", "SCL"]),
        "bbox": _node("filter_bbox", data={"from_node": "load"}, extent=TUTORIAL_AOI),
        "time": _node("filter_temporal", data={"from_node": "bbox"}, extent=["2021-06-10", "2021-07-25"]),
        "scl": _node("filter_bands", data={"from_node": "time"}, bands=["SCL"]),
        "cloud": _node("apply", data={"from_node": "scl"}, process=_callback("gte", x=x, y=8)),
        "cloudy": _node("reduce_dimension", data={"from_node": "cloud"}, dimension="bands", reducer=_callback("max", data=data)),
        "optical": _node("filter_bands", data={"from_node": "time"}, bands=["B04", "B08"]),
        "masked": _node("mask", data={"from_node": "optical"}, mask={"from_node": "cloudy"}),
        "scaled": _node("apply", data={"from_node": "masked"}, process=_callback("multiply", x=x, y=0.0001)),
        "ndvi": _node("ndvi", data={"from_node": "scaled"}, nir="B08", red="B04", target_band="NDVI"),
        "clipped": _node("apply", data={"from_node": "ndvi"}, process=_callback("clip", x=x, min=-1, max=1)),
        "renamed": _node("rename_labels", data={"from_node": "clipped"}, dimension="bands", target=["ndvi"], source=["NDVI"]),
        "only": _node("filter_bands", data={"from_node": "renamed"}, bands=["ndvi"]),
        "monthly": _node("aggregate_temporal_period", data={"from_node": "only"}, period="month", reducer=_callback("mean", data=data)),
        "filled": _node("apply", data={"from_node": "monthly"}, process=_callback("absolute", x=x)),
        "coarse": _node("resample_spatial", data={"from_node": "filled"}, resolution=20, method="average"),
        "mean": _node("reduce_dimension", data={"from_node": "coarse"}, dimension="t", reducer=_callback("mean", data=data)),
        "percent": _node("apply", data={"from_node": "mean"},
                         process=_callback("linear_scale_range", x=x, inputMin=0, inputMax=1, outputMin=0, outputMax=100)),
        "rounded": _node("apply", data={"from_node": "percent"}, process=_callback("round", x=x, p=1)),
        "bands": _node("drop_dimension", data={"from_node": "rounded"}, name="bands"),
    }
    nodes["bands"]["result"] = True
    return {"process_graph": nodes}


def test_a_graph_of_twenty_processes_reads_no_pixel_until_it_is_computed(data_dir, tmp_path):
    graph = twenty_process_graph()
    assert len(graph["process_graph"]) == 20
    sample = data_dir / "sample"
    with StaticServer(sample) as server:
        source = CollectionSource("SENTINEL2_L2A", lambda: f"{server.url}/catalog.json", "SENTINEL2_L2A")
        settings = Settings(data_dir=tmp_path / "unused")
        env = ProcessEnv(catalog=Catalog(settings, sources=[source]), settings=settings)
        cube = evaluate_process_graph(parse_process_graph(graph), env)
        lazy = isinstance(cube, xr.DataArray) and isinstance(cube.data, dask.array.Array)
        images_before = {name: n for name, n in server.bytes_sent.items() if name.endswith(".tif")}
        values = cube.values  # what save_result or a job does: compute
        images_after = {name: n for name, n in server.bytes_sent.items() if name.endswith(".tif")}
    assert images_before == {}, f"planning read pixels: {sorted(images_before)}"
    assert lazy  # a dask graph, not numbers
    assert sum(images_after.values()) > 0
    assert cube.dims == ("y", "x") and np.isfinite(values).mean() > 0.9
    assert 0 < np.nanmean(values) < 100
