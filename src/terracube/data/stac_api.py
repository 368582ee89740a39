"""Searching a STAC API: paging to the end, timeouts, retries, clear errors.

pystac-client follows ``next`` links, so a search never stops silently at the first page; a
network failure becomes an openEO error naming the archive, never a hang or a 500.
"""

from __future__ import annotations

import logging
from datetime import datetime

import pystac
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO

from terracube.errors import OpenEOError

log = logging.getLogger("terracube.stac")

ArchiveUnavailable = type("ArchiveUnavailable", (OpenEOError,), {"code": "ArchiveUnavailable", "status": 502})


def _iso(when: datetime | None) -> str:
    return ".." if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def open_api(url: str, timeout: float, retries: int) -> Client:
    io = StacApiIO(timeout=timeout, max_retries=retries)
    try:
        return Client.open(url, stac_io=io)
    except Exception as error:  # requests' and pystac's errors alike: the archive did not answer
        raise ArchiveUnavailable(f"The STAC API at {url} could not be reached: {error}") from None


def search_api(
    client: Client,
    collection: str,
    bbox: tuple[float, float, float, float] | None,
    start: datetime | None,
    end: datetime | None,
    query: dict | None = None,
) -> list[pystac.Item]:
    """All items of a search, every page; ``end`` is exclusive as openEO's temporal extents are."""
    datetime_range = None if start is None and end is None else f"{_iso(start)}/{_iso(end)}"
    try:
        search = client.search(collections=[collection], bbox=bbox, datetime=datetime_range, query=query, limit=100)
        items = list(search.items())
    except APIError as error:
        raise ArchiveUnavailable(f"The STAC API at {client.self_href} refused the search: {error}") from None
    except Exception as error:
        raise ArchiveUnavailable(f"Searching the STAC API at {client.self_href} failed: {error}") from None
    # STAC's datetime ranges are inclusive at both ends; openEO's end is exclusive.
    if end is not None:
        items = [item for item in items if item.datetime is None or item.datetime < end]
    log.info("STAC search %s %s %s: %d items", collection, bbox, datetime_range, len(items))
    return items
