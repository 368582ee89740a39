"""What the Browser tests share per module: one Chromium (tests/web/browser_page.py) and one laptop server."""

from __future__ import annotations

import pytest

from tests.jobs.conftest import jobs_env
from tests.live_server import LiveServer
from tests.web.browser_page import close_browser, ensure_built


@pytest.fixture(autouse=True, scope="module")
def _one_chromium_per_module():
    yield
    close_browser()


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory, request):
    """A laptop server of the module's own (its database, results and tile cache), the Browser built."""
    ensure_built()
    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    live = LiveServer(jobs_env(data_dir, folder, TERRACUBE_TILE_CACHE_DIR=folder / "tiles"))
    live.start()
    yield live
    live.stop()
