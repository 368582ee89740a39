"""The results root: a local folder or an fsspec URL (``s3://bucket/terracube/results``...).

A job's results are written by a Dask worker into ``<root>/<job_id>.tmp-<uuid>`` and moved to
``<root>/<job_id>`` by the API side once the job succeeded. On a local disk that move is one
``rename``, atomic; on object stores a move is copy-then-delete (file by file), so atomicity comes from the job
store instead: results are served only for a job whose status is ``finished``, which is written
after the move completed, and whatever lies under the root for a job that is not finished is
deleted at startup. Either way a reader sees a job's results complete or not at all.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from terracube.settings import Settings

TMP_MARK = ".tmp-"


def results_root(settings: Settings) -> str:
    
    root = settings.results_root
    return str(root) if root else str(Path(settings.data_dir) / "results")


def is_url(root: str) -> bool:
    return "://" in root


class ResultStorage:
    def __init__(self, root: str):
        self.root = root.rstrip("/") if is_url(root) else str(Path(root).expanduser().resolve())
        self._fs = None

    # --- names -------------------------------------------------------------------------------
    @staticmethod
    def tmp_name(job_id: str) -> str:
        return f"{job_id}{TMP_MARK}{uuid.uuid4().hex[:12]}"

    def location(self, name: str) -> str:
        return f"{self.root}/{name}" if is_url(self.root) else str(Path(self.root) / name)

    @property
    def fs(self):
        if self._fs is None:
            import fsspec

            # Workers and every API server write under the root: a listing cached in one process
            # would hide what the others wrote (a worker's upload, another server's move).
            self._fs, _ = fsspec.core.url_to_fs(self.root, use_listings_cache=False)
        return self._fs

    @property
    def local(self) -> bool:
        return not is_url(self.root)

    # --- writing (worker side) -------------------------------------------------------------
    def upload(self, directory: Path, name: str) -> None:
        """Copy a finished local directory to ``<root>/<name>`` (object stores only)."""
        target = self.location(name)
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                remote = f"{target}/{path.relative_to(directory).as_posix()}"
                self.fs.makedirs(remote.rsplit("/", 1)[0], exist_ok=True)  # object stores: a no-op
                self.fs.put_file(str(path), remote)

    # --- publishing (API side) ---------------------------------------------------------------
    def publish(self, tmp_name: str, job_id: str, names: list[str] | None = None) -> None:
        """Move a complete temporary directory into place as the job's results (``names``: the files it holds)."""
        source, final = self.location(tmp_name), self.location(job_id)
        if self.local:
            if not os.path.exists(source) and os.path.isdir(final):
                return  # moved already, by a server that died before it could record it (adoption.py)
            self.discard(job_id)
            os.rename(source, final)
            return
        if names and all(self.fs.exists(f"{final}/{name}") for name in names):
            # Copied already, by a server that died before it could record it (adoption.py); it
            # deletes the temporary files only after copying them all.
            self.discard(tmp_name)
            return
        files = self.fs.find(source)
        self.discard(job_id)
        # File by file: an object store has no directories to move, and fsspec's recursive move
        # fails on s3fs when it tries to copy the "directory" itself.
        prefix = self.fs._strip_protocol(source).rstrip("/") + "/"
        for path in files:
            target = f"{final}/{path.removeprefix(prefix)}"
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)  # object stores: a no-op
            self.fs.copy(path, target)
        self.fs.rm(source, recursive=True)

    def discard(self, name: str) -> None:
        location = self.location(name)
        if self.local:
            shutil.rmtree(location, ignore_errors=True)
            return
        try:
            if self.fs.exists(location):
                self.fs.rm(location, recursive=True)
        except FileNotFoundError:
            pass

    def names(self) -> list[str]:
        """Every entry directly under the root (job result folders and temporary ones)."""
        if self.local:
            root = Path(self.root)
            return sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        try:
            return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in self.fs.ls(self.root, detail=False))
        except FileNotFoundError:
            return []

    def discard_partial(self, job_id: str | None = None) -> list[str]:
        """Delete temporary directories (of one job, or all): what a crash or a failed run left."""
        prefix = f"{job_id}{TMP_MARK}" if job_id else None
        removed = []
        for name in self.names():
            if TMP_MARK in name and (prefix is None or name.startswith(prefix)):
                self.discard(name)
                removed.append(name)
        return removed

    # --- reading (serving downloads) -------------------------------------------------------
    def local_path(self, job_id: str, filename: str) -> Path | None:
        if not self.local:
            return None
        path = Path(self.root) / job_id / filename
        return path if path.is_file() else None

    def size(self, job_id: str, filename: str) -> int | None:
        if self.local:
            path = self.local_path(job_id, filename)
            return path.stat().st_size if path else None
        try:
            return int(self.fs.size(self.location(f"{job_id}/{filename}")))
        except FileNotFoundError:
            return None

    def open(self, job_id: str, filename: str) -> BinaryIO:
        if self.local:
            return open(Path(self.root) / job_id / filename, "rb")
        return self.fs.open(self.location(f"{job_id}/{filename}"), "rb")
