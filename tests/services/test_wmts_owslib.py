"""WMTS as QGIS reads it: OWSLib (the OGC client library) against a live ``terracube`` server.

The service is made with the official openEO client (``tiled_viewing_service(type="WMTS")``); its
``url`` is all OWSLib is given. The server runs as ``terracube serve`` does (tests/live_server.py),
in laptop mode, over the embedded sample archive.
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import openeo
import pytest
import requests
from owslib.util import ServiceException
from owslib.wmts import WebMapTileService
from PIL import Image

from tests.jobs.conftest import jobs_env
from tests.live_server import LiveServer
from tests.services.layers import AHR_TILE
from tests.services.tiles_fixtures import scene_file, source_values, tile_pixel_centres

WEEK = ["2021-07-16", "2021-07-22"]
# The layer's colours: RdYlGn from -0.2 (red) to 0.9 (green).
RANGE = [-0.2, 0.9]
# A tile of the Ahr valley inside AHR_TILE at zoom 14, where a tile pixel (6 m) is finer than the
# scenes' 10 m: drawn from the full-resolution pixels, so its colours can be checked against them.
DETAIL = (14, 4 * AHR_TILE[1] + 1, 4 * AHR_TILE[2] + 1)


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("wmts-live")
    live = LiveServer(jobs_env(data_dir, folder, TERRACUBE_TILE_CACHE_DIR=folder / "tiles"))
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def service(server):
    con = openeo.connect(server.url)
    assert "WMTS" in con.list_service_types()
    cube = con.load_collection("SENTINEL2_L2A", temporal_extent=WEEK, bands=["B04", "B08"]).ndvi(nir="B08", red="B04")
    return cube.tiled_viewing_service(type="WMTS", title="NDVI of the Ahr valley", configuration={"colormap": "RdYlGn", "range": RANGE})


@pytest.fixture(scope="module")
def wmts(service) -> WebMapTileService:
    url = service.describe_service()["url"]
    assert url.endswith(f"/services/{service.service_id}/wmts")
    return WebMapTileService(url)  # OWSLib adds service=WMTS&request=GetCapabilities&version=1.0.0


def ndvi_picture(content: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(content))
    assert (image.format, image.size) == ("PNG", (256, 256))
    return np.asarray(image.convert("RGBA"))


def assert_ndvi_of(pixels: np.ndarray, data_dir, day: str) -> None:
    """The DETAIL tile is the NDVI of ``day``'s scene, through RdYlGn over RANGE, as matplotlib colours it."""
    xs, ys = np.meshgrid(*tile_pixel_centres(*DETAIL))
    red, safe, _ = source_values(scene_file(data_dir, day, "B04"), xs, ys)
    nir, _, _ = source_values(scene_file(data_dir, day, "B08"), xs, ys)
    ndvi = (nir - red) / (nir + red)
    valid = safe & np.isfinite(ndvi)
    low, high = RANGE
    expected = matplotlib.colormaps["RdYlGn"](np.clip((ndvi[valid] - low) / (high - low), 0, 1), bytes=True)
    difference = np.abs(pixels[valid].astype(int) - expected.astype(int)).max(axis=-1)
    # Equal, or the neighbouring colour of the 256 where a value sits on a bin's edge in float32.
    assert valid.mean() > 0.5, "the tile lies inside the sample archive: most of it is drawn"
    assert (difference <= 4).all() and (difference == 0).mean() > 0.99
    assert len(np.unique(pixels[valid][:, :3], axis=0)) > 20, "a picture of the valley, not one colour"


def test_owslib_reads_the_layer_its_matrices_and_dates(wmts, service):
    assert wmts.identification.type == "OGC WMTS" and wmts.identification.version == "1.0.0"
    assert list(wmts.contents) == [service.service_id]
    layer = wmts.contents[service.service_id]
    assert layer.title == "NDVI of the Ahr valley"
    west, south, east, north = layer.boundingBoxWGS84
    assert 6.0 < west < 7.1 < east < 8.0 and 50.0 < south < 50.5 < north < 51.0, "the Ahr valley, around Ahrweiler"
    assert layer.formats == ["image/png", "image/jpeg"] and list(layer.styles) == ["default"]
    assert list(layer.tilematrixsetlinks) == ["GoogleMapsCompatible"]
    matrix_set = wmts.tilematrixsets["GoogleMapsCompatible"]
    assert matrix_set.crs == "urn:ogc:def:crs:EPSG::3857"
    z, x, y = AHR_TILE
    assert str(z) in matrix_set.tilematrix and matrix_set.tilematrix[str(z)].matrixwidth == 2**z
    limits = layer.tilematrixsetlinks["GoogleMapsCompatible"].tilematrixlimits[str(z)]
    assert limits.mintilecol <= x <= limits.maxtilecol and limits.mintilerow <= y <= limits.maxtilerow
    time = layer.dimensions["Time"]
    assert [value[:10] for value in time["values"]] == ["2021-07-16", "2021-07-18", "2021-07-21"]
    assert time["default"] == time["values"][-1]


