"""Usage and quotas (docs/auth.md): measured, recorded, shown, enforced to the byte and the second.

A real app in accounts mode (FastAPI's TestClient, its lifespan started, so batch jobs run on a
LocalCluster) over the sample archive, with its own SQLite file, keys, files and results.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pystac
import pytest
from sqlalchemy import select

from terracube.api.app import create_app
from terracube.auth.models import UsageRecord
from terracube.auth.quotas import Quotas, month_bounds
from terracube.auth.store import AuthStore
from terracube.settings import Settings
from terracube.usage import Usage
from tests.auth.conftest import add_users, assert_error, basic_token, bearer, client_for, terracube
from tests.conftest import AFTER, TUTORIAL_AOI
from tests.jobs.graphs import slow, tutorial

GRID = (449, 303)  # the tutorial's grid (docs/architecture.md, "Grid")
BANDS = 2  # B04, B08


def scenes_read(sample: Path, period=AFTER, aoi=TUTORIAL_AOI) -> int:
    """Scenes of the sample catalog in the tutorial's area and half-open period, counted from the STAC files."""
    start, end = (datetime.fromisoformat(day).replace(tzinfo=timezone.utc) for day in period)
    count = 0
    for item in pystac.Catalog.from_file(str(sample / "catalog.json")).get_items(recursive=True):
        west, south, east, north = item.bbox
        overlaps = west < aoi["east"] and east > aoi["west"] and south < aoi["north"] and north > aoi["south"]
        count += overlaps and start <= item.datetime < end
    return count


def settings_over_sample(folder: Path, data_dir: Path, **fields) -> Settings:
    """Settings of a deployment of its own (database, keys, files, results) reading the shared sample archive."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sample").symlink_to(data_dir / "sample", target_is_directory=True)
    return Settings(data_dir=folder, database_url=f"sqlite:///{folder / 'terracube.db'}", **fields)


@pytest.fixture(scope="module")
def deployment(data_dir, tmp_path_factory):
    settings = settings_over_sample(tmp_path_factory.mktemp("usage") / "data", data_dir)
    user_ids = add_users(settings, "alice", "bob")
    with client_for(create_app(settings)) as client:
        assert client.app.state.jobs.wait_ready(60)
        client.user_ids = user_ids
        client.settings = settings
        client.headers_of = {name: bearer(basic_token(client, name)) for name in user_ids}
        client.store = AuthStore.open(settings)
        yield client
        client.store.close()


@pytest.fixture
def app(deployment):
    """The deployment with alice's quotas at the defaults again and no clock set."""
    for name in ("alice", "bob"):
        deployment.store.set_quota(name, quota_cpu_hours=None, quota_storage_bytes=None)
    deployment.app.state.clock = None
    return deployment


def rows(client, user_id: str) -> list[UsageRecord]:
    with client.store.sessions() as session:
        return list(session.scalars(select(UsageRecord).where(UsageRecord.user_id == user_id).order_by(UsageRecord.id)))


def used_cpu(client, user_id: str) -> float:
    return Quotas(client.settings, client.store.sessions).month(user_id).cpu_seconds


