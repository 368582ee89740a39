"""``/collections``: the catalog as STAC collections with the datacube extension.

The catalog gives each collection's STAC document; this router only adds the links, absolute and
built from the request's own base URL, so the documents are right behind any proxy.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from terracube.api import items
from terracube.api.deps import base_url
from terracube.api.deps import get_catalog
from terracube.errors import OpenEOError

router = APIRouter(tags=["collections"])
log = logging.getLogger("terracube.api")

OWN_RELS = ("self", "root", "parent", "items")
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
# STAC: a license that is not an SPDX id names its terms in a link the provider must give.
NOT_SPDX = {"proprietary", "various", "other", ""}


def with_links(request: Request, document: dict) -> dict:
    """The document with our self/root/parent/queryables links (and a license link if it lacks one)."""
    url = base_url(request)
    collection_id = document["id"]
    own = [
        {"rel": "self", "href": f"{url}/collections/{collection_id}", "type": "application/json"},
        {"rel": "root", "href": f"{url}/", "type": "application/json"},
        {"rel": "parent", "href": f"{url}/collections", "type": "application/json"},
        {"rel": QUERYABLES_REL, "href": f"{url}/collections/{collection_id}/queryables", "type": "application/schema+json"},
        # STAC API - Features: the collection's scenes, searched by bbox, datetime and cloud cover (api/items.py).
        {"rel": "items", "href": f"{url}/collections/{collection_id}/items", "type": "application/geo+json"},
    ]
    kept = [link for link in document.get("links", []) if link.get("rel") not in (*OWN_RELS, QUERYABLES_REL)]
    license_id = str(document.get("license", ""))
    if license_id not in NOT_SPDX and not any(link.get("rel") == "license" for link in kept):
        kept.append({"rel": "license", "href": f"https://spdx.org/licenses/{license_id}.html", "type": "text/html"})
    return {**document, "links": own + kept}


@router.get("/collections")
async def collections(request: Request, catalog=Depends(get_catalog)) -> dict:
    documents = []
    for collection_id in catalog.ids():
        try:
            # Reading a collection may build the sample archive or reach a STAC API: off the event loop.
            documents.append(await run_in_threadpool(catalog.stac_collection, collection_id))
        except OpenEOError as error:
            # One unreachable archive must not hide the others; GET /collections/{id} reports it.
            log.warning("collection %s left out of the listing: %s %s", collection_id, error.code, error.message)
    url = base_url(request)
    return {
        "collections": [with_links(request, document) for document in documents],
        "links": [
            {"rel": "self", "href": f"{url}/collections", "type": "application/json"},
            {"rel": "root", "href": f"{url}/", "type": "application/json"},
        ],
    }


@router.get("/collections/{collection_id}")
async def collection(collection_id: str, request: Request, catalog=Depends(get_catalog)) -> dict:
    return with_links(request, await run_in_threadpool(catalog.stac_collection, collection_id))


@router.get("/collections/{collection_id}/queryables")
async def queryables(collection_id: str, request: Request, catalog=Depends(get_catalog)) -> JSONResponse:
    document = await run_in_threadpool(catalog.queryables, collection_id)
    # A JSON Schema's $id is a URI (the API's json_schema says format uri): this document's own address.
    document = {**document, "$id": f"{base_url(request)}/collections/{collection_id}/queryables"}
    return JSONResponse(document, media_type="application/schema+json")


# The item search and its files live in api/items.py; they are served under this router's /collections.
router.include_router(items.router)
