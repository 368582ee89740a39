"""Evaluate a process graph lazily: every node once, callbacks as Python callables.

Processes build dask graphs, so evaluating a process graph computes nothing: the pixels are read
when the caller writes what ``save_result`` collected (or turns the result value into JSON).
"""

from __future__ import annotations

from typing import Any

from terracube.errors import OpenEOError, ProcessGraphComplexity, ProcessGraphInvalid, ProcessParameterRequired, ProcessUnsupported
from terracube.graph.fuse import PLAN_NAMESPACE, PLANNED_PROCESSES, fuse_class_tests
from terracube.graph.model import ProcessGraph, evaluation_order, is_callback, parse_process_graph, reference_of
from terracube.graph.udp import USER_NAMESPACES, UdpLookup
from terracube.processes.env import ProcessEnv
from terracube.processes.limits import check_value
from terracube.processes.registry import ProcessRegistry, default_registry


class Callback:
    """A child process graph (``reducer``, ``process``, ...) that a process calls like a function.

    ``callback(data=..., context=...)`` evaluates the child graph with those parameters on top of
    the parameters visible where the callback was written.
    """

    def __init__(self, graph: ProcessGraph, evaluator: "Evaluator", scope: dict[str, Any]):
        self.graph = graph
        self._evaluator = evaluator
        self._scope = scope

    def __call__(self, **parameters: Any) -> Any:
        return self._evaluator.run(self.graph, {**self._scope, **parameters})

    @property
    def single_process_id(self) -> str | None:
        """The process id when the callback is one node, e.g. ``mean`` in ``reducer=mean``.

        Cube processes use it for fast paths (xarray's own reductions) without changing the result.
        """
        if len(self.graph.nodes) == 1:
            return self.graph.result_node.process_id
        return None


DEFAULT_MAX_EVALUATIONS = 100_000  # as settings.max_evaluations, for an environment without settings