def wait_job(client, job_id: str, headers: dict, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("finished", "error", "canceled"):
            return job
        assert time.monotonic() < deadline, f"{job_id} still {job['status']}"
        time.sleep(0.2)


def create_job(client, headers: dict, process: dict) -> str:
    response = client.post("/jobs", json={"process": process}, headers=headers)
    assert response.status_code == 201, response.text
    return response.headers["OpenEO-Identifier"]


# --- measuring -------------------------------------------------------------------------------
def test_a_synchronous_request_records_what_it_used(app):
    alice, user_id = app.headers_of["alice"], app.user_ids["alice"]
    before = len(rows(app, user_id))
    response = app.post("/result", json={"process": tutorial()}, headers=alice)
    assert response.status_code == 200, response.text
    [row] = rows(app, user_id)[before:]
    assert (row.kind, row.job_id) == ("sync", None)
    assert row.cpu_seconds > 0 and row.wall_seconds > 0 and row.peak_memory > 50 * 2**20
    scenes = scenes_read(app.settings.sample_dir)
    assert scenes >= 1
    assert row.pixels == GRID[0] * GRID[1] * BANDS * scenes
    # A failing request used the machine too: it is recorded, with what it read before failing.
    failing = tutorial(["2030-01-01", "2030-01-02"])
    assert app.post("/result", json={"process": failing}, headers=alice).json()["code"] == "NoDataAvailable"
    assert rows(app, user_id)[-1].pixels == 0 and len(rows(app, user_id)) == before + 2


def test_a_job_carries_its_usage_in_its_metadata_and_logs(app):
    alice, user_id = app.headers_of["alice"], app.user_ids["alice"]
    job_id = create_job(app, alice, tutorial())
    assert app.post(f"/jobs/{job_id}/results", headers=alice).status_code == 202
    job = wait_job(app, job_id, alice)
    assert job["status"] == "finished", job
    usage = job["usage"]
    assert usage["cpu"]["unit"] == "cpu-seconds" and usage["cpu"]["value"] > 0
    assert usage["duration"]["unit"] == "seconds" and usage["duration"]["value"] > 0
    assert usage["memory"]["unit"] == "mb-seconds" and usage["memory"]["value"] > 0
    assert usage["peak_memory"] == {"value": usage["peak_memory"]["value"], "unit": "b"} and usage["peak_memory"]["value"] > 0
    pixels = GRID[0] * GRID[1] * BANDS * scenes_read(app.settings.sample_dir)
    assert usage["input_pixel"] == {"value": pixels / 1e6, "unit": "mega-pixel"}
    logs = app.get(f"/jobs/{job_id}/logs", headers=alice).json()["logs"]
    [said] = [entry["message"] for entry in logs if entry["message"].startswith("Usage:")]
    assert f"{pixels:,} pixels read" in said and "CPU seconds" in said
    [row] = [row for row in rows(app, user_id) if row.job_id == job_id]
    assert row.kind == "job" and row.pixels == pixels and row.cpu_seconds == pytest.approx(usage["cpu"]["value"], abs=1e-3)


# --- the CPU quota ---------------------------------------------------------------------------
def test_the_cpu_quota_refuses_new_work_to_the_second(app):
    alice, bob, user_id = app.headers_of["alice"], app.headers_of["bob"], app.user_ids["alice"]
    if used_cpu(app, user_id) == 0:
        assert app.post("/result", json={"process": tutorial()}, headers=alice).status_code == 200
    used = used_cpu(app, user_id)
    assert used > 0
    # One second more than used: still allowed.
    app.store.set_quota("alice", quota_cpu_hours=(used + 1) / 3600)
    assert app.post("/result", json={"process": tutorial()}, headers=alice).status_code == 200
    used = used_cpu(app, user_id)
    # Exactly what was used: refused, with the numbers and the reset.
    app.store.set_quota("alice", quota_cpu_hours=used / 3600)
    body = assert_error(app.post("/result", json={"process": tutorial()}, headers=alice), 402, "PaymentRequired")
    _, reset = month_bounds(datetime.now(timezone.utc))
    assert f"{used:.3f} of {used:.3f} CPU seconds" in body["message"] and reset.strftime("%Y-%m-%d 00:00 UTC") in body["message"]
    assert len([row for row in rows(app, user_id) if row.at >= month_bounds(datetime.now(timezone.utc))[0]]) >= 2
    # Starting a job is new work too; creating one is not.
    job_id = create_job(app, alice, tutorial())
    assert_error(app.post(f"/jobs/{job_id}/results", headers=alice), 402, "PaymentRequired")
    assert app.get(f"/jobs/{job_id}", headers=alice).json()["status"] == "created"
    # /me says nothing is left; bob, with the default quota, works on.
    me = app.get("/me", headers=alice).json()
    assert me["budget"] == 0 and me["usage"]["cpu"]["value"] == pytest.approx(used, abs=1e-3)
    assert me["usage"]["cpu_quota"]["value"] == pytest.approx(used, abs=1e-3)
    assert app.post("/result", json={"process": tutorial()}, headers=bob).status_code == 200
    # 0 means no limit.
    app.store.set_quota("alice", quota_cpu_hours=0)
    assert app.post("/result", json={"process": tutorial()}, headers=alice).status_code == 200
    assert app.get("/me", headers=alice).json()["budget"] is None


def test_the_quota_resets_at_the_start_of_the_next_month(app):
    """The clock is a function the app takes (``app.state.clock``): the month boundary without touching time."""
    alice, user_id = app.headers_of["alice"], app.user_ids["alice"]
    last_second = datetime(2031, 1, 31, 23, 59, 59, tzinfo=timezone.utc)
    app.app.state.clock = lambda: last_second
    quotas = Quotas(app.settings, app.store.sessions, lambda: last_second)
    quotas.record(user_id, "sync", Usage(cpu_seconds=7200.0, wall_seconds=7300.0, pixels_read=10))
    app.store.set_quota("alice", quota_cpu_hours=2.0)
    body = assert_error(app.post("/result", json={"process": tutorial()}, headers=alice), 402, "PaymentRequired")
    assert "2.0000 of 2.0000 CPU hours" in body["message"] and "2031-02-01 00:00 UTC" in body["message"]
    me = app.get("/me", headers=alice).json()
    assert (me["budget"], me["usage"]["month"], me["usage"]["resets"]) == (0, "2031-01", "2031-02-01T00:00:00Z")
    # One second later it is February: January's hours no longer count.
    app.app.state.clock = lambda: datetime(2031, 2, 1, 0, 0, 0, tzinfo=timezone.utc)
    me = app.get("/me", headers=alice).json()
    assert (me["budget"], me["usage"]["cpu"]["value"], me["usage"]["month"]) == (2.0, 0, "2031-02")
    assert app.post("/result", json={"process": tutorial()}, headers=alice).status_code == 200
    assert month_bounds(datetime(2031, 12, 31, 12, tzinfo=timezone.utc)) == (
        datetime(2031, 12, 1, tzinfo=timezone.utc), datetime(2032, 1, 1, tzinfo=timezone.utc),
    )


# --- the storage quota -----------------------------------------------------------------------
def test_the_storage_quota_to_the_byte(app):
    bob = app.headers_of["bob"]
    assert app.put("/files/seed.bin", content=b"x" * 1000, headers=bob).status_code == 200
    used = app.get("/me", headers=bob).json()["usage"]["storage"]["value"]
    assert used >= 1000  # the file, and any results of bob's jobs
    room = 4096
    app.store.set_quota("bob", quota_storage_bytes=used + room)
    assert app.get("/me", headers=bob).json()["storage"] == {"free": room, "quota": used + room}
    # One byte too many: refused with the numbers, declared or streamed, and nothing stored.
    body = assert_error(app.put("/files/big.bin", content=b"y" * (room + 1), headers=bob), 400, "StorageQuotaExceeded")
    assert f"{room:,} bytes" in body["message"] and "Nothing was stored" in body["message"]
    streamed = app.put("/files/big.bin", content=iter([b"y" * room, b"y"]), headers=bob)
    assert "content-length" not in streamed.request.headers
    assert_error(streamed, 400, "StorageQuotaExceeded")
    listed = [entry["path"] for entry in app.get("/files", headers=bob).json()["files"]]
    assert "big.bin" not in listed
    assert not any(p.name.startswith(".upload-") for p in (Path(app.settings.data_dir) / "files").rglob("*"))
    # Exactly the room: stored. Then nothing is free.
    assert app.put("/files/big.bin", content=iter([b"y" * (room - 1), b"y"]), headers=bob).status_code == 200
    assert app.get("/me", headers=bob).json()["storage"] == {"free": 0, "quota": used + room}
    # Overwriting a file frees its bytes first: the same size fits, one more byte does not.
    assert app.put("/files/big.bin", content=b"z" * room, headers=bob).status_code == 200
    assert_error(app.put("/files/big.bin", content=b"z" * (room + 1), headers=bob), 400, "StorageQuotaExceeded")
    assert app.get("/files/big.bin", headers=bob).content == b"z" * room
    # No room left: a job does not start (it could not store its results).
    job_id = create_job(app, bob, tutorial())
    assert_error(app.post(f"/jobs/{job_id}/results", headers=bob), 400, "StorageQuotaExceeded")
    # Deleting a file makes room again.
    assert app.delete("/files/big.bin", headers=bob).status_code == 204
    assert app.get("/me", headers=bob).json()["storage"]["free"] == room
    assert app.post(f"/jobs/{job_id}/results", headers=bob).status_code == 202
    job = wait_job(app, job_id, bob)
    assert job["status"] == "finished"
    results = sum(asset["file:size"] for asset in app.get(f"/jobs/{job_id}/results", headers=bob).json()["assets"].values())
    assert app.get("/me", headers=bob).json()["usage"]["storage"]["value"] == used + results


# --- laptop mode -----------------------------------------------------------------------------
def test_laptop_mode_has_no_quotas_but_records_usage(data_dir, tmp_path):
    settings = settings_over_sample(tmp_path / "data", data_dir, quota_cpu_hours=1e-6, quota_storage_bytes=1)
    with client_for(create_app(settings)) as laptop:
        for _ in range(2):
            assert laptop.post("/result", json={"process": tutorial()}).status_code == 200
        assert laptop.put("/files/a.bin", content=b"1234").status_code == 200
        me = laptop.get("/me").json()
        assert (me["user_id"], me["budget"], me["storage"]) == ("anonymous", None, None)
        assert me["usage"]["requests"] == 2 and me["usage"]["cpu"]["value"] > 0 and me["usage"]["storage"]["value"] == 4


# --- concurrent jobs per user ----------------------------------------------------------------
def test_a_users_jobs_beyond_the_limit_wait_queued(data_dir, tmp_path):
    settings = settings_over_sample(tmp_path / "data", data_dir, max_concurrent_jobs=4, max_concurrent_jobs_per_user=1)
    with client_for(create_app(settings)) as laptop:
        assert laptop.app.state.jobs.wait_ready(60)
        first, second = (create_job(laptop, {}, slow(bands=2)) for _ in range(2))
        for job_id in (first, second):
            assert laptop.post(f"/jobs/{job_id}/results").status_code == 202
        seen = set()
        deadline = time.monotonic() + 240
        while True:
            states = tuple(laptop.get(f"/jobs/{job_id}").json()["status"] for job_id in (first, second))
            seen.add(states)
            assert "running" not in states or states.count("running") == 1, states
            if states == ("finished", "finished"):
                break
            assert time.monotonic() < deadline and "error" not in states, states
            time.sleep(0.1)
        assert ("running", "queued") in seen  # the second waited while the first ran


# --- the command line ------------------------------------------------------------------------
def test_operators_set_quotas_and_see_everyones_usage(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    user_ids = add_users(settings, "alice", "bob")
    quotas = Quotas(settings, AuthStore.open(settings).sessions)
    quotas.record(user_ids["alice"], "sync", Usage(cpu_seconds=1800.0, wall_seconds=1900.0, pixels_read=272_094))
    quotas.record(user_ids["alice"], "job", Usage(cpu_seconds=900.0, wall_seconds=60.0, pixels_read=1), job_id="j-1")
    env = {**os.environ, "TERRACUBE_DATA_DIR": str(settings.data_dir), "COLUMNS": "250"}
    env.pop("TERRACUBE_DATABASE_URL", None)
    out = terracube(env, "users", "quota", "alice", "--cpu-hours", "2.5", "--storage", "1GiB").stdout
    assert "CPU 2.500 hours a month (own)" in out and "1.00 GiB (own)" in out
    assert "CPU 10.000 hours a month (default)" in terracube(env, "users", "quota", "bob").stdout
    table = terracube(env, "users", "usage").stdout
    [alice] = [line for line in table.splitlines() if "alice" in line]
    assert "0.7500" in alice and "2.500" in alice and "272,095" in alice
    [bob] = [line for line in table.splitlines() if " bob " in line]
    assert "0.0000" in bob and "10.000" in bob
    bad = terracube(env, "users", "quota", "alice", "--storage", "lots", check=False)
    assert bad.returncode != 0 and "not a size" in bad.stdout + bad.stderr
    added = terracube(env, "users", "add", "carol", "--cpu-hours", "0", password="carol's long password").stdout
    assert "carol" in added and "CPU no limit (own)" in terracube(env, "users", "quota", "carol").stdout
