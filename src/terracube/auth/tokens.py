"""Access tokens: JWTs the issuer signs, and the one check every request's token goes through.

A token from ``GET /credentials/basic`` and one from the OpenID Connect token endpoint are the
same kind of JWT (RFC 9068's ``at+jwt``), signed with the same keys, so one validator serves both
logins and the token never encodes a user name or password. The checks: the header's algorithm
is on the allow-list and its ``kid`` names an accepted key, the signature, then ``iss``, ``aud``,
``exp``, ``nbf`` and ``iat`` (with a little leeway for clocks). An ID token (``typ`` JWT, ``aud``
the client) is refused as an access token.
"""

from __future__ import annotations

import secrets
import time

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from terracube.auth.keys import ALGORITHM, KeyRing
from terracube.auth.user import User

ACCESS_TOKEN_TYPE = "at+jwt"
# The resource the tokens are for: this openEO API (never a client id, which an ID token carries).
AUDIENCE = "terracube-api"
LEEWAY = 30  # seconds of clock difference tolerated
ALLOWED_ALGORITHMS = (ALGORITHM,)
MAX_TOKEN_LENGTH = 8192


class TokenRejected(Exception):
    """The token is not one of ours, or not any more; the message says why (for the log, not the user)."""


class Tokens:
    def __init__(self, keys: KeyRing):
        self.keys = keys

    def access_token(self, issuer: str, user: User, client_id: str, scope: str | None, lifetime: int) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer, "sub": user.user_id, "aud": AUDIENCE, "client_id": client_id,
            "iat": now, "nbf": now, "exp": now + lifetime, "jti": secrets.token_hex(16),
        }
        if scope:
            claims["scope"] = scope
        if user.local:
            # Laptop mode's tokens: worthless once the server has accounts (access.py refuses them).
            claims["terracube_local"] = True
        signing = self.keys.current()
        header = {"alg": ALGORITHM, "kid": signing.kid, "typ": ACCESS_TOKEN_TYPE}
        return jwt.encode(header, claims, signing.key, algorithms=list(ALLOWED_ALGORITHMS))

    def validate(self, token: str, issuer: str) -> dict:
        """The claims of a valid access token of this issuer, or ``TokenRejected``."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenRejected("empty or oversized token")

        def key_for(guest):
            # The header names the key; an unknown kid makes the ring look for new keys first.
            return self.keys.key_set(guest.headers().get("kid"))

        try:
            # ``algorithms`` is the allow-list: "none", HS256 with the public key and the like never verify.
            decoded = jwt.decode(token, key_for, algorithms=list(ALLOWED_ALGORITHMS))
        except (JoseError, ValueError, TypeError) as error:
            raise TokenRejected(f"{type(error).__name__}: {error}") from None
        if decoded.header.get("typ") != ACCESS_TOKEN_TYPE:
            raise TokenRejected("not an access token")
        registry = JWTClaimsRegistry(
            leeway=LEEWAY,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": AUDIENCE},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(decoded.claims)
        except JoseError as error:
            raise TokenRejected(f"{type(error).__name__}: {error}") from None
        return decoded.claims
