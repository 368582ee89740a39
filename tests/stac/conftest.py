"""An Earth Search-shaped archive on 127.0.0.1: COGs on a range-request file server, items on a STAC API.

Nothing here needs the embedded sample archive: the collections under test are the operator's,
declared in a collections file, and replace or sit beside ``SENTINEL2_L2A``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from terracube.data.catalog import Catalog
from terracube.settings import Settings

from tests.http_server import StaticServer
from tests.stac import archive
from tests.stac.stac_api_server import StacApiServer

COLLECTION = "EARTH_SEARCH_S2_L2A"
# A window inside both tiles' overlap and beyond, on the tiles' own 10 m grid (EPSG:32632).
WINDOW_UTM = (363_000.0, 5_598_000.0, 368_000.0, 5_600_000.0)


class StacSettings(Settings):
    """Short network timeouts, so a test of a failing archive fails fast."""

    stac_timeout: float = 3.0
    stac_retries: int = 1
    cog_timeout: int = 3
    cog_retries: int = 1


def window(crs: int = 32632) -> dict:
    west, south, east, north = WINDOW_UTM
    return {"west": west, "south": south, "east": east, "north": north, "crs": crs}


def collections_toml(path: Path, url: str, id: str = COLLECTION, **fields) -> Path:
    """A collections file enabling the shipped Earth Search entry on ``url`` (or a new id extending it)."""
    lines = ["[[collection]]", f'id = "{id}"']
    if id != COLLECTION:
        lines.append(f'extends = "{COLLECTION}"')
    lines += ["enabled = true", f'stac_url = "{url}"']
    for key, value in fields.items():
        lines.append(f"{key} = {_toml(value)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)


def settings_for(tmp_path: Path, url: str, **fields) -> StacSettings:
    return StacSettings(data_dir=tmp_path, collections_file=collections_toml(tmp_path / "collections.toml", url, **fields))


@pytest.fixture(scope="session")
def cogs(tmp_path_factory):
    """The archive's COGs, served with range requests like an object store."""
    root = tmp_path_factory.mktemp("earth-search-cogs")
    archive.build(root)
    with StaticServer(root) as server:
        server.root = root
        yield server


@pytest.fixture(scope="session")
def stac_api(cogs):
    with StacApiServer([archive.collection_document()], archive.items(cogs.url)) as api:
        yield api


@pytest.fixture()
def es_settings(stac_api, tmp_path) -> StacSettings:
    return settings_for(tmp_path, stac_api.url)


@pytest.fixture()
def es_catalog(es_settings) -> Catalog:
    return Catalog(es_settings)
