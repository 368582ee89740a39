"""A collection's items, a page at a time: the STAC API item search behind ``GET /collections/{id}/items``.

A static catalog (the embedded archive, an operator's folder) is searched in memory, newest scene
first, and paged by offset. A STAC API (Earth Search, CDSE) is asked with pystac-client's own
parameters, and one of our pages follows the archive's ``next`` links only as far as its ``limit``
needs (at most ``MAX_UPSTREAM_PAGES`` requests); the archive's paging parameters (``token``,
``next``...) travel in our opaque ``token``, never its URL, so a token cannot send the server
anywhere but to its own archive. Both hand out plain STAC Item dicts with ``collection`` set to the
openEO id; making their links and local asset paths public is the router's business.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pystac

from terracube.data.catalog import CollectionSource, item_interval
from terracube.data.item_query import MAX_LIMIT, ItemQuery, satisfies
from terracube.data.network import failure
from terracube.data.properties import cql2_filter, stac_query
from terracube.errors import BadRequest, FileNotFound, OpenEOError

log = logging.getLogger("terracube.items")

MAX_TOKEN = 4000  # characters of a paging token
MAX_ITEM_ID = 256
MAX_UPSTREAM_PAGES = 20  # an archive's pages one of ours may take (some archives cap their pages at a few items)
# What our search sets itself: an archive's next link may repeat them, the token never overrides them.
SEARCH_KEYS = {"collections", "bbox", "datetime", "limit", "query", "filter", "filter-lang", "filter_lang", "intersects", "ids",
               "fields", "sortby", "filter-crs", "method", "href", "merge"}
QUICKLOOK_BANDS = ("B04", "B03", "B02")
QUICKLOOK_SIZE = 256


class ItemNotFound(OpenEOError):
    """No such item in the collection. errors.json has no code for it; named after ``CollectionNotFound``."""

    code = "ItemNotFound"
    status = 404

    def __init__(self, collection_id: str, item_id: str):
        super().__init__(f"Item '{_echo(item_id)}' does not exist in collection '{collection_id}'.")


@dataclass(frozen=True)
class ItemPage:
    features: list[dict]
    matched: int | None  # numberMatched, when the source knows it
    next_token: str | None


def search_items(source: CollectionSource, query: ItemQuery, token: str | None = None) -> ItemPage:
    """One page of the collection's items matching ``query``, from where ``token`` left off."""
    state = decode_token(token)
    if source.is_api:
        return _api_page(source, query, state)
    return _static_page(source, query, int(state.get("offset", 0)))


def get_item(source: CollectionSource, item_id: str) -> dict:
    """One item of the collection as a STAC Item dict; ``ItemNotFound`` (404) when it has none by that id."""
    if len(item_id) > MAX_ITEM_ID:
        raise ItemNotFound(source.id, item_id)
    if source.is_api:
        return _api_item(source, item_id)
    return _as_dict(source, _static_item(source, item_id))


def local_asset(source: CollectionSource, item_id: str, key: str) -> tuple[str, str]:
    """(path, media type) of an asset of an item that lies on this server's disk, for serving it read-only.

    The path is the catalog's own, looked up by item id and asset key: nothing the user sends becomes a path.
    """
    item = None if source.is_api or len(item_id) > MAX_ITEM_ID else _static_item(source, item_id)
    asset = item.assets.get(key) if item is not None else None
    if asset is None or not is_local(asset.href):
        raise FileNotFound(f"{_echo(key)} of item {_echo(item_id)}",
                           "This server serves the files of its own archive's items only; the item's assets list their addresses.")
    return _path(asset.href), asset.media_type or "application/octet-stream"


def quicklook_paths(source: CollectionSource, item: dict) -> tuple[str, str, str] | None:
    """The red, green and blue assets' local paths when the item has them on disk (then a quicklook is cheap)."""
    assets = item.get("assets") or {}
    paths = []
    for band in QUICKLOOK_BANDS:
        asset = assets.get(source.asset_key(band)) if band in source.band_names else None
        if not asset or not is_local(asset.get("href", "")):
            return None
        paths.append(_path(asset["href"]))
    return tuple(paths)  # type: ignore[return-value]


