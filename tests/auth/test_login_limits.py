"""Bounds on what anybody may ask of the login routes: live device codes, and failed password logins.

Real apps over real SQLite files (and the store on PostgreSQL); clients at several addresses.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from terracube.api.app import create_app
from terracube.auth.grants import GrantStore
from terracube.auth.models import DeviceCode, LoginFailure
from terracube.auth.store import AuthStore
from terracube.jobs.store import utcnow
from terracube.settings import Settings
from tests.auth.conftest import PASSWORDS, add_users

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


def age_failures(settings: Settings, seconds: int) -> None:
    store = AuthStore.open(settings)
    try:
        with store.sessions.begin() as session:
            session.execute(update(LoginFailure).values(at=utcnow() - timedelta(seconds=seconds)))
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


# --- password guessing at GET /credentials/basic (and the issuer's login pages) ---------------
def basic(client: TestClient, name: str, password: str):
    return client.get("/credentials/basic", auth=(name, password))


def assert_too_many(response, window: int) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["code"] == "TooManyRequests" and "Too many failed logins" in body["message"] and body["id"]
    assert 1 <= int(response.headers["retry-after"]) <= window


def test_failed_basic_logins_per_name_and_address_then_429_without_hashing(tmp_path, monkeypatch):
    app, settings = accounts_app(tmp_path, login_failures_per_name=3, login_failures_per_address=100, login_failure_window=60)
    hashed = []
    from terracube.auth import store as store_module

    verify = store_module.passwords.verify_password
    monkeypatch.setattr(store_module.passwords, "verify_password", lambda *a: hashed.append(1) or verify(*a))
    guesser, alice_at_home = at(app, "203.0.113.7"), at(app, "198.51.100.2")
    for _ in range(3):
        assert basic(guesser, "alice", "a wrong guess").json()["code"] == "CredentialsInvalid"
    assert len(hashed) == 3
    # The fourth attempt is refused before the password is looked at, even the right one.
    assert_too_many(basic(guesser, "alice", PASSWORDS["alice"]), 60)
    assert_too_many(basic(guesser, "alice", "another guess"), 60)
    assert len(hashed) == 3
    # Alice herself, elsewhere, is not locked out by the guesser.
    assert basic(alice_at_home, "alice", PASSWORDS["alice"]).status_code == 200
    # Once the failures are older than the window, the guesser may try again.
    age_failures(settings, 61)
    assert basic(guesser, "alice", PASSWORDS["alice"]).status_code == 200


def test_an_address_trying_many_names_meets_its_own_cap(tmp_path):
    app, _ = accounts_app(tmp_path, login_failures_per_name=100, login_failures_per_address=4, login_failure_window=60)
    sprayer = at(app, "203.0.113.50")
    for name in ("bob", "carol", "dave", "eve"):
        assert basic(sprayer, name, "Summer2026!").status_code == 403
    assert_too_many(basic(sprayer, "alice", "Summer2026!"), 60)
    assert basic(at(app, "203.0.113.51"), "alice", PASSWORDS["alice"]).status_code == 200


def test_a_successful_login_clears_its_failures(tmp_path):
    app, _ = accounts_app(tmp_path, login_failures_per_name=3)
    client = at(app, "192.0.2.10")
    for _ in range(2):
        assert basic(client, "alice", "typo").status_code == 403
    assert basic(client, "alice", PASSWORDS["alice"]).status_code == 200
    assert [basic(client, "alice", "typo").status_code for _ in range(4)] == [403, 403, 403, 429]


def test_the_failures_are_shared_by_servers_on_one_database(tmp_path):
    # Two apps, as two API server processes: nothing is counted in memory, so one sees the other's failures.
    settings = Settings(data_dir=tmp_path / "data", login_failures_per_name=2)
    add_users(settings, "alice")
    first, second = at(create_app(settings), "192.0.2.20"), at(create_app(settings), "192.0.2.20")
    assert basic(first, "alice", "guess 1").status_code == 403
    assert basic(second, "alice", "guess 2").status_code == 403
    assert_too_many(basic(first, "alice", "guess 3"), 60)
    assert_too_many(basic(second, "alice", "guess 3"), 60)


def test_the_device_login_page_is_limited_too(tmp_path):
    app, _ = accounts_app(tmp_path, login_failures_per_name=2)
    client = at(app, "192.0.2.30")
    user_code = ask(client).json()["user_code"]
    form = {"user_code": user_code, "name": "alice", "password": "wrong", "decision": "approve"}
    assert [client.post("/oidc/device", data=form).status_code for _ in range(2)] == [403, 403]
    refused = client.post("/oidc/device", data={**form, "password": PASSWORDS["alice"]})
    assert refused.status_code == 429 and "Too many failed logins" in refused.text
    assert int(refused.headers["retry-after"]) >= 1


def test_laptop_mode_has_no_password_to_guess(tmp_path):
    app = create_app(Settings(data_dir=tmp_path / "data", login_failures_per_name=1))
    client = at(app, "127.0.0.1")
    assert [basic(client, "anyone", "anything").status_code for _ in range(3)] == [200, 200, 200]


def test_login_failures_on_postgresql(postgres_url, tmp_path):
    from terracube.auth.limits import LoginThrottle, TooManyLoginAttempts

    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_url, login_failures_per_name=2, login_failures_per_address=3)
    store = AuthStore.open(settings)
    try:
        throttle = LoginThrottle(store.sessions, settings)
        throttle.failed("alice", "192.0.2.1")
        throttle.failed("alice", "192.0.2.1")
        throttle.check("alice", "192.0.2.2")  # another address: free
        try:
            throttle.check("alice", "192.0.2.1")
            raise AssertionError("the third attempt should be refused")
        except TooManyLoginAttempts as error:
            assert 55 <= error.retry_after <= 60
        throttle.failed("bob", "192.0.2.1")
        try:
            throttle.check("carol", "192.0.2.1")  # the address's own cap: 3 failures
            raise AssertionError("the address should be refused")
        except TooManyLoginAttempts as error:
            assert "from this address" in error.message
        throttle.succeeded("alice", "192.0.2.1")
        throttle.check("alice", "192.0.2.1")  # one failure (bob's) is left from that address
    finally:
        store.close()
