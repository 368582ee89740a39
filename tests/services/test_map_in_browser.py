"""A map service on a real web map: the official client makes the layer, Leaflet shows it in Chromium.

A live server in laptop mode; the openEO client's ``tiled_viewing_service(type="XYZ")`` makes the
NDVI of 21 July 2021 over the Ahr valley a layer (RdYlGn over -1..1); a small page (Leaflet from
npm, ``tests/services/map_page``) served from another loopback port shows it at zoom 13 in
Debian's Chromium. Leaflet loads tiles with ``<img>``, which sends no ``Origin``, so laptop mode's
web guard lets them through without configuration.

The screenshot is checked against the data, not against a stored picture: the same NDVI, fetched
through ``/result`` as a GeoTIFF on the archive's own UTM grid, is sampled under every screen pixel
and must be the value the pixel's colour stands for; vegetation must be green, and the valley
floor where the flood took the vegetation (the NDVI fell since June) yellow.

The screenshot is written to the test's folder; with ``TERRACUBE_UPDATE_DOCS=1`` also to
docs/services_ndvi.png, the picture in docs/services.md.
"""

from __future__ import annotations

import fcntl
import functools
import http.server
import math
import os
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import openeo
import pytest
import rasterio
from PIL import Image
from pyproj import Transformer

from terracube.formats.image import colormap_table
from tests.auth.test_browser_login import CHROMIUM_ARGS, playwright_and_chromium
from tests.conftest import AFTER, BEFORE
from tests.jobs.conftest import jobs_env
from tests.live_server import LiveServer

MAP_PAGE = Path(__file__).parent / "map_page"
DOCS_PICTURE = Path(__file__).parents[2] / "docs" / "services_ndvi.png"
VIEW = {"width": 1024, "height": 768}
ZOOM = 13
RENDERING = {"colormap": "RdYlGn", "range": [-1, 1]}
EARTH_RADIUS = 6378137.0  # of Web Mercator (EPSG:3857)
BACKGROUND = (0xDD, 0xDD, 0xDD)  # Leaflet's map background, seen where a tile is transparent


def leaflet() -> Path:
    """The map page's npm packages (``npm ci`` from its lock file, once; CI has npm, so there a missing one fails)."""
    script = MAP_PAGE / "node_modules" / "leaflet" / "dist" / "leaflet.js"
    if script.exists():
        return script
    npm = shutil.which("npm")
    if npm is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the map test, but npm is not installed (apt-get install npm)")
        pytest.skip("npm is not installed: the map page's Leaflet comes from npm")
    with open(MAP_PAGE / ".npm-ci.lock", "w") as lock:  # pytest-xdist workers: one installs, the others wait
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not script.exists():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=MAP_PAGE, check=True, timeout=600)
    return script


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        pass


@pytest.fixture
def map_site():
    """The map page, served from a loopback port of its own: another origin than the terracube server."""
    leaflet()
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(MAP_PAGE)))
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()
    site.server_close()


@pytest.fixture
def server(data_dir, tmp_path):
    # A cold tile cache of its own: every tile is drawn for this map.
    live = LiveServer(jobs_env(data_dir, tmp_path, TERRACUBE_TILE_CACHE_DIR=tmp_path / "tiles"))
    live.start()
    yield live
    live.stop()


