"""User-defined processes in the job database: a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from terracube.jobs.errors import ProcessGraphNotFound
from terracube.jobs.store import JobStore
from terracube.jobs.udp_store import UdpStore


def process(pid: str, graph: dict | None = None, **fields) -> dict:
    graph = graph or {"a": {"process_id": "add", "arguments": {"x": {"from_parameter": "x"}, "y": 1}, "result": True}}
    return {"id": pid, "parameters": [{"name": "x", "schema": {"type": "number"}}], "process_graph": graph, **fields}


@pytest.fixture(params=["sqlite", "postgresql"])
def udps(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
    else:
        url = request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg://")
    store = JobStore(url)
    store.migrate()
    yield UdpStore(store)
    if not url.startswith("sqlite"):
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM user_processes"))
    store.close()


def test_put_replaces_and_get_gives_the_document_back(udps):
    assert udps.put("alice", "plus_one", process("plus_one", summary="first")) is True
    assert udps.put("alice", "plus_one", process("plus_one", summary="second")) is False
    assert udps.get("alice", "plus_one") == process("plus_one", summary="second")


def test_processes_are_private_to_their_user(udps):
    udps.put("alice", "mine", process("mine"))
    with pytest.raises(ProcessGraphNotFound):
        udps.get("bob", "mine")
    with pytest.raises(ProcessGraphNotFound):
        udps.delete("bob", "mine")
    assert udps.lookup("bob")("mine", "user") is None
    assert udps.lookup("alice")("mine", "user")["id"] == "mine"
    # Only the user's namespace (or none) names a stored process.
    assert udps.lookup("alice")("mine", "backend") is None


def test_list_pages_sorted_by_id(udps):
    for pid in ("c", "a", "b"):
        udps.put("alice", pid, process(pid))
    udps.put("bob", "z", process("z"))
    documents, total = udps.list("alice", limit=2, offset=1)
    assert total == 3 and [d["id"] for d in documents] == ["b", "c"]


def test_delete(udps):
    udps.put("alice", "gone", process("gone"))
    udps.delete("alice", "gone")
    assert udps.find("alice", "gone") is None
    with pytest.raises(ProcessGraphNotFound):
        udps.delete("alice", "gone")


def test_snapshot_follows_processes_that_call_processes(udps):
    inner = process("inner")
    outer = process("outer", {"o": {"process_id": "inner", "namespace": "user", "arguments": {"x": {"from_parameter": "x"}}, "result": True}})
    udps.put("alice", "inner", inner)
    udps.put("alice", "outer", outer)
    udps.put("alice", "unused", process("unused"))
    # Called from inside a callback, without a namespace.
    graph = {
        "process_graph": {
            "r": {
                "process_id": "apply",
                "arguments": {"data": [1], "process": {"process_graph": {"c": {"process_id": "outer", "arguments": {"x": {"from_parameter": "x"}}, "result": True}}}},
                "result": True,
            }
        }
    }
    assert udps.snapshot("alice", graph) == {"inner": inner, "outer": outer}
    assert udps.snapshot("bob", graph) == {}
