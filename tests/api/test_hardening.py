"""No 5xx from any input: each class of input that once gave a 500 answers with the spec's 4xx.

In process (FastAPI's TestClient with its lifespan, so /jobs works), on the session's sample
archive, a real SQLite file and real folders.
"""

from __future__ import annotations

import copy
import json

import pytest
from fastapi.testclient import TestClient

from terracube.api.app import create_app
from terracube.settings import Settings
from tests.jobs.graphs import tutorial

BIG = str(2**64)  # beyond the database's 64-bit integers
# Raw JSON bodies: Python's json would write NaN and Infinity, which are not JSON, and the test says so.
HEADERS = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def client(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hardening")
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{folder / 'jobs.db'}",
        results_root=str(folder / "results"),
        files_root=folder / "files",
        max_json_bytes=200_000,
        max_graph_depth=8,
        max_graph_nodes=2_000,
    )
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        assert test_client.app.state.jobs.wait_ready(60)
        yield test_client


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return body


def load_arguments(graph: dict) -> dict:
    return graph["process_graph"]["load"]["arguments"] if "load" in graph["process_graph"] else next(
        node["arguments"] for node in graph["process_graph"].values() if node["process_id"] == "load_collection"
    )


def with_load(**arguments) -> dict:
    graph = copy.deepcopy(tutorial())
    load_arguments(graph).update(arguments)
    return graph


def job_count(client) -> int:
    return len(client.get("/jobs").json()["jobs"])


# --- 1. paging beyond 64 bits -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/jobs", "/process_graphs"])
@pytest.mark.parametrize("name", ["limit", "offset"])
def test_paging_beyond_64_bits_is_a_bad_request(client, path, name):
    assert_error(client.get(path, params={name: BIG}), 400, "BadRequest")
    assert client.get(path, params={name: str(2**63 - 1)}).status_code == 200


def test_log_paging_beyond_64_bits_is_a_bad_request(client):
    job_id = client.post("/jobs", json={"process": tutorial()}).headers["OpenEO-Identifier"]
    for name in ("limit", "offset"):
        assert_error(client.get(f"/jobs/{job_id}/logs", params={name: BIG}), 400, "BadRequest")
    assert client.get(f"/jobs/{job_id}/logs", params={"offset": "12", "limit": "5"}).status_code == 200


# --- 2. and 3. extents refused wherever a graph comes in ---------------------------------------

BAD_EXTENTS = {
    "malformed date": {"temporal_extent": ["2021-13-45", "2021-12-31"]},
    "reversed interval": {"temporal_extent": ["2021-09-01", "2021-06-01"]},
    "latitude beyond 90": {"spatial_extent": {"west": 7.0, "south": 50.4, "east": 7.1, "north": 95.0}},
}


@pytest.mark.parametrize("case", sorted(BAD_EXTENTS))
def test_a_bad_extent_is_refused_everywhere_and_never_stored(client, case):
    graph = with_load(**BAD_EXTENTS[case])
    assert_error(client.post("/result", json={"process": graph}), 400, "ProcessParameterInvalid")
    errors = client.post("/validation", json={"process": graph}).json()["errors"]
    assert [e["code"] for e in errors] == ["ProcessParameterInvalid"], errors
    before = job_count(client)
    assert_error(client.post("/jobs", json={"process": graph}), 400, "ProcessParameterInvalid")
    assert job_count(client) == before
    assert_error(client.put("/process_graphs/bad_extent", json=graph), 400, "ProcessParameterInvalid")
    assert_error(client.get("/process_graphs/bad_extent"), 404, "ProcessGraphNotFound")
    # An existing job cannot take the graph either.
    job_id = client.post("/jobs", json={"process": tutorial()}).headers["OpenEO-Identifier"]
    assert_error(client.patch(f"/jobs/{job_id}", json={"process": graph}), 400, "ProcessParameterInvalid")
    assert client.get(f"/jobs/{job_id}").json()["process"] == tutorial()
    assert client.get(f"/jobs/{job_id}/estimate").status_code == 200