def quicklook_values(paths: tuple[str, ...], size: int = QUICKLOOK_SIZE) -> np.ndarray:
    """The bands at most ``size`` pixels on a side (from the COGs' overviews), float32 with NaN for no-data."""
    import rasterio
    from rasterio.enums import Resampling

    planes = []
    with rasterio.Env():
        for path in paths:
            with rasterio.open(path) as src:
                scale = max(src.width, src.height) / size
                shape = (max(1, round(src.height / scale)), max(1, round(src.width / scale))) if scale > 1 else (src.height, src.width)
                values = src.read(1, out_shape=shape, resampling=Resampling.average, masked=True)
                planes.append(values.astype("float32").filled(np.nan))
    height = min(p.shape[0] for p in planes)
    width = min(p.shape[1] for p in planes)
    return np.stack([p[:height, :width] for p in planes])


def is_local(href: str) -> bool:
    """A path on this machine (or file://), which must never leave the server as it is."""
    scheme = urlsplit(href).scheme.lower()
    return scheme in ("", "file") or len(scheme) == 1  # one letter: a Windows drive


def _path(href: str) -> str:
    return urlsplit(href).path if href.lower().startswith("file:") else href


# --- static catalogs ------------------------------------------------------------------------
def _static_page(source: CollectionSource, query: ItemQuery, offset: int) -> ItemPage:
    found = [item for item in source.static_items() if _static_match(item, query)]
    # Newest first, as Earth Search and CDSE answer: the latest clear scene is the first one.
    found.sort(key=lambda item: (_start(item), item.id), reverse=True)
    page = found[offset : offset + query.limit]
    following = offset + query.limit
    token = encode_token({"offset": following}) if following < len(found) else None
    return ItemPage([_as_dict(source, item) for item in page], len(found), token)


def _static_match(item: pystac.Item, query: ItemQuery) -> bool:
    if query.bbox is not None and item.bbox is not None and not _boxes_meet(item.bbox, query.bbox):
        return False
    first, last = item_interval(item)
    if query.start is not None and last is not None and last < query.start:
        return False
    if query.end is not None and first is not None and first > query.end:
        return False
    return satisfies(item.properties, query.conditions)


def _boxes_meet(item_bbox: list[float], bbox: tuple[float, float, float, float]) -> bool:
    west, south, east, north = item_bbox[:2] + item_bbox[-2:] if len(item_bbox) == 6 else item_bbox
    q_west, q_south, q_east, q_north = bbox
    if south > q_north or north < q_south:
        return False
    if q_west <= q_east:
        return not (west > q_east or east < q_west)
    return east >= q_west or west <= q_east  # the box crosses the antimeridian: two boxes


def _start(item: pystac.Item) -> datetime:
    start, _ = item_interval(item)
    return start or datetime.min.replace(tzinfo=timezone.utc)


def _static_item(source: CollectionSource, item_id: str) -> pystac.Item:
    for item in source.static_items():
        if item.id == item_id:
            return item
    raise ItemNotFound(source.id, item_id)


def _as_dict(source: CollectionSource, item: pystac.Item) -> dict:
    document = item.to_dict(include_self_link=False, transform_hrefs=False)
    document["collection"] = source.id
    return document


# --- STAC APIs ------------------------------------------------------------------------------
def _api_search(source: CollectionSource, query: ItemQuery | None, **fields):
    """pystac-client's search for ``query``: its URL, method and parameters, as it would send them."""
    client = source.api_client()
    extra: dict = {}
    conditions = list(query.conditions) if query is not None else []
    if conditions:
        from pystac_client.conformance import ConformanceClasses

        # Whichever the archive declares, query first (as data/stac_api.py); neither: we filter each page.
        if client.conforms_to(ConformanceClasses.QUERY):
            extra["query"] = stac_query(conditions)
        elif client.conforms_to(ConformanceClasses.FILTER):
            extra["filter"], extra["filter_lang"] = cql2_filter(conditions), "cql2-json"
    if query is not None:
        extra.update(bbox=list(query.bbox) if query.bbox else None, datetime=query.datetime_text, limit=query.limit)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search = client.search(collections=[source.stac_collection_id], **extra, **fields)
    except Exception as error:  # an API that cannot search (no item-search conformance, no search link)
        raise failure(error, client.self_href or "", f"Searching the items of '{source.id}' in the STAC API") from None
    return client, search


