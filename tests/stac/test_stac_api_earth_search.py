"""An Earth Search-shaped STAC API on loopback, read through a collections-file entry."""

from __future__ import annotations

import copy
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import openeo
import pandas as pd
import pytest
import rasterio
from rasterio.windows import Window

from terracube.data.catalog import Catalog
from terracube.data.properties import Condition
from terracube.errors import OpenEOError
from terracube.execute import execute, request_env
from terracube.settings import Settings

from tests.conftest import AFTER, TUTORIAL_AOI, read_tutorial_ndvi
from tests.http_server import StaticServer
from tests.live_server import LiveServer, free_port
from tests.stac.fake_earth_search import FakeEarthSearch, earth_search_items
from tests.test_tutorial_engine import tutorial_graph

COLLECTION = "EARTH_SEARCH_S2_L2A"


def collections_file(path, url: str):
    path.write_text(f'[[collection]]\nid = "{COLLECTION}"\nenabled = true\nstac_url = "{url}"\n', encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def earth_search(data_dir):
    """COGs on a range-request file server, items on a STAC API, with baseline 05.00 from 2021-07-20."""
    sample = data_dir / "sample"
    with StaticServer(sample) as files:
        items = earth_search_items(str(sample / "catalog.json"), files.url, str(sample), baseline_after="2021-07-20")
        with FakeEarthSearch(items, [6.9, 50.4, 7.3, 50.7]) as api:
            yield api


@pytest.fixture()
def catalog(earth_search, tmp_path):
    settings = Settings(data_dir=tmp_path, collections_file=collections_file(tmp_path / "collections.toml", earth_search.url))
    return Catalog(settings)


def graph_for(collection: str, period, **load_arguments) -> dict:
    graph = tutorial_graph(period)
    graph["process_graph"]["load"]["arguments"].update(id=collection, **load_arguments)
    return graph


def test_the_collection_shows_cdse_band_names_over_earth_search_assets(catalog):
    assert COLLECTION in catalog.ids() and "SENTINEL2_L2A" in catalog.ids()
    document = catalog.stac_collection(COLLECTION)
    names = [band["name"] for band in document["summaries"]["eo:bands"]]
    assert {"B04", "B08", "SCL"} <= set(names) and "red" not in names
    assert document["extent"]["spatial"]["bbox"] == [[6.9, 50.4, 7.3, 50.7]]
    assert document["cube:dimensions"]["bands"]["values"] == names


def test_search_pages_to_the_end_and_filters_cloud_cover_in_the_query(catalog, earth_search, tmp_path):
    source = catalog.get(COLLECTION)
    assert len(source.search(None, None, None)) == 37  # 19 pages of 2
    earth_search.queries.clear()
    cloudy_allowed = graph_for(COLLECTION, ["2021-06-01", "2021-07-01"])
    cloudy_allowed["process_graph"]["load"]["arguments"]["properties"] = {
        "eo:cloud_cover": {"process_graph": {"c": {"process_id": "lte", "arguments": {"x": {"from_parameter": "value"}, "y": 5}, "result": True}}}
    }
    execute(cloudy_allowed, request_env(catalog.settings, catalog, user_id=None), tmp_path)
    assert earth_search.queries[0]["query"] == {"eo:cloud_cover": {"lte": 5}}
    june = [pd.Timestamp(day, tz="UTC").to_pydatetime() for day in ("2021-06-01", "2021-07-01")]
    clear = source.search(None, *june, [Condition("eo:cloud_cover", "lte", 5)])
    assert clear and all(item.properties["eo:cloud_cover"] <= 5 for item in clear)
    assert len(clear) < len(source.search(None, *june))


def test_a_pre_baseline_scene_reads_as_on_the_embedded_archive(catalog, data_dir, tmp_path):
    period = ["2021-06-12", "2021-06-14"]
    [(remote, _)] = execute(graph_for(COLLECTION, period), request_env(catalog.settings, catalog, user_id=None), tmp_path / "remote").files
    [(local, _)] = execute(graph_for("SENTINEL2_L2A", period), request_env(Settings(data_dir=data_dir), Catalog(Settings(data_dir=data_dir)), user_id=None), tmp_path / "local").files
    np.testing.assert_array_equal(read_tutorial_ndvi(remote), read_tutorial_ndvi(local))


def test_the_baseline_04_offset_is_removed_so_reflectances_compare(catalog, data_dir, tmp_path):
    """The 2021-07-21 item claims baseline 05.00: its digital numbers come out 1000 lower, clipped at 0."""
    load = {"process_id": "load_collection", "arguments": {"spatial_extent": TUTORIAL_AOI, "temporal_extent": AFTER, "bands": ["B04"]}}
    save = {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"}, "result": True}
    outputs = {}
    for name, cat in (("remote", catalog), ("local", Catalog(Settings(data_dir=data_dir)))):
        graph = {"process_graph": {"load": {**load, "arguments": {**load["arguments"], "id": COLLECTION if name == "remote" else "SENTINEL2_L2A"}}, "save": save}}
        [(path, _)] = execute(graph, request_env(cat.settings, cat, user_id=None), tmp_path / name).files
        with rasterio.open(path) as src:
            outputs[name] = src.read(1)
    np.testing.assert_array_equal(outputs["remote"], np.clip(outputs["local"] - 1000, 0, None))


def test_an_unreachable_archive_is_a_clear_error_not_a_hang(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    settings = Settings(data_dir=tmp_path, collections_file=collections_file(tmp_path / "collections.toml", dead))
    started = time.monotonic()
    with pytest.raises(OpenEOError) as raised:
        execute(graph_for(COLLECTION, AFTER), request_env(settings, Catalog(settings), user_id=None), tmp_path)
    assert time.monotonic() - started < 30
    assert raised.value.code == "ArchiveUnavailable" and dead in raised.value.message


def test_two_adjacent_tiles_of_one_pass_are_mosaicked(data_dir, tmp_path):
    """The 2021-07-21 scene cut into two overlapping tiles (as 32ULB and its neighbour) reads as one."""
    sample = data_dir / "sample"
    items = [i for i in earth_search_items(str(sample / "catalog.json"), "", str(sample)) if i["properties"]["datetime"].startswith("2021-07-21")]
    [scene] = items
    tiles = []
    for name, (col0, col1) in (("west", (0, 700)), ("east", (600, 1236))):
        tile = copy_item(scene, f"{scene['id']}_{name}")
        directory = tmp_path / name
        directory.mkdir()
        for key, band in (("red", "B04"), ("nir", "B08")):
            with rasterio.open(next(sample.glob(f"SENTINEL2_L2A/*20210721*/{band}.tif"))) as src:
                window = Window(col0, 0, col1 - col0, src.height)
                profile = {**src.profile, "driver": "GTiff", "width": col1 - col0, "transform": src.window_transform(window)}
                profile.pop("blockxsize", None), profile.pop("blockysize", None), profile.pop("tiled", None)
                with rasterio.open(directory / f"{band}.tif", "w", **profile) as dst:
                    dst.write(src.read(1, window=window), 1)
            tile["assets"][key]["href"] = f"/{name}/{band}.tif"
        tile["assets"] = {k: v for k, v in tile["assets"].items() if k in ("red", "nir")}
        tiles.append(tile)
    with StaticServer(tmp_path) as files:
        for tile in tiles:
            for asset in tile["assets"].values():
                asset["href"] = files.url + asset["href"]
        with FakeEarthSearch(tiles, [6.9, 50.4, 7.3, 50.7]) as api:
            settings = Settings(data_dir=tmp_path / "d", collections_file=collections_file(tmp_path / "c.toml", api.url))
            [(mosaic, _)] = execute(graph_for(COLLECTION, AFTER), request_env(settings, Catalog(settings), user_id=None), tmp_path / "mosaic").files
    [(whole, _)] = execute(graph_for("SENTINEL2_L2A", AFTER), request_env(Settings(data_dir=data_dir), Catalog(Settings(data_dir=data_dir)), user_id=None), tmp_path / "whole").files
    mosaic_ndvi, whole_ndvi = read_tutorial_ndvi(mosaic), read_tutorial_ndvi(whole)
    assert np.isfinite(mosaic_ndvi).all()  # no gap where the tiles meet
    np.testing.assert_array_equal(mosaic_ndvi, whole_ndvi)


def copy_item(document: dict, new_id: str) -> dict:
    item = copy.deepcopy(document)
    item["id"] = new_id
    return item


def test_through_the_official_client_against_a_live_server(earth_search, data_dir, tmp_path):
    config = collections_file(tmp_path / "collections.toml", earth_search.url)
    server = LiveServer({"TERRACUBE_DATA_DIR": str(data_dir), "TERRACUBE_COLLECTIONS_FILE": str(config)}).start()
    try:
        con = openeo.connect(server.url)
        assert COLLECTION in con.list_collection_ids()
        cube = con.load_collection(COLLECTION, spatial_extent=TUTORIAL_AOI, temporal_extent=["2021-06-12", "2021-06-14"], bands=["B04", "B08"])
        cube.ndvi(nir="B08", red="B04").reduce_dimension(dimension="t", reducer="mean").download(tmp_path / "ndvi.tif")
    finally:
        server.stop()
    ndvi = read_tutorial_ndvi(tmp_path / "ndvi.tif")
    assert 0.7 < np.nanmean(ndvi) < 0.85


def test_imagery_that_denies_access_is_a_clear_error(data_dir, tmp_path):
    """Items found, but every COG answers 403: an openEO error naming the failure, not a 500."""

    class Forbidden(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(403)
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    denied = ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    threading.Thread(target=denied.serve_forever, daemon=True).start()
    try:
        sample = data_dir / "sample"
        items = earth_search_items(str(sample / "catalog.json"), f"http://127.0.0.1:{denied.server_address[1]}", str(sample))
        with FakeEarthSearch(items, [6.9, 50.4, 7.3, 50.7]) as api:
            settings = Settings(data_dir=tmp_path, collections_file=collections_file(tmp_path / "c.toml", api.url))
            with pytest.raises(OpenEOError) as raised:
                execute(graph_for(COLLECTION, AFTER), request_env(settings, Catalog(settings), user_id=None), tmp_path / "out")
    finally:
        denied.shutdown()
    assert raised.value.code == "ArchiveAccessDenied" and raised.value.status == 502 and "403" in raised.value.message
