"""Synchronous processing (``POST /result``) and validation (``POST /validation``).

Bodies are read as plain JSON, not pydantic models: a process graph may carry any field, and the
graph room (not the HTTP layer) decides what is wrong with it and says so with the spec's code.
"""

from __future__ import annotations

import json
import logging
import math
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from terracube.api.auth import User, current_user
from terracube.api.deps import udp_lookup, user_env
from terracube.api.errors import error_response
from terracube.api.sync_pool import sync_pool
from terracube.auth.quotas import enforced, quotas_for
from terracube.errors import BadRequest, InfrastructureBusy, PayloadTooLarge, ProcessGraphComplexity, ProcessGraphMissing
from terracube.execute import SyncResult, execute_sync, validation_errors
from terracube.processes.env import ProcessEnv
from terracube.usage import Usage

log = logging.getLogger("terracube.api")

router = APIRouter(tags=["processing"])

EMPTY_BODY = 'The request body is empty: send {"process": {"process_graph": {...}}}.'


def _refuse_constant(token: str) -> None:
    # Python's json reads NaN and Infinity; JSON has no such tokens, and no extent or budget means them.
    raise BadRequest(f"The request body is not valid JSON: '{token}' is not a JSON value (JSON numbers are finite).")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 reads as infinity: as much not a JSON value as Infinity
        raise BadRequest(f"The request body is not valid JSON here: the number {text[:40]} is beyond what a 64-bit float holds.")
    return value


def _float_sized_int(text: str) -> int:
    # Every number of a process graph must fit a float (extents, budgets, pixel values); also, Python
    # refuses to read integers of more than 4300 digits at all.
    if len(text.lstrip("-")) > 308:
        raise BadRequest(f"The request body is not valid JSON here: the number {text[:40]}… is beyond what a 64-bit float holds.")
    return int(text)


def json_depth(value: object) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (0 for a scalar), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


async def read_bounded(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 ``PayloadTooLarge`` past ``limit`` bytes, before it is all in memory."""
    declared = request.headers.get("content-length", "")
    too_large = f"The request body is larger than this server's limit of {limit:,} bytes (setting max_json_bytes)."
    if declared.strip().isdigit() and int(declared) > limit:
        raise PayloadTooLarge(too_large)
    chunks, size = [], 0
    async for chunk in request.stream():  # counted as it comes: Content-Length may be absent (chunked)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request) -> object | None:
    """The parsed JSON body, None when there is none; a body that is not JSON is a ``BadRequest``.

    Every JSON route reads its body here, so the size limit (``max_json_bytes``, 413) and the
    nesting limit (``max_json_depth``, 400 ``ProcessGraphComplexity``) hold everywhere.
    """
    settings = request.app.state.settings
    raw = await read_bounded(request, settings.max_json_bytes)
    if not raw.strip():
        return None
    too_deep = f"The request body nests arrays and objects deeper than this server's limit of {settings.max_json_depth} (setting max_json_depth)."
    try:
        body = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_float_sized_int)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadRequest(f"The request body is not valid JSON: {error}.") from None
    except RecursionError:  # the parser's own guard, far past the limit below
        raise ProcessGraphComplexity(too_deep) from None
    if json_depth(body) > settings.max_json_depth:
        raise ProcessGraphComplexity(too_deep)
    return body


async def json_object(request: Request) -> dict:
    """Dependency: the JSON body, which must be an object (``POST /jobs``, ``PATCH /jobs/{id}``)."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


async def process_document(request: Request) -> object:
    """The process the request sends (its JSON body); ``ProcessGraphMissing`` when it sends none."""
    body = await json_body(request)
    if body is None:
        raise ProcessGraphMissing(EMPTY_BODY)
    return body


def content_disposition(filename: str) -> str:
    quoted = quote(filename)
    return f'attachment; filename="{filename}"' if quoted == filename else f"attachment; filename*=utf-8''{quoted}"


def check_quota(request: Request, user: User) -> None:
    """402 ``PaymentRequired`` when the user's CPU hours of this month are used up (accounts mode)."""
    if enforced(request.app):
        quotas_for(request.app).check_processing(user.user_id)


def record_usage(request: Request, user: User, usage: Usage) -> None:
    """One row in the usage table; a failure to record is logged, never the request's failure."""
    log.info("POST /result of %s: %s", user.user_id, usage.sentence())
    try:
        quotas_for(request.app).record(user.user_id, "sync", usage)
    except Exception:
        log.exception("could not record the usage of a synchronous request of %s", user.user_id)


def discard(answer: SyncResult) -> None:
    """The file of a run whose request was given up: nobody will fetch it."""
    if answer.cleanup:
        answer.cleanup()


@router.post("/result")
async def result(request: Request, env: ProcessEnv = Depends(user_env), user: User = Depends(current_user)) -> Response:
    process = await process_document(request)
    await run_in_threadpool(check_quota, request, user)
    # The work runs in the synchronous pool's own threads (api/sync_pool.py): the light routes never
    # wait behind it, and it stops at the time limit, when the client leaves or the server stops.
    pool = sync_pool(request.app)
    try:
        # The per-user cap shares the pool between users; laptop mode's one local user has it all.
        answer = await pool.run(request, user.user_id, execute_sync, process, env, udp_lookup(request, user), abandoned=discard, capped=not user.local)
    except InfrastructureBusy as error:
        return error_response(error.status, error.code, error.message, error.id, headers={"Retry-After": str(pool.retry_after())})
    finally:
        # Measured into env.usage by execute_sync, also when the graph failed: it used the machine.
        if env.usage.wall_seconds > 0:
            await run_in_threadpool(record_usage, request, user, env.usage)
    headers = {"OpenEO-Costs": "0"}
    cleanup = BackgroundTask(answer.cleanup) if answer.cleanup else None
    if answer.path is not None:
        return FileResponse(answer.path, media_type=answer.media_type, filename=answer.filename, headers=headers, background=cleanup)
    if answer.filename:
        headers["Content-Disposition"] = content_disposition(answer.filename)
    return Response(answer.content or b"", media_type=answer.media_type, headers=headers, background=cleanup)


@router.post("/validation")
async def validation(request: Request, env: ProcessEnv = Depends(user_env), user: User = Depends(current_user)) -> dict:
    """200 with the list of errors (empty for a valid process), as the spec asks.

    A request without a body is no validation request at all: the API keeps 4xx for "properties
    in the request body are missing", so it is 400 ProcessGraphMissing, as for ``/result``.
    """
    process = await process_document(request)
    errors = await run_in_threadpool(validation_errors, process, env, udp_lookup(request, user))
    return {"errors": [error.to_dict() for error in errors]}
