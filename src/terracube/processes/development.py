"""Development processes: inspect.

``inspect`` writes to the process log and passes its data through. A cube is summarised by its
dimensions, labels and type, never by its values: logging must not read pixels.
"""

from __future__ import annotations

import logging
from typing import Any

import xarray as xr

from terracube.processes.env import ProcessEnv

_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}


def summary(data: Any) -> str:
    if isinstance(data, xr.DataArray):
        parts = []
        for dim in data.dims:
            labels = data.indexes[dim] if dim in data.indexes else None
            shown = "" if labels is None else f" [{labels[0]} .. {labels[-1]}]" if len(labels) else " []"
            parts.append(f"{dim}: {data.sizes[dim]}{shown}")
        return f"data cube ({data.dtype}; {', '.join(parts) or 'no dimensions'})"
    text = repr(data)
    return text if len(text) <= 500 else text[:500] + "..."


def inspect(data: Any, message: str = "", code: str = "User", level: str = "info", env: ProcessEnv | None = None) -> Any:
    logger = env.logger if env is not None else logging.getLogger("terracube.process")
    node = f" (node {env.node_id})" if env is not None and env.node_id else ""
    logger.log(_LEVELS.get(level, logging.INFO), "inspect [%s]%s: %s %s", code, node, message, summary(data))
    return data
