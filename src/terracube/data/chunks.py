"""How big a dask chunk of a loaded cube is.

Bigger chunks read faster (a COG window has a fixed cost, about a third of a 1024 x 1024 read,
and every chunk is a handful of dask tasks) but a reduction over time holds a chunk's whole stack
of scenes and bands at once, so memory grows with the chunk's area times the scenes. The edge is
the setting ``chunk_size`` at most, and smaller when that stack would outgrow ``chunk_memory``.
An area of a few thousand pixels is still cut in two along its longer side (not below 1024 pixels),
so that both halves of a reduction over time run at once.
"""

from __future__ import annotations

import math

from terracube.settings import Settings

COG_TILE = 256  # chunks in whole tiles of the usual COG layout read no tile twice
SPLIT_ABOVE = 1024  # areas up to this many pixels wide stay one chunk: small requests need no parallel reduction


def chunk_edge(settings: Settings, scenes: int, bands: int, shape: tuple[int, int]) -> int:
    largest = int(settings.chunk_size)
    budget = int(settings.chunk_memory)
    fits = math.isqrt(budget // (4 * max(1, scenes * bands)))  # float32 pixels
    half = -(-max(shape) // 2)
    in_two = max(SPLIT_ABOVE, -(-half // COG_TILE) * COG_TILE)
    return min(largest, in_two, max(COG_TILE, fits // COG_TILE * COG_TILE))
