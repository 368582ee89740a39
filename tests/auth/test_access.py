"""Who may call what, in each mode, and every way a token can be wrong (the app in process, real database and keys)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from joserfc import jwt
from joserfc.jwk import RSAKey

from terracube.api.app import create_app
from terracube.auth import Mode, auth_mode, is_laptop_mode
from terracube.auth.service import auth_service
from terracube.auth.store import AuthStore
from terracube.settings import Settings
from tests.auth.conftest import PASSWORDS, add_users, assert_error, basic_token, bearer, client_for

OPENAPI = Path("/work/shared/openeo-api/openapi.yaml")
PRIVATE = [("GET", "/me"), ("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/files"), ("GET", "/process_graphs"),
           ("POST", "/result"), ("POST", "/validation"), ("GET", "/jobs/j-123"), ("GET", "/jobs/j-123/results")]
PUBLIC = ["/", "/.well-known/openeo", "/conformance", "/processes", "/file_formats", "/udf_runtimes", "/health",
          "/credentials/oidc", "/oidc/.well-known/openid-configuration", "/oidc/jwks"]


def forge(app, claims: dict, header: dict | None = None, key=None) -> str:
    """A token signed with the server's own current key (or ``key``), with the given claims."""
    service = auth_service(app)
    signing = service.keys.current()
    now = int(time.time())
    full = {"iss": "http://127.0.0.1/oidc", "aud": "terracube-api", "sub": "x", "iat": now, "nbf": now, "exp": now + 600, **claims}
    head = {"alg": "RS256", "kid": signing.kid, "typ": "at+jwt", **(header or {})}
    return jwt.encode(head, full, key or signing.key, algorithms=[head["alg"]])


# --- laptop mode -----------------------------------------------------------------------------
def test_laptop_mode_needs_no_login_and_ignores_tokens(laptop):
    assert is_laptop_mode(laptop.app) and auth_mode(laptop.app) is Mode.LAPTOP
    for headers in ({}, bearer("garbage"), bearer("x", "oidc/elsewhere/"), {"Authorization": "Basic Zm9vOmJhcg=="}):
        me = laptop.get("/me", headers=headers).json()
        # No quota in laptop mode: budget and storage are null, as the API asks where no limit applies.
        assert {k: me[k] for k in ("user_id", "name", "budget", "storage", "links")} == {
            "user_id": "anonymous", "name": "Anonymous", "budget": None, "storage": None, "links": []}
    # Any name and password: the token is a real one, signed for the local user.
    token = basic_token(laptop, "whoever", "anything")
    assert jwt.decode(token, auth_service(laptop.app).keys.key_set()).claims["sub"] == "anonymous"
    assert laptop.get("/files", headers=bearer(token)).status_code == 200


def test_credentials_oidc_lists_the_built_in_issuer_as_the_openapi_document_says(laptop):
    document = laptop.get("/credentials/oidc").json()
    spec = yaml.safe_load(OPENAPI.read_text())
    schema = spec["paths"]["/credentials/oidc"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema.validate(document, json.loads(json.dumps(schema).replace('"#/components/schemas/link"', '"#/definitions/link"')) | {
        "definitions": {"link": spec["components"]["schemas"]["link"]}})
    provider = document["providers"][0]
    assert provider["id"] == "terracube" and provider["issuer"] == "http://127.0.0.1/oidc"
    assert provider["scopes"] == ["openid", "offline_access"]
    client = provider["default_clients"][0]
    assert set(client["grant_types"]) == {"authorization_code+pkce", "urn:ietf:params:oauth:grant-type:device_code",
                                          "urn:ietf:params:oauth:grant-type:device_code+pkce", "refresh_token"}
    discovery = laptop.get("/oidc/.well-known/openid-configuration").json()
    assert discovery["issuer"] == provider["issuer"]
    assert discovery["device_authorization_endpoint"] == "http://127.0.0.1/oidc/device_authorization"
    assert "offline_access" in discovery["scopes_supported"]
    assert {"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"} <= set(discovery["grant_types_supported"])
    from authlib.oidc.discovery import OpenIDProviderMetadata

    OpenIDProviderMetadata(discovery).validate()
    # The issuer's routes are not openEO endpoints: the capabilities do not list them.
    paths = {endpoint["path"] for endpoint in laptop.get("/").json()["endpoints"]}
    assert "/credentials/oidc" in paths and not any(path.startswith("/oidc") for path in paths)


def test_signing_keys_are_private_files(laptop, tmp_path):
    basic_token(laptop, "whoever", "anything")
    folder = tmp_path / "data" / "keys"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.glob("*.json"))
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert "d" in json.loads(files[0].read_text())["jwk"]  # the private part, which only this folder holds
    public = laptop.get("/oidc/jwks").json()["keys"]
    assert [key["kid"] for key in public] == [files[0].stem] and "d" not in public[0]


