"""A tile's loads read at once and its processes work on numpy-backed cubes (``ProcessEnv.eager``):
the same pixels as ``/result`` of the same graph, which builds and computes dask graphs.

Each graph is drawn as a tile and run through ``execute_sync`` (what ``POST /result`` runs) over the
tile's box as a GeoTIFF on the archive's own UTM grid; the GeoTIFF's values under the tile's pixel
centres, coloured as the service colours them, must be the tile's colours. Dask's callbacks count
the tasks run while the tile is drawn: none for a load of one day, some where a load of several
days stays lazy (a tile may draw only one of its dates).
"""
# ruff: noqa: F811  (the fixtures come from tiles_fixtures: tests/services/conftest.py is the services API's)

from __future__ import annotations

import copy

import numpy as np
import pytest
from dask.callbacks import Callback

from terracube.execute import execute_sync
from terracube.formats.image import to_rgba
from terracube.services import grid
from terracube.services.render import parse_configuration
from terracube.services.tiles import render_tile
from tests.services.tiles_fixtures import (  # noqa: F401  (fixtures)
    JULY_21,
    env,
    load,
    picture,
    service,
    source_values,
    tile_pixel_centres,
    tile_settings,
)

TILE = (13, 4257, 2759)  # inside the archive
EDGE = (13, 4255, 2759)  # across its western edge: half of it has no data


def node(process_id: str, **arguments) -> dict:
    return {"process_id": process_id, "arguments": arguments}


def ref(name: str) -> dict:
    return {"from_node": name}


def callback(process_id: str, **arguments) -> dict:
    return {"process_graph": {"r": {**node(process_id, **arguments), "result": True}}}


def ndvi() -> dict:
    return {"load": load(["B04", "B08"]), "ndvi": {**node("ndvi", data=ref("load"), nir="B08", red="B04"), "result": True}}


def masked_and_scaled() -> dict:
    """NDVI without cloud and cloud-shadow pixels of the scene classification, scaled to 0..1: reduce, mask, apply."""
    clouds = {"process_graph": {
        "scl": node("array_element", data={"from_parameter": "data"}, label="SCL"),
        "high": node("gte", x={"from_node": "scl"}, y=8),
        "shadow": node("eq", x={"from_node": "scl"}, y=3),
        "either": {**node("or", x={"from_node": "high"}, y={"from_node": "shadow"}), "result": True},
    }}
    scaled = callback("linear_scale_range", x={"from_parameter": "x"}, inputMin=-1, inputMax=1, outputMin=0, outputMax=1)
    return {
        "load": load(["B04", "B08", "SCL"]),
        "cloud": node("reduce_dimension", data=ref("load"), dimension="bands", reducer=clouds),
        "ndvi": node("ndvi", data=ref("load"), nir="B08", red="B04"),
        "masked": node("mask", data=ref("ndvi"), mask=ref("cloud")),
        "scaled": {**node("apply", data=ref("masked"), process=scaled), "result": True},
    }


def red_over_time(temporal_extent) -> dict:
    """The brightest red of each pixel over a period: a reduction over t."""
    return {"load": load(["B04"], temporal_extent),
            "max": {**node("reduce_dimension", data=ref("load"), dimension="t", reducer=callback("max", data={"from_parameter": "data"})),
                    "result": True}}


CASES = {
    "ndvi": (ndvi(), {"colormap": "RdYlGn", "range": [-1, 1]}, True),
    "masked-and-scaled": (masked_and_scaled(), {"colormap": "viridis", "range": [0, 1]}, True),
    "max-of-one-day": (red_over_time(JULY_21), {"colormap": "Greys", "range": [0, 2500]}, True),
    "max-of-three-days": (red_over_time(["2021-07-18", "2021-07-24"]), {"colormap": "Greys", "range": [0, 2500]}, False),
}


def tasks_while(work) -> tuple[object, list]:
    """``work()``'s result and the dask tasks that ran meanwhile."""
    ran = []
    with Callback(pretask=lambda key, dsk, state: ran.append(key)):
        result = work()
    return result, ran


def through_result(env, graph: dict, tmp_path, address) -> tuple[np.ndarray, np.ndarray]:
    """The graph run as ``/result`` over the tile's box: its GeoTIFF's values under the tile's pixel centres, and
    where a centre lies safely inside a GeoTIFF pixel (not at its edge, where nearest neighbour may round either way)."""
    graph = copy.deepcopy(graph)
    west, south, east, north = grid.tile_bounds(*address)[1]
    graph["load"]["arguments"]["spatial_extent"] = {"west": west, "south": south, "east": east, "north": north}
    result = next(name for name, value in graph.items() if value.get("result"))
    graph[result] = {key: value for key, value in graph[result].items() if key != "result"}
    graph["save"] = {**node("save_result", data=ref(result), format="GTiff"), "result": True}
    answer = execute_sync({"process_graph": graph}, env)
    assert answer.path is None and answer.cleanup is None, "a small answer is sent from memory, its file already gone"
    path = tmp_path / "result.tif"
    path.write_bytes(answer.content)
    xs, ys = np.meshgrid(*tile_pixel_centres(*address))
    values, safe, _ = source_values(path, xs, ys)
    return values, safe


