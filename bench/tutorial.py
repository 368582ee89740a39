"""Latency of the tutorial's synchronous request, as a user of the openEO client sees it.

Starts ``terracube serve`` (uvicorn) on a free loopback port with the sample archive already
built, then times ``download()`` of the tutorial's "after" NDVI through the official client:
"cold" is the first request of a fresh server process, alone and with the server's start, "warm" the
median and p95 of the following ones. Run: ``python bench/tutorial.py [--repeat 20]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openeo
import requests

AOI = {"west": 7.055496548917159, "south": 50.52018836230043, "east": 7.117575039388905, "north": 50.546364682516895}
AFTER = ["2021-07-20", "2021-07-22"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    env = {**os.environ, "TERRACUBE_DATA_DIR": str(data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "terracube.api.app:create_app", "--factory", "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(url + "/health", timeout=1).ok:
                return url, process
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def tutorial_request(url: str, target: Path) -> float:
    con = openeo.connect(url)
    cube = con.load_collection("SENTINEL2_L2A", spatial_extent=AOI, temporal_extent=AFTER, bands=["B04", "B08"])
    started = time.perf_counter()
    cube.ndvi(nir="B08", red="B04").reduce_dimension(dimension="t", reducer="mean").download(target)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("TERRACUBE_DATA_DIR", Path(__file__).parent / ".cache" / "data")))
    args = parser.parse_args()

    from terracube.data.sample import ensure_sample_archive

    ensure_sample_archive(args.data_dir / "sample")
    launched = time.perf_counter()
    url, server = start_server(args.data_dir)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cold = tutorial_request(url, Path(tmp) / "cold.tif")
            cold_with_start = time.perf_counter() - launched
            warm = sorted(tutorial_request(url, Path(tmp) / f"warm{i}.tif") for i in range(args.repeat))
    finally:
        server.terminate()
        server.wait(10)
    p95 = warm[min(len(warm) - 1, int(round(0.95 * len(warm))) - 1)]
    print(f"cold: first request of a fresh server {cold:.3f} s; server start + first request {cold_with_start:.3f} s")
    print(f"warm median over {len(warm)}: {statistics.median(warm):.3f} s, p95 {p95:.3f} s")


if __name__ == "__main__":
    main()