# --- accounts mode ---------------------------------------------------------------------------
def test_accounts_mode_public_and_private_routes(accounts):
    assert auth_mode(accounts.app) is Mode.ACCOUNTS and not is_laptop_mode(accounts.app)
    for path in PUBLIC:
        assert accounts.get(path).status_code == 200, path
    for method, path in PRIVATE:
        body = assert_error(accounts.request(method, path, json={}), 401, "AuthenticationRequired")
        assert "log in" in body["message"].lower()
    token = basic_token(accounts, "alice")
    me = accounts.get("/me", headers=bearer(token)).json()
    assert (me["user_id"], me["name"], me["links"]) == (accounts.user_ids["alice"], "alice", [])
    assert accounts.get("/files", headers=bearer(token)).json()["files"] == []
    # The signed result links need no token (their signature is checked by the jobs room).
    assert accounts.get("/jobs/j-123/results/assets/a.tif").status_code != 401


def test_the_token_never_encodes_the_user_name_or_password(accounts):
    token = basic_token(accounts, "alice")
    for part in token.split("."):
        assert "alice" not in part and PASSWORDS["alice"] not in part
    claims = jwt.decode(token, auth_service(accounts.app).keys.key_set()).claims
    assert claims["sub"] == accounts.user_ids["alice"] and "alice" not in json.dumps(claims)


def test_wrong_passwords_are_credentials_invalid(accounts):
    assert_error(accounts.get("/credentials/basic", auth=("alice", "not the password")), 403, "CredentialsInvalid")
    assert_error(accounts.get("/credentials/basic", auth=("nobody", "whatever long")), 403, "CredentialsInvalid")
    assert_error(accounts.get("/credentials/basic"), 401, "AuthenticationRequired")


def b64(data: bytes | dict) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def hand_made(header: dict, claims: dict, secret: bytes | None = None) -> str:
    """A JWS made without a JOSE library, as an attacker would: unsigned, or HMAC-signed with ``secret``."""
    signing_input = f"{b64(header)}.{b64(claims)}"
    signature = b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()) if secret else ""
    return f"{signing_input}.{signature}"


def tampered(token: str, **changes) -> str:
    header, claims, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(claims + "=="))
    return f"{header}.{b64({**payload, **changes})}.{signature}"


BAD_TOKENS = {
    "garbage": lambda app, alice, now: "not.a.jwt",
    "expired": lambda app, alice, now: forge(app, {"sub": alice, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}),
    "not yet valid": lambda app, alice, now: forge(app, {"sub": alice, "nbf": now + 3600}),
    "other issuer": lambda app, alice, now: forge(app, {"sub": alice, "iss": "https://elsewhere.example/oidc"}),
    "other audience": lambda app, alice, now: forge(app, {"sub": alice, "aud": "some-client"}),
    "foreign key": lambda app, alice, now: forge(app, {"sub": alice}, key=RSAKey.generate_key(2048, private=True)),
    "id token": lambda app, alice, now: forge(app, {"sub": alice}, header={"typ": "JWT"}),
    "laptop token": lambda app, alice, now: forge(app, {"sub": "anonymous", "terracube_local": True}),
    "no such user": lambda app, alice, now: forge(app, {"sub": "u-0000000000000000"}),
    "alg none": lambda app, alice, now: hand_made(
        {"alg": "none", "typ": "at+jwt"}, {"sub": alice, "iss": "http://127.0.0.1/oidc", "aud": "terracube-api", "iat": now, "exp": now + 600}),
    # The classic confusion: the server's public key used as an HMAC secret.
    "alg HS256": lambda app, alice, now: hand_made(
        {"alg": "HS256", "typ": "at+jwt", "kid": auth_service(app).keys.current().kid},
        {"sub": alice, "iss": "http://127.0.0.1/oidc", "aud": "terracube-api", "iat": now, "exp": now + 600},
        auth_service(app).keys.current().key.as_pem(private=False)),
}


