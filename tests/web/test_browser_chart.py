"""The Browser's Chart, Download and Jobs sections in Chromium against a live laptop-mode server.

One page for the module: the map on the tutorial's area, the scenes of June and July 2021 with at
most 20 % cloud, their NDVI on the map. Then, as a person would check it:
- **Chart**: the mean and standard deviation over the area per date (cloudy pixels left out) are
  those the official ``openeo`` client gets for the same aggregate_spatial, on the search's dates;
  over a spot that is all cloud on some dates those dates are gaps (no value), not zeros; a true
  colour layer gets no chart, in words.
- **Download**: one date is small, so the GeoTIFF comes straight from ``/result`` as a download
  that rasterio reads (CRS, the area covered, one band, the values ``/result`` gives for the same
  graph); the whole period, over a lowered size limit (a page setting), goes through a batch job
  whose progress is shown, which the Jobs list shows finished, with its logs and a result link
  that downloads a GeoTIFF of one band per date.
Screenshots: docs/browser/chart-*.png and download-*.png with ``TERRACUBE_UPDATE_DOCS=1``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import openeo
import pytest
import rasterio
import requests
from PIL import Image
from pyproj import Transformer

from tests.conftest import TUTORIAL_AOI
from tests.web.browser_page import DESKTOP, PHONE, chromium_page, screenshot, wait_for, wait_until_ready

PERIOD = ("2021-06-01", "2021-07-31")
DAY = "2021-07-21"
SCL_CLOUDS = (3, 8, 9, 10)
# A spot west of the tutorial's area that the sample archive has all under cloud on 1 and 21 June 2021.
CLOUDY = {"west": 7.0231, "south": 50.5333, "east": 7.0391, "north": 50.5433}


def no_error(page) -> None:
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()


def search(page, box: dict, max_cloud: int) -> list[str]:
    """Move the map onto ``box``, search PERIOD with at most ``max_cloud`` % cloud; the scenes' dates."""
    page.evaluate("""(b) => window.terracube.map.map.fitBounds([[b.west, b.south], [b.east, b.north]], {animate: false, padding: 0})""", box)
    page.fill("#date-from", PERIOD[0])
    page.fill("#date-to", PERIOD[1])
    page.locator("#max-cloud").fill(str(max_cloud))
    page.evaluate("window.itemsBefore = window.terracube.search.state.items")  # a search puts a new list there
    page.get_by_role("button", name="Search").click()
    wait_for(page, """() => window.terracube.search.state.items !== window.itemsBefore && window.terracube.search.state.items.length > 0
        || !document.querySelector('#error').hidden""", 120, "the search's scenes")
    no_error(page)
    return sorted({item["properties"]["datetime"][:10] for item in page.evaluate("window.terracube.search.state.items")})


def show(page, kind: str) -> None:
    """Show the layer ``kind`` (the label of its radio button) on the map."""
    page.evaluate("window.serviceBefore = window.terracube.layers.status.service")
    page.get_by_label(kind, exact=True).check()
    page.get_by_role("button", name="Show on map").click()
    wait_for(page, """() => window.terracube.layers.status.service && window.terracube.layers.status.service !== window.serviceBefore
        || !document.querySelector('#error').hidden""", 60, "the layer")
    no_error(page)


def chart(page) -> dict:
    page.evaluate("window.terracube.chart.series = null")
    page.get_by_role("button", name="Chart the layer").click()
    wait_for(page, "() => window.terracube.chart.series || !document.querySelector('#error').hidden", 120, "the chart")
    no_error(page)
    return page.evaluate("window.terracube.chart.series")


def next_day(day: str) -> str:
    return str(np.datetime64(day) + np.timedelta64(1, "D"))


