"""Searching a STAC API: every page, timeouts and retries, property filters, clear errors.

pystac-client follows ``next`` links, so a search never stops silently at the first page; a search
that matches more scenes than a request may read is refused with a message, never cut short. Every
request has a connect and read timeout and a bounded number of retries (``network``); a failure
becomes an openEO error naming the archive, never a hang or a 500.
"""

from __future__ import annotations

import logging
import warnings
from datetime import datetime, timezone
from typing import Any

import pystac
from pystac_client import Client
from pystac_client.conformance import ConformanceClasses
from pystac_client.stac_api_io import StacApiIO

from terracube.data.fetch_guard import FetchGuard, guard_session
from terracube.data.network import ArchiveUnavailable, failure, redact, retries, retry_policy, timeouts
from terracube.data.properties import Condition, cql2_filter, stac_query
from terracube.errors import OpenEOError, PayloadTooLarge
from terracube.settings import Settings

log = logging.getLogger("terracube.stac")

__all__ = ["ArchiveUnavailable", "open_api", "search_api", "stac_io", "get_collection"]

PAGE_SIZE = 100


def _iso(when: datetime | None) -> str:
    if when is None:
        return ".."
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if when.tzinfo else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def stac_io(settings: Settings, headers: dict[str, str] | None = None, guard: FetchGuard | None = None) -> StacApiIO:
    """pystac/pystac-client IO with the server's timeouts and retries (static catalogs over HTTP use it too).

    With ``guard`` (a URL a user gave, not an archive of the collections file), every request and
    every redirect is checked before it is sent (``fetch_guard``).
    """
    io = StacApiIO(headers=headers, timeout=timeouts(settings), max_retries=retry_policy(retries(settings)))
    guard_session(io.session, guard, retry_policy(retries(settings)))
    return io


def open_api(url: str, settings: Settings, headers: dict[str, str] | None = None, guard: FetchGuard | None = None) -> Client:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an API without conformsTo still gets a chance
            return Client.open(url, stac_io=stac_io(settings, headers, guard))
    except OpenEOError:
        raise
    except Exception as error:
        raise failure(error, url, "Opening the STAC API") from None


def get_collection(client: Client, collection_id: str) -> pystac.Collection:
    url = client.self_href or ""
    try:
        collection = client.get_collection(collection_id)
    except Exception as error:
        raise failure(error, url, f"Reading collection '{collection_id}' of the STAC API") from None
    if collection is None:
        raise ArchiveUnavailable(
            f"The STAC API at {redact(url)} has no collection '{collection_id}' (HTTP 404): "
            "check stac_collection in the server's collections file."
        )
    return collection


def search_api(
    client: Client,
    collection: str,
    bbox: tuple[float, float, float, float] | None,
    start: datetime | None,
    end: datetime | None,
    conditions: list[Condition] | None,
    settings: Settings,
) -> list[pystac.Item]:
    """All items of a search, every page; ``end`` is exclusive as openEO's temporal extents are.

    ``conditions`` go to the API as the ``query`` extension or a CQL2-JSON ``filter``, whichever
    it declares (``query`` first: older and more widely implemented); an API that declares neither
    gets none and the caller's item-by-item check does all the filtering.
    """
    datetime_range = None if start is None and end is None else f"{_iso(start)}/{_iso(end)}"
    limit = int(settings.stac_max_items)
    extra: dict[str, Any] = {}
    if conditions:
        if client.conforms_to(ConformanceClasses.QUERY):
            extra["query"] = stac_query(conditions)
        elif client.conforms_to(ConformanceClasses.FILTER):
            extra["filter"] = cql2_filter(conditions)
            extra["filter_lang"] = "cql2-json"
    url = client.self_href or ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search = client.search(
                collections=[collection], bbox=list(bbox) if bbox else None, datetime=datetime_range,
                limit=PAGE_SIZE, max_items=limit + 1, **extra,
            )
            items = list(search.items())
    except Exception as error:
        raise failure(error, url, f"Searching collection '{collection}' of the STAC API") from None
    if len(items) > limit:
        raise PayloadTooLarge(
            f"More than {limit:,} scenes of '{collection}' match this request. Use a smaller spatial or temporal extent."
        )
    # STAC's datetime ranges are inclusive at both ends; openEO's end is exclusive.
    if end is not None:
        items = [item for item in items if item.datetime is None or item.datetime < end]
    log.info("STAC search %s %s %s %s: %d items", collection, bbox, datetime_range, extra.get("query") or extra.get("filter") or "", len(items))
    return items


def queryables(client: Client, collection: str) -> dict | None:
    """The API's queryables of a collection (OGC API Features part 3), or None when it has none."""
    url = f"{(client.self_href or '').rstrip('/')}/collections/{collection}/queryables"
    try:
        return client._stac_io.read_json(url)  # type: ignore[union-attr]
    except Exception as error:
        log.info("no queryables for %s at %s: %s", collection, redact(url), error)
        return None
