"""Processes build dask graphs and never read pixels: only save_result and the job runner compute."""

from __future__ import annotations

import dask.array
import numpy as np
import pytest
from dask.callbacks import Callback as DaskCallback

from terracube.graph import evaluate_process_graph, parse_process_graph
from terracube.processes.implementations import IMPLEMENTATIONS
from terracube.processes.registry import ProcessRegistry

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
