"""A server that stays responsive while synchronous processing is full, as ``terracube serve`` runs.

The slow requests run a UDF that sleeps per chunk: slow without burning the machine's cores, and
each chunk is its own dask task, so a cancelled run stops at the next one. Two accounts (alice,
bob) share the pool: one user may not fill the queue, and beyond the queue the answer is 503.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from terracube.settings import Settings
from tests.auth.conftest import PASSWORDS, add_users
from tests.conftest import AFTER

# A small area in chunks of 16 pixels: sixteen chunks, each its own dask task whose UDF child
# sleeps once, when the UDF is loaded. Slow without burning cores; a cancelled run stops at the
# next chunk.
SMALL_AOI = {"west": 7.06, "south": 50.525, "east": 7.0685, "north": 50.5305}


def slow_graph(seconds: float) -> dict:
    udf = f"import time\ntime.sleep({seconds})\n\n\ndef apply_timeseries(series, context):\n    return series\n"
    return {"process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "SENTINEL2_L2A", "spatial_extent": SMALL_AOI, "temporal_extent": AFTER, "bands": ["B04"]}},
        "udf": {"process_id": "apply_dimension", "arguments": {
            "data": {"from_node": "load"}, "dimension": "t",
            "process": {"process_graph": {"run": {"process_id": "run_udf", "arguments": {
                "data": {"from_parameter": "data"}, "udf": udf, "runtime": "Python"}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "udf"}, "format": "GTiff"}, "result": True},
    }}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Serve:
    """``terracube serve`` in a subprocess, its log in a file the test can read."""

    def __init__(self, folder: Path, data_dir: Path, **settings: object):
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "server.log"
        self.env = {
            **os.environ,
            "TERRACUBE_DATA_DIR": str(data_dir),
            "TERRACUBE_DATABASE_URL": f"sqlite:///{folder / 'terracube.db'}",
            "TERRACUBE_RESULTS_ROOT": str(folder / "results"),
            "TERRACUBE_FILES_ROOT": str(folder / "files"),
            "TERRACUBE_PORT": str(self.port),
            "TERRACUBE_CHUNK_SIZE": "16",
            **{f"TERRACUBE_{key.upper()}": str(value) for key, value in settings.items()},
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "Serve":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "terracube.cli", "serve"], env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                if requests.get(self.url + "/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        raise AssertionError("terracube serve did not answer in time:\n" + self.log())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert time.monotonic() < deadline, f"{text!r} not in the server's log:\n{self.log()}"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def accounts_server(folder: Path, data_dir: Path, **settings: object) -> tuple[Serve, dict[str, dict]]:
    """A server in accounts mode with alice and bob; their Authorization headers by name."""
    serve = Serve(folder, data_dir, auth="required", **settings)
    add_users(Settings(data_dir=data_dir, database_url=serve.env["TERRACUBE_DATABASE_URL"]), "alice", "bob")
    serve.start()
    headers = {}
    for name in ("alice", "bob"):
        token = requests.get(serve.url + "/credentials/basic", auth=(name, PASSWORDS[name]), timeout=10).json()["access_token"]
        headers[name] = {"Authorization": f"Bearer basic//{token}"}
    return serve, headers


class InFlight:
    """A ``POST /result`` sent from a thread; ``response`` once it is answered."""

    def __init__(self, url: str, headers: dict, body: dict, timeout: float = 120):
        self.response: requests.Response | None = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._send, args=(url, headers, body, timeout), daemon=True)
        self.thread.start()

    def _send(self, url, headers, body, timeout) -> None:
        try:
            self.response = requests.post(url + "/result", json=body, headers=headers, timeout=timeout)
        except Exception as error:  # noqa: BLE001 (the test looks at it)
            self.error = error

    def join(self, timeout: float = 120) -> requests.Response:
        self.thread.join(timeout)
        assert self.response is not None, repr(self.error)
        return self.response


def assert_busy(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "InfrastructureBusy"
    assert int(response.headers["Retry-After"]) >= 1


def timed_get(url: str, headers: dict) -> float:
    started = time.perf_counter()
    response = requests.get(url, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return time.perf_counter() - started


@pytest.fixture(scope="module")
def busy_server(data_dir, tmp_path_factory):
    # One worker, two waiting at most, two per user; a run may take 5 s.
    serve, headers = accounts_server(
        tmp_path_factory.mktemp("responsive"), data_dir, sync_workers=1, sync_queue=2, sync_queue_per_user=2, sync_timeout=5,
    )
    yield serve, headers
    serve.stop()


def wait_until_admitted(serve: Serve, count: int) -> None:
    """Requests are admitted when the server logs nothing yet; give them a moment to arrive."""
    time.sleep(1.0 + 0.3 * count)


def test_light_routes_fast_and_the_queue_bounded_while_the_pool_is_full(busy_server):
    serve, headers = busy_server
    job = requests.post(serve.url + "/jobs", json=slow_graph(0.1), headers=headers["alice"], timeout=30)
    assert job.status_code == 201, job.text
    job_url = serve.url + "/jobs/" + job.headers["OpenEO-Identifier"]
    # Alice fills her share: one request runs, one waits (each would take half a minute: beyond the limit).
    alice = [InFlight(serve.url, headers["alice"], slow_graph(1)) for _ in range(2)]
    wait_until_admitted(serve, 2)
    # Her third is refused, while bob's first is still accepted (it waits in the queue's last place).
    assert_busy(requests.post(serve.url + "/result", json=slow_graph(1), headers=headers["alice"], timeout=30))
    bob = InFlight(serve.url, headers["bob"], slow_graph(1))
    wait_until_admitted(serve, 1)
    # Now the pool runs one and the queue holds two: the (queue + 1)th request of anyone is refused.
    assert_busy(requests.post(serve.url + "/result", json=slow_graph(1), headers=headers["bob"], timeout=30))
    assert bob.thread.is_alive() and all(request.thread.is_alive() for request in alice)
    # The light routes answer at once meanwhile.
    for path in ("/health", "/collections", "/jobs", job_url[len(serve.url):]):
        seconds = max(timed_get(serve.url + path, headers["alice"]) for _ in range(5))
        assert seconds < 1.0, f"{path} took {seconds:.2f} s with the pool full"
    # Each run hits the time limit: a clear error pointing to batch jobs, and its work stopped.
    for request in [*alice, bob]:
        response = request.join()
        assert response.status_code == 408, response.text
        body = response.json()
        assert body["code"] == "RequestTimeout" and "batch job" in body["message"], body
    serve.wait_for_log("synchronous processing stopped: time limit")


@pytest.mark.skipif(sys.platform != "linux", reason="a nice value per thread is Linux's")
def test_synchronous_work_runs_below_the_servers_priority():
    # The event loop keeps the server's priority; the pool's threads, and the threads they start
    # (dask's, GDAL's), are nicer, so the light routes get a core first.
    from concurrent.futures import ThreadPoolExecutor

    from terracube.api.sync_pool import SyncPool

    def nice_values() -> tuple[int, int]:
        def own() -> int:
            return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

        with ThreadPoolExecutor(1) as started_here:
            return own(), started_here.submit(own).result()

    server = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    pool = SyncPool(workers=1, queue=0, per_user=1, timeout=5, nice=5)
    try:
        assert pool.executor.submit(nice_values).result(30) == (min(19, server + 5),) * 2
    finally:
        pool.close()
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == server


def test_while_the_server_runs_a_thread_hands_the_gil_over_sooner(data_dir, tmp_path):
    # Python work of a synchronous run (building its dask graph) holds the GIL at most this long
    # while the event loop waits for it; the interpreter's default comes back when the app stops.
    from fastapi.testclient import TestClient

    from terracube.api.app import create_app

    before = sys.getswitchinterval()
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{tmp_path / 'jobs.db'}", results_root=str(tmp_path / "results"),
                        files_root=tmp_path / "files", sync_switch_interval=0.002)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        assert sys.getswitchinterval() == pytest.approx(0.002)
        assert client.get("/health").status_code == 200
    assert sys.getswitchinterval() == before


def test_a_client_that_disconnects_cancels_its_work(busy_server):
    serve, headers = busy_server
    quick = {"process": {"process_graph": {"add": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}}
    # With one worker, a quick answer means earlier work has stopped: the slow request runs at once.
    assert requests.post(serve.url + "/result", json=quick, headers=headers["bob"], timeout=60).status_code == 200
    before = serve.log().count("synchronous processing stopped: client disconnected")
    with pytest.raises(requests.Timeout):
        requests.post(serve.url + "/result", json=slow_graph(2), headers=headers["bob"], timeout=2)
    serve.wait_for_log("synchronous processing cancelled: the client disconnected")
    deadline = time.monotonic() + 20
    while serve.log().count("synchronous processing stopped: client disconnected") <= before:
        assert time.monotonic() < deadline, serve.log()
        time.sleep(0.2)
    # Its worker is free again: a quick request of the same user runs.
    response = requests.post(serve.url + "/result", json=quick, headers=headers["bob"], timeout=30)
    assert response.status_code == 200 and response.json() == 3, response.text


def test_sigterm_ends_the_server_within_ten_seconds_with_work_running(data_dir, tmp_path):
    serve = Serve(tmp_path / "server", data_dir, sync_workers=2, sync_timeout=600, udf_timeout=600).start()
    try:
        job = requests.post(serve.url + "/jobs", json=slow_graph(20), timeout=30)
        job_id = job.headers["OpenEO-Identifier"]
        assert requests.post(f"{serve.url}/jobs/{job_id}/results", timeout=30).status_code == 202
        runaway = [InFlight(serve.url, {}, slow_graph(20), timeout=60) for _ in range(3)]
        deadline = time.monotonic() + 30
        while requests.get(f"{serve.url}/jobs/{job_id}", timeout=10).json()["status"] != "running":
            assert time.monotonic() < deadline, serve.log()
            time.sleep(0.3)
        time.sleep(1)
        started = time.monotonic()
        serve.process.send_signal(signal.SIGTERM)
        serve.process.wait(15)
        seconds = time.monotonic() - started
        assert seconds < 10, f"the server took {seconds:.1f} s to end after SIGTERM:\n{serve.log()}"
        assert all(request.response is None or request.response.status_code != 200 for request in runaway)
    finally:
        serve.stop()
    # The job is handled as on any clean restart: back in the queue, and run again by the next server.
    again = Serve(tmp_path / "server", data_dir).start()
    try:
        status = requests.get(f"{again.url}/jobs/{job_id}", timeout=10).json()["status"]
        assert status in ("queued", "running"), status
    finally:
        again.stop()


def test_in_laptop_mode_the_one_user_may_fill_the_whole_pool(server):
    # The per-user cap shares the pool between users; on a laptop there is nobody to share with,
    # so more requests at once than the cap (3) all run, as the tutorial's benchmark sends them.
    from tests.jobs.graphs import tutorial

    def post(_: int) -> int:
        return requests.post(server.url + "/result", json={"process": tutorial()}, timeout=300).status_code

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(5) as pool:
        assert list(pool.map(post, range(5))) == [200] * 5