def client_statistics(server, box: list[float], geometry: dict, max_cloud: int | None) -> dict[str, tuple[list[str], list]]:
    """The NDVI without cloudy pixels, its mean and sd over ``geometry`` per date, as the openeo client asks for them."""
    con = openeo.connect(server.url)
    west, south, east, north = box
    cube = con.load_collection("SENTINEL2_L2A", spatial_extent={"west": west, "south": south, "east": east, "north": north},
                               temporal_extent=[PERIOD[0], next_day(PERIOD[1])], bands=["B04", "B08", "SCL"], max_cloud_cover=max_cloud)
    b04, b08, scl = cube.band("B04"), cube.band("B08"), cube.band("SCL")
    clouds = (scl == SCL_CLOUDS[0]) | (scl == SCL_CLOUDS[1]) | (scl == SCL_CLOUDS[2]) | (scl == SCL_CLOUDS[3])
    ndvi = ((b08 - b04) / (b08 + b04)).mask(clouds)
    answers = {}
    for statistic in ("mean", "sd"):
        answer = ndvi.aggregate_spatial(geometries=geometry, reducer=statistic).execute()
        assert answer["dims"] == ["geometry", "t"], answer["dims"]
        answers[statistic] = ([t[:10] for t in answer["coords"]["t"]], answer["data"][0])
    return answers


def assert_same(shown: list, truth: list) -> None:
    assert len(shown) == len(truth)
    for got, want in zip(shown, truth):
        assert (got is None) == (want is None), (shown, truth)
        if want is not None:
            assert math.isclose(got, want, abs_tol=1e-6), (got, want)


@pytest.fixture(scope="module")
def page(server):
    """The page searched on the tutorial's area (June and July 2021, at most 20 % cloud), its NDVI on the map."""
    with chromium_page(DESKTOP) as page:
        page.goto(f"{server.url}/browser/")
        wait_until_ready(page)
        page.dates = search(page, TUTORIAL_AOI, 20)
        show(page, "NDVI")
        yield page
        assert page.problems == []


def test_the_chart_is_the_mean_the_openeo_client_computes(page, server, tmp_path):
    assert page.locator("#chart-clouds").is_checked(), "cloudy pixels are left out by default"
    series = chart(page)
    state = page.evaluate("({area: window.terracube.search.state.area, geometry: window.terracube.search.state.geometry})")
    truth = client_statistics(server, state["area"], state["geometry"], 20)
    # The chart's dates are the scenes the search listed, whatever scene is picked.
    assert series["dates"] == page.dates == truth["mean"][0]
    assert len(series["dates"]) >= 10
    assert_same(series["mean"], truth["mean"][1])
    assert_same(series["sd"], truth["sd"][1])
    assert all(0.5 < m < 0.9 for m in series["mean"]) and all(0 < s < 0.4 for s in series["sd"])
    # What a person sees: the note, a table of the values, and the line drawn in the chart's blue.
    assert page.locator("#chart-note").inner_text().startswith(f"NDVI without cloudy pixels, mean over the area, {PERIOD[0]} to {PERIOD[1]}: {len(series['dates'])} dates")
    rows = page.locator("#chart-rows tr")
    assert rows.count() == len(series["dates"])
    assert rows.nth(0).locator("th, td").all_text_contents() == [series["dates"][0], f"{series['mean'][0]:.4f}", f"{series['sd'][0]:.4f}"]
    page.locator("#chart-title").scroll_into_view_if_needed()
    shot = screenshot(page.locator("#chart-plot canvas"), tmp_path, "chart-plot.png", docs=False)
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    blue = (np.abs(pixels - [31, 95, 153]).sum(axis=1) < 40).sum()
    assert blue > 200, "the mean's line and points are drawn"
    page.locator("#chart-values summary").click()
    screenshot(page, tmp_path, "chart-ndvi.png")
    page.locator("#chart-values summary").click()