def show_map(page_url: str, tiles: str, centre: tuple[float, float], tmp_path: Path) -> dict:
    """Open the map in Chromium, wait for Leaflet's ``load`` event, take the screenshot; what happened, as a dict."""
    playwright, chromium = playwright_and_chromium()
    answers: dict[str, tuple[int, str]] = {}
    tile_prefix = tiles.split("{z}")[0]
    with playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEW, device_scale_factor=1)
            page.on("response", lambda r: r.url.startswith(tile_prefix) and answers.setdefault(
                r.url, (r.status, r.headers.get("content-type", ""))))
            query = {"tiles": tiles, "lat": centre[1], "lon": centre[0], "zoom": ZOOM,
                     "attribution": "NDVI of 21 July 2021 (simulated Sentinel-2 L2A) from terracube"}
            page.goto(f"{page_url}/index.html?{urlencode(query)}")
            page.wait_for_function("window.mapState && window.mapState.loaded", timeout=240_000)
            # Leaflet fades a tile in after it loaded: the screenshot waits until every tile is opaque.
            page.wait_for_function("""() => [...document.querySelectorAll('img.leaflet-tile')]
                .every(tile => getComputedStyle(tile).opacity === '1')""", timeout=10_000)
            state = page.evaluate("""() => {
                const map = window.terracubeMap;
                const topLeft = map.project(map.containerPointToLatLng([0, 0]), map.getZoom());
                const controls = [...document.querySelectorAll('.leaflet-control')].map(e => e.getBoundingClientRect())
                    .map(r => [r.left, r.top, r.right, r.bottom]);
                const bounds = map.getBounds();
                return {...window.mapState, zoom: map.getZoom(), topLeft: [topLeft.x, topLeft.y], controls,
                        bounds: [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()],
                        shown: document.querySelectorAll('img.leaflet-tile-loaded').length};
            }""")
            page.screenshot(path=str(tmp_path / "services_ndvi.png"))
        finally:
            browser.close()
    state["answers"] = answers
    state["screenshot"] = tmp_path / "services_ndvi.png"
    return state


def tiles_in_view(top_left: list[float], zoom: int) -> set[tuple[int, int, int]]:
    """The z/x/y of every tile a view of VIEW's size at ``top_left`` (global pixels) shows, as Leaflet computes them."""
    left, top = top_left
    columns = range(math.floor(left / 256), math.floor((left + VIEW["width"] - 1) / 256) + 1)
    rows = range(math.floor(top / 256), math.floor((top + VIEW["height"] - 1) / 256) + 1)
    return {(zoom, x, y) for x in columns for y in rows}


def ndvi_under_screen(path: Path, top_left: list[float], zoom: int) -> np.ndarray:
    """The GeoTIFF's value under the centre of every screen pixel (NaN outside it or where it has no data)."""
    resolution = 2 * math.pi * EARTH_RADIUS / (256 * 2**zoom)
    columns, rows = np.meshgrid(np.arange(VIEW["width"]) + 0.5, np.arange(VIEW["height"]) + 0.5)
    x = (top_left[0] + columns) * resolution - math.pi * EARTH_RADIUS
    y = math.pi * EARTH_RADIUS - (top_left[1] + rows) * resolution
    with rasterio.open(path) as tif:
        east, north = Transformer.from_crs("EPSG:3857", tif.crs, always_xy=True).transform(x, y)
        band = tif.read(1, masked=True).filled(np.nan).astype(np.float32)
        a, b, c, d, e, f = (~tif.transform)[:6]
    col, row = a * east + b * north + c, d * east + e * north + f
    col, row = np.floor(col).astype(int), np.floor(row).astype(int)
    inside = (col >= 0) & (col < band.shape[1]) & (row >= 0) & (row < band.shape[0])
    values = np.full(col.shape, np.nan, dtype=np.float32)
    values[inside] = band[row[inside], col[inside]]
    return values


