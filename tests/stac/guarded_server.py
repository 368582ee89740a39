"""File servers that guard the COGs as real archives do: credentials, signed URLs, failures, silence."""

from __future__ import annotations

import base64
import threading
from collections import Counter
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

from tests.http_server import RangeRequestHandler, StaticServer

SIGNATURE = "sig=test-token"
signed: Counter = Counter()  # how often the signing hook was called, per URL


def sign(url: str) -> str:
    """A signing hook (``sign = "tests.stac.guarded_server:sign"``), as Planetary Computer's would be."""
    signed[url] += 1
    return f"{url}?se=2099-01-01&{SIGNATURE}"


class GuardedServer(StaticServer):
    """Serves ``root`` only to requests with basic-auth ``userpwd`` or a query holding ``token``."""

    def __init__(self, root: Path, userpwd: str | None = None, token: str | None = None):
        self.bytes_sent: Counter = Counter()
        self.refused: Counter = Counter()
        expected = "Basic " + base64.b64encode(userpwd.encode()).decode() if userpwd else None
        refused = self.refused

        class Handler(RangeRequestHandler):
            bytes_sent = self.bytes_sent

            def _allowed(self) -> bool:
                if expected is not None and self.headers.get("Authorization") != expected:
                    return False
                return token is None or token in self.path

            def do_GET(self):
                if not self._allowed():
                    refused[self.path.split("?")[0]] += 1
                    self.send_response(401 if expected else 403)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_GET()

            def do_HEAD(self):
                if not self._allowed():
                    self.send_response(401 if expected else 403)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_HEAD()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
