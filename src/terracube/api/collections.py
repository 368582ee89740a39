"""``/collections``: the catalog as STAC collections with the datacube extension."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from terracube.api.capabilities import base_url

router = APIRouter()


def _links(request: Request, collection_id: str, document: dict) -> dict:
    url = base_url(request)
    own = [
        {"rel": "self", "href": f"{url}/collections/{collection_id}", "type": "application/json"},
        {"rel": "root", "href": f"{url}/", "type": "application/json"},
        {"rel": "parent", "href": f"{url}/collections", "type": "application/json"},
        {"rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables", "href": f"{url}/collections/{collection_id}/queryables",
         "type": "application/schema+json"},
    ]
    kept = [link for link in document.get("links", []) if link.get("rel") not in ("self", "root", "parent")]
    document["links"] = own + kept
    return document


@router.get("/collections", tags=["collections"])
async def collections(request: Request) -> dict:
    catalog = request.app.state.catalog
    # Reading a collection may build the sample archive or reach a STAC API: off the event loop.
    documents = [await run_in_threadpool(catalog.stac_collection, cid) for cid in catalog.ids()]
    url = base_url(request)
    return {
        "collections": [_links(request, doc["id"], doc) for doc in documents],
        "links": [{"rel": "self", "href": f"{url}/collections"}, {"rel": "root", "href": f"{url}/"}],
    }


@router.get("/collections/{collection_id}", tags=["collections"])
async def collection(collection_id: str, request: Request) -> dict:
    document = await run_in_threadpool(request.app.state.catalog.stac_collection, collection_id)
    return _links(request, collection_id, document)


@router.get("/collections/{collection_id}/queryables", tags=["collections"])
def queryables(collection_id: str, request: Request) -> dict:
    return request.app.state.catalog.queryables(collection_id)
