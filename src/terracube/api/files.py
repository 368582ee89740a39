"""``/files``: the user's file storage (openEO API 1.2). The storage itself is ``terracube.files``."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor

from terracube.api.auth import User, current_user
from terracube.api.deps import base_url
from terracube.api.paging import paging_links
from terracube.auth.quotas import enforced, quotas_for
from terracube.errors import OpenEOError, PayloadTooLarge
from terracube.files.store import FileStore, UserFiles

router = APIRouter(tags=["files"])


class FilePath(Convertor):
    """Starlette's ``path`` matches no line break, so a name with one would be a bare 404; this one
    matches every character, and the store refuses control characters with ``FilePathInvalid``."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("filepath", FilePath())


def user_files(request: Request, user: User = Depends(current_user)) -> UserFiles:
    store = FileStore.from_settings(request.app.state.settings)
    remove_leftovers_once(request.app, store)
    return store.user(user.user_id)


def remove_leftovers_once(app, store: FileStore) -> None:
    """At the app's first use of its file store: temporary upload files a crash left behind go."""
    if getattr(app.state, "files_swept", False):
        return
    app.state.files_swept = True
    store.remove_stale_uploads(older_than=2 * float(app.state.settings.upload_idle_timeout))


class UploadStalled(OpenEOError):
    code = "RequestTimeout"
    status = 408


async def chunks_until_idle(request: Request, idle: float):
    """The body's chunks; an upload that sends nothing for ``idle`` seconds is given up."""
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), timeout=idle)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise UploadStalled(f"The upload sent nothing for {idle:g} seconds and was given up; nothing was stored.") from None
        yield chunk


@router.get("/files")
def list_files(
    request: Request,
    limit: int | None = Query(None, ge=1),
    offset: int = Query(0, ge=0),
    files: UserFiles = Depends(user_files),
) -> dict:
    listed = files.list()
    page = listed[offset : offset + limit] if limit is not None else listed[offset:]
    return {"files": page, "links": paging_links(f"{base_url(request)}/files", limit, offset, len(listed))}


def storage_room(request: Request, user: User, files: UserFiles, path: str) -> int | None:
    """Bytes this upload may have under the user's storage quota (accounts mode), None without one."""
    if not enforced(request.app):
        return None
    return quotas_for(request.app).upload_room(user.user_id, replacing=files.size_of(path))


@router.put("/files/{path:filepath}")
async def upload_file(path: str, request: Request, files: UserFiles = Depends(user_files), user: User = Depends(current_user)) -> dict:
    """The body is streamed to disk, never held in memory; a broken upload leaves nothing behind.

    Two limits, checked on the declared length and again on the bytes as they come: the server's
    ``max_upload_bytes`` a file (413) and the user's storage quota (400 ``StorageQuotaExceeded``).
    """
    limit = request.app.state.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    files.local_path(path)  # refuse a bad path before reading the body
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The upload has {declared} bytes; this server takes at most {limit} bytes a file.")
    room = await run_in_threadpool(storage_room, request, user, files, path)
    if room is not None and declared and declared.isdigit() and int(declared) > room:
        raise await run_in_threadpool(quotas_for(request.app).upload_refused, user.user_id, int(declared), room)
    upload = await run_in_threadpool(files.begin, path)
    try:
        async for chunk in chunks_until_idle(request, float(request.app.state.settings.upload_idle_timeout)):
            if upload.size + len(chunk) > limit:
                raise PayloadTooLarge(f"The upload is larger than {limit} bytes, the most this server takes a file.")
            if room is not None and upload.size + len(chunk) > room:
                raise await run_in_threadpool(quotas_for(request.app).upload_refused, user.user_id, upload.size + len(chunk), room)
            await run_in_threadpool(upload.write, chunk)
    except BaseException:
        await run_in_threadpool(upload.abort)
        raise
    return await run_in_threadpool(upload.commit)


@router.get("/files/{path:filepath}")
def download_file(path: str, files: UserFiles = Depends(user_files)) -> FileResponse:
    local = files.existing(path)
    return FileResponse(local, media_type="application/octet-stream", filename=local.name)


@router.delete("/files/{path:filepath}", status_code=204)
def delete_file(path: str, files: UserFiles = Depends(user_files)) -> Response:
    files.delete(path)
    return Response(status_code=204)
