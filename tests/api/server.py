"""A live terracube server for end-to-end tests: ``url, process = start_server(env)``.

The server is the real thing: ``python -m uvicorn terracube.api.app:create_app --factory`` in a
subprocess on a free 127.0.0.1 port, with the given ``TERRACUBE_*`` variables on top of this
process's environment; ``start_server`` returns once ``/health`` answers. Other test packages
import it from here (or use ``tests.live_server.LiveServer``, which this wraps).
"""

from __future__ import annotations

import subprocess

from tests.live_server import LiveServer


def start_server(env: dict[str, str], timeout: float = 60) -> tuple[str, subprocess.Popen]:
    live = LiveServer({key: str(value) for key, value in env.items()}).start(timeout=timeout)
    return live.url, live.process


def stop_server(process: subprocess.Popen, timeout: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
