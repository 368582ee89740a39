"""A deployment of several processes, used through the official openEO client (docs/deploy.md).

PostgreSQL, a ``dask scheduler`` with two ``dask worker`` processes, an S3-compatible object store
and two ``terracube serve`` replicas behind a load balancer, each a process of its own on
loopback (conftest.py, stack.py). The replicas share the database, the data directory (signing
keys, uploaded files) and the results store: a folder, then S3. Alice logs in through one
replica and works through the other; replicas and workers are killed with SIGKILL mid-job, and a
replica is stopped with SIGTERM as a rolling update stops it.

Its own CI step (.ci/run): ``pytest -q -n 0 -m deployment tests/deploy``.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import openeo
import pytest
from openeo.rest import OpenEoApiError
import requests
from PIL import Image

from terracube.jobs.store import JobStore
from tests.auth.conftest import PASSWORDS
from tests.conftest import read_tutorial_ndvi
from tests.deploy.stack import Deployment, new_database
from tests.jobs.graphs import slow, tutorial
from tests.services.layers import AHR_TILE, ndvi_layer

pytestmark = pytest.mark.deployment

SUM = {"process_graph": {"sum": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
DOUBLE = {"double": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "x"}, "y": 2}, "result": True}}
TOPIC = "terracube-jobs"  # the Dask topic the workers report on (terracube.jobs.worker.TOPIC)


def alice(deployment: Deployment, replica: str) -> openeo.Connection:
    """Alice, logged in through the balancer while it routes to ``replica``."""
    return openeo.connect(deployment.through(replica), default_timeout=120).authenticate_basic("alice", PASSWORDS["alice"])


def wait_for(job, statuses: tuple[str, ...], timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while (status := job.status()) not in statuses:
        assert time.monotonic() < deadline, f"job {job.job_id} is {status}, not {statuses}, after {timeout} s"
        time.sleep(0.2)
    return status


def messages(job) -> list[str]:
    return [entry["message"] for entry in job.logs()]


def messages_with(job, prefix: str, timeout: float = 15) -> list[str]:
    """The job's log once a line starting with ``prefix`` is in it: a status can be a moment ahead of its log line."""
    deadline = time.monotonic() + timeout
    while True:
        logged = messages(job)
        if any(m.startswith(prefix) for m in logged):
            return logged
        assert time.monotonic() < deadline, logged
        time.sleep(0.2)


def submitted_by(deployment: Deployment, job) -> list[str]:
    """The replicas that submitted the job to Dask, from its debug log ("... by terracube server host:pid:token.")."""
    marker = "by terracube server "
    return [deployment.replica_of(m.split(marker)[1].rstrip(".")) for m in messages(job) if marker in m]


def runs_on_cluster(dask_client, job_id: str) -> int:
    """How often a worker started the job: the scheduler's own record of the workers' events."""
    return sum(1 for _, event in dask_client.get_events(TOPIC) if event.get("job_id") == job_id and event.get("kind") == "started")


def other(name: str) -> str:
    return {"a": "b", "b": "a"}[name]


def result_files(deployment: Deployment, job_id: str) -> tuple[list[str], list[str]]:
    """(the job's files in the results store, temporary entries left under the root)."""
    if deployment.kind == "s3":
        fs = deployment.s3.filesystem()
        root = deployment.results.removeprefix("s3://")
        names = [path.rsplit("/", 1)[-1] for path in fs.ls(root, detail=False)]
        files = [path.rsplit("/", 1)[-1] for path in fs.find(f"{root}/{job_id}")]
    else:
        root = Path(deployment.results)
        names = [path.name for path in root.iterdir()]
        files = [path.name for path in (root / job_id).iterdir()] if (root / job_id).is_dir() else []
    return files, [name for name in names if ".tmp-" in name]


