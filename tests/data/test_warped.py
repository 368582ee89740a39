"""Map tiles warp their scenes directly (data/warped.py), and get the cube odc-stac reads."""

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from odc.geo.geobox import GeoBox

from terracube.data.load import ReadOptions, _driver, _load_by_resolution, load_items
from terracube.data.reader import gdal_environment

BANDS = {"B04": "B04", "SCL": "SCL", "B01": "B01"}  # 10, 20 and 60 m
RESOLUTIONS = {"B04": 10.0, "SCL": 20.0, "B01": 60.0}


@pytest.fixture(scope="module")
def driver():
    return _driver(ReadOptions(gdal=gdal_environment({}, 30, 2)))


@pytest.fixture(scope="module")
def scenes(catalog):
    items = catalog.get("SENTINEL2_L2A").search(None, pd.Timestamp("2021-07-18", tz="UTC"), pd.Timestamp("2021-07-24", tz="UTC"))
    return sorted(items, key=lambda item: item.datetime, reverse=True)


def tile(x: int, y: int, z: int, size: int = 256) -> GeoBox:
    """A Web Mercator tile's grid (EPSG:3857), as services/tiles.py makes it."""
    world = 2 * np.pi * 6378137.0
    step = world / 2**z / size
    return GeoBox((size, size), Affine(step, 0, -world / 2 + x * size * step, 0, -step, world / 2 - y * size * step), "EPSG:3857")


@pytest.mark.parametrize("grid", [tile(4255, 2759, 13), tile(4257, 2759, 13), tile(2128, 1379, 12), tile(8514, 5518, 14, 512)],
                         ids=["edge-z13", "inside-z13", "overview-z12", "z14-512"])
def test_a_warped_tile_is_the_cube_odc_stac_reads(scenes, driver, grid):
    warped = load_items(scenes, BANDS, grid, 2048, ReadOptions(gdal=gdal_environment({}, 30, 2)), RESOLUTIONS, warp=True)
    odc = _load_by_resolution(scenes, BANDS, grid, 2048, driver, RESOLUTIONS)
    assert warped.data.name.startswith("warp-")  # not odc-stac's: the test compares two readers
    assert warped.shape == (3, 3, grid.shape.y, grid.shape.x) and warped.dtype == np.float32
    days = pd.DatetimeIndex(odc["t"].values).floor("D")
    assert list(pd.DatetimeIndex(warped["t"].values)) == list(days)
    ours, theirs = warped.values, odc.values
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    same = (ours == theirs) | np.isnan(ours)
    # Nearest neighbour both, through GDAL's approximate transformer: only pixel centres within its error
    # (an eighth of a pixel) of a source pixel's edge may round the other way. Exactness against the
    # source pixels themselves is tests/services/test_tiles_render.py's business.
    assert same.mean() > 0.995
    assert np.isfinite(ours).any()


def test_a_tile_being_drawn_reads_one_day_at_once_into_the_same_cube(scenes):
    """``eager`` (a tile being drawn): a load of one day is read now, into numpy, and is the lazy cube
    computed; a load of several days stays lazy, since the tile may draw only one of them."""
    import dask.array
    import xarray as xr

    grid, options = tile(4255, 2759, 13), ReadOptions(gdal=gdal_environment({}, 30, 2))
    one_day = [item for item in scenes if item.datetime.date().isoformat() == "2021-07-21"]
    lazy = load_items(one_day, BANDS, grid, 2048, options, RESOLUTIONS, warp=True)
    eager = load_items(one_day, BANDS, grid, 2048, options, RESOLUTIONS, warp=True, eager=True)
    assert isinstance(lazy.data, dask.array.Array) and isinstance(eager.data, np.ndarray)
    xr.testing.assert_identical(eager, lazy.compute())
    assert np.isfinite(eager.values).any() and np.isnan(eager.values).any()  # the archive's edge crosses this tile
    several = load_items(scenes, BANDS, grid, 2048, options, RESOLUTIONS, warp=True, eager=True)
    assert several.sizes["t"] == 3 and isinstance(several.data, dask.array.Array)


def test_the_scenes_parse_is_kept_for_the_same_items_only(scenes):
    """Every tile of a layer loads the same items (a catalog keeps them): parsed once. Other objects, even
    equal ones (a STAC API's search gives new ones every time), are parsed anew and not kept alive."""
    import copy
    import gc
    import weakref

    from terracube.data.load import parsed_items

    options = ReadOptions(gdal=gdal_environment({}, 30, 2))
    driver = _driver(options)
    first = parsed_items(scenes, options, driver)
    assert parsed_items(list(scenes), options, driver) is first
    assert parsed_items(scenes[::-1], options, driver) is not first  # the order is part of a parse
    copies = [copy.deepcopy(item) for item in scenes]
    alive = weakref.ref(copies[0])
    again = parsed_items(copies, options, driver)
    assert again is not first and [p.id for p in again] == [p.id for p in first]
    kept = weakref.ref(again[0])
    del copies, again
    gc.collect()
    assert alive() is None
    parsed_items(scenes[1:], options, driver)  # storing another parse drops the one whose items are gone
    gc.collect()
    assert kept() is None
    harmonized = ReadOptions(gdal=options.gdal, harmonize_assets=frozenset({"B04"}))
    assert parsed_items(scenes, harmonized, _driver(harmonized)) is not first  # another parser's settings
