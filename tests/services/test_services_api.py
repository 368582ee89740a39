"""The /services routes in process (FastAPI's TestClient), on a real SQLite file, in laptop mode.

What a user of the openEO API checks: status codes, headers, the documents the spec describes,
a graph that cannot be drawn refused at creation, and tiles that stop the moment a service is
disabled or deleted.
"""

from __future__ import annotations

import io
import re

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from terracube.api.app import create_app
from terracube.settings import Settings
from tests.services.layers import AHR_TILE, ndvi_layer, tile_path

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture(scope="module")
def client(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("services-api")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{folder / 'terracube.db'}", results_root=str(folder / "results"))
    # A loopback Host, as laptop mode asks (api/guard.py).
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        yield test_client


def create(client: TestClient, **body) -> str:
    response = client.post("/services", json={"type": "XYZ", "process": ndvi_layer(), **body})
    assert response.status_code == 201, response.text
    service_id = response.headers["OpenEO-Identifier"]
    assert response.headers["Location"] == f"http://localhost/services/{service_id}"
    assert not response.content
    return service_id


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["message"], body
    return body


def test_service_types_offer_xyz_and_wmts(client):
    types = client.get("/service_types").json()
    assert {"XYZ", "WMTS"} <= set(types)
    for description in types.values():
        assert isinstance(description["configuration"], dict) and isinstance(description["process_parameters"], list)


def test_the_capabilities_list_the_service_routes(client):
    endpoints = {e["path"]: set(e["methods"]) for e in client.get("/").json()["endpoints"]}
    assert endpoints["/services"] == {"GET", "POST"}
    assert endpoints["/services/{service_id}"] == {"GET", "PATCH", "DELETE"}
    assert endpoints["/services/{service_id}/logs"] == {"GET"} and endpoints["/service_types"] == {"GET"}


def test_a_service_is_created_and_described(client):
    service_id = create(client, title="NDVI after the flood", description="Ahr valley", configuration={"colormap": "RdYlGn"})
    document = client.get(f"/services/{service_id}").json()
    assert document["id"] == service_id and len(service_id) >= 32
    assert (document["type"], document["enabled"], document["title"], document["description"]) == ("XYZ", True, "NDVI after the flood", "Ahr valley")
    assert document["url"] == f"http://localhost/services/{service_id}/tiles/{{z}}/{{x}}/{{y}}.png"
    assert document["process"] == ndvi_layer() and document["configuration"] == {"colormap": "RdYlGn"}
    assert RFC3339.fullmatch(document["created"])
    [layer] = document["attributes"]["layers"]
    west, south, east, north = layer["bbox"]
    assert -180 <= west < east <= 180 and -90 <= south < north <= 90 and layer["minzoom"] <= layer["maxzoom"]
    assert {"rel": "monitor", "href": f"http://localhost/services/{service_id}/logs", "type": "application/json", "title": "Logs"} in document["links"]


def test_types_are_case_insensitive_and_wmts_has_its_own_url(client):
    xyz = client.get(f"/services/{create(client, type='xyz')}").json()
    assert xyz["type"] == "XYZ"
    wmts_id = create(client, type="wmts", enabled=False)
    wmts = client.get(f"/services/{wmts_id}").json()
    assert (wmts["type"], wmts["enabled"], wmts["url"]) == ("WMTS", False, f"http://localhost/services/{wmts_id}/wmts")


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"process": ndvi_layer()}, 400, "BadRequest"),  # no type
        ({"type": "WMS", "process": ndvi_layer()}, 400, "ServiceUnsupported"),
        ({"type": ["XYZ"], "process": ndvi_layer()}, 400, "ServiceUnsupported"),
        ({"type": "XYZ"}, 400, "ProcessGraphMissing"),
        ({"type": "XYZ", "process": {"process_graph": {}}}, 400, "ProcessGraphMissing"),
        ({"type": "XYZ", "process": ndvi_layer(), "configuration": "viridis"}, 400, "ServiceConfigInvalid"),
        ({"type": "XYZ", "process": ndvi_layer(), "enabled": "yes"}, 400, "BadRequest"),
        ({"type": "XYZ", "process": ndvi_layer(), "budget": -1}, 400, "BudgetInvalid"),
        ({"type": "XYZ", "process": ndvi_layer(), "log_level": "loud"}, 400, "BadRequest"),
        ({"type": "XYZ", "process": {"process_graph": {"x": {"process_id": "no_such_process", "arguments": {}, "result": True}}}}, 400, "ProcessUnsupported"),
        ({"type": "XYZ", "process": {"process_graph": {"l": {"process_id": "load_collection", "arguments": {"id": "NOPE", "spatial_extent": None, "temporal_extent": None}, "result": True}}}}, 404, "CollectionNotFound"),
    ],
)
def test_a_service_that_cannot_be_made_is_refused_and_not_stored(client, body, status, code):
    before = client.get("/services").json()["services"]
    assert_error(client.post("/services", json=body), status, code)
    assert client.get("/services").json()["services"] == before


