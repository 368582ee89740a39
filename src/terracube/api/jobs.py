"""Batch jobs (openEO API 1.2): ``/jobs`` and everything under it.

HTTP only: the job service (``request.app.state.jobs``, a ``terracube.jobs.JobService``) does the
work. Every handler is a plain ``def``, so FastAPI runs it in its thread pool and the event loop
never waits on the database. Result downloads are authorised by their signed URL alone, so
``download_files`` (and a browser, curl, GDAL) fetch them without credentials.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, Optional
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from terracube.api.auth import User, current_user
from terracube.api.deps import base_url, udp_lookup, user_env
from terracube.api.paging import MAX_INDEX, Page
from terracube.api.processing import json_object
from terracube.auth import Mode, auth_mode
from terracube.auth.quotas import enforced, quotas_for
from terracube.errors import ECHO_LENGTH, BadRequest, FileNotFound, OpenEOError, ProcessGraphMissing, shortened
from terracube.execute import check_process
from terracube.jobs.errors import (
    BudgetInvalid,
    JobLocked,
    JobNotFinished,
    JobNotFound,
    JobNotStarted,
    NoDataForUpdate,
    PropertyNotEditable,
)
from terracube.jobs.results import (
    ITEM_DOCUMENT,
    estimate,
    job_document,
    job_summary,
    log_entry,
    partial_document,
    results_document,
)
from terracube.jobs.service import JobService
from terracube.jobs.store import ACTIVE, LOG_LEVELS, Job

router = APIRouter(tags=["batch jobs"])

EDITABLE = ("title", "description", "process", "plan", "budget", "log_level")
READ_ONLY = ("id", "status", "progress", "created", "updated", "costs", "usage")


def install(app: FastAPI) -> None:
    """Serve batch jobs in ``app``: the routes, and the job service started and stopped with it.

    The service (store, recovery, Dask cluster or client) starts inside the app's lifespan,
    around whatever lifespan the app already has, and ends up in ``app.state.jobs``.
    """
    app.include_router(router)
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any):
        state = application.state
        service = JobService(state.settings)
        service.accounts_mode = lambda: auth_mode(application) is Mode.ACCOUNTS  # UDFs of such jobs run confined
        # Each run's usage goes to the usage table too (the monthly CPU quota), whatever becomes of the job.
        service.on_usage = lambda user_id, job_id, usage: quotas_for(application).record(user_id, "job", usage, job_id=job_id)
        await run_in_threadpool(service.start)
        state.jobs = service
        state.udps = service.udps  # user-defined processes share the job store's database
        try:
            async with previous(application) as inner:
                yield inner
        finally:
            await run_in_threadpool(service.close)

    app.router.lifespan_context = lifespan


def jobs_service(request: Request) -> JobService:
    service = getattr(request.app.state, "jobs", None)
    if service is None:
        raise OpenEOError("Batch jobs are not available on this server.", code="FeatureUnsupported", status=501)
    return service


def owned_job(request: Request, job_id: str, user: User) -> tuple[JobService, Job]:
    """The job service and ``user``'s job ``job_id``; another user's job answers ``JobNotFound``."""
    service = jobs_service(request)
    if len(job_id) > ECHO_LENGTH:  # no id this server made is that long; the message echoes it cut short
        raise JobNotFound(shortened(job_id))
    return service, service.store.get(job_id, user.user_id)


def _check_process(request: Request, process: Any, user: User) -> dict:
    if not isinstance(process, dict) or not isinstance(process.get("process_graph"), dict):
        raise ProcessGraphMissing("A batch job needs a process: {\"process\": {\"process_graph\": {...}}}.")
    # A graph is rejected when the job is created, not when it starts.
    check_process(process, user_env(request, user), udp_lookup(request, user))
    return process


# A budget is stored as a 64-bit float: a larger number is not a budget anyone means.
MAX_BUDGET = 1e300


def checked_metadata(body: dict) -> dict:
    """The properties a job and a service share (title, description, plan, budget, log_level) in ``body``, checked."""
    fields: dict[str, Any] = {}
    for name in ("title", "description", "plan"):
        if name in body:
            if body[name] is not None and not isinstance(body[name], str):
                raise BadRequest(f"'{name}' must be a string or null.")
            fields[name] = body[name]
    if "budget" in body:
        budget = body["budget"]
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0 or budget > MAX_BUDGET):
            raise BudgetInvalid(budget)
        fields["budget"] = budget
    if "log_level" in body:
        if body["log_level"] not in LOG_LEVELS:
            raise BadRequest(f"'log_level' must be one of {', '.join(LOG_LEVELS)}.")
        fields["log_level"] = body["log_level"]
    return fields


@router.post("/jobs", status_code=201)
def create_job(request: Request, body: dict[str, Any] = Depends(json_object), user: User = Depends(current_user)) -> Response:
    service = jobs_service(request)
    process = _check_process(request, body.get("process"), user)
    fields = checked_metadata(body)
    fields.setdefault("log_level", "info")
    options = {k: v for k, v in body.items() if k not in EDITABLE}
    job = service.store.create(user.user_id, process, options=options or None, **fields)
    service.store.add_log(job.id, "debug", "Job created; its process graph is valid.")
    location = f"{base_url(request)}/jobs/{job.id}"
    return Response(status_code=201, headers={"Location": location, "OpenEO-Identifier": job.id})


@router.get("/jobs")
def list_jobs(request: Request, page: Page = Depends(), user: User = Depends(current_user)) -> dict:
    jobs, total = jobs_service(request).store.list(user.user_id, limit=page.limit, offset=page.offset)
    links = page.links(f"{base_url(request)}/jobs", total)
    return {"jobs": [job_summary(job, base_url(request)) for job in jobs], "links": links}


@router.get("/jobs/{job_id}")
def describe_job(request: Request, job_id: str, user: User = Depends(current_user)) -> dict:
    _, job = owned_job(request, job_id, user)
    return job_document(job, base_url(request))


@router.patch("/jobs/{job_id}", status_code=204)
def update_job(request: Request, job_id: str, body: dict[str, Any] = Depends(json_object), user: User = Depends(current_user)) -> Response:
    service, job = owned_job(request, job_id, user)
    for name in body:
        if name in READ_ONLY:
            raise PropertyNotEditable(name)
    if not any(name in body for name in EDITABLE):
        raise NoDataForUpdate()
    if job.status in ACTIVE:
        raise JobLocked(job_id, job.status)
    fields = checked_metadata(body)
    if "process" in body:
        fields["process"] = _check_process(request, body["process"], user)
    service.store.update(job_id, **fields)
    return Response(status_code=204)


@router.delete("/jobs/{job_id}", status_code=204)
def delete_job(request: Request, job_id: str, user: User = Depends(current_user)) -> Response:
    service, _ = owned_job(request, job_id, user)
    service.delete_job(job_id)
    return Response(status_code=204)


@router.post("/jobs/{job_id}/results", status_code=202)
def start_job(request: Request, job_id: str, user: User = Depends(current_user)) -> Response:
    service, job = owned_job(request, job_id, user)
    if job.status not in ACTIVE and enforced(request.app):
        # New work only: 402 when the month's CPU hours are used up, 400 when no storage is left for results.
        quotas = quotas_for(request.app)
        quotas.check_processing(user.user_id)
        quotas.check_storage(user.user_id)
    service.start_job(job_id)  # no effect on a queued or running job, as the spec says
    return Response(status_code=202)


@router.delete("/jobs/{job_id}/results", status_code=204)
def cancel_job(request: Request, job_id: str, user: User = Depends(current_user)) -> Response:
    service, _ = owned_job(request, job_id, user)
    service.cancel_job(job_id)
    return Response(status_code=204)


def _finished(service: JobService, job: Job) -> Job:
    """``job`` if it has finished; else the spec's error for its state."""
    if job.status == "finished":
        return job
    if job.status == "error":
        entry = service.store.last_error(job.id)
        body = log_entry(entry) if entry else {"id": "0", "level": "error", "message": "The job failed."}
        # 424 with the last error, as the spec prescribes for a failed job.
        raise _Failed(body)
    if job.status in ACTIVE:
        raise JobNotFinished(job.id, job.status)
    raise JobNotStarted(job.id, job.status)


