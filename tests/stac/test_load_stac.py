"""load_stac: a STAC Item over HTTP, and the STAC Item describing an earlier result."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.warp import transform_bounds
from shapely.geometry import box, mapping

from terracube.errors import OpenEOError
from terracube.execute import execute, request_env

from tests.conftest import AFTER, TUTORIAL_AOI, read_tutorial_ndvi
from tests.http_server import StaticServer
from tests.test_tutorial_engine import tutorial_graph


def load_stac_graph(url: str, **arguments) -> dict:
    return {"process_graph": {
        "load": {"process_id": "load_stac", "arguments": {"url": url, **arguments}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"}, "result": True},
    }}


def test_a_stac_item_over_http_with_band_and_spatial_filters(catalog, settings, data_dir, tmp_path):
    settings = settings.model_copy(update={"allowed_fetch_hosts": ["127.0.0.1"]})  # the operator allows the test server
    sample = data_dir / "sample"
    [item_path] = sample.glob("SENTINEL2_L2A/*20210721*/*.json")
    with StaticServer(sample) as server:
        url = f"{server.url}/{item_path.relative_to(sample)}"
        [(path, _)] = execute(load_stac_graph(url, spatial_extent=TUTORIAL_AOI, bands=["B04", "SCL"]), request_env(settings, catalog, user_id=None), tmp_path).files
    with rasterio.open(path) as src:
        assert (src.height, src.width) == (303, 449) and src.count == 2
        assert src.descriptions == ("2021-07-21_B04", "2021-07-21_SCL")
        assert np.nanmean(src.read(1)) > 100  # digital numbers


def test_the_stac_item_of_an_earlier_result_feeds_the_next_graph(catalog, settings, tmp_path):
    settings = settings.model_copy(update={"load_stac_local_dirs": [tmp_path]})
    [(ndvi_path, _)] = execute(tutorial_graph(AFTER), request_env(settings, catalog, user_id=None), tmp_path / "first").files
    with rasterio.open(ndvi_path) as src:
        bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    item = pystac.Item("result", mapping(box(*bounds)), list(bounds), datetime(2021, 7, 21, tzinfo=timezone.utc),
                       {"proj:epsg": 32632})
    item.add_asset("openEO", pystac.Asset(str(ndvi_path), media_type="image/tiff; application=geotiff", roles=["data"],
                                          extra_fields={"gsd": 10}))
    item_path = tmp_path / "result.json"
    item.save_object(dest_href=str(item_path), include_self_link=False)
    [(again, _)] = execute(load_stac_graph(str(item_path), spatial_extent=TUTORIAL_AOI), request_env(settings, catalog, user_id=None), tmp_path / "second").files
    with rasterio.open(again) as src:
        assert src.descriptions == ("2021-07-21_openEO",)
        np.testing.assert_array_equal(src.read(1), read_tutorial_ndvi(ndvi_path))


def test_an_unreadable_url_is_a_clear_error(catalog, settings, tmp_path):
    settings = settings.model_copy(update={"load_stac_local_dirs": [tmp_path]})
    with pytest.raises(OpenEOError, match="load_stac could not read") as raised:
        execute(load_stac_graph(str(tmp_path / "missing.json")), request_env(settings, catalog, user_id=None), tmp_path)
    assert raised.value.status == 400


def test_local_paths_outside_the_allowed_folders_are_refused(catalog, settings, tmp_path):
    (tmp_path / "item.json").write_text("{}")
    with pytest.raises(OpenEOError, match="outside the directories this server reads from") as raised:
        execute(load_stac_graph(str(tmp_path / "item.json")), request_env(settings, catalog, user_id=None), tmp_path)
    assert raised.value.code == "ProcessParameterInvalid"
