"""The Browser in Chromium against a live laptop-mode server: a person's first visit, step by step.

Open the server's root → land on /browser/, the map drawn with the collection's extent; search the
Ahr valley in June and July 2021 with at most 20 % cloud → the scenes listed with their quicklooks; pick 21 July 2021 and
show its NDVI → a map service's tiles on the map, in RdYlGn, each sampled pixel the NDVI that
``/result`` computes there; restyle it → new tile URLs, no new service; type a wrong formula → an
error in words and no request; a phone-sized window → no horizontal scrolling. (The search needs
``GET /collections/{id}/items``.) Screenshots: docs/browser/ with ``TERRACUBE_UPDATE_DOCS=1``.
"""

from __future__ import annotations

import numpy as np
import openeo
import pytest
from PIL import Image

from tests.services.test_map_in_browser import value_of_colour
from tests.web.browser_page import colours_at, sample, view_points, DESKTOP, PHONE, chromium_page, screenshot, wait_for, wait_for_tiles, wait_until_ready

NDVI_DAY = "2021-07-21"
RDYLGN = {"colormap": "RdYlGn", "range": [-1, 1]}


def requests_to(page, method: str, path: str) -> list[str]:
    """Record the URLs of the page's requests with ``method`` whose path starts with ``path``."""
    seen: list[str] = []
    page.on("request", lambda r: r.method == method and r.url.split("?")[0].split("/", 3)[-1].startswith(path.lstrip("/")) and seen.append(r.url))
    return seen


def test_opening_the_server_shows_the_map_with_the_collections_extent(server, tmp_path):
    with chromium_page() as page:
        outside: list[str] = []
        page.on("request", lambda r: not r.url.startswith((server.url, "data:", "blob:")) and outside.append(r.url))
        page.goto(server.url)
        assert page.url == f"{server.url}/browser/"
        wait_until_ready(page)
        assert page.locator("#account .who").inner_text() == "Anonymous"
        assert "laptop mode" in page.locator("#account").inner_text()
        assert page.locator("#collection").input_value() == "SENTINEL2_L2A"
        drawn = page.evaluate("""() => { const m = window.terracube.map.map, c = m.getCanvas();
            return {width: c.width, height: c.height, extent: m.queryRenderedFeatures({layers: ['extent']}).length, zoom: m.getZoom()}; }""")
        assert drawn["width"] >= 800 and drawn["height"] >= 700 and drawn["extent"] > 0, drawn
        assert drawn["zoom"] > 10, "the view goes to the collection's extent"
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(page, tmp_path, "start.png", docs=False)
        assert outside == [] and page.problems == []


