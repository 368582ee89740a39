"""Capabilities and discovery: ``/``, ``/.well-known/openeo``, ``/conformance``, ``/file_formats``, ``/health``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from terracube import __version__
from terracube.formats import file_formats as file_formats_document

API_VERSION = "1.2.0"
router = APIRouter()


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def endpoints(request: Request) -> list[dict]:
    """Every route served, generated from the app itself so the list cannot drift."""
    # The OpenAPI document lists every included route with its methods, however routers are nested.
    paths = request.app.openapi()["paths"]
    return [{"path": path, "methods": sorted(m.upper() for m in operations)} for path, operations in sorted(paths.items())]


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
        "endpoints": endpoints(request),
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
    return {
        "conformsTo": [
            f"https://api.openeo.org/{API_VERSION}",
            "https://api.stacspec.org/v1.0.0/core",
            "https://api.stacspec.org/v1.0.0/collections",
            "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
            "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
        ]
    }


@router.get("/file_formats", tags=["capabilities"])
def file_formats() -> dict:
    return file_formats_document()


@router.get("/health", tags=["capabilities"])
def health() -> dict:
    return {"status": "ok"}
