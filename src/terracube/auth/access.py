"""Every request is checked, not only the ones whose route remembers to ask.

``authenticate`` is a dependency of the whole app (``FastAPI(dependencies=...)``), so a route
added later is private by default. It lets the public routes through and puts the user of any
other request on ``request.state.user``, or answers with the openEO error (401
``AuthenticationRequired`` without a token, 403 ``TokenInvalid`` for a bad or expired one).
``current_user`` (what user-scoped routes take) reads it from there.

Public are the routes the openEO API leaves open for discovery (capabilities, collections,
processes, formats, service types, UDF runtimes, the credentials routes), ``/health``, the
issuer's own routes, the Browser's page (api/browser.py), the signed result downloads, whose
signature is their credential, and a service's map tiles and WMTS, whose unguessable service id is
theirs. A room that adds a public route adds its path here.
"""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from terracube.auth.service import ISSUER_PATH, auth_service
from terracube.auth.user import User

PUBLIC_ROUTES = frozenset({
    "/", "/.well-known/openeo", "/conformance", "/collections", "/processes", "/file_formats", "/service_types", "/udf_runtimes", "/health",
    # Signed links (api/jobs.py): the signature names the job and expires.
    "/jobs/{job_id}/results/item.json", "/jobs/{job_id}/results/assets/{filename:path}",
    # Map tiles (api/service_tiles.py): the service's unguessable id is their credential.
    "/services/{service_id}/tiles/{z}/{x}/{y}.png", "/services/{service_id}/tiles/{z}/{x}/{y}.jpg",
    # The Browser's page and files (api/browser.py): the page logs in by itself. Plain Starlette routes,
    # which this dependency does not see; listed so that they stay public if they become API routes.
    "/browser", "/browser/config.json", "/browser/{path:path}",
    # WMTS (api/service_wmts.py): capabilities and the same tiles, for QGIS; the same credential.
    "/services/{service_id}/wmts", "/services/{service_id}/wmts/1.0.0/WMTSCapabilities.xml",
    "/services/{service_id}/wmts/tile/1.0.0/{layer}/{style}/{tile_matrix_set}/{tile_matrix}/{tile_row}/{tile_col}",
    "/services/{service_id}/wmts/tile/1.0.0/{layer}/{style}/{time}/{tile_matrix_set}/{tile_matrix}/{tile_row}/{tile_col}",
})
PUBLIC_PREFIXES = ("/collections/", "/credentials/", ISSUER_PATH + "/")


def is_public(route_path: str) -> bool:
    """True for a route anybody may call (``route_path`` is the route's template, e.g. ``/collections/{collection_id}``)."""
    return route_path in PUBLIC_ROUTES or route_path.startswith(PUBLIC_PREFIXES)


def route_path(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or request.url.path


def identify(request: Request) -> User:
    service = auth_service(request.app)
    return service.identify(request.headers.get("Authorization"), service.issuer(request))


async def authenticate(request: Request) -> None:
    """The app-wide dependency: public routes pass, every other request gets its user or its error."""
    if is_public(route_path(request)):
        return
    request.state.user = await run_in_threadpool(identify, request)


async def current_user(request: Request) -> User:
    """The dependency of every user-scoped route: the user ``authenticate`` found."""
    user = getattr(request.state, "user", None)
    if user is None:  # a route on the public list that asks for a user anyway
        user = request.state.user = await run_in_threadpool(identify, request)
    return user