def test_a_bad_date_that_arrives_through_a_parameter_is_refused_when_it_runs(client):
    # Validation cannot see it (the load's extent is a parameter); the load refuses it with the same code.
    stored = with_load(temporal_extent={"from_parameter": "period"})
    stored["parameters"] = [{"name": "period", "description": "dates", "schema": {"type": "array"}}]
    assert client.put("/process_graphs/ndvi_in_period", json=stored).status_code == 200
    call = {"process_graph": {"call": {"process_id": "ndvi_in_period", "namespace": "user",
                                       "arguments": {"period": ["2021-13-45", "2021-12-31"]}, "result": True}}}
    answer = assert_error(client.post("/result", json={"process": call}), 400, "ProcessParameterInvalid")
    assert "2021-13-45" in answer["message"]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_not_json(client, token):
    text = json.dumps({"process": with_load(spatial_extent={"west": 7.0, "south": 50.4, "east": 7.1, "north": 50.5})})
    body = text.replace("50.5", token)
    for method, path in [("post", "/result"), ("post", "/jobs"), ("put", "/process_graphs/nan"), ("post", "/validation")]:
        answer = assert_error(client.request(method, path, content=body, headers=HEADERS), 400, "BadRequest")
        assert token.lstrip("-") in answer["message"]
    job_id = client.post("/jobs", json={"process": tutorial()}).headers["OpenEO-Identifier"]
    assert_error(client.patch(f"/jobs/{job_id}", content='{"budget": %s}' % token, headers=HEADERS), 400, "BadRequest")
    assert client.get(f"/jobs/{job_id}").json().get("budget") is None


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" + "0" * 400, "9" * 5000])
def test_numbers_beyond_a_float_are_refused(client, number):
    text = json.dumps({"process": with_load(spatial_extent={"west": 7.0, "south": 50.4, "east": 7.1, "north": 50.5})})
    answer = client.post("/jobs", content=text.replace("7.1", number), headers=HEADERS)
    assert 400 <= answer.status_code < 500, answer.text
    job_id = client.post("/jobs", json={"process": tutorial()}).headers["OpenEO-Identifier"]
    answer = client.patch(f"/jobs/{job_id}", content='{"budget": %s}' % number, headers=HEADERS)
    assert answer.status_code == 400, answer.text
    assert client.get(f"/jobs/{job_id}").json().get("budget") is None


# --- 4. long graphs, deep callbacks, deep JSON -------------------------------------------------


def chain(length: int) -> dict:
    """x = 0; x = x + 1, ``length`` times: a linear chain the result of which is ``length``."""
    nodes = {"n0": {"process_id": "add", "arguments": {"x": 0, "y": 1}}}
    for i in range(1, length):
        nodes[f"n{i}"] = {"process_id": "add", "arguments": {"x": {"from_node": f"n{i - 1}"}, "y": 1}}
    nodes[f"n{length - 1}"]["result"] = True
    return {"process": {"process_graph": nodes}}


def nested_callbacks(depth: int) -> dict:
    """``array_apply`` in ``array_apply``, ``depth`` deep, adding 1 at each level: [depth] from [0]."""
    inner = {"x": {"process_id": "add", "arguments": {"x": {"from_parameter": "x"}, "y": 1}, "result": True}}
    for _ in range(depth - 1):
        inner = {
            "a": {"process_id": "array_apply", "arguments": {"data": [{"from_parameter": "x"}], "process": {"process_graph": inner}}},
            "f": {"process_id": "array_element", "arguments": {"data": {"from_node": "a"}, "index": 0}},
            "g": {"process_id": "add", "arguments": {"x": {"from_node": "f"}, "y": 1}, "result": True},
        }
    top = {"a": {"process_id": "array_apply", "arguments": {"data": [0], "process": {"process_graph": inner}}, "result": True}}
    return {"process": {"process_graph": top}}


@pytest.mark.parametrize("length", [329, 1500])
def test_a_long_chain_evaluates(client, length):
    answer = client.post("/result", json=chain(length))
    assert answer.status_code == 200, answer.text
    assert answer.json() == length
    assert client.post("/validation", json=chain(length)).json()["errors"] == []


def test_a_graph_beyond_the_node_limit_is_too_complex(client):
    for method, path in [("post", "/result"), ("post", "/jobs"), ("put", "/process_graphs/big")]:
        body = chain(2_001) if path != "/process_graphs/big" else chain(2_001)["process"]
        assert_error(client.request(method, path, json=body), 400, "ProcessGraphComplexity")
    assert [e["code"] for e in client.post("/validation", json=chain(2_001)).json()["errors"]] == ["ProcessGraphComplexity"]


def test_callbacks_nest_up_to_the_limit(client):
    answer = client.post("/result", json=nested_callbacks(8))
    assert answer.status_code == 200, answer.text
    assert answer.json() == [8]
    assert_error(client.post("/result", json=nested_callbacks(9)), 400, "ProcessGraphComplexity")
    codes = [e["code"] for e in client.post("/validation", json=nested_callbacks(9)).json()["errors"]]
    assert codes == ["ProcessGraphComplexity"]
    # 200 callbacks nest JSON about 800 deep: the body itself is refused before the graph is read.
    for path in ("/result", "/validation"):
        assert_error(client.post(path, json=nested_callbacks(200)), 400, "ProcessGraphComplexity")


@pytest.mark.parametrize("depth", [201, 900, 90_000])
def test_deeply_nested_json_is_too_complex(client, depth):
    body = '{"process": {"process_graph": ' + "[" * depth + "]" * depth + "}}"
    for method, path in [("post", "/result"), ("post", "/jobs"), ("put", "/process_graphs/deep"), ("post", "/validation")]:
        assert_error(client.request(method, path, content=body, headers=HEADERS), 400, "ProcessGraphComplexity")


# --- 5. file names too long for the file system ------------------------------------------------


