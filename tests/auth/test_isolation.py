"""Private by construction: one user's ids answer another user exactly as ids that do not exist.

A live server in accounts mode, two accounts made with ``terracube users add``, both logged in
with the official client. Alice makes one of every kind of thing (a batch job started and
finished, so it has results and logs; a user-defined process; uploaded files); Bob then tries every
user-scoped route on her ids, and every answer is compared with the answer for an id that does
not exist, asked in the same test: same status, same openEO code, same message but for the id.

The routes are read from the app itself: a route added later with a path parameter and no check
here fails ``test_every_user_scoped_route_is_checked``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import numpy as np
import openeo
import pytest
import rasterio
import requests
from openeo.rest import OpenEoApiError
from rasterio.transform import from_origin

from terracube.api.app import create_app
from terracube.auth.access import is_public
from terracube.jobs.signing import UrlSigner
from terracube.jobs.store import JobStore, new_job_id
from terracube.services.model import Service
from terracube.services.store import ServiceStore, new_service_id
from terracube.settings import Settings
from tests.auth.conftest import PASSWORDS, terracube
from tests.live_server import LiveServer

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # a FastAPI whose app.routes are flat already
    iter_route_contexts = None

SUM = {"process_graph": {"sum": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
DOUBLE = {"double": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "x"}, "y": 2}, "result": True}}
MISSING_USER = "u-" + "0" * 16  # the shape of a user id, of nobody


def server_env(folder: Path) -> dict[str, str]:
    """Everything in ``folder``: data directory (keys, files), database, results under it."""
    return {
        "TERRACUBE_DATA_DIR": str(folder),
        "TERRACUBE_DATABASE_URL": f"sqlite:///{folder / 'terracube.db'}",
        "TERRACUBE_RESULTS_ROOT": str(folder / "results"),
    }


def write_geotiff(path: Path) -> None:
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "float32", "crs": "EPSG:4326",
               "transform": from_origin(7.0, 50.5, 0.001, 0.001)}
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(np.arange(16, dtype="float32").reshape(1, 4, 4))


def stac_item(asset: str) -> dict:
    """A STAC Item of the uploaded GeoTIFF: what makes an uploaded folder loadable with load_stac."""
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": "alices-scene",
        "geometry": {"type": "Polygon", "coordinates": [[[7.0, 50.496], [7.004, 50.496], [7.004, 50.5], [7.0, 50.5], [7.0, 50.496]]]},
        "bbox": [7.0, 50.496, 7.004, 50.5], "properties": {"datetime": "2021-07-21T00:00:00Z"}, "links": [],
        "assets": {"B01": {"href": asset, "type": "image/tiff; application=geotiff", "roles": ["data"]}},
    }


def wait_finished(con: openeo.Connection, job_id: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while (status := con.job(job_id).status()) != "finished":
        assert status in ("created", "queued", "running") and time.monotonic() < deadline, f"job {job_id} is {status}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The server, Alice's and Bob's connections, and everything Alice made."""
    folder = tmp_path_factory.mktemp("isolation")
    server = LiveServer(server_env(folder))
    terracube(server.env, "users", "add", "alice", "--admin", password=PASSWORDS["alice"])  # an admin: private all the same
    terracube(server.env, "users", "add", "bob", password=PASSWORDS["bob"])
    server.start()
    try:
        alice = openeo.connect(server.url).authenticate_basic("alice", PASSWORDS["alice"])
        bob = openeo.connect(server.url).authenticate_basic("bob", PASSWORDS["bob"])
        job = alice.create_job(SUM, title="alice's job")
        job.start()
        wait_finished(alice, job.job_id)
        alice.save_user_defined_process("alice_double", DOUBLE, parameters=[{"name": "x", "schema": {"type": "number"}}])
        uploads = tmp_path_factory.mktemp("alice-uploads")
        write_geotiff(uploads / "scene.tif")
        (uploads / "item.json").write_text(json.dumps(stac_item("scene.tif")))
        alice.upload_file(uploads / "scene.tif", target="scene.tif")
        alice.upload_file(uploads / "item.json", target="item.json")
        service = alices_service(server.env["TERRACUBE_DATABASE_URL"], alice.describe_account()["user_id"])
        bob_session = requests.Session()
        bob_session.auth = bob.auth  # Bob's token, on raw requests, to see each answer whole
        yield {
            "server": server, "folder": folder, "alice": alice, "bob": bob, "as_bob": bob_session,
            "job": job.job_id, "process": "alice_double", "file": "scene.tif", "service": service,
            "alice_id": alice.describe_account()["user_id"], "bob_id": bob.describe_account()["user_id"],
        }
    finally:
        server.stop()


