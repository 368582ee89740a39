"""load_uploaded_files (a proposal): the user's uploaded files (``/files``) as one data cube.

The process knows nothing of users: ``env.files_dir`` is the folder of whoever runs the graph.
As the spec says, the workspace is the root: ``/a.tif``, ``a.tif`` and ``./a.tif`` are the same
file and a path leaving the workspace is simply not found. Formats are ``/file_formats``' input
formats, read as load_url reads them: GeoTIFF and netCDF give a raster cube, GeoJSON a vector cube.
Several raster files are mosaicked (the first file wins where they overlap); several GeoJSON files
become one vector cube of all features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from terracube.errors import FileNotFound, FilePathInvalid, ProcessParameterInvalid
from terracube.files.store import UserFiles
from terracube.formats import input_format
from terracube.processes.env import ProcessEnv
from terracube.processes.load_url import read_files


def resolve(files_dir: Path, path: str) -> Path:
    if not isinstance(path, str) or not path.strip():
        raise ProcessParameterInvalid(f"Each path must be a non-empty string, got {path!r}.")
    # The workspace is the root: "/a.tif", "./a.tif" and "a.tif" are one file; the rest of the
    # path rules are /files' own.
    relative = "/".join(part for part in path.replace("\\", "/").split("/") if part not in ("", "."))
    try:
        return UserFiles(files_dir).existing(relative)
    except (FilePathInvalid, FileNotFound):
        raise FileNotFound(path, "GET /files lists the files of your workspace.") from None


def load_uploaded_files(paths: list, format: str, options: dict | None = None, *, env: ProcessEnv) -> Any:  # noqa: A002 - the spec's name
    kind = input_format(format)
    if not isinstance(paths, (list, tuple)) or not paths:
        raise ProcessParameterInvalid("'paths' must list at least one file.")
    if env.files_dir is None:
        raise FileNotFound(paths[0], "There is no file workspace here (no user): upload files with PUT /files first.")
    files = [resolve(Path(env.files_dir), p) for p in paths]
    return read_files(files, kind, f"The files {list(paths)}")
