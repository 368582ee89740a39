"""The map tiles' grid: Web Mercator (EPSG:3857) tiles of morecantile's ``WebMercatorQuad``, and the
WGS84 boxes and source-pixel counts the tiles are checked against."""

from __future__ import annotations

import math
from functools import lru_cache

WORLD = 2 * math.pi * 6378137.0  # the width of EPSG:3857's world, in its metres
MAX_LATITUDE = 85.0511287798066


def union(boxes):
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def intersection(a, b):
    """The overlap of two WGS84 boxes; a box of zero area when they do not overlap (every tile misses it)."""
    west, south, east, north = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (west, south, max(west, east), max(south, north))


def overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def zoom_budget(resolution: float, bbox, budget: int) -> int:
    """The lowest zoom whose tiles cover at most ``budget`` source pixels (one band of one scene) anywhere in ``bbox``.

    A tile's ground width is its Web Mercator width times the cosine of its latitude, so the
    tiles nearest the equator cover the most ground.
    """
    if bbox is None or bbox[1] <= 0 <= bbox[3]:
        latitude = 0.0
    else:
        latitude = min(abs(bbox[1]), abs(bbox[3]))
    scale = math.cos(math.radians(min(latitude, MAX_LATITUDE)))
    for zoom in range(0, 31):
        if (WORLD / 2**zoom * scale / resolution) ** 2 <= budget:
            return zoom
    return 30


def source_pixels(zoom: int, resolution: float, latitude: float) -> int:
    return int((WORLD / 2**zoom * math.cos(math.radians(latitude)) / resolution) ** 2)


@lru_cache(maxsize=1)
def tile_matrix_set():
    """WebMercatorQuad, made once: ``morecantile.tms.get`` deep-copies the set on every call (a few ms a tile)."""
    import morecantile

    return morecantile.tms.get("WebMercatorQuad")


def tile_bounds(z: int, x: int, y: int):
    tms = tile_matrix_set()
    return tuple(tms.xy_bounds(x, y, z)), tuple(tms.bounds(x, y, z))


def tile_grid(bounds_3857, size: int):
    from affine import Affine
    from odc.geo.geobox import GeoBox

    west, _, east, north = bounds_3857
    resolution = (east - west) / size
    return GeoBox((size, size), Affine(resolution, 0, west, 0, -resolution, north), "EPSG:3857")
