"""The OpenAPI document at ``/openapi.json``: the openEO API's own, cut to what this server serves.

FastAPI would describe each route from its Python signature: a process graph as "any object", and
a 422 that openEO servers never send. Clients, fuzzers (tests/fuzz) and people need the real
shapes, so the document is built from the openEO API 1.2.0 (``openeo_api/openapi.yaml``, shipped
verbatim with its licence): every (path, method) the app serves that the API describes is the API's
operation as it stands, with its components. The app's own routes (``/health``, the signed result
links, the built-in OpenID Connect issuer under ``/oidc``, ...) keep FastAPI's description, without
the 422 and with the answers they really give. What the API has and the app does not serve is left
out: the list comes from ``app.routes``, so a router added later shows up by itself.

Built on the first request and kept until the app's routes change; reading the API costs ~50 ms.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from functools import lru_cache
from importlib.resources import files
from typing import Any, Iterator, NamedTuple

import yaml
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from terracube import __version__

API_VERSION = "1.2.0"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
ERRORS = {"4XX": {"$ref": "#/components/responses/client_error"}, "5XX": {"$ref": "#/components/responses/server_error"}}
JSON_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/error"}}}
# The issuer answers OAuth 2.0 errors (RFC 6749 5.2); the guards in front of every route answer openEO's.
OAUTH_ERROR = {"application/json": {"schema": {"anyOf": [
    {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}},
    {"$ref": "#/components/schemas/error"}]}}}
HTML = {"text/html": {"schema": {"type": "string"}}}
ANY_FILE = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
OAUTH_FORM = {"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": {"type": "string"}}}}}


class ServedRoute(NamedTuple):
    path: str  # as the API writes it: ``/files/{path}``, not Starlette's ``{path:filepath}``
    method: str  # lower case, as OpenAPI keys operations
    in_schema: bool  # FastAPI's ``include_in_schema``: False for the issuer's routes and a HEAD twin
    route: Any  # the APIRoute (or, in newer FastAPI, the context that carries an included router's prefix)


def _route_items(app: FastAPI) -> Iterator[Any]:
    try:  # FastAPI >= 0.16x keeps included routers whole; this walks them with their prefixes
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI copies every included route, prefixed, into app.routes
        yield from app.routes
        return
    yield from iter_route_contexts(app.routes)


def served_routes(app: FastAPI) -> list[ServedRoute]:
    """Every (path, method) the app's API routes answer, read from the routes themselves.

    Only ``APIRoute``s: FastAPI's own ``/openapi.json``, ``/docs`` and ``/redoc`` are plain routes.
    """
    served = []
    for item in _route_items(app):
        original = getattr(item, "original_route", item)
        if not isinstance(original, APIRoute):
            continue
        for method in sorted(item.methods or ()):
            served.append(ServedRoute(item.path_format, method.lower(), bool(item.include_in_schema), item))
    return served


class _ApiLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML as JSON reads it: the API's examples hold dates (``2017-01-01T09:32:12Z``) that stay strings."""


_ApiLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@lru_cache(maxsize=1)
def openeo_api() -> dict:
    """The openEO API 1.2.0 document, parsed once per process (callers copy what they change)."""
    text = files("terracube.api").joinpath("openeo_api", "openapi.yaml").read_text(encoding="utf-8")
    return yaml.load(text, Loader=_ApiLoader)  # a SafeLoader: no Python objects


def install(app: FastAPI) -> None:
    """Serve the built document as ``app.openapi()``, rebuilt only when the app's routes change."""
    state: dict = {}

    def openapi() -> dict:
        served = tuple(served_routes(app))
        key = tuple((r.path, r.method) for r in served)
        if state.get("key") != key:
            state["document"], state["key"] = build(app, served), key
        return state["document"]

    app.openapi = openapi


