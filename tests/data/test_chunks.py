"""A loaded cube's chunks: as big as the setting allows, smaller when a chunk's stack of scenes would not fit."""

from terracube.data.chunks import chunk_edge
from terracube.settings import Settings


QUARTER_TILE = (5490, 5490)


def test_a_few_scenes_get_the_largest_chunks():
    assert chunk_edge(Settings(), scenes=12, bands=3, shape=QUARTER_TILE) == 2048  # 12 x 3 x 2048 x 2048 float32: 604 MB


def test_a_mid_sized_area_is_cut_in_two_so_both_cores_reduce_at_once():
    assert chunk_edge(Settings(), scenes=12, bands=3, shape=(2745, 2745)) == 1536
    assert chunk_edge(Settings(), scenes=12, bands=3, shape=(1380, 1000)) == 1024
    assert chunk_edge(Settings(), scenes=2, bands=2, shape=(303, 449)) == 1024  # the tutorial: one chunk


def test_a_long_time_series_gets_smaller_chunks_so_its_stack_fits_the_budget():
    settings = Settings()
    edge = chunk_edge(settings, scenes=150, bands=3, shape=QUARTER_TILE)
    assert edge % 256 == 0 and edge < 2048
    assert 150 * 3 * edge * edge * 4 <= settings.chunk_memory
    assert 150 * 3 * (edge + 256) ** 2 * 4 > settings.chunk_memory  # the largest that fits


def test_the_edge_never_drops_below_one_cog_tile_nor_exceeds_the_setting():
    assert chunk_edge(Settings(), scenes=10_000, bands=13, shape=QUARTER_TILE) == 256
    assert chunk_edge(Settings(chunk_size=128), scenes=1, bands=1, shape=QUARTER_TILE) == 128
    assert chunk_edge(Settings(chunk_size=4096, chunk_memory=2**34), scenes=2, bands=2, shape=(10980, 10980)) == 4096