def test_the_listing_pages_and_leaves_out_the_big_parts(client):
    made = [create(client, title=f"layer {i}") for i in range(3)]
    listed = client.get("/services").json()
    assert listed["links"] == []
    ids = [s["id"] for s in listed["services"]]
    assert ids[:3] == made[::-1]  # newest first
    for summary in listed["services"]:
        assert {"id", "url", "type", "enabled"} <= set(summary) and not {"process", "configuration", "attributes"} & set(summary)
    page = client.get("/services", params={"limit": 2, "offset": 1}).json()
    assert [s["id"] for s in page["services"]] == ids[1:3]
    assert {link["rel"]: link["href"] for link in page["links"]} == {
        "first": "http://localhost/services?limit=2",
        "next": "http://localhost/services?limit=2&offset=3",
        "prev": "http://localhost/services?limit=2&offset=0",
    }
    assert_error(client.get("/services", params={"limit": 0}), 400, "BadRequest")


def test_a_patch_changes_what_it_names_and_is_checked(client):
    service_id = create(client, title="before")
    tile = tile_path(service_id, *AHR_TILE)
    etag = client.get(tile).headers["ETag"]
    assert client.patch(f"/services/{service_id}", json={"title": "after", "configuration": {"colormap": "magma"}}).status_code == 204
    document = client.get(f"/services/{service_id}").json()
    assert (document["title"], document["configuration"], document["process"]) == ("after", {"colormap": "magma"}, ndvi_layer())
    assert client.get(tile).headers["ETag"] != etag  # a new version: never a tile of the old one (viridis, the default)

    assert_error(client.patch(f"/services/{service_id}", json={"type": "WMTS"}), 400, "PropertyNotEditable")
    assert_error(client.patch(f"/services/{service_id}", json={"url": "http://elsewhere"}), 400, "PropertyNotEditable")
    assert_error(client.patch(f"/services/{service_id}", json={}), 400, "NoDataForUpdate")
    broken = {"process_graph": {"x": {"process_id": "no_such_process", "arguments": {}, "result": True}}}
    assert_error(client.patch(f"/services/{service_id}", json={"process": broken}), 400, "ProcessUnsupported")
    assert_error(client.patch(f"/services/{service_id}", json={"configuration": [1]}), 400, "ServiceConfigInvalid")
    assert client.get(f"/services/{service_id}").json()["process"] == ndvi_layer()  # unchanged by the refused ones


def test_disabling_or_deleting_stops_the_tiles_at_once(client):
    service_id = create(client)
    tile = tile_path(service_id, *AHR_TILE)
    assert client.get(tile).status_code == 200
    assert client.patch(f"/services/{service_id}", json={"enabled": False}).status_code == 204
    assert client.get(f"/services/{service_id}").json()["enabled"] is False
    assert_error(client.get(tile), 404, "ServiceNotFound")
    assert client.patch(f"/services/{service_id}", json={"enabled": True}).status_code == 204
    assert client.get(tile).status_code == 200

    assert client.delete(f"/services/{service_id}").status_code == 204
    assert_error(client.get(tile), 404, "ServiceNotFound")
    for method in ("GET", "DELETE"):
        body = assert_error(client.request(method, f"/services/{service_id}"), 404, "ServiceNotFound")
        assert body["message"] == f"Service '{service_id}' does not exist."
    assert_error(client.patch(f"/services/{service_id}", json={"title": "again"}), 404, "ServiceNotFound")
    assert_error(client.get(f"/services/{service_id}/logs"), 404, "ServiceNotFound")
    assert service_id not in {s["id"] for s in client.get("/services").json()["services"]}


