"""The Browser's search in Chromium against a live laptop-mode server: the area, the timeline, the latest clear scene.

A person draws a rectangle over the tutorial's area with the mouse (or a polygon), types a box or
uploads a GeoJSON file, and searches June and July 2021 with at most 20 % cloud: the scenes listed
are the ones the API's item search (``GET /collections/{id}/items``, asked here too) returns for that
area. Each scene is one mark on the timeline; hovering shows its date and cloud cover, a click or
Enter picks it as the list does (the layer note shows its date). "Latest clear scene" picks the
newest scene with at most 10 % cloud, or says there is none. Wrong boxes and files are explained in
words. One server and one page for the module; each test starts from the map's view.
Screenshot: docs/browser/search-area.png with ``TERRACUBE_UPDATE_DOCS=1``.
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.web.browser_page import drag_rectangle, on_screen, DESKTOP, PHONE, chromium_page, screenshot, wait_for, wait_until_ready

# The tutorial's area (bench/tutorial.py, the seed tutorial's flood exercise).
AOI = {"west": 7.055496548917159, "south": 50.52018836230043, "east": 7.117575039388905, "north": 50.546364682516895}
AOI_BOX = [AOI["west"], AOI["south"], AOI["east"], AOI["north"]]
JUNE_JULY = ("2021-06-01", "2021-07-31")
PIXEL = 0.0005  # degrees: a few screen pixels at the view of the archive's extent (about 0.0002 degrees a pixel)


@pytest.fixture(scope="module")
def shared_page(server):
    with chromium_page(DESKTOP) as page:
        page.item_searches = []  # the item searches the page sends
        page.on("request", lambda r: "/items?" in r.url and page.item_searches.append(r.url))
        page.goto(f"{server.url}/browser/")
        wait_until_ready(page)
        yield page


@pytest.fixture
def page(shared_page):
    """The module's page, back at the map's view of the archive with nothing picked and no error."""
    page = shared_page
    page.set_viewport_size(DESKTOP)
    page.evaluate("""() => { const t = window.terracube; if (t.search.area.chosen) t.search.area.clear();
        t.map.showExtent(t.search.state.collection.extent.spatial.bbox[0]); document.querySelector('#error').hidden = true; }""")
    page.item_searches.clear()
    page.problems.clear()
    yield page
    assert page.problems == []


def api_scenes(server, bbox, start: str, end: str, max_cloud: float) -> list[dict]:
    """The API's item search over ``bbox`` and the dates (every page), cloud cover filtered here: the scenes, oldest first."""
    url = f"{server.url}/collections/SENTINEL2_L2A/items"
    params = {"bbox": ",".join(str(v) for v in bbox), "datetime": f"{start}T00:00:00Z/{end}T23:59:59Z", "limit": 10}
    items = []
    while url:
        page = requests.get(url, params=params, timeout=60)
        page.raise_for_status()
        body = page.json()
        items += body["features"]
        url, params = next((link["href"] for link in body.get("links", []) if link["rel"] == "next"), None), None
    items = [item for item in items if item["properties"]["eo:cloud_cover"] <= max_cloud]
    return sorted(items, key=lambda item: item["properties"]["datetime"])


def search(page, start: str, end: str, max_cloud: int) -> list[str]:
    """Fill in the dates and the cloud cover, press Search, wait for the scenes: their ids as listed."""
    page.fill("#date-from", start)
    page.fill("#date-to", end)
    page.locator("#max-cloud").fill(str(max_cloud))
    page.get_by_role("button", name="Search").click()
    wait_for(page, """() => !document.querySelector('#search-button').disabled
        && (/^(\\d+ scene|No scene)/.test(document.querySelector('#scene-count').innerText) || !document.querySelector('#error').hidden)""",
             60, "the search's scenes")
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
    return page.locator("#scenes button.scene").evaluate_all("(buttons) => buttons.map(b => b.dataset.id)")


def chosen_area(page) -> dict | None:
    return page.evaluate("window.terracube.search.area.chosen")


def error_text(page) -> str:
    wait_for(page, "() => !document.querySelector('#error').hidden", 10, "the error")
    return page.locator("#error").inner_text()


def area_outlined(page, shown: bool = True) -> bool:
    """Until the map draws the area's outline (or, ``shown`` False, none): MapLibre draws a new outline on its next frame."""
    wait_for(page, f"() => (window.terracube.map.map.queryRenderedFeatures({{layers: ['area-line']}}).length > 0) === {str(shown).lower()}",
             10, "the area's outline" if shown else "no area outline")
    return True


