"""A small, real OpenID Connect issuer for tests, run as its own process on a loopback port.

    python -m tests.auth.oidc_issuer --port 0 --client openeo-test:secret

prints one JSON line ``{"url": ..., "issuer": ...}`` once it listens, then serves, as a Keycloak
realm would, under ``/realms/<realm>``:

- ``/.well-known/openid-configuration``: discovery;
- ``/protocol/jwks``: its public keys (generated at start; rotation adds one with a new kid);
- ``/protocol/token``: the client credentials grant (form fields or HTTP basic), JWT access tokens;
- ``/protocol/userinfo``: the claims behind an opaque token it issued, or behind its own JWT.

and, for tests only, under ``/test``:

- ``POST /test/mint``: a token with chosen claims and header (``{"claims": {...}, "header":
  {...}, "alg": "none"|"HS256"|..., "key": "unpublished", "opaque": true, "profile": {...}}``;
  a claim set to null is left out), so tests can make expired, early, foreign or forged tokens;
- ``POST /test/rotate``: a new signing key (``{"type": "EC"}`` for ES256), old keys still published;
- ``GET /test/stats``: how often each endpoint was called; ``POST /test/delay``: answer slowly.

It uses joserfc for its keys and signatures; the unsigned (``alg: none``) token and the HMAC
forgery with its public key are built by hand, as an attacker would.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

TOKEN_LIFETIME = 300


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    def __init__(self, url: str, realm: str, clients: dict[str, str], audience: str | None):
        self.issuer = f"{url}/realms/{realm}"
        self.prefix = f"/realms/{realm}"
        self.clients = clients
        self.audience = audience
        self.lock = threading.Lock()
        self.keys: list = []
        self.rotate("RSA")
        self.opaque: dict[str, dict] = {}  # opaque token -> its claims
        self.profiles: dict[str, dict] = {}  # sub -> extra userinfo claims
        self.stats = {"discovery": 0, "jwks": 0, "token": 0, "userinfo": 0}
        self.delay = 0.0

    def rotate(self, key_type: str = "RSA") -> str:
        kid = f"key-{len(self.keys) + 1}-{secrets.token_hex(3)}"
        if key_type == "EC":
            key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": "ES256"})
        else:
            key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
        with self.lock:
            self.keys.append(key)
        return kid

    def count(self, endpoint: str) -> None:
        with self.lock:
            self.stats[endpoint] += 1

    @property
    def current(self):
        return self.keys[-1]

    def discovery(self) -> dict:
        base = self.issuer + "/protocol"
        return {
            "issuer": self.issuer,
            "jwks_uri": base + "/jwks",
            "token_endpoint": base + "/token",
            "userinfo_endpoint": base + "/userinfo",
            "authorization_endpoint": base + "/auth",
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "scopes_supported": ["openid", "email", "profile"],
        }

    def jwks(self) -> dict:
        return {"keys": [key.as_dict(private=False) for key in self.keys]}

    def claims(self, sub: str, aud: str | None, **extra) -> dict:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": sub, "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME, "jti": secrets.token_hex(8)}
        if aud:
            claims["aud"] = aud
        return {**claims, **extra}

    def sign(self, claims: dict, header: dict | None = None, alg: str | None = None, key: str = "current") -> str:
        signer = self.current
        if key == "unpublished":  # the right kid, but a key nobody published: the signature cannot verify
            signer = type(signer).generate_key(2048 if signer.key_type == "RSA" else "P-256", parameters={"kid": signer.kid, "alg": signer.alg})
        alg = alg or signer.alg
        header = {"typ": "at+jwt", "alg": alg, "kid": signer.kid, **(header or {})}
        header = {name: value for name, value in header.items() if value is not None}
        if alg == "none":
            return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."
        if alg.startswith("HS"):
            # The forgery of RFC 8725, 2.1: the issuer's *public* key used as an HMAC secret.
            secret = json.dumps(signer.as_dict(private=False), sort_keys=True).encode()
            signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
            digest = hmac.new(secret, signing_input.encode(), getattr(hashlib, "sha" + alg[2:])).digest()
            return f"{signing_input}.{_b64(digest)}"
        return jwt.encode(header, claims, signer, algorithms=[alg])

    def mint(self, body: dict) -> dict:
        sub = (body.get("claims") or {}).get("sub") or "alice"
        claims = self.claims(sub, self.audience)
        for name, value in (body.get("claims") or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        if body.get("profile") is not None:
            with self.lock:
                self.profiles[claims.get("sub", sub)] = body["profile"]
        if body.get("opaque"):
            token = secrets.token_urlsafe(32)
            with self.lock:
                self.opaque[token] = claims
            return {"token": token}
        return {"token": self.sign(claims, body.get("header"), body.get("alg"), body.get("key", "current"))}

    def userinfo(self, token: str) -> dict | None:
        claims = self.opaque.get(token)
        if claims is None:
            try:
                claims = jwt.decode(token, KeySet(list(self.keys)), algorithms=["RS256", "ES256"]).claims
                jwt.JWTClaimsRegistry(exp={"essential": True}).validate(claims)
            except (JoseError, ValueError):
                return None
        if claims.get("exp", 0) < time.time():
            return None
        return {"sub": claims["sub"], **self.profiles.get(claims["sub"], {})}


class Handler(BaseHTTPRequestHandler):
    issuer: Issuer

    def log_message(self, format, *args):  # quiet: tests read only the first stdout line
        pass

    def _send(self, status: int, document: dict, headers: dict | None = None) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _slow(self) -> None:
        if self.issuer.delay:
            time.sleep(self.issuer.delay)

    def do_GET(self) -> None:
        issuer, path = self.issuer, self.path.split("?")[0]
        if path == "/test/stats":
            return self._send(200, issuer.stats)
        self._slow()
        if path == issuer.prefix + "/.well-known/openid-configuration":
            issuer.count("discovery")
            return self._send(200, issuer.discovery())
        if path == issuer.prefix + "/protocol/jwks":
            issuer.count("jwks")
            return self._send(200, issuer.jwks())
        if path == issuer.prefix + "/protocol/userinfo":
            issuer.count("userinfo")
            auth = self.headers.get("Authorization", "")
            claims = issuer.userinfo(auth[7:]) if auth.startswith("Bearer ") else None
            if claims is None:
                return self._send(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return self._send(200, claims)
        self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        issuer, path = self.issuer, self.path.split("?")[0]
        if path == "/test/mint":
            return self._send(200, issuer.mint(json.loads(self._body() or b"{}")))
        if path == "/test/rotate":
            body = json.loads(self._body() or b"{}")
            return self._send(200, {"kid": issuer.rotate(body.get("type", "RSA"))})
        if path == "/test/delay":
            issuer.delay = float(json.loads(self._body())["seconds"])
            return self._send(200, {"delay": issuer.delay})
        self._slow()
        if path == issuer.prefix + "/protocol/token":
            issuer.count("token")
            return self._token(parse_qs(self._body().decode()))
        self._send(404, {"error": "not_found"})

    def _token(self, form: dict) -> None:
        client_id, secret = form.get("client_id", [None])[0], form.get("client_secret", [None])[0]
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if form.get("grant_type", [None])[0] != "client_credentials":
            return self._send(400, {"error": "unsupported_grant_type"})
        if client_id not in self.issuer.clients or not hmac.compare_digest(self.issuer.clients[client_id], secret or ""):
            return self._send(401, {"error": "invalid_client"})
        claims = self.issuer.claims(f"service-account-{client_id}", self.issuer.audience or client_id, azp=client_id)
        token = self.issuer.sign(claims)
        self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--realm", default="terracube-test")
    parser.add_argument("--client", action="append", default=[], help="ID:SECRET, for the client credentials grant")
    parser.add_argument("--audience", default=None, help="the aud of its tokens (default: the client's id)")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    clients = dict(client.split(":", 1) for client in args.client)
    Handler.issuer = Issuer(url, args.realm, clients, args.audience)
    print(json.dumps({"url": url, "issuer": Handler.issuer.issuer}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
