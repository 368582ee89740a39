"""Reading an Earth Search-shaped archive: mosaics, the baseline-04.00 offset, grids, what is read and how."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import rasterio

from terracube.data.catalog import Catalog
from terracube.errors import OpenEOError
from terracube.execute import execute, request_env
from terracube.processes.env import ProcessEnv
from terracube.processes.load import load_collection

from tests.stac import archive, guarded_server
from tests.stac.conftest import COLLECTION, WINDOW_UTM, settings_for, window
from tests.stac.guarded_server import GuardedServer
from tests.stac.stac_api_server import StacApiServer


def centres(shape=(200, 500), gsd=10.0, bounds=WINDOW_UTM):
    west, _, _, north = bounds
    x = west + gsd * (np.arange(shape[1]) + 0.5)
    y = north - gsd * (np.arange(shape[0]) + 0.5)
    return np.meshgrid(x, y)


def load(catalog, settings, period, bands=("B04",), extent=None, collection=COLLECTION, **kw):
    return load_collection(collection, spatial_extent=extent or window(), temporal_extent=list(period), bands=list(bands),
                           env=ProcessEnv(catalog=catalog, settings=settings), **kw)


def test_stac_two_adjacent_tiles_of_one_day_are_one_label_without_a_gap(es_catalog, es_settings):
    cube = load(es_catalog, es_settings, ["2021-07-21", "2021-07-22"], bands=["B04", "B08"])
    assert cube.dims == ("t", "bands", "y", "x") and cube.shape == (1, 2, 200, 500)
    assert str(cube.t.values[0])[:19] == "2021-07-21T00:00:00"
    assert cube.odc.crs.epsg == 32632 and tuple(cube.odc.geobox.boundingbox) == WINDOW_UTM  # the tiles' own grid
    values = cube.values
    assert np.isfinite(values).all()  # the swath-edge strips of each tile are filled from the other
    xx, yy = centres()
    np.testing.assert_array_equal(values[0, 0], archive.truth("red", xx, yy))
    np.testing.assert_array_equal(values[0, 1], archive.truth("nir", xx, yy))


def test_stac_baseline_04_offset_is_removed_so_reflectances_compare(es_catalog, es_settings):
    """2021 (baseline 03.01) and 2022 (05.00, +1000 in the pixels) come out equal; SCL is left alone."""
    before = load(es_catalog, es_settings, ["2021-07-21", "2021-07-22"], bands=["B04", "B08", "B11", "SCL"]).values
    after = load(es_catalog, es_settings, ["2022-07-21", "2022-07-22"], bands=["B04", "B08", "B11", "SCL"]).values
    np.testing.assert_array_equal(before, after)
    xx, yy = centres()
    np.testing.assert_array_equal(after[0, 3], archive.truth("scl", xx, yy))
    # An item Earth Search already harmonised (boa_offset_applied) is not shifted twice.
    flagged = load(es_catalog, es_settings, ["2022-07-26", "2022-07-27"]).values[0, 0]
    west_of_the_overlap = xx < 365_700
    np.testing.assert_array_equal(flagged[west_of_the_overlap], archive.truth("red", xx, yy)[west_of_the_overlap])
    assert np.isnan(flagged[xx > 366_000]).all()  # no east tile that day: nodata, not zeros


def test_stac_without_harmonisation_the_offset_stays(stac_api, tmp_path):
    settings = settings_for(tmp_path, stac_api.url, harmonize_baseline=False)
    raw = load(Catalog(settings), settings, ["2022-07-21", "2022-07-22"]).values[0, 0]
    xx, yy = centres()
    np.testing.assert_array_equal(raw, archive.truth("red", xx, yy) + 1000)


def test_stac_20_m_bands_land_on_the_10_m_grid_and_nodata_is_nan(es_catalog, es_settings):
    cube = load(es_catalog, es_settings, ["2022-07-26", "2022-07-27"], bands=["B04", "B11"])
    xx, yy = centres()
    values = cube.sel(bands="B11").values[0]
    inside = xx < 365_700
    np.testing.assert_array_equal(values[inside], archive.truth("swir16", xx, yy)[inside])
    assert np.isnan(values[~inside]).all()


def test_stac_a_request_in_wgs84_lands_on_the_utm_zone_of_the_scenes(es_catalog, es_settings):
    west, south = archive.wgs84(363_000, 5_598_000)
    east, north = archive.wgs84(366_000, 5_600_000)
    cube = load(es_catalog, es_settings, ["2021-07-21", "2021-07-22"], extent={"west": west, "south": south, "east": east, "north": north})
    assert cube.odc.crs.epsg == 32632
    assert all(v % 10 == 0 for v in cube.odc.geobox.boundingbox)


def test_stac_a_small_window_reads_only_part_of_the_cogs(es_catalog, es_settings, cogs):
    extent = {"west": 361_000, "south": 5_599_000, "east": 361_500, "north": 5_599_500, "crs": 32632}
    cube = load(es_catalog, es_settings, ["2021-07-21", "2021-07-22"], extent=extent)
    cogs.bytes_sent.clear()
    assert np.isfinite(cube.values).all()
    read = {name: count for name, count in cogs.bytes_sent.items() if name.endswith(".tif")}
    assert sorted(read) == ["S2B_32ULB_20210721_0_L2A/B04.tif"]  # one tile, one band, one date
    whole = (cogs.root / "S2B_32ULB_20210721_0_L2A/B04.tif").stat().st_size
    assert sum(read.values()) < 0.6 * whole, (read, whole)


def test_stac_end_to_end_through_execute_with_a_gtiff(es_catalog, es_settings, tmp_path):
    graph = {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {"id": COLLECTION, "spatial_extent": window(),
                                                                  "temporal_extent": ["2021-07-21", "2022-07-22"], "bands": ["B04", "B08"],
                                                                  "properties": {"eo:cloud_cover": {"process_graph": {"c": {
                                                                      "process_id": "lt", "arguments": {"x": {"from_parameter": "value"}, "y": 50},
                                                                      "result": True}}}}}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "ndvi"}, "format": "GTiff"}, "result": True},
    }}
    [(path, _)] = execute(graph, request_env(es_settings, es_catalog, user_id=None), tmp_path).files
    with rasterio.open(path) as src:
        assert src.descriptions == ("2021-07-21", "2022-07-21")  # the cloudy day is out
        first, second = src.read(1), src.read(2)
    np.testing.assert_array_equal(first, second)  # harmonised: the same NDVI before and after
    assert np.isfinite(first).all()


# --- how the assets are read ----------------------------------------------------------------

def _api_over(server_url: str, stac_api) -> StacApiServer:
    return StacApiServer([archive.collection_document()], archive.items(server_url))


def test_stac_each_collection_reads_with_its_own_gdal_credentials_in_worker_threads(stac_api, cogs, tmp_path, monkeypatch):
    """Two collections on archives with different credentials, computed together in dask's threads."""
    monkeypatch.setenv("TEST_ARCHIVE_USERPWD", "reader:s3cret")
    with GuardedServer(cogs.root, userpwd="reader:s3cret") as private, _api_over(private.url, stac_api) as private_api:
        path = tmp_path / "collections.toml"
        path.write_text(
            '[[collection]]\nid = "EARTH_SEARCH_S2_L2A"\nenabled = true\n'
            f'stac_url = "{stac_api.url}"\n\n'
            '[[collection]]\nid = "PRIVATE_S2"\nextends = "EARTH_SEARCH_S2_L2A"\n'
            f'stac_url = "{private_api.url}"\n'
            'credentials = { GDAL_HTTP_USERPWD = "TEST_ARCHIVE_USERPWD" }\ngdal_options = { GDAL_HTTP_AUTH = "BASIC" }\n',
            encoding="utf-8",
        )
        from tests.stac.conftest import StacSettings

        settings = StacSettings(data_dir=tmp_path, collections_file=path, chunk_size=128)
        catalog = Catalog(settings)
        public = load(catalog, settings, ["2021-07-21", "2021-07-22"])
        guarded = load(catalog, settings, ["2021-07-21", "2021-07-22"], collection="PRIVATE_S2")
        with dask.config.set(scheduler="threads", num_workers=4):
            a, b = dask.compute(public.data, guarded.data)
        np.testing.assert_array_equal(a, b)
        assert sum(private.bytes_sent.values()) > 0 and not private.refused
        assert "s3cret" not in repr(guarded.data.dask)  # the secret is not in the graph's repr


