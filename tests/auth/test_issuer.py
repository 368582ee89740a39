"""The built-in issuer's protocol, request by request: device flow, refresh rotation, authorization code with PKCE, client credentials."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt

from terracube.auth.service import auth_service
from terracube.auth.store import AuthStore
from tests.auth.conftest import PASSWORDS, bearer

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
PUBLIC = "terracube-public"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def device_start(client, **extra) -> dict:
    response = client.post("/oidc/device_authorization", data={"client_id": PUBLIC, "scope": "openid offline_access", **extra})
    assert response.status_code == 200, response.text
    return response.json()


def approve(client, user_code: str, name: str = "alice", password: str | None = None, decision: str = "approve"):
    form = {"user_code": user_code, "name": name, "password": PASSWORDS.get(name, "") if password is None else password, "decision": decision}
    return client.post("/oidc/device", data=form)


def poll(client, device_code: str, **extra):
    return client.post("/oidc/token", data={"grant_type": DEVICE, "client_id": PUBLIC, "device_code": device_code, **extra})


def device_tokens(client, name: str = "alice") -> dict:
    started = device_start(client)
    assert approve(client, started["user_code"], name).status_code == 200
    response = poll(client, started["device_code"])
    assert response.status_code == 200, response.text
    return response.json()


def refresh(client, token: str):
    return client.post("/oidc/token", data={"grant_type": "refresh_token", "client_id": PUBLIC, "refresh_token": token})


def test_device_flow_as_rfc_8628_describes_it(accounts):
    started = device_start(accounts)
    assert {"device_code", "user_code", "verification_uri", "verification_uri_complete", "expires_in", "interval"} <= set(started)
    assert started["verification_uri"] == "http://127.0.0.1/oidc/device"
    assert started["verification_uri_complete"].endswith(f"?user_code={started['user_code']}")
    assert started["interval"] == 5
    pending = poll(accounts, started["device_code"])
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    # Polling again before the interval is over: slow down.
    hasty = poll(accounts, started["device_code"])
    assert hasty.status_code == 400 and hasty.json()["error"] == "slow_down"
    page = accounts.get(started["verification_uri_complete"])
    assert page.status_code == 200 and started["user_code"] in page.text and "password" in page.text
    assert page.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    wrong = approve(accounts, started["user_code"], password="not alice's password")
    assert wrong.status_code == 403 and "Wrong user name or password" in wrong.text
    # The code as people type it: lower case, without the dash.
    assert approve(accounts, started["user_code"].replace("-", "").lower()).status_code == 200
    tokens = poll(accounts, started["device_code"])
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and "refresh_token" in body and "id_token" in body
    assert tokens.headers["cache-control"] == "no-store"
    assert accounts.get("/me", headers=bearer(body["access_token"], "oidc/terracube/")).json()["name"] == "alice"
    id_claims = jwt.decode(body["id_token"], auth_service(accounts.app).keys.key_set()).claims
    assert id_claims["aud"] == [PUBLIC] and id_claims["sub"] == accounts.user_ids["alice"] and id_claims["iss"] == "http://127.0.0.1/oidc"
    # A device code works once.
    again = poll(accounts, started["device_code"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_request"


def test_device_flow_denied_unknown_and_with_pkce(accounts):
    denied = device_start(accounts)
    assert "Denied" in approve(accounts, denied["user_code"], decision="deny").text
    assert poll(accounts, denied["device_code"]).json()["error"] == "access_denied"
    assert approve(accounts, "BCDF-GHJK").status_code == 400

    verifier, challenge = pkce()
    started = device_start(accounts, code_challenge=challenge, code_challenge_method="S256")
    assert approve(accounts, started["user_code"], "bob").status_code == 200
    wrong = poll(accounts, started["device_code"], code_verifier=pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    good = poll(accounts, started["device_code"], code_verifier=verifier)
    assert good.status_code == 200, good.text
    assert accounts.get("/me", headers=bearer(good.json()["access_token"])).json()["name"] == "bob"
    unsupported = accounts.post("/oidc/device_authorization", data={"client_id": PUBLIC, "code_challenge": challenge, "code_challenge_method": "S512"})
    assert unsupported.status_code == 400 and unsupported.json()["error"] == "invalid_request"


def test_refresh_tokens_rotate_and_a_copied_one_revokes_its_family(accounts):
    first = device_tokens(accounts)["refresh_token"]
    second = refresh(accounts, first)
    assert second.status_code == 200, second.text
    second = second.json()["refresh_token"]
    assert second != first
    # The official client renews a running session with the token it started with, while the new one
    # waits in its store for the next session: until that one is used, the first still works.
    third = refresh(accounts, first)
    assert third.status_code == 200 and accounts.get("/me", headers=bearer(third.json()["access_token"])).status_code == 200
    fourth = refresh(accounts, second)  # the next session
    assert fourth.status_code == 200
    # Now the first one again: its successor was used, so it was copied. It fails, and so does the whole family.
    copied = refresh(accounts, first)
    assert copied.status_code == 400 and copied.json()["error"] == "invalid_grant"
    for token in (second, third.json()["refresh_token"], fourth.json()["refresh_token"]):
        assert refresh(accounts, token).json()["error"] == "invalid_grant"
    # Another login of the same user is another family, untouched.
    other = device_tokens(accounts)["refresh_token"]
    assert refresh(accounts, other).status_code == 200
    assert refresh(accounts, "made-up").json()["error"] == "invalid_grant"


def test_without_offline_access_there_is_no_refresh_token(accounts):
    started = accounts.post("/oidc/device_authorization", data={"client_id": PUBLIC, "scope": "openid"}).json()
    approve(accounts, started["user_code"])
    assert "refresh_token" not in poll(accounts, started["device_code"]).json()


def test_a_password_change_ends_refresh_tokens(accounts, accounts_settings):
    token = device_tokens(accounts, "bob")["refresh_token"]
    store = AuthStore.open(accounts_settings)
    store.set_password("bob", "bob's new long password")
    store.close()
    assert refresh(accounts, token).json()["error"] == "invalid_grant"


def authorize_params(challenge: str, redirect_uri: str = "http://localhost:8765/callback", **extra) -> dict:
    return {"response_type": "code", "client_id": PUBLIC, "redirect_uri": redirect_uri, "scope": "openid offline_access",
            "state": "s-123", "nonce": "n-456", "code_challenge": challenge, "code_challenge_method": "S256", **extra}


def test_authorization_code_with_pkce(accounts):
    verifier, challenge = pkce()
    params = authorize_params(challenge)
    page = accounts.get("/oidc/authorize", params=params)
    assert page.status_code == 200 and "localhost:8765" in page.text and "password" in page.text
    wrong = accounts.post("/oidc/authorize", data={**params, "name": "alice", "password": "no", "decision": "approve"}, follow_redirects=False)
    assert wrong.status_code == 403
    answer = accounts.post("/oidc/authorize", data={**params, "name": "alice", "password": PASSWORDS["alice"], "decision": "approve"},
                           follow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    query = parse_qs(location.query)
    assert location.netloc == "localhost:8765" and query["state"] == ["s-123"]
    exchange = {"grant_type": "authorization_code", "client_id": PUBLIC, "code": query["code"][0], "redirect_uri": params["redirect_uri"]}
    assert accounts.post("/oidc/token", data={**exchange, "code_verifier": pkce()[0]}).json()["error"] == "invalid_grant"
    # The failed attempt used the code up: codes work once, whoever tries first.
    answer = accounts.post("/oidc/authorize", data={**params, "name": "alice", "password": PASSWORDS["alice"], "decision": "approve"},
                           follow_redirects=False)
    exchange["code"] = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    tokens = accounts.post("/oidc/token", data={**exchange, "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert accounts.get("/me", headers=bearer(body["access_token"], "oidc/terracube/")).json()["name"] == "alice"
    id_claims = jwt.decode(body["id_token"], auth_service(accounts.app).keys.key_set()).claims
    assert id_claims["nonce"] == "n-456" and id_claims["preferred_username"] == "alice"
    assert accounts.post("/oidc/token", data={**exchange, "code_verifier": verifier}).json()["error"] == "invalid_grant"
    userinfo = accounts.get("/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert userinfo.json() == {"sub": accounts.user_ids["alice"], "name": "alice", "preferred_username": "alice"}
    assert accounts.get("/oidc/userinfo", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_authorization_requests_that_are_refused(accounts):
    verifier, challenge = pkce()
    # A redirect to a site the operator did not allow: no code leaves, the person sees why.
    evil = accounts.get("/oidc/authorize", params=authorize_params(challenge, "https://evil.example/cb"), follow_redirects=False)
    assert evil.status_code == 400 and "evil.example" not in evil.headers.get("location", "")
    # Without PKCE the public client gets nothing.
    no_pkce = {k: v for k, v in authorize_params(challenge).items() if not k.startswith("code_challenge")}
    answer = accounts.post("/oidc/authorize", data={**no_pkce, "name": "alice", "password": PASSWORDS["alice"], "decision": "approve"},
                           follow_redirects=False)
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    token = accounts.post("/oidc/token", data={"grant_type": "authorization_code", "client_id": PUBLIC, "code": code,
                                                "redirect_uri": no_pkce["redirect_uri"]})
    assert token.status_code == 400 and token.json()["error"] == "invalid_request"
    # Denied: the client hears access_denied.
    params = authorize_params(challenge)
    denied = accounts.post("/oidc/authorize", data={**params, "decision": "deny"}, follow_redirects=False)
    assert denied.status_code == 302 and parse_qs(urlsplit(denied.headers["location"]).query)["error"] == ["access_denied"]
    # The Web Editor is allowed by default, as the configured redirect URL.
    assert accounts.get("/oidc/authorize", params=authorize_params(challenge, "https://editor.openeo.org/")).status_code == 200


def test_client_credentials(accounts, accounts_settings):
    store = AuthStore.open(accounts_settings)
    client_id, secret = store.add_client("ci", "bob")
    store.close()
    form = {"grant_type": "client_credentials", "scope": "openid"}
    by_post = accounts.post("/oidc/token", data={**form, "client_id": client_id, "client_secret": secret})
    by_basic = accounts.post("/oidc/token", data=form, auth=(client_id, secret))
    for response in (by_post, by_basic):
        assert response.status_code == 200, response.text
        assert "refresh_token" not in response.json()
        assert accounts.get("/me", headers=bearer(response.json()["access_token"])).json()["name"] == "bob"
    wrong = accounts.post("/oidc/token", data={**form, "client_id": client_id, "client_secret": "wrong"})
    assert wrong.status_code in (400, 401) and wrong.json()["error"] == "invalid_client"
    # The public client cannot use client credentials; a confidential one cannot pretend to be a device.
    assert accounts.post("/oidc/token", data={**form, "client_id": PUBLIC}).json()["error"] in ("invalid_client", "unauthorized_client")
    assert accounts.post("/oidc/device_authorization", data={"client_id": client_id, "client_secret": secret}).status_code == 200
    started = accounts.post("/oidc/device_authorization", data={"client_id": client_id, "client_secret": secret}).json()
    approve(accounts, started["user_code"], "bob")
    sneaky = accounts.post("/oidc/token", data={"grant_type": DEVICE, "client_id": client_id, "client_secret": secret, "device_code": started["device_code"]})
    assert sneaky.status_code == 400 and sneaky.json()["error"] == "unauthorized_client"


def test_laptop_mode_approves_device_codes_and_authorizations_by_itself(laptop):
    started = device_start(laptop)
    assert started["interval"] == 1
    tokens = poll(laptop, started["device_code"])
    assert tokens.status_code == 200, tokens.text
    claims = jwt.decode(tokens.json()["access_token"], auth_service(laptop.app).keys.key_set()).claims
    assert claims["sub"] == "anonymous" and claims["terracube_local"] is True
    assert "no accounts" in laptop.get(started["verification_uri_complete"]).text
    verifier, challenge = pkce()
    answer = laptop.get("/oidc/authorize", params=authorize_params(challenge), follow_redirects=False)
    assert answer.status_code == 302 and "code=" in answer.headers["location"]


@pytest.mark.parametrize("grant", ["refresh", "device"])
def test_laptop_grants_are_worthless_once_accounts_exist(laptop, tmp_path, monkeypatch, grant):
    import terracube.auth.service as service_module

    monkeypatch.setattr(service_module, "MODE_SECONDS", 0)
    started = device_start(laptop)
    if grant == "refresh":
        refresh_token = poll(laptop, started["device_code"]).json()["refresh_token"]
    from terracube.settings import Settings
    from tests.auth.conftest import add_users

    add_users(Settings(data_dir=tmp_path / "data"), "alice")
    time.sleep(0.01)
    answer = refresh(laptop, refresh_token) if grant == "refresh" else poll(laptop, started["device_code"])
    assert answer.status_code == 400 and answer.json()["error"] in ("invalid_grant", "invalid_request", "access_denied")
