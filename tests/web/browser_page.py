"""What the Browser tests share: the built page, Chromium at a window size, waiting without ``eval``.

The page's Content-Security-Policy forbids ``eval``, and Playwright's ``wait_for_function`` evaluates
its predicate with it; so the tests poll with ``page.evaluate`` (which the policy does not see) and
keep the policy exactly as users get it. Screenshots go to the test's folder and, with
``TERRACUBE_UPDATE_DOCS=1``, to docs/browser/.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from pyproj import Transformer

from terracube.browser_build import OUT_DIR, build_browser, built_dir, source_dir
from tests.auth.test_browser_login import CHROMIUM_ARGS, playwright_and_chromium

DOCS = Path(__file__).parents[2] / "docs" / "browser"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def ensure_built() -> Path:
    """The Browser's build (``pip install`` makes it; here it is made if the sources changed since, once for all workers)."""
    web = source_dir()
    if web is None:
        pytest.fail("the tests run from terracube's repository: web/ is missing")
    with open(web / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = build_browser(web, OUT_DIR)
    if not result.built:
        if shutil.which("npm") is None and os.environ.get("CI") != "true":
            pytest.skip(result.message)
        pytest.fail(f"the Browser could not be built: {result.message}")
    return built_dir(OUT_DIR)


_chromium: list = []  # [playwright, browser]: one Chromium per test module (tests/web/conftest.py closes it)


def _browser():
    # Launching Chromium costs a second or two of CPU; each test gets a context of its own instead
    # (its own cookies, storage and viewport), as isolated from the others as a fresh browser.
    if not _chromium:
        playwright, chromium = playwright_and_chromium()
        started = playwright().start()
        _chromium.extend([started, started.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)])
    return _chromium[1]


def close_browser() -> None:
    """Stop the module's Chromium: Playwright's sync API runs one at a time in a thread, and the next module may start its own."""
    if _chromium:
        started, browser = _chromium
        _chromium.clear()
        try:
            browser.close()
        finally:
            started.stop()


@contextmanager
def chromium_page(viewport: dict = DESKTOP):
    """A page in Debian's Chromium at ``viewport`` (CSS pixels; screenshots at one pixel per CSS pixel), in a new context."""
    context = _browser().new_context(viewport=viewport, device_scale_factor=1)
    try:
        page = context.new_page()
        page.problems = []  # the page's own errors and refused requests, for the assertions
        page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
        page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
        yield page
    finally:
        context.close()


def wait_for(page, expression: str, timeout: float = 60, what: str | None = None):
    """Poll ``expression`` in the page until it is truthy; its value. On timeout, says what the page shows."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            shown = page.evaluate("() => [document.querySelector('#error')?.innerText, document.querySelector('#status')?.innerText]")
            raise AssertionError(f"waited {timeout:.0f} s for {what or expression}; the page's error and status: {shown}; {page.problems}")
        time.sleep(0.2)


def wait_until_ready(page) -> None:
    wait_for(page, "() => !!(window.terracube && window.terracube.ready && window.terracube.map.map.loaded())", 90, "the page to start")


def wait_for_tiles(page, timeout: float = 240) -> None:
    """Until MapLibre has every tile of the view (its ``idle``: nothing loading, nothing moving)."""
    wait_for(page, """() => { const m = window.terracube.map.map;
        return !!m.getSource('layer') && m.isSourceLoaded('layer') && m.areTilesLoaded() && !m.isMoving(); }""", timeout, "the layer's tiles")


def screenshot(page_or_locator, tmp_path: Path, name: str, docs: bool = True, **options) -> Path:
    """A screenshot in the test's folder; also in docs/browser/ if ``docs`` and ``TERRACUBE_UPDATE_DOCS=1``."""
    path = tmp_path / name
    page_or_locator.screenshot(path=str(path), **options)
    if docs and os.environ.get("TERRACUBE_UPDATE_DOCS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS / name)
    return path


def view_points(page, columns: int = 40, rows: int = 30) -> tuple[list[list[float]], np.ndarray]:
    """A grid of points on the map (clear of its controls), and where each is (longitude, latitude)."""
    width, height = page.evaluate("() => { const c = window.terracube.map.map.getContainer(); return [c.clientWidth, c.clientHeight]; }")
    xs, ys = np.meshgrid(np.linspace(20, width - 60, columns), np.linspace(60, height - 40, rows))
    points = [[float(x), float(y)] for x, y in zip(xs.ravel(), ys.ravel())]
    lonlat = page.evaluate("(points) => points.map(p => window.terracube.map.map.unproject(p).toArray())", points)
    return points, np.array(lonlat)


def on_screen(page, lon: float, lat: float) -> tuple[float, float]:
    """Where a longitude and latitude are in the window (CSS pixels)."""
    box = page.locator("#map").bounding_box()
    x, y = page.evaluate("([lon, lat]) => { const p = window.terracube.map.map.project([lon, lat]); return [p.x, p.y]; }", [lon, lat])
    return box["x"] + x, box["y"] + y


def drag_rectangle(page, west: float, south: float, east: float, north: float) -> None:
    """Draw a rectangle with the mouse (the drawing tool on), from its north-west corner to its south-east one."""
    (x1, y1), (x2, y2) = on_screen(page, west, north), on_screen(page, east, south)
    # As a hand does it: the drag starts on the first move.
    page.mouse.move(x1, y1)
    page.mouse.down()
    page.mouse.move(x1 + 1, y1 + 1)
    page.mouse.move(x2, y2, steps=8)
    page.mouse.up()


def sample(path: Path, lonlat: np.ndarray) -> np.ndarray:
    """The GeoTIFF's values (points, bands) under each point; NaN where it has none."""
    with rasterio.open(path) as tif:
        xs, ys = Transformer.from_crs("EPSG:4326", tif.crs, always_xy=True).transform(*lonlat.T)
        return np.array([np.ma.filled(value.astype(float), np.nan) for value in tif.sample(zip(xs, ys), masked=True)])


def colours_at(picture: Path, points: list[list[float]]) -> np.ndarray:
    rgb = np.asarray(Image.open(picture).convert("RGB"))
    return np.array([rgb[int(y), int(x)] for x, y in points]).astype(int)
