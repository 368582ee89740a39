"""The process graph as openEO defines it: nodes, references, callbacks.

References (``from_node``, ``from_parameter`` and its old spelling ``from_argument``) and callbacks
(``{"process_graph": ...}``) are recognised here and only here: every other module asks
``reference_of``, ``is_callback`` or ``iter_references``, so they cannot drift apart.

Parsing checks the structure only (one result node, references that resolve, no cycles); whether
processes and arguments are known is ``validate``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

from terracube.errors import ProcessGraphInvalid, ProcessGraphMissing


@dataclass(frozen=True)
class Node:
    id: str
    process_id: str
    arguments: dict[str, Any]
    namespace: str | None = None
    result: bool = False
    description: str | None = None


@dataclass
class ProcessGraph:
    nodes: dict[str, Node]
    result_id: str
    # A graph's parameters, as a user-defined process declares them ({"name", "default", ...}).
    parameters: list[dict] = field(default_factory=list)

    @property
    def result_node(self) -> Node:
        return self.nodes[self.result_id]

    def dependencies(self, node: Node) -> set[str]:
        return {ref for ref in iter_node_refs(node.arguments)}

    def consumers(self, node_id: str) -> list[Node]:
        return [n for n in self.nodes.values() if node_id in self.dependencies(n)]


@dataclass(frozen=True)
class Reference:
    """A value that stands for another: ``{"from_node": id}`` or ``{"from_parameter": name}``.

    ``{"from_argument": name}`` is the pre-1.0 spelling of ``from_parameter``; old graphs and the
    official test cases still use it, so it reads as ``from_parameter``.
    """

    kind: Literal["from_node", "from_parameter"]
    name: str  # a node id or parameter name


_REFERENCE_KINDS = {"from_node": "from_node", "from_parameter": "from_parameter", "from_argument": "from_parameter"}


def reference_of(value: Any) -> Reference | None:
    """The reference a value is: an object with exactly one key, one of openEO's reference keys.

    The name must be a string: ``{"from_node": ["a"]}`` is a malformed graph, not a literal.
    """
    if isinstance(value, dict) and len(value) == 1:
        [(key, name)] = value.items()
        if key in _REFERENCE_KINDS:
            if not isinstance(name, str):
                raise ProcessGraphInvalid(f"A reference {{\"{key}\": ...}} must name a string, not {name!r}.")
            return Reference(_REFERENCE_KINDS[key], name)
    return None


def is_callback(value: Any) -> bool:
    """Whether a value is a child process graph, ``{"process_graph": {...}}``: exactly that one key.

    The value itself is what ``parse_process_graph`` takes; whether its graph is well formed is
    that function's business, so ``{"process_graph": 5}`` is still a (broken) callback here.
    """
    return isinstance(value, dict) and len(value) == 1 and "process_graph" in value


def iter_references(value: Any) -> Iterator[Reference | dict]:
    """The references and callbacks in an argument value, depth first, descending into neither.

    A callback comes as its ``{"process_graph": ...}`` object: its references are its own graph's.
    """
    reference = reference_of(value)
    if reference is not None:
        yield reference
    elif is_callback(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from iter_references(item)


def contains_reference(value: Any) -> bool:
    """Whether a value depends on anything else (a node, a parameter, a callback), i.e. is not a literal."""
    return next(iter_references(value), None) is not None


def iter_node_refs(value: Any) -> Iterator[str]:
    """``from_node`` ids referenced in an argument value, not descending into callbacks."""
    for item in iter_references(value):
        if isinstance(item, Reference) and item.kind == "from_node":
            yield item.name


def unwrap_process(document: Any) -> tuple[dict, list[dict]]:
    """Accept what clients send: ``{"process": {"process_graph": ...}}``, ``{"process_graph": ...}`` or the bare graph."""
    if not isinstance(document, dict) or not document:
        raise ProcessGraphMissing("No process graph given: send {\"process\": {\"process_graph\": {...}}}.")
    parameters: list[dict] = []
    if "process" in document:
        document = document["process"]
        if not isinstance(document, dict):
            raise ProcessGraphInvalid("'process' must be an object with a 'process_graph'.")
    if "process_graph" in document:
        parameters = document.get("parameters") or []
        document = document["process_graph"]
    if not isinstance(document, dict) or not document:
        raise ProcessGraphMissing("The process graph is missing or empty.")
    return document, parameters


def parse_process_graph(document: Any, parameters: list[dict] | None = None) -> ProcessGraph:
    graph_dict, declared = unwrap_process(document)
    nodes: dict[str, Node] = {}
    for node_id, raw in graph_dict.items():
        if not isinstance(raw, dict) or not isinstance(raw.get("process_id"), str):
            raise ProcessGraphInvalid(f"Node '{node_id}' must be an object with a string 'process_id'.")
        arguments = raw.get("arguments", {})
        if not isinstance(arguments, dict):
            raise ProcessGraphInvalid(f"Node '{node_id}' ({raw['process_id']}): 'arguments' must be an object.")
        nodes[node_id] = Node(
            id=node_id,
            process_id=raw["process_id"],
            arguments=arguments,
            namespace=raw.get("namespace"),
            result=bool(raw.get("result", False)),
            description=raw.get("description"),
        )
    results = [n.id for n in nodes.values() if n.result]
    if len(results) != 1:
        raise ProcessGraphInvalid(
            f"A process graph needs exactly one node with \"result\": true, found {len(results)}"
            + (f" ({', '.join(results)})." if results else ".")
        )
    graph = ProcessGraph(nodes, results[0], parameters if parameters is not None else declared)
    _check_references(graph)
    return graph


def _check_references(graph: ProcessGraph) -> None:
    for node in graph.nodes.values():
        for ref in graph.dependencies(node):
            if ref not in graph.nodes:
                raise ProcessGraphInvalid(
                    f"Node '{node.id}' ({node.process_id}) refers to node '{ref}', which is not in the graph."
                )
    # Depth-first search for cycles: a cycle would make evaluation recurse forever.
    state: dict[str, int] = {}

    def visit(node_id: str, path: list[str]) -> None:
        if state.get(node_id) == 2:
            return
        if state.get(node_id) == 1:
            raise ProcessGraphInvalid(f"The process graph has a cycle: {' -> '.join(path + [node_id])}.")
        state[node_id] = 1
        for ref in graph.dependencies(graph.nodes[node_id]):
            visit(ref, path + [node_id])
        state[node_id] = 2

    for node_id in graph.nodes:
        visit(node_id, [])
