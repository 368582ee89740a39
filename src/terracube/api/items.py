"""``/collections/{id}/items``: STAC API - Features (OGC API - Features) over every collection.

A client lists a collection's scenes by place, time and cloud cover, a page at a time, as from any
STAC API: pystac-client, QGIS, the Browser. The search itself is ``data/items.py``; this router
makes the answer public: links built from the request's own base URL, and the files of the
embedded archive (paths on this server's disk) served read-only by their own routes here, so no
local path ever leaves the server. Items of a STAC API keep their archive's asset URLs.

A quicklook (PNG, true colour from B04/B03/B02 through ``formats/image.py``, 256 pixels on its
long side) is drawn from the overviews of local items on first request and kept in memory.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Optional
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from terracube.api.deps import base_url, get_catalog
from terracube.data.item_query import DEFAULT_LIMIT, MAX_LIMIT, SUPPORTED, item_query
from terracube.data.items import get_item, is_local, local_asset, quicklook_paths, quicklook_values, search_items
from terracube.errors import BadRequest, FileNotFound

router = APIRouter()  # tagged "collections" by the collections router that includes it

GEOJSON = "application/geo+json"
OWN_LINKS = ("self", "root", "parent", "collection", "items", "next", "prev")
QUICKLOOK = "thumbnail"
SEARCH_PARAMETERS = {"bbox", "datetime", "limit", "filter", "filter-lang", "filter-crs", "query", "token", "collections"}


class GeoJSONResponse(JSONResponse):
    media_type = GEOJSON


_LINK = {"type": "object", "required": ["href", "rel"], "properties": {"href": {"type": "string"}, "rel": {"type": "string"}}}
ITEM_SCHEMA = {
    "type": "object", "required": ["type", "id", "geometry", "properties", "links", "assets"],
    "properties": {
        "type": {"type": "string", "enum": ["Feature"]}, "stac_version": {"type": "string"}, "id": {"type": "string"},
        "geometry": {"type": "object", "nullable": True}, "bbox": {"type": "array", "items": {"type": "number"}},
        "properties": {"type": "object", "required": ["datetime"], "properties": {"datetime": {"type": "string", "nullable": True}}},
        "links": {"type": "array", "items": _LINK}, "assets": {"type": "object"}, "collection": {"type": "string"},
    },
}
FEATURE_COLLECTION_SCHEMA = {
    "type": "object", "required": ["type", "features", "links", "numberReturned", "timeStamp"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]}, "features": {"type": "array", "items": ITEM_SCHEMA},
        "links": {"type": "array", "items": _LINK}, "numberReturned": {"type": "integer", "minimum": 0},
        "numberMatched": {"type": "integer", "minimum": 0}, "timeStamp": {"type": "string", "format": "date-time"},
    },
}
FILE_ANSWERS = {
    200: {"description": "The file (read-only), with Range requests answered 206.", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
    206: {"description": "A byte range of the file.", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
    416: {"description": "The range is outside the file."},
}


@router.get(
    "/collections/{collection_id}/items", response_class=GeoJSONResponse,
    summary="Search a collection's items (STAC API - Features)",
    responses={200: {"description": "A page of the collection's STAC Items, newest first for the embedded archive.",
                     "content": {GEOJSON: {"schema": FEATURE_COLLECTION_SCHEMA}}}},
)
async def items(
    collection_id: str,
    request: Request,
    bbox: Optional[str] = Query(None, description="west,south,east,north in WGS84 degrees"),
    datetime_: Optional[str] = Query(None, alias="datetime", description="An RFC 3339 instant or interval, open ends as '..'"),
    limit: Optional[int] = Query(None, ge=1, description=f"Items on a page: {DEFAULT_LIMIT} by default, at most {MAX_LIMIT} (more answers {MAX_LIMIT})"),
    filter_: Optional[str] = Query(None, alias="filter", description=SUPPORTED),
    filter_lang: Optional[str] = Query(None, alias="filter-lang", description="cql2-text (the default) or cql2-json"),
    filter_crs: Optional[str] = Query(None, alias="filter-crs", include_in_schema=False),
    query: Optional[str] = Query(None, description='The STAC API query extension: {"eo:cloud_cover": {"lte": 20}}'),
    token: Optional[str] = Query(None, description="Where the previous page left off: follow the 'next' link"),
    catalog=Depends(get_catalog),
) -> Response:
    source = catalog.get(collection_id)
    check_parameters(request, collection_id)
    search = item_query(bbox, datetime_, limit, filter_, filter_lang, query, filter_crs)
    # A static catalog may be built or read on first use, a STAC API answers over the network: off the event loop.
    page = await run_in_threadpool(search_items, source, search, token)
    url = base_url(request)
    here = f"{url}/collections/{quote(collection_id, safe='')}"
    features = [publish(feature, url, collection_id, source) for feature in page.features]
    query_string = request.url.query
    links = [
        {"rel": "self", "href": f"{here}/items" + (f"?{query_string}" if query_string else ""), "type": GEOJSON},
        {"rel": "root", "href": f"{url}/", "type": "application/json"},
        {"rel": "parent", "href": here, "type": "application/json"},
        {"rel": "collection", "href": here, "type": "application/json"},
    ]
    if page.next_token:
        kept = [(key, value) for key, value in request.query_params.multi_items() if key != "token"]
        links.append({"rel": "next", "href": f"{here}/items?{urlencode([*kept, ('token', page.next_token)])}", "type": GEOJSON, "method": "GET"})
    document = {"type": "FeatureCollection", "features": features, "links": links, "numberReturned": len(features)}
    if page.matched is not None:
        document["numberMatched"] = page.matched
    document["timeStamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return GeoJSONResponse(document)


@router.get(
    "/collections/{collection_id}/items/{item_id}", response_class=GeoJSONResponse, summary="One item of a collection",
    responses={200: {"description": "The STAC Item.", "content": {GEOJSON: {"schema": ITEM_SCHEMA}}}},
)
async def item(collection_id: str, item_id: str, request: Request, catalog=Depends(get_catalog)) -> Response:
    source = catalog.get(collection_id)
    feature = await run_in_threadpool(get_item, source, item_id)
    return GeoJSONResponse(publish(feature, base_url(request), collection_id, source))


def check_parameters(request: Request, collection_id: str) -> None:
    """OGC API Features: a parameter this search does not know is a 400, not silently ignored (a sort
    or an id list left out would answer something else than asked). ``collections`` naming this
    collection is fine: pystac-client sends it."""
    unknown = sorted(set(request.query_params) - SEARCH_PARAMETERS)
    if unknown:
        raise BadRequest(f"Unsupported parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
                         f"this search takes {', '.join(sorted(SEARCH_PARAMETERS - {'collections', 'filter-crs'}))}.")
    named = {name for value in request.query_params.getlist("collections") for name in value.split(",") if name}
    if named - {collection_id}:
        raise BadRequest(f"collections may only name this collection ('{collection_id}') here.")


def publish(feature: dict, url: str, collection_id: str, source) -> dict:
    """The item as a client sees it: our links, and local asset paths replaced by this server's URLs for them."""
    collection = f"{url}/collections/{quote(collection_id, safe='')}"
    here = f"{collection}/items/{quote(feature['id'], safe='')}"
    kept = [link for link in feature.get("links") or []
            if isinstance(link, dict) and link.get("rel") not in OWN_LINKS and not is_local(str(link.get("href", "")))]
    feature["links"] = [
        {"rel": "self", "href": here, "type": GEOJSON},
        {"rel": "parent", "href": collection, "type": "application/json"},
        {"rel": "collection", "href": collection, "type": "application/json"},
        {"rel": "root", "href": f"{url}/", "type": "application/json"},
        *kept,
    ]
    assets = feature.get("assets") or {}
    has_quicklook = QUICKLOOK in assets or any("thumbnail" in (a.get("roles") or []) for a in assets.values())
    drawable = not has_quicklook and quicklook_paths(source, feature) is not None
    for key, asset in assets.items():
        if is_local(str(asset.get("href", ""))):
            asset["href"] = f"{here}/assets/{quote(key, safe='')}"
        alternates = asset.get("alternate")
        if isinstance(alternates, dict):  # another address of the file (s3://...): kept only when public
            asset["alternate"] = {k: v for k, v in alternates.items() if not (isinstance(v, dict) and is_local(str(v.get("href", ""))))}
    if drawable:
        assets[QUICKLOOK] = {"href": f"{here}/{QUICKLOOK}", "type": "image/png", "title": "True colour quicklook (B04, B03, B02)",
                             "roles": ["thumbnail", "overview"]}
    feature["assets"] = assets
    return feature