def alices_service(database_url: str, alice_id: str) -> str:
    """A map service of Alice's, put straight into the server's database.

    Whether a graph can be drawn is not what this file tests (tests/services does), so the service
    is stored as the API stores one, without the rendering check and its data.
    """
    store = JobStore(database_url)
    try:
        graph = node("load_uploaded_files", paths=["scene.tif"], format="GTiff")
        service = Service(new_service_id(), alice_id, "XYZ", {"process_graph": graph}, title="alice's map")
        return ServiceStore(store).add(service).id
    finally:
        store.close()


def assert_same_answer(answer: requests.Response, missing: requests.Response, own_id: str, missing_id: str) -> None:
    """``answer`` (for Alice's id) is exactly ``missing`` (for an id of nothing), but for the id itself."""
    assert answer.status_code == missing.status_code, (answer.text, missing.text)
    if not missing.content:
        assert not answer.content
        return
    if missing.headers.get("content-type", "").startswith("application/json"):
        body, expected = answer.json(), missing.json()
        body.pop("id", None), expected.pop("id", None)  # the error's own id is per request
        assert json.dumps(body).replace(own_id, "ID") == json.dumps(expected).replace(missing_id, "ID")
    else:
        assert answer.content.replace(own_id.encode(), b"ID") == missing.content.replace(missing_id.encode(), b"ID")


def error_code(response: requests.Response) -> str:
    return response.json()["code"]


# --- every user-scoped route ---------------------------------------------------------------------
# (method, route) -> a check ``(world, tmp_path)`` that asks Bob the route on Alice's id and on a missing one.
CHECKS: dict[tuple[str, str], Callable] = {}


def check(method: str, route: str):
    def register(function):
        CHECKS[(method, route)] = function
        return function

    return register


def ask_both(world, method: str, template: str, own_id: str, missing_id: str, **kwargs) -> tuple[requests.Response, requests.Response]:
    url = world["server"].url + template
    answer = world["as_bob"].request(method, url.format(own_id), **kwargs)
    missing = world["as_bob"].request(method, url.format(missing_id), **kwargs)
    assert_same_answer(answer, missing, own_id, missing_id)
    return answer, missing


def job_is_untouched(world) -> None:
    """Alice's job after Bob's attempts: still hers, finished, with its title and results."""
    described = world["alice"].job(world["job"]).describe()
    assert (described["status"], described["title"]) == ("finished", "alice's job")
    assert world["alice"].job(world["job"]).get_results().get_metadata()["assets"]


def job_route(method: str, route: str, **kwargs):
    @check(method, route)
    def checked(world, tmp_path):
        answer, _ = ask_both(world, method, route.replace("{job_id}", "{}"), world["job"], new_job_id(), **kwargs)
        assert (answer.status_code, error_code(answer)) == (404, "JobNotFound")
        job_is_untouched(world)

    return checked


job_route("GET", "/jobs/{job_id}")
job_route("PATCH", "/jobs/{job_id}", json={"title": "bob was here"})
job_route("DELETE", "/jobs/{job_id}")
job_route("POST", "/jobs/{job_id}/results")
job_route("DELETE", "/jobs/{job_id}/results")
job_route("GET", "/jobs/{job_id}/results")
job_route("GET", "/jobs/{job_id}/logs")
job_route("GET", "/jobs/{job_id}/estimate")


@check("GET", "/jobs/{job_id}/results/item.json")
def signed_document_without_its_signature(world, tmp_path):
    # Public (a signature is its credential): without one, Alice's job is as unknown as none.
    answer, _ = ask_both(world, "GET", "/jobs/{}/results/item.json", world["job"], new_job_id())
    assert answer.status_code == 403
    answer, _ = ask_both(world, "GET", "/jobs/{}/results/item.json?expires=99999999999&signature=00", world["job"], new_job_id())
    assert answer.status_code == 403


@check("GET", "/jobs/{job_id}/results/assets/{filename:path}")
@check("HEAD", "/jobs/{job_id}/results/assets/{filename:path}")
def signed_asset_without_its_signature(world, tmp_path):
    for method in ("GET", "HEAD"):
        answer, _ = ask_both(world, method, "/jobs/{}/results/assets/result.json", world["job"], new_job_id())
        assert answer.status_code == 403


