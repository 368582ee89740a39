"""A STAC API on 127.0.0.1 shaped like Element 84's Earth Search ``sentinel-2-l2a``.

It serves the sample archive's items as Earth Search does: asset keys ``red``, ``nir``, ``scl``
(not B04, B08, SCL), ``s2:processing_baseline`` and ``earthsearch:boa_offset_applied`` properties,
``/search`` with bbox, datetime, collections, query and ``next``-link paging over small pages.
Asset hrefs point at a static file server with range requests, as S3 would.
"""

from __future__ import annotations

import copy
import socket
import threading

import pystac
import uvicorn
from fastapi import FastAPI, Request

ASSET_KEYS = {"B04": "red", "B08": "nir", "SCL": "scl", "B02": "blue"}
PAGE = 2  # small pages, so a search must follow "next" links to the end


def earth_search_items(catalog_path: str, cog_base_url: str, sample_root: str, baseline_after: str | None = None) -> list[dict]:
    collection = pystac.Catalog.from_file(catalog_path).get_child("SENTINEL2_L2A")
    items = []
    for item in collection.get_items(recursive=True):
        document = item.to_dict(include_self_link=False)
        assets = {}
        for band, key in ASSET_KEYS.items():
            asset = copy.deepcopy(document["assets"][band])
            absolute = item.assets[band].get_absolute_href()
            asset["href"] = cog_base_url + absolute[len(sample_root):]
            assets[key] = asset
        document["assets"] = assets
        document["collection"] = "sentinel-2-l2a"
        document["links"] = []
        late = baseline_after is not None and document["properties"]["datetime"] >= baseline_after
        document["properties"]["s2:processing_baseline"] = "05.00" if late else "03.01"
        document["properties"]["earthsearch:boa_offset_applied"] = False
        items.append(document)
    return sorted(items, key=lambda d: d["properties"]["datetime"])


def _matches(item: dict, bbox, start, end, query) -> bool:
    if bbox:
        west, south, east, north = item["bbox"]
        if west > bbox[2] or east < bbox[0] or south > bbox[3] or north < bbox[1]:
            return False
    when = item["properties"]["datetime"]
    if start and when < start or end and when > end:
        return False
    for name, conditions in (query or {}).items():
        value = item["properties"].get(name)
        for op, limit in conditions.items():
            if value is None or not {"lt": value < limit, "lte": value <= limit, "gt": value > limit, "gte": value >= limit,
                                     "eq": value == limit, "neq": value != limit}[op]:
                return False
    return True


def make_app(items: list[dict], extent_bbox: list[float]) -> FastAPI:
    app = FastAPI()
    app.state.queries = []

    @app.get("/")
    def landing(request: Request):
        base = str(request.base_url).rstrip("/")
        return {"type": "Catalog", "id": "earth-search-fake", "stac_version": "1.0.0", "description": "test double",
                "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
                               "https://api.stacspec.org/v1.0.0/item-search#query", "https://api.stacspec.org/v1.0.0/collections"],
                "links": [{"rel": "self", "href": base + "/"}, {"rel": "root", "href": base + "/"},
                          {"rel": "search", "href": base + "/search", "method": "POST", "type": "application/geo+json"},
                          {"rel": "data", "href": base + "/collections"}]}

    def collection_document(base: str) -> dict:
        return {"type": "Collection", "id": "sentinel-2-l2a", "stac_version": "1.0.0", "description": "Sentinel-2 L2A (fake Earth Search)",
                "license": "proprietary", "extent": {"spatial": {"bbox": [extent_bbox]}, "temporal": {"interval": [["2021-06-01T00:00:00Z", None]]}},
                "links": [{"rel": "self", "href": f"{base}/collections/sentinel-2-l2a"}, {"rel": "root", "href": base + "/"}]}

    @app.get("/collections")
    def collections(request: Request):
        return {"collections": [collection_document(str(request.base_url).rstrip("/"))], "links": []}

    @app.get("/collections/sentinel-2-l2a")
    def collection(request: Request):
        return collection_document(str(request.base_url).rstrip("/"))

    @app.post("/search")
    async def search(request: Request):
        body = await request.json()
        app.state.queries.append(body)
        start = end = None
        if body.get("datetime"):
            start, _, end = body["datetime"].partition("/")
            start = None if start in ("..", "") else start
            end = None if end in ("..", "") else end
        found = [i for i in items if _matches(i, body.get("bbox"), start, end, body.get("query"))]
        offset = int(body.get("token") or 0)
        page = found[offset : offset + PAGE]
        links = []
        if offset + PAGE < len(found):
            links.append({"rel": "next", "href": str(request.base_url).rstrip("/") + "/search", "method": "POST",
                          "body": {**body, "token": str(offset + PAGE)}, "merge": False})
        return {"type": "FeatureCollection", "features": page, "links": links, "numberMatched": len(found)}

    return app


class FakeEarthSearch:
    def __init__(self, items: list[dict], extent_bbox: list[float]):
        self.app = make_app(items, extent_bbox)
        # Bound here and handed to uvicorn: tests in parallel (pytest-xdist) never race for a port.
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> "FakeEarthSearch":
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the fake Earth Search server did not start")
            threading.Event().wait(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()

    @property
    def queries(self) -> list[dict]:
        return self.app.state.queries
