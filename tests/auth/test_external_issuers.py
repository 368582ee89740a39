"""Tokens of another OpenID Connect provider, checked against a real issuer in its own process.

The issuer is ``tests/auth/oidc_issuer.py``, started as a subprocess on a free loopback port
(``IssuerProcess`` and the ``issuer`` fixtures in conftest.py); it counts the calls to its
endpoints, so the tests can see what our validator asked and when.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests
from pydantic import ValidationError

from terracube.auth.external import ExternalIssuers, IssuerUnavailable
from terracube.auth.providers import ExternalProvider, credentials_oidc_entries
from terracube.errors import PermissionsInsufficient, TokenInvalid
from terracube.settings import Settings
from tests.auth.conftest import AUDIENCE, ENTITLEMENT

def header(token: str) -> dict:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def tampered(token: str, **claims) -> str:
    """The token with changed claims and the original signature, as an attacker would send it."""
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    payload = base64.urlsafe_b64encode(json.dumps({**data, **claims}).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


# -- good tokens -------------------------------------------------------------------------------


def test_a_token_from_the_token_endpoint_is_the_user_provider_and_sub(issuer):
    answer = requests.post(f"{issuer.issuer}/protocol/token", timeout=10,
                           data={"grant_type": "client_credentials", "client_id": "ci-client", "client_secret": "ci-secret"})
    identity = issuer.validator().identity("egi", answer.json()["access_token"])
    assert identity.key == ("egi", "service-account-ci-client")


def test_name_and_email_come_from_the_token(issuer):
    token = issuer.mint(claims={"sub": "f00-bar", "name": "Ada Lovelace", "email": "ada@example.org"})
    identity = issuer.validator().identity("egi", token)
    assert (identity.provider_id, identity.sub, identity.name, identity.email) == ("egi", "f00-bar", "Ada Lovelace", "ada@example.org")


def test_the_official_client_logs_in_through_the_listed_provider(issuer):
    """What /credentials/oidc lists leads the openeo client to the issuer, and its token passes."""
    from openeo.rest.auth.oidc import OidcClientCredentialsAuthenticator, OidcClientInfo, OidcProviderInfo

    [entry] = credentials_oidc_entries([issuer.provider()])
    provider = OidcProviderInfo(provider_id=entry["id"], title=entry["title"], issuer=entry["issuer"],
                                scopes=entry["scopes"], default_clients=entry["default_clients"])
    client = OidcClientInfo(client_id="ci-client", client_secret="ci-secret", provider=provider)
    tokens = OidcClientCredentialsAuthenticator(client).get_tokens()
    assert issuer.validator().identity(entry["id"], tokens.access_token).sub == "service-account-ci-client"


class FromNow(int):
    """A time claim given as seconds from when the test runs, not from when it was collected."""


def at_run_time(claims: dict) -> dict:
    return {name: int(time.time()) + value if isinstance(value, FromNow) else value for name, value in claims.items()}


@pytest.mark.parametrize("claims", [
    {"aud": ["account", AUDIENCE]},          # one audience of several
    {"aud": "account", "azp": AUDIENCE},     # Keycloak's default: another aud, our client as azp
    {"exp": FromNow(-5)},                    # expired by less than the leeway for clocks
])
def test_audience_and_clock_leeway(issuer, claims):
    assert issuer.validator().identity("egi", issuer.mint(claims=at_run_time(claims))).sub == "alice"


def test_an_elliptic_curve_key_serves_too(own_issuer):
    own_issuer.rotate("EC")
    token = own_issuer.mint()
    assert header(token)["alg"] == "ES256"
    assert own_issuer.validator().identity("egi", token).sub == "alice"


# -- bad tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize("mint, says", [
    ({"claims": {"exp": FromNow(-120)}}, "has expired"),
    ({"claims": {"nbf": FromNow(600)}}, "not valid yet"),
    ({"claims": {"iat": FromNow(600)}}, "issued in the future"),
    ({"claims": {"iss": "http://127.0.0.1:9/realms/other"}}, "another issuer"),
    ({"claims": {"aud": "some-other-service"}}, "was issued for ['some-other-service']"),
    ({"claims": {"aud": None}}, "no audience"),
    ({"claims": {"exp": None}}, "lacks the claim 'exp'"),
    ({"claims": {"sub": None}}, "lacks the claim 'sub'"),
    ({"alg": "none"}, "signed with 'none'"),
    ({"alg": "HS256"}, "signed with 'HS256'"),
    ({"key": "unpublished"}, "signature does not verify"),
])
def test_bad_tokens_are_token_invalid(issuer, mint, says):
    with pytest.raises(TokenInvalid) as raised:
        issuer.validator().identity("egi", issuer.mint(**{**mint, "claims": at_run_time(mint.get("claims", {}))}))
    assert says in raised.value.message
    assert (raised.value.code, raised.value.status) == ("TokenInvalid", 403)


def test_a_token_without_key_id_needs_a_single_key(own_issuer):
    validator = own_issuer.validator()
    assert validator.identity("egi", own_issuer.mint(header={"kid": None})).sub == "alice"
    own_issuer.rotate()
    with pytest.raises(TokenInvalid, match="no key id"):
        own_issuer.validator().identity("egi", own_issuer.mint(header={"kid": None}))


def test_a_tampered_token_is_token_invalid(issuer):
    token = tampered(issuer.mint(claims={"sub": "alice"}), sub="admin")
    with pytest.raises(TokenInvalid, match="signature does not verify"):
        issuer.validator().identity("egi", token)


def test_an_algorithm_outside_the_allow_list_is_refused(issuer):
    validator = issuer.validator(provider=issuer.provider(allowed_algorithms=["ES256"]))
    with pytest.raises(TokenInvalid, match="signed with 'RS256'.*must use one of ES256"):
        validator.identity("egi", issuer.mint())


def test_an_unknown_provider_is_token_invalid(issuer):
    with pytest.raises(TokenInvalid, match="Unknown OpenID Connect provider 'google'.*'egi'"):
        issuer.validator().identity("google", issuer.mint())


def test_the_configuration_refuses_none_and_hmac():
    for algorithms in (["none"], ["RS256", "HS256"], []):
        with pytest.raises(ValidationError, match="allowed_algorithms"):
            ExternalProvider(id="x", issuer="https://id.example.org", title="X", allowed_algorithms=algorithms)
    with pytest.raises(ValidationError, match="use https"):
        ExternalProvider(id="x", issuer="http://id.example.org", title="X")


# -- keys: cached, re-fetched on rotation, not on every bogus kid -------------------------------


def test_cached_keys_serve_many_tokens_without_asking_the_issuer(issuer):
    validator = issuer.validator()
    tokens = [issuer.mint(claims={"sub": f"user-{n}"}) for n in range(20)]
    before = issuer.stats()
    assert [validator.identity("egi", token).sub for token in tokens] == [f"user-{n}" for n in range(20)]
    after = issuer.stats()
    assert (after["discovery"] - before["discovery"], after["jwks"] - before["jwks"]) == (1, 1)
    assert after["userinfo"] == before["userinfo"]


def test_key_rotation_is_followed_with_one_fetch(own_issuer):
    validator = own_issuer.validator()
    old = own_issuer.mint()
    validator.identity("egi", old)
    assert own_issuer.stats()["jwks"] == 1
    new_kid = own_issuer.rotate()
    new = own_issuer.mint(claims={"sub": "bob"})
    assert header(new)["kid"] == new_kid
    assert validator.identity("egi", new).sub == "bob"
    assert validator.identity("egi", old).sub == "alice"  # the old key is still published: its tokens still pass
    assert own_issuer.stats()["jwks"] == 2


def test_bogus_key_ids_do_not_make_a_fetch_each(own_issuer):
    validator = own_issuer.validator(unknown_kid_interval=1.0)
    validator.identity("egi", own_issuer.mint())
    for n in range(25):
        with pytest.raises(TokenInvalid, match=f"key id 'bogus-{n}'"):
            validator.identity("egi", own_issuer.mint(header={"kid": f"bogus-{n}"}))
    assert own_issuer.stats()["jwks"] == 2  # the first fetch, and one more for the first unknown kid
    # A real rotation right after that waits for the interval, then is followed.
    own_issuer.rotate()
    rotated = own_issuer.mint()
    with pytest.raises(TokenInvalid):
        validator.identity("egi", rotated)
    time.sleep(1.1)
    assert validator.identity("egi", rotated).sub == "alice"
    assert own_issuer.stats()["jwks"] == 3


# -- opaque tokens: the userinfo endpoint, briefly cached ---------------------------------------


def test_an_opaque_token_is_checked_at_userinfo_once(issuer):
    token = issuer.mint(opaque=True, claims={"sub": "carol"}, profile={"name": "Carol", "email": "carol@example.org"})
    validator = issuer.validator()
    before = issuer.stats()["userinfo"]
    first = validator.identity("egi", token)
    second = validator.identity("egi", token)
    assert (first.key, first.name, first.email) == (("egi", "carol"), "Carol", "carol@example.org")
    assert second.key == first.key
    assert issuer.stats()["userinfo"] == before + 1


def test_the_userinfo_cache_expires(issuer):
    token = issuer.mint(opaque=True, claims={"sub": "dave"})
    validator = issuer.validator(userinfo_seconds=0.5)
    before = issuer.stats()["userinfo"]
    validator.identity("egi", token)
    time.sleep(0.6)
    validator.identity("egi", token)
    assert issuer.stats()["userinfo"] == before + 2


def test_an_opaque_token_the_issuer_does_not_know_is_token_invalid(issuer):
    with pytest.raises(TokenInvalid, match="did not accept the access token"):
        issuer.validator().identity("egi", "not-a-token-it-issued")


# -- the claim gate ------------------------------------------------------------------------------


def gated(issuer, claim="eduperson_entitlement"):
    return issuer.validator(provider=issuer.provider(required_claim={"claim": claim, "any_of": [ENTITLEMENT]}))


def test_the_claim_gate_lets_members_in(issuer):
    token = issuer.mint(claims={"sub": "erin", "eduperson_entitlement": ["urn:other", ENTITLEMENT]})
    assert gated(issuer).identity("egi", token).sub == "erin"


def test_the_claim_gate_refuses_others_naming_the_claim(issuer):
    token = issuer.mint(claims={"sub": "frank", "eduperson_entitlement": ["urn:other"]}, profile={})
    with pytest.raises(PermissionsInsufficient, match="eduperson_entitlement") as raised:
        gated(issuer).identity("egi", token)
    assert raised.value.status == 403


def test_the_claim_gate_reads_userinfo_when_the_token_lacks_the_claim(issuer):
    token = issuer.mint(claims={"sub": "grace"}, profile={"eduperson_entitlement": [ENTITLEMENT]})
    before = issuer.stats()["userinfo"]
    assert gated(issuer).identity("egi", token).claims["eduperson_entitlement"] == [ENTITLEMENT]
    assert issuer.stats()["userinfo"] == before + 1
    opaque = issuer.mint(opaque=True, claims={"sub": "heidi"}, profile={"eduperson_entitlement": ENTITLEMENT})
    assert gated(issuer).identity("egi", opaque).sub == "heidi"


def test_the_claim_gate_reads_nested_claims(issuer):
    member = issuer.mint(claims={"realm_access": {"roles": ["offline_access", ENTITLEMENT]}})
    outsider = issuer.mint(claims={"sub": "ivan", "realm_access": {"roles": ["offline_access"]}}, profile={})
    assert gated(issuer, "realm_access.roles").identity("egi", member).sub == "alice"
    with pytest.raises(PermissionsInsufficient, match="realm_access.roles"):
        gated(issuer, "realm_access.roles").identity("egi", outsider)


# -- an issuer that cannot be asked ---------------------------------------------------------------


def test_an_unreachable_issuer_is_a_clear_upstream_error(issuer):
    from tests.live_server import free_port

    provider = ExternalProvider(id="gone", issuer=f"http://127.0.0.1:{free_port()}/realms/x", title="Gone Check-in")
    with pytest.raises(IssuerUnavailable, match="Gone Check-in could not be reached") as raised:
        ExternalIssuers([provider]).identity("gone", issuer.mint())
    assert (raised.value.code, raised.value.status) == ("IssuerUnavailable", 502)


def test_keys_already_fetched_outlive_the_issuer(own_issuer):
    validator = own_issuer.validator()
    token = own_issuer.mint()
    opaque = own_issuer.mint(opaque=True, claims={"sub": "judy"})
    validator.identity("egi", token)
    own_issuer.stop()
    assert validator.identity("egi", token).sub == "alice"
    with pytest.raises(IssuerUnavailable, match="could not be reached"):
        validator.identity("egi", opaque)


def test_a_slow_issuer_times_out(own_issuer):
    own_issuer.delay(3)
    with pytest.raises(IssuerUnavailable, match="did not answer within 0.5 s") as raised:
        own_issuer.validator(timeout=(0.5, 0.5)).identity("egi", own_issuer.mint())
    assert raised.value.status == 504


def test_a_misconfigured_issuer_url_says_so(issuer):
    # "localhost" instead of the issuer's own "127.0.0.1": its discovery document names another issuer.
    provider = issuer.provider(issuer=issuer.issuer.replace("127.0.0.1", "localhost"))
    with pytest.raises(IssuerUnavailable, match="configuration of this provider is wrong"):
        ExternalIssuers([provider]).identity("egi", issuer.mint())


# -- configuration -------------------------------------------------------------------------------


def test_providers_come_from_the_toml_configuration(tmp_path, monkeypatch):
    config = tmp_path / "terracube.toml"
    config.write_text(
        '[[oidc_providers]]\n'
        'id = "egi"\n'
        'issuer = "https://aai.egi.eu/auth/realms/egi/"\n'
        'title = "EGI Check-in"\n'
        'scopes = ["openid", "email", "eduperson_entitlement"]\n'
        'required_claim = { claim = "eduperson_entitlement", any_of = ["urn:mace:egi.eu:group:vo.example"] }\n'
        '[[oidc_providers.default_clients]]\n'
        'id = "openeo-platform-default-client"\n'
        'grant_types = ["authorization_code+pkce", "urn:ietf:params:oauth:grant-type:device_code+pkce", "refresh_token"]\n'
        'redirect_urls = ["https://editor.openeo.org"]\n'
    )
    monkeypatch.setenv("TERRACUBE_CONFIG", str(config))
    [provider] = Settings().oidc_providers
    assert provider.issuer == "https://aai.egi.eu/auth/realms/egi"  # no trailing slash, as the openEO API wants
    assert provider.audiences == {"openeo-platform-default-client"}
    assert credentials_oidc_entries([provider]) == [{
        "id": "egi", "issuer": "https://aai.egi.eu/auth/realms/egi", "title": "EGI Check-in",
        "scopes": ["openid", "email", "eduperson_entitlement"],
        "default_clients": [{
            "id": "openeo-platform-default-client",
            "grant_types": ["authorization_code+pkce", "urn:ietf:params:oauth:grant-type:device_code+pkce", "refresh_token"],
            "redirect_urls": ["https://editor.openeo.org"],
        }],
    }]


def test_provider_ids_must_be_distinct():
    one = {"id": "egi", "issuer": "https://aai.egi.eu/auth/realms/egi", "title": "EGI"}
    with pytest.raises(ValidationError, match="unique"):
        Settings(oidc_providers=[one, one])
