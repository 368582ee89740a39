"""What runs on a Dask worker for one batch job: ``run_job``, a pure function of its ``JobTask``.

It calls the one execution path (``terracube.execute.execute``) into a temporary directory
under the results root and returns a ``JobOutcome``, what it wrote or why it failed; the API side
(``service.py``) moves the directory into place and records the outcome. The worker never touches
the job database: it reports ``started``, log records and progress as Dask events (topic
``terracube-jobs``), so a worker needs the data and the results root, never database credentials.

The graph's own dask computations run from a thread of their own, in one of two ways:
- on a cluster of its own (``TERRACUBE_DASK_SCHEDULER``, or worker processes), through a client
  dedicated to this job. That client is what makes cancel real: when the API sets the job's cancel
  ``Event``, the watcher cancels the client's futures and closes it, so the cluster stops working
  on the job within a task's time;
- on the LocalCluster of threads inside the server (laptop mode's default), on dask's threaded
  scheduler, as a synchronous ``/result`` computes: the distributed scheduler in the same process
  only adds its dispatch to every task (a job took 1.5x the synchronous time, its threads busy
  56 % of it). Cancel is then the synchronous path's ``Cancellation``, checked before each task.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dask.system import CPU_COUNT

from terracube.data.catalog import Catalog
from terracube.errors import OpenEOError
from terracube.execute import Cancellation, Execution, execute, request_env, sync_compute
from terracube.graph.udp import lookup_in
from terracube.jobs.assets import derived_from, describe_file
from terracube.jobs.storage import ResultStorage
from terracube.settings import Settings
from terracube.usage import Meter, Usage

TOPIC = "terracube-jobs"
log = logging.getLogger("terracube.jobs")

_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning"}
_catalogs: dict[str, Catalog] = {}
_catalogs_lock = threading.Lock()


@dataclass
class JobTask:
    job_id: str
    attempt: int
    process: dict
    settings: Settings  # plain data: pickles to the worker
    results_root: str
    tmp_name: str
    # The user-defined processes the graph calls, {id: document}, as they were when the job started.
    udps: dict | None = None
    user_id: str | None = None  # whose uploaded files load_uploaded_files reads
    udf_sandbox_required: bool = False  # submitted with accounts: run_udf confined by bubblewrap, or refused


@dataclass(frozen=True)
class JobError:
    """Why a job failed, as its error log entry shows it."""

    code: str
    message: str
    node_id: str | None = None


@dataclass(frozen=True)
class JobOutcome:
    """What ``run_job`` answers (it travels back from the worker pickled): how the run ended.

    ``finished``: the results are in ``tmp_name`` under the results root, described by ``assets``
    and ``derived_from`` (the STAC items read). ``error``: ``error`` says why. ``canceled``: the user
    stopped it. ``logs_sent`` counts the log events the worker sent, so the API can wait for them
    and "Job finished" is the last entry.
    """

    status: Literal["finished", "error", "canceled"]
    usage: dict[str, Any] | None = None
    logs_sent: int = 0
    tmp_name: str | None = None
    assets: list[dict[str, Any]] = field(default_factory=list)
    derived_from: list[dict[str, Any]] = field(default_factory=list)
    error: JobError | None = None

    @classmethod
    def failed(cls, code: str, message: str, **fields: Any) -> "JobOutcome":
        return cls("error", error=JobError(code, message), **fields)


def cancel_event_name(job_id: str, attempt: int) -> str:
    return f"terracube-cancel-{job_id}-{attempt}"


def catalog_for(settings: Settings) -> Catalog:
    """One catalog per worker process and settings: a static catalog is read once, not per job."""
    key = settings.model_dump_json()
    with _catalogs_lock:
        if key not in _catalogs:
            _catalogs[key] = Catalog(settings)
        return _catalogs[key]


class _Reporter:
    """Sends the job's events to the API through the scheduler; never raises."""

    def __init__(self, task: JobTask, worker: Any):
        self.task = task
        self.worker = worker
        self.logs_sent = 0

    def send(self, kind: str, **payload: Any) -> None:
        message = {"kind": kind, "job_id": self.task.job_id, "attempt": self.task.attempt, "time": time.time(), **payload}
        try:
            self.worker.log_event(TOPIC, message)
        except Exception:  # the scheduler going away must not turn a result into an error
            log.debug("could not report %s for %s", kind, self.task.job_id, exc_info=True)

    def log(self, level: str, message: str, node_id: str | None = None, code: str | None = None) -> None:
        self.logs_sent += 1
        self.send("log", level=level, message=message, node_id=node_id, code=code)


