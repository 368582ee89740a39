"""The Browser's web page at ``/browser/``, and people sent there from the server's root.

The page is built from ``web/`` at install (``terracube.browser_build``) into package data; here it
is served as static files: ``index.html`` for ``/browser/`` (``/browser`` redirects there, so the
page's relative asset URLs resolve), hashed assets cached for good. The HTML carries its own
Content-Security-Policy: everything from this server only, plus what MapLibre needs (its worker
from a ``blob:`` URL, tiles decoded from ``blob:``/``data:`` images) and the operator's base map,
if one is set (``browser_basemap``). Nothing the page loads leaves the server otherwise.

A person who opens the server's root URL in a browser (``Accept`` names ``text/html``, not JSON)
is redirected to ``/browser/``; API clients (``application/json``, ``*/*``) still get the
capabilities. Without a build, ``/browser/`` answers a page saying how to build it, and the server
logs it once at start. The routes are public (auth/access.py lists them) and plain Starlette routes:
no part of the OpenAPI document or the capabilities, which describe the openEO API.
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from terracube.browser_build import BUILD_HINT, OUT_DIR, built_dir
from terracube.errors import OpenEOError

log = logging.getLogger(__name__)
PREFIX = "/browser"
IMMUTABLE = "public, max-age=31536000, immutable"  # Vite's assets/ have content hashes in their names
NOT_BUILT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


class BrowserFileNotFound(OpenEOError):
    status = 404
    code = "NotFound"


def basemap_origin(url: str | None) -> str | None:
    """The origin (``https://tiles.example.org``) of an XYZ base map URL, or None for none or an unusable one."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or not all(p in url for p in ("{z}", "{x}", "{y}")):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def page_policy(basemap: str | None) -> str:
    """The Browser page's Content-Security-Policy."""
    extra = f" {basemap}" if basemap else ""
    return "; ".join((
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src 'self' data: blob:{extra}",
        f"connect-src 'self'{extra}",  # the API, the map services' tiles (MapLibre fetches them), the base map
        "worker-src 'self' blob:",  # MapLibre starts its worker from a blob: URL
        "child-src blob:",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


def not_built_page() -> HTMLResponse:
    """What ``/browser/`` says when there is nothing to serve."""
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width, initial-scale=1'>"
        "<title>The terracube Browser was not built</title><style>body{font-family:system-ui,sans-serif;max-width:44em;margin:3em auto;"
        "padding:0 1em;line-height:1.5}code{background:#f1f1f1;padding:1px 4px}</style></head><body>"
        "<h1>The Browser was not built</h1>"
        "<p>This terracube was installed without its Browser: building it needs Node.js (18 or newer) with npm, "
        "and <code>pip install</code> did not find them, or the build failed.</p>"
        "<p>Install Node.js and npm, then, in terracube's repository, run <code>terracube build-browser</code> "
        "(or <code>npm --prefix web ci &amp;&amp; npm --prefix web run build</code>) and reload this page. "
        "Installing again (<code>pip install -e .</code>) builds it too.</p>"
        "<p>The openEO API works without it: connect with <code>openeo.connect(...)</code> as before.</p></body></html>"
    )
    return HTMLResponse(body, status_code=503, headers={"Content-Security-Policy": NOT_BUILT_POLICY, "Cache-Control": "no-store"})


def dist(request: Request) -> Path | None:
    """The build to serve; looked at on every request, so a build made while the server runs is served at once."""
    return built_dir(request.app.state.browser_dir)


def browser_without_slash(request: Request) -> Response:
    # The page's asset URLs are relative (./assets/...): they resolve only under /browser/.
    return RedirectResponse(request.scope.get("root_path", "") + PREFIX + "/", status_code=307)


def browser_config(request: Request) -> JSONResponse:
    """The operator's settings the page needs: the base map (``browser_basemap``), if any."""
    return JSONResponse({"basemap": request.app.state.browser_basemap}, headers={"Cache-Control": "no-cache"})


def browser_file(request: Request) -> Response:
    path, root = request.path_params["path"], dist(request)
    if root is None:
        return not_built_page()
    if path in ("", "index.html"):
        return FileResponse(root / "index.html", media_type="text/html; charset=utf-8", headers={
            "Content-Security-Policy": page_policy(basemap_origin(request.app.state.browser_basemap)), "Cache-Control": "no-cache"})
    file = (root / path).resolve()
    if not file.is_relative_to(root) or not file.is_file() or file.name.startswith("."):
        raise BrowserFileNotFound(f"The Browser has no file '{path}'.")
    media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    cache = IMMUTABLE if path.startswith("assets/") else "no-cache"
    return FileResponse(file, media_type=media_type, headers={"Cache-Control": cache})


def wants_page(accept: str) -> bool:
    """A browser opening a page (``text/html`` asked for) rather than an API client (JSON, ``*/*`` or nothing)."""
    html = json = 0.0
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media in ("text/html", "application/xhtml+xml"):
            html = max(html, quality)
        elif media == "application/json":
            json = max(json, quality)
    return html > 0 and json == 0


class RootToBrowser:
    """ASGI middleware: ``GET /`` from a browser is 303 to ``/browser/``; the capabilities answer says it varies by ``Accept``."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if wants_page(Headers(scope=scope).get("accept", "")):
            response = RedirectResponse(scope.get("root_path", "") + PREFIX + "/", status_code=303, headers={"Vary": "Accept"})
            await response(scope, receive, send)
            return

        async def send_varying(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("Vary", "Accept")
            await send(message)

        await self.app(scope, receive, send_varying)


def install(app: FastAPI) -> None:
    """The routes, the root's redirect, and one log line if there is no build to serve."""
    settings = app.state.settings
    app.state.browser_dir = Path(settings.browser_dir).resolve() if settings.browser_dir else OUT_DIR
    app.state.browser_basemap = settings.browser_basemap if basemap_origin(settings.browser_basemap) else None
    if settings.browser_basemap and app.state.browser_basemap is None:
        log.error("TERRACUBE_BROWSER_BASEMAP %r is not an http(s) XYZ URL with {z}, {x} and {y}: the Browser shows no base map",
                  settings.browser_basemap)
    if built_dir(app.state.browser_dir) is None:
        log.warning("The Browser was not built, so /browser/ only says how to build it: %s", BUILD_HINT)
    # Plain Starlette routes, not API routes: a web page, not part of the openEO API, its OpenAPI
    # document (which describes every API route, the fuzz walks it) or its capabilities.
    for path, endpoint in ((PREFIX, browser_without_slash), (PREFIX + "/config.json", browser_config), (PREFIX + "/{path:path}", browser_file)):
        app.router.routes.append(Route(path, endpoint, methods=["GET", "HEAD"], include_in_schema=False))
    app.add_middleware(RootToBrowser)
