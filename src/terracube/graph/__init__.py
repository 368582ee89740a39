"""Process graphs: parse, validate, plan (pushdown), evaluate lazily."""

from terracube.graph.model import Node, ProcessGraph, parse_process_graph
from terracube.graph.evaluate import Callback, evaluate_process_graph
from terracube.graph.validate import validate_process_graph

__all__ = ["Node", "ProcessGraph", "parse_process_graph", "Callback", "evaluate_process_graph", "validate_process_graph"]
