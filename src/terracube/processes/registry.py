"""One explicit registry binding each openEO process to its implementation and its spec.

Nothing registers itself on import: ``IMPLEMENTATIONS`` below is the whole list, so ``/processes``
is generated from exactly what runs, and a spec can never drift from its function.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any, Callable, Iterator

from terracube.processes import implementations


@dataclass(frozen=True)
class ProcessDefinition:
    id: str
    spec: dict
    function: Callable[..., Any]

    @cached_property
    def wants_env(self) -> bool:
        return "env" in inspect.signature(self.function).parameters

    @cached_property
    def parameters(self) -> dict[str, dict]:
        return {p["name"]: p for p in self.spec.get("parameters", [])}

    @property
    def required_parameters(self) -> list[str]:
        # A function may accept leaving out a parameter its spec requires, where clients leave it out
        # and other backends default it (``lenient_parameters``); the spec served stays the official one.
        lenient = getattr(self.function, "lenient_parameters", ())
        return [name for name, p in self.parameters.items() if not p.get("optional", False) and name not in lenient]


def load_spec(process_id: str) -> dict:
    """The official spec of a process: stable ones first, then proposals."""
    specs = resources.files("terracube.processes") / "specs"
    for candidate in (specs / f"{process_id}.json", specs / "proposals" / f"{process_id}.json"):
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    raise KeyError(f"no openEO spec for process {process_id!r}")


class ProcessRegistry:
    def __init__(self, implementations_: dict[str, Callable[..., Any]]):
        self._processes = {pid: ProcessDefinition(pid, load_spec(pid), fn) for pid, fn in implementations_.items()}

    def get(self, process_id: str) -> ProcessDefinition | None:
        return self._processes.get(process_id)

    def __contains__(self, process_id: str) -> bool:
        return process_id in self._processes

    def __iter__(self) -> Iterator[ProcessDefinition]:
        return iter(sorted(self._processes.values(), key=lambda p: p.id))

    def __len__(self) -> int:
        return len(self._processes)


@lru_cache
def default_registry() -> ProcessRegistry:
    return ProcessRegistry(implementations.IMPLEMENTATIONS)
