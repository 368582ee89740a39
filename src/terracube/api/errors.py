"""Every error leaves as an openEO error object: ``{"id", "code", "message", "links"}``.

``OpenEOError`` carries its own code and status; HTTP errors of the framework (unknown route, wrong
method, a malformed request) get the codes the openEO reference backend uses; anything else is a
bug, logged with its traceback under the error's id and answered with ``Internal`` (500).
"""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from terracube.errors import OpenEOError

log = logging.getLogger("terracube.api")

# errors.json has no code for 405; "MethodNotAllowed" is what the reference backend sends.
HTTP_CODES = {
    400: "BadRequest",
    401: "AuthenticationRequired",
    403: "PermissionsInsufficient",
    404: "NotFound",
    405: "MethodNotAllowed",
    501: "FeatureUnsupported",
}


def error_body(code: str, message: str, error_id: str | None = None) -> dict:
    return {"id": error_id or uuid.uuid4().hex, "code": code, "message": message, "links": []}


def error_response(
    status: int, code: str, message: str, error_id: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, error_id), status_code=status, headers=headers)


async def openeo_error(request: Request, error: OpenEOError) -> JSONResponse:
    if error.status >= 500:
        log.error("%s %s: %s (%s) %s", request.method, request.url.path, error.code, error.id, error.message)
    return error_response(error.status, error.code, error.message, error.id)


async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    status = error.status_code
    code = HTTP_CODES.get(status, "BadRequest" if status < 500 else "Internal")
    message = str(error.detail) if error.detail else code
    if status == 404 and message == "Not Found":
        message = f"Resource not found: {request.method} {request.url.path} is not served here (see GET / for the endpoints)."
    elif status == 405:
        allowed = allowed_methods(request) or (error.headers or {}).get("Allow", "")
        message = f"Method {request.method} is not allowed on {request.url.path}" + (f"; allowed: {allowed}." if allowed else ".")
        return error_response(status, code, message, headers={**(error.headers or {}), **({"Allow": allowed} if allowed else {})})
    return error_response(status, code, message, headers=error.headers)


# The methods a 405's ``Allow`` may name: every one this API serves somewhere.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> str:
    """Every method some route serves on this path: Starlette's own ``Allow`` names only the first route's.

    Each method is tried against the routes, so routers that group routes answer as plain routes do.
    """
    routes = request.app.router.routes

    def served(method: str) -> bool:
        return any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)

    return ", ".join(method for method in METHODS if served(method))


async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" for e in error.errors())
    return error_response(400, "BadRequest", f"The request is not valid: {problems}")


class InternalErrors:
    """ASGI middleware: an unhandled exception becomes an ``Internal`` error object, logged with its traceback.

    It sits inside the CORS middleware (unlike Starlette's own 500 handler), so a browser client can
    read the error too.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            error_id = uuid.uuid4().hex
            log.exception("Internal error %s on %s %s", error_id, scope.get("method"), scope.get("path"))
            if started:  # too late for an error object; the server closes the connection
                raise
            message = f"Server error: {type(error).__name__}: {error}. This is a bug; the server log has details under id {error_id}."
            await error_response(500, "Internal", message, error_id)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OpenEOError, openeo_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_middleware(InternalErrors)
