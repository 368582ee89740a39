"""Keeping web pages out: who may send a request, and in which form.

A server on a laptop has no accounts: whoever reaches it acts as its user, and a UDF runs code
as that user. Every web page the user visits can send requests to ``http://127.0.0.1:8000``, so
in laptop mode (``laptop_mode()`` true) two checks come first, in ``WebGuard``:

- ``Origin``: a browser names the page that sends a request. A request that carries one must come
  from the server's own pages or from an origin in the setting ``allowed_origins`` (for example
  the openEO Web Editor's ``https://editor.openeo.org``); other pages get 403. Programs (the
  openEO Python client, curl, QGIS) send no ``Origin`` and pass.
- ``Host``: it must name ``localhost`` or a loopback address. A page whose name the attacker
  makes resolve to 127.0.0.1 (DNS rebinding) is on its "own" origin, but its requests carry the
  attacker's host name, and get 403.

In both modes ``JsonBodies`` asks for ``Content-Type: application/json`` on every body sent to a
JSON route. Without it a page could send its JSON as ``text/plain``, which browsers send without
asking the server first (no CORS preflight); with it such a request is 415 and runs nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from terracube.api.errors import error_response

# Routes whose body is not JSON: a file upload is the file's bytes (PUT /files/{path}); the
# OpenID Connect issuer's endpoints take HTML forms, as OAuth 2.0 says (POST /oidc/...).
NON_JSON_BODIES: tuple[tuple[str, str], ...] = (("PUT", "/files/"), ("POST", "/oidc/"))
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback_name(host: str) -> bool:
    """``localhost`` (and ``*.localhost``) or a loopback IP address such as 127.0.0.1 or ::1."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split_host(value: str, scheme: str) -> tuple[str, int | None]:
    """``"127.0.0.1:8000"`` -> ``("127.0.0.1", 8000)``; ``[::1]`` and a missing port understood."""
    try:
        parts = urlsplit(f"{scheme}://{value}")
        return (parts.hostname or "", parts.port or _DEFAULT_PORTS.get(scheme))
    except ValueError:
        return "", None


def _normalised(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


class WebGuard:
    """ASGI middleware: in laptop mode, only loopback ``Host`` names and trusted ``Origin`` s pass."""

    def __init__(self, app: ASGIApp, laptop_mode: Callable[[], bool], allowed_origins: Iterable[str] = ()):
        self.app = app
        self.laptop_mode = laptop_mode
        self.allowed = {_normalised(o) for o in allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.laptop_mode():
            problem = self.refusal(Headers(scope=scope), scope.get("scheme", "http"))
            if problem:
                await error_response(403, "PermissionsInsufficient", problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, headers: Headers, scheme: str) -> str | None:
        """Why this request is refused, or None."""
        host = headers.get("host", "")
        name, port = _split_host(host, scheme)
        if not is_loopback_name(name):
            return (
                f"This server runs in laptop mode and answers only requests addressed to localhost or a loopback "
                f"address (such as 127.0.0.1); this one is addressed to {host!r}."
            )
        origin = headers.get("origin")
        if origin is None or self._trusted(origin, scheme, port):
            return None
        return (
            f"This server runs in laptop mode and does not answer web pages from {origin}: only its own pages and "
            "the origins in the setting allowed_origins (environment variable TERRACUBE_ALLOWED_ORIGINS, a JSON "
            'list such as ["https://editor.openeo.org"]) may call it.'
        )

    def _trusted(self, origin: str, scheme: str, port: int | None) -> bool:
        if _normalised(origin) in self.allowed:
            return True
        # The server's own pages: any loopback name on this very port (localhost:8000 and 127.0.0.1:8000).
        parts = urlsplit(origin.strip())
        if parts.scheme != scheme or parts.path not in ("", "/"):
            return False
        own_name, own_port = _split_host(parts.netloc, parts.scheme)
        return is_loopback_name(own_name) and own_port == port


class JsonBodies:
    """ASGI middleware: a body sent to a JSON route must say ``Content-Type: application/json``; else 415."""

    def __init__(self, app: ASGIApp, non_json: Iterable[tuple[str, str]] = NON_JSON_BODIES):
        self.app = app
        self.non_json = tuple(non_json)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = Headers(scope=scope)
            problem = self.refusal(scope["method"], scope["path"], headers)
            if problem:
                await error_response(415, "ContentTypeInvalid", problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, method: str, path: str, headers: Headers) -> str | None:
        has_body = headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in headers
        if not has_body or any(method == m and path.startswith(prefix) for m, prefix in self.non_json):
            return None
        sent = headers.get("content-type", "")
        media_type = sent.split(";", 1)[0].strip().lower()
        if media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json")):
            return None
        return (
            f"{method} {path} takes a JSON body, sent with the header Content-Type: application/json; "
            f"this request says {sent!r}." if sent else
            f"{method} {path} takes a JSON body, sent with the header Content-Type: application/json; this request has none."
        )
