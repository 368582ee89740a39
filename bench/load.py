"""A server under load: the light routes' latency while synchronous processing is full.

``python bench/load.py [--quick] [--work ndvi|sleep]``, or as part of ``bench/run``. It starts
``terracube serve`` in accounts mode with two users and the default pool settings, then for
``--seconds``: alice runs 8 clients and bob 2, each POSTing a slow ``/result`` again as soon as
it is answered (after ``Retry-After``, at most a second, when refused); meanwhile one more
client asks ``/health``, ``/collections``, ``/jobs`` and a job's status in turns. Measured: each
light route's p50/p95, the share of ``/result`` answered 503, the requests each user got done
(fairness), and the peak memory of the server's process tree.

Work: ``ndvi``, the tutorial's NDVI and temporal mean over the whole sample area (CPU-bound, as
users send: the light routes compete with numpy for the cores and the GIL); ``sleep``, a UDF that
sleeps per chunk (the pool full, the cores almost idle).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tutorial import AFTER, free_port, wait_for_health  # noqa: E402 - bench/ is a folder of scripts, not a package

PASSWORDS = {"alice": "alice's long bench password", "bob": "bob's long bench password"}
CLIENTS = {"alice": 8, "bob": 2}
LIGHT = ("/health", "/collections", "/jobs", "job status")
WHOLE_AREA = {"west": 7.02, "south": 50.50, "east": 7.15, "north": 50.56}
SMALL_AREA = {"west": 7.06, "south": 50.525, "east": 7.0685, "north": 50.5305}


def ndvi_graph() -> dict:
    return {"process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "SENTINEL2_L2A", "spatial_extent": WHOLE_AREA, "temporal_extent": AFTER, "bands": ["B04", "B08"]}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}, "nir": "B08", "red": "B04"}},
        "mean": {"process_id": "reduce_dimension", "arguments": {"data": {"from_node": "ndvi"}, "dimension": "t", "reducer": {
            "process_graph": {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "mean"}, "format": "GTiff"}, "result": True},
    }}}


def sleep_graph(seconds: float) -> dict:
    udf = f"import time\ntime.sleep({seconds})\n\n\ndef apply_timeseries(series, context):\n    return series\n"
    return {"process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "SENTINEL2_L2A", "spatial_extent": SMALL_AREA, "temporal_extent": AFTER, "bands": ["B04"]}},
        "udf": {"process_id": "apply_dimension", "arguments": {"data": {"from_node": "load"}, "dimension": "t", "process": {
            "process_graph": {"run": {"process_id": "run_udf", "arguments": {
                "data": {"from_parameter": "data"}, "udf": udf, "runtime": "Python"}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "udf"}, "format": "GTiff"}, "result": True},
    }}}


def start_server(folder: Path, data_dir: Path, extra: dict[str, str]) -> tuple[str, subprocess.Popen]:
    from terracube.auth.store import AuthStore
    from terracube.settings import Settings

    database = f"sqlite:///{folder / 'terracube.db'}"
    store = AuthStore.open(Settings(data_dir=data_dir, database_url=database))
    for name, password in PASSWORDS.items():
        store.add_user(name, password)
    store.close()
    port = free_port()
    env = {**os.environ, "TERRACUBE_DATA_DIR": str(data_dir), "TERRACUBE_DATABASE_URL": database, "TERRACUBE_AUTH": "required",
           "TERRACUBE_RESULTS_ROOT": str(folder / "results"), "TERRACUBE_FILES_ROOT": str(folder / "files"),
           "TERRACUBE_PORT": str(port), **extra}
    log = open(folder / "server.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "terracube.cli", "serve"], env=env, stdout=log, stderr=log)
    return wait_for_health(f"http://127.0.0.1:{port}", process, seconds=120), process


def tree_rss(pid: int) -> int:
    """The resident memory of a process and all its children (a server's workers, its Dask cluster)."""
    import psutil

    total = 0
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            pass
    return total


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(quick: bool = False, work: str = "ndvi", seconds: float | None = None) -> dict:
    seconds = seconds or (8.0 if quick else 60.0)
    data_dir = Path(os.environ.get("TERRACUBE_TEST_DATA_DIR") or HERE / ".cache" / "data")
    graph = ndvi_graph() if work == "ndvi" else sleep_graph(0.5)
    extra = {} if work == "ndvi" else {"TERRACUBE_CHUNK_SIZE": "32"}
    folder = Path(tempfile.mkdtemp(prefix="terracube-load-"))
    url, process = start_server(folder, data_dir, extra)
    stop = threading.Event()
    counts = {name: {"done": 0, "busy": 0, "timeout": 0, "other": 0} for name in CLIENTS}
    latencies: dict[str, list[float]] = {route: [] for route in LIGHT}
    peak = [0]
    lock = threading.Lock()
    try:
        headers = {}
        for name, password in PASSWORDS.items():
            token = requests.get(url + "/credentials/basic", auth=(name, password), timeout=30).json()["access_token"]
            headers[name] = {"Authorization": f"Bearer basic//{token}"}
        created = requests.post(url + "/jobs", json=graph, headers=headers["alice"], timeout=30)
        assert created.status_code == 201, created.text
        job = created.headers["OpenEO-Identifier"]
        paths = {"/health": "/health", "/collections": "/collections", "/jobs": "/jobs", "job status": f"/jobs/{job}"}

        def client(name: str) -> None:
            session = requests.Session()
            while not stop.is_set():
                response = session.post(url + "/result", json=graph, headers=headers[name], timeout=600)
                kind = {200: "done", 503: "busy", 408: "timeout"}.get(response.status_code, "other")
                with lock:
                    counts[name][kind] += 1
                if kind == "busy":
                    stop.wait(min(1.0, float(response.headers.get("Retry-After", 1))))

        def prober() -> None:
            session = requests.Session()
            while not stop.is_set():
                for route in LIGHT:
                    started = time.perf_counter()
                    response = session.get(url + paths[route], headers=headers["alice"], timeout=120)
                    assert response.status_code == 200, response.text
                    latencies[route].append(time.perf_counter() - started)
                    stop.wait(0.05)

        def sampler() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], tree_rss(process.pid))
                stop.wait(0.5)

        threads = [threading.Thread(target=client, args=(name,), daemon=True) for name, n in CLIENTS.items() for _ in range(n)]
        threads += [threading.Thread(target=prober, daemon=True), threading.Thread(target=sampler, daemon=True)]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        # Requests still running count when they end; SIGTERM then shows how long shutdown takes.
        for thread in threads:
            thread.join(600)
    finally:
        started = time.perf_counter()
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        shutdown = time.perf_counter() - started
    attempts = sum(sum(c.values()) for c in counts.values())
    return {
        "work": work, "seconds": seconds, "clients": CLIENTS, "counts": counts,
        "busy_share": sum(c["busy"] for c in counts.values()) / max(1, attempts),
        "light_ms": {route: {"n": len(v), "p50": statistics.median(v) * 1000, "p95": percentile(v, 0.95) * 1000, "max": max(v) * 1000}
                     for route, v in latencies.items() if v},
        "peak_rss": peak[0], "sigterm_seconds": shutdown,
        # Settings of the pool taken from the environment, when a run compares them (TERRACUBE_SYNC_THREADS=1 ...).
        "pool_settings": {key: value for key, value in os.environ.items() if key.startswith("TERRACUBE_SYNC_")},
    }


