"""Fixtures of the jobs tests: a real PostgreSQL server, terracube servers that can be killed.

Every server here keeps its database and results in the test's own folder and shares only the
session's sample archive (``data_dir``), so tests never see each other's jobs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests

from tests.jobs.postgres import PostgresServer, postgres_bin

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def postgres_url():
    bindir = postgres_bin()
    if bindir is None:
        # CI installs them (.ci/run): there, their absence is a failure, not a silent skip.
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            "POSTGRESQL SERVER BINARIES NOT FOUND (initdb/pg_ctl): the PostgreSQL job store tests did NOT run. "
            "Install them with tests/jobs/install_postgres.sh (Debian's postgresql package)."
        )
    server = PostgresServer(bindir).start()
    yield server.url
    server.stop()


def jobs_env(data_dir: Path, folder: Path, **extra: str) -> dict[str, str]:
    """A server's environment: the shared sample archive, its own database and results."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        "TERRACUBE_DATA_DIR": str(data_dir),
        "TERRACUBE_DATABASE_URL": f"sqlite:///{folder / 'jobs.db'}",
        "TERRACUBE_RESULTS_ROOT": str(folder / "results"),
    }
    env.update({key: str(value) for key, value in extra.items()})
    return env


def wait_for_status(url: str, job_id: str, statuses: tuple[str, ...], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = requests.get(f"{url}/jobs/{job_id}", timeout=10).json()
        if job.get("status") in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is {job.get('status')}, not {statuses}, after {timeout} s")
        time.sleep(0.1)


def create_job(url: str, process: dict, **fields) -> str:
    response = requests.post(f"{url}/jobs", json={"process": process, **fields}, timeout=60)
    assert response.status_code == 201, response.text
    return response.headers["OpenEO-Identifier"]