def test_a_job_made_through_one_replica_is_run_watched_and_downloaded_through_the_other(deployment, dask_client, tmp_path):
    con = alice(deployment, "a")
    job = con.create_job(tutorial(), title="made through a", log_level="debug")
    deployment.through("b")  # the same connection, and the token replica a issued, now through b
    assert job.job_id in [listed["id"] for listed in con.list_jobs()]
    assert con.job(job.job_id).describe()["title"] == "made through a"
    job.start()
    assert wait_for(job, ("finished", "error", "canceled")) == "finished", messages(job)
    assert runs_on_cluster(dask_client, job.job_id) == 1
    [publisher] = submitted_by(deployment, job)
    # The results are downloaded through the replica that did not put them in place.
    deployment.through(other(publisher))
    results = job.get_results()
    hrefs = [asset["href"] for asset in results.get_metadata()["assets"].values()]
    assert hrefs and all(href.startswith(deployment.balancer.url) for href in hrefs)
    results.download_files(tmp_path / "out")
    read_tutorial_ndvi(tmp_path / "out" / "openEO.tif")
    assert messages_with(job, "Job finished")[-1] == "Job finished: openEO.tif."
    files, temporary = result_files(deployment, job.job_id)
    assert files == ["openEO.tif"] and temporary == []
    # The signed link works through either replica (one signing key): a range of it through the one that published it.
    deployment.through(publisher)
    ranged = requests.get(hrefs[0], headers={"Range": "bytes=0-3"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content[:2] in (b"II", b"MM")


def test_a_job_is_canceled_through_the_replica_that_does_not_run_it(deployment, dask_client):
    con = alice(deployment, "a")
    job = con.create_job(slow(bands=4), title="to be canceled", log_level="debug")
    job.start()
    wait_for(job, ("running",))
    [runner] = submitted_by(deployment, job)

    def tasks() -> int:
        return dask_client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))

    deadline = time.monotonic() + 60
    while tasks() < 5:
        assert time.monotonic() < deadline, "the job's computations never reached the cluster"
        time.sleep(0.2)
    deployment.through(other(runner))
    job.stop()
    assert job.status() == "canceled"
    deadline = time.monotonic() + 30
    while tasks() > 0:
        assert time.monotonic() < deadline, f"{tasks()} tasks still on the scheduler after the cancel through {other(runner)}"
        time.sleep(0.2)
    # The worker's own word on it travels through the scheduler to the replica that watches the job.
    logged = messages_with(job, "Cancel requested: stopping the job's computations on the cluster.")
    assert "Job canceled by the user." in logged and job.status() == "canceled"
    with pytest.raises(OpenEoApiError) as refused:  # nothing of the stopped run is served
        job.get_results().get_metadata()
    assert refused.value.code == "JobNotStarted"


@pytest.mark.parametrize("deployment", ["s3"], indirect=True)
def test_processes_files_services_and_logins_are_the_same_on_both_replicas(deployment, tmp_path):
    con = alice(deployment, "a")
    con.save_user_defined_process("double", DOUBLE, parameters=[{"name": "x", "description": "a number", "schema": {"type": "number"}}], summary="Twice x")
    upload = tmp_path / "notes.txt"
    upload.write_text("uploaded through a\n")
    con.upload_file(upload, target="notes/first.txt")
    service = con.create_service(ndvi_layer()["process_graph"], type="XYZ", title="ndvi through a")
    jwks_a = requests.get(f"{deployment.balancer.url}/oidc/jwks", timeout=30).json()

    deployment.through("b")
    assert requests.get(f"{deployment.balancer.url}/oidc/jwks", timeout=30).json() == jwks_a  # one key ring
    assert "double" in [process["id"] for process in con.list_user_defined_processes()]
    assert con.user_defined_process("double").describe()["summary"] == "Twice x"
    assert "notes/first.txt" in [str(f.path) for f in con.list_files()]
    con.get_file("notes/first.txt").download(tmp_path / "back.txt")
    assert (tmp_path / "back.txt").read_text() == "uploaded through a\n"
    assert service.service_id in [s["id"] for s in con.list_services()]
    template = con.service(service.service_id).describe_service()["url"]
    assert template.startswith(deployment.balancer.url)
    z, x, y = AHR_TILE
    tile = requests.get(template.format(z=z, x=x, y=y), timeout=300)
    assert tile.status_code == 200 and Image.open(io.BytesIO(tile.content)).size == (256, 256)
    # The other way round: a login through b, the stored process used in a job made through a.
    con_b = openeo.connect(deployment.balancer.url).authenticate_basic("alice", PASSWORDS["alice"])
    deployment.through("a")
    job = con_b.create_job({"process_graph": {"d": {"process_id": "double", "namespace": "user", "arguments": {"x": 21}, "result": True}}})
    job.start()
    assert wait_for(job, ("finished", "error")) == "finished", messages(job)
    [asset] = job.get_results().get_metadata()["assets"].values()
    assert requests.get(asset["href"], timeout=30).json() == 42


