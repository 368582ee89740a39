"""The Browser's whole journey, as issue #18 tells it, in one Chromium tab against a server with accounts.

Log in through the built-in issuer's page (authorization code with PKCE), search the Ahr valley in
June and July 2021 with at most 20 % cloud, show the NDVI of 2021-06-13 and of 2021-07-21, swipe
between them, play the time-lapse, draw an area and chart its NDVI, download the GeoTIFF (read back
with rasterio), type a wrong formula and read what is wrong, log out. Each step's screenshot goes to
docs/browser/journey-*.png with ``TERRACUBE_UPDATE_DOCS=1``. The other files of tests/web check each
panel's pixels and numbers in detail; this one checks that a person gets through it all, in order,
logged in, with the token every request needs.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import rasterio
from pyproj import Transformer

from terracube.settings import Settings
from tests.auth.conftest import PASSWORDS, add_users
from tests.live_server import LiveServer
from tests.web.browser_page import DESKTOP, drag_rectangle, chromium_page, ensure_built, screenshot, wait_for, wait_for_tiles, wait_until_ready

AHR_VALLEY = {"west": 7.0, "south": 50.49, "east": 7.17, "north": 50.58}  # the archive's middle, the tutorial's area inside
TUTORIAL_AOI = {"west": 7.055496548917159, "south": 50.52018836230043, "east": 7.117575039388905, "north": 50.546364682516895}
BEFORE, AFTER = "2021-06-13", "2021-07-21"


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    ensure_built()
    folder = tmp_path_factory.mktemp("browser-journey")
    database = f"sqlite:///{folder / 'terracube.db'}"
    add_users(Settings(data_dir=data_dir, database_url=database), "alice")
    live = LiveServer({"TERRACUBE_DATA_DIR": str(data_dir), "TERRACUBE_DATABASE_URL": database,
                       "TERRACUBE_RESULTS_ROOT": str(folder / "results"), "TERRACUBE_TILE_CACHE_DIR": str(folder / "tiles")})
    live.start()
    yield live
    live.stop()


def no_error(page) -> None:
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()


def step(page, tmp_path, number: int, name: str, section: str | None = None) -> None:
    """The step's picture, the panel scrolled to ``section``: docs/browser/journey-N-name.png."""
    if section:
        page.locator(section).evaluate("element => element.scrollIntoView({block: 'start'})")
    screenshot(page, tmp_path, f"journey-{number}-{name}.png")


def show_ndvi_of(page, day: str) -> dict:
    """Pick ``day``'s scene and show its NDVI; the layer panel's status once its tiles are on the map."""
    page.locator("#scenes button.scene").filter(has_text=day).first.click()
    assert page.locator("#layer-date").inner_text() == f"Date: {day} (the scene picked)."
    page.get_by_label("NDVI", exact=True).check()
    page.evaluate("window.tilesBefore = window.terracube.layers.status.tiles")
    page.get_by_role("button", name="Show on map").click()
    wait_for(page, "() => window.terracube.layers.status.tiles !== window.tilesBefore || !document.querySelector('#error').hidden", 60,
             f"the NDVI of {day}")
    no_error(page)
    wait_for_tiles(page)
    return page.evaluate("window.terracube.layers.status")


