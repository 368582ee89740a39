"""What a process may know about the world it runs in.

A process never sees HTTP, users or jobs; the few that need more than their arguments
(``load_collection`` needs the catalog, ``save_result`` hands its cube to whoever writes it) declare
a keyword parameter named ``env`` and get a ``ProcessEnv``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terracube.settings import Settings
from terracube.usage import Usage

if TYPE_CHECKING:  # for the annotation only: importing the catalog means pystac and the STAC readers
    from terracube.data.catalog import Catalog


@dataclass
class SavedResult:
    """What ``save_result`` asked for: the caller (sync /result, a batch job, the CLI) writes it."""

    data: Any
    format: str
    options: dict
    node_id: str | None = None


@dataclass
class ProcessEnv:
    catalog: Catalog | None = None
    settings: Settings | None = None
    node_id: str | None = None
    # Synchronous requests cap how many pixels one load may read (``execute_sync`` sets it); batch jobs leave it None.
    max_pixels: int | None = None
    # Synchronous requests cap the values one cube or array may hold (``processes/limits.py``);
    # ``settings.max_cube_values`` caps every request. None: only that cap.
    max_values: int | None = None
    # The user's uploaded files (``/files``), for load_uploaded_files; None where there is no user.
    files_dir: Path | None = None
    # User code (run_udf) must run confined by bubblewrap, or not at all: set for accounts mode.
    udf_sandbox_required: bool = False
    # A grid every load lands on, cut to the load's own extent: a map tile's (services/tiles.py), an
    # odc-geo GeoBox. None: each load decides its grid from its extent and the collection.
    grid: Any = None
    # Loads read their pixels at once, into numpy-backed cubes, instead of building dask graphs: a
    # map tile being drawn (services/tiles.py), computed right after, where the graphs would cost
    # more than its 256 x 256 pixels. The processes are the same; only the arrays behind them differ.
    eager: bool = False
    saved_results: list[SavedResult] = field(default_factory=list)
    # Keyword arguments for every ``dask.compute`` of the run (writers, processes that read pixels):
    # a synchronous run's scheduler and its cancellation check (``execute.sync_compute``).
    # Empty: dask's default, as batch jobs compute on their worker's client.
    compute: dict[str, Any] = field(default_factory=dict)
    # What the work used (terracube/usage.py): loads count the pixels they read here. One object
    # per request, shared by every copy (``for_node``, ``dataclasses.replace``) of its environment.
    usage: Usage = field(default_factory=Usage)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("terracube.process"))

    def for_node(self, node_id: str) -> "ProcessEnv":
        """The same environment seen from one node, so errors and logs can name it."""
        return dataclasses.replace(self, node_id=node_id)