def test_a_download_of_one_date_comes_straight_from_result(page, server, tmp_path):
    sent: list[dict] = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/result") and sent.append(r.post_data_json))
    page.locator("#scenes button.scene").filter(has_text=DAY).first.click()
    show(page, "NDVI")
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Download GeoTIFF").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    no_error(page)
    assert download.value.suggested_filename == f"NDVI_{DAY}.tif"
    assert page.locator("#download-note").inner_text().startswith(f"Downloaded NDVI_{DAY}.tif (about ")
    assert page.locator("#download-job").is_hidden(), "no batch job for a small download"
    estimate = page.evaluate("window.terracube.download.estimate")
    assert estimate["dates"] == 1 and estimate["bands"] == 1 and 100_000 < estimate["pixels"] < 300_000, estimate
    (graph,) = [body["process"]["process_graph"] for body in sent if "GTiff" in str(body)]
    west, south, east, north = page.evaluate("window.terracube.search.state.area")
    with rasterio.open(path) as tif:
        assert tif.crs.to_epsg() == 32632 and tif.count == 1 and tif.descriptions[0].startswith(DAY), (tif.crs, tif.descriptions)
        xs, ys = Transformer.from_crs("EPSG:4326", tif.crs, always_xy=True).transform([west, east, west, east], [south, south, north, north])
        pixel = tif.res[0]
        assert tif.bounds.left <= min(xs) + pixel and tif.bounds.right >= max(xs) - pixel, "the file covers the area"
        assert tif.bounds.bottom <= min(ys) + pixel and tif.bounds.top >= max(ys) - pixel
        assert tif.width * tif.height == pytest.approx(estimate["pixels"], rel=0.1), "the estimate is about the grid's size"
        values = tif.read(1)
    # The same graph through /result, as another client would send it: the same pixels.
    answer = requests.post(f"{server.url}/result", json={"process": {"process_graph": graph}}, timeout=120)
    assert answer.ok, answer.text
    truth_path = tmp_path / "truth.tif"
    truth_path.write_bytes(answer.content)
    with rasterio.open(truth_path) as truth:
        np.testing.assert_array_equal(values, truth.read(1))
    assert np.isfinite(values).mean() > 0.99 and np.nanmean(values) > 0.5
    page.locator("#download-title").scroll_into_view_if_needed()
    screenshot(page, tmp_path, "download-small.png")


def test_a_large_download_is_a_batch_job_shown_in_the_jobs_list(page, server, tmp_path):
    # The whole period (no scene picked) over a limit lowered for the test: more values than allowed at once.
    page.evaluate("window.terracube.search.pick(null)")
    show(page, "NDVI")
    page.evaluate("window.terracube.download.syncLimit = 1000000")
    jobs_before = requests.get(f"{server.url}/jobs", timeout=10).json()["jobs"]
    page.get_by_role("button", name="Download GeoTIFF").click()
    wait_for(page, "() => window.terracube.download.job || !document.querySelector('#error').hidden", 60, "the batch job")
    no_error(page)
    assert "so a batch job makes it" in page.locator("#download-note").inner_text()
    assert page.locator("#download-progress").is_visible()
    shown: list[tuple[str, float]] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        # One snapshot of the page (status, bar, links, error) so the last one seen is the state that ended the wait.
        text, value, links, failed = page.evaluate(
            "[document.querySelector('#download-status').innerText, document.querySelector('#download-progress').value,"
            " document.querySelectorAll('#download-links a').length, !document.querySelector('#error').hidden]"
        )
        shown.append((text, value))
        if links > 0 or failed:
            break
        time.sleep(0.1)
    no_error(page)
    job = page.evaluate("window.terracube.download.job")
    assert job["status"] == "finished" and job["title"].startswith("Download: NDVI")
    assert shown[-1] == (f"Batch job “{job['title']}”: finished, 100 %. Its files:", 100), shown[-3:]
    for text, value in shown:  # every state shown is the job's own, its bar at the progress it says
        if text:
            assert f", {value:.0f} %" in text, (text, value)
    page.locator("#download-title").scroll_into_view_if_needed()
    screenshot(page, tmp_path, "download-job.png")
    api_job = requests.get(f"{server.url}/jobs/{job['id']}", timeout=10).json()
    assert api_job["status"] == "finished" and len(requests.get(f"{server.url}/jobs", timeout=10).json()["jobs"]) == len(jobs_before) + 1

    # The Jobs list has it, finished; its logs open; its result link downloads the GeoTIFF.
    entry = page.locator(f"#jobs-list li.job[data-id='{job['id']}']")
    wait_for(page, f"() => document.querySelector(\"#jobs-list li.job[data-id='{job['id']}'] .job-status\")?.innerText === 'finished'", 30, "the job in the list")
    assert entry.locator(".job-title").inner_text() == job["title"]
    assert entry.locator("progress").evaluate("p => p.value") == 100
    entry.locator(".job-logs summary").click()
    wait_for(page, f"() => document.querySelector(\"#jobs-list li.job[data-id='{job['id']}'] .logs\")?.innerText.includes('Job finished')", 30, "the logs")
    logs = entry.locator(".logs").inner_text()
    assert "Job queued" in logs and "SENTINEL2_L2A" in logs and "Job finished" in logs, logs
    entry.locator(".job-results summary").click()
    link = entry.locator(".job-results a")
    wait_for(page, f"() => document.querySelectorAll(\"#jobs-list li.job[data-id='{job['id']}'] .job-results a\").length > 0", 30, "the result links")
    assert "signature=" in link.first.get_attribute("href")
    page.locator("#jobs-title").scroll_into_view_if_needed()
    screenshot(page, tmp_path, "download-jobs.png")
    with page.expect_download(timeout=60_000) as download:
        link.first.click()
    path = tmp_path / "from-the-job.tif"
    download.value.save_as(path)
    days = {item["properties"]["datetime"][:10] for item in requests.get(
        f"{server.url}/collections/SENTINEL2_L2A/items",
        params={"bbox": ",".join(map(str, page.evaluate("window.terracube.search.state.area"))),
                "datetime": f"{PERIOD[0]}T00:00:00Z/{PERIOD[1]}T23:59:59Z", "limit": 500}, timeout=30).json()["features"]}
    with rasterio.open(path) as tif:
        # Every scene of the period (the layer keeps them all), one band per date, NDVI values.
        assert tif.crs.to_epsg() == 32632 and tif.count == len(days) > len(page.dates)
        assert sorted(d[:10] for d in tif.descriptions) == sorted(days)
        sample = tif.read(tif.descriptions.index(next(d for d in tif.descriptions if d.startswith(DAY))) + 1)
        assert np.nanmean(sample) > 0.5 and np.nanmax(sample) <= 1
    assert page.evaluate("window.terracube.download.estimate")["dates"] == len(days)
    page.evaluate("window.terracube.download.syncLimit = 10000000")


