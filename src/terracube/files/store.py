"""One folder per user under ``<files_root>`` (default ``<data_dir>/files``).

Paths are the user's own names (``a/b.tif``), checked here once for every caller: no absolute
paths, no ``..``, no empty segments, so nobody reads outside their folder. Uploads are written to
a temporary file in the same folder and renamed into place, so a broken upload leaves nothing
half-written and a reader never sees a partial file.

Hardening (docs/api.md, "Files"): names with control characters are refused; symbolic links are
never followed (a link planted in a folder is neither listed, served, read nor written through);
temporary upload files are named ``.upload-*`` so that the ones a crash left behind are
recognised and removed (``remove_stale_uploads``).
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_mode
import tempfile
import time
import unicodedata
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from terracube.errors import FileNotFound, FilePathInvalid, shortened

TEMP_PREFIX = ".upload-"
FORBIDDEN = frozenset(":'\"")  # with '\\' and line breaks (refused above), what the API's pattern excludes
NAME_MAX = 255  # bytes of one file or folder name on every common file system
# A temporary upload file untouched for this long is a leftover (a crash, a killed server): a live
# upload writes at least every ``upload_idle_timeout`` seconds, or is given up.
STALE_UPLOAD_SECONDS = 600.0


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
    if any(unicodedata.category(c) == "Cc" for c in path):
        raise FilePathInvalid(f"The file path {shortened(path)!r} is invalid: control characters are not allowed in names.")
    if any(c in FORBIDDEN for c in path):
        # The openEO API's file path pattern (openapi.yaml, components/schemas/file): listings must match it.
        raise FilePathInvalid(f"The file path {shortened(path)!r} is invalid: names may not contain {' '.join(sorted(FORBIDDEN))}.")
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

    def _linked(self, local: Path) -> bool:
        """Whether the user's folder or any part of ``local`` below it is a symbolic link (never followed)."""
        if self.root.is_symlink():
            return True
        current = self.root
        for part in local.relative_to(self.root).parts:
            current = current / part
            if current.is_symlink():
                return True
        return False

    def _regular_file(self, local: Path) -> bool:
        """A regular file reached without following any link."""
        if self._linked(local):
            return False
        try:
            return stat_mode.S_ISREG(os.lstat(local).st_mode)
        except OSError:
            return False

    def existing(self, path: str) -> Path:
        local = self.local_path(path)
        if not self._regular_file(local):
            raise FileNotFound(path, "GET /files lists your files.")
        return local

    def info(self, local: Path) -> dict:
        stat = local.stat()
        modified = datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"path": local.relative_to(self.root).as_posix(), "size": stat.st_size, "modified": modified}

    def _walk(self):
        """Every regular file of the user's folder, links skipped (os.walk follows none into folders)."""
        if not self.root.is_dir() or self.root.is_symlink():
            return
        for folder, dirs, names in os.walk(self.root):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
            for name in names:
                path = Path(folder, name)
                try:
                    regular = stat_mode.S_ISREG(os.lstat(path).st_mode)
                except OSError:  # removed meanwhile
                    continue
                if regular:
                    yield path

    def list(self) -> list[dict]:
        found = [p for p in self._walk() if not any(part.startswith(TEMP_PREFIX) for part in p.relative_to(self.root).parts)]
        return [self.info(p) for p in sorted(found, key=lambda p: p.relative_to(self.root).as_posix())]

    def remove_stale_uploads(self, older_than: float = STALE_UPLOAD_SECONDS) -> int:
        """Remove temporary upload files nobody has written to for ``older_than`` seconds; how many."""
        removed = 0
        deadline = time.time() - older_than
        for path in list(self._walk()):
            try:
                stale = path.name.startswith(TEMP_PREFIX) and os.lstat(path).st_mtime < deadline
            except OSError:
                continue
            if stale:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def used_bytes(self) -> int:
        """Bytes the user's files take (what the storage quota counts; uploads in progress are not files yet)."""
        return sum(entry["size"] for entry in self.list())

    def size_of(self, path: str) -> int:
        """Bytes of the file at ``path``, 0 if there is none: an upload replacing it frees them."""
        local = self.local_path(path)
        return local.stat().st_size if self._regular_file(local) else 0

    def begin(self, path: str) -> "Upload":
        """An upload into a temporary file beside ``path``; ``commit()`` renames it into place."""
        local = self.local_path(path)
        if self._linked(local.parent):
            raise FilePathInvalid(f"The file path {path!r} is invalid: a link is in the way of its folder.")
        if local.is_dir() and not local.is_symlink():
            raise FilePathInvalid(f"The file path {path!r} is invalid: it is a folder.")
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise FilePathInvalid(f"The file path {path!r} is invalid: a file is in the way of its folder.") from None
        if self._linked(local.parent):  # made a link meanwhile: still never written through
            raise FilePathInvalid(f"The file path {path!r} is invalid: a link is in the way of its folder.")
        self.remove_stale_uploads()
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

    def remove_stale_uploads(self, older_than: float = STALE_UPLOAD_SECONDS) -> int:
        """Temporary upload files a crash left in any user's folder, removed; how many."""
        if not self.root.is_dir():
            return 0
        return sum(UserFiles(folder).remove_stale_uploads(older_than)
                   for folder in self.root.iterdir() if folder.is_dir() and not folder.is_symlink())


def user_files_dir(settings, user_id: str) -> Path:
    """Where ``user_id``'s files are: what ``ProcessEnv.files_dir`` holds."""
    return FileStore.from_settings(settings).user(user_id).root


__all__ = ["FileNotFound", "FilePathInvalid", "FileStore", "UserFiles", "check_path", "user_files_dir"]
