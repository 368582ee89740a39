"""Validate a process graph before anything runs.

Checks what is cheap and certain: known processes, required and unknown arguments, the JSON type of
literal arguments against the spec's schema, references to callback parameters, and the
process-specific checks a process offers (``load_collection`` knows its collections and bands).
Every error names the node, the process and the argument.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from terracube.errors import (
    OpenEOError,
    ProcessGraphComplexity,
    ProcessParameterInvalid,
    ProcessParameterRequired,
    ProcessParameterUnsupported,
    ProcessUnsupported,
    shortened,
)
from terracube.graph.model import ProcessGraph, Reference, contains_reference, graph_complexity, is_callback, iter_references, parse_process_graph
from terracube.graph.udp import USER_NAMESPACES, UdpLookup
from terracube.processes.env import ProcessEnv
from terracube.processes.registry import ProcessRegistry, default_registry
from terracube.settings import Settings

_JSON_TYPES = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def _schemas(schema: Any) -> list[dict]:
    if isinstance(schema, list):
        return [s for item in schema for s in _schemas(item)]
    if isinstance(schema, dict):
        if "anyOf" in schema or "oneOf" in schema:
            return _schemas(schema.get("anyOf", []) + schema.get("oneOf", []))
        return [schema]
    return []


def literal_matches_schema(value: Any, schema: Any) -> bool:
    """Whether a literal JSON value has one of the types the schema allows (types only, on purpose)."""
    alternatives = _schemas(schema)
    if not alternatives:
        return True
    actual = _JSON_TYPES.get(type(value), "object")
    for alternative in alternatives:
        allowed = alternative.get("type")
        if allowed is None:
            return True
        allowed = allowed if isinstance(allowed, list) else [allowed]
        if actual in allowed or (actual == "integer" and "number" in allowed):
            return True
        if actual == "number" and "integer" in allowed and float(value).is_integer():
            return True
    return False


def _instant_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return f"{value!r} is not a date or date-time string"
    try:
        pd.Timestamp(value)
    except (ValueError, OverflowError, TypeError):
        return f"'{shortened(value, 40)}' is not a valid date or date-time (e.g. 2021-06-01 or 2021-06-01T00:00:00Z)"
    return None


def _timestamp(value: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def temporal_interval_problem(value: Any) -> str | None:
    """What is wrong with a literal temporal interval ``[start, end]`` (null: open), None when nothing."""
    if not isinstance(value, list) or len(value) != 2:
        return None  # the type check says what is wrong with its shape
    for instant in value:
        problem = _instant_problem(instant)
        if problem:
            return problem
    start, end = value
    if start is not None and end is not None and _timestamp(start) >= _timestamp(end):
        return f"the start {start} is not before the end {end}"
    return None


def _is_wgs84(crs: Any) -> bool:
    return crs is None or crs in (4326, "4326", "EPSG:4326", "epsg:4326", "OGC:CRS84")


def bounding_box_problem(value: Any) -> str | None:
    """What is wrong with a literal bounding box ``{west, south, east, north, crs}``, None when nothing."""
    if not isinstance(value, dict) or not {"west", "south", "east", "north"} <= set(value):
        return None  # GeoJSON or a cube: other checks' business
    edges = {edge: value[edge] for edge in ("west", "south", "east", "north")}
    for edge, number in edges.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            return f"'{edge}' must be a finite number, not {shortened(repr(number), 40)}"
    if _is_wgs84(value.get("crs")) and not all(-90 <= edges[edge] <= 90 for edge in ("south", "north")):
        return "latitudes (south, north) must lie between -90 and 90 in EPSG:4326"
    return None


# Literal values the spec marks with these subtypes are checked beyond their JSON type.
_SUBTYPE_CHECKS = {"temporal-interval": temporal_interval_problem, "bounding-box": bounding_box_problem}


def subtype_problem(value: Any, schema: Any) -> str | None:
    """What is wrong with a literal whose schema is a temporal interval or bounding box, None when nothing."""
    for alternative in _schemas(schema):
        check = _SUBTYPE_CHECKS.get(alternative.get("subtype"))
        if check is not None:
            problem = check(value)
            if problem:
                return problem
    return None


def _callback_parameter_names(schema: Any) -> set[str] | None:
    names: set[str] = set()
    found = False
    for alternative in _schemas(schema):
        if alternative.get("subtype") == "process-graph":
            found = True
            names |= {p["name"] for p in alternative.get("parameters", [])}
    return names if found else None


class _Validator:
    def __init__(self, registry: ProcessRegistry, env: ProcessEnv, udps: UdpLookup | None):
        self.registry = registry
        self.env = env
        self.udps = udps
        self.errors: list[OpenEOError] = []

    def graph(self, graph: ProcessGraph, scope: set[str] | None) -> None:
        """``scope`` is the set of parameter names visible here, or None when any name may come at run time."""
        for node in graph.nodes.values():
            self.node(graph, node, scope)

    def node(self, graph: ProcessGraph, node, scope: set[str] | None) -> None:
        where = f"Node '{shortened(node.id)}' ({shortened(node.process_id)})"
        definition = self.registry.get(node.process_id) if node.namespace in (None, "backend", "core") else None
        if definition is None:
            document = self.udps(node.process_id, node.namespace) if self.udps and node.namespace in USER_NAMESPACES else None
            if document is not None:
                self.udp_node(node, where, document, scope)
                return
            namespace = f" in namespace '{shortened(node.namespace)}'" if node.namespace else ""
            self.errors.append(
                ProcessUnsupported(
                    f"{where}: process '{shortened(node.process_id)}'{namespace} is not supported by this backend"
                    " (GET /processes lists the predefined processes, GET /process_graphs your own).",
                    node_id=node.id,
                )
            )
            return
        for name in definition.required_parameters:
            if name not in node.arguments:
                self.errors.append(
                    ProcessParameterRequired(f"{where}: the required argument '{name}' is missing.", node_id=node.id)
                )
        for name, value in node.arguments.items():
            spec = definition.parameters.get(name)
            if spec is None:
                known = ", ".join(definition.parameters) or "none"
                self.errors.append(
                    ProcessParameterUnsupported(
                        f"{where}: unknown argument '{name}'. Its arguments are: {known}.", node_id=node.id
                    )
                )
                continue
            self.argument(graph, node, where, name, value, spec, scope)
        check = getattr(definition.function, "check_arguments", None)
        if check is not None and self.env.catalog is not None:
            literal = {k: v for k, v in node.arguments.items() if not contains_reference(v)}
            try:
                check(literal, self.env.for_node(node.id))
            except OpenEOError as error:
                error.message = f"{where}: {error.message}"
                error.args = (error.message,)
                error.node_id = node.id
                self.errors.append(error)

    def udp_node(self, node, where: str, document: dict, scope: set[str] | None) -> None:
        """A call of a user-defined process: its arguments against the parameters it declares.

        Its own graph was validated when it was stored; here only the call is checked.
        """
        declared = {p.get("name"): p for p in document.get("parameters") or [] if isinstance(p, dict)}
        for name, parameter in declared.items():
            if name not in node.arguments and "default" not in parameter and not parameter.get("optional"):
                self.errors.append(
                    ProcessParameterRequired(f"{where}: the required argument '{name}' is missing.", node_id=node.id)
                )
        for name, value in node.arguments.items():
            if name not in declared:
                known = ", ".join(declared) or "none"
                self.errors.append(
                    ProcessParameterUnsupported(f"{where}: unknown argument '{name}'. Its arguments are: {known}.", node_id=node.id)
                )
                continue
            self.argument(None, node, where, name, value, declared[name], scope)

    def argument(self, graph, node, where: str, name: str, value: Any, spec: dict, scope: set[str] | None) -> None:
        schema = spec.get("schema", {})
        if is_callback(value):
            child_scope = _callback_parameter_names(schema)
            try:
                child = parse_process_graph(value)
            except OpenEOError as error:
                error.message = f"{where}, argument '{name}': {error.message}"
                self.errors.append(error)
                return
            if child_scope is None:
                self.errors.append(
                    ProcessParameterInvalid(f"{where}: argument '{name}' does not accept a child process graph.", node_id=node.id)
                )
                return
            self.graph(child, None if scope is None else child_scope | scope)
            return
        self.references(where, name, value, scope, node.id)
        if contains_reference(value):
            return
        if not literal_matches_schema(value, schema):
            expected = " or ".join(sorted({str(s.get("type")) for s in _schemas(schema) if s.get("type")}))
            self.errors.append(
                ProcessParameterInvalid(
                    f"{where}: argument '{name}' must be of type {expected}, got {_JSON_TYPES.get(type(value), 'object')}.",
                    node_id=node.id,
                )
            )
            return
        problem = subtype_problem(value, schema)
        if problem:
            self.errors.append(ProcessParameterInvalid(f"{where}: argument '{name}': {problem}.", node_id=node.id))

    def references(self, where: str, name: str, value: Any, scope: set[str] | None, node_id: str) -> None:
        for item in iter_references(value):
            if not isinstance(item, Reference):
                # A callback nested in an object (load_collection's ``properties``): its processes are
                # checked; its parameters are the nesting process's business, so any name may come.
                try:
                    self.graph(parse_process_graph(item), None)
                except OpenEOError as error:
                    error.message = f"{where}, argument '{name}': {error.message}"
                    self.errors.append(error)
            elif item.kind == "from_parameter" and scope is not None and item.name not in scope:
                self.errors.append(
                    ProcessParameterInvalid(
                        f"{where}: argument '{name}' refers to parameter '{item.name}', which is not defined here"
                        + (f" (available: {', '.join(sorted(scope))})." if scope else "."),
                        node_id=node_id,
                    )
                )


def check_complexity(document: Any, settings: Settings) -> None:
    """``ProcessGraphComplexity`` when a graph has more nodes or deeper callbacks than this server takes."""
    nodes, depth = graph_complexity(document)
    if nodes > settings.max_graph_nodes:
        raise ProcessGraphComplexity(
            f"The process graph has {nodes} nodes (callbacks included); this server takes at most {settings.max_graph_nodes} (setting max_graph_nodes)."
        )
    if depth > settings.max_graph_depth:
        raise ProcessGraphComplexity(
            f"The process graph nests callbacks {depth} deep; this server takes at most {settings.max_graph_depth} (setting max_graph_depth)."
        )


def collect_errors(
    document: Any,
    registry: ProcessRegistry | None = None,
    env: ProcessEnv | None = None,
    udps: UdpLookup | None = None,
    parameters: dict[str, Any] | None = None,
) -> list[OpenEOError]:
    """All errors found in a process (document or parsed graph); empty when it is valid."""
    try:
        if not isinstance(document, ProcessGraph):
            check_complexity(document, (env.settings if env else None) or Settings())
        graph = document if isinstance(document, ProcessGraph) else parse_process_graph(document)
    except OpenEOError as error:
        return [error]
    validator = _Validator(registry or default_registry(), env or ProcessEnv(), udps)
    # Parameters declared by a user-defined process are in scope, as are values passed at run time.
    scope = {p.get("name") for p in graph.parameters} | set(parameters or {})
    validator.graph(graph, scope)
    return validator.errors


def validate_process_graph(document: Any, **kwargs: Any) -> ProcessGraph:
    """Parse and validate; raise the first error, else return the parsed graph."""
    errors = collect_errors(document, **kwargs)
    if errors:
        raise errors[0]
    return document if isinstance(document, ProcessGraph) else parse_process_graph(document)
