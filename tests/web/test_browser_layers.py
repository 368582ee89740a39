"""The Browser's layers, compare and code in Chromium against a live laptop-mode server (issue #18).

One server and one page for the module: the Ahr valley's scenes of June and July 2021 are searched
once, then, as a person would: false colour of 21 July (NIR, red, green) and the cloud mask of a
cloudy day, each pixel checked against ``/result`` of the layer's own graph; the median NDVI of June
and July with SCL's clouds masked, which differs from the one-date NDVI and matches its ``/result``,
and its Python code, copied with the Copy button and run as a program with the ``openeo`` client,
giving the very GeoTIFF of the graph; NDVI of 13 June as A and of 21 July as B, swiped (the bar moved
with the keyboard): A's colours left of the bar, B's right of it; the difference B − A drawn in RdBu
as ``/result`` computes it, and its Python code run too. Screenshots: docs/browser/ with
``TERRACUBE_UPDATE_DOCS=1``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import requests

from tests.services.test_map_in_browser import value_of_colour
from tests.web.browser_page import colours_at, sample, view_points, DESKTOP, PHONE, chromium_page, screenshot, wait_for, wait_for_tiles, wait_until_ready

BEFORE, AFTER = "2021-06-13", "2021-07-21"  # the tutorial's days: before and after the flood
CLOUDY = "2021-06-23"  # clouds over about half of the valley's middle
SCL_CLOUDS = (3, 8, 9, 10)


@pytest.fixture(scope="module")
def page(server):
    """The Browser, the scenes of June and July 2021 found; the process graphs it sent to POST /services recorded."""
    with chromium_page(DESKTOP) as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        page.posted, outside = [], []
        page.on("request", lambda r: r.method == "POST" and r.url.endswith("/services") and page.posted.append(r.post_data_json))
        page.on("request", lambda r: not r.url.startswith((server.url, "data:", "blob:")) and outside.append(r.url))
        page.goto(f"{server.url}/browser/")
        wait_until_ready(page)
        # The valley's middle: a median of June and July over it stays under the synchronous limit of /result.
        page.evaluate("(m => m.setZoom(m.getZoom() + 1))(window.terracube.map.map)")
        page.fill("#date-from", "2021-06-01")
        page.fill("#date-to", "2021-07-31")
        page.get_by_role("button", name="Search").click()
        wait_for(page, "() => document.querySelectorAll('#scenes button.scene').length > 0 || !document.querySelector('#error').hidden",
                 120, "the search's scenes")
        assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
        yield page
        assert page.problems == [] and outside == [], "no errors, no request leaving the server (the swipe's handle included)"


def show(page, kind: str, date: str | None = None, time: str = "one", mask: bool = False) -> dict:
    """Choose a layer in the form, show it, wait for its tiles; the layer panel's status."""
    if date:
        page.locator("#scenes button.scene").filter(has_text=date).first.click()
    page.get_by_label(kind, exact=True).check()
    page.select_option("#layer-time", time)
    if page.locator("#mask-clouds").is_visible():
        page.locator("#mask-clouds").set_checked(mask)
    before = page.evaluate("window.terracube.layers.status.tiles")
    page.get_by_role("button", name="Show on map").click()
    wait_for(page, f"() => window.terracube.layers.status.tiles !== {json.dumps(before)} || !document.querySelector('#error').hidden",
             60, "the layer")
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
    wait_for_tiles(page)
    return page.evaluate("(() => { const s = window.terracube.layers.status; return {title: s.title, tiles: s.tiles, graph: s.layer.graph}; })()")


def page_shot(page, tmp_path: Path, name: str, section: str) -> None:
    """The whole window for docs/browser/, the panel scrolled to ``section``."""
    page.locator(section).evaluate("element => element.scrollIntoView({block: 'start'})")
    screenshot(page, tmp_path, name)


def result_of(server, graph: dict, path: Path) -> Path:
    """The graph's result through POST /result, as a GeoTIFF (a save_result node after its result node)."""
    nodes = {name: {k: v for k, v in node.items() if k != "result"} for name, node in graph.items()}
    last = next(name for name, node in graph.items() if node.get("result"))
    nodes["save"] = {"process_id": "save_result", "arguments": {"data": {"from_node": last}, "format": "GTiff"}, "result": True}
    answer = requests.post(f"{server.url}/result", json={"process": {"process_graph": nodes}}, timeout=300)
    assert answer.status_code == 200, answer.text[:500]
    path.write_bytes(answer.content)
    return path


