"""After a crash: make the store and the results root agree with what is really running.

Every API server that runs jobs registers in ``job_servers`` and beats a heartbeat; a job it
submitted to Dask carries its id as ``owner``. A server is dead when its row is gone, when it ran
on this host and its process no longer exists (a ``kill -9`` is seen at once on restart), or when
its heartbeat is older than ``STALE`` (another host). For the jobs of dead servers:

* On a shared Dask cluster (``TERRACUBE_DASK_SCHEDULER``) the job's task goes on without its
  server (adoption.py): a live server takes the job over (``adopt``) and finishes it. Until this
  server reaches the scheduler, such jobs are left as they are.
* Otherwise (a LocalCluster died with its server, or the scheduler no longer has the task):
  ``running`` jobs are marked ``error`` with a log entry that says why. Not rerun: the crash may
  have been the job's own doing (memory), and rerunning it automatically could take the server
  down again. Starting it again is one request (``job.start()``).
  ``queued`` ones (claimed, not yet started) are released to the queue, to run again.

Temporary result folders of jobs nobody alive is running, and result folders of jobs that did not
finish, are deleted: no partial result is ever served.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from typing import Callable

from terracube.jobs.storage import TMP_MARK, ResultStorage
from terracube.jobs.store import ACTIVE, Job, JobStore, utcnow

log = logging.getLogger("terracube.jobs")

RESTARTED = "terracube restarted while this job was running; its work was lost. Start the job again."
LOST = (
    "The terracube server running this job stopped, and the Dask scheduler no longer holds the job's task "
    "(it was restarted, or the task ended unwatched); its work was lost. Start the job again."
)
STALE = timedelta(seconds=60)
HEARTBEAT_SECONDS = 5.0
HOST = socket.gethostname()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_servers(store: JobStore, me: str | None = None) -> set[str]:
    now = utcnow()
    alive = set()
    for server in store.servers():
        if server.id == me:
            alive.add(server.id)
        elif server.host == HOST:
            if server.pid != os.getpid() and pid_alive(server.pid) and now - server.heartbeat < STALE * 10:
                alive.add(server.id)
        elif now - server.heartbeat < STALE:
            alive.add(server.id)
    return alive


def recover(
    store: JobStore, storage: ResultStorage, me: str | None = None, adopt: Callable[[Job], bool | None] | None = None
) -> dict[str, list[str]]:
    """Take over, fail or release the jobs of dead servers, forget those servers, clean the results root.

    ``adopt(job)`` (a server on a shared Dask cluster) answers True when it took the job over,
    None when it cannot tell yet (the scheduler not reached, another server quicker), False when
    the job's work is gone from the cluster."""
    alive = live_servers(store, me)
    report: dict[str, list[str]] = {"failed": [], "released": [], "removed": [], "adopted": [], "waiting": []}
    for job in store.with_status(ACTIVE):
        if job.owner is None or job.owner in alive:
            continue
        taken = adopt(job) if adopt is not None else False
        if taken:
            report["adopted"].append(job.id)
            continue
        if taken is None:
            report["waiting"].append(job.id)
            continue
        if job.status == "running":
            if store.transition(job.id, ["running"], "error", attempt=job.attempt, finished_at=utcnow()):
                store.add_log(job.id, "error", RESTARTED if adopt is None else LOST, code="ServerRestarted")
                report["failed"].append(job.id)
        elif store.requeue(job.id, ["queued"]):
            report["released"].append(job.id)
    for server in store.servers():
        if server.id not in alive:
            store.forget_server(server.id)
    jobs = {job.id: job for job in store.with_status(("created", "queued", "running", "canceled", "finished", "error"))}
    for name in storage.names():
        job_id = name.split(TMP_MARK)[0]
        if not job_id.startswith("j-"):
            continue
        job = jobs.get(job_id)
        busy = job is not None and job.status in ACTIVE and (job.owner in alive or job.id in report["waiting"])
        if TMP_MARK in name and not busy:
            storage.discard(name)
            report["removed"].append(name)
        elif TMP_MARK not in name and (job is None or job.status != "finished") and not busy:
            storage.discard(name)
            report["removed"].append(name)
    for job_id in report["failed"]:
        log.warning("job %s was running in a terracube server that stopped: marked error", job_id)
    if report["released"] or report["removed"]:
        log.info("recovery: released %s, removed %s", report["released"], report["removed"][:10])
    return report


def server_identity() -> tuple[str, str, int]:
    import secrets

    return f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}", HOST, os.getpid()

