"""How many services one user may have (``max_services_per_user``): beyond it POST /services is a 400
``ServiceLimitExceeded`` that says what to do, for each user on their own, and requests at once
cannot slip past it.

With the official client against a live server (laptop mode: one user), and in process with two
accounts.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import openeo
import pytest
import requests
from fastapi.testclient import TestClient
from openeo.rest import OpenEoApiError

from terracube.api.app import create_app
from terracube.settings import Settings
from tests.auth.conftest import add_users, basic_token, bearer
from tests.jobs.conftest import jobs_env
from tests.live_server import LiveServer
from tests.services.layers import ndvi_layer

CAP = 3


@pytest.fixture
def server(data_dir, tmp_path):
    live = LiveServer(jobs_env(data_dir, tmp_path, TERRACUBE_MAX_SERVICES_PER_USER=CAP))
    live.start()
    yield live
    live.stop()


def test_beyond_the_cap_the_client_gets_a_clear_openeo_error(server):
    con = openeo.connect(server.url)
    made = [con.create_service(ndvi_layer()["process_graph"], type="XYZ", title=f"layer {i}") for i in range(CAP)]
    with pytest.raises(OpenEoApiError) as raised:
        con.create_service(ndvi_layer()["process_graph"], type="XYZ", title="one too many")
    error = raised.value
    assert (error.http_status_code, error.code) == (400, "ServiceLimitExceeded")
    assert f"You have {CAP} services" in error.message and "max_services_per_user" in error.message and "DELETE" in error.message
    assert sorted(s["title"] for s in con.list_services()) == [f"layer {i}" for i in range(CAP)]
    # Deleting one makes room for another.
    made[0].delete_service()
    again = con.create_service(ndvi_layer()["process_graph"], type="XYZ", title="in its place")
    assert again.describe_service()["title"] == "in its place" and len(con.list_services()) == CAP


def test_requests_at_once_cannot_slip_past_the_cap(server):
    body = {"type": "XYZ", "process": ndvi_layer()}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: requests.post(f"{server.url}/services", json=body, timeout=120), range(8)))
    assert sorted(answer.status_code for answer in answers) == [201] * CAP + [400] * (8 - CAP)
    assert {answer.json()["code"] for answer in answers if answer.status_code == 400} == {"ServiceLimitExceeded"}
    assert len(requests.get(f"{server.url}/services", timeout=30).json()["services"]) == CAP


def test_the_cap_is_per_user(data_dir, tmp_path):
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{tmp_path / 'terracube.db'}", results_root=str(tmp_path / "results"),
                        max_services_per_user=1)
    add_users(settings, "alice", "bob")
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        alice, bob = (bearer(basic_token(client, name)) for name in ("alice", "bob"))
        body = {"type": "XYZ", "process": ndvi_layer()}
        assert client.post("/services", json=body, headers=alice).status_code == 201
        refused = client.post("/services", json=body, headers=alice)
        assert (refused.status_code, refused.json()["code"]) == (400, "ServiceLimitExceeded")
        assert client.post("/services", json=body, headers=bob).status_code == 201  # Bob's own first one