def test_a_drawn_rectangle_is_the_search_area_and_its_scenes_are_on_the_timeline(server, page, tmp_path):
    page.get_by_role("button", name="Draw a rectangle").click()
    wait_for(page, "() => document.querySelector('#draw-rectangle').getAttribute('aria-pressed') === 'true'", 30, "the drawing tool")
    drag_rectangle(page, *AOI_BOX)
    wait_for(page, "() => window.terracube.search.area.chosen !== null", 10, "the drawn area")
    area = chosen_area(page)
    assert area["geometry"]["type"] == "Polygon" and area["bbox"] == pytest.approx(AOI_BOX, abs=PIXEL)
    assert page.get_by_role("button", name="Draw a rectangle").get_attribute("aria-pressed") == "false"
    assert "a drawn rectangle" in page.locator("#area-note").inner_text()
    assert area_outlined(page)

    listed = search(page, *JUNE_JULY, 20)
    state = page.evaluate("window.terracube.search.state")
    assert state["area"] == area["bbox"] and state["geometry"] == area["geometry"]
    assert len(page.item_searches) == 1 and "bbox=7.0" in page.item_searches[0]
    expected = api_scenes(server, state["area"], *JUNE_JULY, 20)
    assert listed == [item["id"] for item in expected] and len(listed) > 5
    assert api_scenes(server, AOI_BOX, *JUNE_JULY, 20) == expected  # the box drawn is the tutorial's

    # One mark per scene, in date order, its cloud cover in its label; hovering shows date and cloud.
    marks = page.locator("#timeline .mark")
    labels = marks.evaluate_all("(marks) => marks.map(m => m.getAttribute('aria-label'))")
    assert labels == [f"{i['properties']['datetime'][:10]}, {i['properties']['eo:cloud_cover']:.0f} % cloud" for i in expected]
    heights = marks.evaluate_all("(marks) => marks.map(m => +m.querySelector('circle').getAttribute('cy'))")
    clouds = [item["properties"]["eo:cloud_cover"] for item in expected]
    cloudiest, clearest = clouds.index(max(clouds)), clouds.index(min(clouds))
    assert heights[cloudiest] < heights[clearest], "the cloudier scene's mark is higher (SVG y grows downwards)"
    marks.nth(cloudiest).hover()
    tip = page.locator("#timeline [role=tooltip]")
    assert tip.is_visible() and tip.inner_text() == labels[cloudiest]

    # A click on a mark picks that scene: the list, the timeline and the layer show the same date.
    day = "2021-07-21"
    index = next(i for i, item in enumerate(expected) if item["properties"]["datetime"].startswith(day))
    marks.nth(index).click()
    assert page.locator("#layer-date").inner_text() == f"Date: {day} (the scene picked)."
    assert page.locator("#scenes button.scene[aria-pressed=true]").evaluate_all("(b) => b.map(x => x.dataset.id)") == [expected[index]["id"]]
    assert marks.evaluate_all("(marks) => marks.map(m => m.getAttribute('aria-pressed'))").count("true") == 1
    assert marks.nth(index).get_attribute("aria-pressed") == "true"
    # ... and picking in the list marks it on the timeline.
    page.locator("#scenes button.scene").nth(0).click()
    assert marks.nth(0).get_attribute("aria-pressed") == "true" and marks.nth(index).get_attribute("aria-pressed") == "false"
    page.evaluate("document.querySelector('.panel').scrollTop = document.querySelector('#area').offsetTop - 8")
    marks.nth(index).click()
    marks.nth(index).hover()
    screenshot(page, tmp_path, "search-area.png")

    # The keyboard: Tab from Search reaches the timeline (its picked mark), arrows move, Enter picks.
    page.locator("#search-button").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.id") == expected[index]["id"]
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.dataset.id") == expected[index - 1]["id"]
    assert tip.is_visible() and tip.inner_text() == labels[index - 1]  # focus shows it too
    page.keyboard.press("Enter")
    assert page.locator("#layer-date").inner_text() == f"Date: {expected[index - 1]['properties']['datetime'][:10]} (the scene picked)."
    assert page.locator(f"#scenes button.scene[data-id='{expected[index - 1]['id']}']").get_attribute("aria-pressed") == "true"

    # Right after a search, the shortcut picks the newest scene with at most 10 % cloud (the least cloudy of that day).
    clear = sorted((i for i in expected if i["properties"]["eo:cloud_cover"] <= 10),
                   key=lambda i: (i["properties"]["datetime"][:10], -i["properties"]["eo:cloud_cover"]))[-1]
    page.get_by_role("button", name="Latest clear scene").click()
    assert page.evaluate("window.terracube.search.state.scene.id") == clear["id"]
    assert page.locator("#layer-date").inner_text() == f"Date: {clear['properties']['datetime'][:10]} (the scene picked)."
    assert page.locator(f"#timeline .mark[data-id='{clear['id']}']").get_attribute("aria-pressed") == "true"

    # "Clear area": back to the map's view, the outline gone.
    page.get_by_role("button", name="Clear area").click()
    assert chosen_area(page) is None and page.evaluate("window.terracube.search.state.area") is None
    assert area_outlined(page, shown=False) and "the map's current view" in page.locator("#area-note").inner_text()
    view = page.evaluate("window.terracube.map.viewBBox()")
    assert search(page, *JUNE_JULY, 20) == [item["id"] for item in api_scenes(server, view, *JUNE_JULY, 20)]
    assert page.evaluate("window.terracube.search.state.area") == view