def value_of_colour(rgb: np.ndarray, colormap: str, value_range: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """The value each colour stands for in the colormap (its nearest entry), and how far the colour is from that entry."""
    table = colormap_table(colormap)[:, :3].astype(np.int32)
    flat = rgb.reshape(-1, 3).astype(np.int32)
    best = np.zeros(len(flat), dtype=np.int32)
    distance = np.full(len(flat), np.iinfo(np.int32).max, dtype=np.int64)
    for index, colour in enumerate(table):
        d = ((flat - colour) ** 2).sum(axis=1)
        closer = d < distance
        best[closer], distance[closer] = index, d[closer]
    low, high = value_range
    values = low + (best + 0.5) / 256 * (high - low)
    return values.reshape(rgb.shape[:2]), np.sqrt(distance).reshape(rgb.shape[:2])


def test_the_ndvi_of_the_ahr_valley_on_a_leaflet_map_in_chromium(server, map_site, tmp_path):
    con = openeo.connect(server.url)
    extent = con.describe_collection("SENTINEL2_L2A")["extent"]["spatial"]["bbox"][0]
    centre = ((extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2)
    ndvi = con.load_collection("SENTINEL2_L2A", temporal_extent=AFTER, bands=["B04", "B08"]).ndvi(nir="B08", red="B04")
    service = ndvi.tiled_viewing_service(type="XYZ", title="NDVI after the flood", configuration=RENDERING)
    tiles = service.describe_service()["url"]
    assert tiles.startswith(server.url) and tiles.endswith("/{z}/{x}/{y}.png"), tiles

    state = show_map(map_site, tiles, centre, tmp_path)
    if os.environ.get("TERRACUBE_UPDATE_DOCS") == "1":
        shutil.copyfile(state["screenshot"], DOCS_PICTURE)

    # Every tile of the view was asked for once, answered 200 image/png, and is on the page.
    assert state["zoom"] == ZOOM
    expected = {tiles.format(z=z, x=x, y=y) for z, x, y in tiles_in_view(state["topLeft"], ZOOM)}
    assert set(state["tiles"]) == expected and len(state["tiles"]) == len(expected), state["tiles"]
    assert state["errors"] == []
    assert state["answers"] == {url: (200, "image/png") for url in expected}
    assert state["shown"] == len(expected)

    # What the map shows is the NDVI: the same graph through /result, on the archive's own grid.
    west, south, east, north = state["bounds"]
    view = {"west": west, "south": south, "east": east, "north": north}
    after, before = tmp_path / "after.tif", tmp_path / "before.tif"
    con.load_collection("SENTINEL2_L2A", spatial_extent=view, temporal_extent=AFTER, bands=["B04", "B08"]).ndvi(
        nir="B08", red="B04").download(after, format="GTiff")
    con.load_collection("SENTINEL2_L2A", spatial_extent=view, temporal_extent=BEFORE, bands=["B04", "B08"]).ndvi(
        nir="B08", red="B04").download(before, format="GTiff")
    truth = ndvi_under_screen(after, state["topLeft"], ZOOM)
    drop = ndvi_under_screen(before, state["topLeft"], ZOOM) - truth

    screen = np.asarray(Image.open(state["screenshot"]).convert("RGB"))
    assert screen.shape == (VIEW["height"], VIEW["width"], 3)
    judged = np.ones(screen.shape[:2], dtype=bool)
    for left, top, right, bottom in state["controls"]:  # the zoom buttons and the attribution cover the map
        judged[max(0, math.floor(top)):math.ceil(bottom), max(0, math.floor(left)):math.ceil(right)] = False
    data = judged & np.isfinite(truth)
    assert data.mean() > 0.5, "the view is centred on the archive: most of it has data"

    shown, distance = value_of_colour(screen, RENDERING["colormap"], RENDERING["range"])
    exact = distance[data] <= 3  # the screenshot is lossless: a tile's colours are the colormap's
    assert exact.mean() > 0.99, f"only {exact.mean():.1%} of the data's pixels show a colour of RdYlGn"
    agree = np.abs(shown - truth)[data] <= 0.05  # a colour stands for 2/256 of the range; tiles resample by nearest
    assert agree.mean() > 0.98, f"only {agree.mean():.1%} of the pixels show the NDVI the data has there"

    red, green = screen[..., 0].astype(int), screen[..., 1].astype(int)
    vegetation = data & (truth > 0.6)
    flooded = data & (drop > 0.3)  # the valley floor where the flood took the vegetation
    assert vegetation.mean() > 0.3 and flooded.sum() > 1000, "the view shows both vegetation and the flood"
    greenish = (green > red + 40)[vegetation]
    assert greenish.mean() > 0.98, f"vegetation drawn green in {greenish.mean():.1%} of its pixels"
    yellowish = ((red > 150) & (green > 150))[flooded]  # RdYlGn's pale middle: NDVI 0.2 to 0.4 over -1..1
    assert yellowish.mean() > 0.95, f"the flooded valley floor drawn yellow in {yellowish.mean():.1%} of its pixels"
    assert np.median(red[flooded]) > np.median(red[vegetation]) + 80, "the flood stands out from the vegetation"

    # Outside the archive the tiles are transparent: the map's own background shows through.
    empty = judged & ~np.isfinite(truth)
    if empty.sum() > 1000:
        assert (screen[empty] == BACKGROUND).all(axis=1).mean() > 0.98
