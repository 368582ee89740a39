"""What one piece of work used: CPU seconds, memory, wall time and pixels read.

A top-level room beside ``execute.py``, not in ``auth/``: the execution path and the job worker
measure, and neither may import accounts or the database (a Dask worker has no database). The
quotas that read these figures are ``auth/quotas.py``'s.

- **Pixels read**: what the graph asked to read, counted where a load builds its lazy cube
  (``processes/load.py``'s ``check_size``, for ``load_collection`` and ``load_stac``): scenes x
  bands x the request grid's pixels, the figure the synchronous pixel limit checks. Files read by
  ``load_url`` and ``load_uploaded_files`` are not counted.
- **CPU seconds**: the CPU time (user + system) of the measuring process over the work. The
  pixels are computed on dask's threads in that process (``/result``, and batch jobs on the
  default in-process LocalCluster), so this counts them, but also whatever else the process did
  meanwhile (other requests, the API itself): on a busy server it is an upper bound. On a cluster
  of separate worker processes it counts only the process running the job's task, not the other
  workers' tasks: an underestimate there (docs/auth.md says so).
- **Memory**: the resident set size (RSS) of that process, sampled every ``interval`` seconds:
  its peak over the work (bytes), and its integral over time (MB-seconds, the unit other openEO
  backends report).
- **Wall time**: seconds from start to end.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

SAMPLE_SECONDS = 0.05
MB = 2**20


@dataclass
class Usage:
    """The figures of one piece of work. Plain data: it travels to Dask workers inside a ``ProcessEnv``."""

    pixels_read: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_memory: int = 0  # bytes, the peak RSS
    memory_mb_seconds: float = 0.0

    def count_pixels(self, pixels: int) -> None:
        self.pixels_read += int(pixels)

    def openeo(self) -> dict[str, dict[str, Any]]:
        """In the openEO API's ``usage`` form (a job's metadata), with the units other backends use."""
        return {
            "cpu": {"value": round(self.cpu_seconds, 3), "unit": "cpu-seconds"},
            "duration": {"value": round(self.wall_seconds, 3), "unit": "seconds"},
            "memory": {"value": round(self.memory_mb_seconds, 1), "unit": "mb-seconds"},
            "peak_memory": {"value": int(self.peak_memory), "unit": "b"},
            "input_pixel": {"value": round(self.pixels_read / 1e6, 6), "unit": "mega-pixel"},
        }

    @classmethod
    def from_openeo(cls, usage: dict[str, Any] | None) -> "Usage":
        """The figures back from ``openeo()`` (what a job's outcome carries)."""
        usage = usage or {}

        def value(key: str) -> float:
            entry = usage.get(key)
            return float(entry.get("value") or 0) if isinstance(entry, dict) else 0.0

        return cls(
            pixels_read=round(value("input_pixel") * 1e6), cpu_seconds=value("cpu"), wall_seconds=value("duration"),
            peak_memory=int(value("peak_memory")), memory_mb_seconds=value("memory"),
        )

    def sentence(self) -> str:
        """One line for logs: what the work used."""
        return (
            f"Usage: {self.cpu_seconds:.3f} CPU seconds, peak memory {self.peak_memory / MB:.0f} MiB "
            f"({self.memory_mb_seconds:.0f} MB-seconds), {self.wall_seconds:.3f} s wall time, "
            f"{self.pixels_read:,} pixels read."
        )


def _process_cpu() -> float:
    times = _process().cpu_times()
    return times.user + times.system


_proc = None


def _process():
    global _proc
    if _proc is None:
        import psutil  # distributed's dependency too; imported late so processes/ need not load it

        _proc = psutil.Process()
    return _proc


def _rss() -> int:
    try:
        return int(_process().memory_info().rss)
    except Exception:  # a platform without RSS: memory stays 0 rather than failing the work
        return 0


class Meter:
    """Measures the work done inside ``with Meter(usage):`` into ``usage`` (pixels are counted by the loads).

    A daemon thread samples the RSS; the figures are written when the block ends, whether it ended
    well or with an error (a failed request used the machine too).
    """

    def __init__(self, usage: Usage, interval: float = SAMPLE_SECONDS):
        self.usage = usage
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak = 0
        self._integral = 0.0  # byte-seconds
        self.done = False  # measured and written into ``usage``; a second exit changes nothing

    def __enter__(self) -> Usage:
        self._wall = time.monotonic()
        self._cpu = _process_cpu()
        self._last = (self._wall, _rss())
        self._peak = self._last[1]
        self._thread = threading.Thread(target=self._sample_loop, name="terracube-usage-meter", daemon=True)
        self._thread.start()
        return self.usage

    def _sample(self) -> None:
        now, rss = time.monotonic(), _rss()
        then, before = self._last
        self._integral += (now - then) * (rss + before) / 2  # trapezoids between samples
        self._last = (now, rss)
        self._peak = max(self._peak, rss)

    def _sample_loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __exit__(self, *exc: Any) -> None:
        if self.done:
            return
        self.done = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self.usage.wall_seconds += time.monotonic() - self._wall
        self.usage.cpu_seconds += max(0.0, _process_cpu() - self._cpu)
        self.usage.peak_memory = max(self.usage.peak_memory, self._peak)
        self.usage.memory_mb_seconds += self._integral / MB
