"""The COGs of a user's STAC items are read through the fetch guard, not by GDAL's own HTTP client.

GDAL follows redirects and resolves names by itself; an asset at a "public" URL that redirects
into the server's network must not be read. Here 127.0.0.2 plays the public host the item and its
asset live on (the operator allows it), and 127.0.0.1 the server's own network, where the sample
archive's real COGs are served: nothing may reach it, and the answer is the guard's 400.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from terracube.data.fetch_guard import REFUSED
from terracube.errors import OpenEOError
from terracube.execute import execute, request_env

from tests.conftest import TUTORIAL_AOI
from tests.data.scripted_server import ScriptedServer
from tests.http_server import StaticServer


def load_stac_graph(url: str) -> dict:
    return {"process_graph": {
        "load": {"process_id": "load_stac", "arguments": {"url": url, "spatial_extent": TUTORIAL_AOI, "bands": ["B04"]}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"}, "result": True},
    }}


@pytest.fixture
def sample_item(data_dir):
    """The sample archive's scene of 21 July 2021: its folder and its STAC item with the B04 asset only."""
    sample = data_dir / "sample"
    [path] = sample.glob("SENTINEL2_L2A/*20210721*/*.json")
    item = json.loads(path.read_text())
    item["assets"] = {"B04": item["assets"]["B04"]}
    item["links"] = []
    return sample, path.parent.relative_to(sample), item


@pytest.fixture
def public():
    server = ScriptedServer("127.0.0.2")  # the operator allows it: the tests' stand-in for a public host
    yield server
    server.close()


def publish(public: ScriptedServer, item: dict, asset_href: str) -> str:
    """The item on the public host, its B04 asset at ``asset_href``; the item's URL."""
    item = {**item, "assets": {"B04": {**item["assets"]["B04"], "href": asset_href}}}
    return public.serve("/item.json", (200, json.dumps(item).encode()))


def run(graph: dict, settings, catalog, tmp_path):
    return execute(graph, request_env(settings, catalog, user_id=None), tmp_path)


def test_an_asset_that_redirects_into_the_network_is_refused_not_read(catalog, settings, sample_item, public, tmp_path):
    root, folder, item = sample_item
    settings = settings.model_copy(update={"allowed_fetch_hosts": ["127.0.0.2"]})
    with StaticServer(root) as inside:  # the real COG, inside the server's network
        target = f"{inside.url}/{folder}/B04.tif"
        asset = public.serve("/B04.tif", (302, target.encode()))
        with pytest.raises(OpenEOError) as error:
            run(load_stac_graph(publish(public, item, asset)), settings, catalog, tmp_path)
        assert (error.value.code, error.value.status) == ("ProcessParameterInvalid", 400)
        assert error.value.message.endswith(REFUSED)
        assert "/B04.tif" in public.requests  # the asset's own URL was asked: the redirect came from there
        assert not inside.bytes_sent  # and GDAL did not follow it


def test_an_asset_that_redirects_to_the_metadata_service_is_refused_quickly(catalog, settings, sample_item, public, tmp_path):
    _, _, item = sample_item
    settings = settings.model_copy(update={"allowed_fetch_hosts": ["127.0.0.2"]})
    public.serve("/B04.tif", (302, b"http://169.254.169.254/latest/meta-data/"))
    with pytest.raises(OpenEOError) as error:
        run(load_stac_graph(publish(public, item, public.url + "/B04.tif")), settings, catalog, tmp_path)
    assert (error.value.status, error.value.message.endswith(REFUSED)) == (400, True)  # no timeout waited for


