"""Start ``terracube`` as users do, in a subprocess on a free 127.0.0.1 port.

The listening socket is bound here and handed to uvicorn (``--fd``): the port is the server's from
the first moment, so tests running in parallel (pytest-xdist) never race for a "free" port.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_taken(port: int) -> bool:
    """Whether something listens on (or holds) ``port`` on 127.0.0.1 right now."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class LiveServer:
    def __init__(self, env: dict[str, str], port: int | None = None):
        self.port = port or 0  # 0: the system picks one when the socket is bound in start()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        if "TERRACUBE_DATABASE_URL" not in self.env:
            # Never the shared data directory's own database: the servers of other branches use it too,
            # and one whose migrations are newer would leave it at a revision their code does not know.
            own = tempfile.mkdtemp(prefix="terracube-live-")
            atexit.register(shutil.rmtree, own, True)
            self.env["TERRACUBE_DATABASE_URL"] = f"sqlite:///{own}/terracube.db"
            self.env.setdefault("TERRACUBE_RESULTS_ROOT", f"{own}/results")
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> "LiveServer":
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart may reuse the port
            sock.bind(("127.0.0.1", self.port))
            sock.listen(128)
            self.port = sock.getsockname()[1]
            self.url = f"http://127.0.0.1:{self.port}"
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "terracube.api.app:create_app", "--factory",
                 "--fd", str(sock.fileno()), "--log-level", "warning", "--no-server-header"],  # as `terracube serve`
                env=self.env,
                pass_fds=(sock.fileno(),),
            )
        # Until the server accepts, requests wait in the socket's queue: a read timeout means "not yet".
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"terracube exited with {self.process.returncode} before answering")
            try:
                if requests.get(self.url + "/health", timeout=1).ok:
                    return self
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("terracube did not answer /health in time")

    def kill(self) -> None:
        """``kill -9``: no shutdown handler runs, exactly like a crash or the OOM killer."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), as a service manager does; running jobs go back to the queue."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
