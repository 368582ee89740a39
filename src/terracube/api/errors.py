"""Every error leaves as an openEO error object: ``{"id", "code", "message", "links"}``."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from terracube.errors import OpenEOError

log = logging.getLogger("terracube.api")

_HTTP_CODES = {404: "NotFound", 405: "MethodNotAllowed", 401: "AuthenticationRequired", 403: "PermissionsInsufficient"}


def error_response(status: int, code: str, message: str, error_id: str | None = None) -> JSONResponse:
    body = {"id": error_id or uuid.uuid4().hex, "code": code, "message": message, "links": []}
    return JSONResponse(body, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OpenEOError)
    async def openeo_error(request: Request, error: OpenEOError) -> JSONResponse:
        if error.status >= 500:
            log.error("%s %s: %s %s", request.method, request.url.path, error.code, error.message)
        return error_response(error.status, error.code, error.message, error.id)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(error.status_code, "BadRequest" if error.status_code < 500 else "Internal")
        message = str(error.detail) if error.detail else code
        if error.status_code == 404 and message == "Not Found":
            message = f"No such resource: {request.method} {request.url.path}."
        return error_response(error.status_code, code, message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" for e in error.errors())
        return error_response(400, "BadRequest", f"The request is not valid: {problems}")

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        # A 500 is a bug: log it with its traceback; the client still gets an openEO error.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "Internal", f"Server error: {type(error).__name__}: {error}")
