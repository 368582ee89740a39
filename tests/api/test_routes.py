"""The HTTP layer alone: routing, documents, error mapping, CORS and auth, with a fake catalog and a fake executor.

These run in milliseconds and need no data; the real stack is driven end to end in
``test_client_e2e.py`` and ``test_errors_e2e.py``.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from terracube import __version__
from terracube.api import processing
from terracube.api.app import create_app
from terracube.errors import CollectionNotFound, NoDataAvailable, PayloadTooLarge
from terracube.execute import SyncResult
from terracube.files.store import user_files_dir
from terracube.settings import Settings

ORIGIN = "http://editor.openeo.org"
# Laptop mode answers requests addressed to a loopback name only (api/guard.py): TestClient's "testserver" is not one.
LOOPBACK = "http://localhost"
COLLECTION = {
    "type": "Collection",
    "stac_version": "1.0.0",
    "id": "FAKE_S2",
    "title": "Fake",
    "description": "A fake collection for routing tests.",
    "license": "CC0-1.0",
    "extent": {"spatial": {"bbox": [[6.9, 50.4, 7.2, 50.6]]}, "temporal": {"interval": [["2021-06-01T00:00:00Z", None]]}},
    "links": [{"rel": "self", "href": "file:///elsewhere/collection.json"}, {"rel": "about", "href": "https://example.org/about"}],
    "cube:dimensions": {"bands": {"type": "bands", "values": ["B04", "B08"]}},
    "summaries": {"eo:bands": [{"name": "B04"}, {"name": "B08"}]},
}


class FakeCatalog:
    def __init__(self, settings=None):
        self.documents = {"FAKE_S2": COLLECTION, "FAKE_PRIVATE": {**COLLECTION, "id": "FAKE_PRIVATE", "license": "proprietary"}}

    def ids(self) -> list[str]:
        return sorted(self.documents)

    def stac_collection(self, collection_id: str) -> dict:
        if collection_id not in self.documents:
            raise CollectionNotFound(f"Collection '{collection_id}' does not exist.")
        return copy.deepcopy(self.documents[collection_id])

    def queryables(self, collection_id: str) -> dict:
        self.stac_collection(collection_id)
        return {"type": "object", "properties": {"eo:cloud_cover": {"type": "number"}}}


@pytest.fixture
def app(tmp_path):
    app = create_app(Settings(data_dir=tmp_path / "data", allowed_origins=[ORIGIN]))
    app.state.catalog = FakeCatalog()
    return app


@pytest.fixture
def client(app):
    # No lifespan on purpose: services other rooms start with the app (batch jobs) stay out of these tests.
    return TestClient(app, base_url=LOOPBACK)


@pytest.fixture
def executed(monkeypatch):
    """Replace execute_sync; the test sets what it answers (a SyncResult or an exception)."""
    calls: list[dict] = []
    answer: dict = {"value": SyncResult("application/json", content=b"42", filename="result.json")}

    def fake_execute_sync(process, env, udps=None, *, cancellation=None):
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()  # in a worker thread, never on the event loop
        calls.append({"process": process, "settings": env.settings, "catalog": env.catalog, "files_dir": env.files_dir})
        if isinstance(answer["value"], BaseException):
            raise answer["value"]
        return answer["value"]

    monkeypatch.setattr(processing, "execute_sync", fake_execute_sync)
    return calls, answer


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"id", "code", "message", "links"} and body["code"] == code, body
    assert body["message"] and body["id"]
    return body


# --- discovery -------------------------------------------------------------------------------


def test_capabilities_document(client):
    document = client.get("/").json()
    assert document["api_version"] == "1.2.0" and document["backend_version"] == __version__
    assert document["stac_version"] == "1.0.0" and document["type"] == "Catalog" and document["id"] == "terracube"
    assert document["production"] is False and document["title"] and document["description"]
    assert "billing" not in document
    links = {link["rel"]: link["href"] for link in document["links"]}
    assert links["self"] == "http://localhost/"
    assert links["conformance"] == "http://localhost/conformance"
    assert links["version-history"] == "http://localhost/.well-known/openeo"
    assert links["data"] == "http://localhost/collections"


def test_capabilities_list_every_route_with_its_methods(app):
    @app.get("/added_later")
    def added_later() -> dict:
        return {}

    client = TestClient(app, base_url=LOOPBACK)
    endpoints = {e["path"]: e["methods"] for e in client.get("/").json()["endpoints"]}
    expected = {
        "/": ["GET"],
        "/.well-known/openeo": ["GET"],
        "/conformance": ["GET"],
        "/file_formats": ["GET"],
        "/processes": ["GET"],
        "/collections": ["GET"],
        "/collections/{collection_id}": ["GET"],
        "/collections/{collection_id}/queryables": ["GET"],
        "/result": ["POST"],
        "/validation": ["POST"],
        "/me": ["GET"],
        "/credentials/basic": ["GET"],
        "/health": ["GET"],
        "/added_later": ["GET"],
    }
    assert {path: endpoints.get(path) for path in expected} == expected  # other rooms may add more
    assert all(e["methods"] and e["path"].startswith("/") for e in client.get("/").json()["endpoints"])
    for path in expected:  # and each one is really served
        assert client.request(expected[path][0], path.replace("{collection_id}", "FAKE_S2")).status_code != 404, path


def test_well_known_conformance_health(client):
    assert client.get("/.well-known/openeo").json() == {
        "versions": [{"url": "http://localhost/", "api_version": "1.2.0", "production": False}]
    }
    conforms = client.get("/conformance").json()["conformsTo"]
    assert "https://api.openeo.org/1.2.0" in conforms
    assert {"https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/collections"} <= set(conforms)
    assert client.get("/health").json() == {"status": "ok"}


def test_processes_and_file_formats_come_from_their_rooms(client):
    from terracube.formats import file_formats
    from terracube.processes.registry import default_registry

    processes = client.get("/processes").json()
    assert processes["links"] == []
    assert processes["processes"] == [definition.spec for definition in default_registry()]
    assert client.get("/file_formats").json() == file_formats()


# --- collections -----------------------------------------------------------------------------


def test_collections_get_absolute_links_from_the_request(client):
    listing = client.get("/collections").json()
    assert [c["id"] for c in listing["collections"]] == ["FAKE_PRIVATE", "FAKE_S2"]
    assert {link["rel"] for link in listing["links"]} >= {"self", "root"}
    one = client.get("/collections/FAKE_S2").json()
    links = {link["rel"]: link["href"] for link in one["links"]}
    assert links["self"] == "http://localhost/collections/FAKE_S2"
    assert links["root"] == "http://localhost/" and links["parent"] == "http://localhost/collections"
    assert links["about"] == "https://example.org/about"  # the catalog's own links are kept
    assert links["license"] == "https://spdx.org/licenses/CC0-1.0.html"
    assert [link["rel"] for link in one["links"]].count("self") == 1
    assert one["cube:dimensions"] == COLLECTION["cube:dimensions"]
    private = client.get("/collections/FAKE_PRIVATE").json()
    assert "license" not in {link["rel"] for link in private["links"]}  # no link is invented for "proprietary"
    # Behind a proxy the links follow the URL the client used (a loopback name: laptop mode takes no other).
    proxied = client.get("/collections/FAKE_S2", headers={"Host": "127.0.0.1:8080"}).json()
    assert {link["rel"]: link["href"] for link in proxied["links"]}["self"] == "http://127.0.0.1:8080/collections/FAKE_S2"


def test_unknown_collection_and_queryables(client):
    assert_error(client.get("/collections/NOPE"), 404, "CollectionNotFound")
    assert_error(client.get("/collections/NOPE/queryables"), 404, "CollectionNotFound")
    response = client.get("/collections/FAKE_S2/queryables")
    assert response.headers["content-type"].startswith("application/schema+json")
    assert "eo:cloud_cover" in response.json()["properties"]


def test_a_failing_archive_is_left_out_of_the_listing(app, client, caplog):
    failing = app.state.catalog

    def stac_collection(collection_id):
        if collection_id == "FAKE_PRIVATE":
            raise NoDataAvailable("archive down", status=502, code="ArchiveUnavailable")
        return FakeCatalog.stac_collection(failing, collection_id)

    failing.stac_collection = stac_collection
    with caplog.at_level(logging.WARNING, logger="terracube.api"):
        listing = client.get("/collections").json()
    assert [c["id"] for c in listing["collections"]] == ["FAKE_S2"]
    assert "FAKE_PRIVATE" in caplog.text
    assert_error(client.get("/collections/FAKE_PRIVATE"), 502, "ArchiveUnavailable")


def test_the_catalog_is_created_on_first_use_only(tmp_path, monkeypatch):
    import terracube.data.catalog

    created = []
    monkeypatch.setattr(terracube.data.catalog, "Catalog", lambda settings: created.append(settings) or FakeCatalog())
    settings = Settings(data_dir=tmp_path / "data")
    client = TestClient(create_app(settings), base_url=LOOPBACK)
    for path in ("/", "/processes", "/file_formats", "/health"):
        client.get(path)
    assert created == []
    client.get("/collections")
    client.get("/collections/FAKE_S2")
    assert created == [settings]
    # No sample archive was built (the accounts database may exist: the mode asks it who may log in).
    assert not (tmp_path / "data" / "sample").exists()


# --- processing ------------------------------------------------------------------------------


def test_result_passes_the_body_as_it_is(app, client, executed):
    calls, _ = executed
    body = {
        "process": {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}, "x-custom": [1]},
        "budget": 3,
        "plan": "free",
        "log_level": "debug",
    }
    response = client.post("/result", json=body)
    assert response.status_code == 200 and response.content == b"42"
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["content-disposition"] == 'attachment; filename="result.json"'
    assert response.headers["openeo-costs"] == "0"
    assert calls[0]["process"] == body
    assert calls[0]["settings"] is app.state.settings and calls[0]["catalog"] is app.state.catalog
    assert calls[0]["files_dir"] == user_files_dir(app.state.settings, "anonymous")  # the requesting user's /files


def test_result_streams_a_file_and_cleans_up_after(tmp_path, client, executed):
    _, answer = executed
    path = tmp_path / "openEO.tif"
    path.write_bytes(b"II*\x00tiff")
    cleaned = []
    answer["value"] = SyncResult("image/tiff; application=geotiff", path=path, filename=path.name, cleanup=lambda: cleaned.append(True))
    response = client.post("/result", json={"process": {"process_graph": {}}})
    assert response.content == b"II*\x00tiff"
    assert response.headers["content-type"] == "image/tiff; application=geotiff"
    assert response.headers["content-disposition"] == 'attachment; filename="openEO.tif"'
    assert cleaned == [True]


def test_result_errors_keep_their_code_and_status(client, executed):
    _, answer = executed
    answer["value"] = PayloadTooLarge("Too large for synchronous processing: use a batch job.")
    body = assert_error(client.post("/result", json={"process": {"process_graph": {}}}), 413, "PayloadTooLarge")
    assert body["id"] == answer["value"].id
    answer["value"] = CollectionNotFound("Collection 'NOPE' does not exist.")
    assert_error(client.post("/result", json={"process": {"process_graph": {}}}), 404, "CollectionNotFound")


def test_result_without_a_body_or_with_bad_json(client, executed):
    calls, _ = executed
    assert_error(client.post("/result"), 400, "ProcessGraphMissing")
    assert_error(client.post("/result", content=b"  ", headers={"Content-Type": "application/json"}), 400, "ProcessGraphMissing")
    assert_error(client.post("/result", content=b"{not json", headers={"Content-Type": "application/json"}), 400, "BadRequest")
    assert calls == []
    client.post("/result", json={})  # an empty object reaches the engine, which answers ProcessGraphMissing
    assert calls[0]["process"] == {}


def test_a_bug_is_an_internal_error_object_with_cors_and_a_logged_traceback(client, executed, caplog):
    _, answer = executed
    answer["value"] = ZeroDivisionError("division by zero")
    with caplog.at_level(logging.ERROR, logger="terracube.api"):
        response = client.post("/result", json={"process": {"process_graph": {}}}, headers={"Origin": ORIGIN})
    body = assert_error(response, 500, "Internal")
    assert "ZeroDivisionError" in body["message"] and body["id"] in body["message"]
    assert response.headers["access-control-allow-origin"] == ORIGIN
    record = next(r for r in caplog.records if r.name == "terracube.api" and r.exc_info)
    assert body["id"] in record.getMessage()


def test_validation_answers_200_with_the_errors(client):
    # No body is no validation request (the API's 4xx case); a body without a graph is reported in the list.
    assert_error(client.post("/validation"), 400, "ProcessGraphMissing")
    assert client.post("/validation", json={}).json()["errors"][0]["code"] == "ProcessGraphMissing"
    valid = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
    assert client.post("/validation", json=valid).json() == {"errors": []}
    assert client.post("/validation", json={"process": valid}).json() == {"errors": []}
    invalid = {"process_graph": {"a": {"process_id": "make_it_pretty", "arguments": {}, "result": True}}}
    response = client.post("/validation", json=invalid)
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["code"] == "ProcessUnsupported" and set(error) == {"id", "code", "message", "links"}
    no_result = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}}}}
    assert [e["code"] for e in client.post("/validation", json=no_result).json()["errors"]] == ["ProcessGraphInvalid"]


# --- HTTP errors, CORS, auth -----------------------------------------------------------------


def test_unknown_routes_and_methods(client):
    body = assert_error(client.get("/nowhere"), 404, "NotFound")
    assert "/nowhere" in body["message"]
    response = client.get("/result")
    assert_error(response, 405, "MethodNotAllowed")
    assert response.headers["allow"] == "POST"


def test_cors_preflight_and_exposed_headers(client):
    preflight = client.options(
        "/result",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Authorization, Content-Type"},
    )
    assert preflight.status_code == 204 and preflight.content == b""
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "POST" in preflight.headers["access-control-allow-methods"]
    for response in (client.get("/", headers={"Origin": ORIGIN}), client.get("/nowhere", headers={"Origin": ORIGIN})):
        assert response.headers["access-control-allow-origin"] == ORIGIN
        exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
        assert {"Location", "OpenEO-Identifier", "OpenEO-Costs", "Link", "Content-Disposition"} <= exposed
    assert "access-control-allow-origin" not in client.get("/").headers  # no Origin, no CORS headers


def test_basic_credentials_and_me(client):
    token = client.get("/credentials/basic", auth=("alice", "any password")).json()["access_token"]
    assert isinstance(token, str) and len(token) > 16
    assert client.get("/credentials/basic", auth=("bob", "")).status_code == 200
    response = client.get("/credentials/basic")
    assert_error(response, 401, "AuthenticationRequired")
    assert response.headers["www-authenticate"].startswith("Basic")
    assert_error(client.get("/credentials/basic", headers={"Authorization": "Basic !!!"}), 401, "AuthenticationRequired")
    me = client.get("/me", headers={"Authorization": f"Bearer basic//{token}"}).json()
    # Laptop mode: no quota, so no budget and no storage limit (the API's nulls); the month's usage beside.
    assert {k: me[k] for k in ("user_id", "name", "budget", "storage", "links")} == {
        "user_id": "anonymous", "name": "Anonymous", "budget": None, "storage": None, "links": []}
    assert me["usage"]["budget_unit"] == "cpu-hours"
    assert client.get("/me").json()["user_id"] == "anonymous"
    encoded = base64.b64encode(b"carol:secret").decode()
    assert client.get("/credentials/basic", headers={"Authorization": f"Basic {encoded}"}).status_code == 200


def test_the_app_factory_touches_no_data(tmp_path):
    create_app(Settings(data_dir=tmp_path / "nothing-here"))
    assert not Path(tmp_path / "nothing-here").exists()
