"""The Browser's time-lapse in Chromium against a live laptop-mode server, one page through the whole story.

Search the Ahr valley in June and July 2021 with at most 20 % cloud, choose NDVI and make the
time-lapse → one map service over the period, its tiles asked per date (``?time=``); Play → the
date and the map's pixels change from frame to frame, one date loading at a time; the slider (by
keyboard) picks 21 July 2021 → the map shows that day's NDVI as ``/result`` computes it; Export GIF
→ a file made on the server with one frame per date found. Screenshots: docs/browser/timelapse-*.png
with ``TERRACUBE_UPDATE_DOCS=1``.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import numpy as np
import openeo
import pytest
from PIL import Image, ImageSequence

from tests.services.test_map_in_browser import value_of_colour
from tests.web.browser_page import colours_at, sample, view_points, DESKTOP, PHONE, chromium_page, screenshot, wait_for, wait_until_ready

PICKED = "2021-07-21"
RDYLGN = ("RdYlGn", [-1, 1])


@pytest.fixture(scope="module")
def page(server):
    """One page for the module's steps, in order: search and make the time-lapse, play, pick a date, export."""
    with chromium_page(DESKTOP) as page:
        page.tile_times = []  # (the date of each time-lapse tile request, when it was sent)
        page.on("request", lambda r: "/tiles/" in r.url and "time=" in r.url
                and page.tile_times.append((parse_qs(urlsplit(r.url).query)["time"][0], time.monotonic())))
        page.goto(f"{server.url}/browser/")
        wait_until_ready(page)
        yield page


def status(page) -> dict:
    return page.evaluate("() => { const s = window.terracube.timelapse.status; return {...s, service: s.service && s.service.id}; }")


def wait_for_frame(page, index: int, timeout: float = 120) -> None:
    """Until date ``index`` is on the map with all its tiles, and the map has drawn it."""
    wait_for(page, f"""() => {{ const s = window.terracube.timelapse.status, m = window.terracube.map.map;
        return s.shown === {index} && !s.loading && m.areTilesLoaded() && !m.isMoving(); }}""", timeout, f"date {index} on the map")
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def map_pixels(page, tmp_path, name: str, docs: bool = False) -> np.ndarray:
    return np.asarray(Image.open(screenshot(page.locator("#map"), tmp_path, name, docs=docs)).convert("RGB")).astype(int)


def test_the_search_s_dates_become_a_time_lapse_of_the_ndvi(page, server):
    page.fill("#date-from", "2021-06-01")
    page.fill("#date-to", "2021-07-31")
    page.locator("#max-cloud").fill("20")
    page.get_by_role("button", name="Search").click()
    wait_for(page, "() => document.querySelectorAll('#scenes button.scene').length > 0 || !document.querySelector('#error').hidden",
             120, "the search's scenes")
    days = sorted({d[:10] for d in page.evaluate("window.terracube.search.state.items.map(i => i.properties.datetime)")})
    page.get_by_label("NDVI").check()
    page.get_by_role("button", name="Make time-lapse").click()
    wait_for(page, "() => window.terracube.timelapse.status.shown === 0 || !document.querySelector('#error').hidden", 120, "the first date")
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
    state = status(page)
    assert state["dates"] == days and len(days) > 10 and PICKED in days
    assert page.get_by_role("slider", name=re.compile("^Date:")).get_attribute("max") == str(len(days) - 1)
    assert page.locator("#timelapse-date").inner_text() == f"3 June 2021 (1 of {len(days)})"
    assert page.locator("#timelapse-title-note").inner_text().startswith(f"NDVI, 2021-06-03 to 2021-07-31: the {len(days)} dates of the scenes found")
    # One service over the whole period, with the search's cloud limit: its tiles carry the date.
    service = page.evaluate("window.terracube.timelapse.status.service")
    assert service["title"].startswith("Time-lapse: NDVI, 2021-06-03 to 2021-07-31"), service["title"]
    assert "time=2021-06-03" in state["tiles"] and "colormap=RdYlGn" in state["tiles"]
    con = openeo.connect(server.url)
    graph = con.service(service["id"]).describe_service()["process"]["process_graph"]
    assert graph["load"]["arguments"]["temporal_extent"] == ["2021-06-03", "2021-08-01"]
    assert graph["load"]["arguments"]["properties"]["eo:cloud_cover"]["process_graph"]["cloud"]["process_id"] == "lte"


def test_play_steps_through_the_dates_one_loading_at_a_time(page, tmp_path):
    wait_for_frame(page, 0)
    first = map_pixels(page, tmp_path, "first.png")
    first_label = page.locator("#timelapse-date").inner_text()
    page.get_by_label("Dates a second").select_option("4")
    sent_before = len(page.tile_times)
    page.get_by_role("button", name="Play").click()
    assert page.locator("#timelapse-play").inner_text() == "Pause"
    wait_for(page, "() => window.terracube.timelapse.status.shown >= 2", 120, "two steps of Play")
    page.get_by_role("button", name="Pause").click()
    shown = status(page)["shown"]
    wait_for(page, "() => !window.terracube.timelapse.status.loading", 60)
    shown = status(page)["shown"]
    wait_for_frame(page, shown)
    dates = status(page)["dates"]
    assert page.locator("#timelapse-play").inner_text() == "Play"
    label = page.locator("#timelapse-date").inner_text()
    assert label != first_label and label.endswith(f"({shown + 1} of {len(dates)})")
    later = map_pixels(page, tmp_path, "later.png")
    changed = (np.abs(first - later).sum(axis=-1) > 30).mean()
    assert changed > 0.01, f"only {changed:.1%} of the map changed between {first_label} and {label}"
    # Play asked for the dates in order, each once the one before was shown: nothing skipped ahead.
    asked = list(dict.fromkeys(date for date, _ in page.tile_times[sent_before:]))
    assert asked == dates[1:len(asked) + 1] and len(asked) <= shown + 1, asked


