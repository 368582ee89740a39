"""Request-signing hooks for archives whose asset URLs need a token (Planetary Computer).

A hook is a function from an asset URL to the URL to open. The reader calls it when it opens an
asset, in the worker thread that reads it (see ``reader.ArchiveDriver``), so tokens are fetched
late and refreshed when they are about to expire. A hook that fails raises, and the read ends as
an ``ArchiveUnavailable`` error naming the asset.
"""

from __future__ import annotations

import importlib
import threading
import time
from datetime import datetime
from functools import lru_cache
from typing import Callable
from urllib.parse import urlparse

from terracube.errors import OpenEOError

SAS_TOKEN_API = "https://planetarycomputer.microsoft.com/api/sas/v1/token/{account}/{container}"


class PlanetaryComputerSigner:
    """Appends a short-lived SAS token per storage container, fetched once and refreshed before it expires."""

    def __init__(self, token_api: str = SAS_TOKEN_API, timeout: float = 10, retries: int = 2, host_suffix: str = ".blob.core.windows.net"):
        self.token_api = token_api
        self.timeout = timeout
        self.retries = retries
        self.host_suffix = host_suffix
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str) -> str:
        parsed = urlparse(url)
        if not parsed.netloc.endswith(self.host_suffix) or "sig=" in parsed.query:
            return url  # not on Azure storage, or signed already
        account = parsed.netloc.split(".")[0]
        container = parsed.path.lstrip("/").split("/")[0]
        return f"{url}{'&' if parsed.query else '?'}{self.token(account, container)}"

    def token(self, account: str, container: str) -> str:
        with self._lock:
            token, expires = self._tokens.get((account, container), ("", 0.0))
            if time.time() < expires - 5 * 60:
                return token
            token, expires = self._fetch(account, container)
            self._tokens[(account, container)] = (token, expires)
            return token

    def _fetch(self, account: str, container: str) -> tuple[str, float]:
        import requests

        from terracube.data.network import failure, http_session

        url = self.token_api.format(account=account, container=container)
        session = http_session(self.retries)
        try:
            response = session.get(url, timeout=(min(self.timeout, 10), self.timeout))
            response.raise_for_status()
            answer = response.json()
        except (requests.RequestException, ValueError) as error:
            raise failure(error, url, "Fetching a Planetary Computer SAS token") from None
        return answer["token"], _expiry(answer.get("msft:expiry"))


def _expiry(value: str | None) -> float:
    """The token's expiry as a timestamp; 45 minutes from now when the answer does not say."""
    if value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time() + 45 * 60


@lru_cache
def url_signer(name: str) -> Callable[[str], str]:
    """``planetary_computer`` or ``package.module:function`` (a function from URL to signed URL)."""
    if name == "planetary_computer":
        return PlanetaryComputerSigner()
    module, _, attribute = name.partition(":")
    try:
        hook = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise OpenEOError(f"The signing hook '{name}' of the collections file cannot be loaded: {error}", code="Internal") from None
    if not callable(hook):
        raise OpenEOError(f"The signing hook '{name}' of the collections file is not a function.", code="Internal")
    return hook