@pytest.mark.parametrize("address", [TILE, EDGE], ids=["inside", "edge"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_tile_on_numpy_draws_what_result_computes(env, tmp_path, case, address):
    graph, configuration, at_once = CASES[case]
    drawn, ran = tasks_while(lambda: render_tile(env, service({"process_graph": graph}, configuration), *address))
    if at_once:
        assert ran == [], "a load of one day is read at once: no dask task runs to draw the tile"
    else:
        assert ran, "a load of several days stays lazy"
    rgba = picture(drawn.content)
    values, safe = through_result(env, graph, tmp_path, address)
    expected = to_rgba(values[None], parse_configuration(configuration).rendering.style)
    assert safe.sum() > (20_000 if address == TILE else 8_000)
    # The same values: the same colours, and no-data (transparent) at the same pixels.
    assert np.array_equal(rgba[safe], expected[safe])
    drawn_pixels = rgba[..., 3] > 0
    assert drawn_pixels[safe].mean() > (0.5 if case != "masked-and-scaled" else 0.3)
    assert len(np.unique(rgba[safe & drawn_pixels][:, :3], axis=0)) > 20  # a picture of the valley, not one colour


def merged_ndvi() -> dict:
    """Two loads of one band each, merged into one cube, then its NDVI."""
    return {"red": load(["B04"]), "nir": load(["B08"]),
            "both": node("merge_cubes", cube1=ref("red"), cube2=ref("nir")),
            "ndvi": {**node("ndvi", data=ref("both"), nir="B08", red="B04"), "result": True}}


def smoothed_red() -> dict:
    """A 3 x 3 mean over the tile's grid: its edge pixels see no-data beyond the tile, whatever the array behind."""
    kernel = [[1, 1, 1], [1, 1, 1], [1, 1, 1]]
    return {"load": load(["B04"]), "mean": {**node("apply_kernel", data=ref("load"), kernel=kernel, factor=1 / 9), "result": True}}


def coarse_red() -> dict:
    """Resampled onto 60 m UTM pixels: the tile then puts the cube back onto its own grid."""
    return {"load": load(["B04"]), "coarse": {**node("resample_spatial", data=ref("load"), resolution=60, projection=32632, method="near"),
                                             "result": True}}


def true_colour() -> dict:
    renamed = node("rename_labels", data=ref("load"), dimension="bands", target=["r", "g", "b"], source=["B04", "B03", "B02"])
    scaled = callback("linear_scale_range", x={"from_parameter": "x"}, inputMin=0, inputMax=2500, outputMin=0, outputMax=1)
    return {"load": load(["B04", "B03", "B02", "B08"]), "rgb": node("filter_bands", data=ref("load"), bands=["B04", "B03", "B02"]),
            "renamed": {**renamed, "arguments": {**renamed["arguments"], "data": ref("rgb")}},
            "scaled": {**node("apply", data=ref("renamed"), process=scaled), "result": True}}


# (graph, configuration, whether the tile is drawn without a dask task: apply_kernel and the warps of
# resample_spatial run their own small dask computations, whatever the array behind)
GRAPHS = {
    "ndvi": (ndvi(), {"colormap": "RdYlGn", "range": [-1, 1]}, True),
    "masked-and-scaled": (masked_and_scaled(), {"colormap": "viridis", "range": [0, 1]}, True),
    "merged-ndvi": (merged_ndvi(), {"colormap": "RdYlGn", "range": [-1, 1]}, True),
    "smoothed": (smoothed_red(), {"colormap": "Greys", "range": [0, 2500]}, False),
    "resampled": (coarse_red(), {"colormap": "Greys", "range": [0, 2500]}, False),
    "true-colour": (true_colour(), {"range": [0, 1]}, True),
}


@pytest.mark.parametrize("case", list(GRAPHS))
def test_numpy_and_dask_backed_cubes_draw_the_same_tile(env, monkeypatch, case):
    """The same graph through the same processes, on arrays read at once and on lazy dask arrays: the same picture."""
    from terracube.services import tiles

    graph, configuration, without_dask = GRAPHS[case]
    eager, ran = tasks_while(lambda: render_tile(env, service({"process_graph": graph}, configuration), *EDGE))
    assert (ran == []) is without_dask
    lazy_env = tiles._tile_env
    monkeypatch.setattr(tiles, "_tile_env", lambda env, grid, eager=False: lazy_env(env, grid, eager=False))
    lazy, ran = tasks_while(lambda: render_tile(env, service({"process_graph": graph}, configuration), *EDGE))
    assert ran, "the lazy cube is computed by dask"
    assert picture(eager.content).shape == picture(lazy.content).shape
    assert np.array_equal(picture(eager.content), picture(lazy.content))
    assert (picture(eager.content)[..., 3] > 0).mean() > 0.3  # the part of the tile with data