@check("GET", "/process_graphs/{process_graph_id}")
@check("DELETE", "/process_graphs/{process_graph_id}")
def process_get_and_delete(world, tmp_path):
    for method in ("GET", "DELETE"):
        answer, _ = ask_both(world, method, "/process_graphs/{}", world["process"], "nobodys_process")
        assert (answer.status_code, error_code(answer)) == (404, "ProcessGraphNotFound")
    assert world["alice"].user_defined_process(world["process"]).describe()["process_graph"] == DOUBLE


@check("PUT", "/process_graphs/{process_graph_id}")
def process_put(world, tmp_path):
    # Bob storing a process under Alice's id stores Bob's own, as under any new id; hers stays.
    bobs = {"process_graph": {"one": {"process_id": "add", "arguments": {"x": 1, "y": 0}, "result": True}}}
    answer, _ = ask_both(world, "PUT", "/process_graphs/{}", world["process"], "nobodys_process", json=bobs)
    assert answer.status_code == 200
    assert world["alice"].user_defined_process(world["process"]).describe()["process_graph"] == DOUBLE
    assert world["bob"].user_defined_process(world["process"]).describe()["process_graph"] == bobs["process_graph"]
    for name in (world["process"], "nobodys_process"):
        world["bob"].user_defined_process(name).delete()
    assert world["alice"].user_defined_process(world["process"]).describe()["process_graph"] == DOUBLE


def alices_file_is_untouched(world, tmp_path: Path) -> None:
    target = tmp_path / f"check-{uuid.uuid4().hex}.tif"
    [found] = [f for f in world["alice"].list_files() if str(f.path) == world["file"]]
    found.download(target)
    with rasterio.open(target) as dataset:
        assert dataset.read(1)[3, 3] == 15


@check("GET", "/files/{path:filepath}")
@check("DELETE", "/files/{path:filepath}")
def file_get_and_delete(world, tmp_path):
    for method in ("GET", "DELETE"):
        answer, _ = ask_both(world, method, "/files/{}", world["file"], "nobodys.tif")
        assert (answer.status_code, error_code(answer)) == (404, "FileNotFound")
        # Out of one's own folder, by an encoded '..': refused whoever the folder belongs to.
        ask_both(world, method, "/files/..%2F{}%2Fscene.tif", world["alice_id"], MISSING_USER)
    alices_file_is_untouched(world, tmp_path)


@check("PUT", "/files/{path:filepath}")
def file_put(world, tmp_path):
    # An upload under Alice's file name is Bob's own file, as under any new name; hers stays.
    url = world["server"].url + "/files/{}"
    try:
        answer = world["as_bob"].put(url.format(world["file"]), data=b"bob's bytes")
        missing = world["as_bob"].put(url.format("nobodys.tif"), data=b"bob's bytes")
        assert answer.status_code == missing.status_code == 200
        # The same answer but for the name and the time of writing (the clock may tick between the two).
        mine, other = answer.json(), missing.json()
        assert {mine.pop("path"), other.pop("path")} == {world["file"], "nobodys.tif"}
        mine.pop("modified"), other.pop("modified")
        assert mine == other and mine["size"] == len(b"bob's bytes")
        alices_file_is_untouched(world, tmp_path)
    finally:  # Bob's uploads go, so later tests see his workspace as it was
        for name in (world["file"], "nobodys.tif"):
            world["as_bob"].delete(url.format(name))


def service_is_untouched(world) -> None:
    """Alice's service after Bob's attempts: still hers, enabled, with its title."""
    described = world["alice"].service(world["service"]).describe_service()
    assert (described["title"], described["enabled"], described["type"]) == ("alice's map", True, "XYZ")
    assert world["service"] in {s["id"] for s in world["alice"].list_services()}


def service_route(method: str, route: str, **kwargs):
    @check(method, route)
    def checked(world, tmp_path):
        answer, _ = ask_both(world, method, route.replace("{service_id}", "{}"), world["service"], new_service_id(), **kwargs)
        assert (answer.status_code, error_code(answer)) == (404, "ServiceNotFound")
        service_is_untouched(world)

    return checked


service_route("GET", "/services/{service_id}")
service_route("PATCH", "/services/{service_id}", json={"title": "bob was here", "enabled": False})
service_route("DELETE", "/services/{service_id}")
service_route("GET", "/services/{service_id}/logs")


def app_routes(data_dir: Path) -> set[tuple[str, str]]:
    """(method, path template) of every route of the app, as terracube serves it (creating it reads no data)."""
    app = create_app(Settings(data_dir=data_dir))
    # FastAPI 0.120+ keeps included routers as such; iter_route_contexts flattens them.
    routes = iter_route_contexts(app.routes) if iter_route_contexts else app.routes
    return {(method, route.path) for route in routes for method in (route.methods or ())}


