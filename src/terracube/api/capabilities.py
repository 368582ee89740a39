"""Capabilities and discovery: ``/``, ``/.well-known/openeo``, ``/conformance``, ``/file_formats``, ``/udf_runtimes``, ``/health``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from terracube import __version__
from terracube.api.deps import base_url
from terracube.api.openapi import served_routes
from terracube.formats import file_formats as file_formats_document
from terracube.processes.udf import udf_runtimes as udf_runtimes_document

API_VERSION = "1.2.0"
router = APIRouter()


HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
# What the server implements, the same at /conformance and in GET /'s conformsTo (the API asks for
# both to be equal; STAC clients such as pystac-client read the landing page's). STAC API - Features
# and OGC API - Features core/GeoJSON: GET /collections/{id}/items (bbox, datetime, limit, paging)
# and /items/{item_id} (api/items.py). Not item-search: there is no cross-collection /search; not the
# filter extension's classes either: the items' filter takes comparisons on eo:cloud_cover only.
CONFORMS_TO = (
    f"https://api.openeo.org/{API_VERSION}",
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
)


def endpoints(app) -> list[dict]:
    """Every openEO route the app serves with its methods, read from the app's routes so it cannot drift.

    Routes hidden from the schema are not openEO endpoints (the built-in issuer under /oidc, a HEAD
    twin); FastAPI's own /docs and /openapi.json are not API routes. The OpenAPI document is built
    from these same routes (api/openapi.py), but this list does not depend on it.
    """
    listed: dict[str, set[str]] = {}
    for route in served_routes(app):
        if route.in_schema and route.method in HTTP_METHODS:
            listed.setdefault(route.path, set()).add(route.method.upper())
    return [{"path": path, "methods": sorted(methods)} for path, methods in sorted(listed.items())]


@router.get("/", tags=["capabilities"])
def capabilities(request: Request) -> dict:
    url = base_url(request)
    settings = request.app.state.settings
    return {
        "api_version": API_VERSION,
        "backend_version": __version__,
        "stac_version": "1.0.0",
        "type": "Catalog",
        "id": "terracube",
        "title": settings.title,
        "description": "terracube: a self-hostable openEO backend. Its default SENTINEL2_L2A collection is a SIMULATED archive of the Ahr valley, June-August 2021.",
        "production": False,
        "conformsTo": list(CONFORMS_TO),
        "endpoints": endpoints(request.app),
        "links": [
            {"rel": "self", "href": f"{url}/", "type": "application/json"},
            {"rel": "conformance", "href": f"{url}/conformance", "type": "application/json"},
            {"rel": "version-history", "href": f"{url}/.well-known/openeo", "type": "application/json"},
            {"rel": "data", "href": f"{url}/collections", "type": "application/json"},
        ],
    }


@router.get("/.well-known/openeo", tags=["capabilities"])
def well_known(request: Request) -> dict:
    return {"versions": [{"url": f"{base_url(request)}/", "api_version": API_VERSION, "production": False}]}


@router.get("/conformance", tags=["capabilities"])
def conformance() -> dict:
    return {"conformsTo": list(CONFORMS_TO)}


@router.get("/file_formats", tags=["capabilities"])
def file_formats() -> dict:
    return file_formats_document()


@router.get("/udf_runtimes", tags=["capabilities"])
def udf_runtimes() -> dict:
    return udf_runtimes_document()


@router.get("/health", tags=["capabilities"])
def health() -> dict:
    return {"status": "ok"}