@pytest.mark.parametrize("case", [*BAD_TOKENS, "unknown provider", "tampered"])
def test_every_bad_token_is_token_invalid(accounts, case):
    app, alice = accounts.app, accounts.user_ids["alice"]
    if case == "unknown provider":
        headers = bearer(basic_token(accounts, "alice"), "oidc/elsewhere/")
    elif case == "tampered":  # bob's real token, claiming to be alice
        headers = bearer(tampered(basic_token(accounts, "bob"), sub=alice))
    else:
        headers = bearer(BAD_TOKENS[case](app, alice, int(time.time())))
    body = assert_error(accounts.get("/me", headers=headers), 403, "TokenInvalid")
    assert "log in" in body["message"].lower() or "provider" in body["message"].lower()


def test_a_good_token_with_either_prefix_and_other_schemes(accounts):
    token = basic_token(accounts, "bob")
    # The forger of the bad-token cases makes good tokens too, when nothing is wrong with them.
    assert accounts.get("/me", headers=bearer(forge(accounts.app, {"sub": accounts.user_ids["bob"]}))).json()["name"] == "bob"
    assert accounts.get("/me", headers=bearer(token, "oidc/terracube/")).json()["name"] == "bob"
    assert accounts.get("/me", headers=bearer(token, "basic//")).json()["name"] == "bob"
    assert_error(accounts.get("/me", headers=bearer(token, "")), 403, "TokenInvalid")
    assert_error(accounts.get("/me", headers={"Authorization": "Basic Ym9iOng="}), 403, "AuthenticationSchemeInvalid")


def test_a_password_change_or_removal_ends_the_tokens(accounts, accounts_settings, monkeypatch):
    import terracube.auth.service as service_module

    monkeypatch.setattr(service_module, "USER_SECONDS", 0)  # no cached account: see the change at once
    alice, bob = basic_token(accounts, "alice"), basic_token(accounts, "bob")
    time.sleep(1.1)  # token times are whole seconds
    store = AuthStore.open(accounts_settings)
    store.set_password("alice", "a new long password")
    store.remove_user("bob")
    store.close()
    assert_error(accounts.get("/me", headers=bearer(alice)), 403, "TokenInvalid")
    assert_error(accounts.get("/me", headers=bearer(bob)), 403, "TokenInvalid")
    assert_error(accounts.get("/credentials/basic", auth=("alice", PASSWORDS["alice"])), 403, "CredentialsInvalid")
    fresh = basic_token(accounts, "alice", "a new long password")
    assert accounts.get("/me", headers=bearer(fresh)).json()["name"] == "alice"


def test_required_mode_without_accounts_refuses_everyone(tmp_path):
    client = client_for(create_app(Settings(data_dir=tmp_path / "data", auth="required")))
    assert auth_mode(client.app) is Mode.ACCOUNTS
    assert_error(client.get("/me"), 401, "AuthenticationRequired")
    assert_error(client.get("/credentials/basic", auth=("anyone", "anything at all")), 403, "CredentialsInvalid")


def test_open_mode_lets_everyone_in_as_the_local_user(tmp_path, caplog):
    settings = Settings(data_dir=tmp_path / "data", auth="none")
    add_users(settings, "alice")
    with caplog.at_level("WARNING", logger="terracube.auth"):
        client = client_for(create_app(settings))
    assert "OPEN" in caplog.text
    assert auth_mode(client.app) is Mode.OPEN and not is_laptop_mode(client.app)
    assert client.get("/me").json()["user_id"] == "anonymous"


def test_the_first_account_switches_a_running_server_to_accounts_mode_for_good(laptop, tmp_path, monkeypatch):
    import terracube.auth.service as service_module

    monkeypatch.setattr(service_module, "MODE_SECONDS", 0)
    assert laptop.get("/me").status_code == 200
    settings = Settings(data_dir=tmp_path / "data")
    add_users(settings, "alice")
    assert_error(laptop.get("/me"), 401, "AuthenticationRequired")
    store = AuthStore.open(settings)
    store.remove_user("alice")
    store.close()
    # Removing the last account does not open a running server again.
    assert_error(laptop.get("/me"), 401, "AuthenticationRequired")
    assert os.path.exists(tmp_path / "data" / "terracube.db")
