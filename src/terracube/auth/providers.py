"""The operator's other OpenID Connect providers (Keycloak, EGI Check-in, ...), as configured.

An operator lists them in the TOML configuration as ``[[oidc_providers]]`` tables; ``Settings``
holds them as :data:`ExternalProviders`. This module is only the configuration and its
``GET /credentials/oidc`` entries: it imports nothing but pydantic, because ``settings.py``
imports it. Checking the providers' tokens is ``auth/external.py``.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

# The grant types the openEO API names for a default client (GET /credentials/oidc).
GrantType = Literal[
    "implicit",
    "authorization_code",
    "authorization_code+pkce",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:device_code+pkce",
    "refresh_token",
]

# Signatures with a public key only. "none" and the HMAC family (HS256...) are never accepted:
# an HMAC "signature" keyed with the issuer's public key is a classic forgery.
# The built-in issuer's id (``auth/service.py``): no configured provider may take it, or its
# tokens ("Bearer oidc/terracube/...") would be checked against the wrong issuer.
BUILTIN_PROVIDER_ID = "terracube"

ASYMMETRIC_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519",
)


class DefaultClient(BaseModel):
    """A public client of the provider that openEO clients may use without registering their own."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    grant_types: list[GrantType] = Field(min_length=1)
    redirect_urls: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _redirects_for_browser_flows(self) -> DefaultClient:
        # The openEO API: redirect URLs MUST be given for the implicit and authorization code grants.
        browser = {"implicit", "authorization_code", "authorization_code+pkce"}
        if browser.intersection(self.grant_types) and not self.redirect_urls:
            raise ValueError(f"default client {self.id!r}: its grant types need redirect_urls")
        return self


class RequiredClaim(BaseModel):
    """Only users whose token (or userinfo) carries one of these values in this claim may log in.

    ``claim`` may name a nested claim with dots (Keycloak's ``realm_access.roles``); the claim's
    value may be a string or a list of strings (``eduperson_entitlement``, ``groups``).
    """

    model_config = ConfigDict(extra="forbid")

    claim: str = Field(min_length=1)
    any_of: list[str] = Field(min_length=1)


class ExternalProvider(BaseModel):
    """One ``[[oidc_providers]]`` table of the configuration."""

    model_config = ConfigDict(extra="forbid")

    # The openEO API's pattern for a provider id; it becomes part of every bearer token.
    id: str = Field(pattern=r"^[A-Za-z0-9_]{1,20}$")
    issuer: str
    title: str = Field(min_length=1)
    description: str | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid"])
    # Our client id or resource name at this provider: a JWT must name it in `aud` (or `azp`).
    # Unset: the default clients' ids are the audiences; with neither, `aud` is not checked.
    audience: str | None = None
    default_clients: list[DefaultClient] = Field(default_factory=list)
    allowed_algorithms: list[str] = Field(default_factory=lambda: list(ASYMMETRIC_ALGORITHMS))
    required_claim: RequiredClaim | None = None

    @field_validator("id")
    @classmethod
    def _not_the_built_in_id(cls, value: str) -> str:
        if value.lower() == BUILTIN_PROVIDER_ID:
            raise ValueError(
                f"the provider id {value!r} is taken by terracube's built-in issuer "
                "(GET /credentials/oidc lists it first); give this provider another id, e.g. 'keycloak' or 'egi'"
            )
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"issuer {value!r} is not an http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError(f"issuer {value!r} must not have a query or fragment")
        # The keys that sign every token come from here: plain http only on this machine.
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError(f"issuer {value!r}: use https (plain http is allowed for loopback addresses only)")
        # The openEO API: an issuer URL never ends with "/" (discovery appends the well-known path).
        return value.rstrip("/")

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError("scopes must contain 'openid'")
        return value

    @field_validator("allowed_algorithms")
    @classmethod
    def _public_key_algorithms(cls, value: list[str]) -> list[str]:
        unknown = [alg for alg in value if alg not in ASYMMETRIC_ALGORITHMS]
        if unknown:
            raise ValueError(
                f"allowed_algorithms {unknown} are not accepted: only {', '.join(ASYMMETRIC_ALGORITHMS)} "
                "(never 'none' nor HMAC, which would let the public key forge tokens)"
            )
        if not value:
            raise ValueError("allowed_algorithms must name at least one algorithm")
        return value

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def audiences(self) -> frozenset[str]:
        """The values one of which a JWT's ``aud`` (or ``azp``) must hold; empty: not checked."""
        if self.audience:
            return frozenset([self.audience])
        return frozenset(client.id for client in self.default_clients)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _distinct_ids(providers: list[ExternalProvider]) -> list[ExternalProvider]:
    seen: set[str] = set()
    for provider in providers:
        if provider.id in seen:
            raise ValueError(f"two oidc_providers have the id {provider.id!r}; ids must be unique")
        seen.add(provider.id)
    return providers


# The type of ``Settings.oidc_providers``.
ExternalProviders = Annotated[list[ExternalProvider], AfterValidator(_distinct_ids)]


def credentials_oidc_entries(providers: list[ExternalProvider]) -> list[dict]:
    """The providers as ``GET /credentials/oidc`` lists them (the openEO API's provider objects)."""
    entries = []
    for provider in providers:
        entry: dict = {"id": provider.id, "issuer": provider.issuer, "title": provider.title, "scopes": list(provider.scopes)}
        if provider.description:
            entry["description"] = provider.description
        if provider.default_clients:
            entry["default_clients"] = [
                {"id": client.id, "grant_types": list(client.grant_types)}
                | ({"redirect_urls": list(client.redirect_urls)} if client.redirect_urls else {})
                for client in provider.default_clients
            ]
        entries.append(entry)
    return entries
