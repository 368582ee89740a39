"""The bounded pool that runs synchronous processing (``POST /result``).

Synchronous work runs on threads of its own (``sync_workers``), never on the thread pool that
serves the API's light routes, so ``/health``, ``/collections`` or ``/jobs`` never wait behind it.
Waiting requests queue here, at most ``sync_queue`` of them, and at most ``sync_queue_per_user``
(running or waiting) of one user: a request beyond either answers 503 ``InfrastructureBusy`` with
``Retry-After``. A free worker takes the next request round-robin by user, so one user's many
requests never starve another's.

Each run carries a ``Cancellation``: the time limit (``sync_timeout``, counted from the start of
the run), the client hanging up and the server shutting down set it, and the run stops at its next
dask task (``terracube.execute``). A cancelled run keeps its worker until it has stopped, so the
bound on concurrent work holds even then.

The pool's threads run ``sync_nice`` steps below the server's priority, and so do the threads they
start (dask's, GDAL's): with the cores full of synchronous work, the event loop still gets one
first. And while the server runs, a thread holding the GIL hands it over after
``sync_switch_interval`` (1 ms, Python's default is 5 ms), so the event loop waits less at each
of the turns a light route takes. Both keep the light routes' latency low (bench/load.py measures it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
import weakref
from collections import OrderedDict, deque
from contextlib import asynccontextmanager
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from starlette.requests import Request

from terracube.errors import BadRequest, InfrastructureBusy, RequestTimeout
from terracube.execute import Cancellation, cancellable

log = logging.getLogger("terracube.sync")

# How often a waiting request checks whether its client is still there.
POLL_SECONDS = 0.25
SHUTTING_DOWN = "The server is shutting down. Please try again in a moment."
_pools: "weakref.WeakSet[SyncPool]" = weakref.WeakSet()


def stop_all_work() -> None:
    """When the server is told to stop (SIGTERM): every pool refuses new work and its runs stop at
    their next task. Only flags are set, so this may run in a signal handler; the requests see them
    within a poll and answer 503."""
    for pool in list(_pools):
        pool.stop()


def _lower_priority(nice: int) -> None:
    """Lower this worker thread's priority by ``nice`` (as ``nice -n``), and so that of every thread
    it starts later (dask's threads of its runs, GDAL's): on Linux the nice value belongs to the
    thread and new threads inherit it. The event loop and the light routes' threads keep theirs, so
    they get a core before synchronous work does."""
    if not nice or sys.platform != "linux":  # elsewhere the nice value is the whole process's
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + nice))
    except OSError as error:  # not allowed here: the work runs at the server's priority
        log.warning("could not lower the synchronous workers' priority: %s", error)


class SyncPool:
    def __init__(self, workers: int, queue: int, per_user: int, timeout: float, nice: int = 0):
        self.workers, self.queue, self.per_user, self.timeout = workers, queue, per_user, timeout
        self.executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="terracube-sync", initializer=_lower_priority, initargs=(nice,)
        )
        self.running = 0
        self.per_user_count: dict[str, int] = {}
        # user -> their waiting requests; the user first in line is served next, then goes last.
        self.waiting: OrderedDict[str, deque[asyncio.Future]] = OrderedDict()
        self.cancellations: set[Cancellation] = set()
        self.closed = False
        _pools.add(self)

    @property
    def waiting_count(self) -> int:
        return sum(len(line) for line in self.waiting.values())

    def retry_after(self) -> int:
        """Seconds a refused client should wait: a rough guess, one time limit's share per worker."""
        return max(1, min(60, int(self.timeout / max(1, self.workers))))

    def _admit(self, user_id: str, capped: bool) -> None:
        if self.closed:
            raise InfrastructureBusy(SHUTTING_DOWN)
        if capped and self.per_user_count.get(user_id, 0) >= self.per_user:
            raise InfrastructureBusy(
                f"You already have {self.per_user} synchronous requests running or waiting, the most one user may have. "
                "Please try again when one has finished, or use a batch job."
            )
        if self.running >= self.workers and self.waiting_count >= self.queue:
            raise InfrastructureBusy("Service is not available at the moment due to overloading. Please try again later or use a batch job.")
        self.per_user_count[user_id] = self.per_user_count.get(user_id, 0) + 1

    def _leave(self, user_id: str) -> None:
        left = self.per_user_count.get(user_id, 1) - 1
        if left:
            self.per_user_count[user_id] = left
        else:
            self.per_user_count.pop(user_id, None)

    async def _slot(self, user_id: str) -> None:
        """Wait for a free worker; the turn comes round-robin by user."""
        if self.running < self.workers and not self.waiting:
            self.running += 1
            return
        turn: asyncio.Future = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(user_id, deque()).append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._release_slot()  # granted in the same moment it was abandoned: pass it on
            else:
                self._forget(user_id, turn)
            raise

    def _forget(self, user_id: str, turn: asyncio.Future) -> None:
        line = self.waiting.get(user_id)
        if line and turn in line:
            line.remove(turn)
            if not line:
                del self.waiting[user_id]

    def _release_slot(self) -> None:
        self.running -= 1
        while self.waiting and self.running < self.workers:
            user_id, line = next(iter(self.waiting.items()))
            turn = line.popleft()
            del self.waiting[user_id]
            if line:
                self.waiting[user_id] = line  # to the end of the round
            if not turn.done():
                self.running += 1
                turn.set_result(None)

    async def run(
        self, request: Request, user_id: str, work: Callable[..., Any], *args: Any,
        abandoned: Callable[[Any], None] | None = None, capped: bool = True,
    ) -> Any:
        """``work(*args, cancellation=...)`` on a worker of the pool, within the limits: ``work``
        (``execute_sync``) hands the run's ``Cancellation`` to its dask computations, so that it
        stops when the request is given up. ``abandoned(result)`` cleans
        up after a run that finished after its request was given up (timed out, client gone).
        ``capped=False`` lifts the per-user cap: the one local user of laptop mode shares with nobody."""
        self._admit(user_id, capped)
        try:
            await self._wait_for_slot(request, user_id)
        except BaseException:
            self._leave(user_id)
            raise
        cancellation = Cancellation()
        self.cancellations.add(cancellation)
        future = asyncio.get_running_loop().run_in_executor(self.executor, cancellable, cancellation, work, *args)

        def finished(done: asyncio.Future) -> None:
            # The worker is free only now that the work has really stopped.
            self.cancellations.discard(cancellation)
            self._leave(user_id)
            self._release_slot()
            if cancellation.reason and not done.cancelled() and done.exception() is None and abandoned:
                abandoned(done.result())

        future.add_done_callback(finished)
        return await self._supervise(request, future, cancellation)

    async def _wait_for_slot(self, request: Request, user_id: str) -> None:
        slot = asyncio.ensure_future(self._slot(user_id))
        try:
            while not slot.done():
                await asyncio.wait({slot}, timeout=POLL_SECONDS)
                if not slot.done() and self.closed:
                    slot.cancel()
                    raise InfrastructureBusy(SHUTTING_DOWN)
                if not slot.done() and await request.is_disconnected():
                    log.info("a synchronous request of %s left the queue: the client disconnected", user_id)
                    slot.cancel()
                    raise BadRequest("The client disconnected before its synchronous processing started.")
            await slot
        except BaseException:
            if slot.done() and not slot.cancelled() and slot.exception() is None:
                self._release_slot()  # granted, then given up (the server is shutting down)
            slot.cancel()
            raise

    async def _supervise(self, request: Request, future: asyncio.Future, cancellation: Cancellation) -> Any:
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                done, _ = await asyncio.wait({future}, timeout=min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
                if done:
                    return future.result()
                if self.closed:
                    raise InfrastructureBusy(SHUTTING_DOWN)
                if time.monotonic() >= deadline:
                    cancellation.cancel("time limit")
                    raise RequestTimeout(
                        f"Synchronous processing is limited to {self.timeout:g} seconds and this request took longer; "
                        "its work was stopped. Please use a batch job (POST /jobs) for bigger computations."
                    )
                if await request.is_disconnected():
                    cancellation.cancel("client disconnected")
                    log.info("synchronous processing cancelled: the client disconnected")
                    raise BadRequest("The client disconnected; its synchronous processing was stopped.")
        except asyncio.CancelledError:
            # The request itself was cancelled (server shutdown) or its client left: stop the work.
            cancellation.cancel(cancellation.reason or "request cancelled")
            raise

    def stop(self) -> None:
        """Refuse new work and stop every run at its next task (flags only: signal-safe)."""
        self.closed = True
        for cancellation in list(self.cancellations):
            cancellation.cancel("server shutting down")

    def close(self) -> None:
        """At the end of the app's lifespan: stop everything, and let the workers go."""
        self.stop()
        for line in self.waiting.values():
            for turn in line:
                turn.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)


def sync_pool(app: Any) -> SyncPool:
    """The app's pool, made on first use from its settings."""
    pool = getattr(app.state, "sync_pool", None)
    if pool is None:
        settings = app.state.settings
        pool = SyncPool(
            settings.sync_workers, settings.sync_queue, settings.sync_queue_per_user, settings.sync_timeout, settings.sync_nice
        )
        app.state.sync_pool = pool
    return pool


def install(app: Any) -> None:
    """Close the pool when the app stops: its runs are stopped before the job service stops."""
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any):
        # A thread computing in Python (a synchronous run building its dask graph) holds the GIL
        # for this long before the event loop may have it: the light routes wait for it at each turn.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(application.state.settings.sync_switch_interval)
        async with previous(application) as inner:
            try:
                yield inner
            finally:
                sys.setswitchinterval(switch_interval)
                pool = getattr(application.state, "sync_pool", None)
                if pool is not None:
                    pool.close()

    app.router.lifespan_context = lifespan