def build(app: FastAPI, served: list[ServedRoute] | tuple[ServedRoute, ...]) -> dict:
    api = openeo_api()
    own = [r for r in served if r.method not in api["paths"].get(r.path, {})]
    generated = _fastapi_operations(app, own)
    paths: dict[str, dict] = {}
    for route in served:
        item = paths.setdefault(route.path, {})
        api_item = api["paths"].get(route.path, {})
        if route.method in api_item:
            # Path-level entries (the path parameter, a summary) come along with the first operation.
            item.update({k: copy.deepcopy(v) for k, v in api_item.items() if k not in METHODS and k != "servers"})
            # The API's example host for /.well-known/openeo (https://openeo.example) is not where this server is.
            item[route.method] = {k: copy.deepcopy(v) for k, v in api_item[route.method].items() if k != "servers"}
        else:
            item[route.method] = _own_operation(route, generated["paths"][route.path][route.method])
    components = copy.deepcopy(api["components"])
    for name, schema in generated.get("components", {}).get("schemas", {}).items():
        if name not in ("HTTPValidationError", "ValidationError"):  # only the dropped 422 used them
            components["schemas"].setdefault(name, _as_openapi_30(schema))
    tags = copy.deepcopy(api.get("tags", []))
    known = {tag["name"] for tag in tags}
    for operation in (op for item in paths.values() for key, op in item.items() if key in METHODS):
        for name in operation.get("tags", []):
            if name not in known:
                tags.append({"name": name})
                known.add(name)
    return {
        "openapi": api["openapi"],
        "info": {
            "title": app.title,
            "version": __version__,
            "description": (
                f"{app.description}\n\nThe operations the openEO API {API_VERSION} describes are its own, "
                "as published at https://api.openeo.org (© the openEO Consortium, Apache-2.0); the others "
                "(/health, signed result links, the built-in OpenID Connect issuer under /oidc) are terracube's."
            ),
            "license": {"name": "Apache 2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0.html"},
            "x-openeo-api-version": API_VERSION,
        },
        # No `servers`: the API's is an example host; without one, paths are relative to this server.
        "tags": tags,
        "paths": paths,
        "components": components,
    }


def _fastapi_operations(app: FastAPI, own: list[ServedRoute]) -> dict:
    """FastAPI's description of the app's own routes, hidden ones (the issuer's) included."""
    shown, seen = [], set()
    for route in own:
        if id(route.route) in seen:
            continue
        seen.add(id(route.route))
        shown.append(_in_schema(route.route))  # the document describes every route; capabilities list the openEO ones
    with warnings.catch_warnings():  # a route with two methods gets one operationId twice: _own_operation tells them apart
        warnings.filterwarnings("ignore", "Duplicate Operation ID", UserWarning)
        return get_openapi(title=app.title, version=__version__, routes=shown)


def _in_schema(item: Any) -> Any:
    """A copy of a route (or of newer FastAPI's frozen route context) with ``include_in_schema`` set."""
    if isinstance(item, APIRoute):
        item = copy.copy(item)
        item.include_in_schema = True
        return item
    context = getattr(item, "_route_context", None)
    if context is None:  # a route added to the app itself: the context wraps it as it is
        return dataclasses.replace(item, route=_in_schema(item.route))
    return dataclasses.replace(item, _route_context=dataclasses.replace(context, include_in_schema=True))


def _own_operation(route: ServedRoute, generated: dict) -> dict:
    operation = _as_openapi_30({k: v for k, v in generated.items() if k != "responses"})
    stem, _, suffix = operation.get("operationId", "").rpartition("_")
    if stem and suffix in METHODS:  # FastAPI names both methods of one route after the first
        operation["operationId"] = f"{stem}_{route.method}"
    responses = {code: answer for code, answer in generated["responses"].items() if code != "422"}  # never sent: errors are openEO's 400s
    answers = OWN_ANSWERS.get((route.path, route.method))
    if answers is None:  # an openEO-style route: its success as FastAPI sees it, openEO errors otherwise
        responses = {**_as_openapi_30(responses), **copy.deepcopy(ERRORS)}
    else:
        responses = copy.deepcopy(answers)
    operation["responses"] = responses
    if route.path.startswith("/oidc/"):
        operation["tags"] = ["OpenID Connect issuer"]
        if route.method == "post":
            operation["requestBody"] = copy.deepcopy(OAUTH_FORM)
    return operation