def _api_page(source: CollectionSource, query: ItemQuery, state: dict) -> ItemPage:
    """Our page from as many of the archive's pages as ``limit`` needs.

    ``state`` is where the last page stopped: the archive's paging parameters of the page it was
    on (``page``) and how many of that page's items it had already given (``skip``), since an
    archive may answer more items than asked (some ignore ``limit``) and a page can end mid-way.
    """
    client, search = _api_search(source, query)
    url, method, parameters = search.url, search.method, search.get_parameters()
    features: list[dict] = []
    matched = None
    current, skip = dict(state.get("page") or {}), int(state.get("skip", 0))
    following: dict | None = None
    try:
        for _ in range(MAX_UPSTREAM_PAGES):
            wanted = query.limit - len(features)
            # The archive's paging parameters, from its own next link: only values, never a URL.
            page = client._stac_io.read_json(url, method=method, parameters={**parameters, **current, "limit": skip + wanted})  # type: ignore[union-attr]
            if not isinstance(page, dict) or not isinstance(page.get("features"), list):
                raise ValueError("the answer is not a FeatureCollection")
            if matched is None:
                matched = page.get("numberMatched", (page.get("context") or {}).get("matched"))
            given = [f for f in page["features"] if isinstance(f, dict)][skip:]
            taken = given[:wanted]
            features += [f for f in taken if satisfies(f.get("properties") or {}, query.conditions)]
            if len(taken) < len(given):  # stopped inside this page: the next of ours starts here
                following = {"page": current, "skip": skip + len(taken)}
                break
            paging = _next_paging(page)
            if paging is None or not given:
                following = None
                break
            current, skip, following = paging, 0, {"page": paging}
            if len(features) >= query.limit:
                break
    except OpenEOError:
        raise
    except Exception as error:
        raise failure(error, url, f"Searching the items of '{source.id}' in the STAC API") from None
    for feature in features:
        feature["collection"] = source.id
    log.info("items of %s: %d from %s", source.id, len(features), url)
    return ItemPage(features, matched if isinstance(matched, int) and not isinstance(matched, bool) else None,
                    encode_token(following) if following else None)


def _next_paging(page: dict) -> dict | None:
    """What changes from one of the archive's pages to the next (its token), read from its ``next`` link."""
    link = next((link for link in page.get("links") or [] if isinstance(link, dict) and link.get("rel") == "next"), None)
    if link is None:
        return None
    if isinstance(link.get("body"), dict):  # POST paging (Earth Search): the body carries the token
        values = link["body"]
    else:
        values = dict(parse_qsl(urlsplit(str(link.get("href", ""))).query))
    paging = {k: v for k, v in values.items() if k not in SEARCH_KEYS and isinstance(v, (str, int, float)) and not isinstance(v, bool)}
    if not paging:
        raise ValueError("its next link carries no paging parameter this server can follow")
    return paging


def _api_item(source: CollectionSource, item_id: str) -> dict:
    client, search = _api_search(source, None, ids=[item_id], max_items=1)
    try:
        found = next(iter(search.items_as_dicts()), None)
    except Exception as error:
        raise failure(error, client.self_href or "", f"Reading item '{_echo(item_id)}' of '{source.id}' from the STAC API") from None
    if not found or found.get("id") != item_id:
        raise ItemNotFound(source.id, item_id)
    found["collection"] = source.id
    return found


# --- paging tokens --------------------------------------------------------------------------
def encode_token(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str | None) -> dict:
    if token in (None, ""):
        return {}
    bad = BadRequest("token is not a paging token of this search: follow the 'next' link of a previous page.")
    if len(token) > MAX_TOKEN:
        raise bad
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise bad from None
    if not isinstance(state, dict):
        raise bad
    offset, skip, page = state.get("offset", 0), state.get("skip", 0), state.get("page", {})
    if not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n for n in (offset, skip)) or skip > 10 * MAX_LIMIT:
        raise bad
    if not isinstance(page, dict):
        raise bad
    if any(k in SEARCH_KEYS or not isinstance(v, (str, int, float)) for k, v in page.items()):
        raise bad
    return state


def _echo(value: str) -> str:
    return value if len(value) <= 100 else value[:99] + "…"
