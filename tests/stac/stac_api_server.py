"""A small STAC API on 127.0.0.1, in process, serving real STAC Item JSON.

What it implements is what terracube (through pystac-client) uses of a STAC API, the way
stac-fastapi answers it:

- ``GET /`` (landing page with ``conformsTo``), ``GET /conformance``;
- ``GET /collections``, ``GET /collections/{id}``, ``GET /collections/{id}/items`` (paged),
  ``GET /collections/{id}/items/{item}``, ``GET /collections/{id}/queryables``;
- ``GET /search`` and ``POST /search`` with ``collections``, ``bbox``, ``datetime``, ``ids``,
  ``limit``, the ``query`` extension and a CQL2-JSON ``filter``;
- paging with ``next`` links (a ``token``), pages of ``page_size`` items (2 by default, so a
  search has to follow the links to the end), ``numberMatched``/``numberReturned``.

A test can see every request (``requests``), make the server answer an error status
(``fail_with = 403``), or make it hang before answering (``delay = 5``).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CORE = "https://api.stacspec.org/v1.0.0/core"
CONFORMANCE_QUERY = [
    CORE,
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
    "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
# An API like CDSE's: CQL2 filters, no query extension.
CONFORMANCE_FILTER_ONLY = [uri for uri in CONFORMANCE_QUERY if not uri.endswith("#query")]


def _interval(text: str | None) -> tuple[str | None, str | None]:
    if not text:
        return None, None
    if "/" not in text:
        return text, text
    start, end = text.split("/", 1)
    return (None if start in ("", "..") else start), (None if end in ("", "..") else end)


def _instant(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


_OPERATORS = {
    "eq": lambda a, b: a == b, "=": lambda a, b: a == b, "neq": lambda a, b: a != b, "<>": lambda a, b: a != b,
    "lt": lambda a, b: a < b, "<": lambda a, b: a < b, "lte": lambda a, b: a <= b, "<=": lambda a, b: a <= b,
    "gt": lambda a, b: a > b, ">": lambda a, b: a > b, "gte": lambda a, b: a >= b, ">=": lambda a, b: a >= b,
    "in": lambda a, b: a in b,
}


def _compare(op: str, value, limit) -> bool:
    try:
        return bool(_OPERATORS[op](value, limit))
    except TypeError:
        return False


def _query_matches(properties: dict, query: dict) -> bool:
    """The STAC API query extension: {"eo:cloud_cover": {"lte": 20}}; a missing property never matches."""
    for name, ops in query.items():
        value = properties.get(name)
        if value is None or not all(_compare(op, value, limit) for op, limit in ops.items()):
            return False
    return True


def cql2(expression: dict, item: dict) -> bool:
    """Evaluate the CQL2-JSON subset STAC clients send: and/or/not, comparisons, between, in, isNull."""
    op, args = expression.get("op"), expression.get("args", [])
    if op == "and":
        return all(cql2(arg, item) for arg in args)
    if op == "or":
        return any(cql2(arg, item) for arg in args)
    if op == "not":
        return not cql2(args[0], item)

    def value(arg):
        if isinstance(arg, dict) and "property" in arg:
            name = arg["property"]
            return item.get(name) if name in ("id", "collection") else item["properties"].get(name)
        return arg

    if op == "isNull":
        return value(args[0]) is None
    if op == "between":
        v = value(args[0])
        return v is not None and value(args[1]) <= v <= value(args[2])
    left, right = value(args[0]), value(args[1])
    if left is None:
        return False
    return _compare(op, left, right)


class StacApiServer:
    def __init__(self, collections: list[dict], items: list[dict], page_size: int = 2, conformance: list[str] | None = None):
        self.collections = {c["id"]: c for c in collections}
        self.items = items
        self.page_size = page_size
        self.conformance = list(conformance or CONFORMANCE_QUERY)
        self.requests: list[dict] = []
        self.fail_with: int | None = None
        self.delay = 0.0
        self.queryables: dict[str, dict] = {}
        handler = type("Handler", (_Handler,), {"api": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "StacApiServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def searches(self) -> list[dict]:
        """The parameters of every /search request, GET ones as their parsed equivalent."""
        return [r["parameters"] for r in self.requests if r["path"] == "/search"]

    # --- the API's answers ----------------------------------------------------------------
    def landing(self) -> dict:
        base = self.url
        return {
            "type": "Catalog", "id": "fake-stac-api", "stac_version": "1.0.0", "title": "A STAC API for tests",
            "description": "Serves Earth Search-shaped items on 127.0.0.1", "conformsTo": self.conformance,
            "links": [
                {"rel": "self", "href": f"{base}/", "type": "application/json"},
                {"rel": "root", "href": f"{base}/", "type": "application/json"},
                {"rel": "conformance", "href": f"{base}/conformance", "type": "application/json"},
                {"rel": "data", "href": f"{base}/collections", "type": "application/json"},
                {"rel": "search", "href": f"{base}/search", "type": "application/geo+json", "method": "GET"},
                {"rel": "search", "href": f"{base}/search", "type": "application/geo+json", "method": "POST"},
                *({"rel": "child", "href": f"{base}/collections/{cid}", "type": "application/json"} for cid in self.collections),
            ],
        }

    def collection(self, collection_id: str) -> dict:
        base = self.url
        document = json.loads(json.dumps(self.collections[collection_id]))
        document["links"] = [
            *[link for link in document.get("links", []) if link.get("rel") in ("license", "about")],
            {"rel": "self", "href": f"{base}/collections/{collection_id}", "type": "application/json"},
            {"rel": "root", "href": f"{base}/", "type": "application/json"},
            {"rel": "parent", "href": f"{base}/", "type": "application/json"},
            {"rel": "items", "href": f"{base}/collections/{collection_id}/items", "type": "application/geo+json"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables", "href": f"{base}/collections/{collection_id}/queryables"},
        ]
        return document

    def item(self, item: dict) -> dict:
        base = self.url
        document = json.loads(json.dumps(item))
        cid = document["collection"]
        document["links"] = [
            {"rel": "self", "href": f"{base}/collections/{cid}/items/{document['id']}", "type": "application/geo+json"},
            {"rel": "parent", "href": f"{base}/collections/{cid}", "type": "application/json"},
            {"rel": "collection", "href": f"{base}/collections/{cid}", "type": "application/json"},
            {"rel": "root", "href": f"{base}/", "type": "application/json"},
            *[link for link in document.get("links", []) if link.get("rel") not in ("self", "parent", "collection", "root")],
        ]
        return document

    def matching(self, parameters: dict) -> list[dict]:
        collections = parameters.get("collections")
        ids = parameters.get("ids")
        bbox = parameters.get("bbox")
        start, end = _interval(parameters.get("datetime"))
        found = []
        for item in self.items:
            if collections and item["collection"] not in collections:
                continue
            if ids and item["id"] not in ids:
                continue
            if bbox:
                west, south, east, north = item["bbox"]
                if west > bbox[2] or east < bbox[0] or south > bbox[3] or north < bbox[1]:
                    continue
            when = _instant(item["properties"]["datetime"])
            if start and when < _instant(start) or end and when > _instant(end):
                continue
            if not _query_matches(item["properties"], parameters.get("query") or {}):
                continue
            if parameters.get("filter") and not cql2(parameters["filter"], item):
                continue
            found.append(item)
        return found

    def page(self, parameters: dict, method: str, path: str) -> dict:
        found = self.matching(parameters)
        limit = min(int(parameters.get("limit") or 10), self.page_size)
        offset = int(parameters.get("token") or 0)
        page = found[offset : offset + limit]
        links = [{"rel": "root", "href": f"{self.url}/", "type": "application/json"}]
        if offset + limit < len(found):
            token = str(offset + limit)
            if method == "POST":
                links.append({"rel": "next", "href": f"{self.url}{path}", "method": "POST", "type": "application/geo+json",
                              "body": {**parameters, "token": token}, "merge": False})
            else:
                query = {**{k: v for k, v in parameters.items() if k != "token"}, "token": token}
                links.append({"rel": "next", "href": f"{self.url}{path}?{_encode(query)}", "method": "GET", "type": "application/geo+json"})
        return {"type": "FeatureCollection", "features": [self.item(i) for i in page], "links": links,
                "numberMatched": len(found), "numberReturned": len(page)}


def _encode(parameters: dict) -> str:
    from urllib.parse import urlencode

    flat = {}
    for key, value in parameters.items():
        if isinstance(value, list):
            flat[key] = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            flat[key] = json.dumps(value)
        else:
            flat[key] = value
    return urlencode(flat)


def _from_query_string(query: dict[str, list[str]]) -> dict:
    parameters: dict = {}
    for key, values in query.items():
        value = values[-1]
        if key in ("collections", "ids"):
            parameters[key] = value.split(",")
        elif key == "bbox":
            parameters[key] = [float(v) for v in value.split(",")]
        elif key in ("query", "filter") and value.startswith("{"):
            parameters[key] = json.loads(value)
        else:
            parameters[key] = value
    return parameters


class _Handler(BaseHTTPRequestHandler):
    api: StacApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self._answer("GET", parts.path, _from_query_string(parse_qs(parts.query)))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self._answer("POST", urlsplit(self.path).path, body)

    def _answer(self, method: str, path: str, parameters: dict) -> None:
        api = self.api
        api.requests.append({"method": method, "path": path, "parameters": parameters, "headers": dict(self.headers)})
        if api.delay:
            time.sleep(api.delay)
        if api.fail_with:
            return self._send(api.fail_with, {"code": "Error", "description": f"status {api.fail_with} on purpose"})
        path = path.rstrip("/") or "/"
        segments = [s for s in path.split("/") if s]
        if path == "/":
            return self._send(200, api.landing())
        if path == "/conformance":
            return self._send(200, {"conformsTo": api.conformance})
        if path == "/search" and method in ("GET", "POST"):
            return self._send(200, api.page(parameters, method, "/search"), "application/geo+json")
        if segments[:1] == ["collections"]:
            if len(segments) == 1:
                return self._send(200, {"collections": [api.collection(c) for c in api.collections], "links": []})
            cid = segments[1]
            if cid not in api.collections:
                return self._send(404, {"code": "NotFoundError", "description": f"Collection {cid} does not exist."})
            if len(segments) == 2:
                return self._send(200, api.collection(cid))
            if segments[2] == "queryables":
                return self._send(200, {"$schema": "https://json-schema.org/draft/2019-09/schema", "type": "object",
                                        "properties": api.queryables.get(cid, {})}, "application/schema+json")
            if segments[2] == "items" and len(segments) == 3:
                return self._send(200, api.page({**parameters, "collections": [cid]}, "GET", f"/collections/{cid}/items"),
                                  "application/geo+json")
            if segments[2] == "items" and len(segments) == 4:
                for item in api.items:
                    if item["id"] == segments[3] and item["collection"] == cid:
                        return self._send(200, api.item(item), "application/geo+json")
        return self._send(404, {"code": "NotFoundError", "description": f"{path} not found"})

    def _send(self, status: int, document: dict, media_type: str = "application/json") -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
