"""The job store on a real SQLite file and a real PostgreSQL server: same tests, both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

import terracube.jobs.migrations

from terracube.jobs.errors import JobNotFound
from terracube.jobs.store import JobStore

GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = JobStore(url if url.startswith("sqlite") else url.replace("postgresql://", "postgresql+psycopg://"))
    store.migrate()
    yield store
    if not url.startswith("sqlite"):
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM job_logs; DELETE FROM jobs; DELETE FROM job_servers"))
    store.close()


def test_migrations_create_the_schema_and_run_twice(store):
    store.migrate()
    tables = set(inspect(store.engine).get_table_names())
    assert {"jobs", "job_logs", "job_servers", "user_processes", "alembic_version"} <= tables
    # At the newest revision: the one whose file is numbered highest in the migrations folder.
    versions = Path(terracube.jobs.migrations.__file__).parent / "versions"
    newest = max(path.name[:4] for path in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == newest


def test_a_job_round_trips_with_its_graph_and_timestamps(store):
    job = store.create("alice", GRAPH, title="NDVI", description="after", plan="free", budget=5.0, log_level="debug", options={"memory": "2G"})
    got = store.get(job.id, "alice")
    assert (got.title, got.description, got.plan, got.budget, got.log_level, got.options) == ("NDVI", "after", "free", 5.0, "debug", {"memory": "2G"})
    assert got.process == GRAPH and got.status == "created" and got.attempt == 0
    assert got.created.tzinfo is not None and got.id.startswith("j-")


def test_jobs_are_private_to_their_user(store):
    job = store.create("alice", GRAPH)
    with pytest.raises(JobNotFound):
        store.get(job.id, "bob")
    with pytest.raises(JobNotFound):
        store.get("j-nope")


def test_listing_is_newest_first_and_pages(store):
    ids = [store.create("alice", GRAPH, title=str(i)).id for i in range(5)]
    store.create("bob", GRAPH)
    jobs, total = store.list("alice")
    assert total == 5 and [j.id for j in jobs] == ids[::-1]
    page, _ = store.list("alice", limit=2, offset=2)
    assert [j.id for j in page] == ids[::-1][2:4]


def test_status_changes_are_conditional_on_state_and_attempt(store):
    job = store.create("alice", GRAPH)
    assert store.queue(job.id) == 1
    assert store.queue(job.id) is None  # already queued: no effect
    assert store.claim(job.id, 1, "server-a") and not store.claim(job.id, 1, "server-b")
    assert store.active_by_user() == {"alice": 1}
    assert not store.transition(job.id, ["queued"], "running", attempt=2)  # a stale run
    assert store.transition(job.id, ["queued"], "running", attempt=1)
    assert store.transition(job.id, ["running"], "finished", attempt=1, progress=100.0)
    assert not store.transition(job.id, ["queued", "running"], "error", attempt=1)
    assert store.get(job.id).status == "finished"
    assert store.queue(job.id) == 2 and store.get(job.id).owner is None
    assert store.requeue(job.id, ["queued"]) and store.get(job.id).attempt == 3


def test_logs_keep_order_filter_by_level_and_offset(store):
    job = store.create("alice", GRAPH, log_level="info")
    assert not store.add_log(job.id, "debug", "below the job's log level")
    for level, message in (("info", "one"), ("warning", "two"), ("error", "three")):
        assert store.add_log(job.id, level, message, node_id="load" if level == "error" else None)
    entries = store.logs(job.id)
    assert [e.message for e in entries] == ["one", "two", "three"]
    assert [e.message for e in store.logs(job.id, level="warning")] == ["two", "three"]
    assert [e.message for e in store.logs(job.id, offset=str(entries[0].id))] == ["two", "three"]
    assert store.last_error(job.id).node_id == "load"
    store.queue(job.id)
    assert not store.add_log(job.id, "info", "from the previous run", attempt=0)


def test_delete_removes_the_job_and_its_logs(store):
    job = store.create("alice", GRAPH)
    store.add_log(job.id, "info", "hello")
    store.delete(job.id)
    with pytest.raises(JobNotFound):
        store.get(job.id)
    assert store.logs(job.id) == []


def test_servers_register_and_are_forgotten(store):
    store.register_server("host:1:a", "host", 1)
    store.heartbeat("host:1:a")
    assert [s.id for s in store.servers()] == ["host:1:a"]
    store.forget_server("host:1:a")
    assert store.servers() == []