@router.get("/collections/{collection_id}/items/{item_id}/assets/{asset_key}", response_class=Response,
            summary="A file of an item of this server's own archive", responses=FILE_ANSWERS)
@router.head("/collections/{collection_id}/items/{item_id}/assets/{asset_key}", response_class=Response, include_in_schema=False,
             responses={200: {"description": "The file's headers."}, 206: {"description": "The range's headers."}, 416: FILE_ANSWERS[416]})
async def asset(collection_id: str, item_id: str, asset_key: str, catalog=Depends(get_catalog)) -> Response:
    source = catalog.get(collection_id)
    path, media_type = await run_in_threadpool(local_asset, source, item_id, asset_key)
    # Starlette's FileResponse answers Range requests (206), which GDAL's /vsicurl/ and COG viewers use, and HEAD.
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"})


@router.get(f"/collections/{{collection_id}}/items/{{item_id}}/{QUICKLOOK}", response_class=Response,
            summary="A true-colour quicklook of an item of this server's own archive",
            responses={200: {"description": "A PNG, 256 pixels on its long side.", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}})
async def thumbnail(collection_id: str, item_id: str, catalog=Depends(get_catalog)) -> Response:
    source = catalog.get(collection_id)
    feature = await run_in_threadpool(get_item, source, item_id)
    paths = quicklook_paths(source, feature)
    if paths is None:
        raise FileNotFound(f"{QUICKLOOK} of item {item_id}", "Quicklooks are drawn for the items of this server's own archive only.")
    png = await run_in_threadpool(quicklook_png, paths)
    return Response(png, media_type="image/png", headers={"Cache-Control": "public, max-age=3600"})


@lru_cache(maxsize=128)
def quicklook_png(paths: tuple[str, ...]) -> bytes:
    """Drawn once per item (a few tens of kB each), as CDSE's Browser stretches true colour."""
    from terracube.formats.image import Style, encode, to_rgba

    return encode(to_rgba(quicklook_values(paths), Style()), "png")