def test_a_drawn_polygon(page):
    page.get_by_role("button", name="Draw a polygon").click()
    wait_for(page, "() => document.querySelector('#draw-polygon').getAttribute('aria-pressed') === 'true'", 30, "the drawing tool")
    corners = [(AOI["west"], AOI["north"]), (AOI["east"], AOI["north"]), (AOI["east"], AOI["south"]), (AOI["west"], AOI["south"])]
    for lon, lat in corners + corners[:1]:  # the first corner again closes it
        page.mouse.click(*on_screen(page, lon, lat))
    wait_for(page, "() => window.terracube.search.area.chosen !== null", 10, "the drawn polygon")
    area = chosen_area(page)
    assert area["geometry"]["type"] == "Polygon" and len(area["geometry"]["coordinates"][0]) == 5
    assert area["bbox"] == pytest.approx(AOI_BOX, abs=PIXEL) and "a drawn polygon" in page.locator("#area-note").inner_text()
    # Esc while drawing gives up, leaving the area as it was.
    page.get_by_role("button", name="Draw a rectangle").click()
    wait_for(page, "() => document.querySelector('#draw-rectangle').getAttribute('aria-pressed') === 'true'", 10, "the drawing tool")
    page.keyboard.press("Escape")
    assert page.get_by_role("button", name="Draw a rectangle").get_attribute("aria-pressed") == "false"
    assert chosen_area(page) == area


def test_a_typed_box(server, page):
    page.locator("#area-more summary").click()
    # Outside the archive: no scene, as the API says; the view would have had some.
    for field, value in zip(("West", "South", "East", "North"), ("8.0", "50.0", "8.1", "50.1")):
        page.get_by_label(field, exact=True).fill(value)
    page.get_by_role("button", name="Use this box").click()
    assert chosen_area(page)["bbox"] == [8.0, 50.0, 8.1, 50.1] and area_outlined(page)
    assert search(page, *JUNE_JULY, 20) == [] == api_scenes(server, [8.0, 50.0, 8.1, 50.1], *JUNE_JULY, 20)
    assert page.locator("#scene-count").inner_text().startswith("No scene matches")
    assert page.locator("#timeline").is_hidden()
    page.get_by_role("button", name="Latest clear scene").click()  # a search that found nothing: nothing clear either
    assert "none picked" in page.locator("#latest-clear-note").inner_text()

    # The tutorial's box, taken with Enter in a field.
    for field, value in zip(("West", "South", "East", "North"), AOI_BOX):
        page.get_by_label(field, exact=True).fill(str(value))
    searches = len(page.item_searches)
    page.get_by_label("North", exact=True).press("Enter")
    assert chosen_area(page)["bbox"] == pytest.approx(AOI_BOX, abs=1e-5) and len(page.item_searches) == searches  # not a search
    assert search(page, *JUNE_JULY, 20) == [item["id"] for item in api_scenes(server, AOI_BOX, *JUNE_JULY, 20)]

    # Wrong boxes: said in words, the area unchanged, no search sent.
    before, searches = chosen_area(page), len(page.item_searches)
    for values, message in [
        (("7.2", "50.5", "7.1", "50.6"), "West (7.2) must be less than east (7.1)"),
        (("7.0", "50.5", "7.1", "95"), "North must be between -90 and 90 degrees (WGS84); it is 95."),
        (("-190", "50.5", "7.1", "50.6"), "West must be between -180 and 180 degrees"),
        (("7.0", "", "7.1", "50.6"), "South must be a number of degrees"),
        (("7.0", "50.6", "7.1", "50.5"), "South (50.6) must be less than north (50.5)"),
    ]:
        for field, value in zip(("West", "South", "East", "North"), values):
            page.get_by_label(field, exact=True).fill(value)
        page.get_by_role("button", name="Use this box").click()
        assert error_text(page).startswith("Area: ") and message in error_text(page)
        assert chosen_area(page) == before
    assert len(page.item_searches) == searches