class EvaluationBudget:
    """Process calls left while a graph is built: stored processes calling each other can multiply them.

    Only building counts: a callback that dask later runs once per chunk is not graph building.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0

    def spend(self, node_id: str) -> None:
        self.count += 1
        if self.count > self.limit:
            raise ProcessGraphComplexity(
                f"Node '{node_id}': evaluating this process graph takes more than {self.limit:,} process calls "
                "(stored processes and callbacks included). Simplify it, e.g. stored processes that call others many times.",
                node_id=node_id,
            )


class Evaluator:
    def __init__(self, registry: ProcessRegistry | None = None, env: ProcessEnv | None = None, udps: UdpLookup | None = None):
        self.registry = registry or default_registry()
        self.env = env or ProcessEnv()
        self.udps = udps
        # The user-defined processes being evaluated, innermost last: a process calling itself is an error, not a hang.
        self._udp_stack: list[str] = []
        # Set while the graph is built (``evaluate_process_graph``): counts calls, checks value sizes.
        self.budget: EvaluationBudget | None = None
        # Child graphs parsed once per request, not at each call of the process holding them (nested
        # callbacks would parse their whole nest again at every level). The value is kept with its
        # parse, so its id is not reused while the cache lives.
        self._children: dict[int, tuple[Any, ProcessGraph]] = {}
        self._stored: dict[tuple[str, str | None], dict | None] = {}

    def run(self, graph: ProcessGraph, parameters: dict[str, Any]) -> Any:
        results: dict[str, Any] = {}

        def resolve(value: Any, node_id: str) -> Any:
            reference = reference_of(value)
            if reference is not None:
                if reference.kind == "from_node":
                    return results[reference.name]  # evaluated before: see evaluation_order
                return self.parameter(graph, parameters, reference.name, node_id)
            if is_callback(value):
                return Callback(self.child_graph(value), self, parameters)
            if isinstance(value, dict):
                return {k: resolve(v, node_id) for k, v in value.items()}
            if isinstance(value, list):
                return [resolve(v, node_id) for v in value]
            return value

        # Every node the result needs, each after its inputs, in the order a recursive walk would
        # take, without its recursion: a chain of thousands of nodes evaluates as one of three does.
        for node_id in evaluation_order(graph, [graph.result_id]):
            node = graph.nodes[node_id]
            arguments = {name: resolve(value, node_id) for name, value in node.arguments.items()}
            results[node_id] = self.call(node.id, node.process_id, node.namespace, arguments)
        return results[graph.result_id]

    def stored_process(self, process_id: str, namespace: str | None) -> dict | None:
        """A user-defined process's document, looked up once per request (a store may be a database)."""
        if not self.udps or namespace not in USER_NAMESPACES:
            return None
        key = (process_id, namespace)
        if key not in self._stored:
            self._stored[key] = self.udps(process_id, namespace)
        return self._stored[key]

    def child_graph(self, value: dict, fuse: bool = True) -> ProcessGraph:
        """A callback's graph (fused, as the top graph is) or a stored process's, parsed once per request."""
        cached = self._children.get(id(value))
        if cached is None or cached[0] is not value:
            graph = parse_process_graph(value)
            cached = self._children[id(value)] = (value, fuse_class_tests(graph) if fuse else graph)
        return cached[1]

    @staticmethod
    def parameter(graph: ProcessGraph, parameters: dict[str, Any], name: str, node_id: str) -> Any:
        if name in parameters:
            return parameters[name]
        for declared in graph.parameters:
            if declared.get("name") == name and "default" in declared:
                return declared["default"]
        raise ProcessParameterRequired(
            f"Node '{node_id}' uses parameter '{name}', but no value was given for it.", node_id=node_id
        )

    def call(self, node_id: str, process_id: str, namespace: str | None, arguments: dict[str, Any]) -> Any:
        budget = self.budget
        if budget is None:
            return self._call(node_id, process_id, namespace, arguments)
        budget.spend(node_id)
        value = self._call(node_id, process_id, namespace, arguments)
        # Cubes are lazy, so their size is known before any pixel is computed: refuse absurd ones now.
        check_value(self.env, value, f"The result of node '{node_id}' ({process_id})")
        return value

    def _call(self, node_id: str, process_id: str, namespace: str | None, arguments: dict[str, Any]) -> Any:
        if namespace == PLAN_NAMESPACE:
            # The planner's node stands where the user's `or` stood: errors name that.
            return self.invoke(node_id, "or", PLANNED_PROCESSES[process_id], arguments)
        definition = self.registry.get(process_id) if namespace in (None, "backend", "core") else None
        if definition is None:
            document = self.stored_process(process_id, namespace)
            if document is None:
                raise ProcessUnsupported(
                    f"Node '{node_id}': process '{process_id}'"
                    + (f" in namespace '{namespace}'" if namespace else "")
                    + " is not supported by this backend. GET /processes lists the supported ones.",
                    node_id=node_id,
                )
            return self.call_udp(node_id, process_id, document, arguments)
        if definition.wants_env:
            arguments = {**arguments, "env": self.env.for_node(node_id)}
        return self.invoke(node_id, process_id, definition.function, arguments)

    @staticmethod
    def invoke(node_id: str, process_id: str, function: Any, arguments: dict[str, Any]) -> Any:
        """Call a process function; its errors name the node and process at fault."""
        try:
            return function(**arguments)
        except OpenEOError as error:
            if error.node_id is None:
                error.node_id = node_id
                error.message = f"Node '{node_id}' ({process_id}): {error.message}"
                error.args = (error.message,)
            raise
        except TypeError as error:
            # A call the spec's parameters allow but the function's signature does not: name it.
            if "argument" in str(error) and function.__name__ in str(error):
                raise ProcessGraphInvalid(f"Node '{node_id}' ({process_id}): {error}", node_id=node_id) from error
            raise

    def call_udp(self, node_id: str, process_id: str, document: dict, arguments: dict[str, Any]) -> Any:
        """A user-defined process: its graph, with the node's arguments as its parameters (defaults from its declaration)."""
        if process_id in self._udp_stack:
            chain = " -> ".join([*self._udp_stack, process_id])
            raise ProcessGraphInvalid(f"Node '{node_id}': user-defined process '{process_id}' calls itself ({chain}).", node_id=node_id)
        graph = self.child_graph(document, fuse=False)
        # Defaults go in with the arguments, so that callbacks inside the process see them too.
        defaults = {p["name"]: p["default"] for p in graph.parameters if isinstance(p, dict) and "name" in p and "default" in p}
        self._udp_stack.append(process_id)
        try:
            return self.run(graph, {**defaults, **arguments})
        finally:
            self._udp_stack.pop()


def evaluate_process_graph(
    graph: ProcessGraph,
    env: ProcessEnv | None = None,
    registry: ProcessRegistry | None = None,
    parameters: dict[str, Any] | None = None,
    udps: UdpLookup | None = None,
) -> Any:
    """The value of the graph's result node; what ``save_result`` collected is in ``env.saved_results``."""
    evaluator = Evaluator(registry, env, udps)
    settings = evaluator.env.settings
    evaluator.budget = EvaluationBudget(settings.max_evaluations if settings is not None else DEFAULT_MAX_EVALUATIONS)
    try:
        return evaluator.run(fuse_class_tests(graph), parameters or {})
    finally:
        evaluator.budget = None  # callbacks that dask runs per chunk later are not counted
