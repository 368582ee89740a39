"""A person logs in with a real browser: the official client's device flow, completed in Chromium.

The openEO client runs ``authenticate_oidc()`` against a live server in accounts mode and shows its
"Visit ... to authenticate" link; a headless Chromium (Debian's, driven by Playwright) opens that
link, logs in on the issuer's page and approves. The client's call then completes by itself, and
the next connect reuses the refresh token it stored, with no browser and no device flow.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import threading

import openeo
import pytest

from tests.auth.conftest import PASSWORDS, terracube
from tests.auth.test_login_e2e import never, server_env
from tests.live_server import LiveServer

CHROMIUM = "/usr/bin/chromium"  # Debian's package
# Headless, and nothing a test machine has no use for (or no network for): no sandbox (CI runs as
# root in a container), no GPU, no background updates, syncing or first-run pages.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def playwright_and_chromium():
    """Playwright and Debian's Chromium, or why not: CI installs both, so there a missing one fails the test."""
    problem, chromium = None, shutil.which(CHROMIUM) or shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[test]')"
    if problem is None and chromium is None:
        problem = "Debian's chromium is not installed (apt-get install chromium)"
    if problem is None:
        return sync_playwright, chromium
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser test, but {problem}")
    pytest.skip(problem)


@pytest.fixture
def server(tmp_path):
    """A server in accounts mode with one user, made with the command line as an operator makes it."""
    folder = tmp_path / "server"
    folder.mkdir()
    live = LiveServer(server_env(folder))
    terracube(live.env, "users", "add", "alice", password=PASSWORDS["alice"])
    live.start()
    yield live
    live.stop()


def test_device_flow_completed_in_a_browser_then_the_refresh_token_on_the_next_connect(server, openeo_home, tmp_path, capsys):
    playwright, chromium = playwright_and_chromium()
    from playwright.sync_api import expect
    links: queue.Queue[str] = queue.Queue()
    outcome: dict = {}

    def show(*args, **kwargs) -> None:  # the client's `display`: what a person reads in the terminal
        found = re.search(r"https?://\S+/oidc/device\S*", " ".join(map(str, args)))
        if found:
            links.put(found.group(0).rstrip("."))

    def log_in() -> None:  # what the person's program does meanwhile: wait for the approval
        try:
            outcome["con"] = openeo.connect(server.url).authenticate_oidc(display=show, max_poll_time=120)
        except BaseException as error:  # noqa: BLE001  (handed to the test's thread)
            outcome["error"] = error

    client = threading.Thread(target=log_in, daemon=True)
    client.start()
    link = links.get(timeout=60)
    assert link.startswith(f"{server.url}/oidc/device")

    with playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(link)
            # The person checks the code against the one in the terminal; the link fills it in.
            user_code = page.get_by_label("Code")
            assert re.fullmatch(r"[A-Z]{4}-[A-Z]{4}", user_code.input_value())
            page.get_by_label("User name").fill("alice")
            page.get_by_label("Password").fill(PASSWORDS["alice"])
            page.screenshot(path=str(tmp_path / "device-page.png"), full_page=True)
            page.get_by_role("button", name="Approve").click()
            expect(page.get_by_role("heading")).to_have_text("Approved")  # waits for the answer page
            page.screenshot(path=str(tmp_path / "approved-page.png"), full_page=True)
        finally:
            browser.close()

    client.join(timeout=60)
    assert not client.is_alive(), "the client did not notice the approval"
    assert "error" not in outcome, outcome.get("error")
    assert outcome["con"].describe_account()["name"] == "alice"
    assert "Authenticated using device code flow" in capsys.readouterr().out

    # The next session: the stored refresh token logs in; a device flow would call `never`, and fail.
    again = openeo.connect(server.url).authenticate_oidc(display=never, max_poll_time=5)
    assert "Authenticated using refresh token" in capsys.readouterr().out
    assert again.describe_account()["name"] == "alice"
    assert again.list_jobs() == []
