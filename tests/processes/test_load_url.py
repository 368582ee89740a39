"""load_url and load_ml_model over HTTP, from a server on 127.0.0.1: formats, and the errors a user sees."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_zeros

from terracube.errors import OpenEOError
from terracube.formats import write_result
from terracube.graph.evaluate import evaluate_process_graph
from terracube.graph.model import parse_process_graph
from terracube.processes.env import ProcessEnv
from terracube.settings import Settings

from tests.data.scripted_server import ScriptedServer


@pytest.fixture
def server():
    server = ScriptedServer()
    yield server
    server.close()


# The test server is on 127.0.0.1: the operator allows it (users' URLs may not reach loopback otherwise).
LOOPBACK_ALLOWED = Settings(stac_retries=0, allowed_fetch_hosts=["127.0.0.1"])


def run(process_id: str, **arguments):
    graph = {"process_graph": {"n": {"process_id": process_id, "arguments": arguments, "result": True}}}
    return evaluate_process_graph(parse_process_graph(graph), env=ProcessEnv(settings=LOOPBACK_ALLOWED))


def test_a_geotiff_and_a_geojson_by_url(server, tmp_path):
    geobox = GeoBox.from_bbox((362150, 5598160, 362250, 5598220), "EPSG:32632", resolution=10)
    cube = xr.concat([xr_zeros(geobox, dtype="float32") + b for b in (1, 2)], dim="bands").assign_coords(bands=["B04", "B08"])
    [tif] = write_result(cube, "GTiff", {}, tmp_path)
    raster = run("load_url", url=server.serve("/scene.tif", (200, tif.read_bytes())), format="GTiff").compute()
    assert raster["bands"].values.tolist() == ["B04", "B08"] and raster.odc.crs.epsg == 32632
    np.testing.assert_array_equal(raster.values, cube.values)
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [7.0, 50.5]}, "properties": {"name": "a"}}
    vector = run("load_url", url=server.serve("/points.geojson", (200, json.dumps(point).encode())), format="GeoJSON")
    assert vector.sizes == {"geometry": 1} and vector.attrs["properties"] == [{"name": "a"}]


@pytest.mark.parametrize(
    "process_id, arguments",
    [("load_url", {"format": "netCDF"}), ("load_ml_model", {})],
)
def test_a_url_that_answers_404_is_file_not_found(server, process_id, arguments):
    url = f"{server.url}/nothing-here?signature=SECRET"
    with pytest.raises(OpenEOError) as error:
        run(process_id, **({"url": url} if process_id == "load_url" else {"id": url}), **arguments)
    assert (error.value.code, error.value.status) == ("FileNotFound", 404)
    assert f"{server.url}/nothing-here" in error.value.message and "SECRET" not in error.value.message


def test_formats_not_in_file_formats_and_files_not_in_theirs(server):
    with pytest.raises(OpenEOError) as error:
        run("load_url", url=server.serve("/a.csv", (200, b"a,b\n1,2\n")), format="CSV")
    assert error.value.code == "FormatUnsupported" and "GTiff, netCDF, GeoJSON" in error.value.message
    for body in (b"[1, 2, 3]", b"not json"):
        with pytest.raises(OpenEOError) as error:
            run("load_url", url=server.serve("/a.json", (200, body)), format="GeoJSON")
        assert (error.value.code, error.value.status) == ("FormatUnsuitable", 400)
    with pytest.raises(OpenEOError) as error:
        run("load_url", url=server.serve("/a.nc", (200, b"not netCDF")), format="netCDF")
    assert error.value.code == "FormatUnsuitable"
