"""Assets on the request's grid are read directly, and the cube is the one odc-stac reads."""

import json
import shutil

import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox

from terracube.data.aligned import load_aligned
from terracube.data.load import ReadOptions, _driver, _load_by_resolution, load_items
from terracube.data.reader import gdal_environment
from terracube.data.sample.landscape import SAMPLE_AREA

BANDS = {"B04": "B04", "SCL": "SCL", "B01": "B01"}  # 10, 20 and 60 m
RESOLUTIONS = {"B04": 10.0, "SCL": 20.0, "B01": 60.0}


@pytest.fixture(scope="module")
def driver():
    return _driver(ReadOptions(gdal=gdal_environment({}, 30, 2)))


@pytest.fixture(scope="module")
def scenes(catalog):
    """Three scenes, newest first, as load_items orders them."""
    items = catalog.get("SENTINEL2_L2A").search(None, pd.Timestamp("2021-07-01", tz="UTC"), pd.Timestamp("2021-08-31", tz="UTC"))
    return sorted(items, key=lambda item: item.datetime, reverse=True)[:3]


def grid(west: float, north: float, shape: tuple[int, int], resolution: float = 10.0) -> GeoBox:
    return GeoBox(shape, Affine(resolution, 0, west, 0, -resolution, north), "EPSG:32632")


def through_odc(items, geobox, chunk, driver):
    cube = _load_by_resolution(items, BANDS, geobox, chunk, driver, RESOLUTIONS)
    days = pd.DatetimeIndex(cube.t.values).floor("D")
    return cube.assign_coords(t=days.values.astype("datetime64[ns]"))


def assert_same_cube(direct, odc):
    days = pd.DatetimeIndex(direct.t.values).floor("D").values.astype("datetime64[ns]")
    np.testing.assert_array_equal(days, odc.t.values)
    assert list(direct.bands.values) == list(odc.bands.values)
    np.testing.assert_array_equal(direct.x.values, odc.x.values)
    np.testing.assert_array_equal(direct.y.values, odc.y.values)
    np.testing.assert_array_equal(direct.values, odc.values)  # NaN where odc-stac has NaN, too


@pytest.mark.parametrize("chunk", [128, 2048])
def test_a_window_inside_the_tile_reads_as_odc_stac_reads_it(scenes, driver, chunk):
    # 150 x 201 pixels starting on an odd 10 m pixel: the 20 and 60 m pixels straddle chunk edges
    geobox = grid(SAMPLE_AREA.west + 3010, SAMPLE_AREA.north - 1230, (150, 201))
    direct = load_aligned(scenes, BANDS, geobox, chunk, driver)
    assert direct is not None and direct.sizes["t"] == 3
    assert_same_cube(direct, through_odc(scenes, geobox, chunk, driver))


def test_a_window_over_the_tiles_edge_is_nodata_beyond_it(scenes, driver):
    geobox = grid(SAMPLE_AREA.west - 640, SAMPLE_AREA.north + 320, (300, 260))
    direct = load_aligned(scenes, BANDS, geobox, 128, driver)
    assert_same_cube(direct, through_odc(scenes, geobox, 128, driver))
    values = direct.sel(bands="B04").values
    assert np.isnan(values[:, :32, :]).all() and np.isnan(values[:, :, :64]).all()
    assert np.isfinite(values[:, 40:, 70:]).any()


@pytest.mark.parametrize("geobox", [
    grid(SAMPLE_AREA.west + 3005, SAMPLE_AREA.north - 1230, (60, 60)),  # half a pixel off the tile's grid
    grid(SAMPLE_AREA.west + 3000, SAMPLE_AREA.north - 1230, (40, 40), resolution=15.0),  # not a whole multiple
])
def test_a_request_off_the_assets_grid_is_left_to_odc_stac(scenes, driver, geobox):
    assert load_aligned(scenes, BANDS, geobox, 128, driver) is None
    cube = load_items(scenes, BANDS, geobox, 128, ReadOptions(gdal=gdal_environment({}, 30, 2)), RESOLUTIONS)
    assert cube.shape == (3, 3, *geobox.shape.yx) and np.isfinite(cube.values).any()


