"""The process graph as openEO defines it: nodes, references, callbacks.

Parsing checks the structure only (one result node, references that resolve, no cycles); whether
processes and arguments are known is ``validate``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

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


def iter_node_refs(value: Any) -> Iterator[str]:
    """``from_node`` ids referenced in an argument value, not descending into callbacks."""
    if isinstance(value, dict):
        if "from_node" in value and len(value) == 1:
            yield value["from_node"]
        elif "process_graph" in value and len(value) == 1:
            return
        else:
            for v in value.values():
                yield from iter_node_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from iter_node_refs(v)


def iter_callbacks(value: Any) -> Iterator[dict]:
    """Child process graphs (``{"process_graph": {...}}``) directly in an argument value."""
    if isinstance(value, dict):
        if "process_graph" in value and len(value) == 1:
            yield value["process_graph"]
        elif not ("from_node" in value and len(value) == 1):
            for v in value.values():
                yield from iter_callbacks(v)
    elif isinstance(value, list):
        for v in value:
            yield from iter_callbacks(v)


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
