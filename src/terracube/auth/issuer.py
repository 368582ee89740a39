"""The built-in OpenID Connect issuer's protocol: authlib's authorization server, with our glue.

authlib implements the grants (authorization code with PKCE, device code, refresh token, client
credentials), client authentication, the error responses and ID tokens. This module tells it
where things are stored (``grants.py``, ``store.py``), how access tokens look (``tokens.py``),
and answers with Starlette responses. A fresh ``Issuer`` is made for each request: it knows
the issuer URL that request reached and the mode the server is in, and nothing is shared
between threads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749 import grants as oauth_grants
from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_plain_code_challenge, compare_s256_code_challenge
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant, DeviceCredentialDict
from authlib.oauth2.rfc8628.errors import AuthorizationPendingError, ExpiredTokenError, SlowDownError
from authlib.oidc.core import OpenIDCode, OpenIDToken, UserInfo
from starlette.responses import JSONResponse, Response

from terracube.auth.grants import GrantStore
from terracube.auth.keys import ALGORITHM
from terracube.auth.limits import check_device_code_room
from terracube.auth.passwords import matches, new_secret
from terracube.auth.service import AuthService, same_origin
from terracube.auth.user import LOCAL_USER, User
from terracube.jobs.store import utcnow

DEFAULT_CLIENT_ID = "terracube-public"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
# What the default public client may do, as /credentials/oidc lists it (openEO's grant names).
DEFAULT_CLIENT_GRANTS = ["authorization_code+pkce", DEVICE_CODE, DEVICE_CODE + "+pkce", "refresh_token"]
SCOPES = ["openid", "offline_access", "profile"]
CHALLENGE_CHECKS = {"S256": compare_s256_code_challenge, "plain": compare_plain_code_challenge}


@dataclass
class Context:
    """What one request's issuer needs: the service, the issuer URL it answers as, the server's URL, who asks."""

    service: AuthService
    issuer: str
    base_url: str
    origin: str = ""  # the client's address, for the cap on its live device codes

    @property
    def grants(self) -> GrantStore:
        return self.service.grants

    @property
    def settings(self) -> Any:
        return self.service.settings


# --- clients -------------------------------------------------------------------------------
@dataclass
class Client(ClientMixin):
    client_id: str
    grant_types: set[str]
    redirect_allowed: Callable[[str], bool] = lambda uri: False
    secret_digest: str | None = None  # None: a public client, which proves itself with PKCE instead
    owner: User | None = None  # the user a confidential client acts for
    name: str = ""

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        # Scopes we do not know are left out rather than refused: clients ask for "profile email" and the like.
        wanted = scope_to_list(scope) or ["openid"]
        return " ".join(s for s in SCOPES if s in wanted)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return self.redirect_allowed(redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_digest is not None and matches(client_secret, self.secret_digest)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.secret_digest is None:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


def redirect_rule(context: Context) -> Callable[[str], bool]:
    """Where the default client may send codes: loopback (any port, RFC 8252 7.3), this server, configured URLs."""
    configured = set(context.settings.auth_redirect_urls)

    def allowed(uri: str) -> bool:
        parts = urlsplit(uri)
        if parts.fragment or parts.scheme not in ("http", "https"):
            return False
        if parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1"):
            return True
        return uri in configured or same_origin(uri, context.base_url)

    return allowed


# --- requests and the server ---------------------------------------------------------------
class FormRequest(OAuth2Request):
    """A request whose query and form were read already (Starlette reads bodies asynchronously, authlib does not)."""

    def __init__(self, method: str, uri: str, headers: Any, query: dict, form: dict):
        super().__init__(method, uri, headers=headers)
        self._query, self._form = dict(query), dict(form)
        self.payload = BasicOAuth2Payload({**self._query, **self._form})

    @property
    def args(self) -> dict:
        return self._query

    @property
    def form(self) -> dict:
        return self._form


class Issuer(AuthorizationServer):
    def __init__(self, context: Context):
        super().__init__()  # no scopes_supported: unknown scopes are dropped by the client model instead
        self.context = context
        self.register_token_generator("default", self.generate_bearer)
        self.register_grant(AuthorizationCodeGrant, [CodeChallenge(required=True), IdTokenForCode(context)])
        self.register_grant(DeviceGrant, [IdToken(context)])
        self.register_endpoint(DeviceEndpoint)
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)

    # authlib's framework hooks
    def query_client(self, client_id: str) -> Client | None:
        if client_id == DEFAULT_CLIENT_ID:
            return Client(client_id, {"authorization_code", DEVICE_CODE, "refresh_token"}, redirect_rule(self.context))
        service = self.context.service
        if service.no_login_needed():
            return None
        row = service.store.client(client_id)
        owner = service.user_for(row.user_id, local=False) if row is not None else None
        if owner is None:
            return None
        return Client(client_id, {"client_credentials"}, secret_digest=row.secret_hash, owner=owner, name=row.name)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request  # a FormRequest made by the route

    def create_json_request(self, request: Any):
        raise NotImplementedError("no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        headers = dict(headers or [])
        if isinstance(body, dict):
            headers.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers=headers)
        return Response(body or b"", status_code=status, headers=headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    # tokens
    def generate_bearer(self, grant_type: str, client: Client, user: User | None = None, scope: str | None = None,
                        expires_in: int | None = None, include_refresh_token: bool = True) -> dict:
        settings = self.context.settings
        user = user or client.owner  # client credentials: the client acts for its owner
        scope = client.get_allowed_scope(scope)
        lifetime = settings.access_token_lifetime
        access = self.context.service.tokens.access_token(self.context.issuer, user, client.client_id, scope, lifetime)
        token = {"token_type": "Bearer", "access_token": access, "expires_in": lifetime, "scope": scope}
        if include_refresh_token and "offline_access" in scope.split():
            token["refresh_token"] = new_secret()  # stored (as a digest) by save_token, which knows its family
        return token

    def save_token(self, token: dict, request: OAuth2Request) -> None:
        if "refresh_token" not in token:
            return
        previous = request.refresh_token  # a refresh grant: the new token joins the old one's family
        user = request.user or request.client.owner
        refresh = self.context.grants.issue_refresh_token(
            user, request.client.client_id, token.get("scope"), self.context.settings.refresh_token_lifetime,
            parent=previous.row if previous is not None else None,
        )
        token["refresh_token"] = refresh
        token["refresh_expires_in"] = self.context.settings.refresh_token_lifetime


# --- grants --------------------------------------------------------------------------------
class AuthorizationCodeGrant(oauth_grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        self.server.context.grants.add_authorization_code(
            code, request.client.get_client_id(), data.get("redirect_uri"), request.client.get_allowed_scope(data.get("scope")),
            request.user, nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"), auth_time=int(time.time()),
        )

    def query_authorization_code(self, code: str, client: Client) -> "CodeRecord | None":
        row = self.server.context.grants.take_authorization_code(code, client.get_client_id())
        return CodeRecord(row) if row is not None else None

    def delete_authorization_code(self, authorization_code: "CodeRecord") -> None:
        pass  # taken (deleted) when it was read

    def authenticate_user(self, authorization_code: "CodeRecord") -> User | None:
        row = authorization_code.row
        return self.server.context.service.user_for(row.user_id, row.local)


@dataclass
class CodeRecord:
    """An authorization code as authlib, its PKCE extension and its OpenID extension read it."""

    row: Any
    code_challenge: str | None = field(init=False)
    code_challenge_method: str | None = field(init=False)

    def __post_init__(self) -> None:
        self.code_challenge, self.code_challenge_method = self.row.code_challenge, self.row.code_challenge_method

    def get_redirect_uri(self):
        return self.row.redirect_uri

    def get_scope(self):
        return self.row.scope

    def get_nonce(self):
        return self.row.nonce

    def get_auth_time(self):
        return self.row.auth_time

    def get_acr(self):
        return None

    def get_amr(self):
        return None


class DeviceGrant(DeviceCodeGrant):
    """RFC 8628's token request, with PKCE when the device authorization carried a challenge."""

    def query_device_credential(self, device_code: str) -> DeviceCredentialDict | None:
        self.row = self.server.context.grants.device_code(device_code)
        if self.row is None:
            return None
        row = self.row
        return DeviceCredentialDict(client_id=row.client_id, scope=row.scope, user_code=row.user_code, expires_at=row.expires.timestamp())

    def validate_device_credential(self, credential: DeviceCredentialDict) -> User:
        row, grants = self.row, self.server.context.grants
        if row.expires <= utcnow():
            raise ExpiredTokenError()
        if row.status == "denied":
            raise AccessDeniedError()
        if row.status != "approved":
            if grants.polled_too_soon(row):
                raise SlowDownError()
            raise AuthorizationPendingError()
        if row.code_challenge:
            verifier = self.request.payload.data.get("code_verifier")
            check = CHALLENGE_CHECKS.get(row.code_challenge_method or "plain")
            if not verifier or check is None or not check(verifier, row.code_challenge):
                raise InvalidGrantError("The code_verifier does not match the device authorization's code_challenge.")
        user = self.server.context.service.user_for(row.user_id, row.local)
        if user is None or not grants.take_device_code(row):
            raise AccessDeniedError()
        return user