@pytest.mark.parametrize("deployment", ["directory"], indirect=True)
def test_a_queued_job_starts_exactly_once_when_both_replicas_dispatch(deployment, dask_client):
    """Many jobs queued through both replicas at once: each replica takes at most three at a time,
    so both take jobs from the one queue while the other is taking them too."""
    con = alice(deployment, "a")
    jobs = [con.create_job(SUM, title=f"race {i}", log_level="debug") for i in range(12)]
    for index, job in enumerate(jobs):
        deployment.through("ab"[index % 2])
        job.start()
    for job in jobs:
        assert wait_for(job, ("finished", "error", "canceled")) == "finished", messages(job)
    takers = Counter()
    for job in jobs:
        assert runs_on_cluster(dask_client, job.job_id) == 1
        logged = messages(job)
        assert sum(m.startswith("Job started on Dask worker") for m in logged) == 1, logged
        [taker] = submitted_by(deployment, job)
        takers[taker] += 1
    assert set(takers) == {"a", "b"}, takers


def test_a_job_is_claimed_once_when_two_servers_claim_it_at_the_same_moment(postgres_url):  # noqa: F811
    """The claim itself, without the dispatchers' timing: two servers' stores (engines of their own)
    claim the same queued job at the same instant, 200 times; PostgreSQL's row lock lets one win."""
    url = new_database(postgres_url, f"claims_{os.getpid()}")
    stores = [JobStore(url), JobStore(url)]
    stores[0].migrate()
    jobs = [stores[0].create("alice", SUM) for _ in range(200)]
    for job in jobs:
        stores[0].queue(job.id)
    together = threading.Barrier(2)
    won: dict[str, list[str]] = {job.id: [] for job in jobs}

    def claim(store: JobStore, server: str) -> None:
        for job in jobs:
            together.wait()
            if store.claim(job.id, 1, server):
                won[job.id].append(server)

    threads = [threading.Thread(target=claim, args=(store, f"server-{i}")) for i, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(len(winners) == 1 for winners in won.values()), {k: v for k, v in won.items() if len(v) != 1}
    assert {stores[0].get(job.id).owner for job in jobs} <= {"server-0", "server-1"}
    for store in stores:
        store.close()


def running_job(deployment: Deployment, title: str):
    """A slow job of alice's, running on the cluster for a second now; and the replica that submitted it."""
    job = alice(deployment, "a").create_job(slow(bands=4), title=title, log_level="debug")
    job.start()
    wait_for(job, ("running",))
    [runner] = submitted_by(deployment, job)
    time.sleep(1)  # the worker is reading pixels
    return job, runner


def test_a_job_outlives_the_replica_that_ran_it(deployment, dask_client, tmp_path):
    job, runner = running_job(deployment, "its replica dies")
    deployment.replicas[runner].kill()  # SIGKILL: no shutdown handler runs
    try:
        deployment.through(other(runner))
        assert job.status() == "running"
        assert wait_for(job, ("finished", "error", "canceled"), timeout=240) == "finished", messages(job)
        logged = messages_with(job, "Job finished")
        assert runs_on_cluster(dask_client, job.job_id) == 1, logged  # taken over, not run again
        assert any("took this job over" in m for m in logged), logged
        # The log has no hole: what the worker reported while no replica watched is there, once.
        assert sum(m.startswith("Job started on Dask worker") for m in logged) == 1
        assert sum(m.startswith("Usage: ") for m in logged) == 1 and logged[-1] == "Job finished: openEO.tif.", logged
        job.get_results().download_files(tmp_path / "out")
        assert (tmp_path / "out" / "openEO.tif").read_bytes()[:2] in (b"II", b"MM")
        files, temporary = result_files(deployment, job.job_id)
        assert files == ["openEO.tif"] and temporary == []
    finally:
        deployment.start(runner)  # a replacement, for the tests after this one


@pytest.mark.parametrize("deployment", ["directory"], indirect=True)
def test_a_rolling_update_hands_a_running_job_to_the_other_replica(deployment, dask_client, tmp_path):
    """A replica stopped cleanly (SIGTERM, as Kubernetes stops a pod in a rolling update) leaves its
    running job's work on the cluster, and the other replica takes the job over: nothing is lost,
    nothing runs twice, the job is never queued again."""
    job, runner = running_job(deployment, "a rolling update")
    deployment.replicas[runner].stop()  # SIGTERM, and the shutdown handlers run
    try:
        # ended by its own shutdown (uvicorn raises the signal again once done), not killed at stop()'s deadline
        assert deployment.replicas[runner].process.returncode in (0, -signal.SIGTERM)
        deployment.through(other(runner))
        assert job.status() == "running"
        assert wait_for(job, ("finished", "error", "canceled"), timeout=240) == "finished", messages(job)
        logged = messages_with(job, "Job finished")
        assert runs_on_cluster(dask_client, job.job_id) == 1, logged
        assert any("was shut down while watching this job; its work goes on" in m for m in logged), logged
        assert any("took this job over" in m for m in logged) and not any("queued again" in m for m in logged), logged
        assert sum(m.startswith("Job started on Dask worker") for m in logged) == 1 and logged[-1] == "Job finished: openEO.tif.", logged
        job.get_results().download_files(tmp_path / "out")
        assert (tmp_path / "out" / "openEO.tif").read_bytes()[:2] in (b"II", b"MM")
    finally:
        deployment.start(runner)  # the updated replica, for the tests after this one


@pytest.mark.parametrize("deployment", ["directory"], indirect=True)
def test_a_job_outlives_every_replica_and_a_new_one_finishes_it(deployment, dask_client, tmp_path):
    """Both replicas killed mid-job: the work goes on on the cluster, and a replica started later
    (one server restarted after a crash, say) takes the job over once it reaches the scheduler."""
    con = alice(deployment, "a")
    job = con.create_job(slow(bands=4), title="every replica dies", log_level="debug")
    job.start()
    wait_for(job, ("running",))
    for name in ("a", "b"):
        deployment.replicas[name].kill()
    try:
        deployment.start("a")
        deployment.through("a")
        assert wait_for(job, ("finished", "error", "canceled"), timeout=240) == "finished", messages(job)
        logged = messages_with(job, "Job finished")
        assert runs_on_cluster(dask_client, job.job_id) == 1 and any("took this job over" in m for m in logged), logged
        job.get_results().download_files(tmp_path / "out")
        assert (tmp_path / "out" / "openEO.tif").read_bytes()[:2] in (b"II", b"MM")
    finally:
        for name in ("a", "b"):
            if deployment.replicas[name].process.poll() is not None:
                deployment.start(name)


@pytest.mark.parametrize("deployment", ["s3"], indirect=True)
def test_a_job_survives_the_death_of_its_worker(deployment, dask_client, cluster):
    con = alice(deployment, "a")
    job = con.create_job(slow(bands=3), title="its worker dies", log_level="debug")
    job.start()
    wait_for(job, ("running",))
    [started] = [m for m in messages_with(job, "Job started on Dask worker ") if m.startswith("Job started on Dask worker ")]
    address = started.split(" ")[5]
    pid = dask_client.run(os.getpid, workers=[address])[address]
    os.kill(pid, signal.SIGKILL)  # the worker running the job dies mid-job
    try:
        assert wait_for(job, ("finished", "error", "canceled"), timeout=240) == "finished", messages(job)
        logged = messages_with(job, "Job finished")
        assert runs_on_cluster(dask_client, job.job_id) == 2 and any("was lost" in m for m in logged), logged
        [asset] = job.get_results().get_metadata()["assets"].values()
        assert requests.get(asset["href"], timeout=30).content[:2] in (b"II", b"MM")
    finally:
        cluster.add_worker("replacement")
        dask_client.wait_for_workers(2, timeout=60)