def test_every_user_scoped_route_is_checked(tmp_path):
    scoped = {(method, path) for method, path in app_routes(tmp_path / "data") if "{" in path and not is_public(path)}
    assert scoped, "no user-scoped route found: the enumeration is broken"
    unchecked = scoped - set(CHECKS)
    assert not unchecked, f"routes with a path parameter and no isolation check in this file: {sorted(unchecked)}"
    assert {("GET", "/jobs/{job_id}"), ("PUT", "/files/{path:filepath}"), ("DELETE", "/process_graphs/{process_graph_id}")} <= scoped


@pytest.mark.parametrize("route", sorted(CHECKS), ids=lambda route: f"{route[0]} {route[1]}")
def test_another_users_id_answers_as_a_missing_one(world, route, tmp_path):
    CHECKS[route](world, tmp_path)


# --- listings and references in graphs -----------------------------------------------------------
def test_listings_show_only_ones_own(world):
    alice, bob = world["alice"], world["bob"]
    assert world["job"] in {job["id"] for job in alice.list_jobs()}
    assert world["job"] not in {job["id"] for job in bob.list_jobs()}
    assert world["process"] in {p["id"] for p in alice.list_user_defined_processes()}
    assert world["process"] not in {p["id"] for p in bob.list_user_defined_processes()}
    assert world["service"] in {s["id"] for s in alice.list_services()}
    assert world["service"] not in {s["id"] for s in bob.list_services()}
    assert {"scene.tif", "item.json"} <= {str(f.path) for f in alice.list_files()}
    assert not {"scene.tif", "item.json"} & {str(f.path) for f in bob.list_files()}


def bob_posts(world, path: str, graph: dict) -> requests.Response:
    return world["as_bob"].post(world["server"].url + path, json={"process": {"process_graph": graph}}, timeout=120)


def graphs_fail_alike(world, own: dict, missing: dict, own_id: str, missing_id: str, paths=("/result", "/jobs")) -> requests.Response:
    for path in paths:
        answer, absent = bob_posts(world, path, own), bob_posts(world, path, missing)
        assert answer.status_code >= 400, answer.text
        assert_same_answer(answer, absent, own_id, missing_id)
    return answer


def node(process_id: str, **arguments) -> dict:
    return {"n": {"process_id": process_id, "arguments": arguments, "result": True}}


def test_bobs_graph_cannot_call_alices_process(world):
    for namespace in ("user", None):
        own, missing = node("alice_double", x=1), node("nobodys_process", x=1)
        for graph in (own, missing):
            if namespace:
                graph["n"]["namespace"] = namespace
        answer = graphs_fail_alike(world, own, missing, "alice_double", "nobodys_process")
        assert answer.status_code == 400
        validation = [[{k: v for k, v in e.items() if k != "id"} for e in bob_posts(world, "/validation", g).json()["errors"]] for g in (own, missing)]
        assert validation[0] and json.dumps(validation[0]).replace("alice_double", "ID") == json.dumps(validation[1]).replace("nobodys_process", "ID")
    assert world["alice"].datacube_from_process("alice_double", namespace="user", x=21).execute() == 42


def test_bobs_load_uploaded_files_cannot_read_alices(world, tmp_path):
    for own, missing in (("scene.tif", "nobodys.tif"), (f"../{world['alice_id']}/scene.tif", f"../{MISSING_USER}/scene.tif")):
        answer = graphs_fail_alike(world, node("load_uploaded_files", paths=[own], format="GTiff"),
                                   node("load_uploaded_files", paths=[missing], format="GTiff"), own, missing, paths=("/result",))
        assert (answer.status_code, error_code(answer)) == (404, "FileNotFound")
    # Alice's own graph reads it.
    world["alice"].datacube_from_process("load_uploaded_files", paths=["scene.tif"], format="GTiff").download(tmp_path / "own.tif", format="GTiff")
    with rasterio.open(tmp_path / "own.tif") as dataset:
        assert dataset.read(1)[3, 3] == 15