class DeviceEndpoint(DeviceAuthorizationEndpoint):
    """RFC 8628's device authorization request; in laptop mode the local user approves it at once."""

    def __init__(self, server: Issuer):
        super().__init__(server)
        service = server.context.service
        self.approve_now = service.no_login_needed()
        self.EXPIRES_IN = server.context.settings.device_code_lifetime
        self.INTERVAL = 1 if self.approve_now else server.context.settings.device_poll_interval
        self.request: FormRequest | None = None

    def create_endpoint_response(self, request: FormRequest):
        self.request = request
        method = request.payload.data.get("code_challenge_method")
        if request.payload.data.get("code_challenge") and (method or "plain") not in CHALLENGE_CHECKS:
            raise InvalidRequestError("Unsupported 'code_challenge_method': use S256.")
        return super().create_endpoint_response(request)

    def get_verification_uri(self) -> str:
        return self.server.context.issuer + "/device"

    def save_device_credential(self, client_id: str, scope: str | None, data: dict) -> None:
        check_device_code_room(self.server.context.grants, self.server.context.settings, self.server.context.origin)
        payload = self.request.payload.data
        self.server.context.grants.add_device_code(
            data["device_code"], data["user_code"], client_id, scope, self.EXPIRES_IN, self.INTERVAL,
            code_challenge=payload.get("code_challenge"), code_challenge_method=payload.get("code_challenge_method"),
            approved_for=LOCAL_USER if self.approve_now else None, origin=self.server.context.origin,
        )


