"""load_uploaded_files (a proposal): the user's uploaded files (``/files``) as one data cube.

The process knows nothing of users: ``env.files_dir`` is the folder of whoever runs the graph.
As the spec says, the workspace is the root: ``/a.tif``, ``a.tif`` and ``./a.tif`` are the same
file and a path leaving the workspace is simply not found. Formats are load_url's: GeoTIFF and
netCDF give a raster cube, GeoJSON a vector cube. Several raster files are mosaicked (the first
file wins where they overlap); several GeoJSON files become one vector cube of all features.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from terracube.errors import FileNotFound, FilePathInvalid, FormatUnsupported, ProcessError, ProcessParameterInvalid
from terracube.files.store import UserFiles
from terracube.processes.env import ProcessEnv
from terracube.processes.load_url import FORMATS, read_gtiff, read_netcdf


def resolve(files_dir: Path, path: str) -> Path:
    if not isinstance(path, str) or not path.strip():
        raise ProcessParameterInvalid(f"Each path must be a non-empty string, got {path!r}.")
    # The workspace is the root: "/a.tif", "./a.tif" and "a.tif" are one file; the rest of the
    # path rules are /files' own.
    relative = "/".join(part for part in path.replace("\\", "/").split("/") if part not in ("", "."))
    try:
        return UserFiles(files_dir).existing(relative)
    except (FilePathInvalid, FileNotFound):
        raise ProcessError("FileNotFound", f"The file '{path}' does not exist in your workspace: GET /files lists your files.") from None


def load_uploaded_files(paths: list, format: str, options: dict | None = None, *, env: ProcessEnv) -> Any:
    kind = FORMATS.get(str(format).lower())
    if kind is None:
        raise FormatUnsupported(f"Format '{format}' can't be loaded from uploaded files; supported: GTiff, netCDF, GeoJSON.")
    if not isinstance(paths, (list, tuple)) or not paths:
        raise ProcessParameterInvalid("'paths' must list at least one file.")
    if env.files_dir is None:
        raise ProcessError("FileNotFound", "There is no file workspace here (no user): upload files with PUT /files first.")
    locals_ = [resolve(Path(env.files_dir), p) for p in paths]
    try:
        if kind == "GeoJSON":
            return _geojson(locals_)
        reader = read_netcdf if kind == "netCDF" else read_gtiff
        cubes = [reader(p) for p in locals_]
    except (OSError, ValueError, KeyError) as error:
        raise ProcessError("FormatUnsuitable", f"The files {list(paths)} can't be read as {kind}: {error}") from error
    cube = cubes[0]
    for other in cubes[1:]:
        attrs = cube.attrs
        cube = cube.combine_first(other)
        cube.attrs = attrs
    return cube


def _geojson(files: list[Path]) -> Any:
    from terracube.processes.vector import load_geojson

    documents = [json.loads(p.read_text(encoding="utf-8")) for p in files]
    if len(documents) == 1:
        return load_geojson(documents[0])
    features = []
    for document in documents:
        if document.get("type") == "FeatureCollection":
            features.extend(document.get("features", []))
        elif document.get("type") == "Feature":
            features.append(document)
        else:
            features.append({"type": "Feature", "geometry": document, "properties": {}})
    return load_geojson({"type": "FeatureCollection", "features": features})
