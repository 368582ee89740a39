"""Services with accounts: private to their owner like jobs, while their tiles need no token.

Two accounts (alice and bob) in the app's own database, logged in with HTTP basic as the official
client does; every answer Bob gets for Alice's service is the answer for a service that does not
exist, but for the id.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from terracube.api.app import create_app
from terracube.services.store import new_service_id
from terracube.settings import Settings
from tests.auth.conftest import add_users, basic_token, bearer
from tests.services.layers import AHR_TILE, ndvi_layer, tile_path


@pytest.fixture(scope="module")
def world(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("services-accounts")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{folder / 'terracube.db'}", results_root=str(folder / "results"))
    add_users(settings, "alice", "bob")
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        alice, bob = (bearer(basic_token(client, name)) for name in ("alice", "bob"))
        response = client.post("/services", json={"type": "XYZ", "process": ndvi_layer(), "title": "alice's"}, headers=alice)
        assert response.status_code == 201, response.text
        yield {"client": client, "alice": alice, "bob": bob, "service": response.headers["OpenEO-Identifier"]}


def same_but_for_the_id(answer, missing, own_id: str, missing_id: str) -> None:
    assert answer.status_code == missing.status_code == 404
    body, expected = answer.json(), missing.json()
    body.pop("id"), expected.pop("id")
    assert body["code"] == "ServiceNotFound"
    assert json.dumps(body).replace(own_id, "ID") == json.dumps(expected).replace(missing_id, "ID")


@pytest.mark.parametrize(
    "method, path, body",
    [("GET", "/services/{}", None), ("PATCH", "/services/{}", {"enabled": False}), ("DELETE", "/services/{}", None), ("GET", "/services/{}/logs", None)],
)
def test_another_users_service_answers_as_a_missing_one(world, method, path, body):
    client, own, missing = world["client"], world["service"], new_service_id()
    answers = [client.request(method, path.format(i), json=body, headers=world["bob"]) for i in (own, missing)]
    same_but_for_the_id(*answers, own, missing)
    document = client.get(f"/services/{own}", headers=world["alice"]).json()
    assert (document["title"], document["enabled"]) == ("alice's", True)


def test_listings_show_only_ones_own(world):
    client = world["client"]
    assert world["service"] in {s["id"] for s in client.get("/services", headers=world["alice"]).json()["services"]}
    assert client.get("/services", headers=world["bob"]).json()["services"] == []


def test_the_routes_ask_who_is_asking_but_tiles_and_types_do_not(world):
    client = world["client"]
    assert client.get("/services").json()["code"] == "AuthenticationRequired"
    assert client.post("/services", json={"type": "XYZ", "process": ndvi_layer()}).status_code == 401
    assert client.get(f"/services/{world['service']}").status_code == 401
    assert {"XYZ", "WMTS"} <= set(client.get("/service_types").json())
    tile = client.get(tile_path(world["service"], *AHR_TILE))  # as a map library loads it: no Authorization
    assert tile.status_code == 200 and tile.headers["content-type"] == "image/png"
    # A bad token on a tile changes nothing: the id is the credential.
    assert client.get(tile_path(world["service"], *AHR_TILE), headers={"Authorization": "Bearer basic//nonsense"}).status_code == 200


def test_bobs_service_is_his(world):
    client = world["client"]
    response = client.post("/services", json={"type": "XYZ", "process": ndvi_layer(), "title": "bob's"}, headers=world["bob"])
    bobs = response.headers["OpenEO-Identifier"]
    assert client.get(f"/services/{bobs}", headers=world["alice"]).json()["code"] == "ServiceNotFound"
    assert client.get(f"/services/{bobs}", headers=world["bob"]).json()["title"] == "bob's"
    assert client.delete(f"/services/{bobs}", headers=world["bob"]).status_code == 204