def test_a_redirect_to_an_allowed_host_reads_the_same_pixels_as_the_file(catalog, settings, sample_item, public, tmp_path):
    root, folder, item = sample_item
    with StaticServer(root) as archive:
        settings = settings.model_copy(update={"allowed_fetch_hosts": ["127.0.0.1", "127.0.0.2"]})
        asset = public.serve("/B04.tif", (302, f"{archive.url}/{folder}/B04.tif".encode()))
        [(path, _)] = run(load_stac_graph(publish(public, item, asset)), settings, catalog, tmp_path / "http").files
        assert archive.bytes_sent[f"{folder}/B04.tif"] < (root / folder / "B04.tif").stat().st_size  # ranges, not the file
    # The same item read from the disk (the sample archive is a folder load_stac may read).
    local = tmp_path / "item.json"
    local.write_text(json.dumps({**item, "assets": {"B04": {**item["assets"]["B04"], "href": str(root / folder / "B04.tif")}}}))
    local_settings = settings.model_copy(update={"load_stac_local_dirs": [tmp_path]})
    [(expected, _)] = run(load_stac_graph(str(local)), local_settings, catalog, tmp_path / "disk").files
    with rasterio.open(path) as got, rasterio.open(expected) as want:
        assert got.shape == want.shape == (303, 449)
        np.testing.assert_array_equal(got.read(1), want.read(1))
        assert np.nanmean(got.read(1)) > 100


def test_a_tiff_that_is_a_vrt_naming_files_inside_is_not_opened(catalog, settings, sample_item, public, tmp_path):
    root, folder, item = sample_item
    settings = settings.model_copy(update={"allowed_fetch_hosts": ["127.0.0.2"]})
    with StaticServer(root) as inside:
        vrt = f"""<VRTDataset rasterXSize="1236" rasterYSize="924"><SRS>EPSG:32632</SRS>
          <GeoTransform>358080, 10, 0, 5603940, 0, -10</GeoTransform><VRTRasterBand dataType="UInt16" band="1">
          <SimpleSource><SourceFilename>/vsicurl/{inside.url}/{folder}/B04.tif</SourceFilename><SourceBand>1</SourceBand></SimpleSource>
        </VRTRasterBand></VRTDataset>"""
        asset = public.serve("/B04.tif", (200, vrt.encode()))
        with pytest.raises(OpenEOError) as error:
            run(load_stac_graph(publish(public, item, asset)), settings, catalog, tmp_path)
        assert (error.value.code, error.value.status) == ("ProcessParameterInvalid", 400)
        assert "not a GeoTIFF" in error.value.message
        assert not inside.bytes_sent


def test_an_asset_on_s3_is_refused_it_would_be_read_with_the_servers_credentials(catalog, settings, sample_item, public, tmp_path):
    _, _, item = sample_item
    settings = settings.model_copy(update={"allowed_fetch_hosts": ["127.0.0.2"]})
    with pytest.raises(OpenEOError) as error:
        run(load_stac_graph(publish(public, item, "s3://operators-bucket/B04.tif")), settings, catalog, tmp_path)
    assert (error.value.code, error.value.status) == ("ProcessParameterInvalid", 400)
    assert "'s3://'" in error.value.message and "http(s) only" in error.value.message


def test_an_asset_whose_name_rebinds_to_loopback_is_refused(catalog, settings, sample_item, public, tmp_path, monkeypatch):
    import socket

    from tests.data.test_fetch_rebinding import NAME, RebindingResolver

    root, folder, item = sample_item
    settings = settings.model_copy(update={"allowed_fetch_hosts": ["127.0.0.2"]})
    with StaticServer(root) as inside:
        port = inside.url.rsplit(":", 1)[1]
        url = publish(public, item, f"http://{NAME}:{port}/{folder}/B04.tif")
        resolver = RebindingResolver("127.0.0.2", "127.0.0.1")  # allowed when the item is searched, loopback after
        monkeypatch.setattr(socket, "getaddrinfo", resolver)
        with pytest.raises(OpenEOError) as error:
            run(load_stac_graph(url), settings, catalog, tmp_path)
        assert (error.value.status, error.value.message.endswith(REFUSED)) == (400, True)
        assert resolver.calls >= 2 and not inside.bytes_sent
