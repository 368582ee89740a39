"""The table of every process terracube implements: openEO process id -> function.

This is the only place a process is made available. ``/processes`` lists exactly these, each with
its official spec (``registry.load_spec``). Functions take the spec's parameters as keyword
arguments (callbacks arrive as ``terracube.graph.Callback`` callables); a function that needs the
catalog or must hand over a result also takes ``env`` (``ProcessEnv``).
"""

from __future__ import annotations

from terracube.processes import load, save

IMPLEMENTATIONS = {
    "load_collection": load.load_collection,
    "save_result": save.save_result,
}
