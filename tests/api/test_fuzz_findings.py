"""What fuzzing the live server against its OpenAPI document found (tests/fuzz, docs/compliance.md), one test each.

In process, over the real catalog and the sample archive: each test is the fuzzer's failing
request, and asserts what the openEO API document says the answer must be.
"""

from __future__ import annotations

import jsonschema_rs  # Schemathesis's validator, which checks formats
import pytest
from fastapi.testclient import TestClient

from terracube.api.app import create_app
from terracube.settings import Settings


@pytest.fixture(scope="module")
def client(data_dir, tmp_path_factory):
    own = tmp_path_factory.mktemp("fuzz-findings")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{own / 'terracube.db'}", results_root=str(own / "results"),
                        files_root=str(own / "files"))
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        yield client


@pytest.fixture(scope="module")
def document(client) -> dict:
    return client.get("/openapi.json").json()


def schema_of(document: dict, path: str, method: str, status: str, media_type: str) -> dict:
    """The response schema the document declares, with its components, for jsonschema to validate against."""
    schema = document["paths"][path][method]["responses"][status]["content"][media_type]["schema"]
    return {**schema, "components": document["components"]}  # "#/components/..." references resolve in it


def test_queryables_id_is_a_uri(client, document):
    # Found: "$id": "queryables/SENTINEL2_L2A" is not a "uri" (the API's json_schema.$id has format uri).
    response = client.get("/collections/SENTINEL2_L2A/queryables")
    assert response.status_code == 200
    queryables = response.json()
    assert queryables["$id"] == "http://localhost/collections/SENTINEL2_L2A/queryables"
    schema = schema_of(document, "/collections/{collection_id}/queryables", "get", "200", "application/schema+json")
    validator = jsonschema_rs.Draft4Validator(schema, validate_formats=True)  # OpenAPI 3.0's schemas are draft 4's, mostly
    assert [error.message for error in validator.iter_errors(queryables)] == []


def test_well_known_is_described_on_this_server(document):
    # Found: the API's example host for /.well-known/openeo (https://openeo.example) sent the fuzzer elsewhere.
    operation = document["paths"]["/.well-known/openeo"]["get"]
    assert "servers" not in operation and "servers" not in document["paths"]["/.well-known/openeo"]
    assert "servers" not in document  # relative to the server that serves the document
