"""GDAL reads a user's assets through the fetch guard: their bytes come over our own guarded session.

GDAL's ``/vsicurl/`` resolves names and follows redirects by itself, out of the guard's sight: an
asset of a user's STAC item at a public URL that redirects to ``http://169.254.169.254/`` (or a
name that resolves to loopback at the second asking) would be read. So the assets of a user's
STAC items (``load_stac``) are not handed to GDAL as URLs. GDAL opens them through rasterio's
Python opener (``rasterio.open(..., opener=)``), and every byte comes by HTTP range request
through a guarded ``requests`` session (``fetch_guard``): each redirect is checked before it is
followed, and each connection goes to an address that was checked. The archives of the
collections file are the operator's and keep GDAL's own, faster, reads.

Only TIFF and JPEG 2000 bytes are handed on: a "GeoTIFF" whose bytes are a VRT (or another format
that names further files) would make GDAL open those files by itself. Side-car files (``.ovr``,
``.aux.xml``) of a user's asset do not exist here, which spares a request for each; a COG keeps
its overviews and masks inside.
"""

from __future__ import annotations

import io
import re
import threading
from contextlib import contextmanager
from typing import Iterator

import rasterio
import requests
from rasterio.abc import FileContainer

from terracube.data.fetch_guard import REFUSED, FetchGuard, FetchRefused
from terracube.data.network import ArchiveUnavailable, failure, http_session, redact
from terracube.errors import OpenEOError, ProcessParameterInvalid

BLOCK = 1 << 16  # what one request fetches at least: a COG's header and its IFDs come in one
MAX_CACHED = 256 << 20  # the bytes one read keeps; the oldest blocks go first
MAX_WHOLE = 256 << 20  # a server without range requests sends the whole file: at most this much
_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+", b"\x00\x00\x00\x0cjP  ", b"\xff\x4f\xff\x51")
_TOTAL = re.compile(r"bytes \d+-\d+/(\d+)")