def polygon_feature(box: list[float]) -> dict:
    w, s, e, n = box
    return {"type": "Feature", "properties": {"name": "tutorial"},
            "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}}


def test_an_uploaded_geojson_file(server, page, tmp_path):
    page.locator("#area-more summary").click()
    # A FeatureCollection of two polygons: the tutorial's area and a smaller one east of it, as one MultiPolygon.
    second = [7.13, 50.53, 7.15, 50.54]
    good = tmp_path / "areas.geojson"
    good.write_text(json.dumps({"type": "FeatureCollection", "features": [polygon_feature(AOI_BOX), polygon_feature(second)]}))
    page.get_by_label("GeoJSON file").set_input_files(str(good))
    wait_for(page, "() => window.terracube.search.area.chosen !== null", 10, "the uploaded area")
    area = chosen_area(page)
    assert area["geometry"]["type"] == "MultiPolygon" and len(area["geometry"]["coordinates"]) == 2
    assert area["bbox"] == pytest.approx([AOI["west"], AOI["south"], second[2], AOI["north"]])
    assert "areas.geojson" in page.locator("#area-note").inner_text() and area_outlined(page)
    assert search(page, *JUNE_JULY, 20) == [item["id"] for item in api_scenes(server, area["bbox"], *JUNE_JULY, 20)]
    assert page.evaluate("window.terracube.search.state.geometry") == area["geometry"]

    # Wrong files: the error in words, the area as it was.
    line = {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": [[7.0, 50.5], [7.1, 50.6]]}}
    metres = polygon_feature([360000, 5600000, 365000, 5605000])
    big = polygon_feature(AOI_BOX)
    big["properties"]["padding"] = "x" * 1_100_000
    for name, content, message in [
        ("line.geojson", json.dumps(line), "“line.geojson” is a LineString: an area must be a Polygon or MultiPolygon"),
        ("notes.txt", "west 7.05, south 50.52", "“notes.txt” is not JSON"),
        ("utm.geojson", json.dumps(metres), "is not a longitude and latitude in degrees"),
        ("empty.geojson", json.dumps({"type": "FeatureCollection", "features": []}), "the FeatureCollection has no features"),
        ("big.geojson", json.dumps(big), "“big.geojson” is 1.1 MB; an area's file may be at most 1.0 MB"),
    ]:
        path = tmp_path / name
        path.write_text(content)
        page.get_by_label("GeoJSON file").set_input_files(str(path))
        # The file is read asynchronously: the previous file's message stays until this one's is shown.
        wait_for(page, f"() => document.querySelector('#error').innerText.includes({json.dumps(message)})", 10, f"{name}'s message")
        assert chosen_area(page) == area


def test_latest_clear_scene_when_none_is_clear(server, page):
    dates = ("2021-07-09", "2021-07-17")
    listed = search(page, *dates, 100)
    expected = api_scenes(server, page.evaluate("window.terracube.search.state.area"), *dates, 100)
    assert listed == [item["id"] for item in expected] and len(listed) >= 2
    assert all(item["properties"]["eo:cloud_cover"] > 10 for item in expected), "the archive's cloudy week"
    assert page.locator("#timeline .mark").count() == len(listed)
    page.get_by_role("button", name="Latest clear scene").click()
    assert page.locator("#latest-clear-note").inner_text() == \
        "No scene of this search has at most 10 % cloud: none picked. Widen the dates or the cloud cover."
    assert page.evaluate("window.terracube.search.state.scene") is None
    assert page.locator("#scenes button.scene[aria-pressed=true]").count() == 0


def test_the_timeline_fits_a_phone(server, page):
    page.set_viewport_size(PHONE)
    listed = search(page, *JUNE_JULY, 100)
    assert page.locator("#timeline .mark").count() == len(listed)
    box = page.locator("#timeline svg").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for selector in ("#draw-rectangle", "#draw-polygon", "#area-clear", "#latest-clear"):
        button = page.locator(selector).bounding_box()
        assert button["x"] >= 0 and button["x"] + button["width"] <= PHONE["width"], selector