def test_bobs_load_stac_and_load_result_cannot_read_alices_job_or_files(world):
    job, missing_job, folder = world["job"], new_job_id(), world["folder"]
    # What the official client's load_stac_from_job sends for a job whose results it may not see.
    own_url, missing_url = (world["bob"].job(j).get_results_metadata_url(full=True) for j in (job, missing_job))
    answer = graphs_fail_alike(world, node("load_stac", url=own_url), node("load_stac", url=missing_url), job, missing_job, paths=("/result",))
    assert answer.status_code == 400
    with pytest.raises(OpenEoApiError):
        world["bob"].load_stac_from_job(job).execute()
    # The results and files on the server's disk, by path.
    [asset] = world["alice"].job(job).get_results().get_metadata()["assets"].keys()
    pairs = [
        (str(folder / "results" / job / asset), str(folder / "results" / missing_job / asset), job, missing_job),
        (str(folder / "files" / world["alice_id"] / "item.json"), str(folder / "files" / MISSING_USER / "item.json"), world["alice_id"], MISSING_USER),
    ]
    assert (folder / "results" / job / asset).is_file() and (folder / "files" / world["alice_id"] / "item.json").is_file()
    for own, missing, own_id, missing_id in pairs:
        answer = graphs_fail_alike(world, node("load_stac", url=own), node("load_stac", url=missing), own_id, missing_id, paths=("/result",))
        assert answer.status_code == 400
    # load_result names a job by its id: it must not find Alice's.
    answer = graphs_fail_alike(world, node("load_result", id=job), node("load_result", id=missing_job), job, missing_job)
    assert answer.status_code >= 400


# --- signed result links -------------------------------------------------------------------------
def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, **changes})))


def test_signed_result_links_work_without_a_token_and_refuse_tampering(world):
    job = world["job"]
    metadata = world["alice"].job(job).get_results().get_metadata()
    [(name, asset)] = metadata["assets"].items()
    [canonical] = [link["href"] for link in metadata["links"] if link["rel"] == "canonical"]
    for url in (asset["href"], canonical):
        assert requests.get(url, timeout=30).status_code == 200, url  # no token: the signature is the credential
    assert json.loads(requests.get(asset["href"], timeout=30).content) == 3

    signature = parse_qs(urlsplit(asset["href"]).query)["signature"][0]
    forged = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    expires = parse_qs(urlsplit(asset["href"]).query)["expires"][0]
    refused = [
        with_query(asset["href"], signature=forged),  # a tampered signature
        with_query(asset["href"], expires=str(int(expires) + 3600)),  # a longer life than signed
        asset["href"].replace(job, new_job_id()),  # the signature names its job
        with_query(canonical, signature=forged),
    ]
    for url in refused:
        answer = requests.get(url, timeout=30)
        assert (answer.status_code, error_code(answer)) == (403, "PermissionsInsufficient"), url

    # Signed by the server's own key, but expired: 410, as the openEO API says.
    signer = UrlSigner.from_settings(Settings(data_dir=world["folder"]))
    old = signer.sign(job, name, now=time.time() - signer.lifetime - 60)
    answer = requests.get(with_query(asset["href"], **old), timeout=30)
    assert (answer.status_code, error_code(answer)) == (410, "ResultLinkExpired")
    fresh = signer.sign(job, name)
    assert requests.get(with_query(asset["href"], **fresh), timeout=30).status_code == 200  # the same key: only the expiry differed


# --- the operator's view -------------------------------------------------------------------------
def test_the_admin_sees_every_job_through_the_cli_only(world):
    bobs_job = world["bob"].create_job(SUM, title="bob's job").job_id
    env = {**world["server"].env, "COLUMNS": "200"}
    listing = terracube(env, "jobs", "list", "--all").stdout
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]] for line in listing.splitlines() if "│ j-" in line}
    assert rows[world["job"]][:2] == ["alice", "finished"] and rows[world["job"]][-1] == "alice's job"
    assert rows[bobs_job][:2] == ["bob", "created"] and rows[bobs_job][-1] == "bob's job"
    only_bob = terracube(env, "jobs", "list", "--user", "bob").stdout
    assert bobs_job in only_bob and world["job"] not in only_bob
    assert terracube(env, "jobs", "list", check=False).returncode == 1
    nobody = terracube(env, "jobs", "list", "--user", "nobody", check=False)
    assert nobody.returncode == 1 and "no user named 'nobody'" in nobody.stderr
    # Not through the API: Alice is an administrator, and sees her own jobs only.
    assert world["alice"].describe_account()["user_id"] == world["alice_id"]
    assert bobs_job not in {job["id"] for job in world["alice"].list_jobs()}
    with pytest.raises(OpenEoApiError) as caught:
        world["alice"].job(bobs_job).describe()
    assert (caught.value.http_status_code, caught.value.code) == (404, "JobNotFound")
    world["bob"].job(bobs_job).delete()