class _ThreadLogHandler(logging.Handler):
    """Forwards terracube's log records from the job's own thread into the job's log."""

    def __init__(self, reporter: _Reporter, thread_id: int):
        super().__init__(logging.INFO)
        self.reporter = reporter
        self.thread_id = thread_id
        self.loading = False

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread_id:
            return
        level = _LEVELS.get(record.levelno, "error")
        node_id = getattr(record, "node_id", None)
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        self.reporter.log(level, message, node_id=node_id)
        if record.name == "terracube.process" and not self.loading:
            self.loading = True  # a process reports (load_collection found its scenes): pixels come next
            self.reporter.send("progress", progress=10.0)


def _set_current_client(client: Any) -> None:
    """Make ``client`` the one dask computations in *this thread* go to, without global config.

    ``Client.as_current`` would also set ``scheduler="dask.distributed"`` in the process-wide
    dask config, which would redirect other threads' work (``/result`` in the same process)."""
    try:
        from distributed.client import _current_client

        _current_client.set(client)
    except ImportError:  # pragma: no cover - an older/newer distributed: fall back to the public API
        client.as_current().__enter__()


def on_server_threads(settings: Settings) -> bool:
    """Whether jobs run in the server's own process (a LocalCluster of threads, no external scheduler):
    their graphs then compute on dask's threaded scheduler rather than through the cluster."""
    return not settings.dask_scheduler and not settings.dask_processes


def _threads(settings: Settings) -> int:
    """As many threads as the LocalCluster has. Never dask's default: outside the main thread that
    is the cores plus four, and six threads on two cores took 0.9 GiB more for the regional job."""
    return settings.dask_workers * (settings.dask_threads_per_worker or CPU_COUNT)


def run_job(task: JobTask) -> JobOutcome:
    from distributed import Client, Event, Future, get_worker, secede

    worker = get_worker()
    reporter = _Reporter(task, worker)
    meter = Meter(Usage())
    reporter.send("started", worker=str(worker.address))
    reporter.log("info", f"Job started on Dask worker {worker.address} (run {task.attempt}).")
    key = worker.get_current_task()
    # This task only waits: give its thread slot back so the graph's tasks can use it.
    secede()
    storage = ResultStorage(task.results_root)
    directory = Path(storage.location(task.tmp_name)) if storage.local else Path(tempfile.mkdtemp(prefix="terracube-job-"))
    # A retry after a lost worker starts clean: nothing of the dead run is published.
    shutil.rmtree(directory, ignore_errors=True)
    done: dict[str, Any] = {}  # what the graph's thread left: ok, then assets and derived_from, or error
    succeeded = False
    client = Client(worker.scheduler.address, set_as_default=False, timeout="30s")
    cancel = Event(cancel_event_name(task.job_id, task.attempt), client=client)
    threads_here = on_server_threads(task.settings)
    cancellation = Cancellation()
    compute = sync_compute(cancellation, _threads(task.settings)) if threads_here else {}

    ready = threading.Event()

    def work() -> None:
        if not threads_here:
            _set_current_client(client)
        ready.wait(10)  # until the log handler knows this thread
        try:
            catalog = catalog_for(task.settings)
            reporter.log("info", "Evaluating the process graph.")
            execution = execute_graph(task, catalog, directory, meter.usage, compute)
            reporter.send("progress", progress=90.0)
            assets = [describe_file(path, path.relative_to(directory).as_posix(), media) for path, media in execution.files]
            done.update(ok=True, assets=assets, derived_from=derived_from(task.process, catalog))
        except BaseException as error:  # reported, never raised: a user error is not a worker failure
            done.update(ok=False, error=error)

    thread = threading.Thread(target=work, name=f"terracube-job-{task.job_id}", daemon=True)
    handler = None
    try:
        meter.__enter__()  # from here on every way out goes through _measured, which stops it
        thread.start()
        handler = _ThreadLogHandler(reporter, thread.ident)
        _attach(handler)
        ready.set()
        canceled = False
        while thread.is_alive():
            thread.join(0.5)
            if thread.is_alive() and not canceled and (cancel.is_set() or _released(worker, key)):
                canceled = True
                reporter.log("info", "Cancel requested: stopping the job's computations on the cluster.")
                cancellation.cancel("the job was canceled")
                client.cancel([Future(key, client) for key in list(client.futures)], force=True)
                client.close(timeout=10)
                thread.join(30)
                if threads_here:
                    reporter.log("info", "The job's computations stopped." if cancellation.seen and not thread.is_alive()
                                 else "The job's computations did not stop within 30 s of the cancel.")
                break
        if canceled:
            return JobOutcome("canceled", usage=_measured(meter, reporter), logs_sent=reporter.logs_sent)
        if not done.get("ok"):
            return _failure(done.get("error"), task, _measured(meter, reporter), reporter.logs_sent)
        if not storage.local:
            storage.upload(directory, task.tmp_name)
        succeeded = True
        measured = _measured(meter, reporter)
        return JobOutcome(
            "finished", usage=measured, logs_sent=reporter.logs_sent,
            tmp_name=task.tmp_name, assets=done["assets"], derived_from=done["derived_from"],
        )
    except BaseException as error:
        return _failure(error, task, _measured(meter, reporter), reporter.logs_sent)
    finally:
        meter.__exit__(None, None, None)  # no sampling thread outlives the job, whatever happened
        if handler is not None:
            _detach(handler)
        try:
            client.close(timeout=10)
        except Exception:
            pass
        if not succeeded or not storage.local:
            shutil.rmtree(directory, ignore_errors=True)


