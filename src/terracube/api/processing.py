"""Synchronous processing (``POST /result``) and validation (``POST /validation``)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from terracube.errors import BadRequest, ProcessGraphMissing
from terracube.graph.validate import collect_errors
from terracube.jobs.execute import execute_sync
from terracube.processes.env import ProcessEnv

router = APIRouter()


async def json_body(request: Request) -> dict:
    raw = await request.body()
    if not raw.strip():
        raise ProcessGraphMissing("The request body is empty: send {\"process\": {\"process_graph\": {...}}}.")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as error:
        raise BadRequest(f"The request body is not valid JSON: {error}.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


@router.post("/result", tags=["processing"])
async def result(request: Request) -> Response:
    body = await json_body(request)
    app = request.app
    # The work runs in a worker thread: the event loop keeps serving other requests meanwhile.
    answer = await run_in_threadpool(execute_sync, body, app.state.settings, app.state.catalog)
    headers = {"OpenEO-Costs": "0"}
    if answer.path is not None:
        return FileResponse(
            answer.path,
            media_type=answer.media_type,
            filename=answer.filename,
            headers=headers,
            background=BackgroundTask(answer.cleanup) if answer.cleanup else None,
        )
    return Response(answer.content or b"", media_type=answer.media_type, headers=headers)


@router.post("/validation", tags=["processing"])
async def validation(request: Request) -> dict:
    body = await json_body(request)
    app = request.app
    env = ProcessEnv(catalog=app.state.catalog, settings=app.state.settings)
    errors = await run_in_threadpool(collect_errors, body, env=env)
    return {"errors": [error.to_dict() for error in errors]}
