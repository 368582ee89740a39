"""Scale-out on one machine: the regional job on one and on two Dask worker processes, and many users at once.

``python bench/scale.py [--users 20] [--update-results]``. The regional workload of section 2 (a
quarter of tile 32ULB x 12 dates: cloud mask, NDVI, temporal median, a COG) runs as a batch job
through the official client against ``terracube serve`` pointed at a ``dask scheduler``
(``TERRACUBE_DASK_SCHEDULER``, as a deployment runs it, docs/deploy.md), first with one ``dask
worker`` process of one thread, then with two: the speed-up, and the peak memory of each worker
process. Then ``--users`` clients each POST the tutorial request to ``/result`` of a laptop server
at once (its queue raised so none is refused): throughput and latency. ``--update-results``
writes section 8 of bench/RESULTS.md. A benchmark, not a test: run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import regional  # noqa: E402 - bench/ is a folder of scripts, not a package
from tiles import write_section  # noqa: E402
from tutorial import concurrent_load, free_port, start_server  # noqa: E402

DASK = str(Path(sys.executable).with_name("dask"))
SIDE, DATES = 5490, 12


class Cluster:
    """A ``dask scheduler`` and ``workers`` ``dask worker`` processes of one thread each, on loopback."""

    def __init__(self, workers: int):
        self.address = f"tcp://127.0.0.1:{free_port()}"
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.scheduler = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1],
                                           "--no-dashboard"], **quiet)
        self.workers = [subprocess.Popen([DASK, "worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                          "--memory-limit", "0", "--host", "127.0.0.1"], **quiet) for _ in range(workers)]
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(workers, timeout=60)

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def regional_job(workers: int, data_dir: Path, days: str) -> dict:
    """The regional job on ``workers`` worker processes: seconds from start to finish, peak RSS per worker."""
    import openeo

    cluster = Cluster(workers)
    url, server = start_server(data_dir, TERRACUBE_SAMPLE_DAYS=days, TERRACUBE_DASK_SCHEDULER=cluster.address)
    try:
        con = openeo.connect(url)
        job = con.create_job(regional.process_graph(regional.request_extent(SIDE)), title=f"regional median NDVI, {workers} worker(s)")
        memories = [regional._TreeMemory(worker.pid) for worker in cluster.workers]
        started = time.perf_counter()
        job.start_and_wait(print=lambda *args: None, max_poll_interval=0.5)
        seconds = time.perf_counter() - started
        for memory in memories:
            memory.stop()
        return {"workers": workers, "seconds": seconds, "peak_rss": [memory.peak for memory in memories]}
    finally:
        server.terminate()
        server.wait(10)
        cluster.stop()


def many_users(users: int, per_user: int) -> dict:
    """``users`` clients at once, each POSTing the tutorial request ``per_user`` times to a laptop server."""
    from terracube.data.sample import ensure_sample_archive

    data_dir = HERE / ".cache" / "data"
    ensure_sample_archive(data_dir / "sample")
    url, server = start_server(data_dir, TERRACUBE_SYNC_QUEUE=str(users))
    try:
        concurrent_load(url, 2, 2)  # warm: the first requests open the archive and import what they need
        return concurrent_load(url, users, per_user)
    finally:
        server.terminate()
        server.wait(10)


def measure(users: int, per_user: int) -> dict:
    data_dir, days = regional.ensure_regional_archive(SIDE, DATES), regional.regional_days(DATES)
    regional.warm_up("terracube-job")
    loads = [os.getloadavg()[0]]
    started = time.perf_counter()
    # In turns, twice each: this machine's speed drifts between runs; the best run of each counts.
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for _ in range(2):
        for workers in (1, 2):
            runs[workers].append(regional_job(workers, data_dir, days))
            print(json.dumps(runs[workers][-1]))
            loads.append(os.getloadavg()[0])
    users_result = many_users(users, per_user)
    loads.append(os.getloadavg()[0])
    return {"runs": runs, "users": users_result, "seconds": time.perf_counter() - started, "cores": os.cpu_count(),
            "load_average": {"min": min(loads), "max": max(loads)}}


def seconds_of(runs: list[dict]) -> str:
    return ", ".join(f"{run['seconds']:.1f}" for run in runs)


def results_section(result: dict, number: int = 8) -> list[str]:
    best = {workers: min(runs, key=lambda r: r["seconds"]) for workers, runs in result["runs"].items()}
    one, two = best[1], best[2]
    users = result["users"]
    gib = 2**30
    load = result["load_average"]
    return [
        f"## {number}. Scale-out on one machine (measured {date.today().isoformat()}, by `python bench/scale.py --update-results` alone)",
        "",
        "`bench/scale.py`: the regional job of section 2 as a batch job through the official client, on `terracube serve`",
        "pointed at a `dask scheduler` (`TERRACUBE_DASK_SCHEDULER`), with one and then two `dask worker` processes of one",
        f"thread each, in turns, twice; the best run counts. Then {users['clients']} clients at once, each POSTing the tutorial",
        f"request to `/result` of a laptop server {users['requests'] // users['clients']} times (its queue raised so none is refused).",
        f"**Machine load: load average {load['min']:.1f}-{load['max']:.1f} on {result['cores']} cores**, the benchmark's own processes included.",
        "",
        "| workers (1 thread each) | seconds (best; all runs) | speed-up | peak memory per worker |",
        "| --- | --- | --- | --- |",
        *(f"| {workers} | {best[workers]['seconds']:.1f} ({seconds_of(runs)}) | {one['seconds'] / best[workers]['seconds']:.2f}x | "
          f"{', '.join(f'{rss / gib:.2f}' for rss in best[workers]['peak_rss'])} GiB |" for workers, runs in result["runs"].items()),
        "",
        "| users at once | requests | requests/s | p50 (s) | p95 (s) |",
        "| --- | --- | --- | --- | --- |",
        f"| {users['clients']} | {users['requests']} | {users['rps']:.1f} | {users['p50']:.3f} | {users['p95']:.3f} |",
        "",
        f"Two worker processes run the job {one['seconds'] / two['seconds']:.2f}x as fast as one on this machine's two cores",
        "(the job's own task, the scheduler and the server share them too).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="clients at once for the tutorial request (default 20)")
    parser.add_argument("--per-user", type=int, default=4, help="requests each client sends (default 4)")
    parser.add_argument("--update-results", action="store_true", help="write section 8 of bench/RESULTS.md")
    args = parser.parse_args()
    result = measure(args.users, args.per_user)
    print(json.dumps(result, indent=1, default=str))
    section = results_section(result)
    print("\n".join(section))
    if args.update_results:
        write_section("\n".join(section) + "\n", 8)


if __name__ == "__main__":
    main()
