"""Security headers on every answer, errors and CORS preflights included.

``nosniff`` keeps a browser from reading a JSON or GeoTIFF answer as a page; a JSON answer needs no
script, style or frame, so non-HTML answers forbid them all. HTML answers (the built-in issuer's
login pages, the API documentation pages) set their own policy: theirs is left as it is.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NON_HTML_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
ALWAYS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


class SecurityHeaders:
    """ASGI middleware: the headers above, added where the route did not set its own."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    if name not in headers:
                        headers[name] = value
                html = headers.get("content-type", "").startswith("text/html")
                if not html and "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = NON_HTML_POLICY
            await send(message)

        await self.app(scope, receive, send_with_headers)
