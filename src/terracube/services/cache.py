"""The tile cache: drawn tiles on disk, bounded in size, least recently used out first.

A tile's file is named by a hash of everything that decides its pixels (service id and version,
z/x/y, tile size, rendering, time), so a changed service (a new version) never meets its old
tiles: they age out. Files are written to a temporary name and renamed into place, so a reader
sees a whole tile or none, also from another process. A hit refreshes the file's time, which is
what eviction sorts by (least recently used first, down to 90 % of the bound).

Concurrent requests for one tile draw it once: threads of one process wait on the tile's lock;
other processes (several API workers on one disk) on a file lock, one of ``LOCK_STRIPES`` lock
files chosen by the tile's hash (``fcntl.flock``, where it exists). The one that draws writes the
file; the others then read it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

from terracube.settings import Settings

try:
    import fcntl
except ImportError:  # Windows: one process's threads are still single-flight
    fcntl = None

log = logging.getLogger("terracube.services.cache")

LOCK_STRIPES = 256
SUFFIX = ".tile"


class TileCache:
    def __init__(self, directory: Path, max_bytes: int):
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self._locks: dict[str, list] = {}  # key -> [lock, waiters]
        self._guard = threading.Lock()
        self._size: int | None = None  # bytes on disk, counted on first write, kept up to date after
        self._size_lock = threading.Lock()

    @staticmethod
    def digest(key: tuple) -> str:
        return hashlib.sha256(repr(key).encode()).hexdigest()

    def path(self, digest: str) -> Path:
        return self.directory / digest[:2] / (digest + SUFFIX)

    def get(self, key: tuple) -> bytes | None:
        return self._read(self.path(self.digest(key)))

    def get_or_compute(self, key: tuple, compute: Callable[[], bytes]) -> bytes:
        """The cached bytes of ``key``, or ``compute()``'s, written to the cache; computed once at a time."""
        if self.max_bytes <= 0:
            return compute()
        digest = self.digest(key)
        path = self.path(digest)
        content = self._read(path)
        if content is not None:
            return content
        with self._single_flight(digest):
            content = self._read(path)  # drawn by whoever held the lock before us
            if content is not None:
                return content
            content = compute()
            self._write(path, content)
        return content

    # --- files ------------------------------------------------------------------------------
    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            os.utime(path)  # recently used: last to be evicted
        except OSError:
            pass  # evicted meanwhile; the bytes read are still good
        return content

    def _write(self, path: Path, content: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
            with os.fdopen(handle, "wb") as file:
                file.write(content)
            os.replace(temporary, path)
        except OSError as error:  # a full or read-only disk costs speed, not the tile
            log.warning("tile cache: writing %s failed: %s", path, error)
            return
        self._grow(len(content))

    def _grow(self, nbytes: int) -> None:
        with self._size_lock:
            if self._size is None:
                self._size = sum(size for _, size, _ in self._files())
            else:
                self._size += nbytes
            if self._size <= self.max_bytes:
                return
            self._size = self._evict(int(self.max_bytes * 0.9))

    def _files(self) -> Iterator[tuple[Path, int, float]]:
        for entry in self.directory.glob(f"*/*{SUFFIX}"):
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue
            yield entry, stat.st_size, stat.st_mtime

    def _evict(self, target: int) -> int:
        """Delete the least recently used tiles until at most ``target`` bytes remain; the bytes left."""
        files = sorted(self._files(), key=lambda item: item[2])
        total = sum(size for _, size, _ in files)
        removed = 0
        for path, size, _ in files:
            if total <= target:
                break
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
            total -= size
        log.info("tile cache: evicted %d tiles, %d bytes left", removed, total)
        return total

    # --- single flight ----------------------------------------------------------------------
    @contextmanager
    def _single_flight(self, digest: str):
        with self._guard:
            entry = self._locks.setdefault(digest, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0], self._file_lock(digest):
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if not entry[1]:
                    self._locks.pop(digest, None)

    @contextmanager
    def _file_lock(self, digest: str):
        if fcntl is None:
            yield
            return
        locks = self.directory / ".locks"
        try:
            locks.mkdir(parents=True, exist_ok=True)
            handle = os.open(locks / f"{int(digest[:8], 16) % LOCK_STRIPES}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            yield  # no lock file, no cross-process single flight; still correct
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        finally:
            os.close(handle)  # closing releases the lock


@lru_cache(maxsize=8)
def _cache(directory: Path, max_bytes: int) -> TileCache:
    return TileCache(directory, max_bytes)


def tile_cache(settings: Settings) -> TileCache:
    """The cache under the settings' ``tile_cache_dir`` (default ``<data_dir>/tiles``), one object per folder."""
    return _cache(Path(settings.tile_cache_dir or settings.data_dir / "tiles"), int(settings.tile_cache_bytes))

