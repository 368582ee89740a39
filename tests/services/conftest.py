"""Fixtures of the services tests: service stores on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from terracube.jobs.store import JobStore
from terracube.services.store import ServiceStore
from tests.jobs.conftest import postgres_url  # noqa: F401  (a fixture, for the PostgreSQL store tests)


@pytest.fixture(params=["sqlite", "postgresql"])
def job_store(request, tmp_path):
    """The jobs database, migrated, on either engine (services live in it)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'terracube.db'}"
    else:
        url = request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg://")
    store = JobStore(url)
    store.migrate()
    yield store
    if not url.startswith("sqlite"):  # one server for the session: leave it empty for the next test
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM service_logs; DELETE FROM services"))
    store.close()


@pytest.fixture
def services(job_store) -> ServiceStore:
    return ServiceStore(job_store)
