"""User-defined processes with the official client against a live server with its own database."""

from __future__ import annotations

import numpy as np
import openeo
import pytest
import requests
from openeo.rest import OpenEoApiError
from openeo.rest.datacube import THIS

from tests.conftest import AFTER, TUTORIAL_AOI, read_tutorial_ndvi
from tests.jobs.conftest import jobs_env
from tests.live_server import LiveServer

# The client warns about processes without parameters; several here have none on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Defining user-defined process:UserWarning")

# ndvi_mean(aoi, period, red="B04", nir="B08"): the tutorial's mean NDVI, as a flat graph.
NDVI_MEAN = {
    "load": {
        "process_id": "load_collection",
        "arguments": {
            "id": "SENTINEL2_L2A",
            "spatial_extent": {"from_parameter": "aoi"},
            "temporal_extent": {"from_parameter": "period"},
            "bands": [{"from_parameter": "red"}, {"from_parameter": "nir"}],
        },
    },
    "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}, "nir": {"from_parameter": "nir"}, "red": {"from_parameter": "red"}}},
    "mean": {
        "process_id": "reduce_dimension",
        "arguments": {
            "data": {"from_node": "ndvi"},
            "dimension": "t",
            "reducer": {"process_graph": {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}},
        },
        "result": True,
    },
}
PARAMETERS = [
    {"name": "aoi", "description": "Area of interest", "schema": {"type": "object", "subtype": "bounding-box"}},
    {"name": "period", "description": "Dates", "schema": {"type": "array", "subtype": "temporal-interval"}},
    {"name": "red", "description": "Red band", "schema": {"type": "string"}, "default": "B04", "optional": True},
    {"name": "nir", "description": "Near infrared band", "schema": {"type": "string"}, "default": "B08", "optional": True},
]
# scaled(data, factor=10): every pixel times the factor, which the callback reads from the process's parameters.
SCALED = {
    "apply": {
        "process_id": "apply",
        "arguments": {
            "data": {"from_parameter": "data"},
            "process": {"process_graph": {"m": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "x"}, "y": {"from_parameter": "factor"}}, "result": True}}},
        },
        "result": True,
    }
}
SCALED_PARAMETERS = [
    {"name": "data", "description": "A cube", "schema": {"type": "object", "subtype": "datacube"}},
    {"name": "factor", "description": "Factor", "schema": {"type": "number"}, "default": 10, "optional": True},
]


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    live = LiveServer(jobs_env(data_dir, tmp_path_factory.mktemp("udp"))).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def con(server):
    con = openeo.connect(server.url, default_timeout=300)
    con.save_user_defined_process("ndvi_mean", NDVI_MEAN, parameters=PARAMETERS, summary="Mean NDVI")
    con.save_user_defined_process("scaled", SCALED, parameters=SCALED_PARAMETERS)
    return con


def inline_ndvi_mean(con):
    cube = con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=["B04", "B08"])
    return cube.ndvi(nir="B08", red="B04").reduce_dimension(dimension="t", reducer="mean")


def api_error(call) -> OpenEoApiError:
    with pytest.raises(OpenEoApiError) as raised:
        call()
    return raised.value


def test_stored_processes_are_listed_and_described(con):
    listed = {p["id"]: p for p in con.list_user_defined_processes()}
    assert set(listed) == {"ndvi_mean", "scaled"}
    assert listed["ndvi_mean"]["summary"] == "Mean NDVI"
    assert [p["name"] for p in listed["ndvi_mean"]["parameters"]] == ["aoi", "period", "red", "nir"]
    described = con.user_defined_process("ndvi_mean").describe()
    assert described["id"] == "ndvi_mean" and described["process_graph"] == NDVI_MEAN


def test_a_stored_process_gives_what_the_same_graph_written_inline_gives(con, tmp_path):
    # Its defaults (red, nir) fill in the parameters not given.
    con.datacube_from_process("ndvi_mean", namespace="user", aoi=TUTORIAL_AOI, period=AFTER).download(tmp_path / "udp.tif", format="GTiff")
    inline_ndvi_mean(con).download(tmp_path / "inline.tif", format="GTiff")
    udp, inline = read_tutorial_ndvi(tmp_path / "udp.tif"), read_tutorial_ndvi(tmp_path / "inline.tif")
    assert np.array_equal(udp, inline, equal_nan=True) and 0.65 < np.nanmean(udp) < 0.76


def test_a_stored_process_on_a_cube_with_its_default_and_a_given_factor(con, tmp_path):
    inline_ndvi_mean(con).process("scaled", data=THIS, namespace="user").download(tmp_path / "ten.tif", format="GTiff")
    inline_ndvi_mean(con).process("scaled", data=THIS, factor=2).download(tmp_path / "two.tif", format="GTiff")
    inline_ndvi_mean(con).download(tmp_path / "one.tif", format="GTiff")
    import rasterio

    one, two, ten = (rasterio.open(tmp_path / f"{n}.tif").read(1) for n in ("one", "two", "ten"))
    assert np.allclose(two, one * 2, equal_nan=True) and np.allclose(ten, one * 10, equal_nan=True)


def test_validation_knows_stored_processes(con):
    known = con.datacube_from_process("ndvi_mean", namespace="user", aoi=TUTORIAL_AOI, period=AFTER)
    assert con.validate_process_graph(known) == []
    [unknown] = con.validate_process_graph({"u": {"process_id": "nope", "namespace": "user", "arguments": {}, "result": True}})
    assert unknown["code"] == "ProcessUnsupported"
    [missing] = con.validate_process_graph(con.datacube_from_process("ndvi_mean", namespace="user", aoi=TUTORIAL_AOI))
    assert missing["code"] == "ProcessParameterRequired" and "period" in missing["message"]