def test_the_journey(server, tmp_path):
    with chromium_page(DESKTOP) as page:
        sent: list[tuple[str, str, str | None]] = []  # (method, path, Authorization) of every API request the page made
        page.on("request", lambda r: r.url.startswith(server.url) and "/browser/" not in r.url
                and sent.append((r.method, urlsplit(r.url).path, r.headers.get("authorization"))))
        page.goto(server.url)  # the server's root leads a web browser to the page

        # 1. Log in: the issuer's page, then back to the Browser with a token; who and what quota is left.
        wait_until_ready(page)
        assert page.url == f"{server.url}/browser/"
        assert "log in to show layers" in page.locator("#account").inner_text()
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/oidc/authorize?**")
        query = parse_qs(urlsplit(page.url).query)
        assert query["client_id"] == ["terracube-public"] and query["code_challenge_method"] == ["S256"]
        assert query["redirect_uri"] == [f"{server.url}/browser/"] and len(query["code_challenge"][0]) == 43
        page.get_by_label("User name").fill("alice")
        page.get_by_label("Password").fill(PASSWORDS["alice"])
        page.get_by_role("button", name="Log in and approve").click()
        page.wait_for_url(f"{server.url}/browser/")  # the code already traded and gone from the address
        wait_until_ready(page)
        wait_for(page, "() => document.querySelector('#account .who')?.innerText === 'alice'", 30, "alice's name")
        account = page.locator("#account").inner_text()
        assert "CPU hours left this month" in account and "storage free" in account, account
        token = page.evaluate("JSON.parse(sessionStorage.getItem('terracube.token'))")
        assert token["provider"] == "terracube" and token["token"].count(".") == 2
        assert page.evaluate("localStorage.length") == 0, "nothing of the login outlives the tab"
        bearer = f"Bearer oidc/terracube/{token['token']}"
        logged_in = len(sent)  # the requests from here on are alice's
        step(page, tmp_path, 1, "logged-in")

        # 2. Search the Ahr valley, June and July 2021, at most 20 % cloud: the scenes the item search finds.
        page.evaluate("(b) => window.terracube.map.map.fitBounds([[b.west, b.south], [b.east, b.north]], {animate: false, padding: 0})",
                      AHR_VALLEY)
        page.fill("#date-from", "2021-06-01")
        page.fill("#date-to", "2021-07-31")
        page.locator("#max-cloud").fill("20")
        page.get_by_role("button", name="Search").click()
        wait_for(page, "() => window.terracube.search.state.items.length > 0 || !document.querySelector('#error').hidden", 120, "the scenes")
        no_error(page)
        state = page.evaluate("window.terracube.search.state")
        days = sorted({item["properties"]["datetime"][:10] for item in state["items"]})
        assert {BEFORE, AFTER} <= set(days) and all(item["properties"]["eo:cloud_cover"] <= 20 for item in state["items"])
        assert page.locator("#scenes button.scene").count() == len(state["items"])
        assert page.locator("#timeline .mark").count() == len(state["items"])
        step(page, tmp_path, 2, "search", "#search-title")

        # 3. The NDVI of 13 June, kept as A; of 21 July, kept as B: two map services of alice's.
        before = show_ndvi_of(page, BEFORE)
        page.get_by_role("button", name="Keep the layer as A").click()
        after = show_ndvi_of(page, AFTER)
        page.get_by_role("button", name="Keep the layer as B").click()
        assert (before["title"], after["title"]) == (f"NDVI, {BEFORE}", f"NDVI, {AFTER}")
        assert page.locator("#compare-a").inner_text() == before["title"] and page.locator("#compare-b").inner_text() == after["title"]
        step(page, tmp_path, 3, "ndvi-after", "#layer-title")

        # 4. Swipe: A left of the bar, B right of it, both sides' tiles drawn.
        page.get_by_role("button", name="Swipe A | B").click()
        wait_for(page, """() => { const a = window.terracube.map.map, b = window.terracube.compare.swipe.second;
            return !!b && !!b.getSource('compare-b') && b.isSourceLoaded('compare-b') && b.areTilesLoaded()
                && !!a.getSource('compare-a') && a.isSourceLoaded('compare-a') && a.areTilesLoaded(); }""", 120, "both sides' tiles")
        no_error(page)
        step(page, tmp_path, 4, "swipe", "#compare-title")
        page.get_by_role("button", name="Stop swiping").click()
        wait_for(page, "() => !window.terracube.compare.swipe.active", 10, "the swipe closed")

        # 5. The time-lapse of the search's dates: Play steps from one date to the next.
        page.get_by_role("button", name="Make time-lapse").click()
        wait_for(page, "() => window.terracube.timelapse.status.shown === 0 || !document.querySelector('#error').hidden", 120, "the first date")
        no_error(page)
        assert page.evaluate("window.terracube.timelapse.status.dates") == days
        first_label = page.locator("#timelapse-date").inner_text()
        page.get_by_label("Dates a second").select_option("4")
        page.get_by_role("button", name="Play").click()
        wait_for(page, "() => window.terracube.timelapse.status.shown >= 2", 120, "two steps of Play")
        page.get_by_role("button", name="Pause").click()
        wait_for(page, "() => !window.terracube.timelapse.status.loading", 60, "the last date asked")
        assert page.locator("#timelapse-date").inner_text() != first_label
        step(page, tmp_path, 5, "time-lapse", "#timelapse-title")
        page.get_by_role("button", name="Close the time-lapse").click()

        # 6. Draw the tutorial's area and chart its NDVI (21 July's layer, over the search's dates).
        page.evaluate("(b) => window.terracube.map.map.fitBounds([[b.west, b.south], [b.east, b.north]], {animate: false, padding: 40})",
                      TUTORIAL_AOI)
        page.get_by_role("button", name="Draw a rectangle").click()
        wait_for(page, "() => document.querySelector('#draw-rectangle').getAttribute('aria-pressed') === 'true'", 30, "the drawing tool")
        drag_rectangle(page, *(TUTORIAL_AOI[k] for k in ("west", "south", "east", "north")))
        wait_for(page, "() => window.terracube.search.area.chosen !== null", 10, "the drawn area")
        area = page.evaluate("window.terracube.search.state.area")
        assert area == pytest.approx([TUTORIAL_AOI[k] for k in ("west", "south", "east", "north")], abs=0.001)
        page.evaluate("window.terracube.chart.series = null")
        page.get_by_role("button", name="Chart the layer").click()
        wait_for(page, "() => window.terracube.chart.series || !document.querySelector('#error').hidden", 120, "the chart")
        no_error(page)
        series = page.evaluate("window.terracube.chart.series")
        charted = [d[:10] for d in series["dates"]]
        assert set(charted) <= set(days) and AFTER in charted
        means = dict(zip(charted, series["mean"]))
        assert 0.2 < means[AFTER] < 0.9, means  # vegetation's NDVI, the flood's corridor pulling the mean down
        assert page.locator("#chart-plot canvas").count() >= 1
        step(page, tmp_path, 6, "chart", "#chart-title")

        # 7. Download the layer over the area as a GeoTIFF, read back with rasterio.
        with page.expect_download(timeout=120_000) as download:
            page.get_by_role("button", name="Download GeoTIFF").click()
        path = tmp_path / download.value.suggested_filename
        download.value.save_as(path)
        no_error(page)
        assert download.value.suggested_filename == f"NDVI_{AFTER}.tif"
        with rasterio.open(path) as tif:
            assert tif.crs.to_epsg() == 32632 and tif.count == 1 and tif.res == (10.0, 10.0)
            xs, ys = Transformer.from_crs("EPSG:4326", tif.crs, always_xy=True).transform([area[0], area[2]], [area[1], area[3]])
            assert tif.bounds.left <= min(xs) + 10 and tif.bounds.right >= max(xs) - 10
            assert tif.bounds.bottom <= min(ys) + 10 and tif.bounds.top >= max(ys) - 10
            ndvi = tif.read(1)
        assert np.isfinite(ndvi).mean() > 0.99 and np.nanmin(ndvi) >= -1 and np.nanmax(ndvi) <= 1
        assert abs(np.nanmean(ndvi) - means[AFTER]) < 0.05, "the file holds the layer the chart averaged"
        step(page, tmp_path, 7, "download", "#download-title")

        # 8. A wrong formula: what is wrong, in words, and nothing sent.
        services_before = sum(1 for method, p, _ in sent if (method, p) == ("POST", "/services"))
        page.get_by_label("Band maths").check()
        page.get_by_label("Formula", exact=True).fill("(B08 - B04 / (B08 + B04)")
        page.get_by_role("button", name="Show on map").click()
        wait_for(page, "() => !document.querySelector('#error').hidden", 10, "the error")
        message = page.get_by_role("alert").inner_text()
        assert message.startswith("Formula: ") and 'A ")" is missing' in message, message
        assert sum(1 for method, p, _ in sent if (method, p) == ("POST", "/services")) == services_before
        step(page, tmp_path, 8, "wrong-formula", "#layer-title")

        # Every request since the login that needs one carried alice's token.
        private = [(method, p, auth) for method, p, auth in sent[logged_in:] if p.startswith(("/services", "/result", "/jobs", "/me"))
                   and "/tiles/" not in p]
        assert private and all(auth == bearer for _, _, auth in private), [r for r in private if r[2] != bearer][:3]

        # 9. Log out: the token is forgotten, the login is offered again.
        page.get_by_role("button", name="Log out").click()
        wait_until_ready(page)
        wait_for(page, "() => !!document.querySelector('#login')", 30, "the login button")
        assert page.evaluate("sessionStorage.getItem('terracube.token')") is None
        assert page.problems == [] or all("401" in p for p in page.problems), page.problems