def test_an_over_long_file_name_is_an_invalid_path(client, data_dir, tmp_path_factory):
    long_name = "a" * 256 + ".tif"
    for method, path in [("put", f"/files/{long_name}"), ("get", f"/files/{long_name}"), ("delete", f"/files/x/{long_name}")]:
        answer = assert_error(client.request(method, path, content=b"x"), 400, "FilePathInvalid")
        assert "hardening" not in answer["message"] and str(data_dir) not in answer["message"]  # no server folder
        assert len(answer["message"]) < 300
    graph = {"process_graph": {"l": {"process_id": "load_uploaded_files", "arguments": {"paths": [long_name], "format": "GTiff"}, "result": True}}}
    answer = client.post("/result", json={"process": graph})
    assert 400 <= answer.status_code < 500, answer.text
    assert str(data_dir) not in answer.text and "/tmp" not in answer.text


# --- body size, echoes, headers, methods -------------------------------------------------------


def test_a_json_body_beyond_the_limit_is_refused_before_it_is_read(client):
    body = json.dumps({"process": tutorial(), "description": "x" * 200_000})
    for method, path in [("post", "/result"), ("post", "/jobs"), ("put", "/process_graphs/large"), ("post", "/validation")]:
        assert_error(client.request(method, path, content=body, headers=HEADERS), 413, "PayloadTooLarge")

    def chunks():  # no Content-Length: counted as it streams
        for start in range(0, len(body), 10_000):
            yield body[start : start + 10_000].encode()

    assert_error(client.post("/jobs", content=chunks(), headers=HEADERS), 413, "PayloadTooLarge")


def test_echoed_ids_are_cut_to_a_readable_length(client):
    graph = {"process_graph": {"x": {"process_id": "p" * 5000, "arguments": {}, "result": True}}}
    message = assert_error(client.post("/result", json={"process": graph}), 400, "ProcessUnsupported")["message"]
    assert len(message) < 500 and "…" in message
    message = assert_error(client.get("/jobs/" + "j" * 5000), 404, "JobNotFound")["message"]
    assert len(message) < 300
    for method, status, code in [("get", 404, "ProcessGraphNotFound"), ("delete", 404, "ProcessGraphNotFound"), ("put", 400, "ProcessGraphIdInvalid")]:
        answer = client.request(method, "/process_graphs/" + "p-" * 2500, json={"process_graph": chain(2)["process"]["process_graph"]})
        assert len(assert_error(answer, status, code)["message"]) < 300


@pytest.mark.parametrize("path", ["/", "/jobs", "/does-not-exist", "/health"])
def test_every_answer_has_security_headers_and_no_banner(client, path):
    answer = client.get(path)
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    assert "server" not in answer.headers


def test_the_issuers_pages_keep_a_policy_that_lets_their_forms_work(client):
    answer = client.get("/oidc/device")
    if answer.status_code == 404:
        pytest.skip("the built-in issuer is off in this mode")  # pragma: no cover
    assert answer.headers["content-type"].startswith("text/html")
    policy = answer.headers["Content-Security-Policy"]
    # default-src does not govern form-action: the login form posts back to its page.
    assert "form-action 'none'" not in policy and "style-src 'unsafe-inline'" in policy
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("method, path, allowed", [
    ("delete", "/jobs", {"GET", "POST"}),
    ("post", "/process_graphs/x", {"GET", "PUT", "DELETE"}),
    ("put", "/jobs/x", {"GET", "PATCH", "DELETE"}),
])
def test_a_405_lists_every_allowed_method(client, method, path, allowed):
    response = client.request(method, path)
    assert_error(response, 405, "MethodNotAllowed")
    assert set(response.headers["Allow"].split(", ")) == allowed


# --- 6. estimates of jobs stored before these checks ---------------------------------------------


@pytest.mark.parametrize("case", sorted(BAD_EXTENTS))
def test_the_estimate_of_a_job_stored_before_the_checks_is_a_bad_request(client, case):
    # Such a job can no longer be created; one stored by an older server is put in the database directly.
    from terracube.auth.user import LOCAL_USER

    job = client.app.state.jobs.store.create(LOCAL_USER.user_id, with_load(**BAD_EXTENTS[case]))
    assert_error(client.get(f"/jobs/{job.id}/estimate"), 400, "ProcessParameterInvalid")


def test_a_file_that_is_not_its_format_is_refused_without_the_servers_folder(client, data_dir):
    assert client.put("/files/inputs/not-a-tiff.tif", content=b"plain text").status_code == 200
    graph = {"process_graph": {"l": {"process_id": "load_uploaded_files", "arguments": {"paths": ["inputs/not-a-tiff.tif"], "format": "GTiff"}, "result": True}}}
    message = assert_error(client.post("/result", json={"process": graph}), 400, "FormatUnsuitable")["message"]
    assert "not-a-tiff.tif" in message
    assert "hardening" not in message and str(data_dir) not in message and "/files/" not in message, message


def test_the_live_server_sends_no_banner(server):
    import requests

    # uvicorn started as `terracube serve` starts it (tests/live_server.py: --no-server-header).
    answer = requests.get(server.url + "/jobs", timeout=30)
    assert "server" not in answer.headers and answer.headers["X-Content-Type-Options"] == "nosniff"
    big = requests.post(server.url + "/result", data=b"[" * (11 * 2**20), headers=HEADERS, timeout=60)
    assert (big.status_code, big.json()["code"]) == (413, "PayloadTooLarge")
