"""The Browser's page as HTTP: where a person is sent, what API clients still get, the policy and the files.

``/`` sends a web browser (``Accept: text/html``) to ``/browser/`` and gives API clients
(``application/json``, ``*/*``, no ``Accept``) the capabilities; the official client still connects.
``/browser/`` is the built page with its own Content-Security-Policy, its assets cached for good,
nothing outside the build reachable; without a build it says how to make one. These routes are no
part of the openEO API: not in ``/openapi.json`` nor in the capabilities' endpoints.
"""

from __future__ import annotations

import re

import openeo
import pytest
import requests
from fastapi.testclient import TestClient

from terracube.api.app import create_app
from terracube.api.browser import page_policy, wants_page
from terracube.settings import Settings
from tests.live_server import LiveServer
from tests.web.browser_page import ensure_built

CHROME_NAVIGATION = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8"
FIREFOX_NAVIGATION = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture(scope="module")
def client(data_dir, tmp_path_factory):
    ensure_built()
    folder = tmp_path_factory.mktemp("browser-serving")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{folder / 'terracube.db'}", results_root=str(folder / "results"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.mark.parametrize("accept", [CHROME_NAVIGATION, FIREFOX_NAVIGATION, "text/html"])
def test_a_web_browser_opening_the_root_is_sent_to_the_browser_page(client, accept):
    answer = client.get("/", headers={"Accept": accept}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/browser/"
    assert "Accept" in answer.headers["vary"]
    assert client.get("/", headers={"Accept": accept}).url.path == "/browser/"


@pytest.mark.parametrize("accept", ["application/json", "*/*", "application/json, text/html", None])
def test_api_clients_keep_getting_the_capabilities(client, accept):
    answer = client.get("/", headers={"Accept": accept} if accept else {}, follow_redirects=False)
    assert answer.status_code == 200, answer.text
    assert answer.json()["api_version"] == "1.2.0"
    assert "Accept" in answer.headers["vary"]  # a cache must not hand this to a browser, nor the redirect to a client


def test_the_accept_rule():
    assert wants_page(CHROME_NAVIGATION) and wants_page("application/xhtml+xml")
    assert not wants_page("") and not wants_page("*/*") and not wants_page("application/json")
    assert not wants_page("text/html;q=0, application/json") and not wants_page("text/html, application/json;q=0.5")


def test_the_page_its_policy_and_its_files(client):
    assert client.get("/browser", follow_redirects=False).headers["location"] == "/browser/"
    page = client.get("/browser/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == page_policy(None)
    policy = dict(directive.split(" ", 1) for directive in page.headers["content-security-policy"].split("; "))
    assert policy["default-src"] == policy["script-src"] == policy["connect-src"] == "'self'"
    assert policy["worker-src"] == "'self' blob:" and policy["img-src"] == "'self' data: blob:"
    assert policy["frame-ancestors"] == "'none'"
    assert page.headers["cache-control"] == "no-cache"
    # Everything the page loads is its own: relative URLs under /browser/, no other host.
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls and all(url.startswith(("./assets/", "data:", "#")) for url in urls), urls
    for url in urls:
        if url.startswith("./"):
            asset = client.get("/browser/" + url[2:])
            assert asset.status_code == 200 and asset.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert asset.headers["content-type"].split(";")[0] in ("text/javascript", "text/css")
    assert "http://" not in page.text and "https://" not in page.text
    assert client.get("/browser/config.json").json() == {"basemap": None}


@pytest.mark.parametrize("path", ["/browser/../pyproject.toml", "/browser/%2e%2e/settings.py", "/browser/assets/nothing.js", "/browser/.source-digest"])
def test_nothing_outside_the_build_is_served(client, path):
    answer = client.get(path)
    assert answer.status_code == 404 and answer.json()["code"] == "NotFound"


def test_the_page_is_no_part_of_the_openeo_api(client):
    assert not [path for path in client.get("/openapi.json").json()["paths"] if path.startswith("/browser")]
    assert not [e for e in client.get("/", headers={"Accept": "application/json"}).json()["endpoints"] if e["path"].startswith("/browser")]


def test_with_accounts_the_page_needs_no_login(data_dir, tmp_path):
    settings = Settings(data_dir=data_dir, auth="required", database_url=f"sqlite:///{tmp_path / 'terracube.db'}")
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as accounts:
        assert accounts.get("/me").status_code == 401
        assert accounts.get("/browser/").status_code == 200
        assert accounts.get("/browser/config.json").status_code == 200


def test_a_base_map_set_by_the_operator_is_allowed_by_the_policy(data_dir, tmp_path):
    tiles = "https://tiles.example.org/osm/{z}/{x}/{y}.png"
    settings = Settings(data_dir=data_dir, browser_basemap=tiles, database_url=f"sqlite:///{tmp_path / 'terracube.db'}")
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as c:
        assert c.get("/browser/config.json").json() == {"basemap": tiles}
        policy = c.get("/browser/").headers["content-security-policy"]
        assert "img-src 'self' data: blob: https://tiles.example.org;" in policy and "connect-src 'self' https://tiles.example.org;" in policy


def test_without_a_build_the_page_says_how_to_make_one(data_dir, tmp_path, caplog):
    settings = Settings(data_dir=data_dir, browser_dir=tmp_path / "no-build", database_url=f"sqlite:///{tmp_path / 'terracube.db'}")
    with caplog.at_level("WARNING", logger="terracube.api.browser"):
        app = create_app(settings)
    assert [r.message for r in caplog.records if "not built" in r.message], "the server says so in its log"
    with TestClient(app, base_url="http://127.0.0.1") as c:
        page = c.get("/browser/")
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert "The Browser was not built" in page.text and "terracube build-browser" in page.text
        assert "npm --prefix web ci &amp;&amp; npm --prefix web run build" in page.text
        assert "script-src" not in page.headers["content-security-policy"]  # the page runs nothing
        assert c.get("/", headers={"Accept": "application/json"}).status_code == 200  # the API works as ever


def test_the_official_client_still_connects_to_a_live_server(data_dir, tmp_path):
    ensure_built()
    live = LiveServer({"TERRACUBE_DATA_DIR": str(data_dir), "TERRACUBE_DATABASE_URL": f"sqlite:///{tmp_path / 'terracube.db'}"})
    live.start()
    try:
        con = openeo.connect(live.url)
        assert con.capabilities().api_version() == "1.2.0"
        assert "SENTINEL2_L2A" in con.list_collection_ids()
        root = requests.get(live.url + "/", headers={"Accept": "application/json"}, timeout=30)
        assert root.status_code == 200 and root.json()["api_version"] == "1.2.0"
        browser = requests.get(live.url + "/", headers={"Accept": CHROME_NAVIGATION}, timeout=30)
        assert browser.url == live.url + "/browser/" and browser.history[0].status_code == 303
        assert '<div id="map"' in browser.text
    finally:
        live.stop()
