"""One folder per user under ``<files_root>`` (default ``<data_dir>/files``).

Paths are the user's own names (``a/b.tif``), checked here once for every caller: no absolute
paths, no ``..``, no empty segments, so nobody reads outside their folder. Uploads are written to
a temporary file in the same folder and renamed into place, so a broken upload leaves nothing
half-written and a reader never sees a partial file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from terracube.errors import FileNotFound, FilePathInvalid, shortened

TEMP_PREFIX = ".upload-"
NAME_MAX = 255  # bytes of one file or folder name on every common file system


def user_folder_name(user_id: str) -> str:
    """A folder name for any user id: readable when safe, hashed when not."""
    safe = all(c.isalnum() or c in "-_." for c in user_id) and user_id not in ("", ".", "..")
    return user_id if safe else "u-" + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:32]


def check_path(path: str) -> PurePosixPath:
    """The user's path as relative POSIX parts, or ``FilePathInvalid``."""
    if not path or "\\" in path or "\x00" in path:
        raise FilePathInvalid(f"The file path {path!r} is invalid: use a relative path with '/' between folders.")
    if any(len(part.encode("utf-8")) > NAME_MAX for part in path.split("/")):
        # The file system would refuse it (ENAMETOOLONG), naming the server's own folder: refused here.
        raise FilePathInvalid(f"The file path {shortened(path)!r} is invalid: a name between '/' is at most {NAME_MAX} bytes.")
    pure = PurePosixPath(path)
    if pure.is_absolute() or path.startswith("/"):
        raise FilePathInvalid(f"The file path {path!r} is invalid: absolute paths are not allowed.")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise FilePathInvalid(f"The file path {path!r} is invalid: '..', '.' and empty segments are not allowed.")
    if any(part.startswith(TEMP_PREFIX) for part in parts):
        raise FilePathInvalid(f"The file path {path!r} is invalid: names starting with {TEMP_PREFIX!r} are reserved.")
    return PurePosixPath(*parts)


class UserFiles:
    """The files of one user."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def local_path(self, path: str) -> Path:
        return self.root.joinpath(*check_path(path).parts)

    def existing(self, path: str) -> Path:
        local = self.local_path(path)
        if not local.is_file():
            raise FileNotFound(path, "GET /files lists your files.")
        return local

    def info(self, local: Path) -> dict:
        stat = local.stat()
        modified = datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"path": local.relative_to(self.root).as_posix(), "size": stat.st_size, "modified": modified}

    def list(self) -> list[dict]:
        if not self.root.is_dir():
            return []
        found = [
            p for p in self.root.rglob("*")
            if p.is_file() and not any(part.startswith(TEMP_PREFIX) for part in p.relative_to(self.root).parts)
        ]
        return [self.info(p) for p in sorted(found, key=lambda p: p.relative_to(self.root).as_posix())]

    def used_bytes(self) -> int:
        """Bytes the user's files take (what the storage quota counts; uploads in progress are not files yet)."""
        return sum(entry["size"] for entry in self.list())

    def size_of(self, path: str) -> int:
        """Bytes of the file at ``path``, 0 if there is none: an upload replacing it frees them."""
        local = self.local_path(path)
        return local.stat().st_size if local.is_file() else 0

    def begin(self, path: str) -> "Upload":
        """An upload into a temporary file beside ``path``; ``commit()`` renames it into place."""
        local = self.local_path(path)
        if local.is_dir():
            raise FilePathInvalid(f"The file path {path!r} is invalid: it is a folder.")
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise FilePathInvalid(f"The file path {path!r} is invalid: a file is in the way of its folder.") from None
        return Upload(self, local)

    def write(self, path: str, chunks: Iterable[bytes]) -> dict:
        upload = self.begin(path)
        try:
            for chunk in chunks:
                upload.write(chunk)
        except BaseException:
            upload.abort()
            raise
        return upload.commit()

    def delete(self, path: str) -> None:
        local = self.existing(path)
        local.unlink()
        # Folders left empty go too, so the listing and the disk agree.
        parent = local.parent
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


class Upload:
    """One upload in progress: bytes go to a hidden temporary file until ``commit()``."""

    def __init__(self, files: UserFiles, target: Path):
        self.files = files
        self.target = target
        fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        self.temp = Path(temp)
        self.out = os.fdopen(fd, "wb")
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.out.write(chunk)
        self.size += len(chunk)

    def commit(self) -> dict:
        try:
            self.out.flush()
            os.fsync(self.out.fileno())
            self.out.close()
            os.replace(self.temp, self.target)
        except BaseException:
            self.abort()
            raise
        return self.files.info(self.target)

    def abort(self) -> None:
        self.out.close()
        self.temp.unlink(missing_ok=True)


class FileStore:
    """All users' files under one root folder."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @classmethod
    def from_settings(cls, settings) -> "FileStore":
        return cls(Path(settings.files_root) if settings.files_root else Path(settings.data_dir) / "files")

    def user(self, user_id: str) -> UserFiles:
        return UserFiles(self.root / user_folder_name(user_id))


def user_files_dir(settings, user_id: str) -> Path:
    """Where ``user_id``'s files are: what ``ProcessEnv.files_dir`` holds."""
    return FileStore.from_settings(settings).user(user_id).root


__all__ = ["FileNotFound", "FilePathInvalid", "FileStore", "UserFiles", "check_path", "user_files_dir"]