class RemoteAsset(FileContainer):
    """One asset over HTTP for GDAL: its size, and its bytes in cached blocks fetched by range request.

    A failure is kept in ``error`` (GDAL's plugin turns every exception into "cannot read"), so the
    caller can give the user the real cause: the guard's refusal above all.
    """

    def __init__(self, url: str, session: requests.Session, timeout: tuple[float, float]):
        self.url = url
        self.session = session
        self.timeout = timeout
        self.length: int | None = None
        self.blocks: dict[int, bytes] = {}
        self.cached = 0
        self.error: BaseException | None = None
        self.requests = 0
        self._lock = threading.Lock()

    # --- what GDAL asks through rasterio's opener ---------------------------------------------
    def open(self, path: str, mode: str = "rb", **kwds) -> "RemoteFile":
        if path != self.url or "w" in mode or "+" in mode or "a" in mode:
            raise FileNotFoundError(path)
        return RemoteFile(self)

    def isfile(self, path: str) -> bool:
        return path == self.url

    def isdir(self, path: str) -> bool:
        return False

    def ls(self, path: str) -> list[str]:
        return []

    def mtime(self, path: str) -> int:
        return 0

    def rm(self, path: str) -> None:
        raise PermissionError(path)

    def size(self, path: str) -> int:
        if path != self.url:
            raise FileNotFoundError(path)
        self.start()
        return self.length

    # --- fetching -----------------------------------------------------------------------------
    def start(self) -> None:
        """The first request: the file's size and header, and whether it is a format GDAL may read."""
        if self.length is not None:
            return
        self.fetch(0, BLOCK)
        head = self.blocks.get(0, b"")[:12]
        if not any(head.startswith(magic) for magic in _MAGIC):
            raise self.keep(ProcessParameterInvalid(
                f"load_stac: the asset at {redact(self.url)} is not a GeoTIFF or JPEG 2000 file; only those are read from a user's STAC items."
            ))

    def read_at(self, offset: int, size: int) -> bytes:
        self.start()
        end = min(offset + size, self.length)
        if offset >= end:
            return b""
        first, last = offset // BLOCK, (end - 1) // BLOCK
        missing = [index for index in range(first, last + 1) if index not in self.blocks]
        if missing:
            self.fetch(missing[0] * BLOCK, (missing[-1] + 1) * BLOCK)
        try:
            data = b"".join(self.blocks[index] for index in range(first, last + 1))
        except KeyError:
            raise self.keep(ArchiveUnavailable(f"Reading {redact(self.url)} failed: the server answered fewer bytes than asked for.")) from None
        self._evict()
        return data[offset - first * BLOCK : end - first * BLOCK]

    def fetch(self, start: int, stop: int) -> None:
        """Blocks ``start``..``stop`` (block-aligned) into the cache: one range request, redirects checked."""
        with self._lock:
            try:
                self.requests += 1
                with self.session.get(self.url, headers={"Range": f"bytes={start}-{stop - 1}"}, stream=True, timeout=self.timeout) as response:
                    if response.status_code == 206:
                        total = _TOTAL.match(response.headers.get("Content-Range", ""))
                        if total:
                            self.length = int(total[1])
                        body = response.content
                        offset = start
                    elif response.status_code == 200:  # no range requests: the whole file, once
                        body = _bounded(response)
                        self.length, offset = len(body), 0
                    elif response.status_code == 416:
                        body, offset = b"", start
                    else:
                        response.raise_for_status()
                        raise requests.HTTPError(f"HTTP {response.status_code}", response=response)
            except OpenEOError as error:
                raise self.keep(error) from None
            except requests.RequestException as error:
                raise self.keep(FetchRefused() if REFUSED in str(error) else failure(error, self.url, "Reading")) from None
            if self.length is None:
                self.length = offset + len(body)
            self._store(offset, body)

    def _store(self, offset: int, body: bytes) -> None:
        for position in range(0, len(body), BLOCK):
            index, part = divmod(offset + position, BLOCK)
            if part:  # not block-aligned (a server that answered another range): keep nothing partial
                continue
            chunk = body[position : position + BLOCK]
            if len(chunk) == BLOCK or offset + position + len(chunk) >= (self.length or 0):
                if index not in self.blocks:
                    self.cached += len(chunk)
                self.blocks[index] = chunk

    def _evict(self) -> None:
        while self.cached > MAX_CACHED and len(self.blocks) > 1:
            oldest = next(iter(self.blocks))
            self.cached -= len(self.blocks.pop(oldest))

    def keep(self, error: BaseException) -> BaseException:
        if self.error is None:
            self.error = error
        return error


class RemoteFile(io.RawIOBase):
    """A seekable, read-only file over a ``RemoteAsset`` (what rasterio's opener hands GDAL)."""

    def __init__(self, asset: RemoteAsset):
        self.asset = asset
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.asset.size(self.asset.url)}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self.position

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.asset.size(self.asset.url) - self.position
        data = self.asset.read_at(self.position, size)
        self.position += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def guarded_path(url: str, guard: FetchGuard, timeout: tuple[float, float], retries: int) -> Iterator[str]:
    """A path GDAL opens for the user's asset at ``url`` while the context lasts: its bytes through ``guard``.

    The guard's refusal (or the archive's failure) found while GDAL reads is raised as itself, not
    as GDAL's "cannot read".
    """
    guard.check(url)
    session = http_session(retries, guard=guard)
    asset = RemoteAsset(url, session, timeout)
    try:
        asset.start()  # the refusal, a failure or a wrong format comes from here, before GDAL
        with rasterio.open(url, opener=asset) as dataset:  # registers the opener; the path lasts as long
            yield dataset.name
    except rasterio.errors.RasterioError:
        if asset.error is not None:
            raise asset.error from None
        raise
    finally:
        session.close()


def _bounded(response: requests.Response) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_WHOLE:
        raise ProcessParameterInvalid(_no_ranges(response.url))
    body = bytearray()
    for chunk in response.iter_content(1 << 20):
        body += chunk
        if len(body) > MAX_WHOLE:
            raise ProcessParameterInvalid(_no_ranges(response.url))
    return bytes(body)


def _no_ranges(url: str) -> str:
    return f"load_stac: the server of {redact(url)} does not answer range requests, and the file is larger than {MAX_WHOLE >> 20} MiB."


__all__ = ["RemoteAsset", "guarded_path"]