class _Failed(Exception):
    def __init__(self, entry: dict):
        self.entry = entry


@router.get("/jobs/{job_id}/results")
def list_results(request: Request, job_id: str, partial: bool = False, user: User = Depends(current_user)) -> Response:
    service, job = owned_job(request, job_id, user)
    if partial and (job.status in ACTIVE or job.status == "canceled"):
        # Results appear all at once when a job finishes: until then there is nothing partial to show.
        return JSONResponse(partial_document(job, base_url(request)), headers={"OpenEO-Costs": "0"})
    try:
        job = _finished(service, job)
    except _Failed as failed:
        return JSONResponse(failed.entry, status_code=424)
    document = results_document(job, base_url(request), service.signer)
    return JSONResponse(document, headers={"OpenEO-Costs": "0"}, media_type="application/json")


@router.get(f"/jobs/{{job_id}}/results/{ITEM_DOCUMENT}")
def signed_results(request: Request, job_id: str, expires: Optional[str] = None, signature: Optional[str] = None) -> Response:
    """The results document behind the ``canonical`` link: signed, so it needs no credentials."""
    service = jobs_service(request)
    service.signer.verify(job_id, ITEM_DOCUMENT, expires, signature)
    try:
        job = _finished(service, service.store.get(job_id))
    except _Failed as failed:
        return JSONResponse(failed.entry, status_code=424)
    return JSONResponse(results_document(job, base_url(request), service.signer), media_type="application/geo+json")


