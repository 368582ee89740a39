"""Laptop mode is not open to web pages (api/guard.py), against a live server.

The server here runs UDFs as plain child processes (no ``bwrap`` on its ``PATH``), as a laptop
without bubblewrap does: a UDF that writes a marker file then shows whether a request ran code.
"""

from __future__ import annotations

import json
import textwrap
import time
from urllib.parse import urlsplit

import openeo
import pytest
import requests
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from terracube.api.guard import JsonBodies, WebGuard

from tests.conftest import AFTER, TUTORIAL_AOI
from tests.live_server import LiveServer

EDITOR = "https://editor.openeo.org"
EVIL = "https://evil.example"
MARK = textwrap.dedent(
    """
    def apply_datacube(cube, context):
        with open(context["marker"], "w") as f:
            f.write("ran")
        return cube
    """
)


@pytest.fixture(scope="module")
def live(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("guard")
    server = LiveServer({"TERRACUBE_DATA_DIR": str(data_dir), "TERRACUBE_ALLOWED_ORIGINS": json.dumps([EDITOR]),
                         "TERRACUBE_FILES_ROOT": str(folder / "files"), "PATH": str(folder / "no-bwrap-here")}).start()
    yield server
    server.stop()


def graph_writing(marker) -> dict:
    corner = {**TUTORIAL_AOI, "east": TUTORIAL_AOI["west"] + 0.005, "north": TUTORIAL_AOI["south"] + 0.003}
    return {"process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {"id": "SENTINEL2_L2A", "spatial_extent": corner, "temporal_extent": AFTER, "bands": ["B04"]}},
        "udf": {"process_id": "run_udf", "arguments": {"data": {"from_node": "load"}, "udf": MARK, "runtime": "Python", "context": {"marker": str(marker)}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "udf"}, "format": "netCDF"}, "result": True},
    }}}


def error_of(response: requests.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and set(body) == {"id", "code", "message", "links"}
    return body["message"]


def port_of(live) -> int:
    return urlsplit(live.url).port


def test_the_attack_a_text_plain_post_from_a_web_page_is_refused_and_runs_nothing(live, tmp_path):
    marker = tmp_path / "ran"
    body = json.dumps(graph_writing(marker))
    # What a page at evil.example can send without asking first (no CORS preflight): text/plain.
    response = requests.post(live.url + "/result", data=body, headers={"Content-Type": "text/plain", "Origin": EVIL}, timeout=60)
    assert EVIL in error_of(response, 403, "PermissionsInsufficient")
    assert "access-control-allow-origin" not in response.headers  # the page cannot even read the refusal
    # Without an Origin (a program), text/plain is still no JSON body: 415.
    response = requests.post(live.url + "/result", data=body, headers={"Content-Type": "text/plain"}, timeout=60)
    assert "application/json" in error_of(response, 415, "ContentTypeInvalid")
    time.sleep(1)
    assert not marker.exists()
    # The same graph sent properly runs the UDF: the marker shows what a refused request did not do.
    response = requests.post(live.url + "/result", json=graph_writing(marker), timeout=120)
    assert response.status_code == 200, response.text
    assert marker.read_text() == "ran"


def test_dns_rebinding_a_foreign_host_name_is_refused(live):
    port = port_of(live)
    for headers in ({"Host": f"evil.example:{port}"}, {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"},
                    {"Host": f"192.168.1.20:{port}"}):
        response = requests.get(live.url + "/collections", headers=headers, timeout=10)
        assert headers["Host"] in error_of(response, 403, "PermissionsInsufficient")
    created = requests.post(live.url + "/jobs", json={"process": {"process_graph": {}}}, headers={"Host": f"evil.example:{port}"}, timeout=10)
    error_of(created, 403, "PermissionsInsufficient")
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", f"127.0.0.2:{port}"):
        assert requests.get(live.url + "/collections", headers={"Host": host}, timeout=10).status_code == 200


def test_allowed_and_own_origins_pass_with_cors_and_others_get_nothing(live):
    port = port_of(live)
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    answer = requests.options(live.url + "/result", headers={"Origin": EDITOR, **preflight}, timeout=10)
    assert answer.status_code == 204 and answer.headers["Access-Control-Allow-Origin"] == EDITOR
    for origin in (EDITOR, f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        answer = requests.get(live.url + "/collections", headers={"Origin": origin}, timeout=10)
        assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == origin
    for origin in (EVIL, "null", f"http://127.0.0.1:{port + 1}", EDITOR.replace("https", "http")):
        refused = requests.options(live.url + "/result", headers={"Origin": origin, **preflight}, timeout=10)
        assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
        error_of(requests.get(live.url + "/collections", headers={"Origin": origin}, timeout=10), 403, "PermissionsInsufficient")


def test_the_official_client_keeps_working(live, tmp_path):
    con = openeo.connect(live.url, default_timeout=120)
    assert "SENTINEL2_L2A" in con.list_collection_ids()
    assert con.execute({"sum": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}) == 3
    job = con.create_job({"sum": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}, title="guarded")
    assert job.describe()["title"] == "guarded"
    job.delete()
    source = tmp_path / "notes.txt"
    source.write_text("not JSON, and that is fine for an upload")
    con.upload_file(source, target="notes.txt")  # PUT /files/notes.txt, application/octet-stream
    assert [str(f.path) for f in con.list_files()] == ["notes.txt"]


def test_json_bodies_need_the_json_content_type(live):
    graph = {"process_graph": {"sum": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
    text = json.dumps(graph)
    for method, path in (("POST", "/result"), ("POST", "/validation"), ("POST", "/jobs"), ("PUT", "/process_graphs/plus"), ("PATCH", "/jobs/any")):
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
            headers = {"Content-Type": content_type} if content_type else {}
            response = requests.request(method, live.url + path, data=text.encode(), headers=headers, timeout=10)
            assert f"{method} {path}" in error_of(response, 415, "ContentTypeInvalid")
    for content_type in ("application/json", "application/json; charset=utf-8", "application/openeo+json"):
        response = requests.post(live.url + "/validation", data=text, headers={"Content-Type": content_type}, timeout=10)
        assert response.status_code == 200 and response.json() == {"errors": []}
    # No body: not a validation request (the API keeps 4xx for a request whose body is missing).
    error_of(requests.post(live.url + "/validation", timeout=10), 400, "ProcessGraphMissing")


# --- the middleware itself: the mode is asked for at every request --------------------------


def guarded(mode: dict) -> TestClient:
    async def echo(request):
        return JSONResponse({"got": (await request.body()).decode()})

    app = Starlette(routes=[Route("/result", echo, methods=["GET", "POST"])])
    return TestClient(WebGuard(JsonBodies(app), laptop_mode=lambda: mode["laptop"], allowed_origins=[EDITOR + "/"]))


def test_accounts_mode_lifts_the_origin_and_host_checks_but_not_the_json_one():
    mode = {"laptop": False}
    client = guarded(mode)  # Host: testserver, which laptop mode refuses
    assert client.post("/result", json={"a": 1}, headers={"Origin": EVIL}).json() == {"got": '{"a":1}'}
    error = client.post("/result", content=b'{"a": 1}', headers={"Content-Type": "text/plain"})
    assert error.status_code == 415 and error.json()["code"] == "ContentTypeInvalid"
    mode["laptop"] = True
    assert client.get("/result").status_code == 403
    loopback = TestClient(client.app, base_url="http://127.0.0.1:8000")
    assert loopback.get("/result", headers={"Origin": EDITOR}).status_code == 200  # a trailing "/" in the setting is fine
    assert loopback.get("/result", headers={"Origin": EVIL}).status_code == 403
