"""The tile cache: drawn tiles on disk, bounded in size, least recently used out first; the hottest
also in memory.

A tile's key is everything that decides its pixels: the service's id and version first, then z/x/y,
tile size, rendering and time. Its file is ``<service>/<version>/<hash of the key>.tile`` (``<service>``
a hash of the id), so a changed service (a new version) never meets its old tiles, and ``forget``
removes the tiles of a deleted service, or a changed service's older versions, at once. Files are
written to a temporary name and renamed into place, so a reader sees a whole tile or none, also
from another process. A hit refreshes the file's time, which is what eviction sorts by (least
recently used first, down to 90 % of the bound).

``MemoryTiles`` keeps the most recently used tiles in this process's memory, bounded in bytes, so a
map's tiles seen again cost no file read (and no thread: api/service_tiles.py answers them in the
event loop).

Concurrent requests for one tile draw it once: threads of one process wait on the tile's lock;
other processes (several API workers on one disk) on a file lock, one of ``LOCK_STRIPES`` lock
files chosen by the tile's hash (``fcntl.flock``, where it exists). The one that draws writes the
file; the others then read it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator

from terracube.settings import Settings

try:
    import fcntl
except ImportError:  # Windows: one process's threads are still single-flight
    fcntl = None

log = logging.getLogger("terracube.services.cache")

LOCK_STRIPES = 256
SUFFIX = ".tile"


class TileCache:
    def __init__(self, directory: Path, max_bytes: int, memory_bytes: int = 0):
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.memory = MemoryTiles(memory_bytes)
        self._locks: dict[str, list] = {}  # key -> [lock, waiters]
        self._guard = threading.Lock()
        self._size: int | None = None  # bytes on disk, counted on first write, kept up to date after
        self._size_lock = threading.Lock()

    @staticmethod
    def digest(key: tuple) -> str:
        return hashlib.sha256(repr(key).encode()).hexdigest()

    def service_folder(self, service_id: str) -> Path:
        """Where one service's tiles are: a hash of its id (ids are the users' to shape, paths are not)."""
        return self.directory / hashlib.sha256(str(service_id).encode()).hexdigest()[:32]

    def path(self, key: tuple) -> Path:
        """The file of ``key`` (``(service id, version, ...)``)."""
        digest = self.digest(key)
        return self.service_folder(key[0]) / str(int(key[1])) / digest[:2] / (digest + SUFFIX)

    def get(self, key: tuple) -> bytes | None:
        return self._read(self.path(key))

    def forget(self, service_id: str, keep_version: int | None = None) -> None:
        """Delete a service's tiles (all, or all but those of ``keep_version``), on disk and in memory."""
        self.memory.forget(service_id, keep_version)
        folder = self.service_folder(service_id)
        try:
            versions = [entry for entry in folder.iterdir() if entry.name != str(keep_version)]
        except OSError:
            return  # no tiles drawn (or the cache is off)
        freed = 0
        for version in versions:
            for path in version.glob(f"*/*{SUFFIX}"):
                try:
                    size = path.stat().st_size
                    path.unlink()
                    freed += size
                except OSError:
                    pass  # evicted meanwhile
            shutil.rmtree(version, ignore_errors=True)  # the folders, and any temporary file of a tile being written
        if keep_version is None:
            try:
                folder.rmdir()
            except OSError:
                pass  # another process drew a tile meanwhile: eviction takes it in time
        with self._size_lock:
            if self._size is not None:
                self._size = max(0, self._size - freed)

    def get_or_compute(self, key: tuple, compute: Callable[[], bytes]) -> bytes:
        """The cached bytes of ``key``, or ``compute()``'s, written to the cache; computed once at a time."""
        if self.max_bytes <= 0:
            return compute()
        digest = self.digest(key)
        path = self.path(key)
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
                self._remove_old_layout()
                self._size = sum(size for _, size, _ in self._files())
            else:
                self._size += nbytes
            if self._size <= self.max_bytes:
                return
            self._size = self._evict(int(self.max_bytes * 0.9))

    def _remove_old_layout(self) -> None:
        """Tiles of the layout before services had folders (``<2 hex digits>/<hash>.tile``): never read again."""
        for entry in self.directory.glob(f"??/*{SUFFIX}"):
            try:
                entry.unlink()
            except OSError:
                pass

    def _files(self) -> Iterator[tuple[Path, int, float]]:
        for entry in self.directory.glob(f"*/*/*/*{SUFFIX}"):
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


class MemoryTiles:
    """The most recently used tiles in memory, by key, least recently used out beyond ``max_bytes`` (0: none).

    Every operation but ``forget`` is a dictionary step under a lock, short enough for the event loop.
    """

    OVERHEAD = 200  # bytes an entry costs besides its content: the key, the ETag, the dictionary's slot

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: Any, nbytes: int) -> None:
        size = int(nbytes) + self.OVERHEAD
        if size > self.max_bytes // 4:  # off, or a tile that would crowd out the others
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, freed) = self._entries.popitem(last=False)
                self._bytes -= freed

    def forget(self, service_id: str, keep_version: int | None = None) -> None:
        """Drop a service's tiles (keys ``(service id, version, ...)``), or all but those of ``keep_version``."""
        with self._lock:
            gone = [key for key in self._entries if key[0] == service_id and key[1] != keep_version]
            for key in gone:
                self._bytes -= self._entries.pop(key)[1]

    @property
    def nbytes(self) -> int:
        return self._bytes


@lru_cache(maxsize=8)
def _cache(directory: Path, max_bytes: int, memory_bytes: int) -> TileCache:
    return TileCache(directory, max_bytes, memory_bytes)


def tile_cache(settings: Settings) -> TileCache:
    """The cache under the settings' ``tile_cache_dir`` (default ``<data_dir>/tiles``), one object per folder,
    with ``tile_memory_bytes`` of the hottest tiles in memory."""
    directory = Path(settings.tile_cache_dir or settings.data_dir / "tiles")
    return _cache(directory, int(settings.tile_cache_bytes), int(settings.tile_memory_bytes))

