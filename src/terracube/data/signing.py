"""Request-signing hooks for archives whose asset URLs need a token (Planetary Computer)."""

from __future__ import annotations

import importlib
import json
import threading
import time
import urllib.request
from functools import lru_cache
from typing import Callable
from urllib.parse import urlparse

_SAS_TOKEN_API = "https://planetarycomputer.microsoft.com/api/sas/v1/token/{account}/{container}"


class PlanetaryComputerSigner:
    """Appends a short-lived SAS token per storage container, refreshed before it expires."""

    def __init__(self, token_api: str = _SAS_TOKEN_API, timeout: float = 10):
        self.token_api = token_api
        self.timeout = timeout
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str) -> str:
        parsed = urlparse(url)
        if not parsed.netloc.endswith(".blob.core.windows.net"):
            return url
        account = parsed.netloc.split(".")[0]
        container = parsed.path.lstrip("/").split("/")[0]
        with self._lock:
            token, expires = self._tokens.get((account, container), ("", 0.0))
            if time.time() > expires - 60:
                with urllib.request.urlopen(self.token_api.format(account=account, container=container), timeout=self.timeout) as response:
                    answer = json.load(response)
                token = answer["token"]
                self._tokens[(account, container)] = (token, time.time() + 45 * 60)
        return f"{url}{'&' if parsed.query else '?'}{token}"


@lru_cache
def url_signer(name: str) -> Callable[[str], str]:
    """``planetary_computer`` or ``package.module:function`` (a function from URL to signed URL)."""
    if name == "planetary_computer":
        return PlanetaryComputerSigner()
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)
