"""The Browser tests' Chromium lives as long as a test module (tests/web/browser_page.py)."""

from __future__ import annotations

import pytest

from tests.web.browser_page import close_browser


@pytest.fixture(autouse=True, scope="module")
def _one_chromium_per_module():
    yield
    close_browser()
