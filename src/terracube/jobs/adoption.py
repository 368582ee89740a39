"""A job's work on a shared Dask cluster outlives the API server that submitted it.

A Dask task lives as long as some client wants its result; the server that submitted a job is
such a client, and when it dies (``kill -9``, a lost machine) or is shut down (SIGTERM, a rolling
update: ``_hand_over``) the scheduler would drop the job's task and its worker would stop. So
every job's task is also *published* on the scheduler as a named dataset
(``terracube-job-<id>-<attempt>``): the scheduler keeps wanting it, the worker goes on, and
another server that shares the scheduler and the database takes the job over (recovery.py finds
the dead owner, ``JobService._adopt`` takes the dataset's future and watches it as its own),
publishes the results and records the outcome. The owner unpublishes the dataset once it has
recorded the outcome; ``sweep`` removes what a dead server left.

The job's events travel from its worker to every server subscribed to the topic, and the
scheduler keeps a log of them: the events the dead owner never recorded are read back from there
(``missed_events``), so the job's log has no hole.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable

from terracube.jobs.store import ACTIVE, Job, JobStore
from terracube.jobs.worker import TOPIC

log = logging.getLogger("terracube.jobs")

PREFIX = "terracube-job-"


def dataset_name(job_id: str, attempt: int) -> str:
    return f"{PREFIX}{job_id}-{attempt}"


def publish(client: Any, future: Any, job_id: str, attempt: int) -> None:
    client.publish_dataset(future, name=dataset_name(job_id, attempt), override=True)


def unpublish(client: Any, job_id: str, attempt: int) -> None:
    try:
        client.unpublish_dataset(dataset_name(job_id, attempt))
    except Exception:
        log.debug("could not unpublish the task of job %s", job_id, exc_info=True)


def published(client: Any, job_id: str, attempt: int) -> Any | None:
    """The future of the job's task if the scheduler still holds it, bound to ``client``; else None."""
    return client.get_dataset(dataset_name(job_id, attempt), default=None)


def sweep(client: Any, store: JobStore) -> list[str]:
    """Unpublish the tasks of runs that are over (canceled through another server, failed, deleted)."""
    try:
        names = [name for name in client.list_datasets() if isinstance(name, str) and name.startswith(PREFIX)]
    except Exception as error:  # the scheduler not reachable now: next time
        log.debug("could not list the scheduler's published tasks: %s", error)
        return []
    current = {dataset_name(job.id, job.attempt) for job in store.with_status(ACTIVE)}
    gone = [name for name in names if name not in current]
    for name in gone:
        try:
            client.unpublish_dataset(name)
        except Exception:
            log.debug("could not unpublish %s", name, exc_info=True)
    return gone


def event_key(message: dict) -> tuple:
    """Two deliveries of one worker event (live, and read back from the scheduler) have the same key."""
    return (message.get("kind"), message.get("time"), message.get("message"))


def event_time(message: dict) -> datetime:
    """When the worker sent the event, as the job's log stores it."""
    return datetime.fromtimestamp(message.get("time") or 0, timezone.utc)


def missed_events(client: Any, job_id: str, attempt: int) -> list[dict]:
    """The events of this run of the job that the scheduler still keeps, oldest first."""
    events = client.get_events(TOPIC)
    return [message for _, message in events if isinstance(message, dict) and message.get("job_id") == job_id and message.get("attempt") == attempt]


HANDED_OVER = (
    "terracube server {server} was shut down while watching this job; its work goes on on the Dask cluster, "
    "and another terracube server takes it over."
)


class Adoption:
    """The part of ``JobService`` that deals with other servers' runs: taking over those of a dead
    server, handing its own over when it shuts down, and letting go of its own runs that another
    server canceled, restarted or deleted.

    Uses the service's ``settings``, ``store``, ``client``, ``id``, ``_lock``, ``_active``,
    ``_stopping``, ``_watch`` and ``_stop_on_cluster``.
    """

    def _adopter(self) -> Callable[[Job], bool | None] | None:
        """Adoption needs a scheduler shared with the dead server: a LocalCluster died with its server."""
        return self._adopt if self.settings.dask_scheduler else None

    def _adopt(self, job: Job) -> bool | None:
        """Take over the job of a dead server if the scheduler still holds its task (recovery.recover's ``adopt``)."""
        if self.client is None:
            return None
        try:
            future = published(self.client, job.id, job.attempt)
        except Exception as error:
            log.warning("cannot ask the Dask scheduler about job %s: %s", job.id, error)
            return None
        if future is None:
            return False
        if not self.store.take_over(job.id, job.attempt, job.owner, self.id):
            return None  # another server, or a cancel, got there first
        active = self._watch(job, future, seen=set())
        self.store.add_log(
            job.id, "warning",
            f"The terracube server watching this job ({job.owner}) stopped; terracube server {self.id} took this job over, "
            "and its work on the Dask cluster went on.",
            attempt=job.attempt,
        )
        self._catch_up(active)
        log.warning("took over job %s of the stopped server %s", job.id, job.owner)
        return True

    def _hand_over(self, active: Any) -> bool:
        """At a clean shutdown (SIGTERM: a rolling update, a scale-down), leave the job's work running
        on the shared cluster for another server to take over, as after a crash, rather than stopping
        it and starting it again from nothing. False when that cannot be (a cluster of this server's
        own, a job not on the cluster yet, a task the scheduler does not hold): it is queued again."""
        if not self.settings.dask_scheduler or self.client is None or active.future is None:
            return False
        try:
            if published(self.client, active.job_id, active.attempt) is None:
                return False
        except Exception as error:
            log.warning("cannot hand job %s over: the Dask scheduler did not answer (%s)", active.job_id, error)
            return False
        self.store.add_log(active.job_id, "info", HANDED_OVER.format(server=self.id), attempt=active.attempt)
        log.info("left job %s running on the Dask cluster for another server", active.job_id)
        return True

    def _catch_up(self, active: Any) -> None:
        """Record what the job's worker reported while no server watched it, from the scheduler's event log."""
        job_id, attempt = active.job_id, active.attempt
        try:
            events = missed_events(self.client, job_id, attempt)
        except Exception:
            log.warning("could not read the events of job %s back from the scheduler", job_id, exc_info=True)
            return
        stored = {(entry.message, entry.time) for entry in self.store.logs(job_id) if entry.attempt == attempt}
        for message in events:
            with self._lock:
                active.seen.add(event_key(message))
            kind, when = message.get("kind"), event_time(message)
            if kind == "log":
                active.logs_received += 1
                text = str(message.get("message", ""))
                if (text, when) not in stored:
                    self.store.add_log(
                        job_id, message.get("level", "info"), text, attempt=attempt, node_id=message.get("node_id"), code=message.get("code"), time=when,
                    )
            elif kind == "started":
                active.started += 1
                self.store.transition(job_id, ["queued"], "running", attempt=attempt, started_at=when, progress=0.0)
            elif kind == "progress":
                self.store.transition(job_id, ["running"], "running", attempt=attempt, progress=float(message.get("progress", 0)))

    def _follow_store(self) -> None:
        """Stop this server's runs that another server canceled, restarted or deleted (the store says so)."""
        with self._lock:
            actives = list(self._active.values())
        if not actives:
            return
        states = self.store.states(active.job_id for active in actives)
        for active in actives:
            state = states.get(active.job_id)
            if state is not None and state[0] in ACTIVE and state[1] == active.attempt:
                continue
            with self._lock:
                if self._active.get(active.job_id) is not active:
                    continue
                del self._active[active.job_id]
                self._stop_on_cluster(active)
                self._stopping[(active.job_id, active.attempt)] = active