def _as_openapi_30(node: Any) -> Any:
    """FastAPI writes OpenAPI 3.1 schemas; the API's document is 3.0: ``anyOf [X, null]`` is ``X`` with ``nullable``."""
    if isinstance(node, list):
        return [_as_openapi_30(value) for value in node]
    if not isinstance(node, dict):
        return node
    node = {key: _as_openapi_30(value) for key, value in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        node.pop("anyOf")
        node.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
        node["nullable"] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "examples" in node and isinstance(node["examples"], list):
        node["example"] = node.pop("examples")[0]
    return node


def _file(status_codes: tuple[str, ...]) -> dict:
    return {code: {"description": "The file (a byte range of it for 206).", "content": ANY_FILE} for code in status_codes}


RESULTS_DOCUMENT = {"application/geo+json": {"schema": {"type": "object"}}}
# What the app's own routes answer, read from their code (api/jobs.py, auth/oidc.py): success,
# and the failures they can give. Routes not listed answer as FastAPI says, plus openEO errors.
OWN_ANSWERS: dict[tuple[str, str], dict] = {
    ("/health", "get"): {"200": {"description": "The server is up.", "content": {"application/json": {"schema": {
        "type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["ok"]}}}}}}, **ERRORS},
    ("/jobs/{job_id}/results/item.json", "get"): {
        "200": {"description": "The job's results document (STAC Item), as GET /jobs/{job_id}/results answers it.", "content": RESULTS_DOCUMENT},
        "424": {"description": "The job failed: its last error log entry.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/log_entry"}}}},
        **ERRORS},
    ("/jobs/{job_id}/results/assets/{filename}", "get"): {
        **_file(("200", "206")),
        "416": {"description": "The range is outside the file."}, **ERRORS},
    ("/jobs/{job_id}/results/assets/{filename}", "head"): {
        "200": {"description": "The file's headers."}, "206": {"description": "The range's headers."},
        "416": {"description": "The range is outside the file."}, **ERRORS},
    ("/oidc/.well-known/openid-configuration", "get"): {
        "200": {"description": "OpenID Connect discovery.", "content": {"application/json": {"schema": {"type": "object", "required": ["issuer"]}}}},
        "4XX": {"description": "Refused (openEO error).", "content": JSON_ERROR}},
    ("/oidc/jwks", "get"): {
        "200": {"description": "The issuer's public signing keys.", "content": {"application/json": {"schema": {
            "type": "object", "required": ["keys"], "properties": {"keys": {"type": "array", "items": {"type": "object"}}}}}}},
        "4XX": {"description": "Refused (openEO error).", "content": JSON_ERROR}},
    ("/oidc/device_authorization", "post"): {
        "200": {"description": "A device code and its user code (RFC 8628).", "content": {"application/json": {"schema": {"type": "object"}}}},
        "4XX": {"description": "An OAuth 2.0 error (RFC 6749 5.2).", "content": OAUTH_ERROR}},
    ("/oidc/token", "post"): {
        "200": {"description": "Tokens.", "content": {"application/json": {"schema": {"type": "object", "required": ["access_token"]}}}},
        "4XX": {"description": "An OAuth 2.0 error (RFC 6749 5.2).", "content": OAUTH_ERROR}},
    **{("/oidc/userinfo", method): {
        "200": {"description": "The user's claims.", "content": {"application/json": {"schema": {"type": "object", "required": ["sub"]}}}},
        "4XX": {"description": "No valid token (RFC 6750), or refused.", "content": OAUTH_ERROR}} for method in ("get", "post")},
    **{("/oidc/device", method): {
        "200": {"description": "The device login page.", "content": HTML},
        "4XX": {"description": "The page again with the problem, or a refusal (openEO error).", "content": {**HTML, **JSON_ERROR}}}
       for method in ("get", "post")},
    **{("/oidc/authorize", method): {
        "200": {"description": "The login page.", "content": HTML},
        "302": {"description": "Back to the client's redirect URI with a code or an error."},
        "4XX": {"description": "The page with the problem, an OAuth 2.0 error, or a refusal (openEO error).", "content": {**HTML, **JSON_ERROR}}}
       for method in ("get", "post")},
}
