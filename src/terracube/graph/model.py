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
    # A cycle would make evaluation run forever: the walk over every node finds one.
    evaluation_order(graph, list(graph.nodes))


def evaluation_order(graph: ProcessGraph, roots: list[str]) -> list[str]:
    """The nodes ``roots`` need, each after the nodes it refers to, in the order evaluation reaches them.

    A depth-first walk in argument order with its own stack, not Python's: a chain of thousands of
    nodes is as fine as one of three. A cycle is a ``ProcessGraphInvalid``.
    """
    state: dict[str, int] = {}  # 1: on the walk's path, 2: done
    order: list[str] = []

    def children(node_id: str) -> Iterator[str]:
        return iter(dict.fromkeys(iter_node_refs(graph.nodes[node_id].arguments)))

    for root in roots:
        if state.get(root) == 2:
            continue
        state[root] = 1
        stack = [(root, children(root))]
        while stack:
            node_id, pending = stack[-1]
            for child in pending:
                if state.get(child) == 1:
                    path = [n for n, _ in stack]
                    cycle = path[path.index(child):] + [child]
                    raise ProcessGraphInvalid(f"The process graph has a cycle: {' -> '.join(cycle)}.")
                if state.get(child) is None:
                    state[child] = 1
                    stack.append((child, children(child)))
                    break
            else:
                stack.pop()
                state[node_id] = 2
                order.append(node_id)
    return order


def graph_complexity(document: Any) -> tuple[int, int]:
    """A process document's node count (callbacks included) and callback nesting depth (0: none).

    Walked on the raw document with an explicit stack, before parsing: the limits that protect the
    rest (settings ``max_graph_nodes``, ``max_graph_depth``) must not depend on Python's recursion.
    """
    try:
        graph_dict, _ = unwrap_process(document)
    except (ProcessGraphMissing, ProcessGraphInvalid):
        return 0, 0
    nodes, deepest = 0, 0
    graphs: list[tuple[dict, int]] = [(graph_dict, 0)]
    while graphs:
        graph, depth = graphs.pop()
        nodes += len(graph)
        deepest = max(deepest, depth)
        values = [node.get("arguments") for node in graph.values() if isinstance(node, dict)]
        while values:  # the graph's argument values, down to the callbacks in them
            value = values.pop()
            if is_callback(value):
                if isinstance(value["process_graph"], dict):
                    graphs.append((value["process_graph"], depth + 1))
            elif isinstance(value, dict):
                values.extend(value.values())
            elif isinstance(value, list):
                values.extend(value)
    return nodes, deepest
