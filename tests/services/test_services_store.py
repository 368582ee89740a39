"""The service store in the jobs database: a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

from datetime import timezone

import pytest
from sqlalchemy import inspect

from terracube.errors import ServiceNotFound
from terracube.services.model import Service
from terracube.services.store import MAX_LOG_ENTRIES, ServiceStore, new_service_id

GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


def make(services: ServiceStore, user_id: str = "alice", **fields) -> Service:
    defaults = {"type": "XYZ", "process": GRAPH, "configuration": {"colormap": "viridis"}, "title": "NDVI"}
    return services.add(Service(id=new_service_id(), user_id=user_id, **{**defaults, **fields}))


def test_the_migration_makes_the_tables(job_store):
    job_store.migrate()  # twice is harmless
    assert {"services", "service_logs"} <= set(inspect(job_store.engine).get_table_names())


def test_ids_are_unguessable_and_fit_the_api_pattern():
    ids = {new_service_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and all(c.isalnum() or c in "-_" for c in i) for i in ids)


def test_a_service_round_trips(services):
    made = make(services, description="after the flood", enabled=False)
    stored = services.get("alice", made.id)
    assert stored.service == made
    assert (stored.service.process, stored.service.configuration, stored.service.version) == (GRAPH, {"colormap": "viridis"}, 1)
    assert stored.service.created.tzinfo is not None and stored.service.created.astimezone(timezone.utc) == made.created
    assert (stored.log_level, stored.plan, stored.budget) == ("info", None, None)


def test_owner_and_id_or_nothing(services):
    made = make(services)
    for user, service_id in (("bob", made.id), ("alice", new_service_id())):
        with pytest.raises(ServiceNotFound) as caught:
            services.get(user, service_id)
        assert caught.value.status == 404 and service_id in caught.value.message
        with pytest.raises(ServiceNotFound):
            services.update(user, service_id, 1, title="bob was here")
        with pytest.raises(ServiceNotFound):
            services.delete(user, service_id)
    assert services.get("alice", made.id).service.title == "NDVI"


def test_listing_is_the_owners_newest_first_and_pages(services):
    made = [make(services, title=f"layer {i}") for i in range(3)]
    make(services, user_id="bob")
    listed, total = services.list("alice")
    assert total == 3 and [s.service.id for s in listed] == [m.id for m in reversed(made)]
    page, total = services.list("alice", limit=2, offset=1)
    assert total == 3 and [s.service.id for s in page] == [made[1].id, made[0].id]


def test_every_update_starts_a_new_version_and_a_stale_one_is_refused(services):
    made = make(services)
    changed = services.update("alice", made.id, 1, title="NDVI, July", configuration={"colormap": "RdYlGn"})
    assert (changed.version, changed.title, changed.configuration, changed.created) == (2, "NDVI, July", {"colormap": "RdYlGn"}, made.created)
    # Somebody read version 1 and checked their change against it: it must be checked again.
    assert services.update("alice", made.id, 1, enabled=False) is None
    assert services.get("alice", made.id).service.enabled is True
    assert services.update("alice", made.id, 2, enabled=False).version == 3


def test_the_tiles_see_enabled_services_only_by_id(services):
    made = make(services)
    assert services.enabled(made.id) == made
    assert services.enabled(new_service_id()) is None
    services.update("alice", made.id, 1, enabled=False)
    assert services.enabled(made.id) is None
    services.update("alice", made.id, 2, enabled=True)
    assert services.enabled(made.id).version == 3
    services.delete("alice", made.id)
    assert services.enabled(made.id) is None


def test_logs_follow_the_level_keep_the_newest_and_go_with_the_service(services):
    made = make(services)
    assert services.add_log(made.id, "debug", "not kept at log level info") is False
    assert services.add_log(made.id, "error", "tile 9/1/1 failed", code="NoDataAvailable", data={"z": 9, "x": 1, "y": 1})
    [entry] = services.logs(made.id)
    assert (entry.level, entry.code, entry.message, entry.data) == ("error", "NoDataAvailable", "tile 9/1/1 failed", {"z": 9, "x": 1, "y": 1})
    assert services.add_log(new_service_id(), "error", "no such service") is False

    other = make(services)
    services.add_log(other.id, "warning", "the other service's")
    for i in range(MAX_LOG_ENTRIES + 5):
        services.add_log(made.id, "warning", f"entry {i}")
    kept = services.logs(made.id)
    assert len(kept) == MAX_LOG_ENTRIES and kept[-1].message == f"entry {MAX_LOG_ENTRIES + 4}"
    assert kept[0].message == "entry 5"  # the error above and the 5 oldest warnings went
    assert [e.message for e in services.logs(other.id)] == ["the other service's"]

    later = services.logs(made.id, offset=str(kept[-3].id))
    assert [e.message for e in later] == [e.message for e in kept[-2:]]
    assert len(services.logs(made.id, limit=7)) == 7
    assert services.logs(made.id, level="error") == []

    services.delete("alice", made.id)
    assert services.logs(made.id) == []
    assert len(services.logs(other.id)) == 1
