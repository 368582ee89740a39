"""Every error a user can cause, triggered by a real bad request: openEO error JSON, the spec's code, a 4xx."""

from __future__ import annotations

import pytest
import requests
from openeo.rest import OpenEoApiError

from tests.api.server import start_server, stop_server
from tests.conftest import AFTER, TUTORIAL_AOI


def post(server, path, body):
    return requests.post(server.url + path, json=body, timeout=60)


def graph(**nodes):
    return {"process": {"process_graph": nodes}}


def load(**arguments):
    return {"process_id": "load_collection", "arguments": {"id": "SENTINEL2_L2A", "spatial_extent": TUTORIAL_AOI, "temporal_extent": AFTER, **arguments}}


def save(source="load", fmt="GTiff"):
    return {"process_id": "save_result", "arguments": {"data": {"from_node": source}, "format": fmt}, "result": True}


def assert_error(response, status, code, *fragments):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"id", "code", "message", "links"}
    assert body["code"] == code, body
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    return body


def without_id(node):
    return {**node, "arguments": {k: v for k, v in node["arguments"].items() if k != "id"}}


CASES = {
    "missing graph": ({}, 400, "ProcessGraphMissing"),
    "no result node": (graph(load=load(bands=["B04"])), 400, "ProcessGraphInvalid"),
    "dangling from_node": (graph(save={**save("nowhere")}), 400, "ProcessGraphInvalid"),
    "unknown process": (graph(x={"process_id": "make_it_pretty", "arguments": {}, "result": True}), 400, "ProcessUnsupported"),
    "missing argument": (graph(load=without_id(load(bands=["B04"])), save=save()), 400, "ProcessParameterRequired"),
    "unknown argument": (graph(load=load(colour="red"), save=save()), 400, "ProcessParameterUnsupported"),
    "wrong type": (graph(load=load(temporal_extent=2021), save=save()), 400, "ProcessParameterInvalid"),
    "unknown collection": (graph(load={**load(), "arguments": {**load()["arguments"], "id": "NOPE"}}, save=save()), 404, "CollectionNotFound"),
    "unknown band": (graph(load=load(bands=["B99"]), save=save()), 400, "BandFilterNotFound"),
    "unknown format": (graph(load=load(bands=["B04"]), save=save(fmt="XYZ")), 400, "FormatUnsupported"),
    "no scenes in time": (graph(load=load(bands=["B04"], temporal_extent=["2030-01-01", "2030-01-02"]), save=save()), 400, "NoDataAvailable"),
    "no scenes in space": (
        graph(load=load(bands=["B04"], spatial_extent={"west": 13.3, "south": 52.5, "east": 13.4, "north": 52.6}), save=save()),
        400,
        "NoDataAvailable",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_requests_get_the_specs_error(server, case):
    body, status, code = CASES[case]
    response = post(server, "/result", body)
    error = assert_error(response, status, code)
    if code not in ("ProcessGraphMissing", "ProcessGraphInvalid"):
        # The message names the node at fault.
        assert "Node '" in error["message"], error["message"]
    if case == "missing argument":
        assert "'id'" in error["message"], error["message"]


@pytest.mark.parametrize(
    "build, status, code",
    [
        (lambda con: con.load_collection("NOPE", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER), 404, "CollectionNotFound"),
        (
            lambda con: con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=["2030-01-01", "2030-01-02"], bands=["B04"]),
            400,
            "NoDataAvailable",
        ),
        (lambda con: con.datacube_from_process("make_it_pretty", colour="red"), 400, "ProcessUnsupported"),
        (lambda con: con.datacube_from_process("load_collection", id="SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=2021), 400, "ProcessParameterInvalid"),
    ],
    ids=["CollectionNotFound", "NoDataAvailable", "ProcessUnsupported", "ProcessParameterInvalid"],
)
def test_the_client_raises_openeo_api_errors(con, build, status, code):
    with pytest.raises(OpenEoApiError) as raised:
        build(con).download(format="GTiff")
    assert raised.value.code == code and raised.value.http_status_code == status
    assert raised.value.id  # the error id the client shows as "ref"


def test_the_client_raises_the_error_with_its_code(con):
    # The client checks band names itself against /collections; a raw process skips that check.
    cube = con.datacube_from_process("load_collection", id="SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=["B99"])
    with pytest.raises(OpenEoApiError) as raised:
        cube.download()
    assert raised.value.code == "BandFilterNotFound" and raised.value.http_status_code == 400


def test_validation_lists_errors_and_accepts_a_valid_graph(server):
    errors = post(server, "/validation", graph(load=load(bands=["B99"], colour=1), save=save(fmt="XYZ"))).json()["errors"]
    assert {"BandFilterNotFound", "ProcessParameterUnsupported", "FormatUnsupported"} <= {e["code"] for e in errors}
    assert post(server, "/validation", graph(load=load(bands=["B04"]), save=save())).json() == {"errors": []}


def test_validation_through_the_client(con):
    bad = con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=["B04"]).process("make_it_pretty", data=None)
    assert [e["code"] for e in con.validate_process_graph(bad)] == ["ProcessUnsupported"]
    good = con.load_collection("SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=["B04"]).save_result("GTiff")
    assert list(con.validate_process_graph(good)) == []


def test_unknown_routes_and_bad_json_are_openeo_errors(server):
    assert_error(requests.get(server.url + "/nowhere"), 404, "NotFound")
    assert_error(requests.get(server.url + "/result"), 405, "MethodNotAllowed")
    assert_error(requests.post(server.url + "/result"), 400, "ProcessGraphMissing")
    response = requests.post(server.url + "/result", data="{not json", headers={"Content-Type": "application/json"})
    assert_error(response, 400, "BadRequest")


def test_a_request_too_large_for_sync_processing_points_to_batch_jobs(data_dir):
    url, process = start_server({"TERRACUBE_DATA_DIR": str(data_dir), "TERRACUBE_SYNC_MAX_PIXELS": "100000"})
    try:
        response = requests.post(url + "/result", json=graph(load=load(bands=["B04", "B08"]), save=save()), timeout=60)
        assert_error(response, 413, "PayloadTooLarge", "batch job")
    finally:
        stop_server(process)
