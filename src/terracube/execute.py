"""The one execution path: validate, plan, evaluate lazily, then write.

Every caller takes it: ``POST /result`` (``execute_sync``), ``POST /validation`` (``validation_errors``),
``POST /jobs``, ``PATCH /jobs`` and ``PUT /process_graphs`` (``check_process``), the batch job worker
and the CLI's ``run`` and ``flood`` (``execute``), job estimates (``lazy_results``), and later map
tiles. They differ only in who waits and where the files go. Pixels are computed here, by the format
writers, and nowhere earlier.

``request_env`` is the one way to build the ``ProcessEnv`` a request runs with, so every caller gives
its processes the same things: the catalog, the settings and the user's files. ``execute_sync``
adds the synchronous pixel limit and measures the run (``terracube.usage``: CPU, memory, wall time;
the loads count the pixels they read into ``ProcessEnv.usage``). ``cancellable`` runs it so that a
``Cancellation`` (the time limit, a client gone, shutdown: ``api/sync_pool.py``) stops it at its
next dask task: every computation of the run gets the check with its ``dask.compute`` arguments
(``ProcessEnv.compute``, ``sync_compute``).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dask.system import CPU_COUNT
from rasterio.errors import RasterioIOError

from terracube.auth.user import LOCAL_USER
from terracube.data.catalog import Catalog
from terracube.data.stac_api import ArchiveUnavailable
from terracube.errors import OpenEOError
from terracube.files.store import user_files_dir
from terracube.formats import output_format, write_result
from terracube.graph.evaluate import evaluate_process_graph
from terracube.graph.model import ProcessGraph
from terracube.graph.plan import push_down_filters
from terracube.graph.udp import UdpLookup
from terracube.graph.validate import collect_errors, validate_process_graph
from terracube.processes.env import ProcessEnv, SavedResult
from terracube.settings import Settings
from terracube.usage import Meter, Usage

log = logging.getLogger("terracube.execute")


def request_env(settings: Settings, catalog: Catalog, *, user_id: str | None, accounts: bool = False) -> ProcessEnv:
    """The environment a request's processes run in, the same for every caller.

    ``user_id`` is whoever runs the graph: ``load_uploaded_files`` reads that user's ``/files``
    folder; None where there is no user (tests, benchmarks, the flood command's own graphs).
    ``accounts``: the server has accounts, so user code (``run_udf``) runs confined by bubblewrap or
    not at all. A user other than laptop mode's local user (``anonymous``) means the same, as such a
    user exists only where accounts do: a job queued with accounts stays confined whatever comes later.
    """
    files_dir = user_files_dir(settings, user_id) if user_id is not None else None
    confined = accounts or (user_id is not None and user_id != LOCAL_USER.user_id)
    return ProcessEnv(catalog=catalog, settings=settings, files_dir=files_dir, udf_sandbox_required=confined)


def validation_errors(process: Any, env: ProcessEnv, udps: UdpLookup | None = None) -> list[OpenEOError]:
    """Every error in ``process`` (a process document), empty when it is valid: ``/validation``'s answer."""
    return collect_errors(process, env=env, udps=udps)


def check_process(process: Any, env: ProcessEnv, udps: UdpLookup | None = None) -> None:
    """Raise the first error in ``process``: a graph is rejected when it is stored, not when it runs."""
    errors = validation_errors(process, env, udps)
    if errors:
        raise errors[0]


def lazy_results(process: Any, env: ProcessEnv, udps: UdpLookup | None = None) -> list[SavedResult]:
    """Validate, plan and evaluate: what the graph would write, as lazy cubes; no pixel is read.

    A graph without ``save_result`` answers with its result node's value as JSON, as other
    backends do. ``env`` is copied, so one environment can serve several runs.
    """
    env = dataclasses.replace(env, saved_results=[])
    graph = validate_process_graph(process, env=env, udps=udps)
    value = evaluate_process_graph(push_down_filters(graph), env=env, udps=udps)
    return list(env.saved_results) or [SavedResult(value, "JSON", {})]


def plan_process(process: Any, env: ProcessEnv, udps: UdpLookup | None = None, parameters: tuple[str, ...] = ()) -> ProcessGraph:
    """Validate and plan once, for a graph run many times with ``parameters`` given at each run (map tiles)."""
    graph = validate_process_graph(process, env=env, udps=udps, parameters=dict.fromkeys(parameters))
    return push_down_filters(graph)


def lazy_planned(graph: ProcessGraph, env: ProcessEnv, parameters: dict[str, Any], udps: UdpLookup | None = None) -> list[SavedResult]:
    """``lazy_results`` of a graph from ``plan_process``, with its run's parameters: what a map tile draws."""
    env = dataclasses.replace(env, saved_results=[])
    value = evaluate_process_graph(graph, env=env, udps=udps, parameters=parameters)
    return list(env.saved_results) or [SavedResult(value, "JSON", {})]


@dataclass
class Execution:
    """What a process graph produced: files in a directory, each with its media type."""

    directory: Path
    files: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0


def execute(process: Any, env: ProcessEnv, directory: Path, udps: UdpLookup | None = None) -> Execution:
    """Run ``process`` and write its results into ``directory``; ``udps`` finds the user-defined processes it may call."""
    started = time.perf_counter()
    results = lazy_results(process, env, udps)
    execution = Execution(directory)
    try:
        for result in results:
            fmt = output_format(result.format, internal=True)
            for path in write_result(result.data, fmt.name, result.options, directory, compute=env.compute):
                execution.files.append((path, fmt.media_type))
    except RasterioIOError as error:
        # Pixels are read here, lazily: an archive that fails now is the user's answer, not a bug.
        raise ArchiveUnavailable(f"Reading the imagery failed: {error}") from None
    execution.seconds = time.perf_counter() - started
    log.info("executed process graph in %.3f s: %s", execution.seconds, [p.name for p, _ in execution.files])
    return execution


# Synchronous answers up to this size are read into memory and the file removed before they are
# sent. Small on purpose: an answer stays in memory until its client has read it, and slow readers
# holding many would cost memory where files cost disk; beyond a few MB the streaming's cost is
# lost in the transfer.
SYNC_IN_MEMORY_BYTES = 2 * 2**20


@dataclass
class SyncResult:
    media_type: str
    path: Path | None = None
    content: bytes | None = None
    filename: str | None = None
    cleanup: Callable[[], None] | None = None
    usage: Usage | None = None


def execute_sync(
    process: Any, env: ProcessEnv, udps: UdpLookup | None = None, *, cancellation: Cancellation | None = None
) -> SyncResult:
    """Run a graph for ``POST /result``: one file back, under the synchronous size limit.

    ``cancellation`` (``cancellable``) stops its computations at their next dask task. The file is
    in a temporary directory that ``cleanup`` removes once it has been sent.
    """
    settings = env.settings
    env = dataclasses.replace(
        env, max_pixels=settings.sync_max_pixels, max_values=settings.sync_max_values,
        compute=sync_compute(cancellation, settings.sync_threads or CPU_COUNT),
    )
    directory = Path(tempfile.mkdtemp(prefix="terracube-sync-"))
    try:
        # Measured into env.usage, which the caller's environment shares: it sees a failed run's usage too.
        with Meter(env.usage):
            execution = execute(process, env, directory, udps)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    # A graph that saves several results answers with the last one, as the result node; a saved
    # model writes its STAC Item first and the model file last, so the answer is the model.
    path, media_type = execution.files[-1]
    if path.stat().st_size <= SYNC_IN_MEMORY_BYTES:
        # Most answers are small: sent from memory in one piece rather than streamed from the file
        # in chunks, each read on another thread (a sixth of a small request's time).
        try:
            return SyncResult(media_type, content=path.read_bytes(), filename=path.name, usage=env.usage)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    return SyncResult(
        media_type, path=path, filename=path.name, cleanup=lambda: shutil.rmtree(directory, ignore_errors=True), usage=env.usage
    )


class Cancelled(OpenEOError):
    """A run stopped by its ``Cancellation``; whoever cancelled it answers the user (never sent as is)."""

    code = "RequestTimeout"
    status = 408


class Cancellation:
    """A flag a synchronous run checks before each of its dask tasks (``cancellable``)."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.seen = False  # a task was refused: the work really stopped

    def cancel(self, reason: str) -> None:
        self.reason = self.reason or reason

    def check(self) -> None:
        if self.reason:
            self.seen = True
            raise Cancelled(f"The processing was stopped: {self.reason}.")


def sync_compute(cancellation: Cancellation | None = None, threads: int | None = None) -> dict[str, Any]:
    """How a synchronous run computes its pixels: ``dask.compute``'s keyword arguments.

    Dask's threaded scheduler in this process, on ``threads`` threads (``sync_threads``; None:
    dask's default, which is the cores plus four in a thread other than the main one), with the
    run's ``Cancellation`` checked before each task. The check is passed to each computation (``ProcessEnv.compute``) rather than
    registered: dask's registered callbacks (``dask.callbacks.Callback.active``) are one set for
    the whole process, which dask empties while a computation runs, so two runs in two threads
    would miss each other's checks, or stop each other. Callbacks given to the computation are
    its own and leave that set alone.
    """
    options: dict[str, Any] = {"scheduler": "threads"}
    if threads:
        options["num_workers"] = threads
    if cancellation is not None:
        # dask's callback tuple: (start, start_state, pretask, posttask, finish); pretask runs in
        # the thread that computes, before each task is handed to dask's threads.
        options["callbacks"] = [(None, None, lambda key, dsk, state: cancellation.check(), None, None)]
    return options


def cancellable(cancellation: Cancellation, work: Callable[..., Any], *args: Any) -> Any:
    """Run ``work(*args, cancellation=cancellation)`` (``execute_sync``): it stops at its next dask
    task once ``cancellation`` is set."""
    try:
        cancellation.check()
        result = work(*args, cancellation=cancellation)
        if cancellation.reason:
            log.info("a cancelled synchronous run finished anyway (%s)", cancellation.reason)
        return result
    except Cancelled:
        log.info("synchronous processing stopped: %s", cancellation.reason)
        raise
