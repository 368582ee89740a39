"""Plan a graph before evaluation: push filters down into ``load_collection``.

A user often loads a collection broadly and filters afterwards (``filter_bbox``,
``filter_temporal``, ``filter_bands``). When a ``load_collection`` node feeds a chain of such
filters and nothing else, the filters' extents are folded into the load, so only the needed
window, dates and bands are searched and read. The filter nodes stay in the graph and still run:
on the already narrowed cube they change nothing, which keeps the rewrite obviously correct.
"""

from __future__ import annotations

import copy
from typing import Any

from terracube.graph.model import Node, ProcessGraph, Reference, contains_reference, reference_of

_FILTERS = {"filter_bbox": "extent", "filter_temporal": "extent", "filter_bands": "bands"}


def push_down_filters(graph: ProcessGraph) -> ProcessGraph:
    nodes = dict(graph.nodes)
    for node in graph.nodes.values():
        if node.process_id != "load_collection" or contains_reference(node.arguments):
            continue
        arguments = copy.deepcopy(node.arguments)
        current = node
        while True:
            consumers = graph.consumers(current.id)
            if len(consumers) != 1:
                break
            consumer = consumers[0]
            if consumer.process_id not in _FILTERS or reference_of(consumer.arguments.get("data")) != Reference("from_node", current.id):
                break
            rest = {k: v for k, v in consumer.arguments.items() if k != "data"}
            if contains_reference(rest):
                break
            _fold(consumer.process_id, rest, arguments)
            current = consumer
        if arguments != node.arguments:
            nodes[node.id] = Node(node.id, node.process_id, arguments, node.namespace, node.result, node.description)
    return ProcessGraph(nodes, graph.result_id, graph.parameters)


def _fold(process_id: str, filter_arguments: dict[str, Any], load: dict[str, Any]) -> None:
    if process_id == "filter_bbox" and isinstance(filter_arguments.get("extent"), dict):
        load["spatial_extent"] = _intersect_bbox(load.get("spatial_extent"), filter_arguments["extent"])
    elif process_id == "filter_temporal" and isinstance(filter_arguments.get("extent"), list):
        load["temporal_extent"] = _intersect_interval(load.get("temporal_extent"), filter_arguments["extent"])
    elif process_id == "filter_bands" and filter_arguments.get("bands") and not filter_arguments.get("wavelengths"):
        loaded = load.get("bands")
        wanted = filter_arguments["bands"]
        if loaded is None or set(wanted) <= set(loaded):
            load["bands"] = list(wanted)


def _intersect_bbox(loaded: Any, extent: dict) -> dict:
    """Only boxes in the same CRS are intersected; otherwise the load keeps its own extent."""
    if not isinstance(loaded, dict) or "west" not in loaded:
        return dict(extent)
    if str(loaded.get("crs", 4326)) != str(extent.get("crs", 4326)):
        return loaded
    return {
        "west": max(loaded["west"], extent["west"]),
        "south": max(loaded["south"], extent["south"]),
        "east": min(loaded["east"], extent["east"]),
        "north": min(loaded["north"], extent["north"]),
        **({"crs": loaded["crs"]} if "crs" in loaded else {}),
    }


def _intersect_interval(loaded: Any, extent: list) -> list:
    if not isinstance(loaded, list) or len(loaded) != 2:
        return list(extent)
    # RFC 3339 dates and date-times of the same form compare correctly as strings.
    starts = [s for s in (loaded[0], extent[0]) if s is not None]
    ends = [e for e in (loaded[1], extent[1]) if e is not None]
    return [max(starts) if starts else None, min(ends) if ends else None]
