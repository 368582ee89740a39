"""Logging in through another OpenID Connect provider, end to end: the official openEO client,
a live terracube server, and a second issuer (``tests/auth/oidc_issuer.py``) in its own process.

The server is configured as an operator configures it: a TOML file named by ``TERRACUBE_CONFIG``,
with a ``[[oidc_providers]]`` table whose ``required_claim`` lets in only holders of an
entitlement, which the test issuer gives out through its userinfo endpoint, as EGI Check-in does.
"""

from __future__ import annotations

import os
import threading
import time

import openeo
import pytest
import requests
from fastapi.testclient import TestClient
from openeo.rest import OpenEoApiError
from pydantic import ValidationError

from terracube.api.app import create_app
from terracube.auth.store import AuthStore
from terracube.settings import Settings
from tests.auth.conftest import ENTITLEMENT, PASSWORDS, IssuerProcess, add_users, server_env, terracube
from tests.live_server import LiveServer

SUM = {"process_graph": {"sum": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
# The two robots of the test issuer (client credentials), and the subjects its tokens give them.
CI, OTHER = ("ci-client", "ci-secret"), ("other-client", "other-secret")
CI_SUB, OTHER_SUB = "service-account-ci-client", "service-account-other-client"


def provider_toml(issuer: IssuerProcess, provider_id: str = "egi", title: str = "Test Check-in", gated: bool = True) -> str:
    """A ``[[oidc_providers]]`` table, as an operator writes it."""
    gate = f'required_claim = {{ claim = "eduperson_entitlement", any_of = ["{ENTITLEMENT}"] }}\n' if gated else ""
    return (
        f'[[oidc_providers]]\nid = "{provider_id}"\nissuer = "{issuer.issuer}"\ntitle = "{title}"\naudience = "terracube"\n{gate}'
        f'[[oidc_providers.default_clients]]\nid = "openeo-public"\n'
        f'grant_types = ["urn:ietf:params:oauth:grant-type:device_code+pkce", "refresh_token"]\n\n'
    )


def live_env(folder, config: str) -> dict[str, str]:
    (folder / "terracube.toml").write_text(config)
    # COLUMNS: `terracube users list` prints its table whole, not folded to 80 characters.
    return {**server_env(folder), "TERRACUBE_CONFIG": str(folder / "terracube.toml"), "TERRACUBE_AUTH": "required", "COLUMNS": "300"}


def login(server, client=CI) -> openeo.Connection:
    return openeo.connect(server.url).authenticate_oidc_client_credentials(client_id=client[0], client_secret=client[1], provider_id="egi")


def with_token(server, bearer: str) -> openeo.Connection:
    # retry=False: the official client retries 502 and 504 a few times (17 s) before it gives up.
    return openeo.connect(server.url, retry=False).authenticate_bearer_token(bearer)


def error_of(call) -> OpenEoApiError:
    with pytest.raises(OpenEoApiError) as caught:
        call()
    return caught.value


def accounts(server) -> AuthStore:
    return AuthStore(server.env["TERRACUBE_DATABASE_URL"])


@pytest.fixture(scope="module")
def issuer():
    """The second issuer, with two robots; both hold the entitlement (in userinfo, not in their tokens)."""
    process = IssuerProcess(clients=("ci-client:ci-secret", "other-client:other-secret"))
    process.mint(claims={"sub": CI_SUB}, profile={"name": "CI Robot", "eduperson_entitlement": [ENTITLEMENT]})
    process.mint(claims={"sub": OTHER_SUB}, profile={"preferred_username": "other-robot", "eduperson_entitlement": ENTITLEMENT})
    yield process
    process.stop()


@pytest.fixture(scope="module")
def gone():
    """A provider whose issuer is down: a token it issued, and then it stopped (before terracube ever asked it)."""
    process = IssuerProcess()
    process.token = process.mint(claims={"sub": "zoe"})
    process.stop()
    return process


@pytest.fixture(scope="module")
def server(issuer, gone, tmp_path_factory):
    folder = tmp_path_factory.mktemp("external")
    live = LiveServer(live_env(folder, provider_toml(issuer) + provider_toml(gone, "gone", "Gone Check-in", gated=False))).start()
    yield live
    live.stop()


# --- logging in ----------------------------------------------------------------------------
def test_credentials_oidc_lists_the_built_in_provider_first(server, issuer):
    providers = requests.get(f"{server.url}/credentials/oidc").json()["providers"]
    assert [p["id"] for p in providers] == ["terracube", "egi", "gone"]
    assert providers[1]["issuer"] == issuer.issuer and providers[1]["title"] == "Test Check-in"


def test_the_first_login_creates_the_user_the_next_ones_find_it(server, issuer):
    me = login(server).describe_account()
    assert me["user_id"].startswith("x-egi-") and me["name"] == "CI Robot"
    # The server keeps the issuer's keys, and a token's userinfo answer (the entitlement) for a while.
    con = login(server)
    before = issuer.stats()
    assert [con.describe_account()["user_id"] for _ in range(3)] == [me["user_id"]] * 3
    after = issuer.stats()
    assert (after["jwks"], after["discovery"], after["userinfo"]) == (before["jwks"], before["discovery"], before["userinfo"] + 1)
    store = accounts(server)
    try:
        account = store.external_account("egi", CI_SUB)
        assert (account.id, account.name, account.password_hash) == (me["user_id"], "CI Robot", None)
        # The default quotas: no override of its own.
        assert (account.quota_cpu_hours, account.quota_storage_bytes) == (None, None)
    finally:
        store.close()
    listing = terracube(server.env, "users", "list").stdout
    row = next(line for line in listing.splitlines() if "CI Robot" in line)
    assert me["user_id"] in row and f"egi ({CI_SUB})" in row


def test_a_job_is_listed_for_its_owner_only(server):
    ci, other = login(server, CI), login(server, OTHER)
    assert other.describe_account()["name"] == "other-robot"
    assert other.describe_account()["user_id"] != ci.describe_account()["user_id"]
    job = ci.create_job(SUM, title="the CI robot's")
    assert job.job_id in {j["id"] for j in ci.list_jobs()}
    assert job.job_id not in {j["id"] for j in other.list_jobs()}
    assert error_of(other.job(job.job_id).describe).code == "JobNotFound"


# --- refused -------------------------------------------------------------------------------
def test_the_claim_gate_refuses_naming_the_claim_on_every_request(server, issuer):
    outsider = issuer.mint(claims={"sub": "mallory", "name": "Mallory"}, profile={})
    error = error_of(with_token(server, f"oidc/egi/{outsider}").describe_account)
    assert (error.http_status_code, error.code) == (403, "PermissionsInsufficient")
    assert "eduperson_entitlement" in error.message
    store = accounts(server)
    try:
        assert store.external_account("egi", "mallory") is None  # refused before any account was made
    finally:
        store.close()
    # A member gets in; taken out of the group, their next token is refused though the account exists.
    issuer.mint(claims={"sub": "nina"}, profile={"eduperson_entitlement": [ENTITLEMENT]})
    assert with_token(server, f"oidc/egi/{issuer.mint(claims={'sub': 'nina'})}").describe_account()["name"] == "nina"
    issuer.mint(claims={"sub": "nina"}, profile={"eduperson_entitlement": ["urn:another:group"]})
    error = error_of(with_token(server, f"oidc/egi/{issuer.mint(claims={'sub': 'nina'})}").describe_account)
    assert (error.http_status_code, error.code) == (403, "PermissionsInsufficient")


@pytest.mark.parametrize("bearer", [
    "oidc/egi/not-a-token-it-issued",  # opaque: the issuer's userinfo endpoint does not know it
    "tampered",                        # a real token with another subject, the signature kept
    "expired",
    "oidc/keycloak/whatever",          # a provider this server does not have
])
def test_bad_tokens_are_token_invalid(server, issuer, bearer):
    if bearer == "tampered":
        header, _, signature = issuer.mint(claims={"sub": CI_SUB}).split(".")
        _, payload, _ = issuer.mint(claims={"sub": "admin"}).split(".")
        bearer = f"oidc/egi/{header}.{payload}.{signature}"
    elif bearer == "expired":
        bearer = f"oidc/egi/{issuer.mint(claims={'sub': CI_SUB, 'exp': int(time.time()) - 600})}"
    error = error_of(with_token(server, bearer).describe_account)
    assert (error.http_status_code, error.code) == (403, "TokenInvalid")


def test_an_issuer_that_is_down_is_a_clear_error(server, gone):
    error = error_of(with_token(server, f"oidc/gone/{gone.token}").describe_account)
    assert (error.http_status_code, error.code) == (502, "IssuerUnavailable")
    assert "Gone Check-in could not be reached" in error.message and "Try again later" in error.message
    # The other provider's users are not affected.
    assert login(server).describe_account()["name"] == "CI Robot"


# --- restarts and removal --------------------------------------------------------------------
def test_the_user_outlives_a_restart_and_a_removed_one_comes_back_new(issuer, tmp_path):
    env = live_env(tmp_path, provider_toml(issuer))
    first = LiveServer(env).start()
    try:
        con = login(first)
        user_id = con.describe_account()["user_id"]
        job = con.create_job(SUM, title="before the restart")
    finally:
        first.stop()
    second = LiveServer(env, port=first.port).start()
    try:
        con = login(second)
        assert con.describe_account()["user_id"] == user_id
        assert job.job_id in {j["id"] for j in con.list_jobs()}
        # Removed by the operator, the robot is a new user at its next login; what it had stays with the old id.
        assert user_id in terracube(second.env, "users", "remove", "CI Robot").stdout
        deadline = time.monotonic() + 15  # a running server looks an account up again after a few seconds
        while (again := login(second).describe_account()["user_id"]) == user_id and time.monotonic() < deadline:
            time.sleep(0.5)
        assert again != user_id and again.startswith("x-egi-")
        assert job.job_id not in {j["id"] for j in login(second).list_jobs()}
    finally:
        second.stop()


# --- without a server ----------------------------------------------------------------------------
def test_laptop_mode_is_unchanged(tmp_path, issuer):
    app = create_app(Settings(data_dir=tmp_path / "data", oidc_providers=[issuer.config()]))
    client = TestClient(app, base_url="http://127.0.0.1")
    for headers in ({}, {"Authorization": "Bearer oidc/egi/anything"}, {"Authorization": "Bearer oidc/nope/x"}):
        assert client.get("/me", headers=headers).json()["user_id"] == "anonymous"
    assert [p["id"] for p in client.get("/credentials/oidc").json()["providers"]] == ["terracube", "egi"]


def test_the_built_in_provider_id_is_refused(tmp_path, issuer):
    with pytest.raises(ValidationError, match="taken by terracube's built-in issuer"):
        Settings(oidc_providers=[issuer.config(id="terracube")])
    (tmp_path / "terracube.toml").write_text(provider_toml(issuer, "terracube"))
    env = {**os.environ, **server_env(tmp_path), "TERRACUBE_CONFIG": str(tmp_path / "terracube.toml")}
    for command in (("serve",), ("users", "list")):
        refused = terracube(env, *command, check=False)
        said = " ".join(refused.stderr.split())
        assert refused.returncode == 1 and "Traceback" not in said, said
        assert "configuration" in said and "oidc_providers.0.id: Value error, the provider id 'terracube' is taken by terracube's built-in issuer" in said


def test_user_ids_and_names_never_collide(tmp_path):
    store = AuthStore.open(Settings(data_dir=tmp_path / "data"))
    try:
        local = add_users(Settings(data_dir=tmp_path / "data"), "alice")["alice"]
        egi = store.external_user("egi", "alice", "alice")
        other = store.external_user("other", "alice", "alice")
        twin = store.external_user("egi", "alice-2", "alice")
        assert len({local, egi.user_id, other.user_id, twin.user_id}) == 4
        assert all(user.user_id.startswith(f"x-{provider}-") for user, provider in ((egi, "egi"), (other, "other"), (twin, "egi")))
        assert (egi.name, other.name) == ("alice (egi)", "alice (other)") and twin.name.startswith("alice (egi ")
        assert store.external_user("egi", "alice", "Alice Renamed") == egi  # found by (provider, sub), not by name
        assert store.check_password("alice", PASSWORDS["alice"]).user_id == local
        # An external account has no password here, and gets none.
        assert store.check_password("alice (egi)", "") is None
        with pytest.raises(ValueError, match="logs in through the OpenID Connect provider 'egi'"):
            store.set_password("alice (egi)", "a long enough password")
    finally:
        store.close()


def test_simultaneous_first_requests_make_one_user(tmp_path):
    store = AuthStore.open(Settings(data_dir=tmp_path / "data"))
    users, start = [], threading.Barrier(8)

    def first_request() -> None:
        start.wait()
        users.append(store.external_user("egi", "rush", "Rush"))

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(users) == 8 and len({user.user_id for user in users}) == 1
        assert [account.name for account in store.accounts()] == ["Rush"]
    finally:
        store.close()