def test_dates_all_under_cloud_are_gaps(page, server, tmp_path):
    dates = search(page, CLOUDY, 100)
    series = chart(page)
    state = page.evaluate("({area: window.terracube.search.state.area, geometry: window.terracube.search.state.geometry})")
    truth = client_statistics(server, state["area"], state["geometry"], None)
    assert series["dates"] == dates == truth["mean"][0]
    assert_same(series["mean"], truth["mean"][1])
    assert_same(series["sd"], truth["sd"][1])
    gaps = [d for d, m in zip(series["dates"], series["mean"]) if m is None]
    assert "2021-06-01" in gaps and len(gaps) < len(dates) / 2, gaps
    assert f"{len(gaps)} without data (gaps in the line)" in page.locator("#chart-note").inner_text()
    row = page.locator("#chart-rows tr").nth(series["dates"].index("2021-06-01"))
    assert row.locator("th, td").all_text_contents() == ["2021-06-01", "no data", "no data"]
    page.locator("#chart-title").scroll_into_view_if_needed()
    screenshot(page.locator("#chart-plot"), tmp_path, "chart-gaps.png")


def test_a_true_colour_layer_has_no_chart(page, server):
    show(page, "True colour")
    sent: list[str] = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/result") and sent.append(r.url))
    page.get_by_role("button", name="Chart the layer").click()
    assert page.locator("#chart-note").inner_text() == "A chart needs a layer of one band: show NDVI or band maths on the map."
    assert sent == []


def test_the_sections_fit_a_phone(page, server, tmp_path):
    page.set_viewport_size(PHONE)
    try:
        wait_for(page, "() => document.documentElement.scrollWidth <= window.innerWidth", 10, "no sideways scrolling")
        for selector in ("#chart-clouds-label", "#chart-button", "#chart-plot", "#download-button", "#jobs-refresh", "#jobs-list"):
            box = page.locator(selector).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (selector, box)
        page.locator("#chart-button").focus()  # the keyboard goes on to the chart's values, then the download
        for _ in range(3):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "download-button":
                break
        assert page.evaluate("document.activeElement.id") == "download-button"
        screenshot(page, tmp_path, "chart-phone.png", docs=False, full_page=True)
    finally:
        page.set_viewport_size(DESKTOP)