@router.get("/jobs/{job_id}/results/assets/{filename:path}")
@router.head("/jobs/{job_id}/results/assets/{filename:path}", include_in_schema=False)
def download_asset(
    request: Request, job_id: str, filename: str, expires: Optional[str] = None, signature: Optional[str] = None
) -> Response:
    service = jobs_service(request)
    service.signer.verify(job_id, filename, expires, signature)
    try:
        job = _finished(service, service.store.get(job_id))
    except _Failed:
        raise JobNotFinished(job_id, "error") from None
    asset = next((a for a in (job.results or {}).get("assets", []) if a["name"] == filename), None)
    if asset is None:
        raise FileNotFound(filename)
    path = service.storage.local_path(job_id, filename)
    if path is not None:
        # Starlette's FileResponse answers Range requests (206, multipart) and HEAD.
        return FileResponse(path, media_type=asset["type"], filename=filename.rsplit("/", 1)[-1])
    return _remote_file(service.storage, job_id, filename, asset["type"], request)


def _remote_file(storage, job_id: str, filename: str, media_type: str, request: Request) -> Response:
    """A result on an object store, streamed with single-range support."""
    size = storage.size(job_id, filename)
    if size is None:
        raise FileNotFound(filename)
    start, end, status = 0, size - 1, 200
    header = request.headers.get("range")
    if header and header.startswith("bytes=") and "," not in header:
        first, _, last = header[6:].partition("-")
        try:
            if first:
                start, end = int(first), min(int(last) if last else size - 1, size - 1)
            else:
                start, end = max(0, size - int(last)), size - 1
        except ValueError:
            start, end = 0, size - 1
        else:
            if start > end or start >= size:
                return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
            status = 206
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1), "Content-Disposition": f'attachment; filename="{filename.rsplit("/", 1)[-1]}"'}
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)

    def chunks():
        with storage.open(job_id, filename) as handle:
            handle.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                block = handle.read(min(1 << 20, remaining))
                if not block:
                    break
                remaining -= len(block)
                yield block

    return StreamingResponse(chunks(), status_code=status, headers=headers, media_type=media_type)


@router.get("/jobs/{job_id}/logs")
def job_logs(
    request: Request,
    job_id: str,
    offset: Optional[str] = None,
    level: Optional[str] = None,
    limit: Optional[int] = Query(None, ge=1, le=MAX_INDEX),
    user: User = Depends(current_user),
) -> dict:
    service, job = owned_job(request, job_id, user)
    if offset and offset.strip().isdigit() and int(offset) > MAX_INDEX:
        # Offsets are log ids this server issued (64-bit integers): a larger one is not one of them.
        raise BadRequest(f"'offset' must be a log entry id, at most {MAX_INDEX}.")
    if level not in (None, "", *LOG_LEVELS):
        raise BadRequest(f"'level' must be one of {', '.join(LOG_LEVELS)}.")
    # The effective level is the higher of the job's log_level and the one asked for.
    stored = job.log_level or "info"
    wanted = level or "debug"
    effective = max(stored, wanted, key=LOG_LEVELS.index)
    entries = service.store.logs(job_id, offset=offset, level=effective, limit=limit)
    links = []
    if limit is not None and len(entries) == limit:
        query = urlencode({"offset": entries[-1].id, "limit": limit, **({"level": level} if level else {})})
        links.append({"rel": "next", "href": f"{base_url(request)}/jobs/{job_id}/logs?{query}", "type": "application/json"})
    return {"level": effective, "logs": [log_entry(entry) for entry in entries], "links": links}


@router.get("/jobs/{job_id}/estimate")
def estimate_job(request: Request, job_id: str, user: User = Depends(current_user)) -> dict:
    _, job = owned_job(request, job_id, user)
    return estimate(job.process, user_env(request, user), udp_lookup(request, user))
