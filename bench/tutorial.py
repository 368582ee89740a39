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


def start_server(data_dir: Path, **settings: str) -> tuple[str, subprocess.Popen]:
    """A laptop server on ``data_dir``; ``settings`` are more environment variables (TERRACUBE_...)."""
    port = free_port()
    env = {**os.environ, "TERRACUBE_DATA_DIR": str(data_dir), **settings}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "terracube.api.app:create_app", "--factory", "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    return wait_for_health(url, process), process


def wait_for_health(url: str, process: subprocess.Popen, seconds: float = 60) -> str:
    """``url`` once its ``/health`` answers; the server is killed if it never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/health", timeout=1).ok:
                return url
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"terracube at {url} did not start")


def tutorial_request(url: str, target: Path) -> float:
    con = openeo.connect(url)
    cube = con.load_collection("SENTINEL2_L2A", spatial_extent=AOI, temporal_extent=AFTER, bands=["B04", "B08"])
    started = time.perf_counter()
    cube.ndvi(nir="B08", red="B04").reduce_dimension(dimension="t", reducer="mean").download(target)
    return time.perf_counter() - started


TUTORIAL_GRAPH = {
    "process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {"id": "SENTINEL2_L2A", "spatial_extent": AOI, "temporal_extent": AFTER, "bands": ["B04", "B08"]}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}, "nir": "B08", "red": "B04"}},
        "mean": {"process_id": "reduce_dimension", "arguments": {"data": {"from_node": "ndvi"}, "dimension": "t", "reducer": {"process_graph": {
            "m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "mean"}, "format": "GTiff"}, "result": True},
    }}
}


def concurrent_load(url: str, clients: int, requests_per_client: int) -> dict:
    """``clients`` threads each POSTing the tutorial graph to /result: throughput and latency."""
    from concurrent.futures import ThreadPoolExecutor

    def client(_: int) -> list[float]:
        session = requests.Session()
        latencies = []
        for _ in range(requests_per_client):
            started = time.perf_counter()
            response = session.post(url + "/result", json=TUTORIAL_GRAPH, timeout=120)
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)
        return latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(latency for result in pool.map(client, range(clients)) for latency in result)
    wall = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "p50": latencies[len(latencies) // 2],
        "p95": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
    }


def handwritten_ndvi(data_dir: Path, target: Path) -> float:
    """The limit: the same window read with rasterio, NDVI in numpy, written as a GeoTIFF."""
    import numpy as np
    import pystac
    import rasterio
    from rasterio.windows import from_bounds

    started = time.perf_counter()
    collection = pystac.Catalog.from_file(str(data_dir / "sample" / "catalog.json")).get_child("SENTINEL2_L2A")
    item = next(i for i in collection.get_items(recursive=True) if i.datetime.strftime("%Y-%m-%d") == "2021-07-21")
    bounds = (362150, 5598160, 366640, 5601190)
    with rasterio.open(item.assets["B04"].get_absolute_href()) as red_src, rasterio.open(item.assets["B08"].get_absolute_href()) as nir_src:
        window = from_bounds(*bounds, transform=red_src.transform)
        red = red_src.read(1, window=window).astype("float32")
        nir = nir_src.read(1, window=window).astype("float32")
        transform = rasterio.windows.transform(window, red_src.transform)
    ndvi = (nir - red) / (nir + red)
    profile = {"driver": "GTiff", "width": ndvi.shape[1], "height": ndvi.shape[0], "count": 1, "dtype": "float32",
               "crs": "EPSG:32632", "transform": transform, "nodata": np.nan}
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(ndvi, 1)
    return time.perf_counter() - started


def measure(data_dir: Path, repeat: int, concurrency: tuple[int, ...], per_client: int) -> dict:
    from terracube.data.sample import ensure_sample_archive

    ensure_sample_archive(data_dir / "sample")
    launched = time.perf_counter()
    # Room for every concurrent client: by default a server runs 2 requests and queues 8 more, and
    # answers the 11th at once with 503 InfrastructureBusy (docs/api.md); here all of them wait their turn.
    url, server = start_server(data_dir, TERRACUBE_SYNC_QUEUE=str(max(concurrency)))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cold = tutorial_request(url, Path(tmp) / "cold.tif")
            cold_with_start = time.perf_counter() - launched
            warm = sorted(tutorial_request(url, Path(tmp) / f"warm{i}.tif") for i in range(repeat))
            loads = [concurrent_load(url, clients, per_client) for clients in concurrency]
            limit = sorted(handwritten_ndvi(data_dir, Path(tmp) / f"hand{i}.tif") for i in range(repeat))
            engines = in_process(data_dir, Path(tmp), repeat)
    finally:
        server.terminate()
        server.wait(10)
    return {
        "cold": cold,
        "cold_with_start": cold_with_start,
        "warm_median": statistics.median(warm),
        "warm_p95": warm[min(len(warm) - 1, int(round(0.95 * len(warm))) - 1)],
        "concurrency": loads,
        "handwritten_median": statistics.median(limit),
        **engines,
    }


def in_process(data_dir: Path, tmp: Path, repeat: int) -> dict:
    """terracube's engine and openeo-processes-dask on the same graph, in process (no HTTP)."""
    from reference import run_reference

    from terracube.data.catalog import Catalog
    from terracube.execute import execute, request_env
    from terracube.settings import Settings

    settings = Settings(data_dir=data_dir)
    catalog = Catalog(settings)
    env = request_env(settings, catalog, user_id=None)
    graph = TUTORIAL_GRAPH["process"]
    timings: dict[str, list[float]] = {"terracube_in_process": [], "reference_in_process": []}
    for index in range(repeat + 1):  # the first run of each warms caches and is dropped
        for name, run in (("terracube_in_process", lambda out: execute(graph, env, out)),
                          ("reference_in_process", lambda out: run_reference(graph, catalog, settings, out))):
            out = tmp / f"{name}{index}"
            out.mkdir()
            started = time.perf_counter()
            run(out)
            if index:
                timings[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in timings.items()}


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
