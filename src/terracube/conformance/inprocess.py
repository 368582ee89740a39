"""The in-process target: each case is a one-node process graph evaluated by terracube's engine.

The case's arguments are decoded into what the processes room works with (datacubes as small
dask-backed cubes with their labels, CRS and dimension types; labelled arrays as one-dimensional
DataArrays); child process graphs become ``terracube.graph.Callback`` objects, so callbacks run
through the same evaluator as in a real graph, legacy ``from_argument`` references included.
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from terracube.conformance.run import CaseError
from terracube.conformance.suite import Case
from terracube.conformance.values import decode
from terracube.errors import OpenEOError
from terracube.graph.evaluate import Callback
from terracube.graph.model import parse_process_graph
from terracube.graph.evaluate import Evaluator
from terracube.processes.env import ProcessEnv
from terracube.processes.registry import ProcessRegistry, default_registry


class InProcess:
    name = "terracube"

    def __init__(self, registry: ProcessRegistry | None = None):
        self.registry = registry or default_registry()
        self.evaluator = Evaluator(self.registry, ProcessEnv())

    def supports(self, process_id: str) -> bool:
        return process_id in self.registry

    def callback(self, value: dict) -> Callback:
        return Callback(parse_process_graph({"process_graph": value["process_graph"]}), self.evaluator, {})

    def execute(self, case: Case) -> Any:
        try:
            arguments = {name: decode(value, self.callback) for name, value in case.arguments.items()}
            result = self.evaluator.call("case", case.process_id, None, arguments)
            return result.compute() if isinstance(result, xr.DataArray) else result
        except OpenEOError as error:
            raise CaseError(error.code, error.message) from error
