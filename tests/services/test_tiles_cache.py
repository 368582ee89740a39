"""The tile cache: a drawn tile is drawn once per service version and style, on disk, bounded, one draw at a time."""
# ruff: noqa: F811  (the fixtures come from tiles_fixtures: tests/services/conftest.py is the services API's)

from __future__ import annotations

import dataclasses
import os
import threading
import time

from terracube.services import tiles
from terracube.services.cache import TileCache
from terracube.services.tiles import render_tile
from tests.services.tiles_fixtures import draws, env, ndvi_graph, service, tile_settings  # noqa: F401  (fixtures)

INSIDE = (13, 4257, 2759)


def test_a_cached_tile_is_not_drawn_again(env, draws):
    layer = service(ndvi_graph(), {"colormap": "RdYlGn"})
    first = render_tile(env, layer, *INSIDE)
    second = render_tile(env, layer, *INSIDE)
    assert draws == [INSIDE]
    assert second == first and len(first.etag) == 32
    # Another style is another tile; the same style written differently is the same one.
    render_tile(env, layer, *INSIDE, options={"colormap": "viridis"})
    render_tile(env, layer, *INSIDE, options={"colormap": "VIRIDIS", "format": "png"})
    assert len(draws) == 2
    # A new version of the service (PATCH) never sees the old version's tiles.
    changed = dataclasses.replace(layer, version=2, configuration={"colormap": "Greys"})
    grey = render_tile(env, changed, *INSIDE)
    assert len(draws) == 3 and grey.etag != first.etag
    assert render_tile(env, layer, *INSIDE).etag == first.etag and len(draws) == 3


def test_the_cache_survives_a_new_process(env, tile_settings, draws):
    layer = service(ndvi_graph())
    drawn = render_tile(env, layer, *INSIDE)
    # Another server process on the same disk: a fresh cache object and no prepared graphs.
    tiles.clear_prepared()
    reread = TileCache(tile_settings.tile_cache_dir, tile_settings.tile_cache_bytes)
    key = (layer.id, layer.version, *INSIDE, 256, tiles.parse_configuration({}).rendering.key(), None)
    assert reread.get(key) == drawn.content
    assert [p.name for p in tile_settings.tile_cache_dir.glob("*/*/*/*") if not p.name.endswith(".tile")] == []  # no partial files


def test_concurrent_requests_for_one_tile_draw_it_once(env, draws):
    layer = service(ndvi_graph(), {"colormap": "RdYlGn"})
    start = threading.Barrier(6)
    results, errors = [], []

    def request():
        start.wait()
        try:
            results.append(render_tile(env, layer, *INSIDE))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 6
    assert draws == [INSIDE]
    assert len({tile.content for tile in results}) == 1


def test_the_least_recently_used_tiles_go_when_the_cache_is_full(tmp_path):
    cache = TileCache(tmp_path, max_bytes=3500)
    computed = []

    def tile(name):
        return cache.get_or_compute(("service", 1, name), lambda: computed.append(name) or name.encode() * 1000)

    for name in "abc":
        tile(name)
        time.sleep(0.02)  # distinct access times, whatever the file system's clock resolution
    tile("a")  # a hit: "a" is now the most recently used
    time.sleep(0.02)
    tile("d")  # 4000 bytes > 3500: the least recently used go until at most 90 % (3150 bytes) are left
    assert computed == ["a", "b", "c", "d"]
    assert cache.get(("service", 1, "b")) is None
    assert sum(path.stat().st_size for path in tmp_path.rglob("*.tile")) == 3000
    for name in "cad":  # read in this order: "c" is now the least recently used
        assert cache.get(("service", 1, name)) == name.encode() * 1000
        time.sleep(0.02)
    tile("b")  # drawn again, and "c" makes room for it
    assert computed[-1] == "b" and cache.get(("service", 1, "c")) is None and cache.get(("service", 1, "a")) is not None


def test_a_cache_of_zero_bytes_draws_every_time(tmp_path):
    cache = TileCache(tmp_path, max_bytes=0)
    computed = []
    for _ in range(2):
        assert cache.get_or_compute(("service", 1, "x"), lambda: computed.append(1) or b"x") == b"x"
    assert computed == [1, 1] and not any(os.scandir(tmp_path))
