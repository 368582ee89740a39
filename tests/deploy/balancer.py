"""A load balancer on loopback, as small as a test needs: TCP, one address in front of the replicas.

It forwards each connection to the replica it is routed to, bytes unchanged (the ``Host`` header
is the balancer's, as behind any proxy that keeps it). ``route(replica)`` sends new connections
there and closes the open ones, as a balancer does when it drains a replica: a client's next
request opens a new connection, so a test decides which replica answers it.
"""

from __future__ import annotations

import socket
import threading


class Balancer:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._target: tuple[str, int] | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="balancer", daemon=True).start()

    def route(self, url: str) -> None:
        """New connections go to the server at ``url`` (``http://127.0.0.1:PORT``); open ones are closed."""
        host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        with self._lock:
            self._target = (host, int(port))
            open_now, self._open = self._open, set()
        for sock in open_now:
            _close(sock)

    def close(self) -> None:
        self._closed = True
        _close(self._listener)
        self.route("http://127.0.0.1:1")

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                target = self._target
            try:
                upstream = socket.create_connection(target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                _close(client)  # the replica is down: the client sees a refused connection's effect
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while block := source.recv(1 << 16):
            sink.sendall(block)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
