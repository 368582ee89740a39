"""``kill -9`` of the server while jobs are queued and running, then a restart on the same SQLite file."""

from __future__ import annotations

import time
from datetime import timedelta

import requests

from terracube.jobs.recovery import LOST, RESTARTED, recover
from terracube.jobs.storage import ResultStorage
from terracube.jobs.store import JobServer, JobStore, utcnow

from tests.live_server import LiveServer
from tests.jobs.conftest import create_job, jobs_env, wait_for_status
from tests.jobs.graphs import slow, tutorial


def test_jobs_survive_a_kill_9(data_dir, tmp_path):
    env = jobs_env(data_dir, tmp_path, TERRACUBE_MAX_CONCURRENT_JOBS=1)
    results = tmp_path / "results"
    server = LiveServer(env).start()
    try:
        done = create_job(server.url, tutorial(), title="finished before the crash")
        requests.post(f"{server.url}/jobs/{done}/results", timeout=30)
        wait_for_status(server.url, done, ("finished",))
        running = create_job(server.url, slow(), title="running at the crash")
        queued = [create_job(server.url, tutorial(), title=f"queued {i}") for i in range(2)]
        created = create_job(server.url, tutorial(), title="never started")
        requests.post(f"{server.url}/jobs/{running}/results", timeout=30)
        wait_for_status(server.url, running, ("running",))
        for job_id in queued:
            requests.post(f"{server.url}/jobs/{job_id}/results", timeout=30)
        deadline = time.monotonic() + 30
        while not list(results.glob(f"{running}.tmp-*")):  # the job is writing its partial results
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert [requests.get(f"{server.url}/jobs/{j}", timeout=30).json()["status"] for j in queued] == ["queued", "queued"]
    finally:
        server.kill()
    assert list(results.glob(f"{running}.tmp-*")), "the crash should leave a partial folder behind"

    server = LiveServer(env).start()
    try:
        listed = {job["id"]: job["status"] for job in requests.get(f"{server.url}/jobs", timeout=30).json()["jobs"]}
        assert set(listed) == {done, running, created, *queued}
        assert listed[running] == "error" and listed[created] == "created" and listed[done] == "finished"
        errors = requests.get(f"{server.url}/jobs/{running}/logs", params={"level": "error"}, timeout=30).json()["logs"]
        assert [entry["message"] for entry in errors] == [RESTARTED]
        failed = requests.get(f"{server.url}/jobs/{running}/results", timeout=30)
        assert failed.status_code == 424 and "restarted" in failed.json()["message"]
        for job_id in queued:
            assert wait_for_status(server.url, job_id, ("finished", "error"))["status"] == "finished"
        assert not list(results.glob("*.tmp-*")) and not (results / running).exists()
        # What finished before the crash is still there and downloadable.
        href = requests.get(f"{server.url}/jobs/{done}/results", timeout=30).json()["assets"]["openEO.tif"]["href"]
        assert requests.get(href, timeout=30).content[:2] in (b"II", b"MM")
    finally:
        server.stop()


def test_recovery_fails_running_jobs_of_dead_servers_and_releases_their_queue(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.migrate()
    storage = ResultStorage(str(tmp_path / "results"))
    running, claimed, waiting = (store.create("alice", tutorial()) for _ in range(3))
    for job in (running, claimed, waiting):
        store.queue(job.id)
    store.register_server("gone", "this-host-is-not-here", 1)
    store.claim(running.id, 1, "gone")
    store.claim(claimed.id, 1, "gone")
    store.transition(running.id, ["queued"], "running", attempt=1)
    # A server on another host is dead once its heartbeat is stale.
    with store.sessions.begin() as session:
        session.get(JobServer, "gone").heartbeat = utcnow() - timedelta(minutes=5)
    (tmp_path / "results" / f"{running.id}.tmp-abc").mkdir(parents=True)
    (tmp_path / "results" / running.id).mkdir()
    report = recover(store, storage, me="me")
    assert report["failed"] == [running.id] and report["released"] == [claimed.id]
    assert store.get(running.id).status == "error" and store.logs(running.id)[-1].message == RESTARTED
    released = store.get(claimed.id)
    assert (released.status, released.owner, released.attempt) == ("queued", None, 2)
    assert store.get(waiting.id).status == "queued" and store.servers() == []
    assert list((tmp_path / "results").iterdir()) == []


def test_recovery_on_a_shared_cluster_takes_over_what_the_scheduler_still_runs(tmp_path):
    """With ``adopt`` (a shared Dask scheduler, tests/deploy for the real thing): a job whose task
    the scheduler holds is taken over, one it lost fails saying so, one undecided is left alone
    with its partial results; a claimed job the scheduler never got is released."""
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.migrate()
    storage = ResultStorage(str(tmp_path / "results"))
    kept, lost, undecided, claimed = jobs = [store.create("alice", tutorial()) for _ in range(4)]
    store.register_server("me", "this-host", 2)
    store.register_server("gone", "this-host-is-not-here", 1)
    for job in jobs:
        store.queue(job.id)
        store.claim(job.id, 1, "gone")
    for job in (kept, lost, undecided):
        store.transition(job.id, ["queued"], "running", attempt=1)
    with store.sessions.begin() as session:
        session.get(JobServer, "gone").heartbeat = utcnow() - timedelta(minutes=5)
    for job in jobs:
        (tmp_path / "results" / f"{job.id}.tmp-abc").mkdir(parents=True)

    def adopt(job):
        if job.id == kept.id:
            return store.take_over(job.id, job.attempt, job.owner, "me")
        return None if job.id == undecided.id else False

    report = recover(store, storage, me="me", adopt=adopt)
    assert (report["adopted"], report["waiting"], report["failed"], report["released"]) == ([kept.id], [undecided.id], [lost.id], [claimed.id])
    assert (store.get(kept.id).status, store.get(kept.id).owner) == ("running", "me")
    assert (store.get(undecided.id).status, store.get(undecided.id).owner) == ("running", "gone")
    assert store.get(lost.id).status == "error" and store.logs(lost.id)[-1].message == LOST
    assert store.get(claimed.id).status == "queued" and store.get(claimed.id).owner is None
    left = sorted(path.name for path in (tmp_path / "results").iterdir())
    assert left == sorted(f"{job.id}.tmp-abc" for job in (kept, undecided))  # still being written


def test_two_servers_on_one_database_run_each_job_once(data_dir, tmp_path):
    env = jobs_env(data_dir, tmp_path, TERRACUBE_MAX_CONCURRENT_JOBS=1)
    first, second = LiveServer(env).start(), LiveServer(env).start()
    try:
        ids = [create_job(first.url, tutorial(), title=f"shared {i}") for i in range(4)]
        for job_id in ids:
            requests.post(f"{first.url}/jobs/{job_id}/results", timeout=30)
        for job_id in ids:
            assert wait_for_status(second.url, job_id, ("finished", "error"))["status"] == "finished"
        for job_id in ids:
            logs = requests.get(f"{second.url}/jobs/{job_id}/logs", timeout=30).json()["logs"]
            started = [e["message"] for e in logs if e["message"].startswith("Job started on Dask worker")]
            assert len(started) == 1, started  # claimed by one server, run once
            href = requests.get(f"{first.url}/jobs/{job_id}/results", timeout=30).json()["assets"]["openEO.tif"]["href"]
            assert requests.head(href.replace(first.url, second.url), timeout=30).ok  # either server serves it
    finally:
        first.stop()
        second.stop()
