"""Synchronous processing (``POST /result``) and validation (``POST /validation``).

Bodies are read as plain JSON, not pydantic models: a process graph may carry any field, and the
graph room (not the HTTP layer) decides what is wrong with it and says so with the spec's code.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from terracube.api.auth import User, current_user
from terracube.api.deps import udp_lookup, user_env
from terracube.auth.quotas import enforced, quotas_for
from terracube.errors import BadRequest, ProcessGraphMissing
from terracube.execute import execute_sync, validation_errors
from terracube.processes.env import ProcessEnv
from terracube.usage import Usage

log = logging.getLogger("terracube.api")

router = APIRouter(tags=["processing"])

EMPTY_BODY = 'The request body is empty: send {"process": {"process_graph": {...}}}.'


async def json_body(request: Request) -> object | None:
    """The parsed JSON body, None when there is none; a body that is not JSON is a ``BadRequest``."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadRequest(f"The request body is not valid JSON: {error}.") from None


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


@router.post("/result")
async def result(request: Request, env: ProcessEnv = Depends(user_env), user: User = Depends(current_user)) -> Response:
    process = await process_document(request)
    await run_in_threadpool(check_quota, request, user)
    # The work runs in a worker thread: the event loop keeps serving other requests meanwhile.
    try:
        answer = await run_in_threadpool(execute_sync, process, env, udp_lookup(request, user))
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
