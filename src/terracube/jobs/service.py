"""The job service: the API side of batch jobs, between the store and Dask.

One background thread (the *manager*) owns every status change after ``queued``: it submits
queued jobs to Dask within the concurrency limits, turns the workers' events (started, log
records, progress) into store updates, and finishes jobs when their futures complete. HTTP
handlers only read the store, create and queue jobs, and cancel; the API's event loop never waits
on a job.

Several API servers may share one database (uvicorn workers, replicas): a server claims a
queued job in the store before submitting it, so each job runs once, and only the owner handles
its events; a cancel or delete through another server reaches the owner through the store (and the
cluster at once through the job's cancel event, on a shared scheduler). Restart behaviour is
``recovery.py``'s: on a shared Dask cluster a live server takes over the jobs of one that died
(``adoption.py``); otherwise jobs running in a server that died end in ``error`` with a log entry,
queued ones run. On a clean shutdown, running jobs on a shared cluster are handed over in the same
way (their work goes on); elsewhere they are stopped and put back in the queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from terracube.jobs import adoption
from terracube.jobs.adoption import Adoption
from terracube.jobs.recovery import HEARTBEAT_SECONDS, recover, server_identity
from terracube.jobs.signing import UrlSigner
from terracube.jobs.storage import ResultStorage, results_root
from terracube.jobs.store import ACTIVE, Job, JobStore, utcnow
from terracube.jobs.udp_store import UdpStore
from terracube.jobs.worker import TOPIC, JobError, JobOutcome, JobTask, cancel_event_name, run_job
from terracube.settings import Settings
from terracube.usage import Usage

log = logging.getLogger("terracube.jobs")

SHUTDOWN = "terracube was shut down while this job was running; it is queued again and runs when terracube starts."


@dataclass
class Active:
    """A job submitted to Dask by this server."""

    job_id: str
    attempt: int
    user_id: str
    tmp_name: str
    future: Any = None
    submitted: float = field(default_factory=time.monotonic)
    started: int = 0
    logs_received: int = 0
    # A run taken over from a server that died: the worker events already handled (adoption.py).
    seen: set | None = None


class JobService(Adoption):
    def __init__(self, settings: Settings):
        self.settings = settings
        self.store: JobStore | None = None
        # User-defined processes live in the same database; the API reaches them as app.state.udps.
        self.udps: UdpStore | None = None
        self.storage = ResultStorage(results_root(settings))
        self.signer: UrlSigner | None = None
        self.id, self.host, self.pid = server_identity()
        self.client = None
        self.cluster = None
        self.max_jobs = max(1, settings.max_concurrent_jobs)
        self.max_jobs_per_user = max(1, settings.max_concurrent_jobs_per_user)
        # Called with (user_id, job_id, Usage) after every run, canceled ones too: the app records
        # it for the quotas (api/jobs.py). The jobs room knows nothing of accounts.
        self.on_usage: Callable[[str, str, Usage], None] | None = None
        self._active: dict[str, Active] = {}
        self._stopping: dict[tuple[str, int], Active] = {}
        # Stopped runs whose task was dropped before its worker answered: until when their late log
        # events (the worker's "Cancel requested") still go into the job's log.
        self._lingering: dict[tuple[str, int], float] = {}
        self._lock = threading.RLock()
        self._inbox: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._cancel_events: list[tuple[float, str, int]] = []
        self._connecting = False
        self.dask_error: str | None = None
        # Whether the server has accounts (the app sets it: api/jobs.install); a job submitted then
        # runs its UDFs confined by bubblewrap or not at all.
        self.accounts_mode: Callable[[], bool] = lambda: False

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, settings: Settings | None = None) -> "JobService":
        """Open the store, recover from a crash, start the manager; Dask connects in the background."""
        if settings is not None:
            self.settings = settings
        self.store = JobStore.from_settings(self.settings)
        self.store.migrate()
        self.udps = UdpStore(self.store)
        self.signer = UrlSigner.from_settings(self.settings)
        self.store.register_server(self.id, self.host, self.pid)
        report = recover(self.store, self.storage, me=self.id, adopt=self._adopter())
        self._spawn(self._manage, "terracube-jobs")
        if report["waiting"] or self.store.with_status(["queued"]):
            self.connect()  # queued jobs to run, or a dead server's jobs to take over once Dask answers
        return self

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        with self._lock:
            for active in list(self._active.values()):
                if self._hand_over(active):
                    continue  # another server takes it over once this one has left the store (forget_server)
                self._stop_on_cluster(active)
                if self.store.requeue(active.job_id, ACTIVE):
                    self.store.add_log(active.job_id, "warning", SHUTDOWN)
            self._active.clear()
        if self.store is not None:
            self.store.forget_server(self.id)
        for closeable in (self.client, self.cluster):
            try:
                if closeable is not None:
                    closeable.close()
            except Exception:
                log.debug("closing %s failed", closeable, exc_info=True)
        if self.store is not None:
            self.store.close()

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- Dask ------------------------------------------------------------------------------
    def connect(self) -> None:
        """Start connecting to Dask, once: on the first job, not with the server (a LocalCluster costs a second)."""
        with self._lock:
            if self._connecting:
                return
            self._connecting = True
        self._spawn(self._connect, "terracube-dask-connect")

    def _connect(self) -> None:
        """Connect to ``TERRACUBE_DASK_SCHEDULER`` or start a LocalCluster; retry until it works."""
        from distributed import Client, LocalCluster

        address = self.settings.dask_scheduler
        delay = 1.0
        while not self._stop.is_set():
            try:
                if address:
                    client = Client(address, set_as_default=False, timeout="20s")
                else:
                    processes = self.settings.dask_processes
                    if not processes:
                        # In-process workers log through this process's handlers: keep them to warnings.
                        logging.getLogger("distributed").setLevel(logging.WARNING)
                    self.cluster = LocalCluster(
                        n_workers=self.settings.dask_workers,
                        threads_per_worker=self.settings.dask_threads_per_worker,
                        processes=processes,
                        memory_limit=self.settings.dask_memory_limit,
                        dashboard_address=self.settings.dask_dashboard_address,
                        silence_logs=logging.WARNING,
                    )
                    client = Client(self.cluster, set_as_default=False)
                client.subscribe_topic(TOPIC, lambda event: self._inbox.put(("event", event[1])))
                self.client = client
                self.dask_error = None
                log.info("jobs run on Dask scheduler %s", client.scheduler.address)
                self._inbox.put(("dispatch",))
                return
            except Exception as error:
                self.dask_error = f"{type(error).__name__}: {error}"
                log.warning("cannot reach the Dask scheduler %s (%s); retrying in %.0f s", address or "(local)", error, delay)
                if delay == 1.0:  # say it once per outage in every waiting job's log, not only the server's
                    for job in self.store.with_status(["queued"]):
                        message = f"The Dask scheduler {address or '(local cluster)'} cannot be reached ({self.dask_error}); the job waits for it."
                        self.store.add_log(job.id, "warning", message, attempt=job.attempt)
                self._stop.wait(delay)
                delay = min(delay * 2, 30)

    def wait_ready(self, timeout: float = 60) -> bool:
        self.connect()
        deadline = time.monotonic() + timeout
        while self.client is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.client is not None

    # --- the manager thread ----------------------------------------------------------------
    def wake(self) -> None:
        self._inbox.put(("dispatch",))

    def _manage(self) -> None:
        last_dispatch = last_beat = last_check = 0.0
        while not self._stop.is_set():
            if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                last_beat = time.monotonic()
                try:
                    self.store.heartbeat(self.id)
                    # Other servers die too: their jobs are taken over, failed or released, as at startup.
                    report = recover(self.store, self.storage, me=self.id, adopt=self._adopter())
                    if self.client is not None:
                        if self._cancel_events:
                            self._clear_cancel_events()
                        adoption.sweep(self.client, self.store)
                    if not self._connecting and (report["waiting"] or self.store.with_status(["queued"])):
                        self.connect()  # released by a dead server, queued by another one, or to take over
                except Exception:
                    log.exception("heartbeat or recovery failed")
            if time.monotonic() - last_check > 1.0:
                last_check = time.monotonic()
                try:
                    self._forget_stopped()
                    self._follow_store()
                except Exception:
                    log.exception("checking this server's jobs in the store failed")
            try:
                message = self._inbox.get(timeout=0.5)
            except queue.Empty:
                message = None
            try:
                if message is not None and message[0] == "event":
                    self._on_event(message[1])
                elif message is not None and message[0] == "done":
                    self._on_done(*message[1:])
                if message is None or message[0] == "dispatch" or time.monotonic() - last_dispatch > 2:
                    self._dispatch()
                    last_dispatch = time.monotonic()
            except Exception:
                log.exception("the job manager failed handling %s", message and message[0])

    def _dispatch(self) -> None:
        if self.client is None:
            return
        with self._lock:
            if len(self._active) >= self.max_jobs:
                return
            per_user = Counter(self.store.active_by_user())
            for job in self.store.with_status(["queued"]):
                if len(self._active) >= self.max_jobs:
                    break
                if job.owner is not None or job.id in self._active or per_user[job.user_id] >= self.max_jobs_per_user:
                    continue
                if self.store.claim(job.id, job.attempt, self.id):
                    self._submit(job)
                    per_user[job.user_id] += 1

    def _submit(self, job: Job) -> None:
        tmp_name = self.storage.tmp_name(job.id)
        # The worker has no database: the user-defined processes the graph calls travel with the task.
        udps = self.udps.snapshot(job.user_id, job.process)
        task = JobTask(
            job.id, job.attempt, job.process, self.settings, self.storage.root, tmp_name, udps, job.user_id,
            udf_sandbox_required=self.accounts_mode(),
        )
        active = Active(job.id, job.attempt, job.user_id, tmp_name)
        key = f"terracube-job-{job.id}-{job.attempt}-{self.id.rsplit(':', 1)[-1]}"
        active.future = self.client.submit(run_job, task, key=key, pure=False)
        self._active[job.id] = active
        active.future.add_done_callback(lambda future: self._inbox.put(("done", job.id, job.attempt, future)))
        try:
            # The scheduler keeps the task for the job, not only for this server: if this server dies, it goes on.
            adoption.publish(self.client, active.future, job.id, job.attempt)
        except Exception:
            log.warning("could not publish the task of job %s: it ends if this server dies", job.id, exc_info=True)
        self.store.add_log(job.id, "debug", f"Submitted to the Dask scheduler {self.client.scheduler.address} by terracube server {self.id}.", attempt=job.attempt)

    def _watch(self, job: Job, future: Any, seen: set | None = None) -> Active:
        """Watch another server's run of ``job`` as this server's own (adoption.Adoption)."""
        active = Active(job.id, job.attempt, job.user_id, "", future=future, seen=seen)
        with self._lock:
            self._active[job.id] = active
        future.add_done_callback(lambda done: self._inbox.put(("done", job.id, job.attempt, done)))
        return active

    def _on_event(self, message: dict) -> None:
        job_id, attempt, kind = message.get("job_id"), message.get("attempt"), message.get("kind")
        with self._lock:
            active = self._active.get(job_id)
            if active is None or active.attempt != attempt:
                active = self._stopping.get((job_id, attempt))
            if active is None:
                return  # another server's job on a shared scheduler, or a run this server gave up
            if active.seen is not None:  # taken over: handled already if read back from the scheduler
                key = adoption.event_key(message)
                if key in active.seen:
                    return
                active.seen.add(key)
            if kind == "log":
                active.logs_received += 1
        when = datetime.fromtimestamp(message.get("time") or time.time(), timezone.utc)
        if kind == "log":
            self.store.add_log(
                job_id, message.get("level", "info"), str(message.get("message", "")), attempt=attempt,
                node_id=message.get("node_id"), code=message.get("code"), time=when,
            )
        elif kind == "started":
            with self._lock:
                active.started += 1
                again = active.started > 1
            if again:
                self.store.add_log(job_id, "warning", f"The Dask worker running this job was lost; Dask started it again on {message.get('worker')}.", attempt=attempt)
            self.store.transition(job_id, ["queued"], "running", attempt=attempt, started_at=when, progress=0.0)
        elif kind == "progress":
            self.store.transition(job_id, ["running"], "running", attempt=attempt, progress=float(message.get("progress", 0)))

    def _on_done(self, job_id: str, attempt: int, future: Any) -> None:
        try:
            self._record_outcome(job_id, attempt, future)
        finally:
            if self.client is not None:
                adoption.unpublish(self.client, job_id, attempt)  # recorded: the scheduler may forget the task

    def _record_outcome(self, job_id: str, attempt: int, future: Any) -> None:
        with self._lock:
            stopped = self._stopping.get((job_id, attempt))
            active = self._active.get(job_id)
            current = stopped is None and active is not None and active.attempt == attempt and active.future is future
        outcome = self._outcome(future)
        watched = stopped or (active if current else None)
        if watched is not None:
            self._record_usage(watched, outcome)
            # The run's log events travel apart from its result: the last ones (its cancel, its usage) still count.
            self._await_logs(watched, outcome.logs_sent)
        with self._lock:
            if stopped is not None and not outcome.logs_sent:
                self._lingering[(job_id, attempt)] = time.monotonic() + 30
            else:
                self._stopping.pop((job_id, attempt), None)
            current = current and self._active.get(job_id) is active  # not canceled meanwhile
            if current:
                del self._active[job_id]
        if not current:
            # Canceled, deleted or superseded: whatever it wrote goes.
            if outcome.tmp_name:
                self.storage.discard(outcome.tmp_name)
            return
        self._finish(active, outcome)
        self.wake()

    def _forget_stopped(self) -> None:
        with self._lock:
            for key, until in list(self._lingering.items()):
                if time.monotonic() > until:
                    del self._lingering[key]
                    self._stopping.pop(key, None)

    def _record_usage(self, active: Active, outcome: JobOutcome) -> None:
        if self.on_usage is None or not outcome.usage:
            return
        try:
            self.on_usage(active.user_id, active.job_id, Usage.from_openeo(outcome.usage))
        except Exception:
            log.exception("could not record the usage of job %s", active.job_id)

    def _await_logs(self, active: Active, expected: int, timeout: float = 3.0) -> None:
        """Handle the job's log events still on their way (they travel apart from the result)."""
        deadline, later = time.monotonic() + timeout, []
        while active.logs_received < expected and time.monotonic() < deadline:
            try:
                message = self._inbox.get(timeout=0.05)
            except queue.Empty:
                continue
            if message[0] == "event":
                self._on_event(message[1])
            else:
                later.append(message)
        for message in later:
            self._inbox.put(message)

    def _outcome(self, future: Any) -> JobOutcome:
        try:
            return future.result(timeout=60)
        except CancelledError:
            return JobOutcome.failed("Internal", "The Dask cluster canceled this job's task (a lost scheduler connection or a cluster restart).")
        except Exception as error:
            name = type(error).__name__
            if name == "KilledWorker":
                message = f"The Dask workers running this job died repeatedly ({error}); it may need more memory than a worker has."
            else:
                message = f"The job could not run on the Dask cluster: {name}: {error}"
            return JobOutcome.failed("Internal", message)

    def _finish(self, active: Active, outcome: JobOutcome) -> None:
        job_id, attempt = active.job_id, active.attempt
        usage = outcome.usage
        now = utcnow()
        if outcome.status == "finished":
            try:
                self.storage.publish(outcome.tmp_name, job_id, [asset["name"] for asset in outcome.assets])
            except Exception as error:
                log.exception("could not move the results of %s into place", job_id)
                outcome = JobOutcome.failed("StorageFailure", f"The results could not be stored: {error}")
        if outcome.status == "finished":
            results = {"assets": outcome.assets, "derived_from": outcome.derived_from}
            done = self.store.transition(job_id, ACTIVE, "finished", attempt=attempt, progress=100.0, finished_at=now, usage=usage, results=results)
            if done:
                names = ", ".join(a["name"] for a in outcome.assets) or "no files"
                self.store.add_log(job_id, "info", f"Job finished: {names}.", attempt=attempt)
            else:
                self.storage.discard(job_id)
        elif outcome.status == "canceled":
            self.store.transition(job_id, ACTIVE, "canceled", attempt=attempt, finished_at=now, usage=usage)
        else:
            error = outcome.error or JobError("Internal", "The job failed.")
            self.store.add_log(job_id, "error", error.message, attempt=attempt, code=error.code, node_id=error.node_id)
            self.store.transition(job_id, ACTIVE, "error", attempt=attempt, finished_at=now, usage=usage)
        if job_id not in self._active:
            self.storage.discard_partial(job_id)

    # --- requests from the API -------------------------------------------------------------
    def start_job(self, job_id: str) -> bool:
        """created/finished/error/canceled -> queued; discards earlier results. False if already active."""
        attempt = self.store.queue(job_id)
        if attempt is None:
            return False
        # Queued first, so the old results stop being served before they are deleted.
        self.storage.discard(job_id)
        self.connect()
        self.store.add_log(job_id, "info", "Job queued." + ("" if self.client else " Waiting for the Dask cluster."), attempt=attempt)
        self.wake()
        return True

    def cancel_job(self, job_id: str) -> None:
        """Stop the work on the cluster; a running job becomes canceled, a queued one created again."""
        with self._lock:
            job = self.store.get(job_id)
            if job.status not in ACTIVE:
                return
            active = self._active.pop(job_id, None)
            if active is not None:
                self._stop_on_cluster(active)
                self._stopping[(job_id, active.attempt)] = active
            elif job.owner is not None and self.client is not None:
                # Another server runs it: on a shared scheduler its worker stops at once; the owner
                # also sees the new status in the store (_follow_store) and lets the task go.
                self._signal_cancel(job_id, job.attempt)
            status = "canceled" if job.status == "running" else "created"
            if self.store.transition(job_id, ACTIVE, status, attempt=job.attempt, finished_at=utcnow() if status == "canceled" else None):
                self.store.add_log(job_id, "info", "Job canceled by the user." if status == "canceled" else "Job taken out of the queue by the user.", attempt=job.attempt)
        self.wake()

    def delete_job(self, job_id: str) -> None:
        self.cancel_job(job_id)
        self.store.delete(job_id)
        self.storage.discard(job_id)
        with self._lock:
            pending = any(key[0] == job_id for key in self._stopping)
        if not pending:
            self.storage.discard_partial(job_id)

    def _stop_on_cluster(self, active: Active) -> None:
        if self.client is None or active.future is None:
            return
        self._signal_cancel(active.job_id, active.attempt)
        adoption.unpublish(self.client, active.job_id, active.attempt)  # else the scheduler keeps the task wanted
        try:
            active.future.cancel()
        except Exception:
            log.warning("could not cancel job %s on the cluster", active.job_id, exc_info=True)

    def _signal_cancel(self, job_id: str, attempt: int) -> None:
        """Set the run's cancel event on the scheduler: its worker stops the job's computations."""
        try:
            from distributed import Event

            Event(cancel_event_name(job_id, attempt), client=self.client).set()
            self._cancel_events.append((time.monotonic(), job_id, attempt))
        except Exception:
            log.warning("could not signal the cancel of job %s to the cluster", job_id, exc_info=True)

    def _clear_cancel_events(self) -> None:
        """Cancel events live on the scheduler; a few minutes is long enough for any worker to see one."""
        from distributed import Event

        with self._lock:
            old = [entry for entry in self._cancel_events if time.monotonic() - entry[0] > 300]
            self._cancel_events = [entry for entry in self._cancel_events if entry not in old]
        for _, job_id, attempt in old:
            try:
                Event(cancel_event_name(job_id, attempt), client=self.client).clear()
            except Exception:
                pass

    def status(self) -> dict[str, Any]:
        with self._lock:
            active = list(self._active)
        return {"dask": getattr(self.client, "scheduler", None) and self.client.scheduler.address, "active_jobs": active, "dask_error": self.dask_error}