def _released(worker: Any, key: Any) -> bool:
    """Whether the scheduler no longer wants this task: its client (the API) canceled it or went away."""
    try:
        state = worker.state.tasks.get(key)
        return state is None or state.state in ("cancelled", "released", "forgotten")
    except Exception:
        return False


def _measured(meter: Meter, reporter: _Reporter) -> dict[str, Any]:
    """Stop measuring (once), say it in the job's log, and give the figures in the openEO form."""
    if not meter.done:
        meter.__exit__(None, None, None)
        reporter.log("info", meter.usage.sentence())
    return meter.usage.openeo()


def execute_graph(task: JobTask, catalog: Catalog, directory: Path, usage: Usage | None = None,
                  compute: dict[str, Any] | None = None) -> Execution:
    """The one path /result takes too, with the job owner's files; batch jobs have no pixel limit.

    The loads count the pixels they read into ``usage``; ``compute``: how its pixels are computed
    (``ProcessEnv.compute``; empty: on the current Dask client)."""
    directory.mkdir(parents=True, exist_ok=True)
    env = request_env(task.settings, catalog, user_id=task.user_id, accounts=task.udf_sandbox_required)
    if usage is not None:
        env = dataclasses.replace(env, usage=usage)
    if compute:
        env = dataclasses.replace(env, compute=compute)
    return execute(task.process, env, directory, udps=lookup_in(task.udps))


def _failure(error: BaseException | None, task: JobTask, usage: dict[str, Any], logs_sent: int) -> JobOutcome:
    if isinstance(error, OpenEOError):
        detail = JobError(error.code, error.message, getattr(error, "node_id", None))
    else:
        # A bug or an infrastructure problem: one clear line for the user, the traceback for the operator.
        log.error("job %s failed:\n%s", task.job_id, "".join(traceback.format_exception(error)) if error else "no outcome")
        name = type(error).__name__ if error else "Error"
        detail = JobError("Internal", f"The job failed on the server: {name}: {error}")
    return JobOutcome("error", usage=usage, logs_sent=logs_sent, error=detail)


_attached: list[logging.Handler] = []
_attach_lock = threading.Lock()


def _attach(handler: logging.Handler) -> None:
    logger = logging.getLogger("terracube")
    with _attach_lock:
        if logger.getEffectiveLevel() > logging.INFO:
            # Records below the logger's level are never created; jobs want the INFO ones.
            logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        _attached.append(handler)


def _detach(handler: logging.Handler) -> None:
    with _attach_lock:
        logging.getLogger("terracube").removeHandler(handler)
        if handler in _attached:
            _attached.remove(handler)
