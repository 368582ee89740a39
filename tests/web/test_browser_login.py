"""The Browser with accounts: a person logs in through the built-in issuer's page (authorization code
with PKCE), comes back logged in, sees who they are and what is left of their quota, and makes a layer
with their token. Chromium against a live server in accounts mode (one user, alice).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from terracube.settings import Settings
from tests.auth.conftest import PASSWORDS, add_users
from tests.live_server import LiveServer
from tests.web.browser_page import chromium_page, ensure_built, screenshot, wait_for, wait_for_tiles, wait_until_ready


@pytest.fixture
def server(data_dir, tmp_path):
    ensure_built()
    database = f"sqlite:///{tmp_path / 'terracube.db'}"
    add_users(Settings(data_dir=data_dir, database_url=database), "alice")
    live = LiveServer({"TERRACUBE_DATA_DIR": str(data_dir), "TERRACUBE_DATABASE_URL": database,
                       "TERRACUBE_RESULTS_ROOT": str(tmp_path / "results"), "TERRACUBE_TILE_CACHE_DIR": str(tmp_path / "tiles")})
    live.start()
    yield live
    live.stop()


def test_log_in_with_pkce_then_make_a_layer(server, tmp_path):
    with chromium_page() as page:
        authorize: list[str] = []
        page.on("request", lambda r: "/oidc/authorize" in r.url and r.method == "GET" and authorize.append(r.url))
        page.goto(server.url)
        wait_until_ready(page)
        # Not logged in: the collections are public, the account area offers the login.
        assert page.locator("#collection").input_value() == "SENTINEL2_L2A"
        login = page.get_by_role("button", name="Log in")
        assert "log in to show layers" in page.locator("#account").inner_text()
        login.click()

        page.wait_for_url("**/oidc/authorize?**")
        query = parse_qs(urlsplit(authorize[0]).query)
        assert query["client_id"] == ["terracube-public"] and query["code_challenge_method"] == ["S256"]
        assert query["redirect_uri"] == [f"{server.url}/browser/"] and len(query["code_challenge"][0]) == 43
        page.get_by_label("User name").fill("alice")
        page.get_by_label("Password").fill(PASSWORDS["alice"])
        page.get_by_role("button", name="Log in and approve").click()

        page.wait_for_url(f"{server.url}/browser/")  # back, the code already traded and gone from the address
        wait_until_ready(page)
        wait_for(page, "() => document.querySelector('#account .who')?.innerText === 'alice'", 30, "alice's name")
        account = page.locator("#account").inner_text()
        assert "CPU hours left this month" in account and "storage free" in account, account
        token = page.evaluate("JSON.parse(sessionStorage.getItem('terracube.token'))")
        assert token["provider"] == "terracube" and token["token"].count(".") == 2
        assert page.evaluate("localStorage.length") == 0, "nothing of the login outlives the tab"

        # The token works: POST /services needs it in accounts mode.
        page.get_by_label("True colour").check()
        page.get_by_role("button", name="Show on map").click()
        wait_for(page, "() => window.terracube.layers.status.tiles || !document.querySelector('#error').hidden", 60, "the layer")
        assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
        wait_for_tiles(page)
        screenshot(page, tmp_path, "logged-in.png")

        # Logging out forgets the token; the page offers the login again.
        page.get_by_role("button", name="Log out").click()
        wait_until_ready(page)
        wait_for(page, "() => !!document.querySelector('#login')", 30, "the login button")
        assert page.evaluate("sessionStorage.getItem('terracube.token')") is None
        assert page.problems == [] or all("401" in p for p in page.problems), page.problems
