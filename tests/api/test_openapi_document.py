"""``/openapi.json`` is the openEO API's own document, cut to the routes this server serves (api/openapi.py).

In process, no data: the document is built from the routes and the shipped API file only. The
live fuzzing against it is tests/fuzz/fuzz_api.py (a CI step of its own, docs/compliance.md).
"""

from __future__ import annotations

import hashlib
from importlib.resources import files

import pytest
import yaml
from fastapi.testclient import TestClient

from terracube import __version__
from terracube.api.app import create_app
from terracube.api.openapi import METHODS, served_routes
from terracube.settings import Settings

# The openEO API 1.2.0's openapi.yaml as released (tag 1.2.0 of github.com/Open-EO/openeo-api): its git blob id.
API_1_2_0_BLOB = "aafd67fc3395312c15b1149a4d5e92de7ff6b1c4"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(Settings(data_dir=tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="module")
def document(app) -> dict:
    response = TestClient(app, base_url="http://localhost").get("/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    return response.json()


@pytest.fixture(scope="module")
def api() -> dict:
    """The shipped API file, read here with plain PyYAML (dates as strings, as JSON carries them)."""
    raw = files("terracube.api").joinpath("openeo_api", "openapi.yaml").read_bytes()
    assert hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest() == API_1_2_0_BLOB, "not the API 1.2.0 file as released"
    assert files("terracube.api").joinpath("openeo_api", "LICENSE").read_text().lstrip().startswith("Apache License")
    return yaml.load(raw, Loader=yaml.BaseLoader)  # every scalar a string: compared through stringify() below


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def walk(node, trail=()):
    yield trail, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*trail, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*trail, index))


def test_no_operation_declares_a_422_which_the_server_never_sends(document, api):
    answers = {(path, method): set(operation["responses"]) for path, method, operation in operations(document)}
    assert answers and not {where: codes for where, codes in answers.items() if "422" in codes}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, method, operation in operations(document):  # and every route of our own says how it fails
        if method not in api["paths"].get(path, {}):
            assert any(code.startswith("4") for code in operation["responses"]), (path, method)


def test_every_route_the_app_serves_is_described_and_nothing_else(app, document):
    described = {(path, method) for path, method, _ in operations(document)}
    served = {(route.path, route.method) for route in served_routes(app)}
    assert described == served
    # The walk over the routes finds the nested ones: included routers, the issuer's hidden routes, HEAD twins.
    assert {("/jobs/{job_id}/results", "post"), ("/files/{path}", "put"), ("/oidc/token", "post"),
            ("/jobs/{job_id}/results/assets/{filename}", "head"), ("/health", "get")} <= described
    assert not {path for path, _ in described if path in ("/openapi.json", "/docs", "/redoc")}


def test_a_route_added_later_appears_in_the_document(tmp_path):
    app = create_app(Settings(data_dir=tmp_path))
    client = TestClient(app, base_url="http://localhost")
    assert "/added_later" not in client.get("/openapi.json").json()["paths"]

    @app.get("/added_later")
    def added_later() -> dict:
        return {}

    assert set(client.get("/openapi.json").json()["paths"]["/added_later"]) == {"get"}


def stringify(node):
    """The document as YAML's BaseLoader reads the API file: every scalar a string."""
    if isinstance(node, dict):
        return {str(k): stringify(v) for k, v in node.items()}
    if isinstance(node, list):
        return [stringify(v) for v in node]
    if isinstance(node, bool):
        return "true" if node else "false"
    return "null" if node is None else str(node)


def test_openeo_routes_are_the_api_s_own_operations(document, api):
    compared = 0
    for path, method, operation in operations(document):
        spec_operation = api["paths"].get(path, {}).get(method)
        if spec_operation is None:
            continue
        compared += 1
        for key in ("requestBody", "responses", "parameters", "security", "operationId"):
            assert stringify(operation.get(key)) == stringify(spec_operation.get(key)), (path, method, key)
        path_parameters = api["paths"][path].get("parameters")
        assert stringify(document["paths"][path].get("parameters")) == stringify(path_parameters), path
    assert compared >= 30  # capabilities, collections, processes, validation, result, UDPs, files, jobs, me, credentials
    assert stringify(document["components"]["schemas"]["process_graph"]) == stringify(api["components"]["schemas"]["process_graph"])
    assert document["openapi"] == "3.0.2"
    assert document["info"]["version"] == __version__  # terracube's own version; the API's is beside it
    assert document["info"]["x-openeo-api-version"] == "1.2.0"


def test_the_document_is_a_valid_openapi_3_document_whose_references_resolve(document):
    import schemathesis

    schemathesis.openapi.from_dict(document).validate()  # against the OpenAPI 3.0 meta-schema; raises on an error
    for trail, node in walk(document):
        if trail and trail[-1] == "$ref" and isinstance(node, str):
            assert node.startswith("#/"), trail
            target = document
            for part in node[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            assert isinstance(target, dict), node


def test_own_routes_declare_what_they_answer(document):
    health = document["paths"]["/health"]["get"]["responses"]
    assert health["200"]["content"]["application/json"]["schema"]["properties"]["status"]["enum"] == ["ok"]
    signed = document["paths"]["/jobs/{job_id}/results/item.json"]["get"]
    assert "application/geo+json" in signed["responses"]["200"]["content"]
    assert {p["name"]: p["schema"] for p in signed["parameters"]}["expires"] == {"title": "Expires", "type": "string", "nullable": True}
    token = document["paths"]["/oidc/token"]["post"]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
