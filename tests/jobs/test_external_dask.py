"""``TERRACUBE_DASK_SCHEDULER``: jobs run on a separate Dask scheduler with its own workers.

The scheduler and two workers are ``dask scheduler`` / ``dask worker`` processes, as an operator
would start them (or dask-kubernetes / dask-jobqueue would); the server only gets the address.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from distributed import Client

from tests.jobs.conftest import create_job, jobs_env, wait_for_status
from tests.jobs.graphs import slow, tutorial
from tests.live_server import LiveServer, free_port

DASK = str(Path(sys.executable).with_name("dask"))


class DaskCluster:
    def __init__(self, workers: int = 2, env: dict[str, str] | None = None):
        self.port = free_port()
        self.env = env  # the workers' environment (results store credentials); None: this process's
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []
        self.workers = workers

    def start(self) -> "DaskCluster":
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": self.env}
        self.processes.append(subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"], **quiet))
        for index in range(self.workers):
            self.add_worker(f"w{index}")
        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(self.workers, timeout=60)
        return self

    def add_worker(self, name: str) -> None:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": self.env}
        command = [DASK, "worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"]
        self.processes.append(subprocess.Popen(command, **quiet))

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def cluster():
    dask = DaskCluster().start()
    yield dask
    dask.stop()


@pytest.fixture(scope="module")
def server(cluster, data_dir, tmp_path_factory):
    env = jobs_env(data_dir, tmp_path_factory.mktemp("external"), TERRACUBE_DASK_SCHEDULER=cluster.address)
    live = LiveServer(env).start()
    yield live
    live.stop()


@pytest.fixture
def client(cluster):
    with Client(cluster.address, timeout="30s") as dask_client:
        yield dask_client


def started_on(url: str, job_id: str) -> list[str]:
    logs = requests.get(f"{url}/jobs/{job_id}/logs", timeout=30).json()["logs"]
    prefix = "Job started on Dask worker "
    return [entry["message"][len(prefix):].split(" ")[0] for entry in logs if entry["message"].startswith(prefix)]


def test_a_job_runs_on_the_external_workers(server, client):
    job_id = create_job(server.url, tutorial())
    requests.post(f"{server.url}/jobs/{job_id}/results", timeout=30)
    assert wait_for_status(server.url, job_id, ("finished", "error"))["status"] == "finished"
    workers = set(client.scheduler_info()["workers"])
    [worker] = started_on(server.url, job_id)
    assert worker in workers  # one of the separate worker processes, not a LocalCluster of the server
    assert requests.get(f"{server.url}/jobs/{job_id}/results", timeout=30).json()["assets"]["openEO.tif"]["file:size"] > 0


def test_cancel_stops_the_work_on_the_external_cluster(server, client):
    job_id = create_job(server.url, slow())
    requests.post(f"{server.url}/jobs/{job_id}/results", timeout=30)
    wait_for_status(server.url, job_id, ("running",))

    def tasks() -> int:
        return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))

    deadline = time.monotonic() + 60
    while tasks() < 10:
        assert time.monotonic() < deadline, "the job's computations never reached the cluster"
        time.sleep(0.2)
    assert requests.delete(f"{server.url}/jobs/{job_id}/results", timeout=30).status_code == 204
    assert requests.get(f"{server.url}/jobs/{job_id}", timeout=30).json()["status"] == "canceled"
    deadline = time.monotonic() + 20
    while tasks() > 0:
        assert time.monotonic() < deadline, f"{tasks()} tasks still on the scheduler after cancel"
        time.sleep(0.2)


def test_a_job_survives_the_death_of_its_worker(server, client, cluster):
    job_id = create_job(server.url, slow(bands=1))
    requests.post(f"{server.url}/jobs/{job_id}/results", timeout=30)
    started = time.monotonic()
    wait_for_status(server.url, job_id, ("running",))
    [address] = started_on(server.url, job_id)
    pid = client.run(os.getpid, workers=[address])[address]
    assert requests.get(f"{server.url}/jobs/{job_id}", timeout=30).json()["status"] == "running"
    os.kill(pid, signal.SIGKILL)  # the worker running the job dies mid-job
    job = wait_for_status(server.url, job_id, ("finished", "error"), timeout=180)
    messages = [entry["message"] for entry in requests.get(f"{server.url}/jobs/{job_id}/logs", timeout=30).json()["logs"]]
    assert job["status"] == "finished", messages
    print(f"finished {time.monotonic() - started:.1f} s after it started, through a worker's death")
    assert len(started_on(server.url, job_id)) == 2 and any("was lost" in m for m in messages)
    cluster.add_worker("replacement")
    client.wait_for_workers(2, timeout=60)