def test_a_tile_is_an_image_with_cache_headers(client):
    service_id = create(client)
    response = client.get(tile_path(service_id, *AHR_TILE))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["Cache-Control"] == "no-cache" and response.headers["ETag"].startswith('"')
    assert Image.open(io.BytesIO(response.content)).size == (256, 256)
    again = client.get(tile_path(service_id, *AHR_TILE), headers={"If-None-Match": response.headers["ETag"]})
    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", response.headers["ETag"])
    assert client.get(tile_path(service_id, *AHR_TILE), headers={"If-None-Match": '"something-else"'}).status_code == 200

    jpeg = client.get(tile_path(service_id, *AHR_TILE, extension="jpg"))
    assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).format == "JPEG"
    restyled = client.get(tile_path(service_id, *AHR_TILE), params={"colormap": "magma"})  # not the default viridis
    assert restyled.status_code == 200 and restyled.headers["ETag"] != response.headers["ETag"]


@pytest.mark.parametrize(
    "address, status, code",
    [("a/1/1", 400, "BadRequest"), ("-1/0/0", 400, "BadRequest"), ("3/0/1.5", 400, "BadRequest"), ("3/8/0", 400, "TileOutOfRange"),
     ("3/0/8", 400, "TileOutOfRange"), ("31/0/0", 400, "TileOutOfRange"), ("99999999999/0/0", 400, "BadRequest")],
)
def test_a_tile_address_outside_the_grid_is_an_openeo_error(client, address, status, code):
    service_id = create(client)
    assert_error(client.get(f"/services/{service_id}/tiles/{address}.png"), status, code)


def test_an_unknown_service_has_no_tiles(client):
    assert_error(client.get(tile_path("no-such-service", 0, 0, 0)), 404, "ServiceNotFound")
    assert_error(client.get(tile_path("x" * 500, 0, 0, 0)), 404, "ServiceNotFound")


def test_logs_tell_the_owner_what_happened(client):
    service_id = create(client, log_level="debug")
    logs = client.get(f"/services/{service_id}/logs").json()
    assert logs["level"] == "debug" and logs["links"] == []
    assert [entry["level"] for entry in logs["logs"]] == ["debug"] and "created" in logs["logs"][0]["message"]

    # A tile that fails answers the openEO error, and the owner finds it in the logs.
    failed = client.get(tile_path(service_id, *AHR_TILE), params={"colormap": "no-such-colormap"})
    assert failed.status_code == 400, failed.text
    assert client.patch(f"/services/{service_id}", json={"title": "renamed"}).status_code == 204
    entries = client.get(f"/services/{service_id}/logs").json()["logs"]
    error = next(entry for entry in entries if entry["level"] == "error")
    assert error["code"] == failed.json()["code"] and failed.json()["message"] in error["message"]
    z, x, y = AHR_TILE
    assert (error["data"]["z"], error["data"]["x"], error["data"]["y"]) == (z, x, y) and RFC3339.fullmatch(error["time"])
    assert "Version 2" in entries[-1]["message"]

    only_errors = client.get(f"/services/{service_id}/logs", params={"level": "error"}).json()
    assert only_errors["level"] == "error" and [e["id"] for e in only_errors["logs"]] == [error["id"]]
    first = client.get(f"/services/{service_id}/logs", params={"limit": 1}).json()
    assert [e["id"] for e in first["logs"]] == [entries[0]["id"]]
    [next_link] = first["links"]
    rest = client.get(next_link["href"]).json()["logs"]
    assert [e["id"] for e in rest] == [entries[1]["id"]]
    following = client.get(f"/services/{service_id}/logs", params={"offset": entries[0]["id"]}).json()["logs"]
    assert [e["id"] for e in following] == [e["id"] for e in entries[1:]]
    assert_error(client.get(f"/services/{service_id}/logs", params={"level": "loud"}), 400, "BadRequest")