def test_a_batch_job_runs_a_stored_process(con, tmp_path):
    cube = con.datacube_from_process("ndvi_mean", namespace="user", aoi=TUTORIAL_AOI, period=AFTER)
    job = cube.save_result(format="GTiff").create_job(title="UDP job")
    estimate = requests.get(f"{con.root_url.rstrip('/')}/jobs/{job.job_id}/estimate", timeout=60)
    assert estimate.status_code == 200 and estimate.json()["size"] > 0, estimate.text
    job.start_and_wait(max_poll_interval=1)
    job.get_results().download_files(tmp_path / "job")
    inline_ndvi_mean(con).download(tmp_path / "inline.tif", format="GTiff")
    assert np.array_equal(read_tutorial_ndvi(tmp_path / "job" / "openEO.tif"), read_tutorial_ndvi(tmp_path / "inline.tif"), equal_nan=True)


def test_errors_a_user_can_cause(con, server):
    error = api_error(lambda: con.datacube_from_process("nope", namespace="user").download(format="JSON"))
    assert (error.http_status_code, error.code) == (400, "ProcessUnsupported")
    for missing in ("nope", "bad-id"):
        error = api_error(lambda missing=missing: con.user_defined_process(missing).describe())
        assert (error.http_status_code, error.code) == (404, "ProcessGraphNotFound")
    error = api_error(lambda: con.save_user_defined_process("bad-id", NDVI_MEAN, parameters=PARAMETERS))
    assert (error.http_status_code, error.code) == (400, "ProcessGraphIdInvalid")
    broken = {"x": {"process_id": "no_such_process", "arguments": {}, "result": True}}
    error = api_error(lambda: con.save_user_defined_process("broken", broken, parameters=[]))
    assert (error.http_status_code, error.code) == (400, "ProcessUnsupported")
    no_result = {"x": {"process_id": "add", "arguments": {"x": 1, "y": 2}}}
    error = api_error(lambda: con.save_user_defined_process("broken", no_result, parameters=[]))
    assert (error.http_status_code, error.code) == (400, "ProcessGraphInvalid")
    # A parameter the graph does not declare.
    undeclared = {"x": {"process_id": "add", "arguments": {"x": {"from_parameter": "y"}, "y": 2}, "result": True}}
    error = api_error(lambda: con.save_user_defined_process("broken", undeclared, parameters=[]))
    assert (error.http_status_code, error.code) == (400, "ProcessParameterInvalid")
    for body in ([], {"process_graph": no_result}, {"summary": "no graph"}):
        response = requests.put(f"{server.url}/process_graphs/broken", json=body, timeout=30)
        assert response.status_code == 400 and response.json()["code"] in ("ProcessGraphMissing", "ProcessGraphInvalid"), response.text
    response = requests.put(f"{server.url}/process_graphs/broken", data=b"{not json", headers={"Content-Type": "application/json"}, timeout=30)
    assert (response.status_code, response.json()["code"]) == (400, "BadRequest")
    assert "broken" not in {p["id"] for p in con.list_user_defined_processes()}


def test_replace_and_delete(con):
    con.save_user_defined_process("temporary", {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}, parameters=[])
    con.save_user_defined_process("temporary", {"a": {"process_id": "add", "arguments": {"x": 1, "y": 3}, "result": True}}, parameters=[])
    assert con.datacube_from_process("temporary", namespace="user").execute() == 4
    con.user_defined_process("temporary").delete()
    error = api_error(lambda: con.user_defined_process("temporary").delete())
    assert (error.http_status_code, error.code) == (404, "ProcessGraphNotFound")
    assert "temporary" not in {p["id"] for p in con.list_user_defined_processes()}


def test_the_url_id_wins_over_the_body_id(con, server):
    """API 1.2, PUT /process_graphs/{id}: a differing ``id`` in the body is replaced by the path's."""
    body = {"id": "name_in_body", "parameters": [], "process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 4}, "result": True}}}
    response = requests.put(f"{server.url}/process_graphs/name_in_url", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert con.user_defined_process("name_in_url").describe()["id"] == "name_in_url"
    assert "name_in_body" not in {p["id"] for p in con.list_user_defined_processes()}
    assert con.datacube_from_process("name_in_url", namespace="user").execute() == 5
    con.user_defined_process("name_in_url").delete()


def test_listing_pages(con, server):
    first = requests.get(f"{server.url}/process_graphs", params={"limit": 1}, timeout=30).json()
    assert [p["id"] for p in first["processes"]] == ["ndvi_mean"] and "process_graph" not in first["processes"][0]
    next_link = next(link["href"] for link in first["links"] if link["rel"] == "next")
    second = requests.get(next_link, timeout=30).json()
    assert [p["id"] for p in second["processes"]] == ["scaled"]
    assert not any(link["rel"] == "next" for link in second["links"])


def test_routes_are_in_the_capabilities(con):
    endpoints = {e["path"]: e["methods"] for e in con.capabilities().capabilities["endpoints"]}
    assert endpoints["/process_graphs"] == ["GET"]
    assert endpoints["/process_graphs/{process_graph_id}"] == ["DELETE", "GET", "PUT"]


def test_a_stored_process_survives_a_restart(data_dir, tmp_path):
    env = jobs_env(data_dir, tmp_path)
    first = LiveServer(env).start()
    try:
        openeo.connect(first.url).save_user_defined_process("kept", {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}, parameters=[])
    finally:
        first.stop()
    second = LiveServer(env).start()
    try:
        con = openeo.connect(second.url)
        assert [p["id"] for p in con.list_user_defined_processes()] == ["kept"]
        assert con.datacube_from_process("kept", namespace="user").execute() == 3
    finally:
        second.stop()
