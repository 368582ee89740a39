"""Bounds on what anybody may ask of the login routes: live device codes per address and in all.

Real apps over real SQLite files (and the store on PostgreSQL); clients at several addresses.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from terracube.api.app import create_app
from terracube.auth.grants import GrantStore
from terracube.auth.models import DeviceCode
from terracube.auth.store import AuthStore
from terracube.jobs.store import utcnow
from terracube.settings import Settings
from tests.auth.conftest import add_users

PUBLIC = "terracube-public"


def at(app, address: str) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1", client=(address, 40000))


def ask(client: TestClient):
    return client.post("/oidc/device_authorization", data={"client_id": PUBLIC, "scope": "openid"})


def accounts_app(tmp_path, **limits):
    settings = Settings(data_dir=tmp_path / "data", **limits)
    add_users(settings, "alice")
    return create_app(settings), settings


def expire_all(settings: Settings) -> None:
    store = AuthStore.open(settings)
    try:
        with store.sessions.begin() as session:
            session.execute(update(DeviceCode).values(expires=utcnow() - timedelta(seconds=1)))
    finally:
        store.close()


def test_an_address_gets_so_many_live_device_codes_then_429(tmp_path):
    app, settings = accounts_app(tmp_path, device_codes_per_address=3, device_codes_max=100)
    script, neighbour = at(app, "203.0.113.7"), at(app, "198.51.100.2")
    for _ in range(3):
        assert ask(script).status_code == 200
    refused = ask(script)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "temporarily_unavailable" and "this address" in refused.json()["error_description"]
    assert 1 <= int(refused.headers["retry-after"]) <= settings.device_code_lifetime
    # Another address is not held up by this one.
    assert ask(neighbour).status_code == 200
    # Expired codes do not count: once they are gone, the address may ask again.
    expire_all(settings)
    assert ask(script).status_code == 200


def test_the_server_as_a_whole_has_a_cap_then_503(tmp_path):
    app, settings = accounts_app(tmp_path, device_codes_per_address=10, device_codes_max=3)
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        assert ask(at(app, address)).status_code == 200
    refused = ask(at(app, "192.0.2.4"))
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"] == "temporarily_unavailable"
    assert int(refused.headers["retry-after"]) >= 1


def test_a_refused_request_stores_nothing(tmp_path):
    app, settings = accounts_app(tmp_path, device_codes_per_address=2, device_codes_max=100)
    client = at(app, "203.0.113.9")
    for _ in range(5):
        ask(client)
    store = AuthStore.open(settings)
    try:
        assert GrantStore(store.sessions).live_device_codes("203.0.113.9")[0] == 2
    finally:
        store.close()


def test_laptop_mode_is_capped_too(tmp_path):
    # Anybody on the machine may ask there as well; the official client takes its code at once, so 20 is plenty.
    app = create_app(Settings(data_dir=tmp_path / "data", device_codes_per_address=2))
    client = at(app, "127.0.0.1")
    assert [ask(client).status_code for _ in range(3)] == [200, 200, 429]


def test_live_device_codes_by_address_on_postgresql(postgres_url, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_url)
    store = AuthStore.open(settings)  # the migrations, 0005 included, on PostgreSQL
    try:
        grants = GrantStore(store.sessions)
        for index, origin in enumerate(["192.0.2.1", "192.0.2.1", "192.0.2.2"]):
            grants.add_device_code(f"device-{index}", f"BCDF-GHJ{index}", PUBLIC, "openid", 600, 5, origin=origin)
        count, seconds = grants.live_device_codes("192.0.2.1")
        assert count == 2 and 590 < seconds <= 600
        assert grants.live_device_codes()[0] == 3
        grants.purge(utcnow() + timedelta(seconds=601))
        assert grants.live_device_codes() == (0, 0.0)
    finally:
        store.close()
