"""Fuse element-wise chains that users write node by node into one pass over the pixels.

The classic cloud mask from a scene classification band is written as a chain of ``eq`` and
``or`` nodes (``SCL == 3 or SCL == 8 or SCL == 9 or SCL == 10``). Evaluated node by node, each
comparison and each ``or`` is a full pass over the cube with openEO's no-data bookkeeping: some
fifteen passes where one membership test does. The rewrite replaces the tree's root by a planned
``is_one_of`` node that gives exactly what the chain gives; the chain's other nodes are left in the
graph, unreferenced, and so never evaluated (evaluation starts from the result node).
"""

from __future__ import annotations

from typing import Any

from terracube.graph.model import Node, ProcessGraph, reference_of
from terracube.processes.comparison import is_one_of

# Processes that only the planner writes into a graph; users cannot call them.
PLAN_NAMESPACE = "terracube-plan"
PLANNED_PROCESSES = {"is_one_of": is_one_of}


def fuse_class_tests(graph: ProcessGraph) -> ProcessGraph:
    nodes = dict(graph.nodes)
    consumers = _consumer_counts(graph)
    # Every fusable `or` is rewritten; one inside a larger fused tree is then never reached.
    for node in graph.nodes.values():
        if node.process_id != "or" or node.namespace is not None:
            continue
        tree = _class_test(graph, node, consumers, is_root=True)
        if tree is not None and len(tree[1]) >= 2:
            subject, values = tree
            nodes[node.id] = Node(node.id, "is_one_of", {"x": subject, "values": values}, PLAN_NAMESPACE, node.result, node.description)
    return ProcessGraph(nodes, graph.result_id, graph.parameters)


def _class_test(graph: ProcessGraph, node: Node, consumers: dict[str, int], is_root: bool = False):
    """(subject reference, constants) when ``node`` is an or-tree of ``eq(subject, constant)``."""
    if not is_root and consumers.get(node.id, 0) != 1:
        return None  # also used elsewhere: its own value is needed, keep it
    if node.namespace is not None:
        return None
    if node.process_id == "eq":
        return _equality(node)
    if node.process_id != "or" or set(node.arguments) != {"x", "y"}:
        return None
    parts = []
    for name in ("x", "y"):
        reference = reference_of(node.arguments[name])
        if reference is None or reference.kind != "from_node":
            return None
        part = _class_test(graph, graph.nodes[reference.name], consumers)
        if part is None:
            return None
        parts.append(part)
    (subject, values), (other_subject, other_values) = parts
    # Compared as references: {"from_argument": "x"} is the same subject as {"from_parameter": "x"}.
    if reference_of(subject) != reference_of(other_subject):
        return None
    return subject, values + other_values


def _equality(node: Node):
    arguments = node.arguments
    if set(arguments) - {"x", "y", "delta", "case_sensitive"} or arguments.get("delta") not in (None, 0):
        return None
    for subject_name, constant_name in (("x", "y"), ("y", "x")):
        subject, constant = arguments.get(subject_name), arguments.get(constant_name)
        if reference_of(subject) is not None and _is_number(constant):
            return subject, [constant]
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _consumer_counts(graph: ProcessGraph) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in graph.nodes.values():
        for reference in graph.dependencies(node):
            counts[reference] = counts.get(reference, 0) + 1
    return counts
