"""Cancelling a synchronous run (``terracube.execute``: ``Cancellation``, ``cancellable``).

Two runs at once, as two ``POST /result`` in the synchronous pool's two threads: cancelling one
stops it at its next dask task and leaves the other to finish, with its file. The check travels
with each computation (``sync_compute``), so nothing is registered in dask's process-wide state.
"""

from __future__ import annotations

import threading
import time

import dask
import pytest
import rasterio
from dask.callbacks import Callback

from terracube.data.catalog import Catalog
from terracube.execute import Cancellation, Cancelled, cancellable, execute_sync, request_env, sync_compute
from terracube.settings import Settings
from tests.conftest import AFTER, TUTORIAL_AOI, TUTORIAL_SHAPE

def load_and_save() -> dict:
    """The tutorial's area in 64-pixel chunks: a few dozen read tasks, each a few milliseconds."""
    return {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "SENTINEL2_L2A", "spatial_extent": TUTORIAL_AOI, "temporal_extent": AFTER, "bands": ["B04"]}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"}, "result": True},
    }}


class CancelledAt(Cancellation):
    """Cancelled by the run itself before its ``task``-th dask task (counting from 1): a client that
    hangs up while the pixels are being computed, at a moment the test knows."""

    def __init__(self, task: int | None = None):
        super().__init__()
        self.task, self.checks = task, 0

    def check(self) -> None:
        self.checks += 1
        if self.task is not None and self.checks > self.task:
            self.cancel("client disconnected")
        super().check()


class Run(threading.Thread):
    """``work`` under ``cancellable`` in a thread of its own, as the synchronous pool runs it."""

    def __init__(self, work, *args, cancellation: Cancellation | None = None):
        super().__init__(daemon=True)
        self.cancellation = cancellation or Cancellation()
        self.work, self.args = work, args
        self.result = self.error = None
        self.ended: float | None = None

    def run(self) -> None:
        try:
            self.result = cancellable(self.cancellation, self.work, *self.args)
        except BaseException as error:  # noqa: BLE001 - the test looks at it
            self.error = error
        self.ended = time.monotonic()


def sleeping_tasks(count: int, seconds: float, ran: list) -> list:
    def nap(index: int) -> int:
        time.sleep(seconds)
        ran.append(index)
        return index

    return [dask.delayed(nap)(index) for index in range(count)]


def compute_tasks(tasks: list, *, cancellation: Cancellation) -> tuple:
    return dask.compute(*tasks, **sync_compute(cancellation, threads=2))


def test_cancelling_one_of_two_computations_stops_only_that_one():
    ran_a, ran_b = [], []
    a = Run(compute_tasks, sleeping_tasks(40, 0.05, ran_a))
    b = Run(compute_tasks, sleeping_tasks(40, 0.05, ran_b))
    # A callback registered the documented way, by someone else: the runs leave it alone.
    registered = Callback(pretask=lambda key, dsk, state: None)
    registered.register()
    try:
        a.start()
        b.start()
        time.sleep(0.3)
        a.cancellation.cancel("time limit")
        a.join(30)
        b.join(30)
        assert registered._callback in Callback.active
    finally:
        registered.unregister()
    assert isinstance(a.error, Cancelled) and a.cancellation.seen
    assert len(ran_a) < 40  # stopped at a task, not run to the end
    assert b.error is None and b.result == tuple(range(40)) and sorted(ran_b) == list(range(40))
    assert not b.cancellation.seen


def test_computations_outside_a_synchronous_run_are_not_checked():
    # A cancelled run's check belongs to that run's computations only; other work in the process
    # (a batch job on the same machine, a test) computes as before, in any thread.
    ran: list = []
    cancelled = Cancellation()
    cancelled.cancel("client disconnected")
    assert dask.compute(*sleeping_tasks(4, 0, ran)) == (0, 1, 2, 3)
    with pytest.raises(Cancelled):
        dask.compute(*sleeping_tasks(4, 0, ran), **sync_compute(cancelled))


def test_a_synchronous_run_computes_on_as_many_threads_as_it_is_given():
    threads: set[int] = set()

    def note(index: int) -> int:
        threads.add(threading.get_ident())
        time.sleep(0.02)
        return index

    tasks = [dask.delayed(note)(index) for index in range(12)]
    assert dask.compute(*tasks, **sync_compute(threads=1)) == tuple(range(12))
    assert len(threads) == 1
    threads.clear()
    dask.compute(*tasks, **sync_compute(threads=3))
    assert 1 < len(threads) <= 3


def test_two_synchronous_runs_one_cancelled_the_other_writes_its_file(data_dir):
    settings = Settings(data_dir=data_dir, chunk_size=64)
    env = request_env(settings, Catalog(settings), user_id=None)
    # The first check is cancellable's own, before the graph is evaluated; the writer's tasks follow.
    cancelled = Run(execute_sync, load_and_save(), env, cancellation=CancelledAt(task=5))
    finished = Run(execute_sync, load_and_save(), env, cancellation=CancelledAt())
    cancelled.start()
    finished.start()
    cancelled.join(120)
    finished.join(120)
    assert isinstance(cancelled.error, Cancelled), cancelled.error
    assert cancelled.cancellation.seen and cancelled.cancellation.checks == 6  # stopped at the next task
    assert finished.error is None, finished.error
    assert not finished.cancellation.seen and finished.cancellation.checks > 20  # checked at each of its tasks
    with rasterio.MemoryFile(finished.result.content) as file, file.open() as written:
        assert (written.height, written.width) == TUTORIAL_SHAPE
        assert (written.read(1) > 0).any()