def test_the_slider_picks_a_date_and_the_map_shows_its_ndvi(page, server, tmp_path):
    dates = status(page)["dates"]
    target = dates.index(PICKED)
    slider = page.get_by_role("slider", name=re.compile("^Date:"))
    slider.focus()
    page.keyboard.press("Home")
    wait_for_frame(page, 0)
    sent_before = len(page.tile_times)
    for _ in range(target):  # the keyboard, quicker than the dates load
        page.keyboard.press("ArrowRight")
    assert status(page)["wanted"] == target
    wait_for_frame(page, target)
    assert page.locator("#timelapse-date").inner_text() == f"21 July 2021 ({target + 1} of {len(dates)})"
    # The dates passed over while one was loading were never asked for.
    asked = set(date for date, _ in page.tile_times[sent_before:])
    assert PICKED in asked and len(asked) < target, sorted(asked)
    shot = screenshot(page.locator("#map"), tmp_path, "picked.png", docs=False)
    page.evaluate("document.querySelector('#timelapse-title').scrollIntoView()")
    screenshot(page, tmp_path, "timelapse-ndvi.png")

    # The map is that day's NDVI, sampled against /result (with the search's cloud limit).
    points, lonlat = view_points(page)
    west, south, east, north = page.evaluate("window.terracube.search.state.area")
    truth_file = tmp_path / "ndvi.tif"
    con = openeo.connect(server.url)
    con.load_collection("SENTINEL2_L2A", spatial_extent={"west": west, "south": south, "east": east, "north": north},
                        temporal_extent=[PICKED, "2021-07-22"], bands=["B04", "B08"], max_cloud_cover=20
                        ).ndvi(nir="B08", red="B04").download(truth_file)
    truth = sample(truth_file, lonlat)[:, 0]
    shown, distance = value_of_colour(colours_at(shot, points)[None], *RDYLGN)
    shown, distance = shown[0], distance[0]
    data = np.isfinite(truth)
    assert data.mean() > 0.7
    agree = (np.abs(shown - truth) <= 0.05) & (distance <= 3)
    assert agree[data].mean() > 0.85, f"only {agree[data].mean():.0%} of the sampled pixels show the NDVI of {PICKED}"


def test_export_gif_downloads_one_frame_per_date(page, tmp_path):
    dates = status(page)["dates"]
    width = int(page.get_by_label("Export width (pixels)").input_value())
    assert 16 <= width <= 720
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    page.get_by_role("button", name="Export GIF").click()
    assert page.locator("#timelapse-gif").is_disabled() and "Making the GIF" in page.locator("#status").inner_text()
    wait_for(page, "() => !document.querySelector('#timelapse-download').hidden || !document.querySelector('#error').hidden",
             240, "the GIF")
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
    wait_for(page, "() => !document.querySelector('#timelapse-gif').disabled", 10)
    [download] = downloads
    path = tmp_path / "timelapse.gif"
    download.save_as(path)
    assert download.suggested_filename == f"timelapse-ndvi-{dates[0]}-{dates[-1]}.gif"
    with Image.open(path) as gif:
        assert gif.format == "GIF" and abs(gif.size[0] / width - 1) < 0.05, (gif.size, width)  # the UTM grid of a WGS84 box
        frames = [np.asarray(frame.convert("RGBA")) for frame in ImageSequence.Iterator(gif)]
    assert len(frames) == len(dates), f"{len(frames)} frames for {len(dates)} dates"
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))
    link = page.locator("#timelapse-download")
    assert link.is_visible() and link.inner_text().startswith(f"Download timelapse-ndvi-{dates[0]}")
    assert page.locator("#error").is_hidden() and page.problems == []


def test_the_layer_s_colours_restyle_the_time_lapse_without_a_new_service(page):
    services = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/services") and services.append(r.url))
    shown, service = status(page)["shown"], status(page)["service"]
    page.get_by_label("Colours").select_option("viridis")
    wait_for(page, "() => (window.terracube.timelapse.status.tiles || '').includes('colormap=viridis')", 60, "the new colours")
    wait_for_frame(page, shown)
    assert status(page)["service"] == service and services == []


def test_closing_brings_the_page_back_and_a_phone_sees_the_controls(page, tmp_path):
    page.get_by_role("button", name="Close the time-lapse").click()
    assert page.evaluate("() => !window.terracube.map.map.getLayer('timelapse-a') && !window.terracube.timelapse.status.service")
    with chromium_page(PHONE) as phone:
        phone.goto(page.url)
        wait_until_ready(phone)
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        for selector in ("#timelapse-make", "#timelapse-width", "#timelapse-gif", "#timelapse-mp4"):
            box = phone.locator(selector).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (selector, box)
        # Without a search there is nothing to animate, and the page says so.
        phone.get_by_role("button", name="Make time-lapse").click()
        assert "Search first" in phone.get_by_role("alert").inner_text()
