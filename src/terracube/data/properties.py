"""``load_collection(properties=...)`` as a STAC search filter.

Each property condition is a callback with one parameter, ``value`` (``lte(value, 20)`` for
``eo:cloud_cover``, as the openEO client writes ``max_cloud_cover=20``). The simple shapes
(comparisons with a literal, ``between``, ``array_contains`` of literals, and ``and`` of those) are
translated into conditions the archive can evaluate: the STAC API ``query`` extension or a CQL2-JSON
``filter``, whichever the API declares. A condition that cannot be translated is not sent; the
callbacks are still checked item by item afterwards, so the search only ever narrows what the
callbacks then decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_COMPARISONS = {"eq": "eq", "neq": "neq", "lt": "lt", "lte": "lte", "gt": "gt", "gte": "gte"}
_REVERSED = {"eq": "eq", "neq": "neq", "lt": "gt", "lte": "gte", "gt": "lt", "gte": "lte"}
_CQL2 = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "in": "in"}
_VALUE = {"from_parameter": "value"}
_SCALARS = (int, float, str, bool)


@dataclass(frozen=True)
class Condition:
    property: str
    op: str  # eq, neq, lt, lte, gt, gte, in
    value: Any


def conditions(properties: dict | None) -> list[Condition]:
    """The conditions of ``properties`` that a STAC API can evaluate, as a conjunction."""
    found: list[Condition] = []
    for name, callback in (properties or {}).items():
        graph = getattr(callback, "graph", None)
        if graph is None:
            continue
        found += [Condition(name, op, value) for op, value in _node(graph, graph.result_id)]
    return found


def _node(graph, node_id: str) -> list[tuple[str, Any]]:
    node = graph.nodes[node_id]
    arguments = node.arguments
    if node.process_id in _COMPARISONS:
        if node.process_id == "eq" and (arguments.get("delta") is not None or arguments.get("case_sensitive") is False):
            return []
        x, y = arguments.get("x"), arguments.get("y")
        if x == _VALUE and _scalar(y):
            return [(_COMPARISONS[node.process_id], y)]
        if y == _VALUE and _scalar(x):
            return [(_REVERSED[node.process_id], x)]
        return []
    if node.process_id == "between" and arguments.get("x") == _VALUE:
        low, high = arguments.get("min"), arguments.get("max")
        if _scalar(low) and _scalar(high):
            return [("gte", low), ("lt" if arguments.get("exclude_max") else "lte", high)]
        return []
    if node.process_id == "array_contains" and arguments.get("value") == _VALUE:
        data = arguments.get("data")
        if isinstance(data, list) and data and all(_scalar(v) for v in data):
            return [("in", list(data))]
        return []
    if node.process_id == "and":
        # Each side narrows on its own: send what translates of either.
        parts = []
        for side in (arguments.get("x"), arguments.get("y")):
            if isinstance(side, dict) and set(side) == {"from_node"}:
                parts += _node(graph, side["from_node"])
        return parts
    return []


def _scalar(value: Any) -> bool:
    return isinstance(value, _SCALARS) and value is not None


def stac_query(found: list[Condition]) -> dict | None:
    """The conditions as the STAC API ``query`` extension: ``{"eo:cloud_cover": {"lte": 20}}``."""
    query: dict[str, dict] = {}
    for condition in found:
        ops = query.setdefault(condition.property, {})
        previous = ops.get(condition.op)
        if previous is not None and condition.op in ("lt", "lte") and _comparable(previous, condition.value):
            ops[condition.op] = min(previous, condition.value)
        elif previous is not None and condition.op in ("gt", "gte") and _comparable(previous, condition.value):
            ops[condition.op] = max(previous, condition.value)
        elif previous is not None and condition.op == "in":
            ops["in"] = [v for v in previous if v in condition.value]
        else:
            ops[condition.op] = condition.value
    return query or None


def cql2_filter(found: list[Condition]) -> dict | None:
    """The conditions as a CQL2-JSON ``filter``."""
    args = [{"op": _CQL2[c.op], "args": [{"property": c.property}, c.value]} for c in found]
    if not args:
        return None
    return args[0] if len(args) == 1 else {"op": "and", "args": args}


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (isinstance(a, str) and isinstance(b, str))


def matches(properties: dict[str, Any], conditions_: dict | None) -> bool:
    """Each condition callback, called with the item's property as ``value``, must hold."""
    for name, condition in (conditions_ or {}).items():
        if not callable(condition):
            continue
        value = properties.get(name)
        if value is None or not condition(value=value):
            return False
    return True
