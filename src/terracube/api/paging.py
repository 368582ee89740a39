"""``?limit=&offset=`` paging links (``first``, ``next``, ``prev``), as the openEO API's listings use them."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Query

# The database's integers are 64-bit: a larger limit or offset is refused (400), not overflowed (500).
MAX_INDEX = 2**63 - 1


def paging_links(url: str, limit: int | None, offset: int, total: int) -> list[dict]:
    """No links without a ``limit``: then the listing is complete."""
    if limit is None:
        return []

    def link(rel: str, **query: int) -> dict:
        return {"rel": rel, "href": f"{url}?{urlencode(query)}", "type": "application/json"}

    links = [link("first", limit=limit)]
    if offset + limit < total:
        links.append(link("next", limit=limit, offset=offset + limit))
    if offset > 0:
        links.append(link("prev", limit=limit, offset=max(0, offset - limit)))
    return links


class Page:
    """Dependency: a listing's ``?limit=&offset=`` and the links that page through it."""

    def __init__(self, limit: int | None = Query(None, ge=1, le=MAX_INDEX), offset: int = Query(0, ge=0, le=MAX_INDEX)):
        self.limit = limit
        self.offset = offset

    def links(self, url: str, total: int) -> list[dict]:
        return paging_links(url, self.limit, self.offset, total)
