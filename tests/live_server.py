"""Start ``terracube`` as users do, in a process of its own on a free 127.0.0.1 port.

The listening socket is bound here and handed to uvicorn (``--fd``): the port is the server's from
the first moment, so tests running in parallel (pytest-xdist) never race for a "free" port.

The suite starts about a hundred servers, and importing terracube (xarray, pandas, dask, GDAL,
FastAPI) costs about 2.3 s of CPU each time: a minute of the suite's two cores. So a server is
forked from a process that imported it once (multiprocessing's fork server, one per test worker):
the same app, the same uvicorn and its own environment, fresh state, its own PID to signal and kill.
``TERRACUBE_TEST_SERVERS=subprocess`` starts each as a new interpreter instead, exactly as
``python -m uvicorn terracube.api.app:create_app --factory`` would; `terracube serve` itself is
started as a program by the tests that are about the program (tests/api/test_responsive.py,
tests/auth/test_cli.py).
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
import types
from multiprocessing import get_context

import requests

# Only what the server imports is preloaded, never the test module that asked: a fork server that
# imported pytest's __main__ would collect tests.
_FORKS = get_context("forkserver")
_FORKS.set_forkserver_preload(["terracube.api.app", "uvicorn", "tests.live_server"])


def _serve(env: dict[str, str], sock: socket.socket) -> None:
    """The forked server's life: this server's environment, then uvicorn as ``--factory --fd`` runs it."""
    import uvicorn

    os.environ.clear()
    os.environ.update(env)
    uvicorn.run("terracube.api.app:create_app", factory=True, fd=sock.fileno(), log_level="warning", server_header=False)


class ForkedProcess:
    """A forked server as the tests handle a ``subprocess.Popen``: poll, wait, terminate, kill, pid."""

    running: list["ForkedProcess"] = []  # stopped at exit, as multiprocessing would wait for them forever

    def __init__(self, process) -> None:
        self._process = process
        self.pid = process.pid

    @classmethod
    def start(cls, env: dict[str, str], sock: socket.socket) -> "ForkedProcess":
        process = _FORKS.Process(target=_serve, args=(env, sock), name="terracube")
        # multiprocessing would re-run the test runner's __main__ in the child (pytest's script, or
        # nothing it can find under xdist): the server needs nothing from it.
        runner_main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            process.start()
        finally:
            sys.modules["__main__"] = runner_main
        forked = cls(process)
        cls.running.append(forked)
        return forked

    @classmethod
    def stop_all(cls) -> None:
        """At the test process's exit: the servers a test left running end as a service manager ends them."""
        for forked in cls.running:
            forked.terminate()
        for forked in cls.running:
            try:
                forked.wait(10)
            except subprocess.TimeoutExpired:
                forked.kill()

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired("terracube", timeout)
        return self._process.exitcode

    def send_signal(self, signum: int) -> None:
        if self._process.exitcode is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


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


# Registered after multiprocessing's own exit handler, so it runs first (atexit runs last-in, first-out).
atexit.register(ForkedProcess.stop_all)

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
        self.process: subprocess.Popen | ForkedProcess | None = None

    def start(self, timeout: float = 90) -> "LiveServer":
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart may reuse the port
            # Handed over as a bare descriptor, the socket loses what asyncio looks at to switch Nagle's
            # algorithm off (uvicorn's own sockets have it off): small answers on a kept-alive connection
            # would then wait 40 ms for the client's delayed ACK. Linux passes this on to every connection.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind(("127.0.0.1", self.port))
            sock.listen(128)
            self.port = sock.getsockname()[1]
            self.url = f"http://127.0.0.1:{self.port}"
            if os.environ.get("TERRACUBE_TEST_SERVERS") == "subprocess":
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", "terracube.api.app:create_app", "--factory",
                     "--fd", str(sock.fileno()), "--log-level", "warning", "--no-server-header"],  # as `terracube serve`
                    env=self.env,
                    pass_fds=(sock.fileno(),),
                )
            else:
                self.process = ForkedProcess.start(self.env, sock)
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
        """A clean shutdown (SIGTERM), as a service manager does: running jobs go back to the queue
        (on a shared Dask cluster, another server takes them over)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