def python_shown(page, tmp_path: Path) -> Path:
    """The Code section's Python, taken from the clipboard after pressing Copy (as a person would), as a file."""
    code = page.locator("#code")
    if code.get_attribute("open") is None:
        code.locator("summary").click()
    page.locator("#copy-python").click()
    wait_for(page, "() => document.querySelector('#code-copied').textContent.includes('copied')", 10, "the copy")
    text = page.evaluate("navigator.clipboard.readText()")
    assert text.rstrip("\n") == page.locator("#code-python").inner_text().rstrip("\n")
    program = tmp_path / "layer.py"
    program.write_text(text)
    return program


def run_python(program: Path) -> Path:
    """Run the program with this Python (the openeo client installed); the GeoTIFF it downloaded."""
    done = subprocess.run([sys.executable, program.name], cwd=program.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    written = re.search(r'\.download\("([^"]+\.tif)"\)', program.read_text()).group(1)
    return program.parent / written


def assert_same_geotiff(mine: Path, truth: Path) -> None:
    with rasterio.open(mine) as a, rasterio.open(truth) as b:
        assert (a.crs, a.transform, a.shape, a.count) == (b.crs, b.transform, b.shape, b.count)
        assert a.descriptions == b.descriptions
        np.testing.assert_array_equal(a.read(), b.read())  # NaN (no data) where the other has NaN too


def test_false_colour_is_near_infrared_red_green(server, page, tmp_path):
    layer = show(page, "False colour", AFTER)
    assert layer["title"] == f"False colour, {AFTER}"
    assert "range=0%2C4000" in layer["tiles"] and "colormap" not in layer["tiles"]
    load = layer["graph"]["load"]["arguments"]
    assert load["bands"] == ["B08", "B04", "B03"] and load["temporal_extent"] == [AFTER, "2021-07-22"]
    # The code section shows the graph that was sent.
    page.locator("#code summary").click()
    assert json.loads(page.locator("#code-graph").inner_text()) == page.posted[-1]["process"]
    page.locator("#code summary").click()

    page_shot(page, tmp_path, "layers-false-colour.png", "#layer-title")
    shot = screenshot(page.locator(".map-area"), tmp_path, "false-colour-map.png", docs=False)
    points, lonlat = view_points(page)
    truth = sample(result_of(server, layer["graph"], tmp_path / "false.tif"), lonlat)  # B08, B04, B03 of the day
    data = np.isfinite(truth).all(axis=1)
    assert data.mean() > 0.7
    expected = np.rint(np.clip(truth[data] / 4000, 0, 1) * 255)
    shown = colours_at(shot, points)[data]
    close = (np.abs(shown - expected) <= 8).all(axis=1)
    assert close.mean() > 0.85, f"only {close.mean():.0%} of the pixels are (B08, B04, B03) over 0..4000"
    # Vegetation, most of the valley, is bright in NIR: red on the map.
    assert (shown[:, 0] > shown[:, 1] + 60).mean() > 0.5
    page.get_by_role("button", name="Keep the layer as A").click()  # for the next test's refused difference


def test_the_cloud_mask_shows_scl_clouds_in_white(server, page, tmp_path):
    layer = show(page, "Cloud mask (SCL)", CLOUDY)
    assert "colormap=Greys_r" in layer["tiles"] and page.locator("#clouds-legend").is_visible()
    assert layer["graph"]["load"]["arguments"]["bands"] == ["SCL"]
    page_shot(page, tmp_path, "layers-clouds.png", "#layer-title")
    shot = screenshot(page.locator(".map-area"), tmp_path, "clouds-map.png", docs=False)
    points, lonlat = view_points(page)
    scl = {"scl": {"process_id": "load_collection", "arguments": {**layer["graph"]["load"]["arguments"]}, "result": True}}
    classes = sample(result_of(server, scl, tmp_path / "scl.tif"), lonlat)[:, 0]
    data = np.isfinite(classes)
    cloudy = np.isin(classes, SCL_CLOUDS)
    assert 0.2 < cloudy[data].mean() < 0.8, "the day has clouds and clear ground"
    grey = colours_at(shot, points).mean(axis=1)
    assert (grey[data & cloudy] > 230).mean() > 0.9 and (grey[data & ~cloudy] < 25).mean() > 0.9

    # False colour (A) minus the cloud mask (B) is refused in words, before anything is sent.
    page.get_by_role("button", name="Keep the layer as B").click()
    sent = len(page.posted)
    page.get_by_role("button", name="Difference B − A").click()
    wait_for(page, "() => !document.querySelector('#error').hidden", 10, "the error")
    assert page.locator("#error").inner_text().startswith("Difference: The difference needs two one-band layers")
    assert len(page.posted) == sent and page.evaluate("window.terracube.layers.status.title") == layer["title"]


def test_a_median_with_clouds_masked_differs_from_one_date_and_its_python_gives_its_geotiff(server, page, tmp_path):
    one = show(page, "NDVI", AFTER)
    one_shot = screenshot(page.locator(".map-area"), tmp_path, "one.png", docs=False)
    median = show(page, "NDVI", time="median", mask=True)
    assert median["title"] == "NDVI, median of 2021-06-01 to 2021-07-31, clouds masked"
    graph = median["graph"]
    assert graph["load"]["arguments"]["bands"] == ["B08", "B04", "SCL"]
    assert graph["load"]["arguments"]["temporal_extent"] == ["2021-06-01", "2021-08-01"]
    assert graph["masked"]["arguments"]["mask"] == {"from_node": "clouds"} and graph["time"]["arguments"]["dimension"] == "t"
    assert graph["time"]["arguments"]["reducer"]["process_graph"]["median"]["process_id"] == "median"
    page_shot(page, tmp_path, "layers-median.png", "#layer-title")
    shot = screenshot(page.locator(".map-area"), tmp_path, "median-map.png", docs=False)

    points, lonlat = view_points(page)
    truth = sample(result_of(server, graph, tmp_path / "median.tif"), lonlat)[:, 0]
    one_truth = sample(result_of(server, one["graph"], tmp_path / "one.tif"), lonlat)[:, 0]
    data = np.isfinite(truth) & np.isfinite(one_truth)
    assert data.mean() > 0.7
    differs = data & (np.abs(truth - one_truth) > 0.1)
    assert differs.mean() > 0.05, "the median of June and July is not the NDVI of 21 July"
    shown = value_of_colour(colours_at(shot, points)[None], "RdYlGn", [-1, 1])[0][0]
    shown_one = value_of_colour(colours_at(one_shot, points)[None], "RdYlGn", [-1, 1])[0][0]
    assert (np.abs(shown - truth)[data] <= 0.05).mean() > 0.85, "the map shows the median /result computes"
    assert (np.abs(shown - truth)[differs] <= 0.05).mean() > 0.85 and (np.abs(shown_one - one_truth)[differs] <= 0.05).mean() > 0.85

    # The same request in Python: the Copy button's text, run with the openeo client, gives /result's GeoTIFF.
    program = python_shown(page, tmp_path)
    code = program.read_text()
    assert 'reduce_dimension(dimension="t", reducer="median")' in code and ".mask(clouds)" in code and "authenticate" not in code
    assert_same_geotiff(run_python(program), tmp_path / "median.tif")


def test_swipe_between_two_dates_then_their_difference(server, page, tmp_path):
    a = show(page, "NDVI", BEFORE)
    page.get_by_role("button", name="Keep the layer as A").click()
    b = show(page, "NDVI", AFTER)
    page.get_by_role("button", name="Keep the layer as B").click()
    assert page.locator("#compare-a").inner_text() == f"NDVI, {BEFORE}" and page.locator("#compare-b").inner_text() == f"NDVI, {AFTER}"
    a_service, b_service = page.evaluate("[window.terracube.compare.slots.a.service.id, window.terracube.compare.slots.b.service.id]")
    services = requests.get(f"{server.url}/services", timeout=30).json()["services"]
    assert {a_service, b_service} <= {s["id"] for s in services}, "A's service is kept while B is made"

    page.get_by_role("button", name="Swipe A | B").click()
    wait_for(page, """() => { const a = window.terracube.map.map, b = window.terracube.compare.swipe.second;
        return !!b && !!b.getSource('compare-b') && b.isSourceLoaded('compare-b') && b.areTilesLoaded()
            && !!a.getSource('compare-a') && a.isSourceLoaded('compare-a') && a.areTilesLoaded(); }""", 120, "both sides' tiles")
    # The keyboard moves the bar: the range input, 50 % to 40 %.
    page.locator("#swipe-position").focus()
    for _ in range(10):
        page.keyboard.press("ArrowLeft")
    assert page.locator("#swipe-position").input_value() == "40"
    width = page.evaluate("window.terracube.map.map.getContainer().clientWidth")
    bar = page.evaluate("window.terracube.compare.swipe.compare.currentPosition")
    assert abs(bar - 0.4 * width) < 1
    wait_for(page, "() => window.terracube.compare.swipe.second.areTilesLoaded() && window.terracube.map.map.areTilesLoaded()", 60, "tiles")
    shot = screenshot(page.locator(".map-area"), tmp_path, "swipe-map.png", docs=False)
    page_shot(page, tmp_path, "compare-swipe.png", "#compare-title")

    points, lonlat = view_points(page, 60, 40)
    truth_a = sample(result_of(server, a["graph"], tmp_path / "a.tif"), lonlat)[:, 0]
    truth_b = sample(result_of(server, b["graph"], tmp_path / "b.tif"), lonlat)[:, 0]
    shown = value_of_colour(colours_at(shot, points)[None], "RdYlGn", [-1, 1])[0][0]
    x = np.array([p[0] for p in points])
    changed = np.isfinite(truth_a) & np.isfinite(truth_b) & (np.abs(truth_b - truth_a) > 0.15)  # where the flood took the vegetation
    left, right = changed & (x < bar - 35), changed & (x > bar + 35)  # clear of the bar and its handle
    assert left.sum() >= 20 and right.sum() >= 20
    assert (np.abs(shown - truth_a)[left] <= 0.05).mean() > 0.85, "left of the bar: A"
    assert (np.abs(shown - truth_b)[right] <= 0.05).mean() > 0.85, "right of the bar: B"

    # B − A as one graph: both dates loaded, the difference computed by the server.
    page.get_by_role("button", name="Difference B − A").click()
    wait_for(page, "() => (window.terracube.layers.status.title || '').startsWith('Difference') || !document.querySelector('#error').hidden",
             60, "the difference")
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
    wait_for_tiles(page)
    assert page.evaluate("window.terracube.compare.swipe.active") is False and page.locator("#map-b").count() == 0
    difference = page.evaluate("window.terracube.layers.status")
    assert "colormap=RdBu" in difference["tiles"] and "range=-1%2C1" in difference["tiles"]
    graph = difference["layer"]["graph"]
    assert graph["difference"]["process_id"] == "merge_cubes" and graph["difference"]["arguments"]["cube1"] == {"from_node": "b_time"}
    assert [graph[f"{s}_load"]["arguments"]["temporal_extent"][0] for s in "ab"] == [BEFORE, AFTER]
    assert page.posted[-1]["process"]["process_graph"] == graph
    shot = screenshot(page.locator(".map-area"), tmp_path, "difference-map.png", docs=False)
    page_shot(page, tmp_path, "compare-difference.png", "#compare-title")
    points, lonlat = view_points(page)
    truth_a = sample(tmp_path / "a.tif", lonlat)[:, 0]
    truth_b = sample(tmp_path / "b.tif", lonlat)[:, 0]
    data = np.isfinite(truth_a) & np.isfinite(truth_b)
    shown, distance = value_of_colour(colours_at(shot, points)[None], "RdBu", [-1, 1])
    assert (distance[0][data] <= 3).mean() > 0.9, "the colours are RdBu's"
    assert (np.abs(shown[0] - (truth_b - truth_a))[data] <= 0.05).mean() > 0.85, "the map shows B − A"
    assert ((truth_b - truth_a)[data] < -0.15).mean() > 0.02, "the flood shows as a loss"

    # Its Python: two loads, b - a, the GeoTIFF of the page's graph.
    program = python_shown(page, tmp_path)
    page_shot(page, tmp_path, "code-python.png", "#copy-python")
    assert "difference = b - a" in program.read_text()
    assert_same_geotiff(run_python(program), result_of(server, graph, tmp_path / "difference.tif"))


def test_a_phone_sized_window_swipes_and_shows_code_without_sideways_scrolling(page, tmp_path):
    # The module's page as it was left: A and B kept, their difference on the map.
    page.set_viewport_size(PHONE)
    page.evaluate("document.querySelector('.panel').scrollIntoView()")
    page.get_by_role("button", name="Swipe A | B").click()
    wait_for(page, "() => !!document.querySelector('#map-b canvas') && window.terracube.compare.swipe.active", 30, "the swipe")
    assert page.locator("#map-b").bounding_box() == page.locator("#map").bounding_box()
    page.locator("#swipe-position").focus()
    page.keyboard.press("End")
    assert page.locator("#swipe-position").input_value() == "100"
    assert page.evaluate("window.terracube.compare.swipe.compare.currentPosition") == PHONE["width"]
    code = page.locator("#code")
    if code.get_attribute("open") is None:
        code.locator("summary").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for selector in ("#layer-time", "#mask-row", "#compare-keep-a", "#compare-swipe", "#compare-difference", "#swipe-position",
                     "#code-layer", "#code-graph", "#code-python", "#copy-python"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (selector, box)
    screenshot(page, tmp_path, "compare-phone.png", docs=False, full_page=True)
