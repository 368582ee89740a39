"""save_result: hand a cube and a format to whoever writes files (sync /result, a job, the CLI)."""

from __future__ import annotations

from typing import Any

from terracube.formats import output_format
from terracube.processes.env import ProcessEnv, SavedResult


def check_arguments(arguments: dict[str, Any], env: ProcessEnv) -> None:
    if isinstance(arguments.get("format"), str):
        spec = output_format(arguments["format"])
        if spec.check_options is not None and isinstance(arguments.get("options"), dict):
            spec.check_options(arguments["options"])  # a bad option is refused before anything runs


def save_result(data: Any, format: str, options: dict | None = None, *, env: ProcessEnv) -> bool:
    spec = output_format(format)
    if spec.check_data is not None and env.grid is None:  # a map tile draws the cube and writes no file
        spec.check_data(data, dict(options or {}), env.settings)
    env.saved_results.append(SavedResult(data, spec.name, dict(options or {}), env.node_id))
    return True


save_result.check_arguments = check_arguments  # type: ignore[attr-defined]