def test_a_file_that_is_not_where_its_item_says_is_read_from_its_own_grid(scenes, driver, tmp_path):
    """An item whose proj: fields claim the request's grid while its file lies 7 m east of it:
    the read follows the file (warped, as odc-stac does), not the item."""
    [scene] = [pystac.Item.from_dict(scenes[0].to_dict(), preserve_dict=False)]
    source = scene.assets["B04"].get_absolute_href()
    shifted = tmp_path / "B04.tif"
    with rasterio.open(source) as src:
        profile = {**src.profile, "transform": src.transform * Affine.translation(0.7, 0)}
        with rasterio.open(shifted, "w", **profile) as dst:
            dst.write(src.read())
    scene.assets.clear()
    scene.add_asset("B04", pystac.Asset(str(shifted), extra_fields=dict(scenes[0].assets["B04"].extra_fields)))
    bands = {"B04": "B04"}
    geobox = grid(SAMPLE_AREA.west + 3010, SAMPLE_AREA.north - 1230, (64, 96))
    direct = load_aligned([scene], bands, geobox, 32, driver)
    assert direct is not None  # the item says: on the grid
    odc = _load_by_resolution([scene], bands, geobox, 32, driver, {"B04": 10.0})
    np.testing.assert_array_equal(direct.values, odc.values)
    with rasterio.open(source) as src:
        on_grid = src.read(1, window=rasterio.windows.from_bounds(*geobox.boundingbox, src.transform).round_offsets().round_lengths())
    # each pixel takes the file's pixel whose area holds its centre: the one to its west
    np.testing.assert_array_equal(direct.values[0, 0, :, 1:], on_grid[:, :-1].astype("float32"))


def test_scenes_of_one_day_are_mosaicked_newest_first(scenes, driver, tmp_path):
    """Two scenes on one day, the newer covering only the west half: the east comes from the older."""
    older = scenes[0]
    newer = pystac.Item.from_dict(json.loads(json.dumps(older.to_dict())), preserve_dict=False)
    newer.id = older.id + "_later"
    newer.datetime = older.datetime + pd.Timedelta(minutes=5)
    source = older.assets["B04"].get_absolute_href()
    half = tmp_path / "B04.tif"
    with rasterio.open(source) as src:
        width = src.width // 2
        profile = {**src.profile, "width": width}
        with rasterio.open(half, "w", **profile) as dst:
            dst.write((src.read(window=rasterio.windows.Window(0, 0, width, src.height)) // 2).clip(1))
    shutil.copy(source, tmp_path / "B04_older.tif")
    newer.assets.clear()
    newer.add_asset("B04", pystac.Asset(str(half), extra_fields={**older.assets["B04"].extra_fields, "proj:shape": [profile["height"], width]}))
    older_copy = pystac.Item.from_dict(older.to_dict(), preserve_dict=False)
    older_copy.assets.clear()
    older_copy.add_asset("B04", pystac.Asset(str(tmp_path / "B04_older.tif"), extra_fields=dict(older.assets["B04"].extra_fields)))
    bands = {"B04": "B04"}
    middle = SAMPLE_AREA.west + width * 10
    geobox = grid(middle - 400, SAMPLE_AREA.north - 1000, (50, 80))
    direct = load_aligned([newer, older_copy], bands, geobox, 32, driver)
    assert direct.sizes["t"] == 1
    odc = _load_by_resolution([newer, older_copy], bands, geobox, 32, driver, {"B04": 10.0})
    np.testing.assert_array_equal(direct.values, odc.values)
    with rasterio.open(source) as src:
        full = src.read(1, window=rasterio.windows.from_bounds(*geobox.boundingbox, src.transform).round_offsets().round_lengths())
    assert (full > 0).all()  # no nodata in the original here, so every pixel says where it came from
    values = direct.values[0, 0]
    np.testing.assert_array_equal(values[:, 40:], full[:, 40:])  # east of the newer scene: the older one
    np.testing.assert_array_equal(values[:, :40], np.maximum(full[:, :40] // 2, 1))  # the newer one on top


def test_two_archives_with_the_same_scene_ids_read_their_own_files(scenes, driver, tmp_path):
    """Two collections may name their scenes alike; a cube combining both must not confuse their reads."""
    original = scenes[0]
    copy = pystac.Item.from_dict(original.to_dict(), preserve_dict=False)  # same id, other file
    with rasterio.open(original.assets["B04"].get_absolute_href()) as src:
        with rasterio.open(tmp_path / "B04.tif", "w", **src.profile) as dst:
            dst.write(src.read() // 2 + 1)
    copy.assets.clear()
    copy.add_asset("B04", pystac.Asset(str(tmp_path / "B04.tif"), extra_fields=dict(original.assets["B04"].extra_fields)))
    geobox = grid(SAMPLE_AREA.west + 3010, SAMPLE_AREA.north - 1230, (20, 30))
    first = load_aligned([original], {"B04": "B04"}, geobox, 16, driver)
    second = load_aligned([copy], {"B04": "B04"}, geobox, 16, driver)
    assert first.data.name != second.data.name
    np.testing.assert_array_equal(np.floor(first.values / 2) + 1, second.values)
