"""Logging in with the official openEO client against live servers, in laptop mode and in accounts mode.

Accounts and clients are made with the ``terracube`` command, as an operator makes them; the
device flow is completed by posting the issuer's approve form, as a person does in a browser.
"""

from __future__ import annotations

import json
import time

import openeo
import pytest
import requests
from joserfc import jws
from openeo.rest import OpenEoApiError
from openeo.rest.auth.auth import OidcBearerAuth

from terracube.jobs.store import JobStore
from terracube.settings import Settings
from tests.auth.conftest import PASSWORDS, approver, client_credentials, server_env, terracube
from tests.live_server import LiveServer

SUM = {"process_graph": {"sum": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


def never(*args, **kwargs) -> None:
    raise AssertionError(f"the client asked the user to do something: {args}")


def key_id(token: str) -> str:
    return jws.extract_compact(token.encode()).protected["kid"]


def error_of(call) -> OpenEoApiError:
    with pytest.raises(OpenEoApiError) as caught:
        call()
    return caught.value


# --- laptop mode -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def laptop_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("laptop")
    # What a server stored before accounts existed: a job of the user "anonymous".
    store = JobStore.from_settings(Settings(data_dir=folder, database_url=f"sqlite:///{folder / 'terracube.db'}"))
    store.migrate()
    old_job = store.create("anonymous", SUM, title="stored before accounts existed")
    store.close()
    server = LiveServer(server_env(folder)).start()
    server.old_job = old_job.id
    yield server
    server.stop()


def test_laptop_authenticate_oidc_needs_nobody(laptop_server, openeo_home):
    shown: list[str] = []
    started = time.monotonic()
    con = openeo.connect(laptop_server.url).authenticate_oidc(display=lambda *a, **k: shown.append(" ".join(map(str, a))))
    assert time.monotonic() - started < 60  # nobody approved anything: the issuer did, by itself
    account = con.describe_account()
    assert (account["user_id"], account["name"], account["budget"], account["storage"]) == ("anonymous", "Anonymous", None, None)
    # The local user still owns what was stored before, and what it makes now.
    job = con.create_job(SUM, title="made in laptop mode")
    titles = {j["id"]: j.get("title") for j in con.list_jobs()}
    assert titles[laptop_server.old_job] == "stored before accounts existed" and titles[job.job_id] == "made in laptop mode"
    # The next connect uses the stored refresh token: not even the device flow runs.
    again = openeo.connect(laptop_server.url).authenticate_oidc(display=never)
    assert again.describe_account()["user_id"] == "anonymous"
    assert list(openeo_home.glob("*refresh*"))


def test_laptop_authenticate_basic_with_any_password(laptop_server):
    for password in ("any password", ""):
        con = openeo.connect(laptop_server.url).authenticate_basic("someone", password)
        assert con.describe_account()["user_id"] == "anonymous"
        assert laptop_server.old_job in {j["id"] for j in con.list_jobs()}


# --- accounts mode ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def accounts_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("accounts")
    server = LiveServer(server_env(folder))
    for name in ("alice", "bob"):
        terracube(server.env, "users", "add", name, password=PASSWORDS[name])
    server.client_id, server.client_secret = client_credentials(terracube(server.env, "clients", "add", "ci", "--user", "alice").stdout)
    server.start()
    yield server
    server.stop()


def test_accounts_mode_answers_with_the_openeo_codes(accounts_server):
    url = accounts_server.url
    assert error_of(openeo.connect(url).describe_account).code == "AuthenticationRequired"
    assert error_of(openeo.connect(url).describe_account).http_status_code == 401
    wrong = error_of(lambda: openeo.connect(url).authenticate_basic("alice", "not the password"))
    assert (wrong.http_status_code, wrong.code) == (403, "CredentialsInvalid")
    invalid = error_of(openeo.connect(url).authenticate_bearer_token("basic//made.up.token").describe_account)
    assert (invalid.http_status_code, invalid.code) == (403, "TokenInvalid")
    # Discovery stays open.
    for path in ("/", "/credentials/oidc", "/processes", "/oidc/.well-known/openid-configuration"):
        assert requests.get(f"{url}{path}").status_code == 200, path


def test_client_credentials_as_scripts_and_the_test_suite_log_in(accounts_server, openeo_home, monkeypatch):
    url, client_id, secret = accounts_server.url, accounts_server.client_id, accounts_server.client_secret
    con = openeo.connect(url).authenticate_oidc_client_credentials(client_id=client_id, client_secret=secret)
    assert con.describe_account()["name"] == "alice"
    # As the openeo-test-suite does it: environment variables and a plain authenticate_oidc().
    monkeypatch.setenv("OPENEO_AUTH_METHOD", "client_credentials")
    monkeypatch.setenv("OPENEO_AUTH_CLIENT_ID", client_id)
    monkeypatch.setenv("OPENEO_AUTH_CLIENT_SECRET", secret)
    con = openeo.connect(url).authenticate_oidc()
    assert con.describe_account()["name"] == "alice"
    monkeypatch.setenv("OPENEO_AUTH_CLIENT_SECRET", "not the secret")
    with pytest.raises(Exception, match="invalid_client"):
        openeo.connect(url).authenticate_oidc()


def test_device_flow_approved_on_the_page_then_the_refresh_token_on_the_next_connect(accounts_server, openeo_home):
    url = accounts_server.url
    codes: list[str] = []
    con = openeo.connect(url).authenticate_oidc(display=approver(url, "bob", PASSWORDS["bob"], codes), max_poll_time=60)
    assert len(codes) == 1 and con.describe_account()["name"] == "bob"
    store = json.loads(next(openeo_home.glob("*refresh*")).read_text())
    assert f"{url}/oidc" in store
    again = openeo.connect(url).authenticate_oidc(display=never)
    assert again.describe_account()["name"] == "bob"
    # A broken access token: the client gets TokenInvalid and renews it with its refresh token, by itself.
    again.auth = OidcBearerAuth(provider_id="terracube", access_token="expired.or.broken")
    assert again.describe_account()["name"] == "bob"


def test_jobs_are_listed_for_their_owner_only(accounts_server):
    url = accounts_server.url
    alice = openeo.connect(url).authenticate_basic("alice", PASSWORDS["alice"])
    bob = openeo.connect(url).authenticate_basic("bob", PASSWORDS["bob"])
    job = alice.create_job(SUM, title="alice's")
    assert job.job_id in {j["id"] for j in alice.list_jobs()}
    assert job.job_id not in {j["id"] for j in bob.list_jobs()}
    assert error_of(bob.job(job.job_id).describe).code == "JobNotFound"


def test_keys_rotate_keeps_earlier_tokens_valid(accounts_server):
    url, env = accounts_server.url, accounts_server.env
    before = requests.get(f"{url}/credentials/basic", auth=("alice", PASSWORDS["alice"])).json()["access_token"]
    old_kid = key_id(before)
    assert "New signing key" in terracube(env, "keys", "rotate").stdout
    time.sleep(1.2)  # the server looks at the key folder at most once a second
    after = requests.get(f"{url}/credentials/basic", auth=("alice", PASSWORDS["alice"])).json()["access_token"]
    assert key_id(after) != old_kid
    for token in (before, after):
        assert openeo.connect(url).authenticate_bearer_token(f"basic//{token}").describe_account()["name"] == "alice"
    assert {key["kid"] for key in requests.get(f"{url}/oidc/jwks").json()["keys"]} == {old_kid, key_id(after)}


def test_a_copied_refresh_token_ends_the_login(accounts_server, openeo_home):
    url = accounts_server.url
    con = openeo.connect(url).authenticate_oidc(display=approver(url, "alice", PASSWORDS["alice"]), max_poll_time=60)
    started_with = json.loads(next(openeo_home.glob("*refresh*")).read_text())[f"{url}/oidc"]["terracube-public"]["refresh_token"]
    # The next sessions exchange the stored token each (and store the new one)...
    for _ in range(2):
        assert openeo.connect(url).authenticate_oidc(display=never).describe_account()["name"] == "alice"
    # ...and then somebody shows the first one again, as a thief with a copy would.
    refresh = {"grant_type": "refresh_token", "client_id": "terracube-public"}
    copied = requests.post(f"{url}/oidc/token", data={**refresh, "refresh_token": started_with})
    assert copied.status_code == 400 and copied.json()["error"] == "invalid_grant"
    # The whole login is over: the stored token fails too, the next connect needs the device flow again.
    codes: list[str] = []
    assert openeo.connect(url).authenticate_oidc(display=approver(url, "alice", PASSWORDS["alice"], codes), max_poll_time=60).describe_account()["name"] == "alice"
    assert len(codes) == 1
    del con


def test_a_restart_keeps_accounts_keys_and_tokens(tmp_path, openeo_home):
    env = server_env(tmp_path)
    first = LiveServer(env)
    terracube(first.env, "users", "add", "alice", password=PASSWORDS["alice"])
    first.start()
    try:
        token = requests.get(f"{first.url}/credentials/basic", auth=("alice", PASSWORDS["alice"])).json()["access_token"]
        openeo.connect(first.url).authenticate_oidc(display=approver(first.url, "alice", PASSWORDS["alice"]), max_poll_time=60)
        jwks = requests.get(f"{first.url}/oidc/jwks").json()
    finally:
        first.stop()
    second = LiveServer(env, port=first.port).start()  # the same address, so the same issuer
    try:
        assert requests.get(f"{second.url}/oidc/jwks").json() == jwks
        assert openeo.connect(second.url).authenticate_bearer_token(f"basic//{token}").describe_account()["name"] == "alice"
        assert openeo.connect(second.url).authenticate_oidc(display=never).describe_account()["name"] == "alice"
        assert openeo.connect(second.url).authenticate_basic("alice", PASSWORDS["alice"]).describe_account()["name"] == "alice"
    finally:
        second.stop()
