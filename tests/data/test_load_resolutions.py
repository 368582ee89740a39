"""Bands coarser than the request grid come out as nearest-neighbour copies of their own pixels."""

import numpy as np
import pandas as pd
import rasterio
from rasterio.windows import from_bounds

from terracube.processes.env import ProcessEnv
from terracube.processes.load import load_collection

from tests.conftest import AFTER, TUTORIAL_AOI, TUTORIAL_BOUNDS


def test_20_and_60_m_bands_on_the_10_m_grid_repeat_their_native_pixels(catalog, settings):
    cube = load_collection(
        "SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=["B04", "SCL", "B01"],
        env=ProcessEnv(catalog=catalog, settings=settings),
    )
    assert list(cube.bands.values) == ["B04", "SCL", "B01"] and cube.shape == (1, 3, 303, 449)
    assert cube.odc.crs.epsg == 32632
    start, end = (pd.Timestamp(day, tz="UTC").to_pydatetime() for day in AFTER)
    [item] = catalog.get("SENTINEL2_L2A").search(None, start, end)
    for band, factor in (("SCL", 2), ("B01", 6)):
        with rasterio.open(item.assets[band].get_absolute_href()) as src:
            west, south, east, north = TUTORIAL_BOUNDS
            coarse = factor * 10
            window = from_bounds(west // coarse * coarse, south // coarse * coarse, -(-east // coarse) * coarse, -(-north // coarse) * coarse, src.transform)
            native = src.read(1, window=window.round_offsets().round_lengths()).astype("float32")
        repeated = native.repeat(factor, axis=0).repeat(factor, axis=1)
        row0 = int((-(-north // coarse) * coarse - north) / 10)
        col0 = int((west - west // coarse * coarse) / 10)
        expected = repeated[row0 : row0 + 303, col0 : col0 + 449]
        np.testing.assert_array_equal(cube.sel(bands=band).isel(t=0).values, expected)


def test_a_20_m_band_lands_on_the_same_pixels_in_every_chunk(catalog, settings):
    # Small chunks put chunk edges inside the box and inside 20 m pixels, where an offset would show.
    cube = load_collection(
        "SENTINEL2_L2A", spatial_extent=TUTORIAL_AOI, temporal_extent=AFTER, bands=["SCL", "B04"],
        env=ProcessEnv(catalog=catalog, settings=settings.model_copy(update={"chunk_size": 128})),
    )
    assert list(cube.bands.values) == ["SCL", "B04"] and cube.shape == (1, 2, 303, 449)
    assert len(cube.chunks[2]) > 2 and len(cube.chunks[3]) > 2
    start, end = (pd.Timestamp(day, tz="UTC").to_pydatetime() for day in AFTER)
    [item] = catalog.get("SENTINEL2_L2A").search(None, start, end)
    west, south, east, north = TUTORIAL_BOUNDS
    with rasterio.open(item.assets["B04"].get_absolute_href()) as src:
        native_10m = src.read(1, window=from_bounds(west, south, east, north, src.transform).round_offsets().round_lengths())
    np.testing.assert_array_equal(cube.sel(bands="B04").isel(t=0).values, native_10m.astype("float32"))
    with rasterio.open(item.assets["SCL"].get_absolute_href()) as src:
        window = from_bounds(west // 20 * 20, south // 20 * 20, -(-east // 20) * 20, -(-north // 20) * 20, src.transform)
        native = src.read(1, window=window.round_offsets().round_lengths()).astype("float32")
    row0, col0 = int((-(-north // 20) * 20 - north) / 10), int((west - west // 20 * 20) / 10)
    expected = native.repeat(2, axis=0).repeat(2, axis=1)[row0 : row0 + 303, col0 : col0 + 449]
    np.testing.assert_array_equal(cube.sel(bands="SCL").isel(t=0).values, expected)