def test_search_then_the_ndvi_of_a_scene_on_the_map(server, tmp_path):
    with chromium_page(DESKTOP) as page:
        services = requests_to(page, "POST", "/services")
        page.goto(f"{server.url}/browser/")
        wait_until_ready(page)
        page.fill("#date-from", "2021-06-01")
        page.fill("#date-to", "2021-07-31")
        page.locator("#max-cloud").fill("20")
        page.get_by_role("button", name="Search").click()
        wait_for(page, "() => document.querySelectorAll('#scenes button.scene').length > 0 || !document.querySelector('#error').hidden",
                 120, "the search's scenes")
        assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
        scenes = page.locator("#scenes button.scene")
        dates = [scenes.nth(i).locator(".date").inner_text() for i in range(scenes.count())]
        clouds = [float(scenes.nth(i).locator(".cloud").inner_text().split(" ")[0]) for i in range(scenes.count())]
        assert dates == sorted(dates) and all("2021-06-01" <= d <= "2021-07-31" for d in dates)
        assert all(c <= 20 for c in clouds) and NDVI_DAY in dates and "2021-06-13" in dates
        assert page.locator("#scene-count").inner_text().startswith(f"{len(dates)} scene")
        # Each scene shows its quicklook, served by this server (the archive's thumbnail asset).
        wait_for(page, "() => { const i = document.querySelector('#scenes img.quicklook'); return !!i && i.complete && i.naturalWidth > 0; }",
                 60, "the first scene's quicklook")
        assert page.locator("#scenes img.quicklook").count() == len(dates)
        screenshot(page, tmp_path, "search.png")

        scenes.filter(has_text=NDVI_DAY).first.click()
        assert scenes.filter(has_text=NDVI_DAY).first.get_attribute("aria-pressed") == "true"
        page.get_by_label("NDVI").check()
        page.get_by_role("button", name="Show on map").click()
        wait_for(page, "() => window.terracube.layers.status.tiles || !document.querySelector('#error').hidden", 60, "the layer")
        assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
        wait_for_tiles(page)
        assert len(services) == 1
        tiles = page.evaluate("window.terracube.layers.status.tiles")
        assert "colormap=RdYlGn" in tiles and "range=-1%2C1" in tiles
        shot = screenshot(page.locator("#map"), tmp_path, "ndvi.png", docs=False)
        page.evaluate("document.querySelector('.panel').scrollTop = 0")  # the panel as a person first sees it
        screenshot(page, tmp_path, "browser.png")

        # The colours are RdYlGn and stand for the NDVI of that day: sampled against /result.
        points, lonlat = view_points(page)
        west, south, east, north = page.evaluate("window.terracube.map.viewBBox()")
        truth_file = tmp_path / "ndvi.tif"
        con = openeo.connect(server.url)
        con.load_collection("SENTINEL2_L2A", spatial_extent={"west": west, "south": south, "east": east, "north": north},
                            temporal_extent=[NDVI_DAY, "2021-07-22"], bands=["B04", "B08"]).ndvi(nir="B08", red="B04").download(truth_file)
        truth = sample(truth_file, lonlat)[:, 0]
        picture = np.asarray(Image.open(shot).convert("RGB"))
        shown, distance = value_of_colour(colours_at(shot, points)[None], RDYLGN["colormap"], RDYLGN["range"])
        shown, distance = shown[0], distance[0]
        data = np.isfinite(truth)
        assert data.mean() > 0.7, "the view is the archive's extent: most points have data"
        exact = distance[data] <= 3
        assert exact.mean() > 0.9, f"only {exact.mean():.0%} of the sampled pixels show a colour of RdYlGn"
        agree = np.abs(shown - truth)[data] <= 0.05
        assert agree.mean() > 0.85, f"only {agree.mean():.0%} of the sampled pixels show the NDVI /result computes there"
        assert (truth[data] > 0.6).mean() > 0.3 and (picture[..., 1].astype(int) > picture[..., 0].astype(int) + 40).mean() > 0.3, \
            "vegetation, most of the valley, is drawn green"

        # Restyling changes the tile URL, not the service: no new POST /services, the tiles drawn again.
        page.get_by_label("Colours").select_option("viridis")
        wait_for(page, "() => window.terracube.layers.status.tiles.includes('colormap=viridis')", 10, "the new tile URL")
        wait_for_tiles(page)
        assert len(services) == 1
        page.locator("#range-min").fill("0")
        page.locator("#range-min").dispatch_event("change")
        wait_for(page, "() => window.terracube.layers.status.tiles.includes('range=0%2C1')", 10, "the new range")
        wait_for_tiles(page)
        # A gain of 2 draws values twice as bright: the same colours at half the values, still the same service.
        page.get_by_label("Gain").fill("2")
        page.get_by_label("Gain").dispatch_event("change")
        wait_for(page, "() => window.terracube.layers.status.tiles.includes('range=0%2C0.5')", 10, "the gained range")
        wait_for_tiles(page)
        assert len(services) == 1 and page.problems == []


@pytest.mark.parametrize("formula, message", [
    ("(B08 - B04 / (B08 + B04)", 'A ")" is missing'),
    ("(B08 - B99) / (B08 + B04)", '"B99" at character 8 is not a band of this collection'),
    ("B08 + * B04", "A value (a band name or a number) is missing before \"*\" at character 7"),
    ("B08 % 2", '"%" at character 5 is not allowed'),
])
def test_a_wrong_formula_is_explained_before_any_request(server, formula, message):
    with chromium_page() as page:
        services = requests_to(page, "POST", "/services")
        page.goto(f"{server.url}/browser/")
        wait_until_ready(page)
        page.get_by_label("Band maths").check()
        page.get_by_label("Formula", exact=True).fill(formula)
        page.get_by_role("button", name="Show on map").click()
        error = page.get_by_role("alert")
        wait_for(page, "() => !document.querySelector('#error').hidden", 10, "the error")
        assert error.inner_text().startswith("Formula: ") and message in error.inner_text(), error.inner_text()
        assert services == [] and page.problems == []


def test_a_good_formula_draws_a_layer(server, tmp_path):
    with chromium_page() as page:
        page.goto(f"{server.url}/browser/")
        wait_until_ready(page)
        page.get_by_label("Band maths").check()
        page.get_by_label("Formula", exact=True).fill("(b08 - B04) / (B08 + b04) * -1")  # names in any case; unary minus
        page.get_by_role("button", name="Show on map").click()
        wait_for(page, "() => window.terracube.layers.status.tiles || !document.querySelector('#error').hidden", 60, "the layer")
        assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
        wait_for_tiles(page)
        assert page.problems == []


def test_a_phone_sized_window_needs_no_sideways_scrolling(server, tmp_path):
    with chromium_page(PHONE) as page:
        page.goto(f"{server.url}/")
        wait_until_ready(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        map_box = page.locator("#map").bounding_box()
        assert map_box["width"] == PHONE["width"] and map_box["height"] > 300
        for selector in ("#collection", "#date-from", "#date-to", "#max-cloud", "#search-button", "#layer-button", "#formula-row", "#gamma"):
            box = page.locator(selector).bounding_box()
            if box:  # hidden ones (the formula row) have none
                assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (selector, box)
        # Keyboard: Tab reaches the search button and Enter searches.
        page.locator("#max-cloud").focus()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "search-button"
        screenshot(page, tmp_path, "phone.png", full_page=True)
        assert page.problems == []