def test_stac_asset_urls_are_signed_when_read_not_when_planned(stac_api, cogs, tmp_path):
    with GuardedServer(cogs.root, token=guarded_server.SIGNATURE) as signed_only, _api_over(signed_only.url, stac_api) as api:
        settings = settings_for(tmp_path, api.url, sign="tests.stac.guarded_server:sign")
        guarded_server.signed.clear()
        cube = load(Catalog(settings), settings, ["2021-07-21", "2021-07-22"])
        assert not guarded_server.signed  # planning a load touches no asset
        assert np.isfinite(cube.values).all()
        assert guarded_server.signed and all(url.startswith(signed_only.url) for url in guarded_server.signed)
        assert not signed_only.refused


def test_stac_missing_credentials_are_a_clear_access_error(stac_api, cogs, tmp_path):
    with GuardedServer(cogs.root, userpwd="reader:s3cret") as private, _api_over(private.url, stac_api) as api:
        settings = settings_for(tmp_path, api.url)
        cube = load(Catalog(settings), settings, ["2021-07-21", "2021-07-22"])
        with pytest.raises(OpenEOError) as raised:
            cube.compute()
    error = raised.value
    assert error.code == "ArchiveAccessDenied" and error.status == 502
    assert "401" in error.message and private.url in error.message and "B04.tif" in error.message


# --- load_stac of a STAC API collection --------------------------------------------------------

def test_load_stac_searches_a_stac_api_collection_like_load_collection(stac_api, es_catalog, es_settings):
    from terracube.processes.load_stac import load_stac

    env = ProcessEnv(catalog=es_catalog, settings=es_settings)
    stac_api.requests.clear()
    cube = load_stac(f"{stac_api.url}/collections/sentinel-2-l2a", spatial_extent=window(),
                     temporal_extent=["2021-07-21", "2021-07-22"], bands=["red"], env=env)
    search = stac_api.searches[-1]  # (the first, of one item, told which assets the collection has)
    assert search["datetime"].startswith("2021-07-21") and search["bbox"]  # pushed down, not a crawl of the API
    assert cube.bands.values.tolist() == ["red"] and cube.t.size == 1
    expected = load(es_catalog, es_settings, ["2021-07-21", "2021-07-22"], bands=["B04"])
    assert cube.odc.geobox == expected.odc.geobox
    np.testing.assert_array_equal(cube.values, expected.values)


def test_load_stac_of_a_stac_api_root_asks_for_a_collection(stac_api, es_catalog, es_settings):
    from terracube.processes.load_stac import load_stac

    with pytest.raises(OpenEOError, match="collections/<id>") as raised:
        load_stac(stac_api.url, spatial_extent=window(), env=ProcessEnv(catalog=es_catalog, settings=es_settings))
    assert raised.value.status == 400
