"""The /jobs routes in process (FastAPI's TestClient), on a real SQLite file and a LocalCluster."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from terracube.settings import Settings

from terracube.api.app import create_app
from tests.jobs.graphs import no_data, slow, tutorial


def make_client(data_dir: Path, folder: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> TestClient:
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("TERRACUBE_RESULTS_ROOT", env.pop("results_root", str(folder / "results")))
    for key, value in env.items():
        monkeypatch.setenv(f"TERRACUBE_{key.upper()}", value)
    database_url = env.get("database_url") or f"sqlite:///{folder / 'jobs.db'}"
    # A loopback Host, as laptop mode asks (api/guard.py); TestClient's default "testserver" is not one.
    return TestClient(create_app(Settings(data_dir=data_dir, database_url=database_url)), base_url="http://localhost")


@pytest.fixture(scope="module")
def client(data_dir, tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        with make_client(data_dir, tmp_path_factory.mktemp("jobs-api"), monkeypatch) as test_client:
            assert test_client.app.state.jobs.wait_ready(60)
            yield test_client


def create(client: TestClient, process: dict, **fields) -> str:
    response = client.post("/jobs", json={"process": process, **fields})
    assert response.status_code == 201, response.text
    assert response.headers["Location"].endswith("/jobs/" + response.headers["OpenEO-Identifier"])
    return response.headers["OpenEO-Identifier"]


def wait(client: TestClient, job_id: str, statuses=("finished", "error", "canceled"), timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        assert time.monotonic() < deadline, f"{job_id} still {job['status']}"
        time.sleep(0.1)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({}, 400, "ProcessGraphMissing"),
        ({"process": {"process_graph": {"x": {"process_id": "no_such_process", "arguments": {}, "result": True}}}}, 400, "ProcessUnsupported"),
        ({"process": {"process_graph": {"l": {"process_id": "load_collection", "arguments": {"id": "NOPE", "spatial_extent": None, "temporal_extent": None}, "result": True}}}}, 404, "CollectionNotFound"),
        ({"process": tutorial(), "budget": -1}, 400, "BudgetInvalid"),
    ],
)
def test_an_invalid_job_is_rejected_when_created(client, body, status, code):
    response = client.post("/jobs", json=body)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text


def test_a_job_runs_from_created_to_finished(client):
    job_id = create(client, tutorial(), title="NDVI after", description="the tutorial", log_level="debug")
    job = client.get(f"/jobs/{job_id}").json()
    assert (job["status"], job["title"], job["process"]) == ("created", "NDVI after", tutorial())
    assert client.patch(f"/jobs/{job_id}", json={"title": "NDVI after the flood"}).status_code == 204
    assert client.patch(f"/jobs/{job_id}", json={"status": "finished"}).json()["code"] == "PropertyNotEditable"
    assert client.get(f"/jobs/{job_id}/results").json()["code"] == "JobNotStarted"
    assert client.post(f"/jobs/{job_id}/results").status_code == 202
    job = wait(client, job_id)
    assert job["status"] == "finished" and job["progress"] == 100 and job["title"] == "NDVI after the flood"
    assert job["created"] <= job["started"] <= job["finished"]
    assert {"cpu", "memory", "duration"} <= set(job["usage"]) and job["usage"]["duration"]["unit"] == "seconds"
    assert {link["rel"] for link in job["links"]} == {"monitor", "result"}
    messages = [entry["message"] for entry in client.get(f"/jobs/{job_id}/logs").json()["logs"]]
    assert messages[0] == "Job created; its process graph is valid." and messages[-1] == "Job finished: openEO.tif."
    assert any(m.startswith("Job started on Dask worker") for m in messages) and any("scenes" in m for m in messages)
    document = client.get(f"/jobs/{job_id}/results").json()
    assert list(document["assets"]) == ["openEO.tif"] and document["assets"]["openEO.tif"]["proj:epsg"] == 32632
    estimate = client.get(f"/jobs/{job_id}/estimate").json()
    assert estimate["size"] > 0 and estimate["duration"].startswith("PT")


def test_results_download_with_a_signed_url_and_ranges(client):
    job_id = create(client, tutorial())
    client.post(f"/jobs/{job_id}/results")
    assert wait(client, job_id)["status"] == "finished"
    href = client.get(f"/jobs/{job_id}/results").json()["assets"]["openEO.tif"]["href"]
    anonymous = TestClient(client.app, base_url="http://localhost")  # no session state: the signature is the only credential
    head = anonymous.head(path_of(href))
    assert head.status_code == 200 and head.headers["accept-ranges"] == "bytes"
    size = int(head.headers["content-length"])
    whole = anonymous.get(path_of(href)).content
    assert len(whole) == size and whole[:4] in (b"II*\x00", b"MM\x00*")
    part = anonymous.get(path_of(href), headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    tampered = path_of(href).replace("signature=", "signature=0")
    assert anonymous.get(tampered).status_code == 403
    # A signature that is not even ASCII (found by the fuzzing: it was a 500) is just a wrong one.
    foreign = path_of(href).replace("signature=", "signature=%C3%A1%C2%92")
    assert anonymous.get(foreign).status_code == 403 and anonymous.head(foreign).status_code == 403
    assert anonymous.get(f"/jobs/{job_id}/results/assets/openEO.tif").status_code == 403
    signer = client.app.state.jobs.signer
    old = signer.sign(job_id, "openEO.tif", now=time.time() - 2 * signer.lifetime)
    expired = anonymous.get(f"/jobs/{job_id}/results/assets/openEO.tif", params=old)
    assert expired.status_code == 410 and expired.json()["code"] == "ResultLinkExpired"
    canonical = next(link for link in client.get(f"/jobs/{job_id}/results").json()["links"] if link["rel"] == "canonical")
    assert anonymous.get(path_of(canonical["href"])).json()["id"] == job_id


def test_an_error_in_the_graph_ends_the_job_in_error_with_a_clear_log(client):
    job_id = create(client, no_data())
    client.post(f"/jobs/{job_id}/results")
    assert wait(client, job_id)["status"] == "error"
    errors = client.get(f"/jobs/{job_id}/logs", params={"level": "error"}).json()["logs"]
    assert len(errors) == 1 and errors[0]["code"] == "NoDataAvailable"
    assert "SENTINEL2_L2A" in errors[0]["message"] and "Traceback" not in errors[0]["message"]
    failed = client.get(f"/jobs/{job_id}/results")
    assert failed.status_code == 424 and failed.json()["code"] == "NoDataAvailable"


def job_threads(job_id: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == f"terracube-job-{job_id}"]


def test_cancel_stops_the_work_in_laptop_mode(client):
    # Laptop mode computes a job's graph on dask's threads inside the server (jobs/worker.py): the
    # job's own thread, and the CPU the server spends, show whether the work goes on.
    job_id = create(client, slow())
    client.post(f"/jobs/{job_id}/results")
    wait(client, job_id, ("running",), timeout=60)
    assert client.patch(f"/jobs/{job_id}", json={"title": "x"}).json()["code"] == "JobLocked"
    assert client.get(f"/jobs/{job_id}/results").json()["code"] == "JobNotFinished"
    partial = client.get(f"/jobs/{job_id}/results", params={"partial": "true"}).json()
    assert partial["properties"]["openeo:status"] == "running" and partial["assets"] == {}
    cpu, deadline = time.process_time(), time.monotonic() + 30
    while time.process_time() - cpu < 2:  # the median is being computed
        assert time.monotonic() < deadline and job_threads(job_id), "the job's computation never started"
        time.sleep(0.1)
    started = time.monotonic()
    assert client.delete(f"/jobs/{job_id}/results").status_code == 204
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "canceled"
    deadline = time.monotonic() + 20
    while job_threads(job_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not job_threads(job_id), "the job's computation still runs after the cancel"
    # The tasks already handed to dask's threads finish (a task's time); then the server is idle.
    while True:
        cpu = time.process_time()
        time.sleep(0.5)
        if time.process_time() - cpu < 0.2:
            break
        assert time.monotonic() - started < 20, "the server still computes after the cancel"
    assert time.monotonic() - started < 20  # the whole job would take ~30 s more
    assert client.get(f"/jobs/{job_id}/results").json()["code"] == "JobNotStarted"
    logged = [e["message"] for e in client.get(f"/jobs/{job_id}/logs").json()["logs"]]
    assert "Job canceled by the user." in logged and "The job's computations stopped." in logged, logged
    # Nothing partial is kept: the worker removes what it had begun to write once it hears of the cancel.
    results = Path(client.app.state.jobs.storage.root)

    def leftovers() -> list[Path]:
        return [p for p in results.iterdir() if p.name.startswith(job_id)] if results.exists() else []

    deadline = time.monotonic() + 30
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not leftovers()


def test_restarting_a_finished_job_replaces_its_results(client):
    job_id = create(client, tutorial())
    client.post(f"/jobs/{job_id}/results")
    wait(client, job_id)
    first = client.get(f"/jobs/{job_id}/results").json()["assets"]["openEO.tif"]["href"]
    client.post(f"/jobs/{job_id}/results")
    assert client.get(f"/jobs/{job_id}").json()["status"] in ("queued", "running", "finished")
    assert wait(client, job_id)["status"] == "finished"
    assert client.get(path_of(first)).status_code == 200  # same file name, new file


def test_delete_removes_the_job_and_its_results(client):
    job_id = create(client, tutorial())
    client.post(f"/jobs/{job_id}/results")
    wait(client, job_id)
    href = client.get(f"/jobs/{job_id}/results").json()["assets"]["openEO.tif"]["href"]
    results = Path(client.app.state.jobs.storage.root) / job_id
    assert (results / "openEO.tif").exists()
    assert client.delete(f"/jobs/{job_id}").status_code == 204
    assert client.get(f"/jobs/{job_id}").json()["code"] == "JobNotFound"
    assert client.get(path_of(href)).status_code == 404
    assert not results.exists()


def test_ten_jobs_all_finish_two_at_a_time(client):
    ids = [create(client, tutorial(), title=f"job {i}") for i in range(10)]
    for job_id in ids:
        assert client.post(f"/jobs/{job_id}/results").status_code == 202
    most_running, deadline = 0, time.monotonic() + 180
    while True:
        statuses = {job["id"]: job["status"] for job in client.get("/jobs").json()["jobs"] if job["id"] in ids}
        most_running = max(most_running, sum(1 for s in statuses.values() if s == "running"))
        if all(s == "finished" for s in statuses.values()):
            break
        assert time.monotonic() < deadline and "error" not in statuses.values(), statuses
        time.sleep(0.05)
    assert 1 <= most_running <= 2  # TERRACUBE_MAX_CONCURRENT_JOBS_PER_USER, 2 by default


def test_job_list_pages_and_logs_page_by_offset(client):
    ids = [create(client, tutorial(), title=f"page {i}") for i in range(3)]
    page = client.get("/jobs", params={"limit": 2}).json()
    assert [job["id"] for job in page["jobs"]] == ids[::-1][:2] and "process" not in page["jobs"][0]
    following = next(link for link in page["links"] if link["rel"] == "next")
    assert client.get(path_of(following["href"])).json()["jobs"][0]["id"] == ids[0]
    job_id = ids[0]
    client.post(f"/jobs/{job_id}/results")
    wait(client, job_id)
    logs = client.get(f"/jobs/{job_id}/logs").json()
    assert logs["level"] == "info" and all(entry["level"] != "debug" for entry in logs["logs"])
    first = client.get(f"/jobs/{job_id}/logs", params={"limit": 1}).json()
    rest = client.get(f"/jobs/{job_id}/logs", params={"offset": first["logs"][0]["id"]}).json()["logs"]
    assert [e["id"] for e in first["logs"] + rest] == [e["id"] for e in logs["logs"]]


def test_results_on_an_fsspec_url_are_published_and_served(data_dir, tmp_path, monkeypatch):
    root = (tmp_path / "bucket").as_uri()  # file:// goes through fsspec, as s3:// would
    with make_client(data_dir, tmp_path, monkeypatch, results_root=root) as client:
        job_id = create(client, tutorial())
        client.post(f"/jobs/{job_id}/results")
        assert wait(client, job_id)["status"] == "finished"
        assert sorted(p.name for p in (tmp_path / "bucket").iterdir()) == [job_id]
        href = client.get(f"/jobs/{job_id}/results").json()["assets"]["openEO.tif"]["href"]
        whole = client.get(path_of(href))
        assert whole.status_code == 200 and whole.content == (tmp_path / "bucket" / job_id / "openEO.tif").read_bytes()
        part = client.get(path_of(href), headers={"Range": "bytes=-10"})
        assert part.status_code == 206 and part.content == whole.content[-10:]


def test_jobs_run_with_postgresql_as_the_store(data_dir, tmp_path, monkeypatch, postgres_url):
    with make_client(data_dir, tmp_path, monkeypatch, database_url=postgres_url) as client:
        job_id = create(client, tutorial(), title="on PostgreSQL")
        client.post(f"/jobs/{job_id}/results")
        assert wait(client, job_id)["status"] == "finished"
        assert client.app.state.jobs.store.engine.dialect.name == "postgresql"
        assert client.get(f"/jobs/{job_id}/logs").json()["logs"][-1]["message"] == "Job finished: openEO.tif."
