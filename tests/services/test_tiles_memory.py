"""The hottest tiles in memory: answered without drawing or reading a file, and never once their service
changed, was disabled or deleted; a deleted service's tiles leave the disk cache too.

In process (FastAPI's TestClient) on a real SQLite file, as tests/services/test_services_api.py; a
change "by another server process" is made through a second store on the same database file.
"""
# ruff: noqa: F811  (the fixtures come from tiles_fixtures: tests/services/conftest.py is the services API's)

from __future__ import annotations

import shutil
import time

import pytest
from fastapi.testclient import TestClient

from terracube.api.app import create_app
from terracube.api.service_tiles import STATE_SECONDS
from terracube.jobs.store import JobStore
from terracube.services.cache import MemoryTiles, tile_cache
from terracube.services.store import ServiceStore
from terracube.settings import Settings
from tests.services.layers import AHR_TILE, ndvi_layer, tile_path
from tests.services.tiles_fixtures import draws  # noqa: F401  (a fixture)

NEIGHBOUR = (AHR_TILE[0], AHR_TILE[1] + 1, AHR_TILE[2])


@pytest.fixture(scope="module")
def world(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiles-memory")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{folder / 'terracube.db'}", results_root=str(folder / "results"),
                        tile_cache_dir=folder / "tiles")
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        yield client, settings


def create(client: TestClient) -> str:
    response = client.post("/services", json={"type": "XYZ", "process": ndvi_layer(), "configuration": {"colormap": "RdYlGn"}})
    assert response.status_code == 201, response.text
    return response.headers["OpenEO-Identifier"]


def tiles_on_disk(settings: Settings, service_id: str) -> dict[str, int]:
    """The service's tile files per version folder."""
    folder = tile_cache(settings).service_folder(service_id)
    return {version.name: len(list(version.rglob("*.tile"))) for version in folder.iterdir()} if folder.exists() else {}


def test_a_tile_seen_before_comes_from_memory(world, draws):
    client, settings = world
    service_id = create(client)
    first = client.get(tile_path(service_id, *AHR_TILE))
    assert first.status_code == 200 and draws == [AHR_TILE]
    assert tiles_on_disk(settings, service_id) == {"1": 1}
    shutil.rmtree(tile_cache(settings).service_folder(service_id))  # not from the disk, then
    again = client.get(tile_path(service_id, *AHR_TILE))
    assert (again.status_code, again.content, again.headers["ETag"]) == (200, first.content, first.headers["ETag"])
    assert again.headers["Cache-Control"] == "no-cache"
    assert client.get(tile_path(service_id, *AHR_TILE), headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    assert draws == [AHR_TILE]
    # Another style of the same tile is another picture: drawn, not the one in memory.
    viridis = client.get(tile_path(service_id, *AHR_TILE), params={"colormap": "viridis"})
    assert viridis.status_code == 200 and viridis.headers["ETag"] != first.headers["ETag"] and len(draws) == 2


def test_a_patch_starts_a_version_whose_tiles_are_drawn_anew(world, draws):
    client, settings = world
    service_id = create(client)
    old = client.get(tile_path(service_id, *AHR_TILE))
    client.get(tile_path(service_id, *NEIGHBOUR))
    assert tiles_on_disk(settings, service_id) == {"1": 2}
    assert client.patch(f"/services/{service_id}", json={"configuration": {"colormap": "Greys"}}).status_code == 204
    assert tiles_on_disk(settings, service_id) == {}  # version 1's tiles are never served again: gone
    new = client.get(tile_path(service_id, *AHR_TILE))
    assert new.status_code == 200 and new.headers["ETag"] != old.headers["ETag"] and draws == [AHR_TILE, NEIGHBOUR, AHR_TILE]
    assert tiles_on_disk(settings, service_id) == {"2": 1}
    # A title changes no pixel, but it is a new version too: the tile is drawn again, the same picture.
    assert client.patch(f"/services/{service_id}", json={"title": "renamed"}).status_code == 204
    assert client.get(tile_path(service_id, *AHR_TILE)).headers["ETag"] == new.headers["ETag"] and len(draws) == 4
    assert tiles_on_disk(settings, service_id) == {"3": 1}


def test_disabled_or_deleted_stops_at_once_though_its_tiles_are_in_memory(world, draws):
    client, settings = world
    service_id = create(client)
    tile = tile_path(service_id, *AHR_TILE)
    assert client.get(tile).status_code == 200 and client.get(tile).status_code == 200 and len(draws) == 1
    assert client.patch(f"/services/{service_id}", json={"enabled": False}).status_code == 204
    refused = client.get(tile)
    assert (refused.status_code, refused.json()["code"]) == (404, "ServiceNotFound")
    assert client.patch(f"/services/{service_id}", json={"enabled": True}).status_code == 204
    assert client.get(tile).status_code == 200 and len(draws) == 2
    memory = tile_cache(settings).memory
    held = memory.nbytes
    assert client.delete(f"/services/{service_id}").status_code == 204
    refused = client.get(tile)
    assert (refused.status_code, refused.json()["code"]) == (404, "ServiceNotFound")
    assert tiles_on_disk(settings, service_id) == {} and not tile_cache(settings).service_folder(service_id).exists()
    assert memory.nbytes < held  # its tiles left the memory too


def test_a_change_by_another_server_process_reaches_the_tiles_within_a_second(world, draws):
    client, settings = world
    service_id = create(client)
    tile = tile_path(service_id, *AHR_TILE)
    assert client.get(tile).status_code == 200
    other = JobStore(settings.database_url)  # another API process on the same database
    try:
        stored = ServiceStore(other).get("anonymous", service_id).service
        assert ServiceStore(other).update("anonymous", service_id, stored.version, enabled=False) is not None
    finally:
        other.close()
    time.sleep(STATE_SECONDS + 0.1)
    refused = client.get(tile)
    assert (refused.status_code, refused.json()["code"]) == (404, "ServiceNotFound")
    assert len(draws) == 1


def test_memory_holds_the_most_recently_used_tiles_within_its_bytes():
    memory = MemoryTiles(max_bytes=4 * (1000 + MemoryTiles.OVERHEAD))
    for name in "abcd":
        memory.put(("s", 1, name), name * 1000, 1000)
    assert memory.get(("s", 1, "a")) == "a" * 1000  # now the most recently used
    memory.put(("s", 2, "e"), "e" * 1000, 1000)  # full: the least recently used ("b") goes
    assert memory.get(("s", 1, "b")) is None and memory.get(("s", 1, "c")) == "c" * 1000
    assert memory.nbytes <= memory.max_bytes
    memory.put(("s", 2, "huge"), "x", memory.max_bytes)  # a tile bigger than a quarter of it is not kept
    assert memory.get(("s", 2, "huge")) is None
    memory.forget("s", keep_version=2)
    assert [memory.get(("s", 1, name)) for name in "acd"] == [None] * 3 and memory.get(("s", 2, "e")) == "e" * 1000
    memory.forget("s")
    assert memory.get(("s", 2, "e")) is None and memory.nbytes == 0
    off = MemoryTiles(0)
    off.put(("s", 1, "a"), "a", 1)
    assert off.get(("s", 1, "a")) is None
