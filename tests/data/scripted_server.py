"""An HTTP server on 127.0.0.1 that answers each path from a script: a list of (status, body) answers,
given in turn, the last one repeated (a HEAD gets the GET's answer without its body). It records the paths asked for, so a test sees the retries.
A 3xx answer's body is its ``Location``. ``host`` is any loopback address (127.0.0.2 is a second
"machine" for tests of what the server may fetch from). ``ssl_context`` makes it an HTTPS server;
``hosts`` records the Host header of each request."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedServer:
    def __init__(self, host: str = "127.0.0.1", ssl_context=None):
        self.script: dict[str, list[tuple[int, bytes]]] = {}
        self.requests: list[str] = []
        self.hosts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self):  # noqa: N802 - as GDAL asks first: the GET's answer without its body
                self.do_GET(head=True)

            def do_GET(self, head: bool = False):  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                server.requests.append(path)
                server.hosts.append(self.headers.get("Host", ""))
                answers = server.script.get(path, [(404, b"not here")])
                status, body = answers.pop(0) if len(answers) > 1 else answers[0]
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", body.decode())
                    body = b""
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"{'https' if ssl_context else 'http'}://{host}:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, path: str, *answers: tuple[int, bytes]) -> str:
        self.script[path] = list(answers)
        return self.url + path

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
