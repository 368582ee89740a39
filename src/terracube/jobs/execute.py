"""The one path every request takes: validate, plan, evaluate lazily, then write.

``/result``, the CLI and batch jobs all call ``execute`` and differ only in who waits and where the
files go. Pixels are computed here, by the format writers, and nowhere earlier.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rasterio.errors import RasterioIOError

from terracube.data.stac_api import ArchiveUnavailable
from terracube.formats import output_format, write_result
from terracube.graph.evaluate import evaluate_process_graph
from terracube.graph.plan import push_down_filters
from terracube.graph.udp import UdpLookup
from terracube.graph.validate import validate_process_graph
from terracube.processes.env import ProcessEnv

log = logging.getLogger("terracube.execute")


@dataclass
class Execution:
    """What a process graph produced: files in a directory, each with its media type."""

    directory: Path
    files: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0


def execute(
    process: dict,
    catalog: Any,
    settings: Any,
    directory: Path,
    max_pixels: int | None = None,
    udps: UdpLookup | None = None,
    files_dir: Path | None = None,
) -> Execution:
    """Run ``process``; ``udps`` finds the user-defined processes it may call."""
    started = time.perf_counter()
    env = ProcessEnv(catalog=catalog, settings=settings, max_pixels=max_pixels, files_dir=files_dir)
    graph = validate_process_graph(process, env=env, udps=udps)
    value = evaluate_process_graph(push_down_filters(graph), env=env, udps=udps)
    execution = Execution(directory)
    saved = env.saved_results or []
    try:
        if not saved:
            # No save_result: the result node's value comes back as JSON, as other backends do.
            for path in write_result(value, "JSON", {}, directory):
                execution.files.append((path, "application/json"))
        for result in saved:
            fmt = output_format(result.format, internal=True)
            for path in write_result(result.data, fmt.name, result.options, directory):
                execution.files.append((path, fmt.media_type))
    except RasterioIOError as error:
        # Pixels are read here, lazily: an archive that fails now is the user's answer, not a bug.
        raise ArchiveUnavailable(f"Reading the imagery failed: {error}") from None
    execution.seconds = time.perf_counter() - started
    log.info("executed process graph in %.3f s: %s", execution.seconds, [p.name for p, _ in execution.files])
    return execution


@dataclass
class SyncResult:
    media_type: str
    path: Path | None = None
    content: bytes | None = None
    filename: str | None = None
    cleanup: Callable[[], None] | None = None


def execute_sync(
    process: dict, settings: Any, catalog: Any, udps: UdpLookup | None = None, files_dir: Path | None = None
) -> SyncResult:
    """Run a graph for ``POST /result``: one file back, under the synchronous size limit."""
    directory = Path(tempfile.mkdtemp(prefix="terracube-sync-"))
    try:
        execution = execute(process, catalog, settings, directory, max_pixels=settings.sync_max_pixels, udps=udps, files_dir=files_dir)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    # A graph that saves several results answers with the last one, as the result node; a saved
    # model writes its STAC Item first and the model file last, so the answer is the model.
    path, media_type = execution.files[-1]
    return SyncResult(media_type, path=path, filename=path.name, cleanup=lambda: shutil.rmtree(directory, ignore_errors=True))
