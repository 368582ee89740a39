"""load_url (a proposal): a file from an HTTP(S) URL as a data cube.

The input formats are ``/file_formats``' (``formats.INPUT_FORMATS``): GeoTIFF and netCDF give a
raster cube, GeoJSON a vector cube (``load_geojson``). The file is downloaded once into a
temporary folder, through ``data/network.py`` (the archives' timeouts and retries, a size limit,
URLs without their query strings in errors), and opened lazily; only ``http://`` and ``https://``
URLs are fetched, as the spec says.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from terracube.data.network import download, redact
from terracube.errors import FormatUnsuitable, ProcessParameterInvalid
from terracube.formats import InputFormat, input_format
from terracube.processes.env import ProcessEnv

MAX_BYTES = 2 * 1024**3


def fetch(url: str, env: ProcessEnv) -> Path:
    """The file at ``url`` in a local folder (named by the URL's hash: one download, one name)."""
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise ProcessParameterInvalid(f"'url' must be an http:// or https:// URL, got {url!r}.")
    folder = Path(tempfile.gettempdir()) / "terracube-load-url"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / hashlib.sha256(url.encode()).hexdigest()
    # A partial file of its own: two requests for one URL never write into the same file.
    descriptor, partial = tempfile.mkstemp(dir=folder, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as out:
            download(url, out, env.settings, max_bytes=MAX_BYTES, doing="Downloading the file")
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)
    return path


def read_files(paths: list[Path], kind: InputFormat, what: str) -> Any:
    """One cube from files in an input format: a raster cube, or a vector cube from GeoJSON."""
    try:
        value = kind.reader(paths)
        if isinstance(value, dict):  # a GeoJSON document
            from terracube.processes.vector import load_geojson

            value = load_geojson(value)
    except (OSError, ValueError, KeyError) as error:
        # The readers name the file by its path on the server: the user sees its name only.
        reason = str(error)
        for path in paths:
            reason = reason.replace(str(path), Path(path).name)
        raise FormatUnsuitable(f"{what} can't be read as {kind.name}: {reason}") from error
    return value


def load_url(url: str, format: str, options: dict | None = None, *, env: ProcessEnv) -> Any:  # noqa: A002 - the spec's name
    kind = input_format(format)
    return read_files([fetch(url, env)], kind, f"The file at {redact(url)}")
