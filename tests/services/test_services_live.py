"""Services on a live server, as users meet them: the official openEO client, plain HTTP for tiles, a restart.

The server runs as ``terracube serve`` does (tests/live_server.py), in laptop mode, over the
embedded sample archive, with its database in the test's own folder.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import openeo
import pytest
import requests
from PIL import Image

from tests.conftest import AFTER
from tests.jobs.conftest import jobs_env
from tests.live_server import LiveServer
from tests.services.layers import AHR_TILE, ndvi_layer


@pytest.fixture
def server(data_dir, tmp_path):
    live = LiveServer(jobs_env(data_dir, tmp_path))
    live.start()
    yield live
    live.stop()


def tile_url(template: str, z: int, x: int, y: int) -> str:
    assert "{z}" in template and "{x}" in template and "{y}" in template, template
    return template.format(z=z, x=x, y=y)


def test_services_survive_a_restart(server):
    con = openeo.connect(server.url)
    shown = con.create_service(ndvi_layer()["process_graph"], type="XYZ", title="shown", log_level="debug")
    hidden = con.create_service(ndvi_layer()["process_graph"], type="XYZ", title="hidden", enabled=False)
    template = shown.describe_service()["url"]
    first = requests.get(tile_url(template, *AHR_TILE), timeout=120)
    assert first.status_code == 200, first.text

    server.stop()
    server.start()

    con = openeo.connect(server.url)
    assert {"shown", "hidden"} <= {s.get("title") for s in con.list_services()}
    described = con.service(shown.service_id).describe_service()
    assert (described["url"], described["enabled"], described["process"]["process_graph"]) == (template, True, ndvi_layer()["process_graph"])
    assert con.service(hidden.service_id).describe_service()["enabled"] is False
    again = requests.get(tile_url(template, *AHR_TILE), timeout=120)
    assert again.status_code == 200 and again.headers["ETag"] == first.headers["ETag"]
    hidden_template = con.service(hidden.service_id).describe_service()["url"]
    assert requests.get(tile_url(hidden_template, *AHR_TILE), timeout=30).json()["code"] == "ServiceNotFound"
    [created] = con.service(shown.service_id).logs()
    assert (created.level, created.message) == ("debug", "XYZ service created; its process graph can be drawn.")


def test_a_map_view_loads_its_tiles_at_once(server):
    """A 1024x768 map asks for its 4x3 tiles together; the server draws them and answers other requests meanwhile."""
    con = openeo.connect(server.url)
    template = con.create_service(ndvi_layer()["process_graph"], type="XYZ").describe_service()["url"]
    z, x, y = AHR_TILE
    view = [(z, x + dx, y + dy) for dx in (-1, 0, 1, 2) for dy in (-1, 0, 1)]
    with ThreadPoolExecutor(len(view)) as pool:
        asked = [pool.submit(requests.get, tile_url(template, *tile), timeout=300) for tile in view]
        capabilities = requests.get(server.url + "/", timeout=30)
        answers = [future.result() for future in asked]
    assert capabilities.status_code == 200
    assert [(a.status_code, a.headers["content-type"]) for a in answers] == [(200, "image/png")] * len(view)
    assert all(Image.open(io.BytesIO(a.content)).size == (256, 256) for a in answers)


def test_the_python_clients_tiled_viewing_service_draws_the_ndvi_of_the_ahr_valley(server):
    """WAITS FOR THE REAL RENDERER (services/tiles.py of the tiles helper): the placeholder draws nothing."""
    con = openeo.connect(server.url)
    assert "XYZ" in con.list_service_types()
    cube = con.load_collection("SENTINEL2_L2A", temporal_extent=AFTER, bands=["B04", "B08"]).ndvi(nir="B08", red="B04")
    service = cube.tiled_viewing_service(type="XYZ", title="NDVI after the flood")
    template = service.describe_service()["url"]

    response = requests.get(tile_url(template, *AHR_TILE), timeout=120)  # no token: as a map library asks
    assert response.status_code == 200 and response.headers["content-type"] == "image/png", response.text
    image = Image.open(io.BytesIO(response.content))
    assert (image.format, image.size) == ("PNG", (256, 256))
    pixels = np.asarray(image.convert("RGBA"))
    drawn = pixels[..., 3] > 0
    assert drawn.mean() > 0.5, "the tile lies inside the sample archive: most of it must be drawn"
    assert len(np.unique(pixels[drawn][:, :3], axis=0)) > 20, "an NDVI through a colormap has many colours"

    # Far from the data (the Atlantic at zoom 12): a transparent tile, not an error.
    outside = requests.get(tile_url(template, 12, 1500, 1400), timeout=120)
    assert outside.status_code == 200
    assert np.asarray(Image.open(io.BytesIO(outside.content)).convert("RGBA"))[..., 3].max() == 0

    service.delete_service()
    assert requests.get(tile_url(template, *AHR_TILE), timeout=30).json()["code"] == "ServiceNotFound"
