"""Tokens of the operator's other OpenID Connect providers, checked here without asking them each time.

A client sends ``Authorization: Bearer oidc/<provider id>/<access token>``; ``AuthService.identify``
(``service.py``) splits that, asks :meth:`ExternalIssuers.identity`, and maps the identity to a
terracube user (created at its first login, ``AuthStore.external_user``). A JWT access token is checked locally: its
signature against the provider's published keys (JWKS, found through the discovery document and
kept for an hour), its ``alg`` against the provider's allow-list, ``iss``, ``aud`` (or ``azp``),
``exp``, ``nbf`` and ``iat`` with a small leeway for clocks. An opaque token (not a JWT) can only
be checked by the provider: its userinfo endpoint answers for it, and the answer is kept a minute
under a hash of the token, so a client's burst of requests costs one call.

A token signed with a key id we do not know makes us fetch the JWKS again (the provider rotated
its keys), at most once a minute per provider, so a stream of made-up key ids cannot make us
hammer the provider. A provider that cannot be reached is ``IssuerUnavailable`` (502, 504 on a
timeout), never ``TokenInvalid``: the token may be fine, and the openEO client would otherwise
send its user to log in again for nothing. Keys and discovery already fetched keep serving when
a refresh fails.

Everything here blocks on the network now and then; call it from a synchronous FastAPI
dependency (run in the thread pool), not from ``async`` code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from cachetools import TTLCache
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import JWKRegistry, Key

from terracube.auth.providers import ExternalProvider, RequiredClaim
from terracube.errors import OpenEOError, PermissionsInsufficient, TokenInvalid

log = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 16_384  # bytes; a bigger "token" is refused before any parsing


class IssuerUnavailable(OpenEOError):
    """The provider could not be asked (down, too slow, or answering nonsense): an upstream failed."""

    code = "IssuerUnavailable"
    status = 502


@dataclass(frozen=True)
class ExternalIdentity:
    """Who a token of an external provider speaks for: the user is ``(provider_id, sub)``."""

    provider_id: str
    sub: str
    name: str | None
    email: str | None
    claims: dict[str, Any] = field(repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.provider_id, self.sub)


@dataclass
class _IssuerState:
    """What we keep of one provider; every refresh happens under its lock."""

    provider: ExternalProvider
    lock: threading.Lock = field(default_factory=threading.Lock)
    discovery: dict | None = None
    discovery_until: float = 0.0
    keys: list[Key] = field(default_factory=list)
    keys_until: float = 0.0
    fetched_keys_once: bool = False
    next_unknown_kid_refresh: float = 0.0
    claims_registry: jwt.JWTClaimsRegistry | None = None


class ExternalIssuers:
    """Checks tokens of the providers named in ``settings.oidc_providers``."""

    def __init__(
        self,
        settings_or_providers: Any,
        *,
        timeout: tuple[float, float] = (3.05, 10.0),
        leeway: int = 30,
        discovery_seconds: float = 24 * 3600,
        jwks_seconds: float = 3600,
        unknown_kid_interval: float = 60,
        retry_after_failure: float = 30,
        userinfo_seconds: float = 60,
        userinfo_cache_size: int = 10_000,
        session: requests.Session | None = None,
    ):
        providers = getattr(settings_or_providers, "oidc_providers", settings_or_providers)
        self._issuers = {provider.id: _IssuerState(provider) for provider in providers}
        self.timeout = timeout
        self.leeway = leeway
        self.discovery_seconds = discovery_seconds
        self.jwks_seconds = jwks_seconds
        self.unknown_kid_interval = unknown_kid_interval
        self.retry_after_failure = retry_after_failure
        self._userinfo: TTLCache = TTLCache(maxsize=userinfo_cache_size, ttl=userinfo_seconds)
        self._userinfo_lock = threading.Lock()
        self._session = session or requests.Session()

    def identity(self, provider_id: str, token: str) -> ExternalIdentity:
        """The user an access token of this provider speaks for; ``TokenInvalid`` if it speaks for nobody."""
        state = self._issuers.get(provider_id)
        if state is None:
            known = ", ".join(repr(known) for known in self._issuers) or "none"
            raise TokenInvalid(f"Unknown OpenID Connect provider {provider_id!r} (this server's other providers: {known}; see GET /credentials/oidc).")
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenInvalid(f"The access token for {state.provider.title} is empty or too long.")
        header = _jwt_header(token)
        if header is None:
            claims = dict(self._userinfo_claims(state, token))  # a copy: the cached answer stays as it came
        else:
            claims = self._verified_claims(state, token, header)
            gate = state.provider.required_claim
            if gate and not _claim_values(claims, gate.claim):
                # Access tokens often leave entitlements and groups to the userinfo endpoint.
                userinfo = self._userinfo_claims(state, token, needed=False) or {"sub": claims["sub"]}
                if userinfo.get("sub") != claims["sub"]:
                    raise TokenInvalid(f"{state.provider.title}'s userinfo answered for another subject than the token's.")
                claims = {**userinfo, **claims}
        if state.provider.required_claim:
            _check_gate(state.provider, state.provider.required_claim, claims)
        return ExternalIdentity(
            provider_id=provider_id,
            sub=claims["sub"],
            name=_text(claims.get("name")) or _text(claims.get("preferred_username")),
            email=_text(claims.get("email")),
            claims=claims,
        )

    # -- JWT access tokens -------------------------------------------------------------------

    def _verified_claims(self, state: _IssuerState, token: str, header: dict) -> dict:
        provider = state.provider
        alg = header.get("alg")
        if alg not in provider.allowed_algorithms:
            raise TokenInvalid(
                f"The access token is signed with {alg!r}; {provider.title}'s tokens must use one of "
                f"{', '.join(provider.allowed_algorithms)}."
            )
        kid = header.get("kid")
        key = self._signing_key(state, kid, alg)
        try:
            claims = jwt.decode(token, key, algorithms=[alg]).claims
        except JoseError as error:
            raise TokenInvalid(f"The access token's signature does not verify with {provider.title}'s key ({error.error}).") from None
        try:
            self._claims_registry(state).validate(claims)
        except ExpiredTokenError:
            raise TokenInvalid(f"The access token from {provider.title} has expired. Please log in again.") from None
        except MissingClaimError as error:
            raise TokenInvalid(f"The access token from {provider.title} lacks the claim {error.claim!r}.") from None
        except InvalidClaimError as error:
            raise TokenInvalid(f"The access token from {provider.title} is not valid here: {_claim_problem(error, provider)}.") from None
        if not claims["sub"]:
            raise TokenInvalid(f"The access token from {provider.title} names no subject (sub).")
        _check_audience(provider, claims)
        return claims

    def _claims_registry(self, state: _IssuerState) -> jwt.JWTClaimsRegistry:
        if state.claims_registry is None:
            # `iss` must be the discovery document's issuer, exactly (OpenID Connect Discovery, 4.3).
            issuer = self._discovery(state)["issuer"]
            state.claims_registry = jwt.JWTClaimsRegistry(
                leeway=self.leeway,
                iss={"essential": True, "value": issuer},
                sub={"essential": True},
                exp={"essential": True},
            )
        return state.claims_registry

    def _signing_key(self, state: _IssuerState, kid: str | None, alg: str) -> Key:
        key = _pick_key(self._keys(state), kid, alg)
        if key is None and kid is not None:
            # Perhaps the provider rotated its keys: ask again, but not more than once a minute.
            with state.lock:
                key = _pick_key(state.keys, kid, alg)  # another thread may have fetched them already
                now = time.monotonic()
                if key is None and now >= state.next_unknown_kid_refresh:
                    state.next_unknown_kid_refresh = now + self.unknown_kid_interval
                    log.info("%s: token signed with unknown key id %r, fetching its JWKS again", state.provider.id, kid)
                    self._refresh_keys(state, keep_stale=True)
                    key = _pick_key(state.keys, kid, alg)
        if key is None:
            which = f"key id {kid!r}" if kid is not None else "no key id"
            raise TokenInvalid(f"The access token names {which}, which {state.provider.title} does not publish for {alg}.")
        return key

    def _keys(self, state: _IssuerState) -> list[Key]:
        if state.fetched_keys_once and time.monotonic() < state.keys_until:
            return state.keys
        with state.lock:
            if not state.fetched_keys_once or time.monotonic() >= state.keys_until:
                self._refresh_keys(state, keep_stale=state.fetched_keys_once)
        return state.keys

    def _refresh_keys(self, state: _IssuerState, *, keep_stale: bool) -> None:
        """Fetch the JWKS (the caller holds the lock); on failure keep the old keys if allowed."""
        try:
            jwks_uri = self._discovery(state, locked=True)["jwks_uri"]
            document = self._get_json(state, jwks_uri, "its keys (JWKS)")
            state.keys = _import_keys(state.provider, document)
            state.keys_until = time.monotonic() + self.jwks_seconds
            state.fetched_keys_once = True
        except IssuerUnavailable as error:
            if not (keep_stale and state.keys):
                raise
            log.warning("%s: keeping the keys fetched before: %s", state.provider.id, error.message)
            state.keys_until = time.monotonic() + self.retry_after_failure

    def _discovery(self, state: _IssuerState, *, locked: bool = False) -> dict:
        if state.discovery is not None and time.monotonic() < state.discovery_until:
            return state.discovery
        if not locked:
            with state.lock:
                return self._discovery(state, locked=True)
        provider = state.provider
        try:
            document = self._get_json(state, provider.discovery_url, "its discovery document")
            if document.get("issuer", "").rstrip("/") != provider.issuer or not isinstance(document.get("jwks_uri"), str):
                raise IssuerUnavailable(
                    f"{provider.title}'s discovery document at {provider.discovery_url} names issuer "
                    f"{document.get('issuer')!r} (configured: {provider.issuer!r}) or has no jwks_uri: "
                    "the server's configuration of this provider is wrong; tell its operator."
                )
            state.discovery = document
            state.discovery_until = time.monotonic() + self.discovery_seconds
        except IssuerUnavailable as error:
            if state.discovery is None:
                raise
            log.warning("%s: keeping the discovery document fetched before: %s", provider.id, error.message)
            state.discovery_until = time.monotonic() + self.retry_after_failure
        return state.discovery

    # -- opaque access tokens: the userinfo endpoint -------------------------------------------

    def _userinfo_claims(self, state: _IssuerState, token: str, *, needed: bool = True) -> dict | None:
        cache_key = hashlib.sha256(f"{state.provider.id}\0{token}".encode()).hexdigest()
        with self._userinfo_lock:
            claims = self._userinfo.get(cache_key)
        if claims is not None:
            return claims
        endpoint = self._discovery(state).get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            if not needed:
                return None
            raise TokenInvalid(
                f"The access token is not a JWT, and {state.provider.title} has no userinfo endpoint to check it with."
            )
        claims = self._get_json(state, endpoint, "its userinfo endpoint", bearer=token)
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise IssuerUnavailable(f"{state.provider.title}'s userinfo endpoint answered without a subject (sub).")
        with self._userinfo_lock:
            self._userinfo[cache_key] = claims
        return claims

    # -- the network -----------------------------------------------------------------------------

    def _get_json(self, state: _IssuerState, url: str, what: str, *, bearer: str | None = None) -> dict:
        title = state.provider.title
        headers = {"Accept": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            response = self._session.get(url, headers=headers, timeout=self.timeout, allow_redirects=False)
        except requests.Timeout:
            raise IssuerUnavailable(
                f"The identity provider {title} ({url}) did not answer within {self.timeout[1]:g} s, so the access token "
                "cannot be checked. Try again later.",
                status=504,
            ) from None
        except requests.RequestException as error:
            raise IssuerUnavailable(
                f"The identity provider {title} could not be reached at {url} ({type(error).__name__}), so the access "
                "token cannot be checked. Try again later; if it persists, tell the server's operator."
            ) from None
        if bearer is not None and response.status_code in (400, 401, 403):
            raise TokenInvalid(f"{title} did not accept the access token (HTTP {response.status_code} from userinfo). Please log in again.")
        if response.status_code != 200:
            raise IssuerUnavailable(f"The identity provider {title} answered HTTP {response.status_code} for {what} ({url}). Try again later.")
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise IssuerUnavailable(f"The identity provider {title} answered something that is not a JSON object for {what} ({url}).")
        return document


def _jwt_header(token: str) -> dict | None:
    """The protected header of a compact JWS, or None when the token is not one (an opaque token)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except ValueError:
        return None
    return header if isinstance(header, dict) and "alg" in header else None