class RefreshTokenGrant(oauth_grants.RefreshTokenGrant):
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every use gives a new refresh token
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def authenticate_refresh_token(self, refresh_token: str) -> "RefreshRecord | None":
        row = self.server.context.grants.use_refresh_token(refresh_token)
        return RefreshRecord(row) if row is not None else None

    def authenticate_user(self, refresh_token: "RefreshRecord") -> User | None:
        return self.server.context.service.user_for(refresh_token.row.user_id, refresh_token.row.local)

    def revoke_old_credential(self, refresh_token: "RefreshRecord") -> None:
        pass  # marked used when it was taken


@dataclass
class RefreshRecord:
    row: Any

    def check_client(self, client: Client) -> bool:
        return self.row.client_id == client.get_client_id()

    def get_scope(self):
        return self.row.scope

    def get_expires_in(self):
        return int((self.row.expires - self.row.issued).total_seconds())

    def is_expired(self):
        return self.row.expires <= utcnow()

    def is_revoked(self):
        return self.row.revoked


class ClientCredentialsGrant(oauth_grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


# --- ID tokens -----------------------------------------------------------------------------
class _IdTokenGlue:
    """authlib's OpenID extensions, told our keys, issuer and user claims."""

    def __init__(self, context: Context, **options: Any):
        super().__init__(**options)
        self._context = context

    def resolve_client_private_key(self, client: Client):
        return self.issuer_keys().current().key

    def get_client_algorithm(self, client: Client) -> str:
        return ALGORITHM

    def get_encode_header(self, client: Client) -> dict:
        return {"alg": ALGORITHM, "kid": self.issuer_keys().current().kid, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict:
        return {"iss": self._context.issuer, "aud": [client.get_client_id()], "exp": int(time.time()) + self._context.settings.access_token_lifetime}

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        return UserInfo(sub=user.user_id, name=user.name, preferred_username=user.name)

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return False  # codes are single use and short-lived; a nonce replay finds no code to replay

    def issuer_keys(self):
        return self._context.service.keys


class IdToken(_IdTokenGlue, OpenIDToken):
    pass


class IdTokenForCode(_IdTokenGlue, OpenIDCode):
    pass
