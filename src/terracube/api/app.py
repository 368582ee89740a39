"""The FastAPI application: ``create_app()`` is what ``terracube serve`` and the tests run.

Creating the app is cheap and touches no data: the catalog is made on first use (``api.deps``).
"""

from __future__ import annotations

import logging

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers
from starlette.responses import Response

from terracube import __version__
from terracube.api import auth, browser, capabilities, collections, files, jobs, process_graphs, processes, processing, service_wmts, services
from terracube.api.errors import install_error_handlers
from terracube.api.guard import JsonBodies, WebGuard
from terracube.api.headers import SecurityHeaders
from terracube.api.openapi import install as install_openapi
from terracube.api.sync_pool import install as install_sync_pool
from terracube.auth import access, announce_mode, is_laptop_mode, oidc
from terracube.settings import Settings, get_settings

# The headers a browser client (the openEO Web Editor, the JS client) must be able to read.
EXPOSED_HEADERS = ["Location", "OpenEO-Identifier", "OpenEO-Costs", "Link", "Content-Disposition", "Content-Range", "Accept-Ranges"]
ROUTERS = (capabilities, auth, processes, collections, processing, process_graphs, files, services, service_wmts)


class OpenEOCORSMiddleware(CORSMiddleware):
    """CORS as the openEO API asks: the request's origin echoed, credentials allowed, preflights answered 204."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 200:
            return response
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
        return Response(status_code=204, headers=headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Every route checks who is asking, unless auth/access.py lists it as public.
    app = FastAPI(
        title=settings.title, version=__version__, description="A self-hostable openEO backend (openEO API 1.2.0).",
        dependencies=[Depends(access.authenticate)],
    )
    app.state.settings = settings
    app.state.catalog = None  # created on first use: see terracube.api.deps.app_catalog
    for module in ROUTERS:
        app.include_router(module.router)
    app.include_router(oidc.router)  # the built-in OpenID Connect issuer, under /oidc
    browser.install(app)  # the Browser's page at /browser/, and browsers sent there from / (api/browser.py)
    announce_mode(settings)
    jobs.install(app)  # the /jobs routes, and the job service started with the app's lifespan
    install_sync_pool(app)  # POST /result's own bounded pool, its work stopped when the app stops
    install_error_handlers(app)
    install_openapi(app)  # /openapi.json: the openEO API's own operations for the routes served (api/openapi.py)
    app.add_middleware(JsonBodies)  # inside CORS, so a browser client can read its 415
    # Every answer (errors included) carries CORS headers: only the web guard sits outside.
    app.add_middleware(
        OpenEOCORSMiddleware,
        allow_origins=["*"],
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],  # mirrors what the browser asks for, Authorization included
        expose_headers=EXPOSED_HEADERS,
    )
    # Outermost: a page that may not call this server gets no CORS answer either. The guard holds
    # in laptop mode only (auth/): with accounts, every request carries its user's bearer token.
    app.add_middleware(WebGuard, laptop_mode=lambda: is_laptop_mode(app), allowed_origins=settings.allowed_origins)
    app.add_middleware(SecurityHeaders)  # outermost of all: every answer, the guard's refusals too
    return app