def _import_keys(provider: ExternalProvider, document: dict) -> list[Key]:
    """The signing keys of a JWKS; keys we cannot use (encryption keys, unknown types) are skipped."""
    if not isinstance(document.get("keys"), list):
        raise IssuerUnavailable(f"{provider.title}'s JWKS has no list of keys.")
    keys = []
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            keys.append(JWKRegistry.import_key(entry))
        except (JoseError, ValueError, TypeError) as error:
            log.warning("%s: skipping a key of its JWKS (kid %r): %s", provider.id, entry.get("kid"), error)
    return keys


def _pick_key(keys: list[Key], kid: str | None, alg: str) -> Key | None:
    if kid is None:
        candidates = keys if len(keys) == 1 else []
    else:
        candidates = [key for key in keys if key.kid == kid]
    # A key that says which algorithm it is for serves only that one (RFC 7517, 4.4).
    candidates = [key for key in candidates if key.alg in (None, alg)]
    return candidates[0] if candidates else None


def _check_audience(provider: ExternalProvider, claims: dict) -> None:
    audiences = provider.audiences
    if not audiences:
        return
    aud = claims.get("aud")
    named = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
    if named & audiences or claims.get("azp") in audiences:
        return
    raise TokenInvalid(
        f"The access token from {provider.title} was issued for {sorted(map(str, named)) or 'no audience'}, "
        f"not for this server ({', '.join(sorted(audiences))})."
    )


def _claim_problem(error: InvalidClaimError, provider: ExternalProvider) -> str:
    if error.claim == "nbf":
        return "it is not valid yet (nbf)"
    if error.claim == "iat":
        return "it was issued in the future (iat)"
    if error.claim == "iss":
        return f"it was issued by another issuer than {provider.issuer} (iss)"
    return f"the claim {error.claim!r} is malformed"


def _claim_values(claims: dict, path: str) -> list[str]:
    value: Any = claims
    for name in path.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _check_gate(provider: ExternalProvider, gate: RequiredClaim, claims: dict) -> None:
    if set(_claim_values(claims, gate.claim)) & set(gate.any_of):
        return
    raise PermissionsInsufficient(
        f"Logging in with {provider.title} needs one of {', '.join(gate.any_of)} in the claim "
        f"'{gate.claim}', and this account has none of them. Ask the server's operator for access."
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