def results_section(runs: list[dict], number: int) -> list[str]:
    """The section of RESULTS.md (``bench/run`` writes it)."""
    lines = [
        f"## {number}. Under load: the light routes while synchronous processing is full",
        "",
        "`bench/load.py`: `terracube serve` in accounts mode with the default pool (2 workers, 8 waiting,",
        "3 per user, a run on as many dask threads as cores, the pool's threads at nice +10, a 1 ms GIL",
        "switch interval); alice runs",
        "8 clients and bob 2, each POSTing a slow `/result` again as soon as it is",
        "answered (refused: again after `Retry-After`, at most 1 s); one more client asks the light routes",
        "in turns. `ndvi`: the tutorial's NDVI mean over the whole sample area (CPU-bound); `sleep`: a UDF",
        "that sleeps per chunk (the pool full, the cores idle). Before the pool (issue 16), 45 slow",
        "requests made `/health` take 12-27 s and `/collections` 54 s.",
        "",
        "| work | seconds | route | requests | p50 (ms) | p95 (ms) | max (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        for route, figures in run["light_ms"].items():
            lines.append(f"| {run['work']} | {run['seconds']:.0f} | {route} | {figures['n']} | {figures['p50']:.1f} | "
                         f"{figures['p95']:.1f} | {figures['max']:.1f} |")
    lines += ["", "| work | alice: done / 503 / 408 | bob: done / 503 / 408 | 503 share | peak memory | SIGTERM to exit |",
              "| --- | --- | --- | --- | --- | --- |"]
    for run in runs:
        a, b = run["counts"]["alice"], run["counts"]["bob"]
        lines.append(f"| {run['work']} | {a['done']} / {a['busy']} / {a['timeout']} | {b['done']} / {b['busy']} / {b['timeout']} | "
                     f"{run['busy_share']:.0%} | {run['peak_rss'] / 2**30:.2f} GiB | {run['sigterm_seconds']:.1f} s |")
    cpu_bound = [figures["p95"] for run in runs if run["work"] == "ndvi" for figures in run["light_ms"].values()]
    if cpu_bound:
        met = max(cpu_bound) < 100
        lines += ["", f"The goal of issue 16, the light routes under 100 ms at p95 with the pool full: **{'met' if met else 'missed'}**, "
                  f"{min(cpu_bound):.0f}-{max(cpu_bound):.0f} ms with CPU-bound work on both workers. What keeps them there: a "
                  "synchronous run computes on as many dask threads as cores, the pool's threads (and the threads they start) run "
                  "at nice +10, the interpreter switches threads every 1 ms, so the event loop gets a core and the GIL first "
                  "(`api/sync_pool.py`; README's configuration table), and no writer holds the GIL for long (the findings, "
                  "session 17). `TERRACUBE_SYNC_NICE=0` gives the old priority back."]
    lines += ["", "Fairness: alice with 8 clients and bob with 2 get about as many requests done (the pool serves waiting requests "
              "round-robin by user, and alice's clients past her 3 are refused, not queued). SIGTERM to exit: the time "
              "`terracube serve` took to end after the run (`tests/api/test_responsive.py` covers SIGTERM with runaway requests "
              "and a running job: under 10 s)."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds (CI)")
    parser.add_argument("--work", choices=("ndvi", "sleep"), default="ndvi")
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args()
    print(json.dumps(measure(args.quick, args.work, args.seconds), indent=1))


if __name__ == "__main__":
    main()