def test_owslib_fetches_a_tile_kvp(wmts, service, data_dir):
    z, x, y = DETAIL
    answer = wmts.gettile(layer=service.service_id, tilematrixset="GoogleMapsCompatible", tilematrix=str(z), row=y, column=x, format="image/png")
    assert answer.info()["Content-Type"] == "image/png"
    assert_ndvi_of(ndvi_picture(answer.read()), data_dir, "2021-07-21")  # no TIME: the latest date


def test_owslib_fetches_a_tile_restful(wmts, service, server, data_dir):
    """From the RESTful capabilities, whose ResourceURL templates OWSLib then fills in."""
    restful = WebMapTileService(f"{server.url}/services/{service.service_id}/wmts/1.0.0/WMTSCapabilities.xml")
    assert restful.restonly, "the RESTful document declares its operations RESTful"
    layer = restful.contents[service.service_id]
    published = list(layer.resourceURLs)
    assert {r["format"] for r in published} == {"image/png", "image/jpeg"}
    z, x, y = DETAIL
    latest = layer.dimensions["Time"]["default"]
    pictures = {}
    for media_type in ("image/png", "image/jpeg"):
        # OWSLib picks one of the tile templates at random; a client keeps the one of the format it wants, as QGIS does.
        layer.resourceURLs = [r for r in published if r["format"] == media_type]
        answer = restful.gettile(layer=service.service_id, tilematrixset="GoogleMapsCompatible", tilematrix=str(z), row=y, column=x, Time=latest)
        assert answer.info()["Content-Type"] == media_type
        pictures[media_type] = answer.read()
    assert_ndvi_of(ndvi_picture(pictures["image/png"]), data_dir, latest[:10])
    assert Image.open(io.BytesIO(pictures["image/jpeg"])).format == "JPEG"
    kvp = wmts.gettile(layer=service.service_id, tilematrixset="GoogleMapsCompatible", tilematrix=str(z), row=y, column=x, format="image/png")
    assert pictures["image/png"] == kvp.read(), "without TIME a tile is the default date's: the latest"


def test_a_time_value_draws_that_date(wmts, service, data_dir):
    z, x, y = DETAIL
    values = wmts.contents[service.service_id].dimensions["Time"]["values"]
    pictures = [wmts.gettile(layer=service.service_id, tilematrix=str(z), row=y, column=x, TIME=value).read() for value in values]
    for value, content in zip(values, pictures):
        assert_ndvi_of(ndvi_picture(content), data_dir, value[:10])
    assert len(set(pictures)) == len(values), "three dates, three pictures"


def test_owslib_sees_the_ogc_exceptions(wmts, service, server):
    z, x, y = AHR_TILE
    with pytest.raises(ServiceException, match="no layer 'rivers'"):
        wmts.gettile(layer="rivers", style="default", format="image/png", tilematrixset="GoogleMapsCompatible", tilematrix=str(z), row=y, column=x)
    with pytest.raises(ServiceException, match="TILEROW 4096 is outside tile matrix 12"):
        wmts.gettile(layer=service.service_id, tilematrix=str(z), row=2**z, column=x)
    with pytest.raises(ServiceException, match="no tile matrix '3'"):
        wmts.gettile(layer=service.service_id, tilematrix="3", row=0, column=0)
    missing = requests.get(f"{server.url}/services/{service.service_id}/wmts", params={"service": "WMTS", "request": "GetTile"}, timeout=30)
    assert missing.status_code == 400 and b'exceptionCode="MissingParameterValue" locator="LAYER"' in missing.content


def test_a_disabled_service_is_gone_for_wmts_clients(server):
    con = openeo.connect(server.url)
    cube = con.load_collection("SENTINEL2_L2A", temporal_extent=WEEK, bands=["B04", "B08"]).ndvi(nir="B08", red="B04")
    service = cube.tiled_viewing_service(type="WMTS")
    url = service.describe_service()["url"]
    assert WebMapTileService(url).contents
    response = requests.patch(f"{server.url}/services/{service.service_id}", json={"enabled": False}, timeout=30)
    assert response.status_code == 204
    with pytest.raises(requests.HTTPError) as raised:
        WebMapTileService(url)
    assert raised.value.response.status_code == 404
    answer = requests.get(url, params={"SERVICE": "WMTS", "REQUEST": "GetCapabilities"}, timeout=30)
    assert answer.status_code == 404 and b"ExceptionReport" in answer.content
